"""A hand-scheduled kernel (``compiler.kernels``) or an assembled program on the chip RTL, compared with golden
and with numpy: the runs behind ``conveyor sim gemm`` (on the chip) and the assembly MLP demo.

``run_on_chip(config, programs, inputs, name=…)`` runs word lists and a memory image on the RTL and golden;
``kernel_result(kern, mems)`` reads a kernel's result from final MEM contents; ``kernel_report(kern, res,
name)`` compares it with the kernel's expectation and the cycles with the prediction.
"""
import time
from pathlib import Path

import numpy as np

from waves.chip import chip_wave_views

from . import chip_run, chip_verilator, progress

__all__ = ["run_on_chip", "kernel_result", "kernel_report"]


def kernel_result(kern, mems):
    """The kernel's result from MEM contents (``{slice name: banks × depth × L}``)."""
    c = kern.config
    raw = {name: np.concatenate([mems[c.slice_names[c.slice_index(s)]][bank, addr:addr + count]
                                 for s, bank, addr, count in segs])
           for name, segs in kern.outputs.items()}
    return kern.unpack(raw)


def run_on_chip(config, programs, inputs, *, name, waves=False, build_dir="build", seed=1):
    """Run ``programs`` with MEM ``inputs`` on the chip RTL and on golden (``sim.chip_run.run_program``):
    ``{"report": the run's JSON report with wall and build seconds and Verilator speed, "mems": the RTL's final
    MEM}``. ``waves``: keep the VCD under ``build_dir/waves/<name>_<config>/`` with its GTKWave layout and PNG
    (``waves.chip``)."""
    simr = chip_verilator.ChipSimulator(config, build_root=Path(build_dir) / "sim", waves=waves)
    run_dir = Path(build_dir) / "waves" / f"{name}_{config.name}" if waves else None
    t0 = time.perf_counter()
    with progress.step(f"running {name} on chip {config.name} in Verilator (and on the golden model)"):
        res = chip_run.run_program(config, programs, inputs, simulator=simr, seed=seed, run_dir=run_dir)
    report = res.to_json()
    report["wall_seconds"] = round(time.perf_counter() - t0, 3)
    report["build_seconds"] = round(simr.last_build_seconds, 3)
    if res.loop_seconds:
        report["cycles_per_second"] = round(res.harness_cycles / res.loop_seconds)
    if waves and res.vcd_path:
        report.update(chip_wave_views(config, res.vcd_path))
    return {"report": report, "mems": res.mems}


def kernel_report(kern, res, name):
    """The report of ``run_on_chip``'s result ``res`` for kernel ``kern`` (``name``): RTL against golden and
    against the kernel's numpy expectation, cycles against the prediction, MXU utilization."""
    got = kernel_result(kern, res["mems"])
    bad = np.argwhere(got != kern.expected)
    first = None
    if len(bad):
        idx = tuple(int(v) for v in bad[0])
        first = {"index": list(idx), "got": int(got[idx]), "want": int(kern.expected[idx]), "count": len(bad)}
    report = res["report"]
    report.update({
        "workload": name,
        "matches_golden": report["match"],
        "matches_numpy": first is None,
        "first_mismatch": first,
        "predicted_cycles": kern.program.predicted_cycles,
        "matmul_cycles": kern.matmul_items,
        "utilization": round(kern.matmul_items / report["cycles"], 6) if report["cycles"] else 0.0,
    })
    report["match"] = report["matches_golden"] and first is None and report["cycles"] == kern.program.predicted_cycles
    return report
