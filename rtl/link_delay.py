"""The delay line of one directed chip-to-chip link (``rtl.system``; docs/multichip.md).

Contract (``latency`` = ``config.link_latency``, 1 … ``spec.config.MAX_LINK_LATENCY``): the line is
``latency`` link-word registers ``r[0] … r[latency-1]``. In a cycle with ``run`` high, ``r[0]`` takes ``src``
and ``r[k]`` takes ``r[k-1]``; with ``run`` low nothing moves (a word left in flight after a fault stays where
it is). ``clear`` (the system's start, never with ``run``) clears every register's ``valid``, not its data.
``out.valid`` is ``r[latency-1].valid`` and, while it is high, ``out.data`` is ``r[latency-1].data``
(combinational from the registers; with ``out.valid`` low the data are whatever the line holds, which a
reset need not have cleared); ``empty`` is high when no register is valid. Reset clears every ``valid``. So
with ``run`` high throughout, ``out`` during cycle ``u`` is ``src`` of cycle ``u - latency``.

How it is built (a simulator-speed choice; the contract is all the system relies on): no word moves. The
data sit in a ring of ``latency`` words (an ``amaranth.lib.memory.Memory``), written and read at ``ptr``,
which advances in every running cycle: the word read at ``ptr`` is the one written there ``latency`` running
cycles ago. The valid bits are a register of ``latency`` bits beside it (cleared by ``clear`` and reset, as a
memory cannot be). A running cycle costs one word written, not ``latency`` words copied. A line of latency 1
is the single register itself. ``formal/link_delay.py`` proves the ring equal to the registers.
"""
from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .common import check_config
from .link import link_word_layout

__all__ = ["LinkDelayLine"]


class LinkDelayLine(wiring.Component):
    """The ``config.link_latency`` cycles of one directed link (module docstring: the contract)."""

    def __init__(self, config):
        self._config = check_config(config)
        word = link_word_layout(config)
        super().__init__({"src": In(word), "run": In(1), "clear": In(1), "out": Out(word), "empty": Out(1)})

    @property
    def latency(self):
        return self._config.link_latency

    def elaborate(self, platform):
        m = Module()
        n = self.latency
        if n == 1:
            last = Signal.like(self.src, name="word")
            with m.If(self.run):
                m.d.sync += last.eq(self.src)
            with m.If(self.clear):
                m.d.sync += last.valid.eq(0)
            m.d.comb += [self.out.eq(last), self.empty.eq(~last.valid)]
            return m
        ptr = Signal(range(n), name="ptr")
        valid = Signal(n, name="valid")               # valid[a]: the word at ring address a is valid
        m.submodules.ring = ring = memory.Memory(shape=self.src.data.shape(), depth=n, init=[])
        wr = ring.write_port()
        rd = ring.read_port(domain="comb")
        m.d.comb += [wr.addr.eq(ptr), wr.data.eq(self.src.data), wr.en.eq(self.run), rd.addr.eq(ptr)]
        with m.If(self.run):
            m.d.sync += [ptr.eq(Mux(ptr == n - 1, 0, ptr + 1)),
                         valid.eq((valid & ~(Const(1, n) << ptr)[:n]) | (self.src.valid << ptr)[:n])]
        with m.If(self.clear):
            m.d.sync += valid.eq(0)
        m.d.comb += [self.out.data.eq(rd.data), self.out.valid.eq(valid.bit_select(ptr, 1)),
                     self.empty.eq(valid == 0)]
        return m
