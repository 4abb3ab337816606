"""FPGA builds of Conveyor's RTL with the open toolchain (YoWASP yosys + nextpnr): Fmax, area, bitstreams."""
