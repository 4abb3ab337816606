"""Language models by their published shapes (no weights): ``ModelShape`` and ``MODELS``.

A decoder-only transformer in a few fields; the conventions follow the FFN kind unless given:

* ``ffn="gelu"`` (GPT-2 style): learned position embeddings, LayerNorm (weight and bias), a bias on every
  linear layer but the head, an MLP ``d_model → d_ff → d_model``;
* ``ffn="swiglu"`` (Llama style): rotary positions (no parameters), RMSNorm (weight only), no biases, an
  MLP of three matrices (gate and up ``d_model → d_ff``, down ``d_ff → d_model``).

Attention has ``n_heads`` query heads of ``d_model / n_heads`` and ``n_kv_heads`` key/value heads (grouped
query attention when fewer). ``params()`` counts distinct parameters (a tied head once), ``weight_bytes(bits)``
their bytes at ``bits`` per weight (int8: one byte each). Every invalid field is a ``ValueError`` naming it
(``n_heads must divide d_model: 4096 % 48 != 0``).

Writing a new model is one ``ModelShape(...)``; ``MODELS`` holds the published ones and the two reference
models of issue 10 (``demos/lm``).
"""
from dataclasses import dataclass

__all__ = ["ModelShape", "MODELS", "FFN_KINDS"]

FFN_KINDS = ("gelu", "swiglu")


@dataclass(frozen=True)
class ModelShape:
    """A decoder-only transformer's shape (module docstring)."""
    name: str
    layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_ff: int
    ffn: str
    vocab: int
    context: int
    tied: bool
    bias: bool | None = None                #: biases on the linear layers and norms (default: ffn == "gelu")
    learned_positions: bool | None = None   #: a learned position table (default: ffn == "gelu")

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, not {self.name!r}")
        for f in ("layers", "d_model", "n_heads", "n_kv_heads", "d_ff", "vocab", "context"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{f} must be a positive integer, not {v!r}")
        if self.ffn not in FFN_KINDS:
            raise ValueError(f"ffn must be one of {', '.join(map(repr, FFN_KINDS))}, not {self.ffn!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads must divide d_model: {self.d_model} % {self.n_heads} != 0")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_kv_heads must divide n_heads: {self.n_heads} % {self.n_kv_heads} != 0")
        for f in ("tied", "bias", "learned_positions"):
            v = getattr(self, f)
            if not isinstance(v, bool) and not (v is None and f != "tied"):
                raise ValueError(f"{f} must be True or False, not {v!r}")
        gpt = self.ffn == "gelu"
        if self.bias is None:
            object.__setattr__(self, "bias", gpt)
        if self.learned_positions is None:
            object.__setattr__(self, "learned_positions", gpt)

    @property
    def head_dim(self):
        return self.d_model // self.n_heads

    @property
    def kv_dim(self):
        """Width of the keys (and of the values): ``n_kv_heads × head_dim``."""
        return self.n_kv_heads * self.head_dim

    def _linear(self, k, n):
        return k * n + (n if self.bias else 0)

    def layer_params(self):
        """Parameters of one block: two norms, attention (q, k, v, output) and the MLP."""
        d = self.d_model
        norm = 2 * d if self.bias else d
        attn = 2 * self._linear(d, d) + 2 * self._linear(d, self.kv_dim)
        if self.ffn == "gelu":
            mlp = self._linear(d, self.d_ff) + self._linear(self.d_ff, d)
        else:
            mlp = 2 * self._linear(d, self.d_ff) + self._linear(self.d_ff, d)
        return 2 * norm + attn + mlp

    def params(self):
        """Distinct parameters: embeddings, blocks, the final norm and the head (none when tied)."""
        d = self.d_model
        embed = self.vocab * d + (self.context * d if self.learned_positions else 0)
        final_norm = 2 * d if self.bias else d
        head = 0 if self.tied else self.vocab * d
        return embed + self.layers * self.layer_params() + final_norm + head

    def weight_bytes(self, bits=8):
        """Bytes of every parameter at ``bits`` bits each (int8: ``params()``)."""
        if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
            raise ValueError(f"bits must be a positive integer, not {bits!r}")
        return -(-self.params() * bits // 8)


MODELS = {m.name: m for m in [
    # GPT-2 small: Radford et al. 2019, "Language Models are Unsupervised Multitask Learners", Table 2 (12
    # layers, d_model 768), and the released checkpoint's config (huggingface.co/gpt2: n_positions 1024,
    # vocab 50257, tied head); 124,439,808 parameters (the paper's "117M" was counted otherwise).
    ModelShape("gpt2-small", 12, 768, 12, 12, 3072, "gelu", 50257, 1024, tied=True),
    # Llama 2: Touvron et al. 2023, "Llama 2: Open Foundation and Fine-Tuned Chat Models", Table 1 (7B, 13B,
    # 70B; 4k context; GQA on 70B), with the sizes of the model cards' config.json (meta-llama/Llama-2-*-hf):
    # hidden 4096/5120/8192, intermediate 11008/13824/28672, layers 32/40/80, heads 32/40/64, KV heads 8 on
    # 70B, vocab 32000. Published totals 6.74B, 13.0B, 69.0B (the model cards' "7B, 13B, 70B").
    ModelShape("llama-2-7b", 32, 4096, 32, 32, 11008, "swiglu", 32000, 4096, tied=False),
    ModelShape("llama-2-13b", 40, 5120, 40, 40, 13824, "swiglu", 32000, 4096, tied=False),
    ModelShape("llama-2-70b", 80, 8192, 64, 8, 28672, "swiglu", 32000, 4096, tied=False),
    # Llama 3: Meta's model card (github.com/meta-llama/llama3, MODEL_CARD.md: 8B and 70B, 8k context, GQA on
    # both) and config.json of meta-llama/Meta-Llama-3-{8B,70B}: hidden 4096/8192, intermediate 14336/28672,
    # layers 32/80, heads 32/64, KV heads 8, vocab 128256; totals 8.03B and 70.6B.
    ModelShape("llama-3-8b", 32, 4096, 32, 8, 14336, "swiglu", 128256, 8192, tied=False),
    ModelShape("llama-3-70b", 80, 8192, 64, 8, 28672, "swiglu", 128256, 8192, tied=False),
    # The reference models of issue 10 (demos/lm/models.py: GPTConfig, LlamaConfig): 2 layers, d_model 64,
    # 4 heads of 16, context 64, vocabulary 103.
    ModelShape("gpt", 2, 64, 4, 4, 256, "gelu", 103, 64, tied=True),
    ModelShape("llama", 2, 64, 4, 4, 176, "swiglu", 103, 64, tied=False),
]}
