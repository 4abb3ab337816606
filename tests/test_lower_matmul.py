"""compiler.lower: ``matmul`` of two activations, on the golden chip (and one run on the RTL).

Every lowered model: no fault, ChipSim's cycle count equals ``predicted_cycles``, outputs equal
``QGraph.run_int8`` exactly. Shapes cross the MXU's tile boundaries (K and N not multiples of the array's
side, M = 1 and larger); test inputs reach far past the calibration range so their codes clamp to -128 and
127. Seeded random data (the seed is printed).
"""
import math

import numpy as np
import pytest

import compiler
from compiler.ir import Graph
from compiler.lower import lower
from compiler.quantize import quantize
from spec.config import PRESETS
from tests.kernel_data import rng_for
from tests.lowering_checks import check_lowered as check

TINY, SMALL = PRESETS["tiny"], PRESETS["small"]


def extremes(rng, shape, scale=1.3):
    """Normal data with one very large and one very small value (codes 127 and -128)."""
    x = (rng.normal(size=shape) * scale).astype(np.float32)
    x.flat[0], x.flat[-1] = 1e3, -1e3
    return x


def matmul_graph(M, K, N, a_act=None, b_act=None, after=None, rng=None):
    g = Graph()
    a = g.input("a", (M, K))
    b = g.input("b", (K, N))
    if a_act:
        a = getattr(g, a_act)(a, name="act_a")
    if b_act:
        b = getattr(g, b_act)(b, name="act_b")
    y = g.matmul(a, b, name="mm")
    if after == "relu":
        y = g.relu(y, name="r")
    elif after == "linear":
        y = g.linear(y, rng.normal(size=(N, 3)) / math.sqrt(N), rng.normal(size=3) * 0.1, name="fc")
    elif after == "argmax":
        g.output(g.argmax(y, name="cls"), "cls")
    g.output(y, "y")
    return g


def calib(rng, M, K, N, n=3):
    return [{"a": rng.normal(size=(M, K)).astype(np.float32) + rng.normal(),
             "b": rng.normal(size=(K, N)).astype(np.float32) + rng.normal()} for _ in range(n)]


# ---- shapes across tile boundaries ----------------------------------------------------------------------
SHAPES = [(1, 1, 1), (1, 5, 3), (2, 4, 4), (3, 6, 5), (6, 3, 9), (5, 9, 7), (1, 8, 8), (7, 2, 1)]


@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
def test_matmul_across_tile_boundaries_tiny(shape):
    M, K, N = shape
    rng = rng_for(100 + M * 100 + K * 10 + N)
    g = matmul_graph(M, K, N)
    q = quantize(g, calib(rng, M, K, N))
    m = lower(q, TINY)
    _, codes = check(m, q, {"a": extremes(rng, (M, K)), "b": extremes(rng, (K, N))})
    for name in ("a", "b"):                              # the extremes do reach the ends of int8
        assert codes[name].min() == -128 and (codes[name].size == 1 or codes[name].max() == 127)
    assert m.matmul_items > 0


@pytest.mark.parametrize("shape", [(20, 33, 17), (40, 16, 32), (1, 20, 40)], ids=["20x33x17", "40x16x32", "1x20x40"])
def test_matmul_on_small(shape):
    """Larger shapes on ``small`` (16 x 16 MXU): more rows than the 16 bias copies, K and N tiles > 1."""
    M, K, N = shape
    rng = rng_for(7 + M + K + N)
    g = matmul_graph(M, K, N, after="relu")
    q = quantize(g, calib(rng, M, K, N))
    m = lower(q, SMALL)
    check(m, q, {"a": extremes(rng, (M, K)), "b": extremes(rng, (K, N))})


@pytest.mark.parametrize("acts", [("sigmoid", "sigmoid"), ("sigmoid", "tanh"), (None, "sigmoid")], ids=str)
def test_zero_points_of_minus_128(acts):
    """Non-negative operands (sigmoid) have zp = -128, so -zp = 128 is split into two int8 parts."""
    rng = rng_for(21)
    M, K, N = 3, 6, 5
    g = matmul_graph(M, K, N, *acts)
    q = quantize(g, calib(rng, M, K, N))
    st = q.step("mm")
    if acts[0] == "sigmoid":
        assert st.params["zp_a"] == -128
    if acts[1] == "sigmoid":
        assert st.params["zp_b"] == -128
    check(lower(q, TINY), q, {"a": extremes(rng, (M, K)), "b": extremes(rng, (K, N))})


def test_zero_points_of_zero():
    """Calibration ranges of exactly [-128, 127] give zp = 0: no correction for that operand."""
    rng = rng_for(22)
    M, K, N = 4, 5, 6
    g = matmul_graph(M, K, N)
    cal = calib(rng, M, K, N, n=1)[0]
    cal["a"].flat[:2] = -128.0, 127.0
    cal["a"] = np.clip(cal["a"], -128, 127)
    q = quantize(g, cal)
    assert q.step("mm").params["zp_a"] == 0
    check(lower(q, TINY), q, {"a": extremes(rng, (M, K), 50), "b": extremes(rng, (K, N))})
    cal["b"].flat[:2] = -128.0, 127.0
    cal["b"] = np.clip(cal["b"], -128, 127)
    q = quantize(g, cal)
    assert q.step("mm").params["zp_a"] == 0 and q.step("mm").params["zp_b"] == 0
    check(lower(q, TINY), q, {"a": extremes(rng, (M, K), 50), "b": extremes(rng, (K, N), 50)})


@pytest.mark.parametrize("after", ["relu", "linear", "argmax"])
def test_matmul_followed_by(after):
    rng = rng_for(23)
    M, K, N = 3, 7, 4 if after == "argmax" else 6
    g = matmul_graph(M, K, N, after=after, rng=rng)
    q = quantize(g, calib(rng, M, K, N))
    if after == "relu":
        assert q.step("r").fused == ("mm", "r")          # a fused ReLU
    check(lower(q, TINY), q, {"a": extremes(rng, (M, K)), "b": extremes(rng, (K, N))})


def test_computed_operands_and_chained_matmuls():
    """Operands computed on the chip (linear, tanh), batch-dependent rows, and ``(a @ b) @ c``."""
    rng = rng_for(24)
    g = Graph()
    x = g.input("x", (None, 6))
    y = g.input("y", (5, 7))
    c = g.input("c", (7, 3))
    h = g.tanh(g.linear(x, rng.normal(size=(6, 5)) / math.sqrt(6), name="fc"), name="t")
    p = g.matmul(h, g.relu(y, name="ry"), name="mm1")
    g.output(g.matmul(p, c, name="mm2"), "z")
    g.output(p, "p")
    cal = {"x": rng.normal(size=(64, 6)).astype(np.float32), "y": rng.normal(size=(5, 7)).astype(np.float32),
           "c": rng.normal(size=(7, 3)).astype(np.float32)}
    q = quantize(g, cal)
    m = lower(q, TINY, 4)
    check(m, q, {"x": extremes(rng, (4, 6)), "y": extremes(rng, (5, 7)), "c": extremes(rng, (7, 3))})


def test_square_operand_times_itself():
    rng = rng_for(25)
    g = Graph()
    x = g.input("x", (5, 5))
    g.output(g.matmul(x, x, name="mm"), "y")
    q = quantize(g, {"x": rng.normal(size=(5, 5)).astype(np.float32)})
    check(lower(q, TINY), q, {"x": extremes(rng, (5, 5))})


def test_b_read_in_place_as_weights():
    """K and N multiples of the array side, a and b on different MEM slices: b's words are the weight words
    (no relayout pass, no scratch copy of b)."""
    rng = rng_for(26)
    g = Graph()
    x = g.input("x", (4, 16))
    y = g.input("y", (16, 32))
    a = g.linear(x, rng.normal(size=(16, 16)) / 4, name="fc")
    g.output(g.matmul(a, y, name="mm"), "z")
    q = quantize(g, {"x": rng.normal(size=(4, 16)).astype(np.float32),
                     "y": rng.normal(size=(16, 32)).astype(np.float32)})
    m = lower(q, SMALL)
    regions = {r.name: r for _, r in m.regions}
    assert not set(regions["'fc'"].slices) & set(regions["input 'y'"].slices)
    assert "b of 'mm' as weights" not in regions
    assert not any(ins.vop == "mul" for _, _, ins in m.program.instructions("VOP"))
    check(m, q, {"x": extremes(rng, (4, 16)), "y": extremes(rng, (16, 32))})


# ---- cost ----------------------------------------------------------------------------------------------
def test_matmul_items_follow_the_documented_cost():
    """MATMUL items = Nt·Kt·(1 + n_b)·(M + n_a·reps) with n_a, n_b the int8 parts of -zp_a, -zp_b."""
    rng = rng_for(27)
    M, K, N = 3, 6, 5
    g = matmul_graph(M, K, N, "relu", None)
    q = quantize(g, calib(rng, M, K, N))
    st = q.step("mm")
    n_a = 2 if st.params["zp_a"] == -128 else int(st.params["zp_a"] != 0)
    n_b = 2 if st.params["zp_b"] == -128 else int(st.params["zp_b"] != 0)
    m = lower(q, TINY)
    Kt, Nt, reps = 2, 2, M
    assert m.matmul_items == Nt * Kt * (1 + n_b) * (M + n_a * reps)


# ---- errors --------------------------------------------------------------------------------------------
def test_matmul_needs_a_square_mxu():
    g = matmul_graph(2, 3, 4)
    q = quantize(g, {"a": np.ones((2, 3), np.float32), "b": np.ones((3, 4), np.float32)})
    rect = TINY.replace(name="tiny-rect", mxu_cols=2)
    with pytest.raises(NotImplementedError, match="matmul 'mm': .*square MXU"):
        lower(q, rect)


def test_matmul_too_big_names_the_tensor():
    rng = rng_for(28)
    M, K, N = 17, 20, 18
    q = quantize(matmul_graph(M, K, N), calib(rng, M, K, N))
    with pytest.raises(ValueError, match="of 'mm'.*needs .* words of MEM.*short by"):
        lower(q, TINY)


# ---- the torch front end and the RTL -------------------------------------------------------------------
def test_torch_matmul_through_compile():
    torch = pytest.importorskip("torch")
    from compiler.frontend_torch import from_torch

    class Mix(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(6, 5)

        def forward(self, x, y):
            return torch.relu(self.fc(x)) @ y

    torch.manual_seed(0)
    model = Mix().eval()
    rng = rng_for(29)
    inputs = {"x": rng.normal(size=(4, 6)).astype(np.float32), "y": rng.normal(size=(5, 3)).astype(np.float32)}
    g = from_torch(model, inputs, dynamic_batch=False)      # matmul's right operand needs its rows known
    assert [n.op for n in g.nodes].count("matmul") == 1
    cp = compiler.compile(g, inputs, config="tiny", calibration=[inputs, {k: v * 1.5 for k, v in inputs.items()}])
    test = {"x": extremes(rng, (4, 6)), "y": extremes(rng, (5, 3))}
    r = cp.run(test, backend="golden")
    assert r.cycles == cp.predicted_cycles
    want = cp.qgraph.run_int8(test)
    np.testing.assert_array_equal(r.outputs["output"], want["output"])
    with torch.no_grad():                                   # and near the float model on in-range data
        f = model(torch.from_numpy(inputs["x"]), torch.from_numpy(inputs["y"])).numpy()
    got = cp.run(inputs).outputs["output"]
    deq = cp.qgraph.dequantize(cp.qgraph.outputs["output"], got)
    assert np.abs(deq - f).max() <= 0.1 * np.abs(f).max() + 0.05


def test_matmul_on_the_rtl_takes_the_predicted_cycles():
    """One compiled matmul on the chip RTL (Verilator, config tiny): equal to golden word for word."""
    rng = rng_for(30)
    M, K, N = 3, 6, 5
    g = matmul_graph(M, K, N, "relu", None, after="relu")
    cal = calib(rng, M, K, N)
    test = {"a": extremes(rng, (M, K)), "b": extremes(rng, (K, N))}
    cp = compiler.compile(g, test, config="tiny", calibration=cal)
    r = cp.run(test, backend="verilator")                   # raises unless the RTL equals golden word for word
    assert r.match and r.cycles == cp.predicted_cycles
    np.testing.assert_array_equal(r.outputs["y"], cp.qgraph.run_int8(test)["y"])
