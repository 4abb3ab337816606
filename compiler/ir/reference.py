"""The float32 reference semantics of the IR's ops (what ``Graph.evaluate`` / ``Graph.run_float`` compute).

* ``TABLE_OPS``: the elementwise activations that become 256-entry tables when quantized.
* ``FLOAT_FUNCTIONS``: the float function of each of them (float32 in, float32 out; ``gelu``'s erf in
  float64, then rounded to float32); ``compiler.quantize`` builds its tables from these.
* ``TRANSFORMER_OPS``: the transformer ops (``compiler.ir.transformer``; ``silu`` is also a table op and
  ``mul`` of 2-D tensors by a tensor, a scalar or a (N,) constant quantizes, the others are float only so far); their
  reference: ``softmax``, ``layernorm``, ``rmsnorm`` and ``attention`` compute in float64 and round the
  result to float32 (``softmax``: ``exp(x - max) / Σ``; the norms: biased variance / mean square over the last
  axis, ``eps`` inside the square root, then ``· weight + bias``; ``attention``: ``softmax(q @ kᵀ · scale)
  @ v`` with the keys after each query at ``-inf`` when causal); ``mul``, ``neg``, ``silu`` (``x ·
  sigmoid(x)``, the stable sigmoid), ``transpose``, ``concat``, ``slice``, ``masked_fill`` in float32.
* ``eval_float(node, args)``: the float32 result of ``node`` on its operand arrays ``args`` (in operand
  order); embedding ids out of range are a ``ValueError`` naming the node.
"""
import math

import numpy as np

__all__ = ["TABLE_OPS", "FLOAT_FUNCTIONS", "TRANSFORMER_OPS", "eval_float"]

#: Elementwise activations that become 256-entry tables when quantized.
TABLE_OPS = ("tanh", "sigmoid", "gelu", "exp", "silu")

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x):
    x = np.asarray(x, np.float32)
    e = np.exp(-np.abs(x))                        # never overflows
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(np.float32)


def _gelu(x):
    x64 = np.asarray(x, np.float64)
    return (0.5 * x64 * (1.0 + _erf(x64 / math.sqrt(2.0)))).astype(np.float32)


#: The float function of each table activation (float32 in, float32 out); ``compiler.quantize`` builds
#: its tables from these.
FLOAT_FUNCTIONS = {
    "tanh": lambda x: np.tanh(np.asarray(x, np.float32)),
    "sigmoid": _sigmoid,
    "gelu": _gelu,
    "exp": lambda x: np.exp(np.asarray(x, np.float32)),
    "silu": lambda x: np.asarray(x, np.float32) * _sigmoid(x),
}


def _softmax64(x):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _norm(n, x):
    x = np.asarray(x, np.float64)
    if n.op == "layernorm":
        x = x - x.mean(axis=-1, keepdims=True)
    y = x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + n.attrs["eps"])
    if "weight" in n.attrs:
        y = y * n.attrs["weight"]
    if "bias" in n.attrs:
        y = y + n.attrs["bias"]
    return y


def _attention(n, q, k, v):
    s = (np.asarray(q, np.float64) @ np.swapaxes(np.asarray(k, np.float64), -1, -2)) * n.attrs["scale"]
    if n.attrs["causal"]:
        s = np.where(np.triu(np.ones(s.shape[-2:], bool), 1), -np.inf, s)
    return _softmax64(s) @ np.asarray(v, np.float64)


def _operand(n, args):
    """The second operand of a binary op: a tensor, else the constant ``b``."""
    return args[1] if len(args) == 2 else n.attrs["b"]


#: The reference of each transformer op: ``fn(node, args)`` (any float dtype; rounded to float32 by
#: ``eval_float``).
_TRANSFORMER = {
    "softmax": lambda n, a: _softmax64(a[0]),
    "layernorm": lambda n, a: _norm(n, a[0]),
    "rmsnorm": lambda n, a: _norm(n, a[0]),
    "mul": lambda n, a: a[0] * _operand(n, a),
    "neg": lambda n, a: -a[0],
    "silu": lambda n, a: a[0] * _sigmoid(a[0]),
    "transpose": lambda n, a: np.swapaxes(a[0], *n.attrs["axes"]),
    "concat": lambda n, a: np.concatenate(a, axis=-1),
    "slice": lambda n, a: a[0][..., n.attrs["start"]:n.attrs["stop"]],
    "masked_fill": lambda n, a: np.where(n.attrs["mask"], np.float32(n.attrs["value"]), a[0]),
    "attention": lambda n, a: _attention(n, *a),
    "rotate_half": lambda n, a: np.concatenate([-a[0][..., a[0].shape[-1] // 2:], a[0][..., :a[0].shape[-1] // 2]],
                                               axis=-1),
}

#: The transformer ops (``compiler.ir.transformer``): ``compiler.quantize`` refuses them but ``silu`` and some ``mul``.
TRANSFORMER_OPS = tuple(_TRANSFORMER)


def eval_float(n, args):
    op = n.op
    if op == "linear":
        y = args[0] @ n.attrs["W"]
        return (y + n.attrs["b"] if "b" in n.attrs else y).astype(np.float32)
    if op == "matmul":
        return (args[0] @ args[1]).astype(np.float32)
    if op == "add":
        return (args[0] + _operand(n, args)).astype(np.float32)
    if op == "relu":
        return np.maximum(args[0], np.float32(0))
    if op in FLOAT_FUNCTIONS:
        return FLOAT_FUNCTIONS[op](args[0]).astype(np.float32)
    if op == "embedding":
        ids, table = args[0], n.attrs["table"]
        if ids.size and (ids.min() < 0 or ids.max() >= len(table)):
            raise ValueError(f"embedding '{n.name}': ids must be in 0 … {len(table) - 1}, not "
                             f"{int(ids.min())} … {int(ids.max())}")
        return table[ids]
    if op == "argmax":
        return np.argmax(args[0], axis=n.attrs["axis"]).astype(np.int32)
    if op == "reshape":
        return args[0].reshape(n.attrs["shape"])
    if op in _TRANSFORMER:
        return np.ascontiguousarray(_TRANSFORMER[op](n, args), dtype=np.float32)
    raise AssertionError(op)  # every op the builder makes is handled above
