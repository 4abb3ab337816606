"""The float32 reference semantics of the IR's ops (what ``Graph.evaluate`` / ``Graph.run_float`` compute).

* ``TABLE_OPS``: the elementwise activations that become 256-entry tables when quantized.
* ``FLOAT_FUNCTIONS``: the float function of each of them (float32 in, float32 out; ``gelu``'s erf in
  float64, then rounded to float32); ``compiler.quantize`` builds its tables from these.
* ``eval_float(node, args)``: the float32 result of ``node`` on its operand arrays ``args`` (in operand
  order); embedding ids out of range are a ``ValueError`` naming the node.
"""
import math

import numpy as np

__all__ = ["TABLE_OPS", "FLOAT_FUNCTIONS", "eval_float"]

#: Elementwise activations that become 256-entry tables when quantized.
TABLE_OPS = ("tanh", "sigmoid", "gelu", "exp")

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
}


def eval_float(n, args):
    op = n.op
    if op == "linear":
        y = args[0] @ n.attrs["W"]
        return (y + n.attrs["b"] if "b" in n.attrs else y).astype(np.float32)
    if op == "matmul":
        return (args[0] @ args[1]).astype(np.float32)
    if op == "add":
        b = args[1] if len(args) == 2 else n.attrs["b"]
        return (args[0] + b).astype(np.float32)
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
    raise AssertionError(op)  # every op the builder makes is handled above
