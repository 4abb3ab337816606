"""Design-space sweeps of ``perf.estimate`` on Dask (``dask.distributed``): one task a point of a grid.

``sweep(model, grid, config="tsp")`` runs ``perf.estimate.estimate`` at every point of the product of
``grid`` (axis → values, ``AXES``) and returns one ``PointResult`` a point, in the grid's order:

* chip axes change the ``ChipConfig`` (``dataclasses.replace`` through ``ChipConfig.replace``, so every point
  is validated): ``lanes`` (the MXU follows it down to ``lanes`` unless ``mxu`` is also swept), ``mxu`` (a
  square ``mxu × mxu`` array), ``mem_slices`` (MEM slices a chip, spread over the config's runs of MEM
  slices in proportion), ``mem_depth`` (words a bank) and ``clock_mhz``;
* ``chips`` is ``estimate``'s ``chips`` (at least the chips that hold the model);
* ``link_gbytes_s`` and ``link_latency_us`` replace the figures of ``assumptions.tsp``.

A point that fails (a config that does not validate, a model that does not fit the chips asked for) is a
result with ``ok=False`` and ``error`` saying why; the other points complete. Points run as tasks on a
``distributed.LocalCluster`` of 2 single-threaded worker processes by default (logs silenced), or on the
cluster at ``scheduler`` (an address, ``tcp://host:8786``), whose workers must be able to import ``perf``.
``progress`` is a callable ``(done, total)`` called as points complete (``True``: a plain line on standard
error every tenth of the grid; ``False``: nothing).

``write_csv`` / ``read_csv``, ``write_json`` / ``read_json`` store results (CSV: the axes and the scalar
figures, ``PointResult.row()``; JSON: every figure but the assumptions and the GPU roofline, which do not
depend on the chip axes, and the per-chip SRAM and per-link lists, of which the maxima stay); ``pareto``
finds the non-dominated points, ``plot`` draws tokens/s per user against chips and the Pareto front of
tokens/s per user against tokens per joule (matplotlib, Agg backend).
"""
import csv
import dataclasses
import itertools
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from perf.assumptions import DEFAULT, Assumptions, Value
from perf.estimate import estimate
from spec.config import PRESETS, ChipConfig

__all__ = ["AXES", "FIGURES", "PointResult", "sweep", "points", "point_inputs", "pareto", "write_csv",
           "read_csv", "write_json", "read_json", "plot"]

#: axis → (type of its values, what it changes)
AXES = {
    "lanes": (int, "ChipConfig.lanes (the MXU follows it down unless mxu is swept too)"),
    "mxu": (int, "ChipConfig.mxu_rows = mxu_cols"),
    "mem_slices": (int, "MEM slices a chip"),
    "mem_depth": (int, "ChipConfig.mem_depth, words a MEM bank"),
    "clock_mhz": (float, "ChipConfig.clock_mhz"),
    "chips": (int, "chips in the pipeline (estimate's chips)"),
    "link_gbytes_s": (float, "assumptions.tsp.link_gbytes_s, GB/s a link"),
    "link_latency_us": (float, "assumptions.tsp.link_latency_us, microseconds a hop"),
}
#: the scalar figures of an ``Estimate`` kept in ``PointResult.row()`` (and the CSV)
FIGURES = ("chips", "chips_needed", "step_s", "time_to_first_token_s", "tokens_per_s_per_user", "tokens_per_s",
           "tokens_per_joule", "tokens_per_joule_board", "usd_per_million_tokens")
_DROPPED = ("assumptions", "gpu")


@dataclass(frozen=True)
class PointResult:
    """One point of a sweep: its axis values, whether it ran, why not, and its figures (``Estimate.to_json()``
    without the assumptions and the GPU roofline)."""
    point: dict
    ok: bool
    error: str | None = None
    figures: dict | None = None

    def row(self):
        """A flat dict: the axes, ``ok``, ``error`` (``""`` when none) and the scalar ``FIGURES``."""
        f = self.figures or {}
        row = {**self.point, "ok": self.ok, "error": self.error or ""}
        for k in FIGURES:                   # ``chips`` is an axis and a figure: the axis's value stays
            if k not in row or f.get(k) is not None:
                row[k] = f.get(k)
        return row

    def label(self):
        """The point as ``name=value, ...``."""
        return ", ".join(f"{k}={v}" for k, v in self.point.items())

    def to_json(self):
        return {"point": self.point, "ok": self.ok, "error": self.error, "figures": self.figures}


def _check_grid(grid):
    if not isinstance(grid, dict):
        raise TypeError(f"grid must be a dict of axis -> values, not {grid!r}")
    out = {}
    for axis, values in grid.items():
        if axis not in AXES:
            raise ValueError(f"unknown axis {axis!r}: the axes are {', '.join(AXES)}")
        kind = AXES[axis][0]
        if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"axis {axis} must have a non-empty list of values, not {values!r}")
        for v in values:
            ok = isinstance(v, int) if kind is int else isinstance(v, (int, float))
            if isinstance(v, bool) or not ok or not v > 0:
                raise ValueError(f"axis {axis} takes positive {'integers' if kind is int else 'numbers'}, "
                                 f"not {v!r}")
        out[axis] = [kind(v) for v in values]
    return out


def points(grid):
    """The points of ``grid`` (axis → values): dicts in the product's order, the first axis slowest."""
    grid = _check_grid(grid)
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def _mem_slices(slices, n):
    """``slices`` with ``n`` MEM slices, spread over its runs of MEM slices in proportion to their lengths."""
    runs, cur = [], 0            # MEM slices before each non-MEM slice, and after the last
    for s in slices:
        if s == "mem":
            cur += 1
        else:
            runs.append(cur)
            cur = 0
    runs.append(cur)
    total = sum(runs)
    new = [n * r // total for r in runs]
    for i in sorted(range(len(runs)), key=lambda i: -runs[i])[:n - sum(new)]:
        new[i] += 1
    out = []
    others = [s for s in slices if s != "mem"]
    for i, k in enumerate(new):
        out += ["mem"] * k
        if i < len(others):
            out.append(others[i])
    return tuple(out)


def point_inputs(point, config="tsp", assumptions: Assumptions = DEFAULT):
    """``(config, chips, assumptions)`` of ``estimate`` at ``point``; the config's validation errors raise."""
    c = PRESETS[config] if isinstance(config, str) and config in PRESETS else config
    if not isinstance(c, ChipConfig):
        raise ValueError(f"config must be a spec.config.ChipConfig or one of {', '.join(PRESETS)}, not {config!r}")
    changes = {}
    if "lanes" in point:
        changes["lanes"] = point["lanes"]
        if "mxu" not in point:
            changes["mxu_rows"] = min(c.mxu_rows, point["lanes"])
            changes["mxu_cols"] = min(c.mxu_cols, point["lanes"])
    if "mxu" in point:
        changes["mxu_rows"] = changes["mxu_cols"] = point["mxu"]
    if "mem_slices" in point:
        changes["slices"] = _mem_slices(c.slices, point["mem_slices"])
    for axis in ("mem_depth", "clock_mhz"):
        if axis in point:
            changes[axis] = point[axis]
    if changes:
        c = c.replace(**changes)
    a = assumptions
    links = {k: Value(point[k], getattr(a.tsp, k).unit, "sweep axis") for k in ("link_gbytes_s", "link_latency_us")
             if k in point}
    if links:
        a = dataclasses.replace(a, tsp=dataclasses.replace(a.tsp, **links))
    return c, point.get("chips"), a


def _run_point(model, point, config, assumptions, batch, prompt, tokens):
    """One task: the ``PointResult`` of ``point`` (every exception is the point's error)."""
    try:
        c, chips, a = point_inputs(point, config, assumptions)
        e = estimate(model, c, chips=chips, batch=batch, prompt=prompt, tokens=tokens, assumptions=a)
    except Exception as exc:  # noqa: BLE001 - a failing point says why and the sweep goes on
        return PointResult(dict(point), False, f"{type(exc).__name__}: {' '.join(str(exc).split())}")
    figures = {k: v for k, v in e.to_json().items() if k not in _DROPPED}
    figures["sram"] = {k: v for k, v in figures["sram"].items() if k != "per_chip"}      # one entry a stage:
    figures["links"] = {k: v for k, v in figures["links"].items() if k != "per_link"}    # the maxima stay
    return PointResult(dict(point), True, None, figures)


def _printer(total):
    every = max(1, total // 10)

    def report(done, n):
        if done % every == 0 or done == n:
            print(f"sweep: {done} of {n} points", file=sys.stderr, flush=True)
    return report


def _local_cluster():
    from distributed import LocalCluster
    return LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                        silence_logs=logging.CRITICAL)


def sweep(model, grid, *, config="tsp", scheduler=None, progress=True, batch=1, prompt=128, tokens=128,
          assumptions: Assumptions = DEFAULT, cluster=None):
    """A ``PointResult`` for every point of ``grid`` (module docstring), in ``points(grid)``'s order.

    ``scheduler``: the address of a running Dask scheduler (default: a local cluster started and closed here,
    or ``cluster``, a running ``distributed`` cluster object, left running)."""
    from distributed import Client, as_completed
    pts = points(grid)
    report = _printer(len(pts)) if progress is True else (progress or None)
    if report is not None and not callable(report):
        raise TypeError(f"progress must be True, False or a callable (done, total), not {progress!r}")
    own = None
    if scheduler is None and cluster is None:
        own = cluster = _local_cluster()
    try:
        with Client(scheduler if scheduler is not None else cluster, timeout="10s") as client:
            futures = [client.submit(_run_point, model, p, config, assumptions, batch, prompt, tokens,
                                     pure=False) for p in pts]
            index = {f.key: i for i, f in enumerate(futures)}
            results: list = [None] * len(pts)
            for done, f in enumerate(as_completed(futures), 1):
                results[index[f.key]] = f.result()
                if report is not None:
                    report(done, len(pts))
    finally:
        if own is not None:
            own.close()
    return results


def pareto(results, x="tokens_per_joule", y="tokens_per_s_per_user"):
    """The ok results that no other beats on both ``x`` and ``y`` (larger is better), sorted by ``x``."""
    ok = sorted((r for r in results if r.ok), key=lambda r: (-r.figures[x], -r.figures[y]))
    front, best = [], float("-inf")
    for r in ok:
        if r.figures[y] > best:
            front.append(r)
            best = r.figures[y]
    return front[::-1]


def write_csv(results, path):
    """``PointResult.row()`` of every result as CSV (floats written exactly); returns the path."""
    rows = [r.row() for r in results]
    axes = [a for a in AXES if any(a in r.point for r in results)]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=axes + ["ok", "error"] + [k for k in FIGURES if k not in axes], restval="")
        w.writeheader()
        for row in rows:
            w.writerow({k: "" if v is None else repr(v) if isinstance(v, float) else v for k, v in row.items()})
    return out


def _cell(name, text):
    if name == "ok":
        return text == "True"
    if name == "error":
        return text
    if text == "":
        return None
    kind = AXES[name][0] if name in AXES else (int if name in ("chips", "chips_needed") else float)
    return kind(text)


def read_csv(path):
    """The rows of ``write_csv``'s file, typed as ``PointResult.row()`` gives them."""
    with Path(path).open(newline="") as f:
        return [{k: _cell(k, v) for k, v in row.items()} for row in csv.DictReader(f)]


def write_json(results, path, **about):
    """``{"points": [PointResult.to_json(), ...], **about}`` as JSON; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(about, points=[r.to_json() for r in results]), indent=2) + "\n")
    return out


def read_json(path):
    """The ``PointResult`` list of ``write_json``'s file."""
    return [PointResult(**p) for p in json.loads(Path(path).read_text())["points"]]


def plot(results, path, title=None):
    """Tokens/s per user against chips, and the Pareto front of tokens/s per user against tokens per joule, as
    a PNG at ``path``; returns the path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ok = [r for r in results if r.ok]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    left.scatter([r.figures["chips"] for r in ok], [r.figures["tokens_per_s_per_user"] for r in ok], s=10, alpha=0.6)
    left.set(xlabel="chips", ylabel="tokens/s per user", title="scaling with chips")
    right.scatter([r.figures["tokens_per_joule"] for r in ok], [r.figures["tokens_per_s_per_user"] for r in ok],
                  s=10, alpha=0.4, label="points")
    front = pareto(results)
    right.plot([r.figures["tokens_per_joule"] for r in front], [r.figures["tokens_per_s_per_user"] for r in front],
               "o-", color="C3", label="Pareto front")
    right.set(xlabel="tokens per joule (per operation)", ylabel="tokens/s per user", title="Pareto front")
    right.legend()
    for ax, key in ((left, "chips"), (right, "tokens_per_joule")):
        ax.grid(True, alpha=0.3)
        xs = [r.figures[key] for r in ok]
        if xs and max(xs) >= 10 * min(xs):
            ax.set_xscale("log")
    failed = len(results) - len(ok)
    fig.suptitle(title or f"{len(ok)} points" + (f" ({failed} failed)" if failed else ""))
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
