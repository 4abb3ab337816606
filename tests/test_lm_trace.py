"""The two reference language models (demos.lm) through the compiler's torch front end: the traced graph's
float reference equals the torch module, at several sequence lengths and batch sizes, and compiling them
as a plain program (``compiler.compile``) says to use ``compiler.compile_lm``."""
import numpy as np
import pytest
import torch

import compiler
from compiler.frontend_torch import from_torch
from demos.lm.models import build


def _ids(seed, batch, length, vocab):
    return np.random.default_rng(seed).integers(0, vocab, (batch, length), dtype=np.int64)


@pytest.mark.parametrize("arch", ["gpt", "llama"])
@pytest.mark.parametrize("length", [1, 7, 64])
def test_traced_lm_equals_torch(arch, length):
    torch.manual_seed(3)
    model = build(arch).eval()
    vocab = model.config.vocab_size
    g = from_torch(model, _ids(0, 2, length, vocab))
    for seed, batch in ((1, 1), (2, 3)):
        ids = _ids(seed, batch, length, vocab)
        with torch.no_grad():
            want = model(torch.from_numpy(ids)).numpy()
        got = g.run_float({g.inputs[0].name: ids})
        (out,) = got.values()
        assert out.shape == want.shape == (batch, length, vocab)
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4, err_msg=f"{arch} T={length} B={batch}")


@pytest.mark.parametrize("arch", ["gpt", "llama"])
def test_compiling_an_lm_as_a_program_points_to_compile_lm(arch):
    torch.manual_seed(0)
    ids = _ids(0, 1, 8, 103)
    with pytest.raises(NotImplementedError, match=r"^attention '.+': a compiled program runs attention only as a "
                                                  r"language model's decode step.*compiler.compile_lm"):
        compiler.compile(build(arch).eval(), (ids,), config="small")
