"""A language model's decode step in tensor parallel over a line of chips (issue 11; compiler/system/decode.py).

* the split: heads (q, k, v columns, KV caches, the output projection's rows) and MLP columns (up/gate
  columns, the down projection's rows) per chip, found by the dataflow; everything else replicated;
* golden: both reference models on 2-4 chips generate the int8 reference's tokens (so the same tokens as one
  chip), every step in exactly the predicted cycles, fewer than one chip's; random decoders on 2-4 chips
  (hypothesis) equal to the reference at every step;
* the RTL: a 3-chip system of an 8-lane configuration generating on Verilator, equal to golden word for word
  and cycle for cycle;
* save/load, the CLI (`conveyor demo lm --chips`, `conveyor compile --chips` of a MODEL.py) and the errors.
"""
import dataclasses
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sim.lm_run  # noqa: F401  (registers the "lm" runner)
from cli.main import main
from compiler.lm import LMProgram, compile_lm
from compiler.system.decode import lower_decode_system
from demos.lm import text, train
from demos.lm.models import build
from spec.config import PRESETS
from tests.lm_checks import assert_golden_equals_the_reference

#: 8 lanes and MXU columns (head_dim 8): a system of three builds in a few minutes.
LM8 = dataclasses.replace(PRESETS["small"], name="lm8", lanes=8, mxu_rows=8, mxu_cols=8, mem_depth=256)


def _compiled(arch, chips, pick="host"):
    model, _ = train.load_or_train(arch)
    tr, _ = text.split()
    return compile_lm(model, 64, "small", calibration=tr[:64 * 32], chips=chips, pick=pick)


@pytest.fixture(scope="module")
def one():
    return {arch: _compiled(arch, 1) for arch in ("gpt", "llama")}


@pytest.fixture(scope="module", params=["gpt", "llama"])
def four(request):
    return request.param, _compiled(request.param, 4)


def test_the_split_divides_heads_and_mlp_columns(four):
    arch, lm = four
    assert lm.chips == 4 and len(lm.parts) == 4
    assert len(lm.split) == 5                             # 2 layers x (attention, MLP), the head
    att, mlp = lm.split[0], lm.split[1]
    assert lm.split[4] == ("head -> the logits, read by the host from every chip (chip 0: columns 0-31, chip 1: "
                           "columns 32-63, chip 2: columns 64-95, chip 3: columns 96-102)")
    assert lm.logit_chips == [0, 1, 2, 3]
    assert "-> blocks_0_attn_proj (chip 0: heads 0-0, chip 1: heads 1-1, chip 2: heads 2-2, chip 3: heads 3-3)" in att
    if arch == "gpt":                                     # 256 hidden columns: 4 tiles each
        assert mlp == ("blocks_0_fc -> blocks_0_proj (chip 0: columns 0-63, chip 1: columns 64-127, chip 2: columns "
                       "128-191, chip 3: columns 192-255)")
    else:                                                 # 176 = 11 tiles: 3, 3, 3, 2
        assert mlp.startswith("blocks_0_gate + blocks_0_up -> blocks_0_down (chip 0: columns 0-47")
        assert mlp.endswith("chip 3: columns 144-175)")
    words = lm.link_words
    assert set(words) == {f"c{k}.east->c{k + 1}.west" for k in range(3)} | {f"c{k + 1}.west->c{k}.east"
                                                                             for k in range(3)}
    # four all-reduces of a 64-wide row (4 words), each two reductions at once: 4 words each way on every link
    assert set(words.values()) == {16}


@pytest.mark.parametrize("chips", [2, 4])
def test_golden_generates_the_reference_tokens_in_the_predicted_cycles(one, chips):
    for arch in ("gpt", "llama"):
        lm = _compiled(arch, chips)
        g = lm.generate(text.encode("The "), 8)
        assert g.tokens == g.reference, arch
        assert g.tokens == one[arch].generate(text.encode("The "), 8).tokens    # the same tokens as one chip
        assert g.cycles == g.predicted_cycles
        assert g.cycles[1:] == [lm.step_cycles] * 7
        # the split pays: each chip installs a quarter (a half) of the big matrices' tiles
        assert lm.step_cycles < one[arch].step_cycles * (0.7 if chips == 2 else 0.6), (lm.chip_cycles, arch)


def test_the_chips_pick_greedily_the_same_tokens(one):
    lm = _compiled("gpt", 3, pick="chip")
    assert lm.logit_chips == [0] and not any(line.startswith("head") for line in lm.split)   # every chip: all
    g = lm.generate(text.encode("class "), 6)
    assert g.tokens == g.reference == one["gpt"].generate(text.encode("class "), 6).tokens
    assert g.cycles == g.predicted_cycles


@st.composite
def decoders(draw):
    arch = draw(st.sampled_from(["gpt", "llama"]))
    heads = draw(st.integers(2, 4))
    d_ff = draw(st.sampled_from([40, 64, 100]))
    chips = draw(st.integers(2, min(heads, -(-d_ff // 16))))
    return arch, dict(n_layer=draw(st.integers(1, 2)), n_head=heads, d_model=16 * heads, d_ff=d_ff,
                      context=draw(st.sampled_from([16, 32])), vocab_size=draw(st.sampled_from([5, 37]))), chips, \
        draw(st.integers(0, 2**16))


@settings(max_examples=10, deadline=None, derandomize=True, database=None)
@given(decoders())
def test_random_decoders_on_several_chips_equal_the_reference(case):
    """Random decoder-only models (heads, MLP widths across tile boundaries and uneven shares, layers, contexts)
    on 2-4 chips: every step's logits equal the int8 reference's, every step in exactly the predicted cycles."""
    arch, cfg, chips, seed = case
    print(arch, cfg, f"chips {chips}", f"seed {seed}")
    torch.manual_seed(seed)
    model = build(arch, cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    rng = np.random.default_rng(seed)
    lm = compile_lm(model, cfg["context"], "small", calibration=rng.integers(0, cfg["vocab_size"], 8 * cfg["context"]),
                    chips=chips)
    assert lm.chips == chips
    prompt = [int(t) for t in rng.integers(0, cfg["vocab_size"], 2)]
    assert_golden_equals_the_reference(lm, prompt)


def _small_decoder(arch="llama", seed=1, heads=2):
    cfg = dict(n_layer=1, n_head=heads, d_model=8 * heads, d_ff=24, context=16, vocab_size=20)
    torch.manual_seed(seed)
    model = build(arch, cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    return model, np.random.default_rng(seed).integers(0, 20, 8 * 16)


def test_rtl_of_three_chips_generates_equal_to_golden():
    """Three 8-lane chips (head_dim 8; the middle one taps the running sums of both reductions) on Verilator:
    every step's logits and each chip's cycles equal golden's."""
    model, cal = _small_decoder(heads=3)
    lm = compile_lm(model, 16, LM8, calibration=cal, chips=3)
    g = lm.generate([1, 2], 6, backend="verilator")
    assert g.match, g.mismatch
    assert g.tokens == g.reference
    assert g.cycles == g.predicted_cycles


def test_save_and_load_a_system_generate_the_same(tmp_path):
    model, cal = _small_decoder("gpt", 2)
    lm = compile_lm(model, 16, LM8, calibration=cal, chips=2)
    lm.save(tmp_path / "lm")
    meta = json.loads((tmp_path / "lm" / "lm.json").read_text())
    assert len(meta["parts"]) == 1 and meta["split"] == lm.split
    back = LMProgram.load(tmp_path / "lm")
    assert back.chips == 2 and back.chip_cycles == lm.chip_cycles and back.link_words == lm.link_words
    a, b = lm.generate([3, 4], 4), back.generate([3, 4], 4)
    assert a.tokens == b.tokens == a.reference and b.cycles == a.cycles


def test_errors_name_what_is_wrong():
    model, cal = _small_decoder()
    with pytest.raises(ValueError, match=r"attention '.+': 2 heads cannot be divided among 3 chips: each needs at "
                                         r"least one of the 2 heads \(compile for fewer chips\)"):
        compile_lm(model, 16, LM8, calibration=cal, chips=3)
    with pytest.raises(ValueError, match=r"chips must be an integer between 1 and 64, not 65"):
        compile_lm(model, 16, LM8, calibration=cal, chips=65)
    wide, cal = _small_decoder(heads=4)
    with pytest.raises(ValueError, match=r"linear '.+': 24 columns cannot be divided among 4 chips: each needs at "
                                         r"least one of the 3 tiles of 8 columns \(compile for fewer chips\)"):
        compile_lm(wide, 16, LM8, calibration=cal, chips=4)
    with pytest.raises(ValueError, match=r"chips must be an integer between 2 and 64 for a tensor-parallel decode "
                                         r"step, not 1"):
        lower_decode_system(None, None, LM8, 1)


def test_conveyor_demo_lm_on_chips_reports_the_speedup(tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = main(["demo", "lm", "--chips", "2", "--backend", "golden", "--tokens", "4", "--json", str(out)])
    text_out = capsys.readouterr().out
    assert rc == 0
    r = json.loads(out.read_text())
    assert (r["link_latency"], r["link_interval"]) == (16, 4)
    assert r["chips"] == 2 and r["tokens_match"] and len(r["chip_cycles"]) == 2
    assert r["decode_cycles"] == r["predicted_decode_cycles"] == [max(r["chip_cycles"])] * 3
    assert r["speedup_over_one_chip"] == pytest.approx((r["one_chip_step_cycles"] + r["one_chip_host_words_per_step"])
                                                       / (r["step_cycles"] + r["host_words_per_step"]))
    # the host reads each chip's share of the logits from its own edge: fewer words on the busiest edge
    assert r["host_words_per_step"] < r["one_chip_host_words_per_step"]
    assert r["speedup_over_one_chip"] > 1.3
    assert set(r["link_busy"]) == {"c0.east->c1.west", "c1.west->c0.east"}
    assert all(0 < v < 1 for v in r["link_busy"].values())
    assert "2 chips of small_link in a line" in text_out and "x the tokens/s per user" in text_out
    # slower links: the same tokens, more cycles (the all-reduces wait longer)
    slow = tmp_path / "slow.json"
    assert main(["demo", "lm", "--chips", "2", "--backend", "golden", "--tokens", "4", "--link-latency", "64",
                 "--link-interval", "8", "--json", str(slow)]) == 0
    s = json.loads(slow.read_text())
    assert (s["link_latency"], s["link_interval"]) == (64, 8)
    assert s["tokens"] == r["tokens"] and s["step_cycles"] > r["step_cycles"]
    capsys.readouterr()
    assert main(["demo", "lm", "--link-latency", "32", "--backend", "golden"]) == 2
    assert "arguments --link-latency/--link-interval: apply to a system: give --chips 2 or more" in \
        capsys.readouterr().err


def test_conveyor_compile_a_language_model_on_chips(tmp_path, capsys):
    src = tmp_path / "MODEL.py"
    src.write_text(
        "import torch\n"
        "from demos.lm.models import build\n"
        "def model():\n"
        "    torch.manual_seed(1)\n"
        "    return build('gpt', dict(n_layer=1, n_head=2, d_model=32, d_ff=64, context=16, vocab_size=20)).eval()\n"
        "def max_context():\n"
        "    return 16\n"
        "def calibration():\n"
        "    import numpy as np\n"
        "    return np.random.default_rng(1).integers(0, 20, 128)\n")
    out = tmp_path / "out"
    assert main(["compile", str(src), "--chips", "2", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "chips    2 in a line, tensor parallel" in printed
    lm = LMProgram.load(out)
    assert lm.chips == 2
    assert main(["compile", str(src), "--chips", "2", "--split", "pipeline", "-o", str(out)]) == 2
    assert "argument --split: a language model's decode step is divided in tensor parallel, not pipeline" in \
        capsys.readouterr().err
    assert main(["compile", str(src), "--split", "tensor", "-o", str(out)]) == 2
    assert "argument --split: applies to a system: give --chips 2 or more" in capsys.readouterr().err
    assert main(["run", str(out), "--prompt-ids", "1,2", "--tokens", "3", "--backend", "golden"]) == 0
    assert "equal to the int8 reference" in capsys.readouterr().out
