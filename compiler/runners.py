"""Who runs a compiled program: a registry that the simulation side fills.

The compiler's job ends at a program; running one is the simulators' (``sim.run``). So that
``CompiledProgram.run`` can stay a convenience without the compiler importing the simulators, the runner is
looked up here: ``sim.runner`` registers its ``run`` when it is imported (``register_runner``), and the installed
package declares it as the entry point ``conveyor.runners`` (``pyproject.toml``), which ``runner()`` loads
when nothing has registered yet. The compiler never names the simulation package in its code.

A runner is called as ``runner(program, inputs, backend=..., **options)`` and returns a result
(``sim.runner.RunResult``).
"""
from importlib.metadata import entry_points

__all__ = ["ENTRY_POINT_GROUP", "register_runner", "runner"]

#: The entry-point group in which an installed package declares its runner.
ENTRY_POINT_GROUP = "conveyor.runners"
_RUNNERS: dict = {}


def register_runner(name, fn):
    """Make ``fn`` the runner called ``name`` (the last one registered is used)."""
    if not callable(fn):
        raise TypeError(f"a runner must be callable, not {fn!r}")
    _RUNNERS.pop(name, None)
    _RUNNERS[name] = fn


def runner(name="sim"):
    """The runner called ``name`` (``"sim"``: compiled programs; ``"lm"``: generation with a compiled language
    model), loading the ``conveyor.runners`` entry points if it is not registered; a ``RuntimeError`` saying
    how to get one when there is none."""
    if name not in _RUNNERS:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name not in _RUNNERS:
                register_runner(ep.name, ep.load())
    if name not in _RUNNERS:
        raise RuntimeError("no runner for compiled programs is registered: run them with sim.run(program, inputs) "
                           "(importing sim registers it), or install the conveyor package (pip install -e .), "
                           f"which declares one as the entry point {ENTRY_POINT_GROUP!r}")
    return _RUNNERS[name]
