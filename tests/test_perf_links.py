"""SRAM and link utilisation per chip (issue 12, item 3) and the published measured GPU figures (item 5)."""
import json

import pytest

from cli.main import main
from perf import gpu_measured
from perf.assumptions import DEFAULT
from perf.estimate import estimate
from perf.gpu import roofline
from perf.models import MODELS, ModelShape
from perf.work import kv_bytes_per_token
from spec.config import PRESETS

TSP = PRESETS["tsp"]
SRAM = len(TSP.positions("mem")) * TSP.mem_bytes_per_slice
BW = DEFAULT.tsp.link_gbytes_s.value * 1e9
#: one layer-pair GELU model small enough to count by hand: d_model 640, d_ff 1280, 2 heads, vocabulary 640
TWO = ModelShape("two", 2, 640, 2, 2, 1280, "gelu", 640, 64, tied=False)


def _all_chips(e):
    """Every chip's entry (a stage's entry stands for each of its chips)."""
    return [x for x in e.sram["per_chip"] for _ in range(x["chips"])]


# ---- SRAM ----------------------------------------------------------------------------------------------
def test_pipeline_sram_by_hand():
    """TWO over a pipeline of 3 chips, batch 1, 4 + 4 positions. Bytes in pipeline order (int8, GPT-2 style):
    embedding 640·640 + 64·640 = 450,560; each layer 2 LayerNorms 2·1,280 + q k v o 4·(640·640 + 640) + up
    640·1280 + 1280 + down 1280·640 + 640 = 3,283,840, then its KV cache 8 · 2 · 640 = 10,240; the final norm
    1,280 + head 640·640 = 410,880. Total 7,449,600: 2,483,200 a chip."""
    e = estimate(TWO, chips=3, split="pipeline", prompt=4, tokens=4)
    assert e.chips == 3 and e.chips_needed == 1 and e.stages == 3
    assert TWO.weight_bytes(8) == 450_560 + 2 * 3_283_840 + 410_880 == 7_429_120
    # chip 0: the embedding and the first 2,032,640 B of layer 0's weights
    # chip 1: layer 0's other 1,251,200 B, its KV cache, then 1,221,760 B of layer 1's weights
    # chip 2: layer 1's other 2,062,080 B, its KV cache, the final norm and the head
    want = [(2_483_200, 0), (1_251_200 + 1_221_760, 10_240), (2_062_080 + 410_880, 10_240)]
    got = [(x["weight_bytes"], x["kv_bytes"]) for x in e.sram["per_chip"]]
    assert got == want
    scratch = 2 * 640 + 1280 + 2 * 8      # residual and normed copy, the widest GEMM output (up), 2 heads' scores
    assert e.sram["scratch_bytes_per_chip"] == scratch
    for x, (w, kv) in zip(e.sram["per_chip"], want):
        assert x["used_bytes"] == w + kv + scratch and x["utilisation"] == (w + kv + scratch) / SRAM
    assert e.sram["fits"] and e.sram["max_utilisation"] == max(x["utilisation"] for x in e.sram["per_chip"])


@pytest.mark.parametrize("name", ["llama-2-7b", "llama-2-70b", "gpt2-small"])
def test_more_chips_hold_less_each_and_every_byte_is_somewhere(name):
    m = MODELS[name]
    e = estimate(name, split="pipeline")
    more = estimate(name, split="pipeline", chips=2 * e.chips)
    for x in (e, more):
        chips = _all_chips(x)
        assert len(chips) == x.chips
        assert sum(c["weight_bytes"] for c in chips) == m.weight_bytes(8)
        assert sum(c["kv_bytes"] for c in chips) == (128 + 128) * kv_bytes_per_token(m)   # batch 1
    assert more.sram["max_utilisation"] < e.sram["max_utilisation"]
    assert more.sram["max_utilisation"] == pytest.approx(e.sram["max_utilisation"] / 2, rel=0.02)
    # the fewest chips are nearly full, and hold the whole model
    assert e.sram["fits"] and e.sram["max_utilisation"] > (e.chips - 1) / e.chips


def test_tensor_and_pipeline_layouts_differ_as_the_formulas_say():
    """The pipeline cuts the byte stream by layers, so the first chip holds the embedding and no KV cache; the
    tensor split gives every chip of a group 1/t of its stage plus the tiles' rounding, hence slightly more
    weight bytes in all than the model has, and fewer attention heads' scores a chip."""
    m = MODELS["llama-2-70b"]
    p = estimate("llama-2-70b", split="pipeline")
    t = estimate("llama-2-70b", split="tensor")
    kv = [x["kv_bytes"] for x in p.sram["per_chip"]]
    assert kv[0] == 0 < max(kv)           # the 262 MB embedding fills chip 0; layers' caches sit between weights
    assert len(t.sram["per_chip"]) == t.stages and all(x["chips"] == t.tensor_group for x in t.sram["per_chip"])
    held = sum(c["weight_bytes"] for c in _all_chips(t))
    assert m.weight_bytes(8) < held < 1.01 * m.weight_bytes(8)
    assert sum(c["weight_bytes"] for c in _all_chips(p)) == m.weight_bytes(8)
    assert t.sram["scratch_bytes_per_chip"] < p.sram["scratch_bytes_per_chip"]


def test_a_layout_that_does_not_fit_is_said():
    """Llama-3-70B on the fewest chips, one tensor group of all 307: the tiles' rounding needs more than 220 MiB."""
    e = estimate("llama-3-70b", split="tensor")
    over = [x for x in e.sram["per_chip"] if x["used_bytes"] > SRAM]
    assert e.sram["fits"] is (not over)
    assert e.sram["max_utilisation"] > 1 if over else e.sram["max_utilisation"] <= 1


# ---- links ---------------------------------------------------------------------------------------------
def test_link_busy_by_hand_on_two_chips():
    """TWO over one group of 2 chips: each chip's one group link carries its exchanges (1 hop, no relays),
    the pipeline hop back to the first stage carries d_model = 640 bytes; busy = bytes / (15 GB/s · step)."""
    e = estimate(TWO, chips=2, split="tensor", tensor_group=2, prompt=4, tokens=4)
    ln = e.links
    assert ln["hops_per_exchange"] == 1
    group = [x for x in ln["per_link"] if x["kind"] == "group"]
    (g,) = group
    assert g["count"] == 2 and g["bytes_per_step"] == ln["exchange_bytes_per_chip"]
    assert g["busy"] == pytest.approx(ln["exchange_bytes_per_chip"] / (BW * e.step_s), rel=1e-12)
    (hop,) = [x for x in ln["per_link"] if x["kind"] == "pipeline"]
    assert hop["bytes_per_step"] == 640 and hop["busy"] == pytest.approx(640 / (BW * e.step_s), rel=1e-12)
    assert ln["busy_max"] == max(g["busy"], hop["busy"])


@pytest.mark.parametrize("split, t", [("pipeline", None), ("tensor", 2), ("tensor", 10), ("tensor", 150),
                                      ("tensor", 300)])
def test_busy_fractions_are_fractions_and_below_the_links_share(split, t):
    e = estimate("llama-2-70b", split=split, tensor_group=t)
    ln = e.links
    for x in ln["per_link"]:
        assert 0 < x["busy"] <= 1, x
    # a link's transfer is part of the time the step spends on links (latencies and relays on top)
    assert ln["pipeline_busy"] * e.stages <= e.time_split["links"]
    assert ln["group_busy"] <= e.time_split["links"]
    if split == "pipeline":
        assert ln["group_busy"] == 0 and len(ln["per_link"]) == e.chips
    else:
        assert ln["group_busy"] > ln["pipeline_busy"]      # activations exchanged after every GEMM group


def test_group_links_get_busier_as_groups_grow_until_relays():
    busy = {t: estimate("llama-2-70b", split="tensor", tensor_group=t).links["group_busy"] for t in (2, 4, 10)}
    assert busy[2] < busy[4] < busy[10]


def test_the_json_holds_every_chip_and_link():
    j = estimate("llama-2-7b", split="pipeline").to_json()
    assert json.loads(json.dumps(j)) == j
    assert len(j["sram"]["per_chip"]) == j["chips"] and len(j["links"]["per_link"]) == j["chips"]
    assert {"weight_bytes", "kv_bytes", "scratch_bytes", "used_bytes", "capacity_bytes", "utilisation"} <= set(
        j["sram"]["per_chip"][0])


# ---- published measured GPU figures --------------------------------------------------------------------
def test_every_measured_figure_names_its_source_and_run():
    assert len(gpu_measured.MEASURED) >= 3
    for f in gpu_measured.MEASURED:
        assert f.source.startswith("https://") and f.what and f.date and f.precision and f.software, f.name
        assert f.model in MODELS and f.gpu in ("h100", "h200") and f.metric in gpu_measured.METRICS
    with pytest.raises(ValueError, match="metric must be one of tokens_per_s_per_user, time_to_first_token_s"):
        gpu_measured.Measured("x", "gpt", "gpt", "h100", 1, "speed", 1.0, "fp8", 1, 1, 1, "s", "d",
                              "https://x", "w")


def test_measured_beside_the_roofline_by_hand():
    """NIM's Llama-3.3-70B on 2 H100s (fp8, concurrency 1, 500 + 2000 tokens): 1000 / 18.91 ms tokens/s per
    user, beside the roofline of 2 H100s at a mean context of 1,500: (weights + 1,500 · KV a token) / 6.7 TB/s."""
    e = estimate("llama-3-70b")
    (f,) = [x for x in e.gpu["h100"]["measured"] if x["prompt"] == 500]
    m = MODELS["llama-3-70b"]
    assert f["value"] == pytest.approx(1000 / 18.91, abs=0.01) and f["gpus"] == 2
    roof = 1 / ((m.weight_bytes(8) + 1500 * kv_bytes_per_token(m)) / (2 * 3.35e12))
    assert f["roofline"] == pytest.approx(roof, rel=1e-12)
    for g in ("h100", "h200"):
        for x in e.gpu[g]["measured"]:
            assert 0 < x["of_roofline"] < 1, x["name"]          # nothing beats the roofline
    assert estimate("llama-2-7b").gpu["h200"]["measured"] == []
    impostor = ModelShape("llama-3-70b", 2, 64, 4, 4, 176, "swiglu", 103, 64, tied=False)
    assert estimate(impostor, prompt=8, tokens=8).gpu["h100"]["measured"] == []   # only of the published shape


def test_roofline_on_more_gpus():
    m = MODELS["llama-2-7b"]
    one = roofline(m, DEFAULT.h100, DEFAULT.economics, 1, 1, 2)
    two = roofline(m, DEFAULT.h100, DEFAULT.economics, 1, 1, 2, gpus=2)
    assert two["gpus"] == 2 and two["step_s"] == pytest.approx(one["step_s"] / 2)
    with pytest.raises(ValueError, match="gpus must be an integer of at least 1"):
        roofline(m, DEFAULT.h100, DEFAULT.economics, 1, 1, 2, gpus=0)


def test_the_report_shows_utilisation_and_measured_figures(capsys):
    assert main(["perf", "llama-3-70b", "--split", "tensor"]) == 0
    text = capsys.readouterr().out
    assert "  SRAM a chip  up to " in text and "  links busy   up to " in text
    assert text.count("measured: ") == len([f for f in gpu_measured.MEASURED if f.model == "llama-3-70b"])
    assert len(text.splitlines()) <= 24
    assert main(["perf", "gpt2-small"]) == 0
    assert "measured: no published figure of gpt2-small" in capsys.readouterr().out


def test_the_logits_sit_on_the_last_stage_only():
    """Llama-3-70B's head (128,256 logits a user) is wider than any other GEMM output (d_ff 28,672): only the
    last stage's chips hold the logits of the batch."""
    e = estimate("llama-3-70b", split="pipeline", batch=2)
    scratch = [x["scratch_bytes"] for x in e.sram["per_chip"]]
    assert scratch[-1] - scratch[0] == 2 * (128_256 - 28_672) and len(set(scratch[:-1])) == 1
    assert e.sram["scratch_bytes_per_chip"] == scratch[-1]
