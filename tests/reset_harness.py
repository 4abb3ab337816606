"""A component wrapper for Amaranth-simulator tests that drive the ``sync`` domain's reset themselves."""
from amaranth.hdl import ClockDomain, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In


class ResetHarness(wiring.Component):
    """``dut`` in a ``sync`` domain whose reset is the ``rst`` port."""

    def __init__(self, dut):
        self.dut = dut
        super().__init__({"rst": In(1)})

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = cd = ClockDomain("sync")
        m.d.comb += cd.rst.eq(self.rst)
        m.submodules.dut = self.dut
        return m
