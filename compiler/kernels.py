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

Layouts and the GEMM schedule: ``compiler.phases`` (module docstring); MEM regions and their allocator:
``compiler.memory`` (``Region`` and ``MemAllocator`` are importable from here too).

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

from .memory import MemAllocator, Region, _sides
from .phases import (
    _bias_reps,
    _BiasAdd,
    _Gemm,
    _gemm_phase,
    _loadlut,
    _pack_bias,
    _pack_w,
    _pack_x,
    _tiles,
    _ToMem,
    _unpack_y,
    _vxu_pass,
)
from .schedule import Program, ProgramBuilder, ProgramFigures

__all__ = ["check_int8", "Region", "MemAllocator", "Kernel", "KernelRun", "gemm", "gemm_bias_requant_relu",
           "lut_activation", "argmax", "mlp"]


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
