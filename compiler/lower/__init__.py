"""Lowering: a quantized graph (``compiler.quantize.QGraph``) → a statically scheduled chip program.

``lower(qgraph, config, batch)`` → ``CompiledModel`` (``model``); its ``run_golden(float_inputs)`` reproduces
``qgraph.run_int8`` exactly on ``golden.chip.ChipSim``, in the program's ``predicted_cycles``.

The steps are lowered one after the other, each through its entry of ``registry.LOWERINGS`` (one module per
operator: ``graph_input``, ``linear``, ``matmul``, ``add``, ``relu``, ``table``, ``embedding``, ``argmax``,
``reshape``; each docstring states its layouts and cost), on shared pieces: ``layout`` (tensors and
packing), ``placement`` (``Lowering``: MEM placement, tried until it schedules), ``model`` (the result), and
``compiler.memory`` / ``compiler.phases`` (the allocator, the GEMM and VXU phases). Every phase starts at
``ProgramBuilder.end``: no overlap between steps. A model that does not fit (or whose placements do not
schedule) is lowered once more relaxed: MEM freed after each tensor's last use is reused by what the chip
writes later, and constants may go to the slices their placement rule excludes (``placement``); a model that
fits without it keeps its placements. ``docs/compiler.md`` tells the whole story.
"""
import numpy as np

from spec.config import ChipConfig

from ..memory import MemoryFull
from ..quantize import QGraph
from .layout import MASK_VALUE, PAD_CODE
from .model import CompiledModel, InputsLayout, OutputLoc
from .placement import Lowering
from .registry import LOWERINGS, lowering_for

__all__ = ["lower", "CompiledModel", "InputsLayout", "OutputLoc", "PAD_CODE", "MASK_VALUE", "LOWERINGS"]


def lower_step(lw, st):
    """Step ``st`` through its lowering (relaxed: its placements tried on every MEM slice in turn)."""
    fn = lowering_for(st)
    if lw.relaxed:
        lw.attempts(fn, st, len(lw.c.positions("mem")))
    else:
        fn(lw, st)


def _run(lw):
    """Every step of ``lw.q`` through its lowering, then the outputs: the ``CompiledModel``."""
    for st in lw.q.steps:
        for i in st.inputs:
            lw.consume(i)
        lower_step(lw, st)
        lw.release_dead()
    return finish(lw)


def finish(lw, with_outputs=True):
    """The graph's outputs located (a host-resident output activated first) and the program finished: the
    ``CompiledModel`` of ``lw`` once every step is lowered. ``with_outputs=False``: a chip of
    ``compiler.system.pipeline`` before the last, which holds none of the outputs."""
    outputs = {}
    for name, tname in lw.q.outputs.items() if with_outputs else ():
        t = lw.T[tname]
        if t.kind == "ids":
            raise NotImplementedError(f"output {name!r}: integer ids ({tname!r}) are not lowered as outputs")
        if t.kind == "host":
            lw.act(t, f"output {name!r}")
        kind = "indices" if t.kind == "idx" else "codes"
        outputs[name] = OutputLoc(tname, kind, t.shape, t.rows, t.features if kind == "codes" else 1,
                                  t.region.segments)
    prog = lw.b.finish()
    return CompiledModel(lw.q, lw.c, lw.batch, prog, lw.layout, lw.constants, outputs, lw.regions, lw.matmuls,
                         lw.alloc)


def lower(qgraph, config, batch=None):
    """Lower ``qgraph`` (a ``compiler.quantize.QGraph``) for ``config`` (a ``spec.config.ChipConfig``) with
    ``batch`` rows (the graph inputs' ``None`` dimension; may be omitted when no input has one): a
    ``CompiledModel`` (module docstring)."""
    if not isinstance(qgraph, QGraph):
        raise TypeError(f"qgraph must be a compiler.quantize.QGraph, not {type(qgraph).__name__}")
    if not isinstance(config, ChipConfig):
        raise TypeError(f"config must be a spec.config.ChipConfig, not {config!r}")
    for kind in ("mem", "mxu", "vxu"):
        if not config.positions(kind):
            raise ValueError(f"config must have a {kind.upper()} slice, not {config.name}")
    for op in ("requantv", "lut", "argmax", "add", "max"):
        if op not in config.vxu_ops:
            raise ValueError(f"config {config.name} must have the VXU operation {op!r}")
    free = [t for t in qgraph.graph.inputs if t.shape and t.shape[0] is None]
    if batch is None:
        if free:
            raise ValueError(f"batch must be given: input '{free[0].name}' has a None batch dimension")
        batch = 1
    if not isinstance(batch, (int, np.integer)) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, not {batch!r}")
    try:
        return _run(Lowering(qgraph, config, int(batch)))
    except ValueError as e:         # MEM full, or no placement schedules: reuse dead MEM, constants fall back
        strict = e
    try:
        return _run(Lowering(qgraph, config, int(batch), relaxed=True))
    except MemoryFull:
        raise                       # what does not fit even with MEM reused: what, how big, how much is free
    except ValueError as e:
        raise ValueError(f"{strict} (and with MEM reused and the placement preferences relaxed: {e})") from None
