"""The work of one language-model token, from its shape alone: GEMMs, KV cache, attention, vector passes.

Everything is int8: one byte a weight and one a cached key or value. ``gemms(model)`` lists the matrix
products of one token through every layer and the head as ``(name, K, N, count)`` (``count`` of them per
token); the embedding is a table lookup, not a GEMM. ``vxu_passes(model, context)`` lists the vector passes
of one token as ``(name, elements, count)``, by formula (each pass once, alone; a compiled step chains
more of them, ``docs/perf.md``):

* each norm: 3 passes over ``d_model`` (square and sum, scale, multiply by the weight; LayerNorm one more
  for its bias and mean);
* rotary positions (SwiGLU models): 2 passes over the queries and keys (``d_model + kv_dim``);
* softmax: 3 passes over ``n_heads × context`` scores (max and subtract, exp by table, sum and scale);
* the FFN activation: 1 table pass over ``d_ff`` (GELU), or 2 (SiLU by table, times the up projection);
* 2 residual adds over ``d_model``, and one requantization pass over every GEMM's output.
"""
from perf.models import ModelShape

__all__ = ["gemms", "kv_bytes_per_token", "attention_macs", "gemm_macs", "vxu_passes"]


def gemms(m: ModelShape):
    """``[(name, K, N, count)]``: the GEMMs of one token (``M`` = tokens processed together)."""
    d, kv, ff, L = m.d_model, m.kv_dim, m.d_ff, m.layers
    out = [("q", d, d, L), ("k", d, kv, L), ("v", d, kv, L), ("o", d, d, L)]
    if m.ffn == "gelu":
        out += [("up", d, ff, L), ("down", ff, d, L)]
    else:
        out += [("gate", d, ff, L), ("up", d, ff, L), ("down", ff, d, L)]
    return out + [("head", d, m.vocab, 1)]


def gemm_macs(m: ModelShape):
    """Multiply-accumulates of one token's GEMMs (``Σ K·N``: about the parameter count)."""
    return sum(k * n * c for _, k, n, c in gemms(m))


def kv_bytes_per_token(m: ModelShape):
    """int8 bytes a cached token takes: a key and a value of ``kv_dim`` in every layer."""
    return 2 * m.layers * m.kv_dim


def attention_macs(m: ModelShape, context):
    """Multiply-accumulates of one query token over ``context`` cached ones: scores and the weighted sum."""
    return 2 * m.layers * m.n_heads * m.head_dim * context


def vxu_passes(m: ModelShape, context):
    """``[(name, elements, count)]``: the vector passes of one token (module docstring)."""
    d, L = m.d_model, m.layers
    norm = 4 if m.bias else 3
    out = [("norm", d, L * 2 * norm + norm), ("softmax", m.n_heads * context, 3 * L),
           ("residual", d, 2 * L), ("activation", m.d_ff, L * (1 if m.ffn == "gelu" else 2))]
    if not m.learned_positions:
        out.append(("rotary", d + m.kv_dim, 2 * L))
    out += [(f"requant {name}", n, c) for name, _, n, c in gemms(m)]
    return out
