"""The report of ``conveyor perf``: one screen of ``perf.estimate``'s figures, and the list of models."""
from perf.models import MODELS

__all__ = ["print_models", "print_report"]


def print_models():
    print(f"{'model':12} {'params':>15} {'layers':>6} {'d_model':>7} {'heads':>5} {'kv':>3} {'ffn':>6} {'context':>7}")
    for m in MODELS.values():
        print(f"{m.name:12} {m.params():>15,} {m.layers:>6} {m.d_model:>7} {m.n_heads:>5} {m.n_kv_heads:>3} "
              f"{m.ffn:>6} {m.context:>7}")


def _money(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def print_report(r):
    s, a = r["sram"], r["assumptions"]
    mapping = r.get("mapping", "pipeline by layers")
    print(f"{r['model']} on {r['chips']} chips of {r['config']} ({mapping}), batch {r['batch']}, prompt "
          f"{r['prompt']}, {r['tokens']} tokens")
    print(f"  chips        {r['chips']} (needed {r['chips_needed']}: {s['weight_bytes']:,} B of int8 weights + "
          f"{s['kv_bytes']:,} B of KV cache, {s['bytes_per_chip']:,} B of SRAM a chip, {s['utilisation']:.1%} used)")
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
    print("  assumptions  every figure with its source: the JSON's 'assumptions', docs/perf.md")
