"""Waveforms of a system: ``conveyor sim gemm --chips 2 --waves`` writes the VCD of the system RTL and a GTKWave
layout grouped per chip (``waves.system``): the system's run control, each link's delay line, then every
chip's groups, slice by slice, link slices included."""
import json
import re

import pytest

from cli.main import main
from compiler.system import system_config
from spec.config import PRESETS
from waves.plot import read_vcd
from waves.system import system_layout

TINY2 = system_config(PRESETS["tiny"], 2)


def test_sim_gemm_on_two_chips_writes_waves_grouped_per_chip(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["sim", "gemm", "--m", "12", "--k", "8", "--n", "20", "--chips", "2", "--config", "tiny",
                 "--split", "tensor", "--waves", "--build-dir", "build", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["match"] and r["cycles"] == r["predicted_cycles"]
    text = capsys.readouterr().out
    assert f"gtkw         {r['gtkw']} (GTKWave layout, grouped per chip, links included)" in text
    names = read_vcd(r["vcd"], signals=[]).widths
    groups = dict(system_layout(TINY2, 2, names))
    assert all(s in names for sigs in groups.values() for s in sigs)
    assert any(s.endswith(".running") for s in groups["system: run control"])
    links = [g for g in groups if g.startswith("link ")]
    assert links == ["link 0: chip 0 east -> chip 1 west (in and out)",
                     "link 1: chip 1 west -> chip 0 east (in and out)"]
    assert [s.split(".link0_c0e_c1w.")[1] for s in groups[links[0]]] == ["src.valid", "src.data", "out.valid",
                                                                          "out.data"]
    for c in range(2):
        for name, kind in zip(TINY2.slice_names, TINY2.slices):
            sigs = groups[f"chip {c}: {name} ({kind.upper()})"]
            assert all(f".chip{c}." in s for s in sigs)
            assert any(s.endswith(f"icu_{name}.pc") for s in sigs), (c, name)
        assert any(s.endswith("link1.send_active") for s in groups[f"chip {c}: link1 (LINK)"])
    gtkw = open(r["gtkw"]).read()
    order = [gtkw.index(f"-{g}") for g in ["system: run control"] + links +
             [f"chip {c}: {n} ({k.upper()})" for c in range(2) for n, k in zip(TINY2.slice_names, TINY2.slices)]]
    assert order == sorted(order)


def test_a_vcd_without_a_system_or_with_other_chips_is_refused():
    with pytest.raises(ValueError, match=re.escape("the VCD has no system in it (no signal '<…>.armed0')")):
        system_layout(TINY2, 2, ["top.clk", "top.dut.icu_link0.pc"])
    names = ["top.armed0", "top.chip0.icu_link0.pc"]
    with pytest.raises(ValueError, match=r"^the VCD has 1 chips of config tiny_link, not 2$"):
        system_layout(TINY2, 2, names)


def test_waves_of_a_system_need_the_rtl(capsys):
    assert main(["sim", "gemm", "--m", "4", "--k", "4", "--n", "4", "--chips", "2", "--config", "tiny", "--backend",
                 "golden", "--waves"]) == 2
    assert "argument --waves: waveforms come from the RTL: leave out --backend golden" in capsys.readouterr().err
