"""Run programs on a system of chips in RTL (Verilator, ``sim.system_verilator``) and on the golden model
(``golden.system.SystemSim``), and compare them.

``run_system(config, programs_per_chip, inputs_per_chip, chips=…, topology=…)``: every chip's host edge is fed
``sim.chip_run.host_commands`` (load its queues and inputs, START, STATUS, READ_MEM of every MEM word) at once;
the system's START is shared (every chip starts in the same cycle once every chip has had its START). The result
says whether the system's status (cycles; error with code, chip, slice, pc and cycle), every chip's status
(cycles; error code, slice, pc) and every MEM word of every chip agree, and where they first differ.

The system's code, slice and pc are those of the STATUS of the chip the system names (``err_chip``): the
system top reports the chip and the cycle, each chip its own error (rtl/system.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from golden.system import SystemSim
from spec import isa
from spec.config import ChipConfig
from spec.host import unpack_status
from spec.image import check_mem_inputs

from .chip_run import decode_vector, host_commands

__all__ = ["SystemRunResult", "run_system"]


@dataclass
class SystemRunResult:
    """``match``: RTL and golden agree on the system's status, every chip's status and every MEM word.
    ``error`` / ``golden_error``: None or ``{"code", "chip", "slice", "pc", "cycle"}`` (code and slice by name);
    ``chip_errors`` / ``golden_chip_errors``: per chip None or ``{"code", "slice", "pc"}``; ``mems`` /
    ``golden_mems``: per chip, MEM slice name -> ``banks × depth × lanes`` int32; ``mismatch``: the first
    difference, in words. ``play``: the harness run (``sim.system_verilator.SystemPlayResult``)."""
    config: ChipConfig
    chips: int
    topology: str
    match: bool
    mismatch: str | None
    cycles: int
    golden_cycles: int
    error: dict | None
    golden_error: dict | None
    chip_cycles: list
    golden_chip_cycles: list
    chip_errors: list
    golden_chip_errors: list
    mems: list = field(repr=False, default_factory=list)
    golden_mems: list = field(repr=False, default_factory=list)
    play: object = field(repr=False, default=None)
    golden_seconds: float = 0.0

    def to_json(self):
        p = self.play
        return {"match": self.match, "mismatch": self.mismatch, "config": self.config.name, "chips": self.chips,
                "topology": self.topology, "cycles": self.cycles, "golden_cycles": self.golden_cycles,
                "error": self.error, "golden_error": self.golden_error, "chip_cycles": self.chip_cycles,
                "golden_chip_cycles": self.golden_chip_cycles, "chip_errors": self.chip_errors,
                "golden_chip_errors": self.golden_chip_errors,
                "harness_cycles": None if p is None else p.harness_cycles,
                "sim_seconds": None if p is None else round(p.sim_seconds, 3),
                "golden_seconds": round(self.golden_seconds, 3)}


def _chip_error(config, code, slice_index, pc):
    return {"code": isa.error_code(code).name, "slice": config.slice_names[slice_index], "pc": int(pc)}


def _inputs(config, inputs_per_chip, n):
    if inputs_per_chip is None:
        return [[] for _ in range(n)]
    inputs_per_chip = list(inputs_per_chip)
    if len(inputs_per_chip) != n:
        raise ValueError(f"inputs_per_chip must have one list per chip ({n}), not {len(inputs_per_chip)}")
    return [check_mem_inputs(config, list(x)) for x in inputs_per_chip]


def run_system(config, programs_per_chip, inputs_per_chip=None, *, chips=None, topology="line", simulator=None,
               seed=1, valid_pct=100, ready_pct=100, max_cycles=2_000_000, keep=False, run_dir=None
               ) -> SystemRunResult:
    """Run chip ``c``'s ``programs_per_chip[c]`` (one word list per slice) with ``inputs_per_chip[c]`` (``(slice,
    bank, addr, vectors)`` as in ``sim.chip_run``) on ``chips`` chips in ``topology``, on the RTL and on golden.

    ``simulator``: a ``SystemSimulator`` of the same configuration, chips and topology (default: a new one).
    ``valid_pct`` / ``ready_pct``: one percentage for every host edge or one per chip; ``seed`` the harness's.
    """
    from .system_verilator import SystemSimulator, check_system_args
    programs_per_chip = list(programs_per_chip)
    n = len(programs_per_chip) if chips is None else chips
    check_system_args(config, n, topology)
    if len(programs_per_chip) != n:
        raise ValueError(f"programs_per_chip must have one program list per chip ({n}), not "
                         f"{len(programs_per_chip)}")
    inputs = _inputs(config, inputs_per_chip, n)
    sim = simulator or SystemSimulator(config, n, topology)
    if (sim.config, sim.chips, sim.topology) != (config, n, topology):
        raise ValueError(f"the simulator is {sim.chips} chips of {sim.config.name} ({sim.topology}), not {n} chips "
                         f"of {config.name} ({topology})")
    plans = [host_commands(config, programs_per_chip[c], inputs[c]) for c in range(n)]
    longest = max(len(cmds) for cmds, _, _ in plans)
    played = sim.play([p[0] for p in plans], [p[1] for p in plans], seed=seed, valid_pct=valid_pct,
                      ready_pct=ready_pct, max_cycles=max_cycles + 4 * n * longest + 1000, keep=keep,
                      run_dir=run_dir)

    # ---- the RTL's view -----------------------------------------------------------------------------
    statuses = [unpack_status(played.responses[c][0]) for c in range(n)]
    chip_errors = [_chip_error(config, s["code"], s["slice"], s["pc"]) if s["error"] else None for s in statuses]
    mems = []
    for c in range(n):
        m = {config.slice_names[p]: np.zeros((config.mem_banks, config.mem_depth, config.lanes), np.int32)
             for p in config.positions("mem")}
        for (p, b, a), value in zip(plans[c][2], played.responses[c][1:]):
            m[config.slice_names[p]][b, a] = decode_vector(config, value)
        mems.append(m)
    error = None
    if played.error:
        ce = chip_errors[played.err_chip] if played.err_chip < n else None
        error = {"code": None if ce is None else ce["code"], "chip": played.err_chip,
                 "slice": None if ce is None else ce["slice"], "pc": None if ce is None else ce["pc"],
                 "cycle": played.err_cycle}

    # ---- golden ---------------------------------------------------------------------------------------
    gsim = SystemSim(config, chips=n, topology=topology)
    for c in range(n):
        gsim.load(c, programs_per_chip[c])
        for p, bank, addr, v in inputs[c]:
            gsim.write_mem(c, p, bank, addr, v)
    t0 = time.perf_counter()
    g = gsim.run(max_cycles=max_cycles)
    gseconds = time.perf_counter() - t0
    gerror = None
    if g.error is not None:
        e = g.error
        gerror = {"code": isa.error_code(e.code).name, "chip": e.chip, "slice": config.slice_names[e.slice],
                  "pc": int(e.pc), "cycle": int(e.cycle)}
    gchip_errors = [None if r.error is None else _chip_error(config, r.error.code, r.error.slice, r.error.pc)
                    for r in g.chips]
    gmems = [{config.slice_names[p]: g.chips[c].mems[p] for p in config.positions("mem")} for c in range(n)]
    chip_cycles = [s["cycles"] for s in statuses]

    # ---- the first difference -------------------------------------------------------------------------
    mismatch = None
    not_done = [c for c, s in enumerate(statuses) if not s["done"]]
    if not played.done:
        mismatch = "the system's done never rose"
    elif played.done_rises != 1:
        mismatch = f"the system's done rose {played.done_rises} times, once expected"
    elif not_done:
        mismatch = f"chip {not_done[0]}'s STATUS does not say done"
    elif played.cycles != g.cycles:
        mismatch = f"system cycles: RTL {played.cycles}, golden {g.cycles}"
    elif error != gerror:
        mismatch = f"system error: RTL {error}, golden {gerror}"
    else:
        for c in range(n):
            if chip_cycles[c] != g.chips[c].cycles:
                mismatch = f"chip {c} cycles: RTL {chip_cycles[c]}, golden {g.chips[c].cycles}"
            elif chip_errors[c] != gchip_errors[c]:
                mismatch = f"chip {c} error: RTL {chip_errors[c]}, golden {gchip_errors[c]}"
            else:
                for name in mems[c]:
                    diff = np.argwhere(mems[c][name] != gmems[c][name])
                    if len(diff):
                        b, a, lane = (int(x) for x in diff[0])
                        mismatch = (f"chip {c} {name} bank {b} word {a} lane {lane}: RTL "
                                    f"{int(mems[c][name][b, a, lane])}, golden {int(gmems[c][name][b, a, lane])} "
                                    f"({len(diff)} lanes of chip {c} {name} differ)")
                        break
            if mismatch:
                break
    return SystemRunResult(config, n, topology, mismatch is None, mismatch, played.cycles, g.cycles, error, gerror,
                           chip_cycles, list(g.chip_cycles), chip_errors, gchip_errors, mems, gmems, played,
                           gseconds)
