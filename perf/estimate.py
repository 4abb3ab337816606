"""``perf.estimate``: a language model on many model-only chips (``tsp``), with the GPU roofline beside it.

Method (``docs/perf.md``):

* **Chips.** The int8 weights and the KV cache of ``batch`` users at ``prompt + tokens`` positions are held in
  SRAM, laid out layer after layer over a **pipeline** of chips (a layer larger than a chip continues on the
  next); ``chips needed = ceil((weights + KV) / SRAM per chip)``, SRAM = MEM slices × ``mem_bytes_per_slice``;
  without ``chips``, the estimate takes that many and adds chips (whole tensor groups when one is given) while a
  chip's share with the GEMM tiles' rounding and the step's scratch does not fit (``chips_auto``).
* **Decode step** (one token for each of the ``batch`` users, who move through the pipeline together): the
  sum of the stages' work, since one group of users is in flight (only one chip works at a time), plus one
  link hop a stage. Each GEMM (``M = batch`` rows) is split by columns over the chip's MXU planes, which run
  in parallel; a plane's share costs ``perf.cost.gemm_cycles(M, K, ceil(N / planes), config)`` (the
  compiler's exact schedule) when that fits one chip's MEM, else the install/compute bound of ``spec.mxu``:
  ``RL + 1 + Σ max(R, a_i) + latency`` over the tiles (``R`` cycles to install a tile's weights, one
  activation a cycle, ``a_i = max(rows of the tile, 2)``, ``latency = rows + cols + 4``). Weights stream
  through the MXU every token, so at batch 1 the step is weight-install bound.
* **Attention** (by formula, the tiles a compiled step installs: ``perf.installs``): per user and KV head,
  ``K^T`` and ``V`` are installed as weights (tiles ``ceil(hd/R)·ceil(ctx/C)`` and ``ceil(ctx/R)·ceil(hd/C)``),
  each tile ``max(R, g)`` cycles
  for the ``g = n_heads / n_kv_heads`` queries that share it, spread over the planes, at the mean context
  ``prompt + tokens / 2``. **Vector passes**: ``perf.work.vxu_passes``, each ``ceil(elements · batch /
  lanes) + RL + PIPE + slices / 2`` cycles.
* **Links**: ``chips`` hops a token (``chips - 1`` between stages, one back to the first with the sampled
  token), each ``latency + batch · d_model bytes / bandwidth``.
* **Tensor split** (``split="tensor"``, or ``"auto"``: the one of more tokens/s per user): ``stages`` pipeline
  stages of groups of ``t`` chips; every GEMM split ``tk × tn = t`` ways (K with an int32 partial-sum
  reduce-scatter, columns), each chip installing its share; after every GEMM group, attention and the head,
  an exchange over the group's links (``exchange_s``: ``h · (latency + bytes / (min(links, t - 1) ·
  bandwidth))`` a phase, ``h = hops(t, links)``), plus ``stages`` hops between stages (``docs/perf.md``).
* **Prefill** (time to first token): the same with ``M = batch · prompt`` rows and context ``prompt``, no
  overlap of stages over the prompt's chunks (an upper bound).
* **SRAM and links per chip** (``sram_layout``, ``link_use``): the model's bytes in pipeline order cut into
  equal contiguous stages, each chip of a tensor group holding ``1 / t`` plus the tiles' rounding, plus one
  decode step's scratch; each link's busy fraction = bytes it moves in a decode step / (bandwidth · step).
* **Energy**: per operation (MACs, SRAM bytes read: weights, KV, activations; link bits) and, separately,
  ``chips × board power × step time``. **Dollars**: ``perf.gpu.usd_per_second`` over the aggregate tokens/s.
* **A compiled program** (``estimate(lm)`` of a ``compiler.lm.LMProgram``, read by duck typing): the figures
  above on its shape and config, then the timings from its exact cycles (``step_cycles``: prefill first, then
  every decode step, equal to ``Generation.predicted_cycles``; the host edge's words counted in the step),
  cost and board power scaled alike, and ``model_error``: how far this closed form (``_compiled_step_cycles``:
  the program's mapping and whole context, its line's all-reduces) is from the compiled step, whose weight
  installs it gets exactly (``install_cycles`` beside ``model_install_cycles``) and whose chains of vector
  passes between them it undercounts (``docs/perf.md``).
"""
import dataclasses
import functools
import math
from dataclasses import dataclass, field

from perf import cost
from perf.assumptions import DEFAULT, Assumptions
from perf.gpu import roofline, usd_per_second
from perf.gpu_measured import beside_roofline
from perf.installs import install_cycles, megatron_splits
from perf.models import MODELS, ModelShape
from perf.work import attention_macs, gemm_macs, gemms, kv_bytes_per_token, vxu_passes
from spec import isa
from spec.config import PRESETS, ChipConfig

__all__ = ["estimate", "Estimate", "model_shape", "gemm_time", "sram_layout", "link_use", "scratch_bytes"]


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


ACC_BYTES = 4   # a partial sum travels as the MXU's int32 result (spec.mxu)
_SHARED_INPUT = {"q": "qkv", "k": "qkv", "v": "qkv", "gate": "ffn in", "up": "ffn in"}


def hops(t, links):
    """Hops across a group of ``t`` chips of ``links`` links each: the Moore bound, the fewest ``h`` with
    ``1 + links · Σ_{i<h} (links - 1)^i >= t`` (a fully connected group of up to ``links + 1`` chips: 1 hop)."""
    if t <= 1:
        return 0
    if links <= 1:
        return t - 1
    h, reach, frontier = 0, 1, 1
    while reach < t:
        frontier = links if h == 0 else frontier * (links - 1)
        reach, h = reach + frontier, h + 1
    return h


def divisors(t):
    return [d for d in range(1, t + 1) if t % d == 0]


def exchange_s(t, reduce_bytes, gather_bytes, a):
    """Seconds of one exchange of activations across a group of ``t`` chips: a phase for the partial sums
    (``reduce_bytes`` received by each chip) if any, a phase for the outputs (``gather_bytes``) if any, each
    ``h · (latency + bytes / (min(links, t - 1) · bandwidth))`` with ``h = hops(t, links)``."""
    if t <= 1:
        return 0.0
    links = int(a.tsp.links_per_chip.value)
    h, bw = hops(t, links), min(links, t - 1) * a.tsp.link_gbytes_s.value * 1e9
    lat = a.tsp.link_latency_us.value * 1e-6
    return sum(h * (lat + b / bw) for b in (reduce_bytes, gather_bytes) if b)


def _gemm_bytes(M, N, tk, tn):
    """``(reduce, gather)`` bytes each chip receives after a GEMM split ``tk`` ways by K, ``tn`` by columns
    over ``t = tk · tn`` chips: a reduce-scatter of the int32 partial sums of its ``ceil(N / tn)`` columns
    (its ``1 / tk`` of them from each of ``tk - 1`` peers), then an all-gather of the int8 outputs it lacks."""
    t, Nc = tk * tn, -(-N // tn)
    return ((tk - 1) * M * -(-Nc // tk) * ACC_BYTES if tk > 1 else 0), (M * (N - -(-N // t)) if t > 1 else 0)


def gemm_splits(m, c, a, t, M):
    """``{name: (tk, tn)}``: each GEMM's split over a group of ``t`` chips (``tk · tn = t``), the one of least
    ``gemm_time`` of its ``ceil(K/tk) × ceil(N/tn)`` share plus its own exchange (ties: fewer K parts)."""
    f, out = c.clock_mhz * 1e6, {}
    for name, K, N, _ in gemms(m):
        def cost_of(tk, K=K, N=N):
            tn = t // tk
            return gemm_time(M, -(-K // tk), -(-N // tn), c)[0] / f + exchange_s(t, *_gemm_bytes(M, N, tk, tn), a)
        tk = min(divisors(t), key=lambda tk: (cost_of(tk), tk))
        out[name] = (tk, t // tk)
    return out


def _step(m, c, a, t, stages, splits, users, rows, ctx):
    """Seconds of one pass of ``users × rows`` tokens through ``stages`` pipeline stages of tensor groups of
    ``t`` chips (``splits`` from ``gemm_splits``), where they go, the GEMM methods and the link traffic."""
    f = c.clock_mhz * 1e6
    M = users * rows
    total = comp = 0.0
    methods = set()
    exchanges: dict = {}
    for name, K, N, count in gemms(m):
        tk, tn = splits[name]
        cyc, cc, method = gemm_time(M, -(-K // tk), -(-N // tn), c)
        total, comp = total + cyc * count, comp + cc * count
        methods.add(method)
        r, g = _gemm_bytes(M, N, tk, tn)
        key = _SHARED_INPUT.get(name, name)
        er, eg, _ = exchanges.get(key, (0, 0, count))
        exchanges[key] = (er + r, eg + g, count)
    at, ac = _attention(m, c, users, rows, ctx)
    at, ac = at / t, ac / t
    if not m.learned_positions:     # rotate_half as a GEMM by a head_dim² permutation, for queries and keys
        for heads in (m.n_heads, m.n_kv_heads):
            cyc, cc, _ = gemm_time(M * -(-heads // t), m.head_dim, m.head_dim, c)
            total, comp = total + cyc * m.layers, comp + cc * m.layers
    if t > 1:
        exchanges["attention"] = (0, M * (m.d_model - -(-m.d_model // t)), m.layers)
    vxu = _vxu(m, c, M, ctx)
    hop = a.tsp.link_latency_us.value * 1e-6 + M * m.d_model / (a.tsp.link_gbytes_s.value * 1e9)
    pipe = stages * hop
    coll = sum(exchange_s(t, r, g, a) * n for r, g, n in exchanges.values())
    links = int(a.tsp.links_per_chip.value)
    h = hops(t, links)
    detail = {"pipeline_hops": stages, "pipeline_s": pipe, "hops_per_exchange": h,
              "exchanges_per_token": sum(n for _, _, n in exchanges.values()) if t > 1 else 0,
              "exchange_s": coll,
              "exchange_bytes_per_chip": sum((r + g) * n for r, g, n in exchanges.values()) if t > 1 else 0,
              "link_bytes": stages * M * m.d_model + (t * h * sum((r + g) * n for r, g, n in exchanges.values())
                                                      if t > 1 else 0)}
    times = {"compute": (comp + ac) / f, "weight_installs": (total - comp + at - ac) / f, "vxu": vxu / f,
             "links": pipe + coll}
    return sum(times.values()), times, sorted(methods), detail


def _plan(m, c, a, t, stages, batch, prompt, tokens):
    """Every figure of one mapping: ``stages`` pipeline stages of tensor groups of ``t`` chips."""
    chips = t * stages
    ctx = prompt + tokens / 2
    splits = gemm_splits(m, c, a, t, batch) if t > 1 else {n: (1, 1) for n, *_ in gemms(m)}
    step, times, methods, links = _step(m, c, a, t, stages, splits, batch, 1, math.ceil(ctx))
    ttft, _, _, _ = _step(m, c, a, t, stages, splits, batch, prompt, prompt)
    tok_s = batch / step
    e = a.energy
    act = 0     # activations read once per column tile of each chip's share
    for name, K, N, n in gemms(m):
        tk, tn = splits[name]
        act += batch * -(-K // tk) * -(-math.ceil(N / tn) // c.mxu_cols) * t * n
    sram_read = m.weight_bytes(8) + batch * ctx * kv_bytes_per_token(m) + act
    joules = (batch * (gemm_macs(m) + attention_macs(m, ctx)) * e.int8_mac_pj.value
              + sram_read * e.sram_read_pj_per_byte.value
              + links["link_bytes"] * 8 * e.link_pj_per_bit.value) * 1e-12
    board = chips * a.tsp.board_w.value
    usd_s = usd_per_second(chips, a.tsp.price_usd.value, a.tsp.board_w.value, a.economics)
    return dict(chips=chips, tensor_group=t, stages=stages, step_s=step, time_to_first_token_s=ttft,
                tokens_per_s_per_user=1 / step, tokens_per_s=tok_s, tokens_per_joule=batch / joules,
                tokens_per_joule_board=tok_s / board,
                usd_per_million_tokens=usd_s / (tok_s * a.economics.utilisation.value) * 1e6,
                time_split={k: v / step for k, v in times.items()}, gemm_methods=methods, links=links,
                gemm_splits={k: list(v) for k, v in splits.items()}, bytes_read_per_step=sram_read)


def _stream(m, batch, positions):
    """``[(kind, bytes)]``: the model's int8 bytes in pipeline order (the embedding, each layer's weights then
    its KV cache of ``batch`` users at ``positions`` positions, the final norm and the head); they sum to
    ``weight_bytes(8) + batch · positions · kv_bytes_per_token``."""
    d = m.d_model
    embed = m.vocab * d + (m.context * d if m.learned_positions else 0)
    out = [("weights", embed)]
    for _ in range(m.layers):
        out += [("weights", m.layer_params()), ("kv", batch * positions * 2 * m.kv_dim)]
    return out + [("weights", (2 * d if m.bias else d) + (0 if m.tied else m.vocab * d))]


def scratch_bytes(m, t, splits, batch, positions, head=False):
    """Bytes of one decode step's activations on a chip of a tensor group of ``t`` (1: the pipeline): the
    residual and its normed copy (``2 · d_model``), the widest GEMM output once gathered (the head's logits
    only on the last stage, ``head=True``), the attention scores of the chip's ``ceil(n_heads / t)`` heads at
    the full context, all int8, per user; and the int32 partial sums of the widest K-split GEMM share
    (``4 · ceil(N / tn)`` per user, if any GEMM is split by K)."""
    widest = max(N for name, _, N, _ in gemms(m) if head or name != "head")
    partial = max((ACC_BYTES * -(-N // splits[name][1]) for name, _, N, _ in gemms(m) if splits[name][0] > 1),
                  default=0)
    return batch * (2 * m.d_model + widest + -(-m.n_heads // t) * positions + partial)


def sram_layout(m, c, t, stages, splits, batch, prompt, tokens):
    """SRAM of every chip (``docs/perf.md``): the byte stream of ``_stream`` cut into ``stages`` equal contiguous
    parts (a layer may straddle two stages); each of the ``t`` chips of a stage holds ``1 / t`` of its part,
    plus its share of the GEMM tiles' rounding (``t · ceil(K/tk) · ceil(N/tn) - K · N`` bytes a GEMM over the
    group, apportioned to the stages by their weight bytes), plus the decode step's ``scratch_bytes``.
    Returns ``(per_stage, scratch)``: one entry a stage, every chip of which holds the same, and the largest
    scratch of a chip."""
    S = len(c.positions("mem")) * c.mem_bytes_per_slice
    positions = prompt + tokens
    stream = _stream(m, batch, positions)
    total = sum(b for _, b in stream)
    W = m.weight_bytes(8)
    extra = sum((t * -(-K // splits[n][0]) * -(-N // splits[n][1]) - K * N) * cnt for n, K, N, cnt in gemms(m))
    cuts = [s * total // stages for s in range(stages + 1)]
    out, i, start = [], 0, 0          # stream item i begins at byte start
    for s in range(stages):
        lo, hi = cuts[s], cuts[s + 1]
        held = {"weights": 0, "kv": 0}
        while i < len(stream) and start < hi:
            kind, b = stream[i]
            held[kind] += min(start + b, hi) - max(start, lo)
            if start + b <= hi:
                i, start = i + 1, start + b
            else:
                break
        w = -(-(held["weights"] + extra * held["weights"] // W) // t)
        kv = -(-held["kv"] // t)
        scratch = scratch_bytes(m, t, splits, batch, positions, head=s == stages - 1)
        used = w + kv + scratch
        out.append({"stage": s, "chips": t, "first_chip": s * t, "weight_bytes": w, "kv_bytes": kv,
                    "scratch_bytes": scratch, "used_bytes": used, "capacity_bytes": S, "utilisation": used / S})
    return out, max(x["scratch_bytes"] for x in out)


def link_use(m, a, t, stages, links, batch, step_s):
    """Each link's busy fraction in a decode step of ``step_s`` seconds: bytes it moves / (bandwidth · step).
    The pipeline's ``stages`` hops (stage ``s`` to ``s + 1``, the last back to the first) carry ``batch ·
    d_model`` bytes each; in a tensor group every chip spreads its exchanges (``exchange_bytes_per_chip /
    stages``: its stage's share of the layers) and the relays through it (``× hops``) evenly over
    ``min(links_per_chip, t - 1)`` links."""
    bw = a.tsp.link_gbytes_s.value * 1e9
    hop = batch * m.d_model
    per = [{"link": f"stage {s} -> stage {(s + 1) % stages}" + (" (the sampled token back to the first)"
                                                                 if s == stages - 1 else ""),
            "kind": "pipeline", "count": 1, "bytes_per_step": hop, "busy": hop / (bw * step_s)}
           for s in range(stages)]
    if t > 1:
        n = min(int(a.tsp.links_per_chip.value), t - 1)
        b = links["hops_per_exchange"] * links["exchange_bytes_per_chip"] / (stages * n)
        per.append({"link": f"each of the {n} group links of every chip ({t} chips a group, {stages} group(s))",
                    "kind": "group", "count": n * t * stages, "bytes_per_step": b, "busy": b / (bw * step_s)})
    return {"per_link": per, "busy_max": max(x["busy"] for x in per),
            "pipeline_busy": hop / (bw * step_s), "group_busy": per[-1]["busy"] if t > 1 else 0.0}


def _summary(p):
    keys = ("chips", "tensor_group", "stages", "step_s", "time_to_first_token_s", "tokens_per_s_per_user",
            "tokens_per_s", "tokens_per_joule", "tokens_per_joule_board", "usd_per_million_tokens", "time_split")
    return {k: p[k] for k in keys}


def _groups(chips, needed):
    """The tensor groups ``t >= 2`` worth trying on ``chips`` chips: ``t = chips // s`` for ``s`` stages,
    where ``(chips // t) · t`` chips still hold the model."""
    return sorted({chips // s for s in range(1, chips + 1)
                   if chips // s >= 2 and (chips // (chips // s)) * (chips // s) >= needed})


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
    split: str = "pipeline"
    split_reason: str = ""
    tensor_group: int = 1
    stages: int = 0
    links: dict = field(default_factory=dict)
    gemm_splits: dict = field(default_factory=dict)
    alternatives: dict = field(default_factory=dict)
    assumptions: dict = field(default_factory=dict, repr=False)
    #: a compiled program (``compiler.lm.LMProgram``): its exact cycles per step (prefill first, then each
    #: decode step: ``Generation.predicted_cycles``), the host edge's, and this model's error on the step
    compiled: bool = False
    step_cycles: list = field(default_factory=list)
    host_cycles: list = field(default_factory=list)
    model_step_cycles: int | None = None
    model_error: float | None = None
    #: a compiled program: the weight rows its busiest chip installs a step (``LMProgram.install_cycles``) and
    #: ``perf.installs``' closed form of them (equal: ``tests/test_perf_estimate.py``)
    install_cycles: int | None = None
    model_install_cycles: int | None = None
    #: ``estimate`` chose the chips (none given): the bytes' bound ``chips_needed``, plus what the tiles'
    #: rounding and the step's scratch took on top
    chips_auto: bool = False

    @property
    def mapping(self):
        if self.tensor_group == 1:
            return "pipeline by layers"
        return f"tensor groups of {self.tensor_group} chips in {self.stages} pipeline stage(s)"

    def to_json(self):
        return dict(self.__dict__, mapping=self.mapping)


SPLITS = ("pipeline", "tensor", "auto")


def _positive(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive integer, not {v!r}")


def line_allreduce_cycles(m, c, t):
    """Cycles of one all-reduce of a ``d_model``-wide int32 row over a line of ``t`` chips of ``c`` (as
    ``compiler.system.transfer.allreduce_line`` does it: both ways along the line at once, one trip of ``t - 1``
    hops), each hop ``c.link_latency`` plus the row's ``ceil(d_model / lanes)`` vectors at one a
    ``c.link_interval``."""
    if t <= 1:
        return 0
    return (t - 1) * (c.link_latency + -(-m.d_model // c.lanes) * c.link_interval)


def _compiled_step_cycles(m, c, a, t, splits, ctx):
    """The closed form of a compiled decode step on ``t`` chips of ``c`` (a line; one chip: ``t = 1``): the
    chip's work of ``_step`` (GEMMs, attention, vector passes) with ``splits`` and the context ``ctx``, then,
    instead of ``_step``'s links, what the compiled step sends: two all-reduces a layer (the attention's output
    projection's and the FFN's last GEMM's partial sums) over the line, no pipeline hop (the host writes
    every chip's token)."""
    _, times, _, _ = _step(m, c, a, t, 1, splits, 1, 1, ctx)
    on_chip = sum(v for k, v in times.items() if k != "links") * c.clock_mhz * 1e6
    return round(on_chip) + 2 * m.layers * line_allreduce_cycles(m, c, t)


def _compiled(lm, prompt, tokens, assumptions):
    """``estimate`` of a compiled language model (an ``LMProgram``, read by duck typing: ``perf`` imports only
    ``spec``): the closed form on its shape and config, then the timing figures from its exact cycles (the
    decode step, every position the same, plus the host edge's words a step), the cost and board-power figures
    scaled by the same ratio, and ``model_error`` = closed-form step / exact step - 1. A program compiled for
    several chips (``compile_lm(chips=N)``: a tensor-parallel decode step) is compared with the closed form's
    tensor split over a group of that many chips."""
    m = ModelShape(**lm.perf_shape())
    n = int(getattr(lm, "chips", 1))
    split = dict(split="tensor", tensor_group=n) if n > 1 else {}
    e = estimate(m, lm.config, chips=n, batch=1, prompt=prompt, tokens=tokens, assumptions=assumptions, **split)
    S, H = int(lm.step_cycles), int(lm.host_words)
    hz = lm.config.clock_mhz * 1e6
    step_s = (S + H) / hz
    ratio = step_s / e.step_s
    # the closed form of this program's step: its chips' mapping (compiler.system.decode's splits) and its
    # whole context (one program serves every position, attending over all of them, masked)
    splits = megatron_splits(m, n)
    model_cycles = _compiled_step_cycles(m, lm.config, assumptions, n, splits, lm.context)
    return dataclasses.replace(
        e, step_s=step_s, time_to_first_token_s=prompt * step_s, tokens_per_s_per_user=1 / step_s,
        tokens_per_s=1 / step_s, usd_per_million_tokens=e.usd_per_million_tokens * ratio,
        tokens_per_joule_board=e.tokens_per_joule_board / ratio, compiled=True,
        links=dict(e.links, **link_use(m, assumptions, e.tensor_group, e.stages, e.links, 1, step_s)),
        step_cycles=[prompt * S] + [S] * (tokens - 1), host_cycles=[prompt * H] + [H] * (tokens - 1),
        model_step_cycles=model_cycles, model_error=model_cycles / (S + H) - 1,
        install_cycles=max(int(x) for x in lm.install_cycles),
        model_install_cycles=install_cycles(m, lm.config, n, splits, lm.context))


def estimate(model, config="tsp", chips=None, batch=1, prompt=128, tokens=128,
             assumptions: Assumptions = DEFAULT, split="pipeline", tensor_group=None):
    """The figures of ``model`` (a ``ModelShape`` or its name) on ``config`` (module docstring).

    ``split``: ``"pipeline"`` (layers over chips), ``"tensor"`` (every layer's matrices over groups of
    ``tensor_group`` chips, the fastest group when ``None``, groups in pipeline stages) or ``"auto"`` (the
    one of more tokens/s per user; ``split_reason`` says why, ``alternatives`` holds both)."""
    if hasattr(model, "step_cycles") and hasattr(model, "perf_shape"):
        return _compiled(model, prompt, tokens, assumptions)
    m, c, a = model_shape(model), _pick(config, ChipConfig, PRESETS, "config"), assumptions
    for name, v in (("batch", batch), ("prompt", prompt), ("tokens", tokens)):
        _positive(name, v)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    if tensor_group is not None:
        _positive("tensor_group", tensor_group)
        if split == "pipeline" and tensor_group != 1:
            raise ValueError(f"tensor_group must be 1 (or None) with split='pipeline', not {tensor_group}")
    if prompt + tokens > m.context:
        raise ValueError(f"prompt + tokens must be at most {m.name}'s context of {m.context}, not {prompt + tokens}")
    if not c.positions("mxu") or not c.positions("vxu"):
        raise ValueError(f"config must have an MXU and a VXU slice, not {c.name}")
    sram = len(c.positions("mem")) * c.mem_bytes_per_slice
    weights, kv = m.weight_bytes(8), batch * (prompt + tokens) * kv_bytes_per_token(m)
    needed = math.ceil((weights + kv) / sram)
    if chips is None and tensor_group is not None and split != "pipeline":
        chips = -(-needed // tensor_group) * tensor_group
    elif chips is None:
        chips = needed
    elif isinstance(chips, bool) or not isinstance(chips, int) or chips < needed:
        raise ValueError(f"chips must be an integer of at least {needed} (the chips that hold {m.name}'s "
                         f"{weights + kv:,} bytes of weights and KV cache), not {chips!r}")
    else:
        return _estimate_on(m, c, a, chips, needed, batch, prompt, tokens, split, tensor_group)
    # the fewest chips: the bytes' bound, then more while a chip's share with the tiles' rounding and the
    # step's scratch does not fit (in whole tensor groups when one is given)
    step = tensor_group if tensor_group is not None and split != "pipeline" else 1
    e = _estimate_on(m, c, a, chips, needed, batch, prompt, tokens, split, tensor_group)
    for _ in range(MAX_EXTRA_CHIPS):
        if e.sram["fits"]:
            break
        chips += step
        e = _estimate_on(m, c, a, chips, needed, batch, prompt, tokens, split, tensor_group)
    return dataclasses.replace(e, chips_auto=True)


#: ``estimate`` without ``chips``: how many times it adds chips (a tensor group at a time) past the bytes'
#: bound while the layout does not fit, before it reports the layout as it is (``sram["fits"]`` false).
MAX_EXTRA_CHIPS = 64


def _estimate_on(m, c, a, chips, needed, batch, prompt, tokens, split, tensor_group):
    """``estimate`` on ``chips`` chips (checked), ``needed`` the bytes' bound."""
    sram = len(c.positions("mem")) * c.mem_bytes_per_slice
    weights, kv = m.weight_bytes(8), batch * (prompt + tokens) * kv_bytes_per_token(m)
    args = (m, c, a)
    plans = {}
    if split in ("pipeline", "auto"):
        plans["pipeline"] = _plan(*args, 1, chips, batch, prompt, tokens)
    if split in ("tensor", "auto"):
        if tensor_group is not None:
            if tensor_group > chips or (chips // tensor_group) * tensor_group < needed:
                raise ValueError(f"tensor_group must leave at least {needed} chips in whole groups of {chips} "
                                 f"chips, not {tensor_group}")
            groups = [tensor_group]
        else:
            groups = _groups(chips, needed) or [chips]
        tried = {t: _plan(*args, t, chips // t, batch, 1, 1)["step_s"] for t in groups}
        best = min(tried, key=lambda t: (tried[t], t))
        plans["tensor"] = _plan(*args, best, chips // best, batch, prompt, tokens)
    if split == "auto":
        pick = max(plans, key=lambda k: (plans[k]["tokens_per_s_per_user"], k == "pipeline"))
        other = "tensor" if pick == "pipeline" else "pipeline"
        p, q = plans[pick], plans[other]
        reason = (f"{pick}: {p['tokens_per_s_per_user']:,.1f} tokens/s per user against "
                  f"{q['tokens_per_s_per_user']:,.1f} for the {other} split ({plans['tensor']['tensor_group']} "
                  f"chips a tensor group, {plans['tensor']['stages']} stage(s), links "
                  f"{plans['tensor']['time_split']['links']:.0%} of its step; the pipeline's "
                  f"{chips} chips work one at a time)")
    else:
        pick, reason = split, f"{split}: asked for"
    p = plans[pick]
    known = m.name if MODELS.get(m.name) == m else None        # published measurements are of known shapes
    gpu = {}
    for g in ("h200", "h100"):
        gpu[g] = roofline(m, getattr(a, g), a.economics, batch, prompt, tokens)
        gpu[g]["measured"] = beside_roofline(known, g, getattr(a, g), a.economics, prompt, tokens) if known else []
    t, stages = p["tensor_group"], p["stages"]
    per_chip, scratch = sram_layout(m, c, t, stages, p["gemm_splits"], batch, prompt, tokens)
    links = dict(p["links"], **link_use(m, a, t, stages, p["links"], batch, p["step_s"]))
    return Estimate(
        model=m.name, config=c.name, chips=p["chips"], chips_needed=needed, batch=batch, prompt=prompt,
        tokens=tokens, step_s=p["step_s"], time_to_first_token_s=p["time_to_first_token_s"],
        tokens_per_s_per_user=p["tokens_per_s_per_user"], tokens_per_s=p["tokens_per_s"],
        tokens_per_joule=p["tokens_per_joule"], tokens_per_joule_board=p["tokens_per_joule_board"],
        usd_per_million_tokens=p["usd_per_million_tokens"], time_split=p["time_split"],
        gemm_methods=p["gemm_methods"],
        sram={"bytes_per_chip": sram, "weight_bytes": weights, "kv_bytes": kv,
              "utilisation": (weights + kv) / (p["chips"] * sram), "bytes_read_per_step": p["bytes_read_per_step"],
              "scratch_bytes_per_chip": scratch, "max_utilisation": max(x["utilisation"] for x in per_chip),
              "fits": all(x["used_bytes"] <= sram for x in per_chip), "per_chip": per_chip},
        gpu=gpu, split=pick, split_reason=reason, tensor_group=p["tensor_group"], stages=p["stages"],
        links=links, gemm_splits=p["gemm_splits"],
        alternatives={k: _summary(v) for k, v in plans.items()}, assumptions=a.to_dict())
