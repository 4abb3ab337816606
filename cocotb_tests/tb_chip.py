"""cocotb side of the command-playing chip harness (``sim/hdl/chip_harness.sv``): no per-cycle Python.

Run by :class:`sim.chip_verilator.ChipSimulator` through the cocotb runner when ``clock="gpi"``; not
collected by pytest (``tb_*``). (``clock="harness"`` needs no cocotb: the native main
``sim/hdl/harness_main.cpp`` does the same in C++.) The harness plays its commands and stores its responses
itself; this test only starts the clock (unless the harness makes its own: ``+clock=harness`` with a
``CHIP_HARNESS_CLOCK`` + ``--timing`` build), resets the harness and waits for ``done``.
It writes ``tb_timing.json`` into the working directory (the run directory): the wall time from the
release of the reset to ``done``.

Plusargs read here: ``+max_cycles=N`` (bounds the wait), ``+clock=gpi|harness``.
"""
import cocotb
from harness_tb import play_timed


@cocotb.test()
async def run_commands(dut):
    await play_timed(dut)
