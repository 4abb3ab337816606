"""demos.digits: the end-to-end demo (numpy MLP on scikit-learn's 8×8 digits → int8 → chip program).

The golden chip runs the first 128 test samples (two batches of 64): every prediction equals
``QGraph.run_int8``, the float model reaches 95 %, int8 stays within 2 points of it, and the chip's cycle count
is the compiler's prediction. One batch of 64 runs on the ``small`` chip's Verilator model (built once, reused
from build/sim) and agrees with the golden model word for word. The compile time (quantize + lower) is printed
as a benchmark figure, not asserted.
"""
import json
import time

import numpy as np
import pytest

from compiler.lower import lower
from compiler.quantize import quantize
from demos.digits import build_graph, load_split, run_demo, train_mlp
from spec.config import PRESETS

SMALL = PRESETS["small"]
BATCH = 64


@pytest.fixture(scope="module")
def model():
    Xtr, ytr, Xte, yte = load_split(0)
    w = train_mlp(Xtr, ytr, seed=0)
    g = build_graph(w)
    t0 = time.perf_counter()
    qg = quantize(g, {"x": Xtr})
    cm = lower(qg, SMALL, BATCH)
    print(f"compile (quantize + lower, small, batch {BATCH}): {time.perf_counter() - t0:.3f} s")
    return Xtr, ytr, Xte, yte, g, qg, cm


def test_split_is_deterministic_and_scaled():
    Xtr, ytr, Xte, yte = load_split(0)
    assert (len(Xtr), len(Xte)) == (1437, 360)
    assert Xtr.dtype == np.float32 and 0.0 <= Xtr.min() and Xtr.max() <= 1.0
    again = load_split(0)
    assert all(np.array_equal(a, b) for a, b in zip((Xtr, ytr, Xte, yte), again))
    assert not np.array_equal(load_split(1)[1], ytr)


def test_training_is_deterministic():
    Xtr, ytr, _, _ = load_split(0)
    a, b = train_mlp(Xtr[:256], ytr[:256], epochs=2, seed=3), train_mlp(Xtr[:256], ytr[:256], epochs=2, seed=3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a["W1"].shape == (64, 32) and a["W2"].shape == (32, 10)


def test_golden_subset_matches_int8_reference():
    r = run_demo("small", batch=BATCH, backend="golden", limit=128)
    print(json.dumps({k: v for k, v in r.items() if k != "batch1"}, indent=1))
    print(f"compile (quantize + lower): {r['compile_seconds']:.3f} s")
    assert r["samples"] == 128 and r["batches"] == 2
    assert r["mismatches"] == 0 and r["batch1"]["mismatches"] == 0
    assert r["float_accuracy"] >= 0.95
    assert abs(r["int8_accuracy"] - r["float_accuracy"]) <= 0.02
    assert r["chip_accuracy"] == r["int8_accuracy"]
    assert r["cycles_per_batch"] == r["predicted_cycles"] and r["cycles_equal_predicted"]
    assert r["batch1"]["cycles"] == r["batch1"]["predicted_cycles"]
    assert r["cycles_per_inference"] == pytest.approx(r["predicted_cycles"] / BATCH)
    assert r["match"] and r["rtl_matches_golden"] is None


def test_padded_last_batch():
    """A batch that is not full is padded on the host; the padding rows' results are dropped."""
    r = run_demo("small", batch=48, backend="golden", limit=100, epochs=5)
    assert r["batches"] == 3 and r["samples"] == 100 and r["mismatches"] == 0 and r["match"]


def test_full_split_float_accuracy(model):
    Xtr, ytr, Xte, yte, g, qg, cm = model
    f = g.run_float({"x": Xte})["class"]
    q = qg.run_int8({"x": Xte})["class"]
    assert np.mean(f == yte) >= 0.95
    assert abs(np.mean(q == yte) - np.mean(f == yte)) <= 0.02


def test_bad_arguments():
    with pytest.raises(ValueError, match="backend"):
        run_demo(backend="fpga")
    with pytest.raises(ValueError, match="batch"):
        run_demo(batch=0, backend="golden")


def test_cli_golden(tmp_path, capsys):
    from cli.main import main
    out = tmp_path / "digits.json"
    assert main(["demo", "digits", "--backend", "golden", "--batch", "128", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "equal QGraph.run_int8 for every sample" in text and "batch 1" in text
    r = json.loads(out.read_text())
    assert r["samples"] == 360 and r["mismatches"] == 0 and r["match"]


def test_verilator_one_batch_equals_golden(model):
    """One batch of 64 test samples on the small chip's RTL: RTL == golden (every MEM word, cycles), the
    predictions equal run_int8, the cycles the prediction."""
    from sim.chip_run import run_program
    from sim.chip_verilator import ChipSimulator
    Xtr, ytr, Xte, yte, g, qg, cm = model
    xb = Xte[:BATCH]
    inputs = cm.constants + cm.pack_inputs(cm.quantize_inputs({"x": xb}))
    res = run_program(SMALL, cm.program.words, inputs, simulator=ChipSimulator(SMALL))
    assert res.match, res.mismatch
    assert res.error is None and res.cycles == cm.program.predicted_cycles
    got = cm.unpack_outputs(res.mems)
    want = qg.run_int8({"x": xb})
    np.testing.assert_array_equal(got["class"], want["class"])
    np.testing.assert_array_equal(got["logits"], want["logits"])


def test_the_demo_on_two_chips_in_pipeline_parallel_on_golden():
    """The MLP's layers divided between two chips: every prediction still equals QGraph.run_int8, every run
    takes the predicted cycles, and the second chip, which waits for the first's activations over the link,
    finishes last."""
    r = run_demo("small", batch=48, backend="golden", limit=100, epochs=5, chips=2, split="pipeline")
    assert r["match"] and r["mismatches"] == 0 and r["cycles_equal_predicted"]
    assert r["chips"] == 2 and r["config"] == "small_link" and len(r["chip_cycles"]) == 2
    assert r["chip_cycles"][0] < r["chip_cycles"][1] == r["predicted_cycles"] and r["split"] == "pipeline"


def test_the_demo_on_two_chips_in_tensor_parallel_on_golden():
    """The hidden layer's columns divided between two chips, the partial sums all-reduced: the predictions
    equal QGraph.run_int8, and auto takes it over the pipeline, whose chips work one after the other."""
    r = run_demo("small", batch=48, backend="golden", limit=100, epochs=5, chips=2)
    assert r["match"] and r["mismatches"] == 0 and r["cycles_equal_predicted"]
    assert r["split"] == "tensor" and r["split_reason"].startswith("tensor chosen: pipeline: ")
    one = run_demo("small", batch=48, backend="golden", limit=100, epochs=5)
    assert r["predicted_cycles"] < one["predicted_cycles"]
