"""Language models on the chip (issue 10): ``compile_lm(model, max_context, config, calibration) -> LMProgram``.

* ``build.py``: trace the torch model at its full context and for one token, quantize it on calibration text
  (the int8 reference ``QGraph``), lower the decode step (``decode.py``);
* ``decode.py``: the one program every step runs, the KV cache in MEM, and the data the host writes per step;
* ``program.py``: ``LMProgram`` (``generate``, ``reference``, ``save``/``load``) and ``Generation``.

Generation runs on the simulators (``sim/lm_run.py``, reached through ``compiler.runners`` as ``"lm"``); the
compiler never imports them.
"""
from .build import compile_lm
from .program import Generation, LMProgram

__all__ = ["compile_lm", "LMProgram", "Generation"]
