"""``perf.sweep``: design-space sweeps of ``perf.estimate`` as Dask tasks, their files and plots, ``conveyor sweep``."""
import json
import logging

import pytest
from distributed import LocalCluster

from cli.main import main
from perf.assumptions import DEFAULT
from perf.estimate import estimate
from perf.sweep import (
    AXES,
    FIGURES,
    PointResult,
    _mem_slices,
    pareto,
    plot,
    point_inputs,
    points,
    read_csv,
    read_json,
    sweep,
    write_csv,
    write_json,
)
from spec.config import PRESETS

TSP = PRESETS["tsp"]
GRID = {"mxu": [160, 320], "clock_mhz": [900, 1200], "link_latency_us": [0.5, 2.0]}


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0",
                      silence_logs=logging.CRITICAL) as c:
        yield c


@pytest.fixture(scope="module")
def results(cluster):
    return sweep("llama-2-7b", GRID, cluster=cluster, progress=False)


def _figures(e):
    f = {k: v for k, v in e.to_json().items() if k not in ("assumptions", "gpu")}
    f["sram"] = {k: v for k, v in f["sram"].items() if k != "per_chip"}      # the sweep keeps the maxima only
    f["links"] = {k: v for k, v in f["links"].items() if k != "per_link"}
    return f


def test_points_equal_direct_estimates(results):
    assert [r.point for r in results] == points(GRID) and len(results) == 8 and all(r.ok for r in results)
    for r in results:
        p = r.point
        c = TSP.replace(mxu_rows=p["mxu"], mxu_cols=p["mxu"], clock_mhz=p["clock_mhz"])
        tsp = DEFAULT.tsp.__class__(**{**DEFAULT.tsp.__dict__, "link_latency_us": DEFAULT.tsp.link_latency_us
                                       .__class__(p["link_latency_us"], "us", "sweep axis")})
        a = DEFAULT.__class__(**{**DEFAULT.__dict__, "tsp": tsp})
        assert r.figures == _figures(estimate("llama-2-7b", c, assumptions=a)), r.point
    slow, fast = results[0].figures, results[-1].figures
    assert fast["tokens_per_s_per_user"] > slow["tokens_per_s_per_user"]


def test_axes_build_the_configs():
    c, chips, a = point_inputs({"lanes": 160, "mem_slices": 44, "mem_depth": 2048, "chips": 70,
                                "link_gbytes_s": 30.0})
    assert (c.lanes, c.mxu_rows, c.mxu_cols, c.mem_depth, len(c.positions("mem"))) == (160, 160, 160, 2048, 44)
    assert c.slices == ("mxu", "mxu") + ("mem",) * 22 + ("vxu",) + ("mem",) * 22 + ("mxu", "mxu")
    assert chips == 70 and a.tsp.link_gbytes_s.value == 30.0 and a.tsp.link_latency_us == DEFAULT.tsp.link_latency_us
    assert _mem_slices(TSP.slices, 1).count("mem") == 1 and _mem_slices(TSP.slices, 89).count("mem") == 89
    assert point_inputs({}) == (TSP, None, DEFAULT)


def test_a_failing_point_says_which_and_why(cluster):
    seen = []
    grid = {"mxu": [320, 400], "chips": [30, 20]}
    rs = sweep("llama-2-7b", grid, cluster=cluster, progress=lambda done, n: seen.append((done, n)))
    assert seen == [(i, 4) for i in range(1, 5)]
    by = {(r.point["mxu"], r.point["chips"]): r for r in rs}
    assert by[320, 30].ok and by[320, 30].figures == _figures(estimate("llama-2-7b", chips=30))
    assert not by[400, 30].ok and by[400, 30].figures is None
    assert by[400, 30].error == "ValueError: mxu_rows must be an integer between 1 and 320, not 400"
    assert by[320, 20].error.startswith("ValueError: chips must be an integer of at least 30 (the chips that hold "
                                        "llama-2-7b's")
    assert by[400, 20].label() == "mxu=400, chips=20"


def test_csv_and_json_round_trip(results, tmp_path):
    rs = results + [PointResult({"mxu": 400, "clock_mhz": 900.0, "link_latency_us": 1.0}, False, "ValueError: no")]
    assert rs[-1].row()["chips"] is None and PointResult({"chips": 3}, False, "x").row()["chips"] == 3
    assert read_csv(write_csv(rs, tmp_path / "s.csv")) == [r.row() for r in rs]
    assert read_json(write_json(rs, tmp_path / "s.json", model="llama-2-7b")) == rs
    assert json.loads((tmp_path / "s.json").read_text())["model"] == "llama-2-7b"
    header = (tmp_path / "s.csv").read_text().splitlines()[0].split(",")
    assert header == ["mxu", "clock_mhz", "link_latency_us", "ok", "error", *FIGURES]


def test_pareto_and_plot(results, tmp_path):
    def r(x, y):
        return PointResult({}, True, None, {"tokens_per_joule": x, "tokens_per_s_per_user": y, "chips": 1})
    a, b, c, d = r(1, 5), r(2, 4), r(1.5, 3), r(3, 1)
    assert pareto([a, b, c, d, PointResult({}, False, "x")]) == [a, b, d]
    out = plot(results + [PointResult({"mxu": 400}, False, "x")], tmp_path / "p.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


@pytest.mark.parametrize("grid, message", [
    ({"gpus": [1]}, "unknown axis 'gpus': the axes are " + ", ".join(AXES)),
    ({"mxu": []}, "axis mxu must have a non-empty list of values, not []"),
    ({"mxu": [1.5]}, "axis mxu takes positive integers, not 1.5"),
    ({"clock_mhz": [0]}, "axis clock_mhz takes positive numbers, not 0"),
])
def test_bad_grids(grid, message):
    with pytest.raises(ValueError) as e:
        points(grid)
    assert str(e.value) == message


def test_cli_sweep(cluster, tmp_path, capsys):
    argv = ["sweep", "gpt", "--prompt", "16", "--tokens", "16", "--axis", "mxu=32,64", "--axis", "chips=1,2",
            "--scheduler", cluster.scheduler_address,
            "--csv", str(tmp_path / "s.csv"), "--json", str(tmp_path / "s.json"), "--plot", str(tmp_path / "s.png")]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert text.startswith("gpt on tsp: 4 points (mxu 2, chips 2), 4 ran, 0 failed, in ")
    rows = read_csv(tmp_path / "s.csv")
    assert [(r["mxu"], r["chips"]) for r in rows] == [(32, 1), (32, 2), (64, 1), (64, 2)]
    assert json.loads((tmp_path / "s.json").read_text())["grid"] == {"mxu": [32, 64], "chips": [1, 2]}
    assert (tmp_path / "s.png").stat().st_size > 10_000


def test_cli_default_local_cluster_reports_failures(capsys):
    argv = ["sweep", "gpt", "--prompt", "8", "--tokens", "8", "--axis", "lanes=320,400", "--axis", "chips=2,1"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "4 points (lanes 2, chips 2), 2 ran, 2 failed" in text
    assert "  failed lanes=400, chips=2: ValueError: lanes must be an integer between 1 and 320, not 400\n" in text
    assert "  fastest: lanes=320, chips=1: " in text


@pytest.mark.parametrize("argv, message", [
    (["sweep", "gpt", "--axis", "gpus=1,2"],
     "argument --axis: unknown axis 'gpus': must be one of " + ", ".join(AXES) + " (NAME=V1,V2,...)"),
    (["sweep", "gpt", "--axis", "mxu=32,x"], "argument --axis: mxu takes positive integers, not 'x'"),
    (["sweep", "gpt", "--axis", "clock_mhz=-5"], "argument --axis: clock_mhz takes positive numbers, not '-5'"),
    (["sweep", "gpt", "--axis", "mxu"], "argument --axis: mxu needs values: mxu=V1,V2,... (positive integers)"),
    (["sweep", "gpt", "--axis", "mxu=1", "--axis", "mxu=2"], "argument --axis: mxu given twice"),
    (["sweep", "gpt"], "the following arguments are required: --axis NAME=V1,V2,... (at least one)"),
    (["sweep", "gpt-5", "--axis", "mxu=1"], "argument MODEL: must be one of gpt2-small, llama-2-7b, llama-2-13b, "
                                             "llama-2-70b, llama-3-8b, llama-3-70b, gpt, llama, not 'gpt-5'"),
    (["sweep", "gpt", "--axis", "mxu=1", "--config", "huge"],
     "argument --config: must be one of tiny, small, tsp or a .json file, not 'huge'"),
])
def test_cli_errors(argv, message, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err == f"conveyor: error: {message}\n"
