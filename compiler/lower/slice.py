"""``slice`` along the last axis (``x[..., a:b]``, e.g. the q, k, v of a fused projection): a no-op on the
layout when ``a`` is a multiple of ``C`` (the output aliases the input's tiles ``a / C`` … ``ceil(b / C) - 1``;
lanes past ``b`` in the last tile are the input's next features: the output's pad is unknown). Layout in: an
activation. Layout out: the same words. Cost: 0 cycles. A slice starting inside a tile: ``NotImplementedError``
naming the node (it would move lanes).
"""
from ..memory import Region
from ..phases import _tiles
from .layout import _T

__all__ = ["lower_slice"]


def lower_slice(lw, st):
    x = lw.operand(st)
    C = lw.c.mxu_cols
    a, b = st.params["start"], st.params["stop"]
    if a % C:
        raise NotImplementedError(f"slice '{st.name}': the lowering slices whole tiles only (start a multiple of "
                                  f"mxu_cols = {C}), not [{a}:{b}] (it would move lanes)")
    M = x.rows
    locs = x.region.locs[a // C * M:_tiles(b, C) * M]
    shape = lw.out_shape(st)
    lw.T[st.name] = _T(st.name, "act", shape, Region(f"'{st.name}' (tiles of {x.name!r})", lw.c, locs),
                       x.pad if b == x.features else None)
    lw.parents[st.name] = lw.parents.get(x.name, x.region)   # x's words stay while the slice is read
