"""Tensor parallel over a line of chips, what the decode step (``decode.py``) and whole graphs (``tensor.py``)
share: the split (``shard_plan``: Megatron-LM's, found by the dataflow), a row linear's partial sums and their
all-reduce, and the chips' lowerings in lock step.

* A **row linear** is a linear whose input comes, through steps that keep a split (``THROUGH``: reshapes,
  transposes, tables, elementwise ``mul``/``add`` of split tensors, rotate-half, attention), from other linears
  only (an attention's output projection from q, k, v; an MLP's second or down projection from its first, or
  its gate and up); those are its **column linears**. Their output columns are divided among the chips by whole
  heads when an attention is on the way, else by whole MXU tiles (``compiler.system.gemm.shares``), and the row
  linear's input rows the same way; everything else is replicated. ``ShardPlan.shard(qgraph, chip)`` is the
  graph chip ``chip`` lowers (its columns, rows and heads; the split tensors' shapes).
* ``row_linear(lw, st, chip, chips)`` (a generator): the chip's partial sums ``x_k @ W[rows_k]`` (int32; chip 0's
  with the bias added as they stream out, so the sum holds it once), then it yields a ``Meeting``; once the
  all-reduce is placed, every chip requantizes its copy of the totals. int32 addition wraps the same in any
  order, so the result equals ``QGraph.run_int8``'s bit for bit.
* ``lockstep(gens, builders)``: runs the chips' lowerings (generators yielding ``Meeting`` s) together: at each
  meeting ``compiler.system.transfer.allreduce_line`` is placed on every builder at once (all chips start on
  the same cycle, so the builders share one clock), then each chip goes on.
"""
import copy
import dataclasses
from dataclasses import dataclass

import numpy as np

from golden import vxu as gvxu

from ..ir.node import Tensor
from ..lower.elementwise import scratch
from ..lower.layout import _MULT_MAX, _T, _pack_channels
from ..lower.linear import weights
from ..lower.relu import max_zp
from ..memory import MemoryFull
from ..phases import _bias_reps, _BiasAdd, _Gemm, _gemm_prefetched, _tiles, _ToMem, _vxu_pass
from ..quantize import QGraph, QStep
from .gemm import shares
from .transfer import allreduce_line

__all__ = ["THROUGH", "ShardPlan", "shard_plan", "Meeting", "row_linear", "lockstep", "taps", "link_words"]

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
    label: str = ""                 # "q + k + v -> proj": the linears' own names (a step is named by its chain's end)


@dataclass
class ShardPlan:
    """How a graph (a decode step, a whole model) is divided among ``chips`` chips (module docstring); ``head``:
    the output linear (the logits) and each chip's columns of it, when the host reads each chip's share."""
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
            out.append(f"{g.label} ({share})")
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

    consumers, outputs = {}, set(qd.outputs.values())
    for st in qd.steps:
        for i in st.inputs:
            consumers.setdefault(i, set()).add(st.name)
    groups, taken = [], set()
    for st in qd.steps:
        if st.op != "linear" or st.name in taken:
            continue
        split = []
        cols = walk(st.inputs[0], split)
        if not cols or any(n in taken for n in cols):   # a linear already divided gives whole totals: not split
            continue
        inside = set(split) | {st.name}
        if any(n in outputs or not consumers.get(n, set()) <= inside for n in cols + split):
            continue                # a share read elsewhere (or an output) would be a chip's part, not the whole
        taken |= set(cols) | {st.name}
        widths = {producer[n].params["W"].shape[1] for n in cols}
        if len(widths) != 1:
            raise NotImplementedError(f"linear '{st.name}': its inputs come from linears of different widths "
                                      f"({sorted(widths)}); the tensor split divides them alike")
        (width,) = widths
        label = f"{' + '.join(producer[n].fused[0] for n in cols)} -> {st.fused[0]}"
        att = [producer[n] for n in split if producer[n].op == "attention"]
        try:
            if att:
                what = f"attention '{att[0].name}'"
                _, H, _, hd = qd.graph.node(att[0].name).shape
                heads = shares(int(H), chips, 1, "heads")
                pieces = [(a * hd, e * hd) for a, e in heads]
                groups.append(_Group(st.name, cols, split, "heads", width, pieces, heads, int(hd), label))
            else:
                what = f"linear '{' + '.join(producer[n].fused[0] for n in cols)}'"
                pieces = shares(width, chips, config.mxu_cols, "columns")
                groups.append(_Group(st.name, cols, split, "columns", width, pieces, label=label))
        except ValueError as e:
            raise ValueError(f"{what}: {e} (compile for fewer chips)") from None
    if not groups:
        raise NotImplementedError("the model has no linear fed by other linears (an attention's output projection, "
                                  "an MLP's down projection): nothing to divide among chips")
    head = None
    outs = list(qd.outputs.values())
    last = producer.get(outs[0]) if len(outs) == 1 else None
    if pick == "host" and last is not None and last.op == "linear" and last.name not in taken and \
            last.params["W"].shape[1] >= chips * config.mxu_cols and not last.params["requant"].clamp_needed:
        head = (last.name, shares(last.params["W"].shape[1], chips, config.mxu_cols, "columns"))
    return ShardPlan(chips, groups, head)


@dataclass
class Meeting:
    """Where a chip waits for the others: the partial sums of row linear ``layer`` (``part``), the words that
    receive the totals on this chip (``total``) and, in the middle of the line, the taps of the running sums
    (``taps``)."""
    layer: str
    part: object
    total: object
    taps: tuple | None = None


def taps(lw, chip, chips, layer, n):
    """Chip ``chip`` of ``chips``, in the middle of the line: ``(incoming, outgoing)`` regions of ``n`` words on
    two MEM slices between its VXU and its east link (``allreduce_line``'s taps); ``None`` at an end of the line
    or when MEM has no room there."""
    c = lw.c
    if chip in (0, chips - 1):
        return None
    vxu, east = c.positions("vxu")[0], c.link_ends["east"]
    between = sorted((p for p in c.positions("mem") if vxu < p < east), key=lambda p: -lw.alloc.free_words(p))
    if len(between) < 2 or any(lw.alloc.free_words(p) < n for p in between[:2]):
        return None
    mems = set(c.positions("mem"))
    return tuple(lw.region("scratch", f"{what} running sums of '{layer}'", n, exclude=mems - {p}, desc=f"{n} words")
                 for what, p in zip(("incoming", "outgoing"), between))



def row_linear(lw, st, chip, chips):
    """A generator: chip ``chip``'s partial sums of row linear ``st`` (its rows of ``W``; chip 0's with the bias
    added as its results stream out, ``_BiasAdd``, so the sum holds it once), the ``Meeting`` (the totals
    arrive), then the requantization as ``compiler.lower.linear`` does it."""
    c = lw.c
    x = lw.operand(st)
    layer = st.fused[0]
    W, bias, rq = st.params["W"], st.params["bias"], st.params["requant"]
    (K, N), M = W.shape, x.rows
    Nt = _tiles(N, c.mxu_cols)
    xs = set(x.region.slices)
    w = weights(lw, f"W of '{layer}' (rows of chip {chip})", W, xs)
    reps = _bias_reps(c, M, Nt)
    chdesc = f"int32 ({N},) as {Nt} tiles x {reps} copies"
    bz = None
    if chip == 0:
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
    total = scratch(lw, f"sums of '{layer}'", Nt * M, (set(part.slices), ()), f"{Nt * M} words")
    if set(total.slices) & set(part.slices):
        raise MemoryFull(f"'{layer}': no MEM slice apart from its partial sums has {Nt * M} free words for the "
                         f"sums", Nt * M)
    yield Meeting(layer, part, total, taps(lw, chip, chips, layer, Nt * M))
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


def lockstep(gens, builders):
    """Run the chips' lowerings ``gens`` (generators yielding a ``Meeting`` at each row linear) to the end
    together, placing each meeting's all-reduce on ``builders()`` (the chips' builders now: a lowering's
    placement tries may replace its builder). Every chip meets at the same row linears, in order."""
    while True:
        got = [_advance(g) for g in gens]
        if all(m is _END for m in got):
            return
        layers = {m.layer if m is not _END else None for m in got}
        if len(layers) != 1 or None in layers:
            raise AssertionError(f"the chips' lowerings met at different points: {sorted(map(str, layers))}")
        middle = got[1:-1]
        tap = ({k + 1: (m.taps[0].locs, m.taps[1].locs) for k, m in enumerate(middle)}
               if all(m.taps for m in middle) else None)
        allreduce_line(builders(), [m.part.locs for m in got], [m.total.locs for m in got], tap)


_END = object()


def _advance(gen):
    try:
        return next(gen)
    except StopIteration:
        return _END


def link_words(config, programs):
    """Vectors each directed link of a line carries in one run of ``programs`` (one per chip): the SEND items of
    chip ``k``'s east link slice are ``"c<k>.east->c<k+1>.west"``'s, of its west one
    ``"c<k>.west->c<k-1>.east"``'s."""
    ends = config.link_ends
    out = {}
    for k, prog in enumerate(programs):
        for end, other, far in (("east", k + 1, "west"), ("west", k - 1, "east")):
            if 0 <= other < len(programs):
                out[f"c{k}.{end}->c{other}.{far}"] = sum(ins.count for p, _, ins in prog.instructions("SEND")
                                                         if p == ends[end])
    return out
