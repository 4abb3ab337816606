"""A kernel compiled for a system of chips: one static program per chip, scheduled together.

``SystemKernel`` is the multi-chip twin of ``compiler.kernels.Kernel``: ``programs`` (one
``compiler.schedule.Program`` per chip, every chip of one configuration with link slices), ``inputs`` and
``outputs`` per chip, the numpy ``expected`` result and ``unpack`` (the raw output words of every chip → the
result). All chips start on cycle 0 (``golden.system``), so every program's issue cycles are on one clock and
a SEND on one chip and the RECV that takes its words on the neighbour were placed together
(``compiler.system.transfer``). ``predicted_cycles`` is the system's: the largest chip's (a transfer's words
are always taken by a RECV of the receiving chip's program, so none is left in flight after it).

``run()`` plays it on ``golden.system.SystemSim`` and returns a ``SystemKernelRun``; ``sim.system_run`` plays
the same programs on the RTL of the system.
"""
from dataclasses import dataclass, field

import numpy as np

from spec.config import ChipConfig

__all__ = ["SystemKernel", "SystemKernelRun", "SPLITS", "system_config"]

#: How a kernel's work is divided among chips (``compiler.system.gemm``, ``compiler.system.mlp``).
SPLITS = ("rows", "tensor")


def system_config(config, chips):
    """``config`` as a chip of a system of ``chips``: with link slices at both ends (``with_links``) unless it
    has them already. A lone chip (``chips == 1``) keeps ``config`` as it is."""
    if not isinstance(config, ChipConfig):
        raise TypeError(f"config must be a spec.config.ChipConfig, not {config!r}")
    if chips == 1 or "link" in config.slices:
        return config
    return config.with_links()


@dataclass
class SystemKernelRun:
    """A system kernel played on ``golden.system.SystemSim``: the ``result`` (unpacked) and the ``system``
    result (``golden.system.SystemResult``)."""
    kernel: "SystemKernel"
    system: object
    result: np.ndarray
    raw: list

    @property
    def cycles(self):
        return self.system.cycles

    @property
    def ok(self):
        """No fault, the predicted cycles (system and every chip) and the numpy expectation."""
        k = self.kernel
        return (self.system.error is None and self.system.cycles == k.predicted_cycles
                and self.system.chip_cycles == k.chip_cycles and np.array_equal(self.result, k.expected))


@dataclass
class SystemKernel:
    """A kernel for ``len(programs)`` chips of ``config`` in a ``topology`` (module docstring). ``split`` says
    how the work was divided and ``reason`` why (the cost model's comparison), ``transfers`` the vectors each
    directed link carries (``{"c0.east->c1.west": words}``), ``matmul_items`` the MXU activations per chip."""
    name: str
    config: ChipConfig
    topology: str
    programs: list
    inputs: list
    outputs: list
    expected: np.ndarray
    unpack: object
    matmul_items: list
    split: str
    reason: str = ""
    transfers: dict = field(default_factory=dict)

    @property
    def chips(self):
        return len(self.programs)

    @property
    def chip_cycles(self):
        return tuple(p.predicted_cycles for p in self.programs)

    @property
    def predicted_cycles(self):
        return max(self.chip_cycles)

    @property
    def mxu_busy_cycles(self):
        return sum(self.matmul_items)

    @property
    def utilization(self):
        """MXU activations of every chip / (chips × system cycles)."""
        return self.mxu_busy_cycles / (self.chips * self.predicted_cycles)

    def result_of(self, mems):
        """The result from every chip's MEM contents (per chip ``{MEM slice name: banks × depth × lanes}``, as
        ``sim.system_run`` and ``golden.system`` give them): the ``outputs`` words gathered and ``unpack``ed."""
        c = self.config
        return self.unpack([{name: np.concatenate([m[c.slice_names[c.slice_index(s)]][bank, addr:addr + count]
                                                   for s, bank, addr, count in segs])
                             for name, segs in outs.items()} for outs, m in zip(self.outputs, mems)])

    def link_busy(self):
        """Each directed link's busy fraction of the system's cycles (``words × link_interval / cycles``)."""
        iv = self.config.link_interval
        return {name: words * iv / self.predicted_cycles for name, words in self.transfers.items()}

    def run(self, max_cycles=None):
        """Play the kernel on a fresh ``golden.system.SystemSim``; returns a ``SystemKernelRun``."""
        from golden.system import SystemSim
        sim = SystemSim(self.config, chips=self.chips, topology=self.topology)
        for c, prog in enumerate(self.programs):
            sim.load(c, prog.words)
            for s, bank, addr, words in self.inputs[c]:
                sim.write_mem(c, s, bank, addr, words)
        res = sim.run(max_cycles=max_cycles or self.predicted_cycles + 1000)
        raw = [{name: np.concatenate([res.read_mem(c, s, bank, addr, n) for s, bank, addr, n in segs])
                for name, segs in outs.items()} for c, outs in enumerate(self.outputs)]
        return SystemKernelRun(self, res, self.unpack(raw), raw)
