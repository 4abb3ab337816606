"""golden/chip.py: the ISA-level chip simulator, on the ``tiny`` preset, programs written in assembly.

Every expected cycle number below is computed from ``spec.isa``'s latencies, never written as a bare number.
"""
import re
from types import SimpleNamespace

import numpy as np
import pytest

from golden import vxu as gvxu
from golden.chip import ChipError, ChipFault, ChipSim, ChipTimeout, MXUStepper
from golden.mxu import MXUModel, matmul
from spec import isa
from spec.asm import assemble
from spec.config import PRESETS
from spec.isa import (
    MEM_DECODE_STAGES,
    MEM_READ_LATENCY,
    MEM_WRITE_LATENCY,
    MXU_INPUT_OFFSET,
    VXU_INPUT_OFFSET,
    VXU_PIPELINE,
    ErrorCode,
    Instruction,
    encode,
    lut_vectors,
    mxu_result_latency,
)
from spec.mxu import MXUParams

TINY = PRESETS["tiny"]
POS = {name: TINY.slice_index(name) for name in TINY.slice_names}   # mem0 0, mem1 1, mxu0 2, vxu0 3, mem2 4
VXU_OUT = VXU_INPUT_OFFSET + VXU_PIPELINE


def run_asm(text, mems=(), config=TINY, **kw):
    sim = ChipSim(config)
    sim.load(assemble(text, config))
    for slice_, bank, addr, vectors in mems:
        sim.write_mem(slice_, bank, addr, vectors)
    return sim.run(**kw)


def vecs(rng, n, lo=-2**31, hi=2**31, lanes=TINY.lanes):
    return rng.integers(lo, hi, (n, lanes)).astype(np.int64)


def last_cycle(op, t, count=1, config=TINY):
    """The last cycle an instruction issued at t does something, written out per opcode from spec.isa."""
    return {
        "HALT": t,
        "SETQ": t,
        "READ": t + MEM_READ_LATENCY + count - 1,
        "WRITE": t + MEM_WRITE_LATENCY + count - 1,
        "LOADW": t + MXU_INPUT_OFFSET + count - 1,
        "MATMUL": t + mxu_result_latency(config) + count - 1,
        "VOP": t + VXU_OUT + count - 1,
        "LOADLUT": t + VXU_INPUT_OFFSET + lut_vectors(config.lanes) - 1,
    }[op]


class Schedule:
    """Instructions at absolute issue cycles per slice; ``text()`` fills the gaps with NOPs and ends every
    section with HALT; ``expected_cycles()`` is the done cycle from the latencies of spec.isa."""

    def __init__(self, config=TINY):
        self.config = config
        self.items = {}

    def at(self, slice_, cycle, text):
        assert cycle >= 0, (slice_, cycle, text)
        lst = self.items.setdefault(slice_, [])
        assert all(c != cycle for c, _ in lst), f"{slice_}: two instructions at cycle {cycle}"
        lst.append((cycle, text))

    def sections(self):
        out = {}
        for s, lst in self.items.items():
            lines, now = [], 0
            for cycle, text in sorted(lst):
                if cycle > now:
                    lines.append(f"NOP {cycle - now}")
                lines.append(text)
                now = cycle + 1
            out[s] = (lines, now)      # HALT issues at `now`
        return out

    def text(self):
        return "".join(f".slice {s}\n" + "".join(f"    {line}\n" for line in lines) + "    HALT\n"
                       for s, (lines, _) in self.sections().items())

    def expected_cycles(self):
        last = 0     # slices without a section halt at cycle 0
        for s, (_, halt) in self.sections().items():
            last = max(last, halt)
            for cycle, text in self.items[s]:
                count = re.search(r"count=(\d+)", text)
                last = max(last, last_cycle(text.split()[0].upper(), cycle, int(count[1]) if count else 1,
                                            self.config))
        return last + 1


# ---- streams -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("src, dst, stream", [("mem0", "mem2", "E1"), ("mem2", "mem0", "W2"),
                                              ("mem0", "mem1", "E0"), ("mem2", "mem1", "W0")])
def test_stream_delay_is_the_distance(src, dst, stream):
    """A READ at slice p seen by a WRITE at slice p ± d exactly d cycles later; zeros before and after."""
    rng = np.random.default_rng(1)
    data = vecs(rng, 3)
    d = abs(POS[dst] - POS[src])
    t_read = 2
    seen = t_read + MEM_READ_LATENCY + d           # word 0 at the destination
    t_write = seen - 1 - MEM_WRITE_LATENCY         # sample one cycle early ... and one late
    s = Schedule()
    s.at(src, t_read, f"READ bank=0 addr=0 count=3 -> {stream}")
    s.at(dst, t_write, f"WRITE {stream} bank=1 addr=10 count=5")
    res = run_asm(s.text(), [(src, 0, 0, data)], record=True)
    assert res.ok and res.cycles == s.expected_cycles()
    got = res.read_mem(dst, 1, 10, 5)
    assert got.tolist() == [[0] * 4] + data.tolist() + [[0] * 4]
    assert [w[0] for w in res.stream_writes] == [t_read + MEM_READ_LATENCY + i for i in range(3)]


def test_edges_inject_zero_and_a_slice_sees_the_passing_value_not_its_own_write():
    rng = np.random.default_rng(2)
    a, b, junk = vecs(rng, 1), vecs(rng, 1), vecs(rng, 4)
    s = Schedule()
    s.at("mem0", 0, "READ bank=0 addr=0 count=1 -> E0")     # A on E0 at p0 during 3, at p1 during 4
    s.at("mem1", 1, "READ bank=0 addr=0 count=1 -> E0")     # B written by p1 during 4: replaces A downstream
    t4 = MEM_READ_LATENCY + 1                               # the cycle A reaches p1
    s.at("mem1", t4 - MEM_WRITE_LATENCY, "WRITE E0 bank=1 addr=0 count=1")          # p1 sees A, not B
    s.at("mem2", t4 + 2 - MEM_WRITE_LATENCY, "WRITE E0 bank=1 addr=0 count=3")      # p4 sees 0, B, 0
    s.at("mem0", 0 + 1, "WRITE E0 bank=1 addr=0 count=8")   # the west edge of an E stream is always 0
    res = run_asm(s.text(), [("mem0", 0, 0, a), ("mem1", 0, 0, b), ("mem0", 1, 0, junk), ("mem0", 1, 4, junk)])
    assert res.ok and res.cycles == s.expected_cycles()
    assert res.read_mem("mem1", 1, 0).tolist() == a.tolist()
    assert res.read_mem("mem2", 1, 0, 3).tolist() == [[0] * 4, b[0].tolist(), [0] * 4]
    assert (res.read_mem("mem0", 1, 0, 8) == 0).all()


def test_west_edge_of_w_streams_drops_values_and_east_edge_injects_zero():
    rng = np.random.default_rng(3)
    junk = vecs(rng, 4)
    s = Schedule()
    s.at("mem0", 0, "READ bank=0 addr=0 count=4 -> W0")     # written westward by slice 0: leaves the chip
    s.at("mem1", 0, "READ bank=0 addr=0 count=4 -> E1")
    s.at("mem2", 1, "WRITE W1 bank=1 addr=0 count=8")       # the east edge of a W stream is always 0
    res = run_asm(s.text(), [("mem0", 0, 0, junk), ("mem1", 0, 0, junk), ("mem2", 1, 0, junk),
                             ("mem2", 1, 4, junk)])
    assert res.ok and (res.read_mem("mem2", 1, 0, 8) == 0).all()


# ---- MEM ---------------------------------------------------------------------------------------------
def test_mem_copy_round_trip_across_slices():
    """mem0 → mem2 eastward, then mem2 → mem1 westward, back to back on the same banks."""
    rng = np.random.default_rng(4)
    data = vecs(rng, 16)
    s = Schedule()
    s.at("mem0", 0, "READ bank=0 addr=8 count=16 -> E2")
    w1 = MEM_READ_LATENCY + (POS["mem2"] - POS["mem0"]) - MEM_WRITE_LATENCY
    s.at("mem2", w1, "WRITE E2 bank=1 addr=40 count=16")
    last_store = w1 + MEM_WRITE_LATENCY + 15
    r2 = last_store + 1 - MEM_DECODE_STAGES      # first address presented the cycle after the last store
    s.at("mem2", r2, "READ bank=1 addr=40 count=16 -> W1")
    w2 = r2 + MEM_READ_LATENCY + (POS["mem2"] - POS["mem1"]) - MEM_WRITE_LATENCY
    s.at("mem1", w2, "WRITE W1 bank=0 addr=0 count=16")
    res = run_asm(s.text(), [("mem0", 0, 8, data)])
    assert res.ok
    assert res.cycles == s.expected_cycles() == w2 + MEM_WRITE_LATENCY + 16
    assert res.read_mem("mem2", 1, 40, 16).tolist() == data.tolist()
    assert res.read_mem("mem1", 0, 0, 16).tolist() == data.tolist()


@pytest.mark.parametrize("shift, sees_new", [(0, False), (1, True)])
def test_read_before_write_on_the_same_word(shift, sees_new):
    """A read presented during the cycle a WRITE stores the same word sees the old value; a cycle later, the new."""
    old, junk, new = [[1, 2, 3, 4]], [[9, 9, 9, 9]], [[5, 6, 7, 8]]
    s = Schedule()
    s.at("mem0", 0, "READ bank=0 addr=0 count=2 -> E0")
    sample = MEM_READ_LATENCY + (POS["mem2"] - POS["mem0"])        # mem2 samples word 0 here
    s.at("mem2", sample - MEM_WRITE_LATENCY, "WRITE E0 bank=0 addr=2 count=2")   # stores word 3 during sample + 1
    present = sample + 1 + shift
    s.at("mem2", present - MEM_DECODE_STAGES, "READ bank=0 addr=3 count=1 -> W0")
    s.at("mem1", present - MEM_DECODE_STAGES + MEM_READ_LATENCY + (POS["mem2"] - POS["mem1"]) - MEM_WRITE_LATENCY,
         "WRITE W0 bank=1 addr=0 count=1")
    res = run_asm(s.text(), [("mem0", 0, 0, junk + new), ("mem2", 0, 3, old)])
    assert res.ok and res.cycles == s.expected_cycles()
    assert res.read_mem("mem1", 1, 0).tolist() == (new if sees_new else old)
    assert res.read_mem("mem2", 0, 2, 2).tolist() == junk + new


# ---- queues, NOP, HALT, done -------------------------------------------------------------------------
def test_halt_only_is_done_after_one_cycle():
    res = run_asm("")
    assert res.ok and res.cycles == 1


@pytest.mark.parametrize("n", [1, 2, 7, 300])
def test_nop_holds_the_queue(n):
    res = run_asm(f".slice mxu\n NOP {n}\n HALT\n")        # HALT issues at n
    assert res.ok and res.cycles == n + 1
    res = run_asm(f".slice vxu\n NOP {n}\n NOP 3\n NOP\n HALT\n")
    assert res.cycles == n + 3 + 1 + 1


def test_done_waits_for_operations_in_flight():
    # READ at 0 writes its last word at 0 + MEM_READ_LATENCY + 3 although HALT issues at 1
    res = run_asm(".slice mem1\n READ bank=0 addr=0 count=4 -> E0\n HALT\n")
    assert res.cycles == MEM_READ_LATENCY + 3 + 1
    # a MATMUL without emit still waits for its accumulator write-back (the result cycle)
    res = run_asm(".slice mxu\n NOP 2\n MATMUL E0 count=5 addr=0\n HALT\n")
    assert res.cycles == 2 + mxu_result_latency(TINY) + 4 + 1
    # the VXU: a VOP's last result
    res = run_asm(".slice vxu\n VOP relu E0 count=3 -> E1\n HALT\n")
    assert res.cycles == VXU_OUT + 2 + 1
    # LOADLUT and SETQ
    res = run_asm(".slice vxu\n SETQ mult=1 shift=0 zp=0\n LOADLUT E0\n HALT\n")
    assert res.cycles == 1 + VXU_INPUT_OFFSET + lut_vectors(TINY.lanes) - 1 + 1
    # the latest HALT decides when nothing else runs longer
    res = run_asm(".slice mem0\n READ bank=0 addr=0 count=1 -> E0\n HALT\n.slice mem2\n NOP 40\n HALT\n")
    assert res.cycles == 41


def test_unit_busy_boundary_is_exact():
    ok = run_asm(".slice mem0\n READ bank=0 addr=0 count=4 -> E0\n NOP 3\n READ bank=0 addr=4 count=1 -> E1\n"
                 " WRITE E3 bank=1 addr=0 count=2\n HALT\n")
    assert ok.ok and ok.cycles == last_cycle("READ", 4, 1) + 1
    bad = run_asm(".slice mem0\n READ bank=0 addr=0 count=4 -> E0\n NOP 2\n READ bank=0 addr=4 count=1 -> E1\n"
                  " HALT\n")
    assert bad.error == ChipError(ErrorCode.UNIT_BUSY, POS["mem0"], 2, 3)
    assert bad.cycles == 4


def test_determinism_same_program_same_result():
    rng = np.random.default_rng(5)
    s, mems, _ = gemm_schedule(rng, 6, 10, 7, vxu_ops=[("requant", (123456789, 2, 3))])
    a, b = run_asm(s.text(), mems, record=True), run_asm(s.text(), mems, record=True)
    assert a.ok and a.stream_writes
    assert a.cycles == b.cycles and a.error == b.error and a.stream_writes == b.stream_writes
    assert all((x is None and y is None) or (x == y).all() for x, y in zip(a.mems, b.mems))


# ---- faults ------------------------------------------------------------------------------------------
def word(**kw):
    return f".word 0x{encode(Instruction(**kw)):016x}"


@pytest.mark.parametrize("slice_, body, code, pc, cycle", [
    ("mem1", " NOP 3\n .word 0\n", ErrorCode.ILLEGAL_OPCODE, 1, 3),
    ("mxu", " NOP 2\n NOP 1\n", ErrorCode.ILLEGAL_OPCODE, 2, 3),   # ran off the program into zero words
    ("mem0", f" NOP 1\n {word(op='LOADW', src='E0', count=1)}\n", ErrorCode.ILLEGAL_OPCODE, 1, 1),
    ("vxu", f" .word 0x{encode(Instruction('HALT')) | 1 << 7:016x}\n", ErrorCode.BAD_FIELD, 0, 0),
    ("vxu", " NOP 4\n .word 0x" + f"{(0x18 << 58) | (15 << 4):016x}\n", ErrorCode.BAD_FIELD, 1, 4),
    ("mem2", f" NOP 5\n {word(op='READ', bank=2, addr=0, count=1, dst='E0')}\n", ErrorCode.BAD_BANK, 1, 5),
    ("mem2", f" {word(op='WRITE', bank=1, addr=60, count=5, src='E0')}\n", ErrorCode.BAD_ADDRESS, 0, 0),
    ("mxu", f" NOP 2\n {word(op='LOADW', src='E0', count=5)}\n", ErrorCode.BAD_ADDRESS, 1, 2),
    ("mxu", f" {word(op='MATMUL', src='E0', count=2, addr=63)}\n", ErrorCode.BAD_ADDRESS, 0, 0),
    ("mem0", f" NOP 1\n NOP 1\n {word(op='READ', bank=0, addr=0, count=1, dst='W4')}\n",
     ErrorCode.BAD_STREAM, 2, 2),
    ("vxu", f" {word(op='VOP', vop='add', src='E1', src2='E7', count=1, dst='E0')}\n", ErrorCode.BAD_STREAM, 0, 0),
    ("vxu", " VOP relu E0 count=3 -> E1\n NOP 1\n SETQ mult=5 shift=0 zp=0\n", ErrorCode.UNIT_BUSY, 2, 2),
    ("mxu", " LOADW E0 count=4\n LOADW E0 count=1\n", ErrorCode.UNIT_BUSY, 1, 1),
    ("mxu", " MATMUL E0 count=4 addr=0\n LOADW E0 count=4\n MATMUL E1 count=1 addr=0\n", ErrorCode.UNIT_BUSY, 2, 2),
])
def test_fault_code_slice_pc_cycle(slice_, body, code, pc, cycle):
    res = run_asm(f".slice {slice_}\n{body}")
    assert res.error == (code, TINY.slice_index(slice_), pc, cycle), res.error
    assert res.cycles == cycle + 1 and not res.ok


def test_queue_overrun_when_the_whole_queue_runs_without_halt():
    n = TINY.queue_depth
    res = run_asm(".slice vxu\n" + " NOP 1\n" * n)
    assert res.error == ChipError(ErrorCode.QUEUE_OVERRUN, POS["vxu0"], n, n)
    with pytest.raises(ValueError, match="more than queue_depth"):
        ChipSim(TINY).load([[isa.encode(Instruction("HALT"))] * (n + 1)] + [[]] * 4)


def test_lowest_code_wins_and_lowest_slice_wins():
    # on one instruction: BAD_BANK (3) and BAD_STREAM (5) -> BAD_BANK
    res = run_asm(f".slice mem1\n {word(op='READ', bank=3, addr=0, count=1, dst='E6')}\n")
    assert res.error == (ErrorCode.BAD_BANK, POS["mem1"], 0, 0)
    # two slices fault in the same cycle: the lowest slice index is reported
    res = run_asm(f".slice mem2\n .word 0\n.slice mxu\n .word 0\n"
                  f".slice mem1\n {word(op='READ', bank=3, addr=0, count=1, dst='E0')}\n")
    assert res.error == (ErrorCode.BAD_BANK, POS["mem1"], 0, 0)


def test_stream_conflict_mechanism(monkeypatch):
    """No unit of the present ISA can conflict (see golden/chip.py); with READ made busy for one cycle only,
    two READs of one slice overlap on one stream and the check must fire, with the later READ's pc."""
    real = isa.timing

    def fake(instr, config):
        tm = real(instr, config)
        return isa.OpTiming(tm.unit, 1, tm.items, tm.first_in, tm.first_out) if instr.op == "READ" else tm

    monkeypatch.setattr(isa, "timing", fake)
    res = run_asm(".slice mem2\n READ bank=0 addr=0 count=3 -> E1\n READ bank=0 addr=0 count=1 -> E1\n HALT\n")
    assert res.error == (ErrorCode.STREAM_CONFLICT, POS["mem2"], 1, 1 + MEM_READ_LATENCY)
    # different streams do not conflict
    res = run_asm(".slice mem2\n READ bank=0 addr=0 count=3 -> E1\n READ bank=0 addr=0 count=1 -> E2\n HALT\n")
    assert res.ok


def test_fault_stops_everything_at_the_end_of_its_cycle():
    rng = np.random.default_rng(6)
    data = vecs(rng, 8)
    s = Schedule()
    s.at("mem0", 0, "READ bank=0 addr=0 count=8 -> E0")
    w = MEM_READ_LATENCY + 4 - MEM_WRITE_LATENCY
    s.at("mem2", w, "WRITE E0 bank=1 addr=0 count=8")
    text = s.text()
    fault_cycle = w + MEM_WRITE_LATENCY + 2           # the WRITE has stored words 0, 1, 2 by its end
    text += f".slice vxu\n NOP {fault_cycle}\n .word 0\n"
    res = run_asm(text, [("mem0", 0, 0, data)])
    assert res.error == (ErrorCode.ILLEGAL_OPCODE, POS["vxu0"], 1, fault_cycle)
    assert res.cycles == fault_cycle + 1
    assert res.read_mem("mem2", 1, 0, 3).tolist() == data[:3].tolist()
    assert (res.read_mem("mem2", 1, 3, 5) == 0).all()


# ---- MXU ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("slots", [1, 3])
@pytest.mark.parametrize("seed", range(6))
def test_mxu_stepper_equals_mxu_model(seed, slots):
    rng = np.random.default_rng(seed)
    p = MXUParams(int(rng.integers(1, 6)), int(rng.integers(1, 6)), 8, slots)
    T = 120
    tr = SimpleNamespace(
        rst=np.zeros(T, bool), w_valid=rng.random(T) < 0.5, w_row=rng.integers(0, p.rows, T),
        w_data=rng.integers(-128, 128, (T, p.cols)), a_valid=rng.random(T) < 0.6, a_swap=rng.random(T) < 0.2,
        a_acc=rng.random(T) < 0.5, a_emit=rng.random(T) < 0.7, a_addr=rng.integers(0, 8, T),
        a_data=rng.integers(-128, 128, (T, p.rows)), w_slot=rng.integers(0, slots, T),
        a_slot=rng.integers(0, slots, T))
    model = MXUModel(p)
    want = model.run(tr)
    st = MXUStepper(p)
    got = []
    for t in range(T + p.latency):
        if t < T and tr.w_valid[t]:
            st.weight(t, int(tr.w_row[t]), tr.w_data[t], int(tr.w_slot[t]))
        if t < T and tr.a_valid[t]:
            st.activation(t, tr.a_data[t], bool(tr.a_swap[t]), bool(tr.a_acc[t]), bool(tr.a_emit[t]),
                          int(tr.a_addr[t]), slot=int(tr.a_slot[t]))
        got += [r for r in st.results(t) if r[3]]
    assert [r[0] for r in got] == want.cycle.tolist()
    assert [r[1] for r in got] == want.addr.tolist()
    assert np.array_equal(np.array([r[2] for r in got]).reshape(want.data.shape), want.data)
    assert np.array_equal(st.acc, model.acc) and len(got) > 10


def gemm_schedule(rng, M, K, N, vxu_ops=(), x=None, w=None):
    """A GEMM X (M×K) @ W (K×N) on the MXU slice: weight tiles from mem0 (E0), activations from mem1 (E1),
    results on E2 into mem2 bank 0 (word j·M + m holds columns j·cols …). With ``vxu_ops`` (e.g.
    ``[("requant", (mult, shift, zp))]``) the results pass through one VOP on the VXU (E2 → E3) on the way.
    Returns (the Schedule, memory images, (x, w))."""
    R, Cc = TINY.mxu_rows, TINY.mxu_cols
    x = rng.integers(-128, 128, (M, K)).astype(np.int8) if x is None else x
    w = rng.integers(-128, 128, (K, N)).astype(np.int8) if w is None else w
    KT, NT = -(-K // R), -(-N // Cc)
    xp = np.zeros((M, KT * R), np.int64)
    xp[:, :K] = x
    wp = np.zeros((KT * R, NT * Cc), np.int64)
    wp[:K, :N] = w
    L = TINY.lanes
    wimg = np.zeros((NT * KT * R, L), np.int64)     # tile (j, kk) row r at (j·KT + kk)·R + r
    ximg = np.zeros((KT * M, L), np.int64)          # k-tile kk activation m at kk·M + m
    for j in range(NT):
        for kk in range(KT):
            wimg[(j * KT + kk) * R:(j * KT + kk + 1) * R, :Cc] = wp[kk * R:(kk + 1) * R, j * Cc:(j + 1) * Cc]
    for kk in range(KT):
        ximg[kk * M:(kk + 1) * M, :R] = xp[:, kk * R:(kk + 1) * R]
    pw, pa, pm, pv, po = POS["mem0"], POS["mem1"], POS["mxu0"], POS["vxu0"], POS["mem2"]
    lat = mxu_result_latency(TINY)
    period = max(M, R, 2)
    # the earliest first MATMUL that lets both READs issue at cycle >= 0 (and a SETQ before the VOPs)
    m0 = max(1 - MXU_INPUT_OFFSET + MEM_READ_LATENCY + (pm - pw),
             -MXU_INPUT_OFFSET + MEM_READ_LATENCY + (pm - pa)) + 1
    s = Schedule()
    if vxu_ops:
        op, params = vxu_ops[0]
        if op == "requant":
            s.at("vxu", 0, "SETQ mult={} shift={} zp={}".format(*params))
    tile = 0
    for j in range(NT):
        for kk in range(KT):
            m = m0 + tile * period
            last = m - 1    # the last cycle that meets the weight deadline (row r presented at m + r)
            s.at("mem0", last + MXU_INPUT_OFFSET - MEM_READ_LATENCY - (pm - pw),
                 f"READ bank=0 addr={(j * KT + kk) * R} count={R} -> E0")
            s.at("mxu", last, f"LOADW E0 count={R}")
            s.at("mem1", m + MXU_INPUT_OFFSET - MEM_READ_LATENCY - (pm - pa),
                 f"READ bank=0 addr={kk * M} count={M} -> E1")
            flags = "swap" + (" acc" if kk else "") + (" emit -> E2" if kk == KT - 1 else "")
            s.at("mxu", m, f"MATMUL E1 count={M} addr={j * M} {flags}")
            if kk == KT - 1:
                out = m + lat              # result 0 on E2 at the MXU
                stream = "E2"
                if vxu_ops:
                    v = out + (pv - pm) - VXU_INPUT_OFFSET
                    s.at("vxu", v, f"VOP {vxu_ops[0][0]} E2 count={M} -> E3")
                    out, pm_, stream = v + VXU_OUT, pv, "E3"
                else:
                    pm_ = pm
                s.at("mem2", out + (po - pm_) - MEM_WRITE_LATENCY, f"WRITE {stream} bank=0 addr={j * M} count={M}")
            tile += 1
    mems = [("mem0", 0, 0, wimg), ("mem1", 0, 0, ximg)]
    return s, mems, (x, w)


def gemm_result(res, M, N):
    Cc = TINY.mxu_cols
    NT = -(-N // Cc)
    out = res.read_mem("mem2", 0, 0, NT * M)
    y = np.concatenate([out[j * M:(j + 1) * M, :Cc] for j in range(NT)], axis=1)
    return y[:, :N]


@pytest.mark.parametrize("M, K, N", [(5, 4, 4), (6, 10, 7), (9, 13, 9), (4, 1, 1), (2, 8, 3)])
def test_gemm_on_the_mxu_slice(M, K, N):
    rng = np.random.default_rng(M * 100 + K * 10 + N)
    s, mems, (x, w) = gemm_schedule(rng, M, K, N)
    res = run_asm(s.text(), mems)
    assert res.ok, res.error
    assert np.array_equal(gemm_result(res, M, N), matmul(x, w))
    assert res.cycles == s.expected_cycles()


def test_gemm_extreme_values():
    rng = np.random.default_rng(9)
    x = np.full((6, 12), -128, np.int8)
    w = np.full((12, 5), -128, np.int8)
    w[:, 1] = 127
    s, mems, _ = gemm_schedule(rng, 6, 12, 5, x=x, w=w)
    res = run_asm(s.text(), mems)
    assert res.ok and np.array_equal(gemm_result(res, 6, 5), matmul(x, w))


def test_weights_presented_after_the_deadline_are_not_taken():
    """The GEMM schedule presents weight row r exactly at its deadline (swap cycle + r - 1). With the LOADW
    (and its READ) two cycles later (the first cycle after the MATMUL's issue), every row misses its
    deadline: the swap takes the shadow's previous contents (zeros)."""
    rng = np.random.default_rng(10)
    M, R = 4, TINY.mxu_rows
    s, mems, (x, w) = gemm_schedule(rng, M, R, TINY.mxu_cols)
    ok = run_asm(s.text(), mems)
    assert np.array_equal(gemm_result(ok, M, TINY.mxu_cols), matmul(x, w))
    items = s.items
    (lc, lt), = [i for i in items["mxu"] if i[1].startswith("LOADW")]
    items["mxu"] = [i for i in items["mxu"] if not i[1].startswith("LOADW")] + [(lc + 2, lt)]
    items["mem0"] = [(c + 2, t) for c, t in items["mem0"]]
    late = run_asm(s.text(), mems)
    assert late.ok
    assert (gemm_result(late, M, TINY.mxu_cols) == 0).all()


# ---- VXU ---------------------------------------------------------------------------------------------
def test_gemm_requant_then_relu_through_the_vxu():
    """GEMM results → VXU requant (E2 → E3) → mem2; then mem2 → VXU relu westward (W1 → W2) → mem1."""
    rng = np.random.default_rng(11)
    M, K, N = 6, 10, 7
    mult, shift, zp = 1518500250, 9, 3
    s, mems, (x, w) = gemm_schedule(rng, M, K, N, vxu_ops=[("requant", (mult, shift, zp))])
    NT = -(-N // TINY.mxu_cols)
    last_store = max(c for c, t in s.items["mem2"]) + MEM_WRITE_LATENCY + M - 1
    r2 = last_store + 1 - MEM_DECODE_STAGES
    s.at("mem2", r2, f"READ bank=0 addr=0 count={NT * M} -> W1")
    v2 = r2 + MEM_READ_LATENCY + (POS["mem2"] - POS["vxu0"]) - VXU_INPUT_OFFSET
    s.at("vxu", v2, f"VOP relu W1 count={NT * M} -> W2")
    s.at("mem1", v2 + VXU_OUT + (POS["vxu0"] - POS["mem1"]) - MEM_WRITE_LATENCY,
         f"WRITE W2 bank=1 addr=0 count={NT * M}")
    res = run_asm(s.text(), mems)
    assert res.ok, res.error
    assert res.cycles == s.expected_cycles()
    acc = matmul(x, w)
    q = gvxu.requant(acc, mult, shift, zp)
    assert np.array_equal(gemm_result(res, M, N), q)
    assert np.unique(q).size > 20 and (q < 0).any() and (q > 0).any()     # the data exercise the rule
    out = res.read_mem("mem1", 1, 0, NT * M)
    y = np.concatenate([out[j * M:(j + 1) * M, :TINY.mxu_cols] for j in range(NT)], axis=1)[:, :N]
    assert np.array_equal(y, np.maximum(q, 0))


def vxu_program(op, n, binary=False, setq=None):
    """n vectors from mem1 (E1) (and mem0 on E0 for a binary op) through ``VOP op`` into mem2 bank 1."""
    s = Schedule()
    t0 = 2
    if setq:
        s.at("vxu", 0, "SETQ mult={} shift={} zp={}".format(*setq))
    v = t0 + MEM_READ_LATENCY + (POS["vxu0"] - POS["mem1"]) - VXU_INPUT_OFFSET
    s.at("mem1", t0, f"READ bank=0 addr=0 count={n} -> E1")
    if binary:
        s.at("mem0", v + VXU_INPUT_OFFSET - MEM_READ_LATENCY - (POS["vxu0"] - POS["mem0"]),
             f"READ bank=0 addr=0 count={n} -> E0")
    s.at("vxu", v, f"VOP {op} E1 {'E0 ' if binary else ''}count={n} -> E3")
    s.at("mem2", v + VXU_OUT + (POS["mem2"] - POS["vxu0"]) - MEM_WRITE_LATENCY, f"WRITE E3 bank=1 addr=0 count={n}")
    return s


@pytest.mark.parametrize("op", ["add", "mul", "max"])
def test_binary_vops(op):
    rng = np.random.default_rng(12)
    a = np.concatenate([vecs(rng, 6), [[2**31 - 1, -2**31, -1, 65536]]])
    b = np.concatenate([vecs(rng, 6), [[1, -1, -2**31, 65536]]])
    s = vxu_program(op, 7, binary=True)
    res = run_asm(s.text(), [("mem1", 0, 0, a), ("mem0", 0, 0, b)])
    assert res.ok and res.cycles == s.expected_cycles()
    assert res.read_mem("mem2", 1, 0, 7).tolist() == gvxu.execute(op, a, b).tolist()


def test_table_activation():
    rng = np.random.default_rng(13)
    L = TINY.lanes
    table = rng.integers(-128, 128, 256)
    timg = (table + 256 * rng.integers(-5, 5, 256)).reshape(-1, L)     # only the low byte counts
    x = np.concatenate([vecs(rng, 8), [[0, 255, -1, -128]], [[127, 128, -2**31, 2**31 - 1]]])
    s = Schedule()
    nv = lut_vectors(L)
    s.at("mem0", 0, f"READ bank=0 addr=0 count={nv} -> E0")
    ll = MEM_READ_LATENCY + (POS["vxu0"] - POS["mem0"]) - VXU_INPUT_OFFSET
    s.at("vxu", ll, "LOADLUT E0")
    v = ll + nv                                     # the alu is free again
    s.at("mem1", v + VXU_INPUT_OFFSET - MEM_READ_LATENCY - (POS["vxu0"] - POS["mem1"]),
         "READ bank=1 addr=0 count=10 -> E1")
    s.at("vxu", v, "VOP lut E1 count=10 -> E3")
    s.at("mem2", v + VXU_OUT + 1 - MEM_WRITE_LATENCY, "WRITE E3 bank=1 addr=0 count=10")
    res = run_asm(s.text(), [("mem0", 0, 0, timg), ("mem1", 1, 0, x)])
    assert res.ok and res.cycles == s.expected_cycles()
    t8 = gvxu.lut_table(timg)
    assert t8.tolist() == table.tolist()
    want = table[x & 0xFF]
    assert res.read_mem("mem2", 1, 0, 10).tolist() == want.tolist()


def test_argmax():
    x = np.array([[3, 9, 9, 1], [-7, -7, -7, -7], [-2**31, 5, 2**31 - 1, 2**31 - 1], [0, 0, 0, 1],
                  [5, -1, 4, 3]])
    s = vxu_program("argmax", len(x))
    res = run_asm(s.text(), [("mem1", 0, 0, x)])
    assert res.ok and res.cycles == s.expected_cycles()
    assert res.read_mem("mem2", 1, 0, 5).tolist() == [[1, 0, 0, 0], [0] * 4, [2, 0, 0, 0], [3, 0, 0, 0], [0] * 4]


def test_setq_is_in_force_from_the_next_sample():
    """A VOP sampling during the cycle a SETQ issues uses the old parameters; the next VOP the new ones."""
    x = [[3, -3, 1000, -1000]]
    pa, pv, po = POS["mem1"], POS["vxu0"], POS["mem2"]
    s = Schedule()
    s.at("vxu", 0, "SETQ mult=1073741824 shift=0 zp=0")
    v1 = 4
    sample1 = v1 + VXU_INPUT_OFFSET
    s.at("vxu", v1, "VOP requant E1 count=1 -> E3")
    s.at("vxu", sample1, "SETQ mult=1073741824 shift=1 zp=7")      # issues while the VOP samples
    v2 = sample1 + 2
    s.at("vxu", v2, "VOP requant E1 count=1 -> E3")
    for i, v in enumerate((v1, v2)):
        s.at("mem1", v + VXU_INPUT_OFFSET - MEM_READ_LATENCY - (pv - pa), "READ bank=0 addr=0 count=1 -> E1")
        s.at("mem2", v + VXU_OUT + (po - pv) - MEM_WRITE_LATENCY, f"WRITE E3 bank=0 addr={i} count=1")
    res = run_asm(s.text(), [("mem1", 0, 0, x)])
    assert res.ok, res.error
    assert res.cycles == s.expected_cycles()
    got = res.read_mem("mem2", 0, 0, 2).tolist()
    assert got[0] == gvxu.requant(x, 2**30, 0, 0)[0].tolist() == [2, -2, 127, -128]
    assert got[1] == gvxu.requant(x, 2**30, 1, 7)[0].tolist() == [8, 6, 127, -128]


# ---- API ---------------------------------------------------------------------------------------------
def test_api_misuse():
    sim = ChipSim(TINY)
    with pytest.raises(ValueError, match="not a MEM slice"):
        sim.write_mem("mxu", 0, 0, [[0] * 4])
    with pytest.raises(ValueError, match="shape"):
        sim.write_mem("mem0", 0, 0, [[0] * 3])
    with pytest.raises(ValueError, match="int32"):
        sim.write_mem("mem0", 0, 0, [[2**31, 0, 0, 0]])
    with pytest.raises(ValueError, match="addr"):
        sim.write_mem("mem0", 0, 63, [[0] * 4, [0] * 4])
    sim.load(assemble(".slice mxu\n NOP 100\n HALT\n", TINY))
    with pytest.raises(ChipTimeout):
        sim.run(max_cycles=50)
    with pytest.raises(ChipFault, match="already run"):
        sim.run()
    res = ChipSim(TINY).run(max_cycles=1)
    assert res.cycles == 1
