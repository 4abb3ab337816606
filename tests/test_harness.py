"""Tests of the trace files (sim/trace.py) and of the Verilator trace-playing harness (sim/verilator.py).

The end-to-end tests build small MXUs (2×3) with Verilator once per configuration into ``build/sim`` (or
``$CONVEYOR_SIM_BUILD``); the first run of this file takes a minute or so of building, later runs reuse it.
"""
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from sim.trace import (
    MXUOutputs,
    MXUTrace,
    read_hex_words,
    read_outputs_hex,
    read_trace_hex,
    write_hex_words,
    write_outputs_hex,
    write_trace_hex,
)
from spec.mxu import MXUParams

REPO = Path(__file__).resolve().parent.parent
BUILD_ROOT = Path(os.environ.get("CONVEYOR_SIM_BUILD", REPO / "build" / "sim"))
HAVE_RTL = importlib.util.find_spec("rtl.mxu") is not None
HAVE_GOLDEN = importlib.util.find_spec("golden.mxu") is not None
needs_rtl = pytest.mark.skipif(not HAVE_RTL, reason="rtl/mxu.py is not there yet")

I32_MIN, I32_MAX = np.iinfo(np.int32).min, np.iinfo(np.int32).max


def random_trace(params, cycles, seed=0):
    rng = np.random.default_rng(seed)
    tr = MXUTrace.empty(params, cycles)
    for name in ("rst", "w_valid", "a_valid", "a_swap", "a_acc", "a_emit"):
        getattr(tr, name)[:] = rng.integers(0, 2, cycles).astype(bool)
    tr.w_row[:] = rng.integers(0, params.rows, cycles)
    tr.a_addr[:] = rng.integers(0, params.acc_depth, cycles)
    tr.w_data[:] = rng.integers(-128, 128, (cycles, params.cols), dtype=np.int8)
    tr.a_data[:] = rng.integers(-128, 128, (cycles, params.rows), dtype=np.int8)
    # Extremes on the first cycles.
    tr.w_data[0], tr.a_data[0] = -128, -128
    tr.w_data[1], tr.a_data[1] = 127, 127
    tr.w_row[2], tr.a_addr[2] = params.rows - 1, params.acc_depth - 1
    return tr


def assert_traces_equal(a, b):
    for name in ("rst", "w_valid", "w_row", "w_data", "a_valid", "a_swap", "a_acc", "a_emit", "a_addr", "a_data"):
        np.testing.assert_array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(b, name)), err_msg=name)


# ---- hex files ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rows,cols,acc_depth", [(1, 1, 2), (2, 3, 16), (5, 7, 300), (64, 64, 1 << 16)])
def test_trace_round_trip(tmp_path, rows, cols, acc_depth):
    p = MXUParams(rows, cols, acc_depth)
    tr = random_trace(p, 1000, seed=rows * 100 + cols)
    write_trace_hex(tr, tmp_path)
    assert_traces_equal(read_trace_hex(tmp_path, p), tr)


def test_trace_file_format_pinned(tmp_path):
    """Field placement in the files the harness reads: element i of a vector is bits [8i+7:8i]."""
    p = MXUParams(2, 3, 16)
    tr = MXUTrace.empty(p, 3)
    tr.rst[0] = True
    tr.w_valid[1], tr.w_row[1], tr.w_data[1] = True, 1, [1, -1, -128]
    tr.a_valid[2], tr.a_swap[2], tr.a_acc[2], tr.a_emit[2] = True, True, True, True
    tr.a_addr[2], tr.a_data[2] = 15, [127, -2]
    write_trace_hex(tr, tmp_path)
    assert (tmp_path / "ctrl.hex").read_text() == "00000001\n00000102\n000f003c\n"
    assert (tmp_path / "w_data.hex").read_text() == "000000\n80ff01\n000000\n"
    assert (tmp_path / "a_data.hex").read_text() == "0000\n0000\nfe7f\n"


def test_outputs_round_trip(tmp_path):
    p = MXUParams(3, 5, 1 << 16)
    rng = np.random.default_rng(7)
    n = 2000
    data = rng.integers(I32_MIN, I32_MAX, (n, p.cols), dtype=np.int64, endpoint=True).astype(np.int32)
    data[0], data[1], data[2, ::2] = I32_MIN, I32_MAX, -1
    out = MXUOutputs(cycle=np.sort(rng.integers(0, 1 << 32, n)).astype(np.int64),
                     addr=rng.integers(0, p.acc_depth, n).astype(np.int64), data=data)
    out.addr[0] = p.acc_depth - 1
    write_outputs_hex(out, tmp_path, cycles=12345)
    back, status = read_outputs_hex(tmp_path, p)
    assert back.mismatch(out) is None
    assert back.data.dtype == np.int32 and back.cycle.dtype == np.int64 and back.addr.dtype == np.int64
    assert (status.stored, status.seen, status.overflow, status.cycles) == (n, n, False, 12345)


def test_outputs_empty(tmp_path):
    p = MXUParams(2, 3, 16)
    write_outputs_hex(MXUOutputs.empty(3), tmp_path, cycles=5)
    out, status = read_outputs_hex(tmp_path, p)
    assert len(out) == 0 and out.data.shape == (0, 3) and status.cycles == 5


def test_read_hex_words_forms(tmp_path):
    f = tmp_path / "w.hex"
    # $writememh-style lines of full width, a comment and blank line, lines with dropped leading zeros.
    f.write_text("// written by a simulator\n0102\n\nfffe\n")
    np.testing.assert_array_equal(read_hex_words(f, 2), [[0x02, 0x01], [0xFE, 0xFF]])
    f.write_text("1\n2\nA\n")
    np.testing.assert_array_equal(read_hex_words(f, 2), [[1, 0], [2, 0], [10, 0]])
    f.write_text("@10\n0001\n")
    with pytest.raises(ValueError, match="address lines"):
        read_hex_words(f, 2)
    f.write_text("00x1\n")
    with pytest.raises(ValueError, match="non-hex digit 'x'"):
        read_hex_words(f, 2)
    f.write_text("0001\n001\n")
    with pytest.raises(ValueError, match="different length"):
        read_hex_words(f, 2)
    f.write_text("000001\n")
    with pytest.raises(ValueError, match="expected lines of 1 to 4 hex digits, line 1 has 6"):
        read_hex_words(f, 2)


def test_write_hex_words_layout(tmp_path):
    f = tmp_path / "w.hex"
    write_hex_words(f, np.array([[0x01, 0x02, 0xAB]], dtype=np.uint8))
    assert f.read_text() == "ab0201\n"


# ---- validation ---------------------------------------------------------------------------------------------

def _trace():
    return MXUTrace.empty(MXUParams(2, 3, 16), 8)


@pytest.mark.parametrize("mutate,message", [
    (lambda t: t.w_row.__setitem__(3, 2), r"^w_row\[3\] = 2 is out of range: w_row must be in 0\.\.1 \(rows = 2\)$"),
    (lambda t: t.w_row.__setitem__(0, -1), r"^w_row\[0\] = -1 is out of range: w_row must be in 0\.\.1 \(rows = 2\)$"),
    (lambda t: t.a_addr.__setitem__(5, 16),
     r"^a_addr\[5\] = 16 is out of range: a_addr must be in 0\.\.15 \(acc_depth = 16\)$"),
    (lambda t: setattr(t, "w_data", t.w_data.astype(np.int16)),
     r"^w_data must be an int8 array \(values -128\.\.127\), not dtype int16$"),
    (lambda t: setattr(t, "a_data", np.zeros((8, 3), np.int8)),
     r"^a_data must have shape \(8, 2\) \(cycles × rows\), not \(8, 3\)$"),
    (lambda t: setattr(t, "w_data", np.zeros((7, 3), np.int8)),
     r"^w_data must have shape \(8, 3\) \(cycles × cols\), not \(7, 3\)$"),
    (lambda t: setattr(t, "a_valid", np.zeros(9, bool)), r"^a_valid must have shape \(8,\) like rst, not \(9,\)$"),
    (lambda t: setattr(t, "a_emit", np.array([0, 1, 2, 0, 0, 0, 0, 0])),
     r"^a_emit\[2\] = 2 is out of range: a_emit must be 0 or 1$"),
    (lambda t: setattr(t, "a_swap", np.zeros(8, np.float32)),
     r"^a_swap must be a bool \(or 0/1 integer\) array, not dtype float32$"),
    (lambda t: setattr(t, "a_addr", np.zeros(8, np.float64)), r"^a_addr must be an integer array, not dtype float64$"),
])
def test_check_messages(mutate, message):
    t = _trace()
    t.check()
    mutate(t)
    with pytest.raises(ValueError, match=message):
        t.check()


def test_check_accepts_integer_flags():
    t = _trace()
    t.a_valid = np.array([0, 1] * 4, dtype=np.uint8)
    t.w_row = t.w_row.astype(np.uint8)
    assert t.check() is t


def test_empty_and_slicing():
    p = MXUParams(2, 3, 16)
    t = MXUTrace.empty(p, 10)
    assert len(t) == 10 and t.w_data.shape == (10, 3) and t.a_data.shape == (10, 2)
    t.a_valid[4] = True
    both = MXUTrace.concat([t[:5], t[5:]])
    assert_traces_equal(both, t)
    with pytest.raises(ValueError, match="cycles must be a non-negative integer"):
        MXUTrace.empty(p, -1)


def test_trace_depth():
    from sim.verilator import trace_depth
    assert [trace_depth(n) for n in (0, 1, 4096, 4097, 100_000)] == [4096, 4096, 4096, 8192, 131072]


# ---- end to end (Verilator) ---------------------------------------------------------------------------------

P23 = MXUParams(2, 3, 16)


def tile_trace(params, n_act, seed=0, extra=0):
    """One weight tile on cycles 0..rows-1, then n_act activations from cycle rows (swap on the first)."""
    rng = np.random.default_rng(seed)
    R = params.rows
    W = rng.integers(-128, 128, (R, params.cols), dtype=np.int8)
    X = rng.integers(-128, 128, (n_act, R), dtype=np.int8)
    X[0], X[-1] = -128, 127
    tr = MXUTrace.empty(params, R + n_act + extra)
    tr.w_valid[:R], tr.w_row[:R], tr.w_data[:R] = True, np.arange(R), W
    t_act = R + np.arange(n_act)
    tr.a_valid[t_act], tr.a_emit[t_act], tr.a_data[t_act] = True, True, X
    tr.a_swap[R] = True
    tr.a_addr[t_act] = np.arange(n_act) % params.acc_depth
    return tr, W, X, t_act


def compare_golden(trace, out):
    if not HAVE_GOLDEN:
        return
    from golden.mxu import MXUModel
    out.assert_equal(MXUModel(trace.params).run(trace))


@pytest.fixture(scope="module")
def sim23():
    from sim.verilator import MXUSimulator
    return MXUSimulator(P23, build_root=BUILD_ROOT)


@needs_rtl
def test_smoke_2x3(sim23):
    tr, W, X, t_act = tile_trace(P23, 6)
    out = sim23.run(tr)
    expected = (X.astype(np.int64) @ W.astype(np.int64)).astype(np.int32)
    np.testing.assert_array_equal(out.cycle, t_act + P23.latency)
    np.testing.assert_array_equal(out.addr, np.arange(6))
    np.testing.assert_array_equal(out.data, expected)
    assert out.info.cycles == tr.cycles + sim23.drain and out.info.sim_seconds > 0
    compare_golden(tr, out)


@needs_rtl
@pytest.mark.skipif(not HAVE_GOLDEN, reason="golden/mxu.py is not there yet")
def test_random_traffic_with_resets_2x3(sim23):
    """Random weights, swaps, accumulation and trace resets against the golden model."""
    p = P23
    rng = np.random.default_rng(3)
    T = 3000
    tr = MXUTrace.empty(p, T)
    tr.w_valid[:] = rng.random(T) < 0.5
    tr.w_row[:] = rng.integers(0, p.rows, T)
    tr.w_data[:] = rng.integers(-128, 128, (T, p.cols), dtype=np.int8)
    tr.a_valid[:] = rng.random(T) < 0.8
    tr.a_swap[:] = rng.random(T) < 0.1
    tr.a_acc[:] = rng.random(T) < 0.5
    tr.a_emit[:] = rng.random(T) < 0.7
    tr.a_addr[:] = rng.integers(0, p.acc_depth, T)
    tr.a_data[:] = rng.integers(-128, 128, (T, p.rows), dtype=np.int8)
    tr.rst[[500, 501, 1700, 2999]] = True
    out = sim23.run(tr)
    assert len(out) > 1000
    compare_golden(tr, out)


@needs_rtl
def test_gpi_clock_and_capture_overflow():
    from sim.verilator import MXUSimulator, SimulationError
    sim = MXUSimulator(P23, build_root=BUILD_ROOT, clock="gpi", out_depth=4)
    tr, W, X, t_act = tile_trace(P23, 4)
    out = sim.run(tr)
    np.testing.assert_array_equal(out.cycle, t_act + P23.latency)
    np.testing.assert_array_equal(out.data, (X.astype(np.int64) @ W.astype(np.int64)).astype(np.int32))
    tr, *_ = tile_trace(P23, 6)
    with pytest.raises(SimulationError, match="capture overflow: 6 outputs arrived, the capture memory holds 4"):
        sim.run(tr)


@needs_rtl
def test_waves(tmp_path):
    from sim.verilator import MXUSimulator
    sim = MXUSimulator(P23, build_root=BUILD_ROOT, waves=True)
    tr, *_ = tile_trace(P23, 2)
    out = sim.run(tr, run_dir=tmp_path / "run")
    vcd = Path(out.info.vcd_path)
    assert vcd.is_file() and b"y_valid" in vcd.read_bytes()
