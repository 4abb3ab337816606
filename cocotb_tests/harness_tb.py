"""The TB shared by the trace- and command-playing harnesses (tb_mxu, tb_chip): it owns the harness clock
(unless the harness makes its own, ``+clock=harness``) and the harness reset, and waits for ``done``.

Not collected by pytest (no ``test_`` prefix); imported by the cocotb test modules. ``sim/hdl/harness_main.cpp``
(``sim.verilator.build_harness(..., main="native")``) does the same clock, reset and wait in C++ without
cocotb: keep the two in step (period, reset length, release at a falling edge, the wait's bound).
"""
import json
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, with_timeout

__all__ = ["HarnessTB", "play_timed", "CLOCK_PERIOD_NS", "RESET_CYCLES"]

CLOCK_PERIOD_NS = 10
RESET_CYCLES = 2


class HarnessTB:
    """Clock, reset and the wait for ``done`` of a harness that runs by itself once out of reset."""

    def __init__(self, dut):
        self.dut = dut
        self.harness_clock = cocotb.plusargs.get("clock", "gpi") == "harness"

    def start_clock(self):
        if not self.harness_clock:
            Clock(self.dut.clk, CLOCK_PERIOD_NS, unit="ns", impl="gpi").start(start_high=False)

    async def reset(self):
        """Hold the harness reset for RESET_CYCLES rising edges; release it after a falling edge (the
        harness registers ``rst``: its cycle 0 starts at the next rising edge)."""
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, RESET_CYCLES)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def wait_done(self, cycles):
        """Wait for ``done``, allowing ``cycles`` (plus slack) before a timeout."""
        timeout_ns = (cycles + 100) * CLOCK_PERIOD_NS * 2
        if not self.dut.done.value:
            await with_timeout(RisingEdge(self.dut.done), timeout_ns, "ns")


async def play_timed(dut):
    """The whole cocotb side of a command-playing harness (tb_chip, tb_system): start the clock, reset, wait for
    ``done`` (bounded by ``+max_cycles``, default 1,000,000) and write ``tb_timing.json`` into the working
    directory: the wall seconds from the release of the reset to ``done``."""
    tb = HarnessTB(dut)
    tb.start_clock()
    await tb.reset()
    t0 = time.perf_counter()
    await tb.wait_done(int(cocotb.plusargs.get("max_cycles", 1_000_000)))
    with open("tb_timing.json", "w") as f:
        json.dump({"loop_seconds": time.perf_counter() - t0}, f)
