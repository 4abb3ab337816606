"""Waveforms: the VCD of a waves run opens in GTKWave, and the layout names only signals that exist."""
import json
import shutil
import subprocess

from cli.main import main
from waves.mxu import sanitize_vcd, vcd_signals

VCD_HEADER = """$timescale 1ps $end
$scope module top $end
$var wire 1 ! clk $end
$scope module dut $end
$var wire 1 " \\$auto$verilog_backend.cc:2505:dump_module$1 $end
$var wire 8 # acc_hist1.addr [7:0] $end
$upscope $end
$upscope $end
$enddefinitions $end
#0
0!
b101 #
"""


def test_sanitize_renames_only_yosys_helper_wires(tmp_path):
    vcd = tmp_path / "d.vcd"
    vcd.write_text(VCD_HEADER)
    assert sanitize_vcd(vcd) == 1
    names = set(vcd_signals(vcd))
    assert names == {"top.clk", "top.dut._auto_verilog_backend_cc_2505_dump_module_1", "top.dut.acc_hist1.addr"}
    assert vcd.read_text().endswith("#0\n0!\nb101 #\n")   # value changes untouched


def test_waves_run_writes_a_layout_of_existing_signals(tmp_path):
    out = tmp_path / "r.json"
    assert main(["sim", "gemm", "--unit", "mxu", "--m", "6", "--k", "4", "--n", "4", "--rows", "2", "--cols", "2",
                 "--acc-depth", "16", "--waves", "--json", str(out), "--build-dir", str(tmp_path / "b")]) == 0
    r = json.loads(out.read_text())
    signals = vcd_signals(r["waves"])
    assert not [n for n in signals if ":" in n], "a name GTKWave cannot parse is left in the VCD"
    layout = open(r["gtkw"]).read().splitlines()
    shown = [line.rsplit("[", 1)[0] if signals.get(line.rsplit("[", 1)[0], 1) > 1 else line
             for line in layout if line.startswith("mxu_harness.")]
    assert len(shown) > 20
    for name in shown:
        assert name in signals, f"layout names {name}, which is not in the VCD"
    if shutil.which("gtkwave") and shutil.which("xvfb-run"):
        # GTKWave exits early, printing "VCD parse errors encountered, exiting", on names it cannot read.
        proc = subprocess.run(["xvfb-run", "-a", "timeout", "10", "gtkwave", r["gtkw"]], capture_output=True,
                              text=True)
        assert "parse error" not in proc.stdout + proc.stderr
