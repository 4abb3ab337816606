"""Snapshots of generated Verilog: an RTL change shows up as a reviewed diff, never silently.

After an intended change, refresh with ``UPDATE_SNAPSHOTS=1 make test TESTS=tests/test_snapshots.py`` and
commit the new snapshots with the change that caused them.
"""
import difflib
import os
from pathlib import Path

import pytest
from amaranth.back import verilog

from rtl.mxu import MXU
from sim.toolchain import use_yosys

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
CONFIGS = {"mxu_1x1_a2": (1, 1, 2), "mxu_2x3_a8": (2, 3, 8)}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_verilog_snapshot(name):
    use_yosys()
    rows, cols, depth = CONFIGS[name]
    text = verilog.convert(MXU(rows, cols, depth), name="mxu", emit_src=False)
    path = SNAPSHOTS / f"{name}.v"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        path.write_text(text)
    assert path.exists(), f"no snapshot {path}: run with UPDATE_SNAPSHOTS=1 to create it"
    want = path.read_text()
    if text != want:
        diff = "".join(list(difflib.unified_diff(want.splitlines(True), text.splitlines(True), "snapshot",
                                                 "generated"))[:60])
        pytest.fail(f"generated Verilog of {name} differs from {path.name} (UPDATE_SNAPSHOTS=1 to accept):\n{diff}")
