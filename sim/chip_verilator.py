"""Run the whole chip in Verilator, driven by lists of host commands, with no per-cycle Python.

:class:`ChipSimulator` generates the chip's Verilog from ``rtl.chip.Chip(config)``, builds it once per
configuration together with the command-playing harness ``sim/hdl/chip_harness.sv`` and plays command lists.
With ``clock="harness"`` (the default) the model is built with the native C++ main
``sim/hdl/harness_main.cpp`` (``sim.verilator.build_harness(..., main="native")``): no cocotb, no VPI, no
``--timing``, the clock toggled from C++; with ``clock="gpi"`` it is a cocotb build (runner, Verilator; the
cocotb side is ``cocotb_tests/tb_chip.py``) clocked by cocotb's GPI clock. Either way:
:meth:`ChipSimulator.play` writes the commands as hex, runs the harness with a seed and valid/ready
percentages for the host streams, and returns the responses in order. ``sim.chip_run`` builds the command
lists for programs and data and compares with the golden model.

Builds live in ``build_root/chip_<config>_<hash>/`` and are reused across runs and processes (content hash,
``fcntl`` lock: ``sim.verilator.build_harness``).

Coverage (``ChipSimulator(config, coverage=True)``, used by ``verify.coverage``): the chip's Verilog is generated
with ``emit_src=True`` (every statement and signal carries ``(* src = "…/rtl/x.py:123" *)``), built with
``sim.verilator.COVERAGE_ARGS`` (Verilator line and toggle coverage) in a build directory of its own
(``…_cov``), and every run's ``coverage.dat`` is moved into ``coverage_dir`` (default
``build_root/coverage_data``) under a unique name, for ``verilator_coverage`` to merge. With the
environment variable ``CONVEYOR_COVERAGE_DIR`` set, ``coverage`` defaults to on and that directory is the
``coverage_dir``. Default builds are unchanged.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from spec.config import ChipConfig
from spec.host import command_bits, data_bits

from . import progress
from .toolchain import use_yosys
from .verilator import (
    BUILD_ARGS,
    COVERAGE_ARGS,
    SimulationError,
    _tail,
    build_harness,
    collect_coverage,
    coverage_markers,
    run_directory,
    run_harness,
)

__all__ = ["ChipSimulator", "PlayResult", "generate_chip_verilog", "HARNESS_SV", "HARNESS_COMMAND"]

_REPO = Path(__file__).resolve().parent.parent
HARNESS_SV = _REPO / "sim" / "hdl" / "chip_harness.sv"
TB_MODULE = "tb_chip"
TOPLEVEL = "chip_harness"
DUT_MODULE = "chip"
HARNESS_COMMAND = 7       #: a command op the harness handles itself: wait ``addr`` cycles, pulse reset
STATUS_MAGIC = 0x4348_4950_0000_0001
#: When this environment variable names a directory, ``ChipSimulator``s made without ``coverage=`` are
#: coverage builds writing there (``verify.coverage`` runs the chip tests this way).
COVERAGE_ENV = "CONVEYOR_COVERAGE_DIR"
MIN_DEPTH = 1 << 16    #: commands and responses the harness holds (one build serves every program that fits)
#: Seconds a first build of a preset's model takes on 2 cores (README), the estimate before any build here.
TYPICAL_BUILD_SECONDS = {"tiny": 90.0, "small": 360.0}


def generate_chip_verilog(config: ChipConfig, emit_src: bool = False) -> str:
    """Verilog of ``rtl.chip.Chip(config)`` as module ``chip`` (byte-identical across runs). ``emit_src``:
    keep Amaranth's ``src`` attributes (the Python line of every statement and signal; coverage builds)."""
    from amaranth.back import verilog

    from rtl.chip import Chip

    use_yosys()
    if not emit_src:
        return verilog.convert(Chip(config), name=DUT_MODULE, emit_src=False)
    with coverage_markers():        # the Python lines of every process branch (sim.verilator.coverage_markers)
        return verilog.convert(Chip(config), name=DUT_MODULE, emit_src=True)


def _depth(n: int) -> int:
    return max(MIN_DEPTH, 1 << max(0, int(n) - 1).bit_length())


@dataclass
class PlayResult:
    """What one harness run gave: the responses (ints, in order), the harness's cycle count (from the
    release of its reset to the end), commands sent, and wall times."""
    responses: list
    harness_cycles: int
    commands_sent: int
    sim_seconds: float
    loop_seconds: float | None
    build_seconds: float
    run_dir: str | None
    vcd_path: str | None = None


class ChipSimulator:
    """Verilator simulation of the chip of ``config``.

    ``waves``: build with tracing and keep ``dump.vcd`` in the run directory. ``clock``: ``"harness"`` (the
    native C++ main clocks the model: no cocotb, fastest) or ``"gpi"`` (cocotb's C++ clock). ``coverage``: a
    coverage build (module docstring); each run's ``coverage.dat`` goes to ``coverage_dir``.
    """

    def __init__(self, config: ChipConfig, *, build_root="build/sim", waves: bool = False,
                 clock: str = "harness", coverage: bool | None = None, coverage_dir=None):
        if not isinstance(config, ChipConfig):
            raise TypeError(f"config must be a spec.config.ChipConfig, not {config!r}")
        config.check_rtl()
        if clock not in ("harness", "gpi"):
            raise ValueError(f"clock must be 'harness' or 'gpi', not {clock!r}")
        self.config = config
        self.build_root = Path(build_root).resolve()
        self.waves = bool(waves)
        self.clock = clock
        env_dir = os.environ.get(COVERAGE_ENV)
        self.coverage = bool(env_dir) if coverage is None else bool(coverage)
        if coverage_dir is None:
            coverage_dir = env_dir or self.build_root / "coverage_data"
        self.coverage_dir = Path(coverage_dir).resolve()
        self._verilog: str | None = None
        self.last_build_seconds = 0.0

    # ---- building -------------------------------------------------------------------------------------
    def verilog(self) -> str:
        """The chip's Verilog, cached on disk (keyed by the config and every file under rtl/ and spec/)."""
        if self._verilog is None:
            import amaranth
            h = hashlib.sha256(json.dumps(self.config.to_dict(), sort_keys=True).encode()
                               + f"|amaranth {amaranth.__version__}".encode())
            for folder in ("rtl", "spec"):
                for path in sorted((_REPO / folder).rglob("*.py")):
                    h.update(str(path.relative_to(_REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
            src = ""
            if self.coverage:        # the markers' code is part of what the coverage Verilog depends on
                import inspect
                h.update(inspect.getsource(coverage_markers).encode())
                src = "_src"
            cache = self.build_root / "verilog" / f"chip_{self.config.name}{src}_{h.hexdigest()[:20]}.v"
            if cache.is_file():
                self._verilog = cache.read_text()
            else:
                with progress.step(f"generating the Verilog of chip {self.config.name}", where=cache.parent):
                    text = generate_chip_verilog(self.config, emit_src=self.coverage)
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
                tmp.write_text(text)
                os.replace(tmp, cache)
                self._verilog = text
        return self._verilog

    def _params(self, depth: int) -> dict:
        return {"CMD_BITS": command_bits(self.config), "RESP_BITS": data_bits(self.config),
                "DEPTH": depth, "RESP_DEPTH": depth}

    def build_dir(self, depth: int = MIN_DEPTH) -> Path:
        cfg = json.dumps(self.config.to_dict(), sort_keys=True).encode()
        name = (f"chip_{self.config.name}_{hashlib.sha256(cfg).hexdigest()[:8]}_d{_depth(depth)}_{self.clock}"
                + ("_waves" if self.waves else "") + ("_cov" if self.coverage else ""))
        return self.build_root / name

    def build(self, depth: int = MIN_DEPTH) -> Path:
        """Build (or reuse) the model for up to ``depth`` commands and responses; return its directory."""
        depth = _depth(depth)
        bdir = self.build_dir(depth)
        # clock="harness": the native main (sim/hdl/harness_main.cpp) clocks the harness in C++; no cocotb, no
        # --timing. clock="gpi": cocotb's GPI clock (tb_chip).
        args = BUILD_ARGS + (COVERAGE_ARGS if self.coverage else [])
        self.last_build_seconds = build_harness(
            bdir, {"chip.v": self.verilog(), "chip_harness.sv": HARNESS_SV.read_text()}, TOPLEVEL,
            parameters=self._params(depth), defines={}, build_args=args, waves=self.waves,
            label=f"chip {self.config.name}", typical=TYPICAL_BUILD_SECONDS.get(self.config.name),
            main=self._main())
        return bdir

    def _main(self) -> str:
        return "native" if self.clock == "harness" else "cocotb"

    # ---- running ----------------------------------------------------------------------------------------
    def play(self, commands, n_responses: int, *, seed: int = 1, valid_pct: int = 100, ready_pct: int = 100,
             max_cycles: int = 10_000_000, run_dir=None, keep: bool = False, timeout: float | None = None
             ) -> PlayResult:
        """Send ``commands`` (packed ints, ``spec.host.pack_command``) and collect ``n_responses`` responses.

        Raises ``SimulationError`` when the simulator fails, the harness times out (``max_cycles``), or the
        number of responses differs from ``n_responses``.
        """
        for name, pct in (("valid_pct", valid_pct), ("ready_pct", ready_pct)):
            if not isinstance(pct, int) or not 1 <= pct <= 100:
                raise ValueError(f"{name} must be an integer between 1 and 100, not {pct!r}")
        commands = [int(c) for c in commands]
        depth = _depth(max(len(commands), n_responses, 1))
        bdir = self.build(depth)
        rdir, owned = run_directory(self.build_root, bdir, run_dir)
        for name in ("resps.hex", "status.hex", "tb_timing.json", "results.xml", "dump.vcd", "coverage.dat"):
            with contextlib.suppress(FileNotFoundError):
                (rdir / name).unlink()
        digits = (command_bits(self.config) + 3) // 4
        (rdir / "cmds.hex").write_text("".join(f"{c:0{digits}x}\n" for c in commands))
        plusargs = [f"+run_dir={rdir}", f"+ncmds={len(commands)}", f"+nresp={n_responses}", f"+seed={seed}",
                    f"+valid_pct={valid_pct}", f"+ready_pct={ready_pct}", f"+max_cycles={max_cycles}",
                    f"+clock={self.clock}"]
        err, sim_seconds = run_harness(bdir, rdir, TB_MODULE, TOPLEVEL, plusargs, waves=self.waves,
                                       timeout=timeout, main=self._main())
        if self.coverage:
            collect_coverage(rdir, self.coverage_dir, f"chip_{self.config.name}")

        def fail(msg):
            raise SimulationError(f"{msg} (run directory {rdir}); simulator log tail:\n{_tail(rdir / 'sim.log')}")

        if err is not None:
            fail(f"simulation failed: {err!r}")
        status_path = rdir / "status.hex"
        if not status_path.is_file():
            fail("the harness did not finish (no status.hex)")
        words = [int(x, 16) for x in status_path.read_text().split() if not x.startswith("@")]
        if len(words) < 5 or words[4] != STATUS_MAGIC:
            fail(f"{status_path} is not a chip harness status file")
        cycles, got, sent, timeout_flag = words[:4]
        if timeout_flag:
            fail(f"the harness gave up after max_cycles = {max_cycles} ({sent} of {len(commands)} commands "
                 f"sent, {got} of {n_responses} responses)")
        if got != n_responses:
            fail(f"{got} responses arrived, {n_responses} expected")
        responses = []
        if got:
            responses = [int(x, 16) for x in (rdir / "resps.hex").read_text().split() if not x.startswith("@")]
        loop = None
        with contextlib.suppress(OSError, ValueError, KeyError):
            loop = float(json.loads((rdir / "tb_timing.json").read_text())["loop_seconds"])
        result = PlayResult(responses, cycles, sent, sim_seconds, loop, self.last_build_seconds, str(rdir))
        if self.waves:
            from waves.mxu import sanitize_vcd
            result.vcd_path = str(rdir / "dump.vcd")
            sanitize_vcd(result.vcd_path)
        elif owned and not keep:
            shutil.rmtree(rdir, ignore_errors=True)
            result.run_dir = None
        return result
