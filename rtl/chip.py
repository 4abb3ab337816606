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

Link slices (docs/multichip.md): ``Chip(config)`` is a lone chip, every link slice leads nowhere (its SENDs
fault ``LINK_DROPPED``, its RECVs ``RECV_EMPTY``), with the ports above only, as ``golden.chip.ChipSim``
unconnected. ``Chip(config, links=ends)`` is a member of a system (``rtl.system``), ``ends`` the link ends
(``"west"``, ``"east"``) that lead to another chip, and has more ports:

* ``tx_<end>`` Out / ``rx_<end>`` In (``rtl.link.link_word_layout``) for each end in ``ends``;
* ``start_req`` Out: the host edge accepted START (the system starts every chip together);
  ``sys_start`` In: the START pulse of the core (instead of the host edge's own);
* ``sys_busy`` In: the system is starting or running (the host edge waits, as for ``running``, so STATUS
  and READ_MEM come after the whole system is done);
* ``stop`` In: another chip faults in this cycle: a running chip ends with it (``cycles = t + 1``, no
  error of its own unless it faults too);
* ``fault_now`` Out: this chip faults in this cycle, or, done without an error, a word arrives on a
  connected link (``LINK_DROPPED`` at that link slice with its queue's pc; the chip keeps its cycles).
"""
import operator
from functools import reduce

from amaranth.hdl import ClockDomain, ClockSignal, DomainRenamer, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec import isa

from .host import HostEdge
from .icu import InstructionQueue
from .link import LinkSlice, link_word_layout
from .mem import MemSlice
from .mxu_slice import MXUSlice
from .streams import StreamInterconnect
from .vxu import VXUSlice

__all__ = ["Chip", "SLICE_COMPONENTS"]

#: The component of each slice kind (``spec.config.SLICE_KINDS``): a new kind is one entry here (a component
#: with the ports of ``rtl.common.slice_signature`` and a ``READS`` count of stream read ports).
SLICE_COMPONENTS = {"mem": MemSlice, "mxu": MXUSlice, "vxu": VXUSlice, "link": LinkSlice}


class Chip(wiring.Component):
    """The whole chip of ``config``. See the module docstring for the run control."""

    def __init__(self, config, links=None):
        self._config = config.check_rtl()
        ends = config.link_ends
        if links is not None:
            links = tuple(links)
            for e in links:
                if e not in ends:
                    raise ValueError(f"config {config.name} has no link slice at end {e!r} (its link ends: "
                                     f"{', '.join(map(repr, ends)) or 'none'})")
        self._links = links
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
            **self._system_ports(),
        })

    def _system_ports(self):
        if self._links is None:
            return {}
        ports = {"start_req": Out(1), "sys_start": In(1), "sys_busy": In(1), "stop": In(1), "fault_now": Out(1)}
        for e in self._links:
            ports[f"tx_{e}"] = Out(link_word_layout(self._config))
            ports[f"rx_{e}"] = In(link_word_layout(self._config))
        return ports

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

        system = self._links is not None
        start = self.sys_start if system else host.start
        link_at = {p: e for e, p in c.link_ends.items()}
        connected = {p: (system and e in self._links) for p, e in link_at.items()}
        # the core (streams, queues, slices) runs in ``core``: the chip's clock, reset by the chip's reset or START
        m.domains.core = ClockDomain("core", local=True)
        m.d.comb += [ClockSignal("core").eq(ClockSignal("sync")), ResetSignal("core").eq(ResetSignal("sync") | start)]
        core = DomainRenamer({"sync": "core"})
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
            s = LinkSlice(c, connected=connected[p]) if kind == "link" else SLICE_COMPONENTS[kind](c)
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
            if "rt_pc" in q.signature.members:         # a slice naming the pc of its run-time faults (link)
                m.d.comb += [q.rt_pc.eq(s.rt_pc), s.queue_pc.eq(q.pc)]
            if kind == "link" and connected[p]:
                m.d.comb += [getattr(self, f"tx_{link_at[p]}").eq(s.tx), s.rx.eq(getattr(self, f"rx_{link_at[p]}"))]
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
        if system:
            # a word arriving at a chip that is done (without an error): LINK_DROPPED, lowest link slice first
            late = [(p, getattr(self, f"rx_{link_at[p]}").valid) for p in sorted(link_at) if connected[p]]
            watch = Signal()
            m.d.comb += watch.eq(done & ~err & reduce(operator.or_, [v for _, v in late], 0))
        # (a lone chip's run control is exactly what it was before links: same Verilog)
        end = (all_idle | self.stop) if system else all_idle
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
            with m.Elif(end):
                m.d.sync += [running.eq(0), done.eq(1)]
        if system:
            with m.Elif(watch):
                m.d.sync += [err.eq(1), err_code.eq(isa.LinkErrorCode.LINK_DROPPED)]
                for p, valid in reversed(late):
                    with m.If(valid):
                        m.d.sync += [err_slice.eq(p), err_pc.eq(queues[p].pc)]
            m.d.comb += [self.start_req.eq(host.start), self.fault_now.eq((running & any_fault) | watch)]
        m.d.comb += [
            host.running.eq(running | self.sys_busy if system else running),
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

