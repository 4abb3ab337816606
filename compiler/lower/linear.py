"""``linear`` (+ fused bias add and ReLU): the GEMM of ``compiler.phases`` (weight tiles double buffered, K
accumulation) with the int32 bias added at the VXU as the last K tile's results stream out (``_BiasAdd``), then
one ``VOP requantv`` pass: operand a the accumulators, operand b the per-channel multiplier vectors (``reps``
copies per N tile, lane ``j`` = ``mult[nt·C + j]``), ``shift``/``zp`` from a SETQ; a fused ReLU's clamp
(``Requant.clamp_needed``: ``zp > -128``) is a ``VOP max`` pass (``relu.max_zp``).

Layout in: an activation ``M × K`` (``Kt · M`` words). Layout out: an activation ``M × N`` (``Nt · M``
words); the pad lanes get the bias ``-2**31`` and the multiplier ``2**31 - 1``, so they requantize to the
value tracked as ``pad`` (usually -128). Constants: the weights (``Nt · Kt · R`` words), bias and multipliers
(``Nt · reps`` words each). Cost: ``Nt · Kt · M`` MATMUL items (back to back with at least 2 rows per tile),
plus the requant pass of ``Nt · M`` words (and the clamp pass). Needs a square MXU.
"""
import numpy as np

from golden import vxu as gvxu

from ..memory import MemoryFull
from ..phases import _bias_reps, _BiasAdd, _Gemm, _gemm_phase, _pack_w, _tiles, _ToMem, _vxu_pass
from .layout import _MULT_MAX, _T, _pack_channels
from .relu import max_zp

__all__ = ["lower_linear"]


def lower_linear(lw, st):
    x = lw.operand(st)
    c = lw.c
    layer = st.fused[0]                 # the linear node (st.name: the fused chain's output)
    if c.mxu_rows != c.mxu_cols:
        raise NotImplementedError(f"linear '{layer}': the lowering needs a square MXU (mxu_rows == "
                                  f"mxu_cols), so that a layer's result words are the next one's "
                                  f"activation words, not {c.mxu_rows} x {c.mxu_cols}")
    if not lw.relaxed:
        return _linear(lw, st, x, layer, fused=True)
    snap = lw.snapshot()                # relaxed: when the bias finds no slice its reads may share, a pass
    try:                                # of its own after the GEMM
        return _linear(lw, st, x, layer, fused=True)
    except ValueError as e:
        if isinstance(e, MemoryFull) and e.hopeless:
            raise
        lw.restore(snap)
        try:
            return _linear(lw, st, x, layer, fused=False)
        except ValueError:
            raise e from None


def _linear(lw, st, x, layer, fused):
    """The GEMM with the bias added as its results stream out (``fused``), or added by a VXU pass of its
    own after it (the GEMM's results into MEM; the bias then shares a slice with the GEMM's operands)."""
    c = lw.c
    W, bias, rq = st.params["W"], st.params["bias"], st.params["requant"]
    (K, N), M = W.shape, x.rows
    R, C = c.mxu_rows, c.mxu_cols
    Kt, Nt = _tiles(K, R), _tiles(N, C)
    xs = set(x.region.slices)
    w = lw.const(f"W of '{layer}'", _pack_w(W, c), exclude=xs, granule=R,
                 desc=f"int8 {K} x {N} as {Nt} x {Kt} tiles x {R} rows",
                 avoid=", on MEM slices not holding its activations")
    reps = _bias_reps(c, M, Nt)
    chdesc = f"int32 ({N},) as {Nt} tiles x {reps} copies"
    biases = _pack_channels(bias.astype(np.int64), c, reps, gvxu.INT32_MIN)
    bl = None
    if fused:
        bl = lw.const(f"bias of '{layer}'", biases, exclude=xs | set(w.slices), granule=reps, desc=chdesc,
                      avoid=", on MEM slices holding neither its activations nor its weights")
    mults = _pack_channels(rq.mult.astype(np.int64), c, reps, _MULT_MAX)

    def body(z):
        b = lw.b
        acc = ", on MEM slices not holding its accumulators"
        bz = bl if fused else lw.const(f"bias of '{layer}'", biases, exclude=set(z.slices), granule=reps,
                                       desc=chdesc, avoid=acc)
        mult = lw.const(f"multipliers of '{layer}'", mults, exclude=set(z.slices), granule=reps, desc=chdesc,
                        avoid=acc)
        g = _Gemm(M, K, N, x.region, w)
        if fused:
            mm = _gemm_phase(b, b.end, g, _BiasAdd(b, z, bz, reps, M))
        else:
            mm = _gemm_phase(b, b.end, g, _ToMem(b, z, M))
            _vxu_pass(b, None, "add", z.locs, z.locs, b_locs=lw.channel_locs(bz, reps, M, Nt))
        _vxu_pass(b, None, "requantv", z.locs, z.locs, b_locs=lw.channel_locs(mult, reps, M, Nt),
                  setq=gvxu.RequantParams(1, rq.shift, rq.zp))
        lw.matmuls += mm
        return z

    z = lw.placed(f"'{st.name}'", Nt * M, f"int8 {M} x {N} as {Nt} tiles x {M} words", body,
                  busy=xs | set(w.slices) | set(bl.slices if bl else ()))
    pad = int(gvxu.requantv(np.array([gvxu.INT32_MIN]), np.array([_MULT_MAX]), rq.shift, rq.zp)[0])
    shape = lw.shape(lw.q.graph.node(st.fused[-1]).shape)
    t = _T(st.name, "act", shape, z, pad)
    lw.T[st.name] = t
    if rq.clamp_needed:
        max_zp(lw, st, t, rq.zp)
