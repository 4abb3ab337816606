"""int8 rules of the row operations (issue 10): ``layernorm``, ``rmsnorm`` and ``softmax`` over the last axis.

Each is a fixed number of VXU passes over a row (``spec.isa.VXU_OPS``: ``lsum``/``lmax`` reduce the lanes of a
word and broadcast the result, ``rsqrt``/``recip`` are the tables of ``spec/vxu_rom.py``); ``run_norm`` and
``run_softmax`` are the integer reference, written with ``golden.vxu`` calls in the order the lowering
(``compiler/lower/rows.py``) issues them, on ``(M, N)`` codes (a row's reductions over all N features; the chip
reduces each word with ``lsum``/``lmax`` and adds or maxes the words of a row).

**layernorm / rmsnorm** of ``x`` (scale ``s_x``, zero point ``zp_x``), ``N`` features, with ``γ`` (weight,
ones when absent) and ``β`` (bias, layernorm only):

* layernorm: ``S = Σ q``, ``Q = Σ q²``, ``V = N·Q - S² + ε_q`` (``= N² · (var_q + ε / s_x²)``, exact in
  int32 for ``N <= 256``), ``d = N·q - S`` (``= N · (q - mean)``), so the normalized value is ``d / √V``;
  rmsnorm: ``d = q - zp_x``, ``V = Σ d² + ε_q`` (``= N · (mean(d²) + ε / s_x²)``), the normalized value
  ``d · √N / √V``. ``ε_q`` is ``round_half_away`` of ``N²·ε / s_x²`` (layernorm) or ``N·ε / s_x²``
  (rmsnorm), at least 1;
* ``g = requantv(d · C, rsqrt(V), shift, zp_g)``: ``C[n] = round_half_away(γ[n] · k / s_g · 2**shift)`` (``k =
  1`` for layernorm, ``√N`` for rmsnorm), so ``g = zp_g + γ · normalized / s_g``: ``γ · normalized`` in the
  codes of ``g`` (scale ``s_g``). ``shift`` is the largest (at most 31) keeping ``|d · C| < 2**31``;
* with ``β``: ``y = g + β`` by the ``add``-of-a-constant rule (``m_a``, ``c``, one requant); the range of
  ``g`` is the calibrated output's less ``β`` (``[lo - max β, hi - min β]``); without, ``y = g`` (the
  calibrated output range).

**softmax** of ``x`` (codes ``q``): ``m = max q`` (the lanes of masked positions are pushed below every code
first, ``-2**30``), ``t = requant(q - m, mult_t, shift_t, 0)`` in ``[-128, 0]`` with the scale ``s_t = max(s_x
/ (1 - 2**-20), SOFTMAX_T_MIN)`` (``mult_t / 2**(31 + shift_t) ≈ s_x / s_t``), ``e = 256 · lut_hi(t) +
lut_lo(t)`` = ``round_half_away(E_MAX · exp(s_t · t))`` on 15 bits (two int8 tables, ``hi = round(v / 256)``,
``lo = v - 256·hi``; ``t = -128``, which every masked lane and every code 128 steps or more below the maximum
gets, is 0), ``Z = Σ e`` (``>= E_MAX``: the maximum's), ``p = requantv(e · K, recip(Z), SOFTMAX_SHIFT, -128)``
with ``K = 255 · 2**SOFTMAX_SHIFT``: the codes of ``e / Z`` at the fixed scale 1/255, zero point -128.
"""
import math

import numpy as np

from golden import vxu as gvxu

from .graph import QStep
from .ops import add_constant
from .params import QParams, requant_multipliers, round_half_away

__all__ = ["q_norm", "q_softmax", "run_norm", "run_softmax", "softmax_params", "SOFTMAX_T_MIN", "SOFTMAX_SHIFT",
           "SOFTMAX_QP", "E_MAX",
           "MASK_NEG", "LAYERNORM_MAX_N"]

#: The finest input scale of softmax's exp table (``exp(-127 · SOFTMAX_T_MIN) < 0.5 / 255``).
SOFTMAX_T_MIN = 6.0 / 128
#: The exp table's largest value (``t = 0``): 127 · 256 + 127, two int8 tables.
E_MAX = 127 * 256 + 127
SOFTMAX_SHIFT = 8                       # e · K < 2**31: 255 · 2**8 · E_MAX < 2**31
SOFTMAX_QP = QParams(1.0 / 255, -128)
#: Added to the lanes of masked positions (and padding) before the row maximum.
MASK_NEG = -(1 << 30)
#: layernorm's ``N·Q - S²`` stays below 2**30 up to this many features.
LAYERNORM_MAX_N = 256
_INT32_LIMIT = 1 << 31
_WIDEN = 1 - 2.0 ** -20


def _rows(q):
    return np.asarray(q).astype(np.int64).reshape(-1, np.shape(q)[-1])


def _bcast(v, shape):
    return np.broadcast_to(np.asarray(v, np.int64), shape).astype(np.int32)


def run_norm(q, p):
    """The integer ``layernorm``/``rmsnorm`` of codes ``q`` (…, N) with the step parameters ``p``."""
    shape = np.shape(q)
    x = _rows(q).astype(np.int32)
    M, N = x.shape
    if p["kind"] == "layernorm":
        S = gvxu.lsum(x)                                                  # per row, on every lane
        Q = gvxu.lsum(gvxu.mul(x, x))
        neg_s = gvxu.mul(S, _bcast(-1, S.shape))
        V = gvxu.add(gvxu.mul(Q, _bcast(N, Q.shape)), gvxu.mul(neg_s, S))
        d = gvxu.add(gvxu.mul(x, _bcast(N, x.shape)), neg_s)
    else:
        d = gvxu.add(x, _bcast(-p["zp_x"], x.shape))
        V = gvxu.lsum(gvxu.mul(d, d))
    V = gvxu.add(V, _bcast(p["eps_q"], V.shape))
    r = gvxu.rsqrt(V)
    a = gvxu.mul(d, _bcast(p["C"], d.shape))
    g = gvxu.requantv(a, r, p["shift"], p["zp_g"])
    if p["beta"] is None:
        return g.astype(np.int8).reshape(shape)
    b = p["beta"]
    acc = gvxu.add(gvxu.mul(g, _bcast(b["m_a"], g.shape)), _bcast(b["c"], g.shape))
    return b["requant"].apply(acc).reshape(shape)


def run_softmax(q, p, mask=None):
    """The integer ``softmax`` of codes ``q`` (…, N); ``mask`` (broadcast to ``q``) True where a position is
    masked out (the causal mask of attention)."""
    shape = np.shape(q)
    x = _rows(q).astype(np.int32)
    if mask is not None:
        neg = np.where(np.broadcast_to(mask, shape).reshape(x.shape), MASK_NEG, 0)
        x = gvxu.add(x, neg.astype(np.int32))
    m = gvxu.lmax(x)
    t = gvxu.add(x, gvxu.mul(m, _bcast(-1, m.shape)))
    t = gvxu.requant(t, p["mult_t"], p["shift_t"], 0)
    hi = gvxu.lut(t, p["table_hi"])
    e = gvxu.add(gvxu.mul(hi, _bcast(256, hi.shape)), gvxu.lut(t, p["table_lo"]))
    Z = gvxu.lsum(e)
    r = gvxu.recip(Z)
    out = gvxu.requantv(gvxu.mul(e, _bcast(p["K"], e.shape)), r, SOFTMAX_SHIFT, SOFTMAX_QP.zp)
    return out.astype(np.int8).reshape(shape)


# ---- the rules -------------------------------------------------------------------------------------------
def _largest_shift(bound, cmax, where):
    """The largest shift (0 … 31) with ``bound · round(cmax · 2**shift) < 2**31``."""
    for shift in range(31, -1, -1):
        if bound * round_half_away(np.array(cmax * 2.0 ** shift)) < _INT32_LIMIT:
            return shift
    raise ValueError(f"{where}: the normalization multiplier {cmax:.4g} is too large for int32 even with shift 0 "
                     f"(the output scale is too fine for the weight)")


def q_norm(n, qp, lo, hi):
    """``layernorm``/``rmsnorm`` node ``n`` → one ``QStep`` (module docstring)."""
    x = n.inputs[0]
    px = qp[x]
    N = int(n.shape[-1])
    where = f"{n.op} '{n.name}'"
    layer = n.op == "layernorm"
    if layer and N > LAYERNORM_MAX_N:
        raise ValueError(f"{where}: the int8 layernorm takes at most {LAYERNORM_MAX_N} features (its int32 "
                         f"variance N·Σq² - (Σq)² could overflow), not {N}")
    gamma = n.attrs.get("weight")
    gamma = np.ones(N) if gamma is None else gamma.astype(np.float64)
    beta = n.attrs.get("bias")
    beta = None if beta is None or not np.any(beta) else beta.astype(np.float64)
    lo_y, hi_y = lo.get(n.name, 0.0), hi.get(n.name, 0.0)
    if beta is None:
        pg = QParams.from_range(lo_y, hi_y)
    else:
        pg = QParams.from_range(lo_y - beta.max(), hi_y - beta.min())
    eps = n.attrs["eps"] / px.scale ** 2 * (N ** 2 if layer else N)
    vmax = N * N * 128 * 128 if layer else N * 255 * 255
    if eps + vmax >= _INT32_LIMIT:
        raise ValueError(f"{where}: eps / scale² of the input ({n.attrs['eps']:.3g} / {px.scale:.3g}²) is too "
                         f"large for the int32 variance of {N} features")
    eps_q = max(1, int(round_half_away(np.array(eps))))
    dmax = 255 * N if layer else 255
    c_real = gamma * (1.0 if layer else math.sqrt(N)) / pg.scale
    shift = _largest_shift(dmax, float(np.abs(c_real).max()), where)
    C = round_half_away(c_real * 2.0 ** shift).astype(np.int32)
    p = {"kind": n.op, "zp_x": px.zp, "eps_q": eps_q, "C": C, "shift": shift, "zp_g": pg.zp, "beta": None}
    if beta is not None:                    # y = g + β by the add-of-a-constant rule
        m_a, c, rq, py = add_constant(pg, beta, lo, hi, n.name, N, where)
        p["beta"] = {"m_a": m_a, "c": c, "requant": rq}
        qp[n.name] = py
    else:
        qp[n.name] = pg
    p["g_qp"] = pg
    return QStep("norm", n.name, (x,), (n.name,), p)


def softmax_params(px):
    """The integer parameters of a softmax of an input with ``QParams`` ``px``."""
    s_t = max(px.scale / _WIDEN, SOFTMAX_T_MIN)
    mult_t, shift_t = requant_multipliers(np.array([px.scale / s_t]), "softmax")
    j = np.arange(-128, 128)
    vals = np.where(j <= 0, round_half_away(E_MAX * np.exp(s_t * np.minimum(j, 0))), E_MAX)
    vals[j == -128] = 0
    hi = round_half_away(vals / 256.0)
    lo = vals - 256 * hi
    assert hi.min() >= 0 and hi.max() <= 127 and lo.min() >= -128 and lo.max() <= 127
    table_hi, table_lo = np.zeros(256, np.int8), np.zeros(256, np.int8)
    table_hi[j & 0xFF], table_lo[j & 0xFF] = hi, lo
    return {"mult_t": int(mult_t[0]), "shift_t": int(shift_t), "table_hi": table_hi, "table_lo": table_lo,
            "K": 255 << SOFTMAX_SHIFT, "s_t": s_t}


def q_softmax(n, qp):
    """``softmax`` node ``n`` → one ``QStep`` (module docstring); its output has the fixed ``SOFTMAX_QP``."""
    x = n.inputs[0]
    qp[n.name] = SOFTMAX_QP
    return QStep("softmax", n.name, (x,), (n.name,), softmax_params(qp[x]))
