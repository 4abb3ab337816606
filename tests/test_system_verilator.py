"""The Verilator build of a system of chips (``sim.system_verilator``, ``sim.system_run``,
sim/hdl/system_harness.sv) against golden (``golden.system.SystemSim``): the system's cycles and error (code,
chip, slice, pc, cycle), every chip's cycles and error and every MEM word of every chip must agree, on 2, 3 and
4 chips in a line and in a ring, and with the host edges under back-pressure (valid/ready percentages below
100, different per chip). Also ``conveyor gen system`` and the -Wall lint of the system's Verilog.

Builds are the expensive part, so every model is one small configuration (``SYS``: link0 mem0 vxu0 mem1 link1,
2 lanes, 2+2 streams, 16-word banks, 32-word queues, VXU ``add`` only; each model its own link latency and
interval), built once per session (``_system``; concurrent xdist workers share a build through the build
lock of ``sim.verilator.build_harness``). Build and run seconds are printed per model (``-s``). Programs are
``tests.test_golden_system.Prog`` schedules (instructions at absolute cycles from the spec constants); random
data and random transfers come from the printed seeds.
"""
import functools
import json
import time

import numpy as np
import pytest

from golden.mxu import wrap_int32
from rtl.system import MAX_RTL_CHIPS, links_of
from sim.system_run import run_system
from sim.system_verilator import SystemSimulator, generate_system_verilog
from spec import isa
from spec.asm import assemble
from spec.config import PRESETS
from spec.isa import (
    LINK_RECV_OFFSET,
    LINK_SEND_OFFSET,
    MEM_READ_LATENCY,
    MEM_WRITE_LATENCY,
    VXU_INPUT_OFFSET,
    VXU_PIPELINE,
)
from tests.test_golden_system import Prog

SYS = PRESETS["tiny"].replace(name="sys", slices=("mem", "vxu", "mem"), lanes=2, streams=2, mem_depth=16,
                              queue_depth=32, vxu_ops=("add",), mxu_rows=2, mxu_cols=2,
                              mxu_acc_depth=4).with_links()
POS = {name: SYS.slice_index(name) for name in SYS.slice_names}     # link0 mem0 vxu0 mem1 link1
L = SYS.lanes
#: The models: (chips, topology) -> (link_latency, link_interval); each is one Verilator build.
MODELS = {(2, "line"): (6, 3), (2, "ring"): (1, 1), (3, "line"): (5, 2), (3, "ring"): (4, 3),
          (4, "line"): (2, 1), (4, "ring"): (3, 2)}
MODEL_IDS = [f"{n}{t}" for n, t in MODELS]


def config_of(n, topology):
    latency, interval = MODELS[(n, topology)]
    return SYS.replace(link_latency=latency, link_interval=interval)


@functools.cache
def _system(n, topology):
    """The model of ``n`` chips in ``topology``, built (or reused) once per process; prints its build time."""
    sim = SystemSimulator(config_of(n, topology), n, topology)
    t0 = time.perf_counter()
    sim.verilog()
    gen = time.perf_counter() - t0
    sim.build()
    print(f"model {n} {topology}: Verilog {gen:.1f} s, build {sim.last_build_seconds:.1f} s "
          f"({'reused' if sim.last_build_seconds == 0 else 'built'}) in {sim.build_dir()}")
    return sim


def run(n, topology, progs, mems=(), **kw):
    """``run_system`` of ``progs`` (a ``Prog`` or program list per chip) with ``mems`` (``(chip, slice, bank,
    addr, vectors)``) on the model of ``n`` chips in ``topology``; prints the run's seconds."""
    config = config_of(n, topology)
    programs = [p.programs() if hasattr(p, "programs") else p for p in progs]
    inputs = [[(s, b, a, v) for ch, s, b, a, v in mems if ch == c] for c in range(n)]
    sim = _system(n, topology)
    t0 = time.perf_counter()
    r = run_system(config, programs, inputs, chips=n, topology=topology, simulator=sim, **kw)
    seconds = time.perf_counter() - t0
    print(f"model {n} {topology}: run {seconds:.2f} s (simulator {r.play.sim_seconds:.2f} s, "
          f"{r.play.harness_cycles} harness cycles), system cycles {r.cycles}")
    return r


def rand(rng, n):
    return rng.integers(-2**31, 2**31, (n, L)).astype(np.int64)


def see(cycle, src, dst):
    """The cycle slice ``dst`` sees what slice ``src`` wrote during ``cycle`` (one slice per clock)."""
    return cycle + abs(POS[dst] - POS[src])


# ---- chips passing a vector along -----------------------------------------------------------------------
def pass_along(n, topology, seed):
    """Chip 0 READs x from its mem0 (bank 1 word 0) and SENDs it east; every other chip RECVs it at link0,
    adds its addend (mem0 bank 0 word 0, READ onto E1) in the VXU and SENDs the sum east; the last chip of a
    line WRITEs it into its mem1 bank 1 word 0, in a ring chip 0 takes it home there. Returns (progs, mems,
    expected sum, where it lands)."""
    config = config_of(n, topology)
    rng = np.random.default_rng(seed)
    x = rand(rng, 1)
    addends = [rand(rng, 1) for _ in range(n)]
    mems = [(0, "mem0", 1, 0, x)] + [(c, "mem0", 0, 0, addends[c]) for c in range(1, n)]
    t0 = 2
    p0 = Prog(config).at("mem0", t0, "READ bank=1 addr=0 count=1 -> E0")
    t_send = see(t0 + MEM_READ_LATENCY, "mem0", "link1") - LINK_SEND_OFFSET
    p0.at("link1", t_send, "SEND E0 count=1")
    arrival = t_send + isa.link_recv_delay(config) + LINK_RECV_OFFSET
    progs = [p0]
    for c in range(1, n):
        p = Prog(config).at("link0", arrival - LINK_RECV_OFFSET, "RECV count=1 -> E0")
        u = see(arrival, "link0", "vxu0")                           # the VOP's sampling cycle
        p.at("mem0", u - (POS["vxu0"] - POS["mem0"]) - MEM_READ_LATENCY, "READ bank=0 addr=0 count=1 -> E1")
        p.at("vxu0", u - VXU_INPUT_OFFSET, "VOP add E0 E1 count=1 -> E0")
        out = u + VXU_PIPELINE                                      # the sum is on E0 at vxu0
        if topology == "line" and c == n - 1:
            p.at("mem1", see(out, "vxu0", "mem1") - MEM_WRITE_LATENCY, "WRITE E0 bank=1 addr=0 count=1")
        else:
            t_send = see(out, "vxu0", "link1") - LINK_SEND_OFFSET
            p.at("link1", t_send, "SEND E0 count=1")
            arrival = t_send + isa.link_recv_delay(config) + LINK_RECV_OFFSET
        progs.append(p)
    if topology == "ring":
        p0.at("link0", arrival - LINK_RECV_OFFSET, "RECV count=1 -> E0")
        p0.at("mem1", see(arrival, "link0", "mem1") - MEM_WRITE_LATENCY, "WRITE E0 bank=1 addr=0 count=1")
    where = (0 if topology == "ring" else n - 1, "mem1", 1, 0)
    return progs, mems, wrap_int32(x + sum(addends[1:])), where


@pytest.mark.parametrize("n, topology", list(MODELS), ids=MODEL_IDS)
def test_chips_pass_a_vector_along(n, topology):
    seed = 10 * n + (topology == "ring")
    print(f"seed {seed}")
    progs, mems, want, (chip, name, bank, addr) = pass_along(n, topology, seed)
    r = run(n, topology, progs, mems)
    assert r.match, r.mismatch
    assert r.error is None and r.chip_errors == [None] * n
    assert r.mems[chip][name][bank, addr].tolist() == want[0].tolist()
    assert r.cycles == max(p.cycles() for p in progs) == max(r.chip_cycles)
    assert r.chip_cycles == [p.cycles() for p in progs]
    assert r.play.done_rises == 1 and r.play.start_cycle < r.play.done_cycle


def test_a_cocotb_clocked_build_runs_the_same():
    """``clock="gpi"``: a cocotb build (``cocotb_tests/tb_system.py``) gives the run of the native main: the
    same responses, system cycles and harness cycles."""
    progs, mems, want, (chip, name, bank, addr) = pass_along(2, "line", 20)
    config = config_of(2, "line")
    programs = [p.programs() for p in progs]
    inputs = [[(s, b, a, v) for ch, s, b, a, v in mems if ch == c] for c in range(2)]
    gpi = run_system(config, programs, inputs, chips=2, topology="line",
                     simulator=SystemSimulator(config, 2, "line", clock="gpi"))
    native = run(2, "line", progs, mems)
    assert gpi.match, gpi.mismatch
    assert gpi.mems[chip][name][bank, addr].tolist() == want[0].tolist()
    assert gpi.play.responses == native.play.responses
    assert (gpi.cycles, gpi.play.harness_cycles) == (native.cycles, native.play.harness_cycles)
    assert gpi.play.loop_seconds is not None          # tb_timing.json, written by play_timed


# ---- random transfers over any link of the topology ---------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("n, topology", list(MODELS), ids=MODEL_IDS)
def test_random_transfers(n, topology, seed):
    """A random directed link of the topology (east or west, the ring's closing link included), a random
    count of words READ from the sender's MEM, SENT, RECVd on time or one cycle off (RECV_EMPTY /
    LINK_DROPPED at the receiver) and WRITten into the receiver's MEM; random data."""
    seed = 1000 * n + 100 * (topology == "ring") + seed
    print(f"seed {seed}")
    config = config_of(n, topology)
    rng = np.random.default_rng(seed)
    (sc, se), (dc, de) = links_of(n, topology)[int(rng.integers(len(links_of(n, topology))))]
    iv = config.link_interval
    count = int(rng.integers(1, config.mem_depth // iv + 1))
    span = (count - 1) * iv + 1
    shift = int(rng.choice([0, 0, -1, 1]))
    t_read = int(rng.integers(0, 4))
    data = rand(rng, span)
    print(f"c{sc}.{se} -> c{dc}.{de}: latency {config.link_latency} interval {iv} count {count} shift {shift} "
          f"read at {t_read}")
    # east end: mem1 READs onto E0, link1 SENDs E0; west end: mem0 onto W0, link0 SENDs W0
    s_mem, s_link, s_stream = ("mem1", "link1", "E0") if se == "east" else ("mem0", "link0", "W0")
    r_mem, r_link, r_stream = ("mem0", "link0", "E0") if de == "west" else ("mem1", "link1", "W0")
    t_send = see(t_read + MEM_READ_LATENCY, s_mem, s_link) - LINK_SEND_OFFSET
    t_recv = t_send + isa.link_recv_delay(config) + shift
    t_write = see(t_recv + LINK_RECV_OFFSET, r_link, r_mem) - MEM_WRITE_LATENCY
    progs = [Prog(config) for _ in range(n)]
    progs[sc].at(s_mem, t_read, f"READ bank=0 addr=0 count={span} -> {s_stream}")
    progs[sc].at(s_link, t_send, f"SEND {s_stream} count={count}")
    progs[dc].at(r_link, t_recv, f"RECV count={count} -> {r_stream}")
    progs[dc].at(r_mem, t_write, f"WRITE {r_stream} bank=1 addr=0 count={span}")
    r = run(n, topology, progs, [(sc, s_mem, 0, 0, data)])
    assert r.match, r.mismatch
    arrival = t_send + LINK_SEND_OFFSET + config.link_latency      # the first word's arrival
    if shift == 0:
        assert r.error is None
        want = np.zeros((span, L), np.int64)
        want[::iv] = wrap_int32(data[::iv])
        assert r.mems[dc][r_mem][1, :span].tolist() == want.tolist()
    elif shift < 0:
        assert r.error == {"code": "RECV_EMPTY", "chip": dc, "slice": r_link, "pc": progs[dc].pc(r_link, 0),
                           "cycle": arrival - 1}
    else:
        assert {k: r.error[k] for k in ("code", "chip", "slice", "cycle")} == \
            {"code": "LINK_DROPPED", "chip": dc, "slice": r_link, "cycle": arrival}


# ---- faults ----------------------------------------------------------------------------------------------
def test_a_fault_stops_every_chip_and_ties_go_to_the_lowest_chip():
    """Chips 1 and 2 of a line of 3 fault (ILLEGAL_OPCODE) in the same cycle while chip 0 still runs: the
    system's error is chip 1's, every chip stops then, and each faulting chip reports its own error."""
    config = config_of(3, "line")
    bad = assemble(".slice mem1\n    NOP 4\n    .word 0x0\n", config)
    long = Prog(config).at("mem0", 20, "READ bank=0 addr=0 count=1 -> E0")
    r = run(3, "line", [long, bad, bad])
    assert r.match, r.mismatch
    assert r.error == {"code": "ILLEGAL_OPCODE", "chip": 1, "slice": "mem1", "pc": 1, "cycle": 4}
    assert r.cycles == 5 and r.chip_cycles == [5, 5, 5]
    assert r.chip_errors == [None] + [{"code": "ILLEGAL_OPCODE", "slice": "mem1", "pc": 1}] * 2


def test_links_that_lead_nowhere_and_a_word_to_a_done_chip():
    """A SEND at the outer west end of a line is LINK_DROPPED at its sample (chip 0, link0, its pc); a word
    sent to a chip that is already done is LINK_DROPPED there on arrival (chip 3 of a ring of 4)."""
    config = config_of(2, "line")
    t = 3
    p = Prog(config).at("link0", t, "SEND W0 count=1")
    r = run(2, "line", [p, Prog(config)])
    assert r.match, r.mismatch
    assert r.error == {"code": "LINK_DROPPED", "chip": 0, "slice": "link0", "pc": 1, "cycle": t + LINK_SEND_OFFSET}
    config = config_of(4, "ring")
    p2 = Prog(config).at("link1", t, "SEND E0 count=1")
    arrival = t + LINK_SEND_OFFSET + config.link_latency
    r = run(4, "ring", [Prog(config), Prog(config), p2, Prog(config)])
    assert r.match, r.mismatch
    assert {k: r.error[k] for k in ("code", "chip", "slice", "cycle")} == \
        {"code": "LINK_DROPPED", "chip": 3, "slice": "link0", "cycle": arrival}
    assert r.chip_cycles[3] < arrival and r.cycles == arrival + 1


# ---- the host edges under back-pressure ------------------------------------------------------------------
@pytest.mark.parametrize("n, topology", [(3, "line"), (4, "ring")], ids=["3line", "4ring"])
def test_host_edges_under_back_pressure(n, topology):
    """Every chip's host edge with its own valid/ready percentages (below 100, different per chip): the chips'
    STARTs arrive at different cycles, the system starts them together when the last arrives, and every
    result equals golden and the full-speed run; only the harness's own timing changes."""
    seed = 77 + n
    print(f"seed {seed}")
    progs, mems, want, (chip, name, bank, addr) = pass_along(n, topology, seed)
    fast = run(n, topology, progs, mems)
    valid, ready = [30, 95, 55, 80][:n], [40, 90, 99, 25][:n]
    slow = run(n, topology, progs, mems, seed=seed, valid_pct=valid, ready_pct=ready)
    other = run(n, topology, progs, mems, seed=seed + 1, valid_pct=valid, ready_pct=ready)
    for r in (fast, slow, other):
        assert r.match, r.mismatch
        assert r.mems[chip][name][bank, addr].tolist() == want[0].tolist()
        assert (r.cycles, r.chip_cycles, r.error) == (fast.cycles, fast.chip_cycles, None)
    # the slowest START (chip 0: 30 % valid) decides when the system starts; reading back is slower too
    assert slow.play.start_cycle > fast.play.start_cycle and slow.play.harness_cycles > fast.play.harness_cycles
    assert slow.play.done_cycle - slow.play.start_cycle == fast.play.done_cycle - fast.play.start_cycle
    assert slow.play.harness_cycles != other.play.harness_cycles      # the patterns follow the seed
    assert slow.play.commands_sent == fast.play.commands_sent


# ---- arguments ---------------------------------------------------------------------------------------------
def test_bad_arguments_are_refused_before_any_build(tmp_path):
    with pytest.raises(ValueError, match=f"chips must be an integer between 1 and {MAX_RTL_CHIPS}, not 9"):
        SystemSimulator(SYS, 9, build_root=tmp_path)
    with pytest.raises(ValueError, match="chips must be an integer between 1 and 8, not 0"):
        SystemSimulator(SYS, 0, build_root=tmp_path)
    with pytest.raises(ValueError, match="topology must be one of 'line', 'ring', not 'mesh'"):
        SystemSimulator(SYS, 2, "mesh", build_root=tmp_path)
    with pytest.raises(ValueError, match="needs a link slice at both ends of config tiny"):
        SystemSimulator(PRESETS["tiny"], 2, build_root=tmp_path)
    with pytest.raises(ValueError, match="model-only"):
        SystemSimulator(PRESETS["tsp"].with_links(), 2, build_root=tmp_path)
    sim = SystemSimulator(SYS, 2, build_root=tmp_path)
    with pytest.raises(ValueError, match="this system has 2 chips: give 2 command lists and 2 response counts, "
                                         "not 1 and 1"):
        sim.play([[1]], [0])
    with pytest.raises(ValueError, match="valid_pct must be an integer between 1 and 100, not 0"):
        sim.play([[], []], [0, 0], valid_pct=0)
    with pytest.raises(ValueError, match=r"ready_pct must be an integer or 2 integers \(one per chip\), not 3"):
        sim.play([[], []], [0, 0], ready_pct=[50, 50, 50])
    with pytest.raises(ValueError, match="chip 1: op 7"):
        sim.play([[], [7]], [0, 0])
    assert not any(tmp_path.iterdir())          # nothing was built
    with pytest.raises(ValueError, match="one program list per chip"):
        run_system(SYS, [[]], chips=2, simulator=sim)


# ---- conveyor gen system, lint -------------------------------------------------------------------------
def test_gen_system_writes_verilog(tmp_path, capsys):
    from cli.main import SYSTEM_MAX_CHIPS, main
    assert SYSTEM_MAX_CHIPS == MAX_RTL_CHIPS
    base = SYS.replace(name="sys", slices=("mem", "vxu", "mem"))           # no link slices: gen adds them
    cfg = tmp_path / "sys.json"
    cfg.write_text(json.dumps(base.to_dict()))
    out = tmp_path / "out"
    assert main(["gen", "system", "--chips", "3", "--topology", "ring", "--config", str(cfg), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "has no link slices: using sys_link" in text and "module system_sys_link_3_ring" in text
    v = (out / "system_sys_link_3_ring.v").read_text()
    assert "module system_sys_link_3_ring(" in v and "cmd2__payload" in v and "cmd3__payload" not in v
    from spec.config import ChipConfig
    assert ChipConfig.from_dict(json.loads((out / "system_sys_link_3_ring.json").read_text())) == base.with_links()
    for argv, msg in [(["--chips", "9"], "argument --chips: must be an integer between 1 and 8, not 9"),
                      (["--chips", "0"], "argument --chips: must be an integer between 1 and 8, not 0"),
                      (["--topology", "mesh"], "argument --topology: must be one of line, ring, not 'mesh'"),
                      (["--config", "tsp"], "config 'tsp' is model-only")]:
        assert main(["gen", "system", *argv, "-o", str(tmp_path / "bad")]) == 2
        assert msg in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("n, topology", [(2, "ring"), (3, "line")], ids=["2ring", "3line"])
def test_system_verilog_is_lint_clean(n, topology, tmp_path):
    """``verilator --lint-only -Wall`` with the generated-Verilog waivers of rtl/lint_waivers.vlt (each with its
    reason there; nothing added for the system) finds nothing. The configuration is ``tiny`` with links and
    16-word banks (every VXU operation: see the next test for why not ``SYS``)."""
    from verify.lint import lint_verilog
    config = PRESETS["tiny"].with_links().replace(mem_depth=16)
    path = tmp_path / "system.v"
    path.write_text(generate_system_verilog(config, n, topology))
    ok, messages = lint_verilog(path, top="system")
    assert ok, "\n".join(messages[:20])


def test_a_vxu_without_lut_is_lint_clean(tmp_path):
    """``SYS``'s VXU has ``add`` only: no LUT, so no zero-width wire for its bytes (once an ASCRANGE warning)."""
    from verify.lint import lint_verilog
    path = tmp_path / "system.v"
    path.write_text(generate_system_verilog(config_of(2, "line"), 2, "line"))
    ok, messages = lint_verilog(path, top="system")
    assert ok, "\n".join(messages[:20])
