"""Waveform viewer layouts: a GTKWave save file (``.gtkw``) that groups an MXU's signals meaningfully.

The layout is built from the VCD's own scope tree, so every path in it exists: the harness clock and cycle
counter, the MXU's inputs, the first and the last PE (weights active and shadow, operands, product,
partial sum), the accumulator stage (forwarding hits, old value, sum) and the outputs. Lanes of vectors are
listed one per line (Amaranth names them ``x[0]``, ``x[1]``, ...), in decimal, so int8 and int32 values read
as numbers.
"""
import re
from pathlib import Path

__all__ = ["vcd_signals", "sanitize_vcd", "mxu_layout", "write_gtkw"]

_VAR = re.compile(r"\$var\s+\S+\s+(\d+)\s+\S+\s+(\S+)(?:\s+\[[^\]]*\])?\s+\$end")


def vcd_signals(vcd_path):
    """Map every full hierarchical signal name in the VCD header to its width."""
    scope, out = [], {}
    with open(vcd_path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("$enddefinitions"):
                break
            if line.startswith("$scope"):
                scope.append(line.split()[2])
            elif line.startswith("$upscope"):
                scope.pop()
            elif line.startswith("$var"):
                m = _VAR.match(line)
                if m:
                    out[".".join(scope + [m.group(2)])] = int(m.group(1))
    return out


_NOT_IDENT = re.compile(r"[^A-Za-z0-9_]")


def sanitize_vcd(vcd_path):
    r"""Rename the VCD variables GTKWave cannot parse; return how many were renamed.

    Yosys's Verilog backend (behind Amaranth) declares helper wires such as
    ``\$auto$verilog_backend.cc:2505:dump_module$1``; Verilator traces them under that name, and GTKWave
    stops reading the file after too many such "parse errors". Names live only in the header, so only the
    header is rewritten (the value changes are copied as they are). Such a wire becomes ``_auto_...``.
    """
    path = Path(vcd_path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    renamed = 0
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        for raw in src:
            line = raw.decode("utf-8", "replace")
            if line.lstrip().startswith("$var"):
                parts = line.split()
                # $var <type> <width> <id> <name> [<range>] $end
                if len(parts) >= 6 and (":" in parts[4] or parts[4].lstrip("\\").startswith("$")):
                    parts[4] = "_" + _NOT_IDENT.sub("_", parts[4].lstrip("\\$")).strip("_")
                    raw = (" ".join(parts) + "\n").encode()
                    renamed += 1
            dst.write(raw)
            if line.startswith("$enddefinitions"):
                break
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    tmp.replace(path)
    return renamed


def mxu_layout(signals, rows, cols):
    """Groups ``[(title, [signal names])]`` for an MXU inside the harness (names that exist only)."""
    dut = next((n.rsplit(".", 1)[0] for n in signals if n.endswith(".dut.a_valid")), None)
    if dut is None:
        raise ValueError("the VCD has no MXU (no '*.dut.a_valid' signal)")
    harness = dut.rsplit(".", 1)[0]

    def pick(prefix, names):
        return [f"{prefix}.{n}" for n in names if f"{prefix}.{n}" in signals]

    def lanes(prefix, name, n):
        each = pick(prefix, [f"{name}[{i}]" for i in range(n)])
        return each or pick(prefix, [name])

    pe_names = ["a_in", "swap_in", "w_we", "w_in", "w_shadow", "w_active", "w_use", "product", "psum_in",
                "psum_out"]
    groups = [
        ("Harness", pick(harness, ["clk", "cyc", "playing"])),
        ("MXU weights in", pick(dut, ["w_valid", "w_row"]) + lanes(dut, "w_data", cols)),
        ("MXU activations in", pick(dut, ["a_valid", "a_swap", "a_acc", "a_emit", "a_addr"])
         + lanes(dut, "a_data", rows)),
        ("PE (0,0)", pick(f"{dut}.pe_r0_c0", pe_names)),
        (f"PE ({rows - 1},{cols - 1})", pick(f"{dut}.pe_r{rows - 1}_c{cols - 1}", pe_names)),
        ("Accumulators", pick(dut, ["acc_hit1", "acc_hit2"]) + lanes(dut, "acc_old", cols)
         + lanes(dut, "acc_sum", cols)),
        ("MXU results out", pick(dut, ["y_valid", "y_addr"]) + lanes(dut, "y_data", cols)),
    ]
    return [(title, names) for title, names in groups if names]


def write_gtkw(path, vcd_path, groups, signals):
    """Write a GTKWave save file showing ``groups`` of ``vcd_path`` (``signals``: name -> width): binary for
    bits, signed decimal for vectors, zoomed to about 60 cycles of the 10 ns harness clock."""
    from waves.plot import write_gtkw_groups
    return write_gtkw_groups(path, vcd_path, groups, widths=signals, bus_format="@424", zoom=-17)
