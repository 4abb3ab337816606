"""compiler.lower: embedding (host gather) and add of two activations, on the golden chip only.

Every lowered model: no fault, ChipSim's cycle count equals ``predicted_cycles``, outputs equal
``QGraph.run_int8`` exactly. Seeded random weights and data (the seed is printed).
"""
import math

import numpy as np
import pytest

from compiler.ir import Graph
from compiler.lower import lower
from compiler.quantize import quantize
from spec.config import PRESETS
from tests.kernel_data import rng_for
from tests.lowering_checks import check_lowered as check

TINY, SMALL = PRESETS["tiny"], PRESETS["small"]


# ---- embedding ------------------------------------------------------------------------------------------
def embed_graph(rng, V, T, D, H, n_out):
    """ids (B, T) → embedding (B, T, D) → reshape (B, T·D) → linear → relu → linear → argmax."""
    g = Graph()
    ids = g.input("ids", (None, T), dtype="int64")
    e = g.embedding(ids, rng.normal(size=(V, D)), name="emb")
    f = g.reshape(e, (-1, T * D), name="flat")
    h = g.relu(g.linear(f, rng.normal(size=(T * D, H)) / math.sqrt(T * D), rng.normal(size=H) * 0.1, name="fc1"),
               name="relu1")
    y = g.linear(h, rng.normal(size=(H, n_out)) / math.sqrt(H), rng.normal(size=n_out) * 0.1, name="fc2")
    g.output(y, "logits")
    g.output(g.argmax(y, name="cls"), "cls")
    return g


@pytest.mark.parametrize("config, V, T, D, H, n_out, batch, seed", [
    (TINY, 10, 3, 2, 8, 4, 5, 1),
    (TINY, 7, 2, 3, 5, 3, 3, 2),
    (SMALL, 50, 4, 8, 24, 10, 12, 3),
    (SMALL, 20, 3, 5, 16, 16, 7, 4),
])
def test_embedding_flatten_mlp(config, V, T, D, H, n_out, batch, seed):
    rng = rng_for(seed)
    g = embed_graph(rng, V, T, D, H, n_out)
    q = quantize(g, {"ids": rng.integers(0, V, size=(200, T))})
    m = lower(q, config, batch)
    for _ in range(2):
        check(m, q, {"ids": rng.integers(0, V, size=(batch, T))})
    # the table is gathered on the host: nothing of it in MEM, one input view of the gathered rows
    assert not any("emb" in r.name for _, r in m.regions)
    assert [shape for shape, _ in m.inputs_layout.views["ids"]] == [(batch, T * D)]


def test_embedding_as_output_and_two_tables():
    rng = rng_for(5)
    g = Graph()
    ids = g.input("ids", (None, 3), dtype="int64")
    e1 = g.embedding(ids, rng.normal(size=(9, 4)), name="emb1")
    e2 = g.embedding(ids, rng.normal(size=(9, 4)) * 3, name="emb2")
    g.output(e1, "e1")
    g.output(g.relu(g.linear(g.reshape(e2, (-1, 12), name="flat2"), rng.normal(size=(12, 6)), name="fc"),
                    name="r"), "y")
    q = quantize(g, {"ids": rng.integers(0, 9, size=(100, 3))})
    m = lower(q, TINY, 4)
    check(m, q, {"ids": rng.integers(0, 9, size=(4, 3))})


def test_embedding_ids_out_of_range():
    rng = rng_for(6)
    g = embed_graph(rng, 6, 2, 2, 4, 3)
    q = quantize(g, {"ids": rng.integers(0, 6, size=(50, 2))})
    m = lower(q, TINY, 2)
    with pytest.raises(ValueError, match="ids of input 'ids' must be in 0 … 5"):
        m.pack_inputs({"ids": np.array([[0, 6], [1, 2]])})


def test_embedding_of_chip_ids_is_refused():
    rng = rng_for(7)
    g = Graph()
    x = g.input("x", (None, 4))
    k = g.argmax(g.linear(x, rng.normal(size=(4, 4)), name="fc"), name="k")
    g.output(g.embedding(k, rng.normal(size=(4, 3)), name="emb_k"), "e")
    q = quantize(g, {"x": rng.normal(size=(50, 4)).astype(np.float32)})
    with pytest.raises(NotImplementedError, match="embedding 'emb_k'.*computed on the chip"):
        lower(q, TINY, 2)


def test_ids_as_output_is_refused():
    rng = rng_for(8)
    g = Graph()
    ids = g.input("ids", (None, 2), dtype="int64")
    g.output(g.embedding(ids, rng.normal(size=(5, 4)), name="emb"), "e")
    g.output(ids, "ids_out")
    q = quantize(g, {"ids": rng.integers(0, 5, size=(20, 2))})
    with pytest.raises(NotImplementedError, match="output 'ids_out'"):
        lower(q, TINY, 2)


# ---- add -------------------------------------------------------------------------------------------------
def residual_graph(rng, K, N, relu_after=False, out_relu=False, scale_b=1.0):
    """x → fc1, fc2 (two linears of x); add(fc1, fc2) (optionally ReLU fused) → fc3 → argmax."""
    g = Graph()
    x = g.input("x", (None, K))
    a = g.linear(x, rng.normal(size=(K, N)) / math.sqrt(K), rng.normal(size=N) * 0.1, name="fc1")
    b = g.linear(x, rng.normal(size=(K, N)) / math.sqrt(K) * scale_b, rng.normal(size=N) * 0.3, name="fc2")
    if relu_after:
        a = g.relu(a, name="ra")
    s = g.add(a, b, name="res")
    if out_relu:
        s = g.relu(s, name="rs")
    y = g.linear(s, rng.normal(size=(N, 4)) / math.sqrt(N), name="fc3")
    g.output(y, "logits")
    g.output(g.argmax(y, name="cls"), "cls")
    return g


@pytest.mark.parametrize("config, K, N, batch, relu_after, out_relu, scale_b, seed", [
    (TINY, 6, 4, 5, False, False, 1.0, 11),
    (TINY, 5, 7, 3, True, True, 0.2, 12),
    (SMALL, 20, 16, 9, False, True, 3.0, 13),
    (SMALL, 12, 37, 20, True, False, 1.0, 14),
])
def test_residual_add(config, K, N, batch, relu_after, out_relu, scale_b, seed):
    rng = rng_for(seed)
    g = residual_graph(rng, K, N, relu_after, out_relu, scale_b)
    q = quantize(g, {"x": rng.normal(size=(300, K)).astype(np.float32)})
    assert any(st.op == "add" and st.params["m_b"] is not None for st in q.steps)
    m = lower(q, config, batch)
    for _ in range(2):
        check(m, q, {"x": (rng.normal(size=(batch, K)) * 1.5).astype(np.float32)})


def test_add_outputs_and_reused_operand():
    """add(a, a), an add whose operands stay outputs, and add of a graph input with itself."""
    rng = rng_for(15)
    g = Graph()
    x = g.input("x", (None, 6))
    a = g.linear(x, rng.normal(size=(6, 6)), name="fc1")
    b = g.linear(x, rng.normal(size=(6, 6)), name="fc2")
    g.output(a, "a")
    g.output(b, "b")
    g.output(g.add(a, b, name="s1"), "s1")
    g.output(g.add(a, a, name="s2"), "s2")
    g.output(g.add(x, x, name="s3"), "s3")
    q = quantize(g, {"x": rng.normal(size=(200, 6)).astype(np.float32)})
    m = lower(q, TINY, 3)
    check(m, q, {"x": rng.normal(size=(3, 6)).astype(np.float32)})


def test_add_of_constant():
    """An add of a constant (N,) vector that is not folded into a linear (its input has two consumers)."""
    rng = rng_for(16)
    g = Graph()
    x = g.input("x", (None, 5))
    a = g.linear(x, rng.normal(size=(5, 5)), name="fc1")
    g.output(a, "a")
    g.output(g.add(a, rng.normal(size=5), name="plus"), "p")
    q = quantize(g, {"x": rng.normal(size=(200, 5)).astype(np.float32)})
    assert q.step("plus").params["m_b"] is None
    m = lower(q, TINY, 4)
    check(m, q, {"x": rng.normal(size=(4, 5)).astype(np.float32)})


def test_broadcasting_add_of_two_activations_is_refused_naming_the_node():
    """matmul is lowered now (tests/test_lower_matmul.py); an add broadcasting a (N,) activation is not."""
    g = Graph()
    a = g.input("a", (2, 3))
    b = g.input("b", (3,))
    g.output(g.add(a, b, name="plus"), "y")
    q = quantize(g, {"a": np.ones((2, 3), np.float32), "b": np.arange(3, dtype=np.float32)})
    with pytest.raises(NotImplementedError, match="add 'plus': .*same shape only"):
        lower(q, TINY)
