"""The chip's generated Verilog, per RTL preset: lint-clean under ``verilator --lint-only -Wall`` (waivers,
each with its reason, in rtl/lint_waivers.vlt) and equal to its reviewed snapshot.

Snapshots are gzipped (the chip's Verilog is large); after an intended RTL change refresh them with
``UPDATE_SNAPSHOTS=1 make test TESTS=tests/test_chip_lint.py`` and commit them with the change.
"""
import difflib
import gzip
import os
from pathlib import Path

import pytest

from sim.chip_verilator import ChipSimulator
from spec.config import PRESETS
from verify.lint import lint_verilog

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
RTL_PRESETS = sorted(name for name, c in PRESETS.items() if c.rtl)


@pytest.fixture(scope="module", params=RTL_PRESETS)
def generated(request, tmp_path_factory):
    name = request.param
    text = ChipSimulator(PRESETS[name]).verilog()     # cached on disk under build/sim/verilog
    path = tmp_path_factory.mktemp(name) / f"chip_{name}.v"
    path.write_text(text)
    return name, path, text


def test_chip_verilog_is_lint_clean(generated):
    name, path, _ = generated
    ok, messages = lint_verilog(path, top="chip")
    assert ok, f"chip {name}:\n" + "\n".join(messages[:20])


def test_chip_verilog_snapshot(generated):
    name, _, text = generated
    snap = SNAPSHOTS / f"chip_{name}.v.gz"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        with gzip.open(snap, "wt", compresslevel=9) as f:
            f.write(text)
    assert snap.exists(), f"no snapshot {snap}: run with UPDATE_SNAPSHOTS=1 to create it"
    with gzip.open(snap, "rt") as f:
        want = f.read()
    if text != want:
        diff = "".join(list(difflib.unified_diff(want.splitlines(True), text.splitlines(True), "snapshot",
                                                 "generated"))[:60])
        pytest.fail(f"generated Verilog of chip {name} differs from {snap.name} (UPDATE_SNAPSHOTS=1 to accept; "
                    f"the file is gzipped):\n{diff}")
    assert "/work/" not in text and "site-packages" not in text


def test_verilog_is_reproducible():
    from sim.chip_verilator import generate_chip_verilog
    c = PRESETS["tiny"].replace(name="lint_small", lanes=2, streams=1, mxu_rows=2, mxu_cols=2, mem_depth=4,
                                mxu_acc_depth=4, queue_depth=4, slices=("mem", "mxu"))
    assert generate_chip_verilog(c) == generate_chip_verilog(c)
