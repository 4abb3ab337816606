"""A slice's instruction queue (ICU): queue memory, pc, NOP/HALT, static faults, busy units, activity.

The rules are those of ``golden.chip.ChipSim.run``'s issue loop (docs/chip.md, "Instruction queues and
units", "Faults", "RTL structure"); the decoding and every number (busy, span, limits) come from
:class:`rtl.decode.Decoder`, itself derived from ``spec.isa``.

Contract
--------
* **Loading** (host, between runs): ``load_en`` writes ``load_word`` to word ``load_addr`` of the queue
  memory (``queue_depth`` × 64, an ``amaranth.lib.memory.Memory`` with a synchronous read port, so block
  RAM) and makes the program ``load_addr + 1`` words long; words at and past the program length read as 0
  (the all-zero word is ``ILLEGAL_OPCODE``). An address at or above ``queue_depth`` is ignored. The length
  and the memory are kept through the sync reset (the chip resets its core components on START).
* **Start**: ``start`` high in the cycle before cycle 0 (with or without the sync reset in the same cycle)
  clears pc, the halted and faulted state, the NOP wait and the busy and activity countdowns, and presents
  read address 0, so that the word at pc 0 is there in cycle 0.
* **Run**: in every cycle ``t`` with ``run`` high, if the queue is neither halted nor faulted and its NOP
  wait is over: pc ≥ ``queue_depth`` faults ``QUEUE_OVERRUN``; else the word at pc faults statically
  (``Decoder.fault_code``), or ``UNIT_BUSY`` if its unit is still busy, or it issues: ``issue`` is high with
  ``word``; ``NOP n`` makes the next issue ``t + n``; ``HALT`` halts the queue; another instruction makes
  its unit busy during ``t … t + busy - 1``; pc advances. ``fault``/``fault_code`` are high/set exactly in
  the cycle a fault is detected (at ``fault_pc``); the queue does nothing after it. Nothing changes while
  ``run`` is low (only ``start``, reset and loads act then).
* **Run-time faults** (``rt_fault``, from the slice: a READX/WRITEX index out of range, ``INDEX_RANGE``)
  belong to the instruction issued the cycle before, so they are reported at ``fault_pc = pc - 1`` (the pc
  advanced by exactly that issue), in the cycle they come, whether or not the queue issues then (it is
  never halted or in a NOP wait in the cycle after an issue of a READX/WRITEX).
  A static fault of the same cycle has a lower code and wins (``spec.isa.ErrorCode``: ``INDEX_RANGE`` is
  the highest code), as golden's lowest-code rule says; a run-time fault also makes the queue faulted.
* **Slices that name the pc** (``RT_PC_KINDS``: ``link``) have an ``rt_pc`` In port as well: their run-time
  faults come at other offsets from the issue (a RECV item's cycle, a word arriving with no RECV), so the
  slice says which pc to report (``rtl.link``: the pc it latched from the queue's ``pc`` at the
  instruction's issue, or the queue's current ``pc``) and ``fault_pc`` is ``rt_pc`` for them. Other kinds
  keep ``pc - 1`` and have no ``rt_pc`` port (their Verilog is what it was).
* ``idle`` is high in cycle ``t`` when the queue has halted (a HALT issued at ``t`` included) and no
  instruction issued before has activity after ``t`` (an instruction issued at ``t0`` is active during
  ``t0 … t0 + span - 1``, ``spec.isa.timing(...).span``; NOP and HALT only during their issue cycle).
* ``pc`` and ``opcode`` show the pc and the opcode of the word there (for waveforms).
"""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from spec import isa
from spec.config import SLICE_KINDS
from spec.isa import ErrorCode
from spec.mxu import bits_for

from .common import check_config_kind, field
from .decode import Decoder

__all__ = ["InstructionQueue", "RT_PC_KINDS"]

#: Slice kinds whose run-time faults come with the pc to report (``rt_pc``); the others report ``pc - 1``.
RT_PC_KINDS = ("link",)

if ErrorCode.INDEX_RANGE != max(ErrorCode):  # pragma: no cover - the priority below relies on it
    raise ImportError("rtl.icu lets a static fault win over a run-time one: INDEX_RANGE must be the highest code")
if min(isa.LinkErrorCode) <= max(ErrorCode):  # pragma: no cover - the link slices' run-time codes likewise
    raise ImportError("rtl.icu lets a static fault win over a run-time one: the link codes must be above ErrorCode")


class InstructionQueue(wiring.Component):
    """The instruction queue of one slice of ``kind`` in ``config`` (module docstring: the contract).

    Ports: ``start``, ``run``, ``load_en``, ``load_addr`` (``addr_bits``), ``load_word`` (64), ``rt_fault``
    (``spec.isa.ERROR_CODE_BITS``) In; ``issue``, ``word`` (64), ``pc`` (``spec.isa.FAULT_PC_BITS``),
    ``opcode`` (6), ``idle``, ``fault``, ``fault_code`` (``spec.isa.ERROR_CODE_BITS``), ``fault_pc``
    (``spec.isa.FAULT_PC_BITS``) Out; for a kind of ``RT_PC_KINDS`` also ``rt_pc`` In (``FAULT_PC_BITS``).
    """
    def __init__(self, config, kind):
        check_config_kind(config, kind)
        self.config = config
        self.kind = kind
        self.depth = config.queue_depth
        self.addr_bits = bits_for(self.depth)
        extra = {"rt_pc": In(isa.FAULT_PC_BITS)} if kind in RT_PC_KINDS else {}
        super().__init__({
            "start": In(1),
            "run": In(1),
            "load_en": In(1),
            "load_addr": In(self.addr_bits),
            "load_word": In(isa.WORD_BITS),
            "rt_fault": In(isa.ERROR_CODE_BITS),
            "issue": Out(1),
            "word": Out(isa.WORD_BITS),
            "pc": Out(isa.FAULT_PC_BITS),
            "opcode": Out(isa.OPCODE_FIELD.width),
            "idle": Out(1),
            "fault": Out(1),
            "fault_code": Out(isa.ERROR_CODE_BITS),
            "fault_pc": Out(isa.FAULT_PC_BITS),
            **extra,
        })

    def elaborate(self, platform):
        m = Module()
        depth = self.depth
        m.submodules.decoder = dec = Decoder(self.config, self.kind)

        # ---- queue memory and program length (kept through reset: loads come before START) --------------
        m.submodules.mem = mem = memory.Memory(shape=isa.WORD_BITS, depth=depth, init=[])
        wr = mem.write_port()
        rd = mem.read_port()
        length = Signal(range(depth + 1), reset_less=True)
        load = Signal()
        if depth == 1 << self.addr_bits:
            m.d.comb += load.eq(self.load_en)
        else:
            m.d.comb += load.eq(self.load_en & (self.load_addr < depth))
        m.d.comb += [wr.en.eq(load), wr.addr.eq(self.load_addr), wr.data.eq(self.load_word)]
        with m.If(load):
            m.d.sync += length.eq(self.load_addr + 1)

        # ---- state --------------------------------------------------------------------------------------
        pc = Signal(range(depth + 1))
        halted = Signal()
        faulted = Signal()
        wait = Signal(dec.busy_bits, name="nop_wait")       # cycles the queue still waits after this one
        units = SLICE_KINDS[self.kind].units
        left = [Signal(dec.busy_bits, name=f"busy_{u}") for u in units]   # busy cycles after this one
        active = Signal(dec.span_bits, name="active_left")  # activity cycles after this one

        # ---- this cycle ---------------------------------------------------------------------------------
        word = Signal(isa.WORD_BITS)
        m.d.comb += [word.eq(Mux(pc < length, rd.data, 0)), dec.word.eq(word)]
        unit_busy = Signal()
        busy_sel = Signal()
        for i, sig in enumerate(left):
            with m.If(dec.unit == i):
                m.d.comb += busy_sel.eq(sig != 0)
        m.d.comb += unit_busy.eq(~dec.is_queue_op & busy_sel)
        overrun = Signal()
        m.d.comb += overrun.eq(pc >= depth)
        ready = Signal()
        m.d.comb += ready.eq(self.run & ~halted & ~faulted & (wait == 0))
        code = Signal(isa.ERROR_CODE_BITS)
        with m.If(overrun):
            m.d.comb += code.eq(ErrorCode.QUEUE_OVERRUN)
        with m.Elif(dec.fault_code != 0):
            m.d.comb += code.eq(dec.fault_code)
        with m.Elif(unit_busy):
            m.d.comb += code.eq(ErrorCode.UNIT_BUSY)
        static_fault = Signal()
        late_fault = Signal()      # the slice's run-time fault, of the instruction issued the cycle before
        fault = Signal()
        issue = Signal()
        m.d.comb += [
            static_fault.eq(ready & (code != 0)),
            late_fault.eq(self.run & ~faulted & (self.rt_fault != 0)),
            fault.eq(static_fault | late_fault),
            issue.eq(ready & (code == 0)),
            self.issue.eq(issue),
            self.word.eq(word),
            self.pc.eq(pc),
            self.opcode.eq(field(word, "op")),
            self.fault.eq(fault),
            self.fault_code.eq(Mux(static_fault, code, Mux(late_fault, self.rt_fault, 0))),
            self.fault_pc.eq(Mux(static_fault, pc, self.rt_pc if self.kind in RT_PC_KINDS else pc - 1)),
            self.idle.eq((halted | (issue & dec.halt)) & (active == 0)),
        ]

        # ---- next cycle ---------------------------------------------------------------------------------
        pc_next = Signal.like(pc)
        m.d.comb += pc_next.eq(pc + issue)
        m.d.comb += rd.addr.eq(Mux(self.start, 0, pc_next))   # the word at pc is read a cycle ahead
        active_next = Signal.like(active)
        m.d.comb += active_next.eq(Mux(active != 0, active - 1, 0))
        with m.If(self.run):
            m.d.sync += pc.eq(pc_next)
            for sig in [wait, active, *left]:
                with m.If(sig != 0):
                    m.d.sync += sig.eq(sig - 1)
            with m.If(issue):
                with m.If(dec.is_queue_op):
                    m.d.sync += wait.eq(dec.busy - 1)
                    with m.If(dec.halt):
                        m.d.sync += halted.eq(1)
                with m.Else():
                    for i, sig in enumerate(left):
                        with m.If(dec.unit == i):
                            m.d.sync += sig.eq(dec.busy - 1)
                    # active after the next cycle: max(what is left, span - 2)
                    with m.If(dec.span > active_next + 2):
                        m.d.sync += active.eq(dec.span - 2)
            with m.If(fault):
                m.d.sync += faulted.eq(1)
        with m.If(self.start):
            m.d.sync += [pc.eq(0), halted.eq(0), faulted.eq(0), wait.eq(0), active.eq(0),
                         *(sig.eq(0) for sig in left)]
        return m
