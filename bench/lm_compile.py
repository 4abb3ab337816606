"""Language-model compile benchmark: ``compiler.compile_lm`` of the two reference models (``demos/lm``) for
the ``small`` chip at a context of 64 → ``bench/results/lm_compile.json``.

Run with ``make bench`` (or ``python -m bench.lm_compile``). Each model is compiled ``--repeats`` times with
the calibration the tests use (64 × 32 characters of the training split); the figures are the median of each
stage's seconds (``LMProgram.timings``: trace, quantize, lower) and of their sum, with every sample. The
target (issue 10): a compile under 10 s. The weights come from ``demos.lm.train.load_or_train`` (trained
and cached on first use, about 2 minutes each; not timed).
"""
import argparse
import statistics
import sys
import time

from bench.results_io import write_results
from cli.main import REPO

__all__ = ["main"]

RESULTS = REPO / "bench" / "results" / "lm_compile.json"
TARGET_SECONDS = 10.0


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.lm_compile", description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="compiles per model (default 3)")
    p.add_argument("--output", default=str(RESULTS), help=f"results JSON (default {RESULTS})")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"argument --repeats: must be an integer of at least 1, not {args.repeats}")
    from compiler.lm import compile_lm
    from demos.lm import text, train
    t0 = time.perf_counter()
    tr, _ = text.split()
    out = {"benchmark": "lm_compile", "config": "small", "context": 64, "repeats": args.repeats,
           "target_seconds": TARGET_SECONDS, "models": {}}
    for arch in ("gpt", "llama"):
        model, _ = train.load_or_train(arch)
        samples = []
        for _ in range(args.repeats):
            lm = compile_lm(model, 64, "small", calibration=tr[:64 * 32])
            samples.append(dict(lm.timings))
        totals = [sum(s.values()) for s in samples]
        row = {"median_seconds": round(statistics.median(totals), 3), "samples": [round(t, 3) for t in totals],
               "stages_median": {k: round(statistics.median(s[k] for s in samples), 3) for k in samples[0]},
               "queue_words": max(len(w) for w in lm.model.program.words), "queue_depth": lm.config.queue_depth}
        out["models"][arch] = row
        print(f"  {arch:<6} compile median {row['median_seconds']:.2f} s (samples {row['samples']}), stages "
              f"{row['stages_median']}")
    write_results(args.output, out, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
