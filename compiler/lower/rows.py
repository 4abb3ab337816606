"""``norm`` (layernorm, rmsnorm) and ``softmax`` steps: the row operations of ``compiler/quantize/rows.py``, pass
for pass, on the VXU (``lsum``/``lmax`` reduce a word's lanes and broadcast the result; a row of ``Nt`` words
is first combined word by word with ``add``/``max``).

Row statistics (sums, maxima, ``rsqrt``/``recip`` of them) live in scratch regions of ``M`` words, one word
per row, every lane the same value, and are read once per tile where a tile needs them (``M`` words repeated
``Nt`` times in one pass). Constants (``-1``, ``N``, ``ε_q``, ``K``, the masks) are vectors in MEM
(``const_vectors``), per-channel ones (``C``) packed as for biases.

Padding (``N`` not a multiple of ``C``): the lanes past the features are zeroed before the sums of a norm
(``VOP mul`` by a 0/1 mask) and pushed to ``-2**30`` before the maximum of a softmax (``VOP add``), so they
take no part in a row's statistics; their output is unspecified (``pad = None``).

Layout in: an activation ``M × N`` (``Nt · M`` words). Layout out: the same layout (in place when nothing
else reads the input). Cost (passes, each its words plus the MEM → VXU → MEM latency): layernorm ``3·Nt + 9``
(+1 with padding, +3 with a bias), rmsnorm ``2·Nt + 5 + …``, softmax ``6·Nt + 5`` plus two LOADLUTs.
"""
import numpy as np

from golden import vxu as gvxu
from spec import isa

from ..phases import _bias_reps, _loadlut, _setq_early, _tiles, _vxu_pass
from ..quantize.rows import MASK_NEG, SOFTMAX_QP, SOFTMAX_SHIFT
from .elementwise import scratch
from .layout import _T, _pack_act, _pack_channels, _pack_table

__all__ = ["lower_norm", "lower_softmax"]

_NEEDS = {"norm": ("add", "mul", "lsum", "rsqrt", "requantv"), "argmax": ("add", "mul", "max", "lmax", "relu"),
          "softmax": ("add", "mul", "max", "lmax", "lsum", "recip", "requant", "lut", "requantv")}


class _Rows:
    """The passes of one row step: ``x`` (an activation), scratch regions, constants, all from ``lw.b.end``."""

    def __init__(self, lw, st, x):
        self.lw, self.st, self.x = lw, st, x
        c = lw.c
        self.c = c
        self.where = f"{st.op} '{st.name}'"
        for op in _NEEDS[st.op]:
            if op not in c.vxu_ops:
                raise NotImplementedError(f"{self.where}: the lowering needs the VXU operation {op!r}, which "
                                          f"config {c.name} lacks")
        self.M, self.N = x.rows, x.features
        self.Nt = _tiles(self.N, c.mxu_cols)
        self.n = 0

    def tile(self, region, nt):
        return region.locs[nt * self.M:(nt + 1) * self.M]

    def scratch(self, what, avoid=(), words=None):
        self.n += 1
        n = self.M if words is None else words
        return scratch(self.lw, f"{what} of '{self.st.name}'", n, (set(avoid), ()),
                       f"int32 {self.M} rows" + ("" if words is None else f" x {self.Nt} tiles"))

    def vec(self, what, value, n, avoid):
        return self.lw.const_vectors(f"{what} of '{self.st.name}'", np.full(self.c.lanes, value, np.int64), n,
                                     exclude=set(avoid))

    def op(self, vop, a, out, b=None, setq=None, same=False):
        _vxu_pass(self.lw.b, None, vop, a, out, b_locs=b, setq=setq, same=same)

    def pad_mask(self, values):
        """The lanes of the last tile: ``values[0]`` on the features, ``values[1]`` past them."""
        v = np.full(self.c.lanes, values[1], np.int64)
        v[:self.N - (self.Nt - 1) * self.c.mxu_cols] = values[0]
        return v

    def reduce(self, tiles, vop, lane_op, what, pre=None):
        """A region of ``M`` words: ``lane_op`` (``lsum``/``lmax``) of each tile (after ``pre``: ``"square"``,
        a ``mul`` of the tile by itself), the tiles' results combined by ``vop`` (``add``/``max``) in a tree;
        equal to ``lane_op`` of the whole row (both are associative and commutative, the sum wrapping). One pass
        for the squares, one for the lane operation of every tile, then ``ceil(log2 Nt)`` passes, each pairing
        values kept on two different slices (the two operands of a pass are read at once)."""
        M = self.M
        busy = set().union(*(sl for _, sl in tiles))
        groups = [list(locs) for locs, _ in tiles]
        if self.lw.b.eager and M <= isa.VXU_PIPELINE and len(groups) > 1:
            return self.chain_reduce(groups, busy, vop, lane_op, what, pre)
        if pre == "square":
            sq = self.scratch(f"{what} (squares)", avoid=busy, words=len(groups) * M)
            self.op("mul", [loc for g in groups for loc in g], sq.locs, same=True)
            groups = [sq.locs[t * M:(t + 1) * M] for t in range(len(groups))]
            busy |= set(sq.slices)
        src = [loc for g in groups for loc in g]
        level, ea = 0, None
        while True:
            n = len(groups)
            if n == 1 and level:                    # the last pass wrote one value: its even region
                return ea
            pairs = n // 2
            if n == 1:                              # one tile: its lane operation is the result
                acc = self.scratch(what, avoid=busy)
                self.op(lane_op, groups[0], acc.locs)
                return acc
            # outputs of this pass: value j into region A (even j) or B (odd j), on different slices
            outs = (pairs if level else n)
            ea = self.scratch(f"{what} (level {level}, even)", avoid=busy, words=-(-outs // 2) * M)
            ob = (self.scratch(f"{what} (level {level}, odd)", avoid=busy | set(ea.slices), words=(outs // 2) * M)
                  if outs > 1 else None)
            dst = [(ea if j % 2 == 0 else ob).locs[(j // 2) * M:(j // 2 + 1) * M] for j in range(outs)]
            if level == 0:
                self.op(lane_op, src, [loc for g in dst for loc in g])
                groups = dst
            else:
                a_l = [loc for j in range(pairs) for loc in groups[2 * j]]
                b_l = [loc for j in range(pairs) for loc in groups[2 * j + 1]]
                if {p for p, _, _ in a_l} & {p for p, _, _ in b_l}:      # a carried value shares a slice
                    cp = self.scratch(f"{what} (level {level}, moved)", avoid=busy | {p for p, _, _ in a_l},
                                      words=len(b_l))
                    self.op("max", b_l, cp.locs, same=True)
                    b_l = cp.locs
                self.op(vop, a_l, [loc for g in dst for loc in g], b=b_l)
                groups = dst + ([groups[-1]] if n % 2 else [])
            level += 1

    def chain_reduce(self, groups, busy, vop, lane_op, what, pre=None):
        """``reduce`` as one chain (an eager builder chains each pass to the one before,
        ``phases._chained_pass``; ``M`` at most ``VXU_PIPELINE`` words, so the items line up): ``vop`` of the
        first tile with ``vop``'s identity (0 for add, INT32_MIN for max: one operand from another slice),
        then of the running value with each further tile, then ``lane_op``: ``Nt + 1`` dependent passes of
        ``VXU_PIPELINE`` cycles each instead of ``ceil(log2 Nt)`` MEM round trips. With ``pre="square"`` the
        squares of tiles 1 … are one pass first, and the chain starts from the square of tile 0."""
        M = self.M
        if pre == "square":
            rest = [loc for g in groups[1:] for loc in g]
            sq = self.scratch(f"{what} (squares)", avoid=busy, words=len(rest))
            self.op("mul", rest, sq.locs, same=True)
            acc = self.scratch(what, avoid=busy | set(sq.slices))
            self.op("mul", groups[0], acc.locs, same=True)
            groups = [sq.locs[t * M:(t + 1) * M] for t in range(len(groups) - 1)]
        else:
            acc = self.scratch(what, avoid=busy)
            ident = self.vec(f"{vop} identity", 0 if vop == "add" else gvxu.INT32_MIN, M,
                             {p for p, _, _ in groups[0]} | set(acc.slices))
            self.op(vop, groups[0], acc.locs, b=ident)
            groups = groups[1:]
        for g in groups:
            self.op(vop, acc.locs, acc.locs, b=g)
        self.op(lane_op, acc.locs, acc.locs)
        return acc

    def repeat(self, region):
        """The words of ``region`` (``M``) once per tile."""
        return list(region.locs) * self.Nt


def _tile_list(R, region, masked_last=None):
    """``[(locs, slices)]`` of the tiles of ``region``, the last one replaced by ``masked_last`` when given."""
    tiles = [(R.tile(region, nt), set(region.slices)) for nt in range(R.Nt)]
    if masked_last is not None:
        tiles[-1] = (masked_last.locs, set(masked_last.slices))
    return tiles


def lower_norm(lw, st):
    """layernorm / rmsnorm (module docstring)."""
    x = lw.operand(st)
    R = _Rows(lw, st, x)
    p = st.params
    M, N, Nt, c = R.M, R.N, R.Nt, lw.c
    padded = N % c.mxu_cols != 0
    reps = _bias_reps(c, M, Nt)
    X = set(x.region.slices)

    def body(out):
        out_sl = set(out.slices)
        if p["kind"] == "layernorm":
            src = x.region
            masked = None
            if padded:          # zero the pad lanes of the last tile for the sums
                masked = R.scratch("x (pad lanes zeroed)", avoid=X)
                mask = R.lw.const_vectors(f"pad mask of '{st.name}'", R.pad_mask((1, 0)), M, exclude=X)
                R.op("mul", R.tile(src, Nt - 1), masked.locs, b=mask)
            tiles = _tile_list(R, src, masked)
            # The passes in the order that keeps each dependent one right after the one it uses, so that
            # an eager builder chains them (``phases._chained_pass``): N·x first (it needs only x), then
            # the sums, N·Q, the variance's chain down to its rsqrt, and d's chain into the output.
            D = R.scratch("d", avoid=X, words=Nt * M)
            R.op("mul", x.region.locs, D.locs, b=R.vec("N", N, Nt * M, X | set(D.slices)))
            S = R.reduce(tiles, "add", "lsum", "row sum")
            Q = R.reduce(tiles, "add", "lsum", "row sum of squares", pre="square")
            R.op("mul", Q.locs, Q.locs, b=R.vec("N", N, M, Q.slices))
            negS = R.scratch("-sum", avoid=set(S.slices) | set(D.slices))
            R.op("mul", S.locs, negS.locs, b=R.vec("-1", -1, M, S.slices))
            SS = R.scratch("-sum²", avoid=set(S.slices) | set(negS.slices) | set(Q.slices))
            R.op("mul", negS.locs, SS.locs, b=S.locs)
            V = R.scratch("variance", avoid=set(Q.slices) | set(SS.slices))
            R.op("add", SS.locs, V.locs, b=Q.locs)
        else:
            D = R.scratch("q - zp", avoid=X, words=Nt * M)
            R.op("add", x.region.locs, D.locs, b=R.vec("-zp", -p["zp_x"], Nt * M, X | set(D.slices)))
            dtiles = _tile_list(R, D)
            if padded:
                R.op("mul", R.tile(D, Nt - 1), R.tile(D, Nt - 1),
                     b=R.lw.const_vectors(f"pad mask of '{st.name}'", R.pad_mask((1, 0)), M, exclude=D.slices))
            V = R.reduce(dtiles, "add", "lsum", "row sum of squares", pre="square")
        R.op("add", V.locs, V.locs, b=R.vec("eps", p["eps_q"], M, V.slices))
        rs = R.scratch("rsqrt", avoid=D.slices)
        R.op("rsqrt", V.locs, rs.locs)
        setq = gvxu.RequantParams(1, p["shift"], p["zp_g"])
        if lw.b.eager:          # the SETQ now, so that the requantv chains to the multiply before it
            _setq_early(lw.b, setq)
            setq = None
        if p["kind"] == "layernorm":
            R.op("add", D.locs, D.locs, b=R.repeat(negS))
        Cr = lw.const(f"C of '{st.name}'", _pack_channels(np.asarray(p["C"], np.int64), c, reps, 0),
                      exclude=set(D.slices), granule=reps, desc=f"int32 ({N},) as {Nt} tiles x {reps} copies",
                      avoid=", on MEM slices not holding d")
        R.op("mul", D.locs, D.locs, b=lw.channel_locs(Cr, reps, M, Nt))
        R.op("requantv", D.locs, out.locs, b=R.repeat(rs), setq=setq)
        if p["beta"] is not None:
            bp = p["beta"]
            ma = R.vec("m_a", bp["m_a"], Nt * M, out_sl)
            R.op("mul", out.locs, out.locs, b=ma)
            cr = lw.const(f"beta of '{st.name}'", _pack_channels(np.asarray(bp["c"], np.int64), c, reps, 0),
                          exclude=out_sl, granule=reps, desc=f"int32 ({N},) as {Nt} tiles x {reps} copies",
                          avoid=", on MEM slices not holding the output")
            R.op("add", out.locs, out.locs, b=lw.channel_locs(cr, reps, M, Nt))
            rq = bp["requant"]
            R.op("requant", out.locs, out.locs, setq=gvxu.RequantParams(int(rq.mult.reshape(-1)[0]), rq.shift, rq.zp))
        return out

    out = lw.vxu_step(st, x, body)
    lw.T[st.name] = _T(st.name, "act", x.shape, out, None)


def lower_softmax(lw, st, mask=None):
    """softmax (module docstring); ``mask``: regions (copies on different MEM slices; the first on none of
    the input's slices is read) of ``Nt · M`` int32 words added to ``x`` first (0 where a position counts,
    ``MASK_NEG`` where it is masked and on the padding lanes), written by someone else (the host, for
    attention's causal mask in ``compiler/lm``); without it, the padding lanes get a constant one."""
    x = lw.operand(st)
    R = _Rows(lw, st, x)
    p = st.params
    M, N, Nt, c = R.M, R.N, R.Nt, lw.c
    padded = N % c.mxu_cols != 0
    X = set(x.region.slices)
    def table(which):
        words = _pack_table(p[f"table_{which}"], c)
        return lw.const(f"exp table ({which}) of '{st.name}'", words, granule=len(words),
                        desc=f"exp ({which} byte), 256 int8 entries as {len(words)} vectors")

    t_hi, t_lo = table("hi"), table("lo")

    def body(out):
        mr = None
        if mask is not None:
            mr = next((r for r in mask if not set(r.slices) & X), None)
            if mr is None:
                raise ValueError(f"{R.where}: every copy of the mask shares a MEM slice with the input")
        E = R.scratch("exp", avoid=X | (set(mr.slices) if mr is not None else set()), words=Nt * M)
        src = x.region
        if padded or mask is not None:             # masked lanes pushed below every code (into E)
            if mr is None:
                mr = lw.const(f"mask of '{st.name}'", _pack_act(np.zeros((M, N), np.int64), c, MASK_NEG),
                              exclude=X | set(E.slices), desc=f"int32 {M} x {N} as {Nt} tiles x {M} words")
            R.op("add", src.locs, E.locs, b=mr.locs)
            src = E
        m = R.reduce(_tile_list(R, src), "max", "lmax", "row max")
        negm = R.scratch("-max", avoid=set(m.slices) | set(E.slices) | set(src.slices))
        R.op("mul", m.locs, negm.locs, b=R.vec("-1", -1, M, m.slices))
        R.op("add", src.locs, E.locs, b=R.repeat(negm))
        R.op("requant", E.locs, E.locs, setq=gvxu.RequantParams(p["mult_t"], p["shift_t"], 0))
        H = R.scratch("exp (high byte)", avoid=E.slices, words=Nt * M)
        _loadlut(lw.b, None, t_hi)
        R.op("lut", E.locs, H.locs)
        _loadlut(lw.b, None, t_lo)
        R.op("lut", E.locs, E.locs)
        R.op("mul", H.locs, H.locs, b=R.vec("256", 256, Nt * M, H.slices))
        R.op("add", E.locs, E.locs, b=H.locs)
        Z = R.reduce(_tile_list(R, E), "add", "lsum", "row sum of exp")
        r = R.scratch("recip", avoid=E.slices)
        R.op("recip", Z.locs, r.locs)
        R.op("mul", E.locs, E.locs, b=R.vec("K", p["K"], Nt * M, E.slices))
        R.op("requantv", E.locs, out.locs, b=R.repeat(r), setq=gvxu.RequantParams(1, SOFTMAX_SHIFT, SOFTMAX_QP.zp))
        return out

    out = lw.vxu_step(st, x, body)
    lw.T[st.name] = _T(st.name, "act", x.shape, out, None)
