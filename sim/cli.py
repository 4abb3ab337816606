"""The ``conveyor`` command: generate Verilog, run workloads on the RTL, synthesize for FPGAs.

Every bad argument gets one line naming the argument and what is allowed, and exit status 2; a simulation
that runs but disagrees with numpy, or a tool that fails, exits 1; success exits 0. ``CONVEYOR_DEBUG=1``
shows tracebacks instead.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

__all__ = ["main", "build_parser"]

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BUILD = Path(os.environ.get("CONVEYOR_BUILD", REPO / "build"))
TARGETS = ("ecp5-85f", "ice40-up5k")


class UsageError(Exception):
    """A bad argument: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _int_in(lo, hi=None):
    allowed = f"an integer between {lo} and {hi}" if hi is not None else f"an integer of at least {lo}"

    def parse(text):
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, not {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be {allowed}, not {value}")
        return value
    return parse


def _one_of(choices):
    def parse(text):
        if text not in choices:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(choices)}, not {text!r}")
        return text
    return parse


def _add_array_args(p, rows=16, cols=16):
    from spec.mxu import MAX_ACC_DEPTH, MAX_DIM, MIN_ACC_DEPTH, MIN_DIM
    p.add_argument("--rows", type=_int_in(MIN_DIM, MAX_DIM), default=rows,
                   help=f"array rows, the K width ({MIN_DIM}..{MAX_DIM}; default {rows})")
    p.add_argument("--cols", type=_int_in(MIN_DIM, MAX_DIM), default=cols,
                   help=f"array columns, the N width ({MIN_DIM}..{MAX_DIM}; default {cols})")
    p.add_argument("--acc-depth", type=_int_in(MIN_ACC_DEPTH, MAX_ACC_DEPTH), default=None,
                   help="accumulator words (default 1024; for fpga, 256)")


def build_parser():
    parser = _Parser(prog="conveyor", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    gen = sub.add_parser("gen", help="write Verilog and RTLIL for a unit")
    gen_sub = gen.add_subparsers(dest="unit", metavar="UNIT", parser_class=_Parser)
    gen_sub.required = True
    gen_mxu = gen_sub.add_parser("mxu", help="the systolic matrix unit")
    _add_array_args(gen_mxu)
    gen_mxu.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")

    sim = sub.add_parser("sim", help="run a workload on the RTL and compare it with numpy")
    sim_sub = sim.add_subparsers(dest="workload", metavar="WORKLOAD", parser_class=_Parser)
    sim_sub.required = True
    gemm = sim_sub.add_parser("gemm", help="int8 GEMM y = x @ w, x: M×K, w: K×N, on one MXU")
    for dim in ("m", "k", "n"):
        gemm.add_argument(f"--{dim}", type=_int_in(1), required=True, help=f"{dim.upper()} (at least 1)")
    _add_array_args(gemm)
    gemm.add_argument("--seed", type=_int_in(0), default=0, help="random seed of x and w (default 0)")
    gemm.add_argument("--simulator", type=_one_of(("verilator", "amaranth")), default="verilator",
                      help="verilator (default; cycle-accurate, fast) or amaranth (per-cycle Python; small runs)")
    gemm.add_argument("--waves", action="store_true", help="write a VCD waveform and print its path")
    gemm.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    gemm.add_argument("--build-dir", default=str(DEFAULT_BUILD), help=f"build folder (default {DEFAULT_BUILD})")

    fpga = sub.add_parser("fpga", help="synthesize the MXU tile with yosys and nextpnr and report Fmax and area")
    fpga.add_argument("--target", required=True, type=_one_of(TARGETS), help="FPGA: " + " or ".join(TARGETS))
    _add_array_args(fpga, rows=8, cols=8)
    fpga.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    fpga.add_argument("--bitstream", action="store_true", help="also build a bitstream in a board wrapper")
    fpga.add_argument("--no-dsp", action="store_true",
                      help="multipliers in LUTs, not DSP blocks (the UP5K has 8 DSPs; nextpnr-ice40 does not "
                           "time paths through them, so LUT multipliers give the honest Fmax there)")
    fpga.add_argument("--seed", type=_int_in(1), default=1, help="nextpnr placement seed (default 1)")
    fpga.add_argument("--build-dir", default=str(DEFAULT_BUILD), help=f"build folder (default {DEFAULT_BUILD})")
    return parser


def _write_json(path, report):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


def cmd_gen(args):
    from amaranth.back import rtlil, verilog

    from rtl.mxu import MXU
    from sim.toolchain import use_yosys
    from spec.mxu import MXUParams
    use_yosys()
    params = MXUParams(args.rows, args.cols, args.acc_depth or 1024)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    name = f"mxu_{params.rows}x{params.cols}"
    v = out / f"{name}.v"
    il = out / f"{name}.il"
    v.write_text(verilog.convert(MXU(params.rows, params.cols, params.acc_depth), name=name, emit_src=False))
    il.write_text(rtlil.convert(MXU(params.rows, params.cols, params.acc_depth), name=name, emit_src=False))
    print(f"wrote {v} and {il} (module {name}: {params.rows}×{params.cols} MXU, "
          f"{params.acc_depth} accumulator words, latency {params.latency} cycles)")
    return 0


def run_gemm(m, k, n, *, rows, cols, acc_depth=1024, seed=0, simulator="verilator", waves=False,
             build_dir=DEFAULT_BUILD):
    """Run one random GEMM on the RTL and return the report (a dict; see ``conveyor sim gemm --help``)."""
    import numpy as np

    from golden.mxu import MXUModel, matmul
    from sim.gemm import schedule_gemm
    from sim.stimulus import operand
    from spec.mxu import MXUParams

    params = MXUParams(rows, cols, acc_depth)
    rng = np.random.default_rng(seed)
    x, w = operand(rng, (m, k)), operand(rng, (k, n))
    plan = schedule_gemm(x, w, params)
    want = matmul(x, w)
    golden = MXUModel(params).run(plan.trace)

    report = {"m": m, "k": k, "n": n, "rows": rows, "cols": cols, "acc_depth": acc_depth, "seed": seed,
              "simulator": simulator, "tiles": plan.tiles, "macs": plan.macs, "latency": params.latency,
              "golden_cycles": plan.predicted_cycles}
    t0 = time.perf_counter()
    if simulator == "verilator":
        from sim.verilator import MXUSimulator
        simr = MXUSimulator(params, build_root=Path(build_dir) / "sim", waves=waves)
        run_dir = Path(build_dir) / "waves" / f"gemm_{m}x{k}x{n}_{rows}x{cols}_s{seed}" if waves else None
        out = simr.run(plan.trace, run_dir=run_dir)
        cycle, addr, data = out.cycle, out.addr, out.data
        info = out.info
        report["build_seconds"] = round(info.build_seconds, 3)
        report["sim_seconds"] = round(info.sim_seconds, 3)
        loop = getattr(info, "loop_seconds", None) or info.sim_seconds
        report["simulated_cycles"] = info.cycles
        report["cycles_per_second"] = round(info.cycles / loop) if loop else None
        report["waves"] = getattr(info, "vcd_path", None)
        if report["waves"]:
            from sim.waves import mxu_layout, vcd_signals, write_gtkw
            signals = vcd_signals(report["waves"])
            report["gtkw"] = str(write_gtkw(Path(report["waves"]).with_suffix(".gtkw"), report["waves"],
                                            mxu_layout(signals, rows, cols), signals))
    else:
        from sim.amaranth_sim import run_mxu_trace
        vcd = None
        if waves:
            vcd = Path(build_dir) / "waves" / f"gemm_{m}x{k}x{n}_{rows}x{cols}_s{seed}.vcd"
            vcd.parent.mkdir(parents=True, exist_ok=True)
        cycle, addr, data = run_mxu_trace(params, plan.trace, vcd=None if vcd is None else str(vcd))
        report["waves"] = None if vcd is None else str(vcd)
    report["wall_seconds"] = round(time.perf_counter() - t0, 3)

    timing_ok = (len(cycle) == len(golden.cycle) and np.array_equal(cycle, golden.cycle)
                 and np.array_equal(addr, golden.addr) and np.array_equal(data, golden.data))
    first_mismatch = None
    if len(addr) == plan.expected_outputs:
        got = plan.assemble(addr, data)
        bad = np.argwhere(got != want)
        if len(bad):
            i, j = (int(v) for v in bad[0])
            first_mismatch = {"row": i, "col": j, "got": int(got[i, j]), "want": int(want[i, j]),
                              "count": len(bad)}
    else:
        first_mismatch = {"outputs": int(len(addr)), "want_outputs": plan.expected_outputs}
    cycles = int(cycle[-1]) - plan.first_weight_cycle + 1 if len(cycle) else 0
    report.update({
        "match": first_mismatch is None and timing_ok,
        "matches_numpy": first_mismatch is None,
        "matches_golden": bool(timing_ok),
        "first_mismatch": first_mismatch,
        "cycles": cycles,
        "utilization": round(plan.macs / (cycles * rows * cols), 6) if cycles else 0.0,
    })
    return report


def _print_gemm(r):
    print(f"GEMM {r['m']}×{r['k']}×{r['n']} (int8 → int32) on a {r['rows']}×{r['cols']} MXU, seed {r['seed']}, "
          f"{r['simulator']}: {r['tiles']} weight tiles")
    verdict = "equals numpy bit for bit" if r["matches_numpy"] else f"DIFFERS from numpy: {r['first_mismatch']}"
    print(f"  result       {verdict}")
    print(f"  timing       {'equals' if r['matches_golden'] else 'DIFFERS from'} the golden model "
          f"(every result vector, cycle by cycle)")
    print(f"  cycles       {r['cycles']} from the first weight in to the last result out "
          f"(predicted {r['golden_cycles']})")
    print(f"  utilization  {r['utilization']:.4f} ({r['macs']} MACs / (cycles × {r['rows'] * r['cols']} MACs))")
    if r.get("cycles_per_second"):
        print(f"  speed        {r['cycles_per_second']:,} cycles per wall second "
              f"({r['simulated_cycles']} cycles; build {r['build_seconds']} s, excluded)")
    if r.get("waves"):
        print(f"  waveform     {r['waves']}")
        if r.get("gtkw"):
            print(f"  layout       {r['gtkw']} (signals grouped: inputs, first and last PE, accumulators, outputs)")
            print(f"               open with: gtkwave {r['gtkw']}")
        print(f"               or: surfer {r['waves']}")


def cmd_sim(args):
    r = run_gemm(args.m, args.k, args.n, rows=args.rows, cols=args.cols, acc_depth=args.acc_depth or 1024,
                 seed=args.seed, simulator=args.simulator, waves=args.waves, build_dir=args.build_dir)
    _print_gemm(r)
    if args.json:
        _write_json(args.json, r)
    return 0 if r["match"] else 1


def cmd_fpga(args):
    from fpga.flow import build_bitstream, synthesize
    from rtl.mxu import MXU
    from spec.mxu import MXUParams

    def mxu_tile(rows, cols, acc_depth):
        # The MXU registers every input on entry and drives every output from a register: it is the tile.
        return MXU(rows, cols, acc_depth)
    acc_depth = args.acc_depth or 256
    work = (Path(args.build_dir) / "fpga"
            / f"{args.target}_mxu{args.rows}x{args.cols}_a{acc_depth}{'_nodsp' if args.no_dsp else ''}")
    MXUParams(args.rows, args.cols, acc_depth)
    report = synthesize(mxu_tile(args.rows, args.cols, acc_depth), target=args.target, work_dir=work,
                        name="mxu_tile", seed=args.seed, use_dsp=not args.no_dsp)
    report.update({"rows": args.rows, "cols": args.cols, "acc_depth": acc_depth, "macs": args.rows * args.cols,
                   "multipliers": "LUT" if args.no_dsp else "DSP"})
    report["lut_per_mac"] = round(report["lut"] / report["macs"], 2)
    if args.bitstream:
        report["bitstream"] = str(build_bitstream(mxu_tile(args.rows, args.cols, acc_depth), target=args.target,
                                                  work_dir=work / "board"))
    print(f"{args.target}: {args.rows}×{args.cols} MXU tile ({report['flow']}): Fmax {report['fmax_mhz']:.1f} MHz, "
          f"{report['lut']} LUT4 ({report['lut_per_mac']} per MAC), {report['ff']} FF, {report['dsp']} DSP, "
          f"{report['bram']} BRAM")
    if args.bitstream:
        print(f"  bitstream: {report['bitstream']}")
    if args.json:
        _write_json(args.json, report)
    return 0


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return {"gen": cmd_gen, "sim": cmd_sim, "fpga": cmd_fpga}[args.command](args)
    except UsageError as e:
        print(f"conveyor: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as e:
        # Bad values found past argument parsing (library validation). CONVEYOR_DEBUG=1 shows the traceback.
        if os.environ.get("CONVEYOR_DEBUG"):
            raise
        print(f"conveyor: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        # Simulator or FPGA tool failures (SimulationError, FlowError): the message says where the logs are.
        if os.environ.get("CONVEYOR_DEBUG"):
            raise
        print(f"conveyor: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
