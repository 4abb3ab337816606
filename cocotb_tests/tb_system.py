"""cocotb side of the command-playing system harness (``sim/hdl/system_harness.sv``): no per-cycle Python.

Run by :class:`sim.system_verilator.SystemSimulator` through the cocotb runner; not collected by pytest
(``tb_*``). The harness plays every chip's commands on its own host edge and stores the responses and the
system's status itself; this test only starts the clock (unless the harness makes its own:
``+clock=harness``), resets the harness and waits for ``done``. It writes ``tb_timing.json`` into the working
directory (the run directory): the wall time from the release of the reset to ``done``.

Plusargs read here: ``+max_cycles=N`` (bounds the wait), ``+clock=gpi|harness``.
"""
import cocotb
from harness_tb import play_timed


@cocotb.test()
async def run_commands(dut):
    await play_timed(dut)
