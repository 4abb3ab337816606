"""``conveyor demo lm``: a reference language model trained here, compiled with ``compiler.compile_lm`` and
generating text on the chip, every token checked against the int8 reference.

``run_demo(arch="gpt", prompt="The ", tokens=32, backend="verilator", config="small", temperature=0.0,
seed=0, build_dir=None, pick="host")`` → a report (a dict, JSON-ready): the prompt and the generated text,
``tokens_match`` (every token equal to the int8 reference's), the validation losses (float and int8, nats per
character, on ``VAL_WINDOWS`` windows of the validation split, beside the corpus's unigram entropy), the cycles
(prefill, then each decode step, and the predictions), ``host_cycles`` (the host edge's commands per step:
with ``pick="host"`` the host picks each token from the logits and writes its token word, with
``pick="chip"`` the chip picks greedily and the host STARTs and reads the token; counted in
``tokens_per_s_per_user``), the weight-streaming bound of a decode step (every weight tile installed once:
Σ ⌈K/R⌉·⌈N/C⌉·R) and how far the step is from it, MXU utilization and the compile time. With ``chips > 1`` the
decode step runs in tensor parallel on a line of chips (``compiler.system.decode``): the report adds each
chip's cycles, the split, the vectors and busy fraction of each link, and the speed-up in tokens/s per user
over the same model compiled for one chip (host words counted on both).
"""
import time

import numpy as np

from compiler.lm import compile_lm
from sim import (
    lm_run,  # noqa: F401  (registers the "lm" runner)
    progress,
)

from . import text, train

__all__ = ["run_demo", "weight_bound_cycles", "val_losses", "VAL_WINDOWS"]

#: Validation windows the losses are measured on (evenly spaced over the split).
VAL_WINDOWS = 24


def weight_bound_cycles(lm):
    """Σ over the model's weight matrices of ⌈K/R⌉·⌈N/C⌉·R: one install of every tile, the batch-1 bound (on a
    system of chips: the chip with the most tiles of its share)."""
    c = lm.config
    R, C = c.mxu_rows, c.mxu_cols
    graphs = [m.qgraph for m, _ in lm.parts] if lm.chips > 1 else [lm.qgraph]
    return max(sum(-(-st.params["W"].shape[0] // R) * -(-st.params["W"].shape[1] // C) * R
                   for st in g.steps if st.op == "linear") for g in graphs)


def _loss(logits, y):
    z = logits.reshape(-1, logits.shape[-1]).astype(np.float64)
    z = z - z.max(1, keepdims=True)
    lp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return float(-lp[np.arange(len(lp)), y.reshape(-1)].mean())


def val_losses(model, lm, windows=VAL_WINDOWS):
    """``(float, int8)`` mean cross-entropy in nats per character on ``windows`` validation windows."""
    import torch
    _, va = text.split()
    x, y = text.windows(va, lm.context, windows)
    with torch.no_grad():
        fl = model(torch.from_numpy(x)).numpy()
    (q,) = lm.qgraph.run_dequantized({lm.qgraph.graph.inputs[0].name: x}).values()
    return _loss(fl, y), _loss(q, y)


def run_demo(arch="gpt", prompt="The ", tokens=32, backend="verilator", config="small", temperature=0.0, seed=0,
             build_dir=None, pick="host", chips=1):
    model, trained = train.load_or_train(arch, build_dir=build_dir)
    tr, _ = text.split()
    t0 = time.perf_counter()
    with progress.step(f"compiling the {arch} LM for config {config if isinstance(config, str) else config.name}"):
        lm = compile_lm(model, model.config.context, config, calibration=tr[:model.config.context * 32],
                        pick=pick, chips=chips)
    compile_s = time.perf_counter() - t0
    one = None
    if chips > 1:                   # the same model on one chip, for the speed-up (its cycles = RTL's: tested)
        with progress.step(f"compiling the {arch} LM for one chip (the speed-up's baseline)"):
            one = compile_lm(model, model.config.context, config, calibration=tr[:model.config.context * 32],
                             pick=pick)
    ids = [int(i) for i in text.encode(prompt)]
    t0 = time.perf_counter()
    g = lm.generate(ids, tokens, backend=backend, temperature=temperature, seed=seed)
    run_s = time.perf_counter() - t0
    f_loss, q_loss = val_losses(model, lm)
    c = lm.config
    bound = weight_bound_cycles(lm)
    step = lm.step_cycles
    per_token = step + lm.host_words
    return {
        "arch": arch, "config": c.name, "backend": backend, "prompt": prompt,
        "text": text.decode(np.array(g.tokens)), "tokens": g.tokens, "reference": g.reference,
        "tokens_match": g.tokens_match, "rtl_match": g.match, "mismatch": g.mismatch,
        "temperature": temperature, "seed": seed, "pick": pick,
        "prefill_cycles": g.cycles[0], "decode_cycles": g.cycles[1:],
        "predicted_prefill_cycles": g.predicted_cycles[0], "predicted_decode_cycles": g.predicted_cycles[1:],
        "host_cycles": g.host_cycles, "step_cycles": step, "host_words_per_step": lm.host_words,
        "clock_mhz": c.clock_mhz,
        "tokens_per_s_per_user": c.clock_mhz * 1e6 / per_token,
        "chip_only_tokens_per_s_per_user": c.clock_mhz * 1e6 / step,
        "weight_bound_cycles": bound, "bound_ratio": step / bound,
        "mxu_utilization": sum(m.matmul_items for m, _ in lm.parts) / (lm.chips * step),
        "float_val_loss": f_loss, "int8_val_loss": q_loss, "val_windows": VAL_WINDOWS,
        "unigram_entropy": text.unigram_entropy(), "trained_val_loss": trained["val_loss"],
        "compile_seconds": compile_s, "compile_timings": lm.timings, "run_seconds": run_s,
        "harness_cycles": getattr(g, "harness_cycles", None),
        "program_words": max(len(w) for w in lm.model.program.words),
        "chips": lm.chips, "chip_cycles": list(lm.chip_cycles), "split": lm.split,
        "link_words_per_step": lm.link_words, "link_latency": c.link_latency, "link_interval": c.link_interval,
        "link_busy": {name: n * c.link_interval / step for name, n in lm.link_words.items()},
        "one_chip_step_cycles": one.step_cycles if one else step,
        "one_chip_host_words_per_step": one.host_words if one else lm.host_words,
        "speedup_over_one_chip": ((one.step_cycles + one.host_words) / per_token) if one else 1.0,
    }
