"""compiler/: ProgramBuilder's checks and the kernels, every kernel played on golden.chip.ChipSim.

Each kernel test asserts: no fault, ChipSim's cycle count equals the program's ``predicted_cycles``, and the
MEM outputs equal the numpy expectation (golden.mxu.matmul / golden.vxu). Random data are seeded (the seed
is printed) and include the int8 extremes -128 and 127.
"""
import re

import numpy as np
import pytest

from compiler import kernels
from compiler.schedule import ProgramBuilder, arrival, direction, hops
from golden.chip import ChipSim
from spec import isa
from spec.asm import assemble
from spec.config import PRESETS
from spec.isa import Instruction
from tests.kernel_data import dense_operands, int8, rng_for

TINY, SMALL = PRESETS["tiny"], PRESETS["small"]


def check(kernel):
    run = kernel.run()
    assert run.chip.error is None
    assert run.chip.cycles == kernel.program.predicted_cycles
    np.testing.assert_array_equal(run.result, kernel.expected)
    assert assemble(kernel.program.text, kernel.config) == kernel.program.words
    return run


# ---- ProgramBuilder ------------------------------------------------------------------------------------
def test_hops_direction_arrival():
    assert hops(TINY, "mem0", "mxu") == 2 and direction(TINY, "mem0", "mxu") == "E"
    assert hops(TINY, "mem2", 2) == 2 and direction(TINY, "mem2", "mxu") == "W"
    assert arrival(TINY, "mxu", "mem2", 10, "E") == 12
    with pytest.raises(ValueError, match="direction must be 'W' to go from mem2 to mxu0, not 'E'"):
        hops(TINY, "mem2", "mxu", "E")


def test_builder_fills_gaps_with_nops_and_predicts_cycles():
    b = ProgramBuilder(TINY)
    b.at("mem0", 2, "READ bank=0 addr=0 count=4 -> E0")
    b.at(2, 6, Instruction("MATMUL", src="E0", count=4, addr=0))          # no emit: its results still count
    b.at("vxu", 70_000, "VOP relu W1 count=3 -> E2")                      # a gap longer than one NOP
    b.at("mem2", 70_005, "WRITE E2 bank=1 addr=0 count=3")
    prog = b.finish()
    vxu_sched = prog.schedule[TINY.slice_index("vxu")]
    assert [(t, i.op, i.count) for t, i in vxu_sched[:2]] == [(0, "NOP", isa.MAX_COUNT),
                                                              (isa.MAX_COUNT, "NOP", 70_000 - isa.MAX_COUNT)]
    assert prog.schedule[0][0] == (0, Instruction("NOP", count=2))
    sim = ChipSim(TINY)
    sim.load(prog.words)
    res = sim.run()
    assert res.error is None and res.cycles == prog.predicted_cycles
    assert prog.predicted_cycles == 70_005 + isa.MEM_WRITE_LATENCY + 3
    assert assemble(prog.text, TINY) == prog.words


def test_builder_refuses_busy_unit():
    b = ProgramBuilder(TINY)
    b.at("mem0", 0, "READ bank=0 addr=0 count=4 -> E0")
    b.at("mem0", 1, "WRITE E1 bank=1 addr=0 count=2")          # another unit: fine
    msg = ("slice mem0, cycle 3, READ bank=0 addr=4 count=1 -> E0: unit read is busy until cycle 3 with "
           "READ bank=0 addr=0 count=4 -> E0 issued at cycle 0")
    with pytest.raises(ValueError, match=re.escape(msg)):
        b.at("mem0", 3, "READ bank=0 addr=4 count=1 -> E0")
    b.at("mem0", 4, "READ bank=0 addr=4 count=1 -> E0")        # free again at 0 + count


def test_builder_refuses_issuing_in_the_past():
    b = ProgramBuilder(TINY)
    b.at("vxu0", 5, "SETQ mult=1 shift=0 zp=0")
    msg = ("slice vxu0, cycle 5, VOP relu E0 count=1 -> E1: the queue is not free before cycle 6 (it issues "
           "SETQ mult=1 shift=0 zp=0 at cycle 5); instructions of a slice must be placed in issue order")
    with pytest.raises(ValueError, match=re.escape(msg)):
        b.at("vxu0", 5, "VOP relu E0 count=1 -> E1")
    b.at("vxu0", 9, "NOP 3")
    with pytest.raises(ValueError, match="the queue is not free before cycle 12"):
        b.at("vxu0", 11, "VOP relu E0 count=1 -> E1")


def test_builder_refuses_a_program_longer_than_the_queue():
    b = ProgramBuilder(TINY)
    for t in range(TINY.queue_depth - 1):
        b.at("mem0", t, "READ bank=0 addr=0 count=1 -> E0")
    msg = (f"slice mem0, cycle {TINY.queue_depth - 1}, READ bank=0 addr=0 count=1 -> E0: the program of slice "
           f"mem0 needs {TINY.queue_depth + 1} words with its HALT, more than queue_depth = {TINY.queue_depth} of "
           f"config tiny (by 1)")
    with pytest.raises(ValueError, match=re.escape(msg)):
        b.at("mem0", TINY.queue_depth - 1, "READ bank=0 addr=0 count=1 -> E0")
    prog = b.finish()
    assert len(prog.words[0]) == TINY.queue_depth


def test_builder_refuses_bad_instructions_and_arguments():
    b = ProgramBuilder(TINY)
    with pytest.raises(ValueError, match=r"slice mem0, cycle 0, READ bank=2 .*bank must be between 0 and 1 .*BAD_BANK"):
        b.at("mem0", 0, "READ bank=2 addr=0 count=1 -> E0")
    with pytest.raises(ValueError, match=r"MATMUL runs on MXU slices, not on MEM slices \(ILLEGAL_OPCODE\)"):
        b.at("mem0", 0, "MATMUL E0 count=1 addr=0")
    with pytest.raises(ValueError, match="unknown mnemonic 'REED'"):
        b.at("mem0", 0, "REED bank=0 addr=0 count=1 -> E0")
    with pytest.raises(ValueError, match="HALT is appended by finish"):
        b.at("mem0", 0, "HALT")
    with pytest.raises(TypeError, match="cycle must be a non-negative integer, not 1.5"):
        b.at("mem0", 1.5, "NOP 1")
    with pytest.raises(ValueError, match="slice 'gpu' is not in config tiny"):
        b.at("gpu", 0, "NOP 1")
    with pytest.raises(TypeError, match="config must be a spec.config.ChipConfig"):
        ProgramBuilder("tiny")


def test_builder_refuses_colliding_stream_values():
    b = ProgramBuilder(TINY)
    b.claim_stream("E0", "mem0", "mxu", 10, 4, "activations")
    b.claim_stream("E0", "mem1", "mxu", 15, 2, "more")             # right behind: fine
    msg = "stream E0 at slice mxu0, cycle 13: weights (item 0, written during cycle 12) collides with activations"
    with pytest.raises(ValueError, match=re.escape(msg)):
        b.claim_stream("E0", "mem1", "mxu", 12, 1, "weights")
    b.claim_stream("E1", "mem1", "mxu", 12, 1, "weights")          # another stream: fine


# ---- kernels -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed,m,k,n", [(0, 16, 8, 12), (1, 5, 3, 6), (2, 70, 9, 4), (3, 60, 4, 16)])
def test_gemm_tiny(seed, m, k, n):
    rng = rng_for(seed)
    X, W = int8(rng, (m, k)), int8(rng, (k, n))
    kern = kernels.gemm(TINY, X, W)
    check(kern)
    assert kern.mxu_busy_cycles == m * -(-k // TINY.mxu_rows) * -(-n // TINY.mxu_cols)


def test_gemm_small_1024x64x64_utilization():
    rng = rng_for(10)
    X, W = int8(rng, (1024, 64)), int8(rng, (64, 64))
    kern = kernels.gemm(SMALL, X, W)
    run = check(kern)
    assert kern.matmul_items == 1024 * 4 * 4
    print(f"small 1024x64x64: {kern.matmul_items} MATMUL cycles / {run.cycles} cycles = {kern.utilization:.4f}")
    assert kern.utilization >= 0.90


def test_gemm_accumulator_blocks():
    # M larger than the accumulators: blocks of mxu_acc_depth rows
    rng = rng_for(11)
    cfg = TINY.replace(mxu_acc_depth=8)
    check(kernels.gemm(cfg, int8(rng, (20, 6)), int8(rng, (6, 5))))


def test_gemm_errors():
    rng = rng_for(12)
    msg = ("X (200 x 16 as 4 K tiles x 200 words) needs 800 words of MEM but mem0, mem1, mem2 (config tiny: 2 banks "
           "x 64 words per slice) have 384 free: it does not fit, short by 416 words")
    with pytest.raises(ValueError, match=re.escape(msg)):
        kernels.gemm(TINY, int8(rng, (200, 16)), int8(rng, (16, 4)))
    with pytest.raises(ValueError, match=r"Y \(int32 100 x 16\) needs 400 words of MEM .* short by 132 words"):
        kernels.gemm(TINY, int8(rng, (100, 4)), int8(rng, (4, 16)))
    with pytest.raises(TypeError, match="X must have dtype int8, not int64"):
        kernels.gemm(TINY, np.zeros((4, 4), np.int64), int8(rng, (4, 4)))
    with pytest.raises(ValueError, match="the inner dimensions must agree"):
        kernels.gemm(TINY, int8(rng, (4, 5)), int8(rng, (4, 4)))


def test_allocator_gives_released_words_again_only_to_data_written_on_the_chip():
    alloc = kernels.MemAllocator(TINY)                  # mem0: 2 banks x 64 words
    dead = alloc.alloc("dead", 100, [0])
    alloc.release(dead)
    assert (alloc.free_words(0), alloc.reusable_words(0)) == (28, 100)
    loaded = alloc.alloc("constant", 20, [0])           # loaded before the run: words nothing else held
    assert not set(loaded.locs) & set(dead.locs) and alloc.free_words(0) == 8
    msg = ("big needs 20 words of MEM but mem0 (config tiny: 2 banks x 64 words per slice) have 8 free: it does "
           "not fit, short by 12 words (100 more words are free again after their last use, but data loaded "
           "before the run needs words nothing else holds)")
    with pytest.raises(ValueError, match=re.escape(msg)):
        alloc.alloc("big", 20, [0])
    state = alloc.state
    written = alloc.alloc("written", 104, [0], reuse=True)   # the released words first, then never-used ones
    assert written.locs[:100] == sorted(dead.locs) and alloc.free_words(0) == 4 and alloc.reusable_words(0) == 0
    alloc.state = state
    assert (alloc.free_words(0), alloc.reusable_words(0)) == (8, 100)


@pytest.mark.parametrize("seed,m,k,n", [(20, 16, 8, 12), (21, 7, 5, 3)])
def test_gemm_bias_requant_relu_tiny(seed, m, k, n):
    rng = rng_for(seed)
    X, W, bias = dense_operands(rng, m, k, n)
    kern = kernels.gemm_bias_requant_relu(TINY, X, W, bias, mult=(1 << 31) // 400, shift=0, zp=-3)
    run = check(kern)
    assert run.result.min() >= 0 and run.result.max() <= 127 and len(np.unique(run.result)) > 5


def test_lut_activation_tiny():
    rng = rng_for(30)
    x = rng.integers(-2**31, 2**31, (10, TINY.lanes))
    x[0] = [-128, 127, 0, 255]
    table = rng.integers(-128, 128, 256)
    check(kernels.lut_activation(TINY, x, table))


def test_argmax_tiny():
    rng = rng_for(31)
    v = rng.integers(-5, 5, (12, TINY.lanes))    # many ties: the lowest index wins
    v[0] = [-2**31, 2**31 - 1, 2**31 - 1, 0]
    run = check(kernels.argmax(TINY, v))
    assert run.result[0] == 1


def test_mlp_tiny():
    rng = rng_for(40)
    X, W1, b1 = dense_operands(rng, 16, 8, 8)
    W2 = int8(rng, (8, 8))
    kern = kernels.mlp(TINY, X, W1, b1, ((1 << 31) // 300, 0, 2), W2)
    run = check(kern)
    hidden = kernels._dense_expected(X, W1, b1, kernels._requant_params(((1 << 31) // 300, 0, 2)))
    assert len(np.unique(hidden)) > 5
    assert 0 < kern.utilization < 1
    with pytest.raises(ValueError, match="W2 must have 8 rows"):
        kernels.mlp(TINY, X, W1, b1, (1, 0, 0), int8(rng, (7, 8)))
    assert run.raw["hidden"].shape[0] == 16 * 2
