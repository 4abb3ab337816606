"""The formal proofs (formal/, docs/formal.md) through their runner, ``python -m formal.run``.

Every proof must pass (k-induction) with every cover reached; a planted bug must make a proof FAIL, and so
must a real bug in a mutated copy of ``rtl/`` run through ``--root`` (the mutation-testing path).
"""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from formal.run import PROOF_MODULES, load_proofs

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run(*args, timeout=1800):
    """``python -m formal.run ARGS`` from the repository root, niced: (exit code, output)."""
    cmd = ["nice", sys.executable, "-m", "formal.run", *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}"
                                                     f"{os.environ.get('PATH', '')}"})
    return proc.returncode, proc.stdout + proc.stderr


def rows(out, name=None):
    """The summary table's rows (split into columns: proof, bug, mode, engine, depth, result, seconds,
    expected), of proof ``name`` or all."""
    names = [name] if name else list(PROOF_MODULES)
    return [line.split() for line in out.splitlines() if line.split()[:1] and line.split()[0] in names
            and len(line.split()) >= 8 and line.split()[2] in ("prove", "cover")]


def test_list_names_every_proof_and_its_bugs():
    rc, out = run("--list")
    assert rc == 0, out
    for proof in load_proofs():
        assert proof.name in out
        assert proof.bugs, f"{proof.name} plants no bug"
        for bug in proof.bugs:
            assert f"bug {bug}:" in out


def test_unknown_proof_is_refused():
    rc, out = run("no_such_proof")
    assert rc != 0 and "unknown proof" in out


@pytest.mark.slow
@pytest.mark.parametrize("name", PROOF_MODULES)
def test_proof_passes_and_covers_are_reached(name, tmp_path):
    rc, out = run(name, "--out", str(tmp_path))
    assert rc == 0, out
    assert [(r[2], r[5]) for r in rows(out, name)] == [("prove", "PASS"), ("cover", "PASS")], out


def test_planted_bug_fails_fifo(tmp_path):
    """Fast: the FIFO's consumer sees r_rdy drop while stalled; the prove task must FAIL (the runner then
    exits 0, as that was expected), and the runner names the failed assertion."""
    rc, out = run("fifo", "--bug", "drop_valid", "--out", str(tmp_path))
    assert rc == 0, out
    assert any(msg in out for msg in ("r_rdy dropped before the item was read",
                                      "an item inside is not presented on the next cycle")), out
    assert [(r[1], r[2], r[5]) for r in rows(out, "fifo")] == [("drop_valid", "prove", "FAIL")], out


@pytest.mark.slow
def test_every_planted_bug_fails(tmp_path):
    rc, out = run("--check-bugs", "--out", str(tmp_path))
    assert rc == 0, out
    want = sorted((p.name, bug) for p in load_proofs() for bug in p.bugs)
    got = sorted((r[0], r[1]) for r in rows(out) if r[2] == "prove" and r[5] == "FAIL")
    assert got == want, out


@pytest.mark.slow
def test_mutated_rtl_through_root_fails(tmp_path):
    """A real RTL bug in a copy of the sources (a stream write that ignores the direction bit) is caught
    by the streams proof run with --root, and the copy, not this checkout, is what was proved."""
    copy = tmp_path / "mutant"
    for pkg in ("rtl", "spec"):
        shutil.copytree(ROOT / pkg, copy / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    src = copy / "rtl" / "streams.py"
    text = src.read_text()
    good = "wr.addr.eq(Cat(slot(p, west), index[:index_bits], west))"
    assert text.count(good) == 1
    src.write_text(text.replace(good, "wr.addr.eq(Cat(slot(p, west), index[:index_bits], 0))"))
    rc, out = run("streams", "--root", str(copy), "--out", str(tmp_path / "build"))
    assert rc != 0, out
    assert f"rtl from {copy / 'rtl'}" in out, out
    assert [(r[2], r[5]) for r in rows(out, "streams")] == [("prove", "FAIL"), ("cover", "PASS")], out
