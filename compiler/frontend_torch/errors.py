"""What the PyTorch front end refuses, and how it names torch objects in its messages.

* ``SUPPORTED``: the ops ``from_torch`` maps, as the messages list them.
* ``UnsupportedOpError``: an op ``from_torch`` cannot map (a ``ValueError``).
* ``torch_name(torch, obj)``: a readable name for a module class or a function (``torch.nn.Conv1d``,
  ``torch.relu``, ``operator.mul``).
* ``unsupported(what, node, why=None)``: the ``UnsupportedOpError`` for op ``what`` at fx node ``node``
  (``why``, else the ``SUPPORTED`` list, in parentheses).
"""
import builtins
import operator

__all__ = ["SUPPORTED", "UnsupportedOpError", "torch_name", "unsupported"]

#: What ``from_torch`` maps (for the error messages; the ``compiler.frontend_torch`` docstring has the
#: details).
SUPPORTED = ("torch.nn.Linear, torch.nn.ReLU, torch.nn.Tanh, torch.nn.Sigmoid, torch.nn.GELU(approximate='none'), "
             "torch.nn.SiLU, torch.nn.Embedding, torch.nn.LayerNorm, torch.nn.RMSNorm, torch.nn.Softmax, "
             "torch.nn.Flatten, torch.nn.Identity, torch.nn.Dropout (eval), torch.nn.Sequential; "
             "relu, tanh, sigmoid, gelu, silu, exp, neg, softmax, layer_norm, rms_norm, linear, argmax, flatten, "
             "reshape, view, transpose, permute (a swap), add, mul, div (by a constant), matmul, cat, split, chunk, "
             "slicing along the last axis, masked_fill (a constant mask), scaled_dot_product_attention")


class UnsupportedOpError(ValueError):
    """An op ``from_torch`` cannot map to the IR (a ``ValueError``)."""


def torch_name(torch, obj):
    """A readable name for a module class or a function: ``torch.nn.Conv1d``, ``torch.relu``, ``operator.mul``."""
    if isinstance(obj, type):
        if getattr(torch.nn, obj.__name__, None) is obj:
            return f"torch.nn.{obj.__name__}"
        return f"{obj.__module__}.{obj.__qualname__}"
    name = getattr(obj, "__name__", None)
    if name is not None:
        for prefix, mod in (("torch.nn.functional", torch.nn.functional), ("torch", torch), ("operator", operator),
                            ("builtins", builtins)):
            if getattr(mod, name, None) is obj:
                return f"{prefix}.{name}"
        module = getattr(obj, "__module__", None)
        return f"{module}.{getattr(obj, '__qualname__', name)}" if module else name
    return repr(obj)


def unsupported(what, node, why=None):
    return UnsupportedOpError(f"unsupported op {what} at node {node.name!r} "
                              f"({why if why else 'supported: ' + SUPPORTED})")

