"""Amaranth RTL of Conveyor: the hardware units, generated from the specification in ``spec/``."""
