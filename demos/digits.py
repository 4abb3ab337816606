"""The compiler's end-to-end demo: an MLP trained with numpy on scikit-learn's 8×8 digits, quantized to int8,
lowered to one chip program, and run on the chip (Verilator RTL or the golden model) over the whole test split.

* ``load_split(seed=0)``: the 1797 digits of ``sklearn.datasets.load_digits`` (bundled with scikit-learn, no
  download), features divided by 16 (so in [0, 1]), float32; a seeded permutation puts the first 80 %
  (1437 samples) in the training set and the other 20 % (360) in the test set.
* ``train_mlp(X, y, hidden=32, epochs=60, seed=0)``: 64 → ``hidden`` (ReLU) → 10, softmax cross-entropy,
  Adam on minibatches of 32, He initialisation; deterministic given the seed (numpy only, about a second).
* ``build_graph(weights)``: the ``compiler.ir.Graph`` ``x`` (None, 64) → fc1 → relu1 → fc2 → outputs
  ``class`` (argmax) and ``logits``.
* ``run_demo(config="small", batch=64, backend="verilator", seed=0)``: the story a user would write: load
  the data, train, build the graph, ``compiler.compile`` it (calibration: the training set) at ``batch`` and at
  batch 1, ``sim.run`` the whole test split (split into runs of ``batch`` rows, the last one padded with zero
  rows whose results are dropped) and one single sample at batch 1 on the backend, and compare every chip
  prediction with ``QGraph.run_int8``. Returns the report (a dict: see ``run_demo``).
"""
import time

import numpy as np

import compiler
import sim
from compiler.ir import Graph
from sim import progress
from sim.runner import BACKENDS
from spec.config import PRESETS, ChipConfig

__all__ = ["load_split", "train_mlp", "build_graph", "run_demo", "BACKENDS", "TRAIN_FRACTION"]

TRAIN_FRACTION = 0.8


def load_split(seed=0):
    """``(X_train, y_train, X_test, y_test)``: features in [0, 1] float32 (pixels / 16), labels int64; a
    seeded permutation, 80 % train (1437) / 20 % test (360)."""
    from sklearn.datasets import load_digits
    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(X))
    n_train = int(TRAIN_FRACTION * len(X))          # 1437 of 1797
    tr, te = perm[:n_train], perm[n_train:]
    return X[tr], y[tr], X[te], y[te]


def train_mlp(X, y, hidden=32, epochs=60, seed=0, lr=3e-3, batch_size=32, weight_decay=0.0):
    """Train 64 → hidden → 10 (ReLU, softmax cross-entropy) with Adam: ``{"W1" (64, hidden), "b1", "W2"
    (hidden, 10), "b2"}`` float32 (``W`` is (in, out), as ``Graph.linear`` takes it)."""
    rng = np.random.default_rng(seed)
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.int64)
    n, k = X.shape
    classes = 10
    p = {"W1": rng.normal(size=(k, hidden)) * np.sqrt(2.0 / k), "b1": np.zeros(hidden),
         "W2": rng.normal(size=(hidden, classes)) * np.sqrt(2.0 / hidden), "b2": np.zeros(classes)}
    m = {key: np.zeros_like(v) for key, v in p.items()}
    v = {key: np.zeros_like(val) for key, val in p.items()}
    b1, b2, eps, t = 0.9, 0.999, 1e-8, 0
    onehot = np.eye(classes)[y]
    for _ in range(epochs):
        order = rng.permutation(n)
        for s in range(0, n, batch_size):
            idx = order[s:s + batch_size]
            xb, yb = X[idx], onehot[idx]
            z1 = xb @ p["W1"] + p["b1"]
            h = np.maximum(z1, 0)
            logits = h @ p["W2"] + p["b2"]
            logits -= logits.max(axis=1, keepdims=True)
            prob = np.exp(logits)
            prob /= prob.sum(axis=1, keepdims=True)
            dlog = (prob - yb) / len(idx)
            g = {"W2": h.T @ dlog, "b2": dlog.sum(axis=0)}
            dh = (dlog @ p["W2"].T) * (z1 > 0)
            g["W1"] = xb.T @ dh
            g["b1"] = dh.sum(axis=0)
            t += 1
            for key in p:
                gk = g[key] + (weight_decay * p[key] if key.startswith("W") else 0.0)
                m[key] = b1 * m[key] + (1 - b1) * gk
                v[key] = b2 * v[key] + (1 - b2) * gk * gk
                mh = m[key] / (1 - b1 ** t)
                vh = v[key] / (1 - b2 ** t)
                p[key] = p[key] - lr * mh / (np.sqrt(vh) + eps)
    return {key: val.astype(np.float32) for key, val in p.items()}


def build_graph(weights):
    """``x`` (None, 64) → linear fc1 → relu1 → linear fc2 → outputs ``class`` (argmax, int32) and ``logits``."""
    g = Graph()
    x = g.input("x", (None, weights["W1"].shape[0]))
    h = g.relu(g.linear(x, weights["W1"], weights["b1"], name="fc1"), name="relu1")
    logits = g.linear(h, weights["W2"], weights["b2"], name="fc2")
    g.output(g.argmax(logits, name="cls"), "class")
    g.output(logits, "logits")
    return g


def run_demo(config="small", batch=64, backend="verilator", seed=0, *, hidden=32, epochs=60, limit=None,
             build_dir=None, chips=1, split="auto"):
    """Train, quantize, compile and run the digits MLP on the chip (module docstring). ``limit``: only the
    first ``limit`` test samples (tests); ``chips``: more than 1 compiles the MLP on a line of that many chips
    (``compiler.compile(..., chips=, split=)``: ``pipeline``, the layers divided among them and the activations
    sent over the links; ``tensor``, the hidden layer's columns divided and the partial sums all-reduced;
    ``auto``, the fewer predicted cycles; the report then has ``chips``, ``chip_cycles``, ``split`` and
    ``split_reason``); ``build_dir``: the build root
    (``sim.run``'s: default ``$CONVEYOR_BUILD`` or ``build/``; Verilator models in its ``sim/``).

    The report: ``samples``, ``train_samples``, ``float_accuracy``, ``int8_accuracy``, ``chip_accuracy``,
    ``mismatches`` (chip predictions ≠ ``run_int8``), ``rtl_matches_golden`` (verilator: every run; golden:
    None), ``cycles_per_batch`` (the chip's, every batch equal to ``predicted_cycles``), ``cycles_per_inference``,
    ``utilization``, ``inferences_per_second`` (at ``clock_mhz``, full batches), ``compile_seconds`` (quantize +
    lower), ``batch1`` (the same for batch 1, one sample run), ``sram`` (bytes used), ``match`` (everything
    agreed)."""
    cfg = PRESETS[config] if isinstance(config, str) and config in PRESETS else config
    if not isinstance(cfg, ChipConfig):
        raise ValueError(f"config must be a ChipConfig or one of {', '.join(PRESETS)}, not {config!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if not isinstance(batch, (int, np.integer)) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, not {batch!r}")
    if backend == "verilator":
        cfg = cfg.check_rtl()
    t_start = time.perf_counter()

    # the data and a float model trained on it
    Xtr, ytr, Xte, yte = load_split(seed)
    if limit is not None:
        Xte, yte = Xte[:limit], yte[:limit]
    t0 = time.perf_counter()
    with progress.step(f"training the digits MLP (numpy, {epochs} epochs on {len(Xtr)} samples)"):
        weights = train_mlp(Xtr, ytr, hidden=hidden, epochs=epochs, seed=seed)
    train_seconds = time.perf_counter() - t0
    g = build_graph(weights)
    float_pred = g.run_float({"x": Xte})["class"]

    # compiled for the chip at the batch and at batch 1, calibrated on the training set
    prog = compiler.compile(g, Xte[:batch], config=cfg, calibration=Xtr, batch=batch, chips=chips, split=split)
    prog1 = compiler.compile(g, Xte[:1], config=cfg, calibration=Xtr, batch=1, chips=chips, split=split)
    int8_pred = prog.qgraph.run_int8({"x": Xte})["class"]

    # run over the whole test split (sim.run splits it into runs of the batch), then one sample at batch 1
    t0 = time.perf_counter()
    res = sim.run(prog, Xte, backend=backend, check=False, build_dir=build_dir)
    res1 = sim.run(prog1, Xte[:1], backend=backend, check=False, build_dir=build_dir)
    run_seconds = time.perf_counter() - t0
    chip_pred = res.outputs["class"].astype(np.int64)
    mismatches = int(np.sum(chip_pred != int8_pred))
    b1_mismatch = int(res1.outputs["class"][0] != int8_pred[0])

    # the report
    clock = cfg.clock_mhz * 1e6
    pred, pred1 = prog.predicted_cycles, prog1.predicted_cycles
    cycles = res.run_cycles
    reps = prog.sram_report() if chips > 1 else [prog.sram_report()]
    sram = {k: sum(r["total"][k] for r in reps) for k in ("used_bytes", "free_bytes")}
    rtl_ok = None if backend == "golden" else bool(res.match and res1.match)
    report = {
        "config": prog.config.name, "backend": backend, "chips": chips,
        "chip_cycles": list(prog.chip_cycles) if chips > 1 else [pred], "batch": int(batch), "seed": seed,
        "split": prog.split if chips > 1 else None, "split_reason": prog.reason if chips > 1 else "",
        "hidden": hidden,
        "epochs": epochs, "clock_mhz": cfg.clock_mhz,
        "train_samples": int(len(Xtr)), "samples": int(len(Xte)), "batches": len(cycles),
        "float_accuracy": float(np.mean(float_pred == yte)),
        "int8_accuracy": float(np.mean(int8_pred == yte)),
        "chip_accuracy": float(np.mean(chip_pred == yte)),
        "float_int8_disagreements": int(np.sum(float_pred != int8_pred)),
        "mismatches": mismatches,
        "rtl_matches_golden": rtl_ok,
        "first_rtl_mismatch": res.mismatch or res1.mismatch,
        "predicted_cycles": pred,
        "cycles_per_batch": cycles[0] if len(set(cycles)) == 1 else cycles,
        "cycles_equal_predicted": all(c == pred for c in cycles) and res1.cycles == pred1,
        "cycles_per_inference": pred / batch,
        "matmul_items": int(np.sum(prog.model.matmul_items)),
        "utilization": prog.utilization,
        "inferences_per_second": clock * batch / pred,
        "total_cycles": int(res.cycles),
        "effective_inferences_per_second": clock * len(Xte) / res.cycles,
        "program_words": int(sum(len(w) for p in (prog.programs if chips > 1 else [prog.program])
                                 for w in p.words)),
        "sram_used_bytes": sram["used_bytes"], "sram_free_bytes": sram["free_bytes"],
        "weight_bytes": prog.qgraph.weight_bytes,
        "batch1": {"predicted_cycles": pred1, "cycles": int(res1.cycles), "cycles_per_inference": pred1,
                   "utilization": prog1.utilization, "inferences_per_second": clock / pred1,
                   "mismatches": b1_mismatch, "rtl_matches_golden": None if rtl_ok is None else bool(res1.match),
                   "compile_seconds": sum(prog1.timings.values())},
        "compile_seconds": sum(prog.timings.values()),
        "quantize_seconds": prog.timings["quantize"], "lower_seconds": prog.timings["lower"],
        "train_seconds": train_seconds,
        "run_seconds": run_seconds, "build_seconds": res.build_seconds + res1.build_seconds,
        "total_seconds": time.perf_counter() - t_start,
    }
    report["match"] = (mismatches == 0 and b1_mismatch == 0 and report["cycles_equal_predicted"]
                       and report["rtl_matches_golden"] is not False)
    return report
