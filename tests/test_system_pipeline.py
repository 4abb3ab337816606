"""compiler/system/pipeline.py: random graphs partitioned at random steps over 1–4 chips of a line, the live
tensors forwarded over the links, run on ``golden.system.SystemSim``: outputs equal ``QGraph.run_int8``
exactly and the system's cycles (and every chip's) equal the prediction. Hypothesis draws the graphs (the
MLP-shaped ones of tests/test_compile_random.py) and the partition; derandomized, so a red run is
reproducible. Also: a graph too large for one chip is lowered on as many as it needs, and the errors.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.lower import lower
from compiler.memory import MemoryFull
from compiler.quantize import quantize
from compiler.system.pipeline import lower_pipeline
from spec.config import PRESETS
from tests.test_compile_random import ACTS, random_graph

TINY = PRESETS["tiny"]


def qgraph_and_inputs(seed, dims, acts, argmax, batch, mm=None):
    g, rng = random_graph(seed, dims, acts, argmax, mm)
    calib = {"x": rng.normal(size=(64, dims[0])).astype(np.float32)}
    x = {"x": (rng.normal(size=(batch, dims[0])) * 1.2).astype(np.float32)}
    if mm is not None:
        shape = (dims[-1], mm[0])
        calib = [{"x": calib["x"][i::2], "w": rng.normal(size=shape).astype(np.float32)} for i in range(2)]
        x["w"] = (rng.normal(size=shape) * 1.2).astype(np.float32)
    return quantize(g, calib), x


def check(sm, q, x):
    codes = sm.quantize_inputs(x)
    res = sm.simulate(codes)
    assert res.error is None, res.error
    assert res.chip_cycles == sm.chip_cycles and res.cycles == sm.predicted_cycles
    out = sm.unpack_outputs(res.chips[-1])
    for name, want in q.run_int8(x).items():
        np.testing.assert_array_equal(out[name], want, err_msg=name)
    for ln in res.links:                         # the words the compiler planned, on the links it planned
        assert ln.words == sm.transfers.get(ln.name, 0), ln
    return res


cases = st.builds(
    lambda seed, dims, acts, argmax, batch, mm, cuts: (seed, dims, acts, argmax, batch, mm, cuts),
    st.integers(0, 2**31 - 1),
    st.lists(st.integers(1, 9), min_size=2, max_size=4),
    st.lists(st.sampled_from(ACTS), min_size=3, max_size=3),
    st.booleans(),
    st.integers(1, 6),
    st.one_of(st.none(), st.tuples(st.integers(1, 9), st.sampled_from((None, "relu")))),
    st.lists(st.integers(1, 20), min_size=0, max_size=3),            # where the chips start (mod the steps)
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True,
          database=None)
@given(cases)
def test_random_partitions_of_random_graphs_match_the_int8_reference(case):
    seed, dims, acts, argmax, batch, mm, cuts = case
    if mm is not None:
        dims = dims[:3]
    argmax = argmax and dims[-1] <= TINY.mxu_cols
    q, x = qgraph_and_inputs(seed, dims, acts, argmax, batch, mm)
    n = len(q.steps)
    bounds = sorted({1 + c % (n - 1) for c in cuts})
    sm = lower_pipeline(q, TINY, batch, chips=len(bounds) + 1, boundaries=bounds)
    assert sm.chips == len(bounds) + 1 and sm.boundaries == bounds
    check(sm, q, x)


def test_a_graph_too_large_for_one_chip_goes_on_as_many_as_it_needs():
    q, x = qgraph_and_inputs(5, [16, 16, 16, 16, 16], ["relu"] * 3, False, 8)
    with pytest.raises(MemoryFull):
        lower(q, TINY, 8)
    sm = lower_pipeline(q, TINY, 8)
    assert sm.chips == 2 and sm.config.name == "tiny_link"
    res = check(sm, q, x)
    assert sum(ln.words for ln in res.links) == sum(sm.transfers.values()) > 0
    with pytest.raises(MemoryFull, match=r"^linear '.*' does not fit chip 0, the last of the 1 allowed \(config "
                                         r"tiny_link\): "):
        lower_pipeline(q, TINY, 8, chips=1)


def test_a_step_too_large_for_any_chip_says_so():
    q, _ = qgraph_and_inputs(1, [40, 40], [], False, 2)
    with pytest.raises(MemoryFull, match=r"^linear '.*' does not fit one chip of config tiny_link even on a chip of "
                                         r"its own \(with the tensors it reads\): "):
        lower_pipeline(q, TINY, 2)


@pytest.mark.parametrize("bounds, chips, message", [
    ([0], 2, "boundaries must be increasing step indices between 1 and 2, not [0]"),
    ([2, 1], 3, "boundaries must be increasing step indices between 1 and 2, not [2, 1]"),
    ([3], 2, "boundaries must be increasing step indices between 1 and 2, not [3]"),
    ([1], 3, "boundaries must give the first step of each chip after the first: 2 for 3 chips, not 1"),
])
def test_bad_boundaries_are_named(bounds, chips, message):
    q, _ = qgraph_and_inputs(1, [4, 4, 4], ["relu"], False, 2)
    assert len(q.steps) == 3
    with pytest.raises(ValueError) as e:
        lower_pipeline(q, TINY, 2, chips=chips, boundaries=bounds)
    assert str(e.value) == message
