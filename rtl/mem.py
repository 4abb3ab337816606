"""A MEM slice: ``mem_banks`` SRAM banks of ``mem_depth`` vectors, a READ unit and a WRITE unit.

Contract (docs/chip.md, docs/isa.md "Timing"; the golden twin is ``golden.chip``):

* ``READ bank addr count -> dst`` issued at ``t``: the address of word ``addr + i`` is presented during
  ``t + MEM_DECODE_STAGES + i``; the word (as stored before that cycle) is written on ``dst`` during
  ``t + MEM_READ_LATENCY + i``.
* ``WRITE src bank addr count`` issued at ``t``: the vector seen on ``src`` during ``t + MEM_WRITE_LATENCY + i``
  is stored into word ``addr + i`` at the end of that cycle.
* Both units run at once, on any banks (each bank has a read port and a write port: ``rtl.sram``). The
  queue never issues to a busy unit nor an out-of-range bank or address, so the units do not check.
* Host port, used only while ``run`` is low: ``host_we`` stores ``host_wdata`` at ``host_bank``/``host_addr``;
  ``host_rdata`` is the word at the ``host_bank``/``host_addr`` presented two cycles earlier (zero for a bank
  or address out of range, whose writes are ignored).
* Nothing changes while ``run`` is low except through the host port; the banks' contents survive reset.

Throughput: one read and one write per cycle. The SRAM read latency must be ``MEM_SRAM_READ_STAGES``.
"""
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec import isa
from spec.mxu import bits_for

from .common import field, slice_signature, vector_layout
from .sram import READ_LATENCY, RegisteredRAM

if READ_LATENCY != isa.MEM_SRAM_READ_STAGES:  # pragma: no cover - the spec and the SRAM must agree
    raise ImportError(f"rtl.sram reads in {READ_LATENCY} cycles, spec.isa.MEM_SRAM_READ_STAGES is "
                      f"{isa.MEM_SRAM_READ_STAGES}")
if isa.MEM_DECODE_STAGES != 1 or isa.MEM_WRITE_LATENCY != 1:  # pragma: no cover
    raise ImportError("rtl.mem registers an instruction for one cycle before its first item")

__all__ = ["MemSlice"]


class MemSlice(wiring.Component):
    """One MEM slice of ``config`` (a ``spec.config.ChipConfig``). Ports: docs/chip.md, "RTL structure";
    read port 0 is the WRITE unit's source stream."""
    READS = 1

    def __init__(self, config):
        self._config = config
        super().__init__(slice_signature(
            config, self.READS,
            host_we=In(1),
            host_bank=In(4),
            host_addr=In(16),
            host_wdata=In(vector_layout(config)),
            host_rdata=Out(vector_layout(config)),
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
        issue_read = self.run & self.issue & (op == isa.OPCODES["READ"].code)
        issue_write = self.run & self.issue & (op == isa.OPCODES["WRITE"].code)

        # ---- READ unit ----
        r_left = Signal(count_bits)
        r_addr = Signal(abits)
        r_bank = Signal(bbits)
        r_dst = Signal(isa.FIELDS["dst"].width)
        r_on = Signal()
        m.d.comb += [r_on.eq(self.run & (r_left != 0)), self.read_left.eq(r_left)]
        with m.If(issue_read):
            m.d.sync += [
                r_left.eq(field(self.word, "count") + 1),
                r_addr.eq(field(self.word, "addr")),
                r_bank.eq(field(self.word, "bank")),
                r_dst.eq(field(self.word, "dst")),
            ]
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

        # ---- WRITE unit ----
        w_left = Signal(count_bits)
        w_addr = Signal(abits)
        w_bank = Signal(bbits)
        w_src = Signal(isa.FIELDS["src"].width)
        w_on = Signal()
        m.d.comb += [w_on.eq(self.run & (w_left != 0)), self.write_left.eq(w_left)]
        with m.If(issue_write):
            m.d.sync += [
                w_left.eq(field(self.word, "count") + 1),
                w_addr.eq(field(self.word, "addr")),
                w_bank.eq(field(self.word, "bank")),
                w_src.eq(field(self.word, "src")),
            ]
        with m.Elif(w_on):
            m.d.sync += [w_left.eq(w_left - 1), w_addr.eq(w_addr + 1)]
        m.d.comb += self.sel[0].eq(w_src)
        seen = self.seen[0]
        for b, ram in enumerate(rams):
            with m.If(self.run):
                m.d.comb += [
                    ram.wr_en.eq(w_on & (w_bank == b)),
                    ram.wr_addr.eq(w_addr),
                    ram.wr_data.eq(seen),
                ]
            with m.Else():
                m.d.comb += [
                    ram.wr_en.eq(self.host_we & host_ok & (self.host_bank == b)),
                    ram.wr_addr.eq(self.host_addr),
                    ram.wr_data.eq(self.host_wdata),
                ]
        return m
