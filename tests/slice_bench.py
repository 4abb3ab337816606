"""A testbench for one slice component in Amaranth's simulator (docs/chip.md, "RTL structure").

``run_slice(dut, config, issues, streams, cycles)`` raises ``run`` for ``cycles`` cycles, issues
``issues[t]`` (a 64-bit word) during cycle ``t``, answers the slice's read ports from ``streams[t]``
(``2 × S × L`` int array: what the slice sees eastward and westward; the interconnect's job in the chip)
and returns the slice's stream writes per cycle: ``{t: (stream_bits, lanes)}``. ``before``/``after`` are
async callables run with the context before the run (``run`` low: host-port setup) and after it.
"""
import numpy as np
from amaranth.sim import Simulator

from spec import isa

__all__ = ["run_slice", "lanes_of"]


def lanes_of(value, lanes):
    """A vector read with ``ctx.get`` (an Amaranth data ``Const``) as an int64 array."""
    return np.array([int(value[i]) for i in range(lanes)], dtype=np.int64)


def run_slice(dut, config, issues, streams, cycles, before=None, after=None, extra=None):
    S, L = config.streams, config.lanes
    puts = {}

    async def bench(ctx):
        if before is not None:
            await before(ctx)
        ctx.set(dut.run, 1)
        for t in range(cycles):
            word = issues.get(t)
            ctx.set(dut.issue, int(word is not None))
            ctx.set(dut.word, 0 if word is None else word)
            await ctx.delay(1e-9)
            v = streams[t]
            for i in range(dut.READS):
                sel = ctx.get(dut.sel[i])
                d, s = sel >> isa.STREAM_INDEX_BITS, sel & (isa.MAX_STREAMS - 1)
                ctx.set(dut.seen[i], [int(x) for x in v[d, s]] if s < S else [0] * L)
            await ctx.delay(1e-9)
            if ctx.get(dut.put.valid):
                puts[t] = (int(ctx.get(dut.put.stream)), lanes_of(ctx.get(dut.put.data), L))
            if extra is not None:
                extra(ctx, t)
            await ctx.tick()
        ctx.set(dut.run, 0)
        ctx.set(dut.issue, 0)
        if after is not None:
            await after(ctx)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return puts
