"""RTL unit tests in Amaranth's simulator: the PE, and small arrays against the golden model."""
import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from golden.mxu import MXUModel, matmul
from rtl.mxu import MXU, ProcessingElement
from sim.amaranth_sim import run_mxu_trace
from sim.gemm import schedule_gemm
from sim.stimulus import operand, random_trace
from spec.mxu import MULTIPLY_STAGES, PRODUCT_STAGES, PSUM_STAGES, MXUParams
from tests.mxu_checks import assert_matrix_equal, assert_results_equal


def test_pe_mac_and_swap():
    """psum_out = psum_in + a*w, two cycles after a; a swap takes the shadow weight on its own cycle."""
    pe = ProcessingElement(psum_bits=20)
    seen = []

    async def bench(ctx):
        # write shadow = -128, then swap with a=-128 (uses shadow), then a=127 without swap (active=-128)
        ctx.set(pe.w_we, 1)
        ctx.set(pe.w_in, -128)
        await ctx.tick()
        # same cycle as the swap: swap sees -128
        ctx.set(pe.w_we, 1)
        ctx.set(pe.w_in, 5)
        ctx.set(pe.a_in, -128)
        ctx.set(pe.swap_in, 1)
        await ctx.tick()
        ctx.set(pe.w_we, 0)
        ctx.set(pe.swap_in, 0)
        ctx.set(pe.a_in, 127)
        await ctx.tick()
        # now the shadow (5) becomes active
        ctx.set(pe.a_in, 3)
        ctx.set(pe.swap_in, 1)
        ctx.set(pe.psum_in, 0)
        for _ in range(6):
            await ctx.tick()
            ctx.set(pe.swap_in, 0)
            seen.append((ctx.get(pe.psum_out), ctx.get(pe.a_out)))

    sim = Simulator(pe)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    psums = [s[0] for s in seen]
    # The first product's partial sum leaves MULTIPLY_STAGES + PRODUCT_STAGES + PSUM_STAGES cycles after its
    # operands; `seen` starts 3 cycles after the first operands were presented.
    lead = MULTIPLY_STAGES + PRODUCT_STAGES + PSUM_STAGES - 3
    assert psums[:lead] == [0] * lead
    assert psums[lead:lead + 4] == [-128 * -128, 127 * -128, 3 * 5, 3 * 5]


def test_mxu_signature_names():
    dut = MXU(3, 2, 8)
    Fragment.get(dut, None)
    names = set(dut.signature.members.keys())
    assert names == {"w_valid", "w_row", "w_data", "a_valid", "a_swap", "a_acc", "a_emit", "a_addr", "a_data",
                     "y_valid", "y_addr", "y_data"}
    assert dut.latency == MXUParams(3, 2, 8).latency


@pytest.mark.parametrize("rows, cols", [(1, 1), (2, 3), (3, 2), (4, 4)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_trace_matches_golden(rows, cols, seed):
    rng = np.random.default_rng(seed * 100 + rows * 10 + cols)
    p = MXUParams(rows, cols, int(rng.integers(2, 6)))
    trace = random_trace(p, 80, rng)
    want = MXUModel(p).run(trace)
    got = run_mxu_trace(p, trace)
    assert_results_equal(f"rows={rows} cols={cols} seed={seed}", *got, want)


@pytest.mark.parametrize("kind", ["random", "min", "max", "alternating"])
def test_gemm_tiles_and_accumulates(kind):
    rng = np.random.default_rng(7)
    p = MXUParams(3, 2, 8)
    x, w = operand(rng, (11, 7), kind), operand(rng, (7, 5), kind)
    plan = schedule_gemm(x, w, p)
    cycle, addr, data = run_mxu_trace(p, plan.trace)
    assert_matrix_equal(f"{kind} 11x7x5 on 3x2", plan.assemble(addr, data), matmul(x, w))
    assert cycle[-1] == plan.predicted_last_output_cycle
