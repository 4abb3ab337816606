"""The mutation table (mutants/list.py) cannot rot: every mutant's snippet is in its rtl/ file exactly once, and
its killers are well formed. The mutation run itself is ``make mutants`` (docs/mutants.md)."""
import os
from pathlib import Path

import pytest

from mutants.guard import misplaced
from mutants.list import MUTANTS, by_name
from mutants.run import killer_command

ROOT = Path(__file__).resolve().parent.parent


def test_names_unique_and_described():
    assert len(by_name()) == len(MUTANTS) >= 12
    for mu in MUTANTS:
        assert mu.name.isidentifier(), mu.name
        assert mu.description and "\n" not in mu.description, mu.name
        assert mu.killers, f"{mu.name}: no killer"


@pytest.mark.parametrize("mu", MUTANTS, ids=[mu.name for mu in MUTANTS])
def test_snippet_present_exactly_once(mu):
    assert mu.file.startswith("rtl/") and mu.file.endswith(".py"), mu.file
    text = (ROOT / mu.file).read_text()
    n = text.count(mu.original)
    assert n == 1, (f"{mu.name}: the original snippet occurs {n} times in {mu.file}; update mutants/list.py "
                    f"to the current text of the same bug: {mu.original!r}")
    assert mu.replacement != mu.original
    mutated = text.replace(mu.original, mu.replacement)
    compile(mutated, mu.file, "exec")   # the mutant is still Python: a catch must be the tests', not a SyntaxError


@pytest.mark.parametrize("mu", MUTANTS, ids=[mu.name for mu in MUTANTS])
def test_killers_exist(mu):
    for k in mu.killers:
        argv = killer_command(k)
        if k.startswith("tests/"):
            path = k.split("::")[0]
            assert (ROOT / path).is_file(), f"{mu.name}: killer {k}: no file {path}"
            if "::" in k:
                name = k.split("::")[1].split("[")[0]
                assert f"def {name}(" in (ROOT / path).read_text(), f"{mu.name}: killer {k}: no test {name}"
        elif k.startswith("formal:"):
            assert os.path.isdir(ROOT / "formal"), f"{mu.name}: killer {k} needs formal/"
        assert argv


def test_guard_sees_where_modules_come_from():
    """The runner's guard (mutants/guard.py) flags project modules imported from outside the mutant copy."""
    import rtl.streams  # noqa: F401  (imported from this checkout)
    here = {name for name, _ in misplaced(str(ROOT))}
    assert "rtl.streams" not in here
    elsewhere = {name for name, _ in misplaced(str(ROOT / "build" / "mutants" / "elsewhere"))}
    assert "rtl.streams" in elsewhere
