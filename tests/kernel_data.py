"""Seeded operands for kernel tests (golden and RTL): int8 data that always include -128 and 127."""
import numpy as np

__all__ = ["rng_for", "int8", "dense_operands"]


def rng_for(seed):
    print(f"seed = {seed}")
    return np.random.default_rng(seed)


def int8(rng, shape):
    a = rng.integers(-128, 128, shape).astype(np.int8)
    a.flat[0], a.flat[-1] = -128, 127      # the extremes, always
    if a.size > 2:
        a.flat[1] = -128
    return a


def dense_operands(rng, m, k, n):
    X, W = int8(rng, (m, k)), int8(rng, (k, n))
    bias = rng.integers(-40_000, 40_000, n)
    bias[0] = -2**31 if n > 2 else bias[0]   # wraps in the add, as the VXU does
    return X, W, bias
