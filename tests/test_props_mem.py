"""Property: the MEM slice (``rtl.mem.MemSlice``, preset ``tiny``: 2 banks × 64 words, 4 lanes) in Verilator through
pyverilator follows its contract (``tests.test_mem_rtl._expected``: the golden chip's READ/WRITE timing) on
schedules hypothesis makes.

An example: a few words stored through the host port (``run`` low), then up to ``MAX_OPS`` READs, WRITEs, READXs
and WRITEXs (their index mostly in range, sometimes past the bank or negative) on few hot addresses of both banks,
each unit issued as soon as it is free or after a short gap (so reads and writes overlap, back to back, on the same
words), the vectors each WRITE samples drawn by hypothesis (int32 lanes, extremes weighted in) and put on its
source stream, garbage elsewhere; then every touched word is read back through the host port. The stream writes
(cycle, stream, lanes), the INDEX_RANGE cycles and the final words must equal the contract's; a mismatch names the
first cycle (and lane) or the bank/word/lane, and hypothesis shrinks the schedule.
"""
import functools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from spec import isa
from spec.config import PRESETS
from spec.isa import Instruction, Stream, encode
from spec.lanes import pack_lanes, unpack_lanes
from tests.props import PROPS, int32_vectors, unit_sim
from tests.test_mem_rtl import _expected

CONFIG = PRESETS["tiny"]
MAX_OPS = 6
MAX_COUNT = 5
L = CONFIG.lanes


def mem_sim():
    from rtl.mem import MemSlice

    return unit_sim(("mem", CONFIG), lambda: MemSlice(CONFIG), f"mem_{CONFIG.name}")


streams = st.builds(Stream, st.sampled_from(isa.DIRECTIONS), st.integers(0, CONFIG.streams - 1))
banks = st.integers(0, CONFIG.mem_banks - 1)
counts = st.integers(1, MAX_COUNT)
gaps = st.sampled_from((0, 0, 0, 1, 2, 4))
vectors = {n: int32_vectors(L * n) for n in range(1, MAX_COUNT + 1)}
preloads = st.lists(st.tuples(banks, st.integers(0, 7), int32_vectors(L)), max_size=4)


def _addr(count):
    """Hot words: the bottom of a bank, its top, or anywhere the run fits."""
    return st.one_of(st.sampled_from((0, 2, CONFIG.mem_depth - count)), st.integers(0, CONFIG.mem_depth - count))


addrs = {n: _addr(n) for n in range(1, MAX_COUNT + 1)}


@st.composite
def operation(draw):
    """``(instruction, vectors or None, gap, index or None)``: a READ (where shrinking goes), a WRITE with its
    source vectors, or a READX / WRITEX with the index its index stream carries when it samples (mostly in
    range, sometimes one past the bank or negative: ``INDEX_RANGE``)."""
    unit = draw(st.sampled_from(("READ", "WRITE", "READX", "WRITEX")))
    count = draw(counts)
    bank, addr = draw(banks), draw(addrs[count])
    if unit == "READ":
        return Instruction("READ", bank=bank, addr=addr, count=count, dst=draw(streams)), None, draw(gaps), None
    room = CONFIG.mem_depth - addr - count
    x = draw(st.one_of(st.integers(0, room), st.sampled_from((room + 1, -1, -(1 << 31)))))
    lane = draw(st.integers(0, L - 1))
    if unit == "READX":
        ins = Instruction("READX", src=draw(streams), bank=bank, addr=addr, count=count, lane=lane, dst=draw(streams))
        return ins, None, draw(gaps), x
    vecs = np.array(draw(vectors[count]), np.int64).reshape(count, L)
    src = draw(streams)
    src2 = draw(streams.filter(lambda t: t != src))
    if unit == "WRITE":
        return Instruction("WRITE", src=src, bank=bank, addr=addr, count=count), vecs, draw(gaps), None
    return Instruction("WRITEX", src=src, src2=src2, bank=bank, addr=addr, count=count, lane=lane), vecs, draw(gaps), x


@functools.cache
def _garbage_of(T):
    rng = np.random.default_rng(4321)
    return rng.integers(-(1 << 31), 1 << 31, size=(T, 2, CONFIG.streams, L), dtype=np.int64)


def build_case(program):
    """``(issues, ops, see, cycles)``: each unit issued when free (``spec.isa`` timing: a unit is busy for
    ``count`` cycles), at most one instruction per cycle."""
    issues, ops, placed = {}, [], []
    free = {"read": 0, "write": 0}
    t = 0
    for ins, vecs, gap, x in program:
        tm = isa.timing(ins, CONFIG)
        t = max(t + gap, free[tm.unit])
        while t in issues:
            t += 1
        issues[t] = encode(ins)
        ops.append((t, ins))
        placed.append((t, ins, vecs, x))
        free[tm.unit] = t + tm.busy
        t += 1
    cycles = max(free.values()) + isa.READX_LATENCY + 2
    see = _garbage_of(cycles).copy()
    for t0, ins, vecs, _x in placed:
        if vecs is not None:
            d = isa.DIRECTIONS.index(ins.src.direction)
            for i, v in enumerate(vecs):
                see[t0 + isa.MEM_WRITE_LATENCY + i, d, ins.src.index] = v
    for t0, ins, _vecs, x in placed:         # the index lane when it is sampled (after the data: WRITEX's src2)
        if x is not None:
            s = ins.src if ins.op == "READX" else ins.src2
            see[t0 + isa.MEM_INDEX_OFFSET, isa.DIRECTIONS.index(s.direction), s.index, ins.lane] = x
    return issues, ops, see, cycles


def run_rtl(sim, preload, issues, see, cycles, readback):
    """Stream writes ``{cycle: (stream bits, lanes)}``, the words of ``readback`` ``[(bank, addr)]`` and the
    cycles ``rt_fault`` (INDEX_RANGE) was raised."""
    from rtl.common import STREAM_BITS, stream_write_layout
    from rtl.mem import MemSlice

    layout = stream_write_layout(CONFIG)
    o_valid, o_stream, o_data = (layout[n].offset for n in ("valid", "stream", "data"))
    s_mask = (1 << layout["stream"].shape.width) - 1
    sim.fresh()
    for bank, addr, vec in preload:         # the host port, run low
        sim.set(host_we=1, host_bank=bank, host_addr=addr, host_wdata=pack_lanes(vec, 32))
        sim.tick()
    sim["host_we"] = 0
    puts, faults = {}, set()
    for k in range(cycles):
        word = issues.get(k)
        sim.set(run=1, issue=int(word is not None), word=word or 0)
        sel, seen = sim["sel"], 0
        for j in range(MemSlice.READS):     # each read port: the stream it names, seen this cycle
            s = (sel >> (j * STREAM_BITS)) & ((1 << STREAM_BITS) - 1)
            d, idx = s >> isa.STREAM_INDEX_BITS, s & (isa.MAX_STREAMS - 1)
            seen |= (pack_lanes(see[k, d, idx], 32) if idx < CONFIG.streams else 0) << (j * 32 * L)
        sim["seen"] = seen
        put = sim["put"]
        if (put >> o_valid) & 1:
            puts[k] = ((put >> o_stream) & s_mask, unpack_lanes(put >> o_data, 32, L))
        if sim["rt_fault"]:
            faults.add(k)
        sim.tick()
    sim.set(run=0, issue=0)
    words = {}
    for k in range(len(readback) + 2):      # host reads, two cycles of latency
        if k < len(readback):
            sim.set(host_bank=readback[k][0], host_addr=readback[k][1])
        if k >= 2:
            words[readback[k - 2]] = sim.lanes("host_rdata", 32, L)
        sim.tick()
    return puts, words, faults


def check_program(preload, program, expected=_expected):
    issues, ops, see, cycles = build_case(program)
    mem0 = np.zeros((CONFIG.mem_banks, CONFIG.mem_depth, L), np.int64)
    for bank, addr, vec in preload:
        mem0[bank, addr] = vec
    want_puts, want_mem, faults = expected(CONFIG, mem0, ops, see, cycles)
    touched = sorted({(b, a) for b, a, _ in preload}
                     | {(ins.bank, ins.addr + i) for _, ins in ops for i in range(ins.count)}
                     | {(int(b), int(a)) for b, a in zip(*np.nonzero((want_mem != mem0).any(axis=2)))})
    got_puts, got_words, got_faults = run_rtl(mem_sim(), preload, issues, see, cycles, touched)
    what = f"MEM {CONFIG.name}"
    for k in range(cycles):
        w, g = want_puts.get(k), got_puts.get(k)
        w = None if w is None else (w[0], [int(x) for x in w[1]])
        if w != g:
            lane = next((i for i, (x, y) in enumerate(zip(w[1], g[1])) if x != y), None) if w and g else None
            sched = "\n  ".join(f"{t}: {isa.decode(issues[t])}" for t in sorted(issues))
            raise AssertionError(f"{what}: first mismatch at cycle {k}" + (f", lane {lane}" if lane is not None else "")
                                 + f": expected {w}, got {g}\nissued:\n  {sched}")
    assert got_faults == faults, f"{what}: INDEX_RANGE in cycles {sorted(got_faults)}, expected {sorted(faults)}"
    for (b, a), got in got_words.items():
        want = [int(x) for x in want_mem[b, a]]
        assert got == want, f"{what}: bank {b} word {a} after the run is {got}, expected {want}"


@PROPS
@given(preloads, st.lists(operation(), min_size=1, max_size=MAX_OPS))
def test_mem_matches_contract(preload, program):
    check_program(preload, program)
