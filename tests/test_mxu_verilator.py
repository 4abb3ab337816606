"""The MXU on Verilator (through cocotb) against the golden model and numpy.

One Verilator build per array shape, reused by every scenario of that shape: the scenarios are played as
one long trace (segments separated by idle gaps longer than the latency), so a shape costs one build and one
simulator start. Every result vector is compared with the golden model cycle by cycle, and every GEMM
segment's assembled result with numpy; a mismatch names the shape, the seed, the segment and the first
differing element.
"""
import numpy as np
import pytest

from golden.mxu import MXUModel, matmul
from sim.gemm import schedule_gemm
from sim.stimulus import operand, random_trace
from sim.trace import MXUTrace
from sim.verilator import MXUSimulator
from spec.mxu import MXUParams
from tests.mxu_checks import assert_matrix_equal, assert_results_equal

SHAPES = [(1, 1), (2, 3), (4, 4), (8, 8), (16, 16), (32, 8)]
BUILD_ROOT = "build/sim"


class Scenario:
    """A sequence of trace segments, each optionally a GEMM whose result is checked against numpy."""

    def __init__(self, params, seed):
        self.params = params
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.segments = []   # (label, trace, plan or None, x, w)

    def gemm(self, label, m, k, n, kind="random"):
        x, w = operand(self.rng, (m, k), kind), operand(self.rng, (k, n), kind)
        plan = schedule_gemm(x, w, self.params)
        self.segments.append((label, plan.trace, plan, x, w))
        return plan

    def raw(self, label, trace):
        self.segments.append((label, trace, None, None, None))

    def build(self):
        gap = MXUTrace.empty(self.params, self.params.latency + 4)
        traces, self.starts = [], []
        t = 0
        for _, tr, *_ in self.segments:
            self.starts.append(t)
            traces += [tr, gap]
            t += len(tr) + len(gap)
        return MXUTrace.concat(traces)

    def check(self, got, golden):
        p = self.params
        label = f"{p.rows}x{p.cols} seed={self.seed}"
        assert_results_equal(label, got.cycle, got.addr, got.data, golden)
        ends = self.starts[1:] + [np.iinfo(np.int64).max]
        for (name, _, plan, x, w), start, end in zip(self.segments, self.starts, ends):
            if plan is None:
                continue
            sel = (got.cycle >= start) & (got.cycle < end)
            assert sel.sum() == plan.expected_outputs, f"{label} [{name}]: wrong number of result vectors"
            assert_matrix_equal(f"{label} [{name}] {plan.m}x{plan.k}x{plan.n}",
                                plan.assemble(got.addr[sel], got.data[sel]), matmul(x, w))
            assert got.cycle[sel][-1] - start == plan.predicted_last_output_cycle, f"{label} [{name}]: timing"


def _scenarios(params, seed):
    R, C = params.rows, params.cols
    s = Scenario(params, seed)
    s.gemm("random", 2 * R + 3, 2 * R + 1, 2 * C + 1)
    s.gemm("all -128", R + 1, R, C, "min")
    s.gemm("all 127", R + 1, R, C, "max")
    s.gemm("alternating signs", R + 2, 3 * R, 2 * C, "alternating")
    s.gemm("long K accumulation", 3, 40 * R, C, "min")
    s.gemm("back-to-back tiles", max(R, 8), 4 * R, 3 * C)
    # Reset in the middle of a GEMM, then a GEMM that must be right.
    broken = schedule_gemm(operand(s.rng, (R + 4, 2 * R)), operand(s.rng, (2 * R, C)), params).trace
    broken.rst[len(broken) // 2] = 1
    s.raw("reset mid-run", broken)
    s.gemm("after reset", R + 4, 2 * R, C)
    s.raw("random inputs on every cycle", random_trace(params, 300, s.rng, addresses=8))
    s.gemm("after random inputs", R + 2, R + 1, C + 1, "extremes")
    return s


@pytest.fixture(scope="module")
def simulators():
    return {}


@pytest.mark.parametrize("rows, cols", SHAPES, ids=[f"{r}x{c}" for r, c in SHAPES])
def test_mxu_on_verilator(rows, cols, simulators):
    seed = 1000 + rows * 100 + cols
    print(f"seed {seed}")
    params = MXUParams(rows, cols, 64)
    s = _scenarios(params, seed)
    trace = s.build()
    golden = MXUModel(params).run(trace)
    got = MXUSimulator(params, build_root=BUILD_ROOT).run(trace)
    s.check(got, golden)
