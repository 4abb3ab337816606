"""The decode step of a language model: one token through every layer, the KV cache kept in MEM between steps.

``lower_decode(qgraph, graph1, config)`` → ``(CompiledModel, StepData)``. ``qgraph`` is the model quantized at
its full context ``T`` (``compiler.quantize``: the int8 reference), ``graph1`` the same model traced for one
token (the shapes of a step). One program serves every position ``p``: what depends on ``p`` is data the host
writes before each START (``StepData``), so the queues are loaded once and MEM keeps the weights and the
cache from run to run (the chip's START keeps MEM and the queues).

Per step the host writes (``StepData.writes(token, p)``):

* the token's embedding row (a gather of the quantized table, as ``compiler/lower/embedding.py``);
* the row ``p`` of every position-dependent constant (learned positions: the ``c`` of an ``add`` of a (T, N)
  constant; rotary tables: the ``k`` and ``c`` of a ``mul`` by a (T, N) constant), packed as the lowering
  packs it;
* ``amask``: the attention's additive mask over the ``T`` keys for each of the ``H`` heads' rows, 0 for keys
  ``<= p``, ``-2**30`` after;
* ``kw_rows``: row 0 of each of the ``Tt = T / C`` key tiles of the new-key weights ``kw`` (16 × T, the other
  rows 0): the one-hot of lane ``p mod C`` in tile ``p // C``, 0 in the others;

and reads the logits (``StepData.logits``): ``write_words + 2 + read_words`` host-edge commands per step (with
START and STATUS). On the chip, per step: ``R''`` (``T`` words, word ``s`` every lane 1 when ``s = p``, else
0): a ``VOP spread`` of row 0 of each ``kw`` tile. Then the layers; each attention works on all ``H`` heads at
once (``hd = C`` lanes: head ``h`` is word ``h`` of q, k, v, which are quantized with zero point 0):

1. the new key: ``spread(k_h)`` (word ``i`` every lane ``k_h[i]``, ``H·hd`` rows) ``@ kw`` on the MXU gives
   ``k_h[i]`` at lane ``p`` of the transposed cache word (head ``h``, tile ``p // C``, row ``i``) and 0
   elsewhere, added into the caches ``Kᵀ`` (``H·hd × T``: head ``h``'s ``hd × T`` block is the weight side of
   ``q_h @ Kᵀ_h``);
2. the new value: ``v_h`` copied into row 0 of head ``h``'s weight tile ``wv`` (other rows 0); ``R'' @ wv``
   gives ``v_h`` in row ``p`` of every head's ``V_h`` (``T × hd``), 0 elsewhere, added into the caches; ``Σ_s
   V_h[s]`` (for the probabilities' zero point) is kept beside them, ``+= v_h``;
3. the scores of every head in one GEMM: ``[q_h on the block diagonal]`` (``H × H·hd``) ``@ Kᵀ`` (``H·hd ×
   T``), requantized: an ``H × T`` activation;
4. the softmax of the ``H`` rows with ``amask`` (``compiler/lower/rows.py``): keys after ``p`` (zeros in the
   cache) get probability code -128, the zero point;
5. the values: ``[P_h on the block diagonal]`` (``H × H·T``) ``@ V`` (``H·T × hd``) ``+ 128 · Σ_s V_h[s]`` is
   ``Σ_s (P_h[s] + 128) · V_h[s]``, the matmul rule's accumulator (a masked key adds 0), requantized: word
   ``h`` of the output is head ``h``'s, exactly the full-sequence reference's row ``p``
   (``compiler/quantize/attention.py``).

Reshapes and transposes between (1, 1, H·hd) and (1, H, 1, hd) are no-ops on the layout when ``hd = C``
(word ``h`` either way). Every constant (weights, caches, the zero rows of the block-diagonal operands) is
kept for the whole run and never reused; scratch written on the chip reuses dead scratch (``Lowering.reuse``)
but never a constant, so what a later step reads is never overwritten.
"""
from dataclasses import dataclass, field

import numpy as np

from golden import vxu as gvxu

from ..lower.layout import _T, _pack_act, _pack_channels
from ..lower.model import CompiledModel, OutputLoc
from ..lower.placement import Lowering
from ..lower.registry import lowering_for
from ..lower.rows import lower_softmax
from ..memory import Region
from ..phases import _Gemm, _gemm_phase, _spread_pass, _ToMem, _vxu_pass
from ..quantize import QGraph, QStep
from ..quantize.rows import MASK_NEG, SOFTMAX_QP

__all__ = ["lower_decode", "StepData"]

_KEEP = 1 << 40          # uses of a tensor that lives across steps (never released, never written in place)


@dataclass
class StepData:
    """What the host writes before a decode step and reads after it (module docstring). Segments are
    ``(slice name, bank, addr, count)``."""
    config: object
    context: int
    ids_input: str
    layout: object                                   # the CompiledModel's InputsLayout (the embedding gather)
    positional: list = field(default_factory=list)   # [(segments, kind, (T, N) table, pad, words)]
    amask: tuple = ()                                # segments: Tt·H words
    kw_rows: tuple = ()                              # one segment per key tile: its weight row 0
    heads: int = 0
    logits: OutputLoc | None = None

    def _words(self, segments, words):
        out, i = [], 0
        for s, bank, addr, n in segments:
            out.append((s, bank, addr, np.asarray(words[i:i + n], np.int64)))
            i += n
        assert i == len(words)
        return out

    def writes(self, token, p):
        """``[(slice, bank, addr, words)]`` for the token id ``token`` at position ``p``."""
        c, T = self.config, self.context
        if not 0 <= p < T:
            raise ValueError(f"position must be in 0 … {T - 1} (the compiled context), not {p}")
        out = self.layout.pack({self.ids_input: np.array([[token]], np.int64)})
        for segs, kind, table, pad, n in self.positional:
            if kind == "act":
                words = _pack_act(table[p:p + 1], c, pad)
            else:                   # per-channel constants: reps copies per tile, as compiler/lower/mul.py packs
                Nt = -(-table.shape[1] // c.mxu_cols)
                words = _pack_channels(table[p], c, n // Nt, pad)
            out += self._words(segs, words)
        neg = np.where(np.arange(T) <= p, 0, MASK_NEG)[None, :].repeat(self.heads, 0)
        out += self._words(self.amask, _pack_act(neg, c, MASK_NEG))
        C = c.mxu_cols
        for t, seg in enumerate(self.kw_rows):
            row = np.zeros((1, c.lanes), np.int64)
            if t == p // C:
                row[0, p % C] = 1
            out += self._words((seg,), row)
        return out

    @property
    def write_words(self):
        return sum(int(n) for *_, n in self.amask) + len(self.kw_rows) + sum(
            sum(int(n) for *_, n in segs) for segs, *_ in self.positional) + sum(
            len(r) for vs in self.layout.views.values() for _, r in vs)

    @property
    def read_words(self):
        return sum(int(n) for *_, n in self.logits.segments)


def _decode_steps(qg, g1):
    """The full graph's steps for one token: position tables cut to one row (the host writes row p)."""
    T = None
    out, positional = [], {}
    for st in qg.steps:
        if st.op == "attention":
            T = qg.graph.node(st.name).shape[-2]

    def rows(v):
        """A table varying along the positions (one that does not, e.g. ``c = -zp·k`` at zero point 0, keeps
        its row 0 in the memory image and costs the host nothing)."""
        return np.ndim(v) == 2 and np.shape(v)[0] == T and bool(np.any(np.asarray(v) != np.asarray(v)[:1]))

    for st in qg.steps:
        p = st.params
        node = st.fused[0]
        if st.op == "add" and p["m_b"] is None and np.ndim(p["c"]) == 2 and np.shape(p["c"])[0] == T:
            if rows(p["c"]):                                                 # learned positions
                positional[f"c of '{node}'"] = ("act", np.asarray(p["c"], np.int64), gvxu.INT32_MIN)
            st = QStep(st.op, st.name, st.inputs, st.fused, dict(p, c=np.asarray(p["c"])[:1]))
        elif st.op == "mul" and p.get("k") is not None and np.ndim(p["k"]) == 2 and np.shape(p["k"])[0] == T:
            for key, pad in (("k", 0), ("c", gvxu.INT32_MIN)):              # rotary tables
                if rows(p[key]):
                    positional[f"{key} of '{node}'"] = ("channels", np.asarray(p[key], np.int64), pad)
            st = QStep(st.op, st.name, st.inputs, st.fused, dict(p, k=np.asarray(p["k"])[:1], c=np.asarray(p["c"])[:1]))
        out.append(st)
    return QGraph(g1, out, qg.qparams), positional, T


class _Decode:
    def __init__(self, qg, g1, config):
        self.qd, self.positional, self.T = _decode_steps(qg, g1)
        self.c = config
        C = config.mxu_cols
        if self.T is None:
            raise ValueError("the model has no attention: compile it with compiler.compile, not compile_lm")
        if self.T % C:
            raise ValueError(f"max_context must be a multiple of mxu_cols = {C} (the key tiles), not {self.T}")
        self.lw = Lowering(self.qd, config, 1)
        self.lw.keep_constants = True       # the weights and caches outlive every run
        self.lw.reuse = True                # data written on the chip reuses dead scratch (never a constant)
        self.lw.b.eager = True              # VXU passes start when their data is ready, not after everything
        self.kept = []
        self.rp = None

    def keep(self, t):
        self.lw.T[t.name] = t
        self.lw.uses[t.name] = _KEEP
        return t

    def const(self, name, words, granule=1, exclude=()):
        r = self.lw.const(name, np.asarray(words, np.int64), exclude=set(exclude), granule=granule,
                          desc=f"{len(words)} words")
        self.keep(_T(name, "act", (len(words), self.c.lanes), r, 0))
        return r

    def scratch(self, name, n, avoid=(), granule=1):
        for ex in (set(avoid), ()):
            try:
                return self.lw.region("scratch", name, n, exclude=ex, granule=granule, desc=f"{n} words")
            except ValueError:
                if not ex:
                    raise

    # ---- the steps -------------------------------------------------------------------------------------
    def relayout(self, st):
        """reshape / transpose between (1, 1, H·hd) and (1, H, 1, hd): the same words when hd = C."""
        x = self.lw.T[st.inputs[0]]
        shape = self.lw.shape(self.qd.graph.node(st.name).shape)
        C = self.c.mxu_cols
        if x.kind != "act" or int(np.prod(shape[:-1])) * -(-shape[-1] // C) != len(x.region) or (
                shape[-1] != x.features and C not in (shape[-1], x.features)):
            raise NotImplementedError(f"{st.op} '{st.name}': the decode step regroups heads of head_dim = "
                                      f"mxu_cols = {C} only, not {x.shape} -> {shape}")
        if shape[-1] != x.features and min(shape[-1], x.features) != C:
            raise NotImplementedError(f"{st.op} '{st.name}': head_dim must be mxu_cols = {C}, not "
                                      f"{min(shape[-1], x.features)}")
        self.lw.T[st.name] = _T(st.name, "act", shape, x.region, x.pad)

    def first_attention(self, H):
        """The per-step host regions (``amask``, ``kw``), ``R''`` and the shared zero-padded regions, before
        the first attention (``H`` heads)."""
        c, T, lw = self.c, self.T, self.lw
        C, L = c.mxu_cols, c.lanes
        Tt = T // C
        self.amask = self.const("attention mask (written per step)", np.zeros((Tt * H, L)))
        self.kw = self.const("new-key weights (row 0 of each tile written per step)", np.zeros((Tt * C, L)),
                             granule=C)
        self.rp = self.scratch("R'' (every lane 1 on the new row)", T, avoid=self.kw.slices, granule=C)
        self.keep(_T("R''", "act", (T, C), self.rp, 0))
        b = lw.b
        for t in range(Tt):
            _spread_pass(b, b.end, self.kw.locs[t * C], self.rp.locs[t * C:(t + 1) * C])
        self.wv = self.const("new-value weights (row 0 of each head's tile written per layer)",
                             np.zeros((H * C, L)), granule=C, exclude=self.rp.slices)
        self.xq = self.const("queries on the diagonal (block-diagonal GEMM)", np.zeros((H * H, L)))
        self.xp = self.const("probabilities on the diagonal (block-diagonal GEMM)", np.zeros((H * Tt * H, L)))

    def gemm(self, x, w, M, K, N, what, avoid=()):
        """``x (M × K) @ w (K × N)`` on the MXU into a new int32 region (``Nt · M`` words)."""
        b = self.lw.b
        out = self.scratch(what, -(-N // self.c.mxu_cols) * M, avoid=set(x.slices) | set(w.slices) | set(avoid))
        self.lw.matmuls += _gemm_phase(b, b.end, _Gemm(M, K, N, x, w), _ToMem(b, out, M))
        return out

    def attention(self, st):
        lw, c, T = self.lw, self.c, self.T
        C = c.mxu_cols
        q, k, v = (lw.T[i] for i in st.inputs)
        H = len(q.region)
        hd = q.features
        if hd != C or len(k.region) != H or len(v.region) != H:
            raise NotImplementedError(f"attention '{st.name}': the decode step needs head_dim = mxu_cols = {C} "
                                      f"and one query row, not q {q.shape}, k {k.shape}, v {v.shape}")
        p = st.params
        if p["zp_q"] or p["zp_k"] or p["zp_v"]:
            raise NotImplementedError(f"attention '{st.name}': the decode step needs q, k, v with zero point 0 "
                                      f"(compiler.quantize makes them symmetric), not {p['zp_q']}, {p['zp_k']}, "
                                      f"{p['zp_v']}")
        if self.rp is None:
            self.first_attention(H)
        Tt = T // C
        b = lw.b
        z = np.zeros((H * Tt * C, c.lanes), np.int64)
        # the GEMMs read the caches beside xq, xp: on other slices
        kt = self.const(f"K caches of '{st.name}' (heads x key tiles x {hd} rows)", z, granule=C,
                        exclude=self.xq.slices)
        vt = self.const(f"V caches of '{st.name}' (heads x {T} rows)", z, granule=C, exclude=self.xp.slices)
        vsum = self.const(f"V column sums of '{st.name}'", np.zeros((H, c.lanes)), exclude=v.region.slices)
        # 1. the new keys: spread(k_h) (H·hd rows) @ kw (row 0 of tile t: the one-hot of p in tile p // C)
        ak = self.scratch(f"spread keys of '{st.name}'", H * hd, avoid=set(k.region.slices) | set(self.kw.slices))
        for h in range(H):
            _spread_pass(b, b.end, k.region.locs[h], ak.locs[h * hd:(h + 1) * hd])
        inc = self.gemm(ak, self.kw, H * hd, C, T, f"new keys of '{st.name}'", avoid=kt.slices)
        # inc word nt·(H·hd) + h·hd + i is the cache word of head h, key tile nt, row i: kt's own order
        _vxu_pass(b, None, "add", kt.locs, kt.locs, b_locs=inc.locs)
        # 2. scores: [q_h on the diagonal] (H × H·hd) @ the stacked caches (H·hd × T)
        _vxu_pass(b, None, "max", q.region.locs, [self.xq.locs[h * H + h] for h in range(H)], same=True)
        _vxu_pass(b, None, "max", v.region.locs, [self.wv.locs[h * C] for h in range(H)], same=True)
        acc = self.gemm(self.xq, kt, H, H * hd, T, f"scores of '{st.name}'", avoid=self.amask.slices)
        rq = p["scores"]
        _vxu_pass(b, None, "requant", acc.locs, acc.locs,
                  setq=gvxu.RequantParams(int(rq.mult.reshape(-1)[0]), rq.shift, rq.zp))
        # 3. the new values: R'' (T rows) @ [v_h in row 0 of tile h] → row p of every head, on the MXU while
        #    the VXU computes the softmax (its passes start when the scores are ready)
        vinc = self.gemm(self.rp, self.wv, T, C, H * C, f"new values of '{st.name}'",
                         avoid=set(vt.slices) | set(acc.slices))
        s_name, p_name = f"{st.name}.scores", f"{st.name}.probs"
        lw.T[s_name] = _T(s_name, "act", (H, T), acc, rq.zp)
        lw.uses[s_name] = 1
        lower_softmax(lw, QStep("softmax", p_name, (s_name,), (p_name,), dict(p["softmax"])), mask=[self.amask])
        lw.uses[s_name] = 0
        _vxu_pass(b, None, "add", vt.locs, vt.locs, b_locs=vinc.locs)
        _vxu_pass(b, None, "add", vsum.locs, vsum.locs, b_locs=v.region.locs)
        P = lw.T[p_name].region
        # 4. values: [P_h on the diagonal] (H × H·T) @ the stacked value caches (H·T × hd), + 128·Σ v (zp_P)
        _vxu_pass(b, None, "max", P.locs, [self.xp.locs[(h * Tt + nt) * H + h] for nt in range(Tt) for h in range(H)],
                  same=True)
        acc = self.gemm(self.xp, vt, H, H * T, hd, f"attention sums of '{st.name}'")
        corr = self.scratch(f"zero-point term of '{st.name}'", H, avoid=set(vsum.slices) | set(acc.slices))
        _vxu_pass(b, None, "mul", vsum.locs, corr.locs,
                  b_locs=lw.const_vectors(f"-zp_P of '{st.name}'", np.full(c.lanes, -SOFTMAX_QP.zp), H,
                                          exclude=set(vsum.slices)))
        _vxu_pass(b, None, "add", acc.locs, acc.locs, b_locs=corr.locs)
        ro = p["out"]
        _vxu_pass(b, None, "requant", acc.locs, acc.locs,
                  setq=gvxu.RequantParams(int(ro.mult.reshape(-1)[0]), ro.shift, ro.zp))
        shape = lw.shape(self.qd.graph.node(st.name).shape)
        lw.T[st.name] = _T(st.name, "act", shape, acc, None)

    def run(self):
        lw = self.lw
        for st in self.qd.steps:
            for i in st.inputs:
                lw.consume(i)
            if st.op in ("reshape", "transpose") and lw.T[st.inputs[0]].kind == "act":
                self.relayout(st)
            elif st.op == "attention":
                self.attention(st)
            else:
                lowering_for(st)(lw, st)
            lw.release_dead()
        return self.finish()

    def finish(self):
        lw = self.lw
        (name, tname), = self.qd.outputs.items()
        t = lw.T[tname]
        out = OutputLoc(tname, "codes", t.shape, t.rows, t.features, t.region.segments)
        prog = lw.b.finish()
        model = CompiledModel(self.qd, self.c, 1, prog, lw.layout, lw.constants, {name: out}, lw.regions,
                              lw.matmuls, lw.alloc)
        ids_input = next(iter(lw.layout.views))
        C = self.c.mxu_cols
        kw_rows = tuple(Region("kw row", self.c, [self.kw.locs[t * C]]).segments[0] for t in range(self.T // C))
        data = StepData(self.c, self.T, ids_input, lw.layout, amask=self.amask.segments, kw_rows=kw_rows,
                        heads=len(self.amask) // (self.T // C), logits=out)
        for name, (kind, table, pad) in self.positional.items():
            r = next(r for role, r in lw.regions if role == "const" and r.name == name)
            data.positional.append((r.segments, kind, table, pad, len(r)))
        return model, data


def lower_decode(qgraph, graph1, config):
    """The decode-step program of ``qgraph`` (module docstring): ``(CompiledModel, StepData)``."""
    return _Decode(qgraph, graph1, config).run()
