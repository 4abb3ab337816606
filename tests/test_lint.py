"""``make lint`` in CI: ruff and mypy (configured in pyproject.toml) find nothing.

The Verilator ``-Wall`` lint of the generated Verilog, the third part of ``make lint`` (``python -m
verify.lint``), runs in tests/test_chip_lint.py and tests/test_mxu_lint.py.
"""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_finds_nothing():
    proc = _run("ruff", "check", "--no-cache", ".")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


@pytest.mark.slow
def test_mypy_finds_nothing():
    proc = _run("mypy")      # files and options: [tool.mypy] in pyproject.toml
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
