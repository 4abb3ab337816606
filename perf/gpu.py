"""The GPU beside the chip: a language model on H100 or H200 by the roofline, from datasheet figures.

Weights and the KV cache are 8-bit (fp8 or int8, like the chip's int8), so a weight is one byte and the
peak is the datasheet's dense int8/fp8 figure. ``n`` GPUs are the fewest whose HBM holds the weights and
the KV cache of every user (``ceil(bytes / HBM)``), splitting every layer across them (tensor parallel,
its all-reduces taken as free: an upper bound on speed).

* decode step (one token for each of ``batch`` users) = ``max(bytes read / (n · HBM bandwidth), MACs · 2 /
  (n · peak))``, bytes read = weights + the users' KV cache at the mean context ``prompt + tokens / 2``;
* prefill (time to first token) = ``max(2 · MACs of batch · prompt tokens / (n · peak), weights / (n · HBM
  bandwidth))``: compute-bound for long prompts;
* energy = ``n ·`` board power ``·`` time; dollars from the card price over its amortisation and the board
  power at the wall (``perf.estimate.usd_per_second``).
"""
import math

from perf.assumptions import GPU, Economics
from perf.models import ModelShape
from perf.work import attention_macs, gemm_macs, kv_bytes_per_token

__all__ = ["roofline", "usd_per_second"]


def usd_per_second(cards, price_usd, board_w, econ: Economics):
    """Dollars a second of ``cards`` cards: price over the amortisation plus board power × PUE at the wall."""
    life_s = econ.amortisation_years.value * 365.25 * 86400
    power = cards * board_w * econ.pue.value * econ.power_usd_per_kwh.value / 3.6e6
    return cards * price_usd / life_s + power


def roofline(m: ModelShape, gpu: GPU, econ: Economics, batch, prompt, tokens, gpus=None):
    """The roofline figures (module docstring) as a JSON-safe dict; ``gpus``: that many GPUs instead of the
    fewest that hold the weights and KV cache (at least those)."""
    weights = m.weight_bytes(8)
    kv_tok = kv_bytes_per_token(m)
    hold = weights + batch * (prompt + tokens) * kv_tok
    n = max(1, math.ceil(hold / (gpu.hbm_gbytes.value * 1e9)))
    if gpus is not None:
        if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < n:
            raise ValueError(f"gpus must be an integer of at least {n} (the GPUs that hold {m.name}'s {hold:,} "
                             f"bytes), not {gpus!r}")
        n = gpus
    bw = n * gpu.hbm_tbytes_s.value * 1e12
    peak = n * gpu.int8_tops.value * 1e12
    mean_ctx = prompt + tokens / 2
    read = weights + batch * mean_ctx * kv_tok
    macs = batch * (gemm_macs(m) + attention_macs(m, mean_ctx))
    step = max(read / bw, 2 * macs / peak)
    pre_macs = batch * prompt * (gemm_macs(m) + attention_macs(m, prompt / 2))
    ttft = max(2 * pre_macs / peak, weights / bw)
    tok_s = batch / step
    usd_s = usd_per_second(n, gpu.price_usd.value, gpu.board_w.value, econ)
    return {
        "gpus": n, "step_s": step, "bound": "memory" if read / bw >= 2 * macs / peak else "compute",
        "time_to_first_token_s": ttft, "tokens_per_s_per_user": 1 / step, "tokens_per_s": tok_s,
        "tokens_per_joule": tok_s / (n * gpu.board_w.value),
        "usd_per_million_tokens": usd_s / (tok_s * econ.utilisation.value) * 1e6,
        "bytes_per_step": read, "hbm_bytes_held": hold,
    }
