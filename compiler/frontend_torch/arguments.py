"""The arguments the PyTorch front end reads: of each traced call, and of the ``forward`` (example inputs).

* ``bind(node, what, args, kwargs, params)``: an fx call's ``args``/``kwargs`` bound to ``params``
  (``[(name, default)]``, ``...`` = required) as a dict; an unknown keyword is an ``UnsupportedOpError``,
  too many arguments too, a missing or twice-given one a ``ValueError``.
* ``example_tensors(torch, names, example_inputs)``: ``{argument name: torch tensor}`` from a dict, a
  tuple / list in argument order or one array (float → float32, int → int64 unless int32); ``ValueError``
  / ``TypeError`` naming the argument otherwise.
"""
import numpy as np

from ..inputs import named_inputs
from .errors import unsupported

__all__ = ["bind", "example_tensors"]


def bind(node, what, args, kwargs, params):
    """``args``/``kwargs`` bound to ``params`` (``[(name, default)]``, ``...`` = required) as a dict."""
    if len(args) > len(params):
        raise unsupported(what, node, f"too many arguments: {len(args)}")
    out = {}
    for (p, _), a in zip(params, args):
        out[p] = a
    names = [p for p, _ in params]
    for k, v in kwargs.items():
        if k not in names:
            raise unsupported(f"{what}(..., {k}=...)", node, f"argument {k!r} is not supported")
        if k in out:
            raise ValueError(f"{what} at node {node.name!r}: argument {k!r} given twice")
        out[k] = v
    for p, default in params:
        if p not in out:
            if default is ...:
                raise ValueError(f"{what} at node {node.name!r}: missing argument {p!r}")
            out[p] = default
    return out


def example_tensors(torch, names, example_inputs):
    """``{argument name: torch tensor}`` (float → float32, int → int64 unless int32) from ``example_inputs``."""
    values = list(named_inputs(example_inputs, names, "example_inputs").values())
    out = {}
    for n, v in zip(names, values):
        if isinstance(v, torch.Tensor):
            t = v.detach().cpu()
        else:
            a = np.asarray(v)
            if a.dtype.kind not in "iuf":
                raise TypeError(f"example input {n!r} must be a numeric array or tensor, not {a.dtype}")
            t = torch.from_numpy(np.ascontiguousarray(a))
        if t.is_floating_point():
            t = t.to(torch.float32)
        elif t.dtype in (torch.int32,):
            pass
        elif t.dtype in (torch.int8, torch.int16, torch.int64, torch.uint8):
            t = t.to(torch.int64)
        else:
            raise TypeError(f"example input {n!r} must be a float or integer tensor, not {t.dtype}")
        if t.ndim == 0:
            raise ValueError(f"example input {n!r} must have at least one dimension (the batch), not a scalar")
        out[n] = t
    return out

