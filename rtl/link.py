"""A link slice: the SEND and RECV units at one end of a chip (docs/multichip.md).

Contract (the golden twin is ``golden.chip``'s ``_Send``/``_Recv``; ``I`` = ``link_interval``):

* ``SEND src count`` issued at ``t``: during ``t + LINK_SEND_OFFSET + i·I`` (``i`` = 0 … count − 1) read
  port 0 reads ``src`` and the vector seen there leaves on ``tx`` (``tx.valid`` high, ``tx.data`` the
  vector) in that same cycle: ``tx`` is the word entering the link in the cycle SEND samples it.
* ``RECV count -> dst`` issued at ``t``: during ``t + LINK_RECV_OFFSET + i·I`` the word arriving on ``rx``
  is written onto ``dst`` (``put``) in that same cycle.
* Run-time faults (``rt_fault``, a ``spec.isa.LinkErrorCode``, with ``rt_pc``: the pc the chip reports):

  - ``RECV_EMPTY``: a RECV item whose cycle has no valid word on ``rx`` (nothing is written); ``rt_pc`` the
    RECV's pc (latched from ``queue_pc`` when it issued);
  - ``LINK_DROPPED``, a SEND sampling on a slice built with ``connected=False`` (a link that leads
    nowhere); ``rt_pc`` the SEND's pc;
  - ``LINK_DROPPED``, a valid word on ``rx`` (``connected`` slices only) in a cycle no RECV item takes one;
    ``rt_pc`` = ``queue_pc``, the queue's pc at the start of that cycle.

  In one cycle the lowest code wins (``RECV_EMPTY``); the two ``LINK_DROPPED`` cases cannot meet (one needs
  ``connected``, the other not). An unconnected slice ignores ``rx``.
* The queue never issues to a busy unit (busy ``count · I``), so a unit's new instruction may arrive only in
  or after the cycle of its last item; the last item of the old one is still served in that cycle.
* Nothing changes while ``run`` is low; the units are idle after reset.

Ports: ``rtl.common.slice_signature`` (one read port) plus ``queue_pc`` In (``FAULT_PC_BITS``, the queue's
``pc``), ``rt_fault`` Out (``ERROR_CODE_BITS``), ``rt_pc`` Out (``FAULT_PC_BITS``), ``tx`` Out and ``rx`` In
(``link_word_layout``: ``valid``, ``data``).
"""
from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from spec import isa
from spec.isa import LinkErrorCode

from .common import field, slice_signature, vector_layout

__all__ = ["LinkSlice", "link_word_layout"]

if isa.LINK_SEND_OFFSET != 1 or isa.LINK_RECV_OFFSET != 1:  # pragma: no cover - the units register one cycle
    raise ImportError("rtl.link registers a SEND/RECV for one cycle before its first item")
if min(LinkErrorCode) <= max(isa.ErrorCode):  # pragma: no cover - rtl.icu lets a static fault win
    raise ImportError("the link codes must be above every ErrorCode (static faults win over run-time ones)")


def link_word_layout(config):
    """One link word: a valid bit and a vector."""
    return data.StructLayout({"valid": 1, "data": vector_layout(config)})


class LinkSlice(wiring.Component):
    """The link slice of ``config`` (module docstring: the contract). ``connected``: whether the link leads
    to another chip (``False``: SENDs fault ``LINK_DROPPED``, RECVs ``RECV_EMPTY``, ``rx`` is ignored)."""
    READS = 1

    def __init__(self, config, connected=False):
        from .common import check_config_kind
        check_config_kind(config, "link")
        self.config = config
        self.connected = bool(connected)
        super().__init__(slice_signature(
            config, self.READS,
            queue_pc=In(isa.FAULT_PC_BITS),
            rt_fault=Out(isa.ERROR_CODE_BITS),
            rt_pc=Out(isa.FAULT_PC_BITS),
            tx=Out(link_word_layout(config)),
            rx=In(link_word_layout(config)),
        ))

    def elaborate(self, platform):
        m = Module()
        c = self.config
        iv = c.link_interval
        op = field(self.word, "op")
        units = {}
        for name, code in (("send", isa.OPCODES["SEND"].code), ("recv", isa.OPCODES["RECV"].code)):
            active = Signal(name=f"{name}_active")
            left = Signal(range(isa.MAX_COUNT + 1), name=f"{name}_left")     # items still to do, this one included
            phase = Signal(range(max(iv, 2)), name=f"{name}_phase")          # cycles to wait before the next item
            pc = Signal(isa.FAULT_PC_BITS, name=f"{name}_pc")
            now = Signal(name=f"{name}_item")                                # an item this cycle
            m.d.comb += now.eq(self.run & active & (phase == 0))
            with m.If(self.run):
                with m.If(now):
                    m.d.sync += [left.eq(left - 1), phase.eq(iv - 1)]
                    with m.If(left == 1):
                        m.d.sync += active.eq(0)
                with m.Elif(active):
                    m.d.sync += phase.eq(phase - 1)
                with m.If(self.issue & (op == code)):
                    m.d.sync += [active.eq(1), left.eq(field(self.word, "count") + 1), phase.eq(0),
                                 pc.eq(self.queue_pc)]
            units[name] = (now, pc)

        src = Signal(isa.STREAM_INDEX_BITS + 1)
        dst = Signal(isa.STREAM_INDEX_BITS + 1)
        with m.If(self.run & self.issue & (op == isa.OPCODES["SEND"].code)):
            m.d.sync += src.eq(field(self.word, "src"))
        with m.If(self.run & self.issue & (op == isa.OPCODES["RECV"].code)):
            m.d.sync += dst.eq(field(self.word, "dst"))

        send_now, send_pc = units["send"]
        recv_now, recv_pc = units["recv"]
        rx_valid = self.rx.valid if self.connected else 0
        m.d.comb += [
            self.sel[0].eq(src),
            self.tx.valid.eq(send_now),
            self.tx.data.eq(self.seen[0]),
            self.put.valid.eq(recv_now & rx_valid),
            self.put.stream.eq(dst),
            self.put.data.eq(self.rx.data),
        ]
        empty = Signal()
        dropped_send = Signal()
        dropped_rx = Signal()
        m.d.comb += [
            empty.eq(recv_now & ~rx_valid),
            dropped_send.eq(send_now & int(not self.connected)),
            dropped_rx.eq(self.run & rx_valid & ~recv_now),
        ]
        with m.If(empty):
            m.d.comb += [self.rt_fault.eq(LinkErrorCode.RECV_EMPTY), self.rt_pc.eq(recv_pc)]
        with m.Elif(dropped_send):
            m.d.comb += [self.rt_fault.eq(LinkErrorCode.LINK_DROPPED), self.rt_pc.eq(send_pc)]
        with m.Elif(dropped_rx):
            m.d.comb += [self.rt_fault.eq(LinkErrorCode.LINK_DROPPED), self.rt_pc.eq(self.queue_pc)]
        return m
