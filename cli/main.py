"""The ``conveyor`` command: generate Verilog, run workloads on the RTL, synthesize for FPGAs.

Every bad argument gets one line naming the argument and what is allowed, and exit status 2; a simulation
that runs but disagrees with numpy, or a tool that fails, exits 1; success exits 0. ``CONVEYOR_DEBUG=1``
shows tracebacks instead.
"""
import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

__all__ = ["main", "build_parser"]

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BUILD = Path(os.environ.get("CONVEYOR_BUILD", REPO / "build"))
TARGETS = ("ecp5-85f", "ice40-up5k")
#: Seeds handed to the Verilator harness (a 32-bit plusarg) and to nextpnr (a C int).
MAX_SEED = 2**31 - 1


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
    default = "16, with --unit mxu" if rows is None else rows
    p.add_argument("--rows", type=_int_in(MIN_DIM, MAX_DIM), default=rows,
                   help=f"array rows, the K width ({MIN_DIM}..{MAX_DIM}; default {default})")
    p.add_argument("--cols", type=_int_in(MIN_DIM, MAX_DIM), default=cols,
                   help=f"array columns, the N width ({MIN_DIM}..{MAX_DIM}; default "
                        f"{'16, with --unit mxu' if cols is None else cols})")
    p.add_argument("--acc-depth", type=_int_in(MIN_ACC_DEPTH, MAX_ACC_DEPTH), default=None,
                   help="accumulator words (default 1024; for fpga, 256)")


def _config(text):
    """A preset name or a JSON file of ``ChipConfig.to_dict()``."""
    from spec.config import PRESETS, ChipConfig
    if text in PRESETS:
        return PRESETS[text]
    if text.endswith(".json"):
        try:
            return ChipConfig.from_dict(json.loads(Path(text).read_text()))
        except OSError as e:
            raise argparse.ArgumentTypeError(f"cannot read {text}: {e.strerror}") from None
        except (ValueError, TypeError) as e:
            raise argparse.ArgumentTypeError(f"{text}: {e}") from None
    raise argparse.ArgumentTypeError(f"must be one of {', '.join(PRESETS)} or a .json file, not {text!r}")


def _add_config_arg(p):
    from spec.config import DEFAULT_PRESET, PRESETS
    p.add_argument("--config", type=_config, default=PRESETS[DEFAULT_PRESET],
                   help=f"chip configuration: a preset ({', '.join(n for n, c in PRESETS.items() if c.rtl)}; "
                        f"default {DEFAULT_PRESET}) or a JSON file of ChipConfig fields")


def build_parser():
    parser = _Parser(prog="conveyor", description=__doc__.splitlines()[0])
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress lines on long steps (building models, synthesis, long runs; also "
                             "CONVEYOR_QUIET=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    gen = sub.add_parser("gen", help="write Verilog and RTLIL for a unit")
    gen_sub = gen.add_subparsers(dest="unit", metavar="UNIT", parser_class=_Parser)
    gen_sub.required = True
    gen_mxu = gen_sub.add_parser("mxu", help="the systolic matrix unit")
    _add_array_args(gen_mxu)
    gen_mxu.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    gen_chip = gen_sub.add_parser("chip", help="the whole chip of a configuration")
    _add_config_arg(gen_chip)
    gen_chip.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    from spec.config import DEFAULT_PRESET, PRESETS
    gen_sys = gen_sub.add_parser("system", help="chips of a configuration joined by scheduled links "
                                                "(docs/multichip.md)")
    gen_sys.add_argument("--chips", type=_int_in(1, SYSTEM_MAX_CHIPS), default=2,
                         help=f"chips in the system (1..{SYSTEM_MAX_CHIPS}; default 2)")
    gen_sys.add_argument("--topology", type=_one_of(("line", "ring")), default="line",
                         help="line (chip c's east link joined with chip c+1's west) or ring (also the last "
                              "chip's east with chip 0's west); default line")
    gen_sys.add_argument("--config", type=_config, default=PRESETS[DEFAULT_PRESET],
                         help=f"chip configuration: a preset ({', '.join(n for n, c in PRESETS.items() if c.rtl)}; "
                              f"default {DEFAULT_PRESET}) or a JSON file of ChipConfig fields; a configuration "
                              f"without link slices gets one at both ends (ChipConfig.with_links(), named "
                              f"<name>_link)")
    gen_sys.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")

    comp = sub.add_parser("compile", help="compile a model (MODEL.py) into a program folder that conveyor run runs")
    comp.add_argument("model", metavar="MODEL.py",
                      help="a Python file defining model() (a compiler.ir.Graph or a torch.nn.Module) and "
                           "example_inputs() (a tuple of arrays in argument order, one array, or a dict of input "
                           "name to array; also the calibration data); or a language model: model() (a decoder "
                           "taking token ids), max_context() and calibration() (token ids)")
    _add_config_arg(comp)
    comp.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder (program.json, data.npz)")
    comp.add_argument("--batch", type=_int_in(1), default=None,
                      help="compiled batch (default: the first dimension of the example inputs)")
    comp.add_argument("--timeline", metavar="FILE.png", help="also draw the schedule, one row per slice")
    comp.add_argument("--pick", type=_one_of(("host", "chip")), default=None,
                      help="a language model: who picks each token, host (default) or chip (greedy on the chip)")
    comp.add_argument("--chips", type=_int_in(1, SYSTEM_MAX_CHIPS), default=1,
                      help=f"chips joined by scheduled links (1..{SYSTEM_MAX_CHIPS}; default 1): more lowers the model "
                           f"in pipeline parallel, its steps divided among the chips and the tensors between them "
                           f"sent over the links; a language model (MODEL.py with model() and max_context()) in "
                           f"tensor parallel, its heads and MLP columns divided, the partial sums added over the "
                           f"links")
    comp.add_argument("--split", type=_one_of(("pipeline", "tensor", "auto")), default="auto",
                      help="with --chips > 1, a model (not a language model): pipeline (consecutive steps on "
                           "consecutive chips), tensor (a linear feeding another divided by columns and rows, the "
                           "partial sums all-reduced over the links) or auto (default: both built, the fewer "
                           "predicted cycles kept, and why)")
    _add_link_args(comp)
    comp.add_argument("--json", metavar="FILE", help="also write the report as JSON")

    run = sub.add_parser("run", help="run a compiled program folder (conveyor compile), or assemble a program, run "
                                     "it on the chip RTL and on the golden model, compare")
    run.add_argument("program", metavar="PROGRAM.s",
                     help="assembly text (docs/isa.md, 'Assembly'), or a folder written by conveyor compile")
    run.add_argument("--config", type=_config, default=None,
                     help="chip configuration of an assembly program: a preset (default small) or a JSON file of "
                          "ChipConfig fields (a compiled program carries its own)")
    run.add_argument("--inputs", metavar="X.npz",
                     help="compiled program: the float inputs, one key per graph input (needed)")
    run.add_argument("--backend", type=_one_of(("verilator", "golden")), default=None,
                     help="compiled program: verilator (default; the RTL, compared with the golden model) or "
                          "golden (the golden model alone)")
    run.add_argument("--outputs", metavar="Y.npz", help="compiled program: write the outputs, one key per output")
    run.add_argument("--data", metavar="FILE.npz",
                     help="MEM contents before the run: keys <slice>.<bank> or <slice>.<bank>@<addr> (e.g. "
                          "mem0.1@16), each an n x lanes integer array")
    run.add_argument("--waves", action="store_true",
                     help="write a VCD waveform, a GTKWave layout (.gtkw) grouped by slice and a PNG of the "
                          "first cycles")
    run.add_argument("--prompt-ids", metavar="IDS",
                     help="language model folder: the prompt's token ids, comma-separated (needed)")
    run.add_argument("--tokens", type=_int_in(1), default=8, help="language model folder: tokens to generate "
                                                                  "(default 8)")
    run.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    run.add_argument("--seed", type=_int_in(0, MAX_SEED), default=1,
                     help=f"seed of the host edge's valid/ready pattern (0..{MAX_SEED}; default 1)")
    run.add_argument("--build-dir", default=str(DEFAULT_BUILD), help=f"build folder (default {DEFAULT_BUILD})")

    sim = sub.add_parser("sim", help="run a workload on the RTL and compare it with numpy")
    sim_sub = sim.add_subparsers(dest="workload", metavar="WORKLOAD", parser_class=_Parser)
    sim_sub.required = True
    gemm = sim_sub.add_parser("gemm", help="int8 GEMM y = x @ w, x: M×K, w: K×N, on the whole chip (default) or "
                                           "on the MXU tile alone (--unit mxu)")
    for dim in ("m", "k", "n"):
        gemm.add_argument(f"--{dim}", type=_int_in(1), required=True, help=f"{dim.upper()} (at least 1)")
    gemm.add_argument("--unit", type=_one_of(("chip", "mxu")), default="chip",
                      help="chip (default: operands from SRAM over the streams, the array of --config) or mxu "
                           "(the tile alone, fed by a trace; --rows/--cols/--acc-depth)")
    _add_config_arg(gemm)
    _add_array_args(gemm, rows=None, cols=None)
    gemm.add_argument("--seed", type=_int_in(0), default=0, help="random seed of x and w (default 0)")
    from cli.system_sim import add_system_args
    add_system_args(gemm, _int_in, _one_of, SYSTEM_MAX_CHIPS)
    gemm.add_argument("--backend", type=_one_of(("verilator", "golden")), default="verilator",
                      help="with --chips > 1: verilator (default; the system's RTL, compared with the golden model) "
                           "or golden (the system's golden model alone)")
    gemm.add_argument("--simulator", type=_one_of(("verilator", "amaranth")), default="verilator",
                      help="verilator (default; cycle-accurate, fast) or amaranth (per-cycle Python; small runs)")
    gemm.add_argument("--waves", action="store_true", help="write a VCD waveform and print its path (with --chips: "
                      "and a GTKWave layout grouped per chip, links included)")
    gemm.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    gemm.add_argument("--build-dir", default=str(DEFAULT_BUILD), help=f"build folder (default {DEFAULT_BUILD})")

    demo = sub.add_parser("demo", help="chip demos: a two-layer int8 MLP step from assembly (mlp, the demo of make "
                                       "sim); the compiler end to end on the 8×8 digits (digits)")
    demo_sub = demo.add_subparsers(dest="demo", metavar="DEMO", parser_class=_Parser)
    demo_sub.required = True
    mlp = demo_sub.add_parser("mlp", help="Y = relu(requant(X @ W1 + b1)) @ W2, written as mlp.s + mlp.npz and run "
                                          "like conveyor run")
    _add_config_arg(mlp)
    for dim, default, what in (("m", 256, "rows of X"), ("k", 64, "input features"),
                               ("hidden", 64, "hidden features"), ("n", 16, "outputs")):
        mlp.add_argument(f"--{dim}", type=_int_in(1), default=default, help=f"{what} (default {default})")
    mlp.add_argument("--seed", type=_int_in(0), default=1, help="random seed of the operands (default 1)")
    mlp.add_argument("--waves", action="store_true", help="as for conveyor run")
    mlp.add_argument("--out", metavar="DIR", help="where mlp.s and mlp.npz go (default BUILD_DIR/demo)")
    mlp.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    mlp.add_argument("--build-dir", default=str(DEFAULT_BUILD), help=f"build folder (default {DEFAULT_BUILD})")

    digits = demo_sub.add_parser("digits", help="the compiler end to end: an MLP trained with numpy on scikit-learn's "
                                                "8×8 digits, quantized to int8, compiled, run on the chip over the "
                                                "whole test split")
    _add_config_arg(digits)
    digits.add_argument("--batch", type=_int_in(1), default=64, help="samples per chip run (default 64)")
    digits.add_argument("--backend", type=_one_of(("verilator", "golden")), default="verilator",
                        help="verilator (default: the RTL, each run compared with the golden model) or golden "
                             "(the golden model alone)")
    digits.add_argument("--seed", type=_int_in(0), default=0, help="seed of the split and the training (default 0)")
    digits.add_argument("--chips", type=_int_in(1, SYSTEM_MAX_CHIPS), default=1,
                        help=f"chips joined by scheduled links (1..{SYSTEM_MAX_CHIPS}; default 1): more divides the "
                             f"MLP among the chips (--split)")
    digits.add_argument("--split", type=_one_of(("pipeline", "tensor", "auto")), default="auto",
                        help="with --chips > 1: pipeline (the layers on consecutive chips), tensor (the hidden "
                             "layer's columns divided, the partial sums all-reduced over the links) or auto "
                             "(default: the fewer predicted cycles)")
    digits.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    digits.add_argument("--build-dir", default=str(DEFAULT_BUILD), help=f"build folder (default {DEFAULT_BUILD})")

    lmd = demo_sub.add_parser("lm", help="a language model trained here (gpt or llama), compiled with compile_lm "
                                         "and generating text on the chip, every token checked against the int8 "
                                         "reference")
    _add_config_arg(lmd)
    lmd.add_argument("--arch", type=_one_of(("gpt", "llama")), default="gpt",
                     help="the reference model: gpt (learned positions, LayerNorm, GELU; default) or llama (rotary, "
                          "RMSNorm, SwiGLU)")
    lmd.add_argument("--prompt", default="The ", help="the prompt text (default 'The ')")
    lmd.add_argument("--tokens", type=_int_in(1), default=32, help="tokens to generate (default 32)")
    lmd.add_argument("--backend", type=_one_of(("verilator", "golden")), default="verilator",
                     help="verilator (default: the RTL, every step compared with golden) or golden")
    lmd.add_argument("--temperature", type=float, default=0.0, help="0 (default): greedy; else seeded sampling")
    lmd.add_argument("--seed", type=_int_in(0), default=0, help="seed of the sampling (default 0)")
    lmd.add_argument("--pick", type=_one_of(("host", "chip")), default="host",
                     help="who picks each token: host (default: it reads the logits; greedy or sampled) or chip "
                          "(greedy on the chip, which writes the token the next step's embedding READX reads)")
    lmd.add_argument("--chips", type=_int_in(1, SYSTEM_MAX_CHIPS), default=1,
                     help=f"chips in a line (1..{SYSTEM_MAX_CHIPS}; default 1): more divides the decode step in tensor "
                          f"parallel (heads and MLP columns per chip, partial sums added over the links)")
    _add_link_args(lmd)
    lmd.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    lmd.add_argument("--build-dir", default=str(DEFAULT_BUILD), help=f"build folder (default {DEFAULT_BUILD})")

    fpga = sub.add_parser("fpga", help="synthesize the MXU tile with yosys and nextpnr and report Fmax and area")
    fpga.add_argument("--target", required=True, type=_one_of(TARGETS), help="FPGA: " + " or ".join(TARGETS))
    _add_array_args(fpga, rows=8, cols=8)
    fpga.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    fpga.add_argument("--bitstream", action="store_true", help="also build a bitstream in a board wrapper")
    fpga.add_argument("--no-dsp", action="store_true",
                      help="multipliers in LUTs, not DSP blocks (the UP5K has 8 DSPs; nextpnr-ice40 does not "
                           "time paths through them, so LUT multipliers give the honest Fmax there)")
    fpga.add_argument("--seed", type=_int_in(1, MAX_SEED), default=1,
                      help=f"nextpnr placement seed (1..{MAX_SEED}; default 1)")
    fpga.add_argument("--build-dir", default=str(DEFAULT_BUILD), help=f"build folder (default {DEFAULT_BUILD})")
    pf = sub.add_parser("perf", help="estimate a language model on many model-only chips (tsp) beside the GPU "
                                     "roofline: tokens/s per user, tokens/J, $ per million tokens")
    pf.add_argument("model", nargs="?", metavar="MODEL",
                    help="a model of perf.models (conveyor perf --list), or a folder written by LMProgram.save "
                         "(conveyor compile of a language model): its exact cycles on its own configuration")
    pf.add_argument("--list", action="store_true", help="list the known models and exit")
    pf.add_argument("--config", type=_config, default=None,
                    help="chip configuration: a preset (default tsp) or a JSON file of ChipConfig fields")
    pf.add_argument("--chips", type=_int_in(1), default=None,
                    help="chips in the pipeline (default: the fewest that hold the weights and KV cache)")
    pf.add_argument("--batch", type=_int_in(1), default=None, help="users decoding together (default 1)")
    for name, what in (("prompt", "prompt tokens"), ("tokens", "generated tokens")):
        pf.add_argument(f"--{name}", type=_int_in(1), default=None,
                        help=f"{what} (default 128; for a compiled program, half its context)")
    pf.add_argument("--split", type=_one_of(("auto", "tensor", "pipeline")), default=None,
                    help="how the model is split across chips: auto (the faster, default), tensor (every layer over "
                         "a group of chips, stages of groups) or pipeline (layers on consecutive chips)")
    pf.add_argument("--gpu-measured", metavar="FILE.json", default=None,
                    help="a JSON file of tools/gpu_decode.py (decode measured with PyTorch on a GPU), shown beside "
                         "the roofline")
    pf.add_argument("--tensor-group", type=_int_in(1), default=None, metavar="T",
                    help="chips per tensor-parallel group (--split tensor; default: the fastest)")
    pf.add_argument("--json", metavar="FILE", help="also write the report as JSON (with every assumption)")
    sw = sub.add_parser("sweep", help="sweep conveyor perf over a grid of chip designs (lanes, MXU, SRAM, clock, "
                                      "chips, links) as tasks on Dask: CSV, JSON and plots")
    sw.add_argument("model", metavar="MODEL", help="a model of perf.models (conveyor perf --list)")
    sw.add_argument("--config", type=_config, default="tsp",
                    help="the chip configuration the axes change: a preset (default tsp) or a JSON file")
    sw.add_argument("--axis", type=_sweep_axis, action="append", default=[], metavar="NAME=V1,V2,...",
                    help="an axis of the grid and its values (repeatable): lanes, mxu, mem_slices, mem_depth, "
                         "clock_mhz, chips, link_gbytes_s, link_latency_us")
    for name, default, what in (("batch", 1, "users decoding together"), ("prompt", 128, "prompt tokens"),
                                ("tokens", 128, "generated tokens")):
        sw.add_argument(f"--{name}", type=_int_in(1), default=default, help=f"{what} (default {default})")
    sw.add_argument("--scheduler", metavar="ADDRESS",
                    help="a running Dask scheduler (tcp://host:8786; default: a local cluster of 2 workers)")
    sw.add_argument("--csv", metavar="FILE", help="write the points as CSV")
    sw.add_argument("--json", metavar="FILE", help="write the points as JSON")
    sw.add_argument("--plot", metavar="FILE.png", help="plot tokens/s per user against chips and the Pareto front "
                                                       "against tokens per joule")
    return parser


def _sweep_axis(text):
    """``NAME=V1,V2,...`` of ``perf.sweep.AXES`` as ``(name, [values])``."""
    from perf.sweep import AXES
    name, eq, values = text.partition("=")
    if name not in AXES:
        raise argparse.ArgumentTypeError(f"unknown axis {name!r}: must be one of {', '.join(AXES)} "
                                         "(NAME=V1,V2,...)")
    kind = AXES[name][0]
    what = "integers" if kind is int else "numbers"
    if not eq or not values:
        raise argparse.ArgumentTypeError(f"{name} needs values: {name}=V1,V2,... (positive {what})")
    out = []
    for v in values.split(","):
        try:
            x = kind(v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} takes positive {what}, not {v.strip()!r}") from None
        if not 0 < x < float("inf"):
            raise argparse.ArgumentTypeError(f"{name} takes positive {what}, not {v.strip()!r}")
        out.append(x)
    return name, out


@functools.cache
def _parser():
    # Built once per process: argparse parsers keep no state between parse_args calls.
    return build_parser()


def _check_operands_fit(config, **operands):
    """``UsageError`` when int8 operands (name -> (rows, cols)) cannot fit in ``config``'s MEM even packed
    one value per lane: checked before any operand is made, so that huge sizes fail at once."""
    mems = len(config.positions("mem"))
    capacity = mems * config.mem_banks * config.mem_depth       # words of `lanes` int8 values
    need = sum(-(-rows * cols // config.lanes) for rows, cols in operands.values())
    if need > capacity:
        shapes = ", ".join(f"{name} {rows}x{cols}" for name, (rows, cols) in operands.items())
        raise UsageError(f"the operands ({shapes}) need at least {need} words of MEM, but config {config.name} "
                         f"has {capacity} ({mems} MEM slices x {config.mem_banks} banks x {config.mem_depth} words "
                         f"of {config.lanes} lanes): make the sizes smaller")


def _write_json(path, report):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


#: Chips of ``conveyor gen system``: ``rtl.system.MAX_RTL_CHIPS`` (not imported here, so that parsing the
#: command line loads no Amaranth; tests/test_system_verilator.py checks they agree).
SYSTEM_MAX_CHIPS = 8


def cmd_gen(args):
    from amaranth.back import rtlil, verilog

    from sim.toolchain import use_yosys
    use_yosys()
    out = Path(args.output)
    if args.unit == "system":
        from sim.system_verilator import generate_system_verilog
        config = args.config.check_rtl()
        if not config.link_ends:
            config = config.with_links()
            print(f"config {args.config.name} has no link slices: using {config.name} (ChipConfig.with_links(): "
                  f"a link slice at both ends)")
        try:
            name = f"system_{config.name}_{args.chips}_{args.topology}"
            text = generate_system_verilog(config, args.chips, args.topology, name=name)
        except ValueError as e:
            raise UsageError(str(e)) from None
        out.mkdir(parents=True, exist_ok=True)
        v = out / f"{name}.v"
        v.write_text(text)
        cfg = out / f"{name}.json"
        cfg.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        print(f"wrote {v} and {cfg} (module {name}: {args.chips} chip{'s' * (args.chips > 1)} of {config.name} in a "
              f"{args.topology}, slices {' '.join(config.slice_names)}, links of {config.link_latency} cycles "
              f"carrying a vector every {config.link_interval}; host edges cmd0/resp0 … "
              f"cmd{args.chips - 1}/resp{args.chips - 1})")
        return 0
    if args.unit == "chip":
        from rtl.chip import Chip
        config = args.config.check_rtl()
        out.mkdir(parents=True, exist_ok=True)
        name = f"chip_{config.name}"
        v = out / f"{name}.v"
        v.write_text(verilog.convert(Chip(config), name=name, emit_src=False))
        cfg = out / f"{name}.json"
        cfg.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        print(f"wrote {v} and {cfg} (module {name}: {len(config.slices)} slices "
              f"{' '.join(config.slice_names)}, {config.lanes} lanes, {config.streams}+{config.streams} streams)")
        return 0
    from rtl.mxu import MXU
    from spec.mxu import MXUParams
    params = MXUParams(args.rows, args.cols, args.acc_depth or 1024)
    out.mkdir(parents=True, exist_ok=True)
    name = f"mxu_{params.rows}x{params.cols}"
    v = out / f"{name}.v"
    il = out / f"{name}.il"
    v.write_text(verilog.convert(MXU(params.rows, params.cols, params.acc_depth), name=name, emit_src=False))
    il.write_text(rtlil.convert(MXU(params.rows, params.cols, params.acc_depth), name=name, emit_src=False))
    print(f"wrote {v} and {il} (module {name}: {params.rows}×{params.cols} MXU, "
          f"{params.acc_depth} accumulator words, latency {params.latency} cycles)")
    return 0


def _load_model_file(path):
    """``(model, example_inputs)`` of MODEL.py: its ``model()`` and ``example_inputs()``; ``UsageError`` (one
    line) for a missing file, missing functions or an exception inside."""
    import importlib.util
    import traceback
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"cannot read model {path}: {'is a folder' if p.is_dir() else 'no such file'}")

    def fail(what, e):
        frames = [f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename).resolve() == p.resolve()]
        at = f" (line {frames[-1].lineno})" if frames else ""
        msg = " ".join(str(e).split()) or "no message"
        return UsageError(f"{path}: {what} raised {type(e).__name__}{at}: {msg}")

    spec = importlib.util.spec_from_file_location(f"_conveyor_model_{abs(hash(str(p.resolve())))}", p)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot load model {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as e:
        raise fail("loading it", e) from None
    if callable(getattr(module, "max_context", None)):          # a language model: compile_lm
        return _load_lm_file(path, module, fail)
    missing = [f for f in ("model", "example_inputs") if not callable(getattr(module, f, None))]
    if missing:
        raise UsageError(f"{path} must define the functions model() and example_inputs() (missing "
                         f"{' and '.join(f + '()' for f in missing)})")
    out = []
    for f in ("model", "example_inputs"):
        try:
            out.append(getattr(module, f)())
        except (Exception, SystemExit) as e:
            raise fail(f"{f}()", e) from None
    model, examples = out
    from compiler.inputs import is_array
    if not (isinstance(examples, (dict, tuple, list)) or is_array(examples)):
        raise UsageError(f"{path}: example_inputs() must return a tuple of arrays in argument order, a single "
                         f"array or tensor (one-input model), or a dict of input name to array, not "
                         f"{type(examples).__name__}")
    return model, examples


def _load_lm_file(path, module, fail):
    """``("lm", model, max_context, calibration ids)`` of a language model's MODEL.py."""
    calib = next((f for f in ("calibration", "example_inputs") if callable(getattr(module, f, None))), None)
    if not callable(getattr(module, "model", None)) or calib is None:
        raise UsageError(f"{path} defines max_context(), so it is a language model: it must also define model() "
                         f"and calibration() (token ids of text like what it will see; example_inputs() also "
                         f"serves)")
    out = []
    for f in ("model", "max_context", calib):
        try:
            out.append(getattr(module, f)())
        except (Exception, SystemExit) as e:
            raise fail(f"{f}()", e) from None
    return ("lm", *out)


def cmd_compile_lm(args, model, context, calibration):
    import compiler
    if args.batch is not None or args.timeline:
        raise UsageError("arguments --batch and --timeline: apply to a compiled program, not to a language model "
                         "(one decode step at batch 1)")
    if args.chips == 1 and args.split != "auto":
        raise UsageError("argument --split: applies to a system: give --chips 2 or more")
    if args.split not in ("auto", "tensor"):
        raise UsageError(f"argument --split: a language model's decode step is divided in tensor parallel, not "
                         f"{args.split}")
    try:
        lm = compiler.compile_lm(model, context, config=_with_links(args, args.config), calibration=calibration,
                                 pick=args.pick or "host", chips=args.chips)
    except (ValueError, TypeError, NotImplementedError) as e:
        raise UsageError(f"{args.model}: {' '.join(str(e).split())}") from None
    out = lm.save(args.output)
    print(f"compiled the language model {args.model} for config {lm.config.name}: context {lm.context}, "
          f"vocabulary {lm.vocab}")
    print(f"  decode   {lm.step_cycles} predicted cycles per token (one program, every position), "
          f"{lm.host_words} host-edge words per step")
    if lm.chips > 1:
        print(f"  chips    {lm.chips} in a line, tensor parallel (cycles {', '.join(map(str, lm.chip_cycles))}; "
              f"{sum(lm.link_words.values())} link vectors a step)")
        for line in lm.split:
            print(f"  split    {line}")
    print(f"  program  {max(len(w) for w in lm.model.program.words)} words on the busiest queue; compile "
          f"{sum(lm.timings.values()):.2f} s")
    print(f"wrote {out} (generate with: conveyor run {out} --prompt-ids 1,2,3 --tokens 8)")
    if args.json:
        _write_json(args.json, {"model": str(args.model), "config": lm.config.name, "context": lm.context,
                                "vocab": lm.vocab, "step_cycles": lm.step_cycles, "host_words": lm.host_words,
                                "chips": lm.chips, "chip_cycles": list(lm.chip_cycles), "split": lm.split,
                                "link_words": lm.link_words, "timings": lm.timings, "output": str(out)})
    return 0


def cmd_run_lm(args):
    from compiler.lm import LMProgram
    from sim import lm_run  # noqa: F401  (registers the "lm" runner)
    if not args.prompt_ids:
        raise UsageError(f"argument --prompt-ids: needed to run the language model {args.program} (token ids, "
                         f"e.g. 1,2,3)")
    try:
        ids = [int(x) for x in args.prompt_ids.split(",")]
    except ValueError:
        raise UsageError(f"argument --prompt-ids: must be comma-separated integers, not {args.prompt_ids!r}") from None
    try:
        lm = LMProgram.load(args.program)
        g = lm.generate(ids, args.tokens, backend=args.backend or "verilator", seed=args.seed)
    except ValueError as e:
        raise UsageError(" ".join(str(e).split())) from None
    same = "equal to" if g.tokens_match else "DIFFERENT from"
    print(f"generated {len(g.tokens)} tokens on {g.backend}, {same} the int8 reference: {g.tokens}")
    print(f"  cycles   prefill {g.cycles[0]}, decode {g.cycles[1:2]} per token (predicted {g.predicted_cycles[1:2]})")
    if args.json:
        _write_json(args.json, {"tokens": g.tokens, "reference": g.reference, "tokens_match": g.tokens_match,
                                "cycles": g.cycles, "predicted_cycles": g.predicted_cycles,
                                "host_cycles": g.host_cycles, "backend": g.backend})
    return 0 if g.tokens_match and g.match is not False else 1


def cmd_compile(args):
    import compiler
    loaded = _load_model_file(args.model)
    if loaded[0] == "lm":
        return cmd_compile_lm(args, *loaded[1:])
    if args.pick is not None:
        raise UsageError("argument --pick: applies to a language model (MODEL.py with max_context())")
    model, examples = loaded
    if args.chips > 1 and args.timeline:
        raise UsageError("argument --timeline: the timeline of a system of chips is not drawn yet")
    if args.chips == 1 and args.split != "auto":
        raise UsageError("argument --split: applies to a system: give --chips 2 or more")
    try:
        cp = compiler.compile(model, examples, config=_with_links(args, args.config), batch=args.batch,
                              chips=args.chips, split=args.split)
    except (ValueError, TypeError, NotImplementedError) as e:
        raise UsageError(f"{args.model}: {' '.join(str(e).split())}") from None
    out = cp.save(args.output)
    reps = cp.sram_report() if args.chips > 1 else [cp.sram_report()]
    print(f"compiled {args.model} for config {cp.config.name}, batch {cp.batch}: {cp.predicted_cycles} predicted "
          f"cycles" + (f" on {cp.chips} chips in {cp.split} parallel (chips {', '.join(map(str, cp.chip_cycles))}; "
                       f"link words {cp.transfers})" if args.chips > 1 else ""))
    if args.chips > 1:
        for line in cp.plan:
            print(f"  {cp.split:<8} {line}")
        if cp.reason:
            print(f"  split    {cp.reason}")
    print(f"  inputs   {', '.join(f'{n} {_shape_text(s)}' for n, (s, _) in cp.input_specs().items())}")
    print(f"  outputs  {', '.join(cp.output_names)}")
    for k, rep in enumerate(reps):
        tot = rep["total"]
        cap = tot["used_bytes"] + tot["free_bytes"]
        print(f"  SRAM{f' c{k}' if args.chips > 1 else '   '}  {tot['used_bytes']} B used of {cap} B "
              f"({tot['used_words']} words; " + ", ".join(f"{s} {v['used_words']}" for s, v in rep.items()
                                                         if s != "total") + ")")
    report = {"model": str(args.model), "config": cp.config.name, "batch": cp.batch,
              "predicted_cycles": cp.predicted_cycles, "sram": reps[0] if args.chips == 1 else reps,
              "output": str(out), "chips": args.chips}
    if args.chips > 1:
        report.update(chip_cycles=list(cp.chip_cycles), boundaries=cp.model.boundaries, link_words=cp.transfers,
                      split=cp.split, plan=cp.plan, split_reason=cp.reason)
    if args.timeline:
        report["timeline"] = str(cp.timeline(args.timeline, title=f"{Path(args.model).stem} on {cp.config.name}: "
                                                                  f"{cp.predicted_cycles} cycles"))
        print(f"  timeline {report['timeline']}")
    print(f"wrote {out} (run it with: conveyor run {out} --inputs X.npz)")
    if args.json:
        _write_json(args.json, report)
    return 0


def _shape_text(shape):
    return "(" + ", ".join("batch" if d is None else str(d) for d in shape) + ")"


def cmd_run_compiled(args):
    import numpy as np

    from compiler.system.program import load_any
    from spec.image import read_npz
    for name in ("config", "data"):
        if getattr(args, name) is not None:
            raise UsageError(f"argument --{name}: applies to an assembly program; a compiled program carries its "
                             f"config and constants")
    if args.waves:
        raise UsageError("argument --waves: applies to an assembly program")
    if not args.inputs:
        raise UsageError(f"argument --inputs: needed to run the compiled program {args.program} (an .npz file, one "
                         f"key per graph input)")
    try:
        cp = load_any(args.program)
    except ValueError as e:
        raise UsageError(str(e)) from None
    specs = cp.input_specs()
    allowed = ", ".join(f"{n} {_shape_text(s)}" for n, (s, _) in specs.items())
    try:
        inputs = read_npz(args.inputs, "inputs")
    except ValueError as e:
        raise UsageError(f"{e} (one key per input: {allowed})") from None
    for key in inputs:
        if key not in specs:
            raise UsageError(f"inputs {args.inputs}: key {key!r} is not an input of the compiled program "
                             f"(inputs: {allowed})")
    for key, (_, dtype) in specs.items():
        if key not in inputs:
            raise UsageError(f"inputs {args.inputs}: key {key!r} is missing (inputs: {allowed})")
        a = inputs[key]
        if dtype != "float32":      # embedding ids, gathered on the host
            if a.dtype.kind not in "iu":
                raise UsageError(f"inputs {args.inputs}: key {key!r} holds ids: it must be an integer array, not "
                                 f"{a.dtype}")
        elif a.dtype.kind != "f":
            raise UsageError(f"inputs {args.inputs}: key {key!r} must be a float array (float16, float32 or "
                             f"float64), not {a.dtype}")
        elif not np.isfinite(a).all():
            raise UsageError(f"inputs {args.inputs}: key {key!r} holds NaN or infinite values; it must be finite")
    backend = args.backend or "verilator"
    import sim
    try:
        res = sim.run(cp, inputs, backend=backend, check=False, build_dir=args.build_dir, seed=args.seed)
    except (ValueError, TypeError) as e:
        raise UsageError(f"inputs {args.inputs}: {' '.join(str(e).split())}") from None
    except (IndexError, KeyError, AssertionError, AttributeError, OverflowError) as e:
        # load() checks the words, locations and sizes; what it cannot see (layouts that disagree with each
        # other) shows up here: the folder was changed after conveyor compile wrote it.
        raise UsageError(f"{args.program}: malformed compiled program ({type(e).__name__}: "
                         f"{' '.join(str(e).split()) or 'inconsistent layout'}); compile it again") from None
    runs = f" in {res.runs} runs of {cp.batch} rows ({', '.join(map(str, res.run_cycles))})" if res.runs > 1 else ""
    chips = getattr(cp, "chips", 1)
    print(f"ran {args.program} on {backend} (config {cp.config.name}"
          + (f", {chips} chips" if chips > 1 else "") + f", batch {cp.batch}): {res.cycles} cycles{runs} "
          f"(predicted {res.predicted_cycles})")
    if backend == "verilator":
        print(f"  RTL and golden model {'equal' if res.match else 'DIFFER: ' + str(res.mismatch)}")
    for name, v in res.outputs.items():
        print(f"  output {name}: {v.dtype} {tuple(v.shape)}")
    report = {"cycles": res.cycles, "predicted_cycles": res.predicted_cycles, "backend": backend,
              "run_cycles": res.run_cycles,
              "outputs": {k: list(v.shape) for k, v in res.outputs.items()}, "config": cp.config.name,
              "chips": chips}
    if backend == "verilator":
        report["match"] = res.match
        report["mismatch"] = res.mismatch
    if args.outputs:
        Path(args.outputs).parent.mkdir(parents=True, exist_ok=True)
        np.savez(args.outputs, **res.outputs)
        print(f"  wrote {args.outputs}")
    if args.json:
        _write_json(args.json, report)
    return 0 if res.match is not False else 1


def cmd_run(args):
    from sim.chip_run import load_data
    from spec.asm import AsmError, assemble
    from spec.config import DEFAULT_PRESET, PRESETS
    if Path(args.program).is_dir() and (Path(args.program) / "lm.json").is_file():
        return cmd_run_lm(args)
    if args.prompt_ids is not None:
        raise UsageError("argument --prompt-ids: applies to a language model folder (conveyor compile of a MODEL.py "
                         "with max_context())")
    if Path(args.program).is_dir() and any((Path(args.program) / f).is_file() for f in ("program.json",
                                                                                         "system.json")):
        return cmd_run_compiled(args)
    for name in ("inputs", "backend", "outputs"):
        if getattr(args, name) is not None:
            raise UsageError(f"argument --{name}: applies to a compiled program folder (conveyor compile), not "
                             f"to assembly")
    config = (args.config or PRESETS[DEFAULT_PRESET]).check_rtl()
    try:
        text = Path(args.program).read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read program {args.program}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"program {args.program} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset "
                         f"{e.start}): assembly is a text file (docs/isa.md, 'Assembly')") from None
    try:
        programs = assemble(text, config)
    except AsmError as e:
        raise UsageError(f"{args.program}: {e}") from None
    inputs = load_data(args.data, config) if args.data else []
    from sim.kernel_run import run_on_chip
    report = run_on_chip(config, programs, inputs, name=f"run_{Path(args.program).stem}", waves=args.waves,
                         build_dir=args.build_dir, seed=args.seed)["report"]
    _print_run(report)
    if args.json:
        _write_json(args.json, report)
    if not report["match"]:
        return 1
    err = report["error"]
    if err is not None:   # the program faulted (and the golden model agrees): one plain line, exit 1
        print(f"conveyor: program fault: {err['code']} on slice {err['slice']} at pc {err['pc']} "
              f"(cycle {report['cycles'] - 1})", file=sys.stderr)
        return 1
    return 0


def _print_run(r):
    verdict = "equal" if r["match"] else f"DIFFER: {r['mismatch']}"
    print(f"config {r['config']}: RTL and golden model {verdict}")
    print(f"  cycles   {r['cycles']} (golden {r['golden_cycles']})")
    err = r["error"]
    where = "none" if err is None else f"{err['code']} on slice {err['slice']} at pc {err['pc']}"
    print(f"  error    {where}")
    if r.get("loop_seconds"):
        print(f"  speed    {r['harness_cycles'] / r['loop_seconds']:,.0f} cycles per wall second "
              f"({r['harness_cycles']} harness cycles, loading and reading back included)")
    if r.get("vcd"):
        print(f"  waveform {r['vcd']}")
        for key, what in (("gtkw", "GTKWave layout, signals grouped by slice"), ("png", "the first cycles")):
            if r.get(key):
                print(f"  {key:8} {r[key]} ({what})")


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
            from waves.mxu import mxu_layout, vcd_signals, write_gtkw
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
    system = (args.chips > 1 or args.split != "auto" or args.topology != "line" or args.link_latency is not None
              or args.link_interval is not None)
    if system:
        return _cmd_sim_system(args)
    if args.backend != "verilator":
        raise UsageError("argument --backend: golden applies to --chips > 1 (one chip runs on the RTL, compared "
                         "with the golden model anyway)")
    if args.unit == "chip":
        for name in ("rows", "cols", "acc_depth"):
            if getattr(args, name) is not None:
                raise UsageError(f"argument --{name.replace('_', '-')}: applies to --unit mxu; the chip's array "
                                 f"comes from --config")
        if args.simulator != "verilator":
            raise UsageError("argument --simulator: the whole chip runs on verilator only; amaranth needs --unit mxu")
        r = run_chip_gemm(args.config, args.m, args.k, args.n, seed=args.seed, waves=args.waves,
                          build_dir=args.build_dir)
        _print_chip_gemm(r)
    else:
        r = run_gemm(args.m, args.k, args.n, rows=args.rows or 16, cols=args.cols or 16,
                     acc_depth=args.acc_depth or 1024, seed=args.seed, simulator=args.simulator, waves=args.waves,
                     build_dir=args.build_dir)
        _print_gemm(r)
    if args.json:
        _write_json(args.json, r)
    return 0 if r["match"] else 1


def _cmd_sim_system(args):
    from cli.system_sim import print_report, run_system_gemm
    if args.chips == 1:
        raise UsageError("arguments --split/--topology/--link-latency/--link-interval: apply to a system: give "
                         "--chips 2 or more")
    if args.unit != "chip":
        raise UsageError("argument --chips: a system runs whole chips; --unit mxu is one MXU tile")
    if args.waves and args.backend != "verilator":
        raise UsageError("argument --waves: waveforms come from the RTL: leave out --backend golden")
    from compiler.memory import MemoryFull
    try:
        r = run_system_gemm(args.config, args.m, args.k, args.n, chips=args.chips, split=args.split,
                            topology=args.topology, link_latency=args.link_latency,
                            link_interval=args.link_interval, seed=args.seed, backend=args.backend,
                            build_dir=Path(args.build_dir) / "sim", waves=args.waves)
    except MemoryFull as e:
        raise UsageError(str(e)) from None
    print_report(r)
    if args.json:
        _write_json(args.json, r)
    return 0 if r["match"] else 1


def run_chip_gemm(config, m, k, n, *, seed=0, waves=False, build_dir=DEFAULT_BUILD):
    """A random GEMM on the whole chip: the report of ``conveyor sim gemm`` (``--unit chip``)."""
    import numpy as np

    from compiler.kernels import gemm
    from sim.stimulus import operand
    config = config.check_rtl()
    _check_operands_fit(config, X=(m, k), W=(k, n))
    rng = np.random.default_rng(seed)
    kern = gemm(config, operand(rng, (m, k)), operand(rng, (k, n)))
    from sim.kernel_run import kernel_report, run_on_chip
    res = run_on_chip(config, kern.program.words, kern.inputs, name=f"gemm_{m}x{k}x{n}_s{seed}", waves=waves,
                      build_dir=build_dir)
    report = kernel_report(kern, res, "gemm")
    report.update({"m": m, "k": k, "n": n, "seed": seed, "unit": "chip", "rows": config.mxu_rows,
                   "cols": config.mxu_cols})
    return report


def _print_chip_report(r, title):
    print(title)
    ok = "equals numpy bit for bit" if r["matches_numpy"] else f"DIFFERS from numpy: {r['first_mismatch']}"
    print(f"  result       {ok}")
    print(f"  golden       RTL and golden model {'agree' if r['matches_golden'] else 'DIFFER: ' + str(r['mismatch'])}"
          f" (cycles, error, every MEM word)")
    print(f"  cycles       {r['cycles']} from START to done (golden {r['golden_cycles']}, compiler predicted "
          f"{r['predicted_cycles']})")
    print(f"  utilization  {r['utilization']:.4f} (MXU activations {r['matmul_cycles']} / cycles)")
    if r.get("cycles_per_second"):
        print(f"  speed        {r['cycles_per_second']:,} cycles per wall second in Verilator ({r['harness_cycles']} "
              f"cycles with host loading and read-back; build {r['build_seconds']} s, excluded)")
    for key, what in (("vcd", "waveform"), ("gtkw", "GTKWave layout, grouped by slice"),
                      ("png", "the first cycles, drawn")):
        if r.get(key):
            print(f"  {key:12} {r[key]} ({what})")


def _print_chip_gemm(r):
    _print_chip_report(r, f"GEMM {r['m']}×{r['k']}×{r['n']} (int8 → int32) on chip {r['config']} "
                          f"({r['rows']}×{r['cols']} MXU), seed {r['seed']}: operands from SRAM over the streams")


def _print_digits(r):
    b1 = r["batch1"]
    print(f"digits MLP 64→{r['hidden']}→10 (numpy, {r['epochs']} epochs on {r['train_samples']} samples), "
          f"int8 on chip {r['config']} ({r['backend']}), batch {r['batch']}, seed {r['seed']}: {r['samples']} test "
          f"samples in {r['batches']} runs")
    print(f"  accuracy     float {r['float_accuracy']:.4f}, int8 {r['int8_accuracy']:.4f}, "
          f"chip {r['chip_accuracy']:.4f}")
    ok = ("equal QGraph.run_int8 for every sample" if r["mismatches"] == 0 and b1["mismatches"] == 0
          else f"DIFFER from QGraph.run_int8 for {r['mismatches'] + b1['mismatches']} samples")
    print(f"  predictions  {ok}")
    if r["rtl_matches_golden"] is not None:
        print(f"  golden       RTL and golden model "
              f"{'agree' if r['rtl_matches_golden'] else 'DIFFER: ' + str(r['first_rtl_mismatch'])}"
              f" on every run (cycles, error, every MEM word)")
    cyc = r["cycles_per_batch"]
    print(f"  cycles       {cyc} per batch from START to done (compiler predicted {r['predicted_cycles']}"
          f"{'' if r['cycles_equal_predicted'] else ', NOT EQUAL'}), {r['cycles_per_inference']:.2f} per inference")
    if r["chips"] > 1:
        done = ", ".join(map(str, r["chip_cycles"]))
        print(f"  chips        {r['chips']} in {r['split']} parallel, done at {done} cycles"
              + (f" ({r['split_reason']})" if r["split_reason"] else ""))
    print(f"  utilization  {r['utilization']:.4f} (MXU activations {r['matmul_items']} / cycles)")
    print(f"  throughput   {r['inferences_per_second']:,.0f} inferences/s at {r['clock_mhz']:g} MHz "
          f"({r['effective_inferences_per_second']:,.0f}/s over the test split, last batch padded)")
    print(f"  batch 1      {b1['cycles']} cycles per inference (predicted {b1['predicted_cycles']}), utilization "
          f"{b1['utilization']:.4f}, {b1['inferences_per_second']:,.0f} inferences/s")
    print(f"  compile      {r['compile_seconds']:.3f} s (quantize {r['quantize_seconds']:.3f} s + lower "
          f"{r['lower_seconds']:.3f} s); program {r['program_words']} words, SRAM {r['sram_used_bytes']} B used, "
          f"weights {r['weight_bytes']} B")
    print(f"  wall         train {r['train_seconds']:.2f} s, runs {r['run_seconds']:.2f} s"
          + (f" (build {r['build_seconds']:.1f} s)" if r["build_seconds"] else ""))


def cmd_demo_digits(args):
    from demos.digits import run_demo
    if args.chips == 1 and args.split != "auto":
        raise UsageError("argument --split: applies to a system: give --chips 2 or more")
    r = run_demo(args.config, batch=args.batch, backend=args.backend, seed=args.seed, build_dir=args.build_dir,
                 chips=args.chips, split=args.split)
    _print_digits(r)
    if args.json:
        _write_json(args.json, r)
    return 0 if r["match"] else 1


def _add_link_args(p):
    """``--link-latency`` / ``--link-interval`` of a subcommand with ``--chips``."""
    from spec.config import MAX_LINK_INTERVAL, MAX_LINK_LATENCY
    p.add_argument("--link-latency", type=_int_in(1, MAX_LINK_LATENCY), default=None,
                   help=f"with --chips > 1: cycles a link word travels (1..{MAX_LINK_LATENCY}; default the "
                        f"configuration's, 16)")
    p.add_argument("--link-interval", type=_int_in(1, MAX_LINK_INTERVAL), default=None,
                   help=f"with --chips > 1: cycles between two words on one link (1..{MAX_LINK_INTERVAL}; default "
                        f"the configuration's, 4)")


def _with_links(args, config):
    """``config`` with the link options of ``args`` (refused on one chip, where there is no link)."""
    given = {k: v for k, v in (("link_latency", args.link_latency), ("link_interval", args.link_interval))
             if v is not None}
    if given and args.chips == 1:
        raise UsageError("arguments --link-latency/--link-interval: apply to a system: give --chips 2 or more")
    return config.replace(**given) if given else config


def cmd_demo_lm(args):
    from demos.lm.demo import run_demo
    c = _with_links(args, args.config)
    c = c.check_rtl() if args.backend == "verilator" else c
    if not args.temperature >= 0:
        raise ValueError(f"--temperature must be >= 0, not {args.temperature}")
    if args.temperature and args.pick == "chip":
        raise UsageError("argument --temperature: the chip picks greedily (--pick chip); sample with --pick host")
    r = run_demo(args.arch, args.prompt, args.tokens, args.backend, c, args.temperature, args.seed,
                 args.build_dir, pick=args.pick, chips=args.chips)
    ok = "equal to the int8 reference, token for token" if r["tokens_match"] else "DIFFERENT from the int8 reference"
    where = f"chip {r['config']}" if r["chips"] == 1 else f"{r['chips']} chips of {r['config']} in a line"
    print(f"language model {r['arch']} on {where} ({r['backend']}), {len(r['tokens'])} tokens {ok}")
    print(f"  prompt       {r['prompt']!r}")
    print(f"  generated    {r['text']!r}")
    d = r["decode_cycles"]
    same = all(a == b for a, b in zip(d, r["predicted_decode_cycles"])) and (
        r["prefill_cycles"] == r["predicted_prefill_cycles"])
    print(f"  cycles       prefill {r['prefill_cycles']} ({len(r['prompt'])} steps), decode {r['step_cycles']} per "
          f"token ({'= predicted' if same else 'predicted ' + str(r['predicted_decode_cycles'][:1])}); host "
          f"{r['host_words_per_step']} words per step ({r['pick']} picks each token)")
    print(f"  speed        {r['tokens_per_s_per_user']:,.0f} tokens/s per user at {r['clock_mhz']:g} MHz (host edge "
          f"counted; chip alone {r['chip_only_tokens_per_s_per_user']:,.0f}), MXU utilization "
          f"{r['mxu_utilization']:.3f}")
    print(f"  bound        weight streaming {r['weight_bound_cycles']} cycles per token: the step is "
          f"{r['bound_ratio']:.2f}x it")
    if r["chips"] > 1:
        print(f"  chips        {', '.join(map(str, r['chip_cycles']))} cycles; one chip {r['one_chip_step_cycles']}: "
              f"{r['speedup_over_one_chip']:.2f}x the tokens/s per user")
        for line in r["split"]:
            print(f"  split        {line}")
        busy = max(r["link_busy"].values(), default=0.0)
        print(f"  links        {sum(r['link_words_per_step'].values())} vectors a step over {len(r['link_busy'])} "
              f"directed links, the busiest {busy:.1%} of the step")
    print(f"  loss         validation {r['float_val_loss']:.4f} float, {r['int8_val_loss']:.4f} int8 nats per "
          f"character ({r['val_windows']} windows; unigram entropy {r['unigram_entropy']:.3f})")
    print(f"  compile      {r['compile_seconds']:.2f} s; generation {r['run_seconds']:.1f} s")
    if args.json:
        _write_json(args.json, r)
    return 0 if r["tokens_match"] and r["rtl_match"] is not False else 1


def cmd_demo(args):
    if args.demo == "digits":
        return cmd_demo_digits(args)
    if args.demo == "lm":
        return cmd_demo_lm(args)
    from demos.mlp import run_demo
    config = args.config.check_rtl()
    _check_operands_fit(config, X=(args.m, args.k), W1=(args.k, args.hidden), W2=(args.hidden, args.n))
    out = Path(args.out) if args.out else Path(args.build_dir) / "demo"
    r = run_demo(config, out, m=args.m, k=args.k, hidden=args.hidden, n=args.n, seed=args.seed, waves=args.waves,
                 build_dir=args.build_dir)
    program, words = r["program"], r["program_words"]
    _print_chip_report(r, f"two-layer int8 MLP step on chip {config.name}: Y = relu(requant(X @ W1 + b1)) @ W2, "
                          f"X {args.m}×{args.k}, W1 {args.k}×{args.hidden}, W2 {args.hidden}×{args.n}, "
                          f"seed {args.seed}\n  program      {program} ({words} words), data {r['data']}")
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


def cmd_perf(args):
    from cli.perf_report import print_models, print_report
    from perf.estimate import estimate
    from perf.models import MODELS
    if args.list:
        print_models()
        return 0
    if args.model is None:
        raise UsageError("the following arguments are required: MODEL (or --list)")
    measured = _gpu_measured(args.gpu_measured) if args.gpu_measured else None
    if args.model not in MODELS and Path(args.model).is_dir():
        r = _perf_of_saved(Path(args.model), args)
    else:
        if args.model not in MODELS:
            raise UsageError(f"argument MODEL: must be one of {', '.join(MODELS)} or a folder written by "
                             f"LMProgram.save, not {args.model!r}")
        split = args.split or "auto"
        if args.tensor_group is not None and split != "tensor":
            raise UsageError("argument --tensor-group: applies to --split tensor")
        r = estimate(args.model, args.config or "tsp", chips=args.chips, batch=args.batch or 1,
                     prompt=args.prompt or 128, tokens=args.tokens or 128, split=split,
                     tensor_group=args.tensor_group).to_json()
    if measured is not None:
        from perf.assumptions import DEFAULT
        gpu = next((g for g in ("h100", "h200") if g in measured["device_name"].lower()), None)
        r["gpu_measured_file"] = dict(measured, gpu=gpu, hbm_bytes_s=(
            getattr(DEFAULT, gpu).hbm_tbytes_s.value * 1e12 if gpu else None))
    print_report(r)
    if args.json:
        _write_json(args.json, r)
    return 0


def _perf_of_saved(folder, args):
    """``perf.estimate`` of the language model saved in ``folder`` (``LMProgram.save``): its exact cycles."""
    from compiler.lm import LMProgram
    from perf.estimate import estimate
    for flag, value in (("--config", args.config), ("--chips", args.chips), ("--batch", args.batch),
                        ("--split", args.split), ("--tensor-group", args.tensor_group)):
        if value is not None:
            raise UsageError(f"argument {flag}: does not apply to a compiled language model (it runs on its own "
                             "configuration, one chip, batch 1); only --prompt, --tokens, --json and --gpu-measured "
                             "do")
    if not (folder / "lm.json").is_file():
        has = sorted(p.name for p in folder.iterdir())[:6]
        what = ("a saved compiled program (program.json), not a language model" if (folder / "program.json").is_file()
                else f"holds {', '.join(has)}" if has else "is empty")
        raise UsageError(f"argument MODEL: {folder} is not a folder written by LMProgram.save: it lacks lm.json "
                         f"(it {what}); give a model of perf.models or such a folder (lm.json and data.npz)")
    lm = LMProgram.load(folder)
    prompt = args.prompt or max(1, lm.context // 2)
    tokens = args.tokens or max(1, lm.context - prompt)
    r = estimate(lm, prompt=prompt, tokens=tokens).to_json()
    r["model"] = f"{folder} ({r['model']}, compiled)"
    return r


def _gpu_measured(path):
    """The JSON of ``tools/gpu_decode.py`` at ``path``, checked: ``UsageError`` naming what is wrong."""
    what = "argument --gpu-measured"
    try:
        data = json.loads(Path(path).read_text())
    except OSError as e:
        raise UsageError(f"{what}: cannot read {path}: {e.strerror}") from None
    except ValueError as e:
        raise UsageError(f"{what}: {path} is not JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != "conveyor-gpu-decode":
        raise UsageError(f"{what}: {path} is not a tools/gpu_decode.py result (format must be 'conveyor-gpu-decode')")
    need = ("model", "dtype", "batch", "prompt", "tokens", "tokens_per_s", "weight_bytes", "bytes_per_token")
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs:
        raise UsageError(f"{what}: {path} holds no runs (a list 'runs' of at least one)")
    for i, run in enumerate(runs):
        missing = [k for k in need if not isinstance(run, dict) or k not in run]
        if missing:
            raise UsageError(f"{what}: {path}: run {i} lacks {', '.join(missing)}")
    for k in ("device_name", "torch", "timestamp"):
        if not isinstance(data.get(k), str):
            raise UsageError(f"{what}: {path} lacks {k!r} (a string)")
    return dict(data, path=str(path))


def cmd_sweep(args):
    from perf.models import MODELS
    from perf.sweep import pareto, plot, points, sweep, write_csv, write_json
    from sim import progress
    if args.model not in MODELS:
        raise UsageError(f"argument MODEL: must be one of {', '.join(MODELS)}, not {args.model!r}")
    if not args.axis:
        raise UsageError("the following arguments are required: --axis NAME=V1,V2,... (at least one)")
    grid = {}
    for name, values in args.axis:
        if name in grid:
            raise UsageError(f"argument --axis: {name} given twice")
        grid[name] = values
    n = len(points(grid))
    where = f"the Dask cluster at {args.scheduler}" if args.scheduler else "a local Dask cluster (2 workers)"
    t0 = time.perf_counter()
    with progress.step(f"sweeping {args.model} over {n} point{'s' * (n != 1)}", where=where) as s:
        results = sweep(args.model, grid, config=args.config, scheduler=args.scheduler, batch=args.batch,
                        prompt=args.prompt, tokens=args.tokens,
                        progress=lambda done, total: s.update(f"{done} of {total} points"))
    seconds = time.perf_counter() - t0
    ok = [r for r in results if r.ok]
    print(f"{args.model} on {args.config.name}: {n} points ({', '.join(f'{k} {len(v)}' for k, v in grid.items())}), "
          f"{len(ok)} ran, {n - len(ok)} failed, in {seconds:.1f} s")
    failed = [r for r in results if not r.ok]
    for r in failed[:10]:
        print(f"  failed {r.label()}: {r.error}")
    if len(failed) > 10:
        print(f"  ... and {len(failed) - 10} more failed points (in the CSV and JSON)")
    if ok:
        best, front = max(ok, key=lambda r: r.figures["tokens_per_s_per_user"]), pareto(results)
        print(f"  fastest: {best.label()}: {best.figures['tokens_per_s_per_user']:.4g} tokens/s per user on "
              f"{best.figures['chips']} chips, {best.figures['tokens_per_joule']:.4g} tokens/J")
        print(f"  Pareto front (tokens/s per user against tokens/J): {len(front)} point{'s' * (len(front) != 1)}")
    about = dict(model=args.model, config=args.config.name, batch=args.batch, prompt=args.prompt,
                 tokens=args.tokens, grid=grid)
    for path, write in ((args.csv, write_csv), (args.json, lambda r, p: write_json(r, p, **about)),
                        (args.plot, plot)):
        if path:
            print(f"wrote {write(results, path)}")
    return 0


def _os_error_text(e):
    """One line for an ``OSError``: the file(s) and the reason."""
    what = " ".join(str(e.strerror or e).split())
    names = [str(f) for f in (e.filename, e.filename2) if f is not None]
    return f"cannot use {' -> '.join(names)}: {what}" if names else what


def _error_report(e):
    """The one line ``main`` prints for an exception it handles (after ``conveyor: ``), and the exit status;
    the first matching kind wins."""
    if isinstance(e, (ValueError, TypeError)):
        return f"error: {e}", 2
    if isinstance(e, OSError):
        return f"error: {_os_error_text(e)}", 2
    if isinstance(e, MemoryError):
        return "error: not enough memory for this run: make the sizes (--m, --k, --n, --batch ...) smaller", 2
    return f"{type(e).__name__}: {e}", 1


def main(argv=None):
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        commands = {"gen": cmd_gen, "sim": cmd_sim, "run": cmd_run, "compile": cmd_compile, "demo": cmd_demo,
                    "fpga": cmd_fpga, "perf": cmd_perf, "sweep": cmd_sweep}
        if not args.quiet:
            return commands[args.command](args)
        from sim import progress
        progress.set_quiet(True)
        try:
            return commands[args.command](args)
        finally:
            progress.set_quiet(None)
    except UsageError as e:
        print(f"conveyor: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError, MemoryError, RuntimeError) as e:
        # Past argument parsing: bad values (library validation), files that cannot be read or written, sizes
        # beyond memory: exit 2; simulator or FPGA tool failures (SimulationError, FlowError, whose message
        # says where the logs are): exit 1. CONVEYOR_DEBUG=1 shows the traceback.
        if os.environ.get("CONVEYOR_DEBUG"):
            raise
        line, status = _error_report(e)
        print(f"conveyor: {line}", file=sys.stderr)
        return status
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
