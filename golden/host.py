"""Golden model of the host edge (docs/chip.md, "Host edge"): host commands applied to ``golden.chip.ChipSim``.

The twin of ``rtl/host.py`` at the command level (no cycles: a command's effect, and its response, in
command order). It reads the protocol from :mod:`spec.host` and never imports ``rtl/``.

API
---
::

    host = HostModel(config)
    responses = host.apply(commands)     # packed ints (spec.host.pack_command) or HostCommand / dicts
    host.mem[p]                          # MEM slice p's banks (banks x depth x L int32), None for others
    host.programs                        # the program each queue would run now (one word list per slice)
    host.result                          # the last START's golden.chip.ChipResult, or None

``apply`` may be called many times; state (queues, memories, status) carries over.

Semantics (what the RTL edge and the chip behind it must match)
------------------------------------------------------------------
* WRITE_QUEUE: queue ``slice``'s word ``addr`` <- ``data[0:64]``, and the program becomes ``addr + 1`` words
  long (words below ``addr`` keep what was last written there, 0 if never). Ignored when ``slice`` is out of
  range or ``addr >= queue_depth``. Queue contents persist across runs.
* WRITE_MEM: MEM ``slice``, ``bank``, word ``addr`` <- ``data``'s ``L`` lanes (32-bit two's complement, lane 0
  lowest). Ignored unless ``slice`` is a MEM slice, ``bank < mem_banks`` and ``addr < mem_depth``.
* READ_MEM: under the same condition the word, packed as ``data`` is; otherwise 0 (still answered).
* START: a fresh ``ChipSim`` (a ``ChipSim`` runs once) with the current memories and programs (and the MXU
  accumulators of the previous run: they are SRAM and the RTL keeps them); after the run the memories are
  its final ones and the status is ``done = 1``, the error's ``code``/``slice``/``pc`` (0 without one),
  ``cycles = ChipResult.cycles``.
* STATUS: ``spec.host.pack_status`` of that status (all 0 before the first run).
* Opcodes 0, 6, 7: nothing, no response.
"""
from typing import NamedTuple

import numpy as np

from golden.chip import DEFAULT_MAX_CYCLES, ChipSim
from spec.config import ChipConfig
from spec.host import COMMAND_FIELDS, HostOp, pack_command, pack_status, unpack_command
from spec.lanes import pack_lanes, unpack_lanes

__all__ = ["HostCommand", "HostModel", "pack_vector", "unpack_vector"]


class HostCommand(NamedTuple):
    """A structured command; ``data`` an int or ``L`` lanes (as ``spec.host.pack_command`` takes)."""
    op: int
    slice: int = 0
    bank: int = 0
    addr: int = 0
    data: object = 0


def pack_vector(vector):
    """``L`` int32 lanes as one unsigned int, lane 0 lowest (a MEM word on the host edge)."""
    return pack_lanes(vector, 32)


def unpack_vector(value, lanes):
    """The ``lanes`` int32 lanes of ``value`` (the inverse of ``pack_vector``)."""
    return np.array(unpack_lanes(value, 32, lanes), dtype=np.int32)


class HostModel:
    """Host commands against the golden chip; see the module docstring."""

    def __init__(self, config, max_cycles=DEFAULT_MAX_CYCLES):
        if not isinstance(config, ChipConfig):
            raise TypeError(f"config must be a spec.config.ChipConfig, not {config!r}")
        self.config = c = config
        self.max_cycles = max_cycles
        self.mem = [np.zeros((c.mem_banks, c.mem_depth, c.lanes), np.int32) if k == "mem" else None
                    for k in c.slices]
        self._queue = [dict() for _ in c.slices]     # queue memory: addr -> word
        self._length = [0] * len(c.slices)           # program length
        self._acc = [None] * len(c.slices)           # MXU accumulators carried between runs
        self.result = None
        self.status = pack_status()

    @property
    def programs(self):
        return [[q.get(a, 0) for a in range(n)] for q, n in zip(self._queue, self._length)]

    def _command(self, command):
        c = self.config
        if isinstance(command, (int, np.integer)) and not isinstance(command, bool):
            return unpack_command(c, int(command))
        if isinstance(command, dict):
            command = HostCommand(**command)
        elif not isinstance(command, HostCommand):
            command = HostCommand(*command)
        # pack_command checks every field's range and packs lane lists
        return unpack_command(c, pack_command(c, *command))

    def _mem_ok(self, cmd):
        c = self.config
        s = cmd["slice"]
        return (s < len(c.slices) and c.slices[s] == "mem" and cmd["bank"] < c.mem_banks
                and cmd["addr"] < c.mem_depth)

    def step(self, command):
        """Apply one command; its response (an int) or ``None``."""
        c = self.config
        cmd = self._command(command)
        op, s, bank, addr = (cmd[name] for name, _ in COMMAND_FIELDS)
        if op == HostOp.WRITE_QUEUE:
            if s < len(c.slices) and addr < c.queue_depth:
                self._queue[s][addr] = cmd["data"] & ((1 << 64) - 1)
                self._length[s] = addr + 1
        elif op == HostOp.WRITE_MEM:
            if self._mem_ok(cmd):
                self.mem[s][bank, addr] = unpack_vector(cmd["data"], c.lanes)
        elif op == HostOp.READ_MEM:
            return pack_vector(self.mem[s][bank, addr]) if self._mem_ok(cmd) else 0
        elif op == HostOp.START:
            self._start()
        elif op == HostOp.STATUS:
            return self.status
        return None

    def apply(self, commands):
        """Apply ``commands`` in order; the responses (ints), in order."""
        out = []
        for command in commands:
            r = self.step(command)
            if r is not None:
                out.append(r)
        return out

    def _start(self):
        sim = ChipSim(self.config)
        for p, m in enumerate(self.mem):
            if m is not None:
                sim.mem[p][...] = m
        for p, acc in enumerate(self._acc):
            if acc is not None:
                sim.mxu[p].acc[...] = acc
        sim.load(self.programs)
        res = sim.run(max_cycles=self.max_cycles)
        self.result = res
        self.mem = [None if m is None else m.copy() for m in res.mems]
        self._acc = [None if a is None else a.copy() for a in res.accumulators]
        err = res.error
        self.status = pack_status(done=1, error=int(err is not None), code=int(err.code) if err else 0,
                                  slice=err.slice if err else 0, pc=err.pc if err else 0,
                                  cycles=res.cycles & 0xFFFFFFFF)
