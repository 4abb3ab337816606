"""Bit-exact numpy model of the matrix unit, with its timing.

The twin of ``rtl/mxu.py``: both follow the contract in :mod:`spec.mxu`, and this model never looks at the
RTL. Two levels:

* :func:`matmul` — int8 × int8 → int32 matrix product with two's complement wrap-around, the arithmetic of
  one tile and of the accumulators;
* :class:`MXUModel` — the cycle-level model: given a per-cycle input trace (the MXU's input ports on every
  cycle) it returns every result vector with the cycle on which it leaves ``y``. It models weight double
  buffering exactly (which weight row each swap takes, by the deadline rule of the spec), accumulation,
  and synchronous reset at any cycle.

A *trace* is any object with these per-cycle numpy arrays (length ``T``): ``rst``, ``w_valid``, ``w_row``,
``w_data`` (``T × cols``), ``a_valid``, ``a_swap``, ``a_acc``, ``a_emit``, ``a_addr``, ``a_data``
(``T × rows``), and with more than one weight slot (``MXUParams.weight_slots``) ``w_slot`` and ``a_slot`` (zero
when absent). The simulators in ``sim/`` use the same field names.
"""
from dataclasses import dataclass

import numpy as np

from spec.mxu import ACC_BITS, MXUParams

__all__ = ["wrap_int32", "matmul", "MXUResults", "MXUModel"]


def wrap_int32(values):
    """Reduce integers modulo 2**32 into int32 (two's complement), as the hardware's adders do."""
    v = np.asarray(values, dtype=np.int64)
    return (((v + (1 << (ACC_BITS - 1))) & ((1 << ACC_BITS) - 1)) - (1 << (ACC_BITS - 1))).astype(np.int32)


def matmul(x, w):
    """``x @ w`` for int8 operands, as int32 with wrap-around (exact: products are summed in int64)."""
    x = np.asarray(x)
    w = np.asarray(w)
    for name, arr in (("x", x), ("w", w)):
        if arr.dtype != np.int8:
            raise TypeError(f"{name} must be an int8 array, not {arr.dtype}")
    return wrap_int32(x.astype(np.int64) @ w.astype(np.int64))


@dataclass
class MXUResults:
    """Result vectors in the order they leave the MXU."""
    cycle: np.ndarray   #: int64, the cycle on which each vector is on ``y``
    addr: np.ndarray    #: int64, its accumulator address (``y_addr``)
    data: np.ndarray    #: int32, ``N × cols``

    def __len__(self):
        return len(self.cycle)


class MXUModel:
    """Cycle-level golden model of one MXU.

    The accumulator memory persists across :meth:`run` calls and across resets, as SRAM does; it starts
    zeroed, like the RTL's.
    """
    def __init__(self, params):
        if not isinstance(params, MXUParams):
            raise TypeError(f"params must be an MXUParams, not {params!r}")
        self.params = params
        self.acc = np.zeros((params.acc_depth, params.cols), dtype=np.int32)

    def run(self, trace):
        p = self.params
        R, C, L = p.rows, p.cols, p.latency
        rst = np.asarray(trace.rst).astype(bool)
        reset_cycles = np.flatnonzero(rst)

        a_valid = np.asarray(trace.a_valid).astype(bool)
        act_cycles = np.flatnonzero(a_valid)
        # An activation survives when no reset falls in [t, t + L - 1]; its epoch began after the last reset
        # strictly before it (-1 if none).
        guard = np.concatenate(([-1], reset_cycles, [np.iinfo(np.int64).max]))
        nxt = np.searchsorted(guard, act_cycles, side="left")
        survives = guard[nxt] > act_cycles + L - 1
        epoch_start = guard[nxt - 1]

        swap_cycles = np.flatnonzero(a_valid & np.asarray(trace.a_swap).astype(bool))
        w_cycles = np.flatnonzero(np.asarray(trace.w_valid).astype(bool))
        w_rows = np.asarray(trace.w_row)[w_cycles].astype(np.int64)
        w_data = np.asarray(trace.w_data)[w_cycles].astype(np.int8)
        if len(w_rows) and (w_rows.min() < 0 or w_rows.max() >= R):
            raise ValueError(f"w_row must be between 0 and {R - 1} when w_valid is set")
        T = len(rst)
        slots = {k: np.asarray(getattr(trace, k, np.zeros(T, np.int64))).astype(np.int64) for k in ("w_slot", "a_slot")}
        for k, cycles in (("w_slot", w_cycles), ("a_slot", swap_cycles)):
            v = slots[k][cycles]
            if len(v) and (v.min() < 0 or v.max() >= p.weight_slots):
                raise ValueError(f"{k} must be between 0 and {p.weight_slots - 1} when it is used")
        w_slots = slots["w_slot"][w_cycles]

        def weights_for(swap, start):
            """Weights made active by the swap at cycle ``swap``, in the epoch that began after ``start``."""
            w = np.zeros((R, C), dtype=np.int8)
            mine = w_slots == slots["a_slot"][swap]
            for r in range(R):
                # The latest write to (the swap's slot, row r) presented in (start, swap + r - 1].
                sel = np.flatnonzero(mine & (w_rows == r) & (w_cycles > start)
                                     & (w_cycles <= p.weight_deadline(swap, r)))
                if len(sel):
                    w[r] = w_data[sel[-1]]
            return w

        x = np.asarray(trace.a_data).astype(np.int8)
        acc_flag = np.asarray(trace.a_acc).astype(bool)
        emit_flag = np.asarray(trace.a_emit).astype(bool)
        addrs = np.asarray(trace.a_addr).astype(np.int64)

        keep = act_cycles[survives]
        starts = epoch_start[survives]
        # The swap in effect for each activation: the latest valid swap at or before it, in its epoch.
        k = np.searchsorted(swap_cycles, keep, side="right") - 1
        swap_of = np.concatenate(([-1], swap_cycles))[k + 1]
        swap_of = np.where(swap_of > starts, swap_of, -1)  # -1: no swap since reset, all weights zero
        y = np.zeros((len(keep), C), dtype=np.int32)
        for swap in np.unique(swap_of):
            if swap == -1:
                continue
            sel = swap_of == swap
            y[sel] = matmul(x[keep[sel]], weights_for(int(swap), int(starts[sel][0])))

        if len(keep) and (addrs[keep].min() < 0 or addrs[keep].max() >= p.acc_depth):
            raise ValueError(f"a_addr must be between 0 and {p.acc_depth - 1} when a_valid is set")

        # Accumulators, applied in activation order.
        out_cycle, out_addr, out_data = [], [], []
        acc = self.acc
        for i, t in enumerate(keep):
            a = addrs[t]
            v = wrap_int32(acc[a].astype(np.int64) + y[i]) if acc_flag[t] else y[i]
            acc[a] = v
            if emit_flag[t]:
                out_cycle.append(t + L)
                out_addr.append(a)
                out_data.append(v)
        data = np.array(out_data, dtype=np.int32).reshape(len(out_data), C)
        return MXUResults(np.array(out_cycle, dtype=np.int64), np.array(out_addr, dtype=np.int64), data)
