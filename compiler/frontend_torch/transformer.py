"""The mappings of the transformer ops (the second table of the ``compiler.frontend_torch`` docstring): the
same three tables as ``ops`` (``modules(torch)``, ``functions(torch)``, ``methods()``), merged with its.

Attention written out (``q @ k.transpose(-2, -1)``, a scale, ``masked_fill`` with a causal mask, softmax,
``@ v``) maps piece by piece here; ``from_torch`` then fuses it into one ``attention``
(``compiler.ir.fuse_attention``).
"""
import operator

import numpy as np

from .arguments import bind
from .context import Const, Pieces
from .errors import unsupported
from .ops import activation, binary, fit_constant

__all__ = ["modules", "functions", "methods"]

_LAST = "only along the last axis (dim=-1) is supported"


def _last_dim(ctx, node, what, x, dim):
    dim = ctx.resolve(dim, node, what)
    if not isinstance(dim, int) or isinstance(dim, bool) or not -x.ndim <= dim < x.ndim or dim % x.ndim != x.ndim - 1:
        raise unsupported(f"{what}(dim={dim!r})", node, _LAST)


def _binary(op, params):
    def handle(ctx, node, what, args, kwargs):
        b = bind(node, what, args, kwargs, params)
        if b.get("rounding_mode") is not None:
            raise unsupported(f"{what}(rounding_mode={b['rounding_mode']!r})", node, "only true division is supported")
        return binary(ctx, node, what, op, b["input"], b["other"])
    return handle


def _softmax(params):
    def handle(ctx, node, what, args, kwargs):
        b = bind(node, what, args, kwargs, params)
        return _softmax_of(ctx, node, what, b["input"], ctx.resolve(b["dim"], node, what), b.get("dtype"))
    return handle


def _softmax_of(ctx, node, what, x, dim, dtype=None):
    if dim is None:
        raise unsupported(what, node, "dim must be given (dim=-1)")
    if dtype not in (None, ctx.torch.float32):
        raise unsupported(f"{what}(dtype={dtype})", node, "only float32 is supported")
    return ctx.g.softmax(ctx.val(x, node, what), axis=dim, name=node.name)


def _norm_of(ctx, node, what, op, x, shape, weight, bias, eps):
    """``layernorm`` / ``rmsnorm`` over the last axis (``normalized_shape`` (D,)); ``eps=None``: float32's."""
    xt = ctx.val(x, node, what)
    shape = ctx.resolve(shape, node, what)
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    if shape != xt.shape[-1:]:
        raise unsupported(f"{what}(normalized_shape={shape})", node,
                          f"only over the last axis, normalized_shape=({xt.shape[-1]},), is supported")
    eps = float(ctx.torch.finfo(ctx.torch.float32).eps) if eps is None else ctx.resolve(eps, node, what)
    extra = {"bias": bias} if op == "layernorm" else {}
    return getattr(ctx.g, op)(xt, weight, eps=eps, name=node.name, **extra)


def _norm_function(op, params):
    def handle(ctx, node, what, args, kwargs):
        b = bind(node, what, args, kwargs, params)
        consts = {k: None if b.get(k) is None else ctx.const(b[k]) for k in ("weight", "bias")}
        if any(consts[k] is None and b.get(k) is not None for k in consts):
            raise unsupported(what, node, "weight and bias must be parameters or buffers of the module")
        return _norm_of(ctx, node, what, op, b["input"], b["normalized_shape"], consts["weight"], consts["bias"],
                        b["eps"])
    return handle


def _norm_module(op):
    def handle(ctx, node, what, m, x):
        weight, bias = (None if p is None else p.detach().cpu().to(ctx.torch.float32).numpy()
                        for p in (m.weight, getattr(m, "bias", None)))
        return _norm_of(ctx, node, what, op, x, m.normalized_shape, weight, bias, m.eps)
    return handle


def _transpose(ctx, node, what, args, kwargs):
    b = bind(node, what, args, kwargs, [("input", ...), ("dim0", ...), ("dim1", ...)])
    dims = ctx.resolve((b["dim0"], b["dim1"]), node, what)
    return ctx.g.transpose(ctx.val(b["input"], node, what), *dims, name=node.name)


def _permute(ctx, node, what, args, kwargs):
    x = ctx.val(args[0], node, what)
    dims = ctx.resolve(list(args[1:]) or kwargs.get("dims", []), node, what)
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = dims[0]
    dims = [d % x.ndim if isinstance(d, int) and -x.ndim <= d < x.ndim else d for d in dims]
    moved = [i for i, d in enumerate(dims) if d != i]
    if sorted(dims) == list(range(x.ndim)) and not moved:
        return x
    if sorted(dims) == list(range(x.ndim)) and len(moved) == 2:
        return ctx.g.transpose(x, *moved, name=node.name)
    raise unsupported(f"{what}{tuple(dims)}", node, "only a permutation that swaps two axes is supported")


def _cat(ctx, node, what, args, kwargs):
    b = bind(node, what, args, kwargs, [("tensors", ...), ("dim", 0)])
    if not isinstance(b["tensors"], (tuple, list)) or not b["tensors"]:
        raise unsupported(what, node, "tensors must be a tuple or list of tensors")
    xs = [ctx.val(t, node, what) for t in b["tensors"]]
    _last_dim(ctx, node, what, xs[0], b["dim"])
    return ctx.g.concat(xs, name=node.name)


def _split(params, chunks):
    """``split`` (pieces of ``size`` or of the sizes listed) / ``chunk`` (``n`` pieces of ⌈N / n⌉), last axis."""
    def handle(ctx, node, what, args, kwargs):
        b = bind(node, what, args, kwargs, params)
        x = ctx.val(b[params[0][0]], node, what)
        size = ctx.resolve(b[params[1][0]], node, what)
        _last_dim(ctx, node, what, x, b["dim"])
        n = x.shape[-1]
        if isinstance(size, (tuple, list)) and not chunks:
            ends = list(np.cumsum([0] + list(size)))
        elif isinstance(size, int) and not isinstance(size, bool) and size >= 1:
            step = -(-n // size) if chunks else size
            ends = list(range(0, n, step)) + [n]
        else:
            ends = []
        if len(ends) < 2 or ends[-1] != n:
            raise unsupported(f"{what}({size!r})", node, f"the pieces must cover the last axis ({n})")
        return Pieces(x, [(int(lo), int(hi)) for lo, hi in zip(ends[:-1], ends[1:])])
    return handle


def _masked_fill(ctx, node, what, args, kwargs):
    b = bind(node, what, args, kwargs, [("input", ...), ("mask", ...), ("value", ...)])
    x = ctx.val(b["input"], node, what)
    mask = b["mask"]
    if not isinstance(mask, ctx.torch.fx.Node) or not isinstance(ctx.env[mask.name], Const):
        raise unsupported(what, node, "the mask must be a constant: a buffer or an expression of buffers "
                                      "(e.g. self.tril[:T, :T] == 0)")
    value = ctx.const(b["value"])
    if value is None or np.ndim(value) != 0:
        raise unsupported(what, node, f"the value must be a number, not {b['value']!r}")
    return ctx.g.masked_fill(x, fit_constant(ctx.env[mask.name].value, x.shape), float(value), name=node.name)


def _sdpa(ctx, node, what, args, kwargs):
    b = bind(node, what, args, kwargs, [("query", ...), ("key", ...), ("value", ...), ("attn_mask", None),
                                        ("dropout_p", 0.0), ("is_causal", False), ("scale", None),
                                        ("enable_gqa", False)])
    if b["attn_mask"] is not None:
        raise unsupported(f"{what}(attn_mask=...)", node, "only is_causal=True or no mask is supported")
    for key, default in (("dropout_p", 0.0), ("enable_gqa", False)):
        if ctx.resolve(b[key], node, what) != default:
            raise unsupported(f"{what}({key}={b[key]!r})", node, f"only {key}={default} is supported")
    q, k, v = (ctx.val(b[key], node, what) for key in ("query", "key", "value"))
    causal = ctx.resolve(b["is_causal"], node, what)
    return ctx.g.attention(q, k, v, causal=causal, scale=ctx.resolve(b["scale"], node, what), name=node.name)


def _softmax_module(ctx, node, what, m, x):
    return _softmax_of(ctx, node, what, x, m.dim)


def modules(torch):
    nn = torch.nn
    return {nn.LayerNorm: _norm_module("layernorm"), nn.RMSNorm: _norm_module("rmsnorm"),
            nn.SiLU: lambda ctx, node, what, m, x: ctx.g.silu(ctx.val(x, node, "silu"), name=node.name),
            nn.Softmax: _softmax_module}


_MUL = [("input", ...), ("other", ...)]
_DIV = [("input", ...), ("other", ...), ("rounding_mode", None)]
_NEG = activation("neg", [("input", ...)])
_SOFTMAX = [("input", ...), ("dim", None), ("dtype", None)]
_SPLIT = [("input", ...), ("split_size", ...), ("dim", 0)]
_CHUNK = [("input", ...), ("chunks", ...), ("dim", 0)]


def functions(torch):
    F = torch.nn.functional
    return {operator.mul: _binary("mul", _MUL), torch.mul: _binary("mul", _MUL),
            operator.truediv: _binary("div", _DIV), torch.div: _binary("div", _DIV),
            operator.neg: _NEG, torch.neg: _NEG, F.silu: activation("silu"),
            F.softmax: _softmax([("input", ...), ("dim", None), ("_stacklevel", 3), ("dtype", None)]),
            torch.softmax: _softmax(_SOFTMAX),
            F.layer_norm: _norm_function("layernorm", [("input", ...), ("normalized_shape", ...),
                                                       ("weight", None), ("bias", None), ("eps", 1e-5)]),
            F.rms_norm: _norm_function("rmsnorm", [("input", ...), ("normalized_shape", ...), ("weight", None),
                                                   ("eps", None)]),
            torch.transpose: _transpose, torch.cat: _cat, torch.concat: _cat,
            torch.split: _split([("tensor", ...), ("split_size_or_sections", ...), ("dim", 0)], False),
            torch.chunk: _split(_CHUNK, True), torch.masked_fill: _masked_fill,
            F.scaled_dot_product_attention: _sdpa}


def methods():
    return {"mul": _binary("mul", _MUL), "div": _binary("div", _DIV), "neg": _NEG, "softmax": _softmax(_SOFTMAX),
            "transpose": _transpose, "permute": _permute, "split": _split(_SPLIT, False),
            "chunk": _split(_CHUNK, True), "masked_fill": _masked_fill}
