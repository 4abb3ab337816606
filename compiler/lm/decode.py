"""The decode step of a language model: one token through every layer, the KV cache kept in MEM between steps.

``lower_decode(qgraph, graph1, config)`` → ``(CompiledModel, StepData)``. ``qgraph`` is the model quantized at
its full context ``T`` (``compiler.quantize``: the int8 reference), ``graph1`` the same model traced for one
token (the shapes of a step). One program serves every position ``p``: the queues are loaded once and MEM
keeps the weights, the caches and the position state from run to run (the chip's START keeps MEM and the
queues).

What depends on ``p`` or on the token is found on the chip by address, with READX / WRITEX (an address from a
stream lane, ``indexed.py``):

* the **position state word** (copies on every MEM slice but one; the memory image holds position 0's): lanes
  ``p`` (a value row), ``(p // C)·C`` (the key tile's first word in a head's window), ``p + 1``,
  ``(p mod C)·C``, ``p·Tt`` and ``p·n`` for each position table of ``n`` words a row (``POS_LANE`` …). Its next
  value is gathered from the state table (row ``p``: the word of position ``p``) once the last attention's reads
  of it are placed;
* the **token word** (lane 0: token × words of an embedding row), the one thing the host writes per step;
  the embedding row is gathered from the quantized table in MEM into the row's region;
* every position table (learned positions: the ``c`` of an ``add`` of a (T, N) constant; rotary tables: the
  ``k`` and ``c`` of a ``mul`` by a (T, N) constant) is a table of its rows packed as the lowering packs them,
  gathered into the region the lowering makes for row ``p`` (a hook on ``Lowering.const``);
* the attention mask over the ``T`` keys (0 for keys ``<= p``, ``-2**30`` after) for each head, from a table of
  mask rows; the new key's one-hot (row 0 of ``kw``: lane ``p mod C``) from a table of one-hot rows.

Per step the host writes the token word, STARTs, reads STATUS and the logits (``StepData``), and picks the next
token (greedy or sampled: ``LMProgram.choose``). With ``pick="chip"`` the chip picks greedily itself (an argmax
over the logits, ``compiler/lower/argmax.py``, times the row's words into the token word): the host writes the
token word for the prompt's tokens only and reads it back (``StepData.host_words``). Each attention works on
all ``H`` heads at once (``hd = C`` lanes: head ``h`` is word ``h`` of q, k, v, quantized with zero point 0):

1. the new key, for the next steps (placed after everything else, its passes in the queues' gaps:
   ``append_key``): per head, ``spread(k_h)`` (word ``i`` every lane ``k_h[i]``) times the one-hot of
   ``p mod C`` gives ``k_h[i]`` at lane ``p mod C`` of word ``i``, added into the key tile of ``p`` of head
   ``h``'s transposed cache (``Kᵀ``, ``H·hd × T`` as word ``(h·Tt + nt)·hd + i``: each head's tiles one window;
   the scores' GEMM reads it as its weights, word ``(nt·H + h)·hd + i``) by READX → VXU ``add`` → WRITEX at
   ``(p // C)·hd``; this step's own score of the new key is computed directly (3.);
2. the new value: ``v_h`` into row ``p`` of head ``h``'s ``V_h`` (``T × hd``) by WRITEX; ``Σ_s V_h[s]`` (for the
   probabilities' zero point) is kept beside them, ``+= v_h``;
3. the scores of every head in one GEMM: ``[q_h on the block diagonal]`` (``H × H·hd``) ``@ Kᵀ`` (``H·hd ×
   T``), requantized: an ``H × T`` activation;
4. the softmax of the ``H`` rows with the mask (``compiler/lower/rows.py``): keys after ``p`` (zeros in the
   cache) get probability code -128, the zero point;
5. the values: ``[P_h on the block diagonal]`` (``H × H·T``) ``@ V`` (``H·T × hd``) ``+ 128 · Σ_s V_h[s]`` is
   ``Σ_s (P_h[s] + 128) · V_h[s]``, the matmul rule's accumulator (a masked key adds 0), requantized: word
   ``h`` of the output is head ``h``'s, exactly the full-sequence reference's row ``p``
   (``compiler/quantize/attention.py``).

Reshapes and transposes between (1, 1, H·hd) and (1, H, 1, hd) are no-ops on the layout when ``hd = C``
(word ``h`` either way). Every constant (weights, caches, tables, the zero rows of the block-diagonal
operands) is kept for the whole run and never reused; scratch written on the chip reuses dead scratch
(``Lowering.reuse``) but never a constant, so what a later step reads is never overwritten. A model that does
not fit says which tensor, how big, what is free and where the MEM went (``_mem_summary``).
"""
from dataclasses import dataclass

import numpy as np

from golden import vxu as gvxu
from spec import isa

from ..lower.argmax import argmax_rows
from ..lower.layout import _T, _pack_act, _pack_channels
from ..lower.linear import lower_sibling_linears
from ..lower.model import CompiledModel, OutputLoc
from ..lower.placement import Lowering
from ..lower.registry import lowering_for
from ..lower.rows import lower_softmax
from ..memory import MemoryFull, Region
from ..phases import _Gemm, _gemm_prefetched, _spread_pass, _ToMem, _vxu_pass
from ..quantize import QGraph, QStep
from ..quantize.rows import MASK_NEG, SOFTMAX_QP
from .indexed import _needs_streams, gather, indexed_add, scatter

__all__ = ["lower_decode", "StepData"]

_KEEP = 1 << 40          # uses of a tensor that lives across steps (never released, never written in place)
#: Lanes of the position state word for position p: p (a value row), (p // C)·C (the key tile's first word in a
#: head's window), p + 1 (the next state), (p mod C)·C (the new key's one-hot's C copies), p·Tt·H' (the mask
#: rows: H' = H heads' rows when a bank holds their table, else 1), (p // C)·H (the scores' words of key p);
#: from TABLE_LANE on, p·n for each position table of n words a row. The token word's lane 0: token × (words of
#: an embedding row).
POS_LANE, KTILE_LANE, NEXT_LANE, ONEHOT_LANE, MASK_LANE, SCORE_LANE, TABLE_LANE = range(7)
TOKEN_LANE = 0


@dataclass
class StepData:
    """What the host writes before a decode step and reads after it (module docstring): the token word (one
    segment ``(slice name, bank, addr, 1)``: lane 0 = token × ``emb_words``) and the logits."""
    config: object
    context: int
    token: tuple = ()                                # one segment: the token word
    emb_words: int = 1                               # words of one embedding row
    vocab: int = 0
    logits: OutputLoc | None = None
    pick: str = "host"                               # who picks the next token: the host, or the chip (greedy)

    def writes(self, token, p):
        """``[(slice, bank, addr, words)]`` for the token id ``token`` at position ``p``."""
        c, T = self.config, self.context
        if not 0 <= p < T:
            raise ValueError(f"position must be in 0 … {T - 1} (the compiled context), not {p}")
        if not 0 <= token < self.vocab:
            raise ValueError(f"token must be in 0 … {self.vocab - 1} (the vocabulary), not {token}")
        word = np.zeros((1, c.lanes), np.int64)
        word[0, TOKEN_LANE] = token * self.emb_words
        (s, bank, addr, _), = self.token
        return [(s, bank, addr, word)]

    def token_of(self, word):
        """The token id in a token word (lane 0 = token × ``emb_words``)."""
        return int(word[TOKEN_LANE]) // self.emb_words

    def host_words(self, prompt_step):
        """Host-edge words of a step: the token word's write (every step when the host picks, else the prompt's
        steps only), START, STATUS, and the reads: the logits (the host picks) or the token word (the chip)."""
        reads = sum(int(n) for *_, n in self.logits.segments) if self.pick == "host" else len(self.token)
        return (len(self.token) if self.pick == "host" or prompt_step else 0) + 2 + reads


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
    """The decode step's lowering on one chip. ``shard`` (``compiler.system.decode``): a function of the step
    graph giving the graph this chip lowers (its share of a tensor-parallel system)."""

    def __init__(self, qg, g1, config, pick="host", shard=None):
        self.qd, self.positional, self.T = _decode_steps(qg, g1)
        if shard is not None:
            self.qd = shard(self.qd)
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
        self.lw.b.backfill = True           # ... and fill the gaps of the MEM and VXU queues
        self.lw.prefetch = True             # GEMMs install their first weight tile under earlier work
        if config.mxu_weight_slots > 1:     # ... and up to S tiles, whose READs keep to a slice of their own
            self.lw.weight_home = config.positions("mem")[-1]
        self.kept = []
        self.pending = []                   # key appends placed late (flush_appends)
        self.pick = pick
        self.xq = None
        self.H = None
        self.table_lanes = {}               # words a row of a position table -> its lane of the state word
        self.late = []                      # (region, rows function) whose data is known at the end
        self._const = self.lw.const
        self.lw.const = self._position_hook

    # ---- the position state and the tables it indexes ------------------------------------------------
    def setup_state(self):
        """The state table (row p: the state word of position p, ``T + 1`` rows) on the MEM slice with the most
        free words, a copy of the state word on every other MEM slice (``indexed.py`` reads the nearest copy
        off the slices a phase uses), holding row 0 before the first step (the memory image)."""
        c, lw = self.c, self.lw
        mems = list(c.positions("mem"))
        if len(mems) < 3:
            raise ValueError(f"the decode step keeps its position state on 3 MEM slices at least; config {c.name} "
                             f"has {len(mems)}")
        _needs_streams(c)
        home = max(mems, key=lw.alloc.free_words)
        self.s_table = self.table("position states (row p: the state word of position p)", self.T + 1, [home],
                                  late=self.state_rows)
        self.state = [self.late_const(f"position state word on {c.slice_names[p]}", 1, p,
                                      lambda: self.state_rows()[:1]) for p in mems if p != home]
        self.state_locs = [r.locs[0] for r in self.state]

    def state_rows(self):
        c, T = self.c, self.T
        C = c.mxu_cols
        H = self.H or 1
        rows = np.zeros((T + 1, c.lanes), np.int64)
        p = np.arange(T + 1)
        rows[:, POS_LANE], rows[:, KTILE_LANE], rows[:, NEXT_LANE] = p, (p // C) * C, p + 1
        rows[:, ONEHOT_LANE], rows[:, MASK_LANE] = (p % C) * C, p * (T // C) * self.mask_heads
        rows[:, SCORE_LANE] = (p // C) * H
        for n, lane in self.table_lanes.items():
            rows[:, lane] = p * n
        return rows

    def lane_for(self, n):
        """The state word's lane holding ``p·n`` (a new lane per row length)."""
        if n not in self.table_lanes:
            lane = TABLE_LANE + len(self.table_lanes)
            if lane >= min(self.c.lanes, 1 << isa.FIELDS["lane"].width):
                raise NotImplementedError(f"the decode step's position tables need more row lengths than the "
                                          f"state word has lanes ({self.c.lanes} in config {self.c.name})")
            self.table_lanes[n] = lane
        return self.table_lanes[n]

    def late_const(self, name, n, slice, rows):
        """A constant of ``n`` words on ``slice`` whose data ``rows()`` is known only when lowering ends."""
        r = self.lw.region("const", name, n, exclude=set(self.c.positions("mem")) - {slice}, desc=f"{n} words")
        self.late.append((r, rows))
        self.keep(_T(name, "act", (n, self.c.lanes), r, 0))
        return r

    def table(self, name, n, slices=None, exclude=(), data=None, late=None):
        """A constant of ``n`` consecutive words of one bank (a table READX/WRITEX index): ``data``, zeros, or
        ``late()`` when lowering ends; on ``slices`` (default: the MEM slices not in ``exclude``, most free
        words first)."""
        lw = self.lw
        if slices is None:
            slices = sorted((p for p in self.c.positions("mem") if p not in set(exclude)),
                            key=lambda p: -lw.alloc.free_words(p))
        r = lw.alloc.alloc_table(name, n, slices, what=f" ({n} words)")
        lw.regions.append(("const", r))
        if late is not None:
            self.late.append((r, late))
        else:
            lw.constants += r.inputs(np.zeros((n, self.c.lanes), np.int64) if data is None else data)
        self.keep(_T(name, "act", (n, self.c.lanes), r, 0))
        return r

    def _position_hook(self, name, data, exclude=(), granule=1, desc="", avoid="", weights=False):
        """``Lowering.const``; a position-dependent constant (``_decode_steps``) is, besides, gathered at every
        step from its table by position (row ``p`` at ``p·n``, ``n`` its words) into the region made for it."""
        r = self._const(name, data, exclude, granule, desc, avoid, weights=weights)
        if name in self.positional:
            kind, table, pad = self.positional[name]
            c, n = self.c, len(r)
            Nt = -(-table.shape[1] // c.mxu_cols)
            if kind == "act":
                rows = np.concatenate([_pack_act(table[p:p + 1], c, pad) for p in range(self.T)])
            else:                   # per-channel constants: reps copies per tile, as compiler/lower/mul.py packs
                rows = np.concatenate([_pack_channels(table[p], c, n // Nt, pad) for p in range(self.T)])
            tab = self.table(f"{name} by position", len(rows), exclude=r.slices, data=rows)
            gather(self.lw.b, None, (self.state_locs, self.lane_for(n)), tab, n, r.locs)
        return r

    def update_state(self):
        """The state word of position p + 1 into every copy: a gather of its row into a scratch word, then a VXU
        copy (max of it with itself) into the copies, after this step's last read of them."""
        b = self.lw.b
        g = self.const("next position state", np.zeros((1, self.c.lanes)), exclude=self.s_table.slices)
        gather(b, None, (self.state_locs, NEXT_LANE), self.s_table, 1, g.locs)
        _vxu_pass(b, None, "max", [g.locs[0]] * len(self.state_locs), self.state_locs, same=True)
        self.state_locs.clear()     # a phase placed after this would read position p + 1's word: refused

    def embedding(self, st):
        """The embedding row of the token word's token, gathered from the table in MEM into the row's region."""
        lw, c = self.lw, self.c
        lowering_for(st)(lw, st)
        t = lw.act(lw.T[st.name], f"embedding '{st.name}'")
        table = np.asarray(st.params["table"], np.int64)
        V, D = table.shape
        rows = np.concatenate([_pack_act(table[v:v + 1], c) for v in range(V)])
        n = len(rows) // V
        emb = self.table(f"embedding table of '{st.name}' ({V} rows of {n} words)", len(rows),
                         exclude=t.region.slices, data=rows)
        self.tk = self.const("token word (written per step: token x words a row)", np.zeros((1, c.lanes)),
                             exclude=set(t.region.slices) | set(emb.slices))
        self.emb_words = n
        gather(lw.b, None, ([self.tk.locs[0]], TOKEN_LANE), emb, n, t.region.locs)

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
        if x.name in self.lw.parents:           # a part of a larger region (sibling linears): keep it alive
            self.lw.parents[st.name] = self.lw.parents[x.name]

    def first_attention(self, H):
        """The mask and the new key's one-hot (gathered at every step by position) and the shared zero-padded
        operands of the block-diagonal GEMMs, before the first attention (``H`` heads)."""
        c, T, b = self.c, self.T, self.lw.b
        C, L = c.mxu_cols, c.lanes
        Tt = T // C
        self.H = H
        self.amask = self.const("attention mask (gathered per step)", np.zeros((Tt * H, L)))
        keys = np.arange(T)
        heads = H if T * Tt * H <= c.mem_depth else 1      # every head's row in one gather when a bank holds it
        rows = np.concatenate([_pack_act(np.where(keys <= p, 0, MASK_NEG)[None, :].repeat(heads, 0), c, MASK_NEG)
                               for p in range(T)])
        self.mask_heads = heads
        mt = self.table("attention mask rows by position", len(rows), exclude=self.amask.slices, data=rows)
        if heads == H:
            gather(b, None, (self.state_locs, MASK_LANE), mt, Tt * H, self.amask.locs)
        else:                       # the same row for every head: head h's words are nt·H + h
            for h in range(H):
                gather(b, None, (self.state_locs, MASK_LANE), mt, Tt,
                       [self.amask.locs[nt * H + h] for nt in range(Tt)])
        self.kw = self.const("the one-hot of p mod C, C copies (gathered per step)", np.zeros((C, L)), granule=C)
        eye = np.zeros((C * C, L), np.int64)            # row j: C copies of the one-hot of j
        eye[np.arange(C * C), np.arange(C * C) // C] = 1
        it = self.table("one-hot rows (C copies each)", C * C, exclude=self.kw.slices, data=eye)
        gather(b, None, (self.state_locs, ONEHOT_LANE), it, C, self.kw.locs)
        self.xq = self.const("queries on the diagonal (block-diagonal GEMM)", np.zeros((H * H, L)))
        self.xp = self.const("probabilities on the diagonal (block-diagonal GEMM)", np.zeros((H * Tt * H, L)))

    def gemm(self, x, w, M, K, N, what, avoid=(), out=None):
        """``x (M × K) @ w (K × N)`` on the MXU into a new int32 region (``Nt · M`` words), or into ``out``."""
        b = self.lw.b
        if out is None:
            out = self.scratch(what, -(-N // self.c.mxu_cols) * M,
                               avoid=set(x.slices) | set(w.slices) | set(avoid))
        self.lw.matmuls += _gemm_prefetched(b, b.end, _Gemm(M, K, N, x, w), _ToMem(b, out, M))
        return out

    def off(self, r, slices, what):
        """``r``, or a copy of it off ``slices`` (a VXU copy) when MEM left it on one of them."""
        if not set(r.slices) & set(slices):
            return r
        cp = self.scratch(f"{what} (moved off {', '.join(self.c.slice_names[p] for p in slices)})", len(r),
                          avoid=slices)
        if set(cp.slices) & set(slices):
            raise ValueError(f"{what}: no MEM slice other than {', '.join(self.c.slice_names[p] for p in slices)} has "
                             f"{len(r)} free words")
        _vxu_pass(self.lw.b, None, "max", r.locs, cp.locs, same=True)
        return cp

    def append_regions(self, st, kt):
        """The scratch of ``append_key`` (the spread keys, the new keys), taken when the attention is lowered and
        held until the append (MEM freed late would make its passes wait for the last use of its words)."""
        H, hd, lw = self.H, self.c.mxu_cols, self.lw
        ak = self.scratch(f"spread keys of '{st.name}'", H * hd, avoid=set(self.kw.slices), granule=hd)
        am = self.scratch(f"new keys of '{st.name}'", H * hd,
                          avoid=set(self.kw.slices) | set(kt.slices) | set(ak.slices), granule=hd)
        for r in (ak, am):
            lw.T[r.name] = _T(r.name, "act", (H * hd, self.c.lanes), r, 0)
            lw.uses[r.name] = 1
        return ak, am

    def append_key(self, st, k, kt, ix, ak, am):
        """The new key into the cache, for the next steps (off this step's chain: placed after every other step
        of the step, its passes fill the queues' gaps from when k is ready, ``ProgramBuilder.backfill``). Per
        head h, VXU passes of C items: ``spread(k_h)`` (word i: ``k_h[i]`` on every lane) times the one-hot of
        ``p mod C`` (``kw``: C copies) is ``k_h[i]`` at lane ``p mod C`` of word ``i``, added into the key tile of
        ``p`` in head h's window of the cache (READX / VXU add / WRITEX at ``(p // C)·hd``)."""
        b, H, hd = self.lw.b, self.H, self.c.mxu_cols
        for h in range(H):
            words, new = ak.locs[h * hd:(h + 1) * hd], am.locs[h * hd:(h + 1) * hd]
            _spread_pass(b, None, k.region.locs[h], words)
            _vxu_pass(b, None, "mul", words, new, b_locs=self.kw.locs)
            head = kt.locs[h * self.T:(h + 1) * self.T]     # head h's key tiles: a window of their own
            indexed_add(b, None, (ix, KTILE_LANE), Region(f"{kt.name}, head {h}", self.c, head), new)

    def flush_appends(self):
        """The key appends placed so far late (``append_key``), then, after the last one, the next
        position's state (the appends' READX / WRITEX are the state word's last reads)."""
        for st, k, kt, ix, last, ak, am in self.pending:
            self.append_key(st, k, kt, ix, ak, am)
            for name in (k.name, ak.name, am.name):
                self.lw.consume(name)
            if last:
                self.update_state()
        self.pending.clear()

    def attention(self, st, last=False):
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
        Tt = T // C
        b = lw.b
        # the caches are tables (READX/WRITEX reach the words of position p), away from the index word, the
        # GEMMs' other operands (xq, xp) and the new values
        kt = self.table(f"K caches of '{st.name}' (heads x key tiles x {hd} rows)", Tt * H * hd,
                        exclude=set(self.xq.slices))
        # the weight side of the scores' GEMM, word (nt·H + h)·hd + i: word (h·Tt + nt)·hd + i of the table, so that
        # each head's tiles are one window for its append (append_key)
        kweights = Region(f"{kt.name} as the scores' weights", c,
                          [kt.locs[(h * Tt + nt) * hd + i] for nt in range(Tt) for h in range(H) for i in range(hd)])
        if H != self.H:
            raise NotImplementedError(f"attention '{st.name}': the decode step needs the same heads in every layer, "
                                      f"not {H} after {self.H}")
        vt = self.table(f"V caches of '{st.name}' (heads x {T} rows)", H * T,
                        exclude=set(self.xp.slices) | set(v.region.slices))
        vsum = self.const(f"V column sums of '{st.name}'", np.zeros((H, c.lanes)), exclude=v.region.slices)
        ix = self.state_locs
        if c.lanes != C:
            raise NotImplementedError(f"attention '{st.name}': the decode step needs lanes = mxu_cols, not "
                                      f"{c.lanes} lanes and {C} columns")
        # 1. the new values: v_h into row p of head h's V (WRITEX at p)
        for h in range(H):
            scatter(b, None, (ix, POS_LANE), [v.region.locs[h]], Region(f"V cache of head {h}", c,
                                                                         vt.locs[h * T:(h + 1) * T]))
        # 2. scores over the cache before this step's key: [q_h on the diagonal] (H × H·hd) @ Kᵀ (H·hd × T) into
        #    a table, then the new key's q_h·k_h (a VXU mul and lane sum, at lane p mod C by the one-hot) added
        #    into the words (p // C)·H + h, where the cache's (still zero) key p gave 0
        _vxu_pass(b, None, "max", q.region.locs, [self.xq.locs[h * H + h] for h in range(H)], same=True)
        sacc = self.table(f"scores of '{st.name}' (key tiles x heads)", Tt * H,
                          exclude=set(self.xq.slices) | set(kt.slices) | set(self.amask.slices))
        acc = self.gemm(self.xq, kweights, H, H * hd, T, f"scores of '{st.name}'", out=sacc)
        ns = self.scratch(f"new key's scores of '{st.name}'", H,
                          avoid=set(q.region.slices) | set(k.region.slices) | set(self.kw.slices) | set(sacc.slices))
        qd = [self.xq.locs[h * H + h] for h in range(H)]        # q_h again: the diagonal of xq
        qa = qd if not set(self.xq.slices) & set(k.region.slices) else q.region.locs
        kl = self.off(k.region, {p_ for p_, _, _ in qa}, f"new keys of '{st.name}'").locs   # the two operands
        _vxu_pass(b, None, "mul", qa, ns.locs, b_locs=kl)                                 # on two slices
        _vxu_pass(b, None, "lsum", ns.locs, ns.locs)
        nk = self.off(ns, self.kw.slices, f"new key's scores of '{st.name}'")    # the one-hot on another slice
        _vxu_pass(b, None, "mul", nk.locs, ns.locs, b_locs=self.kw.locs[:H])
        indexed_add(b, None, (ix, SCORE_LANE), sacc, self.off(ns, sacc.slices, "new key's scores").locs)
        rq = p["scores"]
        _vxu_pass(b, None, "requant", acc.locs, acc.locs,
                  setq=gvxu.RequantParams(int(rq.mult.reshape(-1)[0]), rq.shift, rq.zp))
        s_name, p_name = f"{st.name}.scores", f"{st.name}.probs"
        lw.T[s_name] = _T(s_name, "act", (H, T), acc, rq.zp)
        lw.uses[s_name] = 1
        lower_softmax(lw, QStep("softmax", p_name, (s_name,), (p_name,), dict(p["softmax"])), mask=[self.amask])
        lw.uses[s_name] = 0
        b = lw.b            # the softmax's placement tries may have replaced the builder (Lowering.restore)
        _vxu_pass(b, None, "add", vsum.locs, vsum.locs, b_locs=v.region.locs)
        P = lw.T[p_name].region
        # 3. values: [P_h on the diagonal] (H × H·T) @ the stacked value caches (H·T × hd), + 128·Σ v (zp_P)
        _vxu_pass(b, None, "max", P.locs, [self.xp.locs[(h * Tt + nt) * H + h] for nt in range(Tt) for h in range(H)],
                  same=True)
        acc = self.gemm(self.xp, vt, H, H * T, hd, f"attention sums of '{st.name}'")
        # 4. the new key into the cache, for the next steps: placed after every other step (flush_appends), its
        #    passes in the queues' gaps, with k kept until then; the next position's state after the last
        #    attention's append
        lw.uses[k.name] += 1
        self.pending.append((st, k, kt, ix, last, *self.append_regions(st, kt)))
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
        for meeting in self.lower():
            raise AssertionError(f"a decode step on one chip has no meeting points, not {meeting!r}")
        return self.finish()

    def lower(self):
        """Lower every step (and the chip's pick): a generator, yielding where the chips of a system meet
        (``lower_step`` of a shard of ``compiler.system.decode``); on one chip it yields nothing."""
        lw = self.lw
        self.setup_state()
        att = [st for st in self.qd.steps if st.op == "attention"]
        if not att:
            raise ValueError("the model has no attention: compile it with compiler.compile, not compile_lm")
        last_attention = att[-1]
        groups, later = self.sibling_linears()
        for st in self.qd.steps:
            if st.name in later:                # lowered with the first linear of its group
                continue
            if self.xq is None and st.op in ("norm", "linear", "attention"):
                # after the embedding's and the position tables' gathers, which the first steps wait for
                self.first_attention(self.qd.graph.node(last_attention.inputs[0]).shape[1])
            for i in st.inputs:
                lw.consume(i)
            yield from self.lower_step(st, groups, st is last_attention)
            lw.release_dead()
        self.flush_appends()
        if not hasattr(self, "tk"):
            raise NotImplementedError("the decode step needs the token ids to go through an embedding")
        if self.pick == "chip":
            self.pick_on_chip()

    def lower_step(self, st, groups, last_attention):
        """Lower one step; an iterable of the meeting points it needs (none on one chip)."""
        lw = self.lw
        if st.op in ("reshape", "transpose") and lw.T[st.inputs[0]].kind == "act":
            self.relayout(st)
        elif st.op == "attention":
            self.attention(st, last=last_attention)
        elif st.op == "embedding" and lw.T[st.inputs[0]].kind == "ids":
            self.embedding(st)
        elif st.name in groups:
            for other in groups[st.name][1:]:
                for i in other.inputs:
                    lw.consume(i)
            lower_sibling_linears(lw, groups[st.name])
        else:
            lowering_for(st)(lw, st)
        return ()

    def sibling_linears(self):
        """``({first step's name: [linear steps]}, names of the later ones)``: linears of one input with no fused
        ReLU (q, k and v of an attention), lowered as one GEMM (``lower_sibling_linears``)."""
        by_input = {}
        for st in self.qd.steps:
            if st.op == "linear" and len(st.fused) == 1 and not st.params["requant"].clamp_needed:
                by_input.setdefault(st.inputs[0], []).append(st)
        groups = {g[0].name: g for g in by_input.values() if len(g) > 1}
        return groups, {st.name for g in groups.values() for st in g[1:]}

    def pick_on_chip(self):
        """The next token by the chip: the argmax of the logits (the lowest index among the largest codes, as
        ``LMProgram.choose`` at temperature 0) times the embedding row's words, into the token word."""
        lw, c = self.lw, self.c
        (tname,) = self.qd.outputs.values()
        x = lw.T[tname]
        st = QStep("argmax", "next token", (tname,), ("next token",), {"axis": -1})
        idx = argmax_rows(lw, st, x, int(x.shape[-1]))
        scale = np.zeros(c.lanes, np.int64)
        scale[TOKEN_LANE] = self.emb_words
        sl = lw.const_vectors("words a row of the embedding table", scale, 1, exclude=set(idx.slices))
        _vxu_pass(lw.b, None, "mul", idx.locs[:1], self.tk.locs, b_locs=sl)

    def finish(self):
        lw = self.lw
        for r, rows in self.late:
            lw.constants += r.inputs(rows())
        (name, tname), = self.qd.outputs.items()
        t = lw.T[tname]
        out = OutputLoc(tname, "codes", t.shape, t.rows, t.features, t.region.segments)
        prog = lw.b.finish()
        model = CompiledModel(self.qd, self.c, 1, prog, lw.layout, lw.constants, {name: out}, lw.regions,
                              lw.matmuls, lw.alloc)
        data = StepData(self.c, self.T, token=tuple(self.tk.segments), emb_words=self.emb_words,
                        vocab=int(t.shape[-1]), logits=out, pick=self.pick)
        return model, data


def _mem_summary(lw):
    """Where the MEM words went so far, by kind: ``"weights 6,592, caches 1,024, … of 16,384"``."""
    kinds = {"weights": ("W of ",), "caches": ("K caches", "V caches", "V column"),
             "position and embedding tables": ("by position", "embedding table", "position states", "one-hot")}
    used = {k: 0 for k in list(kinds) + ["other constants", "scratch"]}
    for role, r in lw.regions:
        kind = next((k for k, pre in kinds.items() if any(x in r.name for x in pre)), None)
        if kind is None:
            kind = "other constants" if role == "const" else "scratch"
        used[kind] += len(r)
    c = lw.c
    total = len(c.positions("mem")) * c.mem_banks * c.mem_depth
    return ", ".join(f"{k} {v:,}" for k, v in used.items() if v) + f" of {total:,} words"


def lower_decode(qgraph, graph1, config, pick="host"):
    """The decode-step program of ``qgraph`` (module docstring): ``(CompiledModel, StepData)``."""
    d = _Decode(qgraph, graph1, config, pick)
    try:
        return d.run()
    except MemoryFull as e:
        raise MemoryFull(f"the decode step does not fit config {config.name}: {e} (MEM taken so far: "
                         f"{_mem_summary(d.lw)})", e.words, e.anywhere) from None
