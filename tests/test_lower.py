"""compiler.lower: quantized MLPs lowered to chip programs, played on golden.chip.ChipSim.

Every lowered model is checked on the golden chip only: no fault, ChipSim's cycle count equals the program's
``predicted_cycles``, and every output equals ``QGraph.run_int8`` exactly. Random weights, calibration and test
data are seeded (the seed is printed); test inputs reach past the calibration range so the input codes clamp.
"""
import math
import re

import numpy as np
import pytest

from compiler.ir import Graph
from compiler.lower import MASK_VALUE, CompiledModel, lower
from compiler.quantize import quantize
from spec.asm import assemble
from spec.config import PRESETS
from tests.lowering_checks import check_lowered

TINY, SMALL = PRESETS["tiny"], PRESETS["small"]


def rng_for(seed):
    print(f"seed = {seed}")
    return np.random.default_rng(seed)


def mlp_graph(rng, dims, act="relu", argmax=True):
    """``dims[0] → … → dims[-1]``: linear layers with ``act`` between them; outputs ``logits`` (and ``cls``)."""
    g = Graph()
    h = g.input("x", (None, dims[0]))
    for i, (k, n) in enumerate(zip(dims[:-1], dims[1:])):
        h = g.linear(h, rng.normal(size=(k, n)) / math.sqrt(k), rng.normal(size=n) * 0.1, name=f"fc{i + 1}")
        if i < len(dims) - 2:
            h = getattr(g, act)(h, name=f"{act}{i + 1}")
    g.output(h, "logits")
    if argmax:
        g.output(g.argmax(h, name="cls"), "cls")
    return g


def calibrated(rng, g, shape, n=400):
    return quantize(g, {"x": rng.normal(size=(n,) + shape).astype(np.float32)})


def check(model, qgraph, x):
    """Golden chip run of ``model`` on float ``x``: exact against run_int8, predicted cycles, no fault."""
    codes = model.quantize_inputs({"x": x})
    res = model.simulate(codes)
    assert res.error is None
    assert res.cycles == model.program.predicted_cycles
    got = model.unpack_outputs(res)
    want = qgraph.run_int8({"x": x})
    assert set(got) == set(want)
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    outs, cycles = model.run_golden({"x": x})
    assert cycles == model.program.predicted_cycles
    for name in want:
        np.testing.assert_array_equal(outs[name], want[name])
    return got


def test_data(rng, batch, shape):
    x = rng.normal(size=(batch,) + shape).astype(np.float32) * 1.5
    x.flat[0], x.flat[-1] = -50.0, 50.0            # far outside the calibration range: codes -128, 127
    return x


test_data.__test__ = False


# ---- MLPs on tiny --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tiny_mlp_relu_argmax(seed):
    rng = rng_for(seed)
    g = mlp_graph(rng, (10, 12, 4))               # K = 10, N = 12 cross the 4 x 4 tiles
    q = calibrated(rng, g, (10,))
    m = lower(q, TINY, 8)
    assert isinstance(m, CompiledModel)
    check(m, q, test_data(rng, 8, (10,)))
    assert assemble(m.program.text, TINY) == m.program.words
    assert m.matmul_items == 8 * (3 * 3 + 3 * 1)   # M × Kt × Nt per layer
    assert 0 < m.utilization < 1


def test_tiny_three_layers_crossing_tiles():
    rng = rng_for(11)
    g = mlp_graph(rng, (10, 9, 7, 3))
    q = calibrated(rng, g, (10,))
    m = lower(q, TINY, 6)
    check(m, q, test_data(rng, 6, (10,)))


def test_tiny_tanh_layer():
    rng = rng_for(12)
    g = mlp_graph(rng, (6, 9, 3), act="tanh")
    q = calibrated(rng, g, (6,))
    assert any(st.op == "table" for st in q.steps)
    m = lower(q, TINY, 8)
    check(m, q, test_data(rng, 8, (6,)))
    assert len(m.program.instructions("LOADLUT")) == 1


def test_tiny_mixed_graph():
    """A host reshape of the input, an unfused ReLU (its input is an output), gelu and sigmoid tables, a
    no-op reshape on the chip, and an argmax of a table's output."""
    rng = rng_for(13)
    g = Graph()
    x = g.input("x", (None, 2, 5))
    f = g.reshape(x, (-1, 10), name="flat")
    h = g.linear(f, rng.normal(size=(10, 6)) / 3, rng.normal(size=6) * 0.1, name="fc1")
    g.output(h, "h")
    r = g.relu(h, name="r1")
    t = g.gelu(r, name="gl")
    s = g.sigmoid(g.linear(t, rng.normal(size=(6, 3)), name="fc2"), name="sg")
    g.output(g.reshape(s, (-1, 3), name="sr"), "probs")
    g.output(g.argmax(s, name="cls"), "cls")
    q = calibrated(rng, g, (2, 5))
    assert [st.op for st in q.steps].count("relu") == 1          # not fused: fc1 is an output
    m = lower(q, TINY, 5)
    check(m, q, test_data(rng, 5, (2, 5)))


def test_argmax_masks_padding_lanes():
    """gelu's table maps the padding lanes' code above the smallest codes: they are masked before argmax."""
    rng = rng_for(14)
    g = Graph()
    x = g.input("x", (None, 5))
    h = g.gelu(g.linear(x, rng.normal(size=(5, 3)), rng.normal(size=3) * 0.1, name="fc1"), name="gl")
    g.output(g.argmax(h, name="cls"), "cls")
    g.output(h, "act")
    q = calibrated(rng, g, (5,))
    m = lower(q, TINY, 16)
    names = [r.name for _, r in m.regions]
    assert "argmax mask of 'cls'" in names
    mask = next(w for (s, bank, addr, w) in m.constants if w.shape[1] == 4 and (w[:, 3] == MASK_VALUE).all())
    assert (mask[:, :3] == 0).all()
    got = check(m, q, test_data(rng, 16, (5,)))
    assert got["cls"].shape == (16,)


def test_unpack_outputs_from_a_reader_and_from_memories():
    rng = rng_for(15)
    g = mlp_graph(rng, (5, 4))
    q = calibrated(rng, g, (5,))
    m = lower(q, TINY, 3)
    x = test_data(rng, 3, (5,))
    res = m.simulate(m.quantize_inputs({"x": x}))
    want = q.run_int8({"x": x})
    mems = {TINY.slice_names[p]: res.mems[p] for p in TINY.positions("mem")}
    for got in (m.unpack_outputs(res.read_mem), m.unpack_outputs(mems)):
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])
    # the input and constant placements are plain (slice, bank, addr, words) lists
    for s, _bank, _addr, words in m.constants + m.pack_inputs(m.quantize_inputs({"x": x})):
        assert s in TINY.slice_names and words.shape[1] == TINY.lanes


def test_sram_report():
    rng = rng_for(16)
    q = calibrated(rng, mlp_graph(rng, (10, 12, 4)), (10,))
    m = lower(q, TINY, 8)
    rep = m.sram_report()
    cap = TINY.mem_banks * TINY.mem_depth
    assert set(rep) == {"mem0", "mem1", "mem2", "total"}
    for s in ("mem0", "mem1", "mem2"):
        v = rep[s]
        assert v["used_words"] + v["free_words"] == cap
        assert v["used_bytes"] == 4 * TINY.lanes * v["used_words"]
        assert sum(v["regions"].values()) == v["used_words"]
    assert rep["total"]["used_words"] == sum(len(r) for _, r in m.regions)
    assert "W of 'fc1'" in {n for s in ("mem0", "mem1", "mem2") for n in rep[s]["regions"]}
    print(m.summary())


# ---- MEM reuse and the placement fallback --------------------------------------------------------------
def test_two_mem_slices_put_the_bias_with_the_gemm_operands():
    """With two MEM slices a layer's bias finds no slice holding neither its activations nor its weights, so
    the first pass fails; the relaxed pass puts it with them, its reads scheduled apart (fc1: the bias added
    by a VXU pass of its own after the GEMM; fc2: added as the results stream out, read between the GEMM's
    reads)."""
    from compiler.lower import _run
    from compiler.lower.placement import Lowering
    rng = rng_for(35)
    two = TINY.replace(name="tiny-2mem", slices=("mem", "mxu", "vxu", "mem"), mem_depth=128)
    q = calibrated(rng, mlp_graph(rng, (9, 7, 4), argmax=False), (9,))
    with pytest.raises(ValueError, match="bias of 'fc1' .* needs 10 words of MEM but no MEM slice"):
        _run(Lowering(q, two, 5))
    m = lower(q, two, 5)
    check(m, q, test_data(rng, 5, (9,)))
    where = {r.name: set(r.slices) for _, r in m.regions}
    assert where["bias of 'fc1'"] & (where["input 'x'"] | where["W of 'fc1'"])


# ---- small ---------------------------------------------------------------------------------------------
def test_small_mlp_64_32_10():
    rng = rng_for(21)
    g = mlp_graph(rng, (64, 32, 10))
    q = calibrated(rng, g, (64,))
    m = lower(q, SMALL, 32)
    check(m, q, test_data(rng, 32, (64,)))
    print(m.summary())


def test_small_mlp_crossing_tile_boundaries():
    rng = rng_for(22)
    g = mlp_graph(rng, (20, 40, 17), argmax=False)    # 2 K tiles, 3 and 2 N tiles of 16
    q = calibrated(rng, g, (20,))
    m = lower(q, SMALL, 24)
    check(m, q, test_data(rng, 24, (20,)))


# ---- errors --------------------------------------------------------------------------------------------
def test_model_too_big_names_the_tensor():
    rng = rng_for(31)
    q = calibrated(rng, mlp_graph(rng, (64, 32, 4)), (64,))
    with pytest.raises(ValueError, match=re.escape("W of 'fc1' (int8 64 x 32 as 8 x 16 tiles x 4 rows; 512 words "
                                                   "= 8192 bytes")) as e:
        lower(q, TINY, 8)
    assert "needs 512 words of MEM" in str(e.value) and "free" in str(e.value) and "short by" in str(e.value)


@pytest.mark.parametrize("config, widths, rows", [("tiny", (10, 12, 7), 4), ("tiny", (6, 9), 3),
                                                   ("small", (16, 103), 1), ("small", (20, 40), 7)])
def test_argmax_wider_than_a_tile(config, widths, rows):
    """More values a row than one tile (a vocabulary): the row operations find the lowest index of the
    largest code, equal to the int8 reference on random data and on all-equal rows (every lane ties)."""
    rng = rng_for(32)
    q = calibrated(rng, mlp_graph(rng, widths), (widths[0],))
    m = lower(q, PRESETS[config], rows)
    check_lowered(m, q, {"x": rng.normal(size=(rows, widths[0])).astype(np.float32)})
    check_lowered(m, q, {"x": np.zeros((rows, widths[0]), np.float32)})


def test_unsupported_step_names_the_node():
    rng = rng_for(33)
    g = Graph()
    x = g.input("x", (2, 4))
    h = g.linear(x, rng.normal(size=(4, 6)), name="fc")
    g.output(g.reshape(h, (4, 3), name="fold"))   # add and matmul are lowered now; this reshape is not
    q = quantize(g, {"x": rng.normal(size=(2, 4)).astype(np.float32)})
    with pytest.raises(NotImplementedError, match=r"reshape 'fold': \(2, 6\) -> \(4, 3\) changes the last axis"):
        lower(q, TINY)


def test_batch_is_checked():
    rng = rng_for(34)
    q = calibrated(rng, mlp_graph(rng, (5, 4)), (5,))
    with pytest.raises(ValueError, match="batch must be given"):
        lower(q, TINY)
    m = lower(q, TINY, 3)
    with pytest.raises(ValueError, match="batch 3"):
        m.run_golden({"x": np.zeros((4, 5), np.float32)})
