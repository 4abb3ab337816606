"""The integer formats of the int8 scheme and their arithmetic (``compiler.quantize`` docstring).

* ``round_half_away(x)``: the scheme's one rounding (float64 in, int64 out, ties away from zero).
* ``requantv(a, mult, shift, zp)``: the chip's ``requantv`` (``golden.vxu.requantv``) with ``mult``
  checked to be a multiplier the compiler emits (1 … ``MULT_MAX``).
* ``requant_multipliers(real, where)``: ``(mult, shift)`` for real multipliers in ``(0, 1)`` (one shared
  ``shift`` in 0 … ``SHIFT_MAX``); ``ValueError`` naming ``where`` otherwise.
* ``quantize_weights(W)``: per-output-channel symmetric int8 with the ``CHANNEL_SCALE_FLOOR``.
* ``QParams``: a per-tensor ``real = scale · (q - zp)`` (``from_range``, ``quantize``, ``dequantize``).
* ``Requant``: the int32 → int8 step of a linear, matmul or add (``apply``, ``clamp_needed``).
"""
from dataclasses import dataclass

import numpy as np

from golden import vxu as gvxu
from spec.isa import FIELDS

__all__ = ["MULT_MAX", "SHIFT_MAX", "CHANNEL_SCALE_FLOOR", "round_half_away", "requantv", "requant_multipliers",
           "quantize_weights", "QParams", "Requant"]

MULT_MAX = FIELDS["mult"].hi                  # 2**31 - 1
SHIFT_MAX = FIELDS["shift"].hi                # 31


def round_half_away(x):
    """Round float64 values to the nearest integer, ties away from zero (exact on ties); int64."""
    x = np.asarray(x, np.float64)
    a = np.abs(x)
    r = np.floor(a)
    r = r + (a - r >= 0.5)                     # a - floor(a) is exact in floating point
    return (np.sign(x) * r).astype(np.int64)


def requantv(a, mult, shift, zp):
    """``clamp(zp + round_half_away(a · mult[c] / 2**(31 + shift)), -128, 127)`` per lane ``c`` of the last axis:
    ``golden.vxu.requantv``, the chip's ``requantv`` (``mult`` from operand b, ``shift``/``zp`` from SETQ), with
    ``mult`` restricted to the multipliers the compiler emits. ``a`` int32 values; ``mult`` ints 1 … 2**31 - 1
    broadcast over the last axis; returns int32."""
    m = np.asarray(mult)
    if m.dtype.kind not in "iu":
        raise TypeError(f"mult must be an integer array, not {m.dtype}")
    m = m.astype(np.int64)
    if m.size and (m.min() < 1 or m.max() > MULT_MAX):
        raise ValueError(f"mult must hold values in 1 … {MULT_MAX}, not {int(m.min())} … {int(m.max())}")
    return gvxu.requantv(a, m, shift, zp)


def requant_multipliers(real, where="requant"):
    """``(mult, shift)`` for real multipliers ``real`` (each in ``(0, 1)``): ``shift`` the largest in 0 … 31 with
    every ``mult[c] = round_half_away(real[c] · 2**(31 + shift))`` at most 2**31 - 1; a ``mult`` that would
    round to 0 becomes 1. ``mult`` int64. ``ValueError`` when some multiplier is not in ``(0, 1)``."""
    r = np.asarray(real, np.float64).reshape(-1)
    if not r.size or not np.all(np.isfinite(r)) or r.min() <= 0 or r.max() >= 1:
        raise ValueError(f"{where}: real multipliers must be in (0, 1), not {r.min() if r.size else 'none'} … "
                         f"{r.max() if r.size else ''}")
    shift = None
    for s in range(SHIFT_MAX, -1, -1):
        if round_half_away(r.max() * 2.0 ** (31 + s)) <= MULT_MAX:
            shift = s
            break
    if shift is None:
        raise ValueError(f"{where}: the largest real multiplier must round below 2**31 with shift 0, not {r.max()!r}")
    mult = np.maximum(round_half_away(r * 2.0 ** (31 + shift)), 1)
    return mult, shift


#: The smallest channel scale, relative to the largest channel's (``compiler.quantize`` docstring, "Weights").
CHANNEL_SCALE_FLOOR = 2.0 ** -16


def quantize_weights(W):
    """Per-output-channel symmetric int8 of ``W`` (K, N): ``(W_q int8, s_w float64 (N,))`` (``compiler.quantize``
    docstring)."""
    W = np.asarray(W, np.float64)
    amax = np.abs(W).max(axis=0)
    scale = amax / 127.0
    top = scale.max() if scale.size else 0.0
    if top > 0:
        # a (nearly) dead channel must not get a vanishing scale: its bias, divided by s_x · s_w[c], would
        # not fit in int32 (seen with weight decay shrinking a dead unit's weights to 1e-42)
        scale = np.maximum(scale, top * CHANNEL_SCALE_FLOOR)
    else:
        scale = np.full_like(scale, 1 / 127.0)
    Wq = np.clip(round_half_away(W / scale), -127, 127).astype(np.int8)
    return Wq, scale


@dataclass(frozen=True)
class QParams:
    """An int8 tensor's ``real = scale · (q - zp)``."""
    scale: float
    zp: int

    @classmethod
    def from_range(cls, mn, mx, min_scale=0.0):
        """Asymmetric parameters covering ``[min(mn, 0), max(mx, 0)]`` with a scale of at least ``min_scale``."""
        lo, hi = min(float(mn), 0.0), max(float(mx), 0.0)
        if hi == lo:
            hi = lo + 1.0
        scale = max((hi - lo) / 255.0, float(min_scale))
        zp = int(np.clip(round_half_away(-128.0 - lo / scale), -128, 127))
        return cls(scale, zp)

    def quantize(self, x):
        """``clamp(round_half_away(x / scale) + zp, -128, 127)`` as int8 (float64 arithmetic)."""
        # bounded first (any |x / scale| past 2**40 clamps to -128 or 127 anyway): no int64 overflow in the cast
        t = np.clip(np.asarray(x, np.float64) / self.scale, -2.0**40, 2.0**40)
        return np.clip(round_half_away(t) + self.zp, -128, 127).astype(np.int8)

    def dequantize(self, q):
        """``scale · (q - zp)`` as float32."""
        return (self.scale * (np.asarray(q, np.float64) - self.zp)).astype(np.float32)


@dataclass
class Requant:
    """The int32 → int8 step: ``requantv(acc, mult, shift, zp)``, then ``vmax(·, zp)`` when ``relu``.
    ``real`` holds the real multipliers the integers approximate (for reports and checks)."""
    mult: np.ndarray
    shift: int
    zp: int
    relu: bool = False
    real: np.ndarray | None = None

    @property
    def clamp_needed(self):
        """Whether the fused ReLU's clamp changes anything (it does not when ``zp == -128``)."""
        return self.relu and self.zp > -128

    def apply(self, acc):
        q = requantv(acc, self.mult, self.shift, self.zp)
        if self.relu:
            q = gvxu.vmax(q, np.full(q.shape, self.zp, np.int32))
        return q.astype(np.int8)

