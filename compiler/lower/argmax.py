"""``argmax`` over the last axis with ``N <= C`` (one MXU column tile, ``C = mxu_cols <= lanes``): one ``VOP
argmax`` per row; lanes past ``N`` are first pushed below every code (a ``VOP add`` of ``MASK_VALUE``) unless
they are known to hold -128 already.

Layout in: an activation of ``M`` rows (its first ``M`` words). Layout out: ``M`` words of int32 indices,
lane 0. Cost: one VXU pass of ``M`` words (two with the mask). Larger ``N`` or another axis:
``NotImplementedError`` naming the node.
"""
from ..phases import _vxu_pass
from .layout import _T, MASK_VALUE, PAD_CODE

__all__ = ["lower_argmax"]


def lower_argmax(lw, st):
    x = lw.T[st.inputs[0]]
    c = lw.c
    where = f"argmax '{st.name}'"
    node = lw.q.graph.node(st.name)
    if x.kind == "idx":
        raise NotImplementedError(f"{where}: argmax of argmax indices is not lowered")
    in_shape = lw.shape(lw.q.graph.node(st.inputs[0]).shape)
    if st.params["axis"] != len(in_shape) - 1:
        raise NotImplementedError(f"{where}: the lowering takes argmax over the last axis only, not axis "
                                  f"{st.params['axis']} of {in_shape}")
    N = in_shape[-1]
    if N > c.mxu_cols:
        raise NotImplementedError(f"{where}: the lowering takes argmax over at most {c.mxu_cols} values per "
                                  f"row (one VOP argmax per row of one {c.mxu_cols}-lane tile on config "
                                  f"{c.name}), not {N}")
    x = lw.act(x, where)
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

    out = lw.placed(f"'{st.name}'", M, f"int32 indices of {M} rows", body,
                    busy=set(p for p, _, _ in src))
    lw.T[st.name] = _T(st.name, "idx", lw.shape(node.shape), out)


