"""The per-op quantization rules of the ``compiler.quantize`` docstring: one float node → one ``QStep``.

Each ``q_<op>`` takes the node ``n``, the ``QParams`` found so far ``qp`` (``{tensor name: QParams}``, which
it extends with its output's), and for the requantized ops the calibration ranges ``lo``/``hi``, the output
tensor ``out`` of the fused chain, whether it ends in a ``relu`` and the fused node names:

* ``q_linear(n, chain, …)``: weights, the int32 bias (the chain's ``add`` of a constant folded in, the input
  zero point folded in), refused (``ValueError``) when the int32 accumulator could wrap;
* ``q_matmul``, ``q_add``: the zero-point terms / the ``ACC_SCALE_BITS`` multipliers and offset;
* ``q_mul``: the zero points of two activations, or the ``MUL_CONST_BITS`` integer constant and offset;
* ``q_table(n, qp)``: the 256-entry int8 table of ``tanh``/``sigmoid``/``gelu``/``exp``/``silu``.
"""
import numpy as np

from golden import vxu as gvxu
from spec.isa import LUT_ENTRIES

from ..ir import FLOAT_FUNCTIONS
from .calibrate import fit_out
from .graph import QStep
from .params import QParams, Requant, quantize_weights, requant_multipliers, round_half_away

__all__ = ["ACC_SCALE_BITS", "MUL_CONST_BITS", "q_linear", "q_matmul", "q_add", "add_constant", "q_mul",
           "q_table"]

#: ``add``: the accumulator unit is ``max(s_a, s_b) / 2**ACC_SCALE_BITS``.
ACC_SCALE_BITS = 16
#: ``mul`` by a constant: the constant as integers ``k`` with ``max|k| = 2**MUL_CONST_BITS``.
MUL_CONST_BITS = 15


def q_linear(n, chain, qp, lo, hi, out, relu, fused, sym=()):
    x = n.inputs[0]
    sx, zx = qp[x].scale, qp[x].zp
    W = n.attrs["W"]
    K, N = W.shape
    Wq, sw = quantize_weights(W)
    b = np.zeros(N, np.float64)
    for c in chain:
        if c.op == "linear" and "b" in c.attrs:
            b += c.attrs["b"].astype(np.float64)
        if c.op == "add":
            b += c.attrs["b"].astype(np.float64)
    acc_scale = sx * sw
    po = fit_out(lo, hi, out, acc_scale.max(), sym)
    qp[out] = po
    bias = round_half_away(b / acc_scale) - zx * Wq.astype(np.int64).sum(axis=0)
    bound = 2 * K * 128 * 127 + int(np.abs(bias).max())
    if bound > gvxu.INT32_MAX:
        raise ValueError(f"linear '{n.name}': the int32 accumulator must not overflow, but K={K} and a bias of "
                         f"{int(np.abs(bias).max())} accumulator units can reach {bound} > 2**31 - 1 "
                         f"(the bias is too large for the scales of x and W)")
    real = acc_scale / po.scale
    mult, shift = requant_multipliers(real, f"linear '{n.name}'")
    rq = Requant(mult, shift, po.zp, relu, real)
    return QStep("linear", out, (x,), fused, {"W": Wq, "w_scale": sw, "bias": bias.astype(np.int32),
                                              "requant": rq})


def q_matmul(n, qp, lo, hi, out, relu, fused):
    a, b = n.inputs
    pa, pb = qp[a], qp[b]
    acc_scale = pa.scale * pb.scale
    po = fit_out(lo, hi, out, acc_scale)
    qp[out] = po
    N = n.shape[1]
    real = np.full(N, acc_scale / po.scale)
    mult, shift = requant_multipliers(real, f"matmul '{n.name}'")
    rq = Requant(mult, shift, po.zp, relu, real)
    return QStep("matmul", out, (a, b), fused, {"zp_a": pa.zp, "zp_b": pb.zp, "requant": rq})


def q_add(n, qp, lo, hi, out, relu, fused, sym=()):
    a = n.inputs[0]
    pa = qp[a]
    if len(n.inputs) == 2:
        pb = qp[n.inputs[1]]
        s_acc = max(pa.scale, pb.scale) / 2.0 ** ACC_SCALE_BITS
        m_a, m_b = (int(round_half_away(s / s_acc)) for s in (pa.scale, pb.scale))
        c = np.array(-(m_a * pa.zp + m_b * pb.zp), np.int64)
    else:
        m_a, c, rq, po = add_constant(pa, n.attrs["b"], lo, hi, out, n.shape[-1], f"add '{n.name}'", relu, sym)
        qp[out] = po
        return QStep("add", out, tuple(n.inputs), fused, {"m_a": m_a, "m_b": None, "c": c, "requant": rq})
    po = fit_out(lo, hi, out, s_acc, sym)
    qp[out] = po
    N = n.shape[-1]
    real = np.full(N, s_acc / po.scale)
    mult, shift = requant_multipliers(real, f"add '{n.name}'")
    rq = Requant(mult, shift, po.zp, relu, real)
    return QStep("add", out, tuple(n.inputs), fused, {"m_a": m_a, "m_b": m_b, "c": c.astype(np.int32),
                                                      "requant": rq})


def add_constant(pa, const, lo, hi, out, N, where, relu=False, sym=()):
    """The rule of ``a + b`` with ``b`` a constant (the ``compiler.quantize`` docstring's ``add``): ``(m_a, c
    int32, Requant, QParams of out)`` for ``a`` with ``QParams`` ``pa`` and ``N`` output channels; also a norm's
    bias (``rows.py``)."""
    const = np.asarray(const, np.float64)
    amax = float(np.abs(const).max())
    s_b = amax / 127.0 if amax > 0 else pa.scale
    s_acc = max(pa.scale, s_b) / 2.0 ** ACC_SCALE_BITS
    m_a = int(round_half_away(pa.scale / s_acc))
    c = round_half_away(const / s_acc) - m_a * pa.zp
    po = fit_out(lo, hi, out, s_acc, sym)
    real = np.full(N, s_acc / po.scale)
    mult, shift = requant_multipliers(real, where)
    return m_a, np.asarray(c).astype(np.int32), Requant(mult, shift, po.zp, relu, real), po


def q_mul(n, qp, lo, hi, out, sym=()):
    a = n.inputs[0]
    pa = qp[a]
    if len(n.inputs) == 2:
        pb = qp[n.inputs[1]]
        acc_scale = pa.scale * pb.scale
        p = {"zp_a": pa.zp, "zp_b": pb.zp, "k": None, "c": None}
    else:
        const = n.attrs["b"].astype(np.float64)
        amax = float(np.abs(const).max())
        s_k = amax / 2.0 ** MUL_CONST_BITS if amax > 0 else 1.0
        k = round_half_away(const / s_k)
        acc_scale = pa.scale * s_k
        p = {"zp_a": pa.zp, "zp_b": None, "k": k.astype(np.int32), "c": (-pa.zp * k).astype(np.int32)}
    po = fit_out(lo, hi, out, acc_scale, sym)
    qp[out] = po
    real = np.full(n.shape[-1], acc_scale / po.scale)
    mult, shift = requant_multipliers(real, f"mul '{n.name}'")
    p["requant"] = Requant(mult, shift, po.zp, False, real)
    return QStep("mul", out, tuple(n.inputs), (n.name,), p)


def q_table(n, qp):
    x = n.inputs[0]
    px = qp[x]
    codes = np.arange(-128, 128)
    y = FLOAT_FUNCTIONS[n.op](px.dequantize(codes)).astype(np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{n.op} '{n.name}': the table must hold finite values, but {n.op} of the input range "
                         f"[{px.dequantize(-128)}, {px.dequantize(127)}] overflows")
    po = QParams.from_range(y.min(), y.max())
    qp[n.name] = po
    table = np.zeros(LUT_ENTRIES, np.int8)
    table[codes & 0xFF] = po.quantize(y)
    return QStep("table", n.name, (x,), (n.name,), {"table": table, "func": n.op})
