"""Compiling for a system of chips joined by scheduled links (docs/multichip.md).

* ``compiler.system.kernel``: ``SystemKernel`` (a program per chip, on one clock) and its golden run;
* ``compiler.system.transfer``: moving vectors between neighbouring chips (READs, SEND, RECV, WRITEs placed
  together) and reducing partial sums along a line of chips;
* ``compiler.system.gemm``: a GEMM divided among chips by rows or by output columns, the split chosen by
  the cost model (the scheduler's exact cycles);
* ``compiler.system.mlp``: a two-layer MLP in tensor parallel: the first layer's columns and the second's rows
  divided, the partial sums added over the links;
* ``compiler.system.pipeline``: any quantized graph in pipeline parallel over a line of chips (``SystemModel``);
* ``compiler.system.decode``: a language model's decode step in tensor parallel over a line of chips (heads and
  MLP columns divided, the partial sums all-reduced over the links): ``compile_lm(..., chips=N)``;
* ``compiler.system.program``: ``SystemProgram``, what ``compiler.compile(..., chips=N)`` returns, saved as
  ``system.json`` plus a compiled-program folder per chip.
"""
from .gemm import chips_needed, gemm
from .kernel import SPLITS, SystemKernel, SystemKernelRun, system_config
from .pipeline import SystemModel, lower_pipeline
from .program import SystemProgram

__all__ = ["SystemKernel", "SystemKernelRun", "SPLITS", "system_config", "gemm", "chips_needed", "SystemModel",
           "lower_pipeline", "SystemProgram"]
