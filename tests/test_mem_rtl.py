"""The MEM slice (rtl/mem.py) in Amaranth's simulator: random READ/WRITE schedules against the contract."""
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


def _random_schedule(rng, config, cycles):
    """READs and WRITEs at random times, each unit issued only when free (as the ICU guarantees)."""
    issues, ops = {}, []
    free = {"read": 0, "write": 0}
    t = 0
    while t < cycles - 12:
        unit = "read" if rng.random() < 0.5 else "write"
        if free[unit] <= t and rng.random() < 0.6:
            bank = int(rng.integers(config.mem_banks))
            count = int(rng.integers(1, 6))
            addr = int(rng.integers(0, config.mem_depth - count + 1))
            stream = Stream("EW"[rng.integers(2)], int(rng.integers(config.streams)))
            if unit == "read":
                ins = Instruction("READ", bank=bank, addr=addr, count=count, dst=stream)
            else:
                ins = Instruction("WRITE", src=stream, bank=bank, addr=addr, count=count)
            issues[t] = encode(ins)
            ops.append((t, ins))
            free[unit] = t + count
        t += 1
    return issues, ops


def _expected(config, mem0, ops, streams, cycles):
    """The contract: READ presents addr + i during t + 1 + i (seeing stores before that cycle) and puts
    the word during t + MEM_READ_LATENCY + i; WRITE stores stream value seen at t + 1 + i at its end."""
    mem = mem0.copy()
    puts = {}
    for u in range(cycles):
        for t, ins in ops:
            i = u - t - isa.MEM_DECODE_STAGES
            if ins.op == "READ" and 0 <= i < ins.count:
                puts[t + isa.MEM_READ_LATENCY + i] = (ins.dst.bits(), mem[ins.bank, ins.addr + i].copy())
        for t, ins in ops:
            i = u - t - isa.MEM_WRITE_LATENCY
            if ins.op == "WRITE" and 0 <= i < ins.count:
                d = 0 if ins.src.direction == "E" else 1
                mem[ins.bank, ins.addr + i] = streams[u][d, ins.src.index]
    return {t: p for t, p in puts.items() if t < cycles}, mem


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


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("c", [TINY, BANKS3], ids=lambda c: c.name)
def test_random_reads_and_writes(c, seed):
    print(f"{c.name} seed {seed}")
    rng = np.random.default_rng(seed)
    cycles = 120
    issues, ops = _random_schedule(rng, c, cycles)
    streams = rng.integers(-2**31, 2**31, size=(cycles, 2, c.streams, c.lanes))
    mem0 = rng.integers(-2**31, 2**31, size=(c.mem_banks, c.mem_depth, c.lanes))
    dut = MemSlice(c)
    final = np.zeros_like(mem0)

    addrs = [(b, a) for b in range(c.mem_banks) for a in range(c.mem_depth)]

    async def before(ctx):    # fill the banks through the host port
        await host_write(ctx, dut, [(ba, mem0[ba]) for ba in addrs])

    async def after(ctx):     # read everything back through the host port
        for ba, v in (await host_read(ctx, dut, c, addrs)).items():
            final[ba] = v

    puts = run_slice(dut, c, issues, streams, cycles, before=before, after=after)
    want_puts, want_mem = _expected(c, mem0, ops, streams, cycles)
    assert sorted(puts) == sorted(want_puts), f"seed {seed}: stream writes at cycles {sorted(puts)}, " \
                                              f"expected {sorted(want_puts)}"
    for t in sorted(want_puts):
        assert puts[t][0] == want_puts[t][0], f"seed {seed}, cycle {t}: stream {puts[t][0]}"
        np.testing.assert_array_equal(puts[t][1], want_puts[t][1], err_msg=f"seed {seed}, cycle {t}")
    bad = np.argwhere(final != want_mem)
    assert not len(bad), f"seed {seed}: bank/word/lane {tuple(bad[0])}: {final[tuple(bad[0])]} != " \
                         f"{want_mem[tuple(bad[0])]}"


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
