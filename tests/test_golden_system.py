"""golden/system.py and the link slices of golden/chip.py: chips of ``tiny`` with link slices at both ends
(``tiny_link``: link0, mem0, mem1, mxu0, vxu0, mem2, link1), programs in assembly at absolute cycles.

Every expected cycle is computed from spec constants (``spec.isa`` latencies, the configuration's
``link_latency`` and ``link_interval``), never written as a bare number; random data come from the seeds
printed by each test.
"""
import numpy as np
import pytest

from golden.chip import ChipError, ChipFault, ChipSim, ChipTimeout
from golden.mxu import wrap_int32
from golden.system import Link, SysError, SystemSim
from spec import isa
from spec.asm import assemble
from spec.config import PRESETS
from spec.isa import (
    LINK_RECV_OFFSET,
    LINK_SEND_OFFSET,
    MEM_READ_LATENCY,
    MEM_WRITE_LATENCY,
    VXU_INPUT_OFFSET,
    VXU_PIPELINE,
    ErrorCode,
    LinkErrorCode,
)

TINY = PRESETS["tiny"]
LINKED = TINY.with_links()
POS = {name: LINKED.slice_index(name) for name in LINKED.slice_names}
WEST, EAST = POS["link0"], POS["link1"]
L = LINKED.lanes


def see(cycle, src, dst):
    """The cycle slice ``dst`` sees what slice ``src`` wrote during ``cycle`` (one slice per clock)."""
    return cycle + abs(POS[dst] - POS[src])


def last_cycle(op, t, count, config):
    """The last cycle an instruction issued at ``t`` does something, per opcode from the spec constants."""
    iv = config.link_interval
    return {
        "HALT": t,
        "READ": t + MEM_READ_LATENCY + count - 1,
        "WRITE": t + MEM_WRITE_LATENCY + count - 1,
        "VOP": t + VXU_INPUT_OFFSET + VXU_PIPELINE + count - 1,
        "SEND": t + max(count * iv - 1, LINK_SEND_OFFSET + (count - 1) * iv),
        "RECV": t + max(count * iv - 1, LINK_RECV_OFFSET + (count - 1) * iv),
    }[op]


class Prog:
    """One chip's instructions at absolute issue cycles per slice; NOPs fill the gaps, HALT ends each."""

    def __init__(self, config=LINKED):
        self.config = config
        self.items = {}

    def at(self, slice_, cycle, text):
        assert cycle >= 0, (slice_, cycle, text)
        lst = self.items.setdefault(slice_, [])
        assert all(cycle >= c + 1 for c, _ in lst), f"{slice_}: instructions out of order at {cycle}"
        lst.append((cycle, text))
        return self

    def _sections(self):
        for s, lst in self.items.items():
            lines, now = [], 0
            for cycle, text in lst:
                if cycle > now:
                    lines.append(f"NOP {cycle - now}")
                lines.append(text)
                now = cycle + 1
            yield s, lines, now

    def pc(self, slice_, k):
        """The pc of the ``k``-th instruction placed on ``slice_`` (the NOPs before it counted)."""
        pc, now = 0, 0
        for i, (cycle, _) in enumerate(self.items[slice_]):
            pc += cycle > now
            if i == k:
                return pc
            pc, now = pc + 1, cycle + 1
        raise IndexError(k)

    def programs(self):
        text = "".join(f".slice {s}\n" + "".join(f"    {x}\n" for x in lines) + "    HALT\n"
                       for s, lines, _ in self._sections())
        return assemble(text, self.config)

    def cycles(self):
        """The chip's done cycle count: every slice halted and every operation's last activity passed."""
        last = 0
        for s, _, halt in self._sections():
            last = max(last, halt)
            for cycle, text in self.items[s]:
                words = text.replace("=", " ").split()
                count = int(words[words.index("count") + 1]) if "count" in words else 1
                last = max(last, last_cycle(words[0], cycle, count, self.config))
        return last + 1


def system(progs, config=LINKED, topology="line", mems=()):
    sim = SystemSim(config, chips=len(progs), topology=topology)
    for c, p in enumerate(progs):
        sim.load(c, p.programs())
    for chip, slice_, bank, addr, v in mems:
        sim.write_mem(chip, slice_, bank, addr, v)
    return sim


def rand(rng, n):
    return rng.integers(-2**31, 2**31, (n, L)).astype(np.int64)


# ---- one transfer -------------------------------------------------------------------------------------
@pytest.mark.parametrize("latency", [1, 5, 16])
@pytest.mark.parametrize("interval", [1, 4])
def test_a_vector_arrives_exactly_link_latency_after_it_is_sent(latency, interval):
    """Chip 0: READ from mem2 → E0 → SEND at link1; chip 1: RECV at link0 → E0 → WRITE into mem0."""
    config = LINKED.replace(link_latency=latency, link_interval=interval)
    seed = 100 * latency + interval
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    data = rand(rng, 1)
    t_read = 2
    u = see(t_read + MEM_READ_LATENCY, "mem2", "link1")          # the cycle link1 sees the word
    t_send = u - LINK_SEND_OFFSET
    t_recv = t_send + isa.link_recv_delay(config)
    arrival = t_recv + LINK_RECV_OFFSET
    assert arrival == u + latency
    t_write = see(arrival, "link0", "mem0") - MEM_WRITE_LATENCY
    p0 = Prog(config).at("mem2", t_read, "READ bank=1 addr=7 count=1 -> E0").at("link1", t_send, "SEND E0 count=1")
    p1 = Prog(config).at("link0", t_recv, "RECV count=1 -> E0").at("mem0", t_write, "WRITE E0 bank=0 addr=5 count=1")
    res = system([p0, p1], config, mems=[(0, "mem2", 1, 7, data)]).run(record=True)
    assert res.ok and res.error is None and res.errors == (None, None)
    assert res.read_mem(1, "mem0", 0, 5).tolist() == data.tolist()
    # the RECV writes the word onto E0 at link0 in its arrival cycle, and never in another
    writes = [(cyc, s, st, v) for cyc, s, st, v in res.chips[1].stream_writes if s == WEST]
    assert writes == [(u + latency, WEST, "E0", tuple(int(x) for x in wrap_int32(data[0])))]
    assert res.chip_cycles == (p0.cycles(), p1.cycles())
    assert res.cycles == max(res.chip_cycles) == p1.cycles()
    assert res.link("c0.east->c1.west")[-2:] == (1, interval)
    assert res.link("c1.west->c0.east")[-2:] == (0, 0)


# ---- the link rate ------------------------------------------------------------------------------------
@pytest.mark.parametrize("interval", [1, 3, 4])
def test_back_to_back_transfers_at_the_link_rate(interval):
    """One READ puts a new word on E0 every cycle; SEND samples every ``interval``-th (two SENDs back to back,
    the second issued exactly when the first's unit is free); one RECV of all of them; a WRITE stores every
    cycle, so the words land ``interval`` apart with zeros between (nothing else writes that stream)."""
    config = LINKED.replace(link_interval=interval, link_latency=9)
    seed = 7 + interval
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    k1, k2 = 3, 4
    n = k1 + k2
    span = (n - 1) * interval + 1                # words on the stream from the first to the last sample
    data = rand(rng, span)
    t_read = 0
    u0 = see(t_read + MEM_READ_LATENCY, "mem2", "link1")
    t_send = u0 - LINK_SEND_OFFSET
    t_send2 = t_send + k1 * interval             # the first SEND's busy time, not a cycle less
    assert isa.timing(isa.Instruction("SEND", src="E0", count=k1), config).busy == k1 * interval
    t_recv = t_send + isa.link_recv_delay(config)
    t_write = see(t_recv + LINK_RECV_OFFSET, "link0", "mem0") - MEM_WRITE_LATENCY
    p0 = (Prog(config).at("mem2", t_read, f"READ bank=0 addr=0 count={span} -> E0")
          .at("link1", t_send, f"SEND E0 count={k1}").at("link1", t_send2, f"SEND E0 count={k2}"))
    p1 = (Prog(config).at("link0", t_recv, f"RECV count={n} -> E0")
          .at("mem0", t_write, f"WRITE E0 bank=1 addr=0 count={span}"))
    res = system([p0, p1], config, mems=[(0, "mem2", 0, 0, data)]).run()
    assert res.ok, res.error
    got = res.read_mem(1, "mem0", 1, 0, span)
    want = np.zeros_like(got)
    want[::interval] = wrap_int32(data[::interval])
    assert got.tolist() == want.tolist()
    assert res.chip_cycles == (p0.cycles(), p1.cycles())
    assert res.link("c0.east->c1.west").words == n
    assert res.link("c0.east->c1.west").busy_cycles == n * interval

    # one cycle sooner is UNIT_BUSY, on chip 0's link1 at the second SEND's pc (after SEND and a NOP)
    p0 = (Prog(config).at("mem2", t_read, f"READ bank=0 addr=0 count={span} -> E0")
          .at("link1", t_send, f"SEND E0 count={k1}").at("link1", t_send2 - 1, f"SEND E0 count={k2}"))
    res = system([p0, p1], config).run()
    pc = p0.pc("link1", 1)
    assert res.error == SysError(ErrorCode.UNIT_BUSY, 0, EAST, pc, t_send2 - 1)
    assert res.errors[0] == ChipError(ErrorCode.UNIT_BUSY, EAST, pc, t_send2 - 1) and res.errors[1] is None
    assert res.cycles == t_send2 and res.chip_cycles == (t_send2, t_send2)


def test_recv_faster_than_the_link_rate_is_unit_busy():
    """Chip 0 sends two words; chip 1's RECV of both is followed by another RECV one cycle before the first
    one's unit is free: UNIT_BUSY on chip 1's link0, after both words were taken."""
    iv = LINKED.link_interval
    t_send = 2
    t_recv = t_send + isa.link_recv_delay(LINKED)
    p0 = Prog().at("link1", t_send, "SEND E0 count=2")
    p1 = Prog().at("link0", t_recv, "RECV count=2 -> E0").at("link0", t_recv + 2 * iv - 1, "RECV count=1 -> E0")
    res = system([p0, p1]).run()
    assert res.error == SysError(ErrorCode.UNIT_BUSY, 1, WEST, p1.pc("link0", 1), t_recv + 2 * iv - 1)
    p1 = Prog().at("link0", t_recv, "RECV count=2 -> E0")
    assert system([p0, p1]).run().ok


def test_a_connected_link_with_no_word_is_recv_empty():
    t = 3
    sim = ChipSim(LINKED)
    sim.load(Prog().at("link0", t, "RECV count=2 -> E0").programs())
    sim.connect("link0", into=Link(LINKED.link_latency))     # joined, but nothing is ever pushed on it
    sim.start()
    while not sim.step():
        pass
    assert sim.result().error == ChipError(LinkErrorCode.RECV_EMPTY, WEST, 1, t + LINK_RECV_OFFSET)


# ---- link faults --------------------------------------------------------------------------------------
def _pair(recv_shift, config=LINKED):
    """Chip 0 sends one word at link1; chip 1 RECVs ``recv_shift`` cycles off the right cycle."""
    t_send = 3
    t_recv = t_send + isa.link_recv_delay(config) + recv_shift
    p0 = Prog(config).at("link1", t_send, "SEND E0 count=1")
    p1 = Prog(config).at("link0", t_recv, "RECV count=1 -> E0")
    return p0, p1, t_send + LINK_SEND_OFFSET + config.link_latency


def test_recv_one_cycle_early_is_recv_empty():
    p0, p1, arrival = _pair(-1)
    res = system([p0, p1]).run()
    assert res.error == SysError(LinkErrorCode.RECV_EMPTY, 1, WEST, 1, arrival - 1)
    assert res.errors == (None, ChipError(LinkErrorCode.RECV_EMPTY, WEST, 1, arrival - 1))
    assert res.cycles == arrival and res.chip_cycles == (p0.cycles(), arrival)


def test_recv_one_cycle_late_is_link_dropped():
    """The word arrives the cycle before the RECV's item: dropped on chip 1's link0, at the queue's pc at the
    start of that cycle (the RECV, issuing then)."""
    p0, p1, arrival = _pair(+1)
    res = system([p0, p1]).run()
    assert res.error == SysError(LinkErrorCode.LINK_DROPPED, 1, WEST, 1, arrival)
    assert res.cycles == arrival + 1


def test_a_word_sent_to_a_done_chip_is_dropped_on_arrival():
    p0, _, arrival = _pair(0)
    p1 = Prog()                                   # HALT only: done after cycle 0
    res = system([p0, p1]).run()
    assert res.chip_cycles == (p0.cycles(), p1.cycles()) and p1.cycles() < arrival
    assert res.error == SysError(LinkErrorCode.LINK_DROPPED, 1, WEST, 1, arrival)    # pc after its HALT
    assert res.errors[1] == ChipError(LinkErrorCode.LINK_DROPPED, WEST, 1, arrival) and res.errors[0] is None
    assert res.cycles == arrival + 1


def test_links_that_lead_nowhere():
    """A lone chip, and the outer ends of a line: SEND faults LINK_DROPPED when it samples, RECV RECV_EMPTY."""
    t = 2
    p = Prog().at("link0", t, "SEND W0 count=1")
    sim = ChipSim(LINKED)
    sim.load(p.programs())
    res = sim.run()
    assert res.error == ChipError(LinkErrorCode.LINK_DROPPED, WEST, 1, t + LINK_SEND_OFFSET)
    assert res.cycles == t + LINK_SEND_OFFSET + 1
    # chip 0's west end in a line of 2
    res = system([p, Prog()]).run()
    assert res.error == SysError(LinkErrorCode.LINK_DROPPED, 0, WEST, 1, t + LINK_SEND_OFFSET)
    # the last chip's east end
    q = Prog().at("link1", t, "RECV count=1 -> W0")
    res = system([Prog(), Prog(), q]).run()
    assert res.error == SysError(LinkErrorCode.RECV_EMPTY, 2, EAST, 1, t + LINK_RECV_OFFSET)
    # in a ring that end is joined: the RECV finds the word chip 0 sent west
    p0 = Prog().at("link0", t, "SEND W0 count=1")
    q = Prog().at("link1", t + isa.link_recv_delay(LINKED), "RECV count=1 -> W0")
    res = system([p0, Prog(), q], topology="ring").run()
    assert res.ok, res.error
    assert res.link("c0.west->c2.east").words == 1


def test_a_fault_stops_every_chip_and_ties_go_to_the_lowest_chip():
    n_wait = 30
    p_long = Prog().at("mem0", n_wait, "READ bank=0 addr=0 count=1 -> E0")
    bad = ".slice mem1\n    NOP 4\n    .word 0x0\n"
    sim = SystemSim(LINKED, chips=3)
    sim.load(0, p_long.programs())
    sim.load(1, assemble(bad, LINKED))
    sim.load(2, assemble(bad, LINKED))
    res = sim.run()
    fault_cycle = 4
    assert res.error == SysError(ErrorCode.ILLEGAL_OPCODE, 1, POS["mem1"], 1, fault_cycle)
    assert res.errors == (None, ChipError(ErrorCode.ILLEGAL_OPCODE, POS["mem1"], 1, fault_cycle),
                          ChipError(ErrorCode.ILLEGAL_OPCODE, POS["mem1"], 1, fault_cycle))
    assert res.chip_cycles == (fault_cycle + 1,) * 3 and res.cycles == fault_cycle + 1
    # within one chip: the lowest slice
    sim = SystemSim(LINKED, chips=2)
    sim.load(1, assemble(".slice mem2\n    .word 0x0\n.slice mem0\n    .word 0x0\n", LINKED))
    assert sim.run().error == SysError(ErrorCode.ILLEGAL_OPCODE, 1, POS["mem0"], 0, 0)
    # then the lowest code: link0's RECV finds nothing (RECV_EMPTY) in the cycle its next word is illegal
    sim = SystemSim(LINKED, chips=2)
    sim.load(1, assemble(".slice link0\n    RECV count=1 -> E0\n    .word 0x0\n", LINKED))
    res = sim.run()
    assert res.error == SysError(ErrorCode.ILLEGAL_OPCODE, 1, WEST, 1, LINK_RECV_OFFSET)


# ---- chips passing a vector along, adding to it -------------------------------------------------------
def _stage(config, arrival, chip, last):
    """Chip ``chip``: the vector arrives on E0 at link0 during ``arrival`` (RECV), the VXU adds the chip's
    addend (mem1 bank 0 word 0, READ onto E1) and SENDs the sum east; the ``last`` stage WRITEs it into mem2
    bank 1 word 0 instead. Returns the program and the cycle the sum reaches the next chip's link0."""
    p = Prog(config)
    t_recv = arrival - LINK_RECV_OFFSET
    if t_recv >= 0:
        p.at("link0", t_recv, "RECV count=1 -> E0")
    u = see(arrival, "link0", "vxu0")                       # the VOP's sampling cycle
    t_vop = u - VXU_INPUT_OFFSET
    t_read = u - (POS["vxu0"] - POS["mem1"]) - MEM_READ_LATENCY
    p.at("mem1", t_read, "READ bank=0 addr=0 count=1 -> E1")
    p.at("vxu", t_vop, "VOP add E0 E1 count=1 -> E0")
    out = u + VXU_PIPELINE                                  # the sum is written onto E0 at vxu0
    if last:
        p.at("mem2", see(out, "vxu0", "mem2") - MEM_WRITE_LATENCY, "WRITE E0 bank=1 addr=0 count=1")
        return p, None
    t_send = see(out, "vxu0", "link1") - LINK_SEND_OFFSET
    p.at("link1", t_send, "SEND E0 count=1")
    return p, t_send + isa.link_recv_delay(config) + LINK_RECV_OFFSET


@pytest.mark.parametrize("topology", ["line", "ring"])
@pytest.mark.parametrize("n", [2, 3, 4])
def test_chips_pass_a_vector_along_and_each_adds_to_it(n, topology):
    """Chip 0 reads x from its mem0 onto E0 (as if it had arrived), every chip adds its addend (its id plus
    random data) and sends east; in a line the last chip stores the sum, in a ring it sends it back to chip
    0, which stores it. Cycles from the spec constants; the sum wraps as int32."""
    config = LINKED.replace(link_latency=11, link_interval=3)
    seed = 10 * n + (topology == "ring")
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    x = rand(rng, 1)
    addends = [rand(rng, 1) + c for c in range(n)]
    mems = [(c, "mem1", 0, 0, wrap_int32(a)) for c, a in enumerate(addends)] + [(0, "mem0", 0, 0, x)]
    # chip 0's x: READ from mem0 written onto E0 at mem0 during a cycle chosen so it is seen where link0's
    # RECV would write it; the RECV-less first stage then starts at that "arrival"
    t_read = 2
    arrival = t_read + MEM_READ_LATENCY - (POS["mem0"] - POS["link0"])
    progs = []
    for c in range(n):
        last = topology == "line" and c == n - 1
        p, arrival_next = _stage(config, arrival, c, last)
        if c == 0:
            p.items["mem0"] = [(t_read, "READ bank=0 addr=0 count=1 -> E0")]
            p.items["link0"] = []
        progs.append(p)
        arrival = arrival_next
    if topology == "ring":                      # chip 0 takes the sum home and stores it in mem0 bank 1
        progs[0].at("link0", arrival - LINK_RECV_OFFSET, "RECV count=1 -> E0")
        progs[0].at("mem0", see(arrival, "link0", "mem0") - MEM_WRITE_LATENCY, "WRITE E0 bank=1 addr=0 count=1")
    for p in progs:
        p.items = {s: lst for s, lst in p.items.items() if lst}
    res = system(progs, config, topology, mems).run()
    assert res.ok, res.error
    want = wrap_int32(x + sum(addends))
    where = (0, "mem0", 1, 0) if topology == "ring" else (n - 1, "mem2", 1, 0)
    assert res.read_mem(*where).tolist() == want.tolist()
    assert res.chip_cycles == tuple(p.cycles() for p in progs)
    assert res.cycles == max(p.cycles() for p in progs)
    hops = {f"c{c}.east->c{c + 1}.west" for c in range(n - 1)} | ({f"c{n - 1}.east->c0.west"} if topology == "ring"
                                                                    else set())
    assert {ln.name for ln in res.links if ln.words} == hops
    assert all(ln.words == 1 and ln.busy_cycles == config.link_interval for ln in res.links if ln.words)
    assert len(res.links) == 2 * (n - 1 + (topology == "ring"))
    # deterministic: the same system again gives the same everything
    again = system(progs, config, topology, mems).run()
    assert (again.cycles, again.chip_cycles, again.error) == (res.cycles, res.chip_cycles, res.error)
    assert again.read_mem(*where).tolist() == want.tolist()


# ---- the step API and one chip ------------------------------------------------------------------------
PROGRAMS = [
    ".slice mem0\n    READ bank=0 addr=0 count=6 -> E1\n    HALT\n.slice mem2\n    NOP 5\n"
    "    WRITE E1 bank=1 addr=2 count=6\n    HALT\n",
    ".slice mem1\n    READ bank=1 addr=0 count=4 -> E0\n    HALT\n.slice vxu\n    NOP 4\n"
    "    VOP relu E0 count=4 -> E2\n    HALT\n.slice mem2\n    NOP 8\n    WRITE E2 bank=0 addr=0 count=4\n    HALT\n",
    ".slice mxu\n    LOADW E0 count=4\n    LOADW E0 count=1\n",            # UNIT_BUSY
    ".slice vxu\n    NOP 3\n    .word 0x0\n",                            # ILLEGAL_OPCODE
]


@pytest.mark.parametrize("text", PROGRAMS)
def test_step_api_equals_run_and_a_one_chip_system(text):
    seed = len(text)
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    data = {(s, b): rand(rng, 8) for s in ("mem0", "mem1", "mem2") for b in (0, 1)}

    def fresh():
        sim = ChipSim(TINY)
        sim.load(assemble(text, TINY))
        for (s, b), v in data.items():
            sim.write_mem(s, b, 0, v)
        return sim

    want = fresh().run(record=True)
    sim = fresh()
    sim.start(record=True)
    steps = 1
    while not sim.step():
        steps += 1
    got = sim.result()
    assert steps == got.cycles == want.cycles and sim.done
    assert got.error == want.error and got.stream_writes == want.stream_writes
    assert all((a is None and b is None) or (a == b).all() for a, b in zip(got.mems, want.mems))
    one = SystemSim(TINY, chips=1)
    one.load(0, assemble(text, TINY))
    for (s, b), v in data.items():
        one.write_mem(0, s, b, 0, v)
    r = one.run()
    assert (r.cycles, r.chip_cycles, r.errors) == (want.cycles, (want.cycles,), (want.error,))
    assert r.error == (None if want.error is None else SysError(*want.error[:1], 0, *want.error[1:]))
    assert r.links == ()


def test_step_api_misuse():
    sim = ChipSim(TINY)
    with pytest.raises(ChipFault, match="call start\\(\\) before step\\(\\)"):
        sim.step()
    with pytest.raises(ChipFault, match="the run is not done"):
        sim.result()
    sim.start()
    assert sim.cycle == 0 and not sim.done
    with pytest.raises(ChipFault, match="already run"):
        sim.start()
    assert sim.step() and sim.done
    with pytest.raises(ChipFault, match="the chip is done \\(cycles = 1\\)"):
        sim.step()
    assert sim.result().cycles == 1
    with pytest.raises(ValueError, match="slice mem0 is a MEM slice, not a link slice"):
        ChipSim(LINKED).connect("mem0", out=Link(1))


def test_system_arguments_and_misuse():
    with pytest.raises(ValueError, match="topology must be one of 'line', 'ring', not 'star'"):
        SystemSim(LINKED, chips=2, topology="star")
    with pytest.raises(ValueError, match="chips must be an integer between 1 and 64, not 0"):
        SystemSim(LINKED, chips=0)
    with pytest.raises(TypeError, match="chips must be an integer between 1 and 64, not 2.0"):
        SystemSim(LINKED, chips=2.0)
    with pytest.raises(ValueError, match="a line of 2 chips needs a link slice at both ends of config tiny "):
        SystemSim(TINY, chips=2)
    with pytest.raises(ValueError, match="a ring of 1 chip needs a link slice at both ends of config tiny_link"):
        SystemSim(TINY.with_links(east=False), chips=1, topology="ring")
    assert SystemSim(LINKED.replace(chips=3)).n == 3
    with pytest.raises(ValueError, match="chip must be an integer between 0 and 1, not 2"):
        SystemSim(LINKED, chips=2).load(2, [[0]] * len(LINKED.slices))
    sim = SystemSim(LINKED, chips=2)
    sim.load(0, Prog().at("mem0", 50, "READ bank=0 addr=0 count=1 -> E0").programs())
    with pytest.raises(ChipTimeout, match="the system was not done within max_cycles = 20"):
        sim.run(max_cycles=20)
    with pytest.raises(ChipFault, match="already run"):
        sim.run()


def test_ring_of_one_chip_loops_back():
    t = 1
    p = (Prog().at("link1", t, "SEND W2 count=1")
         .at("link0", t + isa.link_recv_delay(LINKED), "RECV count=1 -> E3"))
    res = system([p], topology="ring").run(record=True)
    assert res.ok, res.error
    assert [ln.name for ln in res.links] == ["c0.east->c0.west", "c0.west->c0.east"]
    arrival = t + LINK_SEND_OFFSET + LINKED.link_latency
    assert [w for w in res.chips[0].stream_writes if w[1] == WEST] == [(arrival, WEST, "E3", (0,) * L)]
