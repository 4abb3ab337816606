"""The stream interconnect (rtl/streams.py) in Amaranth's simulator against its recurrence."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from rtl.streams import StreamInterconnect
from spec import isa
from spec.config import PRESETS
from tests.slice_bench import lanes_of


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("config", [PRESETS["tiny"],
                                    PRESETS["tiny"].replace(streams=1, lanes=2, mxu_rows=2, mxu_cols=2)],
                         ids=["tiny", "one-stream"])
def test_random_writes_move_one_hop_per_cycle(config, seed):
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    P, S, L = len(config.slices), config.streams, config.lanes
    cycles = 40
    # per cycle and slice: write (direction, index, data) or nothing
    writes = [[(int(rng.integers(2)), int(rng.integers(S)), rng.integers(-2**31, 2**31, L))
               if rng.random() < 0.5 else None for _ in range(P)] for _ in range(cycles)]
    # every slice gets a read port per stream, each reading one stream every cycle
    streams = [(d << isa.STREAM_INDEX_BITS) | s for d in (0, 1) for s in range(S)]
    dut = StreamInterconnect(config, [len(streams)] * P)
    seen = np.zeros((cycles, 2, S, P, L), np.int64)

    async def bench(ctx):
        for t in range(cycles):
            for p in range(P):
                w = writes[t][p]
                ctx.set(dut.put[p].valid, int(w is not None))
                if w is not None:
                    d, s, v = w
                    ctx.set(dut.put[p].stream, (d << isa.STREAM_INDEX_BITS) | s)
                    ctx.set(dut.put[p].data, [int(x) for x in v])
            for p in range(P):
                for i, bits in enumerate(streams):
                    ctx.set(dut.sel(p)[i], bits)
            await ctx.delay(1e-9)
            for p in range(P):
                for i, bits in enumerate(streams):
                    seen[t, bits >> isa.STREAM_INDEX_BITS, bits & (isa.MAX_STREAMS - 1), p] = \
                        lanes_of(ctx.get(dut.seen(p)[i]), L)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()

    want = np.zeros((2, S, P, L), np.int64)    # all zero at cycle 0
    for t in range(cycles):
        np.testing.assert_array_equal(seen[t], want, err_msg=f"seed {seed}, cycle {t}")
        nxt = np.zeros_like(want)
        nxt[0, :, 1:] = want[0, :, :-1]
        nxt[1, :, :-1] = want[1, :, 1:]
        for p, w in enumerate(writes[t]):
            if w is not None:
                d, s, v = w
                q = p + 1 if d == 0 else p - 1
                if 0 <= q < P:
                    nxt[d, s, q] = v
        want = nxt
