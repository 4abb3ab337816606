"""A compiled model as data: ``CompiledProgram``, what the compiler hands to the simulators.

A ``CompiledProgram`` holds the per-slice queues (``program``: words, issue cycles, assembly), the memory
image of its constants, where every input and output lives in MEM, the quantization of the inputs and the
``predicted_cycles`` of one run. It knows how to turn a user's float inputs into what one run loads
(``batches``: quantized exactly as ``QGraph.run_int8`` does, padded with zero rows to the compiled batch, and
split into several runs when there are more rows than the batch) and how to read the outputs back
(``outputs_of``, ``merge``), but it does not run anything: running is the simulation side's
(``sim.run(program, inputs, backend="golden"|"verilator")``). ``run`` is a convenience that calls the runner
registered in ``compiler.runners``. ``save(dir)`` / ``CompiledProgram.load(dir)``: ``compiler.saved``.

Inputs follow ``compiler.inputs``: a tuple in argument order, one array for a one-input model, or a dict by
input name.
"""
import json

import numpy as np

from .inputs import as_numpy, named_inputs
from .ir.node import fmt_shape
from .runners import runner
from .saved import load_program, save_program

__all__ = ["CompiledProgram", "Batch"]


class Batch:
    """One run's share of the inputs: ``codes`` (``{input name: int8 codes or ids}``, padded to the compiled
    batch), ``rows`` (how many of its rows are real) and ``start`` (its first row in the caller's inputs)."""

    def __init__(self, codes, rows, start):
        self.codes, self.rows, self.start = codes, rows, start

    def __repr__(self):
        return f"Batch(rows={self.rows}, start={self.start})"


class CompiledProgram:
    """A compiled model (module docstring). Build with ``compiler.compile`` or ``CompiledProgram.load``."""

    def __init__(self, model, inputs, batched_outputs, sram, qgraph=None, timings=None):
        self._model = model                 # a compiler.lower.CompiledModel (qgraph None once loaded)
        self._inputs = inputs               # [InputSpec] in graph order
        self._batched = batched_outputs     # {output name: whether its first axis is the batch}
        self._sram = sram
        self.qgraph = qgraph
        #: seconds spent compiling, by stage (``quantize``, ``lower``); empty once loaded
        self.timings = dict(timings or {})

    # ---- properties --------------------------------------------------------------------------------
    @property
    def model(self):
        """The lowered model (``compiler.lower.CompiledModel``): program, constants, layouts."""
        return self._model

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
        """The chip's cycles for one run (one batch)."""
        return self._model.program.predicted_cycles

    @property
    def utilization(self):
        return self._model.utilization

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
        """``({name: float32/int64 array}, rows)``: every input checked (one-line errors naming it); ``rows``
        the batched inputs' common first dimension (the compiled batch when there is none)."""
        named = named_inputs(inputs, self.input_names, "inputs")
        rows = None
        arrays = {}
        for s in self._inputs:
            ids = s.dtype != "float32"             # embedding ids, gathered on the host
            batched = bool(s.shape) and s.shape[0] is None
            what = (f"{'an integer' if ids else 'a float'} array of shape {fmt_shape(s.shape)}"
                    + (" with at least one row" if batched else ""))
            a = as_numpy(named[s.name])
            if a.dtype.kind not in ("iu" if ids else "iuf"):
                raise TypeError(f"input {s.name!r} must be {what}, not a {a.dtype} array")
            if (a.ndim != len(s.shape) or any(d is not None and d != n for d, n in zip(s.shape, a.shape))
                    or (batched and a.shape[0] < 1)):
                raise ValueError(f"input {s.name!r} must be {what}, not shape {a.shape}")
            with np.errstate(over="ignore", invalid="ignore"):
                a = a.astype(np.int64 if ids else np.float32)
            if not ids and not np.isfinite(a).all():
                raise ValueError(f"input {s.name!r} must hold finite values (within float32's range), not NaN, "
                                 f"infinity or values beyond ±{float(np.finfo(np.float32).max):.4g}")
            if batched:
                if rows is not None and a.shape[0] != rows:
                    raise ValueError(f"input {s.name!r} has {a.shape[0]} rows but another input has {rows}: "
                                     f"every batched input must have the same rows")
                rows = a.shape[0]
            arrays[s.name] = a
        return arrays, (self.batch if rows is None else rows)

    def batches(self, inputs):
        """The runs ``inputs`` need, as a list of ``Batch``: one per ``batch`` rows of the batched inputs (the
        last one padded with zero rows), each quantized exactly as ``QGraph.run_int8`` quantizes."""
        arrays, rows = self._check_inputs(inputs)
        used = self._model.inputs_layout.views
        out = []
        for start in range(0, rows, self.batch):
            n = min(self.batch, rows - start)
            part = {}
            for s in self._inputs:
                a = arrays[s.name]
                if s.shape and s.shape[0] is None:
                    a = a[start:start + n]
                    if n < self.batch:
                        a = np.concatenate([a, np.zeros((self.batch - n,) + a.shape[1:], a.dtype)])
                part[s.name] = a
            codes = {s.name: s.qp.quantize(part[s.name]) for s in self._inputs if s.qp is not None}
            codes.update({s.name: part[s.name] for s in self._inputs       # embedding ids pass unchanged
                          if s.qp is None and s.dtype != "float32" and s.name in used})
            out.append(Batch(codes, n, start))
        return out

    def memory_image(self, codes):
        """What one run loads into MEM: the constants and the packed input ``codes`` (``(slice, bank, addr,
        vectors)`` items, ``spec.image``)."""
        return self._model.constants + self._model.pack_inputs(codes)

    # ---- outputs -----------------------------------------------------------------------------------
    def outputs_of(self, mems, rows):
        """``{output name: array}`` read from one run's final memories (``{slice: banks × depth × L}`` or the
        golden result), batched outputs cut to the run's ``rows``."""
        outputs = self._model.unpack_outputs(mems)
        if rows == self.batch:
            return outputs
        return {k: (v[:rows] if self._batched.get(k) else v) for k, v in outputs.items()}

    def merge(self, per_run):
        """One ``{output name: array}`` from several runs' outputs, in order: batched outputs concatenated;
        an output without a batch axis must be the same in every run (``ValueError`` otherwise)."""
        if len(per_run) == 1:
            return per_run[0]
        out = {}
        for k in per_run[0]:
            if self._batched.get(k):
                out[k] = np.concatenate([o[k] for o in per_run])
            else:
                if any(not np.array_equal(o[k], per_run[0][k]) for o in per_run[1:]):
                    raise ValueError(f"output {k!r} has no batch axis and differs between runs: give at most "
                                     f"{self.batch} rows at a time")
                out[k] = per_run[0][k]
        return out

    # ---- running, drawing, saving --------------------------------------------------------------------
    def run(self, inputs, backend="golden", **options):
        """Run on ``backend`` through the registered runner (``compiler.runners``; ``sim.run``): a
        ``sim.runner.RunResult``. Options as ``sim.runner.run``."""
        return runner()(self, inputs, backend=backend, **options)

    def timeline(self, path, title=None):
        """Draw the program's timeline (``compiler.timeline.draw_timeline``) to the PNG ``path``."""
        from .timeline import draw_timeline
        return draw_timeline(self.program, path, title=title)

    def save(self, dir):
        """Write ``program.json`` and ``data.npz`` into the folder ``dir`` (``compiler.saved``); its Path."""
        return save_program(self, dir)

    @classmethod
    def load(cls, dir):
        """The ``CompiledProgram`` saved in folder ``dir``; ``ValueError`` naming what is missing or wrong."""
        return load_program(dir, cls)

