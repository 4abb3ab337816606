"""``from_torch(module, example_inputs, dynamic_batch=True)``: trace with ``torch.fx``, run the example once
(every node's shape and value), and map every fx node to one IR node of the same name (the
``compiler.frontend_torch`` docstring), then fuse written-out attention (``compiler.ir.fuse_attention``).

A node whose inputs are all sizes or constants (``self.tril[:T, :T] == 0``, ``self.wpe(self.pos[:T])``) is
folded to its traced value; every other node goes through the tables of ``ops`` and ``transformer``.
"""
from ..ir import Graph, fuse_attention, fuse_rotate_half
from . import ops, transformer
from .arguments import example_tensors
from .context import Const, Context, numpy_of, propagate, trace
from .errors import torch_name, unsupported

__all__ = ["from_torch"]


def _tables(torch):
    modules = {**ops.modules(torch), **transformer.modules(torch)}
    functions = {**ops.functions(torch), **transformer.functions(torch)}
    methods = {**ops.methods(), **transformer.methods()}
    return modules, functions, methods


def _module_handler(modules, m):
    """The mapping of module ``m``: its class's, else its nearest base class's in the table."""
    for cls in type(m).__mro__:
        if cls in modules:
            return modules[cls]
    return None


def from_torch(module, example_inputs, dynamic_batch=True):
    """Trace ``module`` (a ``torch.nn.Module``) into a ``compiler.ir.Graph`` (``compiler.frontend_torch``
    docstring).

    ``example_inputs``: ``{argument name: array/tensor}``, a tuple in argument order, or one array.
    Raises ``UnsupportedOpError`` (a ``ValueError``) naming the op and the fx node for an unsupported op."""
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, not {type(module).__name__}")
    gm = trace(torch, module)

    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    for p in placeholders:
        if str(p.target).startswith("*"):
            raise ValueError(f"forward must take named tensor arguments, not *{str(p.target).lstrip('*')}")
    names = [str(p.target) for p in placeholders]
    examples = example_tensors(torch, names, example_inputs)
    try:
        values = propagate(torch, gm, [examples[n] for n in names])
    except Exception as e:
        raise ValueError(f"running {type(module).__name__} on example_inputs failed: {type(e).__name__}: {e}") from e

    g = Graph()
    ctx = Context(torch, g, values)
    env = ctx.env
    modules, functions, methods = _tables(torch)

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
            env[node.name] = Const(numpy_of(torch, obj), node)

        elif node.op == "output":
            outputs = node.args[0]

        elif ctx.static(node):                         # sizes, constants and expressions of them
            env[node.name] = ctx.fold(node)

        elif node.op == "call_module":
            m = gm.get_submodule(str(node.target))
            what = torch_name(torch, type(m))
            if node.kwargs or len(node.args) != 1:
                raise unsupported(what, node, "a module must be called with one tensor")
            handler = _module_handler(modules, m)
            if handler is None:
                raise unsupported(what, node)
            env[node.name] = handler(ctx, node, what, m, node.args[0])

        else:
            if node.op == "call_function":
                what, handler = torch_name(torch, node.target), functions.get(node.target)
            else:
                what, handler = f"Tensor.{node.target}", methods.get(node.target)
            if handler is None:
                raise unsupported(what, node)
            env[node.name] = handler(ctx, node, what, node.args, node.kwargs)

    if outputs is None:  # pragma: no cover - fx always has an output node
        raise ValueError("the traced graph has no output")

    def out_tensor(a, name):
        if ctx.is_tensor(a):
            return env[a.name]
        raise ValueError(f"output {name!r} must be a tensor computed from the inputs, not {a!r}")

    if isinstance(outputs, dict):
        for k, a in outputs.items():
            g.output(out_tensor(a, str(k)), str(k))
    elif isinstance(outputs, (tuple, list)):
        for i, a in enumerate(outputs):
            g.output(out_tensor(a, f"output_{i}"), f"output_{i}")
    else:
        g.output(out_tensor(outputs, "output"), "output")
    return fuse_rotate_half(fuse_attention(g))
