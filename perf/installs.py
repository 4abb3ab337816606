"""The weight installs of one decode step on one chip, from the model's shape and the spec alone.

With one weight slot (every preset) a chip's MXU installs a ``R × C`` tile of weights in ``R`` cycles of its
weights unit (a LOADW of ``R`` rows, one a cycle: ``spec.mxu``), once per decode step at batch 1, and the
step's weights unit does nothing else: so ``install_cycles`` is a floor under the step and the one part of it
that is a closed form of the shape exactly (``tests/test_perf_estimate.py`` compares it with the LOADW rows of
the compiled language models on 1, 2 and 4 chips: 0 cycles of difference). A chip's tiles a step:

* every GEMM of ``perf.work.gemms`` (the chip's ``ceil(K / tk) × ceil(N / tn)`` share):
  ``ceil(K' / R) · ceil(N' / C)``;
* attention, for each of the chip's ``ceil(n_kv_heads / t)`` KV heads in every layer: ``Kᵀ`` (``head_dim ×
  context``) and ``V`` (``context × head_dim``) as weights, ``ceil(hd / R) · ceil(ctx / C) + ceil(ctx / R) ·
  ceil(hd / C)`` tiles (a compiled step attends over its whole context, masked);
* rotary positions (models without learned positions): ``rotate_half`` as a GEMM by a ``head_dim ×
  head_dim`` signed permutation (``compiler/lower/rotate.py``), once for the queries and once for the keys a
  layer: ``2 · ceil(hd / R) · ceil(hd / C)``.

What the rest of the step costs (the chain of vector passes and result drains between the installs) is not a
closed form here: ``docs/perf.md`` says how far the estimate is from the compiled step, and why.
"""
from perf.models import ModelShape
from perf.work import gemms

__all__ = ["weight_tiles", "install_cycles", "megatron_splits"]


def _tiles(a, b, c):
    return -(-a // c.mxu_rows) * -(-b // c.mxu_cols)


def megatron_splits(m: ModelShape, t):
    """``{name: (tk, tn)}`` as ``compiler.system.decode`` splits a layer over ``t`` chips: the GEMMs that read
    the residual by columns (queries, keys and values by heads, the FFN's first GEMMs, the head), the ones that
    write it back (the attention's output projection, the FFN's last GEMM) by ``K``."""
    return {name: ((t, 1) if name in ("o", "down") else (1, t)) for name, *_ in gemms(m)}


def weight_tiles(m: ModelShape, c, t=1, splits=None, context=None):
    """``{part: tiles}`` one chip of a tensor group of ``t`` installs in a decode step at batch 1 (module
    docstring); ``splits`` as ``perf.estimate.gemm_splits`` (``megatron_splits`` when ``None``), ``context``
    the attended positions (the model's context when ``None``)."""
    splits = splits or megatron_splits(m, t)
    ctx = m.context if context is None else context
    out = {}
    for name, K, N, count in gemms(m):
        tk, tn = splits[name]
        out[name] = count * _tiles(-(-K // tk), -(-N // tn), c)
    hd, heads = m.head_dim, -(-m.n_kv_heads // t)
    out["attention"] = m.layers * heads * (_tiles(hd, ctx, c) + _tiles(ctx, hd, c))
    if not m.learned_positions:
        out["rotary"] = m.layers * 2 * _tiles(hd, hd, c)
    return out


def install_cycles(m: ModelShape, c, t=1, splits=None, context=None):
    """Cycles of one chip's weights unit in a decode step: ``mxu_rows`` a tile of ``weight_tiles``."""
    return c.mxu_rows * sum(weight_tiles(m, c, t, splits, context).values())
