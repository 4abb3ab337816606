"""``matmul`` ``a @ b`` of two activations, ``a`` (M, K) and ``b`` (K, N), every term on the MXU
(``docs/compiler.md`` explains the algebra): ``b`` as MXU weights (a ``VOP mul`` relayout by 0/1 lane masks,
skipped when ``b``'s words already are the weight words), ``-zp_b · rowsum(q_a)`` as extra K tiles against
constant weight tiles, ``-zp_a · colsum(q_b) + K · zp_a · zp_b`` as the GEMM's bias (a small GEMM of constant
rows first), then one requant pass and a fused ReLU's clamp.

Layout in: two activations (``Kt · M`` and ``Nt · K`` words). Layout out: an activation ``M × N`` (``Nt · M``
words; pad lanes requantize to ``zp``). Cost: ``Nt · Kt · (1 + n_b) · (M + n_a · reps)`` MATMUL items
(``n_a``, ``n_b`` ∈ {0, 1, 2}: the int8 parts of ``-zp_a``, ``-zp_b``), plus the relayout pass (``Nt · Kt ·
R`` words) and the requant pass (``Nt · M`` words). Its scratch regions and constants are placed by up to
``_MATMUL_PLANS`` plans until one schedules. A non-square MXU: ``NotImplementedError`` naming the node.
"""
import numpy as np

from golden import vxu as gvxu

from ..memory import Region
from ..phases import _bias_reps, _BiasAdd, _Gemm, _gemm_phase, _tiles, _ToMem, _vxu_pass
from .layout import _MULT_MAX, _T, _int8_parts, _pack_channels
from .relu import max_zp

__all__ = ["lower_matmul"]

#: Placements of a matmul's scratch regions and constants tried (when one does not schedule).
_MATMUL_PLANS = 4


def lower_matmul(lw, st):
    """``a @ b`` of two activations (module docstring): ``b`` relaid out as MXU weights (a ``VOP mul`` by
    lane masks), ``-zp_b · rowsum(q_a)`` folded into extra K tiles of the GEMM (constant weight tiles),
    ``-zp_a · colsum(q_b) + K · zp_a · zp_b`` its bias, computed by a small GEMM of constant activation
    rows against the same weights; then one ``requant`` pass (and a fused ReLU's clamp); the direct
    relayout first when it applies, then ``_MATMUL_PLANS`` placements, until one schedules."""
    c = lw.c
    node = st.fused[0]
    where = f"matmul '{node}'"
    if c.mxu_rows != c.mxu_cols:
        raise NotImplementedError(f"{where}: the lowering needs a square MXU (mxu_rows == mxu_cols), not "
                                  f"{c.mxu_rows} x {c.mxu_cols}")
    a = lw.act(lw.T[st.inputs[0]], where)
    bt = lw.act(lw.T[st.inputs[1]], where)
    if len(a.shape) != 2 or len(bt.shape) != 2 or bt.rows != a.features:
        raise NotImplementedError(f"{where}: the lowering multiplies two 2-D activations (M, K) @ (K, N) "
                                  f"only, not {a.shape} @ {bt.shape} (no batched matmul)")
    R = C = c.mxu_cols
    K, N = a.features, bt.features
    # b's words are already the weight words when there is no padding to clear (then tried first)
    direct = (K % R == 0 and (N % C == 0 or bt.pad == 0) and c.lanes == C
              and not set(a.region.slices) & set(bt.region.slices)
              and all(len({q < lw.mxu for q, _, _ in bt.region.locs[i:i + R]}) == 1
                      for i in range(0, len(bt.region), R)))
    if not direct and "mul" not in c.vxu_ops:
        raise NotImplementedError(f"{where}: the lowering needs the VXU operation 'mul' (to lay b out as "
                                  f"MXU weights), which config {c.name} lacks")
    tries = [(True, 0)] * direct + [(False, plan) for plan in range(_MATMUL_PLANS) if "mul" in c.vxu_ops]
    first = None
    snap = lw.snapshot()
    for d, plan in tries:
        try:
            return _lowered(lw, st, a, bt, d, plan)
        except ValueError as e:
            first = first or e
            lw.restore(snap)
    raise first


def _lowered(lw, st, a, bt, direct, plan):
    """``lower_matmul`` with b read in place as the weights (``direct``) or relaid out first; ``plan``:
    which of the placements of its constants and scratch regions (``Lowering.pref_region``)."""
    c = lw.c
    node = st.fused[0]
    p, rq = st.params, st.params["requant"]
    (M, K), N = (a.rows, a.features), bt.features
    R = C = c.mxu_cols
    L = c.lanes
    Kt, Nt = _tiles(K, R), _tiles(N, C)
    kr, nr = K - (Kt - 1) * R, N - (Nt - 1) * C        # rows of the last K tile, lanes of the last N tile
    row_parts = _int8_parts(-int(p["zp_b"]))            # extra K tiles: q_a @ (u · ones), sum(u) = -zp_b
    col_parts = _int8_parts(-int(p["zp_a"]))            # bias GEMM: (v · ones) @ q_b, sum(v) = -zp_a
    reps = _bias_reps(c, M, Nt)
    mems = set(c.positions("mem"))
    A, B = set(a.region.slices), set(bt.region.slices)
    chdesc = f"int32 ({N},) as {Nt} tiles x {reps} copies"
    if direct:
        wb = bt.region
    else:
        wb = lw.pref_region("scratch", f"b of '{node}' as weights", Nt * Kt * R, [A | B, A, ()], plan,
                            granule=R, desc=f"int8 {K} x {N} as {Nt} x {Kt} tiles x {R} rows")
    W = set(wb.slices)
    H = {}                              # (part, rows, lanes) -> a constant weight tile
    for j, u in enumerate(row_parts):
        for rows in sorted({R if kt < Kt - 1 else kr for kt in range(Kt)}):
            for width in sorted({C if nt < Nt - 1 else nr for nt in range(Nt)}):
                t = np.zeros((R, L), np.int64)
                t[:rows, :width] = u
                H[j, rows, width] = lw.pref_region(
                 "const", f"rowsum weights {j} ({rows} x {width}) of '{node}'", R,
                 [mems - W, A, ()] if plan % 2 == 0 else [A, ()], plan, t, granule=R,
                 desc=f"{R} rows of {u}", avoid=", on MEM slices not holding its activations")
                W |= set(H[j, rows, width].slices)
    bias = None                         # -zp_a · colsum(q_b) + K · zp_a · zp_b, when zp_a != 0
    if col_parts:
        bias = lw.pref_region("scratch", f"bias of '{node}'", Nt * reps, [A | W, A, ()], plan, granule=reps,
                              desc=chdesc)
    Bi = set(bias.slices) if bias is not None else set()
    wmain = []
    for nt in range(Nt):
        wmain += wb.locs[nt * Kt * R:(nt + 1) * Kt * R]
        for j in range(len(row_parts)):
            for kt in range(Kt):
                wmain += H[j, R if kt < Kt - 1 else kr, C if nt < Nt - 1 else nr].locs
    Kx = (1 + len(row_parts)) * Kt            # K tiles of the main GEMM
    main = _Gemm(M, Kx * R, N, Region(f"a of '{node}'", c, a.region.locs * (1 + len(row_parts))),
                 Region(f"weights of '{node}'", c, wmain))
    if col_parts:                       # the bias: (v · ones) @ [q_b; u · ones] (reps rows)
        hv = np.zeros((len(col_parts) * reps, L), np.int64)
        for j, v in enumerate(col_parts):
            hv[j * reps:(j + 1) * reps, :R] = v
        hv = lw.pref_region("const", f"colsum activations of '{node}'", len(hv), [W | Bi, W], plan, hv,
                            granule=reps, desc=f"{len(col_parts)} x {reps} constant rows",
                            avoid=", on MEM slices not holding its weights")
        xl = [hv.locs[(kt // Kx) * reps + m] for kt in range(len(col_parts) * Kx) for m in range(reps)]
        wl = [w for nt in range(Nt) for _ in col_parts for w in wmain[nt * Kx * R:(nt + 1) * Kx * R]]
        colsum = _Gemm(reps, len(col_parts) * Kx * R, N, Region(f"colsum activations of '{node}'", c, xl),
                       Region(f"colsum weights of '{node}'", c, wl))
    if not direct:                      # relayout: b words times lane masks (0 past N, 0 rows past K)
        width = {"full": C, "part": nr, "zero": 0}
        kinds = []                      # the mask of each weight word
        src = []                        # the b word it comes from
        for nt in range(Nt):
            for k in range(Kt * R):
                src.append(bt.region.locs[nt * K + min(k, K - 1)])
                part = nt == Nt - 1 and nr < C and bt.pad != 0
                kinds.append("zero" if k >= K else "part" if part else "full")
        # a few copies of each mask (few READs), or (later plans, or when MEM is short) one mask per word:
        # one READ run, whose issue cycles cannot collide with the WRITEs of the weights on the same slice
        used = list(dict.fromkeys(kinds))
        per_word = plan >= _MATMUL_PLANS // 2
        for mreps in dict.fromkeys(([0] if per_word else []) + [min(R, len(wb)), 1]):
            if mreps:
                md = np.zeros((len(used) * mreps, L), np.int64)
                for i, kd in enumerate(used):
                    md[i * mreps:(i + 1) * mreps, :width[kd]] = 1
            else:
                md = np.zeros((len(kinds), L), np.int64)
                for i, kd in enumerate(kinds):
                    md[i, :width[kd]] = 1
            try:
                masks = lw.pref_region("const", f"lane masks of '{node}'", len(md), [B | W, B], plan, md,
                                       granule=mreps or 1, desc=f"{len(md)} 0/1 vectors",
                                       avoid=", on MEM slices not holding b")
                break
            except ValueError:
                if mreps == 1:
                    raise
        if mreps:
            msk = [masks.locs[used.index(kd) * mreps + w % mreps] for w, kd in enumerate(kinds)]
        else:
            msk = masks.locs
    mult = int(rq.mult.reshape(-1)[0])
    one_mult = "requant" in c.vxu_ops and bool(np.all(rq.mult == mult))    # quantize gives one multiplier

    def body(z):
        b = lw.b
        mm = 0
        if not direct:
            _vxu_pass(b, None, "mul", src, wb.locs, b_locs=msk)
        if col_parts:
            mm += _gemm_phase(b, b.end, colsum, _ToMem(b, bias, reps))
        sink = _BiasAdd(b, z, bias, reps, M) if bias is not None else _ToMem(b, z, M)
        mm += _gemm_phase(b, b.end, main, sink)
        if one_mult:
            _vxu_pass(b, None, "requant", z.locs, z.locs, setq=gvxu.RequantParams(mult, rq.shift, rq.zp))
        else:
            mr = lw.const(f"multipliers of '{node}'", _pack_channels(rq.mult.astype(np.int64), c, reps,
                                                                     _MULT_MAX),
                          exclude=set(z.slices), granule=reps, desc=chdesc,
                          avoid=", on MEM slices not holding its accumulators")
            _vxu_pass(b, None, "requantv", z.locs, z.locs, b_locs=lw.channel_locs(mr, reps, M, Nt),
                   setq=gvxu.RequantParams(1, rq.shift, rq.zp))
        lw.matmuls += mm
        return z

    z = lw.placed(f"'{st.name}'", Nt * M, f"int8 {M} x {N} as {Nt} tiles x {M} words", body,
                  busy=A | W | Bi)
    pad = rq.zp                         # padding lanes: 0 + 0 accumulated, requantized to zp
    t = _T(st.name, "act", lw.out_shape(st), z, pad)
    lw.T[st.name] = t
    if rq.clamp_needed:
        max_zp(lw, st, t, rq.zp)

