"""Chained VXU passes (``compiler.phases._chained_pass``): on an eager builder a pass whose operand is exactly the
previous pass's output is a VOP with ``chain`` sampled as the previous results come out, and the program still
computes what the unchained one does (run on ``golden.chip.ChipSim``: MEM after the run, cycles = prediction).
Where a chain cannot be (another VOP between, an operand that is only part of the output, more items than the
pipeline holds, a non-eager builder) the pass is placed as before.
"""
import numpy as np
import pytest

from compiler.phases import _setq_early, _spread_pass, _vxu_pass
from compiler.schedule import ProgramBuilder
from golden import vxu as gvxu
from spec.config import PRESETS
from spec.isa import VXU_PIPELINE
from tests.builder_runs import run_on_golden

TINY = PRESETS["tiny"]
SEED = 31
MEM0, MEM1, MEM2 = TINY.positions("mem")
VXU = TINY.positions("vxu")[0]


def _words(p, addr, n, bank=0):
    return [(p, bank, addr + i) for i in range(n)]


def _chained(prog):
    return [ins for _, _, ins in prog.instructions("VOP") if ins.chain]


def _build(eager, passes):
    b = ProgramBuilder(TINY)
    b.eager = eager
    for kw in passes:
        _vxu_pass(b, None, **kw)
    return b


def _init(rng, locs):
    return {loc: rng.integers(-1000, 1000, TINY.lanes) for loc in locs}


@pytest.mark.parametrize("n", [1, 2, VXU_PIPELINE])
def test_a_chain_computes_what_the_unchained_passes_do(n):
    """relu → mul by b → add of b → requant (with its SETQ): three chained VOPs (two with four items: the
    SETQ then has no cycle between the add and the requant), the same MEM as without."""
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED + n)
    x, k, y, z, q = (_words(MEM0, 0, n), _words(MEM1, 0, n), _words(MEM2, 0, n), _words(MEM2, 8, n),
                     _words(MEM0, 8, n))
    init = _init(rng, x + k)
    passes = [dict(op="relu", a=x, out=y), dict(op="mul", a=y, out=z, b_locs=k),
              dict(op="add", a=x, out=q, b_locs=z),     # the chained operand as b: add commutes
              dict(op="requant", a=q, out=q, setq=gvxu.RequantParams(1 << 30, 2, 3))]
    (eager, pe), (lazy, pl) = (run_on_golden(_build(e, passes), init) for e in (True, False))
    assert len(_chained(pe)) == (3 if n < VXU_PIPELINE else 2) and not _chained(pl)
    assert pe.predicted_cycles < pl.predicted_cycles
    for loc in y + z + q:
        np.testing.assert_array_equal(eager.read_mem(*loc)[0], lazy.read_mem(*loc)[0], err_msg=f"word {loc}")
    xs = np.array([init[loc] for loc in x], np.int64)
    want = gvxu.requant(np.maximum(xs, 0) * np.array([init[loc] for loc in k]) + xs, 1 << 30, 2, 3)
    np.testing.assert_array_equal(np.array([eager.read_mem(*loc)[0] for loc in q]), want)


def test_no_chain_where_it_cannot_be():
    """Part of the output, a VOP of another phase in between, more items than the pipeline: no chain."""
    rng = np.random.default_rng(SEED)
    n = VXU_PIPELINE + 1
    x, y = _words(MEM0, 0, n), _words(MEM2, 0, n)
    part = [dict(op="relu", a=_words(MEM0, 0, 2), out=_words(MEM2, 0, 2)),
            dict(op="relu", a=_words(MEM2, 0, 1), out=_words(MEM2, 4, 1))]
    long = [dict(op="relu", a=x, out=y), dict(op="relu", a=y, out=_words(MEM0, 8, n))]
    for passes in (part, long):
        _, prog = run_on_golden(_build(True, passes), _init(rng, x))
        assert not _chained(prog), passes
    for spread in (False, True):
        b = _build(True, [dict(op="relu", a=x[:1], out=y[:1])])
        if spread:
            _spread_pass(b, None, y[0], _words(MEM0, 16, 1))
        _vxu_pass(b, None, "relu", y[:1], _words(MEM0, 8, 1))
        _, prog = run_on_golden(b, _init(rng, x))
        assert len(_chained(prog)) == (0 if spread else 1)


def test_setq_early_lets_a_requant_chain():
    """A requant whose SETQ cannot fit between it and the pass it follows (four items) chains when the SETQ
    goes ahead (``_setq_early``); the parameters of a requant before that SETQ are untouched."""
    rng = np.random.default_rng(SEED)
    n = VXU_PIPELINE
    x, y, r0 = _words(MEM0, 0, n), _words(MEM2, 0, n), _words(MEM1, 8, n)
    init = _init(rng, x)
    first, second = gvxu.RequantParams(1 << 29, 0, -5), gvxu.RequantParams(1 << 30, 1, 7)

    def build(early):
        b = ProgramBuilder(TINY)
        b.eager = True
        _vxu_pass(b, None, "requant", x, r0, setq=first)
        if early:
            _setq_early(b, second)
        _vxu_pass(b, None, "mul", x, y, same=True)
        _vxu_pass(b, None, "requant", y, y, setq=None if early else second)
        return b

    late, early = (run_on_golden(build(e), init) for e in (False, True))
    assert [i.vop for i in _chained(early[1])] == ["requant"] and not _chained(late[1])
    xs = np.array([init[loc] for loc in x], np.int64)
    for sim, _ in (late, early):
        np.testing.assert_array_equal(np.array([sim.read_mem(*loc)[0] for loc in r0]),
                                      gvxu.requant(xs, first.mult, first.shift, first.zp))
        np.testing.assert_array_equal(np.array([sim.read_mem(*loc)[0] for loc in y]),
                                      gvxu.requant(xs * xs, second.mult, second.shift, second.zp))
