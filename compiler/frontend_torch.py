"""A PyTorch front end: ``from_torch(module, example_inputs)`` → a ``compiler.ir.Graph``.

The module is traced with ``torch.fx.symbolic_trace`` (so its ``forward`` must not branch on tensor values)
and run once on ``example_inputs`` (``torch.fx.passes.shape_prop.ShapeProp``) for the shape of every value;
each fx node then becomes one IR node **of the same name** (``fc1``, ``_0``, ``_2_1`` for nested
``nn.Sequential`` children, ``relu``, ``argmax`` …), so the IR's own errors name the torch node too.

``import torch`` happens inside ``from_torch``: ``compiler`` (and this module) import without torch.

Inputs
------
* The graph inputs are the ``forward`` 's arguments, under their names (``nn.Sequential``'s is ``input``).
  ``example_inputs``: a dict ``{argument name: numpy array or torch tensor}``, a tuple / list in argument
  order, or one array for a one-argument ``forward``. Float arrays are taken as float32, integer ones as
  int64 (int32 stays int32) (token ids for an ``nn.Embedding``).
* ``dynamic_batch=True`` (default): the leading dimension of every input is declared ``None`` (any batch
  size); a reshape must then keep the leading (batch) dimension (the traced output's first size equals its
  input's) and becomes ``reshape(x, (-1, …))``. Use an example batch size that differs from the other
  sizes. ``dynamic_batch=False``: the example shapes, exactly.

Supported (everything else is refused, see below)
-------------------------------------------------
==========================================================  ===================================================
``nn.Linear`` (with or without bias), ``F.linear`` with       ``linear``, ``W = weight.T`` (float32 copies);
parameters / buffers of the module                           the input must be 2-D (batch, features)
``nn.ReLU``, ``F.relu``, ``torch.relu``, ``x.relu()``        ``relu``
``nn.Tanh``, ``torch.tanh``, ``F.tanh``, ``x.tanh()``        ``tanh``
``nn.Sigmoid``, ``torch.sigmoid``, ``F.sigmoid``, ``x.sigmoid()``  ``sigmoid``
``nn.GELU()`` / ``F.gelu(x)`` with ``approximate='none'``    ``gelu`` (exact, erf); ``'tanh'`` is refused
``torch.exp``, ``x.exp()``                                   ``exp``
``nn.Embedding`` (``max_norm=None``)                         ``embedding`` (the weight, float32)
``torch.argmax(x, dim)``, ``x.argmax(dim)`` (``keepdim=False``, an int ``dim``)  ``argmax``
``nn.Flatten``, ``torch.flatten``, ``x.flatten``,            ``reshape`` to the traced output shape (shape
``torch.reshape``, ``x.reshape``, ``x.view``                 arguments such as ``x.size(0)``, ``x.shape[0]``
                                                             are taken from the trace)
``x + y``, ``torch.add(x, y)`` (tensors, or a parameter /    ``add`` (``y`` of ``x``'s shape or a vector over
a number as ``y``)                                           the last axis)
``x @ y``, ``torch.matmul(x, y)`` of two 2-D activations     ``matmul`` (``y`` 's rows must be known: with
                                                             an input as ``y`` use ``dynamic_batch=False``)
``nn.Sequential`` (nested), ``nn.Identity``, ``nn.Dropout``  traced through; identity / dropout (eval mode
(in eval mode), ``x.contiguous()``                           only) are skipped
==========================================================  ===================================================

Outputs: one returned tensor is the output ``"output"``; a tuple / list gives ``"output_0"``,
``"output_1"`` …; a dict gives its keys.

Errors
------
An op outside the table raises ``UnsupportedOpError`` (a ``ValueError``) naming the op and the fx node, e.g.
``unsupported op torch.nn.Conv1d at node 'conv' (supported: torch.nn.Linear, …)``, ``unsupported op
operator.mul at node 'mul' (…)`` for a Python-side ``x * 2``, ``unsupported op
torch.nn.GELU(approximate='tanh') at node 'act' (only the exact GELU, approximate='none', is supported)``.
Other problems (a model fx cannot trace, example inputs that do not match the ``forward``, a reshape that
mixes the batch dimension) raise ``ValueError``; shape and dtype errors of the IR builder propagate
unchanged (they name the op and the node).
"""
import builtins
import operator

import numpy as np

from .ir import Graph

__all__ = ["from_torch", "UnsupportedOpError", "SUPPORTED"]

#: What ``from_torch`` maps (for the error messages; the module docstring has the details).
SUPPORTED = ("torch.nn.Linear, torch.nn.ReLU, torch.nn.Tanh, torch.nn.Sigmoid, torch.nn.GELU(approximate='none'), "
             "torch.nn.Embedding, torch.nn.Flatten, torch.nn.Identity, torch.nn.Dropout (eval), torch.nn.Sequential; "
             "relu, tanh, sigmoid, gelu, exp, linear, argmax, flatten, reshape, view, add, matmul")


class UnsupportedOpError(ValueError):
    """An op ``from_torch`` cannot map to the IR (a ``ValueError``)."""


class _Meta:
    """A non-tensor value of the trace (a size, ``x.shape``, arithmetic on them): only shape arguments."""

    def __init__(self, node):
        self.node = node


class _Const:
    """A parameter or buffer of the module (``get_attr``), float32 numpy."""

    def __init__(self, value, node):
        self.value = value
        self.node = node


def _torch_name(torch, obj):
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


def _unsupported(what, node, why=None):
    return UnsupportedOpError(f"unsupported op {what} at node {node.name!r} "
                              f"({why if why else 'supported: ' + SUPPORTED})")


def _bind(node, what, args, kwargs, params):
    """``args``/``kwargs`` bound to ``params`` (``[(name, default)]``, ``...`` = required) as a dict."""
    if len(args) > len(params):
        raise _unsupported(what, node, f"too many arguments: {len(args)}")
    out = {}
    for (p, _), a in zip(params, args):
        out[p] = a
    names = [p for p, _ in params]
    for k, v in kwargs.items():
        if k not in names:
            raise _unsupported(f"{what}(..., {k}=...)", node, f"argument {k!r} is not supported")
        if k in out:
            raise ValueError(f"{what} at node {node.name!r}: argument {k!r} given twice")
        out[k] = v
    for p, default in params:
        if p not in out:
            if default is ...:
                raise ValueError(f"{what} at node {node.name!r}: missing argument {p!r}")
            out[p] = default
    return out


def _example_tensors(torch, names, example_inputs):
    """``{argument name: torch tensor}`` (float → float32, int → int64 unless int32) from ``example_inputs``."""
    if isinstance(example_inputs, dict):
        missing = [n for n in names if n not in example_inputs]
        extra = [str(k) for k in example_inputs if k not in names]
        if missing or extra:
            raise ValueError(f"example_inputs must hold exactly the forward's arguments ({', '.join(names)}), not "
                             f"{', '.join(map(str, example_inputs)) or 'nothing'}"
                             + (f" (missing {', '.join(missing)})" if missing else "")
                             + (f" (unknown {', '.join(extra)})" if extra else ""))
        values = [example_inputs[n] for n in names]
    else:
        if not isinstance(example_inputs, (tuple, list)):
            example_inputs = (example_inputs,)
        if len(example_inputs) != len(names):
            raise ValueError(f"example_inputs must hold {len(names)} values in argument order "
                             f"({', '.join(names)}), not {len(example_inputs)}")
        values = list(example_inputs)
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


def from_torch(module, example_inputs, dynamic_batch=True):
    """Trace ``module`` (a ``torch.nn.Module``) into a ``compiler.ir.Graph`` (module docstring).

    ``example_inputs``: ``{argument name: array/tensor}``, a tuple in argument order, or one array.
    Raises ``UnsupportedOpError`` (a ``ValueError``) naming the op and the fx node for an unsupported op."""
    import torch
    import torch.fx
    import torch.nn.functional as F
    from torch.fx.passes.shape_prop import ShapeProp

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, not {type(module).__name__}")
    try:
        gm = torch.fx.symbolic_trace(module)
    except Exception as e:  # TraceError, control flow on tensor values, …
        raise ValueError(f"torch.fx could not trace {type(module).__name__}: {type(e).__name__}: {e}") from e

    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    for p in placeholders:
        if str(p.target).startswith("*"):
            raise ValueError(f"forward must take named tensor arguments, not *{str(p.target).lstrip('*')}")
    names = [str(p.target) for p in placeholders]
    examples = _example_tensors(torch, names, example_inputs)
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(*[examples[n] for n in names])
    except Exception as e:
        raise ValueError(f"running {type(module).__name__} on example_inputs failed: {type(e).__name__}: {e}") from e

    def traced_shape(node):
        meta = node.meta.get("tensor_meta")
        if meta is None or not hasattr(meta, "shape"):
            raise ValueError(f"node {node.name!r}: no traced tensor shape (it must produce one tensor)")
        return tuple(int(d) for d in meta.shape)

    g = Graph()
    env = {}

    def val(a, node, what):
        """The IR tensor for argument ``a`` of ``node`` (an fx node producing a tensor)."""
        if isinstance(a, torch.fx.Node):
            v = env[a.name]
            if hasattr(v, "graph") and v.graph is g:
                return v
        raise _unsupported(what, node, f"its input {a!r} must be a tensor computed from the inputs")

    def const(a):
        """A constant operand: a parameter/buffer (``get_attr``) or a Python number, else None."""
        if isinstance(a, torch.fx.Node) and isinstance(env.get(a.name), _Const):
            return env[a.name].value
        if isinstance(a, (int, float)) and not isinstance(a, bool):
            return np.float32(a)
        return None

    def is_meta_arg(a):
        if isinstance(a, torch.fx.Node):
            return isinstance(env[a.name], _Meta)
        if isinstance(a, (tuple, list)):
            return all(is_meta_arg(x) for x in a)
        return a is None or isinstance(a, (int, float, str, slice))

    def reshape(node, what, x):
        out = traced_shape(node)
        xin = traced_shape(node.args[0]) if isinstance(node.args[0], torch.fx.Node) else None
        if None in x.shape:
            if not out or xin is None or out[0] != xin[0]:
                raise ValueError(f"{what} at node {node.name!r}: with dynamic_batch the reshape must keep the "
                                 f"leading (batch) dimension, not {xin} -> {out} (pass dynamic_batch=False for "
                                 f"fixed shapes)")
            target = (-1,) + out[1:]
        else:
            target = out
        return g.reshape(x, target, name=node.name)

    def activation(op, node, x):
        return getattr(g, op)(val(x, node, op), name=node.name)

    def argmax(node, what, b):
        dim, keepdim = b["dim"], b["keepdim"]
        if keepdim:
            raise _unsupported(f"{what}(keepdim=True)", node, "only keepdim=False is supported")
        if not isinstance(dim, int) or isinstance(dim, bool):
            raise _unsupported(f"{what}(dim={dim!r})", node, "dim must be an int (e.g. dim=-1)")
        return g.argmax(val(b["input"], node, what), axis=dim, name=node.name)

    def add(node, what, a, b):
        if isinstance(a, torch.fx.Node) and not isinstance(env[a.name], (_Const, _Meta)):
            x, other = a, b
        else:
            x, other = b, a
        xt = val(x, node, what)
        if isinstance(other, torch.fx.Node) and not isinstance(env[other.name], (_Const, _Meta)):
            return g.add(xt, val(other, node, what), name=node.name)
        c = const(other)
        if c is None:
            raise _unsupported(what, node, f"cannot add {other!r}: a tensor, a parameter or a number is needed")
        if np.ndim(c) == 0:
            c = np.full(xt.shape[-1], c, np.float32)
        return g.add(xt, c, name=node.name)

    def linear(node, x, weight, bias):
        return g.linear(val(x, node, "linear"), weight.T, bias, name=node.name)

    activations = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "exp": "exp"}
    functions = {torch.relu: "relu", F.relu: "relu", torch.tanh: "tanh", F.tanh: "tanh",
                 torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", torch.exp: "exp"}
    reshapes = (torch.flatten, torch.reshape)
    identity_modules = (torch.nn.Identity, torch.nn.Dropout)

    outputs = None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            name = str(node.target)
            t = examples[name]
            shape = tuple(t.shape)
            if dynamic_batch:
                shape = (None,) + shape[1:]
            dtype = "float32" if t.is_floating_point() else ("int32" if t.dtype == torch.int32 else "int64")
            env[node.name] = g.input(name, shape, dtype)

        elif node.op == "get_attr":
            obj = gm
            for part in str(node.target).split("."):
                obj = getattr(obj, part)
            if not isinstance(obj, torch.Tensor):
                raise _unsupported(f"get_attr {node.target}", node, "only parameters and buffers are supported")
            env[node.name] = _Const(obj.detach().cpu().to(torch.float32).numpy().copy(), node)

        elif node.op == "call_module":
            m = gm.get_submodule(str(node.target))
            what = _torch_name(torch, type(m))
            if node.kwargs or len(node.args) != 1:
                raise _unsupported(what, node, "a module must be called with one tensor")
            (x,) = node.args
            if isinstance(m, torch.nn.Linear):
                w = m.weight.detach().cpu().to(torch.float32).numpy()
                b = None if m.bias is None else m.bias.detach().cpu().to(torch.float32).numpy()
                env[node.name] = linear(node, x, w, b)
            elif type(m) in (torch.nn.ReLU, torch.nn.Tanh, torch.nn.Sigmoid):
                env[node.name] = activation(type(m).__name__.lower(), node, x)
            elif isinstance(m, torch.nn.GELU):
                if m.approximate != "none":
                    raise _unsupported(f"{what}(approximate={m.approximate!r})", node,
                                       "only the exact GELU, approximate='none', is supported")
                env[node.name] = activation("gelu", node, x)
            elif isinstance(m, torch.nn.Embedding):
                if m.max_norm is not None:
                    raise _unsupported(f"{what}(max_norm={m.max_norm})", node, "only max_norm=None is supported")
                table = m.weight.detach().cpu().to(torch.float32).numpy()
                env[node.name] = g.embedding(val(x, node, what), table, name=node.name)
            elif isinstance(m, torch.nn.Flatten):
                env[node.name] = reshape(node, what, val(x, node, what))
            elif isinstance(m, identity_modules):
                if isinstance(m, torch.nn.Dropout) and m.training and m.p > 0:
                    raise _unsupported(what, node, "dropout in training mode: call module.eval() first")
                env[node.name] = val(x, node, what)
            else:
                raise _unsupported(what, node)

        elif node.op == "call_function":
            fn = node.target
            what = _torch_name(torch, fn)
            args, kwargs = node.args, node.kwargs
            if fn in functions:
                b = _bind(node, what, args, kwargs, [("input", ...), ("inplace", False)])
                env[node.name] = activation(functions[fn], node, b["input"])
            elif fn is F.gelu:
                b = _bind(node, what, args, kwargs, [("input", ...), ("approximate", "none")])
                if b["approximate"] != "none":
                    raise _unsupported(f"{what}(approximate={b['approximate']!r})", node,
                                       "only the exact GELU, approximate='none', is supported")
                env[node.name] = activation("gelu", node, b["input"])
            elif fn is torch.argmax:
                b = _bind(node, what, args, kwargs, [("input", ...), ("dim", None), ("keepdim", False)])
                env[node.name] = argmax(node, what, b)
            elif fn in reshapes:
                env[node.name] = reshape(node, what, val(args[0] if args else kwargs.get("input"), node, what))
            elif fn is F.linear:
                b = _bind(node, what, args, kwargs, [("input", ...), ("weight", ...), ("bias", None)])
                w = const(b["weight"])
                bias = None if b["bias"] is None else const(b["bias"])
                if w is None or np.ndim(w) != 2 or (b["bias"] is not None and bias is None):
                    raise _unsupported(what, node, "weight and bias must be parameters or buffers of the module")
                env[node.name] = linear(node, b["input"], w, bias)
            elif fn in (operator.add, torch.add) and not is_meta_arg(list(args) + list(kwargs.values())):
                b = _bind(node, what, args, kwargs, [("input", ...), ("other", ...), ("alpha", 1)])
                if b["alpha"] != 1:
                    raise _unsupported(f"{what}(alpha={b['alpha']!r})", node, "only alpha=1 is supported")
                env[node.name] = add(node, what, b["input"], b["other"])
            elif fn in (operator.matmul, torch.matmul):
                b = _bind(node, what, args, kwargs, [("input", ...), ("other", ...)])
                env[node.name] = g.matmul(val(b["input"], node, what), val(b["other"], node, what), name=node.name)
            elif fn is builtins.getattr and len(args) == 2 and args[1] == "shape":
                env[node.name] = _Meta(node)
            elif (getattr(fn, "__module__", None) in ("_operator", "operator")
                  and is_meta_arg(list(args) + list(kwargs.values()))):
                env[node.name] = _Meta(node)              # x.shape[0], x.size(1) * x.size(2) …: shape arithmetic
            else:
                raise _unsupported(what, node)

        elif node.op == "call_method":
            what = f"Tensor.{node.target}"
            args, kwargs = node.args, node.kwargs
            method = node.target
            if method in activations:
                b = _bind(node, what, args, kwargs, [("input", ...)])
                env[node.name] = activation(activations[method], node, b["input"])
            elif method == "argmax":
                b = _bind(node, what, args, kwargs, [("input", ...), ("dim", None), ("keepdim", False)])
                env[node.name] = argmax(node, what, b)
            elif method in ("flatten", "reshape", "view"):
                env[node.name] = reshape(node, what, val(args[0], node, what))
            elif method == "contiguous":
                env[node.name] = val(args[0], node, what)
            elif method in ("size", "dim"):
                env[node.name] = _Meta(node)
            else:
                raise _unsupported(what, node)

        elif node.op == "output":
            outputs = node.args[0]

    if outputs is None:  # pragma: no cover - fx always has an output node
        raise ValueError("the traced graph has no output")

    def out_tensor(a, name):
        if isinstance(a, torch.fx.Node):
            v = env[a.name]
            if hasattr(v, "graph") and v.graph is g:
                return v
        raise ValueError(f"output {name!r} must be a tensor computed from the inputs, not {a!r}")

    if isinstance(outputs, dict):
        for k, a in outputs.items():
            g.output(out_tensor(a, str(k)), str(k))
    elif isinstance(outputs, (tuple, list)):
        for i, a in enumerate(outputs):
            g.output(out_tensor(a, f"output_{i}"), f"output_{i}")
    else:
        g.output(out_tensor(outputs, "output"), "output")
    return g
