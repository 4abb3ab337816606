"""Property: the host edge (``rtl.host.HostEdge``, preset ``tiny``) in Verilator through pyverilator, with a
fake chip core, answers host commands as ``golden.host.HostModel`` does, under any pattern of ``cmd.valid``
and ``resp.ready``.

The fake core is the one of ``tests/test_host_rtl.py`` (``_Harness``), driven cycle by cycle here: a dict
memory per MEM slice answering ``mem_rdata`` with the RAM's two-cycle latency (non-MEM entries carry
garbage), a record of queue loads and MEM writes, and after each ``start`` a fake run (``running`` for
``N`` cycles, then ``done`` with ``cycles = N`` and the run's error fields). Commands are drawn by
hypothesis (mostly MEM commands on a few hot words, wrong-kind and out-of-range slices/banks/addresses,
STATUS, queue writes, the unused opcodes), and so are the host's idle cycles and the consumer's stalls.

* without START: the responses must equal ``HostModel(tiny).apply(commands)``, and everything else
  (queue loads, MEM writes, one-hot strobes, order, nothing accepted during a run) must hold as
  ``tests.test_host_rtl._check`` checks it against its reference ``expect``;
* with START and fake runs: ``_check`` (``HostModel`` would run the golden chip on START, the fake core
  does not).

A failure names the first differing response (its index, value and the expected one) or the violated rule.
"""
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from golden.host import HostModel
from spec.config import PRESETS
from spec.host import HostOp, command_bits, data_bits, pack_command
from tests.props import PROPS, unit_sim
from tests.test_host_rtl import _check, expect

CONFIG = PRESETS["tiny"]
P = len(CONFIG.slices)
V = 32 * CONFIG.lanes
MEMS = CONFIG.positions("mem")
MAX_COMMANDS = 12
LIMIT = 600          # cycles: far more than 12 commands need, even with every stall and run
TAIL = 12


def host_sim():
    from rtl.host import HostEdge

    return unit_sim(("host", CONFIG), lambda: HostEdge(CONFIG), f"host_{CONFIG.name}")


def _garbage(n, p, bits):
    """Fixed garbage for cycle ``n``, slice ``p`` (``bits`` wide): what must never be looked at."""
    x = (n * 0x9E3779B97F4A7C15 + p * 0xBF58476D1CE4E5B9 + 1) & ((1 << 64) - 1)
    x = (x ^ (x >> 29)) * 0x94D049BB133111EB & ((1 << 64) - 1)
    return (x | x << 64 | x << 128 | x << 192) & ((1 << bits) - 1)


def run_host(sim, cmds, runs, idle, stall):
    """Drive ``cmds`` (packed ints) through the edge with the fake core; ``idle[n % len]``: the host
    presents nothing new in cycle ``n``; ``stall[n % len]``: ``resp.ready`` low in cycle ``n`` (both only
    before cycle 60, so everything is presented and drains). Returns what ``tests.test_host_rtl._check``
    reads."""
    cfg = CONFIG
    h = SimpleNamespace(config=cfg, accepted=[], resps=[], loads=[], writes=[], reads=[], starts=[],
                        violations=[], run_cycles=set(), cycles=0, timed_out=True)
    runs = list(runs)
    n_resps = len(expect(cfg, [_unpack(c) for c in cmds], list(runs))[0])
    mems = {p: {} for p in MEMS}
    mem_mask = sum(1 << p for p in MEMS)
    sim.fresh()
    n, i, presenting = 0, 0, False
    rdata_at, run, done_at = {}, None, None
    status = dict(done=0, err=0, err_code=0, err_slice=0, err_pc=0, cycles=0)
    while n < LIMIT:
        # ---- the core: what the edge's registers show during cycle n ----
        qen, we, re = sim["q_load_en"], sim["mem_we"], sim["mem_re"]
        start = sim["start"]
        bank, addr = sim["mem_bank"], sim["mem_addr"]
        for name, v in (("q_load_en", qen), ("mem_we", we), ("mem_re", re)):
            if v & (v - 1):
                h.violations.append(f"cycle {n}: {name} = {v:#b} is not one-hot")
        if qen:
            h.loads.append((qen.bit_length() - 1, sim["q_load_addr"], sim["q_load_word"]))
        if re:
            h.reads.append((re.bit_length() - 1, bank, addr))
        if (we | re) & ~mem_mask:
            h.violations.append(f"cycle {n}: mem_we/mem_re {we:#b}/{re:#b} name a non-MEM slice")
        if we and re:
            h.violations.append(f"cycle {n}: mem_we and mem_re together")
        rdata_at[n + 2] = {p: m.get((bank, addr), 0) for p, m in mems.items()}
        if we:
            p = we.bit_length() - 1
            w = sim["mem_wdata"]
            h.writes.append((p, bank, addr, w))
            if p in mems:
                mems[p][bank, addr] = w
        words = rdata_at.pop(n, {})
        packed = 0
        for p in range(P):
            packed |= (words.get(p, 0) if p in mems else _garbage(n, p, V)) << (V * p)
        sim["mem_rdata"] = packed
        if start:
            h.starts.append(n)
            if run is not None or not runs:
                h.violations.append(f"cycle {n}: unexpected start")
            else:
                length, fields = runs.pop(0)
                run = (n + 1, n + length, length, fields)
                status["done"] = 0
        running = run is not None and run[0] <= n <= run[1]
        if run is not None and n > run[1]:
            _, _, length, f = run
            status = dict(done=1, err=f["error"], err_code=f["code"], err_slice=f["slice"], err_pc=f["pc"],
                          cycles=length)
            run = None
        sim["running"] = running
        sim.set(**status)
        if running or start:
            h.run_cycles.add(n)
        # ---- the host: commands and back-pressure ----
        if not presenting and i < len(cmds) and (n >= 60 or not idle[n % len(idle)]):
            presenting = True
        if presenting:
            sim.set(cmd__valid=1, cmd__payload=cmds[i])
        else:
            sim.set(cmd__valid=0, cmd__payload=_garbage(n, 99, command_bits(cfg)))
        rready = n >= 60 or not stall[n % len(stall)]
        sim["resp__ready"] = rready
        cready = sim["cmd__ready"]
        if cready and (running or start):
            h.violations.append(f"cycle {n}: cmd.ready high while running={running} start={start}")
        if presenting and cready:
            h.accepted.append((i, n))
            i += 1
            presenting = False
        if sim["resp__valid"] and rready:
            h.resps.append((n, sim["resp__payload"]))
        sim.tick()
        n += 1
        if done_at is None and i == len(cmds) and len(h.resps) >= n_resps and run is None:
            done_at = n
        if done_at is not None and n >= done_at + TAIL:
            h.timed_out = False
            break
    h.cycles = n
    return h


def _unpack(packed):
    from spec.host import unpack_command

    return unpack_command(CONFIG, packed)


# ---- strategies ---------------------------------------------------------------------------------------------
_hot = st.tuples(st.sampled_from(MEMS), st.integers(0, CONFIG.mem_banks - 1),
                 st.sampled_from((0, 1, CONFIG.mem_depth - 1)))
_any_ok = st.tuples(st.sampled_from(MEMS), st.integers(0, CONFIG.mem_banks - 1), st.integers(0, CONFIG.mem_depth - 1))
_wild = st.tuples(st.one_of(st.integers(0, P), st.integers(0, 255)), st.integers(0, 15),
                  st.one_of(st.sampled_from((CONFIG.mem_depth, (1 << 16) - 1)), st.integers(0, (1 << 16) - 1)))
_targets = st.one_of(_hot, _hot, _any_ok, _wild)
_data = st.one_of(st.integers(0, (1 << data_bits(CONFIG)) - 1), st.sampled_from((0, (1 << data_bits(CONFIG)) - 1)))
_run = st.tuples(st.integers(1, 8), st.fixed_dictionaries({
    "error": st.integers(0, 1), "code": st.integers(0, 15), "slice": st.integers(0, 255),
    "pc": st.integers(0, (1 << 17) - 1)}))

_queue_slices = st.one_of(st.integers(0, P - 1), st.integers(0, 255))
_queue_addrs = st.one_of(st.integers(0, CONFIG.queue_depth - 1), st.sampled_from((CONFIG.queue_depth, (1 << 16) - 1)))
_ops = {w: st.sampled_from([HostOp.READ_MEM] * 4 + [HostOp.WRITE_MEM] * 4 + [HostOp.WRITE_QUEUE] * 2
                           + [HostOp.STATUS] * 2 + [0, 6, 7] + ([HostOp.START] if w else [])) for w in (False, True)}


@st.composite
def command(draw, with_start):
    """``(command dict, run or None)``: READ_MEM (where shrinking goes), WRITE_MEM, WRITE_QUEUE, STATUS, the
    unused opcodes 0/6/7 with random fields, and START (with its fake run) when ``with_start``."""
    op = int(draw(_ops[with_start]))
    c = dict(op=op, slice=0, bank=0, addr=0, data=0)
    run = None
    if op in (HostOp.READ_MEM, HostOp.WRITE_MEM):
        s, b, a = draw(_targets)
        c.update(slice=s, bank=b, addr=a, data=draw(_data))
    elif op == HostOp.WRITE_QUEUE:
        c.update(slice=draw(_queue_slices), addr=draw(_queue_addrs), data=draw(_data))
    elif op == HostOp.START:
        run = draw(_run)
    else:          # STATUS and the unused opcodes: fields that must not matter
        s, b, a = draw(_wild)
        c.update(slice=s, bank=b, addr=a, data=draw(_data))
    return c, run


patterns = st.lists(st.sampled_from((False, False, True)), min_size=1, max_size=8)


def check_commands(items, idle, stall, golden=True):
    cmds = [c for c, _ in items]
    runs = [r for _, r in items if r is not None]
    packed = [pack_command(CONFIG, **c) for c in cmds]
    h = run_host(host_sim(), packed, runs, idle, stall)
    what = f"host edge {CONFIG.name}, idle {idle}, stall {stall}"
    assert not h.timed_out, f"{what}: not finished within {h.cycles} cycles (accepted {len(h.accepted)} of " \
                            f"{len(cmds)} commands, {len(h.resps)} responses)"
    if golden:
        want = HostModel(CONFIG).apply(packed)
        got = [d for _, d in h.resps]
        for k, (g, w) in enumerate(zip(got, want)):
            assert g == w, f"{what}: response {k} is {g:#x}, HostModel says {w:#x}"
        assert len(got) == len(want), f"{what}: {len(got)} responses, HostModel gives {len(want)}"
    _check(h, cmds, runs, what)


@PROPS
@given(st.lists(command(False), min_size=1, max_size=MAX_COMMANDS), patterns, patterns)
def test_host_matches_golden_model(items, idle, stall):
    check_commands(items, idle, stall)


@PROPS
@given(st.lists(command(True), min_size=1, max_size=MAX_COMMANDS), patterns, patterns)
def test_host_with_runs(items, idle, stall):
    check_commands(items, idle, stall, golden=False)
