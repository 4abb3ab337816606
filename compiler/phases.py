"""Schedule pieces the kernels and the lowering are built of: operand layouts, the GEMM phase, VXU passes.

Layouts (``R × C`` = MXU rows × cols, ``L`` lanes, ``Kt = ceil(K / R)``, ``Nt = ceil(N / C)``):

* activations ``X`` (M × K): word ``kt·M + m`` holds ``X[m, kt·R : kt·R + R]`` in lanes ``0 … R-1``;
* weights ``W`` (K × N): word ``(nt·Kt + kt)·R + r`` holds ``W[kt·R + r, nt·C : nt·C + C]`` in lanes
  ``0 … C-1`` (zero rows past K, so every tile loads all ``R`` rows);
* results (M × N): word ``nt·M + m`` holds ``Y[m, nt·C : nt·C + C]`` in lanes ``0 … C-1``. With a square
  MXU this is also the activation layout of a next layer whose K is this N (``kernels.mlp``).

GEMM schedule (``_gemm_phase``): tiles ordered (M block of at most ``mxu_acc_depth`` rows, N tile, K tile);
each tile's ``R`` weight rows are loaded into the shadow buffer while the previous tile computes, its first
MATMUL swaps, K tiles after the first accumulate (``acc``) and the last emits its results (``emit``), which
travel to MEM (``_ToMem``) or to the VXU (``_BiasAdd``: the bias added as they stream out). With at least 2
activations per tile (and ``R + 2 <= 2 × rows per tile``) MATMULs run back to back with no idle cycle. With
``mxu_weight_slots = S`` a tile's rows wait for the last swap of its slot only (the tile ``S`` back: slots are
taken in turn, ``ProgramBuilder.slot_swap``), so ``_gemm_prefetched`` installs up to ``S`` tiles under the work
before the GEMM, their rows on a stream of their own (``EARLY_WGT``) off the VXU passes' operands. VXU
work (requant, ReLU, table lookups, argmax: ``_vxu_pass``, ``_loadlut``) is whole passes MEM → VXU → MEM.

Every phase starts at a given cycle (the lowering and the kernels pass ``ProgramBuilder.end``) and issues
nothing before it: its READs issue at or after ``start``, its WRITEs after them.
"""
from dataclasses import dataclass

import numpy as np

from spec import isa
from spec.isa import Instruction, Stream

from .memory import Region, _runs
from .schedule import Conflict

# Stream indices by role (the direction comes from the positions of writer and reader).
ACT, WGT, RES, BIAS = 0, 1, 2, 3     # GEMM: activations, weight rows, MXU results, bias vectors
VXU_A, VXU_B, VXU_OUT = 0, 1, 2      # VXU passes: operand a, operand b, result
EARLY_WGT = 6                        # GEMM: weight rows of the tiles installed under earlier work (when it exists)
ADD_OUT = 3                          # the bias add fused with a GEMM writes its sums here


# ---- packing -------------------------------------------------------------------------------------------
def _tiles(n, size):
    return -(-n // size)


def _pack_x(X, c):
    """Activation words (``Kt·M × L``): word ``kt·M + m`` = ``X[m, kt·R …]``."""
    M, K = X.shape
    R = c.mxu_rows
    out = np.zeros((_tiles(K, R) * M, c.lanes), np.int32)
    for kt in range(_tiles(K, R)):
        k0 = kt * R
        kr = min(R, K - k0)
        out[kt * M:(kt + 1) * M, :kr] = X[:, k0:k0 + kr]
    return out


def _pack_w(W, c):
    """Weight words (``Nt·Kt·R × L``): word ``(nt·Kt + kt)·R + r`` = ``W[kt·R + r, nt·C …]``."""
    K, N = W.shape
    R, C = c.mxu_rows, c.mxu_cols
    Kt, Nt = _tiles(K, R), _tiles(N, C)
    out = np.zeros((Nt * Kt * R, c.lanes), np.int32)
    for nt in range(Nt):
        for kt in range(Kt):
            k0, n0 = kt * R, nt * C
            base = (nt * Kt + kt) * R
            out[base:base + min(R, K - k0), :min(C, N - n0)] = W[k0:k0 + R, n0:n0 + C]
    return out


def _pack_bias(bias, c, reps):
    """Bias words (``Nt·reps × L``): ``reps`` copies of ``bias[nt·C …]`` per N tile."""
    N = len(bias)
    C = c.mxu_cols
    Nt = _tiles(N, C)
    out = np.zeros((Nt * reps, c.lanes), np.int32)
    for nt in range(Nt):
        n0 = nt * C
        out[nt * reps:(nt + 1) * reps, :min(C, N - n0)] = bias[n0:n0 + C]
    return out


def _unpack_y(words, M, N, c):
    """Result words (word ``nt·M + m``) → ``M × N``."""
    C = c.mxu_cols
    y = np.zeros((M, N), np.int32)
    for nt in range(_tiles(N, C)):
        n0 = nt * C
        y[:, n0:n0 + C] = words[nt * M:(nt + 1) * M, :min(C, N - n0)]
    return y


# ---- schedule pieces -----------------------------------------------------------------------------------
def _read_to(b, items, locs, dst, first, index, label):
    """READs putting word ``locs[i]`` in front of slice ``dst`` during ``first + i``."""
    for i0, p, bank, addr, n in _runs(locs):
        s = Stream(b.direction(p, dst), index)
        issue = first + i0 - b.hops(p, dst) - isa.MEM_READ_LATENCY
        b.claim_stream(s, p, dst, issue + isa.MEM_READ_LATENCY, n, label)
        items.append((p, issue, Instruction("READ", bank=bank, addr=addr, count=n, dst=s)))


def _write_from(b, items, locs, src, first, index, label, claim=True):
    """WRITEs storing into ``locs[i]`` the value slice ``src`` writes during ``first + i``. ``claim=False``: a tap,
    a WRITE sampling a value already claimed on its way past this slice to a reader further on (a stream is
    read by every slice it passes; the value goes on)."""
    for i0, p, bank, addr, n in _runs(locs):
        s = Stream(b.direction(src, p), index)
        if claim:
            b.claim_stream(s, src, p, first + i0, n, label)
        issue = first + i0 + b.hops(src, p) - isa.MEM_WRITE_LATENCY
        items.append((p, issue, Instruction("WRITE", src=s, bank=bank, addr=addr, count=n)))


def _groups(keys, limit=isa.MAX_COUNT):
    """``(i0, n, key)`` of maximal runs of equal keys, at most ``limit`` long."""
    out = []
    for i, k in enumerate(keys):
        if out and out[-1][2] == k and out[-1][1] < limit:
            out[-1][1] += 1
        else:
            out.append([i, 1, k])
    return [tuple(g) for g in out]


def _dirs(b, locs, other, to_other):
    return [b.direction(p, other) if to_other else b.direction(other, p) for p, _, _ in locs]


@dataclass
class _Gemm:
    """A GEMM's shape and MEM regions (layouts in the module docstring)."""
    M: int
    K: int
    N: int
    x: Region
    w: Region


def _gemm_phase(b, start, g, sink, wstart=None):
    """Schedule the GEMM ``g`` from cycle ``start``; ``sink`` places what happens to the last K tile's results
    (``sink.dirs(m0, mb, nt)`` the MXU's output direction per result; ``sink(b, items, m0, mb, nt, first)``
    with the MXU writing result ``i`` during ``first + i``). Returns the MATMUL activations. ``wstart``: the
    first tile's weight READs may start then, before ``start`` (its install under earlier work: after the
    MXU's last swap, ``ProgramBuilder.last_swap``, and its weights unit's last LOADW)."""
    c = b.config
    mxu = c.positions("mxu")[0]
    R, D = c.mxu_rows, c.mxu_acc_depth
    M = g.M
    Kt, Nt = _tiles(g.K, R), _tiles(g.N, c.mxu_cols)
    tiles = [(m0, min(D, M - m0), nt, kt) for m0 in range(0, M, D) for nt in range(Nt) for kt in range(Kt)]
    hx = max(b.hops(p, mxu) for p in g.x.slices)
    hw = max(b.hops(p, mxu) for p in g.w.slices)
    items = []
    ws = T = None
    S = c.mxu_weight_slots
    if b.loadws != b.swaps:     # every tile is one LOADW and one swap, so the two turns stay together
        raise AssertionError(f"the MXU's weight slots are out of turn: {b.loadws} LOADWs, {b.swaps} swaps")
    swaps = list(b.slot_swap[b.swaps % S:] + b.slot_swap[:b.swaps % S])   # tile j's slot's last swap: swaps[j]
    matmuls, loads = set(), set()   # MXU issue cycles of this GEMM's MATMULs and LOADWs
    prev_mb = 0
    for j, (m0, mb, nt, kt) in enumerate(tiles):
        w0 = (nt * Kt + kt) * R
        wl = g.w.locs[w0:w0 + R]
        # the tiles installed under earlier work take a stream of their own, off the VXU passes' operands
        early = S > 1 and wstart is not None and j < S and c.streams > EARLY_WGT
        # ws: the first weight row's sampling cycle; T: the first activation's (row r is due by T + r - 1,
        # and must come after the last swap of the tile's weight slot, S tiles back).
        free = swaps[len(swaps) - S] + 1
        if ws is None:
            ws = start + isa.MEM_READ_LATENCY + hw
            if ws < free:               # an early start (an eager builder): the slot's last swap must have its weights
                raise Conflict(f"a GEMM from cycle {start} would load weights before the MXU's last swap of the "
                               f"slot at cycle {free - 1}", free - ws)
            T = max(ws + 1, start + isa.MEM_READ_LATENCY + hx)
            if wstart is not None and wstart < start:    # the first tile installed early, swapped in at T
                ws = max(wstart + isa.MEM_READ_LATENCY + hw, free, b.unit_free(mxu, "weights") + 1)
                if early:
                    ws = _early_window(b, wl, mxu, ws, matmuls)
                    if ws > T - 1:      # not under earlier work, nor from any later wstart (ws only grows)
                        raise Conflict(f"the first early weight tile of a GEMM from cycle {start} would load "
                                       f"after its swap at cycle {T}", max(1, start - wstart))
                ws = min(ws, T - 1)
        else:
            ws = max(free, ws + R)
            while ws - 1 in matmuls:    # off the MXU issue cycles of this GEMM's MATMULs
                ws += 1
            if early:
                ws = _early_window(b, wl, mxu, ws, matmuls)
            T = max(T + prev_mb, ws + 1)
        while any(T - 1 + i in loads for i in range(mb)):
            T += 1
        wdir = set(_dirs(b, wl, mxu, True))
        assert len(wdir) == 1, "a weight tile straddles the MXU"     # the allocator's granule prevents it
        wgt = EARLY_WGT if early else WGT
        loads.add(ws - 1)
        swaps.append(T)
        _read_to(b, items, wl, mxu, ws, wgt, f"weights of tile (m0={m0}, nt={nt}, kt={kt})")
        items.append((mxu, ws - 1, Instruction("LOADW", src=Stream(wdir.pop(), wgt), count=R)))
        xl = g.x.locs[kt * M + m0:kt * M + m0 + mb]
        _read_to(b, items, xl, mxu, T, ACT, f"activations of tile (m0={m0}, nt={nt}, kt={kt})")
        last = kt == Kt - 1
        odirs = sink.dirs(m0, mb, nt) if last else [None] * mb
        for i0, n, (xd, od) in _groups(list(zip(_dirs(b, xl, mxu, True), odirs))):
            kw = dict(emit=True, dst=Stream(od, RES)) if last else {}
            items.append((mxu, T - 1 + i0, Instruction("MATMUL", src=Stream(xd, ACT), count=n, addr=i0,
                                                       swap=i0 == 0, acc=kt > 0, **kw)))
            matmuls.add(T - 1 + i0)
        if last:
            sink(b, items, m0, mb, nt, T + c.mxu.latency)
        prev_mb = mb
    b.place(items)
    return sum(t[1] for t in tiles)


def _early_window(b, wl, mxu, ws, matmuls):
    """The first weight row's sampling cycle, from ``ws`` on, of a tile installed under earlier work (weight
    slots): past the conflicts of its weight READs and its LOADW with the queues and units taken before
    (``ProgramBuilder.delay``, a probe: a LOADW meeting an instruction the MXU queue issues waits too) and off
    the MXU issue cycles of this GEMM's MATMULs (``matmuls``, not placed yet), so that one tile's conflict moves
    that tile (and the ones after it) rather than the whole early run."""
    load = Instruction("LOADW", src=Stream("E", 0), count=len(wl))
    while True:
        shift = max([b.delay(p, ws + i0 - b.hops(p, mxu) - isa.MEM_READ_LATENCY,
                             Instruction("READ", bank=bank, addr=addr, count=n, dst=Stream("E", 0)))
                     for i0, p, bank, addr, n in _runs(wl)] + [b.delay(mxu, ws - 1, load)])
        if ws - 1 in matmuls:
            shift = max(shift, 1)
        if not shift:
            return ws
        ws += shift


def _gemm_prefetched(b, start, g, sink):
    """``_gemm_phase`` from ``start`` with its first weight tile installed as early as the queues allow (from
    the weight slices' next issue cycle: a slice's queue issues in order; with weight slots and a backfilling
    builder, from when the MXU's weights unit is free, the READs going into the weight slices' gaps and the
    LOADWs into the MXU queue's, before MATMULs placed earlier), under the work placed before it;
    without the early install when that does not place (a unit, a queue or a stream taken). Not inside
    another trial placement (``ProgramBuilder.checkpoint`` does not nest)."""
    mxu = b.config.positions("mxu")[0]
    if b.backfill and b.config.mxu_weight_slots > 1:   # READs and LOADWs into the queues' gaps, from the weights
        hw = max(b.hops(p, mxu) for p in g.w.slices)    # unit free (ProgramBuilder.backfill)
        wstart = max(0, b.unit_free(mxu, "weights") - isa.MEM_READ_LATENCY - hw)
    else:
        wstart = max(max(b.next_issue(p), b.unit_free(p, "read")) for p in g.w.slices)
    placed, out = _first_fit(b, wstart, start, lambda w: _gemm_phase(b, start, g, sink, wstart=w))
    return out if placed else _gemm_phase(b, start, g, sink)


def _first_fit(b, first, limit, place):
    """Trial placements ``place(t)`` for ``t = first …`` below ``limit``, each rolled back when it does not
    schedule: a ``Conflict`` says how far the next candidate is, any other refusal steps on with growing
    steps. ``(True, what place returned)`` for the first that schedules, else ``(False, None)``."""
    t, step = first, 1
    while t < limit:
        token = b.checkpoint()
        try:
            out = place(t)
        except Conflict as e:
            b.rollback(token)
            t += e.shift
        except ValueError:
            b.rollback(token)
            t, step = t + step, 2 * step
        else:
            b.commit()
            return True, out
    return False, None


class _ToMem:
    """GEMM sink: results straight into the region ``y`` (word ``nt·M + m``)."""

    def __init__(self, b, y, M):
        self.b, self.y, self.M = b, y, M
        self.mxu = b.config.positions("mxu")[0]

    def _locs(self, m0, mb, nt):
        return self.y.locs[nt * self.M + m0:nt * self.M + m0 + mb]

    def dirs(self, m0, mb, nt):
        return _dirs(self.b, self._locs(m0, mb, nt), self.mxu, False)

    def __call__(self, b, items, m0, mb, nt, first):
        _write_from(b, items, self._locs(m0, mb, nt), self.mxu, first, RES, f"results of (m0={m0}, nt={nt})")


class _BiasAdd:
    """GEMM sink: results + bias (VOP add at the VXU, the bias read from MEM alongside) into region ``z``."""

    def __init__(self, b, z, bias, reps, M):
        self.b, self.z, self.bias, self.reps, self.M = b, z, bias, reps, M
        c = b.config
        self.mxu, self.vxu = c.positions("mxu")[0], c.positions("vxu")[0]

    def dirs(self, m0, mb, nt):
        return [self.b.direction(self.mxu, self.vxu)] * mb

    def __call__(self, b, items, m0, mb, nt, first):
        mxu, vxu = self.mxu, self.vxu
        res = Stream(b.direction(mxu, vxu), RES)
        b.claim_stream(res, mxu, vxu, first, mb, f"results of (m0={m0}, nt={nt})")
        f = b.arrival(mxu, vxu, first)                 # the VXU sees result i during f + i
        bl = [self.bias.locs[nt * self.reps + i % self.reps] for i in range(mb)]
        _read_to(b, items, bl, vxu, f, BIAS, f"bias of nt={nt}")
        zl = self.z.locs[nt * self.M + m0:nt * self.M + m0 + mb]
        keys = list(zip(_dirs(b, bl, vxu, True), _dirs(b, zl, vxu, False)))
        for i0, n, (bd, zd) in _groups(keys):
            items.append((vxu, f - 1 + i0, Instruction("VOP", vop="add", src=res, src2=Stream(bd, BIAS), count=n,
                                                       dst=Stream(zd, ADD_OUT))))
        _write_from(b, items, zl, vxu, f + isa.VXU_PIPELINE, ADD_OUT, f"bias sums of (m0={m0}, nt={nt})")


def _eager(b, reads, writes, place):
    """``place(start)`` from the cycle the data is ready (``ProgramBuilder.ready``) when ``b.eager``, or the first
    later cycle where it schedules (queues in order, units free, streams clear: a ``Conflict`` says how far the
    next candidate is; any other refusal steps on with growing steps), else from ``b.end`` (where every phase
    of a non-eager builder starts)."""
    if b.eager:
        placed, out = _first_fit(b, b.ready(reads, writes), b.end, place)
        if placed:
            return out
    return place(b.end)


#: Binary VXU operations whose operands may change places (so either may be the chained one).
_COMMUTATIVE = ("add", "mul", "max")
#: Cycles past its operand's result a one-item chained pass may wait for its other operand or a free unit.
CHAIN_WAIT = 8


def _vxu_pass(b, start, op, a, out, b_locs=None, setq=None, same=False):
    """One VXU operation over words ``a`` (and ``b_locs``) of MEM into words ``out``, from cycle ``start``
    (``None``: as early as the data allows on an eager builder, else ``b.end``); ``same``: a binary operation
    with ``a`` as both operands (one stream on both read ports: a square). On an eager builder a pass whose
    operand is the previous pass's output is a chained VOP when that places (``_chained_pass``)."""
    if start is None:
        if _chained_pass(b, op, a, out, b_locs, setq, same):
            return None
        return _eager(b, list(a) + list(b_locs or []), list(out),
                      lambda s: _vxu_pass(b, s, op, a, out, b_locs, setq, same))
    c = b.config
    vxu = c.positions("vxu")[0]
    items = []
    srcs = list(a) + list(b_locs or [])
    f = start + isa.MEM_READ_LATENCY + max(b.hops(p, vxu) for p, _, _ in srcs)     # first sampling cycle
    if setq is not None:
        items.append((vxu, start, Instruction("SETQ", mult=setq.mult, shift=setq.shift, zp=setq.zp)))
    _read_to(b, items, a, vxu, f, VXU_A, f"{op} operand a")
    if b_locs is not None:
        _read_to(b, items, b_locs, vxu, f, VXU_B, f"{op} operand b")
    keys = list(zip(_dirs(b, a, vxu, True), _dirs(b, b_locs, vxu, True) if b_locs else [None] * len(a),
                    _dirs(b, out, vxu, False)))
    for i0, n, (ad, bd, od) in _groups(keys):
        kw = dict(src2=Stream(bd, VXU_B)) if bd else {}
        if same:
            kw = dict(src2=Stream(ad, VXU_A))
        items.append((vxu, f - 1 + i0, Instruction("VOP", vop=op, src=Stream(ad, VXU_A), count=n,
                                                   dst=Stream(od, VXU_OUT), **kw)))
    _write_from(b, items, out, vxu, f + isa.VXU_PIPELINE, VXU_OUT, f"{op} results")
    b.place(items)
    _note_pass(b, items, out, f)


def _note_pass(b, items, out, f):
    """Remember the pass just placed (its last VOP, its output words, its first result's cycle) for a chain,
    unless it went into a gap before the VXU's latest VOP (``ProgramBuilder.backfill``): then the latest is
    still the one to chain to."""
    last = max((it for it in items if it[2].op == "VOP"), key=lambda it: it[1])[2]
    latest = b.last_op(b.config.positions("vxu")[0], "VOP")
    if latest is not None and latest[1] is last:
        b.vxu_last = (last, tuple(out), f + isa.VXU_PIPELINE)


def _chained_pass(b, op, a, out, b_locs, setq, same):
    """The pass as a chained VOP (``spec.isa`` ``chain``: operand ``a`` is the VXU's latest result) when its
    operand ``a`` (or, for ``add``/``mul``/``max``, ``b``) is exactly the output of the previous VXU pass and
    nothing has used the VXU since: item ``i`` is sampled in the cycle the previous pass puts its result ``i``
    (a one-item pass up to ``CHAIN_WAIT`` cycles later), so the dependent operation skips the MEM write and
    read between them. Operand ``b`` is read from MEM as usual; the results are written to ``out`` as usual.
    Returns whether it placed (nothing is placed otherwise)."""
    note = b.vxu_last
    if note is None or same or not b.eager or b.in_trial:
        return False
    prev, prev_out, first = note
    c = b.config
    vxu = c.positions("vxu")[0]
    last = b.last_op(vxu, "VOP")
    if last is None or last[1] is not prev:
        return False
    a, b_locs = list(a), None if b_locs is None else list(b_locs)
    if a != list(prev_out):
        if b_locs != list(prev_out) or op not in _COMMUTATIVE:
            return False
        a, b_locs = b_locs, a
    n = len(a)
    for f in (range(first, first + CHAIN_WAIT) if n == 1 else (first,)):
        token = b.checkpoint()
        try:
            items = _chained_items(b, f, op, out, b_locs, setq)
        except ValueError:              # a unit, a queue or a stream taken (Conflict), or out of order
            b.rollback(token)
            continue
        b.commit()
        _note_pass(b, items, out, f)
        return True
    return False


def _chained_items(b, f, op, out, b_locs, setq):
    """Place the chained VOPs sampling from cycle ``f`` (``_chained_pass``); returns the items."""
    c = b.config
    vxu = c.positions("vxu")[0]
    items = []
    if setq is not None:            # after the previous VOP's last sampling: the alu is busy until then
        items.append((vxu, f - 2, Instruction("SETQ", mult=setq.mult, shift=setq.shift, zp=setq.zp)))
    if b_locs is not None:
        _read_to(b, items, b_locs, vxu, f, VXU_B, f"{op} operand b")
    keys = list(zip(_dirs(b, b_locs, vxu, True) if b_locs else [None] * len(out), _dirs(b, out, vxu, False)))
    for i0, n, (bd, od) in _groups(keys):
        kw = dict(src2=Stream(bd, VXU_B)) if bd else {}
        items.append((vxu, f - 1 + i0, Instruction("VOP", vop=op, src=Stream(od, VXU_A), count=n, chain=True,
                                                   dst=Stream(od, VXU_OUT), **kw)))
    _write_from(b, items, out, vxu, f + isa.VXU_PIPELINE, VXU_OUT, f"{op} results")
    reads = [((p, ins.bank, ins.addr + i), t + isa.MEM_DECODE_STAGES + i)
             for p, t, ins in items if ins.op == "READ" for i in range(ins.count)]
    stores = [((p, ins.bank, ins.addr + i), t + isa.MEM_WRITE_LATENCY + i)
              for p, t, ins in items if ins.op == "WRITE" for i in range(ins.count)]
    if not b.in_order(reads, stores):
        raise ValueError("a chained pass would read before a store or store before a read")
    b.place(items)
    return items


def _setq_early(b, params):
    """A SETQ of ``params`` on the VXU at its next free cycle (an eager builder only): ahead of VOPs that do not
    requantize, so that a later requant chained to them (``_chained_pass``) needs no SETQ between. The caller
    places no other requant or requantv before the one it is for."""
    vxu = b.config.positions("vxu")[0]
    t = max(b.next_issue(vxu), b.unit_free(vxu, "alu"))
    b.place([(vxu, t, Instruction("SETQ", mult=params.mult, shift=params.shift, zp=params.zp))])


def _spread_pass(b, start, src, out):
    """``VOP spread`` of the word at ``src`` (one location) into the words ``out`` (word ``i`` every lane the
    source's lane ``i mod L``), from cycle ``start`` (``None``: when ready on an eager builder): one READ, one
    VOP of ``len(out)`` items."""
    if start is None:
        return _eager(b, [src], list(out), lambda s: _spread_pass(b, s, src, out))
    c = b.config
    vxu = c.positions("vxu")[0]
    items = []
    f = start + isa.MEM_READ_LATENCY + b.hops(src[0], vxu)
    _read_to(b, items, [src], vxu, f, VXU_A, "spread operand")
    keys = _dirs(b, out, vxu, False)
    for i0, n, od in _groups(keys):
        assert i0 == 0, "spread: the outputs must lie on one side of the VXU"
        items.append((vxu, f - 1, Instruction("VOP", vop="spread", src=Stream(b.direction(src[0], vxu), VXU_A),
                                              count=n, dst=Stream(od, VXU_OUT))))
    _write_from(b, items, out, vxu, f + isa.VXU_PIPELINE, VXU_OUT, "spread results")
    b.place(items)


def _loadlut(b, start, table):
    """LOADLUT of the table region ``table`` from cycle ``start`` (``None``: when ready on an eager builder)."""
    if start is None:
        return _eager(b, table.locs, (), lambda s: _loadlut(b, s, table))
    c = b.config
    vxu = c.positions("vxu")[0]
    items = []
    f = start + isa.MEM_READ_LATENCY + max(b.hops(p, vxu) for p in table.slices)
    _read_to(b, items, table.locs, vxu, f, VXU_A, "table")
    items.append((vxu, f - 1, Instruction("LOADLUT", src=Stream(b.direction(table.slices[0], vxu), VXU_A))))
    b.place(items)


def _bias_reps(c, M, Nt):
    # copies of each bias vector: enough that the bias READs (2 words each with their NOP) stay within an
    # eighth of the queue, at least 16 (a READ per 16 activations), at most M
    return max(1, min(M, max(16, -(-16 * M * Nt // c.queue_depth))))

