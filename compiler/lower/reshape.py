"""``reshape``: of a graph input, done on the host; of a tensor computed on the chip that keeps its last axis
(rows only regrouped), or of argmax indices, a no-op on the layout (the output aliases the input's region).

Layout in: any. Layout out: the same words. Cost: 0 cycles. Anything else: ``NotImplementedError`` naming the
node.
"""
from .layout import _T

__all__ = ["lower_reshape"]


def lower_reshape(lw, st):
    x = lw.T[st.inputs[0]]
    node = lw.q.graph.node(st.name)
    shape = lw.shape(node.shape)
    if x.kind in ("host", "ids"):
        lw.T[st.name] = _T(st.name, x.kind, shape, source=x.source, gather=x.gather)
    elif x.kind == "idx" or (len(shape) >= 1 and shape[-1] == x.features):
        lw.T[st.name] = _T(st.name, x.kind, shape, x.region, x.pad)
    else:
        raise NotImplementedError(f"reshape '{st.name}': {x.shape} -> {shape} changes the last axis of a "
                                  f"tensor computed on the chip (the lowering reshapes inputs on the host, "
                                  f"and on the chip only regroups rows)")

