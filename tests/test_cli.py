"""The conveyor command: one-line errors with exit status 2, gen output, sim gemm reports."""
import json
import subprocess
import sys

import pytest

from cli.main import main

REQUIRED_KEYS = {"match", "cycles", "macs", "utilization", "m", "k", "n", "rows", "cols", "seed", "simulator"}


@pytest.mark.parametrize("argv, message", [
    (["gen", "mxu", "--rows", "0", "--cols", "4", "-o", "x"],
     "argument --rows: must be an integer between 1 and 64, not 0"),
    (["gen", "mxu", "--rows", "4", "--cols", "65", "-o", "x"],
     "argument --cols: must be an integer between 1 and 64, not 65"),
    (["sim", "gemm", "--m", "-3", "--k", "4", "--n", "4"], "argument --m: must be an integer of at least 1, not -3"),
    (["sim", "gemm", "--m", "x", "--k", "4", "--n", "4"], "argument --m: must be an integer of at least 1, not 'x'"),
    (["sim", "gemm", "--m", "4", "--k", "4"], "the following arguments are required: --n"),
    (["sim", "gemm", "--unit", "mxu", "--m", "4", "--k", "4", "--n", "4", "--acc-depth", "1"],
     "argument --acc-depth: must be an integer between 2 and 65536, not 1"),
    (["fpga", "--target", "xc7", "--rows", "2", "--cols", "2"],
     "argument --target: must be one of ecp5-85f, ice40-up5k, not 'xc7'"),
    (["sim", "gemm", "--m", "4", "--k", "4", "--n", "4", "--simulator", "iverilog"],
     "argument --simulator: must be one of verilator, amaranth, not 'iverilog'"),
    ([], "the following arguments are required: COMMAND"),
    (["sim", "gemm", "--m", "4", "--k", "4", "--n", "4", "--rows", "4"],
     "argument --rows: applies to --unit mxu; the chip's array comes from --config"),
    (["sim", "gemm", "--m", "4", "--k", "4", "--n", "4", "--unit", "gpu"],
     "argument --unit: must be one of chip, mxu, not 'gpu'"),
    (["sim", "gemm", "--m", "4", "--k", "4", "--n", "4", "--config", "huge"],
     "argument --config: must be one of tiny, small, tsp or a .json file, not 'huge'"),
    (["gen", "chip", "--config", "tsp", "-o", "x"],
     "config 'tsp' is model-only (rtl=False): it feeds the performance model and cannot be generated as RTL "
     "(its MXU is 320x320, the RTL allows at most 64x64)"),
    (["run", "does-not-exist.s", "--config", "tiny"],
     "cannot read program does-not-exist.s: No such file or directory"),
    (["demo", "mlp", "--config", "tiny", "--m", "0"], "argument --m: must be an integer of at least 1, not 0"),
])
def test_bad_arguments(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"conveyor: error: {message}\n"


def test_bad_argument_from_a_shell_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "cli.main", "sim", "gemm", "--m", "0", "--k", "1", "--n", "1"],
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
    assert main(["sim", "gemm", "--unit", "mxu", "--m", "9", "--k", "5", "--n", "4", "--rows", "3", "--cols", "2",
                 "--seed", "3", "--simulator", "amaranth", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert REQUIRED_KEYS <= set(r)
    assert r["match"] is True and r["cycles"] == r["golden_cycles"]
    assert r["utilization"] == pytest.approx(9 * 5 * 4 / (r["cycles"] * 6), abs=1e-6)
    assert "equals numpy bit for bit" in capsys.readouterr().out


def test_sim_gemm_verilator_report(tmp_path):
    out = tmp_path / "r.json"
    assert main(["sim", "gemm", "--unit", "mxu", "--m", "40", "--k", "8", "--n", "8", "--rows", "4", "--cols", "4",
                 "--seed", "1", "--acc-depth", "64", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert REQUIRED_KEYS <= set(r)
    assert r["simulator"] == "verilator" and r["match"] is True
    assert r["cycles"] == r["golden_cycles"] and r["macs"] == 40 * 8 * 8


# ---- the chip -------------------------------------------------------------------------------------------
RUN_KEYS = {"match", "cycles", "golden_cycles", "error", "config"}


def test_gen_chip_writes_verilog_and_config(tmp_path, capsys):
    assert main(["gen", "chip", "--config", "tiny", "-o", str(tmp_path)]) == 0
    assert "module chip_tiny(" in (tmp_path / "chip_tiny.v").read_text()
    from spec.config import PRESETS, ChipConfig
    assert ChipConfig.from_dict(json.loads((tmp_path / "chip_tiny.json").read_text())) == PRESETS["tiny"]


def test_run_program_report(tmp_path, capsys):
    import numpy as np
    prog = tmp_path / "copy.s"
    prog.write_text(".slice mem0\n    READ bank=0 addr=0 count=4 -> E1\n    HALT\n"
                    ".slice mem1\n    WRITE E1 bank=1 addr=8 count=4\n    HALT\n")
    data = tmp_path / "in.npz"
    np.savez(data, **{"mem0.0": np.arange(16).reshape(4, 4) - 8})
    out = tmp_path / "r.json"
    assert main(["run", str(prog), "--config", "tiny", "--data", str(data), "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert RUN_KEYS <= set(r)
    assert r["match"] is True and r["error"] is None and r["cycles"] == r["golden_cycles"] and r["config"] == "tiny"
    assert "RTL and golden model equal" in capsys.readouterr().out


def test_run_faulting_program_says_so_in_one_line(tmp_path, capsys):
    prog = tmp_path / "bad.s"
    prog.write_text(".slice mem1\n    NOP 2\n    .word 0x0\n")
    out = tmp_path / "r.json"
    assert main(["run", str(prog), "--config", "tiny", "--json", str(out)]) == 1
    r = json.loads(out.read_text())
    assert r["match"] is True and r["error"] == {"code": "ILLEGAL_OPCODE", "slice": "mem1", "pc": 1}
    err = capsys.readouterr().err
    assert err == f"conveyor: program fault: ILLEGAL_OPCODE on slice mem1 at pc 1 (cycle {r['cycles'] - 1})\n"


@pytest.mark.parametrize("text, data, message", [
    ("READ bank=0 addr=0 count=1 -> E1\n", None, "instruction outside a section"),
    (".slice mem0\n    HALT\n", {"mem7.0": [[1, 2, 3, 4]]}, "key 'mem7.0': slice 'mem7' is not in config tiny"),
    (".slice mem0\n    HALT\n", {"mem0.0": [[1, 2, 3]]}, "vectors must be an integer array of shape (n, 4)"),
])
def test_run_bad_program_or_data(tmp_path, capsys, text, data, message):
    import numpy as np
    prog = tmp_path / "p.s"
    prog.write_text(text)
    argv = ["run", str(prog), "--config", "tiny"]
    if data is not None:
        path = tmp_path / "d.npz"
        np.savez(path, **{k: np.array(v) for k, v in data.items()})
        argv += ["--data", str(path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("conveyor: error: ") and message in err and err.count("\n") == 1


def test_sim_gemm_on_the_chip(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["sim", "gemm", "--config", "tiny", "--m", "12", "--k", "8", "--n", "8", "--seed", "2",
                 "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert RUN_KEYS <= set(r) and r["unit"] == "chip"
    assert r["match"] and r["matches_numpy"] and r["cycles"] == r["golden_cycles"] == r["predicted_cycles"]
    assert r["utilization"] == pytest.approx(12 * 2 * 2 / r["cycles"], abs=1e-6)
    assert "equals numpy bit for bit" in capsys.readouterr().out


def test_demo_mlp_runs_its_assembly(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["demo", "mlp", "--config", "tiny", "--m", "8", "--k", "8", "--hidden", "4", "--n", "4",
                 "--out", str(tmp_path / "demo"), "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["match"] and r["matches_numpy"] and r["cycles"] == r["golden_cycles"]
    assert (tmp_path / "demo" / "mlp.s").read_text().count(".slice") >= 3
    text = capsys.readouterr().out
    assert "utilization" in text and "agree" in text
