"""``from_torch(module, example_inputs, dynamic_batch=True)``: trace with ``torch.fx``, propagate the example
shapes, and map every fx node to one IR node of the same name (the ``compiler.frontend_torch`` docstring).
"""
import builtins
import operator

import numpy as np

from ..ir import Graph
from .arguments import bind, example_tensors
from .errors import torch_name, unsupported

__all__ = ["from_torch"]


class _Meta:
    """A non-tensor value of the trace (a size, ``x.shape``, arithmetic on them): only shape arguments."""

    def __init__(self, node):
        self.node = node


class _Const:
    """A parameter or buffer of the module (``get_attr``), float32 numpy."""

    def __init__(self, value, node):
        self.value = value
        self.node = node


def from_torch(module, example_inputs, dynamic_batch=True):
    """Trace ``module`` (a ``torch.nn.Module``) into a ``compiler.ir.Graph`` (``compiler.frontend_torch``
    docstring).

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
    examples = example_tensors(torch, names, example_inputs)
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
        raise unsupported(what, node, f"its input {a!r} must be a tensor computed from the inputs")

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
            raise unsupported(f"{what}(keepdim=True)", node, "only keepdim=False is supported")
        if not isinstance(dim, int) or isinstance(dim, bool):
            raise unsupported(f"{what}(dim={dim!r})", node, "dim must be an int (e.g. dim=-1)")
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
            raise unsupported(what, node, f"cannot add {other!r}: a tensor, a parameter or a number is needed")
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
                raise unsupported(f"get_attr {node.target}", node, "only parameters and buffers are supported")
            env[node.name] = _Const(obj.detach().cpu().to(torch.float32).numpy().copy(), node)

        elif node.op == "call_module":
            m = gm.get_submodule(str(node.target))
            what = torch_name(torch, type(m))
            if node.kwargs or len(node.args) != 1:
                raise unsupported(what, node, "a module must be called with one tensor")
            (x,) = node.args
            if isinstance(m, torch.nn.Linear):
                w = m.weight.detach().cpu().to(torch.float32).numpy()
                b = None if m.bias is None else m.bias.detach().cpu().to(torch.float32).numpy()
                env[node.name] = linear(node, x, w, b)
            elif type(m) in (torch.nn.ReLU, torch.nn.Tanh, torch.nn.Sigmoid):
                env[node.name] = activation(type(m).__name__.lower(), node, x)
            elif isinstance(m, torch.nn.GELU):
                if m.approximate != "none":
                    raise unsupported(f"{what}(approximate={m.approximate!r})", node,
                                       "only the exact GELU, approximate='none', is supported")
                env[node.name] = activation("gelu", node, x)
            elif isinstance(m, torch.nn.Embedding):
                if m.max_norm is not None:
                    raise unsupported(f"{what}(max_norm={m.max_norm})", node, "only max_norm=None is supported")
                table = m.weight.detach().cpu().to(torch.float32).numpy()
                env[node.name] = g.embedding(val(x, node, what), table, name=node.name)
            elif isinstance(m, torch.nn.Flatten):
                env[node.name] = reshape(node, what, val(x, node, what))
            elif isinstance(m, identity_modules):
                if isinstance(m, torch.nn.Dropout) and m.training and m.p > 0:
                    raise unsupported(what, node, "dropout in training mode: call module.eval() first")
                env[node.name] = val(x, node, what)
            else:
                raise unsupported(what, node)

        elif node.op == "call_function":
            fn = node.target
            what = torch_name(torch, fn)
            args, kwargs = node.args, node.kwargs
            if fn in functions:
                b = bind(node, what, args, kwargs, [("input", ...), ("inplace", False)])
                env[node.name] = activation(functions[fn], node, b["input"])
            elif fn is F.gelu:
                b = bind(node, what, args, kwargs, [("input", ...), ("approximate", "none")])
                if b["approximate"] != "none":
                    raise unsupported(f"{what}(approximate={b['approximate']!r})", node,
                                       "only the exact GELU, approximate='none', is supported")
                env[node.name] = activation("gelu", node, b["input"])
            elif fn is torch.argmax:
                b = bind(node, what, args, kwargs, [("input", ...), ("dim", None), ("keepdim", False)])
                env[node.name] = argmax(node, what, b)
            elif fn in reshapes:
                env[node.name] = reshape(node, what, val(args[0] if args else kwargs.get("input"), node, what))
            elif fn is F.linear:
                b = bind(node, what, args, kwargs, [("input", ...), ("weight", ...), ("bias", None)])
                w = const(b["weight"])
                bias = None if b["bias"] is None else const(b["bias"])
                if w is None or np.ndim(w) != 2 or (b["bias"] is not None and bias is None):
                    raise unsupported(what, node, "weight and bias must be parameters or buffers of the module")
                env[node.name] = linear(node, b["input"], w, bias)
            elif fn in (operator.add, torch.add) and not is_meta_arg(list(args) + list(kwargs.values())):
                b = bind(node, what, args, kwargs, [("input", ...), ("other", ...), ("alpha", 1)])
                if b["alpha"] != 1:
                    raise unsupported(f"{what}(alpha={b['alpha']!r})", node, "only alpha=1 is supported")
                env[node.name] = add(node, what, b["input"], b["other"])
            elif fn in (operator.matmul, torch.matmul):
                b = bind(node, what, args, kwargs, [("input", ...), ("other", ...)])
                env[node.name] = g.matmul(val(b["input"], node, what), val(b["other"], node, what), name=node.name)
            elif fn is builtins.getattr and len(args) == 2 and args[1] == "shape":
                env[node.name] = _Meta(node)
            elif (getattr(fn, "__module__", None) in ("_operator", "operator")
                  and is_meta_arg(list(args) + list(kwargs.values()))):
                env[node.name] = _Meta(node)              # x.shape[0], x.size(1) * x.size(2) …: shape arithmetic
            else:
                raise unsupported(what, node)

        elif node.op == "call_method":
            what = f"Tensor.{node.target}"
            args, kwargs = node.args, node.kwargs
            method = node.target
            if method in activations:
                b = bind(node, what, args, kwargs, [("input", ...)])
                env[node.name] = activation(activations[method], node, b["input"])
            elif method == "argmax":
                b = bind(node, what, args, kwargs, [("input", ...), ("dim", None), ("keepdim", False)])
                env[node.name] = argmax(node, what, b)
            elif method in ("flatten", "reshape", "view"):
                env[node.name] = reshape(node, what, val(args[0], node, what))
            elif method == "contiguous":
                env[node.name] = val(args[0], node, what)
            elif method in ("size", "dim"):
                env[node.name] = _Meta(node)
            else:
                raise unsupported(what, node)

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
