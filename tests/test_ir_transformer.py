"""compiler.ir's transformer ops (issue 10, float only): references equal to torch's, shape errors pinned (one
line naming the op, the node and what is allowed), fuse_attention, and compiler.quantize refusing them."""
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from compiler.ir import TRANSFORMER_OPS, Graph, fuse_attention
from compiler.lower import lower
from compiler.quantize import quantize
from spec.config import PRESETS
from tests.lowering_checks import check_lowered

TOL = 1e-5


def raises(exc, text):
    return pytest.raises(exc, match="^" + re.escape(text) + "$")


@pytest.fixture
def rng():
    return np.random.default_rng(20240610)


def close(got, want, atol=TOL):
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else want
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=atol)


# ---- references ----------------------------------------------------------------------------------------
def test_references_equal_torch(rng):
    g = Graph()
    x = g.input("x", (None, 2, 5, 8))
    kv = g.input("kv", (None, 2, 7, 8))
    w, b, c = rng.normal(size=8), rng.normal(size=8), rng.normal(size=(5, 8))
    W, bias = rng.normal(size=(8, 3)), rng.normal(size=3)
    mask = rng.random((5, 8)) < 0.3
    built = {
        "softmax": g.softmax(x), "layernorm": g.layernorm(x, w, b, eps=1e-5), "layernorm_plain": g.layernorm(x),
        "rmsnorm": g.rmsnorm(x, w, eps=1e-6), "rmsnorm_plain": g.rmsnorm(x), "mul": g.mul(x, x),
        "mul_c": g.mul(x, c), "mul_s": g.mul(x, 0.5), "neg": g.neg(x), "silu": g.silu(x),
        "transpose": g.transpose(x, 1, 2), "slice": g.slice(x, 2, 6),
        "rotate": g.concat([g.neg(g.slice(x, 4, 8)), g.slice(x, 0, 4)]), "rotate_half": g.rotate_half(x),
        "masked": g.masked_fill(x, mask, -7.5), "causal": g.attention(x, x, x),
        "cross": g.attention(x, kv, g.slice(kv, 0, 3), causal=False, scale=0.3),
        "bmm": g.matmul(x, g.transpose(kv, -1, -2)), "linear": g.linear(x, W, bias), "add_c": g.add(x, c),
        "heads": g.reshape(g.transpose(x, 1, 2), (-1, 5, 16)),
    }
    for name, t in built.items():
        g.output(t, name)
    X = rng.normal(size=(3, 2, 5, 8)).astype(np.float32) * 2
    KV = rng.normal(size=(3, 2, 7, 8)).astype(np.float32)
    out = g.run_float({"x": X, "kv": KV})
    tx, tkv = torch.from_numpy(X), torch.from_numpy(KV)
    f32 = lambda a: torch.from_numpy(np.asarray(a, np.float32))                 # noqa: E731
    want = {
        "softmax": F.softmax(tx, -1), "layernorm": F.layer_norm(tx, (8,), f32(w), f32(b), 1e-5),
        "layernorm_plain": F.layer_norm(tx, (8,)), "rmsnorm": F.rms_norm(tx, (8,), f32(w), 1e-6),
        "rmsnorm_plain": F.rms_norm(tx, (8,), eps=1e-5), "mul": tx * tx, "mul_c": tx * f32(c), "mul_s": tx * 0.5,
        "neg": -tx, "silu": F.silu(tx), "transpose": tx.transpose(1, 2), "slice": tx[..., 2:6],
        "rotate": torch.cat((-tx[..., 4:], tx[..., :4]), dim=-1),
        "rotate_half": torch.cat((-tx[..., 4:], tx[..., :4]), dim=-1),
        "masked": tx.masked_fill(torch.from_numpy(mask), -7.5),
        "causal": F.scaled_dot_product_attention(tx, tx, tx, is_causal=True),
        "cross": F.scaled_dot_product_attention(tx, tkv, tkv[..., :3], scale=0.3),
        "bmm": tx @ tkv.transpose(-1, -2), "linear": tx @ f32(W) + f32(bias), "add_c": tx + f32(c),
        "heads": tx.transpose(1, 2).reshape(3, 5, 16),
    }
    assert set(out) == set(want)
    for name in want:
        close(out[name], want[name])
    shapes = {name: t.shape for name, t in built.items()}
    assert shapes["transpose"] == (None, 5, 2, 8) and shapes["cross"] == (None, 2, 5, 3)
    assert shapes["bmm"] == (None, 2, 5, 7) and shapes["linear"] == (None, 2, 5, 3)
    assert shapes["heads"] == (None, 5, 16) and shapes["slice"] == (None, 2, 5, 4)
    assert set(TRANSFORMER_OPS) == {"softmax", "layernorm", "rmsnorm", "mul", "neg", "silu", "transpose", "concat",
                                    "slice", "masked_fill", "attention", "rotate_half"}


def test_minus_inf_masks_and_large_inputs_stay_finite_where_torch_does():
    g = Graph()
    x = g.input("x", (None, 4, 4))
    causal = np.triu(np.ones((4, 4), bool), 1)
    g.output(g.softmax(g.masked_fill(x, causal, float("-inf"))), "p")
    g.output(g.silu(x), "silu")
    X = np.array([[[1000, -1000, 0, 3]] * 4], np.float32)
    with np.errstate(over="raise"):
        out = g.run_float({"x": X})
    tx = torch.from_numpy(X)
    close(out["p"], F.softmax(tx.masked_fill(torch.from_numpy(causal), float("-inf")), -1))
    close(out["silu"], F.silu(tx))


# ---- shape and type errors -----------------------------------------------------------------------------
def test_shape_errors_name_the_node_and_what_is_allowed():
    g = Graph()
    x = g.input("x", (None, 4, 8))
    y = g.input("y", (None, 4, 6))
    s = g.input("s", (4, 8))
    ids = g.input("ids", (4,), dtype="int32")
    k2 = g.input("k2", (2, 8))
    cases = [
        (lambda: g.softmax(x, axis=1, name="sm"), ValueError,
         "softmax 'sm': axis must be the last one (-1 or 2) for x of shape (None, 4, 8), not 1"),
        (lambda: g.softmax(ids, name="sm"), TypeError, "softmax 'sm': x must be a float32 tensor, not int32 ('ids')"),
        (lambda: g.layernorm(x, np.ones(4), name="ln"), ValueError,
         "layernorm 'ln': weight must have shape (8,) (the last axis of x), not (4,)"),
        (lambda: g.layernorm(x, eps=0, name="ln"), ValueError, "layernorm 'ln': eps must be > 0, not 0.0"),
        (lambda: g.rmsnorm(x, eps="small", name="rms"), TypeError, "rmsnorm 'rms': eps must be a number, not 'small'"),
        (lambda: g.mul(x, y, name="m"), ValueError,
         "mul 'm': b must be a tensor of shape (None, 4, 8) (a's) or a constant, not a tensor of shape (None, 4, 6)"),
        (lambda: g.mul(x, np.ones((4, 1)), name="m"), ValueError,
         "mul 'm': b must be a constant of shape (), (None, 4, 8), (4, 8) or (8,) (or a tensor of a's shape), "
         "not (4, 1)"),
        (lambda: g.add(x, np.ones((3, 8)), name="a"), ValueError,
         "add 'a': b must have shape (None, 4, 8), (4, 8) or (8,), not (3, 8)"),
        (lambda: g.add(x, y, name="a"), ValueError,
         "add 'a': b must have shape (None, 4, 8) or (8,), not (None, 4, 6)"),
        (lambda: g.transpose(x, 0, 2, name="t"), ValueError,
         "transpose 't': the None batch axis 0 must stay first: axes must be in 1 … 2 for x of shape (None, 4, 8), "
         "not 0 and 2"),
        (lambda: g.transpose(x, 1, -2, name="t"), ValueError,
         "transpose 't': axis0 and axis1 must differ, not 1 and -2"),
        (lambda: g.transpose(x, 1, 3, name="t"), ValueError,
         "transpose 't': axis must be in -3 … 2 for x of shape (None, 4, 8), not 3"),
        (lambda: g.concat([x, s], name="c"), ValueError,
         "concat 'c': every tensor must have shape (None, 4, N) (xs[0]'s but the last axis), not xs[1] (4, 8)"),
        (lambda: g.concat([x, y], axis=1, name="c"), ValueError,
         "concat 'c': axis must be the last one (-1 or 2) for x of shape (None, 4, 8), not 1"),
        (lambda: g.concat([], name="c"), TypeError, "concat 'c': xs must be a non-empty list of tensors, not []"),
        (lambda: g.slice(x, 4, 4, name="sl"), ValueError,
         "slice 'sl': start and stop must be ints with 0 <= start < stop <= 8 (the last axis of x (None, 4, 8)), "
         "not 4 and 4"),
        (lambda: g.slice(x, 0, 9, name="sl"), ValueError,
         "slice 'sl': start and stop must be ints with 0 <= start < stop <= 8 (the last axis of x (None, 4, 8)), "
         "not 0 and 9"),
        (lambda: g.masked_fill(x, np.ones((4, 8)), 0.0, name="mf"), TypeError,
         "masked_fill 'mf': mask must be a bool array, not float64"),
        (lambda: g.masked_fill(x, np.ones((8, 4), bool), 0.0, name="mf"), ValueError,
         "masked_fill 'mf': mask must have shape (None, 4, 8), (4, 8) or (8,), not (8, 4)"),
        (lambda: g.masked_fill(x, np.ones(8, bool), float("nan"), name="mf"), ValueError,
         "masked_fill 'mf': value must be a finite number, not nan"),
        (lambda: g.attention(x, y, y, name="at"), ValueError,
         "attention 'at': q, k, v must be (…, T, d), (…, S, d), (…, S, e) with the same leading dimensions, not "
         "q (None, 4, 8), k (None, 4, 6), v (None, 4, 6)"),
        (lambda: g.attention(x, s, s, name="at"), ValueError,
         "attention 'at': q, k, v must be (…, T, d), (…, S, d), (…, S, e) with the same leading dimensions, not "
         "q (None, 4, 8), k (4, 8), v (4, 8)"),
        (lambda: g.attention(s, k2, k2, name="at"), ValueError,
         "attention 'at': causal attention needs as many queries as keys, not 4 and 2"),
        (lambda: g.attention(x, x, x, causal=1, name="at"), TypeError,
         "attention 'at': causal must be True or False, not 1"),
        (lambda: g.attention(ids, x, x, name="at"), TypeError,
         "attention 'at': q must be a float32 tensor, not int32 ('ids')"),
        (lambda: g.matmul(x, s, name="mm"), ValueError,
         "matmul 'mm': a and b must have the same leading (batch) dimensions, not a (None, 4, 8) and b (4, 8)"),
        (lambda: g.matmul(x, x, name="mm"), ValueError,
         "matmul 'mm': a has 8 columns but b has 4 rows (a (None, 4, 8), b (None, 4, 8))"),
        (lambda: g.matmul(ids, s, name="mm"), TypeError, "matmul 'mm': a must be a float32 tensor, not int32 ('ids')"),
        (lambda: g.linear(x, np.ones((6, 2)), name="fc"), ValueError,
         "linear 'fc': x has 8 features but W has 6 rows (x (None, 4, 8), W (6, 2); W is (in, out): torch's weight "
         "is (out, in))"),
    ]
    before = [n.name for n in g.nodes]
    for build, exc, text in cases:
        with raises(exc, text):
            build()
    assert [n.name for n in g.nodes] == before              # a refused op adds no node
    v = g.input("v", (8,))
    with raises(ValueError, "matmul 'mm': a must be 2-D or more (…, rows, columns), not shape (8,)"):
        g.matmul(v, s, name="mm")


# ---- fuse_attention ------------------------------------------------------------------------------------
def attention_pieces(mask=None, value=float("-inf"), scale=0.25, also_out=None):
    """q @ kᵀ · scale, masked_fill, softmax, @ v on heads split from (None, 4, 8) (2 heads of 4)."""
    g = Graph()
    x = g.input("x", (None, 4, 8))
    heads = {n: g.transpose(g.reshape(g.linear(x, np.eye(8) * (i + 1)), (-1, 4, 2, 4)), 1, 2, name=n)
             for i, n in enumerate("qkv")}
    kt = g.transpose(heads["k"], -2, -1, name="kt")
    s = g.mul(g.matmul(heads["q"], kt, name="scores"), scale, name="scaled")
    if mask is not False:
        s = g.masked_fill(s, np.triu(np.ones((4, 4), bool), 1) if mask is None else mask, value, name="masked")
    p = g.softmax(s, name="probs")
    y = g.reshape(g.transpose(g.matmul(p, heads["v"], name="att"), 1, 2), (-1, 4, 8), name="y")
    g.output(y, "y")
    if also_out is not None:
        g.output(g.tensor(also_out), also_out)
    return g


def test_fuse_attention_replaces_the_pattern_and_keeps_the_values(rng):
    X = {"x": rng.normal(size=(3, 4, 8)).astype(np.float32)}
    for mask, causal in ((None, True), (False, False)):
        g = attention_pieces(mask=mask)
        f = fuse_attention(g)
        assert [n.op for n in f.nodes].count("attention") == 1 and "softmax" not in [n.op for n in f.nodes]
        att = f.node("att")
        assert att.op == "attention" and att.inputs == ("q", "k", "v") and att.attrs == {"causal": causal,
                                                                                           "scale": 0.25}
        assert list(f.outputs) == ["y"] and f.outputs["y"].shape == (None, 4, 8)
        close(f.run_float(X)["y"], g.run_float(X)["y"], atol=1e-6)
    # a -1e9 fill counts as -inf; the transposed k stays when it is also read elsewhere
    f = fuse_attention(attention_pieces(value=-1e9, also_out="kt"))
    assert f.node("att").op == "attention" and f.node("kt").op == "transpose" and list(f.outputs) == ["y", "kt"]


def test_fuse_attention_leaves_other_patterns_alone():
    lower = np.tril(np.ones((4, 4), bool), -1)
    for g in (attention_pieces(also_out="probs"), attention_pieces(mask=lower), attention_pieces(value=-100.0),
              attention_pieces(scale=-0.25), attention_pieces(also_out="scores")):
        assert fuse_attention(g) is g


# ---- quantization refuses them -------------------------------------------------------------------------
def test_quantize_refuses_the_transformer_ops_naming_the_node(rng):
    builders = {        # softmax, the norms, mul, causal attention, transpose, slice, rotate_half: int8 rules
        "concat": lambda g, x: g.concat([x, x], name="attn.softmax"),
        "masked_fill": lambda g, x: g.masked_fill(x, np.eye(8, dtype=bool)[:4], 0.0, name="attn.softmax"),
        "neg": lambda g, x: g.neg(x, name="attn.softmax"),
    }
    calib = {"x": rng.normal(size=(2, 4, 8)).astype(np.float32)}
    for op, build in builders.items():
        g = Graph()
        x = g.input("x", (None, 4, 8))
        g.output(g.relu(build(g, x)), "y")
        with raises(NotImplementedError, f"{op} 'attn.softmax': int8 quantization of {op} is not implemented yet "
                                         f"(issue 10)"):
            quantize(g, calib)
    g = Graph()
    x = g.input("x", (None, 4, 8))
    g.output(g.attention(x, x, x, causal=False, name="enc"), "y")
    with raises(NotImplementedError, "attention 'enc': int8 attention is causal only (a decoder), not causal=False"):
        quantize(g, calib)
    g = Graph()
    x = g.input("x", (None, 4, 8))
    g.output(g.matmul(x, g.reshape(x, (-1, 8, 4)), name="bmm"), "y")
    with raises(NotImplementedError, "matmul 'bmm': int8 quantization of a batched (3-D) matmul is not "
                                     "implemented yet (issue 10)"):
        quantize(g, calib)


def test_linear_on_3d_and_a_broadcast_constant_add_still_quantize(rng):
    g = Graph()
    x = g.input("x", (None, 4, 8))
    h = g.add(g.linear(x, rng.normal(size=(8, 6)), rng.normal(size=6)), rng.normal(size=(4, 6)), name="pos")
    g.output(g.relu(h), "y")
    calib = [{"x": rng.normal(size=(16, 4, 8)).astype(np.float32)} for _ in range(2)]
    qg = quantize(g, calib)
    X = {"x": rng.normal(size=(5, 4, 8)).astype(np.float32)}
    deq, ref = qg.run_dequantized(X)["y"], g.run_float(X)["y"]
    assert deq.shape == (5, 4, 6) and np.max(np.abs(deq - ref)) < 0.05 * np.ptp(ref)


def test_linear_on_3d_lowers_and_equals_the_int8_reference(rng):
    """A linear on (None, T, D) (what nn.Linear on 3-D traces to) lowers as it is: the rows are every leading
    axis; on golden, the cycles equal the prediction and the outputs run_int8."""
    g = Graph()
    ids = g.input("ids", (None, 5), dtype="int64")
    h = g.relu(g.linear(g.embedding(ids, rng.normal(size=(11, 6))), rng.normal(size=(6, 7)), rng.normal(size=7)))
    g.output(g.linear(h, rng.normal(size=(7, 3)), name="head"), "logits")
    q = quantize(g, {"ids": rng.integers(0, 11, size=(64, 5))})
    m = lower(q, PRESETS["tiny"], 3)
    got, _ = check_lowered(m, q, {"ids": rng.integers(0, 11, size=(3, 5))})
    assert got["logits"].shape == (3, 5, 3)
