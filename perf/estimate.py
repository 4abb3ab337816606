"""``perf.estimate``: a language model on many model-only chips (``tsp``), with the GPU roofline beside it.

Method (``docs/perf.md``):

* **Chips.** The int8 weights and the KV cache of ``batch`` users at ``prompt + tokens`` positions are held in
  SRAM, laid out layer after layer over a **pipeline** of chips (a layer larger than a chip continues on the
  next); ``chips needed = ceil((weights + KV) / SRAM per chip)``, SRAM = MEM slices × ``mem_bytes_per_slice``.
* **Decode step** (one token for each of the ``batch`` users, who move through the pipeline together): the
  sum of the stages' work, since one group of users is in flight (only one chip works at a time), plus one
  link hop a stage. Each GEMM (``M = batch`` rows) is split by columns over the chip's MXU planes, which run
  in parallel; a plane's share costs ``perf.cost.gemm_cycles(M, K, ceil(N / planes), config)`` (the
  compiler's exact schedule) when that fits one chip's MEM, else the install/compute bound of ``spec.mxu``:
  ``RL + 1 + Σ max(R, a_i) + latency`` over the tiles (``R`` cycles to install a tile's weights, one
  activation a cycle, ``a_i = max(rows of the tile, 2)``, ``latency = rows + cols + 4``). Weights stream
  through the MXU every token, so at batch 1 the step is weight-install bound.
* **Attention** (by formula, no kernel compiled yet): per user and KV head, ``K^T`` and ``V`` are installed as
  weights (tiles ``ceil(hd/R)·ceil(ctx/C)`` and ``ceil(ctx/R)·ceil(hd/C)``), each tile ``max(R, g)`` cycles
  for the ``g = n_heads / n_kv_heads`` queries that share it, spread over the planes, at the mean context
  ``prompt + tokens / 2``. **Vector passes**: ``perf.work.vxu_passes``, each ``ceil(elements · batch /
  lanes) + RL + PIPE + slices / 2`` cycles.
* **Links**: ``chips`` hops a token (``chips - 1`` between stages, one back to the first with the sampled
  token), each ``latency + batch · d_model bytes / bandwidth``.
* **Prefill** (time to first token): the same with ``M = batch · prompt`` rows and context ``prompt``, no
  overlap of stages over the prompt's chunks (an upper bound).
* **Energy**: per operation (MACs, SRAM bytes read: weights, KV, activations; link bits) and, separately,
  ``chips × board power × step time``. **Dollars**: ``perf.gpu.usd_per_second`` over the aggregate tokens/s.
"""
import functools
import math
from dataclasses import dataclass, field

from perf import cost
from perf.assumptions import DEFAULT, Assumptions
from perf.gpu import roofline, usd_per_second
from perf.models import MODELS, ModelShape
from perf.work import attention_macs, gemm_macs, gemms, kv_bytes_per_token, vxu_passes
from spec import isa
from spec.config import PRESETS, ChipConfig

__all__ = ["estimate", "Estimate", "model_shape", "gemm_time"]


def _pick(value, cls, table, what):
    if isinstance(value, cls):
        return value
    if isinstance(value, str) and value in table:
        return table[value]
    raise ValueError(f"{what} must be a {cls.__module__}.{cls.__name__} or one of {', '.join(table)}, "
                     f"not {value!r}")


def model_shape(model):
    """A ``ModelShape`` or the name of one of ``perf.models.MODELS``."""
    return _pick(model, ModelShape, MODELS, "model")


def _bound(M, K, N, c):
    """The install/compute bound of ``spec.mxu`` on one MXU (module docstring)."""
    R, D = c.mxu_rows, c.mxu_acc_depth
    per_block = -(-K // R) * -(-N // c.mxu_cols)
    blocks, last = -(-M // D), M - (-(-M // D) - 1) * D
    a = [max(D, 2)] * (blocks - 1) + [max(last, 2)]
    return isa.MEM_READ_LATENCY + 1 + sum(per_block * max(R, x) for x in a) + c.mxu.latency


@functools.lru_cache(maxsize=4096)
def gemm_time(M, K, N, c):
    """``(cycles, compute cycles, method)`` of an ``M × K @ K × N`` GEMM split over the MXU planes of ``c``."""
    planes = len(c.positions("mxu"))
    Nq = -(-N // planes)
    try:
        cycles, method = cost.gemm_cycles(M, K, Nq, c), "perf.cost.gemm_cycles"
    except (ValueError, NotImplementedError):
        cycles, method = _bound(M, K, Nq, c), "spec.mxu bound"
    D = c.mxu_acc_depth
    compute = -(-K // c.mxu_rows) * -(-Nq // c.mxu_cols) * sum(max(min(D, M - i), 2) for i in range(0, M, D))
    return cycles, min(compute, cycles), method


def _attention(m, c, users, rows, ctx):
    """``(cycles, compute cycles)`` of attention for ``users`` users, ``rows`` query rows each (formula)."""
    R, C, planes = c.mxu_rows, c.mxu_cols, len(c.positions("mxu"))
    g = rows * (m.n_heads // m.n_kv_heads)
    hd = m.head_dim
    tiles = -(-hd // R) * -(-ctx // C) + -(-ctx // R) * -(-hd // C)
    n = users * m.n_kv_heads * m.layers * tiles
    return n * max(R, g) / planes, n * min(max(g, 2), max(R, g)) / planes


def _vxu(m, c, rows, ctx):
    hop = len(c.slices) // 2
    return sum(count * (-(-n * rows // c.lanes) + isa.MEM_READ_LATENCY + isa.VXU_PIPELINE + hop)
               for _, n, count in vxu_passes(m, ctx))


def _step(m, c, a, chips, users, rows, ctx):
    """Seconds of one pass of ``users × rows`` tokens through the pipeline, and where they go."""
    f = c.clock_mhz * 1e6
    total = comp = 0.0
    methods = set()
    for _, K, N, count in gemms(m):
        cyc, cc, method = gemm_time(users * rows, K, N, c)
        total, comp = total + cyc * count, comp + cc * count
        methods.add(method)
    at, ac = _attention(m, c, users, rows, ctx)
    vxu = _vxu(m, c, users * rows, ctx)
    link = chips * (a.tsp.link_latency_us.value * 1e-6
                    + users * rows * m.d_model / (a.tsp.link_gbytes_s.value * 1e9))
    t = {"compute": (comp + ac) / f, "weight_installs": (total - comp + at - ac) / f, "vxu": vxu / f,
         "links": link}
    return sum(t.values()), t, sorted(methods)


@dataclass(frozen=True)
class Estimate:
    """The figures of ``estimate`` (module docstring); ``to_json()`` is the report's JSON."""
    model: str
    config: str
    chips: int
    chips_needed: int
    batch: int
    prompt: int
    tokens: int
    step_s: float
    time_to_first_token_s: float
    tokens_per_s_per_user: float
    tokens_per_s: float
    tokens_per_joule: float
    tokens_per_joule_board: float
    usd_per_million_tokens: float
    time_split: dict
    gemm_methods: list
    sram: dict
    gpu: dict
    assumptions: dict = field(repr=False)

    def to_json(self):
        return dict(self.__dict__, mapping="pipeline by layers")


def estimate(model, config="tsp", chips=None, batch=1, prompt=128, tokens=128,
             assumptions: Assumptions = DEFAULT):
    """The figures of ``model`` (a ``ModelShape`` or its name) on ``config`` (module docstring)."""
    m, c, a = model_shape(model), _pick(config, ChipConfig, PRESETS, "config"), assumptions
    for name, v in (("batch", batch), ("prompt", prompt), ("tokens", tokens)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, not {v!r}")
    if prompt + tokens > m.context:
        raise ValueError(f"prompt + tokens must be at most {m.name}'s context of {m.context}, not {prompt + tokens}")
    if not c.positions("mxu") or not c.positions("vxu"):
        raise ValueError(f"config must have an MXU and a VXU slice, not {c.name}")
    sram = len(c.positions("mem")) * c.mem_bytes_per_slice
    weights, kv = m.weight_bytes(8), batch * (prompt + tokens) * kv_bytes_per_token(m)
    needed = math.ceil((weights + kv) / sram)
    if chips is None:
        chips = needed
    elif isinstance(chips, bool) or not isinstance(chips, int) or chips < needed:
        raise ValueError(f"chips must be an integer of at least {needed} (the chips that hold {m.name}'s "
                         f"{weights + kv:,} bytes of weights and KV cache), not {chips!r}")
    ctx = prompt + tokens / 2
    step, split, methods = _step(m, c, a, chips, batch, 1, math.ceil(ctx))
    ttft, _, _ = _step(m, c, a, chips, batch, prompt, prompt)
    tok_s = batch / step
    e = a.energy
    act = sum(batch * K * -(-N // c.mxu_cols) * n for _, K, N, n in gemms(m))
    sram_read = weights + batch * ctx * kv_bytes_per_token(m) + act
    joules = (batch * (gemm_macs(m) + attention_macs(m, ctx)) * e.int8_mac_pj.value
              + sram_read * e.sram_read_pj_per_byte.value
              + chips * batch * m.d_model * 8 * e.link_pj_per_bit.value) * 1e-12
    board = chips * a.tsp.board_w.value
    usd_s = usd_per_second(chips, a.tsp.price_usd.value, a.tsp.board_w.value, a.economics)
    gpu = {g: roofline(m, getattr(a, g), a.economics, batch, prompt, tokens) for g in ("h200", "h100")}
    return Estimate(
        model=m.name, config=c.name, chips=chips, chips_needed=needed, batch=batch, prompt=prompt, tokens=tokens,
        step_s=step, time_to_first_token_s=ttft, tokens_per_s_per_user=1 / step, tokens_per_s=tok_s,
        tokens_per_joule=batch / joules, tokens_per_joule_board=tok_s / board,
        usd_per_million_tokens=usd_s / (tok_s * a.economics.utilisation.value) * 1e6,
        time_split={k: v / step for k, v in split.items()}, gemm_methods=methods,
        sram={"bytes_per_chip": sram, "weight_bytes": weights, "kv_bytes": kv,
              "utilisation": (weights + kv) / (chips * sram), "bytes_read_per_step": sram_read},
        gpu=gpu, assumptions=a.to_dict())
