# amaranth: UnusedElaboratable=no
"""The link slice and the system top in RTL (``rtl.link``, ``rtl.chip`` with links, ``rtl.system``) against
golden (``golden.system.SystemSim``, ``golden.chip.ChipSim``), in Amaranth's simulator only (no Verilator
build): cycles, errors (code, chip, slice, pc, cycle) and every MEM word must agree.

Programs are the schedules of tests/test_golden_system.py (``Prog``: instructions at absolute cycles, from the
spec constants); the chips are ``tiny_link`` with 16-word banks so that reading every MEM word back through
the host edges stays quick. Random data come from the printed seeds.
"""
import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.mxu import wrap_int32
from golden.system import SystemSim
from rtl.system import System
from sim.chip_run import decode_vector, host_commands, run_program
from spec import isa
from spec.asm import assemble
from spec.config import PRESETS
from spec.host import unpack_status
from spec.isa import LINK_RECV_OFFSET, LINK_SEND_OFFSET, MEM_READ_LATENCY, MEM_WRITE_LATENCY, LinkErrorCode
from tests.test_golden_system import Prog, _stage, see
from tests.test_indexed_rtl import AmaranthChip

LINKED16 = PRESETS["tiny"].with_links().replace(mem_depth=16)
POS = {name: LINKED16.slice_index(name) for name in LINKED16.slice_names}
WEST, EAST = POS["link0"], POS["link1"]
L = LINKED16.lanes


def rand(rng, n):
    return rng.integers(-2**31, 2**31, (n, L)).astype(np.int64)


def run_rtl(config, programs, inputs, topology="line", max_cycles=20_000):
    """``rtl.system.System`` of ``len(programs)`` chips in Amaranth's simulator, each chip's host edge fed its
    ``sim.chip_run.host_commands`` (load, START, STATUS, READ_MEM of every word) at once. Returns the
    system's (cycles, error tuple or None) and per chip (status dict, MEM arrays)."""
    n = len(programs)
    dut = System(config, n, topology)
    plans = [host_commands(config, programs[c], inputs[c]) for c in range(n)]
    responses = [[] for _ in range(n)]
    out = {}

    async def bench(ctx):
        pending = [list(cmds) for cmds, _, _ in plans]
        for c in range(n):
            ctx.set(getattr(dut, f"resp{c}").ready, 1)
        for _ in range(max_cycles):
            takes = []
            for c in range(n):
                cmd = getattr(dut, f"cmd{c}")
                ctx.set(cmd.valid, int(bool(pending[c])))
                if pending[c]:
                    ctx.set(cmd.payload.as_value(), pending[c][0])
                takes.append(bool(pending[c]) and ctx.get(cmd.ready))
                resp = getattr(dut, f"resp{c}")
                if ctx.get(resp.valid):
                    responses[c].append(int(ctx.get(resp.payload.data)))
            await ctx.tick()
            for c in range(n):
                if takes[c]:
                    pending[c].pop(0)
            if all(not pending[c] and len(responses[c]) == plans[c][1] for c in range(n)):
                out["sys"] = (ctx.get(dut.done), ctx.get(dut.cycles), ctx.get(dut.error), ctx.get(dut.err_chip),
                              ctx.get(dut.err_cycle))
                return
        raise AssertionError(f"{[len(r) for r in responses]} responses after {max_cycles} cycles")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    chips = []
    for c in range(n):
        status = unpack_status(responses[c][0])
        mems = {}
        for (p, b, a), value in zip(plans[c][2], responses[c][1:]):
            mems.setdefault(p, np.zeros((config.mem_banks, config.mem_depth, L), np.int32))[b, a] = \
                decode_vector(config, value)
        chips.append((status, mems))
    return out["sys"], chips


def check(progs, config=LINKED16, topology="line", mems=()):
    """Run ``progs`` (``Prog`` per chip) with ``mems`` (``(chip, slice, bank, addr, vectors)``) on the RTL system
    and on ``SystemSim``; everything must agree. Returns golden's ``SystemResult``."""
    n = len(progs)
    programs = [p.programs() for p in progs]
    inputs = [[(s, b, a, v) for ch, s, b, a, v in mems if ch == c] for c in range(n)]
    gsim = SystemSim(config, chips=n, topology=topology)
    for c in range(n):
        gsim.load(c, programs[c])
        for s, b, a, v in inputs[c]:
            gsim.write_mem(c, s, b, a, v)
    g = gsim.run()
    (done, cycles, error, err_chip, err_cycle), chips = run_rtl(config, programs, inputs, topology)
    assert done == 1
    assert cycles == g.cycles, f"system cycles: RTL {cycles}, golden {g.cycles}"
    if g.error is None:
        assert error == 0, f"RTL error on chip {err_chip} at cycle {err_cycle}, golden none"
    else:
        assert error == 1 and (err_chip, err_cycle) == (g.error.chip, g.error.cycle), \
            f"RTL error on chip {err_chip} at {err_cycle}, golden {g.error}"
    for c, (status, rmems) in enumerate(chips):
        gr = g.chips[c]
        assert status["done"] == 1
        assert status["cycles"] == gr.cycles, f"chip {c} cycles: RTL {status['cycles']}, golden {gr.cycles}"
        got = (status["code"], status["slice"], status["pc"]) if status["error"] else None
        want = None if gr.error is None else (int(gr.error.code), gr.error.slice, gr.error.pc)
        assert got == want, f"chip {c} error: RTL {got}, golden {want} ({gr.error})"
        for p, arr in rmems.items():
            diff = np.argwhere(arr != gr.mems[p])
            assert not len(diff), f"chip {c} {config.slice_names[p]} differs at {diff[0].tolist()}"
    return g


# ---- one transfer -------------------------------------------------------------------------------------
@pytest.mark.parametrize("latency, interval", [(1, 1), (5, 2), (16, 4)])
def test_one_vector_across(latency, interval):
    """Chip 0: READ mem2 → E1 → SEND at link1; chip 1: RECV at link0 → E2 → WRITE into mem0 (streams other
    than E0, whose field value is the all-zero word's)."""
    config = LINKED16.replace(link_latency=latency, link_interval=interval)
    seed = 100 * latency + interval
    print(f"seed {seed}")
    data = rand(np.random.default_rng(seed), 1)
    t_read = 2
    u = see(t_read + MEM_READ_LATENCY, "mem2", "link1")
    t_send = u - LINK_SEND_OFFSET
    t_recv = t_send + isa.link_recv_delay(config)
    arrival = t_recv + LINK_RECV_OFFSET
    assert arrival == u + latency
    t_write = see(arrival, "link0", "mem0") - MEM_WRITE_LATENCY
    p0 = Prog(config).at("mem2", t_read, "READ bank=1 addr=7 count=1 -> E1").at("link1", t_send, "SEND E1 count=1")
    p1 = Prog(config).at("link0", t_recv, "RECV count=1 -> E2").at("mem0", t_write, "WRITE E2 bank=0 addr=5 count=1")
    g = check([p0, p1], config, mems=[(0, "mem2", 1, 7, data)])
    assert g.ok and g.read_mem(1, "mem0", 0, 5).tolist() == wrap_int32(data).tolist()
    assert g.cycles == p1.cycles()


# ---- the link rate ------------------------------------------------------------------------------------
@pytest.mark.parametrize("interval", [1, 2, 3])
def test_back_to_back_at_the_link_rate(interval):
    """A READ puts a new word on E0 every cycle; two SENDs back to back sample every ``interval``-th; one RECV
    takes them all and a WRITE stores every cycle (zeros between). Then the second SEND one cycle sooner:
    UNIT_BUSY on chip 0's link1."""
    config = LINKED16.replace(link_interval=interval, link_latency=7)
    seed = 7 + interval
    print(f"seed {seed}")
    k1, k2 = 2, 3
    n = k1 + k2
    span = (n - 1) * interval + 1
    data = rand(np.random.default_rng(seed), span)
    u0 = see(MEM_READ_LATENCY, "mem2", "link1")
    t_send = u0 - LINK_SEND_OFFSET
    t_send2 = t_send + k1 * interval
    t_recv = t_send + isa.link_recv_delay(config)
    t_write = see(t_recv + LINK_RECV_OFFSET, "link0", "mem0") - MEM_WRITE_LATENCY

    def chip0(second):
        return (Prog(config).at("mem2", 0, f"READ bank=0 addr=0 count={span} -> E0")
                .at("link1", t_send, f"SEND E0 count={k1}").at("link1", second, f"SEND E0 count={k2}"))
    p1 = (Prog(config).at("link0", t_recv, f"RECV count={n} -> E0")
          .at("mem0", t_write, f"WRITE E0 bank=1 addr=0 count={span}"))
    mems = [(0, "mem2", 0, 0, data)]
    g = check([chip0(t_send2), p1], config, mems=mems)
    assert g.ok
    want = np.zeros((span, L), np.int64)
    want[::interval] = wrap_int32(data[::interval])
    assert g.read_mem(1, "mem0", 1, 0, span).tolist() == want.tolist()
    g = check([chip0(t_send2 - 1), p1], config, mems=mems)
    assert (g.error.code, g.error.chip, g.error.slice, g.error.cycle) == (isa.ErrorCode.UNIT_BUSY, 0, EAST,
                                                                          t_send2 - 1)


# ---- link faults --------------------------------------------------------------------------------------
def _pair(recv_shift, config=LINKED16, t_send=3):
    t_recv = t_send + isa.link_recv_delay(config) + recv_shift
    p0 = Prog(config).at("link1", t_send, "SEND E0 count=1")
    p1 = Prog(config).at("link0", t_recv, "RECV count=1 -> E0")
    return p0, p1, t_send + LINK_SEND_OFFSET + config.link_latency


def test_recv_early_is_recv_empty_and_late_is_link_dropped():
    p0, p1, arrival = _pair(-1)
    g = check([p0, p1])
    assert tuple(g.error) == (LinkErrorCode.RECV_EMPTY, 1, WEST, 1, arrival - 1)
    p0, p1, arrival = _pair(+1)
    g = check([p0, p1])
    assert tuple(g.error) == (LinkErrorCode.LINK_DROPPED, 1, WEST, 1, arrival)
    p0, p1, arrival = _pair(0)
    assert check([p0, p1]).ok


def test_a_word_sent_to_a_done_chip_is_dropped_on_arrival():
    p0, _, arrival = _pair(0)
    p1 = Prog(LINKED16)
    g = check([p0, p1])
    assert tuple(g.error) == (LinkErrorCode.LINK_DROPPED, 1, WEST, 1, arrival)
    assert g.chip_cycles[1] == p1.cycles() < arrival and g.cycles == arrival + 1


def test_links_that_lead_nowhere():
    """The outer ends of a line and a lone chip's links: SEND faults LINK_DROPPED at its sample, RECV
    RECV_EMPTY at its item; in a ring the same end is joined."""
    t = 2
    p = Prog(LINKED16).at("link0", t, "SEND W0 count=1")
    g = check([p])
    assert tuple(g.error) == (LinkErrorCode.LINK_DROPPED, 0, WEST, 1, t + LINK_SEND_OFFSET)
    g = check([p, Prog(LINKED16)])
    assert tuple(g.error) == (LinkErrorCode.LINK_DROPPED, 0, WEST, 1, t + LINK_SEND_OFFSET)
    q = Prog(LINKED16).at("link1", t, "RECV count=1 -> W0")
    g = check([Prog(LINKED16), Prog(LINKED16), q])
    assert tuple(g.error) == (LinkErrorCode.RECV_EMPTY, 2, EAST, 1, t + LINK_RECV_OFFSET)
    p0 = Prog(LINKED16).at("link0", t, "SEND W0 count=1")
    q = Prog(LINKED16).at("link1", t + isa.link_recv_delay(LINKED16), "RECV count=1 -> W0")
    assert check([p0, Prog(LINKED16), q], topology="ring").ok


def test_a_lone_chip_with_links_through_the_chip_harness():
    """``rtl.chip.Chip(config)`` alone (its links lead nowhere) against ``golden.chip.ChipSim`` through
    ``sim.chip_run.run_program``: RECV_EMPTY at the RECV's pc (after a NOP), a SEND's LINK_DROPPED at its
    pc, and a static fault on the link queue winning over a RECV_EMPTY of the same cycle."""
    sim = AmaranthChip(LINKED16)
    for text, want in [(".slice link1\n    NOP 3\n    RECV count=2 -> W1\n    HALT\n",
                        {"code": "RECV_EMPTY", "slice": "link1", "pc": 1}),
                       (".slice link0\n    SEND W0 count=2\n    HALT\n",
                        {"code": "LINK_DROPPED", "slice": "link0", "pc": 0}),
                       (".slice link0\n    RECV count=1 -> E0\n    .word 0x0\n",
                        {"code": "ILLEGAL_OPCODE", "slice": "link0", "pc": 1})]:
        r = run_program(LINKED16, assemble(text, LINKED16), [], simulator=sim)
        assert r.match, r.mismatch
        assert r.golden_error == want and r.error == want


class Raw:
    """A chip's program as assembly text (for ``check``)."""

    def __init__(self, text):
        self.text = text

    def programs(self):
        return assemble(self.text, LINKED16)


def test_a_fault_stops_every_chip_and_ties_go_to_the_lowest_chip():
    """Chips 1 and 2 fault in the same cycle: chip 1 is the system's error, every chip stops then (chip 0 was
    still waiting); within one slice the lowest code wins."""
    p_long = Prog(LINKED16).at("mem0", 30, "READ bank=0 addr=0 count=1 -> E0")
    bad = Raw(".slice mem1\n    NOP 4\n    .word 0x0\n")
    g = check([p_long, bad, bad])
    assert tuple(g.error) == (isa.ErrorCode.ILLEGAL_OPCODE, 1, POS["mem1"], 1, 4)
    assert g.chip_cycles == (5, 5, 5)
    # the lowest code in one slice: RECV_EMPTY in the cycle the next word is illegal
    g = check([Prog(LINKED16), Raw(".slice link0\n    RECV count=1 -> E0\n    .word 0x0\n")])
    assert tuple(g.error) == (isa.ErrorCode.ILLEGAL_OPCODE, 1, WEST, 1, LINK_RECV_OFFSET)


# ---- chips passing a vector along ---------------------------------------------------------------------
@pytest.mark.parametrize("n, topology", [(2, "line"), (3, "line"), (1, "ring"), (2, "ring"), (3, "ring")])
def test_chips_pass_a_vector_along(n, topology):
    """Every chip adds its addend to the vector and sends it east (tests/test_golden_system.py's schedule);
    the last chip of a line stores the sum, in a ring chip 0 takes it home."""
    config = LINKED16.replace(link_latency=6, link_interval=3)
    seed = 10 * n + (topology == "ring")
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    x = rand(rng, 1)
    addends = [rand(rng, 1) + c for c in range(n)]
    mems = [(c, "mem1", 0, 0, wrap_int32(a)) for c, a in enumerate(addends)] + [(0, "mem0", 0, 0, x)]
    t_read = 2
    arrival = t_read + MEM_READ_LATENCY - (POS["mem0"] - POS["link0"])
    progs = []
    for c in range(n):
        p, nxt = _stage(config, arrival, c, topology == "line" and c == n - 1)
        if c == 0:
            p.items["mem0"] = [(t_read, "READ bank=0 addr=0 count=1 -> E0")]
            p.items["link0"] = []
        progs.append(p)
        arrival = nxt
    if topology == "ring":
        progs[0].at("link0", arrival - LINK_RECV_OFFSET, "RECV count=1 -> E0")
        progs[0].at("mem0", see(arrival, "link0", "mem0") - MEM_WRITE_LATENCY, "WRITE E0 bank=1 addr=0 count=1")
    for p in progs:
        p.items = {s: lst for s, lst in p.items.items() if lst}
    g = check(progs, config, topology, mems)
    assert g.ok, g.error
    where = (0, "mem0", 1, 0) if topology == "ring" else (n - 1, "mem2", 1, 0)
    assert g.read_mem(*where).tolist() == wrap_int32(x + sum(addends)).tolist()


# ---- random ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_transfers(seed):
    """Random link figures, counts, data and a RECV on time or off by one (RECV_EMPTY / LINK_DROPPED), in a
    line or a ring of 2 chips; the words go from chip 0's mem2 to chip 1's mem0."""
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    config = LINKED16.replace(link_latency=int(rng.integers(1, 9)), link_interval=int(rng.integers(1, 4)))
    iv = config.link_interval
    count = int(rng.integers(1, 16 // iv + 1))
    span = (count - 1) * iv + 1
    shift = int(rng.choice([0, 0, -1, 1]))
    topology = str(rng.choice(["line", "ring"]))
    data = rand(rng, span)
    t_read = int(rng.integers(0, 4))
    t_send = see(t_read + MEM_READ_LATENCY, "mem2", "link1") - LINK_SEND_OFFSET
    t_recv = t_send + isa.link_recv_delay(config) + shift
    t_write = see(t_recv + LINK_RECV_OFFSET, "link0", "mem0") - MEM_WRITE_LATENCY
    p0 = (Prog(config).at("mem2", t_read, f"READ bank=0 addr=0 count={span} -> E0")
          .at("link1", t_send, f"SEND E0 count={count}"))
    p1 = (Prog(config).at("link0", t_recv, f"RECV count={count} -> E0")
          .at("mem0", t_write, f"WRITE E0 bank=0 addr=0 count={span}"))
    print(f"latency {config.link_latency} interval {iv} count {count} shift {shift} {topology}")
    g = check([p0, p1], config, topology, [(0, "mem2", 0, 0, data)])
    if shift == 0:
        assert g.ok, g.error
        assert g.read_mem(1, "mem0", 0, 0, span)[::iv].tolist() == wrap_int32(data[::iv]).tolist()
    else:
        code = LinkErrorCode.RECV_EMPTY if shift < 0 else LinkErrorCode.LINK_DROPPED
        assert (g.error.code, g.error.chip, g.error.slice) == (code, 1, WEST)


def test_ports_and_parameter_checks():
    import gc
    import warnings
    with warnings.catch_warnings():          # the components built here are never elaborated
        warnings.simplefilter("ignore")
        _ports_and_parameter_checks()
        gc.collect()


def _ports_and_parameter_checks():
    from rtl.chip import Chip
    from rtl.link import LinkSlice
    s = LinkSlice(LINKED16)
    widths = {n: len(getattr(s, n).as_value()) if hasattr(getattr(s, n), "as_value") else len(getattr(s, n))
              for n in s.signature.members}
    assert widths["tx"] == widths["rx"] == 1 + 32 * L
    assert (widths["rt_fault"], widths["rt_pc"], widths["queue_pc"]) == (isa.ERROR_CODE_BITS, isa.FAULT_PC_BITS,
                                                                       isa.FAULT_PC_BITS)
    assert LinkSlice.READS == 1
    lone = Chip(LINKED16)
    assert not {"tx_west", "rx_east", "stop", "sys_start"} & set(lone.signature.members)
    member = Chip(LINKED16, links=("east",))
    assert {"tx_east", "rx_east", "stop", "sys_start", "sys_busy", "start_req", "fault_now"} <= \
        set(member.signature.members) and "tx_west" not in member.signature.members
    with pytest.raises(ValueError, match="config tiny_link has no link slice at end 'north'"):
        Chip(LINKED16, links=("north",))
    with pytest.raises(ValueError, match="needs a link slice at both ends"):
        System(PRESETS["tiny"], 2)
    with pytest.raises(ValueError, match="chips must be an integer between 1 and 8"):
        System(LINKED16, 9)
    with pytest.raises(ValueError, match="topology must be one of 'line', 'ring'"):
        System(LINKED16, 2, "mesh")
    assert [c.signature.members.keys() >= {"tx_east"} for c in System(LINKED16, 3, "line").chips] == \
        [True, True, False]
