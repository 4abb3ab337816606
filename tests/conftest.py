import os
import sys

# The packages live at the repository root (spec/, rtl/, golden/, sim/, fpga/); make them importable even
# when the project is not installed into the interpreter running pytest.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
