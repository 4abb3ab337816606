# amaranth: UnusedElaboratable=no
"""The link delay line (rtl/link_delay.py) in Amaranth's simulator: against ``golden.system.Link`` while it
runs throughout, and against the contract's registers with stops and clears (random, seeded); resets are
in the proof (formal/link_delay.py)."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.system import Link
from rtl.link_delay import LinkDelayLine
from spec.config import PRESETS
from tests.slice_bench import lanes_of

TINY = PRESETS["tiny"]
LATENCIES = (1, 2, 3, 5, 16)


def run_line(config, src, run, clear):
    """``(out valid, out data, empty)`` per cycle of ``LinkDelayLine(config)`` driven by the per-cycle inputs
    (``src``: ``None`` or a vector, the valid bit)."""
    dut = LinkDelayLine(config)
    L, T = config.lanes, len(run)
    got = []

    async def bench(ctx):
        for t in range(T):
            ctx.set(dut.src.valid, int(src[t] is not None))
            ctx.set(dut.src.data, [int(x) for x in (src[t] if src[t] is not None else np.zeros(L, np.int64))])
            ctx.set(dut.run, int(run[t]))
            ctx.set(dut.clear, int(clear[t]))
            await ctx.delay(1e-9)
            got.append((ctx.get(dut.out.valid), tuple(lanes_of(ctx.get(dut.out.data), L)), ctx.get(dut.empty)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got


def random_words(rng, config, T, p_valid=0.6):
    return [rng.integers(-2**31, 2**31, config.lanes) if rng.random() < p_valid else None for _ in range(T)]


@pytest.mark.parametrize("latency", LATENCIES)
def test_running_line_is_the_golden_link(latency):
    """Run high throughout: what arrives during ``u`` is what ``golden.system.Link`` delivers then."""
    config = TINY.replace(link_latency=latency)
    seed = latency
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    T = 3 * latency + 20
    src = random_words(rng, config, T)
    got = run_line(config, src, [1] * T, [0] * T)
    link = Link(latency, "under test")
    for u, w in enumerate(src):
        if w is not None:
            link.push(u, tuple(int(x) for x in w))
    for u, (valid, data, empty) in enumerate(got):
        want = link.take(u)
        assert valid == int(want is not None), f"latency {latency}, cycle {u}: valid {valid}, golden {want}"
        if want is not None:
            assert data == want, f"latency {latency}, cycle {u}: data {data}, golden {want}"
        in_flight = any(src[v] is not None for v in range(max(0, u - latency), u))
        assert empty == int(not in_flight), f"latency {latency}, cycle {u}: empty {empty}, in flight {in_flight}"


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("latency", LATENCIES)
def test_stops_and_clears_follow_the_registers(latency, seed):
    """Random ``run`` (stops of any length: nothing moves) and ``clear`` pulses (never with ``run``), against
    the contract's ``latency`` registers."""
    config = TINY.replace(link_latency=latency)
    print(f"seed {seed}")
    rng = np.random.default_rng(1000 * latency + seed)
    T = 4 * latency + 40
    src = random_words(rng, config, T)
    run = [int(rng.random() < 0.7) for _ in range(T)]
    clear = [int(not r and rng.random() < 0.2) for r in run]
    got = run_line(config, src, run, clear)
    regs = [None] * latency                       # None: not valid; else the data
    for t, (valid, data, empty) in enumerate(got):
        last = regs[-1]
        assert valid == int(last is not None), f"latency {latency} seed {seed} cycle {t}: valid {valid}, want {last}"
        if last is not None:
            assert data == last, f"latency {latency} seed {seed} cycle {t}: data {data}, want {last}"
        assert empty == int(all(r is None for r in regs)), f"latency {latency} seed {seed} cycle {t}: empty {empty}"
        if run[t]:
            regs = [None if src[t] is None else tuple(int(x) for x in src[t])] + regs[:-1]
        if clear[t]:
            regs = [None] * latency
    assert sum(clear) and sum(1 for r in run if not r), "the random pattern has no stop or no clear"


def test_config_type_is_checked():
    with pytest.raises(TypeError, match=r"^config must be a spec\.config\.ChipConfig, not 16$"):
        LinkDelayLine(16)
