"""The one-call compiler API: a model → a ``CompiledProgram`` (``compiler.program``), data the simulators run.

``compile(model, example_inputs, config="small", calibration=None, batch=None, chips=1, split="auto")``:

* ``model``: a ``compiler.ir.Graph``, or a ``torch.nn.Module`` (converted by
  ``compiler.frontend_torch.from_torch(model, example_inputs)``; torch is imported only then);
* ``example_inputs`` and ``calibration``: in any form of ``compiler.inputs`` (a tuple in argument order, one
  array or tensor for a one-input model, or a dict by input name); ``calibration`` may also be a list of such
  dicts, and defaults to ``example_inputs``. The compiled batch is the example inputs' first dimension unless
  ``batch`` is given;
* ``config``: a preset name (``spec.config.PRESETS``) or a ``spec.config.ChipConfig``;
* ``chips``: more than 1 lowers the model on a line of that many chips, and the result is a
  ``compiler.system.SystemProgram``; ``split``: ``"pipeline"`` (``compiler.system.pipeline``: the steps divided
  evenly among the chips, or as they fit when an even division does not), ``"tensor"``
  (``compiler.system.tensor``: a linear feeding another divided by columns and rows, the partial sums
  all-reduced over the links) or ``"auto"`` (default: both built, the fewer predicted cycles kept; the
  program's ``reason`` says what each took). A model too large for one chip says how many chips it needs.

The model is quantized (``compiler.quantize``) and lowered (``compiler.lower``); the result's ``timings``
say how long each took. Running the program is the simulation side's: ``sim.run(program, inputs,
backend="golden"|"verilator")`` (or ``program.run(...)``, which reaches it through ``compiler.runners``).
"""
import json
import time

from spec.config import MAX_CHIPS, PRESETS, ChipConfig

from .inputs import as_numpy, named_inputs
from .ir import Graph
from .lower import lower
from .memory import MemoryFull
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


#: How ``compile(..., chips=N)`` divides a model: ``auto`` builds both and keeps the fewer predicted cycles.
SPLITS = ("pipeline", "tensor", "auto")


def compile(model, example_inputs, config="small", calibration=None, batch=None, chips=1, split="auto"):
    """Quantize and lower ``model`` for ``config`` (on ``chips`` chips, divided by ``split``): a
    ``CompiledProgram`` (a ``compiler.system.SystemProgram`` for more than one chip; module docstring)."""
    config = _preset(config)
    if not isinstance(chips, int) or isinstance(chips, bool) or not 1 <= chips <= MAX_CHIPS:
        raise ValueError(f"chips must be an integer between 1 and {MAX_CHIPS}, not {chips!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
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
    if chips != 1:
        return _compile_system(q, graph, config, batch, chips, split, t0, t1)
    try:
        m = lower(q, config, batch)
    except MemoryFull as e:
        raise MemoryFull(f"{e}{_chips_hint(q, config, batch)}", words=e.words, anywhere=e.anywhere) from None
    t2 = time.perf_counter()
    return CompiledProgram(m, _specs(graph, q, m), _batched(graph), json.loads(json.dumps(m.sram_report())),
                           qgraph=q, timings={"quantize": t1 - t0, "lower": t2 - t1})


def _specs(graph, q, m):
    out = []
    for t in graph.inputs:
        qp = q.step(t.name).params["qp"] if t.name in m.inputs_layout.views else None
        out.append(InputSpec(t.name, tuple(t.shape), t.dtype, qp))
    return out


def _batched(graph):
    return {name: bool(t.shape) and t.shape[0] is None for name, t in graph.outputs.items()}


def _chips_hint(q, config, batch):
    """``"; it fits N chips …"`` when the pipeline partition holds the model, else nothing."""
    from .system.pipeline import lower_pipeline
    try:
        sm = lower_pipeline(q, config, batch)
    except ValueError:
        return ""
    return (f"; it fits {sm.chips} chips in pipeline parallel (compile with chips={sm.chips}, conveyor compile "
            f"--chips {sm.chips})")


def _even(q, chips):
    """Boundaries dividing the steps after the graph inputs evenly among ``chips`` chips (``None`` when there
    are fewer such steps than chips)."""
    work = [i for i, st in enumerate(q.steps) if st.op != "input"]
    if len(work) < chips:
        return None
    return [work[(k * len(work)) // chips] for k in range(1, chips)]


def _pipeline(q, config, batch, chips):
    from .system.pipeline import lower_pipeline
    bounds = _even(q, chips)
    if bounds is None:
        raise ValueError(f"chips = {chips} is more than the model's {sum(st.op != 'input' for st in q.steps)} "
                         f"steps: every chip needs at least one")
    try:
        return lower_pipeline(q, config, batch, chips=chips, boundaries=bounds)
    except MemoryFull:              # an even division does not fit: as the steps fit, on at most `chips`
        return lower_pipeline(q, config, batch, chips=chips)


def _tensor(q, config, batch, chips):
    from .system.tensor import lower_tensor
    return lower_tensor(q, config, batch, chips)


def _compile_system(q, graph, config, batch, chips, split, t0, t1):
    from .system.program import SystemProgram
    ways = {"pipeline": _pipeline, "tensor": _tensor}
    if split != "auto":
        sm = ways[split](q, config, batch, chips)
    else:                           # the cost model: the scheduler's exact cycles of both, the fewer kept
        built, why = {}, []
        for name, fn in ways.items():
            try:
                built[name] = fn(q, config, batch, chips)
                why.append(f"{name}: {built[name].predicted_cycles:,} cycles on {built[name].chips} chips")
            except (ValueError, NotImplementedError) as e:
                why.append(f"{name}: cannot ({' '.join(str(e).split())})")
        if not built:
            raise ValueError(f"the model cannot be divided among {chips} chips: {'; '.join(why)}")
        pick = min(built, key=lambda k: (built[k].predicted_cycles, k != "pipeline"))
        sm = built[pick]
        sm.reason = f"{pick} chosen: " + "; ".join(why)
    t2 = time.perf_counter()
    sram = [json.loads(json.dumps(m.sram_report())) for m in sm.models]
    return SystemProgram(sm, _specs(graph, q, sm), _batched(graph), sram, qgraph=q,
                         timings={"quantize": t1 - t0, "lower": t2 - t1})
