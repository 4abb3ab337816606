"""READX/WRITEX and INDEX_RANGE on the whole chip, RTL against ``golden.chip``: cycles, error (code, slice, pc)
and every MEM word must agree (``sim.chip_run.run_program``).

Two back ends run the same programs: the Verilator model of ``tiny`` (one build, shared with
tests/test_chip_verilator.py), and ``AmaranthChip`` (``rtl.chip.Chip`` in Amaranth's simulator, no build: the
mutation check's killers, docs/mutants.md) on ``tiny`` with 16-word banks, so that reading every word back
stays quick.

The index path of the directed programs: mem0 (slice 0) READs index vectors from word 0 on at cycle 0, so
word ``k`` is on E0 at slice ``q`` during ``MEM_READ_LATENCY + q + k``; a READX/WRITEX on slice ``q`` issued
one cycle before (``MEM_INDEX_OFFSET``) samples word ``k``.
"""
import numpy as np
import pytest
from amaranth.sim import Simulator

from rtl.chip import Chip
from sim.chip_run import run_program
from spec import isa
from spec.asm import assemble
from spec.config import PRESETS
from spec.isa import MEM_INDEX_OFFSET, MEM_READ_LATENCY, ErrorCode

TINY = PRESETS["tiny"]
#: ``tiny`` with 16-word banks: the Amaranth-simulator runs read back 3 × 2 × 16 words, not 384.
TINY16 = TINY.replace(name="tiny16", mem_depth=16)
L = TINY.lanes
MEM1, MEM2 = TINY.slice_index("mem1"), TINY.slice_index("mem2")


class _Played:
    def __init__(self, responses, cycles, seconds):
        self.responses, self.harness_cycles, self.sim_seconds = responses, cycles, seconds
        self.loop_seconds = self.vcd_path = self.run_dir = None


class AmaranthChip:
    """``rtl.chip.Chip(config)`` in Amaranth's simulator with ``ChipSimulator.play``'s interface (always ready,
    always valid), so ``run_program`` can compare it with golden."""

    def __init__(self, config):
        self.config = config

    def play(self, commands, n_responses, max_cycles=100_000, **_):
        import time
        dut = Chip(self.config)
        responses = []
        cycles = [0]

        async def bench(ctx):
            ctx.set(dut.resp.ready, 1)
            pending = list(commands)
            for _ in range(max_cycles):
                ctx.set(dut.cmd.valid, int(bool(pending)))
                if pending:
                    ctx.set(dut.cmd.payload.as_value(), pending[0])
                take = bool(pending) and ctx.get(dut.cmd.ready)
                if ctx.get(dut.resp.valid):
                    responses.append(int(ctx.get(dut.resp.payload.data)))
                await ctx.tick()
                cycles[0] += 1
                if take:
                    pending.pop(0)
                if not pending and len(responses) == n_responses:
                    return
            raise AssertionError(f"{len(responses)} of {n_responses} responses after {max_cycles} cycles")

        t0 = time.perf_counter()
        sim = Simulator(dut)
        sim.add_clock(1e-8)
        sim.add_testbench(bench)
        sim.run()
        return _Played(responses, cycles[0], time.perf_counter() - t0)


@pytest.fixture(scope="module")
def verilator_chip():
    from sim.chip_verilator import ChipSimulator
    return ChipSimulator(TINY)


def check(config, sim, text, data=(), error=None):
    """Run ``text`` with ``data`` on ``sim``; RTL must equal golden, and the error be ``error``
    (``(code, slice name, pc)`` or ``None``). Returns the ``ChipRunResult``."""
    r = run_program(config, assemble(text, config), list(data), simulator=sim)
    assert r.match, f"RTL and golden differ: {r.mismatch} (cycles RTL {r.cycles}, golden {r.golden_cycles}; " \
                    f"error RTL {r.error}, golden {r.golden_error})"
    want = None if error is None else {"code": error[0].name, "slice": error[1], "pc": error[2]}
    assert r.golden_error == want, r.golden_error
    return r


def index_words(xs, lanes=None):
    """Index vectors for mem0's bank 0 from word 0: vector ``k`` holds ``xs[k]`` in every lane (or only in
    ``lanes[k]``, the other lanes a poison value that faults if taken)."""
    v = np.full((len(xs), L), -7, np.int64) if lanes else np.zeros((len(xs), L), np.int64)
    for k, x in enumerate(xs):
        if lanes:
            v[k, lanes[k]] = x
        else:
            v[k, :] = x
    return ("mem0", 0, 0, v)


def payload(config, slice_name, bank=1, n=None, seed=0):
    n = config.mem_depth if n is None else n
    rng = np.random.default_rng(seed)
    return (slice_name, bank, 0, rng.integers(-2**31, 2**31, (n, L)))


def feed(n):
    """mem0: READ ``n`` index words onto E0 from cycle 0."""
    return f".slice mem0\n    READ bank=0 addr=0 count={n} -> E0\n    HALT\n"


def t_issue(q, k):
    """Issue cycle of a READX/WRITEX on slice ``q`` that samples index word ``k``."""
    return MEM_READ_LATENCY + q + k - MEM_INDEX_OFFSET


def nop_to(cycle):
    return f"    NOP {cycle}\n" if cycle > 0 else ""


# ---- the programs (each a function of the configuration: (text, data, error)) ---------------------------
def prog_readx_then_read(c):
    """mem1: READX count 5 (lane 1 of index word 0, at the limit), a READ as soon as the read unit is free
    (busy count + 1: its words follow READX's at once), then READX count 1 (lane 3 of word 8); mem2 WRITEs
    what passes on E1 into its bank 0."""
    D = c.mem_depth
    t0 = t_issue(MEM1, 0)
    count = 5
    t_read = t0 + isa.timing(isa.Instruction("READX", src="E0", bank=1, addr=2, count=count, lane=1, dst="E1"),
                             c).busy
    t_w = t0 + isa.READX_LATENCY + (MEM2 - MEM1) - isa.MEM_WRITE_LATENCY
    text = feed(9) + f""".slice mem1
{nop_to(t0)}    READX E0 bank=1 addr=2 count={count} lane=1 -> E1
    NOP {t_read - t0 - 1}
    READ bank=1 addr=0 count=2 -> E1
    NOP 1
    READX E0 bank=1 addr=0 count=1 lane=3 -> E1
    HALT
.slice mem2
    NOP {t_w}
    WRITE E1 bank=0 addr=0 count=10
    HALT
"""
    return text, [index_words([D - 2 - count] * 9), payload(c, "mem1")], None


def prog_writex_back_to_back(c):
    """mem1: WRITEX count 1 then WRITEX count 2 in the next cycle: item 0 of each at the index of its own
    sampling cycle (index words 3 and 4 differ; the second one at the limit), data from mem2 on W1."""
    D = c.mem_depth
    t0 = t_issue(MEM1, 3)
    text = feed(5) + f""".slice mem1
{nop_to(t0)}    WRITEX W1 E0 bank=0 addr=1 count=1 lane=0
    WRITEX W1 E0 bank=0 addr=0 count=2 lane=2
    HALT
.slice mem2
    READ bank=1 addr=0 count=6 -> W1
    HALT
"""
    return text, [index_words([0, 0, 0, 3, D - 2]), payload(c, "mem2", n=6)], None


def prog_limit(c, past, op="READX", lane=2):
    """mem1: one READX/WRITEX with index ``D - addr - count`` (+1 if ``past``: INDEX_RANGE at its pc)."""
    D = c.mem_depth
    addr, count = 3, 4
    x = D - addr - count + int(past)
    t0 = t_issue(MEM1, 0)
    ins = (f"READX E0 bank=1 addr={addr} count={count} lane={lane} -> E1" if op == "READX"
           else f"WRITEX E2 E0 bank=1 addr={addr} count={count} lane={lane}")
    pc = 1 if t0 > 0 else 0
    text = feed(1) + f".slice mem1\n{nop_to(t0)}    {ins}\n    HALT\n"
    err = (ErrorCode.INDEX_RANGE, "mem1", pc) if past else None
    return text, [index_words([x], lanes=[lane]), payload(c, "mem1")], err


def prog_negative(c, op):
    t0 = t_issue(MEM2, 0)
    ins = ("READX E0 bank=0 addr=0 count=1 lane=0 -> E1" if op == "READX"
           else "WRITEX E3 E0 bank=0 addr=0 count=1 lane=0")
    text = feed(1) + f".slice mem2\n{nop_to(t0)}    {ins}\n    HALT\n"
    return text, [index_words([-1]), payload(c, "mem2", bank=0)], (ErrorCode.INDEX_RANGE, "mem2", 1)


def prog_bad_lane(c):
    """lane = lanes is BAD_FIELD (static: at its issue, nothing sampled)."""
    w = isa.encode(isa.Instruction("READX", src="E0", bank=0, addr=0, count=1, lane=0, dst="E1"))
    w |= c.lanes << isa.FIELDS["lane"].lsb                 # the assembler refuses it: a raw word
    text = f".slice mem1\n    NOP 2\n    .word 0x{w:016x}\n    HALT\n"
    return text, [], (ErrorCode.BAD_FIELD, "mem1", 1)


def prog_two_slices(c, second_static=False, first_static=False):
    """mem1 and mem2 fault in the same cycle (index words 3 and 0 are both out of range): mem1, the lower
    slice, wins; with ``first_static`` mem1's fault is a static one (the all-zero word) instead, with
    ``second_static`` mem2's."""
    D = c.mem_depth
    k1 = MEM2 - MEM1        # mem1 samples word k1 in the cycle mem2 samples word 0
    t = t_issue(MEM2, 0)
    w1 = ".word 0x0" if first_static else "READX E0 bank=0 addr=0 count=2 lane=1 -> E1"
    w2 = ".word 0x0" if second_static else "WRITEX E1 E0 bank=0 addr=0 count=2 lane=3"
    t1 = t + 1 if first_static else t          # a static fault is raised at issue, a run-time one a cycle later
    t2 = t + 1 if second_static else t
    xs = [D] + [0] * (k1 - 1) + [-5]
    text = feed(k1 + 1) + f".slice mem1\n{nop_to(t1)}    {w1}\n    HALT\n" \
                          f".slice mem2\n{nop_to(t2)}    {w2}\n    HALT\n"
    code = ErrorCode.ILLEGAL_OPCODE if first_static else ErrorCode.INDEX_RANGE
    return text, [index_words(xs)], (code, "mem1", 1)


def prog_same_slice_static_wins(c):
    """mem1: a READX whose index is out of range, then the all-zero word: both fault in the READX's sampling
    cycle on mem1; the static ILLEGAL_OPCODE (the lower code) at the next pc wins."""
    t0 = t_issue(MEM1, 0)
    text = feed(1) + f".slice mem1\n{nop_to(t0)}    READX E0 bank=0 addr=0 count=1 lane=0 -> E1\n    .word 0x0\n"
    return text, [index_words([-1])], (ErrorCode.ILLEGAL_OPCODE, "mem1", 2)


def prog_fault_while_writing(c):
    """A WRITE streams index words into mem2 while mem1's READX faults on word 4: mem2's stores up to the
    fault cycle land, later ones do not."""
    t0 = t_issue(MEM1, 4)
    text = feed(8) + f""".slice mem1
{nop_to(t0)}    READX E0 bank=0 addr=0 count=1 lane=0 -> E2
    HALT
.slice mem2
    NOP {MEM_READ_LATENCY + MEM2 - isa.MEM_WRITE_LATENCY}
    WRITE E0 bank=1 addr=0 count=8
    HALT
"""
    return text, [index_words([1, 2, 3, 4, c.mem_depth, 6, 7, 8])], (ErrorCode.INDEX_RANGE, "mem1", 1)


def prog_mem0_every_lane(c):
    """mem0 (the westmost slice: its indices come from mem1 on W0) runs READX and WRITEX on every lane."""
    D = c.mem_depth
    mem0, mem1 = c.slice_index("mem0"), MEM1
    t0 = MEM_READ_LATENCY + (mem1 - mem0) - MEM_INDEX_OFFSET      # samples mem1's word 0
    text = f""".slice mem1
    READ bank=0 addr=0 count=5 -> W0
    HALT
.slice mem0
    NOP {t0}
    READX W0 bank=1 addr=1 count=1 lane=0 -> E1
    NOP 1
    READX W0 bank=1 addr=0 count=1 lane=1 -> E1
    WRITEX E2 W0 bank=0 addr=2 count=1 lane=2
    WRITEX E2 W0 bank=0 addr=0 count=1 lane=3
    HALT
"""
    xs = np.array([[D - 2, 0, 0, 0], [0] * L, [0, D - 1, 0, 0], [0, 0, D - 3, 0], [0, 0, 0, 5]])
    return text, [("mem1", 0, 0, xs), payload(c, "mem0", bank=0)], None


def directed(c):
    return {
        "readx_then_read": prog_readx_then_read(c),
        "writex_back_to_back": prog_writex_back_to_back(c),
        "readx_at_limit": prog_limit(c, False),
        "readx_past_limit": prog_limit(c, True),
        "writex_at_limit": prog_limit(c, False, "WRITEX", lane=0),
        "writex_past_limit": prog_limit(c, True, "WRITEX", lane=3),
        "readx_negative": prog_negative(c, "READX"),
        "writex_negative": prog_negative(c, "WRITEX"),
        "bad_lane": prog_bad_lane(c),
        "two_slices_index": prog_two_slices(c),
        "two_slices_static_second": prog_two_slices(c, second_static=True),
        "two_slices_static_first": prog_two_slices(c, first_static=True),
        "same_slice_static_wins": prog_same_slice_static_wins(c),
        "fault_while_writing": prog_fault_while_writing(c),
        "mem0_every_lane": prog_mem0_every_lane(c),
    }


NAMES = list(directed(TINY))


# ---- random programs ---------------------------------------------------------------------------------
def random_case(seed, c):
    """mem0 streams index vectors (a few lanes out of range) onto E0, then data onto E1; mem1 and mem2 run
    random READ/WRITE/READX/WRITEX with random lanes, NOPs between them keeping the units free (sometimes
    not: UNIT_BUSY), HALT at the end."""
    rng = np.random.default_rng(seed)
    D = c.mem_depth
    n = min(24, D)
    xs = rng.integers(0, D // 2, (n, L))
    bad = rng.random((n, L)) < 0.03
    xs[bad] = rng.choice([-1, -2**31, D, 2**31 - 1], size=int(bad.sum()))
    data = [("mem0", 0, 0, xs), payload(c, "mem1", bank=0, seed=seed), payload(c, "mem1", bank=1, seed=seed + 1),
            payload(c, "mem2", bank=0, seed=seed + 2), payload(c, "mem2", bank=1, seed=seed + 3)]
    text = f".slice mem0\n    READ bank=0 addr=0 count={n} -> E0\n    NOP {n - 1}\n" \
           f"    READ bank=1 addr=0 count={n} -> E1\n    HALT\n"
    for name in ("mem1", "mem2"):
        text += f".slice {name}\n    NOP {int(rng.integers(1, 6))}\n"
        for _ in range(int(rng.integers(2, 7))):
            op = str(rng.choice(["READ", "WRITE", "READX", "WRITEX"], p=[0.15, 0.15, 0.35, 0.35]))
            count = int(rng.choice([1, 1, 2, int(rng.integers(1, 6))]))
            addr = int(rng.integers(0, D // 4))
            bank = int(rng.integers(0, c.mem_banks))
            lane = int(rng.integers(0, L))
            src = str(rng.choice(["E0", "E1", "E2", "W0"]))
            dst = str(rng.choice(["E1", "E2", "W0", "W1"]))      # E0 carries the indices
            ins = {"READ": f"READ bank={bank} addr={addr} count={count} -> {dst}",
                   "WRITE": f"WRITE {src} bank={bank} addr={addr} count={count}",
                   "READX": f"READX E0 bank={bank} addr={addr} count={count} lane={lane} -> {dst}",
                   "WRITEX": f"WRITEX {src} E0 bank={bank} addr={addr} count={count} lane={lane}"}[op]
            text += f"    {ins}\n"
            busy = count + (1 if op == "READX" else 0)
            gap = max(1, busy - 1 + int(rng.integers(0, 3)) - int(rng.random() < 0.1))
            text += f"    NOP {gap}\n"
        text += "    HALT\n"
    return text, data


# ---- the tests ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_directed_amaranth(name):
    text, data, error = directed(TINY16)[name]
    check(TINY16, AmaranthChip(TINY16), text, data, error)


@pytest.mark.parametrize("name", NAMES)
def test_directed_verilator(verilator_chip, name):
    text, data, error = directed(TINY)[name]
    check(TINY, verilator_chip, text, data, error)


def test_random_verilator(verilator_chip):
    """40 random programs on the Verilator ``tiny``: clean runs and INDEX_RANGE/UNIT_BUSY faults among them."""
    codes = set()
    for seed in range(40):
        text, data = random_case(seed, TINY)
        r = run_program(TINY, assemble(text, TINY), data, simulator=verilator_chip)
        assert r.match, f"seed {seed}: {r.mismatch} (RTL {r.cycles} {r.error}, golden {r.golden_cycles} " \
                        f"{r.golden_error})\n{text}"
        codes.add(None if r.golden_error is None else r.golden_error["code"])
    assert {None, "INDEX_RANGE"} <= codes, codes


@pytest.mark.parametrize("seed", range(3))
def test_random_amaranth(seed):
    text, data = random_case(1000 + seed, TINY16)
    r = run_program(TINY16, assemble(text, TINY16), data, simulator=AmaranthChip(TINY16))
    assert r.match, f"seed {seed}: {r.mismatch}\n{text}"


def test_directed_programs_do_what_they_say():
    """Golden alone: the two-slice programs really fault on both slices in one cycle (each alone faults at
    the same cycle), and the limit programs sample the index they mean to."""
    from golden.chip import ChipSim
    for c in (TINY, TINY16):
        progs = directed(c)
        text, data, _ = progs["two_slices_index"]
        cycles = set()
        for keep in ("mem1", "mem2"):
            sim = ChipSim(c)
            lines, out, skip = text.splitlines(), [], False
            for line in lines:
                if line.startswith(".slice"):
                    skip = line.split()[1] not in ("mem0", keep)
                if not skip:
                    out.append(line)
            sim.load(assemble("\n".join(out) + "\n", c))
            for s, b, a, v in data:
                sim.write_mem(s, b, a, v)
            res = sim.run(max_cycles=1000)
            assert res.error is not None and res.error.code == ErrorCode.INDEX_RANGE, (keep, res.error)
            cycles.add(res.error.cycle)
        assert len(cycles) == 1, cycles
        assert isa.timing(isa.Instruction("READX", src="E0", bank=0, addr=0, count=3, lane=0, dst="E1"),
                          c).busy == 4
