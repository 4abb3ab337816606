"""Static schedule of an int8 GEMM on one MXU: tiling, weight double buffering and accumulation.

:func:`schedule_gemm` turns ``y = x @ w`` (``x``: M × K, ``w``: K × N, int8) into a per-cycle input trace for
the MXU (see :mod:`spec.mxu` for the timing contract it relies on):

* the output is computed in blocks of at most ``acc_depth`` rows of M (accumulator capacity), and within a
  block, for each ``cols``-wide slice of N, the K dimension is walked ``rows`` at a time: every (block, N
  slice, K slice) is one *tile* — a ``rows × cols`` piece of ``w`` installed in the array — and the block's
  activations stream through it, accumulating into ``acc[m]`` (the first K slice overwrites, the last emits);
* tile ``j``'s weight rows are presented on consecutive cycles starting at ``max(T[j-1], end of tile j-1's
  rows)`` and its activations start at ``max(T[j-1] + M[j-1], load start + 1)``, where ``T[j]`` is the first
  activation cycle of tile ``j``: the earliest moments the deadline rule allows. With at least ``rows``
  activations per tile the array never idles between tiles.

Partial tiles are zero-padded: activation rows beyond K are zero (so whatever weights sit in those rows do not
matter and are not reloaded), weight columns beyond N are zero and their results are dropped.
"""
from dataclasses import dataclass

import numpy as np

from compiler.kernels import check_int8
from spec.mxu import MXUParams

from .trace import MXUTrace

__all__ = ["GemmPlan", "schedule_gemm"]


@dataclass
class GemmPlan:
    """A scheduled GEMM: the trace to play, and how to read the results back."""
    params: MXUParams
    m: int
    k: int
    n: int
    trace: MXUTrace
    out_row0: np.ndarray   #: for each emitted vector, in order: the first row of y it belongs to (block start)
    out_col0: np.ndarray   #: ... and the first column of y (N slice start)
    tiles: int
    first_weight_cycle: int
    last_activation_cycle: int

    @property
    def macs(self):
        return self.m * self.k * self.n

    @property
    def expected_outputs(self):
        return len(self.out_row0)

    @property
    def predicted_last_output_cycle(self):
        return self.last_activation_cycle + self.params.latency

    @property
    def predicted_cycles(self):
        """Clocks from the first weight row entering to the last result leaving, inclusive."""
        return self.predicted_last_output_cycle - self.first_weight_cycle + 1

    def assemble(self, addr, data):
        """Place result vectors (in emission order, with their accumulator addresses) into ``y`` (M × N)."""
        addr = np.asarray(addr)
        data = np.asarray(data)
        if len(addr) != self.expected_outputs:
            raise ValueError(f"expected {self.expected_outputs} result vectors, got {len(addr)}")
        C = self.params.cols
        y = np.zeros((self.m, self.n), dtype=np.int32)
        for row0, col0 in set(zip(self.out_row0.tolist(), self.out_col0.tolist())):
            sel = (self.out_row0 == row0) & (self.out_col0 == col0)
            rows = row0 + addr[sel]
            ncols = min(C, self.n - col0)
            y[rows, col0:col0 + ncols] = data[sel][:, :ncols]
        return y


def schedule_gemm(x, w, params):
    """Schedule ``x @ w`` on an MXU with ``params``; returns a :class:`GemmPlan`."""
    if not isinstance(params, MXUParams):
        raise TypeError(f"params must be an MXUParams, not {params!r}")
    check_int8("x", x)
    check_int8("w", w)
    M, K = x.shape
    K2, N = w.shape
    if K != K2:
        raise ValueError(f"x is {M}×{K} but w is {K2}×{N}: the inner dimensions must agree")
    R, C, D = params.rows, params.cols, params.acc_depth

    tiles = []  # (block start, block rows, n0, k0, k rows, first K slice, last K slice)
    k_starts = list(range(0, K, R))
    for m0 in range(0, M, D):
        mb = min(D, M - m0)
        for n0 in range(0, N, C):
            for i, k0 in enumerate(k_starts):
                tiles.append((m0, mb, n0, k0, min(R, K - k0), i == 0, i == len(k_starts) - 1))

    # The schedule: load start L[j] and first activation T[j] of every tile.
    load, start = [], []
    for j in range(len(tiles)):
        if j == 0:
            lj = 0
        else:
            lj = max(start[j - 1], load[j - 1] + tiles[j - 1][4])
        tj = lj + 1 if j == 0 else max(start[j - 1] + tiles[j - 1][1], lj + 1)
        load.append(lj)
        start.append(tj)
    last_act = start[-1] + tiles[-1][1] - 1
    # A tile's last weight rows may follow its first activations (row r is due by T + r - 1).
    last_weight = max(lj + t[4] - 1 for lj, t in zip(load, tiles))

    trace = MXUTrace.empty(params, max(last_act, last_weight) + 1)
    out_row0, out_col0 = [], []
    for (m0, mb, n0, k0, kr, first, last), lj, tj in zip(tiles, load, start):
        nc = min(C, N - n0)
        wc = slice(lj, lj + kr)
        trace.w_valid[wc] = 1
        trace.w_row[wc] = np.arange(kr)
        trace.w_data[wc, :nc] = w[k0:k0 + kr, n0:n0 + nc]
        ac = slice(tj, tj + mb)
        trace.a_valid[ac] = 1
        trace.a_swap[tj] = 1
        trace.a_acc[ac] = 0 if first else 1
        trace.a_emit[ac] = 1 if last else 0
        trace.a_addr[ac] = np.arange(mb)
        trace.a_data[ac, :kr] = x[m0:m0 + mb, k0:k0 + kr]
        if last:
            out_row0.extend([m0] * mb)
            out_col0.extend([n0] * mb)
    return GemmPlan(params=params, m=M, k=K, n=N, trace=trace,
                    out_row0=np.array(out_row0, dtype=np.int64), out_col0=np.array(out_col0, dtype=np.int64),
                    tiles=len(tiles), first_weight_cycle=0, last_activation_cycle=last_act)
