"""Simulation of Conveyor: toolchain set-up, Verilator/cocotb runners and the command-line interface."""
