"""The saved form of a compiled program: a folder of ``program.json`` and ``data.npz``, no pickle anywhere.

``program.json``: format and version, ``config.to_dict()``, batch, predicted cycles, the inputs with their
shapes, dtypes, scales, zero points and MEM word locations, the outputs with their kinds, shapes and MEM
segments, the constants' locations, the SRAM report, the assembly text. ``data.npz``: per slice the program
words ``words_<p>`` (uint64) and their issue cycles ``cycles_<p>``, the constants ``const_<i>`` and the
embedding tables gathered on the host ``gather_<input>_<i>``, read back with ``allow_pickle=False``.
``load_program`` checks everything it reads (words are instructions of their slice, locations inside MEM,
sizes positive) and names what is missing or wrong in one ``ValueError``.
"""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spec import isa
from spec.config import ChipConfig
from spec.image import check_mem_inputs, read_npz

from .kernels import Region
from .lower import CompiledModel, InputsLayout, OutputLoc
from .quantize import QParams
from .schedule import Program

__all__ = ["FORMAT", "FORMAT_VERSION", "InputSpec", "save_program", "load_program", "load_saved", "read_program",
           "read_constants", "write_program"]

FORMAT = "conveyor-compiled-program"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class InputSpec:
    """One graph input: ``shape`` (None for the batch dimension), ``dtype``, ``qp`` (None: not used by the
    program, never placed in MEM)."""
    name: str
    shape: tuple
    dtype: str
    qp: QParams | None = None


def save_program(cp, dir):
    """Write ``cp`` (a ``CompiledProgram``) as ``program.json`` and ``data.npz`` into the folder ``dir`` (made
    if needed); returns its Path."""
    d = Path(dir)
    d.mkdir(parents=True, exist_ok=True)
    m, c = cp._model, cp.config
    views = m.inputs_layout.views
    meta = {
        "format": FORMAT, "version": FORMAT_VERSION,
        "config": c.to_dict(), "batch": cp.batch, "predicted_cycles": cp.predicted_cycles,
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
                   for s in cp._inputs],
        "outputs": [{"name": name, "tensor": loc.tensor, "kind": loc.kind, "shape": [int(x) for x in loc.shape],
                     "rows": int(loc.rows), "features": int(loc.features),
                     "segments": [[s, int(b), int(a), int(n)] for s, b, a, n in loc.segments],
                     "batched": bool(cp._batched.get(name))}
                    for name, loc in m.outputs.items()],
        "constants": [{"slice": s, "bank": int(b), "addr": int(a), "key": f"const_{i}"}
                      for i, (s, b, a, _) in enumerate(m.constants)],
        "sram_report": cp._sram,
        "assembly": m.program.text,
    }
    arrays = {}
    write_program(m.program, arrays)
    for i, (_, _, _, words) in enumerate(m.constants):
        arrays[f"const_{i}"] = np.asarray(words)
    for name, tables in m.inputs_layout.gathers.items():
        for i, table in enumerate(tables):
            if table is not None:
                arrays[f"gather_{name}_{i}"] = np.asarray(table)
    (d / "program.json").write_text(json.dumps(meta, indent=1) + "\n")
    np.savez(d / "data.npz", **arrays)
    return d

def load_program(dir, cls):
    """The ``cls`` (``CompiledProgram``) saved in folder ``dir``; ``ValueError`` naming what is missing or wrong."""
    return load_saved(dir, "program.json", FORMAT, FORMAT_VERSION, "compiled program", "a compiled program",
                      lambda meta, npz: _from_saved(cls, meta, npz))


def load_saved(dir, json_name, fmt, version, what, article, build):
    """``build(meta, arrays)`` of the folder ``dir`` holding ``json_name`` (format ``fmt``, ``version``) and
    ``data.npz`` (read without pickle); every way it can be missing or wrong is one ``ValueError`` naming it
    (``what``: the kind of thing, ``article``: it with its article, for "is not …")."""
    d = Path(dir)
    pj, dz = d / json_name, d / "data.npz"
    for f in (pj, dz):
        if not f.is_file():
            raise ValueError(f"{d} is not {article}: {f.name} is missing")
    try:
        meta = json.loads(pj.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read {pj}: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise ValueError(f"{pj} is not {article} (format must be {fmt!r})")
    if meta.get("version") != version:
        raise ValueError(f"{pj}: version must be {version}, not {meta.get('version')!r}")
    arrays = read_npz(dz, f"{what} data")
    try:
        return build(meta, arrays)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as e:
        why = f"missing key {e}" if isinstance(e, KeyError) else " ".join(str(e).split())
        raise ValueError(f"{d}: malformed {what} ({type(e).__name__}: {why})") from None


def read_program(config, npz, predicted_cycles, text=""):
    """The ``Program`` of ``words_<p>`` / ``cycles_<p>`` in ``npz``, every word checked to be an instruction of
    its slice (``ValueError`` naming the first that is not)."""
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
    schedule = [[(t, isa.decode(w)) for t, w in zip(ts, ws)] for ts, ws in zip(cycles, words)]
    return Program(config=config, words=words, schedule=schedule, predicted_cycles=int(predicted_cycles), text=text)


def read_constants(config, entries, npz):
    """The memory image of ``entries`` (``{"slice", "bank", "addr", "key"}`` dicts, the words in ``npz``),
    checked to lie inside MEM."""
    constants = [(cm["slice"], cm["bank"], cm["addr"], npz[cm["key"]]) for cm in entries]
    check_mem_inputs(config, constants, [f"constant {cm['key']!r}" for cm in entries])
    return constants


def write_program(program, arrays):
    """``words_<p>`` and ``cycles_<p>`` of ``program`` into the dict ``arrays`` (for ``np.savez``)."""
    for p, (words, sched) in enumerate(zip(program.words, program.schedule)):
        arrays[f"words_{p}"] = np.array([int(w) for w in words], np.uint64)
        arrays[f"cycles_{p}"] = np.array([t for t, _ in sched], np.int64)


def _from_saved(cls, meta, npz):
    config = ChipConfig.from_dict(meta["config"])
    program = read_program(config, npz, meta["predicted_cycles"], meta.get("assembly", ""))
    constants = read_constants(config, meta["constants"], npz)
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
                check_mem_inputs(config, [(int(loc[0]), int(loc[1]), int(loc[2]), np.zeros((1, config.lanes),
                                                                                              np.int32))],
                                [f"input {im['name']!r}: word location {loc}"])
    layout = InputsLayout(config)
    specs = []
    for im in meta["inputs"]:
        qp = None if im["scale"] is None else QParams(float(im["scale"]), int(im["zero_point"]))
        specs.append(InputSpec(im["name"], tuple(im["shape"]), im["dtype"], qp))
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
            check_mem_inputs(config, [(s, int(b), int(a), np.zeros((n, config.lanes), np.int32))],
                            [f"output {om['name']!r}: segment {seg}"])
        outputs[om["name"]] = OutputLoc(om["tensor"], om["kind"], tuple(om["shape"]), int(om["rows"]),
                                        int(om["features"]),
                                        tuple((s, int(b), int(a), int(n)) for s, b, a, n in om["segments"]))
        batched[om["name"]] = bool(om["batched"])
    model = CompiledModel(None, config, int(meta["batch"]), program, layout, constants, outputs, [],
                          int(meta.get("matmul_items", 0)))
    return cls(model, specs, batched, meta["sram_report"])
