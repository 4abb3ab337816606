"""cocotb side of the trace-playing MXU harness (``sim/hdl/mxu_harness.sv``): no per-cycle Python.

Run by :class:`sim.verilator.MXUSimulator` through the cocotb runner; not collected by pytest (``tb_*``).
The harness reads its trace and writes its captures itself; this test only starts the clock (unless the
harness generates it: ``+clock=harness``), resets the harness, waits for ``done`` and checks ``overflow``.

Plusargs read here: ``+cycles=N`` and ``+drain=M`` (to bound the wait), ``+clock=gpi|harness``.
It writes ``tb_timing.json`` into the working directory (the run directory): the wall time from the
release of the reset to ``done`` and the number of cycles in between.
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
        self.cycles = int(args.get("cycles", 0))
        self.drain = int(args.get("drain", 0))
        self.harness_clock = args.get("clock", "gpi") == "harness"
        self.clock = None

    @property
    def total_cycles(self):
        return self.cycles + self.drain

    def start_clock(self):
        if not self.harness_clock:
            self.clock = Clock(self.dut.clk, CLOCK_PERIOD_NS, unit="ns", impl="gpi")
            self.clock.start(start_high=False)

    async def reset(self):
        """Hold the harness reset for RESET_CYCLES rising edges; release it after a falling edge.

        The harness registers ``rst``: cycle 0 of the trace is the cycle that starts at the next rising edge
        (the first one that samples ``rst`` low); see ``sim/hdl/mxu_harness.sv``.
        """
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, RESET_CYCLES)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def wait_done(self):
        # The harness needs total_cycles + 1 rising edges after the release; allow generous slack.
        timeout_ns = (self.total_cycles + 100) * CLOCK_PERIOD_NS * 2
        if not self.dut.done.value:
            await with_timeout(RisingEdge(self.dut.done), timeout_ns, "ns")


@cocotb.test()
async def run_trace(dut):
    tb = TB(dut)
    tb.start_clock()
    await tb.reset()
    t0 = time.perf_counter()
    await tb.wait_done()
    loop_seconds = time.perf_counter() - t0
    with open("tb_timing.json", "w") as f:
        json.dump({"loop_seconds": loop_seconds, "cycles": tb.total_cycles + 1}, f)
    assert not dut.overflow.value, "the harness capture memory overflowed (more outputs than OUT_DEPTH)"
