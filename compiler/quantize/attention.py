"""int8 rule of causal ``attention(q, k, v, scale)`` (issue 10), and of ``transpose`` (the same codes).

For every leading index (batch, head) and query row ``t``, with keys ``s <= t`` (causal):

* scores: ``acc[t, s] = Σ_i (q[t, i] - zp_q) · (k[s, i] - zp_k)`` (the ``matmul`` rule of two activations,
  ``matmul_int8``), ``S = requant(acc)`` with the one multiplier ``s_q · s_k · scale / s_S``; the scores' scale
  and zero point come from their calibrated range (the causal part of ``q @ kᵀ · scale`` over the
  calibration data);
* ``P = softmax(S)`` over the keys with the later keys masked (``rows.run_softmax`` with the causal mask: a
  masked key contributes exactly 0), codes at the fixed scale 1/255, zero point -128;
* out: ``acc[t, :] = Σ_s (P[t, s] - zp_P) · (v[s, :] - zp_v)`` (``matmul_int8``; a masked key has ``P = zp_P``
  and adds 0), requantized with ``s_P · s_v / s_out``.

Every output row depends only on its own query and the keys and values up to it, so a prefix of the sequence
(or one decode step with the earlier keys and values kept in a cache) gives exactly the rows the whole
sequence gives: the KV cache of ``compiler/lm`` relies on this.
"""
import numpy as np

from golden import vxu as gvxu
from golden.mxu import matmul as mxu_matmul

from .calibrate import fit_out
from .graph import QStep
from .params import QParams, Requant, requant_multipliers
from .rows import SOFTMAX_QP, run_softmax, softmax_params

__all__ = ["matmul_int8", "q_attention", "run_attention", "attention_score_ranges"]


def matmul_int8(qa, qb, zp_a, zp_b, requant):
    """``requant(Σ_k (qa - zp_a)(qb - zp_b))`` as the chip computes it: the MXU product of the codes and the
    zero-point terms in int32 (``golden.vxu``), ``qa`` (M, K), ``qb`` (K, N)."""
    acc = mxu_matmul(qa, qb)
    rows = qa.astype(np.int64).sum(axis=1).astype(np.int32)[:, None]      # |.| <= 128 K
    cols = qb.astype(np.int64).sum(axis=0).astype(np.int32)[None, :]
    acc = gvxu.add(acc, gvxu.mul(np.broadcast_to(rows, acc.shape), np.full(acc.shape, -zp_b, np.int32)))
    acc = gvxu.add(acc, gvxu.mul(np.broadcast_to(cols, acc.shape), np.full(acc.shape, -zp_a, np.int32)))
    acc = gvxu.add(acc, np.broadcast_to(gvxu.wrap_int32(qa.shape[1] * zp_a * zp_b), acc.shape))
    return requant.apply(acc)


def attention_score_ranges(graph, calibration):
    """``{attention node: (min, max)}`` of its causal scores ``q @ kᵀ · scale`` over the calibration data."""
    nodes = [n for n in graph.nodes if n.op == "attention"]
    if not nodes:
        return {}
    batches = [calibration] if isinstance(calibration, dict) else list(calibration)
    out = {}
    for batch in batches:
        env = graph.evaluate(batch)
        for n in nodes:
            q, k = (env[i].astype(np.float64) for i in n.inputs[:2])
            s = q @ np.swapaxes(k, -1, -2) * n.attrs["scale"]
            T, S = s.shape[-2:]
            keep = np.tril(np.ones((T, S), bool)) if n.attrs["causal"] else np.ones((T, S), bool)
            vals = s[..., keep]
            lo, hi = out.get(n.name, (np.inf, -np.inf))
            out[n.name] = (min(lo, float(vals.min())), max(hi, float(vals.max())))
    return out


def q_attention(n, qp, lo, hi, score_range):
    """``attention`` node ``n`` → one ``QStep`` (module docstring)."""
    where = f"attention '{n.name}'"
    if not n.attrs["causal"]:
        raise NotImplementedError(f"{where}: int8 attention is causal only (a decoder), not causal=False")
    q, k, v = n.inputs
    pq, pk, pv = qp[q], qp[k], qp[v]
    acc_s = pq.scale * pk.scale * n.attrs["scale"]
    ps = QParams.from_range(*score_range, min_scale=acc_s / (1 - 2.0 ** -20))
    mult, shift = requant_multipliers(np.array([acc_s / ps.scale]), where + " (scores)")
    rq_s = Requant(mult, shift, ps.zp, False, np.array([acc_s / ps.scale]))
    acc_o = SOFTMAX_QP.scale * pv.scale
    po = fit_out(lo, hi, n.name, acc_o)
    real = np.full(n.shape[-1], acc_o / po.scale)
    mult_o, shift_o = requant_multipliers(real, where + " (output)")
    qp[n.name] = po
    p = {"zp_q": pq.zp, "zp_k": pk.zp, "zp_v": pv.zp, "scores": rq_s, "scores_qp": ps,
         "softmax": softmax_params(ps), "out": Requant(mult_o, shift_o, po.zp, False, real)}
    return QStep("attention", n.name, (q, k, v), (n.name,), p)


def run_attention(q, k, v, p):
    """The integer attention of codes ``q`` (…, T, d), ``k`` (…, T, d), ``v`` (…, T, e) (module docstring)."""
    lead = q.shape[:-2]
    T = q.shape[-2]
    mask = np.triu(np.ones((T, k.shape[-2]), bool), 1)
    out = np.zeros(lead + (T, v.shape[-1]), np.int8)
    for idx in np.ndindex(*lead):
        S = matmul_int8(q[idx], k[idx].T, p["zp_q"], p["zp_k"], p["scores"])
        P = run_softmax(S, p["softmax"], mask)
        out[idx] = matmul_int8(P, v[idx], SOFTMAX_QP.zp, p["zp_v"], p["out"])
    return out
