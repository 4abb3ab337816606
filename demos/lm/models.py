"""Two small decoder-only transformers, written the plain nanoGPT way so the compiler's torch front end can
trace them (``torch.fx``): only ``nn.Embedding``, ``nn.Linear``, ``nn.LayerNorm``, ``nn.RMSNorm``,
``nn.GELU``, ``F.silu``, ``F.softmax``, ``@``, ``transpose``, ``view``/``reshape``, slicing and ``torch.cat``
along the last axis, elementwise ``*``/``+`` by a tensor, a buffer or a constant, buffers sliced by the
sequence length, ``masked_fill`` with a ``tril`` buffer and ``F.scaled_dot_product_attention(...,
is_causal=True)``.

* ``GPT(GPTConfig())``: GPT-2 style: token + learned position embeddings, pre-LayerNorm blocks, causal
  attention written out (``q @ kᵀ`` scaled, ``masked_fill`` where the ``tril`` buffer is 0, softmax, ``@ v``),
  GELU MLP (4× wide), biases everywhere, a final LayerNorm and a head **tied** to the token embedding;
* ``Llama(LlamaConfig())``: Llama style: token embedding only, pre-RMSNorm blocks, rotary position
  embeddings on q and k (rotate-half, cos/sin tables as buffers sliced by the sequence length), attention by
  ``F.scaled_dot_product_attention(..., is_causal=True)``, SwiGLU MLP (``down(silu(gate(x)) * up(x))``), no
  biases, a final RMSNorm and an **untied** head.

Both default to the ``small`` chip's sizes: 2 layers, d_model 64, 4 heads of 16, context 64, the corpus's
103-character vocabulary (``demos.lm.text``). ``forward(idx)`` takes int64 ids ``(B, T)``, ``T ≤ context``,
and returns the logits ``(B, T, vocab_size)``. Weights start as nanoGPT's: normal(0, 0.02), the projections
back into the residual stream scaled by 1/√(2·n_layer), biases 0.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .text import VOCAB_SIZE

__all__ = ["GPTConfig", "LlamaConfig", "GPT", "Llama", "ARCHS", "config_of", "build"]


@dataclass(frozen=True)
class _Config:
    vocab_size: int = VOCAB_SIZE
    context: int = 64
    n_layer: int = 2
    d_model: int = 64
    n_head: int = 4
    d_ff: int = 256                  #: the MLP's hidden width

    def __post_init__(self):
        for name in ("vocab_size", "context", "n_layer", "d_model", "n_head", "d_ff"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer: {v!r}")
        if self.d_model % self.n_head:
            raise ValueError(f"n_head must divide d_model: {self.d_model} % {self.n_head} != 0")

    @property
    def head_dim(self):
        return self.d_model // self.n_head


@dataclass(frozen=True)
class GPTConfig(_Config):
    """GPT sizes: ``d_ff`` 256 (4 × d_model); LayerNorm eps 1e-5."""


@dataclass(frozen=True)
class LlamaConfig(_Config):
    """Llama sizes: ``d_ff`` 176 (≈ 8/3 × d_model, a multiple of 16, so SwiGLU's three matrices hold about as
    many weights as GPT's two), rotary base ``rope_base``, RMSNorm eps 1e-5."""
    d_ff: int = 176
    rope_base: float = 10000.0

    def __post_init__(self):
        super().__post_init__()
        if self.head_dim % 2:
            raise ValueError(f"d_model // n_head must be even for rotary embeddings: "
                             f"{self.d_model} // {self.n_head} = {self.head_dim}")
        if not self.rope_base > 1:
            raise ValueError(f"rope_base must be greater than 1: {self.rope_base!r}")


def _heads(x, n_head, head_dim):
    """(B, T, C) → (B, n_head, T, head_dim)."""
    return x.view(x.size(0), x.size(1), n_head, head_dim).transpose(1, 2)


def _merge(y, d_model):
    """(B, n_head, T, head_dim) → (B, T, C)."""
    return y.transpose(1, 2).reshape(y.size(0), y.size(2), d_model)


class _Decoder(nn.Module):
    """What both models share: nanoGPT's initialisation and the parameter count."""

    def _init_weights(self, n_layer):
        for name, m in self.named_modules():
            if isinstance(m, nn.Linear):
                residual = name.endswith(("proj", "down"))
                nn.init.normal_(m.weight, 0.0, 0.02 / math.sqrt(2 * n_layer) if residual else 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, 0.0, 0.02)

    def num_params(self):
        """Distinct parameters (a tied head counted once)."""
        return sum(p.numel() for p in self.parameters())


# --- GPT ------------------------------------------------------------------------------------------------

class GPTAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_head, self.head_dim, self.d_model = c.n_head, c.head_dim, c.d_model
        self.scale = 1.0 / math.sqrt(c.head_dim)
        self.q, self.k, self.v = (nn.Linear(c.d_model, c.d_model) for _ in range(3))
        self.proj = nn.Linear(c.d_model, c.d_model)
        self.register_buffer("tril", torch.tril(torch.ones(c.context, c.context)), persistent=False)

    def forward(self, x):
        T = x.size(1)
        q, k, v = (_heads(f(x), self.n_head, self.head_dim) for f in (self.q, self.k, self.v))
        att = (q @ k.transpose(-2, -1)) * self.scale
        att = att.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        return self.proj(_merge(att @ v, self.d_model))


class GPTBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.attn = GPTAttention(c)
        self.fc, self.gelu, self.proj = nn.Linear(c.d_model, c.d_ff), nn.GELU(), nn.Linear(c.d_ff, c.d_model)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.proj(self.gelu(self.fc(self.ln2(x))))


class GPT(_Decoder):
    def __init__(self, config=None):
        super().__init__()
        c = self.config = config if config is not None else GPTConfig()
        self.wte, self.wpe = nn.Embedding(c.vocab_size, c.d_model), nn.Embedding(c.context, c.d_model)
        self.register_buffer("pos", torch.arange(c.context), persistent=False)
        self.blocks = nn.ModuleList(GPTBlock(c) for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.head.weight = self.wte.weight                  # tied
        self._init_weights(c.n_layer)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(self.pos[:idx.size(1)])
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


# --- Llama ----------------------------------------------------------------------------------------------

def rotate_half(x, half):
    """``(x1, x2) → (-x2, x1)`` on the halves (``half`` wide) of the last axis; the minus is a multiply by a
    constant, one of the front end's operations."""
    return torch.cat((x[..., half:] * -1.0, x[..., :half]), dim=-1)


class LlamaAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_head, self.head_dim, self.d_model = c.n_head, c.head_dim, c.d_model
        self.wq, self.wk, self.wv = (nn.Linear(c.d_model, c.d_model, bias=False) for _ in range(3))
        self.proj = nn.Linear(c.d_model, c.d_model, bias=False)

    def forward(self, x, cos, sin):
        q, k, v = (_heads(f(x), self.n_head, self.head_dim) for f in (self.wq, self.wk, self.wv))
        q = q * cos + rotate_half(q, self.head_dim // 2) * sin
        k = k * cos + rotate_half(k, self.head_dim // 2) * sin
        return self.proj(_merge(F.scaled_dot_product_attention(q, k, v, is_causal=True), self.d_model))


class LlamaBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm1, self.norm2 = nn.RMSNorm(c.d_model, eps=1e-5), nn.RMSNorm(c.d_model, eps=1e-5)
        self.attn = LlamaAttention(c)
        self.gate, self.up = nn.Linear(c.d_model, c.d_ff, bias=False), nn.Linear(c.d_model, c.d_ff, bias=False)
        self.down = nn.Linear(c.d_ff, c.d_model, bias=False)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.norm1(x), cos, sin)
        h = self.norm2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Llama(_Decoder):
    def __init__(self, config=None):
        super().__init__()
        c = self.config = config if config is not None else LlamaConfig()
        self.tok = nn.Embedding(c.vocab_size, c.d_model)
        inv_freq = c.rope_base ** (-torch.arange(0, c.head_dim, 2, dtype=torch.float64) / c.head_dim)
        angles = torch.outer(torch.arange(c.context, dtype=torch.float64), inv_freq)
        angles = torch.cat((angles, angles), dim=-1)        # (context, head_dim): pair i with i + head_dim/2
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)
        self.blocks = nn.ModuleList(LlamaBlock(c) for _ in range(c.n_layer))
        self.norm = nn.RMSNorm(c.d_model, eps=1e-5)
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self._init_weights(c.n_layer)

    def forward(self, idx):
        T = idx.size(1)
        cos, sin = self.cos[:T], self.sin[:T]
        x = self.tok(idx)
        for block in self.blocks:
            x = block(x, cos, sin)
        return self.head(self.norm(x))


#: architecture name → (model class, config class)
ARCHS = {"gpt": (GPT, GPTConfig), "llama": (Llama, LlamaConfig)}


def config_of(arch, config=None):
    """The config of an ``arch`` ("gpt" or "llama") model: ``config`` itself, a dict of its fields, or None
    (the defaults)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}: one of {', '.join(ARCHS)}")
    config_cls = ARCHS[arch][1]
    if config is None or isinstance(config, dict):
        return config_cls(**(config or {}))
    if not isinstance(config, config_cls):
        raise TypeError(f"a {arch} model takes a {config_cls.__name__}, not {type(config).__name__}")
    return config


def build(arch, config=None):
    """A fresh model of ``arch`` with ``config_of(arch, config)``."""
    config = config_of(arch, config)
    return ARCHS[arch][0](config)
