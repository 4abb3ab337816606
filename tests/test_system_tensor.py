"""A quantized graph in tensor parallel (``compiler.system.tensor``; ``compiler.compile(..., chips=N,
split=...)``): random MLPs on 2-4 chips equal to the int8 reference in exactly the predicted cycles, the split
each chip holds, ``auto`` keeping the fewer predicted cycles and saying why, and the errors. The RTL run of a
tensor-parallel program is in tests/test_system_programs_rtl.py."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import compiler
from compiler.ir import Graph
from tests.test_compile_random import random_graph


def _same(got, want):
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


@st.composite
def mlps(draw):
    chips = draw(st.integers(2, 4))
    layers = draw(st.integers(2, 4))
    dims = [draw(st.sampled_from([16, 24, 40, 64]))] + [draw(st.sampled_from([16 * chips, 40 + 16 * chips, 100]))
                                                        for _ in range(layers)]
    acts = [draw(st.sampled_from(["relu", "tanh", "sigmoid"])) for _ in range(layers - 1)]
    return chips, dims, acts, draw(st.booleans()), draw(st.integers(1, 6)), draw(st.integers(0, 2**16))


@settings(max_examples=12, deadline=None, derandomize=True, database=None)
@given(mlps())
def test_random_mlps_in_tensor_parallel_equal_the_int8_reference(case):
    """Random chains of linears (widths across tile boundaries, uneven shares of tiles, ReLU / table
    activations, an argmax output) on 2-4 `small` chips: outputs = run_int8, golden cycles = prediction."""
    chips, dims, acts, argmax, rows, seed = case
    print(f"chips {chips}, dims {dims}, acts {acts}, argmax {argmax}, rows {rows}, seed {seed}")
    g, rng = random_graph(seed, dims, acts, argmax)
    x = {"x": rng.normal(size=(rows, dims[0])).astype(np.float32)}
    cp = compiler.compile(g, x, config="small", chips=chips, split="tensor")
    assert cp.split == "tensor" and cp.chips == chips and len(cp.plan) == (len(dims) - 1) // 2
    r = cp.run(x, backend="golden")
    assert r.cycles == r.predicted_cycles == cp.predicted_cycles
    _same(r.outputs, cp.qgraph.run_int8(x))


def _mlp():
    rng = np.random.default_rng(0)
    g = Graph()
    h = g.relu(g.linear(g.input("x", (None, 64)), rng.normal(size=(64, 128)).astype(np.float32) * 0.1,
                        rng.normal(size=128).astype(np.float32) * 0.1, name="up"))
    g.output(g.linear(h, rng.normal(size=(128, 32)).astype(np.float32) * 0.1,
                      rng.normal(size=32).astype(np.float32) * 0.1, name="down"), "y")
    return g, {"x": rng.normal(size=(4, 64)).astype(np.float32)}


def test_the_split_and_the_cost_model_say_what_and_why():
    g, x = _mlp()
    one = compiler.compile(g, x, config="small")
    pipe = compiler.compile(g, x, config="small", chips=2, split="pipeline")
    ten = compiler.compile(g, x, config="small", chips=2, split="tensor")
    assert ten.plan == ["up -> down (chip 0: columns 0-63, chip 1: columns 64-127)"]
    assert pipe.plan == ["chip 1 from step 2"]
    # an all-reduce of the 2 x 4 result vectors each way on the one link
    assert ten.transfers == {"c0.east->c1.west": 8, "c1.west->c0.east": 8}
    auto = compiler.compile(g, x, config="small", chips=2)
    best = min((pipe, ten), key=lambda p: p.predicted_cycles)
    assert auto.split == best.split and auto.predicted_cycles == best.predicted_cycles
    assert auto.reason == (f"{best.split} chosen: pipeline: {pipe.predicted_cycles:,} cycles on 2 chips; tensor: "
                           f"{ten.predicted_cycles:,} cycles on 2 chips")
    # the split divides the weight installs: fewer cycles than one chip, which the pipeline is not
    assert ten.predicted_cycles < one.predicted_cycles < pipe.predicted_cycles
    _same(auto.run(x, backend="golden").outputs, auto.qgraph.run_int8(x))


def test_a_model_with_nothing_to_divide_takes_the_pipeline():
    rng = np.random.default_rng(1)
    g = Graph()
    g.output(g.linear(g.relu(g.input("x", (None, 16))), rng.normal(size=(16, 16)).astype(np.float32)), "y")
    x = {"x": rng.normal(size=(2, 16)).astype(np.float32)}
    with pytest.raises(NotImplementedError, match=r"the model has no linear fed by other linears \(an attention's "
                                                  r"output projection, an MLP's down projection\): nothing to divide "
                                                  r"among chips"):
        compiler.compile(g, x, config="small", chips=2, split="tensor")
    cp = compiler.compile(g, x, config="small", chips=2)
    assert cp.split == "pipeline" and "tensor: cannot (the model has no linear fed by other linears" in cp.reason


def test_a_hidden_layer_read_elsewhere_is_not_divided():
    """The first layer's output is also a graph output: its columns must be whole on the chip that gives it,
    so the split does not divide that pair (nothing else to divide: the tensor split is refused)."""
    rng = np.random.default_rng(2)
    g = Graph()
    h = g.relu(g.linear(g.input("x", (None, 32)), rng.normal(size=(32, 64)).astype(np.float32) * 0.2, name="up"))
    g.output(h, "h")
    g.output(g.linear(h, rng.normal(size=(64, 16)).astype(np.float32) * 0.2, name="down"), "y")
    x = {"x": rng.normal(size=(2, 32)).astype(np.float32)}
    with pytest.raises(NotImplementedError, match="nothing to divide among chips"):
        compiler.compile(g, x, config="small", chips=2, split="tensor")
    cp = compiler.compile(g, x, config="small", chips=2)
    _same(cp.run(x, backend="golden").outputs, cp.qgraph.run_int8(x))
