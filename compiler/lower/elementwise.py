"""What the elementwise VXU lowerings (``add.py``, ``mul.py``) share: their operands and their scratch region.

* ``operands(lw, st, verb, second)``: ``(node, where, a, b, M, N, Nt)``: the step's activations in MEM (``b``
  ``None`` unless ``second``), refused (``NotImplementedError`` naming the node) when the config lacks the VXU
  operations ``mul`` or ``requant`` or when the two differ in shape (no broadcasting);
* ``scratch(lw, name, n, excls, desc)``: an ``n``-word scratch region on MEM slices outside the first set of
  ``excls`` that has room (the last set must be empty: anywhere).
"""
from ..phases import _tiles

__all__ = ["operands", "scratch"]


def operands(lw, st, verb, second):
    c = lw.c
    node = st.fused[0]
    where = f"{st.op} '{node}'"
    for op in ("mul", "requant"):
        if op not in c.vxu_ops:
            raise NotImplementedError(f"{where}: the lowering needs the VXU operation {op!r}, which config "
                                      f"{c.name} lacks")
    a = lw.act(lw.T[st.inputs[0]], where)
    b = lw.act(lw.T[st.inputs[1]], where) if second else None
    if b is not None and (b.rows != a.rows or b.features != a.features):
        raise NotImplementedError(f"{where}: the lowering {verb} two activations of the same shape only, not "
                                  f"{a.shape} and {b.shape} (no broadcasting)")
    M, N = a.rows, a.features
    Nt = _tiles(N, c.mxu_cols)
    assert len(a.region) == Nt * M
    return node, where, a, b, M, N, Nt


def scratch(lw, name, n, excls, desc):
    for excl in excls:
        try:
            return lw.region("scratch", name, n, exclude=excl, desc=desc)
        except ValueError:
            if not excl:
                raise
    raise AssertionError("the last exclusion set must be empty")
