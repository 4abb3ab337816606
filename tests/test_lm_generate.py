"""A language model generating on the chip (issue 10): ``compiler.compile_lm`` → ``LMProgram.generate``.

* golden: the tokens equal the int8 reference's (which recomputes the whole sequence every token, so this
  is also the KV-cache path against recomputing), and every step's logits equal the reference's logits for
  that prefix; every step takes exactly the predicted cycles; greedy and seeded sampling;
* the RTL: 32 tokens, every step's logits and cycles equal to golden;
* int8 validation loss within 0.05 nats of float;
* clear errors for what cannot be compiled or generated.
"""
import numpy as np
import pytest
import torch

import sim.lm_run  # noqa: F401  (registers the "lm" runner)
from compiler.lm import compile_lm
from demos.lm import text, train
from demos.lm.demo import val_losses
from demos.lm.models import build
from sim.lm_run import _golden

PROMPTS = ["The ", "class ", "In Python, "]


@pytest.fixture(scope="module", params=["gpt", "llama"])
def lm_of(request):
    model, _ = train.load_or_train(request.param)
    tr, _ = text.split()
    return model, compile_lm(model, 64, "small", calibration=tr[:64 * 32])


@pytest.fixture(scope="module")
def gpt():
    model, _ = train.load_or_train("gpt")
    tr, _ = text.split()
    return model, compile_lm(model, 64, "small", calibration=tr[:64 * 32])


@pytest.mark.parametrize("prompt", PROMPTS)
def test_golden_tokens_and_logits_equal_the_int8_reference(lm_of, prompt):
    _, lm = lm_of
    ids = [int(i) for i in text.encode(prompt)]
    n = 12
    tokens, cycles, logits, feeds = _golden(lm, ids, n, 0.0, 0)
    assert tokens == lm.reference(ids, n), prompt
    seq = ids + tokens
    for (tok, pos), got in zip(feeds, logits):
        assert tok == seq[pos]
        want = lm.reference_logits(seq[:pos + 1])
        np.testing.assert_array_equal(got, want, err_msg=f"{prompt!r} position {pos}")
    assert cycles == [lm.step_cycles] * len(feeds)


def test_generation_reports_per_step_cycles_prefill_first(gpt):
    _, lm = gpt
    ids = [int(i) for i in text.encode("The ")]
    g = lm.generate(ids, 5)
    assert g.tokens_match and g.tokens == g.reference
    assert g.cycles == g.predicted_cycles == [4 * lm.step_cycles] + [lm.step_cycles] * 4
    assert g.host_cycles == [4 * lm.host_words] + [lm.host_words] * 4


def test_sampling_is_seeded(gpt):
    _, lm = gpt
    ids = [int(i) for i in text.encode("The ")]
    a = lm.generate(ids, 8, temperature=1.0, seed=5)
    b = lm.generate(ids, 8, temperature=1.0, seed=5)
    assert a.tokens == b.tokens == a.reference
    greedy = lm.generate(ids, 8)
    others = [lm.generate(ids, 8, temperature=1.0, seed=s).tokens for s in (6, 7)]
    assert any(t != greedy.tokens for t in others + [a.tokens]), "sampling at temperature 1 never left greedy"


def test_int8_validation_loss_is_close_to_float(lm_of):
    model, lm = lm_of
    f, i8 = val_losses(model, lm)              # the demo's figures: 24 windows of the validation split
    print(f"float {f:.4f} int8 {i8:.4f} nats per character")
    assert abs(i8 - f) <= 0.05
    assert f < text.unigram_entropy() - 1.0


def test_compile_reports_its_stages_and_the_step_fits(lm_of):
    _, lm = lm_of                  # how long they take is measured by python -m bench.lm_compile, not here
    assert set(lm.timings) == {"trace", "quantize", "lower"} and all(t > 0 for t in lm.timings.values())
    assert max(len(w) for w in lm.model.program.words) <= lm.config.queue_depth


def test_errors_name_what_is_wrong(gpt):
    model, lm = gpt
    with pytest.raises(ValueError, match=r"the prompt \(60 tokens\) and max_new_tokens \(10\) must fit the compiled "
                                         r"context of 64: at most 5 new tokens"):
        lm.generate([1] * 60, 10)
    with pytest.raises(ValueError, match=r"prompt_ids must be in 0 … 102, not 0 … 500"):
        lm.generate([0, 500], 2)
    with pytest.raises(ValueError, match=r"temperature must be a number >= 0, not -1"):
        lm.generate([1], 2, temperature=-1)
    with pytest.raises(ValueError, match=r"backend must be one of golden, verilator, not 'gpu'"):
        lm.generate([1], 2, backend="gpu")
    tr, _ = text.split()
    with pytest.raises(ValueError, match=r"max_context must be a multiple of mxu_cols = 16 of config small"):
        compile_lm(model, 40, "small", calibration=tr[:4000])
    with pytest.raises(ValueError, match=r"calibration must be given"):
        compile_lm(model, 64, "small")
    with pytest.raises(TypeError, match=r"model must be a torch.nn.Module"):
        compile_lm("gpt", 64)
    torch.manual_seed(0)
    wide = build("gpt", dict(n_head=2, d_model=64, context=16)).eval()
    with pytest.raises(NotImplementedError, match=r"reshape 'view': the decode step regroups heads of head_dim = "
                                                  r"mxu_cols = 16 only, not \(1, 1, 64\) -> \(1, 1, 2, 32\)"):
        compile_lm(wide, 16, "small", calibration=np.zeros(64, np.int64))
    big = build("gpt", dict(n_head=8, d_model=128, d_ff=512, n_layer=3)).eval()
    with pytest.raises(ValueError, match=r"the decode step does not fit config small: .+ needs \d+ words of MEM .*"
                                         r"it does not fit, short by \d+ words.* \(MEM taken so far: weights "
                                         r"[\d,]+, .+ of 16,384 words\)"):
        compile_lm(big, 64, "small", calibration=np.full(256, 3, np.int64))


@pytest.fixture(scope="module")
def gpt_chip_picks():
    model, _ = train.load_or_train("gpt")
    tr, _ = text.split()
    return compile_lm(model, 64, "small", calibration=tr[:64 * 32], pick="chip")


def test_the_host_writes_only_the_token_word(gpt):
    """Position rows, masks, the new key's one-hot and the embedding row are found on the chip (READX): the host
    writes one word a step, the token word (token x words a row), whatever the position."""
    _, lm = gpt
    (seg,) = lm.data.token
    for tok, pos in [(0, 0), (7, 1), (102, 63)]:
        (w,) = lm.data.writes(tok, pos)
        assert w[:3] == seg[:3] and w[3].shape == (1, lm.config.lanes)
        assert w[3][0, 0] == tok * lm.data.emb_words and not w[3][0, 1:].any()
    assert lm.host_words == 1 + 2 + 7                  # the token word, START, STATUS, 7 words of logits
    with pytest.raises(ValueError, match=r"token must be in 0 … 102 \(the vocabulary\), not 103"):
        lm.data.writes(103, 0)


def test_the_chip_picks_greedily_the_same_tokens(gpt, gpt_chip_picks):
    _, host = gpt
    lm = gpt_chip_picks
    ids = [int(i) for i in text.encode("class ")]
    g = lm.generate(ids, 12)
    assert g.tokens == g.reference == host.generate(ids, 12).tokens
    assert g.cycles == g.predicted_cycles
    assert lm.host_words == 2 + 1                      # START, STATUS, the token word's read
    assert g.host_cycles == [len(ids) * 4] + [3] * 11    # a prompt step also writes its token word
    assert lm.step_cycles > host.step_cycles           # the argmax over the vocabulary on the chip
    print(f"chip picks: {lm.step_cycles} + {lm.host_words} cycles a token; host picks: {host.step_cycles} + "
          f"{host.host_words}")
    with pytest.raises(ValueError, match=r"temperature must be 0 for a program whose chip picks each token "
                                         r"greedily \(compile_lm\(..., pick='chip'\)\); compile with pick='host' "
                                         r"to sample, not 1.0"):
        lm.generate(ids, 2, temperature=1.0)
    with pytest.raises(ValueError, match=r"pick must be one of host, chip \(who picks the next token\), not 'gpu'"):
        compile_lm(train.load_or_train("gpt")[0], 64, "small", calibration=ids * 100, pick="gpu")


@pytest.mark.slow
def test_rtl_chip_picks_16_tokens_equal_to_the_reference(gpt_chip_picks):
    g = gpt_chip_picks.generate([int(i) for i in text.encode("The ")], 16, backend="verilator")
    assert g.match, g.mismatch
    assert g.tokens == g.reference and len(g.tokens) == 16 and g.cycles == g.predicted_cycles


@pytest.mark.slow
@pytest.mark.parametrize("prompt", PROMPTS)
def test_rtl_generates_32_tokens_equal_to_the_reference(lm_of, prompt):
    _, lm = lm_of
    ids = [int(i) for i in text.encode(prompt)]
    g = lm.generate(ids, 32, backend="verilator")
    assert g.match, g.mismatch
    assert g.tokens == g.reference and len(g.tokens) == 32
    assert g.cycles == g.predicted_cycles
    print(repr(text.decode(np.array(g.tokens))), g.harness_cycles)


# ---- random decoders ---------------------------------------------------------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def decoders(draw):
    arch = draw(st.sampled_from(["gpt", "llama"]))
    heads = draw(st.integers(1, 3))
    return arch, dict(n_layer=draw(st.integers(1, 2)), n_head=heads, d_model=16 * heads,
                      d_ff=draw(st.sampled_from([16, 40, 64])), context=draw(st.sampled_from([16, 32])),
                      vocab_size=draw(st.sampled_from([5, 20, 37]))), draw(st.integers(0, 2**16))


@settings(max_examples=16, deadline=None, derandomize=True, database=None)
@given(decoders())
def test_random_decoders_generate_equal_to_the_reference_in_the_predicted_cycles(case):
    """Random decoder-only models (heads, widths across tile boundaries, layers, contexts, vocabularies):
    every step's logits equal the int8 reference's, every step in exactly the predicted cycles."""
    arch, cfg, seed = case
    print(arch, cfg, f"seed {seed}")
    torch.manual_seed(seed)
    model = build(arch, cfg).eval()
    with torch.no_grad():                       # livelier than the initialization: distinct logits
        for p in model.parameters():
            p.mul_(3.0)
    rng = np.random.default_rng(seed)
    lm = compile_lm(model, cfg["context"], "small", calibration=rng.integers(0, cfg["vocab_size"], 8 * cfg["context"]))
    prompt = [int(t) for t in rng.integers(0, cfg["vocab_size"], 2)]
    tokens, cycles, logits, feeds = _golden(lm, prompt, 3, 0.0, 0)
    assert tokens == lm.reference(prompt, 3)
    seq = prompt + tokens
    for (tok, pos), got in zip(feeds, logits):
        assert tok == seq[pos]
        np.testing.assert_array_equal(got, lm.reference_logits(seq[:pos + 1]), err_msg=f"position {pos}")
    assert cycles == [lm.step_cycles] * len(feeds)


def test_save_and_load_generate_the_same(lm_of, tmp_path):
    _, lm = lm_of
    lm.save(tmp_path / "lm")
    back = type(lm).load(tmp_path / "lm")
    ids = [int(i) for i in text.encode("class ")]
    a, b = lm.generate(ids, 4), back.generate(ids, 4)
    assert a.tokens == b.tokens == b.reference and a.cycles == b.cycles
    assert back.step_cycles == lm.step_cycles and back.host_words == lm.host_words
    assert back.perf_shape() == lm.perf_shape()
    np.testing.assert_array_equal(back.reference_logits(ids), lm.reference_logits(ids))
    (tmp_path / "lm" / "lm.json").write_text('{"format": "conveyor-language-model", "version": 9}')
    from compiler.lm.saved import LM_FORMAT_VERSION
    with pytest.raises(ValueError, match=rf"version must be {LM_FORMAT_VERSION}, not 9"):
        type(lm).load(tmp_path / "lm")
    with pytest.raises(ValueError, match=r"is not a saved language model: lm.json is missing"):
        type(lm).load(tmp_path / "nothing")


# ---- the command line ----------------------------------------------------------------------------------
def test_conveyor_compile_and_run_a_language_model(tmp_path, capsys):
    from cli.main import main
    src = tmp_path / "MODEL.py"
    src.write_text("from demos.lm import text, train\n\n\ndef model():\n    return train.load_or_train('gpt')[0]\n\n\n"
                   "def max_context():\n    return 64\n\n\ndef calibration():\n    return text.split()[0][:1024]\n")
    out = tmp_path / "out"
    assert main(["compile", str(src), "-o", str(out), "--json", str(tmp_path / "c.json")]) == 0
    assert "predicted cycles per token (one program, every position)" in capsys.readouterr().out
    assert main(["run", str(out), "--prompt-ids", "52,68,65", "--tokens", "3", "--backend", "golden"]) == 0
    assert "equal to the int8 reference" in capsys.readouterr().out
    assert main(["run", str(out), "--backend", "golden"]) == 2
    assert "argument --prompt-ids: needed to run the language model" in capsys.readouterr().err
    assert main(["run", str(out), "--prompt-ids", "1,x", "--backend", "golden"]) == 2
    assert "must be comma-separated integers, not '1,x'" in capsys.readouterr().err
    bad = tmp_path / "BAD.py"
    bad.write_text("def model():\n    return None\n\n\ndef max_context():\n    return 64\n")
    assert main(["compile", str(bad), "-o", str(tmp_path / "b")]) == 2
    assert "defines max_context(), so it is a language model: it must also define model() and calibration()" in \
        capsys.readouterr().err
