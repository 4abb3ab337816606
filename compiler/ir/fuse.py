"""``fuse_attention(graph)``: attention written out in pieces, as one ``attention`` op.

The pattern (each intermediate tensor read by the next op only, and not a graph output)::

    s = matmul(q, transpose(k, -2, -1))         # the transpose is kept when something else reads it
    s = mul(s, c) …                             # any number of positive scalar constants: scale = Π c
    s = masked_fill(s, causal, value)           # at most one, anywhere among the muls; causal: the mask is
                                                # True exactly above the diagonal, value -inf or <= -1e9
    y = matmul(softmax(s), v)                   # → attention(q, k, v, causal=masked, scale, name=y's)

Without the ``masked_fill`` the attention is not causal. A ``value`` of -1e9 or below is taken as -inf (its
``exp`` underflows to 0 in float64 as -inf's does). The fused node takes the name of the last matmul, so the
graph's outputs and the names downstream are unchanged; every other node is copied as it is. A graph without
the pattern is returned as it is.
"""
import numpy as np

from .graph import Graph

__all__ = ["fuse_attention", "matches", "rebuild", "MASK_VALUE_MAX"]

#: A ``masked_fill`` value at or below this counts as -inf.
MASK_VALUE_MAX = -1e9


def _is_causal(mask, shape):
    t, s = shape[-2:]
    if t != s or mask.ndim < 2 or mask.shape[-2:] != (t, s):
        return False
    return bool(np.all(mask == np.triu(np.ones((t, s), bool), 1)))


def _match(graph, y, outputs):
    """``(q, k, v, causal, scale, absorbed)`` when the matmul ``y`` ends the pattern, else None."""

    def sole(name, op):
        """The node of tensor ``name`` if it is an ``op`` read by one node only and not an output, else None."""
        node = graph.node(name)
        if node.op != op or name in outputs or len(graph.consumers(name)) != 1:
            return None
        return node

    p, v = y.inputs
    sm = sole(p, "softmax")
    if sm is None:
        return None
    absorbed, scale, causal = [sm.name], 1.0, False
    cur = graph.node(sm.inputs[0])
    while cur.op in ("mul", "masked_fill") and sole(cur.name, cur.op) is not None and len(cur.inputs) == 1:
        if cur.op == "mul":
            c = cur.attrs["b"]
            if c.shape != () or not c > 0:
                return None
            scale *= float(c)
        else:
            mask, value = cur.attrs["mask"], cur.attrs["value"]
            if causal or value > MASK_VALUE_MAX or not _is_causal(mask, cur.shape):
                return None
            causal = True
        absorbed.append(cur.name)
        cur = graph.node(cur.inputs[0])
    s = sole(cur.name, "matmul")
    if s is None:
        return None
    q, kt = (graph.node(i) for i in s.inputs)
    if kt.op != "transpose" or sorted(kt.attrs["axes"]) != [len(kt.shape) - 2, len(kt.shape) - 1]:
        return None
    absorbed.append(s.name)
    if sole(kt.name, "transpose") is not None:
        absorbed.append(kt.name)
    return q.name, kt.inputs[0], v, causal, scale, set(absorbed)


def matches(graph, op, match):
    """``{node name: match(graph, node, outputs)}`` of the ``op`` nodes a pattern ends at (``match`` returns
    None for the others; ``outputs``: the graph's output tensor names)."""
    outputs = {t.name for t in graph.outputs.values()}
    found = {}
    for n in graph.nodes:
        if n.op == op:
            m = match(graph, n, outputs)
            if m is not None:
                found[n.name] = m
    return found


def fuse_attention(graph):
    """``graph`` with every attention pattern (module docstring) as one ``attention`` node."""
    found = matches(graph, "matmul", _match)
    if not found:
        return graph
    absorbed = set().union(*(m[-1] for m in found.values()))

    def fused(g, t, n):
        q, k, v, causal, scale, _ = found[n.name]
        return g.attention(t[q], t[k], t[v], causal=causal, scale=scale, name=n.name)

    return rebuild(graph, set(found), absorbed, fused)


def rebuild(graph, replaced, absorbed, make):
    """A copy of ``graph`` without the nodes ``absorbed`` and with each node named in ``replaced`` made by
    ``make(g, tensors, node)`` (the new graph, the tensors so far by name, the old node); the outputs kept."""
    g = Graph()
    t = {}
    for n in graph.nodes:
        if n.name in absorbed:
            continue
        if n.op == "input":
            t[n.name] = g.input(n.name, n.shape, n.dtype)
        elif n.name in replaced:
            t[n.name] = make(g, t, n)
        else:
            t[n.name] = g._add(n.op, n.name, [t[i] for i in n.inputs], dict(n.attrs), n.shape, n.dtype)
    for name, out in graph.outputs.items():
        g.output(t[out.name], name)
    return g
