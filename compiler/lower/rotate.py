"""``rotate_half`` (rotary embeddings): ``[-x[..., h:], x[..., :h]]`` as a GEMM by a constant signed permutation
(``P[i + h, i] = -1``, ``P[i - h, i] = 1``; int8 ±1 weights, exact), then a ``requant`` by ``(2**31 - 1) /
2**31`` that only clamps ``-(-128) = 128`` to 127, as the int8 rule does (``compiler/quantize``: zero point 0).

Layout in: an activation ``M × F`` (``F = 2h``). Layout out: the same layout. Cost: ``Ft² `` weight tiles
(``Ft = ceil(F / C)``) of ``M`` MATMUL items, and one requant pass of ``Ft · M`` words.
"""
import numpy as np

from golden import vxu as gvxu

from ..phases import _eager, _Gemm, _gemm_phase, _pack_w, _tiles, _ToMem, _vxu_pass
from .layout import _T

__all__ = ["lower_rotate_half", "rotate_half_matrix"]

_ALMOST_ONE = (1 << 31) - 1


def rotate_half_matrix(F):
    """The (F, F) matrix ``P`` with ``x @ P = [-x[h:], x[:h]]``."""
    h = F // 2
    P = np.zeros((F, F), np.int64)
    for i in range(h):
        P[i + h, i] = -1
        P[i, i + h] = 1
    return P


def lower_rotate_half(lw, st):
    x = lw.operand(st)
    c = lw.c
    M, F = x.rows, x.features
    Ft = _tiles(F, c.mxu_cols)
    wr = lw.const(f"rotate-half weights of '{st.name}'", _pack_w(rotate_half_matrix(F), c),
                  exclude=set(x.region.slices), granule=c.mxu_rows,
                  desc=f"int8 {F} x {F} signed permutation", avoid=", on MEM slices not holding its input")

    def body(out):
        b = lw.b
        g = _Gemm(M, F, F, x.region, wr)
        # on an eager builder from when x is ready (the rotary of k beside the one of q), else after everything
        lw.matmuls += _eager(b, list(x.region.locs), list(out.locs), lambda s: _gemm_phase(b, s, g, _ToMem(b, out, M)))
        _vxu_pass(b, None, "requant", out.locs, out.locs, setq=gvxu.RequantParams(_ALMOST_ONE, 0, 0))
        return out

    z = lw.placed(f"'{st.name}'", Ft * M, f"int8 {M} x {F} as {Ft} tiles x {M} words", body,
                  busy=set(x.region.slices) | set(wr.slices))
    lw.T[st.name] = _T(st.name, "act", x.shape, z, 0)
