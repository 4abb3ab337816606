"""``embedding`` of ids that are a graph input: a gather on the host (the ISA has no data-dependent addressing).

``InputsLayout.pack`` looks up the rows of the quantized table (``T_q[ids]``, ``QGraph``'s int8 codes) and
loads them as an activation in the usual layout, as if the embedding's output (or a host reshape of it) were a
graph input; the table is not loaded into MEM. Layout in: ids on the host. Layout out: a host tensor (an
activation once a step reads it). Cost: 0 cycles. Ids computed on the chip: ``NotImplementedError`` naming
the node.
"""
from .layout import _T

__all__ = ["lower_embedding"]


def lower_embedding(lw, st):
    """``table[ids]`` of graph-input ids: a host gather (module docstring), the result a host tensor."""
    ids = lw.T[st.inputs[0]]
    if ids.kind != "ids":
        raise NotImplementedError(f"embedding '{st.name}': its ids {ids.name!r} are computed on the chip, "
                                  f"and the chip has no data-dependent addressing (the lowering gathers "
                                  f"embedding rows on the host, for ids that are a graph input)")
    shape = lw.shape(lw.q.graph.node(st.name).shape)
    lw.T[st.name] = _T(st.name, "host", shape, source=ids.source, gather=st.params["table"])

