"""The MEM slice (rtl/mem.py) in Amaranth's simulator: random READ/WRITE/READX/WRITEX schedules against the
contract (an index out of range raises ``rt_fault`` = INDEX_RANGE in its sampling cycle and that instruction
does nothing; the slice goes on, as the chip would not)."""
import numpy as np
import pytest

from rtl.mem import MemSlice
from spec import isa
from spec.config import PRESETS
from spec.isa import Instruction, Stream, encode
from tests.slice_bench import lanes_of, run_slice

TINY = PRESETS["tiny"]
#: More than two banks (a bank index of two bits: a dropped bit shows) and a depth that is not a power of two
#: (an address past the end does not wrap to a real word). Small, so the host-port fill stays quick.
BANKS3 = TINY.replace(name="banks3", mem_banks=3, mem_depth=24)


def _stream(rng, config):
    return Stream("EW"[rng.integers(2)], int(rng.integers(config.streams)))


def _see(streams, u, s):
    return streams[u][0 if s.direction == "E" else 1, s.index]


def random_index(rng, config, addr, count):
    """A READX/WRITEX index: mostly in range (often at the limit), else one past it, negative or huge."""
    top = config.mem_depth - addr - count           # the largest index in range
    r = rng.random()
    if r < 0.55:
        return int(rng.integers(0, top + 1))
    if r < 0.75:
        return int(rng.choice([0, top]))
    return int(rng.choice([top + 1, top + 1 + int(rng.integers(0, 100)), -1, -int(rng.integers(1, 1000)),
                           -2**31, 2**31 - 1]))


def _random_schedule(rng, config, cycles, indexed=False, streams=None):
    """READs and WRITEs (and with ``indexed`` READXs and WRITEXs, their index lanes written into ``streams``
    at their sampling cycles) at random times, each unit issued only when free (as the ICU guarantees)."""
    issues, ops = {}, []
    free = {"read": 0, "write": 0}
    t = 0
    while t < cycles - 12:
        unit = "read" if rng.random() < 0.5 else "write"
        if free[unit] <= t and rng.random() < 0.6:
            bank = int(rng.integers(config.mem_banks))
            count = int(rng.integers(1, 6))
            addr = int(rng.integers(0, config.mem_depth - count + 1))
            stream = _stream(rng, config)
            x = indexed and rng.random() < 0.6
            if unit == "read" and x:
                ins = Instruction("READX", src=_stream(rng, config), bank=bank, addr=addr, count=count,
                                  lane=int(rng.integers(config.lanes)), dst=stream)
            elif unit == "read":
                ins = Instruction("READ", bank=bank, addr=addr, count=count, dst=stream)
            elif x:
                ins = Instruction("WRITEX", src=stream, src2=_stream(rng, config), bank=bank, addr=addr,
                                  count=count, lane=int(rng.integers(config.lanes)))
            else:
                ins = Instruction("WRITE", src=stream, bank=bank, addr=addr, count=count)
            if x:
                idx = ins.src if ins.op == "READX" else ins.src2
                u = t + isa.MEM_INDEX_OFFSET
                streams[u][0 if idx.direction == "E" else 1, idx.index, ins.lane] = \
                    random_index(rng, config, addr, count)
            issues[t] = encode(ins)
            ops.append((t, ins))
            free[unit] = t + isa.timing(ins, config).busy
        t += 1
    return issues, ops


def _expected(config, mem0, ops, streams, cycles):
    """The contract: READ presents addr + i during t + 1 + i (seeing stores before that cycle) and puts
    the word during t + MEM_READ_LATENCY + i; WRITE stores stream value seen at t + 1 + i at its end.
    READX/WRITEX: the index x (lane ``lane`` of src/src2 during t + MEM_INDEX_OFFSET) shifts the words by x
    and READX's reads by one cycle; an index ``spec.isa.index_fault`` refuses faults that cycle and the
    instruction does nothing. Returns ``(puts, mem, faults)`` (faults: the cycles of INDEX_RANGE)."""
    mem = mem0.copy()
    puts, faults, xs = {}, set(), {}
    for u in range(cycles):
        for k, (t, ins) in enumerate(ops):
            if ins.op in ("READX", "WRITEX") and u == t + isa.MEM_INDEX_OFFSET:
                x = int(_see(streams, u, ins.src if ins.op == "READX" else ins.src2)[ins.lane])
                if isa.index_fault(ins, x, config) is None:
                    xs[k] = x
                else:
                    faults.add(u)
        for k, (t, ins) in enumerate(ops):
            if ins.op == "READ":
                i, base = u - t - isa.MEM_DECODE_STAGES, ins.addr
            elif ins.op == "READX" and k in xs:
                i, base = u - t - isa.MEM_INDEX_OFFSET - isa.MEM_DECODE_STAGES, ins.addr + xs[k]
            else:
                continue
            if 0 <= i < ins.count:
                puts[u + isa.MEM_SRAM_READ_STAGES] = (ins.dst.bits(), mem[ins.bank, base + i].copy())
        for k, (t, ins) in enumerate(ops):
            i = u - t - isa.MEM_WRITE_LATENCY
            base = ins.addr if ins.op == "WRITE" else ins.addr + xs[k] if ins.op == "WRITEX" and k in xs else None
            if base is not None and 0 <= i < ins.count:
                mem[ins.bank, base + i] = _see(streams, u, ins.src)
    return {t: p for t, p in puts.items() if t < cycles}, mem, faults


async def host_write(ctx, dut, items):
    """Write ``(bank, addr) -> lanes`` items through the host port, one per cycle."""
    for (b, a), v in items:
        ctx.set(dut.host_we, 1)
        ctx.set(dut.host_bank, b)
        ctx.set(dut.host_addr, a)
        ctx.set(dut.host_wdata, [int(x) for x in v])
        await ctx.tick()
    ctx.set(dut.host_we, 0)


async def host_read(ctx, dut, c, addrs):
    """Read ``(bank, addr)`` words through the host port (2-cycle latency, pipelined): {address: lanes}."""
    got = {}
    for k in range(len(addrs) + 2):
        if k < len(addrs):
            ctx.set(dut.host_bank, addrs[k][0])
            ctx.set(dut.host_addr, addrs[k][1])
        await ctx.delay(1e-9)
        if k >= 2:
            got[addrs[k - 2]] = [int(x) for x in lanes_of(ctx.get(dut.host_rdata), c.lanes)]
        await ctx.tick()
    return got


def _check_run(c, seed, cycles, issues, ops, streams, rng):
    mem0 = rng.integers(-2**31, 2**31, size=(c.mem_banks, c.mem_depth, c.lanes))
    dut = MemSlice(c)
    final = np.zeros_like(mem0)
    faults = set()

    def extra(ctx, t):
        code = ctx.get(dut.rt_fault)
        assert code in (0, isa.ErrorCode.INDEX_RANGE), f"seed {seed}, cycle {t}: rt_fault = {code}"
        if code:
            faults.add(t)

    addrs = [(b, a) for b in range(c.mem_banks) for a in range(c.mem_depth)]

    async def before(ctx):    # fill the banks through the host port
        await host_write(ctx, dut, [(ba, mem0[ba]) for ba in addrs])

    async def after(ctx):     # read everything back through the host port
        for ba, v in (await host_read(ctx, dut, c, addrs)).items():
            final[ba] = v

    puts = run_slice(dut, c, issues, streams, cycles, before=before, after=after, extra=extra)
    want_puts, want_mem, want_faults = _expected(c, mem0, ops, streams, cycles)
    assert faults == want_faults, f"seed {seed}: INDEX_RANGE in cycles {sorted(faults)}, expected " \
                                  f"{sorted(want_faults)}"
    assert sorted(puts) == sorted(want_puts), f"seed {seed}: stream writes at cycles {sorted(puts)}, " \
                                              f"expected {sorted(want_puts)}"
    for t in sorted(want_puts):
        assert puts[t][0] == want_puts[t][0], f"seed {seed}, cycle {t}: stream {puts[t][0]}"
        np.testing.assert_array_equal(puts[t][1], want_puts[t][1], err_msg=f"seed {seed}, cycle {t}")
    bad = np.argwhere(final != want_mem)
    assert not len(bad), f"seed {seed}: bank/word/lane {tuple(bad[0])}: {final[tuple(bad[0])]} != " \
                         f"{want_mem[tuple(bad[0])]}"
    return want_faults


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("c", [TINY, BANKS3], ids=lambda c: c.name)
def test_random_reads_and_writes(c, seed):
    print(f"{c.name} seed {seed}")
    rng = np.random.default_rng(seed)
    cycles = 120
    streams = rng.integers(-2**31, 2**31, size=(cycles, 2, c.streams, c.lanes))
    issues, ops = _random_schedule(rng, c, cycles)
    _check_run(c, seed, cycles, issues, ops, streams, rng)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("c", [TINY, BANKS3], ids=lambda c: c.name)
def test_random_indexed_reads_and_writes(c, seed):
    """READX/WRITEX mixed with READ/WRITE: random lanes and indices (in range, at the limit, one past it,
    negative): words, stream writes and the cycles of INDEX_RANGE as the contract says."""
    rng = np.random.default_rng(100 + seed)
    cycles = 160
    streams = rng.integers(-2**31, 2**31, size=(cycles, 2, c.streams, c.lanes))
    issues, ops = _random_schedule(rng, c, cycles, indexed=True, streams=streams)
    assert {"READX", "WRITEX"} <= {ins.op for _, ins in ops}
    faults = _check_run(c, seed, cycles, issues, ops, streams, rng)
    assert faults, f"seed {seed}: no index out of range in the schedule"


def test_directed_indexed():
    """Directed cases on ``tiny``: READX (count 3) then a READ as soon as the read unit is free (busy count + 1:
    its words follow READX's at once); WRITEX count 1 then WRITEX at once (item 0 of each at the index of its
    own sampling cycle); a READX one past the limit while a WRITE stores (the WRITE's store lands), then one
    exactly at the limit; a negative WRITEX index (stores nothing) then a READ of those words; a WRITEX at
    the limit."""
    c = TINY
    D = c.mem_depth
    E0, E1, E2, W1 = (Stream.parse(s) for s in ("E0", "E1", "E2", "W1"))
    prog = {
        0: Instruction("READX", src=E0, bank=1, addr=5, count=3, lane=2, dst=E1),
        4: Instruction("READ", bank=0, addr=7, count=2, dst=E2),
        10: Instruction("WRITEX", src=E1, src2=W1, bank=0, addr=3, count=1, lane=3),
        11: Instruction("WRITEX", src=E1, src2=W1, bank=0, addr=3, count=2, lane=1),
        14: Instruction("WRITE", src=E2, bank=1, addr=60, count=4),
        15: Instruction("READX", src=E0, bank=0, addr=D - 2, count=2, lane=0, dst=E1),    # x = 1: one past
        20: Instruction("READX", src=E0, bank=0, addr=D - 2, count=2, lane=3, dst=E1),    # x = 0: at the limit
        25: Instruction("WRITEX", src=E1, src2=W1, bank=1, addr=0, count=3, lane=0),      # x = -1
        26: Instruction("READ", bank=1, addr=0, count=3, dst=E2),
        30: Instruction("WRITEX", src=E1, src2=W1, bank=1, addr=10, count=2, lane=2),     # x = D - 12: at the limit
    }
    cycles = 40
    rng = np.random.default_rng(9)
    streams = rng.integers(-2**31, 2**31, size=(cycles, 2, c.streams, c.lanes))
    for t, x in ((1, 20), (16, 1), (21, 0)):                  # READX indices on E0 (lane as the program says)
        streams[t][0, 0, prog[t - 1].lane] = x
    for t, x in ((11, 7), (12, 30), (26, -1), (31, D - 12)):  # WRITEX indices on W1
        streams[t][1, 1, prog[t - 1].lane] = x
    issues = {t: encode(ins) for t, ins in prog.items()}
    faults = _check_run(c, 0, cycles, issues, sorted(prog.items()), streams, rng)
    assert faults == {16, 26}, faults


def test_run_low_freezes_the_units():
    """A READ issued on the last run cycle does nothing once run falls (the chip stopped)."""
    c = TINY
    dut = MemSlice(c)
    cycles = 3
    streams = np.zeros((cycles, 2, c.streams, c.lanes), np.int64)
    issues = {cycles - 1: encode(Instruction("WRITE", src="E0", bank=0, addr=0, count=4))}
    seen = []

    async def after(ctx):
        for _ in range(6):
            await ctx.delay(1e-9)
            seen.append(ctx.get(dut.write_left))
            await ctx.tick()
    run_slice(dut, c, issues, streams, cycles, after=after)
    assert set(seen) == {4}, seen   # registered, never counted down


@pytest.mark.parametrize("c", [TINY, BANKS3], ids=lambda c: c.name)
def test_host_port_ignores_out_of_range(c):
    """Host writes to a bank or address out of range are ignored (they do not wrap onto a real word) and
    such reads return 0; in-range words keep their values."""
    dut = MemSlice(c)
    rng = np.random.default_rng(5)
    words = {(b, a): [int(x) for x in rng.integers(-2**31, 2**31, c.lanes)]
             for b in range(c.mem_banks) for a in (0, 1, c.mem_depth - 1)}
    wild = [(c.mem_banks, 0), (0, c.mem_depth), (c.mem_banks - 1, c.mem_depth + 1), (0, (1 << 16) - 1),
            (15, 0)]
    got = {}

    async def before(ctx):
        await host_write(ctx, dut, [*words.items(), *((w, [-1] * c.lanes) for w in wild)])
        got.update(await host_read(ctx, dut, c, [*words, *wild]))

    run_slice(dut, c, {}, np.zeros((1, 2, c.streams, c.lanes), np.int64), 1, before=before)
    for key, v in words.items():
        assert got[key] == v, f"{c.name}: bank/word {key}: {got[key]} != {v}"
    for key in wild:
        assert got[key] == [0] * c.lanes, f"{c.name}: out-of-range bank/word {key} reads {got[key]}"
