"""The one-call compiler API: a model → a ``CompiledProgram`` that runs on the golden chip or the RTL.

``compile(model, example_inputs, config="small", calibration=None, batch=None)``:

* ``model``: a ``compiler.ir.Graph``, or a ``torch.nn.Module`` (converted by
  ``compiler.frontend_torch.from_torch(model, example_inputs)``; torch is imported only then);
* ``example_inputs``: ``{input name: float array}``; the compiled batch is their first dimension unless
  ``batch`` is given; ``calibration`` (one such dict or a list of them) defaults to ``example_inputs``;
* ``config``: a preset name (``spec.config.PRESETS``) or a ``spec.config.ChipConfig``.

The model is quantized (``compiler.quantize``) and lowered (``compiler.lower``). ``CompiledProgram``:
``predicted_cycles``, ``config``, ``batch``, ``program`` (``compiler.schedule.Program``), ``sram_report()``,
``run(inputs, backend="golden"|"verilator")`` → ``RunResult(outputs, cycles, backend, …)``,
``timeline(path)``, ``save(dir)`` and ``CompiledProgram.load(dir)``.

Running: float inputs are quantized on the host exactly as ``QGraph.run_int8`` does, packed into MEM with
the constants, and the program is run; the outputs (int8 codes, argmax int32 indices) are read back from the
final memories. Inputs with fewer rows than the compiled batch (on their ``None`` batch dimension) are padded
with zero rows and the batched outputs cut back to those rows. ``backend="verilator"`` runs the RTL
(``sim.chip_run.run_program``, which also runs the golden model) and raises ``RuntimeError`` naming the
first difference when the RTL and the golden model disagree (``check=False`` returns the result with
``match`` False instead).

Saved form (no pickle anywhere): a folder with ``program.json`` (format and version, ``config.to_dict()``,
batch, predicted cycles, the inputs with their shapes, dtypes, scales, zero points and MEM word locations,
the outputs with their kinds, shapes and MEM segments, the constants' locations, the SRAM report, the
assembly text) and ``data.npz`` (per slice the program words ``words_<p>`` (uint64) and their issue cycles
``cycles_<p>``, and the constants ``const_<i>``), read back with ``np.load(..., allow_pickle=False)``.
"""
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spec import isa
from spec.config import PRESETS, ChipConfig

from .ir import Graph
from .kernels import Region
from .lower import CompiledModel, InputsLayout, OutputLoc, lower
from .quantize import QParams, quantize
from .schedule import Program

__all__ = ["compile", "CompiledProgram", "RunResult", "FORMAT", "FORMAT_VERSION", "BACKENDS"]

FORMAT = "conveyor-compiled-program"
FORMAT_VERSION = 1
BACKENDS = ("golden", "verilator")
_REPO = Path(__file__).resolve().parent.parent


def _default_build():
    return Path(os.environ.get("CONVEYOR_BUILD", _REPO / "build"))


def _fmt_shape(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


@dataclass
class RunResult:
    """One run: ``outputs`` (``{output name: numpy array}``), ``cycles`` (the chip's), ``backend``;
    ``predicted_cycles`` (the compiler's); ``match`` (verilator: RTL equals golden; golden: None) and
    ``mismatch`` (the first difference, or None)."""
    outputs: dict
    cycles: int
    backend: str
    predicted_cycles: int | None = None
    match: bool | None = None
    mismatch: str | None = None


@dataclass(frozen=True)
class _InputSpec:
    name: str
    shape: tuple            # None for the batch dimension
    dtype: str
    qp: QParams | None = None   # None: not used by the program (never placed in MEM)


class CompiledProgram:
    """A compiled model (module docstring). Build with ``compile`` or ``CompiledProgram.load``."""

    def __init__(self, model, inputs, batched_outputs, sram, qgraph=None):
        self._model = model                 # a compiler.lower.CompiledModel (qgraph None once loaded)
        self._inputs = inputs               # [_InputSpec] in graph order
        self._batched = batched_outputs     # {output name: whether its first axis is the batch}
        self._sram = sram
        self.qgraph = qgraph

    # ---- properties --------------------------------------------------------------------------------
    @property
    def config(self):
        return self._model.config

    @property
    def batch(self):
        return self._model.batch

    @property
    def program(self):
        return self._model.program

    @property
    def predicted_cycles(self):
        return self._model.program.predicted_cycles

    @property
    def input_names(self):
        return [s.name for s in self._inputs]

    @property
    def output_names(self):
        return list(self._model.outputs)

    def input_specs(self):
        """``{input name: (shape with None for the batch, dtype)}``."""
        return {s.name: (s.shape, s.dtype) for s in self._inputs}

    def sram_report(self):
        """Per MEM slice words and bytes used and free and the regions on it; ``"total"`` (as
        ``CompiledModel.sram_report``)."""
        return json.loads(json.dumps(self._sram))

    def __repr__(self):
        return (f"CompiledProgram(config={self.config.name!r}, batch={self.batch}, inputs={self.input_names}, "
                f"outputs={self.output_names}, predicted_cycles={self.predicted_cycles})")

    # ---- inputs ------------------------------------------------------------------------------------
    def _check_inputs(self, inputs):
        """``(float32/int arrays padded to the batch, rows given)``; one-line errors naming the input."""
        if not isinstance(inputs, dict):
            raise TypeError(f"inputs must be a dict of input name to numpy array, not {type(inputs).__name__}")
        names = self.input_names
        for k in inputs:
            if k not in names:
                raise ValueError(f"input {k!r} is not an input of the compiled program (inputs: "
                                 f"{', '.join(names)})")
        rows = None
        arrays = {}
        for s in self._inputs:
            ids = s.dtype != "float32"             # embedding ids, gathered on the host
            what = (f"{'an integer' if ids else 'a float'} array of shape {_fmt_shape(s.shape)}"
                    + (f" with at most {self.batch} rows" if s.shape and s.shape[0] is None else ""))
            if s.name not in inputs:
                raise ValueError(f"input {s.name!r} is missing: it must be {what}")
            a = inputs[s.name]
            if hasattr(a, "detach") and hasattr(a, "numpy"):      # a torch tensor
                a = a.detach().cpu().numpy()
            a = np.asarray(a)
            if a.dtype.kind not in ("iu" if ids else "iuf"):
                raise TypeError(f"input {s.name!r} must be {what}, not a {a.dtype} array")
            if (a.ndim != len(s.shape) or any(d is not None and d != n for d, n in zip(s.shape, a.shape))
                    or (s.shape and s.shape[0] is None and not 1 <= a.shape[0] <= self.batch)):
                raise ValueError(f"input {s.name!r} must be {what}, not shape {a.shape}")
            with np.errstate(over="ignore", invalid="ignore"):
                a = a.astype(np.int64 if ids else np.float32)
            if not ids and not np.isfinite(a).all():
                raise ValueError(f"input {s.name!r} must hold finite values (within float32's range), not NaN, "
                                 f"infinity or values beyond ±{float(np.finfo(np.float32).max):.4g}")
            if s.shape and s.shape[0] is None:
                if rows is not None and a.shape[0] != rows:
                    raise ValueError(f"input {s.name!r} has {a.shape[0]} rows but another input has {rows}: "
                                     f"every batched input must have the same rows")
                rows = a.shape[0]
                if rows < self.batch:
                    a = np.concatenate([a, np.zeros((self.batch - rows,) + a.shape[1:], a.dtype)])
            arrays[s.name] = a
        return arrays, (self.batch if rows is None else rows)

    def quantize_inputs(self, inputs):
        """``({input name: int8 codes}, rows)`` of float ``inputs`` (padded to the batch), exactly as
        ``QGraph.run_int8`` quantizes them."""
        arrays, rows = self._check_inputs(inputs)
        used = self._model.inputs_layout.views
        codes = {s.name: s.qp.quantize(arrays[s.name]) for s in self._inputs if s.qp is not None}
        codes.update({s.name: arrays[s.name] for s in self._inputs       # embedding ids pass unchanged
                      if s.qp is None and s.dtype != "float32" and s.name in used})
        return codes, rows

    def _cut(self, outputs, rows):
        if rows == self.batch:
            return outputs
        return {k: (v[:rows] if self._batched.get(k) else v) for k, v in outputs.items()}

    # ---- running -----------------------------------------------------------------------------------
    def run(self, inputs, backend="golden", *, check=True, build_dir=None, seed=1):
        """Run on ``backend`` (``"golden"``: ``golden.chip.ChipSim``; ``"verilator"``: the chip RTL, compared
        with golden): a ``RunResult``. A chip fault, or (``check``) an RTL that differs from golden, raises
        ``RuntimeError``."""
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        codes, rows = self.quantize_inputs(inputs)
        m = self._model
        if backend == "golden":
            res = m.simulate(codes)
            if res.error is not None:
                raise RuntimeError(f"the chip faulted: {res.error}")
            return RunResult(self._cut(m.unpack_outputs(res), rows), int(res.cycles), backend,
                             self.predicted_cycles)
        from sim.chip_run import run_program
        from sim.chip_verilator import ChipSimulator
        config = self.config.check_rtl()
        simr = ChipSimulator(config, build_root=Path(build_dir or _default_build()) / "sim")
        res = run_program(config, m.program.words, m.constants + m.pack_inputs(codes), simulator=simr, seed=seed,
                          max_cycles=self.predicted_cycles + 1000)
        if check and not res.match:
            raise RuntimeError(f"the RTL and the golden model differ on config {config.name}: {res.mismatch}")
        if check and res.error is not None:
            raise RuntimeError(f"the chip faulted: {res.error}")
        return RunResult(self._cut(m.unpack_outputs(res.mems), rows), int(res.cycles), backend,
                         self.predicted_cycles, bool(res.match), res.mismatch)

    def timeline(self, path, title=None):
        """Draw the program's timeline (``compiler.timeline.draw_timeline``) to the PNG ``path``."""
        from .timeline import draw_timeline
        return draw_timeline(self.program, path, title=title)

    # ---- saving ------------------------------------------------------------------------------------
    def save(self, dir):
        """Write ``program.json`` and ``data.npz`` into the folder ``dir`` (made if needed); returns its Path."""
        d = Path(dir)
        d.mkdir(parents=True, exist_ok=True)
        m, c = self._model, self.config
        views = m.inputs_layout.views
        meta = {
            "format": FORMAT, "version": FORMAT_VERSION,
            "config": c.to_dict(), "batch": self.batch, "predicted_cycles": self.predicted_cycles,
            "matmul_items": int(m.matmul_items),
            "inputs": [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype,
                        "scale": None if s.qp is None else float(s.qp.scale),
                        "zero_point": None if s.qp is None else int(s.qp.zp),
                        "views": [{"shape": [int(x) for x in shape],
                                   "locs": [[int(p), int(b), int(a)] for p, b, a in r.locs],
                                   "gather": None if g is None else f"gather_{s.name}_{i}"}
                                  for i, ((shape, r), g) in enumerate(zip(
                                      views.get(s.name, []),
                                      m.inputs_layout.gathers.get(s.name) or [None] * len(views.get(s.name, []))))]}
                       for s in self._inputs],
            "outputs": [{"name": name, "tensor": loc.tensor, "kind": loc.kind, "shape": [int(x) for x in loc.shape],
                         "rows": int(loc.rows), "features": int(loc.features),
                         "segments": [[s, int(b), int(a), int(n)] for s, b, a, n in loc.segments],
                         "batched": bool(self._batched.get(name))}
                        for name, loc in m.outputs.items()],
            "constants": [{"slice": s, "bank": int(b), "addr": int(a), "key": f"const_{i}"}
                          for i, (s, b, a, _) in enumerate(m.constants)],
            "sram_report": self._sram,
            "assembly": m.program.text,
        }
        arrays = {}
        for p, (words, sched) in enumerate(zip(m.program.words, m.program.schedule)):
            arrays[f"words_{p}"] = np.array([int(w) for w in words], np.uint64)
            arrays[f"cycles_{p}"] = np.array([t for t, _ in sched], np.int64)
        for i, (_, _, _, words) in enumerate(m.constants):
            arrays[f"const_{i}"] = np.asarray(words)
        for name, tables in m.inputs_layout.gathers.items():
            for i, table in enumerate(tables):
                if table is not None:
                    arrays[f"gather_{name}_{i}"] = np.asarray(table)
        (d / "program.json").write_text(json.dumps(meta, indent=1) + "\n")
        np.savez(d / "data.npz", **arrays)
        return d

    @classmethod
    def load(cls, dir):
        """The ``CompiledProgram`` saved in folder ``dir``; ``ValueError`` naming what is missing or wrong."""
        d = Path(dir)
        pj, dz = d / "program.json", d / "data.npz"
        for f in (pj, dz):
            if not f.is_file():
                raise ValueError(f"{d} is not a compiled program: {f.name} is missing")
        try:
            meta = json.loads(pj.read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read {pj}: {e}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"{pj} is not a compiled program (format must be {FORMAT!r})")
        if meta.get("version") != FORMAT_VERSION:
            raise ValueError(f"{pj}: version must be {FORMAT_VERSION}, not {meta.get('version')!r}")
        from sim.chip_run import read_npz
        arrays = read_npz(dz, "compiled program data")
        try:
            return cls._from_saved(meta, arrays)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as e:
            what = f"missing key {e}" if isinstance(e, KeyError) else " ".join(str(e).split())
            raise ValueError(f"{d}: malformed compiled program ({type(e).__name__}: {what})") from None

    @classmethod
    def _from_saved(cls, meta, npz):
        from sim.chip_run import _checked_inputs
        config = ChipConfig.from_dict(meta["config"])
        P = len(config.slices)
        words, cycles = [], []
        for p in range(P):
            w, t = npz[f"words_{p}"], npz[f"cycles_{p}"]
            if w.ndim != 1 or w.dtype.kind not in "iu" or t.shape != w.shape or t.dtype.kind not in "iu":
                raise ValueError(f"words_{p} and cycles_{p} must be 1-D integer arrays of one length, not "
                                 f"{w.dtype} {w.shape} and {t.dtype} {t.shape}")
            if len(w) > config.queue_depth:
                raise ValueError(f"words_{p} has {len(w)} words, more than queue_depth = {config.queue_depth}")
            words.append([int(x) for x in w])
            cycles.append([int(x) for x in t])
        for p, ws in enumerate(words):
            for i, w in enumerate(ws):
                if not 0 <= w < 1 << isa.WORD_BITS:
                    raise ValueError(f"words_{p}[{i}] = {w} is not a 64-bit word")
                f = isa.fault(isa.decode(w), config, config.slices[p])
                if f is not None:
                    raise ValueError(f"words_{p}[{i}] = 0x{w:016x} is not an instruction of slice "
                                     f"{config.slice_names[p]} ({f.code.name}: {f.message})")
        constants = [(cm["slice"], cm["bank"], cm["addr"], npz[cm["key"]]) for cm in meta["constants"]]
        _checked_inputs(config, constants, [f"constant {cm['key']!r}" for cm in meta["constants"]])
        gathers = {im["name"]: [None if v.get("gather") is None else npz[v["gather"]] for v in im["views"]]
                   for im in meta["inputs"]}
        batch = meta["batch"]
        capacity = len(config.positions("mem")) * config.mem_bytes_per_slice
        if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= capacity:
            raise ValueError(f"batch must be an integer between 1 and {capacity}, not {batch!r}")
        for im in meta["inputs"]:
            if (not isinstance(im["shape"], list) or not im["shape"]
                    or not all(x is None or (isinstance(x, int) and 1 <= x <= capacity) for x in im["shape"])):
                raise ValueError(f"input {im.get('name')!r}: shape must be a list of positive sizes (null for the "
                                 f"batch), not {im['shape']!r}")
            for v in im["views"]:
                for loc in v["locs"]:
                    _checked_inputs(config, [(int(loc[0]), int(loc[1]), int(loc[2]), np.zeros((1, config.lanes),
                                                                                                  np.int32))],
                                    [f"input {im['name']!r}: word location {loc}"])
        schedule = [[(t, isa.decode(w)) for t, w in zip(ts, ws)] for ts, ws in zip(cycles, words)]
        program = Program(config=config, words=words, schedule=schedule,
                          predicted_cycles=int(meta["predicted_cycles"]), text=meta.get("assembly", ""))
        layout = InputsLayout(config)
        specs = []
        for im in meta["inputs"]:
            qp = None if im["scale"] is None else QParams(float(im["scale"]), int(im["zero_point"]))
            specs.append(_InputSpec(im["name"], tuple(im["shape"]), im["dtype"], qp))
            for v in im["views"]:
                r = Region(f"input '{im['name']}'", config, [tuple(int(x) for x in loc) for loc in v["locs"]])
                layout.views.setdefault(im["name"], []).append((tuple(v["shape"]), r))
            if any(g is not None for g in gathers[im["name"]]):
                layout.gathers[im["name"]] = gathers[im["name"]]
        outputs, batched = {}, {}
        for om in meta["outputs"]:
            for seg in om["segments"]:
                s, b, a, n = seg
                if not isinstance(n, int) or n < 1:
                    raise ValueError(f"output {om['name']!r}: segment {seg} must have a positive count")
                _checked_inputs(config, [(s, int(b), int(a), np.zeros((n, config.lanes), np.int32))],
                                [f"output {om['name']!r}: segment {seg}"])
            outputs[om["name"]] = OutputLoc(om["tensor"], om["kind"], tuple(om["shape"]), int(om["rows"]),
                                            int(om["features"]),
                                            tuple((s, int(b), int(a), int(n)) for s, b, a, n in om["segments"]))
            batched[om["name"]] = bool(om["batched"])
        model = CompiledModel(None, config, int(meta["batch"]), program, layout, constants, outputs, [],
                              int(meta.get("matmul_items", 0)))
        return cls(model, specs, batched, meta["sram_report"])


# ---- compiling -----------------------------------------------------------------------------------------
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


def _numpy_inputs(inputs, what):
    if not isinstance(inputs, dict):
        raise TypeError(f"{what} must be a dict of input name to array, not {type(inputs).__name__}")
    out = {}
    for k, v in inputs.items():
        if hasattr(v, "detach") and hasattr(v, "numpy"):
            v = v.detach().cpu().numpy()
        out[k] = np.asarray(v)
    return out


def compile(model, example_inputs, config="small", calibration=None, batch=None):
    """Quantize and lower ``model`` for ``config``: a ``CompiledProgram`` (module docstring)."""
    if isinstance(config, str):
        if config not in PRESETS:
            raise ValueError(f"config must be one of {', '.join(PRESETS)} or a spec.config.ChipConfig, not "
                             f"{config!r}")
        config = PRESETS[config]
    if not isinstance(config, ChipConfig):
        raise TypeError(f"config must be a preset name or a spec.config.ChipConfig, not {config!r}")
    graph = _as_graph(model, example_inputs)
    if not isinstance(example_inputs, dict) and not isinstance(model, Graph):
        # a torch module's example inputs may be a tuple in argument order, or one array
        seq = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
        if len(seq) != len(graph.inputs):
            raise ValueError(f"example_inputs must hold {len(graph.inputs)} arrays (inputs "
                             f"{', '.join(t.name for t in graph.inputs)}), not {len(seq)}")
        example_inputs = {t.name: v for t, v in zip(graph.inputs, seq)}
    examples = _numpy_inputs(example_inputs, "example_inputs")
    graph.check_inputs(examples)
    if batch is None:
        batched = [examples[t.name].shape[0] for t in graph.inputs if t.shape and t.shape[0] is None]
        if batched and len(set(batched)) > 1:
            raise ValueError(f"example_inputs have different batch sizes ({sorted(set(batched))}); give batch=")
        batch = batched[0] if batched else None
    if calibration is None:
        calibration = examples
    elif isinstance(calibration, dict):
        calibration = _numpy_inputs(calibration, "calibration")
    else:
        calibration = [_numpy_inputs(c, "calibration") for c in calibration]
    q = quantize(graph, calibration)
    m = lower(q, config, batch)
    specs = []
    for t in graph.inputs:
        st = q.step(t.name)
        qp = st.params["qp"] if t.name in m.inputs_layout.views else None
        specs.append(_InputSpec(t.name, tuple(t.shape), t.dtype, qp))
    batched = {name: bool(t.shape) and t.shape[0] is None for name, t in graph.outputs.items()}
    sram = json.loads(json.dumps(m.sram_report()))
    return CompiledProgram(m, specs, batched, sram, qgraph=q)
