"""``quantize(graph, calibration)`` → ``QGraph``: calibrate, then walk the float nodes in order, fusing each
linear / matmul / add with a following ``add`` of a constant vector (linear only) and ``relu`` when the
intermediate tensor has that one consumer and is not an output, one ``QStep`` per node or fused chain.
"""
import numpy as np

from ..ir import TABLE_OPS, TRANSFORMER_OPS, Graph
from .attention import attention_score_ranges, q_attention
from .calibrate import calibrate
from .graph import QGraph, QStep
from .ops import q_add, q_linear, q_matmul, q_mul, q_table
from .params import QParams, round_half_away
from .rows import q_norm, q_softmax

__all__ = ["quantize"]


def _fuse(graph, n, skip):
    """The chain a requant op ``n`` heads: [n, (add of a constant (N,))?, (relu)?] (linear takes the add)."""
    outputs = {t.name for t in graph.outputs.values()}
    chain = [n]

    def sole(cur, op):
        cons = graph.consumers(cur.name)
        if cur.name in outputs or len(cons) != 1 or cons[0].inputs != (cur.name,) or cons[0].op != op:
            return None
        return cons[0]

    nxt = sole(chain[-1], "add") if n.op == "linear" else None
    if nxt is not None and nxt.attrs["b"].shape == (n.shape[-1],):
        chain.append(nxt)
    nxt = sole(chain[-1], "relu")
    if nxt is not None:
        chain.append(nxt)
    skip.update(c.name for c in chain[1:])
    return chain


def _quantized(n):
    """Whether the transformer op ``n`` has an int8 rule: ``silu`` (a table), the row operations
    ``layernorm``, ``rmsnorm``, ``softmax`` (``rows.py``), causal ``attention``, ``transpose``, ``slice`` and
    ``rotate_half`` (``attention.py``), ``mul`` of 2-D tensors by a tensor, a scalar or a
    (N,) constant."""
    if n.op in ("silu", "layernorm", "rmsnorm", "softmax", "attention", "transpose", "slice", "rotate_half"):
        return True
    return n.op == "mul"


def quantize(graph, calibration):
    """Quantize ``graph`` (a ``compiler.ir.Graph``) with ``calibration`` data: a ``QGraph`` (``compiler.quantize``
    docstring)."""
    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be a compiler.ir.Graph, not {type(graph).__name__}")
    if not graph.outputs:
        raise ValueError("graph must have at least one output (Graph.output), not none")
    for n in graph.nodes:
        if (n.op in TRANSFORMER_OPS and not _quantized(n)) or (n.op == "matmul" and len(n.shape) > 2):
            what = n.op if n.op != "matmul" else f"a batched ({len(n.shape)}-D) matmul"
            raise NotImplementedError(f"{n.op} '{n.name}': int8 quantization of {what} is not implemented yet "
                                      f"(issue 10)")
    lo, hi = calibrate(graph, calibration)
    scores = attention_score_ranges(graph, calibration)
    return _quantize(graph, lo, hi, scores, _attention_operands(graph))


def _attention_operands(graph):
    """The tensors attention reads, back through reshapes, transposes, slices and the rotary embedding (its
    ``add`` of two activations, ``mul`` by a table, ``rotate_half``) to the steps that compute them: quantized
    with zero point 0, so ``q @ kᵀ`` and ``P @ v`` need no zero-point terms (and ``rotate_half`` is exact)."""
    out = set()
    stack = [i for n in graph.nodes if n.op == "attention" for i in n.inputs]
    while stack:
        name = stack.pop()
        if name in out:
            continue
        out.add(name)
        node = graph.node(name)
        if node.op in _THROUGH or (node.op == "add" and len(node.inputs) == 2) or (
                node.op == "mul" and len(node.inputs) == 1):
            stack += list(node.inputs)
    return out


#: What attention's operands are traced back through to the step computing them: the layout ops and the
#: rotary embedding (``x · cos + rotate_half(x) · sin``), whose operands must be symmetric too.
_THROUGH = ("reshape", "transpose", "slice", "rotate_half")


def _quantize(graph, lo, hi, scores, sym):
    qp, steps, skip = {}, [], set()
    for n in graph.nodes:
        if n.name in skip:
            continue
        if n.op == "input":
            p = QParams.from_range(lo[n.name], hi[n.name]) if n.dtype == "float32" else None
            if p is not None:
                qp[n.name] = p
            steps.append(QStep("input", n.name, (), (n.name,), {"qp": p}))
            continue
        if n.op in ("linear", "matmul", "add"):
            chain = _fuse(graph, n, skip)
            out = chain[-1].name
            relu = chain[-1].op == "relu"
            fused = tuple(c.name for c in chain)
            if n.op == "linear":
                steps.append(q_linear(n, chain, qp, lo, hi, out, relu, fused, sym))
            elif n.op == "matmul":
                steps.append(q_matmul(n, qp, lo, hi, out, relu, fused))
            else:
                steps.append(q_add(n, qp, lo, hi, out, relu, fused, sym))
            continue
        if n.op == "mul":
            steps.append(q_mul(n, qp, lo, hi, n.name, sym))
            continue
        if n.op in ("layernorm", "rmsnorm"):
            steps.append(q_norm(n, qp, lo, hi))
            continue
        if n.op == "softmax":
            steps.append(q_softmax(n, qp))
            continue
        if n.op == "attention":
            steps.append(q_attention(n, qp, lo, hi, scores[n.name]))
            continue
        x = n.inputs[0]
        if n.op == "relu":
            qp[n.name] = qp[x]
            steps.append(QStep("relu", n.name, (x,), (n.name,), {"zp": qp[x].zp}))
        elif n.op in TABLE_OPS:
            steps.append(q_table(n, qp))
        elif n.op == "embedding":
            T = n.attrs["table"].astype(np.float64)
            amax = float(np.abs(T).max())
            s = amax / 127.0 if amax > 0 else 1.0
            qp[n.name] = QParams(s, 0)
            Tq = np.clip(round_half_away(T / s), -127, 127).astype(np.int8)
            steps.append(QStep("embedding", n.name, (x,), (n.name,), {"table": Tq}))
        elif n.op == "argmax":
            steps.append(QStep("argmax", n.name, (x,), (n.name,), {"axis": n.attrs["axis"]}))
        elif n.op == "transpose":
            qp[n.name] = qp[x]
            steps.append(QStep("transpose", n.name, (x,), (n.name,), {"axes": n.attrs["axes"]}))
        elif n.op == "rotate_half":
            if qp[x].zp != 0:
                raise NotImplementedError(f"rotate_half '{n.name}': int8 rotate_half needs an input with zero point "
                                          f"0 (the rotary embedding of attention's q or k), not {qp[x].zp}")
            qp[n.name] = qp[x]
            steps.append(QStep("rotate_half", n.name, (x,), (n.name,), {}))
        elif n.op == "slice":
            qp[n.name] = qp[x]
            steps.append(QStep("slice", n.name, (x,), (n.name,), {"start": n.attrs["start"], "stop": n.attrs["stop"]}))
        elif n.op == "reshape":
            if x in qp:
                qp[n.name] = qp[x]
            steps.append(QStep("reshape", n.name, (x,), (n.name,), {"shape": n.attrs["shape"]}))
        else:
            raise AssertionError(n.op)  # every op of compiler.ir is handled above
    return QGraph(graph, steps, qp)

