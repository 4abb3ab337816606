"""The row operations of issue 10 (``compiler/quantize/rows.py``, ``compiler/lower/rows.py``): int8
``layernorm``, ``rmsnorm`` and ``softmax`` over the last axis with the VXU's ``lsum``/``lmax``/``rsqrt``/``recip``.

* the int8 reference is close to float (a few output steps) on random data, affine weights included;
* every compiled program equals ``QGraph.run_int8`` bit for bit in exactly ``predicted_cycles`` on golden,
  for features below, at and past the array side (padding lanes), one row and many, random and extreme data;
* one program per op on the RTL (``-m verilator`` tests below);
* what cannot be quantized or lowered says so.
"""
import numpy as np
import pytest

from compiler.ir import Graph
from compiler.lower import lower
from compiler.quantize import quantize
from compiler.quantize.params import QParams
from compiler.quantize.rows import SOFTMAX_QP, run_softmax, softmax_params
from spec.config import PRESETS
from tests.kernel_data import rng_for
from tests.lowering_checks import check_lowered as check

CONFIGS = {"tiny": PRESETS["tiny"], "small": PRESETS["small"]}
SHAPES = [("tiny", 3, 1), ("tiny", 6, 3), ("tiny", 8, 2), ("small", 5, 1), ("small", 17, 5), ("small", 64, 1),
          ("small", 64, 16)]
OPS = ["layernorm", "layernorm_affine", "rmsnorm", "rmsnorm_affine", "softmax"]


def build(op, N, rng):
    g = Graph()
    x = g.input("x", (None, N))
    if op == "layernorm":
        y = g.layernorm(x)
    elif op == "layernorm_affine":
        y = g.layernorm(x, weight=rng.normal(1, 0.4, N), bias=rng.normal(0, 0.3, N), eps=1e-5)
    elif op == "rmsnorm":
        y = g.rmsnorm(x, eps=1e-6)
    elif op == "rmsnorm_affine":
        y = g.rmsnorm(x, weight=rng.normal(1, 0.4, N))
    else:
        y = g.softmax(x)
    g.output(y)
    return g


def calib(rng, N, loc=0.3, scale=2.0):
    return rng.normal(loc, scale, (96, N)).astype(np.float32)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("N", [6, 64])
def test_int8_reference_is_close_to_float(op, N):
    rng = rng_for(100 + N)
    g = build(op, N, rng)
    X = calib(rng, N)
    q = quantize(g, {"x": X})
    px = q.qparams["x"]
    Xd = px.dequantize(px.quantize(X))          # the float op on exactly the codes the int8 path sees
    want = g.run_float({"x": Xd})
    name = next(iter(want))
    got = q.run_dequantized({"x": X})[name]
    step = q.params_of(name).scale
    err = np.abs(got - want[name]).max()
    # an output step or two, and the rsqrt/recip table's 2**-8 relative
    limit = 2.5 * step + 2.0**-8 * np.abs(want[name]).max()
    assert err <= limit, f"{op} N={N}: max error {err:.4g} > {limit:.4g} (output step {step:.4g})"


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "-".join(map(str, s)))
def test_lowered_equals_int8_reference(op, shape):
    config, N, M = shape
    rng = rng_for(7 * N + M)
    g = build(op, N, rng)
    X = calib(rng, N)
    q = quantize(g, {"x": X})
    m = lower(q, CONFIGS[config], M)
    check(m, q, {"x": X[:M]})
    extreme = rng.choice(np.array([-1e3, 1e3, 0.0], np.float32), size=(M, N))
    check(m, q, {"x": extreme})
    check(m, q, {"x": np.zeros((M, N), np.float32)})     # a constant row: variance 0, only ε


@pytest.mark.parametrize("loc", [-3.0, 0.0, 3.0])
def test_zero_points_across_the_range(loc):
    """Calibration ranges that put the input zero point at 127, near 0 and at -128."""
    rng = rng_for(int(loc) + 40)
    for op in ("layernorm", "rmsnorm_affine", "softmax"):
        g = build(op, 20, rng)
        X = (loc + np.abs(calib(rng, 20, 0.0, 1.0)) * np.sign(loc)) if loc else calib(rng, 20)
        q = quantize(g, {"x": X.astype(np.float32)})
        m = lower(q, CONFIGS["small"], 4)
        check(m, q, {"x": X[:4].astype(np.float32)})


def test_softmax_of_one_dominant_code_and_of_ties():
    p = softmax_params(QParams(0.1, 0))
    q = np.full((3, 8), -128, np.int8)
    q[0, 3] = 127                    # one dominant: p = 1 there, 0 elsewhere
    q[1] = 5                         # all tied: 1/8 each
    q[2, :2] = 127                   # two tied at the top
    got = SOFTMAX_QP.dequantize(run_softmax(q, p))
    assert got[0, 3] == pytest.approx(1.0, abs=1 / 255) and np.all(got[0, np.arange(8) != 3] == 0)
    assert np.allclose(got[1], 1 / 8, atol=1 / 255)
    assert np.allclose(got[2, :2], 0.5, atol=1 / 255) and np.all(got[2, 2:] == 0)


def test_softmax_mask_removes_positions():
    p = softmax_params(QParams(0.05, 0))
    rng = rng_for(3)
    q = rng.integers(-128, 128, (4, 8)).astype(np.int8)
    mask = np.triu(np.ones((4, 8), bool), 1)        # row i sees positions 0 … i
    got = SOFTMAX_QP.dequantize(run_softmax(q, p, mask))
    assert np.all(got[mask] == 0)
    for i in range(4):
        assert got[i, :i + 1].sum() == pytest.approx(1.0, abs=(i + 1) / 255)


def test_layernorm_too_wide_is_refused():
    g = Graph()
    x = g.input("x", (None, 300))
    g.output(g.layernorm(x, name="ln"))
    with pytest.raises(ValueError, match=r"layernorm 'ln': the int8 layernorm takes at most 256 features .*not 300"):
        quantize(g, {"x": np.ones((2, 300), np.float32)})


def test_config_without_the_row_operations_is_refused():
    rng = rng_for(5)
    g = build("softmax", 8, rng)
    q = quantize(g, {"x": calib(rng, 8)})
    c = CONFIGS["tiny"].replace(name="norecip", vxu_ops=tuple(o for o in CONFIGS["tiny"].vxu_ops if o != "recip"))
    with pytest.raises(NotImplementedError, match=r"softmax '.*': the lowering needs the VXU operation 'recip', "
                                                   r"which config norecip lacks"):
        lower(q, c, 2)
