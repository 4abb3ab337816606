"""Play an MXU input trace in Amaranth's own simulator (per-cycle Python: for small unit tests only).

Cycle convention, shared with the Verilator harness (``sim/hdl/mxu_harness.sv``): trace entry ``k`` is on the
inputs during cycle ``k`` (sampled by the rising edge that ends it), and a result is recorded with the cycle
``k`` during which ``y_valid`` is high. Cycle 0 is the first cycle after the simulator's reset is released.
"""
import numpy as np
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from rtl.mxu import MXU
from spec.lanes import pack_lanes, unpack_lanes
from spec.mxu import ACC_BITS, DATA_BITS

__all__ = ["pack_lanes", "unpack_lanes", "run_mxu_trace"]


def run_mxu_trace(params, trace, *, drain=None, vcd=None):
    """Run ``trace`` on ``rtl.mxu.MXU(params)``; returns ``(cycle, addr, data)`` of every result vector.

    ``drain`` extra cycles run after the trace (default: the latency plus one, enough for every result). With
    more than one weight slot the trace also has ``w_slot`` and ``a_slot``.
    """
    dut = MXU(params.rows, params.cols, params.acc_depth, params.weight_slots)
    slots = [(getattr(dut, k), getattr(trace, k)) for k in ("w_slot", "a_slot")] if params.weight_slots > 1 else []
    m = Module()
    m.domains.sync = cd = ClockDomain()
    m.submodules.dut = dut
    T = len(trace.rst)
    total = T + (params.latency + 1 if drain is None else drain)
    out_cycle, out_addr, out_data = [], [], []

    async def bench(ctx):
        ctx.set(cd.rst, 1)
        await ctx.tick()
        for k in range(total):
            if k < T:
                ctx.set(cd.rst, int(trace.rst[k]))
                ctx.set(dut.w_valid, int(trace.w_valid[k]))
                ctx.set(dut.w_row, int(trace.w_row[k]))
                ctx.set(dut.w_data.as_value(), pack_lanes(trace.w_data[k], DATA_BITS))
                ctx.set(dut.a_valid, int(trace.a_valid[k]))
                ctx.set(dut.a_swap, int(trace.a_swap[k]))
                ctx.set(dut.a_acc, int(trace.a_acc[k]))
                ctx.set(dut.a_emit, int(trace.a_emit[k]))
                ctx.set(dut.a_addr, int(trace.a_addr[k]))
                ctx.set(dut.a_data.as_value(), pack_lanes(trace.a_data[k], DATA_BITS))
                for sig, values in slots:
                    ctx.set(sig, int(values[k]))
            elif k == T:
                for sig in (cd.rst, dut.w_valid, dut.a_valid, dut.a_swap):
                    ctx.set(sig, 0)
            if ctx.get(dut.y_valid):
                out_cycle.append(k)
                out_addr.append(ctx.get(dut.y_addr))
                out_data.append(unpack_lanes(ctx.get(dut.y_data.as_value()), ACC_BITS, params.cols))
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if vcd is not None:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return (np.array(out_cycle, dtype=np.int64), np.array(out_addr, dtype=np.int64),
            np.array(out_data, dtype=np.int64).reshape(len(out_data), params.cols).astype(np.int32))
