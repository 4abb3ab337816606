"""The saved form of an ``LMProgram``: a folder of ``lm.json`` and ``data.npz``, no pickle anywhere.

``lm.json``: format and version, ``config.to_dict()``, the context and vocabulary, the decode step (predicted
cycles, MXU items, the constants' locations, the host's per-step data: the ids input and its embedding view,
the position tables, the masks' and new-key rows' segments, the logits' location), and the int8 reference
(``QGraph``: every step's op, name, inputs and integer parameters, every tensor's scale and zero point, the
ids input's shape). Arrays (program words, constants, tables, weights) go to ``data.npz`` by key and are read
back with ``allow_pickle=False``. Parameters are encoded by kind: numbers, strings, lists, dicts, arrays
(``{"array": key}``), ``QParams`` (``{"qparams": [scale, zp]}``) and ``Requant`` (``{"requant": …}``); anything
else is refused when saving. ``load_lm`` checks the program words and MEM locations as ``compiler.saved``
does and names what is missing or wrong in one ``ValueError``. A system of chips (``compile_lm(chips=N)``) keeps
chip 0's step and data where one chip's are, the other chips' in ``parts`` (arrays under ``c<k>_``) and the
split's description in ``split``; a one-chip save has an empty ``parts``, and an older one none (read as one
chip).
"""
import json
from pathlib import Path

import numpy as np

from spec.config import ChipConfig

from ..lower.model import CompiledModel, InputsLayout, OutputLoc
from ..quantize import QGraph, QParams, QStep, Requant
from ..saved import load_saved, read_constants, read_program, write_program
from .decode import StepData

__all__ = ["LM_FORMAT", "LM_FORMAT_VERSION", "save_lm", "load_lm"]

LM_FORMAT = "conveyor-language-model"
LM_FORMAT_VERSION = 2


class _Enc:
    def __init__(self):
        self.arrays = {}

    def __call__(self, v, key):
        if isinstance(v, np.ndarray):
            k = f"a{len(self.arrays)}_{key}"
            self.arrays[k] = v
            return {"array": k}
        if isinstance(v, QParams):
            return {"qparams": [float(v.scale), int(v.zp)]}
        if isinstance(v, Requant):
            return {"requant": {"mult": self(np.asarray(v.mult), key + ".mult"), "shift": int(v.shift),
                                "zp": int(v.zp), "relu": bool(v.relu),
                                "real": None if v.real is None else self(np.asarray(v.real), key + ".real")}}
        if isinstance(v, dict):
            return {"dict": {str(k): self(x, f"{key}.{k}") for k, x in v.items()}}
        if isinstance(v, (list, tuple)):
            return {"list": [self(x, f"{key}.{i}") for i, x in enumerate(v)]}
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if isinstance(v, (int, np.integer)):
            return int(v)
        if isinstance(v, (float, np.floating)):
            return float(v)
        if v is None or isinstance(v, str):
            return v
        raise TypeError(f"{key}: cannot save a {type(v).__name__}")


def _dec(v, npz):
    if isinstance(v, dict):
        if "array" in v:
            return npz[v["array"]]
        if "qparams" in v:
            return QParams(float(v["qparams"][0]), int(v["qparams"][1]))
        if "requant" in v:
            r = v["requant"]
            return Requant(_dec(r["mult"], npz), int(r["shift"]), int(r["zp"]), bool(r["relu"]),
                           None if r["real"] is None else _dec(r["real"], npz))
        if "dict" in v:
            return {k: _dec(x, npz) for k, x in v["dict"].items()}
        if "list" in v:
            return tuple(_dec(x, npz) for x in v["list"])
        raise ValueError(f"unknown encoded value {sorted(v)}")
    return v


class _Inputs:
    """What ``QGraph.run_int8`` needs of the float graph once loaded: the ids input's name and shape."""

    class _T:
        def __init__(self, name, shape):
            self.name, self.shape, self.dtype = name, tuple(shape), "int64"

    def __init__(self, name, shape):
        self.inputs = [self._T(name, shape)]

    def check_inputs(self, inputs):
        (t,) = self.inputs
        if not isinstance(inputs, dict) or set(inputs) != {t.name}:
            raise ValueError(f"inputs must be {{{t.name!r}: ids}}, not {inputs!r}")
        x = np.asarray(inputs[t.name])
        if x.ndim != len(t.shape) or x.shape[1:] != t.shape[1:] or x.dtype.kind not in "iu":
            raise ValueError(f"input {t.name!r} must be integer ids of shape (B, {t.shape[1]}), not "
                             f"{x.dtype} {x.shape}")
        return {t.name: x}


def _segs(segments):
    return [[s, int(b), int(a), int(n)] for s, b, a, n in segments]


class _Prefixed:
    """The arrays of ``npz`` whose keys start with ``prefix``, by the rest of their key (a chip's part)."""

    def __init__(self, npz, prefix):
        self.npz, self.prefix = npz, prefix

    def __getitem__(self, key):
        return self.npz[self.prefix + key]


def _part(m, data, enc, prefix):
    """A chip's decode step and host data as ``lm.json`` keeps them (its arrays under ``prefix``)."""
    arrays = {}
    write_program(m.program, arrays)
    enc.arrays.update({prefix + k: v for k, v in arrays.items()})
    consts = []
    for i, (s, b, a, words) in enumerate(m.constants):
        enc.arrays[f"{prefix}const_{i}"] = np.asarray(words)
        consts.append({"slice": s, "bank": int(b), "addr": int(a), "key": f"const_{i}"})
    out = data.logits
    return {"step": {"predicted_cycles": int(m.program.predicted_cycles), "matmul_items": int(m.matmul_items),
                     "constants": consts, "assembly": m.program.text},
            "data": {"token": _segs(data.token), "emb_words": int(data.emb_words), "vocab": int(data.vocab),
                     "pick": data.pick,
                     "logits": {"tensor": out.tensor, "shape": [int(x) for x in out.shape], "rows": int(out.rows),
                                "features": int(out.features), "segments": _segs(out.segments)}}}


def save_lm(lm, dir):
    """Write ``lm`` as ``lm.json`` and ``data.npz`` into the folder ``dir``; returns its Path. A system's chip 0
    is saved as one chip is; chips 1 … N-1 in ``parts`` (their arrays' keys prefixed ``c<k>_``)."""
    d = Path(dir)
    d.mkdir(parents=True, exist_ok=True)
    enc = _Enc()
    q = lm.qgraph
    inp = q.graph.inputs[0]
    meta = {
        "format": LM_FORMAT, "version": LM_FORMAT_VERSION, "config": lm.config.to_dict(),
        "context": lm.context, "vocab": lm.vocab, "timings": lm.timings, "shape": lm.shape,
        **_part(lm.model, lm.data, enc, ""),
        "parts": [_part(m, data, enc, f"c{k}_") for k, (m, data) in enumerate(lm.parts) if k],
        "split": list(lm.split),
        "reference": {"input": inp.name, "input_shape": [None if x is None else int(x) for x in inp.shape],
                      "outputs": dict(q.outputs),
                      "qparams": {k: enc(v, "qp") for k, v in q.qparams.items()},
                      "steps": [{"op": st.op, "name": st.name, "inputs": list(st.inputs), "fused": list(st.fused),
                                 "params": enc(st.params, st.name)} for st in q.steps]},
    }
    (d / "lm.json").write_text(json.dumps(meta) + "\n")
    np.savez(d / "data.npz", **enc.arrays)
    return d


def load_lm(dir, cls):
    """The ``cls`` (``LMProgram``) saved in folder ``dir``; ``ValueError`` naming what is missing or wrong."""
    return load_saved(dir, "lm.json", LM_FORMAT, LM_FORMAT_VERSION, "language model", "a saved language model",
                      lambda meta, npz: _from_saved(cls, meta, npz))


def _part_from(config, context, part, npz):
    st = part["step"]
    program = read_program(config, npz, st["predicted_cycles"], st.get("assembly", ""))
    constants = read_constants(config, st["constants"], npz)
    dm = part["data"]
    lo = dm["logits"]
    out = OutputLoc(lo["tensor"], "codes", tuple(lo["shape"]), int(lo["rows"]), int(lo["features"]),
                    tuple(tuple(s) for s in lo["segments"]))
    model = CompiledModel(None, config, 1, program, InputsLayout(config), constants, {"output": out}, [],
                          int(st["matmul_items"]))
    data = StepData(config, context, token=tuple(tuple(x) for x in dm["token"]), emb_words=int(dm["emb_words"]),
                    vocab=int(dm["vocab"]), logits=out, pick=dm["pick"])
    return model, data


def _from_saved(cls, meta, npz):
    config = ChipConfig.from_dict(meta["config"])
    context = int(meta["context"])
    parts = [_part_from(config, context, meta, npz)]
    parts += [_part_from(config, context, part, _Prefixed(npz, f"c{k + 1}_"))
              for k, part in enumerate(meta.get("parts", []))]
    ref = meta["reference"]
    steps = [QStep(s["op"], s["name"], tuple(s["inputs"]), tuple(s["fused"]), _dec(s["params"], npz))
             for s in ref["steps"]]
    qgraph = QGraph.__new__(QGraph)
    qgraph.graph = _Inputs(ref["input"], ref["input_shape"])
    qgraph.steps = steps
    qgraph.qparams = {k: _dec(v, npz) for k, v in ref["qparams"].items()}
    qgraph.outputs = dict(ref["outputs"])
    model, data = parts[0]
    return cls(config, context, int(meta["vocab"]), qgraph, model, data, meta.get("timings", {}),
               meta.get("shape"), parts=parts, split=meta.get("split", ()))
