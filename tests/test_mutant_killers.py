"""Tests written for the mutation check (mutants/list.py, docs/mutants.md): each one catches a deliberate bug
that the other fast tests let through. Amaranth's simulator only, seconds each.

* the whole chip (``rtl.chip.Chip``, ``tiny``) driven through its host streams, for the run control: when
  several slices fault in one cycle the lowest-numbered one is reported (``chip_fault_lowest_slice_reversed``).
* the instruction queue after its end: ``tests/test_icu_rtl.py`` stops at the first fault or idle cycle
  (in the chip ``run`` falls then), so a queue that goes on after a fault or a HALT passed it; the contract
  says it does nothing (``icu_fault_not_sticky``, ``icu_pc_advance_every_cycle``).
"""
from amaranth.sim import Simulator

from golden.chip import ChipSim
from rtl.chip import Chip
from rtl.icu import InstructionQueue
from spec import isa
from spec.asm import HALT_WORD
from spec.config import PRESETS
from spec.host import HostOp, pack_command, unpack_status
from spec.isa import ErrorCode, Instruction, encode
from tests.test_icu_rtl import load_and_start

TINY = PRESETS["tiny"]


def nop(n):
    return encode(Instruction("NOP", count=n))


# ---- the chip, through its host streams -----------------------------------------------------------------
def run_chip(config, programs, max_cycles=400):
    """Load ``programs`` (one word list per slice) through the host edge, START, wait for the run to end and
    read STATUS; return the status fields (``spec.host.unpack_status``)."""
    dut = Chip(config)
    cmds = [pack_command(config, HostOp.WRITE_QUEUE, slice=p, addr=a, data=int(w))
            for p, words in enumerate(programs) for a, w in enumerate(words)]
    cmds += [pack_command(config, HostOp.START), pack_command(config, HostOp.STATUS)]
    out = {}

    async def bench(ctx):
        ctx.set(dut.resp.ready, 1)
        for c in cmds:
            ctx.set(dut.cmd.valid, 1)
            ctx.set(dut.cmd.payload.as_value(), c)
            for _ in range(max_cycles):   # the STATUS waits for the run to end
                if ctx.get(dut.cmd.ready):
                    break
                await ctx.tick()
            else:
                raise AssertionError("the chip did not take a command (a run that never ends?)")
            await ctx.tick()
        ctx.set(dut.cmd.valid, 0)
        for _ in range(20):
            if ctx.get(dut.resp.valid):
                out["status"] = unpack_status(ctx.get(dut.resp.payload.data))
                return
            await ctx.tick()
        raise AssertionError("no STATUS response")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out["status"]


def golden_status(config, programs):
    sim = ChipSim(config)
    sim.load(programs)
    res = sim.run(max_cycles=1000)
    e = res.error
    return {"done": 1, "error": int(e is not None), "code": int(e.code) if e else 0,
            "slice": e.slice if e else 0, "pc": e.pc if e else 0, "cycles": res.cycles}


def test_chip_reports_lowest_faulting_slice():
    """Slices 2 and 3 fault in the same cycle (at different pcs): the chip reports slice 2; slice 4's later
    fault does not count. Status as golden.chip has it."""
    P = len(TINY.slices)
    assert P == 5 and TINY.slices[2] == "mxu" and TINY.slices[3] == "vxu"
    programs = [[HALT_WORD] for _ in range(P)]
    programs[2] = [nop(2), 0]               # pc 1: the all-zero word, ILLEGAL_OPCODE, in cycle 2
    programs[3] = [nop(1), nop(1), 0]       # pc 2 faults in cycle 2 as well
    programs[4] = [nop(3), 0]               # would fault in cycle 3
    want = golden_status(TINY, programs)
    assert (want["error"], want["code"], want["slice"], want["pc"]) == (1, ErrorCode.ILLEGAL_OPCODE, 2, 1), want
    got = run_chip(TINY, programs)
    assert got == want, f"chip status {got}, golden {want}"


def test_chip_status_matches_golden_halt_and_fault():
    """A clean run (every queue halts) and a single fault: cycles, error code, slice and pc as golden."""
    P = len(TINY.slices)
    clean = [[HALT_WORD] for _ in range(P)]
    clean[1] = [nop(4), HALT_WORD]
    assert run_chip(TINY, clean) == golden_status(TINY, clean)
    faulty = [[HALT_WORD] for _ in range(P)]
    faulty[4] = [nop(1), encode(Instruction("HALT")) | (1 << (isa.WORD_BITS - 1))]   # a stray bit: BAD_FIELD
    want = golden_status(TINY, faulty)
    assert want["error"] == 1 and want["slice"] == 4, want
    assert run_chip(TINY, faulty) == want


# ---- the instruction queue keeps still after its end -------------------------------------------------------
def run_queue(config, kind, words, cycles):
    """Load ``words``, START, run ``cycles`` cycles; per cycle ``(issue, pc, fault, fault_code, idle)``."""
    q = InstructionQueue(config, kind)
    trace = []

    async def bench(ctx):
        await load_and_start(ctx, q, words)
        await ctx.tick()
        ctx.set(q.start, 0)
        ctx.set(q.run, 1)
        for _ in range(cycles):
            trace.append((ctx.get(q.issue), ctx.get(q.pc), ctx.get(q.fault), ctx.get(q.fault_code), ctx.get(q.idle)))
            await ctx.tick()

    sim = Simulator(q)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return trace


READ = encode(Instruction("READ", bank=0, addr=0, count=1, dst="E0"))


def test_queue_does_nothing_after_a_fault():
    """``READ; 0``: the READ issues in cycle 0, the all-zero word faults ILLEGAL_OPCODE at pc 1 in cycle 1;
    with ``run`` still high nothing happens after that: no issue, no fault again, pc stays 1."""
    trace = run_queue(TINY, "mem", [READ, 0, READ, HALT_WORD], 12)
    assert trace[0][:3] == (1, 0, 0), trace[0]
    assert trace[1][:4] == (0, 1, 1, ErrorCode.ILLEGAL_OPCODE), trace[1]
    for t, (issue, pc, fault, code, _) in enumerate(trace[2:], 2):
        assert (issue, pc, fault, code) == (0, 1, 0, 0), f"cycle {t} after the fault: issue={issue} pc={pc} " \
                                                         f"fault={fault} code={code}"


def test_queue_does_nothing_after_halt():
    """``NOP 2; HALT; READ``: HALT issues in cycle 2 (idle from then on, nothing in flight); the READ after it
    never issues, pc stays at the word after the HALT and ``idle`` stays high."""
    trace = run_queue(TINY, "mem", [nop(2), HALT_WORD, READ, READ], 12)
    assert [t[0] for t in trace[:3]] == [1, 0, 1], trace[:3]
    for t, (issue, pc, fault, _, idle) in enumerate(trace[3:], 3):
        assert (issue, pc, fault, idle) == (0, 2, 0, 1), f"cycle {t} after HALT: issue={issue} pc={pc} " \
                                                          f"fault={fault} idle={idle}"
