"""golden/chip.py: READX and WRITEX (an address from a stream lane) and their INDEX_RANGE fault, on ``tiny``.

Every expected cycle is computed from ``spec.isa``'s latencies; the index path is: mem0 READs the index vector
at cycle 0 onto E0 (on the stream at ``MEM_READ_LATENCY``, at slice ``q`` ``q`` cycles later), so a READX on
mem1 issued at ``MEM_READ_LATENCY`` samples it, and its words reach mem2 (slice 4) ``3`` hops later.
"""
import numpy as np
import pytest

from golden.chip import ChipError, ChipSim
from spec import isa
from spec.asm import assemble, disassemble
from spec.config import PRESETS
from spec.isa import MEM_INDEX_OFFSET, MEM_READ_LATENCY, READX_LATENCY, ErrorCode, Instruction, decode, encode

TINY = PRESETS["tiny"]
L, DEPTH = TINY.lanes, TINY.mem_depth
T_X = MEM_READ_LATENCY + 1 - MEM_INDEX_OFFSET     # READX issue on mem1: samples E0 the cycle mem0's word arrives


def index_vec(x, lane):
    v = np.zeros(L, np.int64)
    v[lane] = x
    return v


def sim_with(text, mems):
    sim = ChipSim(TINY)
    sim.load(assemble(text, TINY))
    for s, bank, addr, v in mems:
        sim.write_mem(s, bank, addr, v)
    return sim


def readx_program(base, count, lane, then_read=False):
    """mem0: READ the index (word 0) -> E0; mem1: READX E0 -> E1 (then, optionally, a READ right after its
    busy time); mem2: WRITE what arrives into bank 1 from word 0."""
    t_w = T_X + READX_LATENCY + (4 - 1)             # mem1 (slice 1) writes at T_X + 4, mem2 (slice 4) sees it 3 later
    issue_w = t_w - isa.MEM_WRITE_LATENCY
    # a READ issued as soon as READX's busy time (count + 1) is over: its word follows READX's last one
    extra = f"    NOP {count}\n    READ bank=0 addr=0 count=1 -> E1\n" if then_read else ""
    n = count + (1 if then_read else 0)
    return f"""
.slice mem0
    READ bank=0 addr=0 count=1 -> E0
    HALT
.slice mem1
    NOP {T_X}
    READX E0 bank=1 addr={base} count={count} lane={lane} -> E1
{extra}    HALT
.slice mem2
    NOP {issue_w}
    WRITE E1 bank=1 addr=0 count={n}
    HALT
"""


@pytest.mark.parametrize("seed", range(6))
def test_readx_reads_the_words_its_index_names(seed):
    rng = np.random.default_rng(seed)
    print("seed", seed)
    count = int(rng.integers(1, 9))
    base = int(rng.integers(0, DEPTH - count))
    x = int(rng.integers(0, DEPTH - base - count + 1))
    lane = int(rng.integers(0, L))
    table = rng.integers(-2**31, 2**31, (DEPTH, L))
    sim = sim_with(readx_program(base, count, lane), [("mem0", 0, 0, index_vec(x, lane)), ("mem1", 1, 0, table)])
    r = sim.run()
    assert r.error is None
    got = r.read_mem("mem2", 1, 0, count)
    assert np.array_equal(got, table[base + x:base + x + count].astype(np.int32)), (base, x, count, lane)
    # the last word leaves mem1 at T_X + READX_LATENCY + count - 1
    assert isa.timing(Instruction("READX", src="E0", bank=1, addr=base, count=count, lane=lane, dst="E1"),
                      TINY).span == READX_LATENCY + count


def test_readx_uses_only_its_lane_and_a_read_may_follow_after_count_plus_one():
    table = np.arange(DEPTH * L).reshape(DEPTH, L)
    idx = np.array([7, 3, 11, 2][:L])                  # lane 1 holds 3
    sim = sim_with(readx_program(10, 2, 1, then_read=True), [("mem0", 0, 0, idx), ("mem1", 1, 0, table),
                                                            ("mem1", 0, 0, np.full(L, 99))])
    r = sim.run()
    assert r.error is None
    got = r.read_mem("mem2", 1, 0, 3)
    assert np.array_equal(got[:2], table[13:15])
    assert np.array_equal(got[2], np.full(L, 99))      # the READ issued right after READX's busy time


def test_readx_busy_is_count_plus_one():
    t = isa.timing(Instruction("READX", src="E0", bank=0, addr=0, count=5, lane=0, dst="E1"), TINY)
    assert (t.unit, t.busy, t.items, t.items_in, t.first_in, t.first_out) == ("read", 6, 5, 1, MEM_INDEX_OFFSET,
                                                                            READX_LATENCY)
    text = """
.slice mem1
    READX E0 bank=0 addr=0 count=5 lane=0 -> E1
    NOP 4
    READ bank=0 addr=0 count=1 -> E1
    HALT
"""
    r = sim_with(text, []).run()
    assert r.error == ChipError(ErrorCode.UNIT_BUSY, 1, 2, 5)


@pytest.mark.parametrize("x, ok", [(0, True), (DEPTH - 20 - 4, True), (DEPTH - 20 - 3, False), (-1, False),
                                   (-2**31, False), (2**31 - 1, False)])
def test_readx_index_range(x, ok):
    table = np.arange(DEPTH * L).reshape(DEPTH, L)
    r = sim_with(readx_program(20, 4, 0), [("mem0", 0, 0, index_vec(x, 0)), ("mem1", 1, 0, table)]).run()
    if ok:
        assert r.error is None
        assert np.array_equal(r.read_mem("mem2", 1, 0, 4), table[20 + x:24 + x])
    else:
        # sampled at T_X + 1 on mem1 (slice 1), pc 1 (after the NOP)
        assert r.error == ChipError(ErrorCode.INDEX_RANGE, 1, 1, T_X + MEM_INDEX_OFFSET)
        assert r.cycles == T_X + MEM_INDEX_OFFSET + 1
        assert not r.read_mem("mem2", 1, 0, 4).any()


def writex_text(base, count, lane):
    """mem0 READs the index (word 0) onto E0 at cycle 0, mem1 the data (words 0..) onto E1 at cycle 1: both reach
    mem2 (slice 4) during ``MEM_READ_LATENCY + 4``, where WRITEX samples the index with data item 0."""
    return f"""
.slice mem0
    READ bank=0 addr=0 count=1 -> E0
    HALT
.slice mem1
    NOP 1
    READ bank=0 addr=0 count={count} -> E1
    HALT
.slice mem2
    NOP {MEM_READ_LATENCY + 4 - 1}
    WRITEX E1 E0 bank=1 addr={base} count={count} lane={lane}
    HALT
"""


@pytest.mark.parametrize("seed", range(6))
def test_writex_stores_where_its_index_says(seed):
    rng = np.random.default_rng(100 + seed)
    print("seed", 100 + seed)
    count = int(rng.integers(1, 9))
    base = int(rng.integers(0, DEPTH - count))
    x = int(rng.integers(0, DEPTH - base - count + 1))
    lane = int(rng.integers(0, L))
    data = rng.integers(-2**31, 2**31, (count, L))
    r = sim_with(writex_text(base, count, lane), [("mem0", 0, 0, index_vec(x, lane)), ("mem1", 0, 0, data)]).run()
    assert r.error is None
    mem = r.read_mem("mem2", 1, 0, DEPTH)
    assert np.array_equal(mem[base + x:base + x + count], data.astype(np.int32)), (base, x, count, lane)
    others = np.ones(DEPTH, bool)
    others[base + x:base + x + count] = False
    assert not mem[others].any()


@pytest.mark.parametrize("x", [-1, DEPTH - 10 - 3 + 1])
def test_writex_out_of_range_stores_nothing_and_faults(x):
    mems = [("mem0", 0, 0, index_vec(x, 0)), ("mem1", 0, 0, np.ones((3, L), np.int64))]
    r = sim_with(writex_text(10, 3, 0), mems).run()
    assert r.error == ChipError(ErrorCode.INDEX_RANGE, 4, 1, MEM_READ_LATENCY + 4)
    assert r.cycles == MEM_READ_LATENCY + 4 + 1
    assert not r.read_mem("mem2", 1, 0, DEPTH).any()


def test_lowest_slice_wins_between_two_index_faults_in_one_cycle():
    """READX on mem1 (slice 1) and WRITEX on mem2 (slice 4) both sample a negative index during cycle 6."""
    u = 6
    text = f"""
.slice mem0
    NOP {u - MEM_READ_LATENCY - 1}
    READ bank=0 addr=0 count=1 -> E0
    HALT
.slice mem1
    READ bank=0 addr=0 count=1 -> E1
    NOP {u - 2}
    READX E0 bank=0 addr=0 count=1 lane=0 -> E2
    HALT
.slice mem2
    NOP {u - 1}
    WRITEX E2 E1 bank=0 addr=0 count=1 lane=0
    HALT
"""
    neg = index_vec(-5, 0)
    r = sim_with(text, [("mem0", 0, 0, neg), ("mem1", 0, 0, neg)]).run()
    assert r.error == ChipError(ErrorCode.INDEX_RANGE, 1, 2, u)


def test_lane_at_or_above_lanes_is_bad_field_before_bad_bank():
    ins = Instruction("READX", src="E0", bank=TINY.mem_banks, addr=0, count=1, lane=L, dst="E1")
    f = isa.fault(ins, TINY, "mem")
    assert f.code == ErrorCode.BAD_FIELD and f.field == "lane"
    assert f.message == f"lane must be between 0 and {L - 1} (lanes) for config tiny, not {L}"
    assert isa.fault(Instruction("READX", src="E0", bank=0, addr=0, count=1, lane=L - 1, dst="E1"), TINY,
                     "mem") is None
    assert isa.fault(Instruction("WRITEX", src="E0", src2="E1", bank=0, addr=DEPTH - 2, count=3, lane=0), TINY,
                     "mem").code == ErrorCode.BAD_ADDRESS
    assert isa.fault(Instruction("WRITEX", src="E0", src2="E1", bank=0, addr=0, count=1, lane=0), TINY,
                     "vxu").code == ErrorCode.ILLEGAL_OPCODE


def test_index_fault_message_names_the_allowed_range():
    ins = Instruction("READX", src="E0", bank=0, addr=20, count=4, lane=0, dst="E1")
    assert isa.index_fault(ins, DEPTH - 24, TINY) is None
    f = isa.index_fault(ins, DEPTH - 23, TINY)
    assert f.code == ErrorCode.INDEX_RANGE
    assert f.message == (f"READX index must be between 0 and {DEPTH - 24} (addr=20, count=4, mem_depth = {DEPTH} "
                         f"of config tiny), not {DEPTH - 23}")


@pytest.mark.parametrize("ins", [
    Instruction("READX", src="W3", bank=1, addr=77, count=9, lane=15, dst="E2"),
    Instruction("WRITEX", src="E1", src2="W0", bank=15, addr=65535, count=65536, lane=7),
])
def test_encode_decode_and_assembly_round_trip(ins):
    assert decode(encode(ins)) == ins
    cfg = PRESETS["tsp"]
    words = [[] for _ in cfg.slices]
    words[0] = [encode(Instruction("READX", src="E0", bank=0, addr=1, count=2, lane=3, dst="E1")),
                encode(Instruction("WRITEX", src="E0", src2="E1", bank=0, addr=1, count=2, lane=3)),
                encode(Instruction("HALT"))]
    words = [w or [encode(Instruction("HALT"))] for w in words]
    text = disassemble(words, cfg)
    assert "READX E0 bank=0 addr=1 count=2 lane=3 -> E1" in text
    assert "WRITEX E0 E1 bank=0 addr=1 count=2 lane=3" in text
    assert assemble(text, cfg) == words
