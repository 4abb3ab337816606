"""A weight buffer several tiles deep (``mxu_weight_slots``): LOADWs and swaps take the slots in turn on golden and
on the RTL (the MXU against ``golden.mxu`` on random traces, the chip on Verilator against golden), the
compiler installs up to that many tiles ahead of their swaps, and its programs run in exactly the predicted
cycles. The figures the slots bring are in docs/lm.md.
"""
from dataclasses import fields
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from amaranth.hdl import Fragment

from compiler import kernels
from compiler.lm import compile_lm
from compiler.phases import ACT, RES, WGT, _read_to, _write_from
from compiler.schedule import Conflict, ProgramBuilder
from demos.lm.models import build
from golden.mxu import MXUModel
from rtl.mxu import MXU
from sim.amaranth_sim import run_mxu_trace
from sim.chip_run import run_program
from sim.chip_verilator import ChipSimulator
from sim.stimulus import random_trace
from spec.config import PRESETS
from spec.isa import Instruction, Stream
from spec.mxu import MXUParams
from tests.builder_runs import run_on_golden
from tests.kernel_data import int8, rng_for
from tests.lm_checks import assert_golden_equals_the_reference
from tests.mxu_checks import assert_results_equal
from verify.lint import lint_verilog

TINY, SMALL = PRESETS["tiny"], PRESETS["small"]
SEED = 61


def _two_tiles(slots):
    """Two 4×4 weight tiles A (mem0 words 0-3) and B (words 4-7) loaded one after the other, then one
    activation x swapping twice: the results (mem2 words 0 and 1) are x@A, x@B when the swaps take the slots in
    turn, and x@B twice with one slot (B's rows overwrite A's before the first swap)."""
    c = TINY.replace(mxu_weight_slots=slots)
    rng = np.random.default_rng(7)
    A, B = int8(rng, (4, 4)), int8(rng, (4, 4))
    x = int8(rng, (1, 4))
    b = ProgramBuilder(c)
    mem0, mem1, mxu, mem2 = (c.slice_index(n) for n in ("mem0", "mem1", "mxu", "mem2"))
    init = {(mem0, 0, r): v.astype(np.int64) for r, v in enumerate(np.vstack([A, B]))}
    init[(mem1, 0, 0)] = x[0].astype(np.int64)
    items = []
    for k, ws in enumerate((5, 9)):         # tile k's rows reach the MXU during ws … ws + 3
        _read_to(b, items, [(mem0, 0, 4 * k + r) for r in range(4)], mxu, ws, WGT, f"tile {k}")
        items.append((mxu, ws - 1, Instruction("LOADW", src=Stream("E", WGT), count=4)))
    for k, t in enumerate((14, 15)):        # x reaches the MXU during t, swapping
        _read_to(b, items, [(mem1, 0, 0)], mxu, t, ACT, f"x {k}")
        items.append((mxu, t - 1, Instruction("MATMUL", src=Stream("E", ACT), count=1, addr=k, swap=True,
                                              emit=True, dst=Stream("E", RES))))
    _write_from(b, items, [(mem2, 0, 0), (mem2, 0, 1)], mxu, 14 + c.mxu.latency, RES, "results")
    b.place(items)
    xa, xb = x.astype(np.int64) @ A.astype(np.int64), x.astype(np.int64) @ B.astype(np.int64)
    return b, init, np.vstack([xa, xb] if slots > 1 else [xb, xb])


@pytest.mark.parametrize("slots", [1, 2])
def test_swaps_take_the_weight_slots_in_turn(slots):
    b, init, want = _two_tiles(slots)
    sim, _ = run_on_golden(b, init)
    np.testing.assert_array_equal(sim.read_mem("mem2", 0, 0, 2), want)


def test_the_chip_rtl_takes_the_weight_slots_in_turn(tmp_path):
    """The same program and a GEMM kernel on the Verilated ``tiny`` chip of two slots: RTL = golden (cycles, every
    MEM word) = the prediction, and the slot ring's results; its Verilog lint-clean."""
    b, init, want = _two_tiles(2)
    c = b.config
    chip = ChipSimulator(c)
    path = tmp_path / "chip.v"
    path.write_text(chip.verilog())
    ok, messages = lint_verilog(path, top="chip")
    assert ok, "\n".join(messages[:20])
    prog = b.finish()
    inputs = [(c.slice_names[p], bank, addr, v[None, :]) for (p, bank, addr), v in init.items()]
    r = run_program(c, prog.words, inputs, simulator=chip)
    assert r.match, r.mismatch
    assert r.error is None and r.cycles == prog.predicted_cycles
    np.testing.assert_array_equal(r.mems["mem2"][0, 0:2, :c.mxu_cols], want)
    rng = rng_for(11)
    kern = kernels.gemm(c, int8(rng, (3, 12)), int8(rng, (12, 8)))
    r = run_program(c, kern.program.words, kern.inputs, simulator=chip)
    assert r.match and r.error is None and r.cycles == kern.program.predicted_cycles, r.mismatch


def test_a_loadw_fills_a_gap_of_the_mxu_queue_with_slots():
    """With weight slots a backfilling builder puts a LOADW before MATMULs placed earlier, once the weights unit
    is free of every LOADW placed before it (the LOADWs keep their order, so the slots their turns): the two-tile
    program placed swaps first, B's install last, gives x@A, x@B on golden. One slot, or a LOADW ahead of the
    last one, keeps the issue order."""
    c = TINY.replace(mxu_weight_slots=2)
    rng = np.random.default_rng(7)
    A, B = int8(rng, (4, 4)), int8(rng, (4, 4))
    x = int8(rng, (1, 4))
    b = ProgramBuilder(c)
    b.backfill = True
    mem0, mem1, mxu, mem2 = (c.slice_index(n) for n in ("mem0", "mem1", "mxu", "mem2"))
    init = {(mem0, 0, r): v.astype(np.int64) for r, v in enumerate(np.vstack([A, B]))}
    init[(mem1, 0, 0)] = x[0].astype(np.int64)

    def install(k, ws):
        items = []
        _read_to(b, items, [(mem0, 0, 4 * k + r) for r in range(4)], mxu, ws, WGT, f"tile {k}")
        b.place(items + [(mxu, ws - 1, Instruction("LOADW", src=Stream("E", WGT), count=4))])
    install(0, 5)
    items = []
    for k, t in enumerate((14, 15)):
        _read_to(b, items, [(mem1, 0, 0)], mxu, t, ACT, f"x {k}")
        items.append((mxu, t - 1, Instruction("MATMUL", src=Stream("E", ACT), count=1, addr=k, swap=True,
                                              emit=True, dst=Stream("E", RES))))
    _write_from(b, items, [(mem2, 0, 0), (mem2, 0, 1)], mxu, 14 + c.mxu.latency, RES, "results")
    b.place(items)
    with pytest.raises(Conflict, match="issue order"):    # before the weights unit is free of A's LOADW
        b.at(mxu, 6, Instruction("LOADW", src=Stream("E", WGT), count=4))
    assert b.delay(mxu, 8, Instruction("LOADW", src=Stream("E", WGT), count=4)) == 0
    install(1, 9)                                         # its LOADW at 8, before the MATMULs at 13 and 14
    assert [(t, ins.op) for t, ins in b._sched[mxu] if ins.op != "NOP"] == [
        (4, "LOADW"), (8, "LOADW"), (13, "MATMUL"), (14, "MATMUL")]
    sim, _ = run_on_golden(b, init)
    x64 = x.astype(np.int64)
    np.testing.assert_array_equal(sim.read_mem("mem2", 0, 0, 2), np.vstack([x64 @ A, x64 @ B]))
    one = ProgramBuilder(TINY)
    one.backfill = True
    one.at(mxu, 20, Instruction("MATMUL", src=Stream("E", ACT), count=1, addr=0, swap=True))
    with pytest.raises(Conflict, match="issue order"):
        one.at(mxu, 8, Instruction("LOADW", src=Stream("E", WGT), count=4))


def test_delay_is_what_a_placement_would_need():
    """``ProgramBuilder.delay`` (the probe the early installs use): 0 exactly where ``at`` takes the instruction,
    and where it refuses, a positive wait, on a MEM queue of random READs and WRITEs (backfilling)."""
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED)
    b = ProgramBuilder(TINY)
    b.backfill = True
    mem0 = TINY.positions("mem")[0]
    for _ in range(12):
        op = rng.choice(["READ", "WRITE"])
        n, t = int(rng.integers(1, 6)), int(rng.integers(0, 80))
        ins = (Instruction("READ", bank=0, addr=int(rng.integers(0, 50)), count=n, dst="E0") if op == "READ"
               else Instruction("WRITE", src="W0", bank=1, addr=int(rng.integers(0, 50)), count=n))
        try:
            b.at(mem0, t, ins)
        except Conflict:
            pass
    for n in (1, 4, 16):
        probe = Instruction("READ", bank=0, addr=0, count=n, dst="E1")     # bank 0: words nothing stores
        for t in range(0, 100):
            d = b.delay(mem0, t, probe)
            token = b.checkpoint()
            try:
                b.at(mem0, t, probe)
                took = True
            except Conflict:
                took = False
            b.rollback(token)
            assert took == (d == 0), (n, t, d)


@pytest.mark.parametrize("slots", [2, 3])
@pytest.mark.parametrize("shape", [(1, 12, 12), (5, 9, 7), (9, 16, 8)])
def test_gemm_kernels_with_slots_run_on_golden_as_predicted(shape, slots):
    M, K, N = shape
    rng = rng_for(100 * M + 10 * K + N + slots)
    X, W = int8(rng, (M, K)), int8(rng, (K, N))
    one = kernels.gemm(TINY, X, W)
    deep = kernels.gemm(TINY.replace(mxu_weight_slots=slots), X, W)
    run = deep.run()
    assert run.chip.error is None and run.chip.cycles == deep.program.predicted_cycles
    np.testing.assert_array_equal(run.result, deep.expected)
    assert deep.program.predicted_cycles <= one.program.predicted_cycles


def test_rollback_restores_the_slots_turns():
    b = ProgramBuilder(SMALL.replace(mxu_weight_slots=3))
    mxu = SMALL.positions("mxu")[0]
    b.place([(mxu, 5, Instruction("LOADW", src="E1", count=16)),
             (mxu, 30, Instruction("MATMUL", src="E0", count=1, addr=0, swap=True))])
    before = (b.loadws, b.swaps, list(b.slot_swap), b.last_swap)
    token = b.checkpoint()
    b.place([(mxu, 40, Instruction("LOADW", src="E1", count=16)),
             (mxu, 60, Instruction("MATMUL", src="E0", count=1, addr=0, swap=True))])
    assert (b.loadws, b.swaps) == (2, 2) and b.slot_swap[1] > 0
    b.rollback(token)
    assert (b.loadws, b.swaps, list(b.slot_swap), b.last_swap) == before


@pytest.fixture(scope="module")
def decoder():
    cfg = dict(n_layer=1, n_head=2, d_model=32, d_ff=40, context=16, vocab_size=37)
    torch.manual_seed(3)
    model = build("gpt", cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    return model, cfg, np.random.default_rng(3).integers(0, 37, 8 * 16)


@pytest.fixture(scope="module")
def one_slot(decoder):
    model, cfg, calib = decoder
    return {chips: compile_lm(model, cfg["context"], SMALL, calibration=calib,
                              **({"chips": chips} if chips > 1 else {})) for chips in (1, 2)}


@pytest.mark.parametrize("slots", [4, 16])
@pytest.mark.parametrize("chips", [1, 2])
def test_a_decoder_with_slots_equals_the_reference_in_fewer_cycles(decoder, one_slot, chips, slots):
    """The decode step with tiles installed under the norms and the attention's passes (their weights on a
    MEM slice of their own): every step's logits equal the int8 reference's, in exactly the predicted cycles,
    and the step is shorter than with one slot."""
    model, cfg, calib = decoder
    kw = {"chips": chips} if chips > 1 else {}
    one = one_slot[chips]
    lm = compile_lm(model, cfg["context"], SMALL.replace(mxu_weight_slots=slots), calibration=calib, **kw)
    home = SMALL.positions("mem")[-1] + (1 if chips > 1 else 0)   # a system's chips have a link slice west
    part = lm.parts[0][0] if chips > 1 else lm.model
    weights = [r for role, r in part.regions if r.name.startswith("W of")]
    acts = [r for role, r in part.regions if role == "act"]
    assert {p for r in weights for p in r.slices} == {home}     # the tiny decoder's weights fit on it
    assert all(home not in r.slices for r in acts), [r.name for r in acts if home in r.slices]
    prompt = [1, 2]
    assert_golden_equals_the_reference(lm, prompt)
    print(f"chips {chips}: step {one.step_cycles} cycles with one slot, {lm.step_cycles} with {slots}")
    assert lm.step_cycles < one.step_cycles


# ---- the RTL MXU and slice -----------------------------------------------------------------------------
@pytest.mark.parametrize("rows, cols, slots", [(1, 1, 2), (2, 3, 3), (3, 2, 4), (4, 4, 2), (2, 2, 16)])
@pytest.mark.parametrize("seed", [0, 1])
def test_rtl_mxu_with_slots_matches_golden(rows, cols, slots, seed):
    """Random traces (weight writes to any slot at any time, swaps of any slot, resets) on the Amaranth
    simulation of ``rtl.mxu.MXU`` against ``golden.mxu.MXUModel``."""
    rng = np.random.default_rng(1000 + seed * 100 + rows * 10 + cols)
    p = MXUParams(rows, cols, 4, slots)
    t = random_trace(p, 90, rng, p_swap=0.2)
    trace = SimpleNamespace(**{f.name: getattr(t, f.name) for f in fields(t)},
                            w_slot=rng.integers(0, slots, 90), a_slot=rng.integers(0, slots, 90))
    want = MXUModel(p).run(trace)
    got = run_mxu_trace(p, trace)
    assert_results_equal(f"rows={rows} cols={cols} slots={slots} seed={seed}", *got, want)


def test_rtl_mxu_ports_of_slots():
    deep, one = MXU(2, 2, 4, 3), MXU(2, 2, 4)
    for dut in (deep, one):
        Fragment.get(dut, None)
    assert {"w_slot", "a_slot"} <= set(deep.signature.members)
    assert not {"w_slot", "a_slot"} & set(one.signature.members)
    with pytest.raises(ValueError, match="weight_slots must be an integer between 1 and 16, not 17"):
        MXU(2, 2, 4, 17)
