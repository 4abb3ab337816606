"""A compiled model on a system of chips: ``SystemProgram``, what ``compiler.compile(..., chips=N)`` returns.

``SystemProgram`` is a ``compiler.CompiledProgram`` whose model is a ``compiler.system.pipeline.SystemModel``
(one ``CompiledModel`` per chip of a line): inputs are checked, quantized and split into runs exactly as for
one chip (``batches``), the outputs read from the last chip (``outputs_of``, ``merge``); ``predicted_cycles``
is the system's (from the shared START to the last chip done), ``memory_image(codes)`` one MEM image per
chip, ``programs`` the chips' programs. ``run(inputs, backend=...)`` goes to the runner registered as
``"sim"`` (``sim.runner``), which runs it on ``golden.system.SystemSim`` or on the system's RTL.

Saved form (``save(dir)`` / ``SystemProgram.load(dir)``, no pickle): ``system.json`` (format
``conveyor-system-program``, version, chips, the split (``pipeline`` or ``tensor``, what each chip holds and
why), the partition's boundaries, the planned link words, topology)
and one folder ``chip<k>/`` per chip in the saved form of a compiled program (``compiler.saved``).
``compiler.system.program.load_any(dir)`` loads either kind of folder.
"""
import json
from pathlib import Path

from ..program import CompiledProgram
from ..saved import load_program
from .pipeline import SystemModel

__all__ = ["SystemProgram", "load_any", "FORMAT", "FORMAT_VERSION"]

FORMAT = "conveyor-system-program"
FORMAT_VERSION = 1


class SystemProgram(CompiledProgram):
    """A compiled model on ``chips`` chips (module docstring)."""

    @property
    def chips(self):
        return self._model.chips

    @property
    def program(self):
        raise AttributeError("a SystemProgram has one program per chip: see programs")

    @property
    def programs(self):
        return [m.program for m in self._model.models]

    @property
    def predicted_cycles(self):
        """The system's cycles for one run (one batch): the last chip done."""
        return self._model.predicted_cycles

    @property
    def chip_cycles(self):
        return self._model.chip_cycles

    @property
    def utilization(self):
        """MXU activations of every chip / (chips × system cycles)."""
        return sum(self._model.matmul_items) / (self.chips * self.predicted_cycles)

    @property
    def transfers(self):
        return dict(self._model.transfers)

    @property
    def split(self):
        """``"pipeline"`` (consecutive steps on consecutive chips) or ``"tensor"`` (``compiler.system.tensor``)."""
        return self._model.split

    @property
    def plan(self):
        """What each chip holds, a line per divided layer (tensor), or the chips' first steps (pipeline)."""
        if self._model.split == "tensor":
            return list(self._model.plan)
        return [f"chip {k + 1} from step {b}" for k, b in enumerate(self._model.boundaries)]

    @property
    def reason(self):
        """Why this split (``compiler.compile(split="auto")``: the predicted cycles of each), or ``""``."""
        return self._model.reason

    def memory_image(self, codes):
        """Per chip, what one run loads into its MEM (constants and the packed inputs it reads)."""
        return self._model.chip_inputs(codes)

    def __repr__(self):
        return (f"SystemProgram(config={self.config.name!r}, chips={self.chips}, batch={self.batch}, "
                f"inputs={self.input_names}, outputs={self.output_names}, predicted_cycles={self.predicted_cycles})")

    def timeline(self, path, title=None):
        raise NotImplementedError("the timeline of a system of chips is not drawn yet: draw one chip's with "
                                  "compiler.timeline.draw_timeline(program.programs[k], path)")

    def save(self, dir):
        """``system.json`` and a saved compiled program per chip (``chip<k>/``) in ``dir``; its Path."""
        d = Path(dir)
        d.mkdir(parents=True, exist_ok=True)
        sm = self._model
        for k, m in enumerate(sm.models):
            cp = CompiledProgram(m, self._inputs, self._batched, self._sram[k])
            cp.save(d / f"chip{k}")
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "chips": sm.chips, "boundaries": sm.boundaries,
                "transfers": sm.transfers, "topology": sm.topology, "config": sm.config.to_dict(),
                "predicted_cycles": self.predicted_cycles, "split": sm.split, "plan": list(sm.plan),
                "reason": sm.reason}
        (d / "system.json").write_text(json.dumps(meta, indent=1) + "\n")
        return d

    @classmethod
    def load(cls, dir):
        """The ``SystemProgram`` saved in folder ``dir``; ``ValueError`` naming what is missing or wrong."""
        d = Path(dir)
        pj = d / "system.json"
        if not pj.is_file():
            raise ValueError(f"{d} is not a system program: system.json is missing")
        try:
            meta = json.loads(pj.read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read {pj}: {e}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"{pj} is not a system program (format must be {FORMAT!r})")
        if meta.get("version") != FORMAT_VERSION:
            raise ValueError(f"{pj}: version must be {FORMAT_VERSION}, not {meta.get('version')!r}")
        chips = meta.get("chips")
        if not isinstance(chips, int) or isinstance(chips, bool) or chips < 1:
            raise ValueError(f"{pj}: chips must be a positive integer, not {chips!r}")
        parts = [load_program(d / f"chip{k}", CompiledProgram) for k in range(chips)]
        configs = {p.config for p in parts}
        if len(configs) != 1:
            raise ValueError(f"{d}: every chip must have one configuration, not {sorted(c.name for c in configs)}")
        if any(p.batch != parts[0].batch for p in parts):
            raise ValueError(f"{d}: every chip must have one batch, not {[p.batch for p in parts]}")
        split = meta.get("split", "pipeline")
        if split not in ("pipeline", "tensor"):
            raise ValueError(f"{pj}: split must be 'pipeline' or 'tensor', not {split!r}")
        sm = SystemModel(None, parts[0].config, [p.model for p in parts], list(meta.get("boundaries", [])),
                         dict(meta.get("transfers", {})), meta.get("topology", "line"), split,
                         list(meta.get("plan", [])), str(meta.get("reason", "")))
        return cls(sm, parts[0]._inputs, parts[-1]._batched, [p._sram for p in parts])


def load_any(dir):
    """The program saved in ``dir``: a ``SystemProgram`` when it holds ``system.json``, else a
    ``CompiledProgram``."""
    if (Path(dir) / "system.json").is_file():
        return SystemProgram.load(dir)
    return CompiledProgram.load(dir)
