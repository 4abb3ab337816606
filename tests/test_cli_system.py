"""``conveyor sim gemm --chips N``: a GEMM divided among chips (cli/system_sim.py), its report and its errors.

The golden backend runs here (fast); the RTL backend of the same command runs in
tests/test_system_verilator.py's models (``-k cli``)."""
import json

import pytest

from cli import system_sim
from cli.main import SYSTEM_MAX_CHIPS, main
from compiler.system import SPLITS
from golden.system import TOPOLOGIES
from rtl.system import MAX_RTL_CHIPS

KEYS = {"match", "cycles", "predicted_cycles", "golden_cycles", "chips", "split", "reason", "chip_cycles",
        "chip_utilization", "link_busy", "one_chip_cycles", "speedup", "matches_numpy", "topology",
        "link_latency", "link_interval"}


def test_the_cli_constants_are_the_packages():
    assert system_sim.SPLITS == SPLITS and system_sim.TOPOLOGIES == TOPOLOGIES
    assert SYSTEM_MAX_CHIPS == MAX_RTL_CHIPS


def test_a_gemm_on_three_chips_of_tiny_on_golden(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["sim", "gemm", "--m", "30", "--k", "8", "--n", "12", "--chips", "3", "--config", "tiny",
                 "--backend", "golden", "--link-interval", "2", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert KEYS <= set(r)
    assert r["match"] and r["matches_numpy"] and r["chips"] == 3 and r["config"] == "tiny_link"
    assert r["cycles"] == r["predicted_cycles"] == r["golden_cycles"] == max(r["chip_cycles"])
    assert r["link_interval"] == 2 and r["link_latency"] == 16
    assert r["split"] in SPLITS and r["reason"].startswith(f"{r['split']} chosen: rows: ")
    assert r["speedup"] == round(r["one_chip_cycles"] / r["cycles"], 4) and r["speedup"] > 1
    text = capsys.readouterr().out
    assert "on 3 chips of tiny_link in a line (link latency 16, interval 2)" in text
    assert "equals numpy bit for bit" in text and "chip 2" in text


def test_a_split_can_be_forced_and_a_ring_chosen(tmp_path):
    out = tmp_path / "r.json"
    assert main(["sim", "gemm", "--m", "9", "--k", "5", "--n", "8", "--chips", "2", "--config", "tiny",
                 "--backend", "golden", "--split", "tensor", "--topology", "ring", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["split"] == "tensor" and r["topology"] == "ring" and r["match"]
    assert not r["reason"].startswith("tensor chosen")       # forced, not chosen


@pytest.mark.parametrize("argv, message", [
    (["--chips", "9"], "argument --chips: must be an integer between 1 and 8, not 9"),
    (["--chips", "2", "--split", "cols"], "argument --split: must be one of rows, tensor, auto, not 'cols'"),
    (["--chips", "2", "--topology", "star"], "argument --topology: must be one of line, ring, not 'star'"),
    (["--chips", "2", "--link-interval", "0"], "argument --link-interval: must be an integer between 1 and 256, "
                                               "not 0"),
    (["--split", "rows"], "arguments --split/--topology/--link-latency/--link-interval: apply to a system: give "
                          "--chips 2 or more"),
    (["--chips", "2", "--unit", "mxu"], "argument --chips: a system runs whole chips; --unit mxu is one MXU tile"),
    (["--backend", "golden"], "argument --backend: golden applies to --chips > 1 (one chip runs on the RTL, "
                              "compared with the golden model anyway)"),
    (["--chips", "3", "--split", "tensor", "--backend", "golden"],
     "GEMM 20 x 8 x 8 does not fit 3 chips of config tiny_link: tensor: does not fit (8 columns cannot be divided "
     "among 3 chips: each needs at least one of the 2 tiles of 4 columns); it fits 1 chip with the rows split"),
])
def test_bad_system_arguments(argv, message, capsys):
    assert main(["sim", "gemm", "--m", "20", "--k", "8", "--n", "8", "--config", "tiny"] + argv) == 2
    assert capsys.readouterr().err == f"conveyor: error: {message}\n"
