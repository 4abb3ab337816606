"""compiler.api (compile → CompiledProgram: run, save/load, timeline) and the conveyor compile / run commands.

A small MLP (10 → 12 → 4, ReLU, argmax) compiled for ``tiny`` with batch 8: golden runs equal
``QGraph.run_int8`` exactly in the chip's predicted cycles, a saved and loaded program gives identical
results, and one Verilator run of the compiled program equals golden.
"""
import json
import math

import numpy as np
import pytest

import compiler
from cli.main import main
from compiler import CompiledProgram
from compiler.ir import Graph
from sim.runner import RunResult

MODEL_PY = '''
import math
import numpy as np
from compiler.ir import Graph


def model():
    rng = np.random.default_rng(0)
    g = Graph()
    h = g.input("x", (None, 10))
    h = g.linear(h, rng.normal(size=(10, 12)) / math.sqrt(10), rng.normal(size=12) * 0.1, name="fc1")
    h = g.relu(h, name="relu1")
    h = g.linear(h, rng.normal(size=(12, 4)) / math.sqrt(12), rng.normal(size=4) * 0.1, name="fc2")
    g.output(h, "logits")
    g.output(g.argmax(h, name="cls"), "cls")
    return g


def example_inputs():
    return {"x": np.random.default_rng(1).normal(size=(8, 10)).astype(np.float32)}
'''


def mlp(seed=0):
    rng = np.random.default_rng(seed)
    g = Graph()
    h = g.input("x", (None, 10))
    h = g.linear(h, rng.normal(size=(10, 12)) / math.sqrt(10), rng.normal(size=12) * 0.1, name="fc1")
    h = g.relu(h, name="relu1")
    h = g.linear(h, rng.normal(size=(12, 4)) / math.sqrt(12), rng.normal(size=4) * 0.1, name="fc2")
    g.output(h, "logits")
    g.output(g.argmax(h, name="cls"), "cls")
    return g


def test_data(seed, rows=8):
    x = np.random.default_rng(seed).normal(size=(rows, 10)).astype(np.float32) * 1.5
    x.flat[0], x.flat[-1] = -50.0, 50.0            # outside the calibration range: codes -128, 127
    return x


test_data.__test__ = False


@pytest.fixture(scope="module")
def compiled():
    calib = np.random.default_rng(7).normal(size=(8, 10)).astype(np.float32)
    return compiler.compile(mlp(), {"x": calib}, config="tiny")


def assert_same(got, want):
    assert set(got) == set(want)
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


# ---- the API -------------------------------------------------------------------------------------------
def test_compile_runs_golden_exactly(compiled):
    cp = compiled
    assert isinstance(cp, CompiledProgram)
    assert cp.config.name == "tiny" and cp.batch == 8 and cp.predicted_cycles > 0
    assert cp.input_names == ["x"] and cp.output_names == ["logits", "cls"]
    for seed in (0, 1):
        x = test_data(seed)
        r = cp.run({"x": x})
        assert isinstance(r, RunResult) and r.backend == "golden" and r.match is None
        assert r.cycles == cp.predicted_cycles == r.predicted_cycles
        assert_same(r.outputs, cp.qgraph.run_int8({"x": x}))
    assert r.outputs["logits"].shape == (8, 4) and r.outputs["cls"].shape == (8,)
    rep = cp.sram_report()
    assert set(rep) == {"mem0", "mem1", "mem2", "total"}
    assert rep["total"]["used_words"] == sum(v["used_words"] for s, v in rep.items() if s != "total") > 0


def test_calibration_batch_and_config_object():
    from spec.config import PRESETS
    calib = [{"x": np.random.default_rng(s).normal(size=(20, 10)).astype(np.float32)} for s in (3, 4)]
    cp = compiler.compile(mlp(1), {"x": test_data(2, 3)}, config=PRESETS["tiny"], calibration=calib, batch=4)
    assert cp.batch == 4
    x = test_data(5, 4)
    assert_same(cp.run({"x": x}).outputs, cp.qgraph.run_int8({"x": x}))


def test_fewer_rows_are_padded_and_cut_back(compiled):
    x = test_data(3)
    full = compiled.run({"x": x}).outputs
    part = compiled.run({"x": x[:3]})
    assert part.outputs["logits"].shape == (3, 4) and part.outputs["cls"].shape == (3,)
    assert part.cycles == compiled.predicted_cycles
    for name in full:
        np.testing.assert_array_equal(part.outputs[name], full[name][:3])


@pytest.mark.parametrize("inputs, error, message", [
    ({"y": np.zeros((8, 10), np.float32)}, ValueError,
     "inputs must hold exactly the model's inputs (x), not y (missing x) (unknown y)"),
    ({}, ValueError, "inputs must hold exactly the model's inputs (x), not nothing (missing x)"),
    ({"x": np.zeros((8, 9), np.float32)}, ValueError, "not shape (8, 9)"),
    ({"x": np.zeros((0, 10), np.float32)}, ValueError, "with at least one row, not shape (0, 10)"),
    ({"x": np.zeros((8, 10), bool)}, TypeError, "not a bool array"),
    ("x", TypeError, "inputs must be a single array or tensor, a tuple of 1 array in argument order (x), or a dict "
                     "of input name to array, not str"),
    ((np.zeros((8, 10)), np.zeros((8, 10))), ValueError, "not a tuple of 2 items"),
])
def test_bad_run_inputs(compiled, inputs, error, message):
    with pytest.raises(error) as e:
        compiled.run(inputs)
    assert message in str(e.value)
    with pytest.raises(ValueError, match="backend must be one of golden, verilator, not 'rtl'"):
        compiled.run({"x": test_data(0)}, backend="rtl")


def test_compile_refuses_bad_arguments():
    x = {"x": test_data(0)}
    with pytest.raises(ValueError, match="config must be one of tiny, small"):
        compiler.compile(mlp(), x, config="huge")
    with pytest.raises(TypeError, match="model must be a compiler.ir.Graph"):
        compiler.compile(object(), x, config="tiny")
    with pytest.raises(ValueError, match="input 'x' must have shape"):
        compiler.compile(mlp(), {"x": np.zeros((8, 3), np.float32)}, config="tiny")


def test_save_load_round_trip(compiled, tmp_path):
    out = compiled.save(tmp_path / "prog")
    assert sorted(p.name for p in out.iterdir()) == ["data.npz", "program.json"]
    meta = json.loads((out / "program.json").read_text())
    assert meta["format"] == "conveyor-compiled-program" and meta["config"]["name"] == "tiny"
    assert meta["predicted_cycles"] == compiled.predicted_cycles and meta["assembly"] == compiled.program.text
    assert meta["inputs"][0]["name"] == "x" and meta["inputs"][0]["shape"] == [None, 10]
    with np.load(out / "data.npz", allow_pickle=False) as npz:   # every array loads without pickle
        for key in npz.files:
            assert npz[key].dtype != object
    cp = CompiledProgram.load(out)
    assert cp.config == compiled.config and cp.batch == 8 and cp.predicted_cycles == compiled.predicted_cycles
    assert cp.program.words == compiled.program.words and cp.program.schedule == compiled.program.schedule
    assert cp.sram_report() == compiled.sram_report()
    for x in (test_data(4), test_data(5)[:5]):
        a, b = compiled.run({"x": x}), cp.run({"x": x})
        assert a.cycles == b.cycles
        assert_same(b.outputs, a.outputs)
    with pytest.raises(ValueError, match="is not a compiled program: program.json is missing"):
        CompiledProgram.load(tmp_path)


def test_timeline_png(compiled, tmp_path):
    path = compiled.timeline(tmp_path / "t" / "timeline.png", title="mlp")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


# ---- the CLI -------------------------------------------------------------------------------------------
def test_cli_compile_and_run_golden(tmp_path, capsys):
    model = tmp_path / "model.py"
    model.write_text(MODEL_PY)
    out, png, cj = tmp_path / "out", tmp_path / "t.png", tmp_path / "c.json"
    assert main(["compile", str(model), "--config", "tiny", "-o", str(out), "--timeline", str(png),
                 "--json", str(cj)]) == 0
    text = capsys.readouterr().out
    cp = CompiledProgram.load(out)
    assert f"{cp.predicted_cycles} predicted cycles" in text and "SRAM" in text and png.is_file()
    c = json.loads(cj.read_text())
    assert c["predicted_cycles"] == cp.predicted_cycles and c["batch"] == 8 and c["config"] == "tiny"

    x = test_data(6, 6)
    xs, ys, rj = tmp_path / "x.npz", tmp_path / "y.npz", tmp_path / "r.json"
    np.savez(xs, x=x)
    assert main(["run", str(out), "--inputs", str(xs), "--backend", "golden", "--outputs", str(ys),
                 "--json", str(rj)]) == 0
    text = capsys.readouterr().out
    assert f"{cp.predicted_cycles} cycles" in text and "output logits: int8 (6, 4)" in text
    r = json.loads(rj.read_text())
    assert r == {"cycles": cp.predicted_cycles, "predicted_cycles": cp.predicted_cycles, "backend": "golden",
                 "run_cycles": [cp.predicted_cycles], "outputs": {"logits": [6, 4], "cls": [6]}, "config": "tiny",
                 "chips": 1}
    want = compiler.compile(_load(model).model(), _load(model).example_inputs(), config="tiny").run({"x": x})
    with np.load(ys, allow_pickle=False) as y:
        assert_same({k: y[k] for k in y.files}, want.outputs)


def _load(path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("_test_model", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


@pytest.mark.parametrize("source, message", [
    (None, "cannot read model {path}: no such file"),
    ("def model():\n    return 1\n", "{path} must define the functions model() and example_inputs() (missing "
                                      "example_inputs())"),
    ("x = 1\n", "{path} must define the functions model() and example_inputs() (missing model() and "
                "example_inputs())"),
    ("raise RuntimeError('no\\nweights')\n", "{path}: loading it raised RuntimeError (line 1): no weights"),
    ("def model(:\n", "{path}: loading it raised SyntaxError"),
    (MODEL_PY.replace("    g = Graph()", "    g = Graph()\n    1 / 0"),
     "{path}: model() raised ZeroDivisionError (line 10): division by zero"),
    (MODEL_PY.replace("def example_inputs():\n", "def example_inputs():\n    return [1]\n"),
     "{path}: example_inputs must be a single array or tensor, a tuple of 1 array in argument order (x), or a dict "
     "of input name to array, not a list of 1 item"),
    (MODEL_PY.replace("def example_inputs():\n", "def example_inputs():\n    return 'x'\n"),
     "{path}: example_inputs() must return a tuple of arrays in argument order, a single array or tensor "
     "(one-input model), or a dict of input name to array, not str"),
    (MODEL_PY.replace("(8, 10)", "(8, 3)"), "{path}: input 'x' must have shape (None, 10), not (8, 3)"),
])
def test_cli_compile_bad_model(tmp_path, capsys, source, message):
    path = tmp_path / "model.py"
    if source is not None:
        path.write_text(source)
    assert main(["compile", str(path), "--config", "tiny", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("conveyor: error: " + message.format(path=path)) and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("arrays, extra, message", [
    ({"y": np.zeros((8, 10), np.float32)}, [],
     "key 'y' is not an input of the compiled program (inputs: x (batch, 10))"),
    ({"x": np.zeros((8, 10), np.int8)}, [], "key 'x' must be a float array (float16, float32 or float64), not int8"),
    ({"x": np.zeros((8, 7), np.float32)}, [], "input 'x' must be a float array of shape (None, 10) with at least one "
                                              "row, not shape (8, 7)"),
    ({}, [], "key 'x' is missing (inputs: x (batch, 10))"),
    (None, [], "argument --inputs: needed to run the compiled program"),
    ({"x": np.zeros((8, 10), np.float32)}, ["--config", "tiny"], "argument --config: applies to an assembly program"),
])
def test_cli_run_bad_inputs(compiled, tmp_path, capsys, arrays, extra, message):
    out = compiled.save(tmp_path / "out")
    argv = ["run", str(out), "--backend", "golden"] + extra
    if arrays is not None:
        np.savez(tmp_path / "x.npz", **arrays)
        argv += ["--inputs", str(tmp_path / "x.npz")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("conveyor: error: ") and message in err and err.count("\n") == 1


def test_cli_run_assembly_refuses_compiled_options(tmp_path, capsys):
    prog = tmp_path / "p.s"
    prog.write_text(".slice mem0\n    HALT\n")
    assert main(["run", str(prog), "--config", "tiny", "--backend", "golden"]) == 2
    assert capsys.readouterr().err == ("conveyor: error: argument --backend: applies to a compiled program folder "
                                       "(conveyor compile), not to assembly\n")


# ---- the RTL -------------------------------------------------------------------------------------------
def test_verilator_run_equals_golden(compiled):
    x = test_data(8)
    gold = compiled.run({"x": x})
    rtl = compiled.run({"x": x}, backend="verilator")
    assert rtl.backend == "verilator" and rtl.match is True and rtl.mismatch is None
    assert rtl.cycles == compiled.predicted_cycles
    assert_same(rtl.outputs, gold.outputs)
    assert_same(rtl.outputs, compiled.qgraph.run_int8({"x": x}))


def test_compile_torch_module():
    import torch  # a pinned test dependency (requirements.txt): the front end is tested, never skipped
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(10, 12), torch.nn.ReLU(), torch.nn.Linear(12, 4))
    x = test_data(9)
    cp = compiler.compile(net, (x,), config="tiny")          # a tuple in argument order
    name = cp.input_names[0]
    r = cp.run({name: x})
    assert r.cycles == cp.predicted_cycles
    assert_same(r.outputs, cp.qgraph.run_int8({name: x}))


def test_embedding_model_through_the_api_and_save_load(tmp_path):
    """Embedding ids (an integer input) gathered on the host, then linear → relu → linear → argmax: golden
    equals the int8 reference, also after save/load."""
    rng = np.random.default_rng(3)
    g = Graph()
    ids = g.input("ids", (None, 2), dtype="int64")
    e = g.embedding(ids, rng.normal(size=(7, 3)), name="emb")
    h = g.reshape(e, (-1, 6), name="flat")
    h = g.relu(g.linear(h, rng.normal(size=(6, 5)), rng.normal(size=5) * 0.1, name="fc1"), name="r1")
    h = g.linear(h, rng.normal(size=(5, 4)), rng.normal(size=4) * 0.1, name="fc2")
    g.output(g.argmax(h, name="cls"), "cls")
    x = rng.integers(0, 7, (6, 2))
    cp = compiler.compile(g, {"ids": x}, config="tiny", calibration={"ids": rng.integers(0, 7, (40, 2))})
    want = cp.qgraph.run_int8({"ids": x})
    r = cp.run({"ids": x[:4]})
    assert r.cycles == cp.predicted_cycles
    np.testing.assert_array_equal(r.outputs["cls"], want["cls"][:4])
    loaded = compiler.CompiledProgram.load(cp.save(tmp_path / "emb"))
    np.testing.assert_array_equal(loaded.run({"ids": x}).outputs["cls"], want["cls"])
    with pytest.raises(TypeError, match="input 'ids' must be an integer array"):
        cp.run({"ids": x.astype(np.float32)})
