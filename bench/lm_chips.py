"""A language model's decode step over chips: the two reference models (``demos/lm``) compiled with
``compile_lm(chips=N)`` for ``small`` chips in a line (link latency 16, interval 4) → ``bench/results/lm_chips.json``.

Run with ``make bench`` (or ``python -m bench.lm_chips``). For each model and chip count: each chip's predicted
cycles of a decode step (the system's is the largest), the host words of the busiest edge, tokens/s per user
at the configuration's clock (host words counted) and the speed-up over one chip, and a golden generation of
``--tokens`` tokens from a fixed prompt that must equal the int8 reference's in exactly the predicted cycles
(the bench fails otherwise; the RTL equals golden in ``tests/test_system_lm.py``). The issue's target: 3× the
tokens/s per user on 4 chips. Cycles are exact (no timing noise); the compile seconds are reported beside.
``--weight-slots S`` compiles for an MXU holding ``S`` tiles of shadow weights (docs/lm.md).
"""
import argparse
import sys
import time

from bench.results_io import write_results
from cli.main import REPO

__all__ = ["main"]

RESULTS = REPO / "bench" / "results" / "lm_chips.json"
TARGET_SPEEDUP_4 = 3.0
PROMPT = "The "


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.lm_chips", description=__doc__.splitlines()[0])
    p.add_argument("--chips", default="1,2,4", help="chip counts, comma-separated (default 1,2,4)")
    p.add_argument("--tokens", type=int, default=8, help="tokens generated on golden per case (default 8)")
    p.add_argument("--weight-slots", type=int, default=1, metavar="S",
                   help="tiles of shadow weights the MXU holds (mxu_weight_slots, 1 to 16; default 1, the presets')")
    p.add_argument("--output", default=str(RESULTS), help=f"results JSON (default {RESULTS})")
    args = p.parse_args(argv)
    try:
        counts = sorted({int(x) for x in args.chips.split(",")})
    except ValueError:
        p.error(f"argument --chips: must be comma-separated integers, not {args.chips!r}")
    from spec.config import PRESETS
    try:
        config = PRESETS["small"].replace(mxu_weight_slots=args.weight_slots)
    except (TypeError, ValueError) as e:
        p.error(f"argument --weight-slots: {e}")
    if counts[0] != 1:
        counts = [1] + counts               # the baseline
    import sim.lm_run  # noqa: F401  (registers the "lm" runner)
    from compiler.lm import compile_lm
    from demos.lm import text, train
    t0 = time.perf_counter()
    tr, _ = text.split()
    out = {"benchmark": "lm_chips", "config": "small", "mxu_weight_slots": args.weight_slots,
           "context": 64, "prompt": PROMPT, "tokens": args.tokens,
           "target_speedup_4_chips": TARGET_SPEEDUP_4, "models": {}}
    ok = True
    for arch in ("gpt", "llama"):
        model, _ = train.load_or_train(arch)
        rows, base = {}, None
        for n in counts:
            s0 = time.perf_counter()
            lm = compile_lm(model, 64, config, calibration=tr[:64 * 32], chips=n)
            compile_s = time.perf_counter() - s0
            g = lm.generate(text.encode(PROMPT), args.tokens)
            exact = g.tokens == g.reference and g.cycles == g.predicted_cycles
            ok &= exact
            per_token = lm.step_cycles + lm.host_words
            base = base or per_token
            rows[n] = {"step_cycles": lm.step_cycles, "chip_cycles": list(lm.chip_cycles),
                       "host_words": lm.host_words, "link_words": lm.link_words,
                       "tokens_per_s_per_user": round(lm.config.clock_mhz * 1e6 / per_token, 1),
                       "speedup": round(base / per_token, 3), "tokens_match": g.tokens == g.reference,
                       "cycles_equal_predicted": g.cycles == g.predicted_cycles, "compile_seconds": round(compile_s, 3),
                       "split": lm.split}
            print(f"  {arch:<6} {n} chip{'s' if n > 1 else ' '} {lm.step_cycles:6,} cycles a token "
                  f"(chips {', '.join(map(str, lm.chip_cycles))}), {rows[n]['tokens_per_s_per_user']:,.0f} tokens/s "
                  f"per user, {rows[n]['speedup']:.3f}x one chip; golden {'exact' if exact else 'DIFFERS'}")
        out["models"][arch] = rows
        if 4 in rows:
            met = rows[4]["speedup"] >= TARGET_SPEEDUP_4
            out.setdefault("target_met_4_chips", {})[arch] = met
            print(f"  {arch:<6} 4 chips: {rows[4]['speedup']:.3f}x, the target {TARGET_SPEEDUP_4:g}x "
                  f"{'met' if met else 'not met'}")
    write_results(args.output, out, t0)
    if not ok:
        print("a generation differed from the int8 reference or from the predicted cycles", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
