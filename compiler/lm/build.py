"""``compile_lm(model, max_context, config="small", calibration=ids) -> LMProgram``.

* ``model``: a decoder-only ``torch.nn.Module`` taking token ids ``(B, T)`` and returning logits ``(B, T, V)``
  (the front end's ops: ``compiler.frontend_torch``);
* ``max_context``: the longest sequence it will see, a multiple of ``mxu_cols`` (the key tiles of the cache);
* ``calibration``: token ids, a 1-D run of text (cut into windows of ``max_context``) or ``(B, max_context)``
  windows: the int8 ranges are calibrated on them (``CALIBRATION_WINDOWS`` windows at most);
* ``chips``: 1, or the chips of a line the decode step is divided among in tensor parallel
  (``compiler.system.decode``: heads and MLP columns split, the partial sums added over the links);
* ``pick``: ``"host"`` (the host reads the logits and picks each token, greedy or sampled) or ``"chip"`` (the
  chip picks greedily and writes the token word the next step's embedding READX reads: the host only STARTs
  and reads the token).

The model is traced twice, at ``max_context`` (quantized: the int8 reference, whose every row depends only
on the rows before it) and for one token (the shapes of a decode step), and the decode step is lowered
(``decode.py``). ``timings`` says how long tracing, quantizing and lowering took.
"""
import time

import numpy as np

from spec.config import MAX_CHIPS

from ..api import _preset
from ..quantize import quantize
from .decode import lower_decode
from .program import LMProgram

__all__ = ["compile_lm", "CALIBRATION_WINDOWS"]

#: Calibration windows used at most (evenly spaced over what is given).
CALIBRATION_WINDOWS = 32


def _windows(calibration, T):
    ids = np.asarray(calibration)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"calibration must be integer token ids, not {ids.dtype}")
    if ids.ndim == 1:
        n = len(ids) // T
        if n < 1:
            raise ValueError(f"calibration must hold at least max_context = {T} ids, not {len(ids)}")
        ids = ids[:n * T].reshape(n, T)
    if ids.ndim != 2 or ids.shape[1] != T:
        raise ValueError(f"calibration must be 1-D ids or windows of shape (B, {T}), not shape {ids.shape}")
    if len(ids) > CALIBRATION_WINDOWS:
        ids = ids[np.linspace(0, len(ids) - 1, CALIBRATION_WINDOWS).round().astype(int)]
    return ids.astype(np.int64)


PICKS = ("host", "chip")


def compile_lm(model, max_context, config="small", calibration=None, pick="host", chips=1):
    """Compile the language model ``model`` for generation on ``config`` (module docstring)."""
    import torch

    from ..frontend_torch import from_torch
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (a decoder-only language model), not {type(model).__name__}")
    if isinstance(max_context, bool) or not isinstance(max_context, (int, np.integer)) or max_context < 1:
        raise ValueError(f"max_context must be an int >= 1, not {max_context!r}")
    if pick not in PICKS:
        raise ValueError(f"pick must be one of {', '.join(PICKS)} (who picks the next token), not {pick!r}")
    config = _preset(config)
    if isinstance(chips, bool) or not isinstance(chips, (int, np.integer)) or not 1 <= chips <= MAX_CHIPS:
        raise ValueError(f"chips must be an integer between 1 and {MAX_CHIPS}, not {chips!r}")
    T = int(max_context)
    if T % config.mxu_cols:
        raise ValueError(f"max_context must be a multiple of mxu_cols = {config.mxu_cols} of config {config.name} "
                         f"(the key tiles of the cache), not {T}")
    if calibration is None:
        raise ValueError("calibration must be given: token ids of text like what the model will see")
    timings = {}
    t0 = time.perf_counter()
    g_full = from_torch(model, np.zeros((1, T), np.int64))
    g_one = from_torch(model, np.zeros((1, 1), np.int64))
    timings["trace"] = time.perf_counter() - t0
    if len(g_full.inputs) != 1 or len(g_full.outputs) != 1:
        raise ValueError(f"model must take one input (token ids) and return one output (logits), not "
                         f"{len(g_full.inputs)} inputs and {len(g_full.outputs)} outputs")
    ids_name = g_full.inputs[0].name
    wins = _windows(calibration, T)
    t0 = time.perf_counter()
    q = quantize(g_full, [{ids_name: wins[i:i + 8]} for i in range(0, len(wins), 8)])
    timings["quantize"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if chips > 1:
        from ..system.decode import lower_decode_system
        parts, plan = lower_decode_system(q, g_one, config, int(chips), pick)
    else:
        parts, plan = [lower_decode(q, g_one, config, pick)], None
    timings["lower"] = time.perf_counter() - t0
    vocab = int(g_full.outputs[next(iter(g_full.outputs))].shape[-1])
    (model_d, data) = parts[0]
    return LMProgram(model_d.config, T, vocab, q, model_d, data, timings, shape=_shape(model, g_full, T, vocab),
                     parts=parts, split=plan.describe() if plan else ())


def _shape(model, g, T, vocab):
    """The model's shape by ``perf.models.ModelShape``'s fields (``LMProgram.perf_shape``), read off the graph."""
    att = [n for n in g.nodes if n.op == "attention"]
    _, H, _, hd = g.node(att[0].inputs[0]).shape
    kv_heads = g.node(att[0].inputs[1]).shape[1]
    d = H * hd
    linears = [n for n in g.nodes if n.op == "linear"]
    head = next((n for n in reversed(linears) if n.attrs["W"].shape == (d, vocab)), None)
    d_ff = max(n.attrs["W"].shape[1] for n in linears if n.attrs["W"].shape[0] == d and n is not head)
    emb = next((n for n in g.nodes if n.op == "embedding"), None)
    tied = bool(head is not None and emb is not None and emb.attrs["table"].shape == (vocab, d)
                and np.array_equal(head.attrs["W"], emb.attrs["table"].T))
    return {"name": type(model).__name__.lower(), "layers": len(att), "d_model": int(d), "n_heads": int(H),
            "n_kv_heads": int(kv_heads), "d_ff": int(d_ff),
            "ffn": "swiglu" if any(n.op == "silu" for n in g.nodes) else "gelu", "vocab": vocab, "context": T,
            "tied": tied, "bias": any("b" in n.attrs for n in linears),
            "learned_positions": any(n.op == "add" and np.ndim(n.attrs.get("b")) == 2 for n in g.nodes)}
