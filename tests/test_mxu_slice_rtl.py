"""The MXU slice (rtl/mxu_slice.py) in Amaranth's simulator: LOADW/MATMUL schedules from the streams
against the golden MXU model (golden.chip.MXUStepper), results on each MATMUL's own dst."""
import numpy as np
import pytest

from golden.chip import MXUStepper
from golden.vxu import low_byte
from rtl.mxu_slice import MXUSlice
from spec import isa
from spec.config import PRESETS
from spec.isa import Instruction, Stream, encode
from tests.slice_bench import run_slice

TINY = PRESETS["tiny"]


def _stream(rng, config):
    return Stream("EW"[rng.integers(2)], int(rng.integers(config.streams)))


def _schedule(rng, config, cycles):
    """Weight tiles and MATMULs back to back: LOADW of the next tile while the current one computes."""
    p = config.mxu
    issues, ops = {}, []
    t_w = t_a = 0
    last = -1          # the last issue cycle: one queue issues one instruction per cycle
    while True:
        loadw = Instruction("LOADW", src=_stream(rng, config), count=int(rng.integers(1, p.rows + 1)))
        count = int(rng.integers(1, 7))
        addr = int(rng.integers(0, p.acc_depth - count + 1))
        emit = bool(rng.random() < 0.8)
        mm = Instruction("MATMUL", src=_stream(rng, config), count=count, addr=addr, swap=bool(rng.random() < 0.7),
                         acc=bool(rng.random() < 0.4), emit=emit, dst=_stream(rng, config) if emit else None)
        # the LOADW must be issued no later than the swapping MATMUL (docs/isa.md: in time if issued any
        # cycle before); keep issue cycles distinct (one queue)
        t_l = max(t_w, last + 1, t_a - 1 - int(rng.integers(0, 3)))
        t_m = max(t_a, t_l + 1)
        if t_m + count + p.latency + 4 >= cycles:
            break
        issues[t_l] = encode(loadw)
        ops.append((t_l, loadw))
        issues[t_m] = encode(mm)
        ops.append((t_m, mm))
        t_w = t_l + loadw.count
        last = t_m
        t_a = t_m + count + int(rng.integers(0, 2))
        if t_a == t_w:
            t_a += 1
    return issues, ops


def _expected(config, ops, streams, cycles):
    p = config.mxu
    model = MXUStepper(p)
    puts = {}
    for u in range(cycles):
        for t, ins in ops:
            i = u - t - isa.MXU_INPUT_OFFSET
            if not 0 <= i < ins.count:
                continue
            v = streams[u][0 if ins.src.direction == "E" else 1, ins.src.index]
            if ins.op == "LOADW":
                model.weight(u, i, low_byte(v[:p.cols]))
            else:
                model.activation(u, low_byte(v[:p.rows]), swap=ins.swap and i == 0, acc=ins.acc, emit=ins.emit,
                                 addr=ins.addr + i, tag=ins.dst)
        for out_cycle, _, data, emit, dst in model.results(u):
            if emit:
                row = np.zeros(config.lanes, np.int64)
                row[:p.cols] = data
                puts[out_cycle] = (dst.bits(), row)
    return puts


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("extreme", [False, True])
def test_random_tiles_match_golden(seed, extreme):
    print(f"seed {seed}, extreme {extreme}")
    rng = np.random.default_rng(seed)
    c = TINY
    cycles = 90
    issues, ops = _schedule(rng, c, cycles)
    assert ops, "the schedule is empty"
    if extreme:
        streams = rng.choice(np.array([-128, 127, -1, 0, 255, -2**31]), size=(cycles, 2, c.streams, c.lanes))
    else:
        streams = rng.integers(-2**31, 2**31, size=(cycles, 2, c.streams, c.lanes))
    puts = run_slice(MXUSlice(c), c, issues, streams, cycles)
    want = _expected(c, ops, streams, cycles)
    assert want, "nothing emitted: the test would prove nothing"
    assert sorted(puts) == sorted(want), f"seed {seed}: results at {sorted(puts)}, expected {sorted(want)}"
    for t in sorted(want):
        assert puts[t][0] == want[t][0], f"seed {seed}, cycle {t}: dst {puts[t][0]} != {want[t][0]}"
        np.testing.assert_array_equal(puts[t][1], want[t][1], err_msg=f"seed {seed}, cycle {t}")
