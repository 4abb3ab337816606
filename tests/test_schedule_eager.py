"""``ProgramBuilder``'s data readiness and trial placements (what the decode step's eager VXU passes use):
``ready`` follows the WRITEs and READs placed, ``rollback`` undoes a trial exactly, and an eager pass that
cannot start early falls back to ``end``."""
from compiler.phases import _vxu_pass
from compiler.schedule import ProgramBuilder
from spec.config import PRESETS
from spec.isa import MEM_DECODE_STAGES, MEM_WRITE_LATENCY, Instruction

TINY = PRESETS["tiny"]


def test_ready_follows_stores_and_reads():
    b = ProgramBuilder(TINY)
    mem0 = TINY.positions("mem")[0]
    b.at(mem0, 5, Instruction("WRITE", src="E0", bank=0, addr=10, count=2))
    b.at(mem0, 9, Instruction("READ", bank=1, addr=3, count=4, dst="E1"))
    assert b.ready(reads=[(mem0, 0, 10)]) == 5 + MEM_WRITE_LATENCY + 1
    assert b.ready(reads=[(mem0, 0, 11)]) == 5 + MEM_WRITE_LATENCY + 1 + 1
    assert b.ready(reads=[(mem0, 1, 3)]) == 0                       # a read does not delay a read
    assert b.ready(writes=[(mem0, 1, 6)]) == 9 + MEM_DECODE_STAGES + 3 + 1
    assert b.ready(reads=[(mem0, 1, 7)]) == 0 and b.ready() == 0
    assert b.ready(writes=[(mem0, 0, 11)]) <= b.end


def test_rollback_undoes_a_trial_exactly():
    b = ProgramBuilder(TINY)
    mem0, vxu = TINY.positions("mem")[0], TINY.positions("vxu")[0]
    _vxu_pass(b, 0, "relu", [(mem0, 0, 0)], [(mem0, 0, 1)])
    before = (b.end, [list(q) for q in b._sched], dict(b._streams), dict(b._stored), dict(b._presented))
    token = b.checkpoint()
    _vxu_pass(b, b.end, "relu", [(mem0, 0, 1)], [(mem0, 0, 2)])
    assert b.end > before[0]
    b.rollback(token)
    assert (b.end, [list(q) for q in b._sched], dict(b._streams), dict(b._stored), dict(b._presented)) == before
    assert b.next_issue(vxu) == b.next_issue(vxu)     # still usable: place again
    _vxu_pass(b, b.end, "relu", [(mem0, 0, 1)], [(mem0, 0, 2)])
    assert b.finish().predicted_cycles > before[0]


def test_an_eager_pass_starts_when_its_data_is_ready():
    mem0, _, mem2 = TINY.positions("mem")        # mem2 is east of the VXU: its streams do not cross mem0's

    def two(eager, second):
        b = ProgramBuilder(TINY)
        b.eager = eager
        _vxu_pass(b, None, "relu", [(mem0, 0, 0)], [(mem0, 0, 1)])
        _vxu_pass(b, None, "relu", *second(b))
        return b

    independent = lambda b: ([(mem2, 0, 5)], [(mem2, 0, 6)])          # noqa: E731
    dependent = lambda b: ([(mem0, 0, 1)], [(mem2, 0, 6)])            # noqa: E731  (reads the first's result)
    lazy, eager = two(False, independent), two(True, independent)
    assert eager.end < lazy.end                  # pipelined behind the first pass
    # reading the first's result from MEM (the first written into a second word too, so the operand is not its
    # whole output and the pass does not chain: tests/test_chained_pass.py) waits for the data, as b.end did
    wide = lambda b: ([(mem0, 0, 1)], [(mem2, 0, 6)])                 # noqa: E731

    def two_wide(eager):
        b = ProgramBuilder(TINY)
        b.eager = eager
        _vxu_pass(b, None, "relu", [(mem0, 0, 0), (mem0, 0, 2)], [(mem0, 0, 1), (mem0, 0, 3)])
        _vxu_pass(b, None, "relu", *wide(b))
        return b
    prog = two_wide(True).finish()
    ((t_w, w),) = [(t, i) for p, t, i in prog.instructions("WRITE") if p == mem0 and i.addr == 1]
    ((t_r, r),) = [(t, i) for p, t, i in prog.instructions("READ") if p == mem0 and i.addr == 1]
    assert t_r + MEM_DECODE_STAGES > t_w + MEM_WRITE_LATENCY          # presented after the store
    assert prog.predicted_cycles <= two_wide(False).end
    assert not [i for _, _, i in prog.instructions("VOP") if i.chain]
    assert two(True, dependent).end < two(False, dependent).end       # the whole output: chained


def test_a_gemm_started_early_waits_for_the_last_swap():
    """A GEMM phase started before ``end`` (an eager builder's trial) may not load weights until the MXU's last
    swap has taken its own: refused with the shift that gets past it, and placed from there."""
    import pytest

    from compiler.memory import Region
    from compiler.phases import _Gemm, _gemm_phase, _ToMem
    from compiler.schedule import Conflict

    mem0, mem1, mem2 = TINY.positions("mem")
    R = TINY.mxu_rows
    w = Region("w", TINY, [(mem0, 1, i) for i in range(R)])
    x = Region("x", TINY, [(mem1, 0, 0)])
    b = ProgramBuilder(TINY)
    _gemm_phase(b, 0, _Gemm(1, R, TINY.mxu_cols, x, w), _ToMem(b, Region("y", TINY, [(mem2, 0, 0)]), 1))
    swap = b.last_swap
    g = _Gemm(1, R, TINY.mxu_cols, x, w)
    with pytest.raises(Conflict, match="before the MXU's last swap") as e:
        _gemm_phase(b, 0, g, _ToMem(b, Region("z", TINY, [(mem2, 0, 1)]), 1))
    assert e.value.shift >= 1
    later = b.end
    _gemm_phase(b, later, g, _ToMem(b, Region("z", TINY, [(mem2, 0, 1)]), 1))
    assert b.last_swap > swap
