"""``ProgramBuilder.backfill``: an instruction placed before its slice's next free issue cycle goes into a gap of
NOPs when its unit is free throughout (MEM reads and writes; VXU VOPs that read no state and are not just ahead
of a chained VOP); everything else keeps the issue order. A backfilled program computes what the in-order one
does (run on ``golden.chip.ChipSim``: MEM after the run, cycles = prediction) in fewer cycles, and a trial's
rollback undoes a backfill exactly."""
import numpy as np
import pytest

from compiler.phases import _vxu_pass
from compiler.schedule import Conflict, ProgramBuilder
from golden import vxu as gvxu
from spec.config import PRESETS
from spec.isa import Instruction
from tests.builder_runs import run_on_golden

TINY = PRESETS["tiny"]
SEED = 47
MEM0, MEM1, MEM2 = TINY.positions("mem")
MXU, VXU = TINY.positions("mxu")[0], TINY.positions("vxu")[0]


def _words(p, addr, n, bank=0):
    return [(p, bank, addr + i) for i in range(n)]


def _builder(backfill=True):
    b = ProgramBuilder(TINY)
    b.eager = True
    b.backfill = backfill
    return b


def _queue(b, p):
    return [(t, ins.op, ins.count) for t, ins in b._sched[p]]


def test_a_read_fills_a_gap_of_nops():
    b = _builder()
    b.at(MEM0, 20, Instruction("READ", bank=0, addr=0, count=2, dst="E0"))
    b.at(MEM0, 5, Instruction("READ", bank=1, addr=3, count=4, dst="E1"))
    assert _queue(b, MEM0) == [(0, "NOP", 5), (5, "READ", 4), (6, "NOP", 14), (20, "READ", 2)]
    assert b.next_issue(MEM0) == 21
    b.at(MEM0, 0, Instruction("WRITE", src="W0", bank=1, addr=60, count=1))      # the first cycle of the gap
    b.at(MEM0, 19, Instruction("WRITE", src="W0", bank=1, addr=61, count=1))     # and its last
    assert _queue(b, MEM0) == [(0, "WRITE", 1), (1, "NOP", 4), (5, "READ", 4), (6, "NOP", 13), (19, "WRITE", 1),
                               (20, "READ", 2)]
    off = _builder(backfill=False)
    off.at(MEM0, 20, Instruction("READ", bank=0, addr=0, count=2, dst="E0"))
    with pytest.raises(Conflict, match="instructions of a slice must be placed in issue order"):
        off.at(MEM0, 5, Instruction("READ", bank=1, addr=3, count=4, dst="E1"))


def test_what_may_not_fill_a_gap():
    b = _builder()
    b.at(MEM0, 20, Instruction("READ", bank=0, addr=0, count=4, dst="E0"))
    with pytest.raises(Conflict, match="unit read is busy from cycle 20 to 23") as e:
        b.at(MEM0, 18, Instruction("READ", bank=1, addr=0, count=4, dst="E1"))
    assert e.value.shift == 6                    # past the READ's last cycle of the read unit
    with pytest.raises(Conflict, match="the queue issues READ"):
        b.at(MEM0, 20, Instruction("WRITE", src="W0", bank=1, addr=0, count=1))   # its issue cycle is taken
    b.at(MXU, 30, Instruction("LOADW", src="W1", count=4))
    with pytest.raises(Conflict, match="issue order"):           # the MXU keeps its order: the last weights swap
        b.at(MXU, 10, Instruction("LOADW", src="W1", count=4))
    b.at(VXU, 30, Instruction("VOP", vop="relu", src="W0", count=1, dst="E2"))
    for vop in ("requant", "lut"):                                # they read the SETQ / the table in force
        with pytest.raises(Conflict, match="issue order"):
            b.at(VXU, 10, Instruction("VOP", vop=vop, src="W0", count=1, dst="E2"))
    with pytest.raises(Conflict, match="issue order"):
        b.at(VXU, 10, Instruction("SETQ", mult=1, shift=0, zp=0))
    b.at(VXU, 10, Instruction("VOP", vop="add", src="W0", src2="W1", count=2, dst="E2"))
    b.at(VXU, 40, Instruction("VOP", vop="relu", src="W0", count=1, chain=True, dst="E2"))
    with pytest.raises(Conflict, match="chained") as e:          # it would become the chained VOP's operand
        b.at(VXU, 35, Instruction("VOP", vop="max", src="W0", src2="W1", count=1, dst="E2"))
    assert e.value.shift == 6
    b.at(VXU, 25, Instruction("VOP", vop="max", src="W0", src2="W1", count=1, dst="E2"))   # a VOP follows: fine


def test_a_gap_keeps_the_data_order_of_its_words():
    """In a gap a READ may not read a word before a store of it placed earlier, nor a WRITE store it before an
    earlier read or store (the queue kept that order when it issued in order); other words go in."""
    b = _builder()
    b.at(MEM0, 20, Instruction("WRITE", src="W0", bank=0, addr=7, count=2))
    with pytest.raises(Conflict, match="read before a store") as e:
        b.at(MEM0, 5, Instruction("READ", bank=0, addr=6, count=3, dst="E1"))       # word 7 is stored later
    assert e.value.shift >= 1
    b.at(MEM0, 5, Instruction("READ", bank=0, addr=4, count=3, dst="E1"))           # words 4 … 6: fine
    b.at(MEM0, 30, Instruction("READ", bank=1, addr=0, count=1, dst="E1"))
    with pytest.raises(Conflict, match="store before a read or store"):
        b.at(MEM0, 24, Instruction("WRITE", src="W0", bank=1, addr=0, count=1))     # word read at 30
    with pytest.raises(Conflict, match="store before a read or store"):
        b.at(MEM0, 10, Instruction("WRITE", src="W0", bank=0, addr=8, count=1))     # stored at 21 already
    b.at(MEM0, 10, Instruction("WRITE", src="W0", bank=0, addr=9, count=1))


def test_rollback_undoes_a_backfill_exactly():
    b = _builder()
    b.at(MEM0, 20, Instruction("READ", bank=0, addr=0, count=2, dst="E0"))
    state = lambda: ([list(q) for q in b._sched], [{u: list(v) for u, v in d.items()} for d in b._spans],  # noqa: E731
                     [b.unit_free(MEM0, u) for u in ("read", "write")], dict(b._presented), b.end)
    before = state()
    token = b.checkpoint()
    b.at(MEM0, 5, Instruction("READ", bank=1, addr=3, count=10, dst="E1"))
    b.at(MEM0, 40, Instruction("WRITE", src="W0", bank=1, addr=60, count=1))
    assert state() != before
    b.rollback(token)
    assert state() == before
    b.at(MEM0, 5, Instruction("READ", bank=1, addr=3, count=4, dst="E1"))       # and it places again
    assert b.finish().predicted_cycles == before[-1]      # the READ at 20 still ends the program


@pytest.mark.parametrize("n", [1, 3])
def test_a_backfilled_pass_computes_what_the_in_order_one_does(n):
    """A pass placed after a long dependent one but independent of it goes into the gaps before it: the same MEM,
    fewer cycles."""
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED + n)
    x, y, z = _words(MEM0, 0, 8), _words(MEM2, 0, 8), _words(MEM2, 16, 8)
    u, v, w = _words(MEM1, 0, n), _words(MEM0, 32, n), _words(MEM2, 40, n)
    init = {loc: rng.integers(-1000, 1000, TINY.lanes) for loc in x + u + v}

    def build(backfill):
        b = _builder(backfill)
        _vxu_pass(b, None, "relu", x, y)
        _vxu_pass(b, None, "requant", y, z, setq=gvxu.RequantParams(1 << 30, 0, 1))
        _vxu_pass(b, None, "mul", u, w, b_locs=v)          # independent of both
        return b

    runs = [run_on_golden(build(backfill), init) for backfill in (False, True)]
    (lazy, pl), (eager, pe) = runs
    assert pe.predicted_cycles < pl.predicted_cycles
    for loc in y + z + w:
        np.testing.assert_array_equal(eager.read_mem(*loc)[0], lazy.read_mem(*loc)[0], err_msg=f"word {loc}")
    want = np.array([init[a] * init[b_] for a, b_ in zip(u, v)], np.int64)
    np.testing.assert_array_equal(np.array([eager.read_mem(*loc)[0] for loc in w]), want)
