"""``LMProgram``: a language model compiled for generation (``compile_lm``), and ``Generation``, what a run gives.

* ``generate(prompt_ids, max_new_tokens, backend="golden"|"verilator", temperature=0.0, seed=0) -> Generation``
  through the registered ``"lm"`` runner (``compiler.runners``; ``sim/lm_run.py``);
* ``reference(prompt_ids, max_new_tokens, temperature, seed)``: the tokens the int8 reference (``QGraph.run_int8``
  on the whole sequence so far, padded to the context; causal, so the padding changes nothing) generates;
* ``choose(logit_codes, temperature, rng)``: the one decoding rule both use: greedy (``temperature == 0``: the
  lowest index among the largest codes) or a sample of ``softmax(dequantized logits / temperature)`` drawn with
  ``rng`` (``numpy.random.default_rng(seed)``, one draw per token): the same seed gives the same text on every
  backend, since the logits are equal;
* ``save(dir)`` / ``LMProgram.load(dir)``: ``lm.json`` + ``data.npz`` (``saved.py``; no pickle): the program,
  its constants, the host's per-step data and the int8 reference, so a loaded program generates and checks
  exactly as the compiled one.

The prompt's tokens go one per step (the prefill), then each generated token but the last.

A program for a system of chips (``compile_lm(chips=N)``): ``chips``, ``parts`` (a ``(CompiledModel, StepData)``
per chip, chip 0's also ``model`` and ``data``), ``chip_cycles``, ``split`` (what each chip holds),
``link_words`` (vectors a step on each directed link), ``logit_chips`` (whose logits the host reads);
``step_cycles`` is the largest chip's and ``host_words`` the busiest host edge's.

``Generation``: ``tokens`` (generated ids), ``reference`` (the int8 reference's for the same prompt and decoding),
``cycles`` and ``predicted_cycles`` per step (prefill first: the prompt's steps summed, then one entry per
decode step), ``host_cycles`` (per step, prefill first: the host edge's words, one command per cycle: the
writes before START, START, STATUS and the logits' reads), ``tokens_match``, ``backend``.
"""
from dataclasses import dataclass, field

import numpy as np

from ..runners import runner

__all__ = ["LMProgram", "Generation"]


@dataclass
class Generation:
    tokens: list
    reference: list
    cycles: list
    predicted_cycles: list
    host_cycles: list
    backend: str
    prompt: list = field(default_factory=list)
    match: bool | None = None          # verilator: the RTL equalled golden word for word at every step
    mismatch: str | None = None

    @property
    def tokens_match(self):
        return self.tokens == self.reference


class LMProgram:
    """A compiled language model (module docstring)."""

    def __init__(self, config, context, vocab, qgraph, model, data, timings, shape=None, parts=None, split=()):
        self.config, self.context, self.vocab = config, context, vocab
        self.qgraph, self.model, self.data = qgraph, model, data
        self.timings = dict(timings)
        self.shape = dict(shape or {})
        # a system of chips (compile_lm(chips=N)): one (CompiledModel, StepData) per chip, chip 0's first (the
        # one whose logits the host reads); split: what each chip holds (ShardPlan.describe)
        self.parts = list(parts) if parts else [(model, data)]
        self.split = list(split)

    @property
    def chips(self):
        """Chips the decode step runs on (1, or a line of ``compiler.system.decode``'s tensor-parallel shares)."""
        return len(self.parts)

    def perf_shape(self):
        """The model's shape as the fields of ``perf.models.ModelShape`` (layers, d_model, heads, KV heads,
        d_ff, ffn kind, vocabulary, context, tied head, biases, learned positions): what ``perf.estimate`` of
        this program reads, beside its exact ``step_cycles``."""
        if not self.shape:
            raise ValueError("this program was saved without its model's shape (compile it again)")
        return dict(self.shape)

    # ---- the program ---------------------------------------------------------------------------------
    @property
    def step_cycles(self):
        """Cycles of one decode step (every position: one program; on a system the largest chip's)."""
        return max(self.chip_cycles)

    @property
    def install_cycles(self):
        """Each chip's weight rows installed in a decode step (the ``count`` of its LOADWs): cycles of its MXU's
        weights unit, one row a cycle, which ``perf.installs`` gives in closed form from the model's shape."""
        return tuple(int(m.program.count_items("LOADW")) for m, _ in self.parts)

    @property
    def link_words(self):
        """Vectors each directed link carries in a decode step (``"c0.east->c1.west"``: SEND items of chip 0's
        east link slice), read off the programs; empty on one chip."""
        if self.chips == 1:
            return {}
        from ..system.shard import link_words
        return link_words(self.config, [m.program for m, _ in self.parts])

    @property
    def chip_cycles(self):
        """Each chip's predicted cycles of a decode step."""
        return tuple(int(m.program.predicted_cycles) for m, _ in self.parts)

    @property
    def host_words(self):
        """Host-edge commands of a decode step (``StepData.host_words``): the token word's write when the host
        picks, START, STATUS, the reads (the logits, or the chip's token word). On a system of chips every chip
        has its own host edge, all working at once: the busiest edge's."""
        return self.step_host_words(prompt_step=False)

    def step_host_words(self, prompt_step):
        """Host-edge commands of a step (a prompt's step writes the token word even when the chip picks)."""
        return max(d.host_words(prompt_step) for _, d in self.parts)

    @property
    def logit_chips(self):
        """The chips whose logits the host reads, in vocabulary order: chip 0 (it computes them all) or every
        chip (the head divided by columns: ``compiler.system.decode``)."""
        features = [d.logits.features for _, d in self.parts]
        return list(range(self.chips)) if self.chips > 1 and sum(features) == self.vocab else [0]

    @property
    def pick(self):
        """Who picks the next token: ``"host"`` or ``"chip"`` (greedy, compiled with ``compile_lm(pick=...)``)."""
        return self.data.pick

    def memory_image(self, chip=0):
        """The constants loaded once before the first step (weights, tables, the zeroed cache) of chip ``chip``."""
        return list(self.parts[chip][0].constants)

    def logits_of(self, read):
        """The logit codes (int8, V) from ``read(slice, bank, addr, n)`` (words) over the output segments; on a
        system of chips ``read`` is a list, one per chip (only ``logit_chips``' are called)."""
        reads = read if isinstance(read, (list, tuple)) else [read]
        C = self.config.mxu_cols
        codes = []
        for k in self.logit_chips:
            out = self.parts[k][1].logits
            words = np.concatenate([reads[k](s, b, a, n) for s, b, a, n in out.segments])
            codes += [words[nt, :min(C, out.features - nt * C)] for nt in range(len(words))]
        return np.concatenate(codes).astype(np.int8)

    # ---- decoding ------------------------------------------------------------------------------------
    def check_prompt(self, prompt_ids, max_new_tokens):
        p = np.asarray(prompt_ids)
        if p.ndim != 1 or p.dtype.kind not in "iu" or not len(p):
            raise ValueError(f"prompt_ids must be a non-empty 1-D sequence of token ids, not {p!r}")
        if p.min() < 0 or p.max() >= self.vocab:
            raise ValueError(f"prompt_ids must be in 0 … {self.vocab - 1}, not {int(p.min())} … {int(p.max())}")
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be an int >= 1, not {max_new_tokens!r}")
        if len(p) + max_new_tokens - 1 > self.context:
            raise ValueError(f"the prompt ({len(p)} tokens) and max_new_tokens ({max_new_tokens}) must fit the "
                             f"compiled context of {self.context}: at most {self.context - len(p) + 1} new tokens")
        return [int(t) for t in p]

    def choose(self, codes, temperature, rng):
        if temperature == 0:
            return int(np.argmax(codes))
        qp = self.qgraph.params_of(next(iter(self.qgraph.outputs)))
        z = qp.dequantize(codes).astype(np.float64) / temperature
        pr = np.exp(z - z.max())
        return int(rng.choice(len(pr), p=pr / pr.sum()))

    def reference_logits(self, ids):
        """The int8 reference's logit codes for the last of ``ids`` (padded to the context)."""
        T = self.context
        x = np.zeros((1, T), np.int64)
        x[0, :len(ids)] = ids
        (out,) = self.qgraph.run_int8({self.qgraph.graph.inputs[0].name: x}).values()
        return out[0, len(ids) - 1]

    def reference(self, prompt_ids, max_new_tokens, temperature=0.0, seed=0):
        ids = self.check_prompt(prompt_ids, max_new_tokens)
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(max_new_tokens):
            tok = self.choose(self.reference_logits(ids), temperature, rng)
            out.append(tok)
            ids.append(tok)
        return out

    def save(self, dir):
        """Write ``lm.json`` and ``data.npz`` into the folder ``dir`` (``compiler.lm.saved``, no pickle)."""
        from .saved import save_lm
        return save_lm(self, dir)

    @classmethod
    def load(cls, dir):
        """The ``LMProgram`` saved in ``dir``; ``ValueError`` naming what is missing or wrong."""
        from .saved import load_lm
        return load_lm(dir, cls)

    def generate(self, prompt_ids, max_new_tokens, backend="golden", temperature=0.0, seed=0, **options):
        """Generate on ``backend`` (module docstring): a ``Generation``."""
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature < 0:
            raise ValueError(f"temperature must be a number >= 0, not {temperature!r}")
        if temperature and self.pick == "chip":
            raise ValueError(f"temperature must be 0 for a program whose chip picks each token greedily "
                             f"(compile_lm(..., pick='chip')); compile with pick='host' to sample, not {temperature}")
        self.check_prompt(prompt_ids, max_new_tokens)
        return runner("lm")(self, prompt_ids, max_new_tokens, backend=backend, temperature=float(temperature),
                            seed=seed, **options)
