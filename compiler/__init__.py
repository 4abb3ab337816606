"""The Conveyor compiler: static schedules and kernels (programs) for the streaming chip.

* ``compiler.schedule``: ``ProgramBuilder`` places instructions at absolute issue cycles on each slice's queue
  (filling gaps with ``NOP``, refusing busy units, issues in the past and queue overflows), checks that
  values in flight on a stream never collide, and produces a ``Program`` (per-slice words, canonical
  assembly, and the cycle count the chip will report).
* ``compiler.kernels``: GEMM (tiled, weight double buffering, accumulation), GEMM + bias + requant + ReLU,
  table activation, argmax and a two-layer MLP, each with its MEM layout, inputs, outputs and numpy
  expectation; checked against ``golden.chip.ChipSim``.

* ``compiler.api``: ``compile(model, example_inputs, config="small")`` → ``CompiledProgram``
  (``compiler.program``: quantize, lower; ``save``/``load`` in ``compiler.saved``, ``timeline``,
  ``sram_report``). Inputs in any form of ``compiler.inputs`` (tuple, one array, dict by name).
* ``compiler.lm``: ``compile_lm(model, max_context, config, calibration)`` → ``LMProgram`` (a language model's
  decode step with its KV cache in MEM; ``generate(prompt_ids, max_new_tokens, backend=...)``).

The compiler's job ends at a program: it reads ``spec`` (and ``golden`` for expectations and golden runs)
and never imports ``rtl/`` or ``sim/``. Running a program is ``sim.run(program, inputs, backend=...)``;
``CompiledProgram.run`` reaches it through the registry of ``compiler.runners``.
"""

from .api import CompiledProgram, compile  # noqa: E402  (after the docstring)
from .lm import Generation, LMProgram, compile_lm  # noqa: E402

__all__ = ["compile", "CompiledProgram", "compile_lm", "LMProgram", "Generation"]
