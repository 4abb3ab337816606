"""A language model's decode step in tensor parallel over a line of chips (Megatron-LM's split of a block).

``lower_decode_system(qgraph, graph1, config, chips, pick)`` → ``(parts, plan)``: one ``(CompiledModel,
StepData)`` per chip (``compiler.lm.decode``'s step, each chip lowering its share) and the ``ShardPlan``.

The split (``shard_plan``), found on the step graph by its dataflow, not by names:

* a **row linear** is one whose input comes, through operations that keep a split (reshapes, transposes,
  tables, elementwise ``mul``/``add`` of split tensors, rotate-half, attention), from other linears only: the
  attention's output projection (from q, k, v) and an MLP's down projection (from its up/gate projections);
  those other linears are its **column linears**;
* a column linear's output columns are divided among the chips: by whole heads when an attention is on the
  way (``H`` heads of ``hd``: chip ``k`` gets heads ``h0 … h1 - 1``, their q, k, v columns and their KV cache),
  else by whole MXU tiles (``compiler.system.gemm.shares``); the row linear's input rows the same way;
* everything else (embedding, norms, residual adds, the final norm and the head) is **replicated**: every chip
  computes it on the same data, so no chip waits for another's copy (the host writes the token word to every
  chip's host edge; each chip has its own).

Each row linear is a meeting point of the chips: chip ``k`` computes its partial sums ``x_k @ W[rows_k]`` (int32,
no bias) on its MXU; ``compiler.system.transfer.allreduce_line`` adds them over the links (the last chip's
go west, each chip adding its own at its VXU, chip 0 holding the totals) and sends the totals back east to
every chip; then every chip adds the bias and requantizes, exactly as one chip does: int32 addition wraps
the same in any order, so the outputs equal ``QGraph.run_int8``'s bit for bit.

All chips start on the same cycle and their builders share one clock: the chips' lowerings run in lock step,
each a generator (``_Decode.lower``) that yields at a row linear; the all-reduce is placed on every builder
at once, and each chip goes on from there. Predicted cycles are the system's: the largest chip's.
"""
import copy
import dataclasses
from dataclasses import dataclass

import numpy as np

from golden import vxu as gvxu
from spec.config import MAX_CHIPS

from ..ir.node import Tensor
from ..lm.decode import _Decode, _decode_steps, _mem_summary
from ..lower.layout import _MULT_MAX, _T, _pack_channels
from ..lower.relu import max_zp
from ..memory import MemoryFull
from ..phases import _bias_reps, _BiasAdd, _Gemm, _gemm_prefetched, _pack_w, _tiles, _ToMem, _vxu_pass
from ..quantize import QGraph, QStep
from .gemm import shares
from .kernel import system_config
from .transfer import allreduce_line

__all__ = ["ShardPlan", "shard_plan", "lower_decode_system"]

#: Operations a split passes through unchanged (each chip applies them to its share).
THROUGH = ("reshape", "transpose", "table", "mul", "add", "rotate_half", "attention")


@dataclass
class _Group:
    """A row linear, its column linears and the split steps between them; ``unit`` ``"heads"`` or
    ``"columns"``; ``pieces[k]``: chip ``k``'s ``(start, stop)`` columns of the column linears' outputs (the
    row linear's input rows); ``heads[k]``: its heads (attention groups)."""
    row: str
    cols: list
    split: list
    unit: str
    width: int
    pieces: list
    heads: list | None = None
    head_dim: int = 0


@dataclass
class ShardPlan:
    """How a decode step is divided among ``chips`` chips (module docstring); ``head``: the output linear
    (the logits) and each chip's columns of it, when the host reads each chip's share."""
    chips: int
    groups: list
    head: tuple | None = None

    @property
    def rows(self):
        return {g.row: g for g in self.groups}

    def describe(self):
        """One line per group: what each chip takes."""
        out = []
        for g in self.groups:
            if g.unit == "heads":
                share = ", ".join(f"chip {k}: heads {a}-{e - 1}" for k, (a, e) in enumerate(g.heads))
            else:
                share = ", ".join(f"chip {k}: columns {a}-{e - 1}" for k, (a, e) in enumerate(g.pieces))
            out.append(f"{' + '.join(g.cols)} -> {g.row} ({share})")
        if self.head:
            name, pieces = self.head
            share = ", ".join(f"chip {k}: columns {a}-{e - 1}" for k, (a, e) in enumerate(pieces))
            out.append(f"{name} -> the logits, read by the host from every chip ({share})")
        return out

    def shard(self, qd, chip):
        """The step graph ``qd`` as chip ``chip`` lowers it: its columns and rows of the split linears, its
        heads, and the split tensors' shapes."""
        steps, shapes = {st.name: st for st in qd.steps}, {}
        for g in self.groups:
            a, e = g.pieces[chip]
            for name in g.cols:
                steps[name] = _columns(steps[name], a, e)
            row = steps[g.row]
            steps[g.row] = QStep(row.op, row.name, row.inputs, row.fused, dict(row.params, W=row.params["W"][a:e]))
            for name in g.split:
                st = steps[name]
                if g.unit == "columns" and st.op in ("mul", "add"):
                    steps[name] = QStep(st.op, st.name, st.inputs, st.fused,
                                        {k: _cut(v, a, e, g.width) for k, v in st.params.items()})
            for name in g.cols + g.split:
                for n in set(steps[name].fused) | {name}:
                    shapes[n] = _shape(qd.graph.node(n).shape, g, chip)
        if self.head:
            name, pieces = self.head
            a, e = pieces[chip]
            st = steps[name]
            steps[name] = _columns(st, a, e)
            for n in set(st.fused) | {name}:
                shapes[n] = tuple(qd.graph.node(n).shape[:-1]) + (e - a,)
        return QGraph(_reshaped(qd.graph, shapes), [steps[st.name] for st in qd.steps], qd.qparams)


def _columns(st, a, e):
    """Linear step ``st`` restricted to its output columns ``a … e - 1``."""
    p = st.params
    width = p["W"].shape[1]
    rq = dataclasses.replace(p["requant"], mult=_cut(p["requant"].mult, a, e, width),
                             real=_cut(p["requant"].real, a, e, width))
    return QStep(st.op, st.name, st.inputs, st.fused, dict(p, W=p["W"][:, a:e], bias=p["bias"][a:e],
                                                          w_scale=_cut(p["w_scale"], a, e, width), requant=rq))


def _cut(v, a, e, width):
    """``v[..., a:e]`` when ``v`` is an array along the split axis (last dimension ``width``), else ``v``."""
    if isinstance(v, np.ndarray) and v.ndim >= 1 and v.shape[-1] == width:
        return v[..., a:e]
    return v


def _shape(shape, g, chip):
    """A split tensor's shape on chip ``chip``: its last axis cut to the chip's columns, or (a tensor of heads,
    ``(…, H, 1, hd)`` or ``(…, 1, H, hd)``) its heads axis to the chip's heads."""
    shape = list(shape)
    if shape[-1] == g.width:
        a, e = g.pieces[chip]
        shape[-1] = e - a
        return tuple(shape)
    H = g.width // g.head_dim if g.head_dim else 0
    for ax in (-3, -2):
        if g.heads and len(shape) >= 4 and shape[ax] == H and shape[-1] == g.head_dim:
            a, e = g.heads[chip]
            shape[ax] = e - a
            return tuple(shape)
    raise NotImplementedError(f"a tensor of shape {tuple(shape)} between '{' + '.join(g.cols)}' and '{g.row}': the "
                              f"tensor-parallel decode splits the last axis ({g.width}) or the heads axis only")


def _reshaped(graph, shapes):
    """A copy of ``graph`` whose nodes ``shapes`` names have those shapes (the rest shared)."""
    g = copy.copy(graph)
    g._nodes = {n: dataclasses.replace(node, shape=tuple(shapes[n])) if n in shapes else node
                for n, node in graph._nodes.items()}
    g._tensors = {n: Tensor(g, n, tuple(shapes[n]), t.dtype) if n in shapes else t for n, t in graph._tensors.items()}
    return g


def shard_plan(qd, chips, config, pick="host"):
    """The ``ShardPlan`` of the step graph ``qd`` (``compiler.lm.decode._decode_steps``) on ``chips`` chips of
    ``config`` (module docstring); ``ValueError`` naming the layer when a split cannot give every chip a share.
    With ``pick="host"`` the output linear (the head) is divided by whole tiles of columns too when it has a
    tile for every chip: the host reads each chip's logits from its own host edge (with ``pick="chip"`` every
    chip computes all of them, for its own argmax)."""
    producer = {st.name: st for st in qd.steps}

    def walk(name, split):
        st = producer.get(name)
        if st is None:
            return None
        if st.op == "linear":
            return [st.name]
        if st.op not in THROUGH:
            return None
        found = []
        for i in st.inputs:
            r = walk(i, split)
            if r is None:
                return None
            found += [n for n in r if n not in found]
        if st.name not in split:
            split.append(st.name)
        return found

    groups, taken = [], set()
    for st in qd.steps:
        if st.op != "linear" or st.name in taken:
            continue
        split = []
        cols = walk(st.inputs[0], split)
        if not cols:
            continue
        taken |= set(cols) | {st.name}
        widths = {producer[n].params["W"].shape[1] for n in cols}
        if len(widths) != 1:
            raise NotImplementedError(f"linear '{st.name}': its inputs come from linears of different widths "
                                      f"({sorted(widths)}); the tensor-parallel decode splits them alike")
        (width,) = widths
        att = [producer[n] for n in split if producer[n].op == "attention"]
        try:
            if att:
                what = f"attention '{att[0].name}'"
                _, H, _, hd = qd.graph.node(att[0].name).shape
                heads = shares(int(H), chips, 1, "heads")
                pieces = [(a * hd, e * hd) for a, e in heads]
                groups.append(_Group(st.name, cols, split, "heads", width, pieces, heads, int(hd)))
            else:
                what = f"linear '{' + '.join(cols)}'"
                pieces = shares(width, chips, config.mxu_cols, "columns")
                groups.append(_Group(st.name, cols, split, "columns", width, pieces))
        except ValueError as e:
            raise ValueError(f"{what}: {e} (compile for fewer chips)") from None
    if not groups:
        raise NotImplementedError("the model has no linear fed by other linears (an attention's output projection, "
                                  "an MLP's down projection): nothing to divide among chips")
    head = None
    (out,) = qd.outputs.values()
    last = producer.get(out)
    if pick == "host" and last is not None and last.op == "linear" and last.name not in taken and \
            last.params["W"].shape[1] >= chips * config.mxu_cols and not last.params["requant"].clamp_needed:
        head = (last.name, shares(last.params["W"].shape[1], chips, config.mxu_cols, "columns"))
    return ShardPlan(chips, groups, head)


@dataclass
class _Meeting:
    """Where a chip waits for the others: the partial sums of row linear ``layer`` (``part``), the words that
    receive the totals on this chip (``total``) and, in the middle of the line, the taps of the running sums
    (``Shard.taps``)."""
    layer: str
    part: object
    total: object
    taps: tuple | None = None


class _Shard(_Decode):
    """Chip ``chip``'s share of the decode step (``ShardPlan.shard``); a row linear is a meeting point."""

    def __init__(self, qg, g1, config, pick, plan, chip):
        self.plan, self.chip, self.row_groups = plan, chip, plan.rows
        super().__init__(qg, g1, config, pick, shard=lambda qd: plan.shard(qd, chip))

    def lower_step(self, st, groups, last_attention):
        if st.name in self.row_groups:
            return self.row_linear(st)
        return super().lower_step(st, groups, last_attention)

    def taps(self, layer, n):
        """A chip in the middle of the line: ``(incoming, outgoing)`` regions of ``n`` words on two MEM slices
        between its VXU and its east link (``allreduce_line``'s taps), or ``None`` when MEM has no room there."""
        c = self.c
        if self.chip in (0, self.plan.chips - 1):
            return None
        vxu, east = c.positions("vxu")[0], c.link_ends["east"]
        between = sorted((p for p in c.positions("mem") if vxu < p < east), key=lambda p: -self.lw.alloc.free_words(p))
        if len(between) < 2 or any(self.lw.alloc.free_words(p) < n for p in between[:2]):
            return None
        mems = set(c.positions("mem"))
        return tuple(self.lw.region("scratch", f"{what} running sums of '{layer}'", n, exclude=mems - {p},
                                    desc=f"{n} words") for what, p in zip(("incoming", "outgoing"), between))

    def row_linear(self, st):
        """The chip's partial sums of a row linear (its rows of ``W``; chip 0's with the bias added as its results
        stream out, ``_BiasAdd``, so the sum holds it once), the meeting (the totals arrive), then the
        requantization as ``compiler.lower.linear`` does it."""
        lw, c = self.lw, self.c
        x = lw.operand(st)
        layer = st.fused[0]
        W, bias, rq = st.params["W"], st.params["bias"], st.params["requant"]
        (K, N), M = W.shape, x.rows
        R, C = c.mxu_rows, c.mxu_cols
        Nt = _tiles(N, C)
        xs = set(x.region.slices)
        w = lw.const(f"W of '{layer}' (rows of chip {self.chip})", _pack_w(W, c), exclude=xs, granule=R,
                     desc=f"int8 {K} x {N} as {Nt} x {_tiles(K, R)} tiles x {R} rows",
                     avoid=", on MEM slices not holding its activations")
        reps = _bias_reps(c, M, Nt)
        chdesc = f"int32 ({N},) as {Nt} tiles x {reps} copies"
        bz = None
        if self.chip == 0:
            bz = lw.const(f"bias of '{layer}'", _pack(bias, c, reps, gvxu.INT32_MIN), exclude=xs | set(w.slices),
                          granule=reps, desc=chdesc, avoid=", on MEM slices holding neither its activations nor "
                                                           "its weights")
        def gemm(z):                # the partial sums into z (Lowering.placed tries z's slices until it schedules)
            b = lw.b
            sink = _ToMem(b, z, M) if bz is None else _BiasAdd(b, z, bz, reps, M)
            lw.matmuls += _gemm_prefetched(b, b.end, _Gemm(M, K, N, x.region, w), sink)
            return z

        part = lw.placed(f"partial sums of '{layer}'", Nt * M, f"int32 {M} x {N} as {Nt} tiles x {M} words", gemm,
                         busy=xs | set(w.slices) | set(bz.slices if bz else ()))
        # the totals apart from the partial sums (the reductions' roots store them while reading these)
        total = self.scratch(f"sums of '{layer}'", Nt * M, avoid=set(part.slices))
        if set(total.slices) & set(part.slices):
            raise MemoryFull(f"'{layer}': no MEM slice apart from its partial sums has {Nt * M} free words for the "
                             f"sums", Nt * M)
        yield _Meeting(layer, part, total, self.taps(layer, Nt * M))
        b = lw.b
        mult = lw.const(f"multipliers of '{layer}'", _pack(rq.mult, c, reps, _MULT_MAX), exclude=set(total.slices),
                        granule=reps, desc=chdesc, avoid=", on MEM slices not holding its accumulators")
        _vxu_pass(b, None, "requantv", total.locs, total.locs, b_locs=lw.channel_locs(mult, reps, M, Nt),
                  setq=gvxu.RequantParams(1, rq.shift, rq.zp))
        pad = int(gvxu.requantv(np.array([gvxu.INT32_MIN]), np.array([_MULT_MAX]), rq.shift, rq.zp)[0])
        t = _T(st.name, "act", lw.shape(lw.q.graph.node(st.fused[-1]).shape), total, pad)
        lw.T[st.name] = t
        if rq.clamp_needed:
            max_zp(lw, st, t, rq.zp)


def _pack(v, c, reps, pad):
    return _pack_channels(np.asarray(v, np.int64), c, reps, pad)


_END = object()


def _advance(gen, value):
    try:
        return gen.send(value)
    except StopIteration:
        return _END


def lower_decode_system(qgraph, graph1, config, chips, pick="host"):
    """The decode step of ``qgraph`` on ``chips`` chips of ``config`` in a line (module docstring):
    ``([(CompiledModel, StepData)] per chip, ShardPlan)``."""
    if isinstance(chips, bool) or not isinstance(chips, int) or not 2 <= chips <= MAX_CHIPS:
        raise ValueError(f"chips must be an integer between 2 and {MAX_CHIPS} for a tensor-parallel decode step, "
                         f"not {chips!r}")
    c = system_config(config, chips)
    plan = shard_plan(_decode_steps(qgraph, graph1)[0], chips, c, pick)
    shards = [_Shard(qgraph, graph1, c, pick, plan, k) for k in range(chips)]
    gens = [s.lower() for s in shards]
    sent = [None] * chips
    try:
        while True:
            got = [_advance(g, v) for g, v in zip(gens, sent)]
            if all(m is _END for m in got):
                break
            layers = {m.layer if m is not _END else None for m in got}
            if len(layers) != 1 or None in layers:
                raise AssertionError(f"the chips' lowerings met at different points: {sorted(map(str, layers))}")
            middle = got[1:-1]
            taps = {k + 1: (m.taps[0].locs, m.taps[1].locs) for k, m in enumerate(middle)} \
                if all(m.taps for m in middle) else None
            allreduce_line([s.lw.b for s in shards], [m.part.locs for m in got], [m.total.locs for m in got], taps)
            sent = [None] * chips
    except MemoryFull as e:
        raise MemoryFull(f"the decode step on {chips} chips does not fit config {config.name}: {e} (MEM taken so "
                         f"far on chip 0: {_mem_summary(shards[0].lw)})", e.words, e.anywhere) from None
    parts = [s.finish() for s in shards]
    vocab = int(qgraph.graph.node(next(iter(qgraph.outputs.values()))).shape[-1])
    for _, data in parts:
        data.vocab = vocab          # the token ids a step takes (a chip's logits may be a share of them)
    return parts, plan
