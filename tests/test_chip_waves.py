"""Waveform debugging of the chip: a VCD, a GTKWave layout grouped by slice, and a PNG of the first cycles."""
import pytest

from compiler import kernels
from sim.chip_run import run_program
from sim.chip_verilator import ChipSimulator
from spec.config import PRESETS
from tests.kernel_data import int8, rng_for
from waves.chip import chip_layout, chip_wave_views
from waves.plot import read_vcd

TINY = PRESETS["tiny"]


@pytest.fixture(scope="module")
def waves(tmp_path_factory):
    rng = rng_for(80)
    kern = kernels.gemm(TINY, int8(rng, (8, 8)), int8(rng, (8, 8)))
    rdir = tmp_path_factory.mktemp("waves")
    r = run_program(TINY, kern.program.words, kern.inputs, simulator=ChipSimulator(TINY, waves=True), run_dir=rdir)
    assert r.match, r.mismatch
    return r.vcd_path


def test_layout_groups_every_slice(waves):
    names = read_vcd(waves, signals=[]).widths
    groups = dict(chip_layout(TINY, names))
    for name, kind in zip(TINY.slice_names, TINY.slices):
        sigs = groups[f"{name} ({kind.upper()})"]
        for what in (f"icu_{name}.pc", f"icu_{name}.opcode", f"icu_{name}.issue", f"{name}.put.valid"):
            assert any(s.endswith(what) for s in sigs), (name, what)
    assert any(s.endswith("mem0.read_left") for s in groups["mem0 (MEM)"])
    assert any(s.endswith("mxu0.array.y_data") for s in groups["mxu0 (MXU)"])
    streams = groups["streams (what each slice selects and sees)"]
    want = [f"{w}{p}" for p in range(len(TINY.slices)) for w in ("sel", "seen")]
    assert [s.rsplit(".", 1)[1] for s in streams] == want
    assert all(s in names for sigs in groups.values() for s in sigs)


def test_views_are_written(waves):
    views = chip_wave_views(TINY, waves)
    gtkw = open(views["gtkw"]).read()
    assert "[dumpfile]" in gtkw
    positions = [gtkw.index(f"-{name} ({kind.upper()})") for name, kind in zip(TINY.slice_names, TINY.slices)]
    assert positions == sorted(positions)           # groups in slice order, west to east
    import matplotlib.image
    img = matplotlib.image.imread(views["png"])
    assert img.shape[0] > 1000 and img.shape[1] > 1000   # one row per signal of every slice


def test_a_vcd_without_the_chip_is_refused(tmp_path):
    with pytest.raises(ValueError, match="the VCD has no chip of config tiny in it"):
        chip_layout(TINY, ["top.clk", "top.x"])
