"""``relu`` (not fused): ``vmax(x, zp)``, one ``VOP max`` pass against ``zp`` vectors (``max_zp``, also the
clamp of a ReLU fused into linear, add or matmul when ``zp > -128``).

Layout in: an activation (``Nt · M`` words). Layout out: the same layout, in place when nothing else reads the
input. Cost: one VXU pass of ``Nt · M`` words (``Nt · M`` plus the MEM → VXU → MEM latency, a few cycles).
"""
import numpy as np

from ..phases import _vxu_pass
from .layout import _T

__all__ = ["lower_relu", "max_zp"]


def max_zp(lw, st, x, zp):
    """``vmax(x, zp)`` (a ReLU at the zero point) into ``st``'s output."""
    def body(out):
        zl = lw.const_vectors(f"zero point of '{st.name}'", np.full(lw.c.lanes, zp), len(x.region),
                            exclude=set(x.region.slices) | set(out.slices))
        _vxu_pass(lw.b, None, "max", x.region.locs, out.locs, b_locs=zl)
        return out

    out = lw.vxu_step(st, x, body)
    pad = None if x.pad is None else max(x.pad, zp)
    lw.T[st.name] = _T(st.name, "act", x.shape, out, pad)



def lower_relu(lw, st):
    max_zp(lw, st, lw.operand(st), st.params["zp"])
