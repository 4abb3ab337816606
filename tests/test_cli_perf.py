"""``conveyor perf DIR``: the performance report of a language model saved by ``LMProgram.save``."""
import json

import pytest

import sim.lm_run  # noqa: F401  (registers the "lm" runner)
from cli.main import main
from compiler.lm import compile_lm
from demos.lm import text, train
from perf.assumptions import DEFAULT
from perf.estimate import estimate


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The reference gpt of demos/lm (as tests/test_perf_estimate.py compiles it; about 5 s), saved."""
    model, _ = train.load_or_train("gpt")
    lm = compile_lm(model, 64, "small", calibration=text.split()[0][:2048])
    folder = tmp_path_factory.mktemp("lm") / "gpt"
    lm.save(folder)
    return lm, folder


def test_perf_of_a_saved_program_has_its_exact_step_cycles(saved, tmp_path, capsys):
    lm, folder = saved
    ids = [int(i) for i in text.encode("The")]
    g = lm.generate(ids, 4)
    out = tmp_path / "r.json"
    assert main(["perf", str(folder), "--prompt", "3", "--tokens", "4", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["compiled"] and r["step_cycles"] == g.predicted_cycles and r["host_cycles"] == g.host_cycles
    assert r["step_cycles"] == [3 * lm.step_cycles] + [lm.step_cycles] * 3
    hz = lm.config.clock_mhz * 1e6
    assert r["tokens_per_s_per_user"] == pytest.approx(hz / (lm.step_cycles + lm.host_words))
    assert r["config"] == "small" and r["chips"] == 1
    # the link busy fraction is of the exact step, not of the closed form's
    hop = r["links"]["per_link"][0]
    assert hop["busy"] == pytest.approx(hop["bytes_per_step"] / (DEFAULT.tsp.link_gbytes_s.value * 1e9 * r["step_s"]))
    report = capsys.readouterr().out
    assert report.startswith(f"{folder} (gpt, compiled) on 1 chips of small")
    assert f"  compiled     {lm.step_cycles:,} cycles a decode step + {lm.host_words:,} host words" in report
    # the busiest chip's weight installs, read off the program and in closed form: equal (perf.installs)
    assert r["install_cycles"] == r["model_install_cycles"] == max(lm.install_cycles)
    assert f"weight installs {r['install_cycles']:,} cycles, closed form {r['install_cycles']:,}" in report


def test_defaults_fit_the_compiled_context(saved, tmp_path):
    lm, folder = saved
    out = tmp_path / "d.json"
    assert main(["perf", str(folder), "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert (r["prompt"], r["tokens"]) == (32, 32)
    assert r["step_cycles"] == estimate(lm, prompt=32, tokens=32).step_cycles


def test_folders_that_are_not_saved_lms(saved, tmp_path, capsys):
    _, folder = saved
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["perf", str(empty)]) == 2
    assert capsys.readouterr().err == (f"conveyor: error: argument MODEL: {empty} is not a folder written by "
                                       "LMProgram.save: it lacks lm.json (it is empty); give a model of perf.models "
                                       "or such a folder (lm.json and data.npz)\n")
    prog = tmp_path / "prog"
    prog.mkdir()
    (prog / "program.json").write_text("{}")
    assert main(["perf", str(prog)]) == 2
    assert "it lacks lm.json (it a saved compiled program (program.json), not a language model)" in \
        capsys.readouterr().err
    half = tmp_path / "half"
    half.mkdir()
    (half / "lm.json").write_text((folder / "lm.json").read_text())
    assert main(["perf", str(half)]) == 2
    assert f"conveyor: error: {half} is not a saved language model: data.npz is missing" in capsys.readouterr().err
    assert main(["perf", str(folder), "--chips", "4"]) == 2
    assert "argument --chips: does not apply to a compiled language model" in capsys.readouterr().err
    assert main(["perf", str(folder), "--prompt", "60", "--tokens", "10"]) == 2
    assert "prompt + tokens must be at most gpt's context of 64, not 70" in capsys.readouterr().err
