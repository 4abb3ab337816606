"""Bit-exact numpy model of the VXU's lane operations (docs/isa.md, "VXU operations"; docs/chip.md).

The twin of the RTL's VXU: both follow ``spec.isa.VXU_OPS``; this module never looks at the RTL.

Every function takes vectors as integer arrays whose last axis is the lanes (any leading shape, so a whole
batch of vectors can be computed at once) holding int32 values, and returns ``np.int32`` arrays:

* ``add(a, b)``, ``mul(a, b)``: wrap around modulo 2**32 (two's complement), ``mul`` keeps the low 32 bits;
* ``vmax(a, b)``, ``relu(a)``: signed int32 comparisons;
* ``requant(a, mult, shift, zp)``: ``clamp(zp + round_half_away(a * mult / 2**(31 + shift)), -128, 127)``,
  the single rounding rule of docs/chip.md. The product is exact in int64: ``|a| <= 2**31`` and
  ``mult < 2**31`` give ``|a * mult| < 2**62``, and adding the rounding half (``2**(30 + shift) <= 2**61``)
  stays below ``2**63``;
* ``requantv(a, b, shift, zp)``: ``requant`` with a per-lane multiplier taken from the vector ``b``:
  ``clamp(zp + round_half_away(a * m / 2**(31 + shift)), -128, 127)`` with ``m = b & 0x7FFFFFFF``, the lane's
  low 31 bits as an unsigned number. A positive int32 lane (1 … 2**31 - 1, what the compiler feeds) is its
  own multiplier; for any other lane bit 31 is ignored (``0`` and ``-2**31`` give ``m = 0``, so the result is
  ``clamp(zp)``; ``-1`` gives ``2**31 - 1``; ``-2**30`` gives ``2**30``). ``m < 2**31`` keeps the product exact,
  as for ``requant``;
* ``lut(a, table)``: ``table[a & 0xFF]``, the lane's low 8 bits as an unsigned index 0 … 255, the entry an
  int8 value (sign-extended to int32);
* ``argmax(a)``: lane 0 the index of the largest lane (the lowest index on ties), other lanes 0;
* ``lsum(a)``, ``lmax(a)``: every lane the sum (wrapping modulo 2**32) or the signed maximum of the lanes;
* ``recip(a)``, ``rsqrt(a)``: per lane ≈ ``2**31 / a`` and ≈ ``2**31 / sqrt(a)`` by the tables of
  ``spec/vxu_rom.py`` (the one rule; ``a <= 0`` gives ``2**31 - 1``);
* ``spread(held, i)``: item ``i`` of a ``spread``: every lane is lane ``i mod L`` of ``held``, the vector the
  operation's item 0 sampled (``execute`` takes it as ``held`` and the item index as ``item``).

``lut_table(vectors)`` builds the 256-entry table a ``LOADLUT`` loads (entry ``j`` is the low byte, as a
signed int8, of lane ``j mod L`` of vector ``j // L``; lanes past entry 255 ignored). ``execute(op, a, b,
params, table)`` dispatches on an operation name of ``spec.isa.VXU_OPS`` (``requant`` uses all three SETQ
registers of ``params``, ``requantv`` only ``shift`` and ``zp``).
"""
from dataclasses import dataclass

import numpy as np

from spec import vxu_rom
from spec.isa import FIELDS, LUT_ENTRIES, REQUANT_RESET, VXU_OPS

__all__ = [
    "INT32_MIN", "INT32_MAX", "wrap_int32", "low_byte", "add", "mul", "vmax", "relu", "round_half_away_shift",
    "requant", "requantv", "REQUANTV_MULT_MASK", "lut", "lut_table", "argmax", "RequantParams", "RESET_REQUANT",
    "lsum", "lmax", "recip", "rsqrt", "spread", "execute",
]

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _as_int64(values, name):
    v = np.asarray(values)
    if v.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, not {v.dtype}")
    v = v.astype(np.int64)
    if v.size and (v.min() < INT32_MIN or v.max() > INT32_MAX):
        raise ValueError(f"{name} must hold int32 values ({INT32_MIN} … {INT32_MAX}), got "
                         f"{int(v.min())} … {int(v.max())}")
    return v


def wrap_int32(values):
    """Integers (int64 or smaller) modulo 2**32 as int32 (two's complement)."""
    v = np.asarray(values, dtype=np.int64)
    return (((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)).astype(np.int32)


def low_byte(values):
    """The low 8 bits of each int32 lane as a signed int8 (how int8 units read a lane)."""
    v = np.asarray(values, dtype=np.int64)
    return (((v & 0xFF) ^ 0x80) - 0x80).astype(np.int8)


def add(a, b):
    """``a + b`` per lane, wrapping modulo 2**32."""
    return wrap_int32(_as_int64(a, "a") + _as_int64(b, "b"))


def mul(a, b):
    """``a × b`` per lane, the low 32 bits (the int64 product is exact: ``|a·b| <= 2**62``)."""
    return wrap_int32(_as_int64(a, "a") * _as_int64(b, "b"))


def vmax(a, b):
    """``max(a, b)`` per lane (signed)."""
    return np.maximum(_as_int64(a, "a"), _as_int64(b, "b")).astype(np.int32)


def relu(a):
    """``max(a, 0)`` per lane."""
    return np.maximum(_as_int64(a, "a"), 0).astype(np.int32)


def round_half_away_shift(p, n):
    """``round_half_away_from_zero(p / 2**n)`` for int64 ``p`` with ``|p| < 2**62`` and ``1 <= n <= 62``."""
    p = np.asarray(p, dtype=np.int64)
    mag = (np.abs(p) + (np.int64(1) << np.int64(n - 1))) >> np.int64(n)
    return np.where(p < 0, -mag, mag)


@dataclass(frozen=True)
class RequantParams:
    """The SETQ registers. ``mult`` 0 … 2**31 - 1 (0 only as the reset value: SETQ requires >= 1)."""
    mult: int
    shift: int
    zp: int

    def __post_init__(self):
        for name, lo in (("mult", 0), ("shift", FIELDS["shift"].lo), ("zp", FIELDS["zp"].lo)):
            value, hi = getattr(self, name), FIELDS[name].hi
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer between {lo} and {hi}, not {value!r}")
            if not lo <= value <= hi:
                raise ValueError(f"{name} must be an integer between {lo} and {hi}, not {value!r}")


#: The requantization registers at the start of a run (before any SETQ): ``spec.isa.REQUANT_RESET``.
RESET_REQUANT = RequantParams(*REQUANT_RESET)


def requant(a, mult, shift, zp):
    """``clamp(zp + round_half_away(a × mult / 2**(31 + shift)), -128, 127)`` per lane (docs/chip.md)."""
    RequantParams(mult, shift, zp)
    p = _as_int64(a, "a") * np.int64(mult)          # exact: |p| < 2**62
    q = round_half_away_shift(p, 31 + shift)         # |q| <= 2**31
    return np.clip(q + zp, -128, 127).astype(np.int32)


#: ``requantv``'s multiplier is ``b & REQUANTV_MULT_MASK``: the low 31 bits of the lane, unsigned.
REQUANTV_MULT_MASK = (1 << 31) - 1


def requantv(a, b, shift, zp):
    """``clamp(zp + round_half_away(a × m / 2**(31 + shift)), -128, 127)`` per lane with the per-lane multiplier
    ``m = b & 0x7FFFFFFF`` (module docstring); ``a`` and ``b`` int32 values, broadcast against each other."""
    RequantParams(0, shift, zp)                      # checks shift and zp
    m = _as_int64(b, "b") & np.int64(REQUANTV_MULT_MASK)
    p = _as_int64(a, "a") * m                        # exact: |p| <= 2**31 · (2**31 - 1) < 2**62
    q = round_half_away_shift(p, 31 + shift)
    return np.clip(q + zp, -128, 127).astype(np.int32)


def lut_table(vectors):
    """The 256-entry int8 table a LOADLUT of ``vectors`` (``ceil(256 / L)`` vectors of ``L`` lanes) loads."""
    v = _as_int64(vectors, "vectors")
    if v.ndim != 2:
        raise ValueError(f"vectors must be a 2-D array (vectors × lanes), not shape {v.shape}")
    flat = v.reshape(-1)
    if flat.size < LUT_ENTRIES:
        raise ValueError(f"vectors must hold at least {LUT_ENTRIES} lanes in all, not {flat.size}")
    return low_byte(flat[:LUT_ENTRIES])


def lut(a, table):
    """``table[a & 0xFF]`` per lane (``table``: 256 int8 entries), sign-extended to int32."""
    t = np.asarray(table)
    if t.shape != (LUT_ENTRIES,):
        raise ValueError(f"table must have {LUT_ENTRIES} entries, not shape {t.shape}")
    return t.astype(np.int32)[_as_int64(a, "a") & 0xFF]


def argmax(a):
    """Lane 0: the index of the largest lane (the lowest on ties); the other lanes 0."""
    v = _as_int64(a, "a")
    out = np.zeros(v.shape, dtype=np.int32)
    out[..., 0] = np.argmax(v, axis=-1)   # numpy returns the first occurrence of the maximum
    return out


def lsum(a):
    """Every lane: the sum of the lanes (wrapping modulo 2**32)."""
    v = _as_int64(a, "a")
    return wrap_int32(np.broadcast_to(v.sum(axis=-1, keepdims=True), v.shape))


def lmax(a):
    """Every lane: the largest lane (signed)."""
    v = _as_int64(a, "a")
    return np.broadcast_to(v.max(axis=-1, keepdims=True), v.shape).astype(np.int32)


def _rom_lookup(a, lookup):
    """``lookup(e, f)`` per lane of the positive lanes of ``a`` (``spec.vxu_rom`` normalization), else
    ``NONPOSITIVE_RESULT``."""
    v = _as_int64(a, "a")
    pos = np.maximum(v, 1)
    e = np.floor(np.log2(pos)).astype(np.int64)
    # log2 of an int64 below 2**31 as float64 can land one off at exact powers of two; settle it with integers
    e = np.where((np.int64(1) << e) > pos, e - 1, e)
    e = np.where((np.int64(1) << (e + 1)) <= pos, e + 1, e)
    f = ((pos << vxu_rom.ROM_INDEX_BITS) >> e) & (vxu_rom.ROM_ENTRIES - 1)
    return np.where(v > 0, lookup(e, f), vxu_rom.NONPOSITIVE_RESULT).astype(np.int32)


_RECIP = np.array(vxu_rom.RECIP_ROM, dtype=np.int64)
_RSQRT = np.array(vxu_rom.RSQRT_ROM, dtype=np.int64)


def recip(a):
    """≈ ``2**31 / a`` per lane: ``RECIP_ROM[f] >> e`` (``spec/vxu_rom.py``); ``a <= 0`` gives ``2**31 - 1``."""
    return _rom_lookup(a, lambda e, f: _RECIP[f] >> e)


def rsqrt(a):
    """≈ ``2**31 / sqrt(a)`` per lane: ``RSQRT_ROM[e & 1][f] >> (e >> 1)``; ``a <= 0`` gives ``2**31 - 1``."""
    return _rom_lookup(a, lambda e, f: _RSQRT[e & 1, f] >> (e >> 1))


def spread(held, i):
    """Item ``i`` of a ``spread``: every lane is lane ``i mod L`` of ``held`` (item 0's operand)."""
    v = _as_int64(held, "held")
    L = v.shape[-1]
    return np.broadcast_to(v[..., i % L:i % L + 1], v.shape).astype(np.int32)


_UNARY = {"lsum": lsum, "lmax": lmax, "recip": recip, "rsqrt": rsqrt}


def execute(op, a, b=None, params=RESET_REQUANT, table=None, item=0, held=None):
    """The VXU operation ``op`` (a name of ``spec.isa.VXU_OPS``) on ``a`` (and ``b`` for binary ones); a
    ``spread`` uses ``held`` (item 0's ``a``; ``a`` itself when None) and the item index ``item``."""
    if op not in VXU_OPS:
        raise ValueError(f"op must be one of {', '.join(VXU_OPS)}, not {op!r}")
    if VXU_OPS[op].arity == 2:
        if b is None:
            raise ValueError(f"VXU operation {op} needs two operands")
        if op == "requantv":
            return requantv(a, b, params.shift, params.zp)
        return {"add": add, "mul": mul, "max": vmax}[op](a, b)
    if op == "relu":
        return relu(a)
    if op == "requant":
        return requant(a, params.mult, params.shift, params.zp)
    if op == "lut":
        return lut(a, np.zeros(LUT_ENTRIES, np.int8) if table is None else table)
    if op == "argmax":
        return argmax(a)
    if op == "spread":
        return spread(a if held is None else held, item)
    if op in _UNARY:
        return _UNARY[op](a)
    raise AssertionError(op)  # every operation of spec.isa.VXU_OPS is handled above
