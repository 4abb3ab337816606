"""Random and extreme stimulus for the MXU, shared by tests, regressions and benchmarks.

Every generator takes an explicit ``numpy.random.Generator``: callers own (and print) the seed.
"""
import numpy as np

from .trace import MXUTrace

__all__ = ["EXTREMES", "operand", "random_trace"]

#: int8 values that stress the arithmetic: both ends of the range, signs, zero
EXTREMES = np.array([-128, 127, -1, 0, 1], dtype=np.int8)


def operand(rng, shape, kind="random"):
    """An int8 array of ``shape``: ``random``, ``min`` (all -128), ``max`` (all 127), ``alternating``
    (+127/-128 in a checkerboard) or ``extremes`` (drawn from :data:`EXTREMES`)."""
    if kind == "random":
        return rng.integers(-128, 128, shape, dtype=np.int8)
    if kind == "min":
        return np.full(shape, -128, dtype=np.int8)
    if kind == "max":
        return np.full(shape, 127, dtype=np.int8)
    if kind == "alternating":
        idx = np.indices(shape).sum(axis=0)
        return np.where(idx % 2 == 0, 127, -128).astype(np.int8)
    if kind == "extremes":
        return rng.choice(EXTREMES, shape)
    raise ValueError(f"kind must be one of random, min, max, alternating, extremes, not {kind!r}")


def random_trace(params, cycles, rng, *, p_reset=0.02, p_weight=0.5, p_valid=0.7, p_swap=0.15,
                 addresses=4):
    """A trace with every input random on every cycle: weight writes at any time (inside and outside the
    deadline window), swaps, accumulate/emit flags, colliding accumulator addresses and resets."""
    t = MXUTrace.empty(params, cycles)
    t.rst[:] = rng.random(cycles) < p_reset
    t.w_valid[:] = rng.random(cycles) < p_weight
    t.w_row[:] = rng.integers(0, params.rows, cycles)
    t.w_data[:] = operand(rng, (cycles, params.cols), "extremes" if rng.random() < 0.3 else "random")
    t.a_valid[:] = rng.random(cycles) < p_valid
    t.a_swap[:] = rng.random(cycles) < p_swap
    t.a_acc[:] = rng.random(cycles) < 0.5
    t.a_emit[:] = rng.random(cycles) < 0.8
    t.a_addr[:] = rng.integers(0, min(addresses, params.acc_depth), cycles)
    t.a_data[:] = operand(rng, (cycles, params.rows), "extremes" if rng.random() < 0.5 else "random")
    return t
