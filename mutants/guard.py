"""``python -m mutants.guard MODULE ARG …``: run ``python -m MODULE ARG …`` and then check that every module of
the project it imported came from the mutant's copy (``$MUTANT_ROOT``), not from the repository.

The repository is installed into the venv in editable mode, so ``import rtl`` could resolve to the
original RTL if the copy's root were not first on ``sys.path``; the runner puts it first (cwd and
``PYTHONPATH``), and this guard makes a wrong resolution an error (exit status :data:`MISPLACED`) instead of
a silently surviving mutant. It also fails if ``$MUTANT_EXPECT`` (a module, e.g. ``rtl.mxu``) was imported
from anywhere but its file in the copy.
"""
import os
import runpy
import sys

#: Exit status when a project module was imported from outside the copy.
MISPLACED = 86
#: Top-level packages of the project (the copy's directories).
PACKAGES = ("spec", "rtl", "golden", "waves", "compiler", "sim", "fpga", "demos", "cli", "verify", "formal", "tests",
            "bench", "mutants", "perf", "tools")


def misplaced(root):
    """Project modules loaded from outside ``root``: ``[(name, file)]``."""
    root = os.path.realpath(root) + os.sep
    bad = []
    for name, mod in list(sys.modules.items()):
        if name.split(".")[0] not in PACKAGES or mod is None:
            continue
        # a namespace package's path may list the repository's directory after the copy's (the editable
        # install's finder adds it); the copy's coming first is what matters, and every module's own file
        files = [getattr(mod, "__file__", None)] + list(getattr(mod, "__path__", None) or [])[:1]
        for f in files:
            if f and os.path.isabs(f) and not os.path.realpath(f).startswith(root):
                bad.append((name, f))
    return bad


def check(root):
    bad = misplaced(root)
    expect = os.environ.get("MUTANT_EXPECT")
    if expect and expect in sys.modules:
        f = os.path.realpath(sys.modules[expect].__file__)
        want = os.path.realpath(os.path.join(root, *expect.split("."))) + ".py"
        if f != want:
            bad.append((expect, f))
    return bad


def main():
    root = os.environ.get("MUTANT_ROOT")
    root = os.path.abspath(root) if root else root
    if not root or len(sys.argv) < 2:
        print("usage: MUTANT_ROOT=DIR python -m mutants.guard MODULE [ARG ...]", file=sys.stderr)
        return 2
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    bad = check(root)
    if bad:
        sys.stdout.flush()
        for name, f in bad[:10]:
            print(f"mutants.guard: {name} was imported from {f}, outside the mutant copy {root}", file=sys.stderr)
        return MISPLACED
    return code


if __name__ == "__main__":
    sys.exit(main())
