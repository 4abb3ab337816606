"""The language-model demo's reference models (``demos/lm``): the corpus and its split, the two transformers
(shapes, causality, attention against a naive reference, the front end's operations only, config errors),
and short training runs (deterministic, the loss goes down, the npz cache round trip without pickle)."""
import json
import math

import numpy as np
import pytest
import torch
import torch.fx

from demos.lm import models, text, train
from demos.lm.models import GPTConfig, LlamaConfig

ARCHS = list(models.ARCHS)
SHORT = {"steps": 30, "warmup": 5, "eval_windows": 32}     # a few seconds on 2 cores


# --- the text -------------------------------------------------------------------------------------------

def test_the_split_is_fixed_and_covers_the_corpus():
    tr, va = text.split()
    tr2, va2 = text.split()
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    ids = text.encode(text.corpus())
    assert np.array_equal(np.concatenate([tr, va]), ids)
    assert len(va) == round(text.VAL_FRACTION * len(ids))
    assert text.decode(va[:40]) == text.corpus()[len(tr):len(tr) + 40]
    assert not tr.flags.writeable                     # nobody can change the split in place
    assert text.corpus_digest() == text.corpus_digest() and len(text.corpus_digest()) == 64


def test_vocabulary_round_trip_and_unknown_characters():
    assert list(text.VOCAB) == sorted(set(text.corpus())) and text.VOCAB_SIZE == len(text.VOCAB)
    sample = text.corpus()[1000:6000]
    ids = text.encode(sample)
    assert ids.dtype == np.int64 and ids.min() >= 0 and ids.max() < text.VOCAB_SIZE
    assert text.decode(ids) == sample
    assert text.decode(torch.from_numpy(ids[:10])) == sample[:10]
    with pytest.raises(ValueError, match=r"character '€' is not in the vocabulary of \d+ characters"):
        text.encode("price: 5€")


def test_unigram_entropy_is_sane():
    h = text.unigram_entropy()
    assert 3.0 < h < 3.5 < math.log(text.VOCAB_SIZE)            # 3.2498 on Python 3.11
    assert text.unigram_entropy(np.arange(text.VOCAB_SIZE)) == pytest.approx(math.log(text.VOCAB_SIZE))
    assert text.unigram_entropy(np.zeros(10, np.int64)) == 0.0


def test_batches_come_from_the_callers_generator():
    tr, _ = text.split()
    x, y = text.batch(tr, 4, 16, np.random.default_rng(7))
    x2, y2 = text.batch(tr, 4, 16, np.random.default_rng(7))
    assert x.shape == y.shape == (4, 16) and x.dtype == np.int64
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert np.array_equal(x[:, 1:], y[:, :-1])
    xs, ys = text.windows(tr, 16, limit=5)
    assert xs.shape == (5, 16) and np.array_equal(xs[:, 1:], ys[:, :-1]) and np.array_equal(xs[0], tr[:16])
    assert len(text.windows(tr[:161], 16)[0]) == 10
    with pytest.raises(ValueError, match="too few"):
        text.batch(tr[:16], 1, 16, np.random.default_rng(0))


# --- the models -----------------------------------------------------------------------------------------

def _model(arch, seed=0):
    torch.manual_seed(seed)
    return models.build(arch).eval()


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_shapes(arch):
    m = _model(arch)
    c = m.config
    assert (c.n_layer, c.d_model, c.n_head, c.head_dim, c.context) == (2, 64, 4, 16, 64)
    for b, t in ((1, 1), (2, 10), (3, c.context)):
        logits = m(torch.randint(0, c.vocab_size, (b, t)))
        assert logits.shape == (b, t, text.VOCAB_SIZE) and logits.dtype == torch.float32
    assert 100_000 < m.num_params() < 130_000


def test_the_gpt_head_is_tied_and_the_llama_head_is_not():
    g, la = _model("gpt"), _model("llama")
    assert g.head.weight is g.wte.weight
    assert la.head.weight is not la.tok.weight
    assert all(n.endswith("weight") for n, _ in la.named_parameters())            # no biases


@pytest.mark.parametrize("arch", ARCHS)
def test_causal(arch):
    m = _model(arch)
    idx = torch.randint(0, text.VOCAB_SIZE, (2, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        base = m(idx)
        for t in (0, 17, 39):
            changed = idx.clone()
            changed[:, t] = (changed[:, t] + 1) % text.VOCAB_SIZE
            out = m(changed)
            torch.testing.assert_close(out[:, :t], base[:, :t], rtol=0, atol=1e-6)
            assert not torch.allclose(out[:, t], base[:, t])


def _randomize(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def _naive_attention(q, k, v):
    """Causal attention by loops: q, k, v (T, H, D) float64 → (T, H·D)."""
    T, H, D = q.shape
    out = np.zeros((T, H, D))
    for h in range(H):
        for t in range(T):
            s = np.array([q[t, h] @ k[u, h] for u in range(t + 1)]) / math.sqrt(D)
            p = np.exp(s - s.max())
            out[t, h] = (p / p.sum()) @ v[:t + 1, h]
    return out.reshape(T, H * D)


def _lin(x, layer):
    w = layer.weight.detach().double().numpy()
    b = 0.0 if layer.bias is None else layer.bias.detach().double().numpy()
    return x @ w.T + b


@pytest.mark.parametrize("arch", ARCHS)
def test_attention_equals_a_naive_reference(arch):
    """GPT's masked_fill + softmax and Llama's rotary + scaled_dot_product_attention, against loops."""
    m = _model(arch)
    c = m.config
    attn = m.blocks[0].attn
    _randomize(attn, 5)
    T, H, D = 23, c.n_head, c.head_dim
    x = torch.randn(1, T, c.d_model, generator=torch.Generator().manual_seed(2))
    xn = x[0].double().numpy()
    if arch == "gpt":
        q, k, v = (_lin(xn, f).reshape(T, H, D) for f in (attn.q, attn.k, attn.v))
        with torch.no_grad():
            got = attn(x)
    else:
        q, k, v = (_lin(xn, f).reshape(T, H, D) for f in (attn.wq, attn.wk, attn.wv))
        half = D // 2
        theta = np.outer(np.arange(T), c.rope_base ** (-2.0 * np.arange(half) / D))   # (T, half)
        cs, sn = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]

        def rope(a):   # rotate each pair (i, i + half) by the position's angle
            a1, a2 = a[..., :half], a[..., half:]
            return np.concatenate([a1 * cs - a2 * sn, a2 * cs + a1 * sn], axis=-1)
        q, k = rope(q), rope(k)
        with torch.no_grad():
            got = attn(x, m.cos[:T], m.sin[:T])
    want = _lin(_naive_attention(q, k, v), attn.proj)
    np.testing.assert_allclose(got[0].numpy(), want, rtol=1e-4, atol=1e-4)


#: what the compiler's torch front end is to trace (issue 10): modules, functions and tensor methods
FRONT_END = {"Embedding", "Linear", "LayerNorm", "RMSNorm", "GELU", "SiLU", "gelu", "silu", "softmax", "matmul",
             "transpose", "view", "reshape", "getitem", "cat", "mul", "add", "masked_fill", "eq", "size",
             "scaled_dot_product_attention"}


class _Tracer(torch.fx.Tracer):
    proxy_buffer_attributes = True       # a buffer sliced by the traced sequence length stays in the graph


@pytest.mark.parametrize("arch", ARCHS)
def test_the_models_use_only_the_front_ends_operations(arch):
    m = _model(arch)
    gm = torch.fx.GraphModule(m, _Tracer().trace(m))
    ops = {type(m.get_submodule(n.target)).__name__ if n.op == "call_module" else
           getattr(n.target, "__name__", str(n.target))
           for n in gm.graph.nodes if n.op in ("call_module", "call_function", "call_method")}
    assert ops <= FRONT_END, ops - FRONT_END
    assert ("masked_fill" in ops) == (arch == "gpt") and ("scaled_dot_product_attention" in ops) == (arch == "llama")
    idx = torch.randint(0, text.VOCAB_SIZE, (2, 12))
    with torch.no_grad():
        assert torch.equal(gm(idx), m(idx))


@pytest.mark.parametrize("make, message", [
    (lambda: GPTConfig(n_head=5), "n_head must divide d_model: 64 % 5 != 0"),
    (lambda: LlamaConfig(d_model=48, n_head=5), "n_head must divide d_model: 48 % 5 != 0"),
    (lambda: LlamaConfig(d_model=60, n_head=4), "d_model // n_head must be even for rotary embeddings: 60 // 4 = 15"),
    (lambda: GPTConfig(context=0), "context must be a positive integer: 0"),
    (lambda: LlamaConfig(n_layer=2.0), "n_layer must be a positive integer: 2.0"),
    (lambda: LlamaConfig(rope_base=1.0), "rope_base must be greater than 1: 1.0"),
    (lambda: models.build("bert"), "unknown arch 'bert': one of gpt, llama"),
    (lambda: train.Settings(steps=0), "steps must be a positive integer: 0"),
])
def test_config_errors(make, message):
    with pytest.raises(ValueError) as e:
        make()
    assert str(e.value) == message


def test_build_takes_a_config_or_its_fields():
    assert models.build("llama", {"n_layer": 1}).config == LlamaConfig(n_layer=1)
    with pytest.raises(TypeError, match="a gpt model takes a GPTConfig, not LlamaConfig"):
        models.build("gpt", LlamaConfig())


# --- training -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
def test_training_is_deterministic_and_lowers_the_loss(arch):
    rng_before, threads = torch.get_rng_state(), torch.get_num_threads()
    m1, r1 = train.train(arch, seed=3, **SHORT)
    m2, r2 = train.train(arch, seed=3, **SHORT)
    s1, s2 = m1.state_dict(), m2.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    drop = ("seconds",)
    assert {k: v for k, v in r1.items() if k not in drop} == {k: v for k, v in r2.items() if k not in drop}
    assert r1["val_loss"] < r1["initial_loss"] - 0.5 and r1["train_loss"] < r1["initial_loss"] - 0.5
    assert r1["initial_loss"] == pytest.approx(math.log(text.VOCAB_SIZE), abs=0.2)
    assert r1["unigram_entropy"] == text.unigram_entropy() and r1["steps"] == SHORT["steps"]
    m3, _ = train.train(arch, seed=4, **SHORT)
    assert not torch.equal(m3.state_dict()["head.weight"], s1["head.weight"])
    assert torch.equal(torch.get_rng_state(), rng_before) and torch.get_num_threads() == threads


@pytest.mark.parametrize("arch", ARCHS)
def test_the_cache_round_trip_is_exact_and_pickle_free(arch, tmp_path):
    m1, r1 = train.load_or_train(arch, seed=1, build_dir=tmp_path, **SHORT)
    assert r1["cached"] is False
    npz = tmp_path / "lm" / f"{arch}_{train.settings_key(arch, 1, None, train.Settings(**SHORT))}.npz"
    assert r1["path"] == str(npz) and npz.with_suffix(".json").exists()
    assert sorted(p.name for p in (tmp_path / "lm").iterdir()) == sorted([npz.name, npz.with_suffix(".json").name])
    with np.load(npz, allow_pickle=False) as z:
        assert set(z.files) == set(m1.state_dict()) and all(z[k].dtype == np.float32 for k in z.files)
    m2, r2 = train.load_or_train(arch, seed=1, build_dir=tmp_path, **SHORT)
    assert r2["cached"] is True
    assert {k: v for k, v in r2.items() if k != "cached"} == {k: v for k, v in r1.items() if k != "cached"}
    assert json.loads(npz.with_suffix(".json").read_text())["val_loss"] == r1["val_loss"]
    idx = torch.randint(0, text.VOCAB_SIZE, (2, 64))
    with torch.no_grad():
        assert torch.equal(m1(idx), m2(idx))
    if arch == "gpt":
        assert m2.head.weight is m2.wte.weight                      # still tied after loading
    assert train.evaluate(m2, text.split()[1]) == pytest.approx(r1["val_loss"], rel=1e-6)
    other = train.settings_key(arch, 1, None, train.Settings(**{**SHORT, "steps": 31}))
    assert other != npz.stem.split("_")[1] != train.settings_key(arch, 2, None, train.Settings(**SHORT))
