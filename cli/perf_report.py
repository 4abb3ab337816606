"""The report of ``conveyor perf``: one screen of ``perf.estimate``'s figures, and the list of models."""
from perf.models import MODELS

__all__ = ["print_models", "print_report"]


def print_models():
    print(f"{'model':12} {'params':>15} {'layers':>6} {'d_model':>7} {'heads':>5} {'kv':>3} {'ffn':>6} {'context':>7}")
    for m in MODELS.values():
        print(f"{m.name:12} {m.params():>15,} {m.layers:>6} {m.d_model:>7} {m.n_heads:>5} {m.n_kv_heads:>3} "
              f"{m.ffn:>6} {m.context:>7}")


def _pct(x):
    return f"{x:.1%}" if x >= 0.001 else f"{x * 100:.2g}%"


def _money(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _figure(f):
    """One published measured figure beside its roofline, on one line."""
    if f["metric"] == "tokens_per_s_per_user":
        value, roof = f"{f['value']:,.1f} tokens/s per user", f"{f['roofline']:,.1f}"
    else:
        value, roof = f"first token {f['value'] * 1e3:.3g} ms", f"{f['roofline'] * 1e3:.3g} ms"
    lengths = f", {f['prompt']}+{f['tokens']} tokens" if f["prompt"] is not None else ""
    gpus = f"{f['gpus']} GPU{'s' * (f['gpus'] != 1)}"
    return (f"{value} on {gpus} ({f['precision']}, batch {f['batch']}{lengths}): {f['of_roofline']:.0%} of the "
            f"roofline's {roof} there [{f['software'].split(',')[0]}]")


def _print_file(m):
    """The runs of a ``tools/gpu_decode.py`` file (``read_gpu_measured``), each beside its HBM roofline."""
    print(f"  {'measured here':12} {m['path']}: {m['device_name']} (torch {m['torch']}, {m['timestamp']})")
    for run in m["runs"]:
        bw = run["bytes_per_token"] * run["tokens_per_s"]
        of = f", {bw / m['hbm_bytes_s']:.0%} of the {m['gpu'].upper()}'s HBM bandwidth" if m.get("hbm_bytes_s") else ""
        print(f"  {'':12} {run['model']} ({run['dtype']}, batch {run['batch']}, {run['prompt']}+{run['tokens']} "
              f"tokens): {run['tokens_per_s']:,.1f} tokens/s per user, reading {bw / 1e9:,.3g} GB/s{of}")


def print_report(r):
    s, a = r["sram"], r["assumptions"]
    mapping = r.get("mapping", "pipeline by layers")
    print(f"{r['model']} on {r['chips']} chips of {r['config']} ({mapping}), batch {r['batch']}, prompt "
          f"{r['prompt']}, {r['tokens']} tokens")
    print(f"  chips        {r['chips']} (needed {r['chips_needed']}: {s['weight_bytes']:,} B of int8 weights + "
          f"{s['kv_bytes']:,} B of KV cache, {s['bytes_per_chip']:,} B of SRAM a chip, {s['utilisation']:.1%} used"
          + (f"; {r['chips'] - r['chips_needed']} more for the tiles' rounding and the step's scratch"
             if r.get("chips_auto") and r["chips"] > r["chips_needed"] else "") + ")")
    top = max(s["per_chip"], key=lambda x: x["utilisation"])
    first, last = top["first_chip"], top["first_chip"] + top["chips"] - 1
    where = f"chip {first}" if first == last else f"chips {first}-{last}"
    print(f"  SRAM a chip  up to {top['utilisation']:.1%} ({where}: {top['weight_bytes']:,} B weights, "
          f"{top['kv_bytes']:,} KV, {top['scratch_bytes']:,} scratch)"
          + ("" if s["fits"] else "; DOES NOT FIT: more chips needed"))
    ln = r["links"]
    group = f", group links {_pct(ln['group_busy'])}" if ln.get("group_busy") else ""
    print(f"  links busy   up to {_pct(ln['busy_max'])} of a decode step (bytes / (bandwidth x step): pipeline "
          f"hops {_pct(ln['pipeline_busy'])}{group})")
    print(f"  per user     {r['tokens_per_s_per_user']:,.1f} tokens/s (a step of {r['step_s'] * 1e3:.3g} ms); first "
          f"token after {r['time_to_first_token_s'] * 1e3:.3g} ms")
    print(f"  aggregate    {r['tokens_per_s']:,.1f} tokens/s")
    if r.get("split_reason"):
        print(f"  split        {r['split_reason']}")
    split = ", ".join(f"{k.replace('_', ' ')} {v:.1%}"
                      for k, v in sorted(r["time_split"].items(), key=lambda kv: -kv[1]))
    print(f"  time         {split} (GEMMs: {', '.join(r['gemm_methods'])})")
    print(f"  energy       {r['tokens_per_joule']:.3g} tokens/J from per-operation energies, "
          f"{r['tokens_per_joule_board']:.3g} from board power ({a['tsp']['board_w']['value']:g} W a card)")
    e = a["economics"]
    print(f"  cost         ${_money(r['usd_per_million_tokens'])} per million tokens "
          f"(${a['tsp']['price_usd']['value']:,.0f} a card over {e['amortisation_years']['value']:g} years, "
          f"${e['power_usd_per_kwh']['value']:.2f}/kWh, PUE {e['pue']['value']:g})")
    for name, g in r["gpu"].items():
        print(f"  {name.upper() + ' GPU':12} {g['gpus']} by the roofline: {g['tokens_per_s_per_user']:,.1f} "
              f"tokens/s per user, {g['tokens_per_s']:,.1f} aggregate, first token "
              f"{g['time_to_first_token_s'] * 1e3:.3g} ms, "
              f"{g['tokens_per_joule']:.3g} tokens/J, ${_money(g['usd_per_million_tokens'])}/M tokens "
              f"({g['bound']} bound)")
        for f in g.get("measured", []):
            print(f"  {'':12} measured: {_figure(f)}")
    if not any(g.get("measured") for g in r["gpu"].values()):
        print(f"  {'':12} measured: no published figure of {r['model']} in perf/gpu_measured.py")
    if r.get("gpu_measured_file"):
        _print_file(r["gpu_measured_file"])
    if r.get("compiled"):
        print(f"  compiled     {r['step_cycles'][0] // r['prompt']:,} cycles a decode step + "
              f"{r['host_cycles'][0] // r['prompt']:,} host words (the program's exact schedule); "
              f"the closed form: {r['model_step_cycles']:,} ({r['model_error']:+.0%}); weight installs "
              f"{r['install_cycles']:,} cycles, closed form {r['model_install_cycles']:,}")
    print("  assumptions  every figure with its source: the JSON's 'assumptions', docs/perf.md")
