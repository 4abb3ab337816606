"""Random graphs through the whole compiler: build → quantize → lower → run, against the int8 reference.

Hypothesis draws MLP-shaped graphs (linear layers with ReLU, tanh or sigmoid between them, optionally an
argmax) whose widths cross the array's tile boundaries, compiles them for the ``tiny`` chip and runs them on
the golden model: outputs equal ``QGraph.run_int8`` exactly and the cycle count equals the compiler's
prediction. A fixed set of such programs also runs on the chip RTL in Verilator, where the cycle count must
equal the prediction too (the RTL is compared with golden word for word by ``CompiledProgram.run``).
"""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import compiler
from compiler.ir import Graph
from spec.config import PRESETS

TINY = PRESETS["tiny"]
ACTS = ("relu", "tanh", "sigmoid")


def random_graph(seed, dims, acts, argmax):
    rng = np.random.default_rng(seed)
    g = Graph()
    h = g.input("x", (None, dims[0]))
    for i, (k, n) in enumerate(zip(dims[:-1], dims[1:])):
        h = g.linear(h, rng.normal(size=(k, n)) / math.sqrt(k), rng.normal(size=n) * 0.1, name=f"fc{i}")
        if i < len(dims) - 2:
            h = getattr(g, acts[i])(h, name=f"act{i}")
    g.output(h, "y")
    if argmax:
        g.output(g.argmax(h, name="cls"), "cls")
    return g, rng


def compile_random(seed, dims, acts, argmax, batch):
    g, rng = random_graph(seed, dims, acts, argmax)
    calib = {"x": rng.normal(size=(64, dims[0])).astype(np.float32)}
    x = (rng.normal(size=(batch, dims[0])) * 1.2).astype(np.float32)    # a little past calibration
    return compiler.compile(g, {"x": x}, config=TINY, calibration=calib), x


graphs = st.builds(
    lambda seed, dims, acts, argmax, batch: (seed, dims, acts, argmax, batch),
    st.integers(0, 2**31 - 1),
    st.lists(st.integers(1, 9), min_size=2, max_size=4),          # widths across the 4-wide tiles of tiny
    st.lists(st.sampled_from(ACTS), min_size=3, max_size=3),
    st.booleans(),
    st.integers(1, 6),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs)
def test_random_graphs_match_the_int8_reference_on_golden(case):
    seed, dims, acts, argmax, batch = case
    argmax = argmax and dims[-1] <= TINY.mxu_cols
    cp, x = compile_random(seed, dims, acts, argmax, batch)
    r = cp.run({"x": x}, backend="golden")
    want = cp.qgraph.run_int8({"x": x})
    assert r.cycles == cp.predicted_cycles, case
    for name, value in want.items():
        np.testing.assert_array_equal(r.outputs[name], value, err_msg=f"{name} of {case}")


RTL_CASES = [(1, [9, 7, 4], ["relu"] * 3, True, 5), (2, [3, 8, 8, 2], ["tanh", "sigmoid", "relu"], True, 6),
             (3, [5, 1], ["relu"] * 3, False, 1), (4, [8, 9, 3], ["sigmoid", "relu", "relu"], True, 3)]


@pytest.mark.parametrize("case", RTL_CASES, ids=[f"seed{c[0]}" for c in RTL_CASES])
def test_compiled_programs_on_the_rtl_take_the_predicted_cycles(case):
    seed, dims, acts, argmax, batch = case
    cp, x = compile_random(seed, dims, acts, argmax, batch)
    r = cp.run({"x": x}, backend="verilator")            # raises unless the RTL equals golden word for word
    assert r.match and r.cycles == cp.predicted_cycles
    want = cp.qgraph.run_int8({"x": x})
    for name, value in want.items():
        np.testing.assert_array_equal(r.outputs[name], value, err_msg=name)
