"""Waveform views of a chip run: a GTKWave save file grouped by slice and a PNG of the first cycles.

``chip_layout(config, names)`` picks, from the signal names of a VCD of the chip harness, one group per
slice (the ICU's pc, opcode, issue, idle and fault; the MEM read and write units; the MXU's inputs and
outputs; the VXU's unit; the slice's stream write) plus run control, the host edge and the streams (each
slice's read selects and what they see).
``chip_wave_views(config, vcd)`` writes ``dump.gtkw`` (every group) and ``dump.png`` (the narrow signals of
every group over the first cycles of the run) next to the VCD and returns their paths.
"""
from pathlib import Path

from .plot import find_signals, plot_png, read_vcd, write_gtkw_groups

__all__ = ["chip_layout", "chip_wave_views", "PNG_CYCLES"]

PNG_CYCLES = 96       #: cycles drawn in the PNG, from the first cycle of the run
_WIDE = 64            #: signals wider than this go to the .gtkw only (a PNG row cannot show them)

_ICU = ("pc", "opcode", "issue", "idle", "fault", "fault_code")
_UNITS = {
    "mem": ("read_left", "r_bank", "r_addr", "write_left", "w_bank", "w_addr"),
    "mxu": ("loadw_left", "matmul_left", "array.a_valid", "array.a_swap", "array.a_acc", "array.a_emit",
            "array.a_addr", "array.a_data", "array.y_valid", "array.y_addr", "array.y_data"),
    "vxu": ("left", "dst4"),
    "link": ("send_active", "send_left", "send_item", "tx.valid", "tx.data", "recv_active", "recv_left",
             "recv_item", "rx.valid", "rx.data", "empty", "dropped_send", "dropped_rx"),
}
_PUT = ("put.valid", "put.stream", "put.data")


def _pick(names, prefix, suffixes):
    want = [prefix + s for s in suffixes]
    return [n for n in want if n in names]


def chip_layout(config, names, dut=None):
    """``[(group, [signal names])]`` for a VCD whose signals are ``names`` (full dotted names). ``dut``: the
    chip's scope with a trailing dot (default: the outermost scope holding a chip of ``config``)."""
    names = set(names)
    marker = f".icu_{config.slice_names[0]}.pc"
    if dut is None:
        tops = sorted({n[:-len(marker)] for n in names if n.endswith(marker)}, key=len)
        if not tops:
            raise ValueError(f"the VCD has no chip of config {config.name} in it (no signal '<…>{marker}')")
        dut = tops[0] + "."
    elif dut + marker[1:] not in names:
        raise ValueError(f"the VCD has no chip of config {config.name} at {dut[:-1]} (no signal "
                         f"'{dut}{marker[1:]}')")
    groups = [("run control", _pick(names, dut, ("running", "done", "error", "cycles", "all_idle", "any_fault"))),
              ("host edge", _pick(names, dut, ("cmd__valid", "cmd__ready", "cmd__payload.op", "cmd__payload.slice",
                                               "cmd__payload.addr", "resp__valid", "resp__ready")))]
    for name, kind in zip(config.slice_names, config.slices):
        sigs = (_pick(names, f"{dut}icu_{name}.", _ICU) + _pick(names, f"{dut}{name}.", _UNITS.get(kind, ()))
                + _pick(names, f"{dut}{name}.", _PUT))
        groups.append((f"{name} ({kind.upper()})", sigs))
    # the interconnect keeps no register per stream and slice (rtl/streams.py: rotating slots in a memory), so
    # the view is what every slice asks for and gets: its read ports' selects and the vectors they see
    streams = []
    for p in range(len(config.slices)):
        streams += _pick(names, f"{dut}streams.", (f"sel{p}", f"seen{p}"))
    groups.append(("streams (what each slice selects and sees)", streams))
    return [(g, s) for g, s in groups if s]


def chip_wave_views(config, vcd_path, cycles=PNG_CYCLES):
    """Write ``.gtkw`` and ``.png`` views of ``vcd_path``; returns ``{"gtkw": path, "png": path}``."""
    vcd_path = Path(vcd_path)
    header = read_vcd(vcd_path, signals=[])
    groups = chip_layout(config, header.widths)
    gtkw = write_gtkw_groups(vcd_path.with_suffix(".gtkw"), vcd_path, groups, widths=header.widths)
    # the PNG starts where the run starts (the cycle after START): find it from `running`
    running = find_signals(header, [g for g in groups if g[0] == "run control"][0][1][:1])
    run = read_vcd(vcd_path, signals=running)
    rises = [t for t, v in run[running[0]].changes if v == 1]
    narrow = [(g, [s for s in sigs if header.widths[s] <= _WIDE]) for g, sigs in groups]
    narrow = [(g, s) for g, s in narrow if s]
    clock = [n for n in header.widths if n.endswith(".dut.clk")] or ["*.clk"]
    first = 0
    if rises:
        clk = read_vcd(vcd_path, signals=clock[:1], max_time=rises[0])[clock[0]]
        first = sum(1 for (t, v), prev in zip(clk.changes[1:], clk.changes) if v == 1 and prev[1] == 0) - 1
    png = plot_png(vcd_path, narrow, vcd_path.with_suffix(".png"), clock=clock[0],
                   cycles=(max(0, first), max(0, first) + cycles),
                   title=f"chip {config.name}: the first {cycles} cycles of the run (cycle 0 of the run is harness "
                         f"cycle {max(0, first)}), grouped by slice")
    return {"gtkw": str(gtkw), "png": str(png)}
