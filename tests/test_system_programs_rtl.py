"""Compiled multi-chip programs on the system's RTL in Verilator: what ``compiler.system`` (GEMM split by rows
or columns, an MLP in tensor parallel whose partial sums are added over the links) and ``compiler.compile(...,
chips=N)`` (a model in pipeline parallel) emit runs on the RTL in exactly the predicted cycles, every MEM word
equal to golden's and the result equal to numpy / the int8 reference.

Two models, each built once per session (``sim.system_verilator``'s cache): 2 chips of ``tiny`` with links in
a line (``tiny_link``, also what ``conveyor sim gemm --chips 2 --config tiny`` builds) and 3 chips of ``tiny4``
(tiny with 4 MEM slices, where ``compiler.kernels.mlp`` schedules small batches) in a line."""
import functools
import json

import numpy as np
import pytest

import compiler
from cli.main import main
from compiler.system import gemm, system_config
from compiler.system.mlp import mlp
from sim.system_run import run_system
from sim.system_verilator import SystemSimulator
from spec.config import PRESETS
from tests.test_system_compiler import TINY4, Q, op
from tests.test_system_program import same, wide_model

TINY = PRESETS["tiny"]


@functools.cache
def _model(config, chips, topology="line"):
    sim = SystemSimulator(config, chips, topology)
    sim.build()
    print(f"model {config.name} x {chips} {topology}: build {sim.last_build_seconds:.1f} s in {sim.build_dir()}")
    return sim


def on_rtl(kern, **kw):
    """Run ``kern`` (a ``compiler.system.SystemKernel``) on the RTL; assert RTL = golden = predicted cycles and
    the RTL's own MEM words unpack to the numpy result. Returns the ``SystemRunResult``."""
    sim = _model(kern.config, kern.chips, kern.topology)
    res = run_system(kern.config, [p.words for p in kern.programs], kern.inputs, chips=kern.chips,
                     topology=kern.topology, simulator=sim, max_cycles=kern.predicted_cycles + 1000, **kw)
    assert res.match, res.mismatch
    assert res.error is None and res.golden_error is None, (res.error, res.golden_error)
    assert res.cycles == res.golden_cycles == kern.predicted_cycles, (res.cycles, kern.predicted_cycles)
    assert res.chip_cycles == list(kern.chip_cycles)
    got = kern.result_of(res.mems)
    diff = np.argwhere(got != kern.expected)
    assert not len(diff), f"first mismatch at {tuple(diff[0])}: RTL {got[tuple(diff[0])]}, numpy " \
                          f"{kern.expected[tuple(diff[0])]} ({len(diff)} differ)"
    return res


@pytest.mark.parametrize("split", ["rows", "tensor"])
def test_a_gemm_split_over_two_chips_runs_on_the_rtl_in_the_predicted_cycles(split):
    rng = np.random.default_rng(11)
    X, W = op(rng, (20, 12)), op(rng, (12, 2 * TINY.mxu_cols + 3))
    kern = gemm(TINY, X, W, 2, split=split)
    assert kern.config == system_config(TINY, 2) and kern.split == split
    on_rtl(kern)


def test_a_gemm_under_host_back_pressure_gives_the_same_result():
    rng = np.random.default_rng(12)
    X, W = op(rng, (9, 7)), op(rng, (7, 5))
    kern = gemm(TINY, X, W, 2, split="rows")
    on_rtl(kern, seed=5, valid_pct=[35, 90], ready_pct=[60, 20])


def test_a_tensor_parallel_mlp_adds_its_partial_sums_over_two_links_on_the_rtl():
    rng = np.random.default_rng(13)
    C = TINY4.mxu_cols
    X, W1, W2 = op(rng, (3, 9)), op(rng, (9, 2 * C + 2)), op(rng, (2 * C + 2, C + 1))
    b1 = rng.integers(-3000, 3000, 2 * C + 2)
    kern = mlp(TINY4, X, W1, b1, Q, W2, 3, split="tensor")
    assert kern.split == "tensor" and set(kern.transfers) == {"c1.west->c0.east", "c2.west->c1.east"}
    on_rtl(kern)


def test_a_model_compiled_for_two_chips_runs_on_the_rtl(tmp_path):
    g, x = wide_model()
    cp = compiler.compile(g, x, config="tiny", chips=2)
    _model(cp.config, 2)                      # the build is not part of the run's checks
    r = cp.run(x, backend="verilator", build_dir=_model(cp.config, 2).build_root.parent)
    assert r.match and r.cycles == r.predicted_cycles == cp.predicted_cycles
    same(r.outputs, cp.qgraph.run_int8(x))


def test_a_model_compiled_in_tensor_parallel_runs_on_the_rtl():
    g, x = wide_model()
    x = {"x": x["x"][:4]}
    cp = compiler.compile(g, x, config="tiny", chips=2, split="tensor")
    assert cp.split == "tensor" and set(cp.transfers) == {"c0.east->c1.west", "c1.west->c0.east"}
    r = cp.run(x, backend="verilator", build_dir=_model(cp.config, 2).build_root.parent)
    assert r.match and r.cycles == r.predicted_cycles == cp.predicted_cycles
    same(r.outputs, cp.qgraph.run_int8(x))


def test_conveyor_sim_gemm_on_two_chips_on_the_rtl(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["sim", "gemm", "--m", "12", "--k", "8", "--n", "20", "--chips", "2", "--config", "tiny",
                 "--build-dir", str(_model(system_config(TINY, 2), 2).build_root.parent), "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["match"] and r["matches_numpy"] and r["chips"] == 2 and r["backend"] == "verilator"
    assert r["cycles"] == r["predicted_cycles"], r
    assert "on 2 chips of tiny_link in a line" in capsys.readouterr().out
