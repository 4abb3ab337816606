"""Waveform helpers for debugging, generic over signal names: read a VCD, plot signals to a PNG, and write a
GTKWave save file of named groups.

Signals are named by their full hierarchical path, the scopes joined with ``.`` as GTKWave shows them
(``top.sub.sig``), without the declared bit range. Wherever a list of signals is taken, each entry may be an
exact name, a glob (``*.icu_mem0.pc``; ``[`` also matches itself, so ``*.x[0]`` finds Amaranth's lane
``x[0]``), or a dotted suffix of a name (``icu_mem0.pc``). A name that matches nothing is a ``ValueError``
naming it and listing the closest names in the VCD.

Values are ints (a vector's bits read as unsigned binary), floats for ``real`` variables, and ``None`` for a
value with any ``x``/``z`` (or other non-0/1) bit.
"""
import difflib
import fnmatch
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Signal", "Vcd", "read_vcd", "find_signals", "plot_png", "write_gtkw_groups"]

_CHUNK = 1 << 20
_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "ps": 1e-12, "fs": 1e-15}
_TIME = re.compile(r"^\s*([0-9.]+(?:[eE][-+]?\d+)?)\s*([munpf]?s)\s*$")


@dataclass
class Signal:
    """One signal of a VCD: its ``width`` in bits, its declared ``range`` (``"[31:0]"``, or ``""``) and its
    ``changes``, a list of ``(time, value)`` in strictly increasing time, each value differing from the one
    before (the last value written at a time stands for that time)."""
    name: str
    width: int
    changes: list = field(default_factory=list)
    range: str = ""

    def value_at(self, time):
        """The value at ``time`` (after all the changes at that time); ``None`` before the first change."""
        i = bisect_right(self.changes, time, key=lambda c: c[0])
        return self.changes[i - 1][1] if i else None


@dataclass
class Vcd:
    """A parsed VCD: ``timescale`` as written (``"1ps"``) and in seconds (``timescale_s``), ``widths`` of
    every signal in the header, the selected ``signals`` with their changes, and ``end_time``, the last
    timestamp read (at most ``max_time`` when reading stopped early; 0 when only the header was read)."""
    timescale: str
    timescale_s: float
    widths: dict
    signals: dict
    end_time: int = 0
    ranges: dict = field(default_factory=dict, repr=False)
    idents: dict = field(default_factory=dict, repr=False)

    def __getitem__(self, name):
        """The selected signal ``name``, or the one selected signal that ``name`` matches as a pattern."""
        if name in self.signals:
            return self.signals[name]
        found = [n for n in find_signals(self, [name]) if n in self.signals]
        if len(found) != 1:
            raise KeyError(f"{name!r} matches {len(found)} of the selected signals: {found[:5]}")
        return self.signals[found[0]]


# ---- parsing ------------------------------------------------------------------------------------------------

def _seconds(text):
    """``"10ns"``, ``"1 ps"`` or a number of seconds -> seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    m = _TIME.match(str(text))
    if not m:
        raise ValueError(f"cannot read a time from {text!r} (expected e.g. '10ns')")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _read_header(f):
    """Parse the header of the open VCD ``f``; return ``(Vcd without signals, body text read past it)``."""
    lines = []
    for line in f:
        lines.append(line)
        if "$enddefinitions" in line:
            break
    text = "".join(lines)
    head, _, after = text.partition("$enddefinitions")
    after = after.split("$end", 1)[1] if "$end" in after else ""
    tokens = head.split()
    scope, widths, ranges, idents, timescale = [], {}, {}, {}, "1s"
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        try:
            end = tokens.index("$end", i + 1)
        except ValueError:
            end = n
        args = tokens[i + 1:end]
        if tok == "$scope" and len(args) >= 2:
            scope.append(args[1])
        elif tok == "$upscope" and scope:
            scope.pop()
        elif tok == "$timescale" and args:
            timescale = "".join(args)
        elif tok == "$var" and len(args) >= 4:
            width, ident, name, rng = int(args[1]), args[2], args[3], "".join(args[4:])
            if rng and ":" not in rng:          # one bit of a split vector, shown by GTKWave as name[3]
                name, rng = name + rng, ""
            full = ".".join(scope + [name])
            if full not in widths:
                widths[full], ranges[full], idents[full] = width, rng, ident
        i = end + 1 if tok.startswith("$") else i + 1
    try:
        ts = _seconds(timescale)
    except ValueError:
        ts = 1.0
    return Vcd(timescale, ts, widths, {}, 0, ranges, idents), after


def _put(changes, t, v):
    """Append a change keeping the ``Signal.changes`` contract (increasing times, each value new)."""
    if changes and changes[-1][0] == t:
        changes.pop()
    if not changes or changes[-1][1] != v:
        changes.append((t, v))


def _vector(bits, real):
    try:
        return float(bits) if real else int(bits, 2)
    except ValueError:
        return None


def _read_body(f, text, wanted, max_time, clock=None, rises=None):
    """Stream the value changes of ``f`` (``text`` is what was already read of them) into ``wanted``
    (identifier -> changes list). Stop after ``max_time``, or after the time of the ``rises``-th rising edge
    of the changes list ``clock``. Return the last timestamp read."""
    t, last, pending, real, skipping, seen, rose = 0, 0, None, False, False, 0, None
    rest, chunk, eof = "", text, False
    while True:
        data = rest + chunk
        tokens = data.split()
        rest = tokens.pop() if not eof and tokens and not data[-1].isspace() else ""   # may go on
        for tok in tokens:
            if pending is not None:      # the identifier after a b.../r... value
                ch = wanted.get(tok)
                if ch is not None:
                    _put(ch, t, _vector(pending, real))
                pending = None
                continue
            if skipping:
                skipping = tok != "$end"
                continue
            c = tok[0]
            if c == "#":
                t = int(tok[1:])
                if max_time is not None and t > max_time:
                    return last
                last = t
            elif c == "b" or c == "B":
                pending, real = tok[1:], False
            elif c == "r" or c == "R":
                pending, real = tok[1:], True
            elif c == "$":
                skipping = tok == "$comment"
            else:
                ch = wanted.get(tok[1:])
                if ch is not None:
                    v = 1 if c == "1" else 0 if c == "0" else None
                    _put(ch, t, v)
                    if ch is clock and v == 1 and ch[-1][0] == t and t != rose and _rises_last(ch):
                        seen, rose = seen + 1, t
                        if seen == rises:
                            max_time = t
        if eof:
            return last
        chunk = f.read(_CHUNK)
        eof = not chunk


def _escape_brackets(pattern):
    return pattern.replace("[", "[[]")


def _close_matches(pattern, names):
    """Up to five names of ``names`` that look like ``pattern`` (whole names, then last components)."""
    core = pattern.strip("*?")
    out = difflib.get_close_matches(core, names, n=5, cutoff=0.6)
    leaf = core.rsplit(".", 1)[-1]
    by_leaf = {}
    for name in names:
        by_leaf.setdefault(name.rsplit(".", 1)[-1], []).append(name)
    for near in difflib.get_close_matches(leaf, list(by_leaf), n=5, cutoff=0.6):
        out += by_leaf[near]
    return list(dict.fromkeys(out))[:5]


def find_signals(vcd, patterns):
    """The full names of the signals of ``vcd`` (a ``Vcd`` or a VCD path) that ``patterns`` match, in the
    patterns' order (a glob's matches in header order), each name once.

    A pattern matches an exact name, else (as a glob, ``[`` taken both as a class and as itself) whole names,
    else names it is a dotted suffix of (``inner.*`` finds ``top.sub.inner.pc``); a trailing declared range
    (``sig[31:0]``) is ignored. A pattern that matches nothing raises ``ValueError`` naming it and its close
    matches.
    """
    if not isinstance(vcd, Vcd):
        vcd = read_vcd(vcd, signals=[])
    names = list(vcd.widths)
    out, missing = {}, []
    for pattern in patterns:
        found = _match(pattern, names, vcd.widths)
        if not found:
            missing.append(pattern)
        out.update(dict.fromkeys(found))
    if missing:
        raise ValueError("; ".join(
            f"no signal {p!r} in the VCD (close matches: {', '.join(_close_matches(p, names)) or 'none'})"
            for p in missing))
    return list(out)


def _match(pattern, names, widths):
    if pattern in widths:
        return [pattern]
    bare = re.sub(r"\[\d+:\d+\]$", "", pattern)
    if bare != pattern and bare in widths:
        return [bare]
    if any(ch in pattern for ch in "*?["):
        for glob in (pattern, "*." + pattern):       # whole names, else dotted suffixes
            lit = _escape_brackets(glob)
            found = [n for n in names if fnmatch.fnmatchcase(n, glob) or fnmatch.fnmatchcase(n, lit)]
            if found:
                return found
    return [n for n in names if n.endswith("." + bare)]


def read_vcd(path, signals=None, max_time=None):
    """Parse the VCD ``path``: the header, and the value changes of ``signals`` (names or patterns, see
    ``find_signals``; ``None`` for all, ``[]`` for none: the header only) up to and including ``max_time``
    (in timescale units), after which reading stops. Returns a ``Vcd``; unselected identifiers are skipped
    with one dict lookup each."""
    return _read(path, signals, max_time)


def _read(path, signals, max_time, clock=None, rises=None):
    with open(path, encoding="utf-8", errors="replace") as f:
        vcd, text = _read_header(f)
        names = list(vcd.widths) if signals is None else find_signals(vcd, signals)
        if clock is not None:
            clock = find_signals(vcd, [clock])[0]
            names = list(dict.fromkeys(names + [clock]))
        wanted = {}
        for name in names:
            ch = wanted.setdefault(vcd.idents[name], [])   # aliases (one identifier) share their changes
            vcd.signals[name] = Signal(name, vcd.widths[name], ch, vcd.ranges[name])
        if wanted:
            clock_ch = vcd.signals[clock].changes if clock is not None else None
            vcd.end_time = _read_body(f, text, wanted, max_time, clock_ch, rises)
    return vcd


# ---- plotting -----------------------------------------------------------------------------------------------

def _pick_clock(vcd, clock):
    """The clock among the names ``clock`` matches: the shallowest, then the first in the header."""
    found = [n for n in find_signals(vcd, [clock]) if vcd.widths[n] == 1]
    if not found:
        raise ValueError(f"no 1-bit clock signal matches {clock!r}")
    return min(found, key=lambda n: n.count("."))


def _rises_last(changes):
    """Whether the last change of ``changes`` is a rising edge: to 1 from anything else, or from nothing."""
    return changes[-1][1] == 1 and (len(changes) == 1 or changes[-2][1] != 1)


def _rising_edges(changes):
    """The times of the rising edges (see ``_rises_last``) in ``changes``."""
    return [t for i, (t, v) in enumerate(changes) if v == 1 and (i == 0 or changes[i - 1][1] != 1)]


def _cycle_axis(edges):
    """A function mapping times to cycles: cycle k at rising edge k, linear between edges and beyond them."""
    import numpy as np
    e = np.asarray(edges, dtype=float)
    k = np.arange(len(e), dtype=float)
    first, last = e[1] - e[0], e[-1] - e[-2]

    def to_cycles(times):
        t = np.asarray(times, dtype=float)
        x = np.interp(t, e, k)
        x = np.where(t < e[0], (t - e[0]) / first, x)
        return np.where(t > e[-1], k[-1] + (t - e[-1]) / last, x)
    return to_cycles


def _segments(changes, x_of, x0, x1):
    """``[(start, end, value)]`` in cycles covering ``[x0, x1]`` (``None`` before the first change)."""
    if not changes:
        return [(x0, x1, None)]
    xs = list(x_of([t for t, _ in changes]))
    out = [(-float("inf"), xs[0], None)] if xs[0] > x0 else []
    for i, (_, v) in enumerate(changes):
        out.append((xs[i], xs[i + 1] if i + 1 < len(xs) else float("inf"), v))
    merged = []
    for a, b, v in out:
        if merged and merged[-1][2] == v:
            a = merged.pop()[0]
        merged.append((a, b, v))
    return [(max(a, x0), min(b, x1), v) for a, b, v in merged if b > x0 and a < x1]


def _hex_label(value, chars):
    """The hex of ``value`` in at most ``chars`` characters (low digits kept after a leading ``…``)."""
    s = "x" if value is None else format(value, "x") if isinstance(value, int) else f"{value:g}"
    if len(s) <= chars:
        return s
    return "…" + s[-(chars - 1):] if chars >= 3 else ""


def _short_names(names):
    """Names less the dotted prefix all of them share (the last component is always kept)."""
    parts = [n.split(".") for n in names]
    common = 0
    while parts and all(len(p) > common + 1 and p[common] == parts[0][common] for p in parts):
        common += 1
    return {n: ".".join(p[common:]) for n, p in zip(names, parts)}


_ROW, _GROUP_ROW = 1.0, 0.8
_DIGITAL, _BUS_EDGE, _BUS_FACE, _X = "#1a7f37", "#1f5fbf", "#e8f0fe", "#d62728"


def plot_png(path_vcd, groups, out_png, clock="*.clk", cycles=(0, 64), title=None, period=None, dpi=100):
    """Draw cycles ``cycles[0]..cycles[1]`` of the signals of ``groups`` (an ordered list of
    ``(group_name, [names or patterns])``) into the PNG ``out_png``; return its path.

    One row per signal under each group's bold label: 1-bit signals as digital traces, vectors as bus boxes
    with the hex value inside where it fits, x/z in red. The x axis counts cycles: cycle k starts at
    rising edge k (counted from 0) of ``clock`` (the shallowest match of the pattern; an edge is a change to 1
    from 0 or x, or a first value of 1), or, if ``clock`` is None, at time
    ``k * period`` (seconds, or a string such as ``"10ns"``). The VCD is read only up to the last cycle
    shown. The width (14 in) and ``dpi`` are fixed; the height grows with the number of rows.
    """
    from matplotlib.figure import Figure  # no pyplot: no global state, no display; Figure saves via Agg
    from matplotlib.patches import Polygon
    from matplotlib.ticker import MaxNLocator, MultipleLocator
    from matplotlib.transforms import blended_transform_factory

    c0, c1 = cycles
    if c1 <= c0:
        raise ValueError(f"cycles {cycles!r}: the end must be after the start")
    header = read_vcd(path_vcd, signals=[])
    rows = [(title_, find_signals(header, patterns)) for title_, patterns in groups]
    names = list(dict.fromkeys(n for _, ns in rows for n in ns))
    if clock is not None:
        clk = _pick_clock(header, clock)
        vcd = _read(path_vcd, names, None, clock=clk, rises=c1 + 2)
        edges = _rising_edges(vcd.signals[clk].changes)
        if len(edges) < 2:
            raise ValueError(f"clock {clk!r} has {len(edges)} rising edge(s) in the VCD; 2 are needed")
        x_of = _cycle_axis(edges)
    else:
        if period is None:
            raise ValueError("without a clock, give the cycle period (e.g. period='10ns')")
        per = _seconds(period) / header.timescale_s
        vcd = read_vcd(path_vcd, names, max_time=int((c1 + 1) * per))

        def x_of(times):
            import numpy as np
            return np.asarray(times, dtype=float) / per

    labels = _short_names(names)
    units = sum(_GROUP_ROW + _ROW * len(ns) for _, ns in rows)
    label_in = min(4.5, 0.3 + 0.075 * max([len(s) for s in labels.values()] + [10]))
    width_in, top_in, bottom_in, row_in = 14.0, 0.5 if title else 0.2, 0.45, 0.28
    plot_in = width_in - label_in - 0.2
    fig = Figure(figsize=(width_in, top_in + bottom_in + row_in * units), dpi=dpi)
    h = fig.get_figheight()
    ax = fig.add_axes((label_in / fig.get_figwidth(), bottom_in / h, plot_in / fig.get_figwidth(),
                       row_in * units / h))
    ax.set_xlim(c0, c1)
    ax.set_ylim(0, units)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=32, integer=True, steps=[1, 2, 5, 10]))
    if c1 - c0 <= 256:
        ax.xaxis.set_minor_locator(MultipleLocator(1))
    ax.grid(True, axis="x", which="both", color="0.9", lw=0.5)
    ax.set_axisbelow(True)
    ax.set_xlabel("cycle" if clock is None else f"cycle (rising edges of {clk})", fontsize=8)
    ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.1 / h, va="top")
    lbl = blended_transform_factory(ax.transAxes, ax.transData)
    char_cycles = 0.62 * 7 / 72 / (plot_in / (c1 - c0))     # one 7 pt character, in cycles

    y = units
    for title_, ns in rows:
        y -= _GROUP_ROW
        ax.axhline(y + _GROUP_ROW - 0.05, color="0.55", lw=0.8)
        ax.text(-0.005, y + _GROUP_ROW / 2, title_, transform=lbl, ha="right", va="center", fontsize=8,
                fontweight="bold")
        for name in ns:
            y -= _ROW
            sig = vcd.signals[name]
            ax.text(-0.005, y + _ROW / 2, labels[name], transform=lbl, ha="right", va="center", fontsize=7,
                    family="monospace")
            segs = _segments(sig.changes, x_of, c0, c1)
            lo, hi, mid = y + 0.15, y + 0.8, y + 0.475
            if sig.width == 1:
                xs, ys = [], []
                for a, b, v in segs:
                    level = hi if v == 1 else lo if v == 0 else mid
                    xs += [a, b]
                    ys += [level, level]
                    if v not in (0, 1):
                        ax.fill_between([a, b], lo, hi, color=_X, alpha=0.25, lw=0)
                ax.plot(xs, ys, color=_DIGITAL, lw=1.0)
            else:
                for a, b, v in segs:
                    d = min(0.12, (b - a) / 2)
                    box = [(a, mid), (a + d, hi), (b - d, hi), (b, mid), (b - d, lo), (a + d, lo)]
                    bad = v is None
                    ax.add_patch(Polygon(box, closed=True, lw=0.8, edgecolor=_X if bad else _BUS_EDGE,
                                         facecolor="#fde0e0" if bad else _BUS_FACE))
                    text = _hex_label(v, int((b - a - 2 * d) / char_cycles))
                    if text:
                        ax.text((a + b) / 2, mid, text, ha="center", va="center", fontsize=7,
                                family="monospace", color=_X if bad else "black", clip_on=True)
    out = Path(out_png)
    fig.savefig(out, format="png", dpi=dpi, metadata={"Software": None})
    return out


# ---- GTKWave ------------------------------------------------------------------------------------------------

def write_gtkw_groups(path_gtkw, vcd_path, groups, *, widths=None, bus_format="@22", bit_format="@28",
                      zoom=None, size=(1600, 900), signals_width=260):
    """Write a GTKWave save file showing ``groups`` (an ordered list of ``(group_name, [names or
    patterns])``) of ``vcd_path``; return its path.

    ``[dumpfile]`` names the VCD's absolute path. Each group opens with ``@800200`` / ``-name`` and closes
    with ``@1000200`` / ``-name``; a 1-bit signal is its name under ``bit_format`` (binary), a vector is
    ``name[msb:0]`` (its declared range) under ``bus_format`` (hex; ``@424`` is signed decimal). Names are
    resolved against ``widths`` (name -> width) if given, else against the VCD's header. ``zoom`` is
    GTKWave's zoom exponent (omitted: GTKWave's default).
    """
    if widths is None:
        vcd = read_vcd(vcd_path, signals=[])
    else:
        vcd = Vcd("", 1.0, dict(widths), {})
    lines = [f'[dumpfile] "{Path(vcd_path).resolve()}"', "[timestart] 0"]
    if zoom is not None:
        lines.append(f"*{float(zoom):.6f} 0")
    lines += [f"[size] {size[0]} {size[1]}", f"[signals_width] {signals_width}", "[sst_expanded] 1"]
    for title, patterns in groups:
        lines += ["@800200", f"-{title}"]
        for name in find_signals(vcd, patterns):
            width = vcd.widths[name]
            rng = vcd.ranges.get(name) or f"[{width - 1}:0]"
            lines += [bit_format, name] if width == 1 else [bus_format, name + rng]
        lines += ["@1000200", f"-{title}"]
    Path(path_gtkw).write_text("\n".join(lines) + "\n")
    return Path(path_gtkw)
