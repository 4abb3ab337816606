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
from harness_tb import HarnessTB


@cocotb.test()
async def run_trace(dut):
    tb = HarnessTB(dut)
    args = cocotb.plusargs
    total = int(args.get("cycles", 0)) + int(args.get("drain", 0))
    tb.start_clock()
    await tb.reset()
    t0 = time.perf_counter()
    await tb.wait_done(total)   # the harness needs total + 1 rising edges after the release
    loop_seconds = time.perf_counter() - t0
    with open("tb_timing.json", "w") as f:
        json.dump({"loop_seconds": loop_seconds, "cycles": total + 1}, f)
    assert not dut.overflow.value, "the harness capture memory overflowed (more outputs than OUT_DEPTH)"
