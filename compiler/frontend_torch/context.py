"""The state of one trace: the fx graph module, every value of the example run, and what each fx node became.

* ``trace(torch, module)``: the ``torch.fx.GraphModule`` of ``module``, its buffers as ``get_attr`` nodes (so
  ``self.tril[:T, :T]`` traces); ``ValueError`` when fx cannot trace it.
* ``propagate(torch, gm, args)``: runs ``gm`` on the example tensors (``ShapeProp``: every node's
  ``tensor_meta``) and returns every node's value, by node name.
* ``Meta`` (a non-tensor value: a size, ``x.shape``, a device, arithmetic on them; its traced ``value``),
  ``Const`` (a parameter, a buffer or a constant subexpression: numpy, floats as float32), ``Pieces`` (the
  result of ``split``/``chunk`` of an activation along its last axis: the tensor and the pieces' bounds).
* ``Context(torch, g, values)``: ``env`` (fx node name → IR ``Tensor``, ``Meta``, ``Const`` or ``Pieces``) and
  the helpers the op mappings share: ``traced_shape``, ``is_tensor``, ``val``, ``const``, ``resolve``,
  ``fold`` (a node whose inputs are all ``Meta`` / ``Const``: its traced value, computed once, at the traced
  shapes).
"""
import numpy as np

from .errors import unsupported

__all__ = ["trace", "propagate", "Meta", "Const", "Pieces", "Context", "numpy_of"]


class Meta:
    """A non-tensor value of the trace (a size, ``x.shape``, arithmetic on them): shape arguments only."""

    def __init__(self, node, value=None):
        self.node = node
        self.value = value


class Const:
    """A parameter, a buffer or a constant subexpression of them (numpy; floats as float32)."""

    def __init__(self, value, node):
        self.value = value
        self.node = node


class Pieces:
    """``split``/``chunk`` of the activation ``x`` along its last axis: the pieces ``x[..., lo:hi]``."""

    def __init__(self, x, bounds):
        self.x = x
        self.bounds = bounds


def numpy_of(torch, t):
    """A torch tensor as a numpy copy, floats as float32."""
    t = t.detach().cpu()
    return (t.to(torch.float32) if t.is_floating_point() else t).numpy().copy()


def trace(torch, module):
    import torch.fx

    tracer = torch.fx.Tracer()
    tracer.proxy_buffer_attributes = True          # buffers as get_attr nodes, so they can be sliced
    try:
        graph = tracer.trace(module)
    except Exception as e:  # TraceError, control flow on tensor values, …
        raise ValueError(f"torch.fx could not trace {type(module).__name__}: {type(e).__name__}: {e}") from e
    return torch.fx.GraphModule(tracer.root, graph, type(module).__name__)


def propagate(torch, gm, args):
    from torch.fx.passes.shape_prop import ShapeProp

    values = {}

    class Record(ShapeProp):
        def run_node(self, n):
            values[n.name] = result = super().run_node(n)
            return result

    with torch.no_grad():
        Record(gm).propagate(*args)
    return values


class Context:
    """``env`` and the helpers of the op mappings (module docstring)."""

    def __init__(self, torch, g, values):
        self.torch = torch
        self.g = g
        self.values = values
        self.env = {}

    def traced_shape(self, node):
        meta = node.meta.get("tensor_meta")
        if meta is None or not hasattr(meta, "shape"):
            raise ValueError(f"node {node.name!r}: no traced tensor shape (it must produce one tensor)")
        return tuple(int(d) for d in meta.shape)

    def is_tensor(self, a):
        """Whether ``a`` is an fx node whose value is a tensor of the IR graph (an activation)."""
        if not isinstance(a, self.torch.fx.Node):
            return False
        v = self.env[a.name]
        return hasattr(v, "graph") and v.graph is self.g

    def val(self, a, node, what):
        """The IR tensor for argument ``a`` of ``node`` (an fx node producing a tensor)."""
        if self.is_tensor(a):
            return self.env[a.name]
        raise unsupported(what, node, f"its input {a!r} must be a tensor computed from the inputs")

    def const(self, a):
        """A constant operand: a parameter/buffer/constant expression (``Const``) or a Python number, else None."""
        if isinstance(a, self.torch.fx.Node) and isinstance(self.env.get(a.name), Const):
            return self.env[a.name].value
        if isinstance(a, (int, float)) and not isinstance(a, bool):
            return np.float32(a)
        return None

    def resolve(self, a, node, what):
        """``a`` with every fx node replaced by its traced ``Meta`` value (through tuples, lists and slices)."""
        if isinstance(a, self.torch.fx.Node):
            v = self.env[a.name]
            if not isinstance(v, Meta):
                raise unsupported(what, node, f"its argument {a.name!r} must be a number or a size, not a tensor")
            return v.value
        if isinstance(a, (tuple, list)):
            return type(a)(self.resolve(x, node, what) for x in a)
        if isinstance(a, slice):
            return slice(*(self.resolve(x, node, what) for x in (a.start, a.stop, a.step)))
        return a

    def static(self, node):
        """Whether every input of ``node`` is a ``Meta`` or a ``Const`` (so its value is known at trace time)."""
        return all(isinstance(self.env[i.name], (Meta, Const)) for i in node.all_input_nodes)

    def fold(self, node):
        """The traced value of a ``static`` node: a ``Const`` for a tensor, else a ``Meta``."""
        v = self.values[node.name]
        if isinstance(v, self.torch.Tensor):
            return Const(numpy_of(self.torch, v), node)
        return Meta(node, v)
