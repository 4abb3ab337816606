"""Sweep benchmark: a design-space sweep of ``conveyor sweep`` (1,728 points of Llama-2-7B on ``tsp``
variants, as Dask tasks on the default local cluster of 2 workers) → ``bench/results/sweep.json``.

Run with ``make bench`` (or ``python -m bench.sweep``). The wall time covers starting the cluster, every
point and writing the CSV; the machine is shared, so compare figures of one machine only.
"""
import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

from bench.results_io import write_results
from cli.main import REPO
from cli.main import main as conveyor

__all__ = ["main", "ARGV"]

RESULTS = REPO / "bench" / "results" / "sweep.json"
#: the sweep: 2 × 4 × 3 × 4 × 3 × 3 × 2 = 1,728 points (chips=60 does not hold the model on the smaller chips)
ARGV = ["sweep", "llama-2-7b", "--config", "tsp", "--axis", "lanes=256,320", "--axis", "mxu=80,160,240,320",
        "--axis", "mem_slices=44,88,132", "--axis", "clock_mhz=600,900,1200,1500", "--axis",
        "link_gbytes_s=7.5,15,30", "--axis", "chips=60,90,120", "--axis", "link_latency_us=0.5,1"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", default=str(RESULTS), help=f"results JSON (default {RESULTS})")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sweep.csv"
        if conveyor(ARGV + ["--csv", str(path)]) != 0:
            raise SystemExit("bench: conveyor sweep failed")
        seconds = time.perf_counter() - t0
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    ok = sum(r["ok"] == "True" for r in rows)
    result = {"benchmark": "sweep", "command": "conveyor " + " ".join(ARGV), "points": len(rows), "ok": ok,
              "failed": len(rows) - ok, "points_per_second": round(len(rows) / seconds, 1),
              "what": "wall time of conveyor sweep on the default local Dask cluster (2 worker processes, 1 "
                      "thread each), cluster start-up and the CSV included"}
    print(f"  {len(rows)} points ({ok} ran) in {seconds:.1f} s, {result['points_per_second']} points/s")
    write_results(args.output, result, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
