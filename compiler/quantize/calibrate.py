"""Calibration: every float tensor's range over the calibration data, and the output ``QParams`` fitted to it.

* ``calibrate(graph, calibration)`` → ``(lo, hi)``: ``{tensor name: min}``, ``{tensor name: max}`` over
  every batch of ``calibration`` (one ``{input name: array}`` dict or a non-empty list of them) run through
  ``graph.evaluate``; integer and empty tensors are left out; ``TypeError`` for other ``calibration``,
  ``ValueError`` for a tensor that is not finite.
* ``fit_out(lo, hi, name, acc_scale_max)``: the ``QParams`` of a requantized output ``name``, widened so the
  requant multiplier ``acc scale / scale`` stays below 1; symmetric (zero point 0) for the names in
  ``symmetric`` (what ``quantize`` marks: the tensors attention reads).
"""
import numpy as np

from .params import QParams

__all__ = ["calibrate", "fit_out"]

_WIDEN = 1 - 2.0 ** -20                        # the largest requant multiplier the widening allows


def calibrate(graph, calibration):
    if isinstance(calibration, dict):
        calibration = [calibration]
    if (not isinstance(calibration, (list, tuple)) or not calibration
            or not all(isinstance(c, dict) for c in calibration)):
        raise TypeError(f"calibration must be a dict of input arrays or a non-empty list of them, "
                        f"not {type(calibration).__name__}")
    lo, hi = {}, {}
    for batch in calibration:
        for name, v in graph.evaluate(batch).items():
            if v.dtype.kind != "f" or not v.size:
                continue
            if not np.all(np.isfinite(v)):
                raise ValueError(f"calibration: tensor {name!r} must stay finite, not NaN or infinity")
            lo[name] = min(lo.get(name, np.inf), float(v.min()))
            hi[name] = max(hi.get(name, -np.inf), float(v.max()))
    return lo, hi


def fit_out(lo, hi, name, acc_scale_max, symmetric=()):
    """Output ``QParams`` from the calibration range, widened so the requant multiplier is below 1; symmetric
    (``scale = max|range| / 127``, zero point 0) when ``name`` is in ``symmetric`` (attention's q, k, v: no
    zero-point terms in its products)."""
    mn, mx = lo.get(name, 0.0), hi.get(name, 0.0)
    if name in symmetric:
        a = max(abs(mn), abs(mx)) or 1.0
        return QParams(max(a / 127.0, acc_scale_max / _WIDEN), 0)
    return QParams.from_range(mn, mx, min_scale=acc_scale_max / _WIDEN)

