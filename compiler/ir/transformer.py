"""The transformer ops of the IR builder (issue 10), float only so far: ``compiler.quantize`` refuses them.

``Graph`` inherits these methods from ``TransformerOps``; each checks its operands when built and refuses them
with a one-line ``ValueError`` / ``TypeError`` naming the op, the node and what is allowed. ``x``, ``a``, ``b``,
``q``, ``k``, ``v``: float32 ``Tensor`` s of the graph (any rank, the batch ``None`` first); the reference
semantics are ``compiler.ir.reference``'s.

=========================================  ===========================================================
``softmax(x, axis=-1)``                    over the last axis (the only one allowed)
``layernorm(x, weight=None, bias=None,     over the last axis (D): ``(x - mean) / sqrt(var + eps) · weight
eps=1e-5)``                                + bias`` (biased variance), ``weight``/``bias`` (D,) or None
``rmsnorm(x, weight=None, eps=1e-5)``      ``x / sqrt(mean(x²) + eps) · weight`` over the last axis
``mul(a, b)``                              ``a · b``: ``b`` a tensor of ``a``'s shape, or a constant of
                                           shape () or broadcast along the leading axes (``broadcast_shapes``)
``neg(x)``, ``silu(x)``                    ``-x``; ``x · sigmoid(x)``
``rotate_half(x)``                         ``[-x[..., h:], x[..., :h]]``, ``h`` half the last axis (rotary)
``transpose(x, axis0, axis1)``             swaps two axes (not a ``None`` batch axis)
``concat(xs, axis=-1)``                    along the last axis; every other dimension equal
``slice(x, start, stop, axis=-1)``         ``x[..., start:stop]``, ``0 <= start < stop <= N``
``masked_fill(x, mask, value)``            ``where(mask, value, x)``: ``mask`` a constant bool array broadcast
                                           along the leading axes, ``value`` a float (``-inf`` allowed)
``attention(q, k, v, causal=True,          ``softmax(q @ kᵀ · scale (+ causal mask)) @ v``: q (…, T, d),
scale=None)``                              k (…, S, d), v (…, S, e), the same leading dimensions; ``scale``
                                           default ``1/√d``; causal: query i sees keys 0 … i (T = S)
=========================================  ===========================================================
"""
import math

import numpy as np

from .node import Tensor, broadcast_shapes, constant, fmt_shape, fmt_shapes

__all__ = ["TransformerOps"]


def _axis(axis, x, op, name):
    """``axis`` of ``x`` as a non-negative int (an int in ``-ndim … ndim-1``)."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{op} '{name}': axis must be an int, not {axis!r}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{op} '{name}': axis must be in {-x.ndim} … {x.ndim - 1} for x of shape "
                         f"{fmt_shape(x.shape)}, not {axis}")
    return int(axis) % x.ndim


def _number(value, what, allow_inf=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be a number, not {value!r}")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{what} must be a finite number, not {value}")
    return value


class TransformerOps:
    """The builder methods of the transformer ops (module docstring); mixed into ``Graph``, whose ``_name``,
    ``_tensor``, ``_add`` and ``_unary`` they use."""

    def _last_axis(self, op, x, axis, name):
        if x.ndim == 0:
            raise ValueError(f"{op} '{name}': x must have at least one dimension, not shape ()")
        if _axis(axis, x, op, name) != x.ndim - 1:
            raise ValueError(f"{op} '{name}': axis must be the last one (-1 or {x.ndim - 1}) for x of shape "
                             f"{fmt_shape(x.shape)}, not {axis}")
        if x.shape[-1] is None:
            raise ValueError(f"{op} '{name}': the last axis must have a known size, not None")

    def _vector(self, value, n, what):
        c = constant(value, what)
        if c.shape != (n,):
            raise ValueError(f"{what} must have shape ({n},) (the last axis of x), not {fmt_shape(c.shape)}")
        return c

    def softmax(self, x, axis=-1, name=None):
        """``exp(x - max) / Σ exp(x - max)`` over the last axis."""
        name = self._name(name)
        self._tensor(x, "x", "softmax", name)
        self._last_axis("softmax", x, axis, name)
        return self._add("softmax", name, (x,), {}, x.shape, "float32")

    def _norm(self, op, x, weight, bias, eps, name):
        name = self._name(name)
        self._tensor(x, "x", op, name)
        self._last_axis(op, x, -1, name)
        attrs = {"eps": _number(eps, f"{op} '{name}': eps")}
        if attrs["eps"] <= 0:
            raise ValueError(f"{op} '{name}': eps must be > 0, not {attrs['eps']}")
        for key, value in (("weight", weight), ("bias", bias)):
            if value is not None:
                attrs[key] = self._vector(value, x.shape[-1], f"{op} '{name}': {key}")
        return self._add(op, name, (x,), attrs, x.shape, "float32")

    def layernorm(self, x, weight=None, bias=None, eps=1e-5, name=None):
        """``(x - mean) / sqrt(var + eps) · weight + bias`` over the last axis (weight, bias (D,) or None)."""
        return self._norm("layernorm", x, weight, bias, eps, name)

    def rmsnorm(self, x, weight=None, eps=1e-5, name=None):
        """``x / sqrt(mean(x²) + eps) · weight`` over the last axis (weight (D,) or None)."""
        return self._norm("rmsnorm", x, weight, None, eps, name)

    def mul(self, a, b, name=None):
        """``a · b``: ``b`` a tensor of ``a``'s shape, or a constant of shape () or broadcast along the leading
        axes of ``a``."""
        name = self._name(name)
        self._tensor(a, "a", "mul", name)
        if isinstance(b, Tensor):
            self._tensor(b, "b", "mul", name)
            if b.shape != a.shape:
                raise ValueError(f"mul '{name}': b must be a tensor of shape {fmt_shape(a.shape)} (a's) or a "
                                 f"constant, not a tensor of shape {fmt_shape(b.shape)}")
            return self._add("mul", name, (a, b), {}, a.shape, "float32")
        c = constant(b, f"mul '{name}': b")
        allowed = [()] + broadcast_shapes(a.shape)
        if c.shape not in allowed:
            raise ValueError(f"mul '{name}': b must be a constant of shape {fmt_shapes(allowed)} (or a tensor of "
                             f"a's shape), not {fmt_shape(c.shape)}")
        return self._add("mul", name, (a,), {"b": c}, a.shape, "float32")

    def rotate_half(self, x, name=None):
        """``[-x[..., h:], x[..., :h]]`` with ``h`` half the last axis (rotary embeddings)."""
        name = self._name(name)
        self._tensor(x, "x", "rotate_half", name)
        self._last_axis("rotate_half", x, -1, name)
        if x.shape[-1] % 2:
            raise ValueError(f"rotate_half '{name}': the last axis must have an even size, not {x.shape[-1]}")
        return self._add("rotate_half", name, (x,), {}, x.shape, "float32")

    def neg(self, x, name=None):
        """``-x``."""
        return self._unary("neg", x, name)

    def silu(self, x, name=None):
        """``x · sigmoid(x)``."""
        return self._unary("silu", x, name)

    def transpose(self, x, axis0, axis1, name=None):
        """``x`` with axes ``axis0`` and ``axis1`` swapped (a ``None`` batch axis stays first)."""
        name = self._name(name)
        self._tensor(x, "x", "transpose", name)
        axes = sorted(_axis(a, x, "transpose", name) for a in (axis0, axis1))
        if axes[0] == axes[1]:
            raise ValueError(f"transpose '{name}': axis0 and axis1 must differ, not {axis0} and {axis1}")
        if x.shape[0] is None and axes[0] == 0:
            raise ValueError(f"transpose '{name}': the None batch axis 0 must stay first: axes must be in 1 … "
                             f"{x.ndim - 1} for x of shape {fmt_shape(x.shape)}, not {axis0} and {axis1}")
        shape = list(x.shape)
        shape[axes[0]], shape[axes[1]] = shape[axes[1]], shape[axes[0]]
        return self._add("transpose", name, (x,), {"axes": tuple(axes)}, tuple(shape), x.dtype)

    def concat(self, xs, axis=-1, name=None):
        """``xs`` (a list of tensors) joined along the last axis; every other dimension equal."""
        name = self._name(name)
        if not isinstance(xs, (list, tuple)) or not xs:
            raise TypeError(f"concat '{name}': xs must be a non-empty list of tensors, not {xs!r}")
        for i, t in enumerate(xs):
            self._tensor(t, f"xs[{i}]", "concat", name)
        self._last_axis("concat", xs[0], axis, name)
        lead = xs[0].shape[:-1]
        for i, t in enumerate(xs):
            if t.shape[:-1] != lead or t.shape[-1] is None:
                raise ValueError(f"concat '{name}': every tensor must have shape {fmt_shape(lead + ('N',))} "
                                 f"(xs[0]'s but the last axis), not xs[{i}] {fmt_shape(t.shape)}")
        shape = lead + (sum(t.shape[-1] for t in xs),)
        return self._add("concat", name, tuple(xs), {}, shape, "float32")

    def slice(self, x, start, stop, axis=-1, name=None):
        """``x[..., start:stop]`` along the last axis (``0 <= start < stop <= N``)."""
        name = self._name(name)
        self._tensor(x, "x", "slice", name)
        self._last_axis("slice", x, axis, name)
        n = x.shape[-1]
        ok = all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in (start, stop))
        if not ok or not 0 <= start < stop <= n:
            raise ValueError(f"slice '{name}': start and stop must be ints with 0 <= start < stop <= {n} (the "
                             f"last axis of x {fmt_shape(x.shape)}), not {start!r} and {stop!r}")
        attrs = {"start": int(start), "stop": int(stop)}
        return self._add("slice", name, (x,), attrs, x.shape[:-1] + (int(stop) - int(start),), "float32")

    def masked_fill(self, x, mask, value, name=None):
        """``where(mask, value, x)``: ``mask`` a constant bool array broadcast along the leading axes of ``x``,
        ``value`` a float (``-inf`` allowed, as for a causal mask)."""
        name = self._name(name)
        self._tensor(x, "x", "masked_fill", name)
        if isinstance(mask, Tensor):
            raise TypeError(f"masked_fill '{name}': mask must be a constant bool array, not a Tensor")
        m = np.asarray(mask)
        if m.dtype != np.bool_:
            raise TypeError(f"masked_fill '{name}': mask must be a bool array, not {m.dtype}")
        if m.shape not in broadcast_shapes(x.shape):
            raise ValueError(f"masked_fill '{name}': mask must have shape {fmt_shapes(broadcast_shapes(x.shape))}, "
                             f"not {fmt_shape(m.shape)}")
        value = _number(value, f"masked_fill '{name}': value", allow_inf=True)
        return self._add("masked_fill", name, (x,), {"mask": m.copy(), "value": value}, x.shape, "float32")

    def attention(self, q, k, v, causal=True, scale=None, name=None):
        """``softmax(q @ kᵀ · scale (+ causal mask)) @ v`` (module docstring)."""
        name = self._name(name)
        for what, t in (("q", q), ("k", k), ("v", v)):
            self._tensor(t, what, "attention", name)
            if t.ndim < 2 or None in t.shape[-2:]:
                raise ValueError(f"attention '{name}': {what} must be (…, positions, features) with both known, "
                                 f"not shape {fmt_shape(t.shape)}")
        lead, (T, d), (S, dk), (Sv, e) = q.shape[:-2], q.shape[-2:], k.shape[-2:], v.shape[-2:]
        if k.shape[:-2] != lead or v.shape[:-2] != lead or dk != d or Sv != S:
            raise ValueError(f"attention '{name}': q, k, v must be (…, T, d), (…, S, d), (…, S, e) with the same "
                             f"leading dimensions, not q {fmt_shape(q.shape)}, k {fmt_shape(k.shape)}, "
                             f"v {fmt_shape(v.shape)}")
        if not isinstance(causal, bool):
            raise TypeError(f"attention '{name}': causal must be True or False, not {causal!r}")
        if causal and T != S:
            raise ValueError(f"attention '{name}': causal attention needs as many queries as keys, not {T} and {S}")
        scale = 1.0 / math.sqrt(d) if scale is None else _number(scale, f"attention '{name}': scale")
        attrs = {"causal": causal, "scale": scale}
        return self._add("attention", name, (q, k, v), attrs, lead + (T, e), "float32")
