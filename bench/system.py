"""System benchmark: kernels divided among chips joined by scheduled links → ``bench/results/system.json``.

Run with ``make bench`` (or ``python -m bench.system``). Every kernel is compiled by ``compiler.system`` (the
split chosen by its cost model unless the row says otherwise) and run on ``golden.system.SystemSim``, which
must give the numpy result in the predicted cycles; with ``--rtl`` the same programs also run on the system's
RTL in Verilator (``sim.system_run``), whose cycles must be the same. Speed-ups are predicted cycles on one
chip over predicted cycles on N, transfers included (the cycles are the system's: from the shared START to
the last chip done).

* GEMM 256 × 256 × 64, the largest of this shape family that fits one ``small`` chip, on 1, 2 and 4 chips;
* GEMM 1024 × 256 × 256 (issue 11's target shape): it does not fit one ``small`` chip (``chips_needed``),
  so its one-chip time is that of the 4 row blocks one after another on one chip (the host reloading
  between them, not counted), against 2 chips taking two rounds of 2 blocks (again without the reload) and 4
  chips at once;
* a decode-like MLP (1 row: 1 × 256 × 256 × 64), where the weights dominate: tensor parallel, its partial
  sums added over the links.
"""
import argparse
import sys
import time

import numpy as np

from bench.results_io import write_results
from cli.main import REPO
from compiler import kernels
from compiler.system import chips_needed, gemm
from compiler.system.gemm import shares
from compiler.system.mlp import mlp
from spec.config import PRESETS

__all__ = ["main"]

RESULTS = REPO / "bench" / "results" / "system.json"
Q = (1 << 14, 20, 0)


def _ops(seed, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, s, dtype=np.int8) for s in shapes]


def _checked(kern, rtl, build_dir):
    run = kern.run()
    if not run.ok:
        raise SystemExit(f"bench: {kern.name} on {kern.chips} chips: golden {run.cycles} cycles, error "
                         f"{run.system.error}, predicted {kern.predicted_cycles}; result equal: "
                         f"{np.array_equal(run.result, kern.expected)}")
    row = {"chips": kern.chips, "split": kern.split, "reason": kern.reason, "cycles": kern.predicted_cycles,
           "chip_cycles": list(kern.chip_cycles), "utilization": round(kern.utilization, 4),
           "link_busy": {k: round(v, 4) for k, v in kern.link_busy().items()}}
    if rtl and kern.chips > 1:
        from sim.system_run import run_system
        from sim.system_verilator import SystemSimulator
        sim = SystemSimulator(kern.config, kern.chips, kern.topology, build_root=build_dir)
        res = run_system(kern.config, [p.words for p in kern.programs], kern.inputs, chips=kern.chips,
                         topology=kern.topology, simulator=sim)
        if not res.match:
            raise SystemExit(f"bench: {kern.name} on {kern.chips} chips: RTL differs from golden: {res.mismatch}")
        row["rtl_cycles"] = res.cycles
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.system", description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="small", choices=[n for n, c in PRESETS.items() if c.rtl])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rtl", action="store_true", help="also run every multi-chip kernel on the system RTL "
                                                       "(Verilator; builds a model per chip count)")
    ap.add_argument("--build-dir", default=str(REPO / "build" / "sim"))
    ap.add_argument("-o", "--output", default=str(RESULTS))
    args = ap.parse_args(argv)
    config = PRESETS[args.config]
    t0 = time.perf_counter()
    print(f"system benchmark on config {config.name} chips (link latency {config.link_latency}, interval "
          f"{config.link_interval}), seed {args.seed}")
    out = {"config": config.name, "link_latency": config.link_latency, "link_interval": config.link_interval,
           "seed": args.seed, "kernels": []}

    X, W = _ops(args.seed, (256, 256), (256, 64))
    one = kernels.gemm(config, X, W).program.predicted_cycles
    rows = [{"chips": 1, "cycles": one}]
    for n in (2, 4):
        rows.append(_checked(gemm(config, X, W, n), args.rtl, args.build_dir))
    for r in rows:
        r["speedup"] = round(one / r["cycles"], 3)
    out["kernels"].append({"name": "gemm 256x256x64", "rows": rows})

    M, K, N = 1024, 256, 256
    need = chips_needed(config, M, K, N)
    X, W = _ops(args.seed, (M, K), (K, N))
    block = shares(M, 4)[0]
    one_block = kernels.gemm(config, X[block[0]:block[1]], W).program.predicted_cycles
    halves = [_checked(gemm(config, X[a:b], W, 2), args.rtl, args.build_dir) for a, b in shares(M, 2)]
    r2 = {"chips": 2, "split": "rows, 2 rounds", "rounds": halves, "cycles": sum(h["cycles"] for h in halves)}
    r4 = _checked(gemm(config, X, W, 4), args.rtl, args.build_dir)
    for r in (r2, r4):
        r["speedup_vs_blocks_on_one_chip"] = round(4 * one_block / r["cycles"], 3)
    out["kernels"].append({"name": "gemm 1024x256x256", "chips_needed": need[0] if need else None,
                           "one_chip_blocks_cycles": 4 * one_block, "rows": [r2, r4]})

    X, W1, W2 = _ops(args.seed, (1, 256), (256, 256), (256, 64))
    b1 = np.random.default_rng(args.seed).integers(-5000, 5000, 256)
    one = kernels.mlp(config, X, W1, b1, Q, W2).program.predicted_cycles
    rows = [{"chips": 1, "cycles": one}]
    for n in (2, 4):
        rows.append(_checked(mlp(config, X, W1, b1, Q, W2, n), args.rtl, args.build_dir))
    for r in rows:
        r["speedup"] = round(one / r["cycles"], 3)
    out["kernels"].append({"name": "mlp 1x256x256x64", "rows": rows})

    for k in out["kernels"]:
        for r in k["rows"]:
            extra = "".join(f", {key} {r[key]}" for key in ("speedup", "speedup_vs_blocks_on_one_chip", "rtl_cycles")
                            if key in r)
            print(f"  {k['name']:<20} {r['chips']} chip{'s' * (r['chips'] > 1)}: {r['cycles']:>7,} cycles"
                  f"{', ' + r['split'] if 'split' in r else ''}{extra}")
    write_results(args.output, out, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
