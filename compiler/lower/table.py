"""``tanh``/``sigmoid``/``gelu``/``exp``/``silu`` (``table`` steps): ``LOADLUT`` of the 256-entry int8 table from MEM
(``ceil(256 / L)`` vectors, a constant), then one ``VOP lut`` pass.

Layout in: an activation (``Nt · M`` words). Layout out: the same layout, in place when nothing else reads the
input; the pad lanes become ``table[pad]``. Cost: ``ceil(256 / L)`` cycles of LOADLUT plus one VXU pass of
``Nt · M`` words.
"""

from spec import isa

from ..phases import _loadlut, _vxu_pass
from .layout import _T, _pack_table

__all__ = ["lower_table"]


def lower_table(lw, st):
    x = lw.operand(st)
    c = lw.c
    nt = isa.lut_vectors(c.lanes)
    tr = lw.const(f"table of '{st.name}'", _pack_table(st.params["table"], c), granule=nt,
                  desc=f"{st.params.get('func', 'table')}, 256 int8 entries as {nt} vectors")

    def body(out):
        _loadlut(lw.b, lw.b.end, tr)
        _vxu_pass(lw.b, None, "lut", x.region.locs, out.locs)
        return out

    out = lw.vxu_step(st, x, body)
    pad = None if x.pad is None else int(st.params["table"][x.pad & 0xFF])
    lw.T[st.name] = _T(st.name, "act", x.shape, out, pad)

