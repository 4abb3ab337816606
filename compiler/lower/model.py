"""What lowering produces: ``CompiledModel`` (the program, its constants, where inputs and outputs live), with
``InputsLayout`` (packing quantized inputs, embedding gathers on the host) and ``OutputLoc``.

``CompiledModel.run_golden(float_inputs)`` quantizes exactly as ``QGraph.run_int8``, loads the program,
constants and inputs on ``golden.chip.ChipSim``, runs it (in ``program.predicted_cycles`` cycles) and
unpacks the outputs; ``sram_report()`` gives the MEM words used and free per slice.
"""
import math
from dataclasses import dataclass, field

import numpy as np

from spec.config import ChipConfig

from ..memory import MemAllocator
from ..phases import _unpack_y
from ..quantize import QGraph
from ..schedule import Program, ProgramFigures
from .layout import _pack_act

__all__ = ["CompiledModel", "InputsLayout", "OutputLoc"]


@dataclass
class OutputLoc:
    """Where an output lives: ``kind`` ``"codes"`` (int8, activation layout of ``rows × features``) or
    ``"indices"`` (int32, lane 0 of ``rows`` words); ``shape`` the numpy result's shape; ``segments``
    ``((slice name, bank, addr, count), …)`` in word order; ``tensor`` the graph tensor."""
    tensor: str
    kind: str
    shape: tuple
    rows: int
    features: int
    segments: tuple


@dataclass
class InputsLayout:
    """How quantized inputs are placed: per graph input, the regions (one per view: an input reshaped on
    the host before two different uses gets two) as ``(view shape, segments)``; ``pack(codes)`` →
    ``[(slice name, bank, addr, words)]``. ``gathers``: per input name, one entry per view: ``None``, or the
    int8 ``(V, D)`` table of an embedding whose ids the input is (the view holds ``table[ids]``, gathered on
    the host; the view's shape is then that of the gathered rows)."""
    config: ChipConfig
    views: dict = field(default_factory=dict)     # input name -> [(shape, Region)]
    gathers: dict = field(default_factory=dict)   # input name -> [table or None] (aligned with views)

    @property
    def regions(self):
        return {name: [(shape, r.segments) for shape, r in vs] for name, vs in self.views.items()}

    def pack(self, codes):
        """``codes``: ``{input name: int8 codes}`` (the graph input's shape with the compiled batch)."""
        if not isinstance(codes, dict):
            raise TypeError(f"codes must be a dict of input name to int8 codes, not {type(codes).__name__}")
        out = []
        for name, vs in self.views.items():
            if name not in codes:
                raise ValueError(f"codes must hold input {name!r}")
            q = np.asarray(codes[name])
            gathers = self.gathers.get(name) or [None] * len(vs)
            if q.dtype.kind not in "iu":
                raise ValueError(f"codes of input {name!r} must be integers, not {q.dtype}")
            if any(g is None for g in gathers) and q.size and (q.min() < -128 or q.max() > 127):
                raise ValueError(f"codes of input {name!r} must be int8 values")
            for (shape, region), table in zip(vs, gathers):
                if table is not None:       # embedding ids: gather the quantized table's rows on the host
                    if q.size and (q.min() < 0 or q.max() >= len(table)):
                        raise ValueError(f"ids of input {name!r} must be in 0 … {len(table) - 1}, not "
                                         f"{int(q.min())} … {int(q.max())}")
                    x = np.asarray(table)[q.reshape(-1)]
                    if x.size != math.prod(shape):
                        raise ValueError(f"ids of input {name!r} must have {math.prod(shape) // table.shape[1]} "
                                         f"values, not shape {q.shape}")
                    out += region.inputs(_pack_act(x.reshape(shape).reshape(-1, shape[-1]), self.config))
                    continue
                if q.size != math.prod(shape):
                    raise ValueError(f"codes of input {name!r} must have {math.prod(shape)} values "
                                     f"(shape {shape}), not shape {q.shape}")
                x = q.reshape(shape)
                out += region.inputs(_pack_act(x.reshape(-1, shape[-1]), self.config))
        return out



# ---- the compiled model --------------------------------------------------------------------------------
@dataclass(eq=False)
class CompiledModel(ProgramFigures):
    """A lowered ``QGraph`` (``compiler.lower``). ``program``: the ``compiler.schedule.Program``;
    ``inputs_layout``: ``InputsLayout``; ``constants``: ``[(slice name, bank, addr, words)]`` (weights,
    biases, multipliers, tables, constant vectors), loaded once; ``outputs``: ``{output name: OutputLoc}``;
    ``regions``: every MEM region with its role; ``matmul_items``: MXU activations (MATMUL items)."""
    qgraph: QGraph
    config: ChipConfig
    batch: int
    program: Program
    inputs_layout: InputsLayout
    constants: list
    outputs: dict
    regions: list
    matmul_items: int
    allocator: MemAllocator | None = field(repr=False, default=None)

    # ---- inputs ------------------------------------------------------------------------------------
    def quantize_inputs(self, inputs):
        """``{input name: int8 codes}`` of float ``inputs``, exactly as ``QGraph.run_int8`` quantizes them."""
        raw = self.qgraph.graph.check_inputs(inputs)
        codes = {}
        for st in self.qgraph.steps:
            if st.op != "input" or st.name not in self.inputs_layout.views:
                continue
            x = raw[st.name]
            if x.ndim and x.shape[0] != self.batch and self.qgraph.graph.node(st.name).shape[0] is None:
                raise ValueError(f"input '{st.name}' must have batch {self.batch} (the compiled batch), "
                                 f"not {x.shape[0]}")
            codes[st.name] = st.params["qp"].quantize(x) if st.params["qp"] is not None else np.asarray(x)
        return codes

    def pack_inputs(self, codes):
        """``[(slice name, bank, addr, words)]`` placing the int8 input ``codes`` (``{input name: codes}``)."""
        return self.inputs_layout.pack(codes)

    # ---- outputs -----------------------------------------------------------------------------------
    def unpack_outputs(self, source):
        """``{output name: numpy array}`` (int8 codes, int32 argmax indices) from the final memories:
        ``source`` a ``golden.chip.ChipResult``/``ChipSim`` (anything with ``read_mem(slice, bank, addr,
        count)``), such a callable, or ``{slice name: banks × depth × L array}``."""
        if hasattr(source, "read_mem"):
            read = source.read_mem
        elif callable(source):
            read = source
        elif isinstance(source, dict):
            def read(s, bank, addr, n):
                return np.asarray(source[s])[bank, addr:addr + n]
        else:
            raise TypeError(f"source must have read_mem, be a reader function or a dict of MEM arrays, not "
                            f"{type(source).__name__}")
        out = {}
        for name, loc in self.outputs.items():
            words = np.concatenate([np.asarray(read(s, bank, addr, n)) for s, bank, addr, n in loc.segments])
            if loc.kind == "indices":
                out[name] = words[:, 0].astype(np.int32).reshape(loc.shape)
            else:
                out[name] = _unpack_y(words, loc.rows, loc.features, self.config).astype(np.int8).reshape(
                    loc.shape)
        return out

    # ---- reports -----------------------------------------------------------------------------------
    def sram_report(self):
        """Per MEM slice: words and bytes used (by some region during the run) and free (by none; a word is
        ``L`` int32 lanes: ``4·L`` bytes), and the regions on it (``{region name: words}``; when MEM was
        reused after a tensor's last use, regions share words and sum to more); ``"total"`` sums the slices."""
        c = self.config
        wb = 4 * c.lanes
        cap = c.mem_banks * c.mem_depth
        rep = {}
        for p in c.positions("mem"):
            free = self.allocator.free_words(p)
            rep[c.slice_names[p]] = {"used_words": cap - free, "free_words": free, "used_bytes": (cap - free) * wb,
                                     "free_bytes": free * wb, "regions": {}}
        for _role, r in self.regions:
            for p in r.slices:
                n = sum(1 for q, _, _ in r.locs if q == p)
                rep[c.slice_names[p]]["regions"][r.name] = n
        tot = {k: sum(v[k] for v in rep.values()) for k in ("used_words", "free_words", "used_bytes", "free_bytes")}
        rep["total"] = tot
        return rep

    def summary(self):
        """A few lines: cycles, MXU utilization, and the SRAM use per slice."""
        rep = self.sram_report()
        lines = [f"lowered for {self.config.name}, batch {self.batch}: {self.cycles} cycles, "
                 f"{self.matmul_items} MATMUL items, MXU utilization {self.utilization:.1%}"]
        for s, v in rep.items():
            if s == "total":
                continue
            lines.append(f"  {s}: {v['used_words']} words used ({v['used_bytes']} B), {v['free_words']} free "
                         f"({v['free_bytes']} B)")
        t = rep["total"]
        lines.append(f"  total: {t['used_bytes']} B used, {t['free_bytes']} B free")
        return "\n".join(lines)

    # ---- running -----------------------------------------------------------------------------------
    def simulate(self, codes, max_cycles=None):
        """Load the program, constants and the input ``codes`` on a fresh ``ChipSim`` and run it: the
        ``ChipResult`` (faults are in its ``error``)."""
        from golden.chip import ChipSim
        sim = ChipSim(self.config)
        sim.load(self.program.words)
        for s, bank, addr, words in self.constants + self.pack_inputs(codes):
            sim.write_mem(s, bank, addr, words)
        return sim.run(max_cycles=max_cycles or self.program.predicted_cycles + 1000)

    def run_golden(self, inputs, max_cycles=None):
        """Quantize float ``inputs`` (as ``QGraph.run_int8``), run on ``golden.chip.ChipSim``: ``(outputs,
        cycles)``. A chip fault raises ``RuntimeError``."""
        res = self.simulate(self.quantize_inputs(inputs), max_cycles)
        if res.error is not None:
            raise RuntimeError(f"the chip faulted: {res.error}")
        return self.unpack_outputs(res), res.cycles

