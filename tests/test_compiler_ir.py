"""compiler.ir: the graph builder (shape/dtype checks with pinned messages) and the float32 reference."""
import math
import re

import numpy as np
import pytest

from compiler.ir import Graph, Tensor


def raises(exc, text):
    return pytest.raises(exc, match=re.escape(text))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ---- building ------------------------------------------------------------------------------------------
def test_nodes_names_order_and_summary():
    g = Graph()
    x = g.input("x", (None, 8))
    h = g.linear(x, np.ones((8, 4)))
    r = g.relu(h, name="act")
    y = g.linear(r, np.ones((4, 3)), np.zeros(3))
    g.output(y, "logits")
    assert [n.name for n in g.nodes] == ["x", "op_1", "act", "op_3"]
    assert [n.op for n in g.nodes] == ["input", "linear", "relu", "linear"]
    assert g.node("op_1").inputs == ("x",) and g.node("act").inputs == ("op_1",)
    assert isinstance(y, Tensor) and y.shape == (None, 3) and y.dtype == "float32"
    assert [t.name for t in g.inputs] == ["x"] and g.outputs == {"logits": y}
    assert [n.name for n in g.consumers("op_1")] == ["act"]
    assert g.node("op_3").attrs["W"].dtype == np.float32
    s = g.summary()
    assert s == repr(g)
    for text in ("op_1", "linear", "(None, 4)", "W(8, 4)", "b(3,)", "output 'logits' = op_3"):
        assert text in s


def test_linear_shape_errors_are_pinned():
    g = Graph()
    x = g.input("x", (2, 32))
    with raises(ValueError, "linear 'fc2': x has 32 features but W has 64 rows"):
        g.linear(x, np.zeros((64, 10)), name="fc2")
    with raises(ValueError, "linear 'fc2': b must have shape (10,) (W has 10 columns), not (32,)"):
        g.linear(x, np.zeros((32, 10)), np.zeros(32), name="fc2")
    with raises(ValueError, "linear 'op_1': W must be 2-D (in features, out features), not shape (32,)"):
        g.linear(x, np.zeros(32))
    v = g.input("v", (32,))
    with raises(ValueError, "linear 'l': x must be 2-D (batch, features), not shape (32,)"):
        g.linear(v, np.zeros((32, 4)), name="l")
    with raises(TypeError, "linear 'l': W must be a numpy array (a constant), not a Tensor"):
        g.linear(x, x, name="l")
    with raises(ValueError, "linear 'l': W must hold finite values, not NaN or infinity"):
        g.linear(x, np.full((32, 4), np.nan), name="l")
    # a failed op adds no node and uses no name
    assert [n.name for n in g.nodes] == ["x", "v"]


def test_other_shape_and_type_errors_are_pinned():
    g = Graph()
    a = g.input("a", (4, 8))
    b = g.input("b", (6, 5))
    ids = g.input("ids", (4,), dtype="int32")
    with raises(ValueError, "matmul 'mm': a has 8 columns but b has 6 rows (a (4, 8), b (6, 5))"):
        g.matmul(a, b, name="mm")
    with raises(ValueError, "add 's': b must have shape (4, 8) or (8,), not (6, 5)"):
        g.add(a, b, name="s")
    with raises(ValueError, "add 's': b must have shape (4, 8) or (8,), not (5,)"):
        g.add(a, np.zeros(5), name="s")
    with raises(TypeError, "relu 'r': x must be a float32 tensor, not int32 ('ids')"):
        g.relu(ids, name="r")
    with raises(TypeError, "embedding 'e': ids must be an integer tensor, not float32 ('a')"):
        g.embedding(a, np.zeros((10, 3)), name="e")
    with raises(ValueError, "embedding 'e': table must be a non-empty 2-D array (vocabulary, dim), not shape (10,)"):
        g.embedding(ids, np.zeros(10), name="e")
    with raises(ValueError, "argmax 'am': axis must be in -2 … 1 for x of shape (4, 8), not 2"):
        g.argmax(a, axis=2, name="am")
    with raises(ValueError, "reshape 'rs': cannot reshape (4, 8) (32 values) to (5, 6) (30 values)"):
        g.reshape(a, (5, 6), name="rs")
    with raises(ValueError, "reshape 'rs': shape must hold at most one -1, not (-1, -1)"):
        g.reshape(a, (-1, -1), name="rs")
    with raises(ValueError, "input 'z': dtype must be one of float32, int32, int64, not 'float16'"):
        g.input("z", (3,), dtype="float16")
    with raises(ValueError, "input 'z': shape must hold ints >= 1 (None only first, for the batch), not (3, None)"):
        g.input("z", (3, None))
    with raises(ValueError, "name must be unique in the graph, not 'a' (already a node)"):
        g.relu(b, name="a")
    other = Graph().input("o", (4, 8))
    with raises(TypeError, "tanh 't': x must be a Tensor of this graph, not Tensor('o', (4, 8), float32)"):
        g.tanh(other, name="t")
    g.output(a, "out")
    with raises(ValueError, "output: name must be unique among the outputs, not 'out' (already an output)"):
        g.output(b, "out")


def test_reshape_with_a_none_batch():
    g = Graph()
    x = g.input("x", (None, 4, 4))
    assert g.reshape(x, (-1, 16)).shape == (None, 16)
    with raises(ValueError, "reshape 'r': cannot reshape (None, 4, 4) to (8, 2): with a None batch the shape "
                            "must hold one -1 and the other sizes must multiply to 16"):
        g.reshape(x, (8, 2), name="r")
    assert g.reshape(g.input("y", (2, 6)), (3, -1)).shape == (3, 4)


# ---- the float reference --------------------------------------------------------------------------------
def test_mlp_float_reference_equals_numpy(rng):
    W1, b1 = rng.normal(size=(64, 32)), rng.normal(size=32)
    W2, b2 = rng.normal(size=(32, 10)), rng.normal(size=10)
    g = Graph()
    x = g.input("x", (None, 64))
    y = g.linear(g.relu(g.linear(x, W1, b1)), W2, b2)
    g.output(y, "y")
    g.output(g.argmax(y), "cls")
    X = rng.normal(size=(7, 64)).astype(np.float32)
    out = g.run_float({"x": X})
    f32 = lambda a: np.asarray(a, np.float32)                          # noqa: E731
    want = np.maximum(X @ f32(W1) + f32(b1), 0) @ f32(W2) + f32(b2)
    np.testing.assert_allclose(out["y"], want, rtol=1e-5, atol=1e-5)
    assert out["y"].dtype == np.float32
    assert out["cls"].dtype == np.int32 and np.array_equal(out["cls"], np.argmax(want, axis=1))


def test_elementwise_matmul_add_embedding_reshape_reference(rng):
    g = Graph()
    a = g.input("a", (3, 5))
    b = g.input("b", (5, 4))
    ids = g.input("ids", (2, 3), dtype="int64")
    T = rng.normal(size=(11, 5))
    mm = g.matmul(a, b)
    g.output(g.add(mm, np.arange(4.0)), "bias")
    g.output(g.add(mm, mm), "twice")
    for op in ("tanh", "sigmoid", "gelu", "exp", "relu"):
        g.output(getattr(g, op)(a), op)
    e = g.embedding(ids, T)
    g.output(e, "emb")
    g.output(g.reshape(e, (-1, 5)), "flat")
    g.output(g.argmax(a, axis=0), "am0")
    A = rng.normal(size=(3, 5)).astype(np.float32) * 3
    B = rng.normal(size=(5, 4)).astype(np.float32)
    ids = rng.integers(0, 11, size=(2, 3))
    out = g.run_float({"a": A, "b": B, "ids": ids})
    close = lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)   # noqa: E731
    close(out["bias"], A @ B + np.arange(4.0))
    close(out["twice"], 2 * (A @ B))
    close(out["tanh"], np.tanh(A))
    close(out["sigmoid"], 1 / (1 + np.exp(-A.astype(np.float64))))
    close(out["gelu"], [[0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in row] for row in A.astype(np.float64)])
    close(out["exp"], np.exp(A))
    close(out["relu"], np.maximum(A, 0))
    close(out["emb"], T[ids])
    assert out["flat"].shape == (6, 5)
    assert np.array_equal(out["am0"], np.argmax(A, axis=0))
    # sigmoid is stable far from 0
    g2 = Graph()
    g2.output(g2.sigmoid(g2.input("x", (3,))), "s")
    with np.errstate(over="raise"):
        np.testing.assert_allclose(g2.run_float({"x": np.array([-1000, 0, 1000], np.float32)})["s"], [0, 0.5, 1])


def test_run_float_checks_its_inputs():
    g = Graph()
    x = g.input("x", (None, 4))
    ids = g.input("ids", (2,), dtype="int32")
    g.output(g.embedding(ids, np.zeros((3, 2))), "e")
    g.output(g.relu(x), "r")
    ok = {"x": np.zeros((5, 4)), "ids": np.array([0, 2])}
    assert g.run_float(ok)["r"].shape == (5, 4)
    with raises(ValueError, "inputs must hold exactly the graph inputs (x, ids), not x (missing ids)"):
        g.run_float({"x": ok["x"]})
    with raises(ValueError, "input 'x' must have shape (None, 4), not (5, 3)"):
        g.run_float({**ok, "x": np.zeros((5, 3))})
    with raises(TypeError, "input 'ids' must be an integer array, not float64"):
        g.run_float({**ok, "ids": np.zeros(2)})
    with raises(ValueError, "embedding 'op_2': ids must be in 0 … 2, not 0 … 3"):
        g.run_float({**ok, "ids": np.array([0, 3])})
    with raises(TypeError, "inputs must be a dict of input name to numpy array, not list"):
        g.run_float([ok])
