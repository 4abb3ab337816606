"""On-chip SRAM with a two-cycle registered read, the shape block RAMs run fastest in.

Yosys maps an Amaranth ``Memory`` onto ECP5 block RAM without the block's output register, which leaves the
RAM's slow clock-to-output on the next logic path. :class:`RegisteredRAM` asks for the output register
explicitly: a synchronous read followed by one more register, so that a design reading it sees the data two
cycles after the address, on every platform alike.
"""
from amaranth.hdl import Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["READ_LATENCY", "RegisteredRAM"]

READ_LATENCY = 2  #: cycles from ``rd_addr`` to ``rd_data``


def _bits_for(n):
    return max(1, (n - 1).bit_length())


class RegisteredRAM(wiring.Component):
    """One write port and one read port, ``depth`` words of ``shape``.

    Contract
    --------
    * Write: ``wr_data`` is stored at ``wr_addr`` at the end of every cycle in which ``wr_en`` is high.
    * Read: ``rd_data`` during cycle ``t + 2`` is the word at ``rd_addr`` (presented during cycle ``t``) as
      stored before the writes that end cycle ``t``: a write ending cycle ``t`` or ``t + 1`` to the same
      address is *not* seen. Designs that need it forward the data themselves.
    * One read and one write per cycle, no stalls. Reset does not clear the contents (initially zero).
    """
    def __init__(self, shape, depth):
        if not isinstance(depth, int) or isinstance(depth, bool):
            raise TypeError(f"depth must be an integer of at least 2, not {depth!r}")
        if depth < 2:
            raise ValueError(f"depth must be an integer of at least 2, not {depth!r}")
        self._shape = shape
        self._depth = depth
        addr_bits = _bits_for(depth)
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

    def elaborate(self, platform):
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
