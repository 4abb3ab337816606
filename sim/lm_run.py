"""Generation with a compiled language model (``compiler.lm.LMProgram``) on golden or on the RTL.

``generate(lm, prompt_ids, max_new_tokens, backend="golden"|"verilator", temperature=0.0, seed=0)`` →
``compiler.lm.Generation``; registered as the ``"lm"`` runner of ``compiler.runners`` (``LMProgram.generate``
reaches it).

The host loop: load the program and the memory image once; per step write the token word (``StepData.writes``;
the chip finds the embedding row, the position rows and the masks by address), START, read the logits, choose
the next token (``LMProgram.choose``: the same rule and random stream as the reference). The prompt's tokens go
one per step (the prefill), then every generated token but the last.

* golden: ``golden.chip.ChipSim`` per step, MEM carried from one run to the next (the chip keeps MEM across
  START); a program compiled with ``pick="chip"`` writes its greedy pick into the token word itself, checked
  against the host's rule on the same logits, and the host writes the token word for the prompt only;
* verilator: golden first (its tokens), then one harness run of the whole host conversation (queues and
  memory image once, then per step the writes, START, STATUS and the logits' reads), as a live host would have
  sent it if the RTL's logits equal golden's at every step, which is checked step by step (the logits and the
  cycle count): a difference is reported at the first step it appears, with the tokens the RTL's logits give.

``host_cycles`` per step are the host edge's commands a user's generation needs (one per cycle when the edge
is not stalled, ``StepData.host_words``): the writes, START, STATUS and the reads (with ``pick="chip"`` only
the token word; the RTL check also reads the logits, not counted); the harness's measured cycles for the
whole conversation are in ``Generation.harness_cycles`` on the RTL.
"""
import numpy as np

from compiler.runners import register_runner
from golden.chip import ChipSim
from spec.host import HostOp, pack_command, unpack_status
from spec.image import check_mem_inputs

from . import progress
from .chip_run import decode_vector
from .runner import BACKENDS, default_build

__all__ = ["generate"]


def _mems(config, image):
    mems = {p: np.zeros((config.mem_banks, config.mem_depth, config.lanes), np.int64)
            for p in config.positions("mem")}
    for p, bank, addr, v in check_mem_inputs(config, image):
        mems[p][bank, addr:addr + len(v)] = v
    return mems


def _golden(lm, prompt, n, temperature, seed):
    """Tokens, per-step cycles and logits (golden), every position run."""
    c = lm.config
    rng = np.random.default_rng(seed)
    mems = _mems(c, lm.memory_image())
    programs = lm.model.program.words
    ids, out, cycles, logits, feeds = list(prompt), [], [], [], []
    pos = 0
    while len(out) < n:
        tok = ids[pos]
        sim = ChipSim(c)
        sim.load(programs)
        for p, m in mems.items():
            for bank in range(c.mem_banks):
                sim.write_mem(p, bank, 0, m[bank])
        for s, bank, addr, words in _writes(lm, tok, pos, len(prompt)):
            sim.write_mem(s, bank, addr, words)
        res = sim.run()
        if res.error is not None:
            raise RuntimeError(f"the chip faulted at position {pos}: {res.error}")
        cycles.append(int(res.cycles))
        feeds.append((tok, pos))
        mems = {p: np.asarray(res.mems[p], np.int64) for p in c.positions("mem")}
        codes = lm.logits_of(res.read_mem)
        logits.append(codes)
        pos += 1
        if pos >= len(prompt):
            nxt = lm.choose(codes, temperature, rng)
            if lm.pick == "chip":           # the chip wrote its pick into the token word: the same rule
                (s, bank, addr, _), = lm.data.token
                chip = lm.data.token_of(res.read_mem(s, bank, addr, 1)[0])
                if chip != nxt:
                    raise RuntimeError(f"the chip picked token {chip} at position {pos - 1}, the greedy rule on "
                                       f"its logits {nxt}")
            out.append(nxt)
            ids.append(nxt)
    return out, cycles, logits, feeds


def _writes(lm, tok, pos, prompt_len):
    """The host's writes before the step at ``pos``: the token word, unless the chip picked it (``pick="chip"``:
    every token after the prompt's)."""
    return lm.data.writes(tok, pos) if lm.pick == "host" or pos < prompt_len else []


def _per_step(values, prompt_len):
    """Prefill first (the prompt's steps summed), then one entry per decode step."""
    return [int(sum(values[:prompt_len]))] + [int(v) for v in values[prompt_len:]]


def _reader(words):
    """A ``read(slice, bank, addr, n)`` handing out the next ``n`` of ``words`` (read in segment order)."""
    return lambda s, b, a, n: np.array([next(words) for _ in range(n)])


def _verilator(lm, feeds, logits, cycles, build_dir, seed, prompt_len, tokens):
    from .chip_verilator import ChipSimulator
    c = lm.config.check_rtl()
    sim = ChipSimulator(c, build_root=default_build() / "sim" if build_dir is None else build_dir)
    cmds = []
    for p, words in enumerate(lm.model.program.words):
        for a, w in enumerate(words):
            cmds.append(pack_command(c, HostOp.WRITE_QUEUE, slice=p, addr=a, data=int(w)))
    for s, bank, addr, v in check_mem_inputs(c, lm.memory_image()):
        for i, vec in enumerate(v):
            cmds.append(pack_command(c, HostOp.WRITE_MEM, slice=s, bank=bank, addr=addr + i, data=list(vec)))
    reads = [(c.slice_index(s), b, a + i) for s, b, a, n in lm.data.logits.segments for i in range(n)]
    n_logit = len(reads)
    if lm.pick == "chip":                   # and the token word the chip wrote
        reads += [(c.slice_index(s), b, a) for s, b, a, _ in lm.data.token]
    ids = [tok for tok, _ in feeds] + [tokens[-1]]
    n_resp = 0
    for tok, pos in feeds:
        for s, bank, addr, v in _writes(lm, tok, pos, prompt_len):
            for i, vec in enumerate(v):
                cmds.append(pack_command(c, HostOp.WRITE_MEM, slice=c.slice_index(s), bank=bank, addr=addr + i,
                                         data=[int(x) for x in vec]))
        cmds += [pack_command(c, HostOp.START), pack_command(c, HostOp.STATUS)]
        cmds += [pack_command(c, HostOp.READ_MEM, slice=p, bank=b, addr=a) for p, b, a in reads]
        n_resp += 1 + len(reads)
    with progress.step(f"generating on the RTL ({len(feeds)} steps of {lm.step_cycles} cycles, config {c.name})"):
        played = sim.play(cmds, n_resp, seed=seed, max_cycles=sum(cycles) + 8 * len(cmds) + 10_000)
    k = 0
    for step, (_tok, pos) in enumerate(feeds):
        status = unpack_status(played.responses[k])
        words = [decode_vector(c, r) for r in played.responses[k + 1:k + 1 + len(reads)]]
        k += 1 + len(reads)
        if status["error"] or not status["done"]:
            return False, f"step {step} (position {pos}): the RTL reported {status}", played
        if status["cycles"] != cycles[step]:
            return False, f"step {step} (position {pos}): cycles RTL {status['cycles']}, golden {cycles[step]}", played
        rtl = lm.logits_of(_reader(iter(words[:n_logit])))
        if lm.pick == "chip" and pos >= prompt_len - 1 and lm.data.token_of(words[n_logit]) != ids[step + 1]:
            return False, (f"step {step} (position {pos}): the RTL picked token {lm.data.token_of(words[n_logit])}, "
                           f"golden {ids[step + 1]}"), played
        diff = np.flatnonzero(rtl != logits[step])
        if diff.size:
            i = int(diff[0])
            return False, (f"step {step} (position {pos}): logit {i} RTL {int(rtl[i])}, golden {int(logits[step][i])}"
                           f" ({diff.size} differ)"), played
    return True, None, played


def generate(lm, prompt_ids, max_new_tokens, backend="golden", *, temperature=0.0, seed=0, build_dir=None,
             check=True):
    """Generate with ``lm`` on ``backend`` (module docstring): a ``compiler.lm.Generation``."""
    from compiler.lm import Generation
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    prompt = lm.check_prompt(prompt_ids, max_new_tokens)
    tokens, cycles, logits, feeds = _golden(lm, prompt, max_new_tokens, temperature, seed)
    ref = lm.reference(prompt, max_new_tokens, temperature, seed)
    host = [lm.data.host_words(pos < len(prompt)) for _, pos in feeds]
    gen = Generation(tokens, ref, _per_step(cycles, len(prompt)), _per_step([lm.step_cycles] * len(cycles),
                     len(prompt)), _per_step(host, len(prompt)), backend, prompt)
    if backend == "verilator":
        ok, mismatch, played = _verilator(lm, feeds, logits, cycles, build_dir, seed, len(prompt), tokens)
        gen.match, gen.mismatch = ok, mismatch
        gen.harness_cycles = int(played.harness_cycles)
        if check and not ok:
            raise RuntimeError(f"the RTL and the golden model differ: {mismatch}")
    return gen


register_runner("lm", generate)
