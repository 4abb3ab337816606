"""``QGraph``: the quantized graph, a list of integer ``QStep`` s, and its bit-exact int8 reference.

* ``QStep(op, name, inputs, fused, params)``: one integer step; its parameters also read as attributes.
* ``QGraph(graph, steps, qparams)``: ``run_int8(inputs)`` runs every step with the chip's arithmetic
  (``golden.mxu``, ``golden.vxu``), in the order of the ``compiler.quantize`` docstring; ``step(name)``,
  ``params_of``, ``dequantize``, ``run_dequantized``, ``weight_bytes``, ``summary()``.
"""
from dataclasses import dataclass, field

import numpy as np

from golden import vxu as gvxu
from golden.mxu import matmul as mxu_matmul

__all__ = ["QStep", "QGraph"]


@dataclass(eq=False)
class QStep:
    """One integer step: ``op`` (``input``, ``linear``, ``matmul``, ``add``, ``mul``, ``relu``, ``table``,
    ``embedding``, ``argmax``, ``reshape``), the tensor names it reads (``inputs``) and writes (``name``),
    the float nodes it stands for (``fused``), and its integer parameters:

    * ``linear``: ``W`` int8 (K, N), ``bias`` int32 (N,) (zero point folded), ``w_scale`` (N,), ``requant``;
    * ``matmul``: ``zp_a``, ``zp_b``, ``requant`` (K is the run-time width of a);
    * ``add``: ``m_a``, ``m_b`` (``None`` for a constant b), ``c`` int32 (broadcast over ``a``), ``requant``;
    * ``mul``: ``zp_a``, ``zp_b``, ``k``, ``c``, ``requant`` (two activations: ``k``, ``c`` None; a constant:
      ``zp_b`` None, ``k`` and ``c = -zp_a·k`` int32 of shape () or (N,));
    * ``norm`` (layernorm, rmsnorm) and ``softmax``: the parameters of ``rows.py``; ``attention``: those of
      ``attention.py``; ``transpose``: ``axes``; ``slice``: ``start``, ``stop`` (the last axis; codes
      unchanged); ``rotate_half``: none (codes ``[-q[..., h:], q[..., :h]]``, zero point 0, -(-128) clamped
      to 127);
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
        from .attention import matmul_int8
        return matmul_int8(args[0], args[1], p["zp_a"], p["zp_b"], p["requant"])
    if op == "attention":
        from .attention import run_attention
        return run_attention(*args, p)
    if op == "transpose":
        return np.swapaxes(args[0], *p["axes"])
    if op == "slice":
        return args[0][..., p["start"]:p["stop"]]
    if op == "rotate_half":
        q = args[0].astype(np.int32)
        h = q.shape[-1] // 2
        return np.clip(np.concatenate([-q[..., h:], q[..., :h]], axis=-1), -128, 127).astype(np.int8)
    if op == "add":
        qa = _i32(args[0])
        acc = gvxu.mul(qa, np.full(qa.shape, p["m_a"], np.int32))
        if p["m_b"] is not None:
            acc = gvxu.add(acc, gvxu.mul(_i32(args[1]), np.full(qa.shape, p["m_b"], np.int32)))
        acc = gvxu.add(acc, np.broadcast_to(p["c"], qa.shape))
        return p["requant"].apply(acc)
    if op == "mul":
        qa = _i32(args[0])
        if p["k"] is None:
            da = gvxu.add(qa, np.full(qa.shape, -p["zp_a"], np.int32))
            db = gvxu.add(_i32(args[1]), np.full(qa.shape, -p["zp_b"], np.int32))
            return p["requant"].apply(gvxu.mul(da, db))
        acc = gvxu.mul(qa, np.broadcast_to(p["k"], qa.shape))
        return p["requant"].apply(gvxu.add(acc, np.broadcast_to(p["c"], qa.shape)))
    if op == "norm":
        from .rows import run_norm
        return run_norm(args[0], p)
    if op == "softmax":
        from .rows import run_softmax
        return run_softmax(args[0], p)
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
    """A quantized graph (``compiler.quantize`` docstring): ``graph``, ``steps``, ``qparams``, ``outputs``."""

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
            elif st.op in ("matmul", "add", "mul"):
                total += 4 * p["requant"].mult.size + (4 * np.size(p["c"]) if st.op != "matmul" else 0)
            elif st.op in ("table", "embedding"):
                total += p["table"].size
            elif st.op == "softmax":
                total += 2 * p["table_hi"].size
            elif st.op == "norm":
                total += 4 * p["C"].size + (4 * p["beta"]["c"].size if p["beta"] is not None else 0)
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

