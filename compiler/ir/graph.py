"""``Graph``: the IR builder (every op checks its operands when built), its inputs check and float reference run.

The contract (ops, shapes, dtypes, names, messages) is the ``compiler.ir`` docstring.
"""
import math

import numpy as np

from ..inputs import exact_names
from .node import DTYPES, Node, Tensor, broadcast_shapes, constant, fmt_shape, fmt_shapes
from .reference import eval_float
from .transformer import TransformerOps

__all__ = ["Graph"]


class Graph(TransformerOps):
    """A graph of ``Node`` s in topological order (``compiler.ir`` docstring); the transformer ops come from
    ``TransformerOps`` (``compiler.ir.transformer``)."""

    def __init__(self):
        self._nodes = {}
        self._inputs = []
        self._outputs = {}
        self._tensors = {}
        self._count = 0

    # ---- structure -------------------------------------------------------------------------------------
    @property
    def nodes(self):
        """Every node, in build (topological) order, inputs included."""
        return list(self._nodes.values())

    @property
    def inputs(self):
        return list(self._inputs)

    @property
    def outputs(self):
        return dict(self._outputs)

    def node(self, name):
        if name not in self._nodes:
            raise KeyError(f"name must be a node of this graph, not {name!r}")
        return self._nodes[name]

    def tensor(self, name):
        if name not in self._tensors:
            raise KeyError(f"name must be a tensor of this graph, not {name!r}")
        return self._tensors[name]

    def consumers(self, name):
        """The nodes that take tensor ``name`` as an input, in order."""
        return [n for n in self._nodes.values() if name in n.inputs]

    # ---- building --------------------------------------------------------------------------------------
    def _name(self, name):
        if name is None:
            name = f"op_{self._count}"
            while name in self._nodes:
                self._count += 1
                name = f"op_{self._count}"
        elif not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string, not {name!r}")
        if name in self._nodes:
            raise ValueError(f"name must be unique in the graph, not {name!r} (already a node)")
        return name

    def _add(self, op, name, inputs, attrs, shape, dtype):
        node = Node(name, op, tuple(t.name for t in inputs), attrs, tuple(shape), dtype)
        self._nodes[name] = node
        self._count += 1
        t = Tensor(self, name, node.shape, dtype)
        self._tensors[name] = t
        return t

    def _tensor(self, t, what, op, name, dtype="float32"):
        if not isinstance(t, Tensor) or t.graph is not self:
            raise TypeError(f"{op} '{name}': {what} must be a Tensor of this graph, not {t!r}")
        if dtype == "float32" and t.dtype != "float32":
            raise TypeError(f"{op} '{name}': {what} must be a float32 tensor, not {t.dtype} ({t.name!r})")
        if dtype == "int" and not t.dtype.startswith("int"):
            raise TypeError(f"{op} '{name}': {what} must be an integer tensor, not {t.dtype} ({t.name!r})")
        return t

    def input(self, name, shape, dtype="float32"):
        """Declare an input ``name`` of ``shape`` (ints >= 1; the first may be ``None``) and ``dtype``."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"input name must be a non-empty string, not {name!r}")
        if dtype not in DTYPES:
            raise ValueError(f"input '{name}': dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        if not isinstance(shape, (tuple, list)):
            raise TypeError(f"input '{name}': shape must be a tuple of ints, not {shape!r}")
        shape = tuple(shape)
        for i, d in enumerate(shape):
            if d is None and i == 0:
                continue
            if not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 1:
                raise ValueError(f"input '{name}': shape must hold ints >= 1 (None only first, for the batch), "
                                 f"not {shape!r}")
        shape = tuple(None if d is None else int(d) for d in shape)
        t = self._add("input", self._name(name), (), {}, shape, dtype)
        self._inputs.append(t)
        return t

    def linear(self, x, W, b=None, name=None):
        """``x @ W + b`` with ``x`` (B, K) or (B, …, K), ``W`` (K, N) (torch's ``weight`` is (N, K): pass
        ``weight.T``), ``b`` (N,) or None."""
        name = self._name(name)
        self._tensor(x, "x", "linear", name)
        W = constant(W, f"linear '{name}': W")
        if x.ndim < 2:
            raise ValueError(f"linear '{name}': x must be 2-D (batch, features), not shape {fmt_shape(x.shape)} "
                             f"(or more: (batch, …, features))")
        if W.ndim != 2:
            raise ValueError(f"linear '{name}': W must be 2-D (in features, out features), not shape {W.shape}")
        K, N = W.shape
        if x.shape[-1] != K:
            raise ValueError(f"linear '{name}': x has {x.shape[-1]} features but W has {K} rows "
                             f"(x {fmt_shape(x.shape)}, W {W.shape}; W is (in, out): torch's weight is (out, in))")
        attrs = {"W": W}
        if b is not None:
            b = constant(b, f"linear '{name}': b")
            if b.shape != (N,):
                raise ValueError(f"linear '{name}': b must have shape ({N},) (W has {N} columns), not {b.shape}")
            attrs["b"] = b
        return self._add("linear", name, (x,), attrs, x.shape[:-1] + (N,), "float32")

    def matmul(self, a, b, name=None):
        """``a @ b`` of two tensors: (M, K) @ (K, N), or batched, (…, M, K) @ (…, K, N) with the same leading
        dimensions (use ``linear`` for a constant right operand)."""
        name = self._name(name)
        self._tensor(a, "a", "matmul", name)
        self._tensor(b, "b", "matmul", name)
        for what, t in (("a", a), ("b", b)):
            if t.ndim < 2:
                raise ValueError(f"matmul '{name}': {what} must be 2-D or more (…, rows, columns), not shape "
                                 f"{fmt_shape(t.shape)}")
        if a.shape[:-2] != b.shape[:-2]:
            raise ValueError(f"matmul '{name}': a and b must have the same leading (batch) dimensions, not "
                             f"a {fmt_shape(a.shape)} and b {fmt_shape(b.shape)}")
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul '{name}': a has {a.shape[-1]} columns but b has {b.shape[-2]} rows "
                             f"(a {fmt_shape(a.shape)}, b {fmt_shape(b.shape)})")
        return self._add("matmul", name, (a, b), {}, a.shape[:-1] + (b.shape[-1],), "float32")

    def add(self, a, b, name=None):
        """``a + b``: ``b`` a tensor of ``a``'s shape or (``a.shape[-1]``,) (broadcast), or a constant
        broadcast along the leading axes of ``a`` (``broadcast_shapes``: (N,), (T, N), … ``a.shape``)."""
        name = self._name(name)
        self._tensor(a, "a", "add", name)
        if a.ndim == 0:
            raise ValueError(f"add '{name}': a must have at least one dimension, not shape ()")
        if isinstance(b, Tensor):
            self._tensor(b, "b", "add", name)
            if b.shape != a.shape and b.shape != (a.shape[-1],):
                raise ValueError(f"add '{name}': b must have shape {fmt_shapes([a.shape, a.shape[-1:]])}, "
                                 f"not {fmt_shape(b.shape)}")
            return self._add("add", name, (a, b), {}, a.shape, "float32")
        c = constant(b, f"add '{name}': b")
        if c.shape not in broadcast_shapes(a.shape):
            raise ValueError(f"add '{name}': b must have shape {fmt_shapes(broadcast_shapes(a.shape))}, "
                             f"not {fmt_shape(c.shape)}")
        return self._add("add", name, (a,), {"b": c}, a.shape, "float32")

    def _unary(self, op, x, name):
        name = self._name(name)
        self._tensor(x, "x", op, name)
        return self._add(op, name, (x,), {}, x.shape, "float32")

    def relu(self, x, name=None):
        """``max(x, 0)``."""
        return self._unary("relu", x, name)

    def tanh(self, x, name=None):
        return self._unary("tanh", x, name)

    def sigmoid(self, x, name=None):
        return self._unary("sigmoid", x, name)

    def gelu(self, x, name=None):
        """The exact GELU, ``x · (1 + erf(x / √2)) / 2``."""
        return self._unary("gelu", x, name)

    def exp(self, x, name=None):
        return self._unary("exp", x, name)

    def embedding(self, ids, table, name=None):
        """``table[ids]``: ``ids`` an integer tensor, ``table`` (V, D) → ``ids.shape + (D,)``."""
        name = self._name(name)
        self._tensor(ids, "ids", "embedding", name, dtype="int")
        table = constant(table, f"embedding '{name}': table")
        if table.ndim != 2 or 0 in table.shape:
            raise ValueError(f"embedding '{name}': table must be a non-empty 2-D array (vocabulary, dim), "
                             f"not shape {table.shape}")
        return self._add("embedding", name, (ids,), {"table": table}, ids.shape + (table.shape[1],), "float32")

    def argmax(self, x, axis=-1, name=None):
        """The index (int32) of the largest entry of ``x`` along ``axis``, the lowest on ties."""
        name = self._name(name)
        self._tensor(x, "x", "argmax", name)
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise TypeError(f"argmax '{name}': axis must be an int, not {axis!r}")
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(f"argmax '{name}': axis must be in {-x.ndim} … {x.ndim - 1} for x of shape "
                             f"{fmt_shape(x.shape)}, not {axis}")
        axis = int(axis) % x.ndim
        shape = x.shape[:axis] + x.shape[axis + 1:]
        return self._add("argmax", name, (x,), {"axis": axis}, shape, "int32")

    def reshape(self, x, shape, name=None):
        """numpy ``reshape`` (one ``-1`` at most; with a ``None`` batch exactly one ``-1``, which stays ``None``)."""
        name = self._name(name)
        if not isinstance(x, Tensor) or x.graph is not self:
            raise TypeError(f"reshape '{name}': x must be a Tensor of this graph, not {x!r}")
        if not isinstance(shape, (tuple, list)) or not all(
                isinstance(d, (int, np.integer)) and not isinstance(d, bool) and (d >= 1 or d == -1) for d in shape):
            raise ValueError(f"reshape '{name}': shape must be a tuple of ints >= 1 and at most one -1, not {shape!r}")
        shape = tuple(int(d) for d in shape)
        free = shape.count(-1)
        if free > 1:
            raise ValueError(f"reshape '{name}': shape must hold at most one -1, not {shape!r}")
        known_in = math.prod(d for d in x.shape if d is not None)
        known_out = math.prod(d for d in shape if d != -1)
        if None in x.shape:
            if free != 1 or known_in != known_out:
                raise ValueError(f"reshape '{name}': cannot reshape {fmt_shape(x.shape)} to {shape!r}: with a None "
                                 f"batch the shape must hold one -1 and the other sizes must multiply to {known_in}")
            out = tuple(None if d == -1 else d for d in shape)
        elif free:
            if known_in % known_out:
                raise ValueError(f"reshape '{name}': cannot reshape {fmt_shape(x.shape)} ({known_in} values) to "
                                 f"{shape!r}")
            out = tuple(known_in // known_out if d == -1 else d for d in shape)
        else:
            if known_in != known_out:
                raise ValueError(f"reshape '{name}': cannot reshape {fmt_shape(x.shape)} ({known_in} values) to "
                                 f"{shape!r} ({known_out} values)")
            out = shape
        return self._add("reshape", name, (x,), {"shape": shape}, out, x.dtype)

    def output(self, t, name=None):
        """Mark ``t`` as an output named ``name`` (default ``t.name``); returns ``t``."""
        if not isinstance(t, Tensor) or t.graph is not self:
            raise TypeError(f"output: t must be a Tensor of this graph, not {t!r}")
        name = t.name if name is None else name
        if not isinstance(name, str) or not name:
            raise TypeError(f"output: name must be a non-empty string, not {name!r}")
        if name in self._outputs:
            raise ValueError(f"output: name must be unique among the outputs, not {name!r} (already an output)")
        self._outputs[name] = t
        return t

    # ---- running ---------------------------------------------------------------------------------------
    def check_inputs(self, inputs):
        """``inputs`` checked against the declared inputs: ``{name: array}`` (float32 / int64 copies)."""
        if not isinstance(inputs, dict):
            raise TypeError(f"inputs must be a dict of input name to numpy array, not {type(inputs).__name__}")
        names = [t.name for t in self._inputs]
        exact_names(inputs, names, "inputs must hold exactly the graph inputs")
        out = {}
        for t in self._inputs:
            a = np.asarray(inputs[t.name])
            if a.dtype.kind not in "iuf" or (t.dtype != "float32" and a.dtype.kind == "f"):
                want = "a float" if t.dtype == "float32" else "an integer"
                raise TypeError(f"input '{t.name}' must be {want} array, not {a.dtype}")
            if len(a.shape) != len(t.shape) or any(d is not None and d != s for d, s in zip(t.shape, a.shape)):
                raise ValueError(f"input '{t.name}' must have shape {fmt_shape(t.shape)}, not {a.shape}")
            out[t.name] = a.astype(np.float32) if t.dtype == "float32" else a.astype(np.int64)
        return out

    def evaluate(self, inputs):
        """Every tensor of the float32 reference, ``{tensor name: array}``."""
        env = self.check_inputs(inputs)
        for n in self._nodes.values():
            if n.op == "input":
                continue
            args = [env[i] for i in n.inputs]
            env[n.name] = eval_float(n, args)
        return env

    def run_float(self, inputs):
        """The float32 reference: ``{output name: array}`` (float32; ``argmax`` int32)."""
        env = self.evaluate(inputs)
        return {name: env[t.name] for name, t in self._outputs.items()}

    # ---- printing --------------------------------------------------------------------------------------
    def summary(self):
        """One line per node: name, op, inputs, constants and attributes, output shape and dtype."""
        lines = [f"Graph: {len(self._inputs)} inputs, {len(self._nodes) - len(self._inputs)} ops, "
                 f"{len(self._outputs)} outputs"]
        width = max([len(n) for n in self._nodes] + [4])
        for n in self._nodes.values():
            extra = []
            for k, v in n.attrs.items():
                extra.append(f"{k}{fmt_shape(v.shape)}" if isinstance(v, np.ndarray) else f"{k}={v!r}")
            args = ", ".join(list(n.inputs) + extra)
            lines.append(f"  {n.name:<{width}}  {n.op:<9} ({args}) -> {fmt_shape(n.shape)} {n.dtype}")
        for name, t in self._outputs.items():
            lines.append(f"  output {name!r} = {t.name}")
        return "\n".join(lines)

    def __repr__(self):
        return self.summary()
