"""``mul``: elementwise products, VXU passes with constant vectors from MEM and one requant (no new instruction).

* Two activations ``a``, ``b`` of the same shape (SwiGLU's ``silu(gate) * up``): ``acc = (q_a - zp_a)·(q_b -
  zp_b)`` (int32, ``|acc| <= 255**2``): ``VOP add`` of a and the ``-zp_a`` vectors into the output region
  (skipped when ``zp_a = 0``), ``VOP add`` of b and the ``-zp_b`` vectors into a scratch region (b's own when
  nothing else reads it and it shares no MEM slice with a's difference; skipped when ``zp_b = 0`` and the two
  share no slice, else a copy), ``VOP mul`` of the two into the output, ``VOP requant``
  (SETQ with the one multiplier ``s_a·s_b / s_out``); ``a * a`` takes a as both operands. The pad lanes
  hold ``requant((pad_a - zp_a)·(pad_b - zp_b))`` (unknown when a pad is).
* A constant of shape () or (N,) (``x * 0.5``, a per-feature scale): ``acc = q_a·k + c`` with ``k =
  round_half_away(b / s_k)``, ``s_k = max|b| / 2**15`` and ``c = -zp_a·k`` (per channel): ``VOP mul`` by the
  ``k`` vectors into the output, ``VOP add`` of the ``c`` vectors, ``VOP requant`` (multiplier ``s_a·s_k /
  s_out``); the pad lanes get ``k = 0`` and ``c = -2**31``, so they requantize to -128.

Layout in: one or two activations ``M × N`` (``Nt · M`` words). Layout out: the same layout (in a's region
when nothing else reads a). Cost: two activations, ``2 + [zp_a != 0] + [zp_b != 0 or a and b share a MEM
slice]`` VXU passes of ``Nt · M`` words (2 to 4); a constant, 3 passes. Each pass is ``Nt · M`` cycles plus
the MEM → VXU → MEM latency (a few cycles, ``relu.py``).
"""
import numpy as np

from golden import vxu as gvxu

from ..phases import _bias_reps, _vxu_pass
from .elementwise import operands, scratch
from .layout import _T, _pack_channels

__all__ = ["lower_mul"]


def lower_mul(lw, st):
    """``(q_a - zp_a)·(q_b - zp_b)`` or ``q_a·k + c``, then one requant (module docstring)."""
    c = lw.c
    p, rq = st.params, st.params["requant"]
    node, _, a, bt, M, N, Nt = operands(lw, st, "multiplies", len(st.inputs) == 2)
    mult = int(rq.mult.reshape(-1)[0])
    assert np.all(rq.mult == mult), "mul: one requant multiplier for every channel"
    setq = gvxu.RequantParams(mult, rq.shift, rq.zp)
    a_sl = set(a.region.slices)
    b_sl = set(bt.region.slices) if bt is not None else set()
    reps = _bias_reps(c, M, Nt)
    desc = f"int32 ({N},) as {Nt} tiles x {reps} copies"

    def minus_zp(src, zp, dst, what):
        zl = lw.const_vectors(f"-zp_{what} of '{node}'", np.full(c.lanes, -zp), len(src.locs),
                              exclude=set(src.slices) | set(dst.slices))
        _vxu_pass(lw.b, None, "add", src.locs, dst.locs, b_locs=zl)

    def two(out):
        o_sl = set(out.slices)
        a_src = a.region
        if p["zp_a"] != 0:
            minus_zp(a.region, p["zp_a"], out, "a")
            a_src = out
        b_src = bt.region
        s_sl = set(a_src.slices)
        if p["zp_b"] != 0 or s_sl & b_sl:                     # (a copy when a and b share a MEM slice)
            if lw.in_place_ok(bt) and bt.region is not out and not s_sl & b_sl:
                tmp = bt.region
            else:
                tmp = scratch(lw, f"b - zp_b of '{node}'", Nt * M, (s_sl | o_sl | b_sl, s_sl | b_sl, s_sl, ()),
                              f"int32 {M} x {N} as {Nt} tiles x {M} words")
            minus_zp(bt.region, p["zp_b"], tmp, "b")
            b_src = tmp
        _vxu_pass(lw.b, None, "mul", a_src.locs, out.locs, b_locs=b_src.locs)
        _vxu_pass(lw.b, None, "requant", out.locs, out.locs, setq=setq)
        return out

    def const(out):
        o_sl = set(out.slices)
        locs = lambda r: lw.channel_locs(r, reps, M, Nt)      # noqa: E731
        k = np.broadcast_to(np.asarray(p["k"], np.int64).reshape(-1), (N,))
        cv = np.broadcast_to(np.asarray(p["c"], np.int64).reshape(-1), (N,))
        kr = lw.const(f"k of '{node}'", _pack_channels(k, c, reps, 0), exclude=a_sl | o_sl, granule=reps,
                      desc=desc, avoid=", on MEM slices holding neither a nor the output")
        _vxu_pass(lw.b, None, "mul", a.region.locs, out.locs, b_locs=locs(kr))
        cr = lw.const(f"c of '{node}'", _pack_channels(cv, c, reps, gvxu.INT32_MIN), exclude=o_sl,
                      granule=reps, desc=desc, avoid=", on MEM slices not holding the products")
        _vxu_pass(lw.b, None, "add", out.locs, out.locs, b_locs=locs(cr))
        _vxu_pass(lw.b, None, "requant", out.locs, out.locs, setq=setq)
        return out

    inplace = a.region if lw.in_place_ok(a) and (bt is None or bt.region is not a.region) else None
    z = lw.placed(f"'{st.name}'", Nt * M, f"int8 {M} x {N} as {Nt} tiles x {M} words",
                  two if bt is not None else const, busy=a_sl | b_sl, inplace=inplace)
    if bt is None:
        pad_acc = gvxu.INT32_MIN
    elif a.pad is None or bt.pad is None:
        pad_acc = None
    else:
        pad_acc = (a.pad - p["zp_a"]) * (bt.pad - p["zp_b"])
    pad = None if pad_acc is None else int(gvxu.requant(np.array([pad_acc]), mult, rq.shift, rq.zp)[0])
    lw.T[st.name] = _T(st.name, "act", lw.shape(lw.q.graph.node(node).shape), z, pad)
