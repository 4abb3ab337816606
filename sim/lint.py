"""Verilator lint of generated Verilog, with the waivers of ``rtl/lint_waivers.vlt``."""
import subprocess
from pathlib import Path

from .toolchain import use_verilator

__all__ = ["WAIVERS", "lint_verilog"]

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
