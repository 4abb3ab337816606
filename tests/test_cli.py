"""The conveyor command: one-line errors with exit status 2, gen output, sim gemm reports."""
import json
import subprocess
import sys

import pytest

from sim.cli import main

REQUIRED_KEYS = {"match", "cycles", "macs", "utilization", "m", "k", "n", "rows", "cols", "seed", "simulator"}


@pytest.mark.parametrize("argv, message", [
    (["gen", "mxu", "--rows", "0", "--cols", "4", "-o", "x"],
     "argument --rows: must be an integer between 1 and 64, not 0"),
    (["gen", "mxu", "--rows", "4", "--cols", "65", "-o", "x"],
     "argument --cols: must be an integer between 1 and 64, not 65"),
    (["sim", "gemm", "--m", "-3", "--k", "4", "--n", "4"], "argument --m: must be an integer of at least 1, not -3"),
    (["sim", "gemm", "--m", "x", "--k", "4", "--n", "4"], "argument --m: must be an integer of at least 1, not 'x'"),
    (["sim", "gemm", "--m", "4", "--k", "4"], "the following arguments are required: --n"),
    (["sim", "gemm", "--m", "4", "--k", "4", "--n", "4", "--acc-depth", "1"],
     "argument --acc-depth: must be an integer between 2 and 65536, not 1"),
    (["fpga", "--target", "xc7", "--rows", "2", "--cols", "2"],
     "argument --target: must be one of ecp5-85f, ice40-up5k, not 'xc7'"),
    (["sim", "gemm", "--m", "4", "--k", "4", "--n", "4", "--simulator", "iverilog"],
     "argument --simulator: must be one of verilator, amaranth, not 'iverilog'"),
    ([], "the following arguments are required: COMMAND"),
])
def test_bad_arguments(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"conveyor: error: {message}\n"


def test_bad_argument_from_a_shell_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "sim", "gemm", "--m", "0", "--k", "1", "--n", "1"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_gen_writes_verilog_and_rtlil(tmp_path, capsys):
    assert main(["gen", "mxu", "--rows", "2", "--cols", "3", "-o", str(tmp_path)]) == 0
    v = (tmp_path / "mxu_2x3.v").read_text()
    il = (tmp_path / "mxu_2x3.il").read_text()
    assert "module mxu_2x3(" in v and "a_data" in v and "y_data" in v
    assert "module \\mxu_2x3" in il


def test_sim_gemm_amaranth_report(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["sim", "gemm", "--m", "9", "--k", "5", "--n", "4", "--rows", "3", "--cols", "2", "--seed", "3",
                 "--simulator", "amaranth", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert REQUIRED_KEYS <= set(r)
    assert r["match"] is True and r["cycles"] == r["golden_cycles"]
    assert r["utilization"] == pytest.approx(9 * 5 * 4 / (r["cycles"] * 6), abs=1e-6)
    assert "equals numpy bit for bit" in capsys.readouterr().out


def test_sim_gemm_verilator_report(tmp_path):
    out = tmp_path / "r.json"
    assert main(["sim", "gemm", "--m", "40", "--k", "8", "--n", "8", "--rows", "4", "--cols", "4", "--seed", "1",
                 "--acc-depth", "64", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert REQUIRED_KEYS <= set(r)
    assert r["simulator"] == "verilator" and r["match"] is True
    assert r["cycles"] == r["golden_cycles"] and r["macs"] == 40 * 8 * 8
