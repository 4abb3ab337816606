"""The IR's values and operations: ``Tensor`` (a handle on one node's output) and ``Node`` (one operation).

* ``Tensor(graph, name, shape, dtype)``: frozen, compared by identity; ``t.ndim``, ``t.node``.
* ``Node(name, op, inputs, attrs, shape, dtype)``: ``inputs`` the operand tensor names in order, ``attrs``
  the constants (float32 numpy arrays) and settings (axis, shape) of the op.
* ``DTYPES``: the dtypes a tensor may have.
* ``fmt_shape(shape)``: a shape as the builder's messages print it (``(None, 12)``, ``(3,)``).
* ``constant(value, what)``: ``value`` checked and copied as a float32 constant (``TypeError`` for a
  ``Tensor`` or a non-numeric value, ``ValueError`` for NaN or infinity; ``what`` names it in the message).
* ``broadcast_shapes(shape)``: the shapes a constant may have to broadcast over a tensor of ``shape`` along
  its leading axes: ``shape`` itself and every trailing part of it free of ``None`` (``(None, 4, 8)`` →
  ``(None, 4, 8)``, ``(4, 8)``, ``(8,)``); ``fmt_shapes(shapes)``: them as a message lists them.
"""
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .graph import Graph

__all__ = ["Tensor", "Node", "DTYPES", "fmt_shape", "fmt_shapes", "constant", "broadcast_shapes"]

#: The dtypes a tensor may have.
DTYPES = ("float32", "int32", "int64")


@dataclass(frozen=True, eq=False)
class Tensor:
    """A handle on the output of one node of ``graph``."""
    graph: "Graph"
    name: str
    shape: tuple
    dtype: str

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def node(self):
        return self.graph.node(self.name)

    def __repr__(self):
        return f"Tensor({self.name!r}, {fmt_shape(self.shape)}, {self.dtype})"


@dataclass(eq=False)
class Node:
    """One operation: ``op``, its input tensor names (in operand order), attributes (constants, axis, shape),
    and its single output (named ``name``) with ``shape`` and ``dtype``."""
    name: str
    op: str
    inputs: tuple
    attrs: dict = field(default_factory=dict)
    shape: tuple = ()
    dtype: str = "float32"

    def __repr__(self):
        return f"Node({self.name!r}, {self.op}, inputs={list(self.inputs)}, shape={fmt_shape(self.shape)})"


def fmt_shape(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def fmt_shapes(shapes):
    """``(4, 8) or (8,)``, ``(None, 4, 8), (4, 8) or (8,)``."""
    text = [fmt_shape(s) for s in shapes]
    return text[0] if len(text) == 1 else ", ".join(text[:-1]) + " or " + text[-1]


def broadcast_shapes(shape):
    """``shape`` and its trailing parts free of ``None``: what a constant broadcast along the leading axes may be."""
    shape = tuple(shape)
    return [shape] + [shape[k:] for k in range(1, len(shape)) if None not in shape[k:]]


def constant(value, what):
    if isinstance(value, Tensor):
        raise TypeError(f"{what} must be a numpy array (a constant), not a Tensor")
    try:
        a = np.asarray(value)
    except Exception:                                      # pragma: no cover - exotic objects
        raise TypeError(f"{what} must be a numpy array, not {type(value).__name__}") from None
    if a.dtype.kind not in "iuf" or a.dtype == object:
        raise TypeError(f"{what} must be a numeric array, not {type(value).__name__} of {a.dtype}")
    a = a.astype(np.float32)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what} must hold finite values, not NaN or infinity")
    return a

