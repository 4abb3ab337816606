"""Waveform view of a system run: a GTKWave save file with the system's signals, each link's delay line and
every chip's signals, grouped per chip and, inside a chip, per slice (links included).

``system_layout(config, chips, names)`` picks, from the signal names of a VCD of the system harness
(``sim/hdl/system_harness.sv``, ``SystemSimulator(waves=True)``), one group for the system's run control (the
shared start, ``running``, ``done``, the captured error), one per directed link (its delay line's ``src`` and
``out``, ``rtl.link_delay.LinkDelayLine``: what the sender put on it and what the receiver sees
``link_latency`` running cycles later), then
``waves.chip.chip_layout``'s groups of every chip, named ``chip <c>: <group>``. ``system_wave_views(config,
chips, vcd)`` writes them as ``dump.gtkw`` beside the VCD and returns ``{"gtkw": path}`` (no PNG: the signals
of several chips do not fit one picture; GTKWave folds the groups).
"""
import re
from pathlib import Path

from .chip import chip_layout
from .plot import read_vcd, write_gtkw_groups

__all__ = ["system_layout", "system_wave_views"]

_RUN = ("fire", "running", "done", "error", "cycles", "err_chip", "err_cycle", "all_done", "any_fault")
_LINE = re.compile(r"link(\d+)_c(\d+)([ew])_c(\d+)([ew])\.(src|out)\.(valid|data)$")
_PORTS = ("src.valid", "src.data", "out.valid", "out.data")
_SIDE = {"e": "east", "w": "west"}


def system_layout(config, chips, names):
    """``[(group, [signal names])]`` for a VCD of ``chips`` chips of ``config`` whose signals are ``names``."""
    names = set(names)
    tops = sorted({n[:-len(".armed0")] for n in names if n.endswith(".armed0")}, key=len)
    if not tops:
        raise ValueError("the VCD has no system in it (no signal '<…>.armed0'); waves of a system come from "
                         "SystemSimulator(waves=True)")
    top = tops[0] + "."
    found = sorted(n for n in names if n.startswith(top + "chip") and n.endswith(f".icu_{config.slice_names[0]}.pc")
                   and n.count(".") == top.count(".") + 2)
    if len(found) != chips:
        raise ValueError(f"the VCD has {len(found)} chips of config {config.name}, not {chips}")
    run = [top + s for s in _RUN + tuple(f"armed{c}" for c in range(chips)) if top + s in names]
    groups = [("system: run control", run)]
    lines = {}
    for n in names:
        m = _LINE.match(n[len(top):]) if n.startswith(top) else None
        if m and n.count(".") == top.count(".") + 2:
            i, sc, se, dc, de, port, part = m.groups()
            lines.setdefault((int(i), int(sc), se, int(dc), de), {})[f"{port}.{part}"] = n
    for (i, sc, se, dc, de), ports in sorted(lines.items()):
        groups.append((f"link {i}: chip {sc} {_SIDE[se]} -> chip {dc} {_SIDE[de]} (in and out)",
                       [ports[p] for p in _PORTS if p in ports]))
    for c in range(chips):
        groups += [(f"chip {c}: {g}", sigs) for g, sigs in chip_layout(config, names, dut=f"{top}chip{c}.")]
    return [(g, s) for g, s in groups if s]


def system_wave_views(config, chips, vcd_path):
    """Write the ``.gtkw`` view of ``vcd_path`` (a system run's VCD); returns ``{"gtkw": path}``."""
    vcd_path = Path(vcd_path)
    header = read_vcd(vcd_path, signals=[])
    groups = system_layout(config, chips, header.widths)
    return {"gtkw": str(write_gtkw_groups(vcd_path.with_suffix(".gtkw"), vcd_path, groups, widths=header.widths))}
