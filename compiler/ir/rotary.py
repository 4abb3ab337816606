"""``fuse_rotate_half(graph)``: the rotate-half of rotary embeddings, written out in pieces, as one op.

The pattern (the way ``rotate_half`` is usually written; every intermediate read by the next op only, not a
graph output)::

    a = slice(x, h, 2h)                         # x's last axis is 2h
    a = neg(a)  or  mul(a, -1)
    b = slice(x, 0, h)
    y = concat([a, b])                          # → rotate_half(x, name=y's): [-x[..., h:], x[..., :h]]

The fused node takes the name of the concat, so the names downstream are unchanged; every other node is
copied as it is. A graph without the pattern is returned as it is.
"""
from .fuse import matches, rebuild

__all__ = ["fuse_rotate_half"]


def _match(graph, y, outputs):
    """``(x, absorbed)`` when the concat ``y`` ends the pattern, else None."""
    if len(y.inputs) != 2:
        return None

    def sole(name, ops):
        node = graph.node(name)
        if node.op not in ops or name in outputs or len(graph.consumers(name)) != 1:
            return None
        return node

    neg = sole(y.inputs[0], ("neg", "mul"))
    low = sole(y.inputs[1], ("slice",))
    if neg is None or low is None:
        return None
    if neg.op == "mul" and (len(neg.inputs) != 1 or neg.attrs["b"].shape != () or float(neg.attrs["b"]) != -1.0):
        return None
    high = sole(neg.inputs[0], ("slice",))
    if high is None or high.inputs != low.inputs:
        return None
    n = graph.node(low.inputs[0]).shape[-1]
    h = n // 2
    halves = (low.attrs["start"], low.attrs["stop"]), (high.attrs["start"], high.attrs["stop"])
    if n % 2 or halves != ((0, h), (h, n)):
        return None
    return low.inputs[0], {neg.name, low.name, high.name}


def fuse_rotate_half(graph):
    """``graph`` with every rotate-half pattern (module docstring) as one ``rotate_half`` node."""
    found = matches(graph, "concat", _match)
    if not found:
        return graph
    absorbed = set().union(*(m[1] for m in found.values()))
    return rebuild(graph, set(found), absorbed, lambda g, t, n: g.rotate_half(t[found[n.name][0]], name=n.name))
