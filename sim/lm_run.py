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

A program compiled for a system of chips (``compile_lm(chips=N)``, ``compiler.system.decode``) runs the same
way: golden steps every chip together as one ``golden.system.SystemSim`` per step (each chip's MEM carried),
the host writing every chip's token word; the RTL plays each chip's conversation on its own host edge of the
system harness (``sim.system_verilator.SystemSimulator``), every chip's STATUS cycles and the logits (chip 0's,
or every chip's share when the head is divided) compared with golden step by step.

``host_cycles`` per step are the host edge's commands a user's generation needs (one per cycle when the edge
is not stalled, ``StepData.host_words``; on a system the busiest edge's, the edges working at once): the writes,
START, STATUS and the reads (with ``pick="chip"`` only the token word; the RTL check also reads the logits, not
counted); the harness's measured cycles for the
whole conversation are in ``Generation.harness_cycles`` on the RTL.
"""
import numpy as np

from compiler.runners import register_runner
from golden.chip import ChipSim
from golden.system import SystemSim
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


def _golden(lm, prompt, n, temperature, seed, chip_cycles=None):
    """Tokens, per-step cycles and logits (golden), every position run; each step's per-chip cycles appended to
    ``chip_cycles`` when given."""
    c = lm.config
    rng = np.random.default_rng(seed)
    mems = [_mems(c, lm.memory_image(k)) for k in range(lm.chips)]
    ids, out, cycles, logits, feeds = list(prompt), [], [], [], []
    pos = 0
    while len(out) < n:
        tok = ids[pos]
        res, chips = _step(lm, mems, tok, pos, len(prompt))
        if res.error is not None:
            raise RuntimeError(f"the chip faulted at position {pos}: {res.error}")
        cycles.append(int(res.cycles))
        if chip_cycles is not None:
            chip_cycles.append([int(r.cycles) for r in chips])
        feeds.append((tok, pos))
        mems = [{p: np.asarray(r.mems[p], np.int64) for p in c.positions("mem")} for r in chips]
        codes = lm.logits_of([r.read_mem for r in chips])
        logits.append(codes)
        pos += 1
        if pos >= len(prompt):
            nxt = lm.choose(codes, temperature, rng)
            if lm.pick == "chip":           # each chip wrote its pick into its token word: the same rule
                for k, (r, (_, data)) in enumerate(zip(chips, lm.parts)):
                    (s, bank, addr, _), = data.token
                    chip = data.token_of(r.read_mem(s, bank, addr, 1)[0])
                    if chip != nxt:
                        raise RuntimeError(f"chip {k} picked token {chip} at position {pos - 1}, the greedy rule "
                                           f"on its logits {nxt}")
            out.append(nxt)
            ids.append(nxt)
    return out, cycles, logits, feeds


def _step(lm, mems, tok, pos, prompt_len):
    """One step on golden: ``(result, [each chip's ChipResult])``; a system of ``lm.chips`` chips runs as one
    ``golden.system.SystemSim`` (every chip's host edge written before the shared START)."""
    c = lm.config
    sim = ChipSim(c) if lm.chips == 1 else SystemSim(c, lm.chips, "line")
    chips = [sim] if lm.chips == 1 else [sim.chip(k) for k in range(lm.chips)]
    for s_, (model, data), m in zip(chips, lm.parts, mems):
        s_.load(model.program.words)
        for p, words in m.items():
            for bank in range(c.mem_banks):
                s_.write_mem(p, bank, 0, words[bank])
        for s, bank, addr, words in _writes(data, lm.pick, tok, pos, prompt_len):
            s_.write_mem(s, bank, addr, words)
    res = sim.run()
    return res, [res] if lm.chips == 1 else list(res.chips)


def _writes(data, pick, tok, pos, prompt_len):
    """The host's writes (``StepData`` ``data`` of one chip) before the step at ``pos``: the token word, unless the
    chip picked it (``pick="chip"``: every token after the prompt's)."""
    return data.writes(tok, pos) if pick == "host" or pos < prompt_len else []


def _per_step(values, prompt_len):
    """Prefill first (the prompt's steps summed), then one entry per decode step."""
    return [int(sum(values[:prompt_len]))] + [int(v) for v in values[prompt_len:]]


def _reader(words):
    """A ``read(slice, bank, addr, n)`` handing out the next ``n`` of ``words`` (read in segment order)."""
    return lambda s, b, a, n: np.array([next(words) for _ in range(n)])


def _chip_commands(lm, k, feeds, prompt_len, reads):
    """Chip ``k``'s host conversation: its queues and memory image once, then per step its token word's write
    (``_writes``), START, STATUS and ``reads`` (``(slice, bank, addr)`` words)."""
    c = lm.config
    model, data = lm.parts[k]
    cmds = []
    for p, words in enumerate(model.program.words):
        for a, w in enumerate(words):
            cmds.append(pack_command(c, HostOp.WRITE_QUEUE, slice=p, addr=a, data=int(w)))
    for s, bank, addr, v in check_mem_inputs(c, lm.memory_image(k)):
        for i, vec in enumerate(v):
            cmds.append(pack_command(c, HostOp.WRITE_MEM, slice=s, bank=bank, addr=addr + i, data=list(vec)))
    for tok, pos in feeds:
        for s, bank, addr, v in _writes(data, lm.pick, tok, pos, prompt_len):
            for i, vec in enumerate(v):
                cmds.append(pack_command(c, HostOp.WRITE_MEM, slice=c.slice_index(s), bank=bank, addr=addr + i,
                                         data=[int(x) for x in vec]))
        cmds += [pack_command(c, HostOp.START), pack_command(c, HostOp.STATUS)]
        cmds += [pack_command(c, HostOp.READ_MEM, slice=p, bank=b, addr=a) for p, b, a in reads]
    return cmds


def _verilator(lm, feeds, logits, cycles, build_dir, seed, prompt_len, tokens, chip_cycles):
    c = lm.config.check_rtl()
    root = default_build() / "sim" if build_dir is None else build_dir
    # per chip: its logits (chip 0, or every chip when the head is divided) and the token word it wrote (pick="chip")
    logit_reads = [[(c.slice_index(s), b, a + i) for s, b, a, n in data.logits.segments for i in range(n)]
                   if k in lm.logit_chips else [] for k, (_, data) in enumerate(lm.parts)]
    per_chip = [lr + ([(c.slice_index(s), b, a) for s, b, a, _ in data.token] if lm.pick == "chip" else [])
                for lr, (_, data) in zip(logit_reads, lm.parts)]
    cmds = [_chip_commands(lm, k, feeds, prompt_len, per_chip[k]) for k in range(lm.chips)]
    n_resp = [len(feeds) * (1 + len(r)) for r in per_chip]
    what = f"generating on the RTL ({len(feeds)} steps of {lm.step_cycles} cycles, config {c.name}" + (
        f", {lm.chips} chips)" if lm.chips > 1 else ")")
    limit = sum(cycles) + 8 * max(map(len, cmds)) + 10_000
    if lm.chips == 1:
        from .chip_verilator import ChipSimulator
        sim = ChipSimulator(c, build_root=root)
        with progress.step(what):
            played = sim.play(cmds[0], n_resp[0], seed=seed, max_cycles=limit)
        responses = [played.responses]
    else:
        from .system_verilator import SystemSimulator
        sim = SystemSimulator(c, lm.chips, "line", build_root=root)
        with progress.step(what):
            played = sim.play(cmds, n_resp, seed=seed, max_cycles=limit)
        responses = played.responses
    ids = [tok for tok, _ in feeds] + [tokens[-1]]
    for step, (_tok, pos) in enumerate(feeds):
        logit_words = []
        for k in range(lm.chips):
            m = 1 + len(per_chip[k])
            status = unpack_status(responses[k][step * m])
            words = [decode_vector(c, r) for r in responses[k][step * m + 1:(step + 1) * m]]
            where = f"step {step} (position {pos})" + (f", chip {k}" if lm.chips > 1 else "")
            if status["error"] or not status["done"]:
                return False, f"{where}: the RTL reported {status}", played
            if status["cycles"] != chip_cycles[step][k]:
                return False, f"{where}: cycles RTL {status['cycles']}, golden {chip_cycles[step][k]}", played
            n_logit = len(logit_reads[k])
            picked = words[n_logit:]
            if picked and pos >= prompt_len - 1 and lm.parts[k][1].token_of(picked[0]) != ids[step + 1]:
                return False, (f"{where}: the RTL picked token {lm.parts[k][1].token_of(picked[0])}, golden "
                               f"{ids[step + 1]}"), played
            logit_words.append(iter(words[:n_logit]))
        rtl = lm.logits_of([_reader(w) for w in logit_words])
        diff = np.flatnonzero(rtl != logits[step])
        if diff.size:
            i = int(diff[0])
            return False, (f"step {step} (position {pos}): logit {i} RTL {int(rtl[i])}, golden "
                           f"{int(logits[step][i])} ({diff.size} differ)"), played
    return True, None, played


def generate(lm, prompt_ids, max_new_tokens, backend="golden", *, temperature=0.0, seed=0, build_dir=None,
             check=True):
    """Generate with ``lm`` on ``backend`` (module docstring): a ``compiler.lm.Generation``."""
    from compiler.lm import Generation
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    prompt = lm.check_prompt(prompt_ids, max_new_tokens)
    chip_cycles = []
    tokens, cycles, logits, feeds = _golden(lm, prompt, max_new_tokens, temperature, seed, chip_cycles)
    ref = lm.reference(prompt, max_new_tokens, temperature, seed)
    host = [lm.step_host_words(pos < len(prompt)) for _, pos in feeds]
    gen = Generation(tokens, ref, _per_step(cycles, len(prompt)), _per_step([lm.step_cycles] * len(cycles),
                     len(prompt)), _per_step(host, len(prompt)), backend, prompt)
    if backend == "verilator":
        ok, mismatch, played = _verilator(lm, feeds, logits, cycles, build_dir, seed, len(prompt), tokens,
                                          chip_cycles)
        gen.match, gen.mismatch = ok, mismatch
        gen.harness_cycles = int(played.harness_cycles)
        if check and not ok:
            raise RuntimeError(f"the RTL and the golden model differ: {mismatch}")
    return gen


register_runner("lm", generate)
