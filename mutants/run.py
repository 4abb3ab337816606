"""The mutation runner: ``python -m mutants [NAMES...] [--list] [--jobs N] [--keep]``.

For each mutant of :mod:`mutants.list`: copy the project's sources (not ``.venv``, not ``build/``) to
``build/mutants/<name>/``, check that the original snippet occurs exactly once in the copy's file, apply
the replacement, then run the mutant's killers with the copy as the working directory and first on
``PYTHONPATH`` (every killer runs under :mod:`mutants.guard`, which fails if a project module was imported
from outside the copy), until one fails (*caught*) or all pass (*survived*).

Before any mutant, a *sanity run*: an unmutated copy (``build/mutants/_baseline/``) must pass every killer
of the selected mutants, or a "catch" would mean nothing.

Exit status: 0 when every selected mutant was caught; 1 when one survived or an error occurred (a snippet
missing or not unique, a killer that could not run, a failing sanity run).
"""
import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from formal.run import INCONCLUSIVE
from mutants.guard import MISPLACED, PACKAGES
from mutants.list import MUTANTS, by_name

ROOT = Path(__file__).resolve().parent.parent
#: What a copy holds (those that exist): the packages, the tests and the files tests read.
COPY_DIRS = PACKAGES + ("cocotb_tests", "docs")
COPY_FILES = ("pyproject.toml", "requirements.txt", "Makefile", "README.md", "conftest.py", "setup.cfg",
              "pytest.ini")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis", "build", "sim_build",
                                 "obj_dir", "results", "reports", "*.vcd", "*.fst")
PYTEST_ARGS = ("-x", "-q", "-p", "no:cacheprovider", "-n", "0")
#: Seconds one killer may run before it counts as hung (a hang is a catch: the test never passes).
DEFAULT_TIMEOUT = 1200


class MutantError(Exception):
    """The table rotted (a snippet missing or not unique) or a killer could not run."""


@dataclass
class Outcome:
    name: str
    status: str          # "caught", "survived", "error"
    killer: str = ""     # the killer that caught it (or failed to run)
    seconds: float = 0.0
    detail: str = ""


def killer_command(killer):
    """The argv (after ``python -m mutants.guard``) of a killer string (see :mod:`mutants.list`)."""
    if killer.startswith("formal:"):
        return ["formal.run", killer[len("formal:"):]]
    if killer.startswith("module:"):
        return shlex.split(killer[len("module:"):])
    if killer.startswith("tests/"):
        return ["pytest", *PYTEST_ARGS, killer]
    raise MutantError(f"unknown killer {killer!r} (expected tests/…, formal:NAME or module:MOD ARGS)")


def make_copy(dest):
    """A fresh copy of the project's sources at ``dest``."""
    dest = Path(dest).resolve()
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for d in COPY_DIRS:
        if (ROOT / d).is_dir():
            shutil.copytree(ROOT / d, dest / d, ignore=_IGNORE, symlinks=True)
    for f in COPY_FILES:
        if (ROOT / f).is_file():
            shutil.copy2(ROOT / f, dest / f)
    return dest


def apply(mutant, copy):
    """Apply ``mutant`` to the copy at ``copy``; raises :class:`MutantError` if its snippet is not there
    exactly once. Checks that the copy's file now differs from the repository's."""
    path = Path(copy) / mutant.file
    if not mutant.file.startswith("rtl/") or not path.is_file():
        raise MutantError(f"{mutant.name}: {mutant.file} is not a file under rtl/")
    text = path.read_text()
    n = text.count(mutant.original)
    if n != 1:
        raise MutantError(f"{mutant.name}: the original snippet occurs {n} times in {mutant.file} (must be "
                          f"exactly once; update mutants/list.py): {mutant.original!r}")
    path.write_text(text.replace(mutant.original, mutant.replacement))
    if path.read_text() == (ROOT / mutant.file).read_text():
        raise MutantError(f"{mutant.name}: the mutated {mutant.file} is identical to the repository's")


def _env(copy, expect=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(copy), *filter(None, [env.get("PYTHONPATH")])])
    env["MUTANT_ROOT"] = str(copy)
    env.pop("MUTANT_EXPECT", None)
    if expect:
        env["MUTANT_EXPECT"] = expect
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    return env


def run_killer(killer, copy, log, expect=None, timeout=DEFAULT_TIMEOUT):
    """Run one killer in ``copy``; returns ``(status, seconds)``, status one of "pass", "fail", "timeout",
    "error" (output appended to ``log``)."""
    argv = [sys.executable, "-m", "mutants.guard", *killer_command(killer)]
    t0 = time.monotonic()
    with open(log, "a") as f:
        f.write(f"\n$ {shlex.join(argv)}\n")
        f.flush()
        try:
            rc = subprocess.run(argv, cwd=copy, env=_env(copy, expect), stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            f.write(f"\n[timeout after {timeout} s]\n")
            return "timeout", time.monotonic() - t0
        f.write(f"\n[exit status {rc}]\n")
    dt = time.monotonic() - t0
    if rc == 0:
        return "pass", dt
    if rc == MISPLACED:
        return "error", dt
    if killer.startswith("tests/") and rc != 1:
        return "error", dt      # pytest: 2 interrupted, 3 internal error, 4 usage error, 5 nothing collected
    if killer.startswith("formal:") and rc == INCONCLUSIVE:
        return "pass", dt       # UNKNOWN/TIMEOUT: the proof found no counterexample, which is not a catch
    return "fail", dt


def _module_of(path):
    return path[:-3].replace("/", ".") if path.endswith(".py") else None


def run_mutant(mutant, build, timeout=DEFAULT_TIMEOUT, keep=False):
    copy = Path(build) / mutant.name
    log = Path(build) / f"{mutant.name}.log"
    log.write_text(f"mutant {mutant.name}: {mutant.description}\n")
    t0 = time.monotonic()
    try:
        make_copy(copy)
        apply(mutant, copy)
        for killer in mutant.killers:
            status, dt = run_killer(killer, copy, log, expect=_module_of(mutant.file), timeout=timeout)
            if status in ("fail", "timeout"):
                return Outcome(mutant.name, "caught", killer + (" (timeout)" if status == "timeout" else ""),
                               time.monotonic() - t0)
            if status == "error":
                return Outcome(mutant.name, "error", killer, time.monotonic() - t0, f"could not run; see {log}")
        return Outcome(mutant.name, "survived", "", time.monotonic() - t0, f"all killers passed; see {log}")
    except MutantError as e:
        return Outcome(mutant.name, "error", "", time.monotonic() - t0, str(e))
    finally:
        if not keep and copy.exists():
            shutil.rmtree(copy, ignore_errors=True)


def sanity(mutants, build, timeout=DEFAULT_TIMEOUT):
    """The unmutated copy must pass every killer (pytest targets in one session). Returns a list of problems."""
    copy = make_copy(Path(build) / "_baseline")
    log = Path(build) / "_baseline.log"
    log.write_text("sanity run: the unmutated copy\n")
    problems = []
    for mu in mutants:   # the snippets, first: a rotted table fails fast
        text = (copy / mu.file).read_text() if (copy / mu.file).is_file() else ""
        if text.count(mu.original) != 1:
            problems.append(f"{mu.name}: the original snippet occurs {text.count(mu.original)} times in {mu.file}")
    killers = list(dict.fromkeys(k for mu in mutants for k in mu.killers))
    files = {k for k in killers if k.startswith("tests/") and "::" not in k}
    tests = [k for k in killers if k.startswith("tests/") and not (k.split("::")[0] in files and "::" in k)]
    others = [k for k in killers if not k.startswith("tests/")]
    if tests:
        argv = [sys.executable, "-m", "mutants.guard", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", *tests]
        t0 = time.monotonic()
        with open(log, "a") as f:
            f.write(f"\n$ {shlex.join(argv)}\n")
            f.flush()
            try:
                rc = subprocess.run(argv, cwd=copy, env=_env(copy), stdout=f, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, timeout=timeout * max(1, len(tests))).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
        print(f"sanity: {len(tests)} pytest killer(s) on the unmutated copy: "
              f"{'pass' if rc == 0 else 'FAIL'} ({time.monotonic() - t0:.0f} s)", flush=True)
        if rc != 0:
            problems.append(f"the unmutated copy fails the pytest killers (status {rc}); see {log}")
    for k in others:
        status, dt = run_killer(k, copy, log, timeout=timeout)
        print(f"sanity: {k}: {status} ({dt:.0f} s)", flush=True)
        if status != "pass":
            problems.append(f"the unmutated copy does not pass {k} ({status}); see {log}")
    shutil.rmtree(copy, ignore_errors=True)
    return problems


def _table(outcomes):
    rows = [("mutant", "result", "caught by", "seconds")]
    rows += [(o.name, o.status, o.killer or "-", f"{o.seconds:.0f}") for o in outcomes]
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w[i]) if i < 3 else c.rjust(w[i]) for i, c in enumerate(r)) for r in rows]
    lines.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m mutants", description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="mutants to run (default: all)")
    ap.add_argument("--list", action="store_true", help="list the mutants and their killers, run nothing")
    ap.add_argument("--jobs", "-j", type=int, default=1, help="mutants run at once (default 1)")
    ap.add_argument("--build", default=str(ROOT / "build" / "mutants"), help="work directory")
    ap.add_argument("--keep", action="store_true", help="keep the mutant copies (build/mutants/<name>/)")
    ap.add_argument("--no-sanity", action="store_true", help="skip the sanity run of the unmutated copy")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per killer (a hang is a catch)")
    args = ap.parse_args(argv)

    table = by_name()
    unknown = [n for n in args.names if n not in table]
    if unknown:
        ap.error(f"unknown mutant(s) {', '.join(unknown)}; --list shows them")
    selected = [table[n] for n in args.names] if args.names else list(MUTANTS)

    if args.list:
        for mu in selected:
            print(f"{mu.name}  [{mu.file}]\n    {mu.description}\n    - {mu.original!r}\n    + {mu.replacement!r}")
            print("    killers: " + ", ".join(mu.killers))
        return 0

    build = Path(args.build)
    build.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    if not args.no_sanity:
        problems = sanity(selected, build, timeout=args.timeout)
        if problems:
            for p in problems:
                print(f"error: {p}", file=sys.stderr)
            print("error: sanity run failed; no mutant was run", file=sys.stderr)
            return 1

    def one(mu):
        o = run_mutant(mu, build, timeout=args.timeout, keep=args.keep)
        print(f"{o.name}: {o.status}{' by ' + o.killer if o.killer else ''} ({o.seconds:.0f} s)"
              f"{' - ' + o.detail if o.detail else ''}", flush=True)
        return o

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        outcomes = list(pool.map(one, selected))
    print()
    print(_table(outcomes))
    caught = sum(o.status == "caught" for o in outcomes)
    print(f"\n{caught}/{len(outcomes)} mutants caught in {time.monotonic() - t0:.0f} s (logs: {build}/<name>.log)")
    bad = [o for o in outcomes if o.status != "caught"]
    for o in bad:
        print(f"{'SURVIVED' if o.status == 'survived' else 'ERROR'}: {o.name}: {o.detail}", file=sys.stderr)
    return 1 if bad else 0
