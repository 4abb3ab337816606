"""``argmax`` over the last axis (the lowest index among the largest codes, as ``golden.vxu.argmax``).

* ``N <= C`` (one MXU column tile, ``C = mxu_cols <= lanes``): one ``VOP argmax`` per row; lanes past ``N`` are
  first pushed below every code (a ``VOP add`` of ``MASK_VALUE``) unless they are known to hold -128 already.
  Cost: one VXU pass of ``M`` words (two with the mask).
* ``N > C`` (a vocabulary over several tiles), with the row operations of ``rows.py``: the row maximum ``m``
  (``lmax`` per tile, ``max`` across them; padding lanes pushed below every code first), ``e = relu(q - m +
  1)`` (1 exactly where a code equals the maximum, else 0), ``s = e · (N - j)`` (``j`` the lane's index in the
  row), the row maximum of ``s`` is ``N - j_min``, and ``index = N - max s`` on every lane. Cost: about
  ``5·Nt + 6`` passes.

Layout in: an activation of ``M`` rows. Layout out: ``M`` words of int32 indices (lane 0; the wide form has the
index on every lane). Another axis: ``NotImplementedError`` naming the node.
"""
import numpy as np

from ..phases import _bias_reps, _vxu_pass
from .layout import _T, MASK_VALUE, PAD_CODE, _pack_act, _pack_channels
from .rows import _Rows, _tile_list

__all__ = ["lower_argmax", "argmax_rows"]


def lower_argmax(lw, st):
    x = lw.T[st.inputs[0]]
    where = f"argmax '{st.name}'"
    node = lw.q.graph.node(st.name)
    if x.kind == "idx":
        raise NotImplementedError(f"{where}: argmax of argmax indices is not lowered")
    in_shape = lw.shape(lw.q.graph.node(st.inputs[0]).shape)
    if st.params["axis"] != len(in_shape) - 1:
        raise NotImplementedError(f"{where}: the lowering takes argmax over the last axis only, not axis "
                                  f"{st.params['axis']} of {in_shape}")
    x = lw.act(x, where)
    lw.T[st.name] = _T(st.name, "idx", lw.shape(node.shape), argmax_rows(lw, st, x, in_shape[-1]))


def argmax_rows(lw, st, x, N):
    """The region of ``x.rows`` words of indices (module docstring) of the activation ``x`` (``N`` values a row),
    named after the step ``st``."""
    if N > lw.c.mxu_cols:
        return _wide(lw, st, x, N)
    c = lw.c
    M = x.rows
    src = x.region.locs[:M]
    mask = N < c.lanes and x.pad != PAD_CODE

    def body(out):
        s = src
        if mask:
            ml = lw.const_vectors(f"argmax mask of '{st.name}'", [0] * N + [MASK_VALUE] * (c.lanes - N), M,
                                  exclude=set(p for p, _, _ in src) | set(out.slices))
            _vxu_pass(lw.b, None, "add", s, out.locs, b_locs=ml)
            s = out.locs
        _vxu_pass(lw.b, None, "argmax", s, out.locs)
        return out

    return lw.placed(f"'{st.name}'", M, f"int32 indices of {M} rows", body, busy=set(p for p, _, _ in src))


def _wide(lw, st, x, N):
    """argmax of ``N > C`` values a row (module docstring)."""
    R = _Rows(lw, st, x)
    c = lw.c
    M, Nt = R.M, R.Nt
    X = set(x.region.slices)
    reps = _bias_reps(c, M, Nt)

    def body(out):
        src = x.region
        if N % c.mxu_cols:                  # the padding lanes below every code
            E = R.scratch("codes (padding masked)", avoid=X, words=Nt * M)
            mr = lw.const(f"argmax mask of '{st.name}'", _pack_act(np.zeros((M, N), np.int64), c, MASK_VALUE),
                          exclude=X | set(E.slices), desc=f"int32 {M} x {N} as {Nt} tiles x {M} words")
            R.op("add", src.locs, E.locs, b=mr.locs)
            src = E
        m = R.reduce(_tile_list(R, src), "max", "lmax", "row max")
        one_minus = R.scratch("1 - max", avoid=set(m.slices) | set(src.slices))
        R.op("mul", m.locs, one_minus.locs, b=R.vec("-1", -1, M, m.slices))
        R.op("add", one_minus.locs, one_minus.locs, b=R.vec("1", 1, M, one_minus.slices))
        eq = R.scratch("at the maximum", avoid=set(src.slices) | set(one_minus.slices), words=Nt * M)
        R.op("add", src.locs, eq.locs, b=R.repeat(one_minus))
        R.op("relu", eq.locs, eq.locs)
        score = lw.const(f"N - index of '{st.name}'", _pack_channels(N - np.arange(N, dtype=np.int64), c, reps, 0),
                         exclude=set(eq.slices), granule=reps, desc=f"int32 ({N},) as {Nt} tiles x {reps} copies",
                         avoid=", on MEM slices not holding the flags")
        R.op("mul", eq.locs, eq.locs, b=lw.channel_locs(score, reps, M, Nt))
        best = R.reduce(_tile_list(R, eq), "max", "lmax", "best score")
        R.op("mul", best.locs, out.locs, b=R.vec("-1", -1, M, best.slices))
        R.op("add", out.locs, out.locs, b=R.vec("N", N, M, out.slices))
        return out

    return lw.placed(f"'{st.name}'", M, f"int32 indices of {M} rows", body, busy=X)
