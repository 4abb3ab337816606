"""Property: the VXU slice (``rtl.vxu.VXUSlice``, preset ``tiny``: 4 lanes, 4 streams, every operation) in
Verilator through pyverilator equals the cycle-level reference of ``tests/test_vxu_rtl.py`` (``reference``:
``golden.vxu.execute`` with ``golden/chip.py``'s timing) on programs hypothesis makes.

A program is up to ``MAX_INSTRS`` instructions issued back to back whenever the alu is free (or after a
short gap), as ``tests.test_vxu_rtl.schedule`` does: VOPs of every operation (add, mul, max, relu, requant,
requantv, lut, argmax, lsum, lmax, recip, rsqrt, spread) with 1 … 4 items (a spread's items after the first
see vectors on src that it must ignore; ``reference`` hands item 0's to ``golden.vxu.execute`` as ``held``),
SETQs (often issued in the previous VOP's last sampling cycle, so
results in flight must keep the old parameters; power-of-two multipliers make exact rounding ties), and
LOADLUTs (a whole table, issued in a lut's last sampling cycle too). The operand vectors a VOP samples are
drawn by hypothesis (int32 lanes with INT32_MIN/MAX, -128/127 and ties weighted in) and put on its source
streams in its sampling cycles; everything else on the streams is fixed garbage. ``put`` must be equal on
every cycle; a mismatch names the first cycle and lane (``assert_puts_equal``) and hypothesis shrinks the
program.
"""
import functools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from spec import isa
from spec.config import PRESETS
from spec.isa import FIELDS, LUT_ENTRIES, VXU_OPS, Instruction, Stream, lut_vectors, timing
from spec.lanes import pack_lanes, unpack_lanes
from tests.props import PROPS, int32_vectors, unit_sim
from tests.test_vxu_rtl import DRAIN, _feed, assert_puts_equal, reference

CONFIG = PRESETS["tiny"]
MAX_INSTRS = 6
MAX_COUNT = 4


def vxu_sim():
    from rtl.vxu import VXUSlice

    return unit_sim(("vxu", CONFIG), lambda: VXUSlice(CONFIG), f"vxu_{CONFIG.name}")


# ---- the program ---------------------------------------------------------------------------------------
streams = st.builds(Stream, st.sampled_from(isa.DIRECTIONS), st.integers(0, CONFIG.streams - 1))
mults = st.one_of(st.sampled_from([1 << k for k in range(31)]),        # exact ties for small a
                  st.sampled_from((1, FIELDS["mult"].hi, 3 << 28, 1 << 30)),
                  st.integers(FIELDS["mult"].lo, FIELDS["mult"].hi))
shifts = st.one_of(st.integers(0, 3), st.sampled_from((0, 31)), st.integers(FIELDS["shift"].lo, FIELDS["shift"].hi))
zps = st.one_of(st.sampled_from((0, -128, 127)), st.integers(FIELDS["zp"].lo, FIELDS["zp"].hi))


kinds = st.sampled_from(("VOP",) * 6 + ("SETQ",) * 2 + ("LOADLUT",))
ops = st.sampled_from(CONFIG.vxu_ops)
counts = st.integers(1, MAX_COUNT)
lut_bytes = st.binary(min_size=LUT_ENTRIES, max_size=LUT_ENTRIES)
lut_high = st.integers(0, (1 << 24) - 1)
#: the operand vectors of a VOP of ``count`` items: ``count`` (a) or ``2 × count`` (a and b) int32 vectors,
#: one ``st.binary`` (strategies are built once: building them per draw cost more than the example)
operands = {(n, k): int32_vectors(CONFIG.lanes * n * k) for n in range(1, MAX_COUNT + 1) for k in (1, 2)}


@st.composite
def instruction(draw):
    """``(instruction, feed)``: ``feed`` the vectors its sampling cycles see on ``src`` (and ``src2``)."""
    L = CONFIG.lanes
    kind = draw(kinds)
    if kind == "SETQ":
        return Instruction("SETQ", mult=draw(mults), shift=draw(shifts), zp=draw(zps)), None
    if kind == "LOADLUT":
        # the table's bytes, in lanes whose upper bits are garbage (only the low byte counts)
        table, high = draw(lut_bytes), draw(lut_high)
        n = lut_vectors(L)
        lanes = [((high * (i + 1) & 0xFFFFFF) << 8 | (table[i] if i < LUT_ENTRIES else 0)) for i in range(n * L)]
        vecs = np.array(unpack_lanes(pack_lanes(lanes, 32), 32, n * L), np.int64).reshape(n, L)
        return Instruction("LOADLUT", src=draw(streams)), (vecs, None)
    op = draw(ops)
    binary = VXU_OPS[op].arity == 2
    count = draw(counts)
    src = draw(streams)
    src2 = draw(streams) if binary else None
    v = np.array(draw(operands[count, 1 + binary]), np.int64).reshape(1 + binary, count, L)
    ins = Instruction("VOP", vop=op, src=src, src2=src2, count=count, dst=draw(streams))
    return ins, (v[0], v[1] if binary else None)


programs = st.lists(st.tuples(instruction(), st.sampled_from((0, 0, 0, 0, 1, 2, 3))), min_size=1,
                    max_size=MAX_INSTRS)


@functools.cache
def _garbage_of(T):
    rng = np.random.default_rng(1234)
    return rng.integers(-(1 << 31), 1 << 31, size=(T, 2, CONFIG.streams, CONFIG.lanes), dtype=np.int64)


def _garbage(T):
    """What the streams carry where no operand was placed: fixed, nonzero, all over the int32 range."""
    return _garbage_of(T).copy()


def build_case(program):
    """``(issues, see)``: issue cycle -> word, and ``T × 2 × S × L`` stream contents."""
    instrs = [ins for (ins, _), _ in program]
    issues, t = {}, 0
    placed = []
    for ((ins, feed), gap) in program:
        t += gap
        issues[t] = isa.encode(ins)
        placed.append((t, ins, feed))
        t += timing(ins, CONFIG).busy
    T = t + DRAIN
    see = _garbage(T)
    for t0, ins, feed in placed:
        if feed is not None:
            _feed(CONFIG, issues, see, t0, ins, feed[0], feed[1])
    assert len(issues) == len(instrs)
    return issues, see


# ---- the RTL side ----------------------------------------------------------------------------------------
def run_rtl(sim, issues, see):
    """``put`` per cycle (``None`` or ``(stream bits, lanes)``), as ``tests.test_vxu_rtl.run_rtl`` returns."""
    from rtl.common import stream_write_layout

    L, S = CONFIG.lanes, CONFIG.streams
    layout = stream_write_layout(CONFIG)
    o_valid, o_stream, o_data = (layout[n].offset for n in ("valid", "stream", "data"))
    s_mask = (1 << layout["stream"].shape.width) - 1
    sel_bits = 1 + isa.STREAM_INDEX_BITS
    vec_bits = 32 * L
    sim.fresh()
    out = []
    for k in range(len(see)):
        word = issues.get(k)
        sim.set(run=1, issue=int(word is not None), word=word or 0)
        sel = sim["sel"]
        seen = 0
        for i in range(2):       # answer the read ports, as the interconnect does
            s = (sel >> (sel_bits * i)) & ((1 << sel_bits) - 1)
            d, idx = s >> isa.STREAM_INDEX_BITS, s & (isa.MAX_STREAMS - 1)
            if idx < S:
                seen |= pack_lanes(see[k, d, idx], 32) << (vec_bits * i)
        sim["seen"] = seen
        put = sim["put"]
        if (put >> o_valid) & 1:
            out.append(((put >> o_stream) & s_mask, tuple(unpack_lanes(put >> o_data, 32, L))))
        else:
            out.append(None)
        sim.tick()
    return out


def check_program(program, ref=reference):
    issues, see = build_case(program)
    want = ref(CONFIG, issues, see)
    got = run_rtl(vxu_sim(), issues, see)
    assert_puts_equal(f"VXU {CONFIG.name}", issues, want, got)
    return want


@PROPS
@given(programs)
def test_vxu_matches_golden(program):
    check_program(program)
