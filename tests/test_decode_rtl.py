# amaranth: UnusedElaboratable=no
"""rtl.decode.Decoder in Amaranth's simulator against spec.isa.fault/timing, word by word.

For each slice kind of several configurations, thousands of words (valid instructions of every opcode with
fields near the configuration's limits, then mutated: flipped bits, a field overwritten, another opcode, or
a raw random word) go through one simulation; every output is compared with ``spec.isa``.
"""
import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from rtl.decode import Decoder
from spec import isa
from spec.config import PRESETS, RTL_SLICE_KINDS, SLICE_KINDS
from spec.isa import FIELDS, OPCODE_FIELD, OPCODES, VXU_OPS, ErrorCode

TINY, SMALL = PRESETS["tiny"], PRESETS["small"]
CONFIGS = {
    "tiny": TINY,
    "small": SMALL,
    # fewer VXU operations: the others are ILLEGAL_OPCODE, even with stray bits
    "tiny_fewops": TINY.replace(name="tiny_fewops", vxu_ops=("relu", "add", "lut")),
    # the widest limits the word allows (no bank or stream check can fire) and no VXU operations at all
    "wide": TINY.replace(name="wide", streams=isa.MAX_STREAMS, mem_banks=isa.MAX_BANKS,
                         mem_depth=isa.MAX_MEM_DEPTH, vxu_ops=()),
}
#: The codes each kind can raise at all (MXU and VXU opcodes have no bank; VXU opcodes no addr or limit); the
#: run-time INDEX_RANGE is not the decoder's.
REACHABLE = {
    "mem": set(ErrorCode) - {ErrorCode.UNIT_BUSY, ErrorCode.STREAM_CONFLICT, ErrorCode.QUEUE_OVERRUN,
                             ErrorCode.INDEX_RANGE},
    "mxu": {ErrorCode.OK, ErrorCode.ILLEGAL_OPCODE, ErrorCode.BAD_FIELD, ErrorCode.BAD_ADDRESS,
            ErrorCode.BAD_STREAM},
    "vxu": {ErrorCode.OK, ErrorCode.ILLEGAL_OPCODE, ErrorCode.BAD_FIELD, ErrorCode.BAD_STREAM},
    "link": {ErrorCode.OK, ErrorCode.ILLEGAL_OPCODE, ErrorCode.BAD_FIELD, ErrorCode.BAD_STREAM},   # SEND src, RECV dst
}
WORDS_PER_CASE = 4000
MASK64 = (1 << isa.WORD_BITS) - 1


def _rand64(rng):
    return (int(rng.integers(0, 1 << 32)) << 32) | int(rng.integers(0, 1 << 32))


def _pick(rng, values):
    return values[int(rng.integers(0, len(values)))]


def _near(rng, limit, hi, lo=0):
    """A value in lo..hi, often at or next to ``limit``."""
    c = [lo, limit - 1, limit, limit + 1, int(rng.integers(lo, hi + 1)), int(rng.integers(lo, max(lo + 1, limit)))]
    return min(hi, max(lo, _pick(rng, c)))


def random_instruction(rng, config):
    """A (mostly) in-range instruction of any opcode, fields biased towards the configuration's limits."""
    op = _pick(rng, list(OPCODES))
    vop = _pick(rng, list(VXU_OPS)) if op == "VOP" else None
    emit = bool(rng.integers(0, 2)) if op == "MATMUL" else False
    depth = config.mem_depth if op in isa.MEM_OPS else config.mxu_acc_depth
    kw = {}
    for name in isa.used_fields(op, vop, emit):
        f = FIELDS[name]
        if f.kind == "stream":
            kw[name] = isa.Stream(_pick(rng, isa.DIRECTIONS),
                                  _near(rng, config.streams, isa.MAX_STREAMS - 1))
        elif f.kind == "flag":
            kw[name] = emit if name == "emit" else bool(rng.integers(0, 2))
        elif f.kind == "vop":
            kw[name] = vop
        elif name == "count":
            limit = config.mxu_rows if op == "LOADW" else (depth if "addr" in OPCODES[op].fields else 8)
            kw[name] = _near(rng, limit, isa.MAX_COUNT, lo=1)
        elif name == "addr":
            kw[name] = _near(rng, depth, f.hi)
        elif name == "bank":
            kw[name] = _near(rng, config.mem_banks, f.hi)
        elif name == "lane":      # READX/WRITEX: BAD_FIELD from lanes up
            kw[name] = _near(rng, config.lanes, f.hi)
        else:
            kw[name] = int(rng.integers(f.lo, f.hi + 1))
    return isa.Instruction(op, **kw)


def random_word(rng, config):
    r = rng.random()
    if r < 0.08:
        return _rand64(rng)
    w = isa.encode(random_instruction(rng, config))
    r = rng.random()
    if r < 0.35:
        return w
    if r < 0.55:      # flip a few bits
        for _ in range(int(rng.integers(1, 4))):
            w ^= 1 << int(rng.integers(0, isa.WORD_BITS))
        return w
    if r < 0.80:      # overwrite a field (stray bits, unassigned vop, SETQ mult 0 or too large, ...)
        f = _pick(rng, list(FIELDS.values()))
        v = _pick(rng, [0, (1 << f.width) - 1, int(rng.integers(0, 1 << f.width))])
        return (w & ~f.mask & MASK64) | (v << f.lsb)
    # another opcode with the same fields (often one of a different slice kind)
    code = _pick(rng, [o.code for o in OPCODES.values()] + [int(rng.integers(0, 1 << OPCODE_FIELD.width))])
    return (w & ~OPCODE_FIELD.mask & MASK64) | (code << OPCODE_FIELD.lsb)


def expected(word, config, kind):
    instr = isa.decode(word)
    f = isa.fault(instr, config, kind)
    if f is not None:
        return {"fault_code": int(f.code)}
    tm = isa.timing(instr, config)
    units = SLICE_KINDS[kind].units
    return {"fault_code": 0, "is_queue_op": int(tm.unit == "queue"), "halt": int(instr.op == "HALT"),
            "nop": int(instr.op == "NOP"), "unit": 0 if tm.unit == "queue" else units.index(tm.unit),
            "busy": tm.busy, "span": tm.span}


def simulate(dut, words):
    """Every output of ``dut`` for each word (one simulation, the combinational logic settled per word)."""
    names = ("fault_code", "is_queue_op", "halt", "nop", "unit", "busy", "span")
    out = []

    async def bench(ctx):
        for w in words:
            ctx.set(dut.word, w)
            out.append({n: ctx.get(getattr(dut, n)) for n in names})

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("kind", list(RTL_SLICE_KINDS))
@pytest.mark.parametrize("cname", list(CONFIGS))
def test_decoder_matches_spec(cname, kind):
    config = CONFIGS[cname]
    rng = np.random.default_rng(sum(map(ord, cname + kind)))
    words = [0, MASK64] + [random_word(rng, config) for _ in range(WORDS_PER_CASE)]
    dut = Decoder(config, kind)
    got = simulate(dut, words)
    hits = set()
    for w, g in zip(words, got):
        want = expected(w, config, kind)
        g = {k: g[k] for k in want}
        assert g == want, f"{cname} {kind} word {w:#018x} ({isa.decode(w)}): got {g}, want {want}"
        hits.add(want["fault_code"])
    if cname != "wide":
        assert hits == {int(c) for c in REACHABLE[kind]}, f"{cname} {kind}: codes hit {sorted(hits)}"
    else:
        assert {0, 1, 2} <= hits


def test_every_opcode_and_vop_on_every_kind():
    """Each opcode (each VXU operation, MATMUL with and without emit) with its lowest field values."""
    config = CONFIGS["tiny_fewops"]
    for kind in RTL_SLICE_KINDS:
        words = []
        for op in OPCODES:
            for vop in (list(VXU_OPS) if op == "VOP" else [None]):
                for emit in ((False, True) if op == "MATMUL" else (False,)):
                    kw = {n: {"stream": "W1", "count": 1, "flag": emit, "vop": vop}.get(FIELDS[n].kind, 0)
                          for n in isa.used_fields(op, vop, emit)}
                    if op == "SETQ":
                        kw["mult"] = 1
                    words.append(isa.encode(isa.Instruction(op, **kw)))
        dut = Decoder(config, kind)
        for w, g in zip(words, simulate(dut, words)):
            want = expected(w, config, kind)
            assert {k: g[k] for k in want} == want, f"{kind} {isa.decode(w)}"


def test_ports_and_parameter_checks():
    dut = Decoder(TINY, "mxu")
    Fragment.get(dut, None)
    assert set(dut.signature.members) == {"word", "fault_code", "is_queue_op", "halt", "nop", "unit", "busy",
                                          "span"}
    assert len(dut.fault_code) == isa.ERROR_CODE_BITS
    assert dut.units == SLICE_KINDS["mxu"].units
    with pytest.raises(ValueError, match="kind must be one of 'mem', 'mxu', 'vxu', 'link', not 'gpu'"):
        Decoder(TINY, "gpu")
    with pytest.raises(TypeError, match="kind must be one of"):
        Decoder(TINY, 3)
    with pytest.raises(TypeError, match="config must be a spec.config.ChipConfig"):
        Decoder("tiny", "mem")
    with pytest.raises(ValueError, match="model-only"):
        Decoder(PRESETS["tsp"], "mem")
