"""compiler/lm/indexed.py: gather, scatter and indexed_add (READX / WRITEX phases) scheduled by the
``ProgramBuilder`` and run on the golden chip, for random indices; the builder's window rule; the allocator's
tables (``MemAllocator.alloc_table``) and their errors."""
import numpy as np
import pytest

from compiler.lm.indexed import gather, indexed_add, scatter
from compiler.memory import MemAllocator, MemoryFull, Region
from compiler.schedule import ProgramBuilder
from golden.chip import ChipSim
from golden.mxu import wrap_int32
from spec.config import PRESETS
from spec.isa import MEM_INDEX_OFFSET, MEM_WRITE_LATENCY, Instruction

SMALL = PRESETS["small"]
L = SMALL.lanes
MEM = SMALL.positions("mem")          # mem0 0, mem1 1, mem2 4, mem3 5


def table_region(p, bank, addr, n):
    return Region("table", SMALL, [(p, bank, addr + i) for i in range(n)])


def run(b, writes):
    prog = b.finish()
    sim = ChipSim(SMALL)
    sim.load(prog.words)
    for p, bank, addr, v in writes:
        sim.write_mem(p, bank, addr, v)
    r = sim.run()
    assert r.error is None, r.error
    assert r.cycles == prog.predicted_cycles
    return r


def index_copies(x, lane):
    """The index word on every MEM slice (bank 3, word 0)."""
    v = np.zeros(L, np.int64)
    v[lane] = x
    return [(p, 3, 0) for p in MEM], [(p, 3, 0, v) for p in MEM]


@pytest.mark.parametrize("seed", range(8))
def test_gather_copies_the_rows_its_index_names(seed):
    rng = np.random.default_rng(seed)
    print("seed", seed)
    n, rows = int(rng.integers(1, 6)), int(rng.integers(2, 20))
    x = int(rng.integers(0, rows)) * n
    lane = int(rng.integers(0, L))
    pt, pd = rng.choice(MEM, 2, replace=False)
    data = rng.integers(-2**31, 2**31, (rows * n, L))
    locs, iw = index_copies(x, lane)
    b = ProgramBuilder(SMALL)
    b.eager = bool(seed % 2)
    out = [(int(pd), 1, 7 + 2 * i) for i in range(n)]            # not consecutive: one WRITE each
    gather(b, None if b.eager else 0, (locs, lane), table_region(int(pt), 0, 5, rows * n), n, out)
    r = run(b, iw + [(int(pt), 0, 5, data)])
    got = np.array([r.mems[p][bank, a] for p, bank, a in out])
    assert np.array_equal(got, data[x:x + n].astype(np.int32)), (x, n, pt, pd)


@pytest.mark.parametrize("seed", range(6))
def test_scatter_stores_where_its_index_says(seed):
    rng = np.random.default_rng(10 + seed)
    print("seed", 10 + seed)
    n, size = int(rng.integers(1, 5)), 32
    x = int(rng.integers(0, size - n + 1))
    lane = int(rng.integers(0, L))
    pt, ps = rng.choice(MEM, 2, replace=False)
    src = [(int(ps), 2, 40 + i) for i in range(n)]
    vals = rng.integers(-2**31, 2**31, (n, L))
    locs, iw = index_copies(x, lane)
    b = ProgramBuilder(SMALL)
    scatter(b, 0, (locs, lane), src, table_region(int(pt), 1, 100, size))
    r = run(b, iw + [(int(ps), 2, 40, vals)])
    tab = r.mems[int(pt)][1, 100:100 + size]
    assert np.array_equal(tab[x:x + n], vals.astype(np.int32))
    assert not np.delete(tab, range(x, x + n), axis=0).any()


@pytest.mark.parametrize("seed", range(6))
def test_indexed_add_adds_into_the_words_its_index_names(seed):
    rng = np.random.default_rng(20 + seed)
    print("seed", 20 + seed)
    n, size = int(rng.integers(1, 9)), 40
    x = int(rng.integers(0, size - n + 1))
    lane = int(rng.integers(0, L))
    pt, pi = rng.choice(MEM, 2, replace=False)
    tab = rng.integers(-2**31, 2**31, (size, L))
    inc = rng.integers(-2**31, 2**31, (n, L))
    locs, iw = index_copies(x, lane)
    b = ProgramBuilder(SMALL)
    indexed_add(b, 0, (locs, lane), table_region(int(pt), 0, 0, size), [(int(pi), 2, i) for i in range(n)])
    r = run(b, iw + [(int(pt), 0, 0, tab), (int(pi), 2, 0, inc)])
    want = tab.copy()
    want[x:x + n] = wrap_int32(tab[x:x + n] + inc)
    assert np.array_equal(r.mems[int(pt)][0, :size], want.astype(np.int32)), (x, n)


def test_the_index_is_read_off_the_slices_the_phase_uses():
    """With the index word only on the table's or the increments' slices, the phase refuses (no copy to read
    without queueing behind them); a copy elsewhere is taken."""
    b = ProgramBuilder(SMALL)
    tab = table_region(MEM[0], 0, 0, 8)
    with pytest.raises(ValueError, match=r"no copy of the index word lies off slices \[0, 1\]"):
        indexed_add(b, 0, ([(MEM[0], 3, 0), (MEM[1], 3, 0)], 0), tab, [(MEM[1], 2, 0)])
    indexed_add(b, 0, ([(MEM[0], 3, 0), (MEM[2], 3, 0)], 0), tab, [(MEM[1], 2, 0)])
    reads = [(t, ins) for t, ins in b._sched[MEM[2]] if ins.op == "READ"]
    assert len(reads) == 2 and all(ins.addr == 0 and ins.bank == 3 for _, ins in reads)


def test_an_indexed_instruction_needs_its_window_and_marks_all_of_it():
    b = ProgramBuilder(SMALL)
    rx = Instruction("READX", src="E4", bank=0, addr=10, count=2, lane=0, dst="E5")
    with pytest.raises(ValueError, match=r"window must be an integer between count = 2 and 1014 \(the words its "
                                         r"index may reach\), not None"):
        b.at(1, 3, rx)
    with pytest.raises(ValueError, match=r"window must be an integer between count = 2 and 1014"):
        b.at(1, 3, rx, 1015)
    with pytest.raises(ValueError, match=r"only READX and WRITEX take a window"):
        b.at(1, 3, Instruction("READ", bank=0, addr=10, count=2, dst="E5"), 4)
    b.at(1, 3, rx, 6)
    last = 3 + MEM_INDEX_OFFSET + 1 + 2 - 1            # the last presentation
    assert b.ready(writes=[(1, 0, 15)]) == last + 1      # every word of the window counts as read
    assert b.ready(writes=[(1, 0, 16)]) == 0
    b.at(1, 10, Instruction("WRITEX", src="E4", src2="E5", bank=1, addr=0, count=3, lane=2), 50)
    assert b.ready(reads=[(1, 1, 49)]) == 10 + MEM_WRITE_LATENCY + 3 - 1 + 1
    assert b.ready(reads=[(1, 1, 50)]) == 0


def test_alloc_table_is_one_bank_and_says_the_largest_free_run():
    a = MemAllocator(SMALL)
    r = a.alloc_table("t", 1000, [MEM[0]])
    assert r.locs == [(MEM[0], 0, i) for i in range(1000)]
    r2 = a.alloc_table("u", 30, [MEM[0]])             # bank 0 has 24 left: bank 1
    assert r2.locs[0] == (MEM[0], 1, 0) and r2.locs[-1] == (MEM[0], 1, 29)
    with pytest.raises(MemoryFull, match=r"big needs 1025 consecutive words of one MEM bank \(it is indexed by "
                                         r"READX/WRITEX\) but the largest free run on mem0 is 1024 words"):
        a.alloc_table("big", 1025, [MEM[0]])
