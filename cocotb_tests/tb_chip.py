"""cocotb side of the command-playing chip harness (``sim/hdl/chip_harness.sv``): no per-cycle Python.

Run by :class:`sim.chip_verilator.ChipSimulator` through the cocotb runner; not collected by pytest
(``tb_*``). The harness plays its commands and stores its responses itself; this test only starts the
clock (unless the harness makes its own: ``+clock=harness``), resets the harness and waits for ``done``.
It writes ``tb_timing.json`` into the working directory (the run directory): the wall time from the
release of the reset to ``done``.

Plusargs read here: ``+max_cycles=N`` (bounds the wait), ``+clock=gpi|harness``.
"""
import json
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, with_timeout

CLOCK_PERIOD_NS = 10
RESET_CYCLES = 2


class TB:
    """Owns the harness clock (unless the harness makes its own) and the harness reset."""

    def __init__(self, dut):
        self.dut = dut
        args = cocotb.plusargs
        self.max_cycles = int(args.get("max_cycles", 1_000_000))
        self.harness_clock = args.get("clock", "gpi") == "harness"

    def start_clock(self):
        if not self.harness_clock:
            Clock(self.dut.clk, CLOCK_PERIOD_NS, unit="ns", impl="gpi").start(start_high=False)

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, RESET_CYCLES)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def wait_done(self):
        timeout_ns = (self.max_cycles + 100) * CLOCK_PERIOD_NS * 2
        if not self.dut.done.value:
            await with_timeout(RisingEdge(self.dut.done), timeout_ns, "ns")


@cocotb.test()
async def run_commands(dut):
    tb = TB(dut)
    tb.start_clock()
    await tb.reset()
    t0 = time.perf_counter()
    await tb.wait_done()
    with open("tb_timing.json", "w") as f:
        json.dump({"loop_seconds": time.perf_counter() - t0}, f)
