"""cocotb side of the command-playing system harness (``sim/hdl/system_harness.sv``): no per-cycle Python.

Run by :class:`sim.system_verilator.SystemSimulator` through the cocotb runner; not collected by pytest
(``tb_*``). The harness plays every chip's commands on its own host edge and stores the responses and the
system's status itself; this test only starts the clock (unless the harness makes its own:
``+clock=harness``), resets the harness and waits for ``done``. It writes ``tb_timing.json`` into the working
directory (the run directory): the wall time from the release of the reset to ``done``.

Plusargs read here: ``+max_cycles=N`` (bounds the wait), ``+clock=gpi|harness``.
"""
import json
import time

import cocotb
from harness_tb import HarnessTB


@cocotb.test()
async def run_commands(dut):
    tb = HarnessTB(dut)
    tb.start_clock()
    await tb.reset()
    t0 = time.perf_counter()
    await tb.wait_done(int(cocotb.plusargs.get("max_cycles", 1_000_000)))
    with open("tb_timing.json", "w") as f:
        json.dump({"loop_seconds": time.perf_counter() - t0}, f)
