"""``rtl.vxu.VXUSlice`` in Amaranth's simulator against a cycle-level reference built from ``golden.vxu``.

The reference (``reference`` below) follows ``golden/chip.py``'s ``_Vop``/``_LoadLut``/``_SetQ`` exactly: the
timing comes from ``spec.isa.timing``, the arithmetic from ``golden.vxu.execute``, the SETQ registers and
the table are those in force at the sampling cycle, a SETQ applies at the end of its issue cycle.
``test_matches_golden_chip`` ties that reference to ``golden.chip.ChipSim`` itself on a whole-chip program.

Cycle convention: stimulus entry ``k`` is on the inputs during cycle ``k``; ``put`` is read during cycle ``k``
(it is combinational from registers). Cycle 0 is the first cycle after the reset. Cycles with ``run`` low
do not exist for the unit: the reference skips them (no sampling, no table write, nothing put).
"""
from fractions import Fraction

import numpy as np
import pytest
from amaranth.hdl import Fragment, Shape
from amaranth.lib import data
from amaranth.sim import Simulator

from golden import vxu as gvxu
from golden.chip import ChipSim
from rtl.common import stream_write_layout, vector_layout
from rtl.vxu import VXUSlice
from spec import isa
from spec.config import PRESETS
from spec.isa import (
    LUT_ENTRIES,
    LUT_RESET,
    VXU_INPUT_OFFSET,
    VXU_PIPELINE,
    Instruction,
    Stream,
    decode,
    encode,
    lut_vectors,
    timing,
)
from spec.lanes import pack_lanes, unpack_lanes
from spec.vxu_rom import ROM_ENTRIES, ROM_INDEX_BITS, normalize
from tests.reset_harness import ResetHarness

TINY = PRESETS["tiny"]
TINY5 = TINY.replace(name="tiny5", lanes=5, streams=3)
SMALL = PRESETS["small"]
LANES1 = TINY.replace(name="lanes1", lanes=1, streams=2, mxu_rows=1, mxu_cols=1)
#: Subsets of the operations: only their hardware is generated (no binary op / no multiplier / no table).
UNARY = TINY.replace(name="unary", vxu_ops=("relu", "requant", "argmax"))
NO_MULT = TINY5.replace(name="nomult", vxu_ops=("add", "max", "lut"))
#: requantv without requant (nor mul): the multiplier's second operand is only ever the lane of b.
VONLY = TINY5.replace(name="vonly", vxu_ops=("requantv", "relu"))
#: one LOADLUT vector holds the whole table (L >= 256): no vector index to look up
WIDE_LUT = TINY.replace(name="lanes256", lanes=256, streams=2, mxu_rows=1, mxu_cols=1, vxu_ops=("lut",))
#: every op but requantv: the chip as it was before requantv.
NO_REQUANTV = TINY.replace(name="norequantv", vxu_ops=tuple(op for op in isa.VXU_OPS if op != "requantv"))
#: every op but the five added after requantv (no reduction tree but argmax's, no table, no latch).
BEFORE_ROM = TINY.replace(name="beforerom", vxu_ops=tuple(op for op in isa.VXU_OPS if isa.VXU_OPS[op].code < 8))
#: the reductions without argmax (a max tree without an index), spread, and add (a binary op).
REDUCE = TINY5.replace(name="reduce", vxu_ops=("lsum", "lmax", "spread", "add"))
#: one table each: rsqrt without recip, recip without rsqrt (with lmax and argmax sharing their tree).
RSQRT_ONLY = TINY.replace(name="rsqrtonly", vxu_ops=("rsqrt",))
RECIP_ONLY = TINY5.replace(name="reciponly", vxu_ops=("recip", "argmax", "lmax", "relu"))
REQUANT_OPS = ("requant", "requantv")
ROM_OPS = ("recip", "rsqrt")

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
EXTREMES = [INT32_MIN, INT32_MAX, INT32_MIN + 1, 0, 1, -1, 127, -128, 128, -129, 255, 256, 1 << 30, -(1 << 30)]
DRAIN = VXU_INPUT_OFFSET + VXU_PIPELINE + 2


# ---- the two sides ----------------------------------------------------------------------------------
def _see(see, k, stream):
    return see[k, isa.DIRECTIONS.index(stream.direction), stream.index]


def reference(config, issues, see, run=None):
    """Expected ``put`` per cycle (``None`` or ``(stream bits, lanes)``) for ``issues`` (cycle → word) and
    ``see`` (``T × 2 × S × L``), with golden/chip.py's semantics; cycles with ``run`` low are skipped."""
    T, L = len(see), config.lanes
    run = np.ones(T, int) if run is None else run
    params = gvxu.RESET_REQUANT
    table = np.full(LUT_ENTRIES, LUT_RESET, np.int8)
    ops, results, free = [], {}, 0
    last = np.zeros(L, np.int64)            # the latest result put (a chained VOP's operand a)
    held = {}                               # VOP issue cycle -> its item 0's operand a (spread)
    out = [None] * T
    n = -1                                  # the unit's own time: run-high cycles only
    for k in range(T):
        if not run[k]:
            assert k not in issues, f"cycle {k}: an issue while run is low"
            continue
        n += 1
        new_params = None
        if k in issues:
            ins = decode(issues[k])
            assert isinstance(ins, Instruction) and ins.op in ("VOP", "SETQ", "LOADLUT"), ins
            assert n >= free, f"cycle {k}: {ins} issued while the alu is busy (schedule bug)"
            tm = timing(ins, config)
            free = n + tm.busy
            ops.append((n, ins, tm))
            if ins.op == "SETQ":     # in force for operands sampled from the next cycle on
                new_params = gvxu.RequantParams(ins.mult, ins.shift, ins.zp)
        for t, ins, tm in ops:
            i = None if tm.first_in is None else n - t - tm.first_in
            if i is None or not 0 <= i < tm.items:
                continue
            a = _see(see, k, ins.src)
            if ins.op == "VOP" and ins.chain:   # the result put during this cycle, else the last one put
                a = np.asarray(results[n][1] if n in results else last, np.int64)
            if ins.op == "VOP":
                b = _see(see, k, ins.src2) if ins.src2 is not None else None
                if i == 0:
                    held[t] = a
                results[t + tm.first_out + i] = (ins.dst.bits(), gvxu.execute(ins.vop, a, b, params, table,
                                                                              item=i, held=held[t]))
            else:   # LOADLUT vector i
                cnt = min(L, LUT_ENTRIES - i * L)
                table[i * L:i * L + cnt] = gvxu.low_byte(a[:cnt])
        if n in results:
            s, v = results.pop(n)
            out[k] = (s, tuple(int(x) for x in v))
            last = v
        if new_params is not None:
            params = new_params
    return out


def run_rtl(config, issues, see, run=None, rst=None):
    """``put`` per cycle of ``VXUSlice(config)`` driven by ``issues``/``see`` (and ``run``, ``rst``)."""
    T, L = see.shape[0], config.lanes
    run = np.ones(T, int) if run is None else run
    rst = np.zeros(T, int) if rst is None else rst
    dut = VXUSlice(config)
    top = ResetHarness(dut)
    layout = stream_write_layout(config)
    offs = {name: (layout[name].offset, layout[name].shape) for name in ("valid", "stream", "data")}
    out = []

    def unpack(raw):
        (ov, _), (os_, ss), (od, _) = offs["valid"], offs["stream"], offs["data"]
        if not (raw >> ov) & 1:
            return None
        stream = (raw >> os_) & ((1 << ss.width) - 1)
        return stream, tuple(unpack_lanes(raw >> od, 32, L))

    async def bench(ctx):
        ctx.set(top.rst, 1)
        await ctx.tick()
        for k in range(T):
            ctx.set(top.rst, int(rst[k]))
            ctx.set(dut.run, int(run[k]))
            ctx.set(dut.issue, int(k in issues))
            ctx.set(dut.word, issues.get(k, 0))
            await ctx.delay(1e-9)
            for i in range(dut.READS):     # answer the read ports, as the interconnect does
                sel = ctx.get(dut.sel[i])
                d, s = sel >> isa.STREAM_INDEX_BITS, sel & (isa.MAX_STREAMS - 1)
                ctx.set(dut.seen[i].as_value(), pack_lanes(see[k, d, s], 32) if s < see.shape[2] else 0)
            await ctx.delay(1e-9)
            out.append(unpack(ctx.get(dut.put.as_value())))
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


def _fmt(p):
    return "nothing" if p is None else f"{Stream.from_bits(p[0])} {list(p[1])}"


def assert_puts_equal(what, issues, want, got):
    """The first cycle where RTL and reference differ, with the lane and the instructions issued."""
    assert len(want) == len(got)
    for k, (w, g) in enumerate(zip(want, got)):
        if w == g:
            continue
        detail = ""
        if w is not None and g is not None and w[0] == g[0]:
            lane = next(i for i, (x, y) in enumerate(zip(w[1], g[1])) if x != y)
            detail = f" lane {lane}: expected {w[1][lane]}, got {g[1][lane]};"
        recent = [f"{t}: {decode(issues[t])}" for t in sorted(issues) if k - 300 <= t <= k]
        raise AssertionError(f"{what}: first mismatch at cycle {k};{detail} expected {_fmt(w)}, got {_fmt(g)}\n"
                             f"issued up to then (last few):\n  " + "\n  ".join(recent[-6:]))


def check(config, issues, see, what, run=None):
    want = reference(config, issues, see, run)
    got = run_rtl(config, issues, see, run)
    assert_puts_equal(what, issues, want, got)
    return want


# ---- stimulus ---------------------------------------------------------------------------------------
def random_vectors(rng, shape):
    """int32 vectors (last axis lanes), each drawn from one of: full range, extremes, small, ties-prone
    tiny values, or a lane-by-lane mixture of those."""
    full = rng.integers(INT32_MIN, INT32_MAX + 1, size=shape, dtype=np.int64)
    ext = rng.choice(EXTREMES, size=shape)
    small = rng.integers(-300, 301, size=shape)
    tiny = rng.integers(-2, 3, size=shape)
    per_lane = rng.integers(0, 4, size=shape)
    per_vec = np.broadcast_to(rng.integers(0, 5, size=shape[:-1])[..., None], shape)
    kind = np.where(per_vec == 4, per_lane, per_vec)
    return np.select([kind == 0, kind == 1, kind == 2], [full, ext, small], tiny).astype(np.int64)


def random_setq(rng):
    r = int(rng.integers(0, 4))
    if r == 0:   # ties: a × mult / 2**(31 + shift) = a / 2**d, so odd multiples of 2**(d-1) are x.5
        d = int(rng.integers(1, 9))
        shift = int(rng.integers(0, d))
        mult = 1 << (31 + shift - d)
    elif r == 1:
        mult = int(rng.choice([1, INT32_MAX, 1 << 30, 3 << 28]))
        shift = int(rng.choice([0, 31, int(rng.integers(0, 32))]))
    else:
        mult = int(rng.integers(1, INT32_MAX + 1))
        shift = int(rng.integers(0, 32)) if r == 2 else int(rng.integers(0, 4))
    zp = int(rng.choice([-128, 127, 0, int(rng.integers(-128, 128))]))
    return Instruction("SETQ", mult=mult, shift=shift, zp=zp)


def random_stream(rng, config):
    return Stream(str(rng.choice(isa.DIRECTIONS)), int(rng.integers(0, config.streams)))


def random_vop(rng, config, op=None, count=None, chain=None):
    """A random VOP; a third of them (unless ``chain`` says) take operand a from the latest result."""
    op = op or str(rng.choice(config.vxu_ops))
    binary = isa.VXU_OPS[op].arity == 2
    chain = bool(rng.random() < 1 / 3) if chain is None else chain
    return Instruction("VOP", vop=op, src=random_stream(rng, config),
                       src2=random_stream(rng, config) if binary else None,
                       count=count or int(rng.integers(1, 5)), chain=chain, dst=random_stream(rng, config))


def schedule(config, instrs, rng=None, gaps=False, start=0):
    """Issue cycles for ``instrs`` back to back (each when the alu is free), with random gaps if asked."""
    issues, t = {}, start
    for ins in instrs:
        issues[t] = encode(ins)
        t += timing(ins, config).busy
        if gaps and rng.random() < 0.3:
            t += int(rng.integers(1, 4))
    return issues, t


def random_program(config, rng, n_instr, luts=1):
    instrs = []
    lut_at = set(rng.choice(np.arange(n_instr), size=luts, replace=False).tolist()) if luts else set()
    for i in range(n_instr):
        if i in lut_at:
            instrs.append(Instruction("LOADLUT", src=random_stream(rng, config)))
            if "lut" in config.vxu_ops:
                instrs.append(random_vop(rng, config, "lut"))
        elif rng.random() < 0.2 and set(REQUANT_OPS) & set(config.vxu_ops):
            instrs.append(random_setq(rng))
        else:
            instrs.append(random_vop(rng, config))
        if instrs[-1].op == "VOP" and instrs[-1].vop in REQUANT_OPS and rng.random() < 0.5:
            instrs.append(random_setq(rng))     # issued in the requant's last sampling cycle
    return instrs


# ---- tests ------------------------------------------------------------------------------------------
def test_signature():
    for config in (TINY, SMALL):
        dut = VXUSlice(config)
        Fragment.get(dut, None)
        members = dut.signature.members
        assert set(members) == {"run", "issue", "word", "sel", "seen", "put"}
        assert members["seen"].shape == data.ArrayLayout(vector_layout(config), VXUSlice.READS)
        assert members["put"].shape == stream_write_layout(config)
        assert Shape.cast(members["word"].shape).width == isa.WORD_BITS


@pytest.mark.parametrize("lanes", [1, 2, 5])
def test_each_op_alone_elaborates(lanes):
    """Every operation alone (and none at all) elaborates: each one's hardware stands without the others'
    (the trees without argmax's index, rsqrt's table without recip's, spread's latch for one lane)."""
    base = TINY.replace(name=f"lanes{lanes}", lanes=lanes, streams=2, mxu_rows=1, mxu_cols=1)
    for ops in [()] + [(op,) for op in isa.VXU_OPS]:
        Fragment.get(VXUSlice(base.replace(vxu_ops=ops)), None)


@pytest.mark.parametrize("config, seed, n_instr", [
    (TINY, 0, 40), (TINY, 1, 40), (TINY, 2, 40), (TINY5, 3, 40), (TINY5, 4, 40), (SMALL, 5, 30),
    (LANES1, 6, 30), (UNARY, 7, 30), (NO_MULT, 8, 30), (VONLY, 9, 30), (NO_REQUANTV, 10, 40),
    (BEFORE_ROM, 18, 30), (REDUCE, 19, 30), (RSQRT_ONLY, 20, 20), (RECIP_ONLY, 21, 30),
], ids=lambda v: v.name if hasattr(v, "name") else str(v))
def test_random_schedule(config, seed, n_instr):
    """Random VOPs of every configured op back to back (with gaps), SETQs (also in a requant's or
    requantv's last sampling cycle, so its results in flight use the old parameters), LOADLUT + lut.
    requantv's b lanes are random int32 vectors: out-of-range multipliers (0, negative) included; a
    spread's items after the first see random vectors on src (which they must ignore)."""
    rng = np.random.default_rng(seed)
    issues, end = schedule(config, random_program(config, rng, n_instr, luts=1 if config.lanes > 1 else 0), rng,
                           gaps=True)
    T = end + DRAIN
    see = random_vectors(rng, (T, 2, config.streams, config.lanes))
    want = check(config, issues, see, f"{config.name} seed={seed}")
    assert sum(p is not None for p in want) >= n_instr // 2


def _place(see, k, stream, vec):
    see[k, isa.DIRECTIONS.index(stream.direction), stream.index] = vec


def _feed(config, issues, see, t, ins, vectors, vectors2=None):
    """Put ``vectors`` on ``ins.src`` (and ``vectors2`` on ``src2``) in the sampling cycles of ``ins``
    issued at ``t``."""
    first = t + timing(ins, config).first_in
    for i, v in enumerate(vectors):
        _place(see, first + i, ins.src, v)
        if vectors2 is not None:
            _place(see, first + i, ins.src2, vectors2[i])


def _chunks(values, L):
    values = list(values)
    values += [0] * (-len(values) % L)
    return np.array(values, np.int64).reshape(-1, L)


@pytest.mark.parametrize("config", [TINY, TINY5], ids=lambda c: c.name)
def test_requant_extremes(config):
    """Ties (both signs), saturation at both ends, mult = 2**31 - 1, shift 31, zp -128 / 127, int32 ends;
    each SETQ issued in the previous requant's last sampling cycle."""
    L = config.lanes
    rng = np.random.default_rng(11)
    cases = []
    for mult, shift, zp in [(1 << 30, 0, 0), (1 << 30, 0, 127), (1 << 30, 0, -128), (1 << 28, 2, 5),
                            (INT32_MAX, 0, 0), (INT32_MAX, 31, 0), (INT32_MAX, 31, 127), (1, 31, -128),
                            (1, 0, 0), (3 << 27, 1, -7), (INT32_MAX, 0, 127), (INT32_MAX, 0, -128)]:
        d = 31 + shift
        # values a with a × mult / 2**d exactly x.5 (when mult allows), around zero and around saturation
        ties = [a for a in range(-700, 701) if (a * mult) % (1 << d) == 1 << (d - 1)][:6]
        ties += [-a for a in ties]
        near = [((2 * q + 1) << (d - 1)) // mult for q in (127, 128, -129, -130, 250)]
        values = ties + near + EXTREMES + [x for x in range(-3, 4)]
        values = [v for v in values if INT32_MIN <= v <= INT32_MAX]
        cases.append((Instruction("SETQ", mult=mult, shift=shift, zp=zp), _chunks(values, L)))
    # the test data really holds exact ties of both signs and both saturations
    got_ties = {np.sign(a) for ins, vs in cases for a in vs.reshape(-1)
                if Fraction(int(a) * ins.mult, 1 << (31 + ins.shift)).denominator == 2}
    assert got_ties == {-1, 1}
    outs = {int(x) for ins, vs in cases for x in gvxu.requant(vs, ins.mult, ins.shift, ins.zp).reshape(-1)}
    assert {-128, 127} <= outs

    instrs, feeds = [], []
    for setq, vectors in cases:
        vop = Instruction("VOP", vop="requant", src=random_stream(rng, config), count=len(vectors),
                          dst=random_stream(rng, config))
        instrs += [setq, vop]
        feeds.append((vop, vectors))
    issues, end = schedule(config, instrs)
    see = random_vectors(rng, (end + DRAIN, 2, config.streams, L))
    vop_cycles = [t for t in sorted(issues) if decode(issues[t]).op == "VOP"]
    for t, (vop, vectors) in zip(vop_cycles, feeds):
        _feed(config, issues, see, t, vop, vectors)
    check(config, issues, see, f"{config.name} requant extremes")


def _requantv_cases(L):
    """``(SETQ, a vectors, b vectors)`` for requantv: exact ties of both signs with a different multiplier
    in every lane, saturation at both ends, shift 31, zp -128 / 127, the int32 ends, and multiplier lanes
    out of 1 … 2**31 - 1 (read as ``b & 0x7FFFFFFF``); the SETQ mult is a decoy."""
    ms = [1 << 30, 1 << 29, 3 << 27, INT32_MAX, 1, -(1 << 30), 0, INT32_MIN, -1, 5 << 26]
    cases = []
    for shift, zp, decoy in [(0, 0, 1), (0, 127, INT32_MAX), (0, -128, 1 << 30), (2, 5, 12345), (31, 0, 7),
                             (31, 127, 1), (1, -7, INT32_MAX)]:
        d = 31 + shift
        a_rows, b_rows = [], []
        for lane_mults in (ms[i:] + ms[:i] for i in range(len(ms))):
            lane_mults = (lane_mults * L)[:L]
            for q in (0, 1, -1, 2, -2, 127, -129, 200):            # a × m / 2**d = q + 1/2 (when m allows)
                row = []
                for mv in lane_mults:
                    m_eff = mv & 0x7FFFFFFF
                    if m_eff == 0:
                        row.append(int(q) << 20)
                        continue
                    num = (2 * q + 1) << (d - 1)
                    row.append(num // m_eff)                    # an exact tie when m divides num
                row = [min(max(v, INT32_MIN), INT32_MAX) for v in row]
                a_rows.append(row)
                b_rows.append(lane_mults)
        ext = _chunks(EXTREMES * 2, L)
        a_rows += ext.tolist()
        b_rows += _chunks((ms * 3)[:ext.size], L).tolist()
        cases.append((Instruction("SETQ", mult=decoy, shift=shift, zp=zp), np.array(a_rows, np.int64),
                      np.array(b_rows, np.int64)))
    return cases


@pytest.mark.parametrize("config", [TINY, TINY5, VONLY], ids=lambda c: c.name)
def test_requantv_extremes(config):
    """requantv with per-lane multipliers: ties, saturation, out-of-range b lanes, each SETQ issued in the
    previous VOP's last sampling cycle (the results in flight keep the old shift and zp); a requant of the
    same a right after each requantv (when configured) uses the SETQ mult instead."""
    L = config.lanes
    rng = np.random.default_rng(17)
    cases = _requantv_cases(L)
    got_ties = set()
    for ins, va, vb in cases:
        m = vb & 0x7FFFFFFF
        for x, y in zip(va.reshape(-1), m.reshape(-1)):
            if Fraction(int(x) * int(y), 1 << (31 + ins.shift)).denominator == 2:
                got_ties.add(int(np.sign(x)))
    assert got_ties == {-1, 1}
    outs = {int(x) for ins, va, vb in cases for x in gvxu.requantv(va, vb, ins.shift, ins.zp).reshape(-1)}
    assert {-128, 127} <= outs
    assert any(((vb & 0x7FFFFFFF) != vb).any() for _, _, vb in cases)     # out-of-range lanes present

    instrs, feeds = [], []
    for setq, va, vb in cases:
        vop = Instruction("VOP", vop="requantv", src=random_stream(rng, config), src2=random_stream(rng, config),
                          count=len(va), dst=random_stream(rng, config))
        if vop.src == vop.src2:
            vop = Instruction("VOP", vop="requantv", src="E0", src2="W1", count=len(va), dst=vop.dst)
        instrs += [setq, vop]
        feeds.append((vop, va, vb))
        if "requant" in config.vxu_ops:
            rq = Instruction("VOP", vop="requant", src=vop.src, count=len(va), dst=vop.dst)
            instrs.append(rq)
            feeds.append((rq, va, None))
    issues, end = schedule(config, instrs)
    see = random_vectors(rng, (end + DRAIN, 2, config.streams, L))
    vop_cycles = [t for t in sorted(issues) if decode(issues[t]).op == "VOP"]
    for t, (vop, va, vb) in zip(vop_cycles, feeds):
        _feed(config, issues, see, t, vop, va, vb)
    want = check(config, issues, see, f"{config.name} requantv extremes")
    # the reference really computed requantv with the per-lane multipliers (not the SETQ mult)
    t0 = vop_cycles[0] + VXU_INPUT_OFFSET + VXU_PIPELINE
    _, va, vb = feeds[0]
    assert [list(want[t0 + i][1]) for i in range(len(va))] == gvxu.requantv(va, vb, 0, 0).tolist()


@pytest.mark.parametrize("config", [TINY, TINY5, WIDE_LUT], ids=lambda c: c.name)
def test_lut_every_index(config):
    """LOADLUT a random table (lanes with high bits set), look up every index 0 … 255 (with arbitrary upper
    bits, negative values included); a second LOADLUT issued in the lut's last sampling cycle must not
    change the results still in the pipeline; then look up everything in the new table."""
    L = config.lanes
    rng = np.random.default_rng(12)
    n = lut_vectors(L)
    tables = [rng.integers(INT32_MIN, INT32_MAX + 1, size=(n, L)) for _ in range(2)]
    idx = np.arange(LUT_ENTRIES)
    lookups = [_chunks(rng.permutation(idx) + 256 * rng.integers(-(1 << 23), 1 << 23, size=LUT_ENTRIES), L)
               for _ in range(2)]
    load = [Instruction("LOADLUT", src=random_stream(rng, config)) for _ in range(2)]
    vops = [Instruction("VOP", vop="lut", src=random_stream(rng, config), count=len(lookups[i]),
                        dst=random_stream(rng, config)) for i in range(2)]
    instrs = [load[0], vops[0], load[1], vops[1]]
    issues, end = schedule(config, instrs)
    see = random_vectors(rng, (end + DRAIN, 2, config.streams, L))
    ts = sorted(issues)
    for t, ins, vecs in zip(ts, instrs, [tables[0], lookups[0], tables[1], lookups[1]]):
        _feed(config, issues, see, t, ins, vecs)
    want = check(config, issues, see, f"{config.name} lut")
    # every index was looked up in each table
    first = [t + VXU_INPUT_OFFSET + VXU_PIPELINE for t in (ts[1], ts[3])]
    for j, f in enumerate(first):
        got = np.array([want[f + i][1] for i in range(len(lookups[j]))]).reshape(-1)[:LUT_ENTRIES]
        table = gvxu.lut_table(tables[j])
        assert sorted(zip(lookups[j].reshape(-1)[:LUT_ENTRIES] & 0xFF, got)) == [(e, table[e]) for e in idx]


def test_argmax_and_binary_extremes():
    """argmax ties (all equal, repeated maxima, int32 ends) and the binary ops at the int32 ends."""
    config = TINY5
    L = config.lanes
    rng = np.random.default_rng(13)
    am = np.array([[0] * L, [INT32_MIN] * L, [INT32_MAX] * L, [1, 3, 3, 1, 3], [3, 1, 1, 3, 3], [-1, -1, -2, -1, -5],
                   [INT32_MIN, INT32_MIN + 1, INT32_MIN, INT32_MIN + 1, 0], [-5, -4, -3, -2, -1],
                   [INT32_MAX, INT32_MAX, INT32_MIN, 0, INT32_MAX], [0, 0, 0, 0, 1]])
    pairs = np.array(EXTREMES[:10])
    a = _chunks(np.repeat(pairs, len(pairs)), L)
    b = _chunks(np.tile(pairs, len(pairs)), L)
    instrs = [Instruction("VOP", vop="argmax", src="E0", count=len(am), dst="W2")]
    feeds = [(am, None)]
    for op in ("add", "mul", "max", "relu", "requantv"):     # requantv with the reset shift 0, zp 0
        instrs.append(random_vop(rng, config, op, count=len(a), chain=False))
        feeds.append((a, b if isa.VXU_OPS[op].arity == 2 else None))
    issues, end = schedule(config, instrs)
    see = random_vectors(rng, (end + DRAIN, 2, config.streams, L))
    for t, ins, (va, vb) in zip(sorted(issues), instrs, feeds):
        _feed(config, issues, see, t, ins, va, vb)
    want = check(config, issues, see, "argmax/binary extremes")
    first = sorted(issues)[0] + VXU_INPUT_OFFSET + VXU_PIPELINE
    assert [want[first + i][1][0] for i in range(len(am))] == [0, 0, 0, 1, 0, 0, 4, 4, 0, 4]


def test_run_low_freezes():
    """Cycles with run low do nothing: no put, no sampling, no table or SETQ change (LOADLUT and requant
    in progress across them, garbage on the streams then); equal to the reference with those cycles
    removed."""
    config = TINY
    rng = np.random.default_rng(14)
    instrs = random_program(config, rng, 25, luts=1)
    issues_n, end_n = schedule(config, instrs, rng, gaps=True)
    # stretch the unit's timeline with run-low cycles
    run = []
    while sum(run) < end_n + DRAIN:
        run.append(0 if rng.random() < 0.3 else 1)
    run = np.array(run)
    high = np.flatnonzero(run)
    issues = {int(high[n]): w for n, w in issues_n.items()}
    see = random_vectors(rng, (len(run), 2, config.streams, config.lanes))
    want = check(config, issues, see, "run low", run=run)
    assert all(want[k] is None for k in np.flatnonzero(run == 0))
    assert sum(p is not None for p in want) > 10
    assert sum(run == 0) > 20


def test_reset_clears_state():
    """A reset (with run low, as the chip's START does) mid-run clears SETQ, table, the pipeline and the
    latest result (a chained relu right after it puts zeros)."""
    config = TINY
    L = config.lanes
    rng = np.random.default_rng(15)
    load = Instruction("LOADLUT", src="W1")
    before = [Instruction("SETQ", mult=INT32_MAX, shift=0, zp=100), load,
              Instruction("VOP", vop="requant", src="E0", count=4, dst="E1")]
    after = [Instruction("VOP", vop="relu", src="E0", count=1, chain=True, dst="E2"),   # the latest result: 0
             Instruction("VOP", vop="requant", src="E0", count=3, dst="E2"),
             Instruction("VOP", vop="lut", src="E0", count=3, dst="W3")]
    issues1, end1 = schedule(config, before)
    R = end1 + 2                     # the reset cycle: three requant results still in flight
    issues2, end2 = schedule(config, after, start=R + 1)
    T = end2 + DRAIN
    see = random_vectors(rng, (T, 2, config.streams, L))
    _feed(config, issues1, see, sorted(issues1)[1], load, np.ones((lut_vectors(L), L), np.int64) * 77)
    run, rst = np.ones(T, int), np.zeros(T, int)
    run[R], rst[R] = 0, 1
    got = run_rtl(config, {**issues1, **issues2}, see, run, rst)
    want1 = reference(config, issues1, see[:R])
    want2 = reference(config, {t - R - 1: w for t, w in issues2.items()}, see[R + 1:])
    want = want1 + [None] + want2
    assert_puts_equal("reset", {**issues1, **issues2}, want, got)
    assert sum(p is not None for p in want1) == 1 and [p[1] for p in want2 if p] == [(0,) * L] * 7
    assert any(v > 0 for v in want1[-1][1]), "the result before the reset is one a chained relu would show"


def test_matches_golden_chip():
    """The reference above equals golden.chip.ChipSim: a whole tiny chip whose MEM slices stream random
    vectors past the VXU while it runs a random program; the VXU's writes in ChipSim's log are what the
    RTL slice puts when driven with what the VXU slice sees in that run."""
    config = TINY
    P, S, L = len(config.slices), config.streams, config.lanes
    p_vxu = config.slices.index("vxu")
    rng = np.random.default_rng(16)
    instrs = random_program(config, rng, 20, luts=1)
    issues, end = schedule(config, instrs, rng, gaps=True)
    T = end + DRAIN
    programs = [[encode(Instruction("HALT"))] if kind == "mxu" else [] for kind in config.slices]
    sim = ChipSim(config)
    # each MEM slice reads random words onto a random stream in every cycle (in count-8 READs)
    for p, kind in enumerate(config.slices):
        if kind != "mem":
            continue
        direction = "E" if p < p_vxu else "W"
        for start in range(0, T, 8):
            bank = int(rng.integers(0, config.mem_banks))
            sim.write_mem(p, bank, start % 56, random_vectors(rng, (8, L)))
            programs[p].append(encode(Instruction("READ", bank=bank, addr=start % 56, count=8,
                                                  dst=Stream(direction, int(rng.integers(0, S))))))
            programs[p].append(encode(Instruction("NOP", count=7)))
        programs[p].append(encode(Instruction("HALT")))
    prog, t = [], 0
    for k in sorted(issues):
        if k > t:
            prog.append(encode(Instruction("NOP", count=k - t)))
        prog.append(issues[k])
        t = k + 1
    prog.append(encode(Instruction("HALT")))
    programs[p_vxu] = prog
    sim.load(programs)
    res = sim.run(record=True)
    assert res.ok, res.error
    writes = {(c, p, s): v for c, p, s, v in res.stream_writes}
    see = np.zeros((T, 2, S, L), np.int64)
    for k in range(T):
        for d, direction in enumerate(isa.DIRECTIONS):
            step = -1 if direction == "E" else 1
            for s in range(S):
                q, c = p_vxu + step, k - 1
                while 0 <= q < P and c >= 0 and (c, q, f"{direction}{s}") not in writes:
                    q, c = q + step, c - 1
                if 0 <= q < P and c >= 0:
                    see[k, d, s] = writes[(c, q, f"{direction}{s}")]
    golden_puts = [None] * T
    for (c, p, s), v in writes.items():
        if p == p_vxu and c < T:
            golden_puts[c] = (Stream.parse(s).bits(), tuple(v))
    assert sum(p is not None for p in golden_puts) > 10
    assert_puts_equal("reference vs ChipSim", issues, golden_puts, reference(config, issues, see))
    assert_puts_equal("RTL vs ChipSim", issues, golden_puts, run_rtl(config, issues, see))


def _rom_values():
    """Positive and non-positive lanes for recip/rsqrt: the int32 ends, 0, ±1, every power of two and its
    neighbours, every table index f at exponents of both parities (7, 8, 29, 30, and a low one where f
    runs past the lane's bits), and random values."""
    rng = np.random.default_rng(22)
    values = EXTREMES + [-2, 2, 3, -(1 << 31) + 2]
    for e in range(31):
        values += [1 << e, (1 << e) - 1, (1 << e) + 1, -(1 << e)]
    for e in (7, 8, 29, 30):
        values += [((ROM_ENTRIES + f) << e) >> ROM_INDEX_BITS for f in range(ROM_ENTRIES)]
    values += [((ROM_ENTRIES + f) << 3) >> ROM_INDEX_BITS for f in range(0, ROM_ENTRIES, 16)]  # e = 3
    values += rng.integers(1, INT32_MAX + 1, size=40).tolist()
    return [v for v in values if INT32_MIN <= v <= INT32_MAX]


@pytest.mark.parametrize("config", [TINY, TINY5], ids=lambda c: c.name)
def test_recip_rsqrt_extremes(config):
    """recip and rsqrt on every table index (both parities of e), every power of two and its neighbours,
    the int32 ends, 0, negatives; the two VOPs back to back (rsqrt issued in recip's last sampling cycle),
    then a requant (sharing stage 3's register) right after."""
    L = config.lanes
    rng = np.random.default_rng(23)
    values = _rom_values()
    # the data really reaches every entry of each table
    normal = [normalize(v) for v in values if v > 0]
    assert {f for _, f in normal} == set(range(ROM_ENTRIES))
    assert {(e & 1, f) for e, f in normal} == {(p, f) for p in (0, 1) for f in range(ROM_ENTRIES)}
    assert {e for e, _ in normal} == set(range(31))
    vectors = _chunks(rng.permutation(np.array(values, np.int64)), L)
    instrs = [Instruction("VOP", vop=op, src=random_stream(rng, config), count=len(vectors),
                          dst=random_stream(rng, config)) for op in ROM_OPS]
    instrs.append(Instruction("VOP", vop="requant", src=random_stream(rng, config), count=3,
                              dst=random_stream(rng, config)))
    issues, end = schedule(config, instrs)
    see = random_vectors(rng, (end + DRAIN, 2, config.streams, L))
    ts = sorted(issues)
    for t, ins in zip(ts[:2], instrs):
        _feed(config, issues, see, t, ins, vectors)
    want = check(config, issues, see, f"{config.name} recip/rsqrt")
    for t, fn in zip(ts, (gvxu.recip, gvxu.rsqrt)):   # the reference computed the tables' rule
        first = t + VXU_INPUT_OFFSET + VXU_PIPELINE
        assert [list(want[first + i][1]) for i in range(len(vectors))] == fn(vectors).tolist()
    got = {int(x) for i in range(len(vectors)) for x in want[ts[0] + VXU_INPUT_OFFSET + VXU_PIPELINE + i][1]}
    assert {INT32_MAX, 1} <= got                # a <= 0, and the largest a (RECIP_ROM[f] >> 30 == 1)


@pytest.mark.parametrize("config", [TINY, TINY5, LANES1], ids=lambda c: c.name)
def test_lsum_lmax_extremes(config):
    """lsum wrapping at both int32 ends, lmax on ties (all equal, repeated maxima), the int32 ends, then an
    argmax of the same vectors (sharing the comparator tree) right after."""
    L = config.lanes
    rng = np.random.default_rng(24)
    rows = [[INT32_MAX] * L, [INT32_MIN] * L, [0] * L, [-1] * L, [1] * L,
            [INT32_MAX] + [1] * (L - 1), [INT32_MIN] + [-1] * (L - 1), [INT32_MIN, INT32_MAX] * L,
            [3, 1] * L, [1, 3, 3] * L, [-5, -2, -2, -7] * L, [INT32_MIN + 1, INT32_MIN] * L,
            list(range(L)), list(range(L, 0, -1)), [(1 << 30)] * L, [-(1 << 30)] * L]
    rows = [(r * L)[:L] for r in rows]
    vectors = np.concatenate([np.array(rows, np.int64), random_vectors(rng, (8, L))])
    instrs = [Instruction("VOP", vop=op, src=random_stream(rng, config), count=len(vectors),
                          dst=random_stream(rng, config)) for op in ("lsum", "lmax", "argmax")]
    issues, end = schedule(config, instrs)
    see = random_vectors(rng, (end + DRAIN, 2, config.streams, L))
    ts = sorted(issues)
    for t, ins in zip(ts, instrs):
        _feed(config, issues, see, t, ins, vectors)
    want = check(config, issues, see, f"{config.name} lsum/lmax")
    sums = [(int(sum(int(x) for x in r)) + (1 << 31)) % (1 << 32) - (1 << 31) for r in vectors]
    for t, expect in zip(ts[:2], (sums, [int(max(r)) for r in vectors])):
        first = t + VXU_INPUT_OFFSET + VXU_PIPELINE
        assert [want[first + i][1] for i in range(len(vectors))] == [(x,) * L for x in expect]
    if L > 1:   # the sums really wrapped
        assert sums[0] == L * INT32_MAX - (1 << 32) * ((L * INT32_MAX + (1 << 31)) >> 32)


@pytest.mark.parametrize("config", [TINY, TINY5, LANES1, REDUCE], ids=lambda c: c.name)
def test_spread_counts(config):
    """spread with count < L, = L and > L (every item on every lane is lane i mod L of item 0's operand),
    each issued in the previous spread's last sampling cycle (its latch takes the new item 0, while the
    old one's last items are still in the pipeline), random vectors on src after item 0 (to be ignored),
    and spreads right after and before another operation."""
    L = config.lanes
    rng = np.random.default_rng(25)
    other = "lsum" if "lsum" in config.vxu_ops else "lmax"
    counts = [1, max(1, L - 1), L, L + 1, 2 * L + 3, 1, L]
    instrs = [Instruction("VOP", vop="spread", src=random_stream(rng, config), count=n,
                          dst=random_stream(rng, config)) for n in counts]
    instrs.insert(5, Instruction("VOP", vop=other, src=random_stream(rng, config), count=2,
                                 dst=random_stream(rng, config)))
    instrs.append(Instruction("VOP", vop=other, src=random_stream(rng, config), count=2,
                              dst=random_stream(rng, config)))
    issues, end = schedule(config, instrs)
    see = random_vectors(rng, (end + DRAIN, 2, config.streams, L))
    want = check(config, issues, see, f"{config.name} spread")
    # the reference: item i of each spread is lane i mod L of what the spread sampled first, on every lane
    for t, ins in zip(sorted(issues), instrs):
        if ins.vop != "spread":
            continue
        first_in = t + VXU_INPUT_OFFSET
        v0 = _see(see, first_in, ins.src)
        for i in range(ins.count):
            assert want[first_in + VXU_PIPELINE + i] == (ins.dst.bits(), (int(v0[i % L]),) * L)
