"""Run a compiled program: the one entry point from ``compiler.CompiledProgram`` to a simulator.

``run(program, inputs, backend="golden"|"verilator", *, check=True, build_dir=None, seed=1)`` → ``RunResult``:

* ``inputs`` in any form of ``compiler.inputs`` (a tuple in argument order, one array or tensor for a
  one-input model, or a dict by input name), float (embedding ids: integer), any number of rows: more rows than
  the compiled batch run as several runs of ``batch`` rows (the last padded with zero rows), one after the
  other on the same simulator; the outputs are concatenated and cut back to the rows given;
* ``backend="golden"``: ``golden.chip.ChipSim`` (through the program's ``CompiledModel.simulate``; a
  ``compiler.system.SystemProgram``: ``golden.system.SystemSim``); a fault raises ``RuntimeError``;
* ``backend="verilator"``: the chip RTL (``sim.chip_run.run_program``, which runs the golden model too and
  compares cycles, error and every MEM word); with ``check`` an RTL that differs from golden, or a fault,
  raises ``RuntimeError`` naming the first difference; ``check=False`` returns the result with ``match``
  False instead; a ``SystemProgram`` runs on the system's RTL (``sim.system_run``). ``build_dir``: the
  Verilator build root (default ``$CONVEYOR_BUILD`` or ``build/``, then
  ``sim/``); ``seed``: the host edge's stall pattern.

``RunResult.cycles`` is the chip's total over the runs, ``run_cycles`` each run's, and ``predicted_cycles``
the compiler's prediction for all of them (``runs × program.predicted_cycles``).

Importing this module registers ``run`` as the runner of ``compiler.runners``, so ``program.run(...)`` works.
"""
import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from compiler.runners import register_runner

from . import progress

__all__ = ["run", "RunResult", "BACKENDS"]

BACKENDS = ("golden", "verilator")
_REPO = Path(__file__).resolve().parent.parent


def default_build():
    """The build root: ``$CONVEYOR_BUILD`` or ``build/`` in the repository."""
    return Path(os.environ.get("CONVEYOR_BUILD", _REPO / "build"))


@dataclass
class RunResult:
    """``outputs`` (``{output name: numpy array}``), ``cycles`` (the chip's, summed over the runs),
    ``backend``, ``predicted_cycles`` (the compiler's, for all the runs), ``match`` (verilator: RTL equals
    golden on every run; golden: None), ``mismatch`` (the first difference, or None), ``run_cycles`` (each
    run's cycles, in order)."""
    outputs: dict
    cycles: int
    backend: str
    predicted_cycles: int | None = None
    match: bool | None = None
    mismatch: str | None = None
    run_cycles: list = field(default_factory=list)
    build_seconds: float = 0.0      #: wall time spent building the Verilator model (0 when it was reused)

    @property
    def runs(self):
        return len(self.run_cycles)


class _Golden:
    build_seconds = 0.0

    def __init__(self, program, **_):
        self.model = program.model

    def __call__(self, program, batch):
        res = self.model.simulate(batch.codes)
        if res.error is not None:
            raise RuntimeError(f"the chip faulted: {res.error}")
        return program.outputs_of(res, batch.rows), int(res.cycles), None, None


class _Verilator:
    def __init__(self, program, *, check=True, build_dir=None, seed=1):
        from .chip_verilator import ChipSimulator
        self.config = program.config.check_rtl()
        self.check, self.seed = check, seed
        self.sim = ChipSimulator(self.config, build_root=Path(build_dir or default_build()) / "sim")
        self.build_seconds = 0.0

    def __call__(self, program, batch):
        from .chip_run import run_program
        res = run_program(self.config, program.program.words, program.memory_image(batch.codes), simulator=self.sim,
                          seed=self.seed, max_cycles=program.predicted_cycles + 1000)
        if self.check and not res.match:
            raise RuntimeError(f"the RTL and the golden model differ on config {self.config.name}: {res.mismatch}")
        if self.check and res.error is not None:
            raise RuntimeError(f"the chip faulted: {res.error}")
        self.build_seconds += self.sim.last_build_seconds
        return program.outputs_of(res.mems, batch.rows), int(res.cycles), bool(res.match), res.mismatch


class _SystemVerilator:
    """A ``compiler.system.SystemProgram`` on the system's RTL (``sim.system_run.run_system``: every chip's
    host edge, golden compared word for word)."""

    def __init__(self, program, *, check=True, build_dir=None, seed=1):
        from .system_verilator import SystemSimulator
        self.config = program.config.check_rtl()
        self.check, self.seed = check, seed
        self.topology = program.model.topology
        self.sim = SystemSimulator(self.config, program.chips, self.topology,
                                   build_root=Path(build_dir or default_build()) / "sim")
        self.build_seconds = 0.0

    def __call__(self, program, batch):
        from .system_run import run_system
        res = run_system(self.config, [p.words for p in program.programs], program.memory_image(batch.codes),
                         chips=program.chips, topology=self.topology, simulator=self.sim, seed=self.seed,
                         max_cycles=program.predicted_cycles + 1000)
        if self.check and not res.match:
            raise RuntimeError(f"the RTL and the golden model of {program.chips} chips of {self.config.name} differ: "
                               f"{res.mismatch}")
        if self.check and res.error is not None:
            raise RuntimeError(f"the system faulted: {res.error}")
        return program.outputs_of(res.mems, batch.rows), int(res.cycles), bool(res.match), res.mismatch


_BACKENDS = {"golden": _Golden, "verilator": _Verilator}


def run(program, inputs, backend="golden", *, check=True, build_dir=None, seed=1):
    """Run ``program`` (a ``compiler.CompiledProgram``) on ``inputs`` with ``backend`` (module docstring)."""
    from compiler.program import CompiledProgram
    if not isinstance(program, CompiledProgram):
        raise TypeError(f"program must be a compiler.CompiledProgram (compiler.compile or CompiledProgram.load), not "
                        f"{type(program).__name__}")
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    batches = program.batches(inputs)
    kind = _SystemVerilator if backend == "verilator" and hasattr(program, "chips") else _BACKENDS[backend]
    one = kind(program, check=check, build_dir=build_dir, seed=seed)
    outputs, cycles, matches, mismatch = [], [], [], None
    report = (progress.step(f"running {len(batches)} runs of {program.batch} rows on {backend}")
              if len(batches) > 1 and backend == "verilator" else contextlib.nullcontext(None))
    with report as shown:
        for i, b in enumerate(batches):
            if shown is not None:
                shown.update(f"run {i + 1} of {len(batches)}")
            out, cyc, match, diff = one(program, b)
            outputs.append(out)
            cycles.append(cyc)
            matches.append(match)
            if diff and mismatch is None:
                mismatch = diff if len(batches) == 1 else f"run {i + 1} of {len(batches)}: {diff}"
    match = None if backend == "golden" else all(matches)
    return RunResult(program.merge(outputs), sum(cycles), backend, program.predicted_cycles * len(batches), match,
                     mismatch, cycles, one.build_seconds)


register_runner("sim", run)
