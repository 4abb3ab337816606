"""The host edge (rtl/host.py) in Amaranth's simulator, against a fake chip core, and the golden host model.

The fake core (``_Harness``): a Python dict memory per MEM slice answering ``mem_rdata`` with the
RegisteredRAM's timing (the word at the bank/address presented during cycle ``n`` as stored before the
writes ending ``n``, on ``mem_rdata`` during ``n + 2``; every cycle, whether or not ``mem_re`` is set, as the
real read port does; non-MEM entries carry random garbage), a record of every queue load and MEM write, and
a fake run after every ``start``: ``running`` for ``N`` cycles, then ``done`` with ``cycles = N`` and random
error fields.
"""
import random

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from golden.host import HostCommand, HostModel, pack_vector, unpack_vector
from rtl.host import RESPONSE_DEPTH, HostEdge, host_command_layout, host_response_layout
from spec import isa
from spec.config import PRESETS
from spec.host import (
    COMMAND_FIELDS,
    STATUS_FIELDS,
    HostOp,
    command_bits,
    data_bits,
    pack_command,
    pack_status,
    unpack_command,
    unpack_status,
)

TINY = PRESETS["tiny"]     # slices mem, mem, mxu, vxu, mem; 2 banks x 64 words; L = 4
V = 32 * TINY.lanes
P = len(TINY.slices)
MEMS = TINY.positions("mem")
SEEDS = range(100)


# ---- a reference of the edge + fake core at the command level ---------------------------------------------
def expect(config, cmds, runs):
    """(responses, queue loads, mem writes) the edge must produce for ``cmds`` (dicts) with fake ``runs``."""
    mem = {}
    status = 0
    runs = list(runs)
    resps, loads, writes = [], [], []
    V = 32 * config.lanes
    for c in cmds:
        op, s, bank, addr, d = c["op"], c["slice"], c["bank"], c["addr"], c["data"]
        mem_ok = s < len(config.slices) and config.slices[s] == "mem" and bank < config.mem_banks \
            and addr < config.mem_depth
        if op == HostOp.WRITE_QUEUE and s < len(config.slices) and addr < config.queue_depth:
            loads.append((s, addr, d & (1 << 64) - 1))
        elif op == HostOp.WRITE_MEM and mem_ok:
            writes.append((s, bank, addr, d & (1 << V) - 1))
            mem[s, bank, addr] = d & (1 << V) - 1
        elif op == HostOp.READ_MEM:
            resps.append(mem.get((s, bank, addr), 0) if mem_ok else 0)
        elif op == HostOp.START:
            n, fields = runs.pop(0)
            status = pack_status(done=1, cycles=n, **fields)
        elif op == HostOp.STATUS:
            resps.append(status)
    return resps, loads, writes


# ---- the simulation harness -------------------------------------------------------------------------------
class _Harness:
    """Drive ``cmds`` (packed ints) into a ``HostEdge`` with a fake core; record everything."""

    def __init__(self, config, cmds, runs, seed, idle_p=0.0, ready=lambda n, rng: True, garbage=True):
        self.config, self.cmds, self.runs, self.seed = config, list(cmds), list(runs), seed
        self.idle_p, self.ready, self.garbage = idle_p, ready, garbage
        self.accepted = []          # (command index, cycle)
        self.resps = []             # (cycle, data)
        self.loads, self.writes, self.reads, self.starts = [], [], [], []
        self.violations = []
        self.run_cycles = set()     # cycles in which `running` or `start` was high

    def run(self, n_resps, limit=5000, tail=12):
        dut = HostEdge(self.config)
        cfg = self.config
        P = len(cfg.slices)
        V = 32 * cfg.lanes
        rng = random.Random(self.seed * 7919 + 1)
        mems = {p: {} for p in cfg.positions("mem")}

        async def bench(ctx):
            n, i, presenting = 0, 0, False
            rdata_at = {}            # cycle -> {p: word}
            run = None               # (first, last, n, fields)
            status = dict(done=0, err=0, err_code=0, err_slice=0, err_pc=0, cycles=0)
            done_at = None
            while n < limit:
                # ---- the core: what the edge's registers show during cycle n ----
                qen, we, re = ctx.get(dut.q_load_en), ctx.get(dut.mem_we), ctx.get(dut.mem_re)
                start = ctx.get(dut.start)
                bank, addr = ctx.get(dut.mem_bank), ctx.get(dut.mem_addr)
                for name, v in (("q_load_en", qen), ("mem_we", we), ("mem_re", re)):
                    if v & (v - 1):
                        self.violations.append(f"cycle {n}: {name} = {v:#b} is not one-hot")
                if qen:
                    self.loads.append((qen.bit_length() - 1, ctx.get(dut.q_load_addr), ctx.get(dut.q_load_word)))
                if re:
                    self.reads.append((re.bit_length() - 1, bank, addr))
                if (we | re) & ~sum(1 << p for p in mems):
                    self.violations.append(f"cycle {n}: mem_we/mem_re {we:#b}/{re:#b} name a non-MEM slice")
                if we and re:
                    self.violations.append(f"cycle {n}: mem_we and mem_re together")
                # the read port reads every cycle: the word as stored before this cycle's writes
                rdata_at[n + 2] = {p: m.get((bank, addr), 0) for p, m in mems.items()}
                if we:
                    p = we.bit_length() - 1
                    w = ctx.get(dut.mem_wdata)
                    self.writes.append((p, bank, addr, w))
                    if p in mems:
                        mems[p][bank, addr] = w
                words = rdata_at.pop(n, {})
                packed = 0
                for p in range(P):
                    w = words.get(p, 0) if p in mems else (rng.getrandbits(V) if self.garbage else 0)
                    packed |= w << (V * p)
                ctx.set(dut.mem_rdata.as_value(), packed)
                if start:
                    self.starts.append(n)
                    if run is not None or not self.runs:
                        self.violations.append(f"cycle {n}: unexpected start")
                    else:
                        length, fields = self.runs.pop(0)
                        run = (n + 1, n + length, length, fields)
                        status["done"] = 0
                running = run is not None and run[0] <= n <= run[1]
                if run is not None and n > run[1]:
                    _, _, length, f = run
                    status = dict(done=1, err=f["error"], err_code=f["code"], err_slice=f["slice"],
                                  err_pc=f["pc"], cycles=length)
                    run = None
                ctx.set(dut.running, running)
                for name, v in status.items():
                    ctx.set(getattr(dut, name), v)
                if running or start:
                    self.run_cycles.add(n)
                # ---- the host: commands and back-pressure ----
                if not presenting and i < len(self.cmds) and rng.random() >= self.idle_p:
                    presenting = True
                if presenting:
                    ctx.set(dut.cmd.valid, 1)
                    ctx.set(dut.cmd.payload.as_value(), self.cmds[i])
                else:
                    ctx.set(dut.cmd.valid, 0)
                    if self.garbage:   # with valid low the payload means nothing
                        ctx.set(dut.cmd.payload.as_value(), rng.getrandbits(command_bits(cfg)))
                rready = bool(self.ready(n, rng))
                ctx.set(dut.resp.ready, rready)
                cready = ctx.get(dut.cmd.ready)
                if cready and (running or start):
                    self.violations.append(f"cycle {n}: cmd.ready high while running={running} start={start}")
                if presenting and cready:
                    self.accepted.append((i, n))
                    i += 1
                    presenting = False
                if ctx.get(dut.resp.valid) and rready:
                    self.resps.append((n, ctx.get(dut.resp.payload.data)))
                await ctx.tick()
                n += 1
                finished = i == len(self.cmds) and len(self.resps) >= n_resps and run is None
                if finished and done_at is None:
                    done_at = n
                if done_at is not None and n >= done_at + tail:
                    break
            self.cycles = n
            self.timed_out = done_at is None

        sim = Simulator(dut)
        sim.add_clock(1e-8)
        sim.add_testbench(bench)
        sim.run()
        return self


# ---- random stimulus --------------------------------------------------------------------------------------
def random_commands(config, rng, n):
    """``n`` random commands (dicts), mostly valid, with wrong-kind and out-of-range slices, banks and
    addresses, START and STATUS; and one fake run per START."""
    P = len(config.slices)
    mems = config.positions("mem")
    V = 32 * config.lanes
    hot = [(rng.choice(mems), rng.randrange(config.mem_banks), rng.randrange(config.mem_depth)) for _ in range(4)]

    def mem_target():
        r = rng.random()
        if r < 0.6:
            return rng.choice(hot)
        if r < 0.75:
            return (rng.choice(mems), rng.randrange(config.mem_banks), rng.randrange(config.mem_depth))
        return (rng.choice([rng.randrange(P), rng.randrange(P, 256)]),
                rng.randrange(16), rng.choice([rng.randrange(config.mem_depth), rng.randrange(1 << 16)]))

    cmds, runs = [], []
    for _ in range(n):
        op = rng.choices([HostOp.WRITE_QUEUE, HostOp.WRITE_MEM, HostOp.READ_MEM, HostOp.START, HostOp.STATUS,
                          0, 6, 7], [14, 25, 35, 4, 12, 2, 2, 2])[0]
        c = dict(op=int(op), slice=0, bank=0, addr=0, data=0)
        if op == HostOp.WRITE_QUEUE:
            c.update(slice=rng.choice([rng.randrange(P)] * 5 + [rng.randrange(256)]),
                     addr=rng.choice([rng.randrange(config.queue_depth)] * 5 + [rng.randrange(1 << 16)]),
                     data=rng.getrandbits(data_bits(config)))
        elif op in (HostOp.WRITE_MEM, HostOp.READ_MEM):
            s, b, a = mem_target()
            c.update(slice=s, bank=b, addr=a, data=rng.getrandbits(V) if op == HostOp.WRITE_MEM
                     else rng.getrandbits(data_bits(config)))
        elif op == HostOp.START:
            runs.append((rng.randint(1, 8), dict(error=rng.randrange(2), code=rng.randrange(16),
                                                 slice=rng.randrange(256), pc=rng.randrange(1 << 17))))
        else:   # STATUS and the unused opcodes: random fields that must not matter
            c.update(slice=rng.randrange(256), bank=rng.randrange(16), addr=rng.randrange(1 << 16),
                     data=rng.getrandbits(data_bits(config)))
        cmds.append(c)
    return cmds, runs


def _ready_pattern(seed):
    """The ``resp.ready`` pattern of a seed: always, never for a while, bursts, or a random probability."""
    kind = seed % 6
    if kind == 0:
        return "always", lambda n, rng: True
    if kind == 1:
        return "0% for 80 cycles, then 100%", lambda n, rng: n >= 80
    if kind == 2:
        return "bursts", lambda n, rng: (n // 7) % 3 == 2
    p = [0.8, 0.4, 0.1][kind - 3]
    return f"{p:.0%}", lambda n, rng: rng.random() < p


def _check(h, cmds, runs, what):
    want_resps, want_loads, want_writes = expect(h.config, cmds, runs)
    assert not h.timed_out, f"{what}: not finished within {h.cycles} cycles (accepted {len(h.accepted)} of " \
                            f"{len(cmds)}, {len(h.resps)} of {len(want_resps)} responses)"
    assert not h.violations, f"{what}: {h.violations[:5]}"
    assert [i for i, _ in h.accepted] == list(range(len(cmds))), f"{what}: commands accepted out of order"
    got = [d for _, d in h.resps]
    assert len(got) == len(want_resps), f"{what}: {len(got)} responses, want {len(want_resps)}"
    for k, (g, w) in enumerate(zip(got, want_resps)):
        assert g == w, f"{what}: response {k} is {g:#x}, want {w:#x}"
    assert h.loads == want_loads, f"{what}: queue loads {h.loads} != {want_loads}"
    assert h.writes == want_writes, f"{what}: mem writes {h.writes} != {want_writes}"
    assert len(h.starts) == len(runs), f"{what}: {len(h.starts)} start pulses, want {len(runs)}"
    # nothing is accepted while a run is going (the start pulse included)
    bad = [(i, n) for i, n in h.accepted if n in h.run_cycles]
    assert not bad, f"{what}: commands accepted during a run: {bad[:5]}"


# ---- tests ------------------------------------------------------------------------------------------------
def test_layouts_match_spec():
    lay = host_command_layout(TINY)
    assert [(n, f.shape.width) for n, f in lay] == [*COMMAND_FIELDS, ("data", data_bits(TINY))]
    assert lay.size == command_bits(TINY)
    assert host_response_layout(TINY).size == data_bits(TINY)
    one = PRESETS["tiny"].replace(lanes=1, mxu_rows=1, mxu_cols=1)
    assert host_command_layout(one)["data"].shape.width == 64
    dut = HostEdge(TINY)
    Fragment.get(dut, None)
    assert set(dut.signature.members) == {
        "cmd", "resp", "q_load_en", "q_load_addr", "q_load_word", "mem_we", "mem_re", "mem_bank", "mem_addr",
        "mem_wdata", "mem_rdata", "start", "running", "done", "err", "err_code", "err_slice", "err_pc", "cycles"}
    widths = {"q_load_en": P, "q_load_addr": 16, "q_load_word": 64, "mem_we": P, "mem_re": P, "mem_bank": 4,
              "mem_addr": 16, "mem_wdata": V, "start": 1, "running": 1, "done": 1, "err": 1, "err_code": 4,
              "err_slice": 8, "err_pc": 17, "cycles": 32}
    for name, w in widths.items():
        assert len(getattr(dut, name)) == w, name
    assert len(dut.mem_rdata.as_value()) == V * P
    assert sum(b for _, b in STATUS_FIELDS) <= data_bits(TINY)


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_elaborates(preset):
    rtlil.convert(HostEdge(PRESETS[preset]))


def test_unpack_command_inverts_pack_command():
    rng = random.Random(3)
    for _ in range(50):
        f = dict(op=rng.randrange(8), slice=rng.randrange(256), bank=rng.randrange(16), addr=rng.randrange(1 << 16),
                 data=rng.getrandbits(data_bits(TINY)))
        assert unpack_command(TINY, pack_command(TINY, **f)) == f
    s = dict(done=1, error=1, code=9, slice=200, pc=(1 << 17) - 1, cycles=123456)
    assert unpack_status(pack_status(**s)) == s


@pytest.mark.parametrize("seed", SEEDS)
def test_random_commands_and_backpressure(seed):
    rng = random.Random(seed)
    cmds, runs = random_commands(TINY, rng, rng.randint(30, 60))
    idle_p = [0.0, 0.0, 0.2, 0.5, 0.8][seed // 6 % 5]
    pattern, ready = _ready_pattern(seed)
    packed = [pack_command(TINY, **c) for c in cmds]
    want = expect(TINY, cmds, runs)[0]
    h = _Harness(TINY, packed, runs, seed, idle_p=idle_p, ready=ready).run(len(want))
    _check(h, cmds, runs, f"seed {seed} (cmd idle {idle_p:.0%}, resp.ready {pattern})")


def test_full_throughput_one_command_per_cycle():
    """Always valid, always ready: one command per cycle, back-to-back READ_MEMs included."""
    rng = random.Random(11)
    cmds = []
    for k in range(60):
        s, b, a = rng.choice(MEMS), rng.randrange(2), rng.randrange(4)
        op = [HostOp.WRITE_MEM, HostOp.READ_MEM, HostOp.READ_MEM, HostOp.STATUS, HostOp.WRITE_QUEUE][k % 5] \
            if k < 30 else HostOp.READ_MEM
        cmds.append(dict(op=int(op), slice=s, bank=b, addr=a, data=rng.getrandbits(V)))
    want = expect(TINY, cmds, [])[0]
    h = _Harness(TINY, [pack_command(TINY, **c) for c in cmds], [], 0).run(len(want))
    _check(h, cmds, [], "full throughput")
    assert [n for _, n in h.accepted] == list(range(len(cmds)))
    # and responses leave at one per cycle, 5 cycles after their command
    read_cycles = [n for (i, n) in h.accepted if cmds[i]["op"] in (HostOp.READ_MEM, HostOp.STATUS)]
    assert [n for n, _ in h.resps] == [n + 5 for n in read_cycles]


def test_start_waits_and_blocks_until_run_ends():
    """START right after reads waits for them; the next command waits for the run to end."""
    s = MEMS[0]
    cmds = [dict(op=HostOp.WRITE_MEM, slice=s, bank=1, addr=3, data=0x1234),
            dict(op=HostOp.READ_MEM, slice=s, bank=1, addr=3, data=0),
            dict(op=HostOp.START, slice=0, bank=0, addr=0, data=0),
            dict(op=HostOp.STATUS, slice=0, bank=0, addr=0, data=0),
            dict(op=HostOp.READ_MEM, slice=s, bank=1, addr=3, data=0)]
    runs = [(20, dict(error=1, code=4, slice=3, pc=77))]
    want = expect(TINY, cmds, runs)[0]
    h = _Harness(TINY, [pack_command(TINY, **c) for c in cmds], runs, 0).run(len(want))
    _check(h, cmds, runs, "start")
    t = [n for _, n in h.accepted]
    assert t[:2] == [0, 1]
    assert t[2] == t[1] + 3                # the READ_MEM's word is taken 3 cycles after it was accepted
    assert h.starts == [t[2] + 1]
    assert t[3] == h.starts[0] + 20 + 1    # running during start+1 .. start+20
    assert unpack_status([d for _, d in h.resps][1]) == dict(done=1, error=1, code=4, slice=3, pc=77, cycles=20)


def test_wrong_kind_and_out_of_range_are_ignored_but_answered():
    mxu, vxu = TINY.positions("mxu")[0], TINY.positions("vxu")[0]
    s = MEMS[-1]
    bad = [(mxu, 0, 0), (vxu, 1, 5), (P, 0, 0), (255, 0, 0), (s, TINY.mem_banks, 0), (s, 15, 1),
           (s, 0, TINY.mem_depth), (s, 1, (1 << 16) - 1)]
    cmds = [dict(op=HostOp.WRITE_MEM, slice=t, bank=b, addr=a, data=0xABCD) for t, b, a in bad]
    cmds += [dict(op=HostOp.WRITE_MEM, slice=s, bank=0, addr=0, data=0x55)]
    cmds += [dict(op=HostOp.READ_MEM, slice=t, bank=b, addr=a, data=0) for t, b, a in bad]
    cmds += [dict(op=HostOp.READ_MEM, slice=s, bank=0, addr=0, data=0)]
    cmds += [dict(op=HostOp.WRITE_QUEUE, slice=P, addr=0, bank=0, data=1),
             dict(op=HostOp.WRITE_QUEUE, slice=255, addr=0, bank=0, data=2),
             dict(op=HostOp.WRITE_QUEUE, slice=0, addr=TINY.queue_depth, bank=0, data=3),
             dict(op=HostOp.WRITE_QUEUE, slice=vxu, addr=TINY.queue_depth - 1, bank=0, data=4)]
    cmds += [dict(op=op, slice=s, bank=0, addr=0, data=5) for op in (0, 6, 7)]
    for c in cmds:
        c["op"] = int(c["op"])
    want = expect(TINY, cmds, [])[0]
    assert want == [0] * len(bad) + [0x55]
    for seed, idle_p in ((1, 0.0), (2, 0.5)):
        h = _Harness(TINY, [pack_command(TINY, **c) for c in cmds], [], seed, idle_p=idle_p,
                     ready=lambda n, rng: rng.random() < 0.5).run(len(want))
        _check(h, cmds, [], f"wrong kind / out of range, seed {seed}")
        assert h.writes == [(s, 0, 0, 0x55)] and h.reads == [(s, 0, 0)]
        assert h.loads == [(vxu, TINY.queue_depth - 1, 4)]


def test_response_fifo_never_overflows_without_consumer():
    """With resp.ready low, at most RESPONSE_DEPTH responding commands are taken; writes still flow."""
    s = MEMS[0]
    cmds = [dict(op=HostOp.READ_MEM, slice=s, bank=0, addr=0, data=0)] * (RESPONSE_DEPTH + 3) + \
        [dict(op=HostOp.WRITE_MEM, slice=s, bank=0, addr=0, data=9)]
    want = expect(TINY, cmds, [])[0]
    h = _Harness(TINY, [pack_command(TINY, **c) for c in cmds], [], 0,
                 ready=lambda n, rng: n >= 40).run(len(want))
    _check(h, cmds, [], "no consumer")
    assert [n for _, n in h.accepted][:RESPONSE_DEPTH] == list(range(RESPONSE_DEPTH))
    assert h.accepted[RESPONSE_DEPTH][1] >= 40


@pytest.mark.parametrize("seed", range(4))
def test_rtl_matches_golden_host_model(seed):
    """Without START, the edge + fake core answers exactly as golden.host.HostModel does."""
    rng = random.Random(1000 + seed)
    cmds, runs = random_commands(TINY, rng, 50)
    cmds = [c for c in cmds if c["op"] != HostOp.START]
    packed = [pack_command(TINY, **c) for c in cmds]
    want = HostModel(TINY).apply(packed)
    assert want == expect(TINY, cmds, [])[0]
    h = _Harness(TINY, packed, [], seed, idle_p=0.3, ready=lambda n, rng: rng.random() < 0.6).run(len(want))
    assert [d for _, d in h.resps] == want, f"seed {1000 + seed}"


# ---- the golden host model ----------------------------------------------------------------------------------
def _w(text):
    return isa.encode(isa.Instruction(*text)) if isinstance(text, tuple) else isa.encode(isa.Instruction(text))


def test_golden_host_model_runs_and_reports():
    c = TINY
    halt = _w("HALT")
    host = HostModel(c)
    s = MEMS[0]
    cmds = [HostCommand(HostOp.STATUS),
            HostCommand(HostOp.WRITE_MEM, s, 1, 5, [1, -2, 3, -4]),
            HostCommand(HostOp.READ_MEM, s, 1, 5),
            HostCommand(HostOp.READ_MEM, 2, 0, 0)]
    cmds += [HostCommand(HostOp.WRITE_QUEUE, p, 0, 0, halt) for p in range(P)]
    cmds += [HostCommand(HostOp.START), HostCommand(HostOp.STATUS),
             dict(op=HostOp.WRITE_QUEUE, slice=3, addr=0, data=0),        # an illegal word on the VXU
             HostCommand(HostOp.START), HostCommand(HostOp.STATUS),
             HostCommand(HostOp.READ_MEM, s, 1, 5)]
    r = host.apply(cmds)
    assert r[0] == 0
    assert r[1] == pack_vector([1, -2, 3, -4]) and list(unpack_vector(r[1], 4)) == [1, -2, 3, -4]
    assert r[2] == 0
    assert unpack_status(r[3]) == dict(done=1, error=0, code=0, slice=0, pc=0, cycles=1)
    assert unpack_status(r[4]) == dict(done=1, error=1, code=int(isa.ErrorCode.ILLEGAL_OPCODE), slice=3, pc=0,
                                       cycles=1)
    assert r[5] == r[1]      # memory carried across runs
    # the packed form gives the same answers
    packed = [pack_command(c, **(x if isinstance(x, dict) else x._asdict())) for x in cmds]
    assert HostModel(c).apply(packed) == r


def test_golden_host_model_queue_length_rule():
    """Writing word a makes the program a + 1 words long; words below keep what was written."""
    c = TINY
    host = HostModel(c)
    host.apply([HostCommand(HostOp.WRITE_QUEUE, 0, 0, 2, 7), HostCommand(HostOp.WRITE_QUEUE, 0, 0, 0, 5),
                HostCommand(HostOp.WRITE_QUEUE, 0, 0, 3, 9), HostCommand(HostOp.WRITE_QUEUE, 1, 0, c.queue_depth, 1),
                HostCommand(HostOp.WRITE_QUEUE, 200, 0, 0, 1)])
    assert host.programs[0] == [5, 0, 7, 9]
    assert host.programs[1:] == [[]] * (P - 1)
