"""Proof: a slice's instruction queue (``rtl.icu.InstructionQueue``, with its ``rtl.decode.Decoder``), a MEM
slice's queue of 4 words on the "tiny" chip.

Environment (the chip's run control, ``rtl/chip.py``): any loads, START pulses, ``run`` and a synchronous
reset at any cycle, with the contract's rules: loads only between runs (not with ``run`` or ``start``),
``run`` only after a START with no load or reset since, never ``run`` and ``start`` together. The program is
arbitrary: every 64-bit word, legal or not.

Properties (``Assert``), the proof keeping its own copy of the program (words and length) and of the
queue's state:

* fetch: while a program runs, ``word`` is the program's word at ``pc`` (0 at and past its length);
* the pc advances exactly as the program says: ``pc`` becomes ``pc + 1`` after an issue and stays otherwise
  while ``run``, stays while not ``run``, and is 0 after START or reset;
* progress: a running queue that is not halted, not faulted and not waiting out a NOP issues or faults each
  cycle (never both); ``NOP n`` holds it for exactly ``n`` run cycles (no issue, no fault before);
* HALT is terminal: after a HALT issues, nothing issues or faults until the next START/reset;
* errors are sticky: after a fault, nothing issues or faults until the next START/reset; ``fault_code`` is
  non-zero exactly with ``fault``; pc at ``queue_depth`` faults ``QUEUE_OVERRUN``;
* only opcodes legal on the slice kind issue;
* run-time faults (``rt_fault``, free but, as the MEM slice has it, only ``INDEX_RANGE`` and only in the
  cycle after a READX/WRITEX issued): one is reported with ``fault_pc = pc - 1`` (that READX/WRITEX) and its
  code unless a static fault of the same cycle wins (then ``fault_pc = pc`` and a lower code); a static
  fault alone is at ``pc``; an issue comes with a fault only when a run-time one arrives;
* helper invariants for the induction: the queue memory, its read register, the length, the halted/faulted
  flags and the NOP wait equal the proof's copies.

Covers: a program of a NOP 2 and a HALT run to its end; a fault after an issue; a QUEUE_OVERRUN; a run-time
fault in a cycle the queue issues; one the same cycle as a static fault.
"""
from amaranth.asserts import AnySeq
from amaranth.hdl import Array, Assert, Assume, Cover, Mux, Signal

from .common import Proof, Wrapper, open_module, prev

KIND = "mem"
DEPTH = 4

BUGS = {
    "load_shift": "the queue memory gets an odd load_word at the neighbouring address (wrong program fetched)",
    "restart_after_halt": "the queue sees a START pulse the cycle after a HALT issues (HALT not terminal)",
    "restart_after_fault": "the queue sees a START pulse the cycle after a fault (error not sticky)",
}


def config():
    from spec.config import ChipConfig
    return ChipConfig.preset("tiny").replace(name="formal-icu", queue_depth=DEPTH)


class ICUProof(Wrapper):
    BUGS = BUGS

    def elaborate(self, platform):
        from rtl.common import field
        from rtl.icu import InstructionQueue
        from spec import isa
        from spec.isa import ErrorCode
        m = self.module()
        cd = self.cd_sync
        c = config()
        m.submodules.dut = dut = InstructionQueue(c, KIND)
        q = open_module(dut, platform)
        mem = q.submodules["mem"]
        rd_data = mem.read_ports[0].data       # the queue's own (synchronous) read port
        words_dut = q.peek_memory(m, "mem")

        rst = Signal()
        m.d.comb += [rst.eq(AnySeq(1)), cd.rst.eq(rst)]
        start, run, load_en, rt = Signal(), Signal(), Signal(), Signal(isa.ERROR_CODE_BITS)
        load_addr, load_word = Signal(dut.addr_bits), Signal(64)
        m.d.comb += [start.eq(AnySeq(1)), run.eq(AnySeq(1)), load_en.eq(AnySeq(1)),
                     load_addr.eq(AnySeq(dut.addr_bits)), load_word.eq(AnySeq(64)), rt.eq(AnySeq(len(rt)))]

        # ---- the environment's rules -------------------------------------------------------------------
        armed = Signal(reset_less=True)   # a START since the last load/reset: run may be high
        m.d.sync += armed.eq(start | (armed & ~load_en & ~rst))
        m.d.comb += [Assume(~load_en | (~run & ~start)), Assume(~run | armed), Assume(~(run & start))]

        # ---- the proof's copy of the program (kept through reset, like the queue's) --------------------
        prog = Array(Signal(64, name=f"prog{i}", reset_less=True) for i in range(DEPTH))
        length = Signal(range(DEPTH + 1), reset_less=True)
        with m.If(load_en & (load_addr < DEPTH)):
            m.d.sync += [prog[load_addr].eq(load_word), length.eq(load_addr + 1)]

        # ---- the queue's inputs (and the planted bugs) ------------------------------------------------
        dut_start = Signal()
        m.d.comb += [dut.run.eq(run), dut.load_en.eq(load_en), dut.load_addr.eq(load_addr),
                     dut.load_word.eq(load_word), dut_start.eq(start), dut.rt_fault.eq(rt)]
        op = field(dut.word, "op")
        # the slice's run-time fault: INDEX_RANGE, only in the cycle after a READX/WRITEX issued (and ran)
        indexed = op.matches(isa.OPCODES["READX"].code, isa.OPCODES["WRITEX"].code)
        p_indexed = prev(m, dut.issue & indexed & run & ~start, "p_indexed")
        m.d.comb += Assume((rt == 0) | ((rt == ErrorCode.INDEX_RANGE) & p_indexed & run & ~start))
        is_halt = op == isa.OPCODES["HALT"].code
        if self.bug == "load_shift":
            m.d.comb += dut.load_addr.eq(load_addr ^ load_word[0])
        elif self.bug == "restart_after_halt":
            m.d.comb += dut_start.eq(start | prev(m, dut.issue & is_halt, "bug_halt"))
        elif self.bug == "restart_after_fault":
            m.d.comb += dut_start.eq(start | prev(m, dut.fault, "bug_fault"))
        m.d.comb += dut.start.eq(dut_start)

        pc = dut.pc
        issue, fault = dut.issue, dut.fault
        # ---- fetch -------------------------------------------------------------------------------------
        want_word = Signal(64)
        m.d.comb += want_word.eq(Mux(pc < length, prog[pc[:dut.addr_bits]], 0))
        with m.If(run):
            m.d.comb += Assert(dut.word == want_word, "word is not the program's word at pc")

        # ---- pc ----------------------------------------------------------------------------------------
        p_run = prev(m, run & ~start, "p_run", reset_less=True)
        p_reset = prev(m, start | rst, "p_reset", reset_less=True)
        p_pc = prev(m, pc, "p_pc", reset_less=True)
        p_issue = prev(m, issue, "p_issue", reset_less=True)
        with m.If(p_reset):
            m.d.comb += Assert(pc == 0, "pc is not 0 after START/reset")
        with m.Elif(p_run):
            m.d.comb += Assert(pc == p_pc + p_issue, "pc did not advance by exactly the issue")
        with m.Else():
            m.d.comb += Assert(pc == p_pc, "pc changed while not running")

        # ---- the proof's copy of the queue state (cleared by START and reset) --------------------------
        halted, faulted = Signal(), Signal()
        wait = Signal(17)
        is_nop = op == isa.OPCODES["NOP"].code
        with m.If(run):
            with m.If(wait != 0):
                m.d.sync += wait.eq(wait - 1)
            with m.If(issue & is_nop):
                m.d.sync += wait.eq(field(dut.word, "count"))    # count - 1, as stored: NOP n waits n - 1 more
            with m.If(issue & is_halt):
                m.d.sync += halted.eq(1)
            with m.If(fault):
                m.d.sync += faulted.eq(1)
        with m.If(start):
            m.d.sync += [halted.eq(0), faulted.eq(0), wait.eq(0)]

        late = Signal()             # a run-time fault the queue must report this cycle
        m.d.comb += late.eq(run & (rt != 0) & ~faulted)
        with m.If(fault & ~late):
            m.d.comb += Assert(dut.fault_pc == pc, "a static fault not reported at pc")
        with m.If(late):
            m.d.comb += Assert(fault, "a run-time fault not reported")
            with m.If(issue | halted | (wait != 0)):     # no static fault this cycle
                m.d.comb += Assert((dut.fault_code == rt) & (dut.fault_pc == pc - 1),
                                   "a run-time fault not reported with its code at pc - 1")
            with m.Else():                               # a ready queue that does not issue faults: it wins
                m.d.comb += Assert((dut.fault_pc == pc) & (dut.fault_code < rt), "static fault lost")
        m.d.comb += [
            Assert(~(issue & fault) | late, "issue and a static fault in one cycle"),
            Assert(~issue | run, "issue while not running"),
            Assert(~fault | run, "fault while not running"),
            Assert(fault == (dut.fault_code != 0), "fault_code is not non-zero exactly with fault"),
        ]
        with m.If(halted):
            m.d.comb += Assert(~issue & ~fault, "HALT is not terminal")
        with m.If(faulted):
            m.d.comb += Assert(~issue & ~fault, "an error is not sticky")
        with m.If(rt == 0):
            m.d.comb += Assert(~(issue & fault), "issue and fault in one cycle")
        with m.If(wait != 0):
            m.d.comb += Assert(~issue & ~fault, "NOP wait cut short")
        with m.If(run & ~halted & ~faulted & (wait == 0)):
            m.d.comb += Assert(issue | fault, "a ready queue neither issued nor faulted")
            with m.If(pc >= DEPTH):
                m.d.comb += Assert(fault & (dut.fault_code == ErrorCode.QUEUE_OVERRUN), "no QUEUE_OVERRUN")
        legal = [o.code for o in isa.OPCODES.values() if o.kinds is None or KIND in o.kinds]
        with m.If(issue):
            m.d.comb += Assert(op.matches(*legal), "an opcode illegal on the slice kind issued")

        # ---- helper invariants ---------------------------------------------------------------------------
        m.d.comb += [
            Assert(q.sig("length") == length, "invariant: program length"),
            Assert(q.sig("halted") == halted, "invariant: halted"),
            Assert(q.sig("faulted") == faulted, "invariant: faulted"),
            Assert(q.sig("nop_wait") == wait, "invariant: NOP wait"),
            Assert(pc <= DEPTH, "invariant: pc within the queue"),
        ]
        for i in range(DEPTH):
            m.d.comb += Assert(words_dut[i] == prog[i], f"invariant: queue word {i}")
        with m.If(armed):
            m.d.comb += Assert(rd_data == prog[pc[:dut.addr_bits]], "invariant: read register holds word pc")

        # ---- covers -------------------------------------------------------------------------------------
        n_issued = Signal(3)
        with m.If(issue & (n_issued != 7)):
            m.d.sync += n_issued.eq(n_issued + 1)
        m.d.comb += [
            Cover(issue & is_halt & (n_issued == 2) & (prev(m, wait, "p_wait") == 1)),
            Cover(fault & (n_issued == 1)),
            Cover(fault & (dut.fault_code == ErrorCode.QUEUE_OVERRUN)),
            Cover(late & issue & (n_issued == 3)),
            Cover(late & (dut.fault_code != ErrorCode.INDEX_RANGE)),
        ]
        return m


PROOF = Proof(name="icu", title="instruction queue (InstructionQueue + Decoder, MEM slice, 4 words): pc, NOP, "
                                "HALT terminal, sticky errors, fetch",
              build=lambda bug=None: ICUProof(bug=bug), depth=6, cover_depth=16, bugs=BUGS)
