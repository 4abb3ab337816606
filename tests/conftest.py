import os
import sys

# The packages live at the repository root (spec/, rtl/, golden/, sim/, fpga/); make them importable even
# when the project is not installed into the interpreter running pytest.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Progress lines (sim.progress) go to standard error, where several tests pin exactly one error line; the
# suite runs quiet (tests/test_progress.py turns them on for its own checks).
os.environ.setdefault("CONVEYOR_QUIET", "1")
