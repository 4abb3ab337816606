"""Property: the MXU tile (``rtl.mxu.MXU``, 4×4, 4 accumulator words) in Verilator through pyverilator equals
``golden.mxu.MXUModel`` on any short input trace hypothesis makes.

A trace is up to ``MAX_CYCLES`` cycles of the MXU's input ports (``sim.trace.MXUTrace`` fields): weight rows
at any time (inside and outside the swap deadline), swaps, accumulate/emit flags on 4 colliding addresses,
back-to-back activations, synchronous resets, int8 data with -128/127 weighted in. It is played as
``sim.amaranth_sim.run_mxu_trace`` plays it (a reset, trace entry ``k`` on the inputs during cycle ``k``,
then ``latency + 1`` idle cycles) on a fresh model (accumulators zero, as the golden model's). The results
(cycle, ``y_addr``, ``y_data``) must be equal; on a mismatch the message names the result, its cycle and the
first differing column, and hypothesis shrinks the trace.
"""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from golden.mxu import MXUModel
from sim.trace import MXUTrace
from spec.lanes import pack_lanes
from spec.mxu import ACC_BITS, DATA_BITS, MXUParams
from tests.mxu_checks import assert_results_equal
from tests.props import PROPS, decode_int8s, int8_vectors, unit_sim

PARAMS = MXUParams(4, 4, 4)
MAX_CYCLES = 24


def mxu_sim():
    from rtl.mxu import MXU

    p = PARAMS
    return unit_sim(("mxu", p), lambda: MXU(p.rows, p.cols, p.acc_depth), f"mxu_r{p.rows}c{p.cols}a{p.acc_depth}")


def _cycle(p):
    """The input ports during one cycle, decoded from one ``st.binary`` (few hypothesis draws per example:
    tests/props.py). All-zero bytes, where shrinking goes, are the plainest cycle: no reset, no weight
    write, a valid activation of zeros to address 0 that neither swaps nor accumulates, and emits. Reset in
    1/16 of the cycles, weight writes 1/2, activations 3/4 (swap 1/4 of them, accumulate 1/2, emit 3/4)."""
    n_head = 4

    def decode(b):
        return {"rst": b[0] & 0x0F == 0x0F, "w_valid": bool(b[0] & 0x10), "a_valid": b[0] & 0x60 != 0x60,
                "a_swap": b[1] & 0x03 == 0x03, "a_acc": bool(b[1] & 0x04), "a_emit": b[1] & 0x18 != 0x18,
                "w_row": b[2] % p.rows, "a_addr": b[3] % p.acc_depth,
                "w_data": decode_int8s(b[n_head:n_head + 2 * p.cols]),
                "a_data": decode_int8s(b[n_head + 2 * p.cols:])}

    size = n_head + 2 * (p.cols + p.rows)
    return st.binary(min_size=size, max_size=size).map(decode)


def _trace(p, cycles):
    t = MXUTrace.empty(p, len(cycles))
    for k, c in enumerate(cycles):
        for name, v in c.items():
            getattr(t, name)[k] = v
    return t.check()


def run_rtl(sim, p, trace):
    """``(cycle, addr, data)`` of every result, as ``sim.amaranth_sim.run_mxu_trace`` returns them."""
    sim.fresh()                       # new model: accumulators zero; one reset edge; cycle 0 next
    T = trace.cycles
    out_cycle, out_addr, out_data = [], [], []
    for k in range(T + p.latency + 1):
        if k < T:
            sim.set(rst=int(trace.rst[k]), w_valid=int(trace.w_valid[k]), w_row=int(trace.w_row[k]),
                    w_data=pack_lanes(trace.w_data[k], DATA_BITS), a_valid=int(trace.a_valid[k]),
                    a_swap=int(trace.a_swap[k]), a_acc=int(trace.a_acc[k]), a_emit=int(trace.a_emit[k]),
                    a_addr=int(trace.a_addr[k]), a_data=pack_lanes(trace.a_data[k], DATA_BITS))
        elif k == T:
            sim.set(rst=0, w_valid=0, a_valid=0, a_swap=0)
        if sim["y_valid"]:
            out_cycle.append(k)
            out_addr.append(sim["y_addr"])
            out_data.append(sim.lanes("y_data", ACC_BITS, p.cols))
        sim.tick()
    return (np.array(out_cycle, np.int64), np.array(out_addr, np.int64),
            np.array(out_data, np.int64).reshape(len(out_data), p.cols).astype(np.int32))


def _describe(trace):
    rows = []
    for k in range(trace.cycles):
        bits = [name for name in ("rst", "w_valid", "a_valid", "a_swap", "a_acc", "a_emit") if getattr(trace, name)[k]]
        rows.append(f"  {k:2d}: {' '.join(bits) or '-'} w_row={trace.w_row[k]} w={[int(x) for x in trace.w_data[k]]} "
                    f"addr={trace.a_addr[k]} a={[int(x) for x in trace.a_data[k]]}")
    return "\n".join(rows)


def check_trace(trace, golden=MXUModel):
    p = PARAMS
    want = golden(p).run(trace)
    got = run_rtl(mxu_sim(), p, trace)
    try:
        assert_results_equal(f"MXU {p.rows}x{p.cols} (latency {p.latency})", *got, want)
    except AssertionError as e:
        raise AssertionError(f"{e}\ntrace (cycle: flags …):\n{_describe(trace)}") from None
    return want


@PROPS
@given(st.lists(_cycle(PARAMS), min_size=1, max_size=MAX_CYCLES))
def test_mxu_matches_golden(cycles):
    check_trace(_trace(PARAMS, cycles))


@PROPS
@given(st.integers(1, 3), st.lists(int8_vectors(PARAMS.cols), min_size=PARAMS.rows, max_size=PARAMS.rows),
       st.lists(st.tuples(int8_vectors(PARAMS.rows), st.booleans(), st.integers(0, PARAMS.acc_depth - 1)),
                min_size=1, max_size=12))
def test_mxu_tiles_back_to_back(tiles, weights, acts):
    """Whole tiles as the compiler issues them: the weight rows on consecutive cycles, then the activations
    back to back (the first one swaps, each accumulates or not), the next tile's rows written while the
    current one computes; ``tiles`` tiles, weights rotated by one row per tile."""
    p = PARAMS
    idle = dict(rst=False, w_valid=False, w_row=0, w_data=[0] * p.cols, a_valid=False, a_swap=False, a_acc=False,
                a_emit=False, a_addr=0, a_data=[0] * p.rows)
    rotated = [weights[t:] + weights[:t] for t in range(tiles)]
    trace_cycles = [dict(idle, w_valid=True, w_row=r, w_data=rotated[0][r]) for r in range(p.rows)]
    n = len(acts)
    for t in range(tiles):
        block = [dict(idle, a_valid=True, a_swap=i == 0, a_acc=acc, a_emit=True, a_addr=addr, a_data=a)
                 for i, (a, acc, addr) in enumerate(acts)]
        if t + 1 < tiles:        # the next tile's rows on this tile's last p.rows cycles (and after, if short)
            for r in range(p.rows):
                j = max(0, n - p.rows) + r
                if j == len(block):
                    block.append(dict(idle))
                block[j].update(w_valid=True, w_row=r, w_data=rotated[t + 1][r])
        trace_cycles += block
    want = check_trace(_trace(p, trace_cycles))
    assert len(want) == tiles * n
