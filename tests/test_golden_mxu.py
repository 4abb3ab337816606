"""The golden model against plain numpy, and its timing model against the spec."""
import numpy as np
import pytest

from golden.mxu import MXUModel, matmul, wrap_int32
from sim.gemm import schedule_gemm
from sim.stimulus import operand
from spec.mxu import MXUParams
from tests.mxu_checks import assert_matrix_equal


def test_wrap_int32():
    assert wrap_int32([2**31, -2**31 - 1, 2**32 + 5, -1]).tolist() == [-2**31, 2**31 - 1, 5, -1]


def test_matmul_rejects_wrong_dtype():
    with pytest.raises(TypeError, match="x must be an int8 array, not int16"):
        matmul(np.zeros((2, 2), np.int16), np.zeros((2, 2), np.int8))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("rows, cols, acc_depth", [(1, 1, 4), (2, 3, 16), (4, 4, 5), (8, 2, 64)])
def test_gemm_schedule_golden_equals_numpy(seed, rows, cols, acc_depth):
    rng = np.random.default_rng(seed)
    m, k, n = (int(v) for v in rng.integers(1, 20, 3))
    kind = ["random", "min", "max", "alternating", "extremes"][seed]
    x, w = operand(rng, (m, k), kind), operand(rng, (k, n), kind)
    p = MXUParams(rows, cols, acc_depth)
    plan = schedule_gemm(x, w, p)
    res = MXUModel(p).run(plan.trace)
    assert_matrix_equal(f"seed={seed} {m}x{k}x{n} on {rows}x{cols}", plan.assemble(res.addr, res.data),
                        matmul(x, w))
    assert res.cycle[-1] == plan.predicted_last_output_cycle


def test_long_accumulation_wraps_like_int32():
    # K = 70_000 of (-128)*(-128) = 1_146_880_000 per 70k... enough to pass 2**31 and wrap.
    rng = np.random.default_rng(0)
    p = MXUParams(64, 1, 4)
    k = 64 * 2100
    x = np.full((1, k), -128, np.int8)
    w = np.full((k, 1), -128, np.int8)
    plan = schedule_gemm(x, w, p)
    res = MXUModel(p).run(plan.trace)
    exact = k * 16384
    assert exact > 2**31
    assert plan.assemble(res.addr, res.data)[0, 0] == wrap_int32(exact)
    del rng


def test_back_to_back_tiles_have_no_bubbles():
    p = MXUParams(4, 4, 64)
    rng = np.random.default_rng(3)
    x, w = operand(rng, (32, 16)), operand(rng, (16, 8))
    plan = schedule_gemm(x, w, p)
    assert plan.tiles == 8
    valid = np.flatnonzero(plan.trace.a_valid)
    # the activations of all tiles form one unbroken run of cycles, starting one cycle after the first weight
    assert valid[0] == 1 and np.all(np.diff(valid) == 1) and len(valid) == 8 * 32
    assert plan.predicted_cycles == 1 + 8 * 32 + p.latency


def test_late_weight_goes_to_next_swap():
    """A weight row presented after its deadline is taken by the following swap, not the current one."""
    from sim.trace import MXUTrace
    p = MXUParams(2, 1, 4)
    t = MXUTrace.empty(p, 12)
    # row 0 in time for the swap at 1
    t.w_valid[0] = 1
    t.w_row[0] = 0
    t.w_data[0] = 3
    # row 1: deadline is 1 + 1 - 1 = 1: late
    t.w_valid[2] = 1
    t.w_row[2] = 1
    t.w_data[2] = 5
    t.a_valid[1] = 1
    t.a_swap[1] = 1
    t.a_emit[1] = 1
    t.a_data[1] = [1, 1]
    t.a_valid[5] = 1
    t.a_swap[5] = 1
    t.a_emit[5] = 1
    t.a_data[5] = [1, 1]
    res = MXUModel(p).run(t)
    assert res.data[:, 0].tolist() == [3, 8]
    assert res.cycle.tolist() == [1 + p.latency, 5 + p.latency]


def test_reset_drops_in_flight_results_and_clears_weights():
    from sim.trace import MXUTrace
    p = MXUParams(1, 1, 4)
    L = p.latency
    t = MXUTrace.empty(p, 20)
    t.w_valid[0] = 1
    t.w_data[0] = 2
    for c in (1, 2):
        t.a_valid[c] = 1
        t.a_swap[c] = c == 1
        t.a_emit[c] = 1
        t.a_data[c] = 7
    t.rst[1 + L] = 1                                   # result of cycle 1 is out on 1+L; cycle 2's is not
    # weights were cleared
    t.a_valid[10] = 1
    t.a_swap[10] = 1
    t.a_emit[10] = 1
    t.a_data[10] = 7
    res = MXUModel(p).run(t)
    assert res.cycle.tolist() == [1 + L, 10 + L]
    assert res.data[:, 0].tolist() == [14, 0]


def test_schedule_rejects_bad_operands():
    p = MXUParams(2, 2)
    with pytest.raises(ValueError, match=r"x is 2×3 but w is 4×2: the inner dimensions must agree"):
        schedule_gemm(np.zeros((2, 3), np.int8), np.zeros((4, 2), np.int8), p)
    with pytest.raises(TypeError, match="x must have dtype int8, not float64"):
        schedule_gemm(np.zeros((2, 3)), np.zeros((3, 2), np.int8), p)
