"""``input``: a graph input, on the host until a step reads it.

Layout in: none. Layout out: a host tensor (``"host"``, float inputs: quantized and packed on the host by
``InputsLayout.pack``, given its activation region by ``Lowering.act`` at its first use on the chip), or
``"ids"`` (integer inputs: only the ids of an ``embedding``). Cost: 0 cycles (the host loads it before START).
"""
from .layout import _T

__all__ = ["lower_input"]


def lower_input(lw, st):
    node = lw.q.graph.node(st.name)
    if len(node.shape) == 0:
        raise NotImplementedError(f"input '{st.name}': scalar inputs are not lowered")
    kind = "host" if st.params["qp"] is not None else "ids"      # integer inputs: embedding ids
    lw.T[st.name] = _T(st.name, kind, lw.shape(node.shape), source=st.name)

