"""compiler.quantize: the int8 scheme, its integer parameters, and run_int8 against the float reference."""
import math
import re
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.ir import Graph
from compiler.quantize import QParams, quantize, quantize_weights, requant_multipliers, requantv, round_half_away
from golden import vxu as gvxu
from golden.mxu import matmul

SEED = 20240611
MULT_MAX = 2 ** 31 - 1


def raises(exc, text):
    return pytest.raises(exc, match=re.escape(text))


def mlp_graph(rng, dims=(64, 32, 10)):
    g = Graph()
    x = g.input("x", (None, dims[0]))
    h = x
    for i, (k, n) in enumerate(zip(dims[:-1], dims[1:])):
        h = g.linear(h, rng.normal(size=(k, n)) / math.sqrt(k), rng.normal(size=n) * 0.1, name=f"fc{i + 1}")
        if i < len(dims) - 2:
            h = g.relu(h, name=f"relu{i + 1}")
    g.output(h, "logits")
    g.output(g.argmax(h, name="cls"), "cls")
    return g


@pytest.fixture(scope="module")
def mlp():
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED)
    g = mlp_graph(rng)
    calib = rng.normal(size=(2000, 64)).astype(np.float32)
    test = rng.normal(size=(1000, 64)).astype(np.float32)
    return g, quantize(g, {"x": calib}), test


def requant_steps(q):
    return [s for s in q.steps if "requant" in s.params]


# ---- arithmetic helpers --------------------------------------------------------------------------------
def test_round_half_away_is_exact_on_ties():
    v = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49999999999999994, -0.49999999999999994, 3.2, -3.7])
    assert round_half_away(v).tolist() == [-3, -2, -1, 1, 2, 3, 0, 0, 3, -4]


def test_requantv_is_golden_requant_per_lane():
    rng = np.random.default_rng(SEED)
    a = rng.integers(-2 ** 31, 2 ** 31, size=(50, 6)).astype(np.int32)
    a[0] = [0, 1, -1, 2 ** 31 - 1, -2 ** 31, 3]
    mult = rng.integers(1, 2 ** 31, size=6)
    for shift, zp in ((0, 0), (7, -128), (31, 5)):
        got = requantv(a, mult, shift, zp)
        want = np.stack([gvxu.requant(a[:, c], int(mult[c]), shift, zp) for c in range(6)], axis=1)
        assert got.dtype == np.int32 and np.array_equal(got, want)
    with raises(ValueError, "mult must hold values in 1 … 2147483647, not 0 … 0"):
        requantv(a, np.zeros(6, np.int64), 0, 0)
    with raises(ValueError, "shift must be an integer between 0 and 31, not 32"):
        requantv(a, mult, 32, 0)


def test_requant_multipliers_take_the_largest_shift():
    real = np.array([0.3, 0.0071, 1e-12, 0.2999999])
    mult, shift = requant_multipliers(real)
    assert 0 <= shift <= 31 and mult.min() >= 1 and mult.max() <= MULT_MAX
    assert round_half_away(real.max() * 2.0 ** (32 + shift)) > MULT_MAX       # one more would overflow
    assert abs(mult[0] / 2 ** (31 + shift) / real[0] - 1) < 2 ** -30
    assert mult[2] == 1                                                        # would round to 0
    assert requant_multipliers([1e-15])[1] == 31
    with raises(ValueError, "requant: real multipliers must be in (0, 1), not 0.5 … 1.0"):
        requant_multipliers([0.5, 1.0])


def test_qparams_and_weights():
    assert QParams.from_range(0.0, 2.55) == QParams(2.55 / 255, -128)         # non-negative: all 256 codes
    p = QParams.from_range(-1.0, 1.0)
    assert p.zp in (-1, 0) and p.scale == pytest.approx(2 / 255)
    assert QParams.from_range(0, 0) == QParams(1 / 255, -128)
    assert QParams.from_range(-2.55, -1.0).zp == 127                          # 0 is always in range
    assert p.quantize([-5.0, 5.0]).tolist() == [-128, 127] and p.quantize([0.0]).dtype == np.int8
    assert p.dequantize(p.quantize([0.0]))[0] == 0.0
    W = np.array([[1.0, 0.0, -0.5], [-2.0, 0.0, 0.25]])
    Wq, s = quantize_weights(W)
    assert Wq.dtype == np.int8 and Wq.tolist() == [[64, 0, -127], [-127, 0, 64]]
    assert s.tolist() == [2 / 127, 2 / 127 * 2.0**-16, 0.5 / 127]      # the zero column: the floor


# ---- the quantized MLP -----------------------------------------------------------------------------------
def test_mlp_int8_tracks_float(mlp):
    g, q, X = mlp
    f = g.run_float({"x": X})
    r = q.run_int8({"x": X})
    agree = float(np.mean(f["cls"] == r["cls"]))
    logits = q.dequantize("logits", r["logits"])
    rel = np.linalg.norm(logits - f["logits"]) / np.linalg.norm(f["logits"])
    print(f"seed {SEED}: argmax agreement {agree:.3f}, relative error {rel:.4f}")
    assert agree >= 0.90
    assert rel < 0.05
    assert np.median(np.abs(logits - f["logits"])) < 2 * q.params_of("logits").scale
    assert np.array_equal(r["cls"], np.argmax(r["logits"], axis=1))          # argmax of the int8 codes
    assert [(s.op, s.fused) for s in q.steps] == [("input", ("x",)), ("linear", ("fc1", "relu1")),
                                                  ("linear", ("fc2",)), ("argmax", ("cls",))]


def test_run_int8_is_deterministic_integer_and_in_range(mlp):
    g, q, X = mlp
    a = q.run_int8({"x": X}, tensors=True)
    b = q.run_int8({"x": X.copy()}, tensors=True)
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name])
    for name in ("x", "relu1", "fc2"):
        assert a[name].dtype == np.int8
    assert a["cls"].dtype == np.int32
    assert a["relu1"].min() >= -128 and q.qparams["relu1"].zp == -128         # fused ReLU: zero point -128


def test_requant_parameters_are_in_their_documented_ranges(mlp):
    _, q, _ = mlp
    for s in requant_steps(q):
        r = s.requant
        assert r.mult.dtype == np.int64 and r.mult.min() >= 1 and r.mult.max() <= MULT_MAX
        assert 0 <= r.shift <= 31 and -128 <= r.zp <= 127
        # the largest shift: one more would push the largest multiplier past 2**31 - 1
        assert r.shift == 31 or round_half_away(r.real.max() * 2.0 ** (32 + r.shift)) > MULT_MAX
        np.testing.assert_allclose(r.mult / 2.0 ** (31 + r.shift), r.real, rtol=2 ** -29)
        if s.op == "linear":
            x = s.inputs[0]
            want = q.qparams[x].scale * s.w_scale / q.qparams[s.name].scale
            np.testing.assert_allclose(r.real, want, rtol=1e-12)
            assert s.W.dtype == np.int8 and s.W.min() >= -127 and s.bias.dtype == np.int32


def test_linear_step_equals_exact_integer_arithmetic(mlp):
    """fc2 recomputed with Python integers and exact fractions: the documented formula, bit for bit."""
    g, q, X = mlp
    t = q.run_int8({"x": X[:20]}, tensors=True)
    s = q.step("fc2")
    r = s.requant
    qx = t["relu1"].astype(int)
    for i in range(20):
        for c in range(10):
            acc = sum(int(qx[i, k]) * int(s.W[k, c]) for k in range(32)) + int(s.bias[c])
            v = Fraction(acc * int(r.mult[c]), 2 ** (31 + r.shift))
            rounded = math.floor(abs(v) + Fraction(1, 2)) * (1 if v >= 0 else -1)
            assert t["fc2"][i, c] == max(-128, min(127, r.zp + rounded))
    # and with the golden units directly
    acc = gvxu.add(matmul(t["relu1"], s.W), np.broadcast_to(s.bias, (20, 10)))
    assert np.array_equal(t["fc2"], requantv(acc, r.mult, r.shift, r.zp))


def test_bias_folds_the_input_zero_point(mlp):
    g, q, _ = mlp
    s = q.step("relu1")                       # fc1 + relu1, input x with a non-zero zero point
    n = g.node("fc1")
    px = q.qparams["x"]
    want = round_half_away(n.attrs["b"].astype(np.float64) / (px.scale * s.w_scale)) - px.zp * s.W.astype(
        np.int64).sum(axis=0)
    assert np.array_equal(s.bias, want)


def test_summary_and_dequantize(mlp):
    g, q, X = mlp
    text = q.summary()
    assert repr(q) == text
    assert f"{q.weight_bytes} bytes" in text and "fc1+relu1" in text and "shift" in text and "zp=-128" in text
    assert q.weight_bytes == 64 * 32 + 4 * 32 * 2 + 32 * 10 + 4 * 10 * 2
    idx = np.array([3, 1])
    assert np.array_equal(q.dequantize("cls", idx), idx)
    p = q.params_of("logits")
    assert q.dequantize("logits", np.array([p.zp + 2], np.int8))[0] == pytest.approx(2 * p.scale, rel=1e-6)
    with raises(KeyError, "name must be an output or a tensor of the quantized graph, not 'nope'"):
        q.dequantize("nope", idx)


# ---- other ops -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("op, lo, hi", [("tanh", -3, 3), ("sigmoid", -6, 6), ("gelu", -4, 4), ("exp", -4, 2)])
def test_table_activation_within_one_int8_step(op, lo, hi):
    g = Graph()
    x = g.input("x", (None, 8))
    g.output(getattr(g, op)(x, name="act"), "y")
    rng = np.random.default_rng(SEED)
    X = rng.uniform(lo, hi, size=(256, 8)).astype(np.float32)
    q = quantize(g, {"x": X})
    s = q.step("act")
    assert s.op == "table" and s.table.dtype == np.int8 and s.table.shape == (256,)
    px, py = q.qparams["x"], q.qparams["act"]
    codes = np.arange(-128, 128)
    f = g.run_float({"x": px.dequantize(codes).reshape(32, 8)})["y"].reshape(-1)
    got = py.dequantize(gvxu.lut(codes, s.table))
    assert np.abs(got - f).max() <= py.scale * 0.5 + 1e-6          # within half a step of f on the codes
    # end to end on the float inputs: the input rounding adds at most f' · s_x / 2
    y = q.run_dequantized({"x": X})["y"]
    slope = {"tanh": 1, "sigmoid": 0.25, "gelu": 1.13, "exp": math.exp(hi)}[op]
    assert np.abs(y - g.run_float({"x": X})["y"]).max() <= py.scale * 0.5 + slope * px.scale * 0.5 + 1e-5
    if op == "tanh":    # numpy's tanh of the quantized input: within one int8 step
        assert np.abs(y - np.tanh(px.dequantize(px.quantize(X)).astype(np.float64))).max() <= py.scale


def test_add_matmul_embedding_reshape_and_standalone_relu():
    rng = np.random.default_rng(SEED)
    g = Graph()
    a = g.input("a", (None, 24))
    b = g.input("b", (None, 24))
    ids = g.input("ids", (None,), dtype="int32")
    T = rng.normal(size=(50, 24))
    s = g.add(a, b, name="s")                     # tensor + tensor, different scales
    c = g.add(s, rng.normal(size=24), name="c")   # + a constant vector
    e = g.embedding(ids, T, name="e")
    m = g.matmul(g.reshape(c, (-1, 24), name="rs"), g.input("w", (24, 5)), name="mm")
    r = g.relu(m, name="r")
    g.output(m, "m")                              # m is an output: the relu is not fused
    g.output(r, "r")
    g.output(g.add(c, e, name="ce"), "ce")
    B = 64
    feeds = [{"a": rng.normal(size=(B, 24)) * 2, "b": rng.normal(size=(B, 24)) * 0.3,
              "ids": rng.integers(0, 50, size=B), "w": rng.normal(size=(24, 5))} for _ in range(3)]
    q = quantize(g, feeds[:2])
    assert q.step("r").op == "relu" and q.qparams["r"] == q.qparams["mm"]
    assert q.step("s").m_a == 2 ** 16 and 0 < q.step("s").m_b < 2 ** 16
    for name in ("mm", "ce"):
        assert q.step(name).requant.mult.min() >= 1
    f = g.run_float(feeds[2])
    d = q.run_dequantized(feeds[2])
    for name in ("m", "r", "ce"):
        scale = q.params_of(name).scale
        err = np.abs(d[name] - f[name])
        assert np.median(err) <= 2 * scale, name
        assert np.linalg.norm(d[name] - f[name]) <= 0.06 * np.linalg.norm(f[name]), name
    t = q.run_int8(feeds[2], tensors=True)
    assert np.array_equal(t["r"], np.maximum(t["mm"], q.qparams["mm"].zp))
    pe = q.qparams["e"]
    assert pe.zp == 0 and np.abs(pe.dequantize(t["e"]) - T[feeds[2]["ids"]]).max() <= pe.scale / 2 + 1e-6
    assert np.array_equal(t["ids"], feeds[2]["ids"])


def test_calibration_list_equals_one_concatenated_dict():
    rng = np.random.default_rng(SEED)
    g = mlp_graph(rng, (20, 17, 3))
    X = rng.normal(size=(90, 20)).astype(np.float32)
    q1 = quantize(g, [{"x": X[:30]}, {"x": X[30:]}])
    q2 = quantize(g, {"x": X})
    assert q1.qparams == q2.qparams
    assert np.array_equal(q1.run_int8({"x": X})["logits"], q2.run_int8({"x": X})["logits"])


def test_argmax_ties_take_the_lowest_index():
    g = Graph()
    x = g.input("x", (None, 3))
    W = np.array([[1.0, 2.0, 2.0], [0.5, 1.0, 1.0], [0.0, 0.0, 0.0]])   # columns 1 and 2 identical
    y = g.linear(x, W, name="fc")
    g.output(g.argmax(y), "cls")
    X = np.abs(np.random.default_rng(SEED).normal(size=(40, 3))).astype(np.float32) + 0.1
    r = quantize(g, {"x": X}).run_int8({"x": X})
    assert np.all(r["cls"] == 1)


def test_output_scale_is_widened_when_the_multiplier_would_reach_one():
    """y = 100·u - 100·v with u == v in calibration: a zero range; the requant multiplier must stay < 1."""
    g = Graph()
    x = g.input("x", (None, 2))
    g.output(g.linear(x, np.array([[100.0], [-100.0]]), name="fc"), "y")
    u = np.linspace(-1, 1, 33, dtype=np.float32)
    q = quantize(g, {"x": np.stack([u, u], axis=1)})
    r = q.step("fc").requant
    assert r.real.max() < 1 and r.mult.max() <= MULT_MAX and r.shift == 0
    px, w = q.qparams["x"], q.step("fc").w_scale
    assert q.qparams["fc"].scale >= px.scale * w.max()


def test_quantize_errors():
    g = Graph()
    g.input("x", (2,))
    with raises(TypeError, "graph must be a compiler.ir.Graph, not dict"):
        quantize({}, {"x": np.zeros(2)})
    with raises(ValueError, "graph must have at least one output (Graph.output), not none"):
        quantize(g, {"x": np.zeros(2)})
    g.output(g.relu(g.tensor("x")), "y")
    with raises(TypeError, "calibration must be a dict of input arrays or a non-empty list of them, not list"):
        quantize(g, [])
    g2 = Graph()
    x = g2.input("x", (None, 4))
    g2.output(g2.linear(x, np.full((4, 2), 1e-6), np.array([1e6, 0.0]), name="fc"), "y")
    with raises(ValueError, "linear 'fc': the int32 accumulator must not overflow"):
        quantize(g2, {"x": np.random.default_rng(0).normal(size=(10, 4))})


# ---- random graphs -------------------------------------------------------------------------------------
DIMS = st.sampled_from([1, 3, 15, 16, 17, 31, 32, 33, 48])


@st.composite
def chains(draw):
    """A chain of (op, out dim) steps: linear (new dim), relu, add (a constant or an earlier same-shape
    tensor)."""
    k0 = draw(DIMS)
    ops = draw(st.lists(st.tuples(st.sampled_from(["linear", "relu", "add", "add_t", "tanh"]), DIMS),
                        min_size=1, max_size=6))
    return k0, ops, draw(st.integers(0, 2 ** 32 - 1)), draw(st.integers(1, 9))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True,
          database=None)
@given(chains())
def test_random_chains_build_quantize_and_run_in_range(case):
    k0, ops, seed, batch = case
    rng = np.random.default_rng(seed)
    g = Graph()
    t = g.input("x", (None, k0))
    seen = [t]
    for op, n in ops:
        k = t.shape[-1]
        if op == "linear":
            bias = rng.normal(size=n) if rng.random() < 0.7 else None
            t = g.linear(t, rng.normal(size=(k, n)) / math.sqrt(k), bias)
        elif op == "relu":
            t = g.relu(t)
        elif op == "tanh":
            t = g.tanh(t)
        elif op == "add":
            t = g.add(t, rng.normal(size=k))
        else:
            same = [s for s in seen if s.shape[-1] == k]
            t = g.add(t, same[int(rng.integers(len(same)))])
        seen.append(t)
        if rng.random() < 0.3:
            g.output(t)
    if t.name not in {o.name for o in g.outputs.values()}:
        g.output(t)
    g.output(g.argmax(t), "cls")
    calib = {"x": rng.normal(size=(32, k0)).astype(np.float32)}
    q = quantize(g, calib)
    X = {"x": rng.normal(size=(batch, k0)).astype(np.float32) * 1.5}
    r = q.run_int8(X, tensors=True)
    assert r.keys() >= {s.name for s in q.steps}
    for s in q.steps:
        v = r[s.name]
        if s.op == "argmax":
            assert v.dtype == np.int32 and v.min() >= 0 and v.max() < t.shape[-1]
        else:
            assert v.dtype == np.int8 and v.shape[0] == batch
        if "requant" in s.params:
            rq = s.requant
            assert rq.mult.min() >= 1 and rq.mult.max() <= MULT_MAX and 0 <= rq.shift <= 31 and rq.real.max() < 1
    again = q.run_int8(X)
    for name, v in q.run_int8(X).items():
        assert np.array_equal(v, again[name])
    f = g.run_float(X)
    assert set(f) == set(again)


def test_a_nearly_dead_channel_keeps_a_usable_scale():
    """A hidden unit whose weights decayed to ~1e-42 while its bias did not (seen with weight decay):
    the channel scale is floored, the int32 bias fits, and the layer quantizes and runs."""
    from compiler.quantize import CHANNEL_SCALE_FLOOR, quantize_weights
    rng = np.random.default_rng(5)
    W = rng.normal(size=(8, 4))
    W[:, 2] = 1e-42
    Wq, s = quantize_weights(W)
    assert s[2] == pytest.approx(s.max() * CHANNEL_SCALE_FLOOR)
    assert np.all(Wq[:, 2] == 0)
    from compiler.ir import Graph
    g = Graph()
    x = g.input("x", (None, 8))
    g.output(g.linear(x, W, np.array([0.1, -0.2, 0.7, 0.0])), "y")
    q = quantize(g, {"x": rng.normal(size=(50, 8)).astype(np.float32)})
    y = q.run_int8({"x": rng.normal(size=(5, 8)).astype(np.float32)})["y"]
    assert y.dtype == np.int8 and y.shape == (5, 4)
