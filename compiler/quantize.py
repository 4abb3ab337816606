"""Post-training int8 quantization of a ``compiler.ir.Graph``, and the bit-exact int8 reference.

``quantize(graph, calibration)`` → ``QGraph``. ``calibration`` is one ``{input name: array}`` dict or a
list of them; the float graph is run on each (``Graph.evaluate``) and every tensor's min and max over all
of them is its calibration range (plain min/max, no percentile clipping).

The scheme (what the lowering stage must follow)
------------------------------------------------
* **Activations: per-tensor asymmetric int8.** ``real = scale · (q - zp)``, ``q`` in -128 … 127,
  ``zp`` in -128 … 127. From a range ``[mn, mx]``: ``lo = min(mn, 0)``, ``hi = max(mx, 0)`` (0 is always
  exact), ``[0, 0]`` is widened to ``[0, 1]``; ``scale = (hi - lo) / 255``, ``zp = clamp(round_half_away(-128
  - lo / scale), -128, 127)``. A non-negative tensor (after a ReLU, a sigmoid) gets ``zp = -128`` and uses
  all 256 codes.
* **Weights: per-output-channel symmetric int8** (``zp = 0``): ``s_w[c] = max(max|W[:, c]| / 127, s_top ·
  CHANNEL_SCALE_FLOOR)`` with ``s_top`` the largest channel's scale and the floor ``2**-16`` (a zero or
  nearly dead column cannot get a vanishing scale; an all-zero ``W`` takes 1/127), ``W_q =
  clamp(round_half_away(W / s_w), -127, 127)`` (-128 never appears).
* **Rounding**: ``round_half_away`` everywhere (ties away from zero); float steps (input quantization, the
  compile-time constants) in float64, exact on ties.
* **Input quantization** (on the host, the only float step at run time): ``q = clamp(round_half_away(x /
  scale) + zp, -128, 127)``. Integer inputs (embedding ids) pass unchanged.
* **linear** ``y = x @ W + b`` (with a following ``add`` of a constant (N,) vector folded into ``b``, and a
  following ``relu`` fused, when the intermediate tensor has that one consumer and is not a graph output):

  - ``acc = golden.mxu.matmul(q_x, W_q)`` (int8 × int8 → int32, on the MXU), then
  - ``acc = golden.vxu.add(acc, bias)`` (int32, wraps), with the compile-time int32 vector
    ``bias[c] = round_half_away(b[c] / (s_x · s_w[c])) - zp_x · Σ_k W_q[k, c]`` (the input zero point is
    folded into the bias: no run-time correction);
  - ``q = requantv(acc, mult, shift, zp_out)``: per channel ``clamp(zp_out + round_half_away(acc[c] · mult[c]
    / 2**(31 + shift)), -128, 127)`` with ``mult[c] / 2**(31 + shift) ≈ s_x · s_w[c] / s_out``: one
    ``shift`` for all channels (the chip's ``requantv`` takes ``mult`` as a per-lane vector operand and
    ``shift``/``zp`` from SETQ). See ``requant_multipliers`` for how they are chosen;
  - fused ReLU: ``q = golden.vxu.vmax(q, zp_out)`` (clamp at the zero point). Its output range starts at 0,
    so ``zp_out = -128`` and the clamp is a no-op the lowering may skip (``Requant.clamp_needed``).

  ``quantize`` refuses (``ValueError``) a linear whose int32 accumulator could wrap (``K · 128 · 127 · 2 +
  max|bias|`` must stay below 2**31), so no valid input ever wraps.
* **matmul** of two activations ``a`` (M, K), ``b`` (K, N): ``acc = matmul(q_a, q_b) - zp_b · rowsum(q_a) -
  zp_a · colsum(q_b) + K · zp_a · zp_b`` (int32, with ``golden.vxu.mul``/``add``), one multiplier ``s_a · s_b
  / s_out`` for every channel (as a vector), then requant (and a fused ReLU) as for linear.
* **add** ``a + b``: ``acc = q_a · m_a + q_b · m_b + c`` in int32 (``golden.vxu.mul``/``add``) with the
  accumulator scale ``s_acc = max(s_a, s_b) / 2**16``, ``m = round_half_away(s / s_acc)`` (so ``m <= 2**16``
  and ``|acc| <= 2**25``), ``c = -(m_a · zp_a + m_b · zp_b)``; a constant ``b`` has no ``q_b`` and is folded:
  ``c = round_half_away(b / s_acc) - m_a · zp_a`` (taking ``s_b = max|b| / 127``). Then requant with the one
  multiplier ``s_acc / s_out`` (and a fused ReLU).
* **output scales and the multiplier bound**: the requant multiplier must be below 1 (``shift >= 0``): when
  the calibrated ``s_out`` is finer than ``max(acc scale)`` it is widened to ``max(acc scale) / (1 -
  2**-20)`` (the codes cannot be finer than the accumulator's unit anyway; ``zp`` recomputed).
* **relu** not fused (its input has other consumers or is an output): ``q = vmax(q_x, zp_x)``, the same
  scale and zero point.
* **tanh, sigmoid, gelu, exp**: a 256-entry int8 table in ``golden.vxu.lut`` order (entry ``j`` for the
  input code ``q`` with ``q & 0xFF == j``): ``table[q & 0xFF] = quantize(f(s_x · (q - zp_x)))``, ``f`` the
  float32 function of ``compiler.ir.FLOAT_FUNCTIONS``. The output range is ``f``'s image of the 256 input
  codes (not the calibration samples: every code the table can produce is representable).
* **embedding**: the table quantized per-tensor symmetric (``s = max|T| / 127``, ``zp = 0``,
  ±127); the output is ``T_q[ids]`` with that scale (a gather, no arithmetic).
* **argmax** works on the int8 codes of its input (``golden.vxu.argmax``: the lowest index on ties), not on
  the int32 accumulator of a preceding linear: with per-channel weight scales the accumulators of
  different channels are in different units, while the int8 codes share one scale. Output int32 indices.
* **reshape**: the same codes, scale and zero point.

``QGraph``: ``steps`` (``QStep`` s in topological order, fused groups as one step), ``qparams`` (``{tensor
name: QParams}`` for every int8 tensor the steps produce, graph inputs included), ``run_int8(inputs)`` (the
bit-exact reference: ``{output name: int8 codes}``, argmax int32), ``dequantize(name, q)``,
``run_dequantized(inputs)``, ``weight_bytes``, ``summary()``.
"""
from dataclasses import dataclass, field

import numpy as np

from golden import vxu as gvxu
from golden.mxu import matmul as mxu_matmul
from spec.isa import FIELDS, LUT_ENTRIES

from .ir import FLOAT_FUNCTIONS, TABLE_OPS, Graph

__all__ = ["QParams", "Requant", "QStep", "QGraph", "quantize", "requantv", "requant_multipliers",
           "round_half_away", "quantize_weights", "ACC_SCALE_BITS"]

MULT_MAX = FIELDS["mult"].hi                  # 2**31 - 1
SHIFT_MAX = FIELDS["shift"].hi                # 31
#: ``add``: the accumulator unit is ``max(s_a, s_b) / 2**ACC_SCALE_BITS``.
ACC_SCALE_BITS = 16
_WIDEN = 1 - 2.0 ** -20                        # the largest requant multiplier the widening allows


# ---- arithmetic ----------------------------------------------------------------------------------------
def round_half_away(x):
    """Round float64 values to the nearest integer, ties away from zero (exact on ties); int64."""
    x = np.asarray(x, np.float64)
    a = np.abs(x)
    r = np.floor(a)
    r = r + (a - r >= 0.5)                     # a - floor(a) is exact in floating point
    return (np.sign(x) * r).astype(np.int64)


def requantv(a, mult, shift, zp):
    """``clamp(zp + round_half_away(a · mult[c] / 2**(31 + shift)), -128, 127)`` per lane ``c`` of the last axis:
    ``golden.vxu.requantv``, the chip's ``requantv`` (``mult`` from operand b, ``shift``/``zp`` from SETQ), with
    ``mult`` restricted to the multipliers the compiler emits. ``a`` int32 values; ``mult`` ints 1 … 2**31 - 1
    broadcast over the last axis; returns int32."""
    m = np.asarray(mult)
    if m.dtype.kind not in "iu":
        raise TypeError(f"mult must be an integer array, not {m.dtype}")
    m = m.astype(np.int64)
    if m.size and (m.min() < 1 or m.max() > MULT_MAX):
        raise ValueError(f"mult must hold values in 1 … {MULT_MAX}, not {int(m.min())} … {int(m.max())}")
    return gvxu.requantv(a, m, shift, zp)


def requant_multipliers(real, where="requant"):
    """``(mult, shift)`` for real multipliers ``real`` (each in ``(0, 1)``): ``shift`` the largest in 0 … 31 with
    every ``mult[c] = round_half_away(real[c] · 2**(31 + shift))`` at most 2**31 - 1; a ``mult`` that would
    round to 0 becomes 1. ``mult`` int64. ``ValueError`` when some multiplier is not in ``(0, 1)``."""
    r = np.asarray(real, np.float64).reshape(-1)
    if not r.size or not np.all(np.isfinite(r)) or r.min() <= 0 or r.max() >= 1:
        raise ValueError(f"{where}: real multipliers must be in (0, 1), not {r.min() if r.size else 'none'} … "
                         f"{r.max() if r.size else ''}")
    shift = None
    for s in range(SHIFT_MAX, -1, -1):
        if round_half_away(r.max() * 2.0 ** (31 + s)) <= MULT_MAX:
            shift = s
            break
    if shift is None:
        raise ValueError(f"{where}: the largest real multiplier must round below 2**31 with shift 0, not {r.max()!r}")
    mult = np.maximum(round_half_away(r * 2.0 ** (31 + shift)), 1)
    return mult, shift


#: The smallest channel scale, relative to the largest channel's (module docstring, "Weights").
CHANNEL_SCALE_FLOOR = 2.0 ** -16


def quantize_weights(W):
    """Per-output-channel symmetric int8 of ``W`` (K, N): ``(W_q int8, s_w float64 (N,))`` (module docstring)."""
    W = np.asarray(W, np.float64)
    amax = np.abs(W).max(axis=0)
    scale = amax / 127.0
    top = scale.max() if scale.size else 0.0
    if top > 0:
        # a (nearly) dead channel must not get a vanishing scale: its bias, divided by s_x · s_w[c], would
        # not fit in int32 (seen with weight decay shrinking a dead unit's weights to 1e-42)
        scale = np.maximum(scale, top * CHANNEL_SCALE_FLOOR)
    else:
        scale = np.full_like(scale, 1 / 127.0)
    Wq = np.clip(round_half_away(W / scale), -127, 127).astype(np.int8)
    return Wq, scale


@dataclass(frozen=True)
class QParams:
    """An int8 tensor's ``real = scale · (q - zp)``."""
    scale: float
    zp: int

    @classmethod
    def from_range(cls, mn, mx, min_scale=0.0):
        """Asymmetric parameters covering ``[min(mn, 0), max(mx, 0)]`` with a scale of at least ``min_scale``."""
        lo, hi = min(float(mn), 0.0), max(float(mx), 0.0)
        if hi == lo:
            hi = lo + 1.0
        scale = max((hi - lo) / 255.0, float(min_scale))
        zp = int(np.clip(round_half_away(-128.0 - lo / scale), -128, 127))
        return cls(scale, zp)

    def quantize(self, x):
        """``clamp(round_half_away(x / scale) + zp, -128, 127)`` as int8 (float64 arithmetic)."""
        # bounded first (any |x / scale| past 2**40 clamps to -128 or 127 anyway): no int64 overflow in the cast
        t = np.clip(np.asarray(x, np.float64) / self.scale, -2.0**40, 2.0**40)
        return np.clip(round_half_away(t) + self.zp, -128, 127).astype(np.int8)

    def dequantize(self, q):
        """``scale · (q - zp)`` as float32."""
        return (self.scale * (np.asarray(q, np.float64) - self.zp)).astype(np.float32)


@dataclass
class Requant:
    """The int32 → int8 step: ``requantv(acc, mult, shift, zp)``, then ``vmax(·, zp)`` when ``relu``.
    ``real`` holds the real multipliers the integers approximate (for reports and checks)."""
    mult: np.ndarray
    shift: int
    zp: int
    relu: bool = False
    real: np.ndarray | None = None

    @property
    def clamp_needed(self):
        """Whether the fused ReLU's clamp changes anything (it does not when ``zp == -128``)."""
        return self.relu and self.zp > -128

    def apply(self, acc):
        q = requantv(acc, self.mult, self.shift, self.zp)
        if self.relu:
            q = gvxu.vmax(q, np.full(q.shape, self.zp, np.int32))
        return q.astype(np.int8)


@dataclass(eq=False)
class QStep:
    """One integer step: ``op`` (``input``, ``linear``, ``matmul``, ``add``, ``relu``, ``table``,
    ``embedding``, ``argmax``, ``reshape``), the tensor names it reads (``inputs``) and writes (``name``),
    the float nodes it stands for (``fused``), and its integer parameters:

    * ``linear``: ``W`` int8 (K, N), ``bias`` int32 (N,) (zero point folded), ``w_scale`` (N,), ``requant``;
    * ``matmul``: ``zp_a``, ``zp_b``, ``requant`` (K is the run-time width of a);
    * ``add``: ``m_a``, ``m_b`` (``None`` for a constant b), ``c`` int32 (broadcast over ``a``), ``requant``;
    * ``relu``: ``zp``; ``table``: ``table`` int8 (256,) in LUT order, ``func``; ``embedding``: ``table``
      int8 (V, D); ``argmax``: ``axis``; ``reshape``: ``shape``; ``input``: the input's ``QParams`` or None.
    """
    op: str
    name: str
    inputs: tuple
    fused: tuple
    params: dict = field(default_factory=dict)

    def __getattr__(self, key):
        params = self.__dict__.get("params", {})
        if key in params:
            return params[key]
        raise AttributeError(key)


# ---- running steps -------------------------------------------------------------------------------------
def _i32(a):
    return np.asarray(a).astype(np.int32)


def _run_step(st, env, raw):
    op, p = st.op, st.params
    if op == "input":
        x = raw[st.name]
        return p["qp"].quantize(x) if p["qp"] is not None else x
    args = [env[i] for i in st.inputs]
    if op == "linear":
        acc = mxu_matmul(args[0], p["W"])
        acc = gvxu.add(acc, np.broadcast_to(p["bias"], acc.shape))
        return p["requant"].apply(acc)
    if op == "matmul":
        qa, qb = args
        acc = mxu_matmul(qa, qb)
        rows = _i32(qa.astype(np.int64).sum(axis=1))[:, None]      # |.| <= 128 K
        cols = _i32(qb.astype(np.int64).sum(axis=0))[None, :]
        acc = gvxu.add(acc, gvxu.mul(np.broadcast_to(rows, acc.shape), np.full(acc.shape, -p["zp_b"], np.int32)))
        acc = gvxu.add(acc, gvxu.mul(np.broadcast_to(cols, acc.shape), np.full(acc.shape, -p["zp_a"], np.int32)))
        acc = gvxu.add(acc, np.broadcast_to(gvxu.wrap_int32(qa.shape[1] * p["zp_a"] * p["zp_b"]), acc.shape))
        return p["requant"].apply(acc)
    if op == "add":
        qa = _i32(args[0])
        acc = gvxu.mul(qa, np.full(qa.shape, p["m_a"], np.int32))
        if p["m_b"] is not None:
            acc = gvxu.add(acc, gvxu.mul(_i32(args[1]), np.full(qa.shape, p["m_b"], np.int32)))
        acc = gvxu.add(acc, np.broadcast_to(p["c"], qa.shape))
        return p["requant"].apply(acc)
    if op == "relu":
        return gvxu.vmax(_i32(args[0]), np.full(args[0].shape, p["zp"], np.int32)).astype(np.int8)
    if op == "table":
        return gvxu.lut(_i32(args[0]), p["table"]).astype(np.int8)
    if op == "embedding":
        ids, table = args[0], p["table"]
        if ids.size and (ids.min() < 0 or ids.max() >= len(table)):
            raise ValueError(f"embedding '{st.name}': ids must be in 0 … {len(table) - 1}, not "
                             f"{int(ids.min())} … {int(ids.max())}")
        return table[ids]
    if op == "argmax":
        q = np.moveaxis(_i32(args[0]), p["axis"], -1)
        return gvxu.argmax(q)[..., 0].astype(np.int32)
    if op == "reshape":
        return args[0].reshape(p["shape"])
    raise AssertionError(op)  # every step quantize makes is handled above


class QGraph:
    """A quantized graph (module docstring): ``graph``, ``steps``, ``qparams``, ``outputs``."""

    def __init__(self, graph, steps, qparams):
        self.graph = graph
        self.steps = steps
        self.qparams = qparams
        self.outputs = {name: t.name for name, t in graph.outputs.items()}

    def step(self, name):
        """The step writing tensor ``name``."""
        for st in self.steps:
            if st.name == name:
                return st
        raise KeyError(f"name must be a tensor a step writes, not {name!r}")

    def run_int8(self, inputs, tensors=False):
        """The bit-exact integer reference: ``{output name: int8 codes}`` (argmax: int32 indices, embedding
        ids: unchanged). With ``tensors=True``, every tensor the steps write, by tensor name."""
        raw = self.graph.check_inputs(inputs)
        env = {}
        for st in self.steps:
            env[st.name] = _run_step(st, env, raw)
        if tensors:
            return env
        return {name: env[t] for name, t in self.outputs.items()}

    def params_of(self, name):
        """The ``QParams`` of an output name or a tensor name (``None`` for integer results)."""
        t = self.outputs.get(name, name)
        if t not in self.qparams and t not in {st.name for st in self.steps}:
            raise KeyError(f"name must be an output or a tensor of the quantized graph, not {name!r}")
        return self.qparams.get(t)

    def dequantize(self, name, q):
        """``scale · (q - zp)`` (float32) with the parameters of output or tensor ``name``; integer results
        (argmax, ids) are returned unchanged."""
        qp = self.params_of(name)
        return np.asarray(q) if qp is None else qp.dequantize(q)

    def run_dequantized(self, inputs):
        """``run_int8`` with every output dequantized."""
        return {name: self.dequantize(name, q) for name, q in self.run_int8(inputs).items()}

    @property
    def weight_bytes(self):
        """Bytes of constants the chip must hold: int8 weights and tables, int32 biases/offsets (4 bytes),
        int32 per-channel multipliers (4 bytes)."""
        total = 0
        for st in self.steps:
            p = st.params
            if st.op == "linear":
                total += p["W"].size + 4 * p["bias"].size + 4 * p["requant"].mult.size
            elif st.op in ("matmul", "add"):
                total += 4 * p["requant"].mult.size + (4 * np.size(p["c"]) if st.op == "add" else 0)
            elif st.op in ("table", "embedding"):
                total += p["table"].size
        return int(total)

    def summary(self):
        """Per tensor scale and zero point, per step its integer parameters, and the weight bytes."""
        lines = [f"QGraph: {len(self.steps)} steps, {self.weight_bytes} bytes of constants"]
        for st in self.steps:
            p = st.params
            qp = self.qparams.get(st.name)
            q = f"scale={qp.scale:.6g} zp={qp.zp}" if qp else "int"
            fused = f" [{'+'.join(st.fused)}]" if len(st.fused) > 1 else ""
            detail = ""
            if "requant" in p:
                r = p["requant"]
                detail = (f" mult {int(r.mult.min())}…{int(r.mult.max())} shift {r.shift} zp {r.zp}"
                          + (" relu" if r.relu else ""))
            if st.op == "linear":
                detail = f" W{p['W'].shape} int8 ({p['W'].size} B) bias int32" + detail
            elif st.op in ("table", "embedding"):
                detail = f" {st.params.get('func', '')} table{p['table'].shape} int8".replace("  ", " ")
            lines.append(f"  {st.name:<12} {st.op:<9}{fused} ({', '.join(st.inputs)}) {q}{detail}")
        for name, t in self.outputs.items():
            lines.append(f"  output {name!r} = {t}")
        return "\n".join(lines)

    def __repr__(self):
        return self.summary()


# ---- quantize ------------------------------------------------------------------------------------------
def _calibrate(graph, calibration):
    if isinstance(calibration, dict):
        calibration = [calibration]
    if (not isinstance(calibration, (list, tuple)) or not calibration
            or not all(isinstance(c, dict) for c in calibration)):
        raise TypeError(f"calibration must be a dict of input arrays or a non-empty list of them, "
                        f"not {type(calibration).__name__}")
    lo, hi = {}, {}
    for batch in calibration:
        for name, v in graph.evaluate(batch).items():
            if v.dtype.kind != "f" or not v.size:
                continue
            if not np.all(np.isfinite(v)):
                raise ValueError(f"calibration: tensor {name!r} must stay finite, not NaN or infinity")
            lo[name] = min(lo.get(name, np.inf), float(v.min()))
            hi[name] = max(hi.get(name, -np.inf), float(v.max()))
    return lo, hi


def _fit_out(lo, hi, name, acc_scale_max):
    """Output ``QParams`` from the calibration range, widened so the requant multiplier is below 1."""
    return QParams.from_range(lo.get(name, 0.0), hi.get(name, 0.0), min_scale=acc_scale_max / _WIDEN)


def _fuse(graph, n, skip):
    """The chain a requant op ``n`` heads: [n, (add of a constant (N,))?, (relu)?] (linear takes the add)."""
    outputs = {t.name for t in graph.outputs.values()}
    chain = [n]

    def sole(cur, op):
        cons = graph.consumers(cur.name)
        if cur.name in outputs or len(cons) != 1 or cons[0].inputs != (cur.name,) or cons[0].op != op:
            return None
        return cons[0]

    nxt = sole(chain[-1], "add") if n.op == "linear" else None
    if nxt is not None and nxt.attrs["b"].shape == (n.shape[-1],):
        chain.append(nxt)
    nxt = sole(chain[-1], "relu")
    if nxt is not None:
        chain.append(nxt)
    skip.update(c.name for c in chain[1:])
    return chain


def quantize(graph, calibration):
    """Quantize ``graph`` (a ``compiler.ir.Graph``) with ``calibration`` data: a ``QGraph`` (module docstring)."""
    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be a compiler.ir.Graph, not {type(graph).__name__}")
    if not graph.outputs:
        raise ValueError("graph must have at least one output (Graph.output), not none")
    lo, hi = _calibrate(graph, calibration)
    qp, steps, skip = {}, [], set()
    for n in graph.nodes:
        if n.name in skip:
            continue
        if n.op == "input":
            p = QParams.from_range(lo[n.name], hi[n.name]) if n.dtype == "float32" else None
            if p is not None:
                qp[n.name] = p
            steps.append(QStep("input", n.name, (), (n.name,), {"qp": p}))
            continue
        if n.op in ("linear", "matmul", "add"):
            chain = _fuse(graph, n, skip)
            out = chain[-1].name
            relu = chain[-1].op == "relu"
            fused = tuple(c.name for c in chain)
            if n.op == "linear":
                steps.append(_q_linear(n, chain, qp, lo, hi, out, relu, fused))
            elif n.op == "matmul":
                steps.append(_q_matmul(n, qp, lo, hi, out, relu, fused))
            else:
                steps.append(_q_add(n, qp, lo, hi, out, relu, fused))
            continue
        x = n.inputs[0]
        if n.op == "relu":
            qp[n.name] = qp[x]
            steps.append(QStep("relu", n.name, (x,), (n.name,), {"zp": qp[x].zp}))
        elif n.op in TABLE_OPS:
            steps.append(_q_table(n, qp))
        elif n.op == "embedding":
            T = n.attrs["table"].astype(np.float64)
            amax = float(np.abs(T).max())
            s = amax / 127.0 if amax > 0 else 1.0
            qp[n.name] = QParams(s, 0)
            Tq = np.clip(round_half_away(T / s), -127, 127).astype(np.int8)
            steps.append(QStep("embedding", n.name, (x,), (n.name,), {"table": Tq}))
        elif n.op == "argmax":
            steps.append(QStep("argmax", n.name, (x,), (n.name,), {"axis": n.attrs["axis"]}))
        elif n.op == "reshape":
            if x in qp:
                qp[n.name] = qp[x]
            steps.append(QStep("reshape", n.name, (x,), (n.name,), {"shape": n.attrs["shape"]}))
        else:
            raise AssertionError(n.op)  # every op of compiler.ir is handled above
    return QGraph(graph, steps, qp)


def _q_linear(n, chain, qp, lo, hi, out, relu, fused):
    x = n.inputs[0]
    sx, zx = qp[x].scale, qp[x].zp
    W = n.attrs["W"]
    K, N = W.shape
    Wq, sw = quantize_weights(W)
    b = np.zeros(N, np.float64)
    for c in chain:
        if c.op == "linear" and "b" in c.attrs:
            b += c.attrs["b"].astype(np.float64)
        if c.op == "add":
            b += c.attrs["b"].astype(np.float64)
    acc_scale = sx * sw
    po = _fit_out(lo, hi, out, acc_scale.max())
    qp[out] = po
    bias = round_half_away(b / acc_scale) - zx * Wq.astype(np.int64).sum(axis=0)
    bound = 2 * K * 128 * 127 + int(np.abs(bias).max())
    if bound > gvxu.INT32_MAX:
        raise ValueError(f"linear '{n.name}': the int32 accumulator must not overflow, but K={K} and a bias of "
                         f"{int(np.abs(bias).max())} accumulator units can reach {bound} > 2**31 - 1 "
                         f"(the bias is too large for the scales of x and W)")
    real = acc_scale / po.scale
    mult, shift = requant_multipliers(real, f"linear '{n.name}'")
    rq = Requant(mult, shift, po.zp, relu, real)
    return QStep("linear", out, (x,), fused, {"W": Wq, "w_scale": sw, "bias": bias.astype(np.int32),
                                              "requant": rq})


def _q_matmul(n, qp, lo, hi, out, relu, fused):
    a, b = n.inputs
    pa, pb = qp[a], qp[b]
    acc_scale = pa.scale * pb.scale
    po = _fit_out(lo, hi, out, acc_scale)
    qp[out] = po
    N = n.shape[1]
    real = np.full(N, acc_scale / po.scale)
    mult, shift = requant_multipliers(real, f"matmul '{n.name}'")
    rq = Requant(mult, shift, po.zp, relu, real)
    return QStep("matmul", out, (a, b), fused, {"zp_a": pa.zp, "zp_b": pb.zp, "requant": rq})


def _q_add(n, qp, lo, hi, out, relu, fused):
    a = n.inputs[0]
    pa = qp[a]
    if len(n.inputs) == 2:
        pb = qp[n.inputs[1]]
        s_acc = max(pa.scale, pb.scale) / 2.0 ** ACC_SCALE_BITS
        m_a, m_b = (int(round_half_away(s / s_acc)) for s in (pa.scale, pb.scale))
        c = np.array(-(m_a * pa.zp + m_b * pb.zp), np.int64)
    else:
        const = n.attrs["b"].astype(np.float64)
        amax = float(np.abs(const).max())
        s_b = amax / 127.0 if amax > 0 else pa.scale
        s_acc = max(pa.scale, s_b) / 2.0 ** ACC_SCALE_BITS
        m_a, m_b = int(round_half_away(pa.scale / s_acc)), None
        c = round_half_away(const / s_acc) - m_a * pa.zp
    po = _fit_out(lo, hi, out, s_acc)
    qp[out] = po
    N = n.shape[-1]
    real = np.full(N, s_acc / po.scale)
    mult, shift = requant_multipliers(real, f"add '{n.name}'")
    rq = Requant(mult, shift, po.zp, relu, real)
    return QStep("add", out, tuple(n.inputs), fused, {"m_a": m_a, "m_b": m_b, "c": c.astype(np.int32),
                                                      "requant": rq})


def _q_table(n, qp):
    x = n.inputs[0]
    px = qp[x]
    codes = np.arange(-128, 128)
    y = FLOAT_FUNCTIONS[n.op](px.dequantize(codes)).astype(np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{n.op} '{n.name}': the table must hold finite values, but {n.op} of the input range "
                         f"[{px.dequantize(-128)}, {px.dequantize(127)}] overflows")
    po = QParams.from_range(y.min(), y.max())
    qp[n.name] = po
    table = np.zeros(LUT_ENTRIES, np.int8)
    table[codes & 0xFF] = po.quantize(y)
    return QStep("table", n.name, (x,), (n.name,), {"table": table, "func": n.op})
