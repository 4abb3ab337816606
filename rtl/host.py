"""The host edge (docs/chip.md, "Host edge"): the chip's only valid/ready place.

``HostEdge(config)`` takes host commands on the ``cmd`` stream, turns them into plain one-cycle strobes toward
the chip core (queue loads, MEM writes and reads, the START pulse) and answers READ_MEM and STATUS on the
``resp`` stream, in command order. The protocol itself (opcodes, fields, the status word) is
:mod:`spec.host`; this file only fixes its RTL shape.

Ports
-----
``P`` = ``len(config.slices)``, ``V`` = ``32 * config.lanes`` (a vector), ``D`` = ``spec.host.data_bits(config)``
(= ``max(V, 64)``).

========================  ====  ==================================================================================
port                      dir   meaning
========================  ====  ==================================================================================
``cmd``                   In    ``stream.Signature(host_command_layout(config))``: ``op: 3, slice: 8, bank: 4,
                                addr: 16, data: D`` (LSB first, exactly ``spec.host.pack_command``'s integer)
``resp``                  Out   ``stream.Signature(host_response_layout(config))``: ``data: D``
``q_load_en``             Out   ``P``, one-hot: write queue word ``q_load_addr`` of that slice with ``q_load_word``
``q_load_addr``           Out   16
``q_load_word``           Out   64
``mem_we``                Out   ``P``, one-hot (MEM slices only): store ``mem_wdata`` at ``mem_bank``/``mem_addr``
``mem_re``                Out   ``P``, one-hot (MEM slices only): a host read of ``mem_bank``/``mem_addr`` this cycle
``mem_bank``              Out   4
``mem_addr``              Out   16
``mem_wdata``             Out   ``V`` (lane ``i`` at bits ``32i …``)
``mem_rdata``             In    ``ArrayLayout(V, P)``: slice ``p``'s host read port (the word at the bank/address
                                presented two cycles earlier; entries of non-MEM slices are ignored)
``start``                 Out   1, one-cycle pulse: a START was accepted
``running``               In    1, the chip is running (from the cycle after ``start`` through the last run cycle)
``done``                  In    1, the last run has ended
``err``                   In    1, the last run faulted; ``err_code`` (4), ``err_slice`` (8), ``err_pc`` (17)
``cycles``                In    32, the last run's cycle count
========================  ====  ==================================================================================

Contract
--------
* **Acceptance.** A command is taken in a cycle where ``cmd.valid & cmd.ready``. ``cmd.ready`` is low while
  ``running`` or ``start`` is high (so a command after START waits for the run to end), for a READ_MEM or
  STATUS while ``RESPONSE_DEPTH`` responses are outstanding (accepted, not yet taken from ``resp``), and for
  a START while a READ_MEM or STATUS accepted in the two cycles before is still in the pipeline (so no host
  read and no status sample overlaps the START reset or the run). ``cmd.ready`` depends combinationally on
  ``running``, ``cmd.payload.op`` and internal registers; never on ``cmd.valid`` or ``resp.ready``.
* **Timing.** Every output toward the core is a register: a command accepted during cycle ``c`` acts during
  ``c + 1`` (``q_load_en``/``mem_we``/``mem_re``/``start`` high for that one cycle; ``q_load_addr``,
  ``q_load_word``, ``mem_bank``, ``mem_addr`` and ``mem_wdata`` change only when a command that uses them is
  accepted and then hold). A READ_MEM's word is taken from ``mem_rdata`` during ``c + 3`` (read latency 2,
  :data:`rtl.sram.READ_LATENCY`) and a STATUS samples the status inputs during ``c + 3`` too; both then
  enter a ``RESPONSE_DEPTH``-entry ``SyncFIFOBuffered``, whose head is ``resp`` (``resp.valid`` from
  ``c + 5`` at the earliest). A WRITE_MEM followed at once by a READ_MEM of the same word reads the new
  word (the write ends ``c + 1``, the read is presented during ``c + 2``).
* **Throughput.** With ``resp.ready`` always high one command is accepted per cycle, any mix, back-to-back
  READ_MEMs included (a response is outstanding for 5 cycles, fewer than ``RESPONSE_DEPTH``); only a START
  right after a READ_MEM/STATUS waits (at most 2 cycles).
* **Commands** (``spec.host.HostOp``):

  - WRITE_QUEUE: ``q_load_en[slice]`` with ``q_load_addr = addr``, ``q_load_word = data[0:64]``, if
    ``slice < P`` and ``addr < queue_depth``; else nothing.
  - WRITE_MEM: ``mem_we[slice]`` with ``mem_bank = bank``, ``mem_addr = addr``, ``mem_wdata = data[0:V]``,
    if ``slice`` is a MEM slice, ``bank < mem_banks`` and ``addr < mem_depth``; else nothing.
  - READ_MEM: under the same condition ``mem_re[slice]`` with ``mem_bank``/``mem_addr`` and the response is
    ``mem_rdata[slice]`` (zero-extended to ``D``); otherwise no read, and the response is 0. Always answered.
  - START: the ``start`` pulse. STATUS: the response is ``STATUS_FIELDS`` packed LSB first (``done``,
    ``err``, ``err_code``, ``err_slice``, ``err_pc``, ``cycles``), zero-extended to ``D``.
  - Opcodes 0, 6 and 7: nothing, no response.
* **Order.** Responses leave in command order; nothing is lost, duplicated or reordered under any pattern of
  ``cmd.valid`` and ``resp.ready``.
"""
from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from spec import isa
from spec.host import COMMAND_FIELDS, STATUS_FIELDS, HostOp, data_bits

from .common import LANE_BITS
from .sram import READ_LATENCY

__all__ = ["RESPONSE_DEPTH", "STATUS_PORTS", "host_command_layout", "host_response_layout", "HostEdge"]

#: Entries of the response FIFO, and the most READ_MEM/STATUS responses outstanding at once.
RESPONSE_DEPTH = 8

#: The status input port of each ``spec.host.STATUS_FIELDS`` field.
STATUS_PORTS = {"done": "done", "error": "err", "code": "err_code", "slice": "err_slice", "pc": "err_pc",
                "cycles": "cycles"}

# cycles from acceptance to the response entering the FIFO: one register stage, then the read latency
_RESP_STAGES = 1 + READ_LATENCY


def host_command_layout(config):
    """``cmd``'s payload: ``spec.host.COMMAND_FIELDS`` in order, then ``data`` (``data_bits(config)``)."""
    return data.StructLayout({**{name: unsigned(bits) for name, bits in COMMAND_FIELDS},
                              "data": unsigned(data_bits(config))})


def host_response_layout(config):
    """``resp``'s payload: one field, ``data`` (``data_bits(config)``)."""
    return data.StructLayout({"data": unsigned(data_bits(config))})


class HostEdge(wiring.Component):
    """The valid/ready host edge; see the module docstring for the contract."""

    def __init__(self, config):
        config.check_rtl()
        self._config = config
        P = len(config.slices)
        V = LANE_BITS * config.lanes
        status = {STATUS_PORTS[name]: In(bits) for name, bits in STATUS_FIELDS}
        super().__init__({
            "cmd": In(stream.Signature(host_command_layout(config))),
            "resp": Out(stream.Signature(host_response_layout(config))),
            "q_load_en": Out(P),
            "q_load_addr": Out(16),
            "q_load_word": Out(isa.WORD_BITS),
            "mem_we": Out(P),
            "mem_re": Out(P),
            "mem_bank": Out(4),
            "mem_addr": Out(16),
            "mem_wdata": Out(V),
            "mem_rdata": In(data.ArrayLayout(unsigned(V), P)),
            "start": Out(1),
            "running": In(1),
            **status,
        })

    def elaborate(self, platform):
        c = self._config
        P = len(c.slices)
        V = LANE_BITS * c.lanes
        D = data_bits(c)
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=D, depth=RESPONSE_DEPTH)

        cmd = self.cmd.payload
        op = cmd.op
        onehot = Cat(*(cmd.slice == p for p in range(P)))
        is_mem = Cat(*(cmd.slice == p for p in c.positions("mem"))).any()
        mem_ok = is_mem & (cmd.bank < c.mem_banks) & (cmd.addr < c.mem_depth)
        q_ok = (cmd.slice < P) & (cmd.addr < c.queue_depth)
        responds = (op == HostOp.READ_MEM) | (op == HostOp.STATUS)

        # ---- the response pipeline: stage k holds what was accepted k cycles ago ----
        resp_v = [None] + [Signal(name=f"resp_v{k}") for k in range(1, _RESP_STAGES + 1)]
        resp_st = [None] + [Signal(name=f"resp_status{k}") for k in range(1, _RESP_STAGES + 1)]
        read_sel = [self.mem_re] + [Signal(P, name=f"read_sel{k}") for k in range(2, _RESP_STAGES + 1)]
        for k in range(2, _RESP_STAGES + 1):
            m.d.sync += [resp_v[k].eq(resp_v[k - 1]), resp_st[k].eq(resp_st[k - 1]),
                         read_sel[k - 1].eq(read_sel[k - 2])]

        # ---- credits: responses accepted and not yet handed over on ``resp`` ----
        outstanding = Signal(range(RESPONSE_DEPTH + 1))
        # a START waits until no response still needs the memories or the status (the last stage samples
        # them during its own cycle, before a START accepted then can pulse)
        pipe_busy = Cat(*resp_v[1:_RESP_STAGES]).any()
        with m.Switch(op):
            with m.Case(HostOp.READ_MEM, HostOp.STATUS):
                m.d.comb += self.cmd.ready.eq(~self.running & ~self.start & (outstanding < RESPONSE_DEPTH))
            with m.Case(HostOp.START):
                m.d.comb += self.cmd.ready.eq(~self.running & ~self.start & ~pipe_busy)
            with m.Default():
                m.d.comb += self.cmd.ready.eq(~self.running & ~self.start)
        fire = Signal()
        m.d.comb += fire.eq(self.cmd.valid & self.cmd.ready)

        take = fire & responds
        give = self.resp.valid & self.resp.ready
        with m.If(take & ~give):
            m.d.sync += outstanding.eq(outstanding + 1)
        with m.Elif(give & ~take):
            m.d.sync += outstanding.eq(outstanding - 1)

        # ---- stage 1: the strobes toward the core (registers) ----
        m.d.sync += [
            self.q_load_en.eq(0), self.mem_we.eq(0), self.mem_re.eq(0), self.start.eq(0),
            resp_v[1].eq(take), resp_st[1].eq(fire & (op == HostOp.STATUS)),
        ]
        with m.If(fire):
            with m.Switch(op):
                with m.Case(HostOp.WRITE_QUEUE):
                    with m.If(q_ok):
                        m.d.sync += [self.q_load_en.eq(onehot), self.q_load_addr.eq(cmd.addr),
                                     self.q_load_word.eq(cmd.data[:isa.WORD_BITS])]
                with m.Case(HostOp.WRITE_MEM):
                    with m.If(mem_ok):
                        m.d.sync += [self.mem_we.eq(onehot), self.mem_bank.eq(cmd.bank),
                                     self.mem_addr.eq(cmd.addr), self.mem_wdata.eq(cmd.data[:V])]
                with m.Case(HostOp.READ_MEM):
                    with m.If(mem_ok):
                        m.d.sync += [self.mem_re.eq(onehot), self.mem_bank.eq(cmd.bank),
                                     self.mem_addr.eq(cmd.addr)]
                with m.Case(HostOp.START):
                    m.d.sync += self.start.eq(1)

        # ---- last stage: the response enters the FIFO (room was reserved at acceptance) ----
        last = read_sel[-1]
        word = Signal(V)
        m.d.comb += word.eq(0)
        for p in c.positions("mem"):   # at most one bit of ``last`` is set, and only a MEM slice's
            with m.If(last[p]):
                m.d.comb += word.eq(self.mem_rdata[p])
        status = Cat(*(getattr(self, STATUS_PORTS[name]) for name, _ in STATUS_FIELDS))
        m.d.comb += [
            fifo.w_en.eq(resp_v[-1]),
            fifo.w_data.eq(Mux(resp_st[-1], status, word)),
            self.resp.valid.eq(fifo.r_rdy),
            self.resp.payload.data.eq(fifo.r_data),
            fifo.r_en.eq(self.resp.ready),
        ]
        return m
