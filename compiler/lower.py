"""Lowering: a quantized graph (``compiler.quantize.QGraph``) → a statically scheduled chip program.

``lower(qgraph, config, batch)`` → ``CompiledModel``; its ``run_golden(float_inputs)`` reproduces
``qgraph.run_int8`` exactly on ``golden.chip.ChipSim`` (and the chip's cycle count is the program's
``predicted_cycles``).

What is lowered
---------------
* ``input``: quantized on the host (``CompiledModel.quantize_inputs``, exactly as ``QGraph.run_int8``); the
  codes are what is loaded into MEM. Integer inputs (embedding ids) pass unchanged and are only lowered as
  the ids of an ``embedding`` (possibly through host reshapes).
* ``embedding`` of ids that are a graph input: **a gather on the host** (the ISA has no data-dependent
  addressing): ``InputsLayout.pack`` looks up the rows of the quantized table (``QGraph``'s int8 codes,
  ``T_q[ids]``) and loads them as an activation in the usual layout, as if the embedding's output (or a host
  reshape of it, e.g. (B, T, D) → (B, T·D)) were a graph input; the table is not loaded into MEM. An
  embedding whose ids are computed on the chip: ``NotImplementedError`` naming the node.
* ``linear`` (+ fused bias add and ReLU): ``kernels``' GEMM (weight tiles double buffered, K accumulation)
  with the int32 bias added at the VXU as the last K tile's results stream out (``_BiasAdd``), then one
  ``VOP requantv`` pass: operand a the accumulators, operand b the per-channel multiplier vectors (one per N
  tile, lane ``j`` = ``mult[nt·C + j]``), ``shift``/``zp`` from a SETQ. A fused ReLU's clamp
  (``Requant.clamp_needed``, i.e. ``zp > -128``) is a ``VOP max`` pass against ``zp`` vectors.
* ``relu`` (not fused): ``VOP max`` against ``zp`` vectors.
* ``tanh``/``sigmoid``/``gelu``/``exp`` (``table`` steps): ``LOADLUT`` of the 256-entry table from MEM, then
  one ``VOP lut`` pass.
* ``argmax`` over the last axis with ``N <= C`` (one MXU column tile, ``C = mxu_cols <= lanes``): one ``VOP
  argmax`` per row; lanes past ``N`` are first pushed below every code (a ``VOP add`` of ``-2**30``) unless
  they are known to hold -128 already. Larger ``N`` or another axis: ``NotImplementedError`` naming the node.
* ``reshape``: of a graph input, done on the host; of a tensor that keeps its last axis (rows only
  regrouped), or of argmax indices, a no-op on the layout; anything else ``NotImplementedError``.
* ``add`` (``acc = q_a·m_a + q_b·m_b + c``, then one requant; a and b activations of the same shape, or b
  a folded constant with ``c`` per channel): VXU passes with constant vectors from MEM (lanes past the
  features: multiplier 0 and ``c = -2**31``, so the padding requantizes to -128): ``VOP mul`` of a by the
  ``m_a`` vectors into the output region, ``VOP mul`` of b by the ``m_b`` vectors into a scratch region (b's
  own region when nothing else reads it), ``VOP add`` of the two, ``VOP add`` of the ``c`` vectors, ``VOP
  requant`` (SETQ with the one multiplier), a fused ReLU's clamp as for linear. Broadcasting adds (other
  shapes), a constant ``c`` varying along the rows: ``NotImplementedError`` naming the node.
* ``matmul`` ``a @ b`` of two activations, ``a`` (M, K) and ``b`` (K, N): ``acc = matmul(q_a, q_b) - zp_b ·
  rowsum(q_a) - zp_a · colsum(q_b) + K · zp_a · zp_b``, i.e. ``Σ_k (q_a - zp_a)(q_b - zp_b)`` modulo 2**32 (the
  int32 value of ``QGraph.run_int8``, which wraps alike), every term on the MXU:

  - ``b`` as MXU weights (``kernels``' weight layout, ``Nt · Kt · R`` words): one ``VOP mul`` pass of ``b``'s
    words by 0/1 lane-mask vectors into a scratch region (lanes past N and rows past K become 0, whatever
    ``b``'s padding holds). Skipped when K and N are multiples of the array's side (or ``b``'s padding is 0)
    and ``a`` and ``b`` are on different MEM slices: ``b``'s words are then read as the weights in place;
  - ``- zp_b · rowsum(q_a)``: extra K tiles of the GEMM, ``a``'s words once more against constant weight
    tiles of ``u`` (rows < K, lanes < N), ``u`` the int8 parts of ``-zp_b`` (none for 0, one, or 64 + 64 for
    ``zp_b = -128``);
  - ``- zp_a · colsum(q_b) + K · zp_a · zp_b``: the GEMM's bias (added at the VXU as the results stream out,
    as for linear), computed first by a small GEMM of ``reps`` constant activation rows ``v`` (the int8 parts
    of ``-zp_a``; none when ``zp_a = 0``, then no bias) against the same weights (``b`` and the ``u`` tiles),
    its results straight into MEM (``reps`` copies per N tile, the bias layout);
  - one ``VOP requant`` pass (SETQ with the one multiplier ``quantize`` gives every channel; ``requantv``
    with multiplier vectors as for linear on a config without ``requant``) and a fused ReLU's clamp as for
    linear. The padding lanes accumulate 0 and requantize to ``zp`` (the tracked pad value).

  Cost: ``Nt · Kt · (1 + n_b) · (M + n_a · reps)`` MATMUL items (``n_a``, ``n_b``: the number of int8 parts
  of ``-zp_a``, ``-zp_b``: 0, 1, or 2 for a zero point of -128), i.e. one to three times a linear layer of
  the same shape, plus the relayout pass (``Nt · Kt · R`` words) and the requant pass (``Nt · M`` words).
  MEM: the scratch weights, ``Nt · reps`` bias words, at most 8 constant tiles of ``R`` words, the masks.
  Its scratch regions and constants are placed by up to ``_MATMUL_PLANS`` plans (slice preferences rotated,
  one mask vector per weight word) until one schedules. A non-square MXU: ``NotImplementedError`` naming the
  node (batched, 3-D matmuls are refused by ``compiler.ir``).

Layout (``R × C`` MXU, square: ``R == C``; ``L`` lanes): an activation (M rows × N features, the rows being
every leading axis flattened) is ``Nt · M`` words, word ``nt·M + m`` holding ``x[m, nt·C : nt·C + C]`` as
int8 codes in int32 lanes: the result layout of ``kernels.gemm``, which is also the activation layout of the
next GEMM (what ``kernels.mlp`` does for two layers, here for any number). Lanes past the features hold a
pad value the lowering tracks (host inputs are padded with -128; a linear's padding lanes get an int32 bias
of ``-2**31`` and the multiplier ``2**31 - 1``, so they usually requantize to -128; a matmul's, to its
``zp``); the next GEMM ignores them (its weight rows past K are zero). Weights per tile as ``kernels.gemm``;
biases and multipliers as ``reps`` copies per N tile (so their READs are few). Argmax indices: ``M`` words,
lane 0.

Placement (``MemAllocator``, never freed; no reuse between tensors): constants go to the slice with the most
free words that none of the operands read at the same time holds (weights: not the GEMM's activations;
biases: neither; multipliers: not the accumulators), in one slice when they fit. A step's output goes in
place when nothing else reads its input, else on MEM slices the step does not read (slices already holding
activations first, then west of the MXU first), else on the others: one queue per slice issues one
instruction per cycle, so a slice's READs and WRITEs can collide; the placements are tried in that order
(snapshot of builder and allocator, retry) until one
schedules. A tensor that does not fit raises the ``MemAllocator`` ``ValueError`` naming it, its words and
bytes, and the free words.

Schedule: steps one after the other, each starting when everything before it has finished
(``ProgramBuilder.end``); no overlap between layers (a possible optimisation).
"""
import copy
import math
from dataclasses import dataclass, field

import numpy as np

from golden import vxu as gvxu
from spec import isa
from spec.config import ChipConfig

from .kernels import (
    MemAllocator,
    Region,
    _bias_reps,
    _BiasAdd,
    _Gemm,
    _gemm_phase,
    _loadlut,
    _pack_w,
    _sides,
    _tiles,
    _ToMem,
    _unpack_y,
    _vxu_pass,
)
from .quantize import QGraph
from .schedule import Program, ProgramBuilder, ProgramFigures

__all__ = ["lower", "CompiledModel", "InputsLayout", "OutputLoc", "PAD_CODE", "MASK_VALUE"]

#: What host packing puts in the lanes past a tensor's features.
PAD_CODE = -128
#: Added to the padding lanes before an argmax (far below every int8 code, no int32 wrap).
MASK_VALUE = -(1 << 30)
_MULT_MAX = isa.FIELDS["mult"].hi
#: Placements of a matmul's scratch regions and constants tried (when one does not schedule).
_MATMUL_PLANS = 4


# ---- tensors during lowering ---------------------------------------------------------------------------
@dataclass(eq=False)
class _T:
    """A tensor of the lowering: ``kind`` ``"host"`` (a graph input not yet in MEM, ``source`` the input
    name; with ``gather`` the int8 table of an embedding of those ids, gathered on the host), ``"ids"``
    (integer embedding ids, a graph input on the host), ``"act"`` (int8 codes, activation layout, in
    ``region``) or ``"idx"`` (argmax indices, lane 0)."""
    name: str
    kind: str
    shape: tuple
    region: Region | None = None
    pad: int | None = None   # the value of the lanes past the features (None: unknown)
    source: str | None = None
    gather: np.ndarray | None = None

    @property
    def rows(self):
        return int(math.prod(self.shape[:-1])) if self.kind != "idx" else int(math.prod(self.shape))

    @property
    def features(self):
        return int(self.shape[-1])


@dataclass
class OutputLoc:
    """Where an output lives: ``kind`` ``"codes"`` (int8, activation layout of ``rows × features``) or
    ``"indices"`` (int32, lane 0 of ``rows`` words); ``shape`` the numpy result's shape; ``segments``
    ``((slice name, bank, addr, count), …)`` in word order; ``tensor`` the graph tensor."""
    tensor: str
    kind: str
    shape: tuple
    rows: int
    features: int
    segments: tuple


@dataclass
class InputsLayout:
    """How quantized inputs are placed: per graph input, the regions (one per view: an input reshaped on
    the host before two different uses gets two) as ``(view shape, segments)``; ``pack(codes)`` →
    ``[(slice name, bank, addr, words)]``. ``gathers``: per input name, one entry per view: ``None``, or the
    int8 ``(V, D)`` table of an embedding whose ids the input is (the view holds ``table[ids]``, gathered on
    the host; the view's shape is then that of the gathered rows)."""
    config: ChipConfig
    views: dict = field(default_factory=dict)     # input name -> [(shape, Region)]
    gathers: dict = field(default_factory=dict)   # input name -> [table or None] (aligned with views)

    @property
    def regions(self):
        return {name: [(shape, r.segments) for shape, r in vs] for name, vs in self.views.items()}

    def pack(self, codes):
        """``codes``: ``{input name: int8 codes}`` (the graph input's shape with the compiled batch)."""
        if not isinstance(codes, dict):
            raise TypeError(f"codes must be a dict of input name to int8 codes, not {type(codes).__name__}")
        out = []
        for name, vs in self.views.items():
            if name not in codes:
                raise ValueError(f"codes must hold input {name!r}")
            q = np.asarray(codes[name])
            gathers = self.gathers.get(name) or [None] * len(vs)
            if q.dtype.kind not in "iu":
                raise ValueError(f"codes of input {name!r} must be integers, not {q.dtype}")
            if any(g is None for g in gathers) and q.size and (q.min() < -128 or q.max() > 127):
                raise ValueError(f"codes of input {name!r} must be int8 values")
            for (shape, region), table in zip(vs, gathers):
                if table is not None:       # embedding ids: gather the quantized table's rows on the host
                    if q.size and (q.min() < 0 or q.max() >= len(table)):
                        raise ValueError(f"ids of input {name!r} must be in 0 … {len(table) - 1}, not "
                                         f"{int(q.min())} … {int(q.max())}")
                    x = np.asarray(table)[q.reshape(-1)]
                    if x.size != math.prod(shape):
                        raise ValueError(f"ids of input {name!r} must have {math.prod(shape) // table.shape[1]} "
                                         f"values, not shape {q.shape}")
                    out += region.inputs(_pack_act(x.reshape(shape).reshape(-1, shape[-1]), self.config))
                    continue
                if q.size != math.prod(shape):
                    raise ValueError(f"codes of input {name!r} must have {math.prod(shape)} values "
                                     f"(shape {shape}), not shape {q.shape}")
                x = q.reshape(shape)
                out += region.inputs(_pack_act(x.reshape(-1, shape[-1]), self.config))
        return out


def _pack_act(X, c, pad=PAD_CODE):
    """Activation words (``Nt·M × L``): word ``nt·M + m`` = ``X[m, nt·C …]``, other lanes ``pad``."""
    M, N = X.shape
    C = c.mxu_cols
    out = np.full((_tiles(N, C) * M, c.lanes), pad, np.int32)
    for nt in range(_tiles(N, C)):
        n0 = nt * C
        out[nt * M:(nt + 1) * M, :min(C, N - n0)] = X[:, n0:n0 + C]
    return out


def _pack_channels(values, c, reps, pad):
    """``reps`` copies per N tile of ``values[nt·C …]`` (lanes past the channels: ``pad``)."""
    N = len(values)
    C = c.mxu_cols
    Nt = _tiles(N, C)
    out = np.full((Nt * reps, c.lanes), pad, np.int64)
    for nt in range(Nt):
        n0 = nt * C
        out[nt * reps:(nt + 1) * reps, :min(C, N - n0)] = values[n0:n0 + C]
    return out


def _int8_parts(v):
    """int8 values (at most two) summing to ``v`` (``|v| <= 255``); none for 0."""
    if v == 0:
        return []
    if -128 <= v <= 127:
        return [v]
    return [v // 2, v - v // 2]


# ---- the compiled model --------------------------------------------------------------------------------
@dataclass(eq=False)
class CompiledModel(ProgramFigures):
    """A lowered ``QGraph`` (module docstring). ``program``: the ``compiler.schedule.Program``;
    ``inputs_layout``: ``InputsLayout``; ``constants``: ``[(slice name, bank, addr, words)]`` (weights,
    biases, multipliers, tables, constant vectors), loaded once; ``outputs``: ``{output name: OutputLoc}``;
    ``regions``: every MEM region with its role; ``matmul_items``: MXU activations (MATMUL items)."""
    qgraph: QGraph
    config: ChipConfig
    batch: int
    program: Program
    inputs_layout: InputsLayout
    constants: list
    outputs: dict
    regions: list
    matmul_items: int
    allocator: MemAllocator | None = field(repr=False, default=None)

    # ---- inputs ------------------------------------------------------------------------------------
    def quantize_inputs(self, inputs):
        """``{input name: int8 codes}`` of float ``inputs``, exactly as ``QGraph.run_int8`` quantizes them."""
        raw = self.qgraph.graph.check_inputs(inputs)
        codes = {}
        for st in self.qgraph.steps:
            if st.op != "input" or st.name not in self.inputs_layout.views:
                continue
            x = raw[st.name]
            if x.ndim and x.shape[0] != self.batch and self.qgraph.graph.node(st.name).shape[0] is None:
                raise ValueError(f"input '{st.name}' must have batch {self.batch} (the compiled batch), "
                                 f"not {x.shape[0]}")
            codes[st.name] = st.params["qp"].quantize(x) if st.params["qp"] is not None else np.asarray(x)
        return codes

    def pack_inputs(self, codes):
        """``[(slice name, bank, addr, words)]`` placing the int8 input ``codes`` (``{input name: codes}``)."""
        return self.inputs_layout.pack(codes)

    # ---- outputs -----------------------------------------------------------------------------------
    def unpack_outputs(self, source):
        """``{output name: numpy array}`` (int8 codes, int32 argmax indices) from the final memories:
        ``source`` a ``golden.chip.ChipResult``/``ChipSim`` (anything with ``read_mem(slice, bank, addr,
        count)``), such a callable, or ``{slice name: banks × depth × L array}``."""
        if hasattr(source, "read_mem"):
            read = source.read_mem
        elif callable(source):
            read = source
        elif isinstance(source, dict):
            def read(s, bank, addr, n):
                return np.asarray(source[s])[bank, addr:addr + n]
        else:
            raise TypeError(f"source must have read_mem, be a reader function or a dict of MEM arrays, not "
                            f"{type(source).__name__}")
        out = {}
        for name, loc in self.outputs.items():
            words = np.concatenate([np.asarray(read(s, bank, addr, n)) for s, bank, addr, n in loc.segments])
            if loc.kind == "indices":
                out[name] = words[:, 0].astype(np.int32).reshape(loc.shape)
            else:
                out[name] = _unpack_y(words, loc.rows, loc.features, self.config).astype(np.int8).reshape(
                    loc.shape)
        return out

    # ---- reports -----------------------------------------------------------------------------------
    def sram_report(self):
        """Per MEM slice: words and bytes used and free (a word is ``L`` int32 lanes: ``4·L`` bytes), and the
        regions on it (``{region name: words}``); ``"total"`` sums the slices."""
        c = self.config
        wb = 4 * c.lanes
        cap = c.mem_banks * c.mem_depth
        rep = {}
        for p in c.positions("mem"):
            free = self.allocator.free_words(p)
            rep[c.slice_names[p]] = {"used_words": cap - free, "free_words": free, "used_bytes": (cap - free) * wb,
                                     "free_bytes": free * wb, "regions": {}}
        for _role, r in self.regions:
            for p in r.slices:
                n = sum(1 for q, _, _ in r.locs if q == p)
                rep[c.slice_names[p]]["regions"][r.name] = n
        tot = {k: sum(v[k] for v in rep.values()) for k in ("used_words", "free_words", "used_bytes", "free_bytes")}
        rep["total"] = tot
        return rep

    def summary(self):
        """A few lines: cycles, MXU utilization, and the SRAM use per slice."""
        rep = self.sram_report()
        lines = [f"lowered for {self.config.name}, batch {self.batch}: {self.cycles} cycles, "
                 f"{self.matmul_items} MATMUL items, MXU utilization {self.utilization:.1%}"]
        for s, v in rep.items():
            if s == "total":
                continue
            lines.append(f"  {s}: {v['used_words']} words used ({v['used_bytes']} B), {v['free_words']} free "
                         f"({v['free_bytes']} B)")
        t = rep["total"]
        lines.append(f"  total: {t['used_bytes']} B used, {t['free_bytes']} B free")
        return "\n".join(lines)

    # ---- running -----------------------------------------------------------------------------------
    def simulate(self, codes, max_cycles=None):
        """Load the program, constants and the input ``codes`` on a fresh ``ChipSim`` and run it: the
        ``ChipResult`` (faults are in its ``error``)."""
        from golden.chip import ChipSim
        sim = ChipSim(self.config)
        sim.load(self.program.words)
        for s, bank, addr, words in self.constants + self.pack_inputs(codes):
            sim.write_mem(s, bank, addr, words)
        return sim.run(max_cycles=max_cycles or self.program.predicted_cycles + 1000)

    def run_golden(self, inputs, max_cycles=None):
        """Quantize float ``inputs`` (as ``QGraph.run_int8``), run on ``golden.chip.ChipSim``: ``(outputs,
        cycles)``. A chip fault raises ``RuntimeError``."""
        res = self.simulate(self.quantize_inputs(inputs), max_cycles)
        if res.error is not None:
            raise RuntimeError(f"the chip faulted: {res.error}")
        return self.unpack_outputs(res), res.cycles


# ---- lowering ------------------------------------------------------------------------------------------
class _Lowering:
    def __init__(self, qgraph, config, batch):
        self.q, self.c, self.batch = qgraph, config, batch
        self.alloc = MemAllocator(config)
        self.b = ProgramBuilder(config)
        self.mxu, self.vxu = config.positions("mxu")[0], config.positions("vxu")[0]
        self.T = {}
        self.regions = []                   # (role, Region)
        self.constants = []
        self.act_slices = []                # MEM slices holding activations, in order of first use
        self.layout = InputsLayout(config)
        self.matmuls = 0
        self.uses = {}                      # tensor name -> remaining uses (consumer steps + outputs)
        for st in qgraph.steps:
            for i in st.inputs:
                self.uses[i] = self.uses.get(i, 0) + 1
        for t in qgraph.outputs.values():
            self.uses[t] = self.uses.get(t, 0) + 1

    # ---- allocation --------------------------------------------------------------------------------
    def _what(self, desc, n, avoid=""):
        return f" ({desc}; {n} words = {n * 4 * self.c.lanes} bytes{avoid})"

    def _region(self, role, name, n, exclude=(), granule=1, desc="", avoid="", order=None):
        """A region of ``n`` words on MEM slices not in ``exclude``: in one slice when it fits (``order``:
        the slices to try, else activations west of the MXU first / constants by most free words), else
        spread over them (the ``MemAllocator`` error when they do not hold it)."""
        c = self.c
        if order is None:
            allowed = [p for p in c.positions("mem") if p not in set(exclude)]
            if role == "act":
                west, east = _sides(c, self.mxu)
                order = [p for p in west + east if p in allowed]
            else:
                order = sorted(allowed, key=lambda p: -self.alloc.free_words(p))
        what = self._what(desc, n, avoid)
        region = None
        for p in order:                     # one slice when it fits
            try:
                region = self.alloc.alloc(name, n, [p], granule=granule, what=what)
                break
            except ValueError:
                continue
        if region is None:
            region = self.alloc.alloc(name, n, order, granule=granule, what=what)
        if role == "act":
            self.act_slices += [p for p in region.slices if p not in self.act_slices]
        self.regions.append((role, region))
        return region

    def _const(self, name, data, exclude=(), granule=1, desc="", avoid=""):
        data = np.asarray(data)
        r = self._region("const", name, len(data), exclude, granule, desc, avoid)
        self.constants += r.inputs(data)
        return r

    def _const_vectors(self, name, vector, n, exclude):
        """``n`` word locations (one per operand word) reading copies of ``vector`` (at most 16 copies)."""
        reps = max(1, min(n, 16))
        r = self._const(name, np.tile(np.asarray(vector, np.int64), (reps, 1)), exclude, granule=reps,
                        desc=f"{reps} copies of one vector", avoid=", on MEM slices not holding its operand")
        return [r.locs[i % reps] for i in range(n)]

    # ---- trying placements -------------------------------------------------------------------------
    def _snapshot(self):
        return (copy.deepcopy(self.b, {id(self.c): self.c}), {p: list(v) for p, v in self.alloc.free.items()},
                len(self.regions), len(self.constants), list(self.act_slices), self.matmuls)

    def _restore(self, snap):
        b, free, nr, nc, acts, mm = snap
        self.b, self.alloc.free, self.matmuls = copy.deepcopy(b, {id(self.c): self.c}), {p: list(v) for p, v in
                                                                                          free.items()}, mm
        del self.regions[nr:]
        del self.constants[nc:]
        self.act_slices[:] = acts

    def _placed(self, name, n, desc, body, busy=(), inplace=None):
        """Run ``body(region)`` (allocations and scheduling of a phase writing a new activation of ``n``
        words) with the first output placement that schedules: ``inplace`` (a region) when given, then one
        slice at a time (slices not in ``busy``, the ones the phase reads, first; a slice's queue issues one
        instruction per cycle, so its READs and WRITEs may collide), then spread. The first scheduling error
        when none works; the ``MemAllocator`` error when the region fits nowhere."""
        c = self.c
        west, east = _sides(c, self.mxu)
        base = [p for p in self.act_slices] + [p for p in west + east if p not in self.act_slices]
        order = [p for p in base if p not in set(busy)] + [p for p in base if p in set(busy)]
        cands = ([inplace] if inplace is not None else []) + [[p] for p in order] + [order]
        snap = self._snapshot()
        first = None
        for i, cand in enumerate(cands):
            if isinstance(cand, Region):
                region = cand
            else:
                try:
                    region = self._region("act", name, n, desc=desc, order=cand)
                except ValueError:
                    if i == len(cands) - 1:
                        raise
                    continue
            try:
                return body(region)
            except ValueError as e:
                first = first or e
                self._restore(snap)
        raise first

    # ---- tensors -----------------------------------------------------------------------------------
    def _act(self, t, where):
        """``t`` as an activation in MEM (a graph input is given its region now)."""
        if t.kind == "act":
            return t
        if t.kind == "host":
            M, N = t.rows, t.features
            nt = _tiles(N, self.c.mxu_cols)
            r = self._region("act", f"input '{t.source}'" + (f" as {t.shape}" if t.name != t.source else ""),
                             nt * M, desc=f"int8 {M} x {N} as {nt} tiles x {M} words")
            self.layout.views.setdefault(t.source, []).append((t.shape, r))
            self.layout.gathers.setdefault(t.source, []).append(t.gather)
            t.kind, t.region, t.pad = "act", r, PAD_CODE
            return t
        if t.kind == "ids":
            raise NotImplementedError(f"{where}: its input {t.name!r} holds integer ids, which the lowering "
                                      f"only takes as the ids of an embedding")
        raise NotImplementedError(f"{where}: its input {t.name!r} holds argmax indices, which the lowering "
                                  f"only returns as outputs")

    def _consume(self, name):
        self.uses[name] -= 1

    def _in_place_ok(self, t):
        """Whether no later step nor output reads ``t``'s region (through ``t`` or an alias)."""
        return all(self.uses.get(o.name, 0) == 0 for o in self.T.values() if o.region is t.region)

    def _vxu_step(self, st, x, body):
        """``body(out region)`` for a VXU pass over ``x`` writing step ``st``'s output (in place when no one
        else reads ``x``)."""
        return self._placed(f"'{st.name}'", len(x.region),
                            f"int8 {x.rows} x {x.features} as {len(x.region) // x.rows} tiles x {x.rows} words",
                            body, busy=x.region.slices, inplace=x.region if self._in_place_ok(x) else None)

    # ---- steps -------------------------------------------------------------------------------------
    def run(self):
        for st in self.q.steps:
            op = st.op
            where = f"{op} '{st.name}'"
            for i in st.inputs:
                self._consume(i)
            if op == "input":
                self._input(st)
            elif op == "linear":
                self._linear(st, self._act(self.T[st.inputs[0]], where))
            elif op == "relu":
                x = self._act(self.T[st.inputs[0]], where)
                self._max_zp(st, x, st.params["zp"])
            elif op == "table":
                self._table(st, self._act(self.T[st.inputs[0]], where))
            elif op == "argmax":
                self._argmax(st, self.T[st.inputs[0]])
            elif op == "reshape":
                self._reshape(st, self.T[st.inputs[0]])
            elif op == "embedding":
                self._embedding(st, self.T[st.inputs[0]])
            elif op == "add":
                self._add(st)
            elif op == "matmul":
                self._matmul(st)
            else:
                raise NotImplementedError(f"{op} '{st.fused[0]}': the lowering handles linear, matmul, add, "
                                          f"relu, tanh/sigmoid/gelu/exp, embedding (of input ids), argmax and "
                                          f"reshape steps, not {op}")
        outputs = {}
        for name, tname in self.q.outputs.items():
            t = self.T[tname]
            if t.kind == "ids":
                raise NotImplementedError(f"output {name!r}: integer ids ({tname!r}) are not lowered as outputs")
            if t.kind == "host":
                self._act(t, f"output {name!r}")
            kind = "indices" if t.kind == "idx" else "codes"
            outputs[name] = OutputLoc(tname, kind, t.shape, t.rows, t.features if kind == "codes" else 1,
                                      t.region.segments)
        prog = self.b.finish()
        return CompiledModel(self.q, self.c, self.batch, prog, self.layout, self.constants, outputs, self.regions,
                             self.matmuls, self.alloc)

    def _shape(self, shape):
        return tuple(self.batch if d is None else int(d) for d in shape)

    def _input(self, st):
        node = self.q.graph.node(st.name)
        if len(node.shape) == 0:
            raise NotImplementedError(f"input '{st.name}': scalar inputs are not lowered")
        kind = "host" if st.params["qp"] is not None else "ids"      # integer inputs: embedding ids
        self.T[st.name] = _T(st.name, kind, self._shape(node.shape), source=st.name)

    def _reshape(self, st, x):
        node = self.q.graph.node(st.name)
        shape = self._shape(node.shape)
        if x.kind in ("host", "ids"):
            self.T[st.name] = _T(st.name, x.kind, shape, source=x.source, gather=x.gather)
        elif x.kind == "idx" or (len(shape) >= 1 and shape[-1] == x.features):
            self.T[st.name] = _T(st.name, x.kind, shape, x.region, x.pad)
        else:
            raise NotImplementedError(f"reshape '{st.name}': {x.shape} -> {shape} changes the last axis of a "
                                      f"tensor computed on the chip (the lowering reshapes inputs on the host, "
                                      f"and on the chip only regroups rows)")

    def _embedding(self, st, ids):
        """``table[ids]`` of graph-input ids: a host gather (module docstring), the result a host tensor."""
        if ids.kind != "ids":
            raise NotImplementedError(f"embedding '{st.name}': its ids {ids.name!r} are computed on the chip, "
                                      f"and the chip has no data-dependent addressing (the lowering gathers "
                                      f"embedding rows on the host, for ids that are a graph input)")
        shape = self._shape(self.q.graph.node(st.name).shape)
        self.T[st.name] = _T(st.name, "host", shape, source=ids.source, gather=st.params["table"])

    def _channel_locs(self, r, reps, M, Nt):
        """Word locations of ``r`` (``reps`` copies per N tile) for the words ``nt·M + m`` of an activation."""
        return [r.locs[nt * reps + m % reps] for nt in range(Nt) for m in range(M)]

    def _add(self, st):
        """``acc = q_a·m_a + q_b·m_b + c`` (int32), one requant, a fused ReLU (module docstring)."""
        c = self.c
        node = st.fused[0]
        where = f"add '{node}'"
        p, rq = st.params, st.params["requant"]
        for op in ("mul", "requant"):
            if op not in c.vxu_ops:
                raise NotImplementedError(f"{where}: the lowering needs the VXU operation {op!r}, which config "
                                          f"{c.name} lacks")
        a = self._act(self.T[st.inputs[0]], where)
        bt = self._act(self.T[st.inputs[1]], where) if p["m_b"] is not None else None
        if bt is not None and (bt.rows != a.rows or bt.features != a.features):
            raise NotImplementedError(f"{where}: the lowering adds two activations of the same shape only, not "
                                      f"{a.shape} and {bt.shape} (no broadcasting)")
        M, N = a.rows, a.features
        Nt = _tiles(N, c.mxu_cols)
        assert len(a.region) == Nt * M
        cv = np.asarray(p["c"], np.int64)
        if cv.size != 1 and not (cv.ndim >= 1 and cv.shape[-1] == N and cv.size == N):
            raise NotImplementedError(f"{where}: the lowering adds a constant per channel (shape ({N},)) only, "
                                      f"not of shape {np.shape(p['c'])} (varying along the rows)")
        cvec = np.broadcast_to(cv.reshape(-1), (N,))
        reps = _bias_reps(c, M, Nt)
        locs = lambda r: self._channel_locs(r, reps, M, Nt)      # noqa: E731
        desc = f"int32 ({N},) as {Nt} tiles x {reps} copies"
        mult = int(rq.mult.reshape(-1)[0])
        assert np.all(rq.mult == mult), "add: one requant multiplier for every channel"
        a_sl = set(a.region.slices)
        b_sl = set(bt.region.slices) if bt is not None else set()

        def body(out):
            b = self.b
            o_sl = set(out.slices)
            ma = self._const(f"m_a of '{node}'", _pack_channels(np.full(N, p["m_a"], np.int64), c, reps, 0),
                             exclude=a_sl | o_sl, granule=reps, desc=desc,
                             avoid=", on MEM slices holding neither a nor the output")
            _vxu_pass(b, b.end, "mul", a.region.locs, out.locs, b_locs=locs(ma))
            if bt is not None:
                if self._in_place_ok(bt) and bt.region is not out:
                    tmp = bt.region
                else:
                    tmp = None
                    for excl in (o_sl | b_sl, o_sl, ()):
                        try:
                            tmp = self._region("scratch", f"b * m_b of '{node}'", Nt * M, exclude=excl,
                                               desc=f"int32 {M} x {N} as {Nt} tiles x {M} words")
                            break
                        except ValueError:
                            if not excl:
                                raise
                mb = self._const(f"m_b of '{node}'", _pack_channels(np.full(N, p["m_b"], np.int64), c, reps, 0),
                                 exclude=b_sl | set(tmp.slices), granule=reps, desc=desc,
                                 avoid=", on MEM slices holding neither b nor its product")
                _vxu_pass(b, b.end, "mul", bt.region.locs, tmp.locs, b_locs=locs(mb))
                _vxu_pass(b, b.end, "add", out.locs, out.locs, b_locs=tmp.locs)
            cr = self._const(f"c of '{node}'", _pack_channels(cvec, c, reps, gvxu.INT32_MIN), exclude=o_sl,
                             granule=reps, desc=desc, avoid=", on MEM slices not holding the sums")
            _vxu_pass(b, b.end, "add", out.locs, out.locs, b_locs=locs(cr))
            _vxu_pass(b, b.end, "requant", out.locs, out.locs, setq=gvxu.RequantParams(mult, rq.shift, rq.zp))
            return out

        inplace = a.region if self._in_place_ok(a) and (bt is None or bt.region is not a.region) else None
        z = self._placed(f"'{st.name}'", Nt * M, f"int8 {M} x {N} as {Nt} tiles x {M} words", body,
                         busy=a_sl | b_sl, inplace=inplace)
        pad = int(gvxu.requant(np.array([gvxu.INT32_MIN]), mult, rq.shift, rq.zp)[0])
        t = _T(st.name, "act", self._shape(self.q.graph.node(st.fused[-1]).shape), z, pad)
        self.T[st.name] = t
        if rq.clamp_needed:
            self._max_zp(st, t, rq.zp)

    def _pref_region(self, role, name, n, prefs, plan=0, data=None, granule=1, desc="", avoid=""):
        """A region (a constant holding ``data`` when given) on MEM slices outside the first exclusion set of
        ``prefs`` that holds it; the slices by most free words, rotated by ``plan`` (another placement to
        try when one does not schedule)."""
        mems = sorted(self.c.positions("mem"), key=lambda q: -self.alloc.free_words(q))
        for i, ex in enumerate(prefs):
            allowed = [q for q in mems if q not in set(ex)]
            if allowed:
                k = plan % len(allowed)
                allowed = allowed[k:] + allowed[:k]
            try:
                r = self._region(role, name, n, granule=granule, desc=desc, avoid=avoid, order=allowed)
            except ValueError:
                if i == len(prefs) - 1:
                    raise
                continue
            if data is not None:
                self.constants += r.inputs(np.asarray(data))
            return r

    def _matmul(self, st):
        """``a @ b`` of two activations (module docstring): ``b`` relaid out as MXU weights (a ``VOP mul`` by
        lane masks), ``-zp_b · rowsum(q_a)`` folded into extra K tiles of the GEMM (constant weight tiles),
        ``-zp_a · colsum(q_b) + K · zp_a · zp_b`` its bias, computed by a small GEMM of constant activation
        rows against the same weights; then one ``requant`` pass (and a fused ReLU's clamp)."""
        c = self.c
        node = st.fused[0]
        where = f"matmul '{node}'"
        if c.mxu_rows != c.mxu_cols:
            raise NotImplementedError(f"{where}: the lowering needs a square MXU (mxu_rows == mxu_cols), not "
                                      f"{c.mxu_rows} x {c.mxu_cols}")
        a = self._act(self.T[st.inputs[0]], where)
        bt = self._act(self.T[st.inputs[1]], where)
        if len(a.shape) != 2 or len(bt.shape) != 2 or bt.rows != a.features:
            raise NotImplementedError(f"{where}: the lowering multiplies two 2-D activations (M, K) @ (K, N) "
                                      f"only, not {a.shape} @ {bt.shape} (no batched matmul)")
        R = C = c.mxu_cols
        K, N = a.features, bt.features
        # b's words are already the weight words when there is no padding to clear (then tried first)
        direct = (K % R == 0 and (N % C == 0 or bt.pad == 0) and c.lanes == C
                  and not set(a.region.slices) & set(bt.region.slices)
                  and all(len({q < self.mxu for q, _, _ in bt.region.locs[i:i + R]}) == 1
                          for i in range(0, len(bt.region), R)))
        if not direct and "mul" not in c.vxu_ops:
            raise NotImplementedError(f"{where}: the lowering needs the VXU operation 'mul' (to lay b out as "
                                      f"MXU weights), which config {c.name} lacks")
        tries = [(True, 0)] * direct + [(False, plan) for plan in range(_MATMUL_PLANS) if "mul" in c.vxu_ops]
        first = None
        snap = self._snapshot()
        for d, plan in tries:
            try:
                return self._matmul_lowered(st, a, bt, d, plan)
            except ValueError as e:
                first = first or e
                self._restore(snap)
        raise first

    def _matmul_lowered(self, st, a, bt, direct, plan):
        """``_matmul`` with b read in place as the weights (``direct``) or relaid out first; ``plan``: which
        of the placements of its constants and scratch regions (``_pref_region``)."""
        c = self.c
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
            wb = self._pref_region("scratch", f"b of '{node}' as weights", Nt * Kt * R, [A | B, A, ()], plan,
                                   granule=R, desc=f"int8 {K} x {N} as {Nt} x {Kt} tiles x {R} rows")
        W = set(wb.slices)
        H = {}                              # (part, rows, lanes) -> a constant weight tile
        for j, u in enumerate(row_parts):
            for rows in sorted({R if kt < Kt - 1 else kr for kt in range(Kt)}):
                for width in sorted({C if nt < Nt - 1 else nr for nt in range(Nt)}):
                    t = np.zeros((R, L), np.int64)
                    t[:rows, :width] = u
                    H[j, rows, width] = self._pref_region(
                        "const", f"rowsum weights {j} ({rows} x {width}) of '{node}'", R,
                        [mems - W, A, ()] if plan % 2 == 0 else [A, ()], plan, t, granule=R,
                        desc=f"{R} rows of {u}", avoid=", on MEM slices not holding its activations")
                    W |= set(H[j, rows, width].slices)
        bias = None                         # -zp_a · colsum(q_b) + K · zp_a · zp_b, when zp_a != 0
        if col_parts:
            bias = self._pref_region("scratch", f"bias of '{node}'", Nt * reps, [A | W, A, ()], plan, granule=reps,
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
            hv = self._pref_region("const", f"colsum activations of '{node}'", len(hv), [W | Bi, W], plan, hv,
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
                    masks = self._pref_region("const", f"lane masks of '{node}'", len(md), [B | W, B], plan, md,
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
            b = self.b
            mm = 0
            if not direct:
                _vxu_pass(b, b.end, "mul", src, wb.locs, b_locs=msk)
            if col_parts:
                mm += _gemm_phase(b, b.end, colsum, _ToMem(b, bias, reps))
            sink = _BiasAdd(b, z, bias, reps, M) if bias is not None else _ToMem(b, z, M)
            mm += _gemm_phase(b, b.end, main, sink)
            if one_mult:
                _vxu_pass(b, b.end, "requant", z.locs, z.locs, setq=gvxu.RequantParams(mult, rq.shift, rq.zp))
            else:
                mr = self._const(f"multipliers of '{node}'", _pack_channels(rq.mult.astype(np.int64), c, reps,
                                                                            _MULT_MAX),
                                 exclude=set(z.slices), granule=reps, desc=chdesc,
                                 avoid=", on MEM slices not holding its accumulators")
                _vxu_pass(b, b.end, "requantv", z.locs, z.locs, b_locs=self._channel_locs(mr, reps, M, Nt),
                          setq=gvxu.RequantParams(1, rq.shift, rq.zp))
            self.matmuls += mm
            return z

        z = self._placed(f"'{st.name}'", Nt * M, f"int8 {M} x {N} as {Nt} tiles x {M} words", body,
                         busy=A | W | Bi)
        pad = rq.zp                         # padding lanes: 0 + 0 accumulated, requantized to zp
        t = _T(st.name, "act", self._shape(self.q.graph.node(st.fused[-1]).shape), z, pad)
        self.T[st.name] = t
        if rq.clamp_needed:
            self._max_zp(st, t, rq.zp)

    def _linear(self, st, x):
        c = self.c
        layer = st.fused[0]                 # the linear node (st.name: the fused chain's output)
        if c.mxu_rows != c.mxu_cols:
            raise NotImplementedError(f"linear '{layer}': the lowering needs a square MXU (mxu_rows == "
                                      f"mxu_cols), so that a layer's result words are the next one's "
                                      f"activation words, not {c.mxu_rows} x {c.mxu_cols}")
        W, bias, rq = st.params["W"], st.params["bias"], st.params["requant"]
        (K, N), M = W.shape, x.rows
        R, C = c.mxu_rows, c.mxu_cols
        Kt, Nt = _tiles(K, R), _tiles(N, C)
        xs = set(x.region.slices)
        w = self._const(f"W of '{layer}'", _pack_w(W, c), exclude=xs, granule=R,
                        desc=f"int8 {K} x {N} as {Nt} x {Kt} tiles x {R} rows",
                        avoid=", on MEM slices not holding its activations")
        reps = _bias_reps(c, M, Nt)
        bl = self._const(f"bias of '{layer}'", _pack_channels(bias.astype(np.int64), c, reps, gvxu.INT32_MIN),
                         exclude=xs | set(w.slices), granule=reps,
                         desc=f"int32 ({N},) as {Nt} tiles x {reps} copies",
                         avoid=", on MEM slices holding neither its activations nor its weights")
        mults = _pack_channels(rq.mult.astype(np.int64), c, reps, _MULT_MAX)

        def body(z):
            b = self.b
            mult = self._const(f"multipliers of '{layer}'", mults, exclude=set(z.slices), granule=reps,
                               desc=f"int32 ({N},) as {Nt} tiles x {reps} copies",
                               avoid=", on MEM slices not holding its accumulators")
            mm = _gemm_phase(b, b.end, _Gemm(M, K, N, x.region, w), _BiasAdd(b, z, bl, reps, M))
            mlocs = [mult.locs[nt * reps + m % reps] for nt in range(Nt) for m in range(M)]
            _vxu_pass(b, b.end, "requantv", z.locs, z.locs, b_locs=mlocs,
                      setq=gvxu.RequantParams(1, rq.shift, rq.zp))
            self.matmuls += mm
            return z

        z = self._placed(f"'{st.name}'", Nt * M, f"int8 {M} x {N} as {Nt} tiles x {M} words", body,
                         busy=xs | set(w.slices) | set(bl.slices))
        pad = int(gvxu.requantv(np.array([gvxu.INT32_MIN]), np.array([_MULT_MAX]), rq.shift, rq.zp)[0])
        shape = self._shape(self.q.graph.node(st.fused[-1]).shape)
        t = _T(st.name, "act", shape, z, pad)
        self.T[st.name] = t
        if rq.clamp_needed:
            self._max_zp(st, t, rq.zp)

    def _max_zp(self, st, x, zp):
        """``vmax(x, zp)`` (a ReLU at the zero point) into ``st``'s output."""
        def body(out):
            zl = self._const_vectors(f"zero point of '{st.name}'", np.full(self.c.lanes, zp), len(x.region),
                                     exclude=set(x.region.slices) | set(out.slices))
            _vxu_pass(self.b, self.b.end, "max", x.region.locs, out.locs, b_locs=zl)
            return out

        out = self._vxu_step(st, x, body)
        pad = None if x.pad is None else max(x.pad, zp)
        self.T[st.name] = _T(st.name, "act", x.shape, out, pad)

    def _table(self, st, x):
        c = self.c
        nt = isa.lut_vectors(c.lanes)
        tv = np.zeros(nt * c.lanes, np.int64)
        tv[:isa.LUT_ENTRIES] = st.params["table"]
        tr = self._const(f"table of '{st.name}'", tv.reshape(nt, c.lanes), granule=nt,
                         desc=f"{st.params.get('func', 'table')}, 256 int8 entries as {nt} vectors")

        def body(out):
            _loadlut(self.b, self.b.end, tr)
            _vxu_pass(self.b, self.b.end, "lut", x.region.locs, out.locs)
            return out

        out = self._vxu_step(st, x, body)
        pad = None if x.pad is None else int(st.params["table"][x.pad & 0xFF])
        self.T[st.name] = _T(st.name, "act", x.shape, out, pad)

    def _argmax(self, st, x):
        c = self.c
        where = f"argmax '{st.name}'"
        node = self.q.graph.node(st.name)
        if x.kind == "idx":
            raise NotImplementedError(f"{where}: argmax of argmax indices is not lowered")
        in_shape = self._shape(self.q.graph.node(st.inputs[0]).shape)
        if st.params["axis"] != len(in_shape) - 1:
            raise NotImplementedError(f"{where}: the lowering takes argmax over the last axis only, not axis "
                                      f"{st.params['axis']} of {in_shape}")
        N = in_shape[-1]
        if N > c.mxu_cols:
            raise NotImplementedError(f"{where}: the lowering takes argmax over at most {c.mxu_cols} values per "
                                      f"row (one VOP argmax per row of one {c.mxu_cols}-lane tile on config "
                                      f"{c.name}), not {N}")
        x = self._act(x, where)
        M = x.rows
        src = x.region.locs[:M]
        mask = N < c.lanes and x.pad != PAD_CODE

        def body(out):
            s = src
            if mask:
                ml = self._const_vectors(f"argmax mask of '{st.name}'", [0] * N + [MASK_VALUE] * (c.lanes - N), M,
                                         exclude=set(p for p, _, _ in src) | set(out.slices))
                _vxu_pass(self.b, self.b.end, "add", s, out.locs, b_locs=ml)
                s = out.locs
            _vxu_pass(self.b, self.b.end, "argmax", s, out.locs)
            return out

        out = self._placed(f"'{st.name}'", M, f"int32 indices of {M} rows", body,
                           busy=set(p for p, _, _ in src))
        self.T[st.name] = _T(st.name, "idx", self._shape(node.shape), out)


def lower(qgraph, config, batch=None):
    """Lower ``qgraph`` (a ``compiler.quantize.QGraph``) for ``config`` (a ``spec.config.ChipConfig``) with
    ``batch`` rows (the graph inputs' ``None`` dimension; may be omitted when no input has one): a
    ``CompiledModel`` (module docstring)."""
    if not isinstance(qgraph, QGraph):
        raise TypeError(f"qgraph must be a compiler.quantize.QGraph, not {type(qgraph).__name__}")
    if not isinstance(config, ChipConfig):
        raise TypeError(f"config must be a spec.config.ChipConfig, not {config!r}")
    for kind in ("mem", "mxu", "vxu"):
        if not config.positions(kind):
            raise ValueError(f"config must have a {kind.upper()} slice, not {config.name}")
    for op in ("requantv", "lut", "argmax", "add", "max"):
        if op not in config.vxu_ops:
            raise ValueError(f"config {config.name} must have the VXU operation {op!r}")
    free = [t for t in qgraph.graph.inputs if t.shape and t.shape[0] is None]
    if batch is None:
        if free:
            raise ValueError(f"batch must be given: input '{free[0].name}' has a None batch dimension")
        batch = 1
    if not isinstance(batch, (int, np.integer)) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, not {batch!r}")
    return _Lowering(qgraph, config, int(batch)).run()
