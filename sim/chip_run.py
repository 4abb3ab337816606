"""Run a program on the chip RTL (Verilator) and on the golden model, and compare them.

``run_program(config, programs, inputs)``: the host commands (``spec.host``) load every queue and the
input data, START the run, read the STATUS, then read back every word of every MEM slice; the same
program runs on ``golden.chip.ChipSim``; the result says whether status (cycles, error) and memories agree,
and where they first differ.

``inputs`` is a list of ``(slice, bank, addr, vectors)`` (slice by index or name, ``vectors`` ``n × L``
int32 values). ``load_data(path, config)`` reads them from an ``.npz`` file whose keys are
``<slice>.<bank>`` or ``<slice>.<bank>@<addr>`` (e.g. ``mem1.0@64``), each an ``n × L`` integer array
(loaded with ``allow_pickle=False``).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np

from golden.chip import ChipSim
from spec import isa
from spec.config import ChipConfig
from spec.host import HostOp, pack_command, unpack_status
from spec.image import check_mem_inputs, read_npz
from spec.lanes import unpack_lanes

__all__ = ["ChipRunResult", "host_commands", "run_program", "load_data", "decode_vector", "reset_command"]


@dataclass
class ChipRunResult:
    """``match``: RTL and golden agree on status and every MEM word. ``error``: None or a dict with
    ``code`` (name), ``slice`` (name), ``pc``; ``mismatch``: the first difference, in words."""
    config: ChipConfig
    match: bool
    cycles: int
    golden_cycles: int
    error: dict | None
    golden_error: dict | None
    mismatch: str | None
    mems: dict = field(repr=False, default_factory=dict)       # RTL: slice name -> banks x depth x L
    golden_mems: dict = field(repr=False, default_factory=dict)
    harness_cycles: int = 0
    sim_seconds: float = 0.0
    loop_seconds: float | None = None
    golden_seconds: float = 0.0
    vcd_path: str | None = None
    run_dir: str | None = None

    def to_json(self):
        return {"match": self.match, "cycles": self.cycles, "golden_cycles": self.golden_cycles,
                "error": self.error, "golden_error": self.golden_error, "mismatch": self.mismatch,
                "config": self.config.name, "harness_cycles": self.harness_cycles,
                "sim_seconds": round(self.sim_seconds, 3),
                "loop_seconds": None if self.loop_seconds is None else round(self.loop_seconds, 3),
                "golden_seconds": round(self.golden_seconds, 3), "vcd": self.vcd_path}


def _error_dict(config, code, slice_index, pc):
    return {"code": isa.error_code(code).name, "slice": config.slice_names[slice_index], "pc": int(pc)}


def decode_vector(config, value):
    """A response (int) as ``L`` int32 lanes."""
    return np.array(unpack_lanes(value, 32, config.lanes), dtype=np.int32)


def reset_command(config, wait_cycles):
    """The harness's own command: wait ``wait_cycles`` then pulse the chip's reset (sim/hdl/chip_harness.sv)."""
    from .chip_verilator import HARNESS_COMMAND
    return pack_command(config, HARNESS_COMMAND, addr=wait_cycles)


def host_commands(config, programs, inputs):
    """Commands that load ``programs`` (one word list per slice) and ``inputs``, START, and read STATUS;
    then one READ_MEM per word of every MEM slice. Returns ``(commands, n_responses, reads)`` with
    ``reads`` the ``(slice, bank, addr)`` of each READ_MEM in order."""
    programs = isa.check_programs(programs, config)
    cmds = []
    for p, words in enumerate(programs):
        if len(words) > config.queue_depth:
            raise ValueError(f"slice {config.slice_names[p]} has {len(words)} words, more than queue_depth = "
                             f"{config.queue_depth} of config {config.name}")
        for a, w in enumerate(words):
            cmds.append(pack_command(config, HostOp.WRITE_QUEUE, slice=p, addr=a, data=int(w)))
    for slice_ref, bank, addr, vectors in check_mem_inputs(config, inputs):
        p = config.slice_index(slice_ref)
        for i, v in enumerate(vectors):
            cmds.append(pack_command(config, HostOp.WRITE_MEM, slice=p, bank=bank, addr=addr + i, data=list(v)))
    cmds.append(pack_command(config, HostOp.START))
    cmds.append(pack_command(config, HostOp.STATUS))
    reads = [(p, b, a) for p in config.positions("mem") for b in range(config.mem_banks)
             for a in range(config.mem_depth)]
    cmds += [pack_command(config, HostOp.READ_MEM, slice=p, bank=b, addr=a) for p, b, a in reads]
    return cmds, 1 + len(reads), reads


def _golden(config, programs, inputs, max_cycles):
    sim = ChipSim(config)
    sim.load(programs)
    for p, bank, addr, v in check_mem_inputs(config, inputs):
        sim.write_mem(p, bank, addr, v)
    t0 = time.perf_counter()
    res = sim.run(max_cycles=max_cycles)
    return res, time.perf_counter() - t0


def run_program(config, programs, inputs=(), *, simulator=None, seed=1, valid_pct=100, ready_pct=100,
                max_cycles=2_000_000, keep=False, run_dir=None):
    """Run ``programs`` with ``inputs`` on the RTL and on golden; return a ``ChipRunResult``."""
    from .chip_verilator import ChipSimulator
    sim = simulator or ChipSimulator(config)
    cmds, n_resp, reads = host_commands(config, programs, inputs)
    played = sim.play(cmds, n_resp, seed=seed, valid_pct=valid_pct, ready_pct=ready_pct,
                      max_cycles=max_cycles + 4 * len(cmds) + 1000, keep=keep, run_dir=run_dir)
    status = unpack_status(played.responses[0])
    error = _error_dict(config, status["code"], status["slice"], status["pc"]) if status["error"] else None
    mems = {config.slice_names[p]: np.zeros((config.mem_banks, config.mem_depth, config.lanes), np.int32)
            for p in config.positions("mem")}
    for (p, b, a), value in zip(reads, played.responses[1:]):
        mems[config.slice_names[p]][b, a] = decode_vector(config, value)

    gres, gseconds = _golden(config, programs, inputs, max_cycles)
    gerror = None if gres.error is None else _error_dict(config, gres.error.code, gres.error.slice, gres.error.pc)
    gmems = {config.slice_names[p]: gres.mems[p] for p in config.positions("mem")}

    mismatch = None
    if not status["done"]:
        mismatch = "the RTL did not report done"
    elif status["cycles"] != gres.cycles:
        mismatch = f"cycles: RTL {status['cycles']}, golden {gres.cycles}"
    elif error != gerror:
        mismatch = f"error: RTL {error}, golden {gerror}"
    else:
        for name in mems:
            diff = np.argwhere(mems[name] != gmems[name])
            if len(diff):
                b, a, lane = (int(x) for x in diff[0])
                mismatch = (f"{name} bank {b} word {a} lane {lane}: RTL {int(mems[name][b, a, lane])}, golden "
                            f"{int(gmems[name][b, a, lane])} ({len(diff)} lanes differ)")
                break
    return ChipRunResult(config, mismatch is None, status["cycles"], gres.cycles, error, gerror, mismatch, mems,
                         gmems, played.harness_cycles, played.sim_seconds, played.loop_seconds, gseconds,
                         played.vcd_path, played.run_dir)


_KEY_RE = re.compile(r"(?P<slice>[A-Za-z0-9_]+)\.(?P<bank>\d+)(@(?P<addr>\d+))?\Z")


def load_data(path, config):
    """The ``inputs`` of an ``.npz`` file (module docstring); a clear ``ValueError`` for anything else."""
    inputs, labels = [], []
    for key, array in read_npz(path, "data file").items():
        m = _KEY_RE.match(key)
        if not m:
            raise ValueError(f"data file {path}: key {key!r} must be <slice>.<bank> or <slice>.<bank>@<addr> "
                             f"(e.g. mem0.1@16)")
        try:
            p = config.slice_index(m["slice"])
        except ValueError as e:
            raise ValueError(f"data file {path}: key {key!r}: {e}") from None
        inputs.append((p, int(m["bank"]), int(m["addr"] or 0), array))
        labels.append(f"data file {path}: key {key!r}")
    return check_mem_inputs(config, inputs, labels)
