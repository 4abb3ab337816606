"""sim.progress: long steps say what they do, where, and about how long; plain lines off a terminal, a live
line on one, nothing when quiet."""
import io
import time

import pytest

from sim import progress


class _Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def loud(monkeypatch):
    monkeypatch.delenv(progress.QUIET_ENV, raising=False)
    progress.set_quiet(None)
    yield
    progress.set_quiet(None)


def test_plain_lines_name_the_step_where_and_estimate(loud):
    out = io.StringIO()
    with progress.step("building the Verilator model of chip small", where="build/sim/x", estimate=358,
                       basis="the last build", stream=out):
        pass
    lines = out.getvalue().splitlines()
    assert lines[0] == "… building the Verilator model of chip small in build/sim/x (about 5:58, the last build)"
    assert lines[1] == "… building the Verilator model of chip small: done in 0:00" and len(lines) == 2


def test_a_failing_step_says_failed(loud):
    out = io.StringIO()
    with pytest.raises(RuntimeError), progress.step("synthesis", stream=out):
        raise RuntimeError("boom")
    assert out.getvalue().splitlines() == ["… synthesis", "… synthesis: failed after 0:00"]


def test_heartbeat_lines_while_it_runs(loud, monkeypatch):
    monkeypatch.setattr(progress, "HEARTBEAT", 0.05)
    out = io.StringIO()
    with progress.step("building", estimate=90, stream=out) as s:
        s.update("make")
        time.sleep(0.3)
    lines = out.getvalue().splitlines()
    assert lines[0] == "… building (about 1:30)" and lines[-1] == "… building: done in 0:00"
    assert any(line == "… still building, 0:00 of about 1:30, make" for line in lines[1:-1]), lines


def test_live_line_on_a_terminal(loud, monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    out = _Tty()
    with progress.step("running 6 runs", stream=out) as s:
        s.update("run 2 of 6")
        time.sleep(1.3)
    text = out.getvalue()
    assert "\r\x1b[2K… running 6 runs 0:01, run 2 of 6" in text
    assert text.endswith("\r\x1b[2K… running 6 runs: done in 0:01\n")


def test_quiet_by_environment_and_by_flag(monkeypatch):
    out = io.StringIO()
    monkeypatch.setenv(progress.QUIET_ENV, "1")
    with progress.step("x", stream=out) as s:
        s.update("y")
    monkeypatch.setenv(progress.QUIET_ENV, "0")
    progress.set_quiet(True)
    try:
        with progress.step("x", stream=out):
            pass
    finally:
        progress.set_quiet(None)
    assert out.getvalue() == ""
    with progress.step("x", stream=out):
        pass
    assert out.getvalue().startswith("… x")


def test_remembered_durations(tmp_path):
    f = tmp_path / "build_seconds.txt"
    assert progress.remembered(f) is None
    progress.remember(f, 361.24)
    assert progress.remembered(f) == pytest.approx(361.2)
    f.write_text("not a number\n")
    assert progress.remembered(f) is None
    assert progress.duration(59.6) == "1:00" and progress.duration(3725) == "1:02:05"


def test_cli_quiet_flag_is_accepted(capsys):
    from cli.main import main
    assert main(["-q", "gen", "mxu", "--rows", "0", "-o", "x"]) == 2
    assert "argument --rows" in capsys.readouterr().err and progress._quiet is None
