"""The Conveyor compiler: static schedules and kernels (programs) for the streaming chip.

* ``compiler.schedule``: ``ProgramBuilder`` places instructions at absolute issue cycles on each slice's queue
  (filling gaps with ``NOP``, refusing busy units, issues in the past and queue overflows), checks that
  values in flight on a stream never collide, and produces a ``Program`` (per-slice words, canonical
  assembly, and the cycle count the chip will report).
* ``compiler.kernels``: GEMM (tiled, weight double buffering, accumulation), GEMM + bias + requant + ReLU,
  table activation, argmax and a two-layer MLP, each with its MEM layout, inputs, outputs and numpy
  expectation; checked against ``golden.chip.ChipSim``.

* ``compiler.api``: ``compile(model, example_inputs, config="small")`` → ``CompiledProgram`` (quantize, lower;
  ``run`` on the golden chip or the RTL, ``save``/``load``, ``timeline``, ``sram_report``).

The compiler reads ``spec`` (and ``golden`` for expectations and runs); it never imports ``rtl/``.
"""

from .api import CompiledProgram, RunResult, compile  # noqa: E402  (after the docstring)

__all__ = ["compile", "CompiledProgram", "RunResult"]
