"""The mappings of the MLP ops (the first table of the ``compiler.frontend_torch`` docstring), and the
helpers the transformer ops share.

* ``modules(torch)``: ``{module class: fn(ctx, node, what, module, x)}``; ``functions(torch)``: ``{function:
  fn(ctx, node, what, args, kwargs)}``; ``methods()``: ``{Tensor method name: fn(ctx, node, what, args,
  kwargs)}`` (``args[0]`` the tensor). Each returns the IR value of the fx node (``ctx.env``'s entry).
* ``activation(op, params)``: the mapping of an elementwise op (its arguments bound to ``params``).
* ``fit_constant(c, shape)``: constant ``c`` with its leading size-1 axes dropped until it broadcasts along
  the leading axes of ``shape`` (a (1, T, D) buffer against (None, T, D) becomes (T, D)).
* ``binary(ctx, node, what, op, a, b)``: ``a + b`` / ``a * b`` / ``a / b`` with one operand an activation and
  the other an activation, a constant (``fit_constant``) or a number; ``add`` of a number is a (N,) vector,
  ``div`` by a constant a ``mul`` by its reciprocal.
"""
import builtins
import operator

import numpy as np

from .arguments import bind
from .context import Meta, Pieces
from .errors import unsupported

__all__ = ["modules", "functions", "methods", "activation", "binary", "fit_constant"]

_EXACT_GELU = "only the exact GELU, approximate='none', is supported"
_INPLACE = (("input", ...), ("inplace", False))


def activation(op, params=_INPLACE):
    def handle(ctx, node, what, args, kwargs):
        b = bind(node, what, args, kwargs, list(params))
        return getattr(ctx.g, op)(ctx.val(b["input"], node, op), name=node.name)
    return handle


def _gelu(ctx, node, what, args, kwargs):
    b = bind(node, what, args, kwargs, [("input", ...), ("approximate", "none")])
    if b["approximate"] != "none":
        raise unsupported(f"{what}(approximate={b['approximate']!r})", node, _EXACT_GELU)
    return ctx.g.gelu(ctx.val(b["input"], node, "gelu"), name=node.name)


def _argmax(ctx, node, what, args, kwargs):
    b = bind(node, what, args, kwargs, [("input", ...), ("dim", None), ("keepdim", False)])
    dim, keepdim = b["dim"], b["keepdim"]
    if keepdim:
        raise unsupported(f"{what}(keepdim=True)", node, "only keepdim=False is supported")
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise unsupported(f"{what}(dim={dim!r})", node, "dim must be an int (e.g. dim=-1)")
    return ctx.g.argmax(ctx.val(b["input"], node, what), axis=dim, name=node.name)


def _reshape(ctx, node, what, args, kwargs):
    """To the traced output shape; with a ``None`` batch the leading dimension must be kept (it becomes -1)."""
    x = ctx.val(args[0] if args else kwargs.get("input"), node, what)
    out = ctx.traced_shape(node)
    xin = ctx.traced_shape(node.args[0]) if isinstance(node.args[0], ctx.torch.fx.Node) else None
    if None in x.shape:
        if not out or xin is None or out[0] != xin[0]:
            raise ValueError(f"{what} at node {node.name!r}: with dynamic_batch the reshape must keep the "
                             f"leading (batch) dimension, not {xin} -> {out} (pass dynamic_batch=False for "
                             f"fixed shapes)")
        out = (-1,) + out[1:]
    return ctx.g.reshape(x, out, name=node.name)


def fit_constant(c, shape):
    """Constant ``c`` with leading size-1 axes dropped until it broadcasts along the leading axes of ``shape``."""
    c = np.asarray(c)
    while c.ndim and c.shape[0] == 1 and (c.ndim > len(shape) or c.shape != tuple(shape[len(shape) - c.ndim:])):
        c = c[0]
    return c


def binary(ctx, node, what, op, a, b):
    """``a op b`` (``op``: "add", "mul", "div"), one operand an activation (module docstring)."""
    if not ctx.is_tensor(a) and op != "div":
        a, b = b, a
    x = ctx.val(a, node, what)
    if ctx.is_tensor(b):
        if op == "div":
            raise unsupported(what, node, "division by a tensor is not supported (only by a constant)")
        return getattr(ctx.g, op)(x, ctx.val(b, node, what), name=node.name)
    c = ctx.const(b)
    if c is None:
        verb = {"add": "add", "mul": "multiply by", "div": "divide by"}[op]
        raise unsupported(what, node, f"cannot {verb} {b!r}: a tensor, a parameter or a number is needed")
    c = fit_constant(c, x.shape)
    if op == "div":
        op, c = "mul", (1.0 / c.astype(np.float64)).astype(np.float32)
    if op == "add" and c.ndim == 0:
        c = np.full(x.shape[-1], c, np.float32)
    return getattr(ctx.g, op)(x, c, name=node.name)


def _add(ctx, node, what, args, kwargs):
    b = bind(node, what, args, kwargs, [("input", ...), ("other", ...), ("alpha", 1)])
    if b["alpha"] != 1:
        raise unsupported(f"{what}(alpha={b['alpha']!r})", node, "only alpha=1 is supported")
    return binary(ctx, node, what, "add", b["input"], b["other"])


def _matmul(ctx, node, what, args, kwargs):
    b = bind(node, what, args, kwargs, [("input", ...), ("other", ...)])
    return ctx.g.matmul(ctx.val(b["input"], node, what), ctx.val(b["other"], node, what), name=node.name)


def _linear(ctx, node, x, weight, bias):
    return ctx.g.linear(ctx.val(x, node, "linear"), weight.T, bias, name=node.name)


def _f_linear(ctx, node, what, args, kwargs):
    b = bind(node, what, args, kwargs, [("input", ...), ("weight", ...), ("bias", None)])
    w = ctx.const(b["weight"])
    bias = None if b["bias"] is None else ctx.const(b["bias"])
    if w is None or np.ndim(w) != 2 or (b["bias"] is not None and bias is None):
        raise unsupported(what, node, "weight and bias must be parameters or buffers of the module")
    return _linear(ctx, node, b["input"], w, bias)


def _getattr(ctx, node, what, args, kwargs):
    if len(args) == 2 and args[1] in ("shape", "device", "dtype", "ndim"):
        return Meta(node, ctx.values.get(node.name))
    raise unsupported(what, node)


def _getitem(ctx, node, what, args, kwargs):
    """``x[..., a:b]`` (slices along the last axis only), or one piece of a ``split``/``chunk``."""
    x, index = args
    pieces = ctx.env.get(x.name) if isinstance(x, ctx.torch.fx.Node) else None
    if isinstance(pieces, Pieces) and isinstance(index, int):
        lo, hi = pieces.bounds[index]
        x = pieces.x
    else:
        x = ctx.val(x, node, what)
        index = ctx.resolve(index, node, what)
        index = index if isinstance(index, tuple) else (index,)
        if index.count(Ellipsis) == 1:
            i = index.index(Ellipsis)
            index = index[:i] + (slice(None),) * (x.ndim - len(index) + 1) + index[i + 1:]
        index = index + (slice(None),) * (x.ndim - len(index))
        if (len(index) != x.ndim or not all(isinstance(s, slice) for s in index)
                or any(s != slice(None) for s in index[:-1]) or index[-1].step not in (None, 1)):
            raise unsupported(what, node, f"only slices along the last axis are supported (x[..., a:b]), not "
                                          f"{args[1]!r}")
        lo, hi, _ = index[-1].indices(x.shape[-1])
    if (lo, hi) == (0, x.shape[-1]):
        return x
    return ctx.g.slice(x, lo, hi, name=node.name)


def _same(ctx, node, what, args, kwargs):
    return ctx.val(args[0], node, what)


def _meta(ctx, node, what, args, kwargs):
    return Meta(node, ctx.values.get(node.name))


def _embedding(ctx, node, what, m, x):
    if m.max_norm is not None:
        raise unsupported(f"{what}(max_norm={m.max_norm})", node, "only max_norm=None is supported")
    table = m.weight.detach().cpu().to(ctx.torch.float32).numpy()
    return ctx.g.embedding(ctx.val(x, node, what), table, name=node.name)


def _gelu_module(ctx, node, what, m, x):
    if m.approximate != "none":
        raise unsupported(f"{what}(approximate={m.approximate!r})", node, _EXACT_GELU)
    return ctx.g.gelu(ctx.val(x, node, "gelu"), name=node.name)


def _linear_module(ctx, node, what, m, x):
    w = m.weight.detach().cpu().to(ctx.torch.float32).numpy()
    b = None if m.bias is None else m.bias.detach().cpu().to(ctx.torch.float32).numpy()
    return _linear(ctx, node, x, w, b)


def _identity_module(ctx, node, what, m, x):
    if isinstance(m, ctx.torch.nn.Dropout) and m.training and m.p > 0:
        raise unsupported(what, node, "dropout in training mode: call module.eval() first")
    return ctx.val(x, node, what)


def _module_activation(op):
    return lambda ctx, node, what, m, x: getattr(ctx.g, op)(ctx.val(x, node, op), name=node.name)


def modules(torch):
    nn = torch.nn
    return {nn.Linear: _linear_module, nn.ReLU: _module_activation("relu"), nn.Tanh: _module_activation("tanh"),
            nn.Sigmoid: _module_activation("sigmoid"), nn.GELU: _gelu_module, nn.Embedding: _embedding,
            nn.Flatten: lambda ctx, node, what, m, x: _reshape(ctx, node, what, (x,), {}),
            nn.Identity: _identity_module, nn.Dropout: _identity_module}


def functions(torch):
    F = torch.nn.functional
    table = {fn: activation(op) for fn, op in ((torch.relu, "relu"), (F.relu, "relu"), (torch.tanh, "tanh"),
                                               (F.tanh, "tanh"), (torch.sigmoid, "sigmoid"),
                                               (F.sigmoid, "sigmoid"), (torch.exp, "exp"))}
    table.update({F.gelu: _gelu, torch.argmax: _argmax, torch.flatten: _reshape, torch.reshape: _reshape,
                  F.linear: _f_linear, operator.add: _add, torch.add: _add, operator.matmul: _matmul,
                  torch.matmul: _matmul, builtins.getattr: _getattr, operator.getitem: _getitem})
    return table


def methods():
    table = {m: activation(m, [("input", ...)]) for m in ("relu", "tanh", "sigmoid", "exp")}
    table.update({"argmax": _argmax, "flatten": _reshape, "reshape": _reshape, "view": _reshape,
                  "contiguous": _same, "size": _meta, "dim": _meta, "add": _add, "matmul": _matmul})
    return table

