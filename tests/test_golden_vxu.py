"""golden/vxu.py: the VXU's lane operations, bit-exact, against plain Python integer arithmetic."""
from fractions import Fraction

import numpy as np
import pytest

from golden import vxu
from spec.isa import LUT_ENTRIES, VXU_OPS

I32 = [-2**31, -2**31 + 1, -65536, -129, -128, -1, 0, 1, 127, 128, 65535, 2**31 - 1]


def wrap(v):
    return (v + 2**31) % 2**32 - 2**31


def ref_round_half_away(num, den):
    q = Fraction(num, den)
    mag = abs(q)
    r = int(mag) + (1 if mag - int(mag) >= Fraction(1, 2) else 0)
    return r if q >= 0 else -r


def ref_requant(x, mult, shift, zp):
    return max(-128, min(127, zp + ref_round_half_away(x * mult, 2**(31 + shift))))


def test_add_mul_wrap_around():
    a = np.array([[x for x in I32]], dtype=np.int64)
    b = a[:, ::-1]
    assert vxu.add(a, b).tolist() == [[wrap(x + y) for x, y in zip(a[0], b[0])]]
    assert vxu.mul(a, b).tolist() == [[wrap(int(x) * int(y)) for x, y in zip(a[0], b[0])]]
    assert vxu.add([2**31 - 1], [1]).tolist() == [-2**31]
    assert vxu.mul([-2**31], [-2**31]).tolist() == [0]          # 2**62: the low 32 bits are 0
    assert vxu.mul([65536], [65536]).tolist() == [0]
    assert vxu.mul([-2**31], [-1]).tolist() == [-2**31]
    assert vxu.add([3], [4]).dtype == np.int32


def test_max_relu():
    a = np.array(I32)
    b = np.array(I32[::-1])
    assert vxu.vmax(a, b).tolist() == [max(x, y) for x, y in zip(I32, I32[::-1])]
    assert vxu.relu(a).tolist() == [max(x, 0) for x in I32]


@pytest.mark.parametrize("x, mult, shift, expected", [
    (1, 2**30, 0, 1),          # 0.5 -> 1 (away from zero)
    (-1, 2**30, 0, -1),        # -0.5 -> -1
    (3, 2**30, 0, 2),          # 1.5 -> 2
    (-3, 2**30, 0, -2),        # -1.5 -> -2
    (5, 2**30, 1, 1),          # 1.25 -> 1
    (-5, 2**30, 1, -1),        # -1.25 -> -1
    (6, 2**30, 1, 2),          # 1.5 -> 2
    (-6, 2**30, 1, -2),        # -1.5 -> -2
    (-7, 2**30, 1, -2),        # -1.75 -> -2
    (2**31 - 1, 2**31 - 1, 0, 127),    # saturates high
    (-2**31, 2**31 - 1, 0, -128),      # saturates low
    (255, 2**30, 0, 127),      # 127.5 -> 128 -> 127
    (-257, 2**30, 0, -128),    # -128.5 -> -129 -> -128
    (-2**31, 1, 31, 0),        # tiny: -2**-31 -> 0
    (-2**31, 2**31 - 1, 31, -1),   # largest magnitude product, largest divisor
])
def test_requant_ties_and_saturation(x, mult, shift, expected):
    assert ref_requant(x, mult, shift, 0) == expected
    assert vxu.requant([x], mult, shift, 0).tolist() == [expected]


def test_requant_zero_point_and_clamp_after_adding_it():
    # 100 + 30 = 130 -> 127 (zp is added before the clamp); -100 + 30 = -70; -100 - 30 = -130 -> -128
    assert vxu.requant([200, -200, 0], 2**30, 0, 30).tolist() == [127, -70, 30]
    assert vxu.requant([-200, 200], 2**30, 0, -30).tolist() == [-128, 70]


def test_requant_random_against_fractions():
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.integers(-2**31, 2**31, 400), np.array(I32)])
    for _ in range(30):
        mult = int(rng.integers(1, 2**31))
        shift = int(rng.integers(0, 32))
        zp = int(rng.integers(-128, 128))
        got = vxu.requant(x, mult, shift, zp)
        assert got.tolist() == [ref_requant(int(v), mult, shift, zp) for v in x]
    # exact ties everywhere: x * mult = (2k + 1) * 2**(30 + shift)
    for shift in (0, 3, 20):
        mult = 2**30
        xs = [(2 * k + 1) * 2**shift for k in range(-40, 40) if abs((2 * k + 1) * 2**shift) < 2**31]
        assert vxu.requant(xs, mult, shift, 0).tolist() == [ref_requant(v, mult, shift, 0) for v in xs]


def test_requant_rejects_bad_parameters():
    with pytest.raises(ValueError, match="shift must be an integer between 0 and 31"):
        vxu.requant([1], 1, 32, 0)
    with pytest.raises(ValueError, match="mult must be an integer between 0 and 2147483647"):
        vxu.requant([1], 2**31, 0, 0)
    with pytest.raises(ValueError, match="a must hold int32 values"):
        vxu.requant([2**31], 1, 0, 0)


def ref_requantv(x, b, shift, zp):
    """The documented rule: the multiplier is the lane of b read as an unsigned 31-bit number."""
    return ref_requant(x, b % 2**31, shift, zp)


@pytest.mark.parametrize("x, b, shift, zp, expected", [
    (1, 2**30, 0, 0, 1),               # 0.5 -> 1 (away from zero)
    (-1, 2**30, 0, 0, -1),             # -0.5 -> -1
    (3, 2**30, 0, 0, 2),               # 1.5 -> 2
    (-3, 2**30, 0, 0, -2),             # -1.5 -> -2
    (6, 2**30, 1, 0, 2),               # 1.5 -> 2
    (-6, 2**30, 1, 0, -2),             # -1.5 -> -2
    (-7, 2**30, 1, 0, -2),             # -1.75 -> -2
    (5, 2**29, 0, 0, 1),               # 1.25 -> 1
    (255, 2**30, 0, 0, 127),           # 127.5 -> 128 -> 127
    (-257, 2**30, 0, 0, -128),         # -128.5 -> -129 -> -128
    (2**31 - 1, 2**31 - 1, 0, 0, 127),   # saturates high
    (-2**31, 2**31 - 1, 0, 0, -128),     # saturates low
    (-2**31, 2**31 - 1, 31, 0, -1),      # largest magnitude product, largest divisor
    (-2**31, 1, 31, 0, 0),               # tiny
    (200, 2**30, 0, 30, 127),            # 100 + 30 clamps after adding zp
    (-200, 2**30, 0, 30, -70),
    # out-of-range multipliers: b & 0x7FFFFFFF
    (3, -2**30, 0, 0, 2),                # -2**30 & 0x7FFFFFFF = 2**30: 1.5 -> 2
    (-3, -2**30, 0, 5, 3),               # -1.5 -> -2, + 5
    (2**31 - 1, 0, 0, -7, -7),           # m = 0: zp
    (-2**31, -2**31, 0, 100, 100),       # -2**31 & 0x7FFFFFFF = 0: zp
    (2**31 - 1, -1, 0, 0, 127),          # -1 -> 2**31 - 1
    (-1, -1, 0, 0, -1),                  # -(2**31 - 1) / 2**31 -> -1
    (-1, -2**31 + 2**30, 0, 0, -1),      # -2**30 -> m = 2**30: -0.5 -> -1
])
def test_requantv_ties_saturation_and_out_of_range_multipliers(x, b, shift, zp, expected):
    assert ref_requantv(x, b, shift, zp) == expected
    assert vxu.requantv([x], [b], shift, zp).tolist() == [expected]


def test_requantv_per_lane_multipliers_against_fractions():
    rng = np.random.default_rng(8)
    L = 6
    x = np.concatenate([rng.integers(-2**31, 2**31, (300, L)), np.array(I32[:L]).reshape(1, L),
                        np.array(I32[L:]).reshape(1, L)])
    for trial in range(30):
        if trial % 3 == 0:    # any int32 lanes (out-of-range ones included)
            b = rng.choice(np.array(I32 + [2**30, -2**30, 3 << 28]), size=(len(x), L))
        elif trial % 3 == 1:  # one multiplier vector for all rows, in range
            b = rng.integers(1, 2**31, L)
        else:
            b = rng.integers(-2**31, 2**31, (len(x), L))
        shift = int(rng.integers(0, 32))
        zp = int(rng.integers(-128, 128))
        got = vxu.requantv(x, b, shift, zp)
        bb = np.broadcast_to(b, x.shape)
        assert got.dtype == np.int32 and got.shape == x.shape
        assert got.tolist() == [[ref_requantv(int(v), int(m), shift, zp) for v, m in zip(row, mrow)]
                                for row, mrow in zip(x, bb)]
    # lanes with different multipliers really give different results; in-range lanes equal requant
    mult = np.array([2**30, 2**29, 2**28, 1])
    assert vxu.requantv(np.full(4, 100), mult, 0, 0).tolist() == [50, 25, 13, 0]        # 12.5 -> 13
    assert vxu.requantv(np.full(4, -100), mult, 0, 0).tolist() == [-50, -25, -13, 0]    # -12.5 -> -13
    for c in range(4):
        assert vxu.requantv(x[:, c], int(mult[c]), 3, -4).tolist() == vxu.requant(x[:, c], int(mult[c]), 3, -4).tolist()
    # exact ties of both signs, per lane: x * m = (2k + 1) * 2**(30 + shift)
    for shift in (0, 4, 31):
        ms = np.array([2**30, 2**29, 2**28, 2**27])
        xs = np.array([[(2 * k + 1) << (shift + i) for i in range(4)] for k in range(-20, 20)])
        xs = np.where(np.abs(xs) < 2**31, xs, 1)
        assert vxu.requantv(xs, ms, shift, 0).tolist() == [[ref_requantv(int(v), int(m), shift, 0)
                                                            for v, m in zip(row, ms)] for row in xs]


def test_requantv_rejects_bad_parameters():
    with pytest.raises(ValueError, match="shift must be an integer between 0 and 31"):
        vxu.requantv([1], [1], 32, 0)
    with pytest.raises(ValueError, match="zp must be an integer between -128 and 127"):
        vxu.requantv([1], [1], 0, 128)
    with pytest.raises(ValueError, match="b must hold int32 values"):
        vxu.requantv([1], [2**31], 0, 0)
    with pytest.raises(ValueError, match="a must hold int32 values"):
        vxu.requantv([-2**31 - 1], [1], 0, 0)


def test_lut_indexes_by_the_low_byte():
    table = np.arange(LUT_ENTRIES).astype(np.int64)     # entry j = low byte of j as int8
    t = vxu.lut_table(table.reshape(-1, 4))
    assert t.dtype == np.int8 and t[200] == 200 - 256 and t[5] == 5
    a = np.array([0, 5, -1, 255, 256, -128, 2**31 - 1, -2**31])
    assert vxu.lut(a, t).tolist() == [0, 5, -1, -1, 0, -128, -1, 0]
    # lanes past entry 255 are ignored (L = 3: 86 vectors, 258 lanes)
    v = np.zeros((86, 3), np.int64)
    v.reshape(-1)[:256] = 7
    v.reshape(-1)[256:] = 99
    assert (vxu.lut_table(v) == 7).all()


def test_argmax_lowest_index_on_ties():
    a = np.array([[1, 9, 9, 0], [-5, -5, -5, -5], [-2**31, -2**31, 2**31 - 1, 2**31 - 1], [0, 0, 0, 1]])
    assert vxu.argmax(a).tolist() == [[1, 0, 0, 0], [0, 0, 0, 0], [2, 0, 0, 0], [3, 0, 0, 0]]


def test_execute_dispatches_every_operation():
    a, b = np.array([-3, 4, 200, -200]), np.array([2, 2, 2, 2])
    p = vxu.RequantParams(2**30, 0, 0)
    t = vxu.lut_table(np.arange(256).reshape(64, 4) * -1)
    expected = {"add": vxu.add(a, b), "mul": vxu.mul(a, b), "max": vxu.vmax(a, b), "relu": vxu.relu(a),
                "requant": vxu.requant(a, p.mult, p.shift, p.zp), "lut": vxu.lut(a, t), "argmax": vxu.argmax(a),
                "requantv": vxu.requantv(a, b, p.shift, p.zp), "lsum": vxu.lsum(a), "lmax": vxu.lmax(a),
                "recip": vxu.recip(a), "rsqrt": vxu.rsqrt(a), "spread": vxu.spread(a, 0)}
    assert set(expected) == set(VXU_OPS)
    for op, want in expected.items():
        assert vxu.execute(op, a, b, p, t).tolist() == want.tolist(), op
    assert vxu.execute("requant", a).tolist() == [0, 0, 0, 0]   # reset parameters: mult 0
    # requantv ignores the SETQ mult: only shift and zp
    q = vxu.RequantParams(1, 1, -3)
    assert vxu.execute("requantv", a, [2**31 - 1, 2**30, 2**30, -2**30], q).tolist() == [
        ref_requantv(-3, 2**31 - 1, 1, -3), ref_requantv(4, 2**30, 1, -3), -3 + 50, -3 - 50]
    assert vxu.execute("requantv", a, b).tolist() == [0, 0, 0, 0]   # reset: shift 0, zp 0; 2 / 2**31 -> 0
    with pytest.raises(ValueError, match="needs two operands"):
        vxu.execute("requantv", a)


# ---- lane reductions, the tables, spread (issue 10) ---------------------------------------------------
def test_lane_reductions_broadcast_to_every_lane():
    a = np.array([[1, -2, 3, 7], [2**31 - 1, 1, 0, 0], [-2**31, -1, -5, -2**31]])   # the last row's sum is -2**32 - 6
    assert vxu.lsum(a).tolist() == [[9] * 4, [-2**31] * 4, [-6] * 4]    # wraps modulo 2**32
    assert vxu.lmax(a).tolist() == [[7] * 4, [2**31 - 1] * 4, [-1] * 4]


def _scalar_cases():
    cases = [1, 2, 3, 127, 128, 129, 255, 256, 2**30, 2**31 - 1, 0, -1, -2**31, 12345]
    cases += [v for k in range(31) for v in ((1 << k) - 1, 1 << k, (1 << k) + 1) if 0 < v < 2**31]
    rng = np.random.default_rng(10)
    print("seed 10")
    cases += rng.integers(-2**31, 2**31, 2000).tolist() + rng.integers(1, 4096, 500).tolist()
    return np.array(cases, dtype=np.int64)


def test_recip_and_rsqrt_follow_the_rom_rule_exactly():
    from spec import vxu_rom
    a = _scalar_cases()
    got_r, got_s = vxu.recip(a), vxu.rsqrt(a)
    for k, v in enumerate(a.tolist()):
        assert got_r[k] == vxu_rom.recip(v), f"recip({v}) = {got_r[k]}, the rule says {vxu_rom.recip(v)}"
        assert got_s[k] == vxu_rom.rsqrt(v), f"rsqrt({v}) = {got_s[k]}, the rule says {vxu_rom.rsqrt(v)}"


def test_recip_and_rsqrt_are_close_to_the_functions():
    a = np.arange(1, 1 << 16, dtype=np.int64)
    rel_r = np.abs(vxu.recip(a) * a / 2.0**31 - 1)
    rel_s = np.abs(vxu.rsqrt(a) * np.sqrt(a) / 2.0**31 - 1)
    bound = 2.0**-8 + 2.0**-14          # the table's half interval, plus the shift's truncation below 2**16
    assert rel_r.max() <= bound and rel_s.max() <= bound, (rel_r.max(), rel_s.max())
    assert vxu.recip(np.array([0, -7])).tolist() == [2**31 - 1] * 2
    assert vxu.rsqrt(np.array([0, -2**31])).tolist() == [2**31 - 1] * 2


def test_spread_reads_the_held_vector_lane_by_item():
    held = np.array([10, -20, 30, -40])
    assert [vxu.spread(held, i).tolist() for i in range(6)] == [
        [10] * 4, [-20] * 4, [30] * 4, [-40] * 4, [10] * 4, [-20] * 4]
    # execute: the held vector wins over a (the items after the first do not read src)
    assert vxu.execute("spread", np.array([1, 2, 3, 4]), item=2, held=held).tolist() == [30] * 4


def test_spread_on_the_chip_holds_item_zero():
    from spec.config import PRESETS
    from tests.test_golden_chip import run_asm
    tiny = PRESETS["tiny"]
    # mem0 is slice 0, the VXU slice 3, mem2 slice 4: a vector written at t is seen d slices on at t + d
    src = """
.slice mem0
    READ bank=0 addr=0 count=3 -> E0
    HALT
.slice vxu
    NOP 5
    VOP spread E0 count=6 -> E1
    HALT
.slice mem2
    NOP 10
    WRITE E1 bank=0 addr=0 count=6
    HALT
"""
    res = run_asm(src, [("mem0", 0, 0, np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 9, 9, 9]]))])
    assert res.ok, res.error
    got = res.read_mem("mem2", 0, 0, 6)
    assert got.tolist() == [[1] * 4, [2] * 4, [3] * 4, [4] * 4, [1] * 4, [2] * 4]
    assert tiny.lanes == 4
