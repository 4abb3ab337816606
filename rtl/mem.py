"""A MEM slice: ``mem_banks`` SRAM banks of ``mem_depth`` vectors, a read unit (READ, READX) and a write unit
(WRITE, WRITEX).

Contract (docs/chip.md, docs/isa.md "Timing"; the golden twin is ``golden.chip``):

* ``READ bank addr count -> dst`` issued at ``t``: the address of word ``addr + i`` is presented during
  ``t + MEM_DECODE_STAGES + i``; the word (as stored before that cycle) is written on ``dst`` during
  ``t + MEM_READ_LATENCY + i``.
* ``WRITE src bank addr count`` issued at ``t``: the vector seen on ``src`` during ``t + MEM_WRITE_LATENCY + i``
  is stored into word ``addr + i`` at the end of that cycle.
* ``READX src bank addr count lane -> dst`` issued at ``t``: the index ``x`` (lane ``lane`` of ``src``, a
  signed int32) is sampled during ``t + MEM_INDEX_OFFSET``; word ``addr + x + i``'s address is presented
  one cycle later than a READ's (``t + MEM_INDEX_OFFSET + MEM_DECODE_STAGES + i``) and the word is on
  ``dst`` during ``t + READX_LATENCY + i``. It uses the read unit (busy ``count + 1``).
* ``WRITEX src src2 bank addr count lane`` issued at ``t``: as WRITE, into word ``addr + x + i``, with ``x``
  (lane ``lane`` of ``src2``) sampled with data item 0. Item 0's address comes straight from the index
  port (the same cycle); the next items count on from it.
* The index unit: stream read port 1 reads the index stream of the READX or WRITEX issued the cycle before
  (a queue issues one instruction per cycle, so at most one samples an index in a cycle). An index that
  ``spec.isa.index_fault`` refuses (``x < 0`` or ``addr + x + count > mem_depth``) raises ``rt_fault`` =
  ``INDEX_RANGE`` in that cycle, and that instruction reads and stores nothing (its item 0 store is
  suppressed, its unit stops); the other unit's work of the cycle goes on. The chip reports it with the pc
  of the instruction issued the cycle before (``rtl.icu``) and stops.
* Both units run at once, on any banks (each bank has a read port and a write port: ``rtl.sram``). The
  queue never issues to a busy unit nor an out-of-range bank, address or lane, so the units do not check
  those (only the run-time index).
* Host port, used only while ``run`` is low: ``host_we`` stores ``host_wdata`` at ``host_bank``/``host_addr``;
  ``host_rdata`` is the word at the ``host_bank``/``host_addr`` presented two cycles earlier (zero for a bank
  or address out of range, whose writes are ignored).
* Nothing changes while ``run`` is low except through the host port; the banks' contents survive reset.

Throughput: one read and one write per cycle. The SRAM read latency must be ``MEM_SRAM_READ_STAGES``.
"""
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec import isa
from spec.mxu import bits_for

from .common import LANE_BITS, field, slice_signature, vector_layout
from .sram import READ_LATENCY, RegisteredRAM

if READ_LATENCY != isa.MEM_SRAM_READ_STAGES:  # pragma: no cover - the spec and the SRAM must agree
    raise ImportError(f"rtl.sram reads in {READ_LATENCY} cycles, spec.isa.MEM_SRAM_READ_STAGES is "
                      f"{isa.MEM_SRAM_READ_STAGES}")
if isa.MEM_DECODE_STAGES != 1 or isa.MEM_WRITE_LATENCY != 1:  # pragma: no cover
    raise ImportError("rtl.mem registers an instruction for one cycle before its first item")
if (isa.MEM_INDEX_OFFSET != isa.MEM_WRITE_LATENCY
        or isa.READX_LATENCY != isa.MEM_INDEX_OFFSET + isa.MEM_READ_LATENCY):  # pragma: no cover
    raise ImportError("rtl.mem samples a READX/WRITEX index one cycle after issue (with WRITEX's item 0) and "
                      "starts READX's reads the cycle after")


def _check_index_rule(config):
    """The index check below is ``x < 0 or addr + x + count > mem_depth``: make sure ``spec.isa.index_fault``
    says the same at its edges (``ImportError``-like ``AssertionError`` at elaboration otherwise)."""
    depth = config.mem_depth
    for addr, count in {(0, 1), (0, depth), (depth - 1, 1), (depth // 2, 1 + (depth - 1) // 2)}:
        ins = isa.Instruction("READX", src="E0", bank=0, addr=addr, count=count, lane=0, dst="E0")
        for x in (-(1 << 31), -1, 0, depth - addr - count, depth - addr - count + 1, (1 << 31) - 1):
            want = x < 0 or addr + x + count > depth
            f = isa.index_fault(ins, x, config)
            if (f is not None) != want or (f is not None and f.code != isa.ErrorCode.INDEX_RANGE):
                raise AssertionError(f"spec.isa.index_fault({ins}, {x}) is {f}: rtl.mem needs updating")

__all__ = ["MemSlice"]


class MemSlice(wiring.Component):
    """One MEM slice of ``config`` (a ``spec.config.ChipConfig``). Ports: docs/chip.md, "RTL structure";
    read port 0 is the WRITE/WRITEX data stream, read port 1 the READX/WRITEX index stream. ``rt_fault``
    (``spec.isa.ERROR_CODE_BITS``) is the run-time fault of this cycle (0: none, else ``INDEX_RANGE``) of the
    instruction issued the cycle before."""
    READS = 2

    def __init__(self, config):
        self._config = config
        super().__init__(slice_signature(
            config, self.READS,
            host_we=In(1),
            host_bank=In(4),
            host_addr=In(16),
            host_wdata=In(vector_layout(config)),
            host_rdata=Out(vector_layout(config)),
            rt_fault=Out(isa.ERROR_CODE_BITS),
            # for waveforms: the units' state
            read_left=Out(isa.FIELDS["count"].width + 1),
            write_left=Out(isa.FIELDS["count"].width + 1),
        ))

    def elaborate(self, platform):
        m = Module()
        c = self._config
        banks, depth = c.mem_banks, c.mem_depth
        abits = bits_for(depth)
        bbits = bits_for(banks)
        count_bits = isa.FIELDS["count"].width + 1
        rams = []
        for b in range(banks):
            ram = RegisteredRAM(vector_layout(c), depth)
            m.submodules[f"bank{b}"] = ram
            rams.append(ram)

        op = field(self.word, "op")

        def issuing(name):
            return self.run & self.issue & (op == isa.OPCODES[name].code)
        issue_read, issue_write = issuing("READ"), issuing("WRITE")
        issue_readx, issue_writex = issuing("READX"), issuing("WRITEX")

        # ---- the index unit: READX/WRITEX sample lane `lane` of their index stream MEM_INDEX_OFFSET after issue
        _check_index_rule(c)
        x_read = Signal()                                 # a READX samples its index this cycle
        x_write = Signal()                                # a WRITEX samples its index (with item 0) this cycle
        x_stream = Signal(isa.FIELDS["src"].width)
        x_lane = Signal(isa.FIELDS["lane"].width)
        x_addr = Signal(abits)                            # addr < mem_depth (the queue checks it)
        x_countm1 = Signal(abits)                         # count - 1 < mem_depth - addr
        with m.If(self.run):
            m.d.sync += [x_read.eq(issue_readx), x_write.eq(issue_writex)]
        with m.If(issue_readx | issue_writex):
            m.d.sync += [
                x_stream.eq(Mux(issue_readx, field(self.word, "src"), field(self.word, "src2"))),
                x_lane.eq(field(self.word, "lane")),
                x_addr.eq(field(self.word, "addr")),
                x_countm1.eq(field(self.word, "count")),
            ]
        m.d.comb += self.sel[1].eq(x_stream)
        x = Signal(signed(LANE_BITS), name="index")
        with m.Switch(x_lane):
            for lane in range(min(c.lanes, 1 << len(x_lane))):
                with m.Case(lane):
                    m.d.comb += x.eq(self.seen[1][lane])
        x_on = Signal()
        x_bad = Signal()
        x_fault = Signal()
        x_base = Signal(abits)                            # addr + x: the first word (meaningful unless x_bad)
        m.d.comb += [
            x_on.eq(self.run & (x_read | x_write)),
            # x < 0, or addr + x + count > depth  <=>  addr + x + (count - 1) >= depth
            x_bad.eq(x[-1] | (x[:-1] + x_addr + x_countm1 >= depth)),
            x_fault.eq(x_on & x_bad),
            x_base.eq(x_addr + x[:abits]),
            self.rt_fault.eq(Mux(x_fault, isa.ErrorCode.INDEX_RANGE, 0)),
        ]

        # ---- read unit (READ, READX) ----
        r_left = Signal(count_bits)
        r_addr = Signal(abits)
        r_bank = Signal(bbits)
        r_dst = Signal(isa.FIELDS["dst"].width)
        r_on = Signal()
        m.d.comb += [r_on.eq(self.run & (r_left != 0)), self.read_left.eq(r_left)]
        with m.If(issue_read | issue_readx):
            m.d.sync += [r_bank.eq(field(self.word, "bank")), r_dst.eq(field(self.word, "dst"))]
        with m.If(issue_read):
            m.d.sync += [
                r_left.eq(field(self.word, "count") + 1),
                r_addr.eq(field(self.word, "addr")),
            ]
        with m.Elif(x_on & x_read):                       # READX: its reads start the next cycle, at addr + x
            m.d.sync += [r_left.eq(Mux(x_bad, 0, x_countm1 + 1)), r_addr.eq(x_base)]
        with m.Elif(r_on):
            m.d.sync += [r_left.eq(r_left - 1), r_addr.eq(r_addr + 1)]

        # the read pipeline: address presented (stage 0), then READ_LATENCY cycles to the data
        host_ok = Signal()
        m.d.comb += host_ok.eq((self.host_bank < banks) & (self.host_addr < depth))
        rd_addr = Signal(abits)
        rd_bank = Signal(bbits)
        with m.If(self.run):
            m.d.comb += [rd_addr.eq(r_addr), rd_bank.eq(r_bank)]
        with m.Else():
            m.d.comb += [rd_addr.eq(self.host_addr), rd_bank.eq(self.host_bank)]
        for ram in rams:
            m.d.comb += ram.rd_addr.eq(rd_addr)
        valid, dst, bank, ok = r_on, r_dst, rd_bank, host_ok
        for k in range(READ_LATENCY):
            nv, nd = Signal(name=f"rd_valid_{k + 1}"), Signal(len(r_dst), name=f"rd_dst_{k + 1}")
            nb, nok = Signal(bbits, name=f"rd_bank_{k + 1}"), Signal(name=f"rd_ok_{k + 1}")
            m.d.sync += [nv.eq(valid), nd.eq(dst), nb.eq(bank), nok.eq(ok)]
            valid, dst, bank, ok = nv, nd, nb, nok
        rdata = Signal(vector_layout(c))
        with m.Switch(bank):
            for b, ram in enumerate(rams):
                with m.Case(b):
                    m.d.comb += rdata.eq(ram.rd_data)
        m.d.comb += [
            self.put.valid.eq(valid & self.run),
            self.put.stream.eq(dst),
            self.put.data.eq(rdata),
        ]
        with m.If(ok):
            m.d.comb += self.host_rdata.eq(rdata)

        # ---- write unit (WRITE, WRITEX) ----
        w_left = Signal(count_bits)
        w_addr = Signal(abits)
        w_bank = Signal(bbits)
        w_src = Signal(isa.FIELDS["src"].width)
        w_on = Signal()
        w_fault = Signal()                                # this cycle's WRITEX index is out of range
        w_at = Signal(abits)                              # the word stored this cycle
        m.d.comb += [
            w_on.eq(self.run & (w_left != 0)),
            self.write_left.eq(w_left),
            w_fault.eq(x_fault & x_write),
            # WRITEX's item 0 goes to addr + x straight from the index port; later items count on from it
            w_at.eq(Mux(x_write, x_base, w_addr)),
        ]
        with m.If(issue_write | issue_writex):
            m.d.sync += [
                w_left.eq(field(self.word, "count") + 1),
                w_addr.eq(field(self.word, "addr")),
                w_bank.eq(field(self.word, "bank")),
                w_src.eq(field(self.word, "src")),
            ]
        with m.Elif(w_on):
            m.d.sync += [w_left.eq(Mux(w_fault, 0, w_left - 1)), w_addr.eq(w_at + 1)]
        m.d.comb += self.sel[0].eq(w_src)
        seen = self.seen[0]
        for b, ram in enumerate(rams):
            with m.If(self.run):
                m.d.comb += [
                    ram.wr_en.eq(w_on & ~w_fault & (w_bank == b)),
                    ram.wr_addr.eq(w_at),
                    ram.wr_data.eq(seen),
                ]
            with m.Else():
                m.d.comb += [
                    ram.wr_en.eq(self.host_we & host_ok & (self.host_bank == b)),
                    ram.wr_addr.eq(self.host_addr),
                    ram.wr_data.eq(self.host_wdata),
                ]
        return m
