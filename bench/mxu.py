"""MXU benchmark: utilization over GEMM shapes, Verilator speed, FPGA figures → ``bench/results/mxu.json``.

Run with ``make bench`` (or ``python -m bench.mxu``). Every GEMM runs on the RTL in Verilator and is checked
against numpy; utilization uses the cycles measured on the RTL. Speed is the median of several runs measured
in one process (machines here are shared: compare ratios from one run, not absolute numbers across runs).
FPGA figures come from ``fpga/reports/*.json`` (written by ``make fpga``) when present, else they are run.
"""
import argparse
import json
import statistics
import sys
import time

from bench.results_io import write_results
from cli.main import DEFAULT_BUILD, REPO, run_gemm

__all__ = ["main"]

RESULTS = REPO / "bench" / "results" / "mxu.json"
REPORTS = REPO / "fpga" / "reports"
M_VALUES = (16, 64, 256, 1024)
KN_FACTORS = (1, 2, 4)


def utilization_table(rows, cols, seed):
    table = []
    for factor in KN_FACTORS:
        for m in M_VALUES:
            r = run_gemm(m, factor * rows, factor * cols, rows=rows, cols=cols, seed=seed, build_dir=DEFAULT_BUILD)
            if not r["match"]:
                raise SystemExit(f"bench: GEMM {m}×{factor * rows}×{factor * cols} does not match: "
                                 f"{r['first_mismatch']}")
            table.append({"m": m, "k": r["k"], "n": r["n"], "kn_factor": factor, "cycles": r["cycles"],
                          "golden_cycles": r["golden_cycles"], "utilization": r["utilization"]})
            print(f"  M={m:5d} K=N={factor}×array  cycles {r['cycles']:7d}  utilization {r['utilization']:.4f}",
                  flush=True)
    return table


def speed(rows, cols, seed, repeats, k_factor):
    """Cycles per wall second of the simulation loop (build excluded) on a 1024-row GEMM."""
    samples, whole = [], []
    last = None
    for _ in range(repeats):
        last = run_gemm(1024, k_factor * rows, k_factor * cols, rows=rows, cols=cols, seed=seed,
                        build_dir=DEFAULT_BUILD)
        samples.append(last["cycles_per_second"])
        whole.append(last["simulated_cycles"] / last["sim_seconds"])
    return {"m": 1024, "k": last["k"], "n": last["n"], "rows": rows, "cols": cols,
            "simulated_cycles": last["simulated_cycles"], "repeats": repeats,
            "cycles_per_second_median": round(statistics.median(samples)),
            "cycles_per_second_samples": samples,
            "cycles_per_second_with_startup_median": round(statistics.median(whole)),
            "what": "simulation loop in Verilator, from start to done; the second figure includes simulator "
                    "start-up and reading/writing the trace files"}


def fpga_figures(run_missing):
    out = {}
    for target, rows, cols in (("ecp5-85f", 8, 8), ("ice40-up5k", None, None)):
        path = REPORTS / f"{target}.json"
        if path.exists():
            out[target] = json.loads(path.read_text())
        elif run_missing and rows is not None:
            from cli.main import main as cli_main
            if cli_main(["fpga", "--target", target, "--rows", str(rows), "--cols", str(cols),
                         "--json", str(path)]) == 0:
                out[target] = json.loads(path.read_text())
        else:
            out[target] = None
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.mxu", description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--cols", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="runs of the speed measurement (median)")
    ap.add_argument("--speed-k-factor", type=int, default=16,
                    help="K = N = this × the array in the speed run (longer runs measure the loop better)")
    ap.add_argument("--no-fpga", action="store_true", help="skip FPGA figures not already in fpga/reports/")
    ap.add_argument("-o", "--output", default=str(RESULTS))
    args = ap.parse_args(argv)

    print(f"MXU benchmark on a {args.rows}×{args.cols} array, seed {args.seed}")
    t0 = time.perf_counter()
    table = utilization_table(args.rows, args.cols, args.seed)
    spd = speed(args.rows, args.cols, args.seed, args.repeats, args.speed_k_factor)
    print(f"  Verilator: {spd['cycles_per_second_median']:,} cycles/s (median of {args.repeats}; "
          f"{spd['simulated_cycles']} cycles per run; {spd['cycles_per_second_with_startup_median']:,} with start-up)")
    fpga = fpga_figures(not args.no_fpga)
    for target, rep in fpga.items():
        if rep:
            print(f"  {target}: {rep['rows']}×{rep['cols']} tile, Fmax {rep['fmax_mhz']:.1f} MHz, {rep['lut']} LUT4 "
                  f"({rep.get('lut_per_mac')} per MAC), {rep['ff']} FF, {rep['dsp']} DSP, {rep['bram']} BRAM")
        else:
            print(f"  {target}: no report (run `make fpga`)")
    result = {"benchmark": "mxu", "rows": args.rows, "cols": args.cols, "seed": args.seed,
              "utilization": table, "verilator_speed": spd, "fpga": fpga}
    write_results(args.output, result, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
