"""On-chip SRAM with a two-cycle registered read, the shape block RAMs run fastest in.

Yosys maps an Amaranth ``Memory`` onto ECP5 block RAM without the block's output register (and, for a
non-transparent read port, adds its own collision-emulation logic on the read data), which leaves the RAM's
slow clock-to-output on the next logic path. :class:`RegisteredRAM` has a read latency of two cycles on
every platform: a synchronous read followed by one more register. Elaborated for an ECP5 it instantiates
``DP16KD`` block RAMs directly with that second register being the block's own output register
(``REGMODE = "OUTREG"``); elsewhere it is an Amaranth ``Memory`` plus a fabric register.
"""
from dataclasses import dataclass

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Signal, Value
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from spec.mxu import bits_for

from .dsp import is_ecp5

__all__ = ["READ_LATENCY", "RegisteredRAM", "EBRTiling", "ecp5_tiling", "EBR_CONFIGS"]

READ_LATENCY = 2  #: cycles from ``rd_addr`` to ``rd_data``

#: ``(data width, words)`` configurations of one ECP5 ``DP16KD`` (18 Kibit) used here: the 36-bit one is the
#: pseudo-dual-port mode (port A writes 36 bits, port B reads them); the others are the true-dual-port
#: modes with port A writing and port B reading.
EBR_CONFIGS = ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384))

#: Lowest address pin of each port in each data width (the pins below are byte enables or unused).
_ADDR_LSB = {36: 5, 18: 4, 9: 3, 4: 2, 2: 1, 1: 0}


@dataclass(frozen=True)
class EBRTiling:
    """How a ``width`` × ``depth`` memory is cut into ECP5 ``DP16KD`` blocks.

    ``lanes`` blocks side by side (each ``data_width`` bits of the word, the last one partly used) times
    ``banks`` blocks deep (each ``words`` words; the bank is selected by the address bits above the
    block's own), ``blocks = lanes * banks`` in all.
    """
    width: int
    depth: int
    data_width: int
    words: int
    lanes: int
    banks: int

    @property
    def blocks(self):
        return self.lanes * self.banks

    @property
    def pdp(self):
        """Whether the blocks run in the 36-bit pseudo-dual-port mode."""
        return self.data_width == 36


def ecp5_tiling(width, depth):
    """The :class:`EBRTiling` :class:`RegisteredRAM` uses on ECP5 for ``width``-bit words, ``depth`` deep.

    Chooses, among :data:`EBR_CONFIGS`, the one with the fewest blocks; on a tie the one with the fewest
    banks (no read-data multiplexer if possible), then the widest. E.g. 256 bits × 256 words: 8 blocks of
    36 × 512; 256 × 1024: 15 blocks of 18 × 1024 (rather than 16 of 36 × 512); 256 × 2048: 29 blocks of
    9 × 2048.
    """
    def plan(config):
        data_width, words = config
        lanes = -(-width // data_width)
        banks = -(-depth // words)
        return EBRTiling(width, depth, data_width, words, lanes, banks)
    return min((plan(c) for c in EBR_CONFIGS), key=lambda t: (t.blocks, t.banks, -t.data_width))


class RegisteredRAM(wiring.Component):
    """One write port and one read port, ``depth`` words of ``shape``, in the ``sync`` domain.

    Contract
    --------
    * Write: ``wr_data`` is stored at ``wr_addr`` at the end of every cycle in which ``wr_en`` is high.
    * Read: ``rd_data`` during cycle ``t + 2`` is the word at ``rd_addr`` (presented during cycle ``t``) as
      stored before the writes that end cycle ``t``: a write ending cycle ``t + 1`` to the same address is
      *not* seen, nor is a write ending cycle ``t`` (see below for what is read then). Designs that need
      either forward the data themselves.
    * One read and one write per cycle, no stalls, no enables: the read port reads every cycle.
    * Addresses at or above ``depth`` (possible when ``depth`` is not a power of two) are not allowed.
    * Contents start at zero (after configuration, or at simulation start) and are never cleared: the
      ``sync`` domain's reset touches neither them nor ``rd_data``'s registers (on ECP5 a global set/reset
      clears the output registers, as it does the fabric flip-flops, but not the contents).

    Implementations
    ---------------
    * Generic (``platform`` not an ECP5, e.g. ``None`` for simulation, iCE40): an Amaranth ``Memory`` with a
      synchronous, non-transparent read port, then a reset-less fabric register. A read during cycle ``t``
      of the address a write ending cycle ``t`` targets returns the *old* word. ``rd_data`` is 0 for the
      first two cycles.
    * ECP5 (:func:`rtl.dsp.is_ecp5`): ``DP16KD`` block RAMs instantiated directly, tiled as
      :func:`ecp5_tiling` says (``blocks`` instances). Every block: ``CLKA = CLKB`` = the ``sync`` clock;
      port A writes, ``CEA = 1``, its write enable being ``wr_en`` and the bank's address match: on the
      byte enables ``ADA0..3`` with ``WEA = 1`` in the 36-bit (pseudo-dual-port) mode, as yosys' own
      ``PDPW16KD`` mapping does, on ``WEA`` and the byte enables ``ADA0..1`` in the 18-bit mode, on ``WEA``
      in the narrower ones; port B reads (``WEB = 0``,
      ``CEB = 1``); ``REGMODE_A = REGMODE_B = "OUTREG"`` with ``OCEA = OCEB = 1`` (the read data of the
      36-bit mode leaves through both halves' output registers); ``RSTA = RSTB = 0`` (``RESETMODE =
      "SYNC"``, moot), ``CSA/CSB = 0`` with ``CSDECODE_* = "0b000"`` (always selected: banks are chosen
      by decoding the write enable and multiplexing the read data in fabric), ``GSR = "ENABLED"`` (the
      output registers start at 0 after configuration and are cleared with the fabric flip-flops by a
      global set/reset; the contents are not), ``WRITEMODE_* = "NORMAL"``, no ``INITVAL_*`` given: the
      primitive's default is all zeros, so the contents start at zero as the generic version's do.
      With more than one bank, ``rd_data`` is a multiplexer over the banks' output registers, selected
      by ``rd_addr``'s upper bits registered twice in fabric (a LUT level after the block's fast
      clock-to-output); with one bank (``depth`` up to 512 in the 36-bit mode, up to 16384 in the
      narrowest) ``rd_data`` is the output registers themselves.

      One difference: a read during cycle ``t`` of the address that a write ending cycle ``t`` targets
      (the two ports of a block colliding on one word in one cycle) returns an *unspecified* word on ECP5
      (Lattice does not define that collision; yosys models it as undefined, which is why it adds
      emulation logic when it infers the RAM). The write itself succeeds. Callers that forward that case
      (as :class:`rtl.mxu.MXU` does) see no difference.

      Neither Amaranth's simulator nor Verilator can run ``DP16KD``: simulate the generic version.
    """
    def __init__(self, shape, depth):
        if not isinstance(depth, int) or isinstance(depth, bool):
            raise TypeError(f"depth must be an integer of at least 2, not {depth!r}")
        if depth < 2:
            raise ValueError(f"depth must be an integer of at least 2, not {depth!r}")
        self._shape = shape
        self._depth = depth
        addr_bits = bits_for(depth)
        super().__init__({
            "wr_addr": In(addr_bits),
            "wr_data": In(shape),
            "wr_en": In(1),
            "rd_addr": In(addr_bits),
            "rd_data": Out(shape),
        })

    @property
    def depth(self):
        return self._depth

    @property
    def width(self):
        """Bits per word."""
        return len(Value.cast(self.rd_data))

    @property
    def ecp5_tiling(self):
        """The :class:`EBRTiling` of the ECP5 elaboration."""
        return ecp5_tiling(self.width, self._depth)

    def elaborate(self, platform):
        if is_ecp5(platform):
            return self._elaborate_ecp5()
        return self._elaborate_generic()

    def _elaborate_generic(self):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=self._shape, depth=self._depth, init=[])
        wr = mem.write_port()
        rd = mem.read_port()  # not transparent: a write in the same cycle is not seen
        m.d.comb += [
            wr.addr.eq(self.wr_addr),
            wr.data.eq(self.wr_data),
            wr.en.eq(self.wr_en),
            rd.addr.eq(self.rd_addr),
        ]
        out = Signal.like(self.rd_data, reset_less=True, name="rd_data_r")
        m.d.sync += out.eq(rd.data)
        m.d.comb += self.rd_data.eq(out)
        return m

    def _elaborate_ecp5(self):
        m = Module()
        t = self.ecp5_tiling
        width = t.width
        low_bits = bits_for(t.words)          # address bits inside one block
        addr_bits = len(self.rd_addr)
        block_bits = min(addr_bits, low_bits)  # address bits that reach the blocks
        wr_data = Signal(width, name="wr_bits")
        rd_bits = Signal(width, name="rd_bits")
        m.d.comb += [wr_data.eq(Value.cast(self.wr_data)), self.rd_data.eq(rd_bits)]

        if t.banks > 1:
            wr_bank = self.wr_addr[low_bits:]
            rd_bank = self.rd_addr[low_bits:]
            # The bank a read addressed, alongside its data: registered twice, like the data.
            rd_bank_1 = Signal.like(rd_bank, reset_less=True, name="rd_bank_1")
            rd_bank_2 = Signal.like(rd_bank, reset_less=True, name="rd_bank_2")
            m.d.sync += [rd_bank_1.eq(rd_bank), rd_bank_2.eq(rd_bank_1)]

        bank_data = []
        for bank in range(t.banks):
            we = Signal(name=f"we_b{bank}")
            if t.banks > 1:
                m.d.comb += we.eq(self.wr_en & (wr_bank == bank))
            else:
                m.d.comb += we.eq(self.wr_en)
            lanes = []
            for lane in range(t.lanes):
                lo = lane * t.data_width
                n = min(t.data_width, width - lo)
                di = Signal(t.data_width, name=f"di_b{bank}_l{lane}")
                do = Signal(t.data_width, name=f"do_b{bank}_l{lane}")
                m.d.comb += di.eq(wr_data[lo:lo + n])
                m.submodules[f"ebr_b{bank}_l{lane}"] = self._block(
                    t.data_width, we, self.wr_addr[:block_bits], self.rd_addr[:block_bits], di, do)
                lanes.append(do[:n])
            bank_data.append(Cat(*lanes))

        if t.banks == 1:
            m.d.comb += rd_bits.eq(bank_data[0])
        else:
            with m.Switch(rd_bank_2):
                for bank, value in enumerate(bank_data):
                    with m.Case(bank):
                        m.d.comb += rd_bits.eq(value)
        return m

    def _block(self, data_width, we, wr_addr, rd_addr, di, do):
        """One ``DP16KD``: port A writes ``di`` at ``wr_addr`` when ``we``; port B reads ``rd_addr`` into ``do``."""
        lsb = _ADDR_LSB[data_width]
        zero, one = Const(0, 1), Const(1, 1)

        def address(addr):
            pins = [zero] * 14
            for i in range(len(addr)):
                pins[lsb + i] = addr[i]
            return pins

        ada = address(wr_addr)
        adb = address(rd_addr)
        if data_width == 36:
            ada[0:4] = [we] * 4    # byte enables of the 36-bit write (WEA is not used in this mode)
        elif data_width == 18:
            ada[0:2] = [we] * 2    # byte enables of the 18-bit write
        ports = {}
        for i in range(14):
            ports[f"i_ADA{i}"] = ada[i]
            ports[f"i_ADB{i}"] = adb[i]
        if data_width == 36:
            # Pseudo dual port: the 36-bit word is {DIB, DIA} / {DOB, DOA}.
            for i in range(18):
                ports[f"i_DIA{i}"] = di[i]
                ports[f"i_DIB{i}"] = di[18 + i]
                ports[f"o_DOA{i}"] = do[i]
                ports[f"o_DOB{i}"] = do[18 + i]
        else:
            for i in range(18):
                ports[f"i_DIA{i}"] = di[i] if i < data_width else zero
                ports[f"i_DIB{i}"] = zero
                if i < data_width:
                    ports[f"o_DOB{i}"] = do[i]
        clk = ClockSignal("sync")
        return self._ebr(
            p_DATA_WIDTH_A=data_width,
            p_DATA_WIDTH_B=data_width,
            p_REGMODE_A="OUTREG",
            p_REGMODE_B="OUTREG",
            p_RESETMODE="SYNC",
            p_ASYNC_RESET_RELEASE="SYNC",
            p_CSDECODE_A="0b000",
            p_CSDECODE_B="0b000",
            p_WRITEMODE_A="NORMAL",
            p_WRITEMODE_B="NORMAL",
            p_GSR="ENABLED",
            # WEA: unused in the 36-bit mode, tied high there as yosys' own PDPW16KD mapping does.
            i_CLKA=clk, i_CEA=one, i_OCEA=one, i_WEA=one if data_width == 36 else we, i_RSTA=zero,
            i_CSA0=zero, i_CSA1=zero, i_CSA2=zero,
            i_CLKB=clk, i_CEB=one, i_OCEB=one, i_WEB=zero, i_RSTB=zero,
            i_CSB0=zero, i_CSB1=zero, i_CSB2=zero,
            **ports,
        )

    def _ebr(self, **kwargs):
        """The ``DP16KD`` instance with these ``p_``/``i_``/``o_`` arguments (a seam for behavioural tests)."""
        return Instance("DP16KD", **kwargs)
