"""The chip top: slices, their instruction queues, the stream interconnect and the host edge, composed from
a ``spec.config.ChipConfig``.

Run control (docs/chip.md, "RTL structure"):

* The host edge's START pulse (during "cycle −1") resets every core component — queues, slices,
  interconnect; not the SRAM contents, the queue memories or the MXU accumulators — and the queues present
  pc 0. ``run`` is high from cycle 0.
* During cycle ``t`` of a run: when every queue is ``idle`` (halted, nothing in flight) the run ends with
  ``cycles = t + 1``; when a queue faults, the run ends the same way with the sticky error (code, slice,
  pc) of the lowest-numbered slice that faults in ``t`` (a slice's run-time fault, a READX/WRITEX index out
  of range, goes through its queue: ``rtl.icu``, the pc of the instruction issued the cycle before).
  Cycle ``t``'s work completes (MEM stores at its end included); from ``t + 1`` nothing changes (``run``
  is low).
* The status (``done``, error, ``cycles``) holds until the next START; the host reads it with STATUS.

Ports: ``cmd`` and ``resp`` (``rtl.host``'s streams), and for harnesses and waveforms ``running``,
``done`` and ``error``.
"""
import operator
from functools import reduce

from amaranth.hdl import Module, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from spec import isa

from .host import HostEdge
from .icu import InstructionQueue
from .mem import MemSlice
from .mxu_slice import MXUSlice
from .streams import StreamInterconnect
from .vxu import VXUSlice

__all__ = ["Chip", "SLICE_COMPONENTS"]

#: The component of each slice kind (``spec.config.SLICE_KINDS``): a new kind is one entry here (a component
#: with the ports of ``rtl.common.slice_signature`` and a ``READS`` count of stream read ports).
SLICE_COMPONENTS = {"mem": MemSlice, "mxu": MXUSlice, "vxu": VXUSlice}


class Chip(wiring.Component):
    """The whole chip of ``config``. See the module docstring for the run control."""

    def __init__(self, config):
        self._config = config.check_rtl()
        missing = [k for k in config.slices if k not in SLICE_COMPONENTS]
        if missing:  # pragma: no cover - every kind of spec.config has a component
            raise ValueError(f"no RTL for slice kind {missing[0]!r}")
        self._host = HostEdge(config)
        super().__init__({
            "cmd": self._host.signature.members["cmd"],      # the host edge's own streams, as they are
            "resp": self._host.signature.members["resp"],
            "running": Out(1),
            "done": Out(1),
            "error": Out(1),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        c = self._config
        P = len(c.slices)
        names = c.slice_names
        m.submodules.host = host = self._host
        wiring.connect(m, wiring.flipped(self.cmd), host.cmd)
        wiring.connect(m, host.resp, wiring.flipped(self.resp))

        start = host.start
        core = ResetInserter({"sync": start})
        reads = [SLICE_COMPONENTS[kind].READS for kind in c.slices]
        m.submodules.streams = streams = core(StreamInterconnect(c, reads))
        running = Signal()
        done = Signal()
        err = Signal()
        err_code = Signal(isa.ERROR_CODE_BITS)
        err_slice = Signal(isa.SLICE_INDEX_BITS)
        err_pc = Signal(isa.FAULT_PC_BITS)
        cycles = Signal(32)

        queues, slices = [], []
        for p, kind in enumerate(c.slices):
            q = InstructionQueue(c, kind)
            s = SLICE_COMPONENTS[kind](c)
            m.submodules[f"icu_{names[p]}"] = core(q)
            m.submodules[names[p]] = core(s)
            queues.append(q)
            slices.append(s)
            m.d.comb += [
                q.start.eq(start),
                q.run.eq(running),
                q.load_en.eq(host.q_load_en[p]),
                q.load_addr.eq(host.q_load_addr),
                q.load_word.eq(host.q_load_word),
                s.run.eq(running),
                s.issue.eq(q.issue),
                s.word.eq(q.word),
                streams.sel(p).eq(s.sel),
                s.seen.eq(streams.seen(p)),
                streams.put[p].eq(s.put),
            ]
            if "rt_fault" in s.signature.members:      # a slice with run-time faults (MEM: INDEX_RANGE)
                m.d.comb += q.rt_fault.eq(s.rt_fault)
            if kind == "mem":
                m.d.comb += [
                    s.host_we.eq(host.mem_we[p]),
                    s.host_bank.eq(host.mem_bank),
                    s.host_addr.eq(host.mem_addr),
                    s.host_wdata.eq(host.mem_wdata),
                    host.mem_rdata[p].eq(s.host_rdata),
                ]

        # ---- run control ----
        all_idle = Signal()
        any_fault = Signal()
        m.d.comb += [
            all_idle.eq(reduce(operator.and_, [q.idle for q in queues])),
            any_fault.eq(reduce(operator.or_, [q.fault for q in queues])),
        ]
        with m.If(start):
            m.d.sync += [running.eq(1), done.eq(0), err.eq(0), err_code.eq(0), err_slice.eq(0), err_pc.eq(0),
                         cycles.eq(0)]
        with m.Elif(running):
            m.d.sync += cycles.eq(cycles + 1)
            with m.If(any_fault):
                m.d.sync += [running.eq(0), done.eq(1), err.eq(1)]
                # the lowest slice index that faults wins: the last assignment in program order counts
                for p in reversed(range(P)):
                    with m.If(queues[p].fault):
                        m.d.sync += [err_code.eq(queues[p].fault_code), err_slice.eq(p),
                                     err_pc.eq(queues[p].fault_pc)]
            with m.Elif(all_idle):
                m.d.sync += [running.eq(0), done.eq(1)]
        m.d.comb += [
            host.running.eq(running),
            host.done.eq(done),
            host.err.eq(err),
            host.err_code.eq(err_code),
            host.err_slice.eq(err_slice),
            host.err_pc.eq(err_pc),
            host.cycles.eq(cycles),
            self.running.eq(running),
            self.done.eq(done),
            self.error.eq(err),
        ]
        return m

