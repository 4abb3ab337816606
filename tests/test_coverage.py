"""Coverage builds and the attribution of Verilator points to rtl/ lines (verify/coverage.py).

No Verilator build here: the Verilog of a small component is generated with the coverage markers, and
coverage data are written by hand in Verilator's format (``# SystemC::Coverage-3``)."""
import re

import pytest

from sim.chip_verilator import COVERAGE_ENV, ChipSimulator
from sim.verilator import COVERAGE_ARGS, MXUSimulator, coverage_markers
from spec.config import PRESETS
from spec.mxu import MXUParams
from verify import coverage

TINY = PRESETS["tiny"]


def test_coverage_builds_are_separate_and_default_builds_unchanged(monkeypatch, tmp_path):
    monkeypatch.delenv(COVERAGE_ENV, raising=False)
    plain, cov = ChipSimulator(TINY), ChipSimulator(TINY, coverage=True, coverage_dir=tmp_path)
    assert not plain.coverage and cov.coverage
    assert not plain.build_dir().name.endswith("_cov") and cov.build_dir().name == plain.build_dir().name + "_cov"
    assert cov.coverage_dir == tmp_path.resolve()
    monkeypatch.setenv(COVERAGE_ENV, str(tmp_path / "d"))
    env = ChipSimulator(TINY)
    assert env.coverage and env.coverage_dir == (tmp_path / "d").resolve()
    assert not ChipSimulator(TINY, coverage=False).coverage
    m = MXUSimulator(MXUParams(2, 2, 8), coverage=True)
    assert m.build_dir().name.endswith("_cov") and set(COVERAGE_ARGS) <= set(m._build_args())
    assert not set(COVERAGE_ARGS) & set(MXUSimulator(MXUParams(2, 2, 8))._build_args())


def _verilog():
    from amaranth.back import verilog

    from rtl.streams import StreamInterconnect
    from sim.toolchain import use_yosys
    use_yosys()
    cfg = TINY
    with coverage_markers():
        return verilog.convert(StreamInterconnect(cfg, [1] * len(cfg.slices)), name="top", emit_src=True)


@pytest.fixture(scope="module")
def streams_verilog():
    return _verilog()


def _dat(points):
    lines = ["# SystemC::Coverage-3"]
    for fields, count in points:
        body = "".join(f"\x01{k}\x02{v}" for k, v in fields.items())
        lines.append(f"C '{body}' {count}")
    return "\n".join(lines) + "\n"


def test_markers_carry_the_eq_lines_of_process_branches(streams_verilog):
    vm = coverage.VerilogMap(streams_verilog)
    srcs = {s for v in vm.marker_src.values() for s in v}
    assert srcs and all(f == "rtl/streams.py" for f, _ in srcs)
    text = (coverage._REPO / "rtl/streams.py").read_text().splitlines()
    assert all(".eq(" in text[ln - 1] or "Signal" in text[ln - 1] or "+=" in text[ln - 1] for _, ln in srcs), \
        [text[ln - 1] for _, ln in srcs]
    # the markers are set inside always blocks, once per branch
    assert len(vm.marker_set) >= len(vm.marker_src)


def test_attribution_all_hit_none_hit(streams_verilog, tmp_path):
    vm = coverage.VerilogMap(streams_verilog)
    n = len(streams_verilog.splitlines())
    pts = []
    for line, (_, name) in vm.decl.items():
        pts.append(({"f": "top.v", "l": line, "t": "toggle", "o": f"{name}[0]:0->1", "h": "x"}, 1))
        pts.append(({"f": "top.v", "l": line, "t": "toggle", "o": f"{name}[0]:1->0", "h": "x"}, 1))
    for line in vm.marker_set:
        pts.append(({"f": "top.v", "l": line, "t": "branch", "o": "if", "S": str(line), "h": "x"}, 1))
    for count in (1, 0):
        path = tmp_path / f"c{count}.dat"
        path.write_text(_dat([(f, count) for f, _ in pts]))
        lines, toggles, unmeasured = coverage.analyze(coverage.read_coverage(path), {"top.v": vm})
        rep = coverage.build_report(lines, toggles, unmeasured, {"what": "test"})
        assert rep["total_lines"] >= 5 and n > 0
        assert rep["covered_lines"] == (rep["total_lines"] if count else 0)
        assert "rtl/streams.py" in coverage.render_markdown(rep)
        assert re.search(r"lines: \d+ / \d+", coverage.render_text(rep))
