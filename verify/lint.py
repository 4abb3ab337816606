"""Verilator lint of generated Verilog, with the waivers of ``rtl/lint_waivers.vlt``.

``python -m verify.lint`` (part of ``make lint``) lints the Verilog of every RTL chip preset and of a few MXU
shapes, and exits 1 listing the messages when any is not clean.
"""
import subprocess
import sys
import tempfile
from pathlib import Path

from sim.toolchain import use_verilator

__all__ = ["WAIVERS", "lint_verilog", "main"]

#: MXU shapes linted by ``main`` (rows, cols, accumulator words), as in tests/test_mxu_lint.py.
MXU_SHAPES = ((1, 1, 2), (2, 3, 16), (5, 4, 100))

WAIVERS = Path(__file__).resolve().parent.parent / "rtl" / "lint_waivers.vlt"


def lint_verilog(path, top=None):
    """Run ``verilator --lint-only -Wall`` on ``path``; return ``(ok, messages)``.

    ``ok`` is true when Verilator exits 0 and prints no warning or error.
    """
    use_verilator()
    cmd = ["verilator", "--lint-only", "-Wall", str(WAIVERS), str(path)]
    if top:
        cmd += ["--top-module", top]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    messages = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("%")]
    return proc.returncode == 0 and not messages, messages


def main(argv=None):
    from amaranth.back import verilog

    from rtl.mxu import MXU
    from sim.chip_verilator import ChipSimulator
    from sim.toolchain import use_yosys
    from spec.config import PRESETS
    use_yosys()
    failed = 0
    with tempfile.TemporaryDirectory(prefix="conveyor-lint-") as tmp:
        units = [(f"chip_{name}", lambda c=c: ChipSimulator(c).verilog(), None)
                 for name, c in PRESETS.items() if c.rtl]
        units += [(f"mxu_{r}x{c}_a{a}", lambda r=r, c=c, a=a: verilog.convert(MXU(r, c, a), name="mxu",
                                                                              emit_src=False), "mxu")
                  for r, c, a in MXU_SHAPES]
        for name, make, top in units:
            path = Path(tmp) / f"{name}.v"
            path.write_text(make())
            ok, messages = lint_verilog(path, top=top)
            print(f"verilator -Wall {name}: {'clean' if ok else f'{len(messages)} messages'}")
            if not ok:
                failed += 1
                print("\n".join("  " + m for m in messages[:50]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
