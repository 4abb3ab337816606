"""The one-call compiler API: a model → a ``CompiledProgram`` (``compiler.program``), data the simulators run.

``compile(model, example_inputs, config="small", calibration=None, batch=None)``:

* ``model``: a ``compiler.ir.Graph``, or a ``torch.nn.Module`` (converted by
  ``compiler.frontend_torch.from_torch(model, example_inputs)``; torch is imported only then);
* ``example_inputs`` and ``calibration``: in any form of ``compiler.inputs`` (a tuple in argument order, one
  array or tensor for a one-input model, or a dict by input name); ``calibration`` may also be a list of such
  dicts, and defaults to ``example_inputs``. The compiled batch is the example inputs' first dimension unless
  ``batch`` is given;
* ``config``: a preset name (``spec.config.PRESETS``) or a ``spec.config.ChipConfig``.

The model is quantized (``compiler.quantize``) and lowered (``compiler.lower``); the result's ``timings``
say how long each took. Running the program is the simulation side's: ``sim.run(program, inputs,
backend="golden"|"verilator")`` (or ``program.run(...)``, which reaches it through ``compiler.runners``).
"""
import json
import time

from spec.config import PRESETS, ChipConfig

from .inputs import as_numpy, named_inputs
from .ir import Graph
from .lower import lower
from .program import CompiledProgram
from .quantize import quantize
from .saved import FORMAT, FORMAT_VERSION, InputSpec

__all__ = ["compile", "CompiledProgram", "FORMAT", "FORMAT_VERSION"]


def _as_graph(model, example_inputs):
    if isinstance(model, Graph):
        return model
    try:
        import torch
    except ImportError:
        raise TypeError(f"model must be a compiler.ir.Graph (or a torch.nn.Module, with torch installed), not "
                        f"{type(model).__name__}") from None
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a compiler.ir.Graph or a torch.nn.Module, not {type(model).__name__}")
    try:
        from .frontend_torch import from_torch
    except ImportError as e:
        raise NotImplementedError(f"compiling a torch.nn.Module needs compiler.frontend_torch, which cannot be "
                                  f"imported: {e}") from None
    g = from_torch(model, example_inputs)
    if not isinstance(g, Graph):
        raise TypeError(f"compiler.frontend_torch.from_torch must return a compiler.ir.Graph, not "
                        f"{type(g).__name__}")
    return g


def _numpy_inputs(inputs, names, what):
    return {k: as_numpy(v) for k, v in named_inputs(inputs, names, what).items()}


def _calibration(calibration, names):
    """One dict or a list of dicts of numpy arrays (``compiler.quantize``'s calibration)."""
    if isinstance(calibration, (list, tuple)) and calibration and all(isinstance(c, dict) for c in calibration):
        return [_numpy_inputs(c, names, f"calibration[{i}]") for i, c in enumerate(calibration)]
    return _numpy_inputs(calibration, names, "calibration")


def _preset(config):
    if isinstance(config, str):
        if config not in PRESETS:
            raise ValueError(f"config must be one of {', '.join(PRESETS)} or a spec.config.ChipConfig, not "
                             f"{config!r}")
        config = PRESETS[config]
    if not isinstance(config, ChipConfig):
        raise TypeError(f"config must be a preset name or a spec.config.ChipConfig, not {config!r}")
    return config


def compile(model, example_inputs, config="small", calibration=None, batch=None):
    """Quantize and lower ``model`` for ``config``: a ``CompiledProgram`` (module docstring)."""
    config = _preset(config)
    graph = _as_graph(model, example_inputs)
    names = [t.name for t in graph.inputs]
    examples = _numpy_inputs(example_inputs, names, "example_inputs")
    graph.check_inputs(examples)
    if batch is None:
        batched = [examples[t.name].shape[0] for t in graph.inputs if t.shape and t.shape[0] is None]
        if batched and len(set(batched)) > 1:
            raise ValueError(f"example_inputs have different batch sizes ({sorted(set(batched))}); give batch=")
        batch = batched[0] if batched else None
    calib = examples if calibration is None else _calibration(calibration, names)
    t0 = time.perf_counter()
    q = quantize(graph, calib)
    t1 = time.perf_counter()
    att = next((n for n in graph.nodes if n.op == "attention"), None)
    if att is not None:
        raise NotImplementedError(f"attention '{att.name}': a compiled program runs attention only as a language "
                                  f"model's decode step, with its KV cache in MEM: compile the model with "
                                  f"compiler.compile_lm(model, max_context, calibration=ids)")
    m = lower(q, config, batch)
    t2 = time.perf_counter()
    specs = []
    for t in graph.inputs:
        st = q.step(t.name)
        qp = st.params["qp"] if t.name in m.inputs_layout.views else None
        specs.append(InputSpec(t.name, tuple(t.shape), t.dtype, qp))
    batched_out = {name: bool(t.shape) and t.shape[0] is None for name, t in graph.outputs.items()}
    sram = json.loads(json.dumps(m.sram_report()))
    return CompiledProgram(m, specs, batched_out, sram, qgraph=q, timings={"quantize": t1 - t0, "lower": t2 - t1})
