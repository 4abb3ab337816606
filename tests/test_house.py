"""The house: every import between top-level folders goes one way (``docs/house.md``).

spec ← rtl, golden ← compiler ← sim ← demos and the CLI; verification above what it checks. Each folder
lists the folders it may import (``ALLOWED``); the test parses every module's imports (at the top and inside
functions, relative ones resolved) and fails on any other, naming the file, the line and the import. A new
top-level folder of Python code must be given its place here first.
"""
import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: folder → the folders its modules may import (beside their own and third-party packages)
ALLOWED = {
    "spec": set(),
    "rtl": {"spec"},                                  # hardware knows the spec, nothing of models or harnesses
    "golden": {"spec"},                               # the RTL's twin: never the RTL
    "waves": {"spec"},                                # reading and laying out VCD files
    "compiler": {"spec", "golden"},                   # never the HDL, never the simulators
    "sim": {"spec", "rtl", "golden", "compiler", "waves"},
    "cocotb_tests": {"spec", "sim"},                  # the harnesses' Python side, run by sim
    "fpga": {"spec", "rtl", "sim"},
    "demos": {"spec", "golden", "compiler", "sim"},
    "cli": {"spec", "rtl", "golden", "waves", "compiler", "sim", "fpga", "demos", "perf"},  # perf: conveyor perf
    "formal": {"spec", "rtl", "sim"},
    "verify": {"spec", "rtl", "golden", "waves", "compiler", "sim", "fpga"},
    "mutants": {"spec", "rtl", "golden", "compiler", "sim", "formal", "verify"},
    "bench": {"spec", "rtl", "golden", "compiler", "sim", "demos", "cli"},
    "perf": {"spec"},                                 # the cost model reads the spec, never builds a program
    "tools": {"spec", "demos", "perf"},               # scripts for users (gpu_decode.py: a GPU's measured decode)
}
#: folders not checked: the test suite sits above everything
ABOVE_ALL = {"tests"}


def _folders():
    return sorted(p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and any(p.rglob("*.py")) and p.name not in {"build", "sim_build", "venv"})


def _imports(path):
    """``(line, imported module, top-level name)`` of every import in ``path``, relative ones resolved."""
    rel = path.relative_to(ROOT)
    package = list(rel.parent.parts)
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            yield node.lineno, name, name.split(".")[0]


def test_every_folder_has_its_place():
    missing = [f for f in _folders() if f not in ALLOWED and f not in ABOVE_ALL]
    assert not missing, f"top-level folders with Python code but no place in ALLOWED: {missing}"


def test_the_allowed_imports_have_no_cycle():
    done, stack = set(), []

    def visit(f):
        if f in stack:
            pytest.fail(f"the allowed imports go round: {' -> '.join(stack[stack.index(f):] + [f])}")
        if f in done:
            return
        stack.append(f)
        for g in sorted(ALLOWED[f]):
            visit(g)
        stack.pop()
        done.add(f)

    for f in ALLOWED:
        visit(f)


def _upward_imports():
    bad = []
    for folder in sorted(ALLOWED):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for line, name, top in _imports(path):
                if top in ALLOWED and top != folder and top not in ALLOWED[folder]:
                    bad.append(f"{path.relative_to(ROOT)}:{line}: imports {name} ({folder}/ may import "
                               f"{', '.join(sorted(ALLOWED[folder])) or 'nothing of the project'})")
    return bad


def test_imports_go_one_way():
    bad = _upward_imports()
    assert not bad, "imports against the direction of the house:\n" + "\n".join(bad)


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The checker itself: a planted compiler → sim import (inside a function) is reported with its line."""
    fake = tmp_path / "compiler"
    fake.mkdir()
    (fake / "bad.py").write_text("import numpy\n\n\ndef f():\n    from sim.chip_run import run_program\n")
    (fake / "ok.py").write_text("from .bad import f\nfrom spec import isa\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    for folder in ALLOWED:
        (tmp_path / folder).mkdir(exist_ok=True)
    assert _upward_imports() == ["compiler/bad.py:5: imports sim.chip_run (compiler/ may import golden, spec)"]


def test_the_mutation_check_copies_every_folder():
    """A mutant runs in a copy of the tree; a folder missing from the copy would be imported from the
    repository instead (and the guard would call it misplaced)."""
    from mutants.guard import PACKAGES
    from mutants.run import COPY_DIRS
    missing = [f for f in ALLOWED if f not in COPY_DIRS]
    assert not missing, f"mutants/run.py COPY_DIRS lacks {missing}"
    assert set(PACKAGES) >= set(ALLOWED) - {"cocotb_tests"}
