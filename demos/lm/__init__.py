"""The language-model demo's reference models (issue 10, item 3): two small decoder-only transformers
written as plain ``torch.nn.Module``s, trained here on CPU in a few minutes on text that ships with Python.

* ``demos.lm.text``: the corpus (``pydoc_data.topics``), its character vocabulary, encode/decode, the fixed
  train/validation split, seeded batches and the corpus's unigram entropy (the baseline for the losses);
* ``demos.lm.models``: ``GPT`` (learned positions, LayerNorm, GELU MLP, tied head, ``masked_fill`` with a
  ``tril`` buffer) and ``Llama`` (RMSNorm, rotary embeddings, SwiGLU MLP, no biases, untied head,
  ``F.scaled_dot_product_attention(..., is_causal=True)``), with their config dataclasses;
* ``demos.lm.train``: ``train(arch, seed=0, ...)`` (deterministic from the seed, AdamW) and
  ``load_or_train(arch, seed=0, build_dir=None)``, which caches the weights as numpy arrays (no pickle)
  under ``build/lm/``.
"""
