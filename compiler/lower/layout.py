"""Layouts of the lowering: the tensors it tracks (``_T``) and how activations and per-channel constants
are packed into MEM words.

* activation (``M`` rows × ``N`` features, every leading axis flattened into the rows): ``Nt · M`` words,
  word ``nt·M + m`` holding ``x[m, nt·C : nt·C + C]`` as int8 codes in int32 lanes (``C = mxu_cols``; the
  result layout of ``compiler.phases``, which is also the activation layout of the next GEMM on a square
  MXU); lanes past the features hold a pad value the lowering tracks (``_T.pad``; host inputs: ``PAD_CODE``);
* per-channel vectors (biases, multipliers, constants of an add): ``reps`` copies per N tile
  (``_pack_channels``, so their READs are few);
* argmax indices: ``M`` words, lane 0.
"""
import math
from dataclasses import dataclass

import numpy as np

from spec import isa

from ..memory import Region
from ..phases import _tiles

#: What host packing puts in the lanes past a tensor's features.
PAD_CODE = -128
#: Added to the padding lanes before an argmax (far below every int8 code, no int32 wrap).
MASK_VALUE = -(1 << 30)
_MULT_MAX = isa.FIELDS["mult"].hi


# ---- tensors during lowering ---------------------------------------------------------------------------
@dataclass(eq=False)
class _T:
    """A tensor of the lowering: ``kind`` ``"host"`` (a graph input not yet in MEM, ``source`` the input
    name; with ``gather`` the int8 table of an embedding of those ids, gathered on the host), ``"ids"``
    (integer embedding ids, a graph input on the host), ``"act"`` (int8 codes, activation layout, in
    ``region``) or ``"idx"`` (argmax indices, lane 0)."""
    name: str
    kind: str
    shape: tuple
    region: Region | None = None
    pad: int | None = None   # the value of the lanes past the features (None: unknown)
    source: str | None = None
    gather: np.ndarray | None = None

    @property
    def rows(self):
        return int(math.prod(self.shape[:-1])) if self.kind != "idx" else int(math.prod(self.shape))

    @property
    def features(self):
        return int(self.shape[-1])


# ---- packing -------------------------------------------------------------------------------------------
def _pack_act(X, c, pad=PAD_CODE):
    """Activation words (``Nt·M × L``): word ``nt·M + m`` = ``X[m, nt·C …]``, other lanes ``pad``."""
    M, N = X.shape
    C = c.mxu_cols
    out = np.full((_tiles(N, C) * M, c.lanes), pad, np.int32)
    for nt in range(_tiles(N, C)):
        n0 = nt * C
        out[nt * M:(nt + 1) * M, :min(C, N - n0)] = X[:, n0:n0 + C]
    return out


def _pack_table(table, c):
    """The ``lut_vectors(L)`` words a LOADLUT of the 256-entry ``table`` reads (entry ``j``: lane ``j mod L`` of
    word ``j // L``; lanes past entry 255 zero)."""
    nt = isa.lut_vectors(c.lanes)
    tv = np.zeros(nt * c.lanes, np.int64)
    tv[:isa.LUT_ENTRIES] = table
    return tv.reshape(nt, c.lanes)


def _pack_channels(values, c, reps, pad):
    """``reps`` copies per N tile of ``values[nt·C …]`` (lanes past the channels: ``pad``)."""
    N = len(values)
    C = c.mxu_cols
    Nt = _tiles(N, C)
    out = np.full((Nt * reps, c.lanes), pad, np.int64)
    for nt in range(Nt):
        n0 = nt * C
        out[nt * reps:(nt + 1) * reps, :min(C, N - n0)] = values[n0:n0 + C]
    return out


def _int8_parts(v):
    """int8 values (at most two) summing to ``v`` (``|v| <= 255``); none for 0."""
    if v == 0:
        return []
    if -128 <= v <= 127:
        return [v]
    return [v // 2, v - v // 2]

