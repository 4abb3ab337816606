"""One rule for a model's inputs (``compiler.inputs``), tried as a PyTorch user writes them.

``compile``'s ``example_inputs`` and ``calibration``, ``run``'s inputs (``sim.run`` and ``program.run``) and a
``MODEL.py``'s ``example_inputs()`` each take a tuple in argument order, one array or tensor for a one-input
model, or a dict by input name; more rows than the compiled batch run as several runs, each taking the
predicted cycles, whose outputs equal the int8 reference on all the rows at once.
"""
import numpy as np
import pytest
import torch  # a pinned test dependency (requirements.txt)

import compiler
import sim
from cli.main import main
from compiler.inputs import named_inputs
from compiler.ir import Graph
from compiler.program import CompiledProgram


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(10, 12), torch.nn.ReLU(), torch.nn.Linear(12, 4))


def _data(seed, rows):
    return np.random.default_rng(seed).normal(size=(rows, 10)).astype(np.float32)


def _same(got, want):
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=f"output {k}")


@pytest.fixture(scope="module")
def torch_program():
    """``compile(net, (x,), calibration=X_train)`` with torch tensors, as the issue tried it."""
    x = torch.from_numpy(_data(1, 4))
    X_train = torch.from_numpy(_data(2, 64))
    return compiler.compile(_net(), (x,), config="tiny", calibration=X_train)


def test_torch_tuple_and_tensor_calibration(torch_program):
    cp = torch_program
    assert cp.batch == 4
    x = _data(3, 4)
    want = cp.qgraph.run_int8({cp.input_names[0]: x})
    for form in ((x,), [x], x, torch.from_numpy(x), {cp.input_names[0]: x}, (torch.from_numpy(x),)):
        r = sim.run(cp, form)
        assert r.cycles == r.predicted_cycles == cp.predicted_cycles and r.runs == 1
        _same(r.outputs, want)
    _same(cp.run((x,)).outputs, want)            # the convenience reaches sim.run through compiler.runners


def test_more_rows_than_the_batch_run_as_several_runs(torch_program):
    cp = torch_program
    X = _data(4, 11)                              # 4 + 4 + 3 rows
    r = sim.run(cp, X)
    assert r.runs == 3 and r.run_cycles == [cp.predicted_cycles] * 3
    assert r.cycles == sum(r.run_cycles) and r.predicted_cycles == 3 * cp.predicted_cycles
    _same(r.outputs, cp.qgraph.run_int8({cp.input_names[0]: X}))
    assert r.outputs[cp.output_names[0]].shape[0] == 11


def test_run_refuses_what_is_not_a_compiled_program(torch_program):
    with pytest.raises(TypeError, match=r"^program must be a compiler.CompiledProgram \(compiler.compile or "
                                        r"CompiledProgram.load\), not Graph$"):
        sim.run(Graph(), _data(0, 4))
    with pytest.raises(ValueError, match=r"^backend must be one of golden, verilator, not 'rtl'$"):
        sim.run(torch_program, _data(0, 4), backend="rtl")


def test_graph_accepts_every_form():
    rng = np.random.default_rng(0)
    g = Graph()
    a, b = g.input("a", (None, 6)), g.input("b", (None, 6))
    g.output(g.add(g.linear(a, rng.normal(size=(6, 6)), np.zeros(6), name="fc"), b, name="sum"), "y")
    xa, xb = _data(5, 3)[:, :6], _data(6, 3)[:, :6]
    by_tuple = compiler.compile(g, (xa, xb), config="tiny", calibration=(xa, xb))
    by_dict = compiler.compile(g, {"b": xb, "a": xa}, config="tiny", calibration=[{"a": xa, "b": xb}])
    assert by_tuple.program.words == by_dict.program.words
    _same(sim.run(by_tuple, (xa, xb)).outputs, sim.run(by_dict, {"a": xa, "b": xb}).outputs)
    with pytest.raises(ValueError, match=r"one array cannot name the 2 inputs"):
        sim.run(by_tuple, xa)
    with pytest.raises(ValueError, match=r"calibration must be a tuple of 2 arrays in argument order \(a, b\), or a "
                                         r"dict of input name to array, not a tuple of 1 item"):
        compiler.compile(g, (xa, xb), config="tiny", calibration=(xa,))


@pytest.mark.parametrize("inputs, message", [
    (3.0, "x must be a single array or tensor, a tuple of 1 array in argument order (a), or a dict of input name "
          "to array, not float"),
    ({"a": 1, "c": 2}, "x must hold exactly the model's inputs (a), not a, c (unknown c)"),
    ((), "x must be a single array or tensor, a tuple of 1 array in argument order (a), or a dict of input name "
         "to array, not a tuple of 0 items"),
])
def test_named_inputs_errors_say_what_was_expected(inputs, message):
    with pytest.raises((TypeError, ValueError)) as e:
        named_inputs(inputs, ["a"], "x")
    assert str(e.value) == message


MODEL_TUPLE = '''
import numpy as np
import torch


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(10, 12), torch.nn.ReLU(), torch.nn.Linear(12, 4))


def example_inputs():
    return (torch.from_numpy(np.random.default_rng(1).normal(size=(4, 10)).astype(np.float32)),)
'''


def test_model_file_with_tuple_example_inputs(tmp_path, capsys):
    model = tmp_path / "model.py"
    model.write_text(MODEL_TUPLE)
    out = tmp_path / "out"
    assert main(["compile", str(model), "--config", "tiny", "-o", str(out)]) == 0
    cp = CompiledProgram.load(out)
    assert cp.batch == 4
    X = _data(7, 9)
    xs = tmp_path / "x.npz"
    np.savez(xs, **{cp.input_names[0]: X})
    capsys.readouterr()
    assert main(["run", str(out), "--inputs", str(xs), "--backend", "golden"]) == 0
    text = capsys.readouterr().out
    p = cp.predicted_cycles
    assert f"{3 * p} cycles in 3 runs of 4 rows ({p}, {p}, {p}) (predicted {3 * p})" in text
