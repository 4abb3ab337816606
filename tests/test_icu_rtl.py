# amaranth: UnusedElaboratable=no
"""rtl.icu.InstructionQueue in Amaranth's simulator, cycle by cycle.

Programs (random and directed) are loaded through the load port, one simulation per configuration and
slice kind running them one after another (so shorter programs follow longer ones), each started with
START (with and without the sync reset in the same cycle) and run with ``run`` sometimes dropped for a few
cycles. Every cycle's ``issue``/``word``/``pc``, the fault (cycle, code, pc) and the first ``idle`` cycle
are compared with ``reference`` (the issue loop of ``golden.chip.ChipSim.run``), which in turn is checked
against ``ChipSim`` itself (its ``cycles`` and ``error`` with the program on one slice, HALT elsewhere).
"""
import numpy as np
import pytest
from amaranth.hdl import Fragment, Module, ResetInserter
from amaranth.lib import wiring
from amaranth.sim import Simulator

from golden.chip import ChipSim
from rtl.icu import InstructionQueue
from spec import isa
from spec.config import PRESETS, RTL_SLICE_KINDS
from spec.isa import ErrorCode, Instruction, encode
from tests.reset_harness import ResetHarness
from tests.test_decode_rtl import REACHABLE, random_word

TINY, SMALL = PRESETS["tiny"], PRESETS["small"]
Q8 = TINY.replace(name="q8", queue_depth=8)
HALT = encode(Instruction("HALT"))
MAX_CYCLES = 2000


async def load_and_start(ctx, q, words):
    """Write ``words`` into the queue ``q`` through its load port, one a cycle, then raise ``start`` (the cycle
    before cycle 0; the caller lowers it)."""
    for a, w in enumerate(words):
        ctx.set(q.load_en, 1)
        ctx.set(q.load_addr, a)
        ctx.set(q.load_word, w)
        await ctx.tick()
    ctx.set(q.load_en, 0)
    ctx.set(q.start, 1)


def nop(n=1):
    return encode(Instruction("NOP", count=n))


# ---- the reference: ChipSim.run's issue loop for one queue --------------------------------------------
def reference(words, config, kind):
    """``(trace, end)``: ``trace[t] = (issued word or None, pc)`` for cycles 0 … end cycle; ``end`` is
    ``("fault", t, code, pc)`` or ``("idle", t)``."""
    pc, next_issue, halted, last = 0, 0, False, -1
    busy = {}
    trace = []
    for t in range(MAX_CYCLES):
        issued, fault, pc_t = None, None, pc
        if not halted and t >= next_issue:
            if pc >= config.queue_depth:
                fault = (ErrorCode.QUEUE_OVERRUN, pc)
            else:
                w = words[pc] if pc < len(words) else 0
                instr = isa.decode(w)
                f = isa.fault(instr, config, kind)
                if f is not None:
                    fault = (f.code, pc)
                else:
                    tm = isa.timing(instr, config)
                    if tm.unit == "queue":
                        halted = halted or instr.op == "HALT"
                        next_issue = t + tm.busy
                        last = max(last, t)
                    elif busy.get(tm.unit, 0) > t:
                        fault = (ErrorCode.UNIT_BUSY, pc)
                    else:
                        busy[tm.unit] = t + tm.busy
                        last = max(last, t + tm.span - 1)
                        next_issue = t + 1
                    if fault is None:
                        issued = w
                        pc += 1
        trace.append((issued, pc_t))
        if fault is not None:
            return trace, ("fault", t, int(fault[0]), fault[1])
        if halted and t >= last:
            return trace, ("idle", t)
    raise AssertionError("the reference did not finish")


def check_against_golden(words, config, kind, end):
    """ChipSim with ``words`` on the first slice of ``kind`` and HALT elsewhere agrees with ``end``."""
    p = config.slices.index(kind)
    programs = [[HALT] for _ in config.slices]
    programs[p] = list(words)
    sim = ChipSim(config)
    sim.load(programs)
    res = sim.run(max_cycles=MAX_CYCLES)
    assert res.cycles == end[1] + 1, (words, end, res.cycles)
    if end[0] == "fault":
        assert res.error is not None and tuple(res.error) == (end[2], p, end[3], end[1]), (end, res.error)
    else:
        assert res.error is None, res.error


# ---- programs -----------------------------------------------------------------------------------------
def unit_ops(kind):
    return [o for o in isa.OPCODES.values()
            if o.unit != "queue" and (o.kinds is None or kind in o.kinds)]


def random_unit_instruction(rng, config, kind, max_count=6):
    """A fault-free instruction for one of ``kind``'s units."""
    while True:
        spec = unit_ops(kind)[int(rng.integers(0, len(unit_ops(kind))))]
        vop = None
        if spec.name == "VOP":
            if not config.vxu_ops:
                continue
            vop = config.vxu_ops[int(rng.integers(0, len(config.vxu_ops)))]
        emit = bool(rng.integers(0, 2)) if spec.name == "MATMUL" else False
        kw = {}
        for name in isa.used_fields(spec.name, vop, emit):
            f = isa.FIELDS[name]
            if f.kind == "stream":
                kw[name] = isa.Stream(isa.DIRECTIONS[int(rng.integers(0, 2))], int(rng.integers(0, config.streams)))
            elif f.kind == "flag":
                kw[name] = emit if name == "emit" else bool(rng.integers(0, 2))
            elif f.kind == "vop":
                kw[name] = vop
            elif name == "count":
                kw[name] = int(rng.integers(1, max_count + 1))
            elif name == "addr":
                kw[name] = int(rng.integers(0, 8))
            elif name == "bank":
                kw[name] = int(rng.integers(0, config.mem_banks))
            else:
                kw[name] = int(rng.integers(f.lo, min(f.hi, f.lo + 1000) + 1))
        instr = Instruction(spec.name, **kw)
        if isa.fault(instr, config, kind) is None:
            return encode(instr)


def faulty_word(rng, config, kind, code):
    """A word that faults ``code`` statically on ``kind``."""
    while True:
        w = random_word(rng, config)
        f = isa.fault(isa.decode(w), config, kind)
        if f is not None and f.code == code:
            return w


def random_program(rng, config, kind):
    words = []
    for _ in range(int(rng.integers(1, 16))):
        r = rng.random()
        if r < 0.3:
            n = int(rng.choice([1, 1, 2, 3, int(rng.integers(1, 12)), int(rng.integers(50, 160))]))
            words.append(nop(n))
        elif r < 0.93:
            w = random_unit_instruction(rng, config, kind, max_count=int(rng.choice([1, 3, 8])))
            words.append(w)
            b = isa.timing(isa.decode(w), config).busy
            if b > 1 and rng.random() < 0.7:   # mostly wait for the unit (else often UNIT_BUSY)
                words.append(nop(max(1, b - 1 - int(rng.random() < 0.15))))
        else:
            codes = sorted(REACHABLE[kind] - {ErrorCode.OK})
            words.append(faulty_word(rng, config, kind, codes[int(rng.integers(0, len(codes)))]))
    r = rng.random()
    if r < 0.8:
        words.append(HALT)
        if rng.random() < 0.2:   # never reached
            words.append(random_unit_instruction(rng, config, kind))
    return words[:config.queue_depth]


def directed_programs(config, kind, rng):
    """The cases the random programs may miss (each a word list)."""
    progs = [
        [HALT],
        [nop(1), nop(1), HALT],
        [nop(1), nop(150), nop(2), HALT],
        [nop(1), nop(1)],                            # runs off the program: ILLEGAL_OPCODE at pc 2
        [nop(1)] * 6 + [HALT],                       # a longer program ...
        [nop(1)] * 2,                                # ... then a shorter one: the old words are gone
        [0],
    ]
    one = [random_unit_instruction(np.random.default_rng(s), config, kind, max_count=1) for s in range(4)]
    progs.append(one + [HALT])                       # back-to-back count-1 operations
    for spec in unit_ops(kind):
        # an operation busy b >= 2 cycles, then the same unit at once (UNIT_BUSY), after a NOP b - 2 (still
        # busy), after a NOP b - 1 (free)
        cands = [w for w in (random_unit_instruction(rng, config, kind, max_count=3) for _ in range(300))
                 if isa.decode(w).op == spec.name and isa.timing(isa.decode(w), config).busy >= 2]
        if not cands:     # SETQ: busy 1
            continue
        long = cands[0]
        b = isa.timing(isa.decode(long), config).busy
        progs += [[long, long, HALT], [long, nop(b - 1), long, HALT], [long, HALT],   # span after HALT
                  [nop(3), long, nop(1), HALT]]
        if b > 2:
            progs.append([long, nop(b - 2), long, HALT])
    if kind == "mxu":
        mm = encode(Instruction("MATMUL", src="E0", count=2, addr=0, emit=False))
        progs.append([mm, HALT])                     # results in flight without emit keep idle low
    for code in sorted(REACHABLE[kind] - {ErrorCode.OK}):
        w = faulty_word(rng, config, kind, code)
        progs += [[w, HALT], [nop(2), w, HALT]]
    if config.queue_depth <= 16:
        progs += [[nop(1)] * config.queue_depth,     # QUEUE_OVERRUN at pc = queue_depth
                  [nop(3)] * config.queue_depth,
                  [nop(1)] * (config.queue_depth - 1) + [HALT]]
    return progs


# ---- the simulation -----------------------------------------------------------------------------------
class StartResets(wiring.Component):
    """``dut`` reset by its own ``start`` through ``ResetInserter``, as ``rtl.chip`` composes the queues."""

    def __init__(self, dut):
        self.dut = dut
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = ResetInserter({"sync": self.dut.start})(self.dut)
        return m


def run_programs(config, kind, runs, inserter=False):
    """Load, start and run each ``(words, reset_with_start, pauses)`` in one simulation; per run
    ``(trace, end)`` in the shape of ``reference``. ``pauses``: cycle → run-low cycles before it. With
    ``inserter`` START itself is the reset (``reset_with_start`` is ignored)."""
    q = InstructionQueue(config, kind)
    top = StartResets(q) if inserter else ResetHarness(q)
    results = []

    async def bench(ctx):
        for words, reset, pauses in runs:
            await load_and_start(ctx, q, words)      # START right after the last load
            if not inserter:
                ctx.set(top.rst, reset)
            await ctx.tick()
            ctx.set(q.start, 0)
            if not inserter:
                ctx.set(top.rst, 0)
            trace, end = [], None
            for t in range(MAX_CYCLES):
                for _ in range(pauses.get(t, 0)):    # nothing happens while run is low
                    ctx.set(q.run, 0)
                    pc = ctx.get(q.pc)
                    assert not ctx.get(q.issue) and not ctx.get(q.fault)
                    await ctx.tick()
                    assert ctx.get(q.pc) == pc
                ctx.set(q.run, 1)
                issued = ctx.get(q.word) if ctx.get(q.issue) else None
                trace.append((issued, ctx.get(q.pc)))
                if ctx.get(q.fault):
                    end = ("fault", t, ctx.get(q.fault_code), ctx.get(q.pc))
                else:
                    assert ctx.get(q.fault_code) == 0
                    if ctx.get(q.idle):
                        end = ("idle", t)
                await ctx.tick()
                if end is not None:
                    break
            ctx.set(q.run, 0)
            results.append((trace, end))

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


#: The kinds each configuration has (the link queue, whose SEND/RECV fault at run time on a lone chip, is
#: checked through the chip against golden in tests/test_link_rtl.py; its rt_pc port below).
CASES = [(cfg, k, n) for cfg, n in ((TINY, 120), (SMALL, 60), (Q8, 20)) for k in RTL_SLICE_KINDS if k in cfg.slices]


@pytest.mark.parametrize("config, kind, n_random", CASES, ids=[f"{c.name}-{k}" for c, k, _ in CASES])
def test_queue_matches_reference(config, kind, n_random):
    rng = np.random.default_rng(sum(map(ord, config.name + kind)))
    programs = directed_programs(config, kind, rng) + [random_program(rng, config, kind) for _ in range(n_random)]
    runs = []
    for i, words in enumerate(programs):
        pauses = {}
        if rng.random() < 0.3:
            pauses = {int(rng.integers(0, 12)): int(rng.integers(1, 4)) for _ in range(2)}
        runs.append((words, i % 2, pauses))
    got = run_programs(config, kind, runs)
    ends = set()
    for (words, reset, pauses), (trace, end) in zip(runs, got):
        want_trace, want_end = reference(words, config, kind)
        check_against_golden(words, config, kind, want_end)
        what = f"{config.name} {kind} program {[hex(w) for w in words]} reset={reset} pauses={pauses}"
        assert end == want_end, f"{what}: end {end}, want {want_end}"
        assert trace == want_trace, f"{what}: trace {trace}, want {want_trace}"
        ends.add(end[0] if end[0] == "idle" else ErrorCode(end[2]))
    want_ends = {"idle"} | (REACHABLE[kind] - {ErrorCode.OK}) | {ErrorCode.UNIT_BUSY}
    if config.queue_depth <= 16:
        want_ends.add(ErrorCode.QUEUE_OVERRUN)
    assert want_ends <= ends, f"not covered: {want_ends - ends}"


@pytest.mark.parametrize("kind", list(RTL_SLICE_KINDS))
def test_start_as_reset_inserter(kind):
    """As ``rtl.chip`` wires it: START is the sync reset of the queue (through ``ResetInserter``)."""
    rng = np.random.default_rng(5)
    programs = directed_programs(TINY, kind, rng) + [random_program(rng, TINY, kind) for _ in range(10)]
    got = run_programs(TINY, kind, [(w, 0, {}) for w in programs], inserter=True)
    for words, result in zip(programs, got):
        assert result == reference(words, TINY, kind), [hex(w) for w in words]


def test_reset_keeps_program_and_start_reads_pc0():
    """A reset on its own (no START) keeps the loaded words and the length; START reads word 0 again."""
    q = InstructionQueue(TINY, "vxu")
    top = ResetHarness(q)
    seen = []

    async def bench(ctx):
        for a, w in enumerate([nop(2), HALT]):
            ctx.set(q.load_en, 1)
            ctx.set(q.load_addr, a)
            ctx.set(q.load_word, w)
            await ctx.tick()
        ctx.set(q.load_en, 0)
        for start in (0, 1):          # reset alone, then reset with START
            ctx.set(top.rst, 1)
            ctx.set(q.start, start)
            await ctx.tick()
            ctx.set(top.rst, 0)
            ctx.set(q.start, 0)
        ctx.set(q.run, 1)
        for _ in range(3):
            seen.append((ctx.get(q.issue), ctx.get(q.word), ctx.get(q.pc), ctx.get(q.opcode), ctx.get(q.idle)))
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [(1, nop(2), 0, isa.OPCODES["NOP"].code, 0), (0, HALT, 1, isa.OPCODES["HALT"].code, 0),
                    (1, HALT, 1, isa.OPCODES["HALT"].code, 1)]


def test_ports_and_parameter_checks():
    q = InstructionQueue(SMALL, "mem")
    Fragment.get(q, None)
    widths = {n: len(getattr(q, n)) for n in q.signature.members}
    assert widths == {"start": 1, "run": 1, "load_en": 1, "load_addr": 12, "load_word": 64,
                      "rt_fault": isa.ERROR_CODE_BITS, "issue": 1, "word": 64, "pc": isa.FAULT_PC_BITS, "opcode": 6,
                      "idle": 1, "fault": 1, "fault_code": isa.ERROR_CODE_BITS, "fault_pc": isa.FAULT_PC_BITS}
    assert InstructionQueue(TINY.replace(name="q5", queue_depth=5), "mem").addr_bits == 3
    with pytest.raises(ValueError, match="kind must be one of 'mem', 'mxu', 'vxu', 'link', not 'gpu'"):
        InstructionQueue(TINY, "gpu")
    with pytest.raises(TypeError, match="config must be a spec.config.ChipConfig"):
        InstructionQueue({}, "mem")


def test_link_queue_reports_the_slices_pc():
    """A link queue (``RT_PC_KINDS``) reports a run-time fault at the slice's ``rt_pc``, not ``pc - 1``, even
    after HALT; a static fault of the same cycle wins with its own pc; the other kinds have no ``rt_pc``."""
    from rtl.icu import RT_PC_KINDS
    assert RT_PC_KINDS == ("link",)
    config = TINY.with_links()
    assert "rt_pc" not in InstructionQueue(config, "mem").signature.members
    seen = {}
    for case, words, rt_at in (("after halt", [nop(2), HALT], 3), ("static wins", [nop(1), 0], 1)):
        q = InstructionQueue(config, "link")

        async def bench(ctx, q=q, words=words, rt_at=rt_at, case=case):
            await load_and_start(ctx, q, words)
            await ctx.tick()
            ctx.set(q.start, 0)
            ctx.set(q.run, 1)
            for t in range(6):
                ctx.set(q.rt_fault, isa.LinkErrorCode.RECV_EMPTY if t == rt_at else 0)
                ctx.set(q.rt_pc, 5)
                if ctx.get(q.fault):
                    seen[case] = (t, ctx.get(q.fault_code), ctx.get(q.fault_pc))
                    return
                await ctx.tick()

        sim = Simulator(q)
        sim.add_clock(1e-8)
        sim.add_testbench(bench)
        sim.run()
    assert seen["after halt"] == (3, isa.LinkErrorCode.RECV_EMPTY, 5)
    assert seen["static wins"] == (1, ErrorCode.ILLEGAL_OPCODE, 1)
