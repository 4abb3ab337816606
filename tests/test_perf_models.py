"""``perf.models``: published shapes give the published parameter totals; the reference LMs equal torch's."""
import pytest

from perf.models import MODELS, ModelShape

#: published totals (model cards / papers, sources in perf/models.py)
PUBLISHED = {"gpt2-small": 124e6, "llama-2-7b": 6.74e9, "llama-2-13b": 13.0e9, "llama-2-70b": 69.0e9,
             "llama-3-8b": 8.03e9, "llama-3-70b": 70.6e9}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_totals(name):
    m = MODELS[name]
    assert abs(m.params() - PUBLISHED[name]) / PUBLISHED[name] < 0.01, (name, m.params())
    assert m.weight_bytes(8) == m.params() and m.weight_bytes(4) == -(-m.params() // 2)


def test_exact_counts():
    """The counts of the released checkpoints (GPT-2's 124,439,808; Llama-2-7B's 6,738,415,616)."""
    assert MODELS["gpt2-small"].params() == 124_439_808
    assert MODELS["llama-2-7b"].params() == 6_738_415_616


def test_reference_models_equal_torch():
    pytest.importorskip("torch")
    from demos.lm.models import GPT, Llama
    assert MODELS["gpt"].params() == GPT().num_params()
    assert MODELS["llama"].params() == Llama().num_params()


def test_shape_of_a_new_model():
    m = ModelShape("mine", 4, 256, 8, 2, 688, "swiglu", 1000, 512, tied=False)
    assert (m.head_dim, m.kv_dim, m.bias, m.learned_positions) == (32, 64, False, False)


@pytest.mark.parametrize("changes, message", [
    (dict(n_heads=48), "n_heads must divide d_model: 4096 % 48 != 0"),
    (dict(n_kv_heads=5), "n_kv_heads must divide n_heads: 32 % 5 != 0"),
    (dict(ffn="relu"), "ffn must be one of 'gelu', 'swiglu', not 'relu'"),
    (dict(layers=0), "layers must be a positive integer, not 0"),
    (dict(vocab=True), "vocab must be a positive integer, not True"),
    (dict(tied=None), "tied must be True or False, not None"),
])
def test_errors(changes, message):
    fields = dict(name="m", layers=32, d_model=4096, n_heads=32, n_kv_heads=8, d_ff=14336, ffn="swiglu",
                  vocab=128256, context=8192, tied=False)
    with pytest.raises(ValueError, match=message):
        ModelShape(**{**fields, **changes})
