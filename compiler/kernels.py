"""Kernels: MEM layouts and static schedules of whole computations on the chip.

Every kernel function takes a ``spec.config.ChipConfig`` and numpy operands and returns a ``Kernel``:

* ``program``: the ``compiler.schedule.Program`` (words per slice, assembly, ``predicted_cycles``);
* ``inputs``: ``(slice name, bank, addr, int32 array n × L)`` to write into MEM before the run;
* ``outputs``: ``{name: ((slice name, bank, addr, count), …)}``, the MEM words to read after the run, in
  order (a region may span banks and slices);
* ``unpack(raw)``: ``{name: words (n × L)}`` → the numpy result; ``expected``: that result computed with
  numpy and the golden unit models (``golden.mxu.matmul``, ``golden.vxu``);
* ``matmul_items`` (= ``mxu_busy_cycles``, MATMUL activations) and ``utilization`` = MATMUL activations /
  ``program.predicted_cycles``; ``run()`` plays it on ``golden.chip.ChipSim`` and returns a ``KernelRun``.

Layouts (``R × C`` = MXU rows × cols, ``L`` lanes, ``Kt = ceil(K / R)``, ``Nt = ceil(N / C)``):

* activations ``X`` (M × K): word ``kt·M + m`` holds ``X[m, kt·R : kt·R + R]`` in lanes ``0 … R-1``;
* weights ``W`` (K × N): word ``(nt·Kt + kt)·R + r`` holds ``W[kt·R + r, nt·C : nt·C + C]`` in lanes
  ``0 … C-1`` (zero rows past K, so every tile loads all ``R`` rows);
* results (M × N): word ``nt·M + m`` holds ``Y[m, nt·C : nt·C + C]`` in lanes ``0 … C-1``. With a square
  MXU this is also the activation layout of a next layer whose K is this N (``mlp``).

GEMM schedule: tiles ordered (M block of at most ``mxu_acc_depth`` rows, N tile, K tile); each tile's
``R`` weight rows are loaded into the shadow buffer while the previous tile computes, its first MATMUL
swaps, K tiles after the first accumulate (``acc``) and the last emits its results (``emit``), which
travel to MEM (``gemm``) or to the VXU (bias add). With at least 2 activations per tile (and ``R + 2 <= 2
× rows per tile``) MATMULs run back to back with no idle cycle. VXU work (add is fused with the last K
tile; requant, ReLU, table lookups, argmax are whole passes MEM → VXU → MEM) runs after the GEMM.

Placement: activations in the MEM slices west of the MXU (east when the west is full), weights in MEM
slices holding no activations (their reads overlap), results and VXU outputs east of the MXU first. Data
that do not fit raise ``ValueError`` naming the array, the slices and the shortfall.
"""
from dataclasses import dataclass

import numpy as np

from golden import vxu as gvxu
from golden.mxu import matmul
from spec import isa
from spec.config import ChipConfig
from spec.isa import Instruction, Stream

from .schedule import Program, ProgramBuilder, ProgramFigures

__all__ = ["check_int8", "Region", "MemAllocator", "Kernel", "KernelRun", "gemm", "gemm_bias_requant_relu",
           "lut_activation", "argmax", "mlp"]

# Stream indices by role (the direction comes from the positions of writer and reader).
ACT, WGT, RES, BIAS = 0, 1, 2, 3     # GEMM: activations, weight rows, MXU results, bias vectors
VXU_A, VXU_B, VXU_OUT = 0, 1, 2      # VXU passes: operand a, operand b, result
ADD_OUT = 3                          # the bias add fused with a GEMM writes its sums here


# ---- MEM regions ---------------------------------------------------------------------------------------
@dataclass
class Region:
    """Words of MEM holding one array: ``locs[i] = (slice index, bank, addr)`` of word ``i``."""
    name: str
    config: ChipConfig
    locs: list

    def __len__(self):
        return len(self.locs)

    @property
    def slices(self):
        return sorted({p for p, _, _ in self.locs})

    def runs(self, start=0, stop=None):
        """``(i0, slice, bank, addr, count)`` of the maximal contiguous runs of words ``start … stop-1``."""
        return _runs(self.locs[start:stop], start)

    @property
    def segments(self):
        """``((slice name, bank, addr, count), …)``: the region as contiguous pieces, in word order."""
        names = self.config.slice_names
        return tuple((names[p], bank, addr, n) for _, p, bank, addr, n in self.runs())

    def inputs(self, data):
        """``[(slice name, bank, addr, words)]`` that store ``data`` (``len(self) × L``) in the region."""
        data = np.asarray(data)
        assert data.shape == (len(self), self.config.lanes), (data.shape, len(self))
        names = self.config.slice_names
        return [(names[p], bank, addr, data[i0:i0 + n]) for i0, p, bank, addr, n in self.runs()]


def _runs(locs, offset=0):
    out = []
    i = 0
    while i < len(locs):
        p, bank, addr = locs[i]
        n = 1
        while i + n < len(locs) and n < isa.MAX_COUNT and locs[i + n] == (p, bank, addr + n):
            n += 1
        out.append((offset + i, p, bank, addr, n))
        i += n
    return out


class MemAllocator:
    """Hands out MEM words slice by slice, bank by bank (lowest free address first)."""

    def __init__(self, config):
        self.config = config
        self.free = {p: [0] * config.mem_banks for p in config.positions("mem")}

    def free_words(self, p):
        return sum(self.config.mem_depth - a for a in self.free[p])

    def alloc(self, name, n, slices, granule=1, what=""):
        """A ``Region`` of ``n`` words filling ``slices`` in order; a ``granule`` of words never straddles
        two slices. ``ValueError`` (what does not fit, and by how much) when they are too small."""
        c = self.config
        free = {p: list(v) for p, v in self.free.items()}
        locs = []
        for p in dict.fromkeys(slices):
            while len(locs) < n:
                g = min(granule, n - len(locs))
                if sum(c.mem_depth - a for a in free[p]) < g:
                    break
                for _ in range(g):
                    bank = next(b for b in range(c.mem_banks) if free[p][b] < c.mem_depth)
                    locs.append((p, bank, free[p][bank]))
                    free[p][bank] += 1
        if len(locs) < n:
            names = ", ".join(c.slice_names[p] for p in dict.fromkeys(slices)) or "no MEM slice"
            room = sum(self.free_words(p) for p in dict.fromkeys(slices))
            raise ValueError(f"{name}{what} needs {n} words of MEM but {names} (config {c.name}: {c.mem_banks} "
                             f"banks x {c.mem_depth} words per slice) have {room} free"
                             f"{f' in pieces of {granule}' if granule > 1 else ''}: it does not fit, short by "
                             f"{n - len(locs)} words")
        self.free = free
        return Region(name, c, locs)


def _sides(config, pos):
    """MEM slices west of ``pos`` (west first) and east of it (nearest first)."""
    mems = config.positions("mem")
    return [p for p in mems if p < pos], [p for p in mems if p > pos]


# ---- the kernel object ---------------------------------------------------------------------------------
@dataclass
class KernelRun:
    """A kernel played on ``golden.chip.ChipSim``: its ``result`` (unpacked) and the ``chip`` result."""
    kernel: "Kernel"
    chip: object
    result: np.ndarray
    raw: dict

    @property
    def cycles(self):
        return self.chip.cycles

    @property
    def ok(self):
        """No fault, the predicted cycle count, and the numpy expectation."""
        return (self.chip.error is None and self.chip.cycles == self.kernel.program.predicted_cycles
                and np.array_equal(self.result, self.kernel.expected))


@dataclass
class Kernel(ProgramFigures):
    """A compiled kernel (module docstring)."""
    name: str
    config: ChipConfig
    program: Program
    inputs: list
    outputs: dict
    expected: np.ndarray
    unpack: object
    matmul_items: int = 0

    @property
    def mxu_busy_cycles(self):
        """Cycles the MXU array takes activations (MATMUL items)."""
        return self.matmul_items

    def run(self, max_cycles=None):
        """Play the kernel on a fresh ``golden.chip.ChipSim``; returns a ``KernelRun``."""
        from golden.chip import ChipSim
        sim = ChipSim(self.config)
        sim.load(self.program.words)
        for s, bank, addr, words in self.inputs:
            sim.write_mem(s, bank, addr, words)
        res = sim.run(max_cycles=max_cycles or self.program.predicted_cycles + 1000)
        raw = {name: np.concatenate([res.read_mem(s, bank, addr, n) for s, bank, addr, n in segs])
               for name, segs in self.outputs.items()}
        return KernelRun(self, res, self.unpack(raw), raw)


# ---- checks --------------------------------------------------------------------------------------------
def _check_config(config, *kinds):
    if not isinstance(config, ChipConfig):
        raise TypeError(f"config must be a spec.config.ChipConfig, not {config!r}")
    for kind in kinds:
        if not config.positions(kind):
            raise ValueError(f"config must have a {kind.upper()} slice, not {config.name} "
                             f"({', '.join(config.slice_names)})")
    return config


def check_int8(name, a, ndim=2):
    """``a`` as a non-empty ``ndim``-D int8 numpy array, or ``TypeError``/``ValueError`` naming ``name``."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, not {type(a).__name__}")
    if a.dtype != np.int8:
        raise TypeError(f"{name} must have dtype int8, not {a.dtype}")
    if a.ndim != ndim or 0 in a.shape:
        raise ValueError(f"{name} must be a non-empty {ndim}-D array, not shape {a.shape}")
    return a


def _check_ints(name, a, shape, lo, hi):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, not {type(a).__name__}")
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, not {a.dtype}")
    if isinstance(shape, tuple):
        bad, want = a.shape != shape, shape
    else:   # vectors: (n, lanes)
        bad, want = a.ndim != 2 or a.shape[1] != shape or not len(a), f"(n, {shape}) with n >= 1"
    if bad:
        raise ValueError(f"{name} must have shape {want}, not {a.shape}")
    if a.size and (a.min() < lo or a.max() > hi):
        raise ValueError(f"{name} must hold values in {lo} … {hi}, not {int(a.min())} … {int(a.max())}")
    return a.astype(np.int64)


def _requant_params(q):
    if isinstance(q, gvxu.RequantParams):
        p = q
    elif isinstance(q, (tuple, list)) and len(q) == 3:
        p = gvxu.RequantParams(*q)
    else:
        raise TypeError(f"requantization parameters must be (mult, shift, zp) or a RequantParams, not {q!r}")
    if p.mult < 1:
        raise ValueError(f"mult must be an integer between 1 and {isa.FIELDS['mult'].hi}, not {p.mult}")
    return p


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


def _write_from(b, items, locs, src, first, index, label):
    """WRITEs storing into ``locs[i]`` the value slice ``src`` writes during ``first + i``."""
    for i0, p, bank, addr, n in _runs(locs):
        s = Stream(b.direction(src, p), index)
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


def _gemm_phase(b, start, g, sink):
    """Schedule the GEMM ``g`` from cycle ``start``; ``sink`` places what happens to the last K tile's results
    (``sink.dirs(m0, mb, nt)`` the MXU's output direction per result; ``sink(b, items, m0, mb, nt, first)``
    with the MXU writing result ``i`` during ``first + i``). Returns the MATMUL activations."""
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
    issued = set()      # MXU issue cycles of the previous tile's MATMULs
    prev_mb = 0
    for m0, mb, nt, kt in tiles:
        # ws: the first weight row's sampling cycle; T: the first activation's (row r is due by T + r - 1,
        # and must come after the previous tile's swap at the previous T).
        if ws is None:
            ws = start + isa.MEM_READ_LATENCY + hw
            T = max(ws + 1, start + isa.MEM_READ_LATENCY + hx)
        else:
            ws = max(T + 1, ws + R)
            while ws - 1 in issued:
                ws += 1
            T = max(T + prev_mb, ws + 1)
        w0 = (nt * Kt + kt) * R
        wl = g.w.locs[w0:w0 + R]
        wdir = set(_dirs(b, wl, mxu, True))
        assert len(wdir) == 1, "a weight tile straddles the MXU"     # the allocator's granule prevents it
        _read_to(b, items, wl, mxu, ws, WGT, f"weights of tile (m0={m0}, nt={nt}, kt={kt})")
        items.append((mxu, ws - 1, Instruction("LOADW", src=Stream(wdir.pop(), WGT), count=R)))
        xl = g.x.locs[kt * M + m0:kt * M + m0 + mb]
        _read_to(b, items, xl, mxu, T, ACT, f"activations of tile (m0={m0}, nt={nt}, kt={kt})")
        last = kt == Kt - 1
        odirs = sink.dirs(m0, mb, nt) if last else [None] * mb
        issued = set()
        for i0, n, (xd, od) in _groups(list(zip(_dirs(b, xl, mxu, True), odirs))):
            kw = dict(emit=True, dst=Stream(od, RES)) if last else {}
            items.append((mxu, T - 1 + i0, Instruction("MATMUL", src=Stream(xd, ACT), count=n, addr=i0,
                                                       swap=i0 == 0, acc=kt > 0, **kw)))
            issued.add(T - 1 + i0)
        if last:
            sink(b, items, m0, mb, nt, T + c.mxu.latency)
        prev_mb = mb
    b.place(items)
    return sum(t[1] for t in tiles)


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


def _vxu_pass(b, start, op, a, out, b_locs=None, setq=None):
    """One VXU operation over words ``a`` (and ``b_locs``) of MEM into words ``out``, from cycle ``start``."""
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
        items.append((vxu, f - 1 + i0, Instruction("VOP", vop=op, src=Stream(ad, VXU_A), count=n,
                                                   dst=Stream(od, VXU_OUT), **kw)))
    _write_from(b, items, out, vxu, f + isa.VXU_PIPELINE, VXU_OUT, f"{op} results")
    b.place(items)


def _loadlut(b, start, table):
    c = b.config
    vxu = c.positions("vxu")[0]
    items = []
    f = start + isa.MEM_READ_LATENCY + max(b.hops(p, vxu) for p in table.slices)
    _read_to(b, items, table.locs, vxu, f, VXU_A, "table")
    items.append((vxu, f - 1, Instruction("LOADLUT", src=Stream(b.direction(table.slices[0], vxu), VXU_A))))
    b.place(items)


# ---- kernels -------------------------------------------------------------------------------------------
def _gemm_regions(c, alloc, M, K, N, x=None):
    """Regions of a GEMM's activations (unless given) and weights."""
    mxu = c.positions("mxu")[0]
    west, east = _sides(c, mxu)
    R, C = c.mxu_rows, c.mxu_cols
    Kt, Nt = _tiles(K, R), _tiles(N, C)
    if x is None:
        x = alloc.alloc("X", Kt * M, west + east, what=f" ({M} x {K} as {Kt} K tiles x {M} words)")
    busy = set(x.slices)
    w = alloc.alloc("W", Nt * Kt * R, [p for p in west + east if p not in busy], granule=R,
                    what=f" ({K} x {N} as {Nt} x {Kt} tiles x {R} rows, on MEM slices holding no activations)")
    return x, w


def _check_gemm(X, W, xname="X", wname="W"):
    check_int8(xname, X)
    check_int8(wname, W)
    if X.shape[1] != W.shape[0]:
        raise ValueError(f"{xname} is {X.shape[0]} x {X.shape[1]} but {wname} is {W.shape[0]} x {W.shape[1]}: "
                         f"the inner dimensions must agree")


def gemm(config, X, W):
    """``Y = X @ W`` (int8 ``M × K`` @ int8 ``K × N`` → int32 ``M × N``): activations and weights from MEM,
    results into MEM east of the MXU."""
    c = _check_config(config, "mxu")
    _check_gemm(X, W)
    (M, K), N = X.shape, W.shape[1]
    alloc = MemAllocator(c)
    x, w = _gemm_regions(c, alloc, M, K, N)
    west, east = _sides(c, c.positions("mxu")[0])
    y = alloc.alloc("Y", _tiles(N, c.mxu_cols) * M, east + west[::-1], what=f" (int32 {M} x {N})")
    b = ProgramBuilder(c)
    matmuls = _gemm_phase(b, 0, _Gemm(M, K, N, x, w), _ToMem(b, y, M))
    return Kernel("gemm", c, b.finish(), x.inputs(_pack_x(X, c)) + w.inputs(_pack_w(W, c)), {"y": y.segments},
                  matmul(X, W), lambda raw: _unpack_y(raw["y"], M, N, c), matmuls)


def _bias_reps(c, M, Nt):
    # copies of each bias vector: enough that the bias READs (2 words each with their NOP) stay within an
    # eighth of the queue, at least 16 (a READ per 16 activations), at most M
    return max(1, min(M, max(16, -(-16 * M * Nt // c.queue_depth))))


def _dense_phase(b, alloc, c, M, K, N, bias, q, out_name):
    """GEMM + bias + requant + ReLU from ``b.end``: regions of X, W, bias copies and the int8 output (named
    ``out_name``), the bias copies per N tile, and the MATMUL activations."""
    vxu = c.positions("vxu")[0]
    Nt = _tiles(N, c.mxu_cols)
    x, w = _gemm_regions(c, alloc, M, K, N)
    west, east = _sides(c, vxu)
    used = set(x.slices) | set(w.slices)
    reps = _bias_reps(c, M, Nt)
    bias_reg = alloc.alloc("bias", Nt * reps, [p for p in east + west[::-1] if p not in used], granule=reps,
                           what=f" ({N} columns as {Nt} tiles x {reps} copies, on MEM slices holding no "
                                f"activations or weights)")
    z = alloc.alloc(out_name, Nt * M, east + west[::-1],
                    what=f" ({M} x {N} as {Nt} tiles x {M} words)")
    matmuls = _gemm_phase(b, b.end, _Gemm(M, K, N, x, w), _BiasAdd(b, z, bias_reg, reps, M))
    _vxu_pass(b, b.end, "requant", z.locs, z.locs, setq=q)
    _vxu_pass(b, b.end, "relu", z.locs, z.locs)
    return x, w, bias_reg, z, reps, matmuls


def _dense_expected(X, W, bias, q):
    z = gvxu.add(matmul(X, W), bias[None, :])
    return gvxu.relu(gvxu.requant(z, q.mult, q.shift, q.zp))


def gemm_bias_requant_relu(config, X, W, bias, mult, shift, zp):
    """``relu(requant(X @ W + bias))``: the bias (int32 per column) added at the VXU as the last K tile's
    results stream out of the MXU, then requant (SETQ ``mult, shift, zp``) and ReLU passes; int8 values
    (as int32) ``M × N`` in MEM."""
    c = _check_config(config, "mxu", "vxu")
    _check_gemm(X, W)
    (M, K), N = X.shape, W.shape[1]
    bias = _check_ints("bias", bias, (N,), gvxu.INT32_MIN, gvxu.INT32_MAX)
    q = _requant_params((mult, shift, zp))
    alloc = MemAllocator(c)
    b = ProgramBuilder(c)
    x, w, bias_reg, z, reps, items = _dense_phase(b, alloc, c, M, K, N, bias, q, "Y")
    inputs = (x.inputs(_pack_x(X, c)) + w.inputs(_pack_w(W, c))
              + bias_reg.inputs(_pack_bias(bias, c, reps)))
    return Kernel("gemm_bias_requant_relu", c, b.finish(), inputs, {"y": z.segments},
                  _dense_expected(X, W, bias, q), lambda raw: _unpack_y(raw["y"], M, N, c), items)


def mlp(config, X, W1, b1, q1, W2):
    """Two layers: ``H = relu(requant(X @ W1 + b1))`` (int8, ``q1 = (mult, shift, zp)``) stored in MEM in the
    activation layout of the second GEMM, then ``Y = H @ W2`` (int32). Needs a square MXU (the hidden
    result words are then the second layer's activation words)."""
    c = _check_config(config, "mxu", "vxu")
    _check_gemm(X, W1, "X", "W1")
    check_int8("W2", W2)
    (M, K), N1 = X.shape, W1.shape[1]
    if W2.shape[0] != N1:
        raise ValueError(f"W1 is {K} x {N1} but W2 is {W2.shape[0]} x {W2.shape[1]}: W2 must have {N1} rows")
    N2 = W2.shape[1]
    if c.mxu_rows != c.mxu_cols:
        raise ValueError(f"mlp needs a square MXU (mxu_rows == mxu_cols) so that hidden result words are the "
                         f"second layer's activation words, not {c.mxu_rows} x {c.mxu_cols}")
    b1 = _check_ints("b1", b1, (N1,), gvxu.INT32_MIN, gvxu.INT32_MAX)
    q = _requant_params(q1)
    alloc = MemAllocator(c)
    b = ProgramBuilder(c)
    x, w1, bias_reg, h, reps, mm1 = _dense_phase(b, alloc, c, M, K, N1, b1, q, "hidden")
    mxu = c.positions("mxu")[0]
    west, east = _sides(c, mxu)
    _, w2 = _gemm_regions(c, alloc, M, N1, N2, x=h)
    y = alloc.alloc("Y", _tiles(N2, c.mxu_cols) * M, east + west[::-1], what=f" (int32 {M} x {N2})")
    mm2 = _gemm_phase(b, b.end, _Gemm(M, N1, N2, h, w2), _ToMem(b, y, M))
    hidden = _dense_expected(X, W1, b1, q).astype(np.int8)
    inputs = (x.inputs(_pack_x(X, c)) + w1.inputs(_pack_w(W1, c)) + bias_reg.inputs(_pack_bias(b1, c, reps))
              + w2.inputs(_pack_w(W2, c)))
    return Kernel("mlp", c, b.finish(), inputs, {"y": y.segments, "hidden": h.segments}, matmul(hidden, W2),
                  lambda raw: _unpack_y(raw["y"], M, N2, c), mm1 + mm2)


def lut_activation(config, x_vectors, table):
    """``table[x & 0xFF]`` per lane of every vector of ``x_vectors`` (``n × L`` int32 values): LOADLUT of the
    256-entry int8 ``table`` from MEM, then one VOP lut pass MEM → VXU → MEM."""
    c = _check_config(config, "vxu")
    x = _check_ints("x_vectors", x_vectors, c.lanes, gvxu.INT32_MIN, gvxu.INT32_MAX)
    t = _check_ints("table", table, (isa.LUT_ENTRIES,), -128, 127)
    nt = isa.lut_vectors(c.lanes)
    tv = np.zeros(nt * c.lanes, np.int64)
    tv[:isa.LUT_ENTRIES] = t
    tv = tv.reshape(nt, c.lanes)
    alloc = MemAllocator(c)
    mems = list(c.positions("mem"))
    xr = alloc.alloc("x_vectors", len(x), mems)
    tr = alloc.alloc("table", nt, mems, granule=nt)
    out = alloc.alloc("y", len(x), mems[::-1])
    b = ProgramBuilder(c)
    _loadlut(b, 0, tr)
    _vxu_pass(b, b.end, "lut", xr.locs, out.locs)
    return Kernel("lut_activation", c, b.finish(), xr.inputs(x) + tr.inputs(tv), {"y": out.segments},
                  gvxu.lut(x, gvxu.lut_table(tv)), lambda raw: raw["y"].astype(np.int32))


def argmax(config, vectors):
    """The index of the largest lane of each vector (``n × L`` int32 values; the lowest on ties): one VOP
    argmax pass; the result is the ``n`` indices."""
    c = _check_config(config, "vxu")
    v = _check_ints("vectors", vectors, c.lanes, gvxu.INT32_MIN, gvxu.INT32_MAX)
    alloc = MemAllocator(c)
    mems = list(c.positions("mem"))
    vr = alloc.alloc("vectors", len(v), mems)
    out = alloc.alloc("y", len(v), mems[::-1])
    b = ProgramBuilder(c)
    _vxu_pass(b, 0, "argmax", vr.locs, out.locs)
    return Kernel("argmax", c, b.finish(), vr.inputs(v), {"y": out.segments},
                  np.argmax(v, axis=1).astype(np.int32), lambda raw: raw["y"][:, 0].astype(np.int32))
