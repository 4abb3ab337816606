"""Run a system of chips (``rtl.system.System``) in Verilator, one host edge per chip, with no per-cycle Python.

:class:`SystemSimulator` generates the system's Verilog (module ``system``), builds it once per configuration,
chip count and topology together with the command-playing harness ``sim/hdl/system_harness.sv`` and a small
generated port adapter (``system_ports``: the System's per-chip ports ``cmd<c>__valid`` … as vectors indexed by
chip, :func:`generate_ports_sv`), and plays one command list per chip on its own host edge at once
(:meth:`SystemSimulator.play`). Each edge has its own pseudo-random valid/ready pattern (the harness mixes the
seed with the chip index) and may have its own valid/ready percentages, so the back-pressure differs per chip.
The harness captures the system's status ports (cycles, error, err_chip, err_cycle) in the cycle its ``done``
rises. ``sim.system_run`` builds the command lists (``sim.chip_run.host_commands`` per chip) and compares with
``golden.system.SystemSim``. Whoever runs the model only clocks it, resets it and waits for its ``done``:
``sim.verilator``'s native C++ main (``clock="harness"``, the default) or cocotb (``clock="gpi"``:
``cocotb_tests/tb_system.py``).

Files of a run (in its run directory): ``cmds<c>.hex`` (chip ``c``'s commands, one packed command per line),
``resps<c>.hex`` (its responses), ``status.hex`` (the harness's status: sim/hdl/system_harness.sv).

Builds live in ``build_root/system_<config>_<hash>_n<chips>_<topology>_d<depth>_<clock>/`` and are reused
across runs and processes (content hash, ``fcntl`` lock: ``sim.verilator.build_harness``); the Verilog is
cached under ``build_root/verilog`` (keyed by the configuration, chips, topology, Amaranth's version and every
file under rtl/ and spec/).
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
from . import verilator as _verilator
from .toolchain import use_yosys
from .verilator import BUILD_ARGS, TIMING_ARGS, SimulationError, _tail, build_harness, run_directory, run_harness

__all__ = ["SystemSimulator", "SystemPlayResult", "generate_system_verilog", "generate_ports_sv", "HARNESS_SV",
           "DUT_MODULE", "check_system_args"]

_REPO = Path(__file__).resolve().parent.parent
HARNESS_SV = _REPO / "sim" / "hdl" / "system_harness.sv"
TB_MODULE = "tb_system"
TOPLEVEL = "system_harness"
DUT_MODULE = "system"
PORTS_MODULE = "system_ports"
STATUS_MAGIC = 0x5359_5354_0000_0001
STATUS_WORDS = 10          #: status.hex words before the per-chip pairs (sim/hdl/system_harness.sv)
MIN_DEPTH = 1 << 12        #: commands and responses per edge that a build holds (one build per power of two)
HARNESS_OP = 7             #: the chip harness's own command op; the system harness has none
#: ``sim.verilator`` builds models with its native C++ main (``main="native"``: no cocotb, no ``--timing``).
#: ``clock="harness"`` uses it when it is there, as ``ChipSimulator`` does; else the harness's own clock
#: (``SYSTEM_HARNESS_CLOCK`` + ``--timing``) under cocotb.
NATIVE = "native" in getattr(_verilator, "MAINS", ())


def check_system_args(config, chips, topology):
    """``ValueError`` / ``TypeError`` in one line for a bad configuration, chip count or topology (the
    messages of ``rtl.system.System``); returns ``(config, chips, topology)``."""
    from rtl.system import MAX_RTL_CHIPS, TOPOLOGIES
    if not isinstance(config, ChipConfig):
        raise TypeError(f"config must be a spec.config.ChipConfig, not {config!r}")
    config.check_rtl()
    if not isinstance(chips, int) or isinstance(chips, bool) or not 1 <= chips <= MAX_RTL_CHIPS:
        raise ValueError(f"chips must be an integer between 1 and {MAX_RTL_CHIPS}, not {chips!r}")
    if topology not in TOPOLOGIES:
        raise ValueError(f"topology must be one of {', '.join(map(repr, TOPOLOGIES))}, not {topology!r}")
    if (chips > 1 or topology == "ring") and set(config.link_ends) != {"west", "east"}:
        raise ValueError(f"a {topology} of {chips} chip{'s' * (chips > 1)} needs a link slice at both ends of "
                         f"config {config.name} (slices: {', '.join(config.slice_names)}; ChipConfig.with_links() "
                         f"adds them)")
    return config, chips, topology


def generate_system_verilog(config: ChipConfig, chips: int, topology: str = "line", emit_src: bool = False,
                            name: str = DUT_MODULE) -> str:
    """Verilog of ``rtl.system.System(config, chips, topology)`` as module ``name`` (default ``system``;
    byte-identical across runs unless ``emit_src``, which keeps Amaranth's ``src`` attributes)."""
    from amaranth.back import verilog

    from rtl.system import System

    check_system_args(config, chips, topology)
    use_yosys()
    return verilog.convert(System(config, chips, topology), name=name, emit_src=emit_src)


def generate_ports_sv(config: ChipConfig, chips: int) -> str:
    """The ``system_ports`` adapter: the ports of module ``system`` for ``chips`` chips (``cmd<c>__valid``,
    ``cmd<c>__ready``, ``cmd<c>__payload``, ``resp<c>__…``) as vectors indexed by chip, for the harness's
    generate loop. Nothing but wires."""
    cb, rb, n = command_bits(config), data_bits(config), chips
    lines = [
        f"// Generated by sim/system_verilator.py for {n} chip{'s' * (n > 1)} of config {config.name}: the",
        "// per-chip ports of module `system` as vectors indexed by chip (sim/hdl/system_harness.sv).",
        f"module {PORTS_MODULE} (",
        "    input  logic clk,",
        "    input  logic rst,",
        f"    input  logic [{n - 1}:0] cmd_valid,",
        f"    output logic [{n - 1}:0] cmd_ready,",
        f"    input  logic [{n * cb - 1}:0] cmd_payload,",
        f"    output logic [{n - 1}:0] resp_valid,",
        f"    input  logic [{n - 1}:0] resp_ready,",
        f"    output logic [{n * rb - 1}:0] resp_payload,",
        "    output logic running,",
        "    output logic done,",
        "    output logic error,",
        "    output logic [31:0] cycles,",
        "    output logic [2:0] err_chip,",
        "    output logic [31:0] err_cycle",
        ");",
        f"    {DUT_MODULE} sys (",
        "        .clk (clk),",
        "        .rst (rst),",
    ]
    for c in range(n):
        lines += [
            f"        .cmd{c}__valid (cmd_valid[{c}]),",
            f"        .cmd{c}__ready (cmd_ready[{c}]),",
            f"        .cmd{c}__payload (cmd_payload[{c * cb} +: {cb}]),",
            f"        .resp{c}__valid (resp_valid[{c}]),",
            f"        .resp{c}__ready (resp_ready[{c}]),",
            f"        .resp{c}__payload (resp_payload[{c * rb} +: {rb}]),",
        ]
    lines += [
        "        .running (running),",
        "        .done (done),",
        "        .error (error),",
        "        .cycles (cycles),",
        "        .err_chip (err_chip),",
        "        .err_cycle (err_cycle)",
        "    );",
        "endmodule",
        "",
    ]
    return "\n".join(lines)


def _depth(n: int) -> int:
    return max(MIN_DEPTH, 1 << max(0, int(n) - 1).bit_length())


def _per_chip(name, value, n):
    """``value`` as ``n`` percentages: one int for every chip, or a sequence of ``n``."""
    values = [value] * n if isinstance(value, int) and not isinstance(value, bool) else list(value)
    if len(values) != n:
        raise ValueError(f"{name} must be an integer or {n} integers (one per chip), not {len(values)}")
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 100:
            raise ValueError(f"{name} must be an integer between 1 and 100, not {v!r}")
    return values


@dataclass
class SystemPlayResult:
    """One harness run. ``responses``: per chip, its responses (ints, in order). The system's status as the
    harness captured it in the cycle ``done`` rose: ``done`` (it rose at all), ``cycles``, ``error``,
    ``err_chip``, ``err_cycle``; ``done_rises`` (how often it rose), ``start_cycle`` / ``done_cycle`` (harness
    cycles of the first rise of ``running`` and of ``done``). ``harness_cycles``: from the release of the
    harness reset to the end; ``commands_sent`` per chip; wall times in seconds."""
    responses: list
    done: bool
    cycles: int
    error: bool
    err_chip: int
    err_cycle: int
    done_rises: int
    start_cycle: int
    done_cycle: int
    harness_cycles: int
    commands_sent: list
    sim_seconds: float
    loop_seconds: float | None
    build_seconds: float
    run_dir: str | None
    vcd_path: str | None = None


class SystemSimulator:
    """Verilator simulation of ``chips`` chips of ``config`` in ``topology`` (``"line"`` or ``"ring"``).

    ``waves``: build with tracing and keep ``dump.vcd`` in the run directory. ``clock``: ``"harness"`` (the
    fastest: the native C++ main of ``sim.verilator`` clocks the model, no cocotb; ``NATIVE``) or ``"gpi"``
    (a cocotb build, ``cocotb_tests/tb_system.py``, clocked by cocotb's C++ clock).
    """

    def __init__(self, config: ChipConfig, chips: int, topology: str = "line", *, build_root="build/sim",
                 waves: bool = False, clock: str = "harness"):
        check_system_args(config, chips, topology)
        if clock not in ("harness", "gpi"):
            raise ValueError(f"clock must be 'harness' or 'gpi', not {clock!r}")
        self.config, self.chips, self.topology = config, chips, topology
        self.build_root = Path(build_root).resolve()
        self.waves = bool(waves)
        self.clock = clock
        self._verilog: str | None = None
        self.last_build_seconds = 0.0

    @property
    def name(self):
        return f"system_{self.config.name}_n{self.chips}_{self.topology}"

    def _key(self) -> bytes:
        return json.dumps({"config": self.config.to_dict(), "chips": self.chips, "topology": self.topology},
                          sort_keys=True).encode()

    # ---- building -------------------------------------------------------------------------------------
    def verilog(self) -> str:
        """The system's Verilog, cached on disk (keyed by config, chips, topology and every file under rtl/
        and spec/)."""
        if self._verilog is None:
            import amaranth
            h = hashlib.sha256(self._key() + f"|amaranth {amaranth.__version__}".encode())
            for folder in ("rtl", "spec"):
                for path in sorted((_REPO / folder).rglob("*.py")):
                    h.update(str(path.relative_to(_REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
            cache = self.build_root / "verilog" / f"{self.name}_{h.hexdigest()[:20]}.v"
            if cache.is_file():
                self._verilog = cache.read_text()
            else:
                with progress.step(f"generating the Verilog of {self.chips} chips of {self.config.name} "
                                   f"({self.topology})", where=cache.parent):
                    text = generate_system_verilog(self.config, self.chips, self.topology)
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
                tmp.write_text(text)
                os.replace(tmp, cache)
                self._verilog = text
        return self._verilog

    def _params(self, depth: int) -> dict:
        return {"N_CHIPS": self.chips, "CMD_BITS": command_bits(self.config), "RESP_BITS": data_bits(self.config),
                "DEPTH": depth, "RESP_DEPTH": depth}

    def build_dir(self, depth: int = MIN_DEPTH) -> Path:
        digest = hashlib.sha256(self._key()).hexdigest()[:8]
        return self.build_root / (f"system_{self.config.name}_{digest}_n{self.chips}_{self.topology}_d{_depth(depth)}"
                                  f"_{self.clock}" + ("_waves" if self.waves else ""))

    def build(self, depth: int = MIN_DEPTH) -> Path:
        """Build (or reuse) the model for up to ``depth`` commands and responses per chip; return its
        directory. ``last_build_seconds``: the time it took (0 when reused)."""
        depth = _depth(depth)
        bdir = self.build_dir(depth)
        own_clock = self.clock == "harness" and not NATIVE
        defines = {"SYSTEM_HARNESS_CLOCK": 1} if own_clock else {}
        args = BUILD_ARGS + (TIMING_ARGS if own_clock else [])
        sources = {"system.v": self.verilog(), "system_ports.sv": generate_ports_sv(self.config, self.chips),
                   "system_harness.sv": HARNESS_SV.read_text()}
        self.last_build_seconds = build_harness(
            bdir, sources, TOPLEVEL, parameters=self._params(depth), defines=defines, build_args=args,
            waves=self.waves, label=f"{self.chips} chips of {self.config.name} ({self.topology})", **self._main())
        return bdir

    def _main(self) -> dict:
        """``main=`` for ``build_harness`` / ``run_harness``: the native main for ``clock="harness"`` where
        ``sim.verilator`` has it (``NATIVE``), else nothing (cocotb)."""
        return {"main": "native" if self.clock == "harness" else "cocotb"} if NATIVE else {}

    # ---- running ----------------------------------------------------------------------------------------
    def play(self, commands_per_chip, n_responses_per_chip, *, seed: int = 1, valid_pct=100, ready_pct=100,
             max_cycles: int = 10_000_000, run_dir=None, keep: bool = False, timeout: float | None = None
             ) -> SystemPlayResult:
        """Send chip ``c``'s ``commands_per_chip[c]`` (packed ints, ``spec.host.pack_command``) on its host edge
        and collect ``n_responses_per_chip[c]`` responses, every edge at once.

        ``valid_pct`` / ``ready_pct``: one percentage for every edge or one per chip. ``seed``: the harness's
        generators (each edge mixes it with its chip index). Raises ``SimulationError`` when the simulator
        fails, the harness times out (``max_cycles``), or a chip's number of responses differs.
        """
        n = self.chips
        commands_per_chip = [[int(c) for c in cmds] for cmds in commands_per_chip]
        n_responses_per_chip = [int(k) for k in n_responses_per_chip]
        if len(commands_per_chip) != n or len(n_responses_per_chip) != n:
            raise ValueError(f"this system has {n} chips: give {n} command lists and {n} response counts, not "
                             f"{len(commands_per_chip)} and {len(n_responses_per_chip)}")
        valid = _per_chip("valid_pct", valid_pct, n)
        ready = _per_chip("ready_pct", ready_pct, n)
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
            raise ValueError(f"seed must be an integer between 0 and {2**32 - 1}, not {seed!r}")
        for c, cmds in enumerate(commands_per_chip):
            if any(cmd & 7 == HARNESS_OP for cmd in cmds):
                raise ValueError(f"chip {c}: op {HARNESS_OP} (the chip harness's reset command) has no meaning "
                                 f"in the system harness")
        depth = _depth(max([len(c) for c in commands_per_chip] + n_responses_per_chip + [1]))
        bdir = self.build(depth)
        rdir, owned = run_directory(self.build_root, bdir, run_dir)
        stale = ["status.hex", "tb_timing.json", "results.xml", "dump.vcd"]
        stale += [f"{k}{c}.hex" for c in range(n) for k in ("cmds", "resps")]
        for name in stale:
            with contextlib.suppress(FileNotFoundError):
                (rdir / name).unlink()
        digits = (command_bits(self.config) + 3) // 4
        plusargs = [f"+run_dir={rdir}", f"+seed={seed}", f"+max_cycles={max_cycles}", f"+clock={self.clock}"]
        for c, cmds in enumerate(commands_per_chip):
            (rdir / f"cmds{c}.hex").write_text("".join(f"{x:0{digits}x}\n" for x in cmds))
            plusargs += [f"+ncmds{c}={len(cmds)}", f"+nresp{c}={n_responses_per_chip[c]}",
                         f"+valid_pct{c}={valid[c]}", f"+ready_pct{c}={ready[c]}"]
        err, sim_seconds = run_harness(bdir, rdir, TB_MODULE, TOPLEVEL, plusargs, waves=self.waves,
                                       timeout=timeout, **self._main())

        def fail(msg):
            raise SimulationError(f"{msg} (run directory {rdir}); simulator log tail:\n{_tail(rdir / 'sim.log')}")

        if err is not None:
            fail(f"simulation failed: {err!r}")
        status_path = rdir / "status.hex"
        if not status_path.is_file():
            fail("the harness did not finish (no status.hex)")
        words = [int(x, 16) for x in status_path.read_text().split() if not x.startswith("@")]
        if len(words) != STATUS_WORDS + 2 * n or words[9] != STATUS_MAGIC:
            fail(f"{status_path} is not a status file of a {n}-chip system harness")
        cycles, timeout_flag, rises, start_cyc, done_cyc, s_cycles, s_error, s_chip, s_err_cycle = words[:9]
        got = words[STATUS_WORDS::2]
        sent = words[STATUS_WORDS + 1::2]
        if timeout_flag:
            fail(f"the harness gave up after max_cycles = {max_cycles} (commands sent per chip {sent} of "
                 f"{[len(c) for c in commands_per_chip]}, responses {got} of {n_responses_per_chip})")
        if got != n_responses_per_chip:
            fail(f"responses per chip: {got} arrived, {n_responses_per_chip} expected")
        responses = []
        for c in range(n):
            path = rdir / f"resps{c}.hex"
            responses.append([int(x, 16) for x in path.read_text().split() if not x.startswith("@")]
                             if got[c] else [])
        loop = None
        with contextlib.suppress(OSError, ValueError, KeyError):
            loop = float(json.loads((rdir / "tb_timing.json").read_text())["loop_seconds"])
        result = SystemPlayResult(responses, rises > 0, s_cycles, bool(s_error), s_chip, s_err_cycle, rises,
                                  start_cyc, done_cyc, cycles, sent, sim_seconds, loop, self.last_build_seconds,
                                  str(rdir))
        if self.waves:
            from waves.mxu import sanitize_vcd
            result.vcd_path = str(rdir / "dump.vcd")
            sanitize_vcd(result.vcd_path)
        elif owned and not keep:
            shutil.rmtree(rdir, ignore_errors=True)
            result.run_dir = None
        return result
