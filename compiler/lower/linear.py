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

from ..memory import MemoryFull, Region
from ..phases import _bias_reps, _BiasAdd, _Gemm, _gemm_phase, _gemm_prefetched, _pack_w, _tiles, _ToMem, _vxu_pass
from .layout import _MULT_MAX, _T, _pack_channels
from .relu import max_zp

__all__ = ["lower_linear", "lower_sibling_linears", "weights"]


def weights(lw, name, W, xs):
    """The constant of int8 ``W`` (K × N) packed as MXU tiles, on MEM slices not in ``xs`` (the activations')."""
    c = lw.c
    (K, N), R = W.shape, c.mxu_rows
    return lw.const(name, _pack_w(W, c), exclude=xs, granule=R,
                    desc=f"int8 {K} x {N} as {_tiles(N, c.mxu_cols)} x {_tiles(K, R)} tiles x {R} rows",
                    avoid=", on MEM slices not holding its activations", weights=True)


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
    Nt = _tiles(N, c.mxu_cols)
    xs = set(x.region.slices)
    w = weights(lw, f"W of '{layer}'", W, xs)
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
            mm = (_gemm_prefetched if lw.prefetch else _gemm_phase)(b, b.end, g, _BiasAdd(b, z, bz, reps, M))
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


def lower_sibling_linears(lw, steps):
    """Linears of one input, none with a fused ReLU (a transformer's q, k, v projections), as one GEMM: their
    weights side by side, each starting on an N tile, the biases added as the results stream out, then one
    ``requantv`` pass per linear over its tiles (its own shift and zero point). Each output is its linear's
    tiles of the result (``Lowering.parents`` keeps the whole result while any of them is read). Cost: one
    GEMM's fill and drain instead of one per linear."""
    c = lw.c
    x = lw.operand(steps[0])
    if c.mxu_rows != c.mxu_cols:
        raise NotImplementedError(f"linear '{steps[0].fused[0]}': the lowering needs a square MXU")
    R, C = c.mxu_rows, c.mxu_cols
    M = x.rows
    K = steps[0].params["W"].shape[0]
    Nts = [_tiles(st.params["W"].shape[1], C) for st in steps]
    Nt = sum(Nts)
    reps = _bias_reps(c, M, Nt)
    Wcat = np.concatenate([np.pad(st.params["W"], ((0, 0), (0, nt * C - st.params["W"].shape[1])))
                           for st, nt in zip(steps, Nts)], axis=1)
    names = " + ".join(st.fused[0] for st in steps)
    xs = set(x.region.slices)
    w = lw.const(f"W of '{names}'", _pack_w(Wcat, c), exclude=xs, granule=R,
                 desc=f"int8 {K} x {Wcat.shape[1]} as {Nt} x {_tiles(K, R)} tiles x {R} rows",
                 avoid=", on MEM slices not holding its activations", weights=True)
    chdesc = f"int32 ({Nt * C},) as {Nt} tiles x {reps} copies"
    biases = np.concatenate([_pack_channels(st.params["bias"].astype(np.int64), c, reps, gvxu.INT32_MIN)
                             for st in steps])
    mults = np.concatenate([_pack_channels(st.params["requant"].mult.astype(np.int64), c, reps, _MULT_MAX)
                            for st in steps])
    bl = lw.const(f"bias of '{names}'", biases, exclude=xs | set(w.slices), granule=reps, desc=chdesc,
                  avoid=", on MEM slices holding neither its activations nor its weights")

    def body(z):
        b = lw.b
        mult = lw.const(f"multipliers of '{names}'", mults, exclude=set(z.slices), granule=reps, desc=chdesc,
                        avoid=", on MEM slices not holding its accumulators")
        gemm = _gemm_prefetched if lw.prefetch else _gemm_phase
        mm = gemm(b, b.end, _Gemm(M, K, Nt * C, x.region, w), _BiasAdd(b, z, bl, reps, M))
        ml = lw.channel_locs(mult, reps, M, Nt)
        t0 = 0
        for st, nt in zip(steps, Nts):
            rq = st.params["requant"]
            part = slice(t0 * M, (t0 + nt) * M)
            _vxu_pass(b, None, "requantv", z.locs[part], z.locs[part], b_locs=ml[part],
                      setq=gvxu.RequantParams(1, rq.shift, rq.zp))
            t0 += nt
        lw.matmuls += mm
        return z

    z = lw.placed(f"'{names}'", Nt * M, f"int8 {M} x {Nt * C} as {Nt} tiles x {M} words", body,
                  busy=xs | set(w.slices) | set(bl.slices))
    t0 = 0
    for st, nt in zip(steps, Nts):
        rq = st.params["requant"]
        pad = int(gvxu.requantv(np.array([gvxu.INT32_MIN]), np.array([_MULT_MAX]), rq.shift, rq.zp)[0])
        part = Region(f"'{st.name}' (tiles {t0} … {t0 + nt - 1} of '{names}')", c, z.locs[t0 * M:(t0 + nt) * M])
        lw.T[st.name] = _T(st.name, "act", lw.shape(lw.q.graph.node(st.fused[-1]).shape), part, pad)
        lw.parents[st.name] = z
        t0 += nt
