"""``conveyor sim gemm --chips N``: a GEMM divided among the chips of a system (``compiler.system``), run on the
system's golden model and (by default) its RTL in Verilator, with the report of every chip and link.

The options (``add_system_args``) are ``--chips``, ``--split``, ``--topology``, ``--link-latency`` and
``--link-interval``; ``run_system_gemm`` is the report (a dict, the JSON of ``--json``) and ``print_report``
its screen.
"""
import numpy as np

__all__ = ["add_system_args", "run_system_gemm", "print_report"]


#: ``compiler.system.SPLITS`` and ``golden.system.TOPOLOGIES``, not imported here so that parsing the command
#: line loads neither (tests/test_cli_system.py checks they agree).
SPLITS = ("rows", "tensor")
TOPOLOGIES = ("line", "ring")


def add_system_args(p, int_in, one_of, max_chips):
    """The system options of a subcommand (``int_in``/``one_of``: cli.main's argument types; ``max_chips``: the
    most chips the RTL system has)."""
    from spec.config import MAX_LINK_INTERVAL, MAX_LINK_LATENCY
    MAX_RTL_CHIPS = max_chips
    p.add_argument("--chips", type=int_in(1, MAX_RTL_CHIPS), default=1,
                   help=f"chips joined by scheduled links (1..{MAX_RTL_CHIPS}; default 1: one chip; more adds link "
                        f"slices to --config)")
    p.add_argument("--split", type=one_of(SPLITS + ("auto",)), default="auto",
                   help="how the work is divided among the chips: rows, tensor (output columns) or auto (default: "
                        "the fewer predicted cycles, said why)")
    p.add_argument("--topology", type=one_of(TOPOLOGIES), default="line",
                   help="how the chips are joined: line (default) or ring")
    p.add_argument("--link-latency", type=int_in(1, MAX_LINK_LATENCY), default=None,
                   help=f"cycles a link word travels (1..{MAX_LINK_LATENCY}; default the configuration's, 16)")
    p.add_argument("--link-interval", type=int_in(1, MAX_LINK_INTERVAL), default=None,
                   help=f"cycles between two words on one link (1..{MAX_LINK_INTERVAL}; default the "
                        f"configuration's, 4)")


def run_system_gemm(config, m, k, n, *, chips, split="auto", topology="line", link_latency=None,
                    link_interval=None, seed=0, backend="verilator", build_dir="build/sim", waves=False):
    """A random GEMM on ``chips`` chips of ``config``: the report of ``conveyor sim gemm --chips N``.
    ``build_dir``: the Verilator build root; ``waves`` (verilator): a traced build, the VCD and a GTKWave layout
    grouped per chip (``waves.system``) in ``<build_dir>/../waves/system_gemm_…/``."""
    from compiler import kernels
    from compiler.memory import MemoryFull
    from compiler.system import gemm, system_config
    from sim.stimulus import operand
    c = system_config(config, chips)
    c = c.replace(**{name: v for name, v in (("link_latency", link_latency), ("link_interval", link_interval))
                     if v is not None})
    if backend == "verilator":
        c.check_rtl()
    rng = np.random.default_rng(seed)
    X, W = operand(rng, (m, k)), operand(rng, (k, n))
    kern = gemm(c, X, W, chips, split, topology)
    golden = kern.run()
    try:
        one = kernels.gemm(config, X, W).program.predicted_cycles
    except MemoryFull:
        one = None
    report = {"workload": "gemm", "m": m, "k": k, "n": n, "seed": seed, "config": c.name, "chips": chips,
              "topology": topology, "split": kern.split, "reason": kern.reason, "backend": backend,
              "link_latency": c.link_latency, "link_interval": c.link_interval,
              "predicted_cycles": kern.predicted_cycles, "golden_cycles": golden.cycles,
              "predicted_chip_cycles": list(kern.chip_cycles), "golden_chip_cycles": list(golden.system.chip_cycles),
              "golden_error": None if golden.system.error is None else str(golden.system.error),
              "matmul_cycles": list(kern.matmul_items),
              "chip_utilization": [round(i / kern.predicted_cycles, 6) for i in kern.matmul_items],
              "utilization": round(kern.utilization, 6),
              "link_busy": {ln.name: round(ln.busy_cycles / golden.cycles, 6) for ln in golden.system.links},
              "link_words": {ln.name: ln.words for ln in golden.system.links},
              "one_chip_cycles": one,
              "speedup": None if one is None else round(one / kern.predicted_cycles, 4)}
    result, mismatch = golden.result, None
    if backend == "verilator":
        from pathlib import Path

        from sim.system_run import run_system
        from sim.system_verilator import SystemSimulator
        sim = SystemSimulator(c, chips, topology, build_root=build_dir, waves=waves)
        run_dir = None
        if waves:
            run_dir = Path(build_dir).resolve().parent / "waves" / f"system_gemm_{m}x{k}x{n}_{chips}{topology}_s{seed}"
            run_dir.mkdir(parents=True, exist_ok=True)
        res = run_system(c, [p.words for p in kern.programs], kern.inputs, chips=chips, topology=topology,
                         simulator=sim, seed=max(1, seed), run_dir=run_dir, keep=waves)
        result = kern.result_of(res.mems)
        mismatch = res.mismatch
        report.update({"cycles": res.cycles, "chip_cycles": list(res.chip_cycles), "matches_golden": res.match,
                       "mismatch": mismatch, "error": res.error,
                       "harness_cycles": res.play.harness_cycles if res.play else None,
                       "sim_seconds": round(res.play.sim_seconds, 3) if res.play else None})
        loop = (res.play.loop_seconds or res.play.sim_seconds) if res.play else None
        report["cycles_per_second"] = round(res.play.harness_cycles / loop) if loop else None
        if waves:
            from waves.system import system_wave_views
            report["vcd"] = res.play.vcd_path
            report.update(system_wave_views(c, chips, res.play.vcd_path))
    else:
        report.update({"cycles": golden.cycles, "chip_cycles": list(golden.system.chip_cycles),
                       "matches_golden": None, "error": report["golden_error"]})
    bad = np.argwhere(result != kern.expected)
    first = None
    if len(bad):
        idx = tuple(int(v) for v in bad[0])
        first = {"index": list(idx), "got": int(result[idx]), "want": int(kern.expected[idx]), "count": len(bad)}
    report["matches_numpy"] = first is None
    report["first_mismatch"] = first
    report["match"] = (first is None and report["matches_golden"] is not False and golden.ok
                       and report["cycles"] == kern.predicted_cycles)
    return report


def print_report(r):
    print(f"GEMM {r['m']}×{r['k']}×{r['n']} (int8 → int32) on {r['chips']} chips of {r['config']} in a "
          f"{r['topology']} (link latency {r['link_latency']}, interval {r['link_interval']}), seed {r['seed']}, "
          f"{r['backend']}")
    print(f"  split        {r['reason']}")
    ok = "equals numpy bit for bit" if r["matches_numpy"] else f"DIFFERS from numpy: {r['first_mismatch']}"
    print(f"  result       {ok}")
    if r["matches_golden"] is not None:
        verdict = "agree" if r["matches_golden"] else "DIFFER: " + str(r["mismatch"])
        print(f"  golden       RTL and golden model {verdict}"
              f" (system and chip cycles, errors, every MEM word of every chip)")
    print(f"  cycles       {r['cycles']:,} from the shared START to the last chip done (golden {r['golden_cycles']:,}, "
          f"compiler predicted {r['predicted_cycles']:,})")
    for c, (cyc, u) in enumerate(zip(r["chip_cycles"], r["chip_utilization"])):
        print(f"  chip {c:<7} {cyc:,} cycles, MXU utilization {u:.4f}")
    for name, busy in r["link_busy"].items():
        if r["link_words"][name]:
            print(f"  link         {name}: {r['link_words'][name]} words, busy {busy:.4f}")
    for key, what in (("vcd", "waveform"), ("gtkw", "GTKWave layout, grouped per chip, links included")):
        if r.get(key):
            print(f"  {key:12} {r[key]} ({what})")
    if r["one_chip_cycles"] is None:
        print("  one chip     does not fit one chip's MEM")
    else:
        print(f"  one chip     {r['one_chip_cycles']:,} cycles predicted: speed-up {r['speedup']:.3f}× on "
              f"{r['chips']} chips")
