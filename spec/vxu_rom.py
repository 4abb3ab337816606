"""The VXU's read-only tables: the reciprocal and reciprocal square root of ``recip`` and ``rsqrt``.

One rule, read by the golden model (``golden/vxu.py``), the RTL (``rtl/vxu.py``) and the compiler: a
positive int32 ``a`` is normalized to ``a = 2**e · (1 + f / 2**ROM_INDEX_BITS + …)`` (``e`` the position of
its leading one, 0 … 30; ``f`` the ``ROM_INDEX_BITS`` bits after it), the table gives the function at the
middle of that interval, and a right shift by ``e`` (recip) or ``e // 2`` (rsqrt, whose table also depends on
``e``'s parity) scales it back:

* ``recip(a) = RECIP_ROM[f] >> e``              ≈ ``2**31 / a``;
* ``rsqrt(a) = RSQRT_ROM[e & 1][f] >> (e >> 1)`` ≈ ``2**31 / sqrt(a)``;
* ``a <= 0`` gives ``2**31 - 1`` for both (the largest positive int32: what the compiler never feeds, made
  harmless).

The tables are exact integers (no floating point): ``RECIP_ROM[f] = floor(2**31 / m)`` and
``RSQRT_ROM[p][f] = floor(2**31 / sqrt(2**p · m))`` with ``m = 1 + (2f + 1) / 2**(ROM_INDEX_BITS + 1)``, the
middle of the interval. Every entry is below ``2**31`` (the largest, at ``f = 0``, is
``2**31 / (1 + 2**-(ROM_INDEX_BITS+1))``), so results are positive int32 values; the relative error from the
table is at most ``2**-(ROM_INDEX_BITS + 1)`` (recip) and half that (rsqrt), plus the truncation of the
shift (below ``2**e / 2**31`` relative).
"""
from math import isqrt

__all__ = ["ROM_INDEX_BITS", "ROM_ENTRIES", "NONPOSITIVE_RESULT", "RECIP_ROM", "RSQRT_ROM", "normalize",
           "recip", "rsqrt"]

#: Bits of the mantissa after the leading one that index the tables.
ROM_INDEX_BITS = 7
ROM_ENTRIES = 1 << ROM_INDEX_BITS
#: What ``recip`` and ``rsqrt`` give for ``a <= 0``.
NONPOSITIVE_RESULT = (1 << 31) - 1
_D = 1 << (ROM_INDEX_BITS + 1)        # m = (_D + 2f + 1) / _D


def _recip_entry(f):
    return (1 << 31) * _D // (_D + 2 * f + 1)


def _rsqrt_entry(p, f):
    # floor(2**31 / sqrt(2**p · (_D + 2f + 1) / _D)) = floor(sqrt(2**62 · _D / (2**p · (_D + 2f + 1))))
    return isqrt((1 << 62) * _D // ((1 << p) * (_D + 2 * f + 1)))


RECIP_ROM = tuple(_recip_entry(f) for f in range(ROM_ENTRIES))
RSQRT_ROM = tuple(tuple(_rsqrt_entry(p, f) for f in range(ROM_ENTRIES)) for p in (0, 1))
assert all(0 < v < (1 << 31) for v in RECIP_ROM + RSQRT_ROM[0] + RSQRT_ROM[1])


def normalize(a):
    """``(e, f)`` of a positive int ``a``: its leading one's position and the ``ROM_INDEX_BITS`` bits after it."""
    e = a.bit_length() - 1
    f = ((a << ROM_INDEX_BITS) >> e) & (ROM_ENTRIES - 1)
    return e, f


def recip(a):
    """``recip`` of one int32 value (the scalar rule; ``golden.vxu`` applies it to arrays)."""
    if a <= 0:
        return NONPOSITIVE_RESULT
    e, f = normalize(a)
    return RECIP_ROM[f] >> e


def rsqrt(a):
    """``rsqrt`` of one int32 value (the scalar rule)."""
    if a <= 0:
        return NONPOSITIVE_RESULT
    e, f = normalize(a)
    return RSQRT_ROM[e & 1][f] >> (e >> 1)
