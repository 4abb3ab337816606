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
                "requant": vxu.requant(a, p.mult, p.shift, p.zp), "lut": vxu.lut(a, t), "argmax": vxu.argmax(a)}
    assert set(expected) == set(VXU_OPS)
    for op, want in expected.items():
        assert vxu.execute(op, a, b, p, t).tolist() == want.tolist(), op
    assert vxu.execute("requant", a).tolist() == [0, 0, 0, 0]   # reset parameters: mult 0
