"""The chip demo behind ``make sim``: one step of a two-layer int8 MLP, written out as assembly and data.

``write_mlp(config, out_dir, m, k, hidden, n, seed)`` compiles ``Y = relu(requant(X @ W1 + b1)) @ W2`` with
``compiler.kernels.mlp`` for ``config``, writes the program as assembly text (``mlp.s``) and the MEM
contents as an ``.npz`` (``mlp.npz``, the format of ``conveyor run --data``), and returns the kernel (its
expected result, output locations and MXU activity). ``run_demo`` (``conveyor demo mlp``) then runs the
*text* like any program: assembled, loaded through the host edge, run on the RTL and on golden, compared.
"""
from pathlib import Path

import numpy as np

from sim.chip_run import load_data
from sim.kernel_run import kernel_report, run_on_chip
from spec.asm import assemble

__all__ = ["run_demo", "write_mlp", "write_data"]


def write_data(path, config, inputs):
    """Save kernel ``inputs`` ((slice, bank, addr, words) …) in the ``conveyor run --data`` format."""
    arrays = {}
    for s, bank, addr, words in inputs:
        name = config.slice_names[config.slice_index(s)]
        arrays[f"{name}.{bank}@{addr}"] = np.asarray(words, dtype=np.int64)
    np.savez(path, **arrays)


def write_mlp(config, out_dir, *, m=256, k=64, hidden=64, n=16, seed=1):
    from compiler.kernels import mlp
    rng = np.random.default_rng(seed)
    X = rng.integers(-128, 128, (m, k), dtype=np.int8)
    W1 = rng.integers(-128, 128, (k, hidden), dtype=np.int8)
    W2 = rng.integers(-128, 128, (hidden, n), dtype=np.int8)
    b1 = rng.integers(-20_000, 20_000, hidden)
    # scale the first layer's int32 sums (|x·w| up to about 128·128·K) into int8 with a few saturating
    mult = int((1 << 31) * 127 / (3 * 128 * 128 * np.sqrt(k)))
    kern = mlp(config, X, W1, b1, (max(1, mult), 0, 0), W2)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    program = out / "mlp.s"
    header = (f"; two-layer int8 MLP step on config {config.name}: Y = relu(requant(X @ W1 + b1)) @ W2\n"
              f"; X {m}x{k}, W1 {k}x{hidden}, W2 {hidden}x{n}, seed {seed}; written by demos/mlp.py "
              f"(compiler.kernels.mlp)\n")
    program.write_text(header + kern.program.text)
    data = out / "mlp.npz"
    write_data(data, config, kern.inputs)
    return kern, program, data


def run_demo(config, out_dir, *, m=256, k=64, hidden=64, n=16, seed=1, waves=False, build_dir="build"):
    """The demo's story: write the MLP step as assembly and data, assemble the *text* and read the data back as
    any program's, run it on the RTL and on golden, and compare with numpy. Returns the report (``conveyor
    demo mlp --json``)."""
    kern, program, data = write_mlp(config, out_dir, m=m, k=k, hidden=hidden, n=n, seed=seed)
    programs = assemble(program.read_text(), config)
    inputs = load_data(data, config)
    res = run_on_chip(config, programs, inputs, name="mlp", waves=waves, build_dir=build_dir)
    report = kernel_report(kern, res, "mlp")
    report.update({"m": m, "k": k, "hidden": hidden, "n": n, "seed": seed, "program": str(program),
                   "data": str(data), "program_words": sum(map(len, programs))})
    return report
