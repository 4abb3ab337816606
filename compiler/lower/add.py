"""``add``: ``acc = q_a·m_a + q_b·m_b + c`` (int32), then one requant; a and b activations of the same shape,
or b a folded constant with ``c`` per channel. VXU passes with constant vectors from MEM (lanes past the
features: multiplier 0 and ``c = -2**31``, so the padding requantizes to -128): ``VOP mul`` of a by the
``m_a`` vectors into the output region, ``VOP mul`` of b by the ``m_b`` vectors into a scratch region (b's
own region when nothing else reads it), ``VOP add`` of the two, ``VOP add`` of the ``c`` vectors, ``VOP
requant`` (SETQ with the one multiplier), a fused ReLU's clamp as for linear.

A constant varying along the rows but not the batch (learned positions: ``x + wpe[:T]``, x (B, T, D), a (T,
D) constant) is materialized for the whole batch: ``c`` broadcast to x's shape, packed in the activation
layout (``Nt · M`` int32 words, M = B·T, lanes past the features ``-2**31``), a constant in MEM read word for
word by the same ``VOP add`` pass.

Layout in: one or two activations ``M × N`` (``Nt · M`` words). Layout out: the same layout (in a's region
when nothing else reads a). Cost: 3 VXU passes of ``Nt · M`` words (5 with b, 6 with a clamp), a row-varying
constant too (plus its ``Nt · M`` words of MEM). Broadcasting adds of two activations, a constant that does
not broadcast to x: ``NotImplementedError`` naming the node.
"""
import numpy as np

from golden import vxu as gvxu

from ..phases import _bias_reps, _setq_early, _vxu_pass
from .elementwise import operands, scratch
from .layout import _T, _pack_act, _pack_channels
from .relu import max_zp

__all__ = ["lower_add"]


def lower_add(lw, st):
    """``acc = q_a·m_a + q_b·m_b + c`` (int32), one requant, a fused ReLU (module docstring)."""
    c = lw.c
    p, rq = st.params, st.params["requant"]
    node, where, a, bt, M, N, Nt = operands(lw, st, "adds", p["m_b"] is not None)
    cv = np.asarray(p["c"], np.int64)
    rows_c = None                      # a constant varying along the rows: (M, N), every batch row's copy
    if cv.size != 1 and not (cv.ndim >= 1 and cv.shape[-1] == N and cv.size == N):
        try:
            rows_c = np.broadcast_to(cv, a.shape).reshape(M, N)
        except ValueError:
            raise NotImplementedError(f"{where}: the lowering adds a constant broadcast along the leading axes "
                                      f"of {a.shape} only, not of shape {np.shape(p['c'])}") from None
    cvec = np.broadcast_to(cv.reshape(-1), (N,)) if rows_c is None else None
    reps = _bias_reps(c, M, Nt)
    locs = lambda r: lw.channel_locs(r, reps, M, Nt)      # noqa: E731
    desc = f"int32 ({N},) as {Nt} tiles x {reps} copies"
    mult = int(rq.mult.reshape(-1)[0])
    assert np.all(rq.mult == mult), "add: one requant multiplier for every channel"
    a_sl = set(a.region.slices)
    b_sl = set(bt.region.slices) if bt is not None else set()

    def body(out):
        b = lw.b
        o_sl = set(out.slices)
        ma = lw.const(f"m_a of '{node}'", _pack_channels(np.full(N, p["m_a"], np.int64), c, reps, 0),
                      exclude=a_sl | o_sl, granule=reps, desc=desc,
                      avoid=", on MEM slices holding neither a nor the output")
        if bt is not None:
            if lw.in_place_ok(bt) and bt.region is not out:
                tmp = bt.region
            else:
                tmp = scratch(lw, f"b * m_b of '{node}'", Nt * M, (o_sl | b_sl, o_sl, ()),
                              f"int32 {M} x {N} as {Nt} tiles x {M} words")
            mb = lw.const(f"m_b of '{node}'", _pack_channels(np.full(N, p["m_b"], np.int64), c, reps, 0),
                          exclude=b_sl | set(tmp.slices), granule=reps, desc=desc,
                          avoid=", on MEM slices holding neither b nor its product")
        if rows_c is None:
            cr = lw.const(f"c of '{node}'", _pack_channels(cvec, c, reps, gvxu.INT32_MIN), exclude=o_sl,
                          granule=reps, desc=desc, avoid=", on MEM slices not holding the sums")
            c_locs = locs(cr)
        else:
            c_locs = lw.const(f"c of '{node}'", _pack_act(rows_c, c, gvxu.INT32_MIN), exclude=o_sl,
                              desc=f"int32 {M} x {N} as {Nt} tiles x {M} words",
                              avoid=", on MEM slices not holding the sums").locs
        setq = gvxu.RequantParams(mult, rq.shift, rq.zp)
        a_prod = dict(op="mul", a=a.region.locs, out=out.locs, b_locs=locs(ma))
        plus_c = dict(op="add", a=out.locs, out=out.locs, b_locs=c_locs)
        if b.eager:
            # in chain order (phases._chained_pass; the sums wrap, so their order does not change them): a's
            # product right after the pass that made a, + c, then the SETQ and b's product (b is older: its
            # READs wait for nothing), + b's product chained to it, the requant chained to that
            if bt is not None:
                passes = [a_prod, plus_c, "setq", dict(op="mul", a=bt.region.locs, out=tmp.locs, b_locs=locs(mb)),
                          dict(op="add", a=tmp.locs, out=out.locs, b_locs=out.locs)]
            else:           # the SETQ first: none fits between two chained passes of four items
                passes = ["setq", a_prod, plus_c]
            passes.append(dict(op="requant", a=out.locs, out=out.locs))
        else:
            passes = [a_prod]
            if bt is not None:
                passes += [dict(op="mul", a=bt.region.locs, out=tmp.locs, b_locs=locs(mb)),
                           dict(op="add", a=out.locs, out=out.locs, b_locs=tmp.locs)]
            passes += [plus_c, dict(op="requant", a=out.locs, out=out.locs, setq=setq)]
        for kw in passes:
            if kw == "setq":
                _setq_early(b, setq)
            else:
                kw = dict(kw)
                _vxu_pass(b, None, kw.pop("op"), kw.pop("a"), kw.pop("out"), **kw)
        return out

    inplace = a.region if lw.in_place_ok(a) and (bt is None or bt.region is not a.region) else None
    z = lw.placed(f"'{st.name}'", Nt * M, f"int8 {M} x {N} as {Nt} tiles x {M} words", body,
                  busy=a_sl | b_sl, inplace=inplace)
    pad = int(gvxu.requant(np.array([gvxu.INT32_MIN]), mult, rq.shift, rq.zp)[0])
    t = _T(st.name, "act", lw.shape(lw.q.graph.node(st.fused[-1]).shape), z, pad)
    lw.T[st.name] = t
    if rq.clamp_needed:
        max_zp(lw, st, t, rq.zp)

