"""A picture of a static schedule: one row per slice, a bar per instruction's activity.

``draw_timeline(program, path, title=None)`` writes a PNG (matplotlib, Agg canvas: no display needed):
rows are the slices (canonical names, west at the top), x is the cycle; each instruction other than ``NOP``
is a bar from its issue cycle to ``issue + span`` (``spec.isa.timing(...).span``: through its last
activity, results in flight included), coloured by opcode, with a legend. Returns the path.
"""
from pathlib import Path

from spec import isa

__all__ = ["draw_timeline", "OPCODE_COLOURS"]

#: Bar colour of each opcode.
OPCODE_COLOURS = {
    "READ": "#4C72B0", "WRITE": "#55A868", "LOADW": "#C44E52", "MATMUL": "#8172B2", "VOP": "#CCB974",
    "SETQ": "#64B5CD", "LOADLUT": "#DD8452", "HALT": "#333333",
}


def draw_timeline(program, path, title=None):
    """Draw ``program`` (a ``compiler.schedule.Program``) to the PNG ``path``; returns ``Path(path)``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    c = program.config
    names = c.slice_names
    bars = {}                                       # opcode -> [(row, start, width)]
    for p, sched in enumerate(program.schedule):
        for t, ins in sched:
            if ins.op == "NOP":
                continue
            span = max(1, isa.timing(ins, c).span)
            bars.setdefault(ins.op, []).append((p, t, span))
    end = max(program.predicted_cycles, 1)
    fig = Figure(figsize=(min(4 + end / 40, 24), 1.2 + 0.5 * len(names)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ops = [op for op in OPCODE_COLOURS if op in bars] + sorted(op for op in bars if op not in OPCODE_COLOURS)
    for op in ops:
        colour = OPCODE_COLOURS.get(op, "#999999")
        rows = {}
        for p, t, w in bars[op]:
            rows.setdefault(p, []).append((t, w))
        for p, spans in rows.items():
            ax.broken_barh(spans, (p - 0.35, 0.7), facecolors=colour, edgecolors="black", linewidth=0.3,
                           alpha=0.85)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlim(0, end)
    ax.set_xlabel("cycle")
    ax.grid(axis="x", linestyle=":", linewidth=0.5)
    ax.set_title(title or f"{c.name}: {program.predicted_cycles} cycles")
    ax.legend(handles=[Patch(facecolor=OPCODE_COLOURS.get(op, "#999999"), label=op) for op in ops],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
