"""``compiler.compile(..., chips=N)``: a model in pipeline parallel on a line of chips (``SystemProgram``), run
through ``sim.run`` on golden, saved and loaded, and through ``conveyor compile --chips`` / ``conveyor run``.
The RTL runs of such programs are in tests/test_system_programs_rtl.py."""
import json

import numpy as np
import pytest

import compiler
from cli.main import main
from compiler import CompiledProgram
from compiler.memory import MemoryFull
from compiler.system import SystemProgram
from compiler.system.program import load_any
from tests import test_compiler_api as api_tests
from tests.test_compile_random import random_graph

WIDE = [16, 16, 16, 16, 16]       # four 16 x 16 layers: more than one tiny chip's MEM at batch 8


def wide_model():
    g, rng = random_graph(5, WIDE, ["relu"] * 3, False)
    return g, {"x": rng.normal(size=(8, WIDE[0])).astype(np.float32)}


def same(got, want):
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_a_model_too_large_for_one_chip_says_how_many_it_needs():
    g, x = wide_model()
    with pytest.raises(MemoryFull, match=r"; it fits 2 chips in pipeline parallel \(compile with chips=2, conveyor "
                                         r"compile --chips 2\)$"):
        compiler.compile(g, x, config="tiny")


@pytest.mark.parametrize("chips", [2, 3])
@pytest.mark.parametrize("split", ["pipeline", "tensor"])
def test_compiled_on_chips_equals_the_int8_reference(chips, split, tmp_path):
    g, x = wide_model()
    if split == "tensor":           # its replicated steps do not fit tiny's MEM at batch 8 (the pipeline's do)
        x = {"x": x["x"][:4]}
    cp = compiler.compile(g, x, config="tiny", chips=chips, split=split)
    assert isinstance(cp, SystemProgram) and cp.chips == chips and cp.config.name == "tiny_link"
    assert cp.split == split and cp.reason == ""
    assert cp.predicted_cycles == max(cp.chip_cycles)
    assert len(cp.model.boundaries) == (chips - 1 if split == "pipeline" else 0)
    want = cp.qgraph.run_int8(x)
    r = cp.run(x, backend="golden")
    assert r.cycles == r.predicted_cycles == cp.predicted_cycles
    same(r.outputs, want)
    cp.save(tmp_path / "p")
    back = load_any(tmp_path / "p")
    assert isinstance(back, SystemProgram) and back.chip_cycles == cp.chip_cycles
    assert back.transfers == cp.transfers and back.model.boundaries == cp.model.boundaries
    assert back.split == split and back.plan == cp.plan
    r2 = back.run(x, backend="golden")
    assert r2.cycles == cp.predicted_cycles
    same(r2.outputs, want)


def test_more_rows_than_the_batch_run_as_several_runs_on_the_chips():
    g, x = wide_model()
    cp = compiler.compile(g, x, config="tiny", chips=2)
    xs = {"x": np.concatenate([x["x"], x["x"][:3] * 0.5])}
    r = cp.run(xs, backend="golden")
    assert r.runs == 2 and r.run_cycles == [cp.predicted_cycles] * 2
    same(r.outputs, cp.qgraph.run_int8(xs))


def test_chip_arguments_are_checked():
    g, x = wide_model()
    with pytest.raises(ValueError, match=r"^chips must be an integer between 1 and 64, not 0$"):
        compiler.compile(g, x, config="tiny", chips=0)
    with pytest.raises(ValueError, match=r"^chips = 9 is more than the model's 4 steps: every chip needs at least "
                                         r"one$"):
        compiler.compile(g, x, config="tiny", chips=9, split="pipeline")
    with pytest.raises(ValueError, match=r"^the model cannot be divided among 9 chips: pipeline: cannot \(chips = 9 "
                                         r"is more than the model's 4 steps: every chip needs at least one\); tensor: "
                                         r"cannot \(linear '.+': 16 columns cannot be divided among 9 chips: each "
                                         r"needs at least one of the 4 tiles of 4 columns \(compile for fewer "
                                         r"chips\)\)$"):
        compiler.compile(g, x, config="tiny", chips=9)
    with pytest.raises(ValueError, match=r"^split must be one of pipeline, tensor, auto, not 'rows'$"):
        compiler.compile(g, x, config="tiny", chips=2, split="rows")


def test_a_system_folder_that_is_wrong_says_what(tmp_path):
    g, x = wide_model()
    compiler.compile(g, x, config="tiny", chips=2).save(tmp_path / "p")
    meta = json.loads((tmp_path / "p" / "system.json").read_text())
    (tmp_path / "p" / "system.json").write_text(json.dumps(dict(meta, version=7)))
    with pytest.raises(ValueError, match=r"system.json: version must be 1, not 7$"):
        SystemProgram.load(tmp_path / "p")
    (tmp_path / "p" / "system.json").write_text(json.dumps(dict(meta, chips=3)))
    with pytest.raises(ValueError, match=r"chip2 is not a compiled program: program.json is missing$"):
        SystemProgram.load(tmp_path / "p")
    assert isinstance(load_any(tmp_path / "p" / "chip0"), CompiledProgram)


def test_cli_compile_on_two_chips_and_run_golden(tmp_path, capsys):
    model = tmp_path / "model.py"
    model.write_text(api_tests.MODEL_PY)
    out, cj = tmp_path / "out", tmp_path / "c.json"
    assert main(["compile", str(model), "--config", "tiny", "--chips", "2", "-o", str(out), "--json", str(cj)]) == 0
    text = capsys.readouterr().out
    cp = load_any(out)
    assert cp.chips == 2 and f"on 2 chips in {cp.split} parallel" in text and "SRAM c1" in text
    assert f"split    {cp.reason}" in text and cp.reason.startswith(f"{cp.split} chosen: pipeline: ")
    c = json.loads(cj.read_text())
    assert c["chips"] == 2 and c["chip_cycles"] == list(cp.chip_cycles) and c["link_words"] == cp.transfers
    assert c["split"] == cp.split and c["split_reason"] == cp.reason
    xs, rj = tmp_path / "x.npz", tmp_path / "r.json"
    x = api_tests.test_data(6, 6)
    np.savez(xs, x=x)
    assert main(["run", str(out), "--inputs", str(xs), "--backend", "golden", "--json", str(rj)]) == 0
    r = json.loads(rj.read_text())
    assert r["chips"] == 2 and r["cycles"] == r["predicted_cycles"] == cp.predicted_cycles
    assert "config tiny_link, 2 chips, batch 8" in capsys.readouterr().out
    assert main(["compile", str(model), "--config", "tiny", "--chips", "2", "-o", str(out), "--timeline",
                 str(tmp_path / "t.png")]) == 2
    assert "the timeline of a system of chips is not drawn yet" in capsys.readouterr().err
