"""spec/isa.py: word layout, encode/decode, configuration checks, timing, error codes, docs/isa.md."""
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spec import isa
from spec.config import PRESETS
from spec.isa import (
    FIELDS,
    OPCODE_BY_CODE,
    OPCODES,
    VXU_OPS,
    ErrorCode,
    IllegalInstruction,
    Instruction,
    Stream,
    decode,
    encode,
)

TINY, SMALL, TSP = PRESETS["tiny"], PRESETS["small"], PRESETS["tsp"]
ROOT = Path(__file__).resolve().parent.parent


# ---- layout -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", list(OPCODES))
def test_fields_of_one_opcode_never_overlap(op):
    taken = isa.OPCODE_FIELD.mask
    for name in OPCODES[op].fields:
        f = FIELDS[name]
        assert 0 <= f.lsb and f.msb < isa.WORD_BITS
        assert not taken & f.mask, f"{op}: {name} overlaps another field"
        taken |= f.mask


def test_opcodes_unique_nonzero_and_grouped_by_kind():
    codes = [o.code for o in OPCODES.values()]
    assert len(set(codes)) == len(codes) and 0 not in codes
    assert all(0 < c < 1 << isa.OPCODE_FIELD.width for c in codes)
    group = {None: 0, ("mem",): 1, ("mxu",): 2, ("vxu",): 3, ("link",): 4}
    for o in OPCODES.values():
        assert o.code >> 3 == group[o.kinds], o.name


def test_limits_follow_field_widths():
    assert isa.MAX_BANKS == 1 << FIELDS["bank"].width
    assert isa.MAX_MEM_DEPTH == 1 << FIELDS["addr"].width
    assert isa.MAX_COUNT == 1 << FIELDS["count"].width
    assert isa.MAX_STREAMS == 1 << (FIELDS["src"].width - 1)
    assert len(VXU_OPS) <= 1 << FIELDS["vop"].width
    assert sorted(v.code for v in VXU_OPS.values()) == list(range(len(VXU_OPS)))


def test_pinned_words():
    """The encoding is an interface (RTL decoder, stored programs): these words must not change silently."""
    assert encode(Instruction("HALT")) == 0x0800_0000_0000_0000
    assert encode(Instruction("NOP", count=5)) == 0x0400_0000_0400_0000
    assert encode(Instruction("READ", bank=1, addr=0x123, count=16, dst="E3")) == 0x2000_0300_0F01_2310
    assert encode(Instruction("MATMUL", src="E2", count=64, addr=0, swap=True, emit=True, dst="W1")) == \
        0x4420_2100_3F00_0005
    assert encode(Instruction("VOP", vop="add", src="E1", src2="W2", count=8, dst="E0")) == \
        0x6018_8000_0700_0000
    assert encode(Instruction("SETQ", mult=1 << 30, shift=3, zp=-1)) == 0x6400_1FE3_4000_0000


# ---- instructions -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, exc, msg", [
    (dict(op="JUMP"), ValueError, "op must be one of NOP, HALT, READ, WRITE, READX, WRITEX, LOADW, MATMUL, VOP, "
                                  "SETQ, LOADLUT, SEND, RECV, not 'JUMP'"),
    (dict(op="NOP"), ValueError, "NOP needs count"),
    (dict(op="NOP", count=0), ValueError, "count must be an integer between 1 and 65536, not 0"),
    (dict(op="NOP", count=65537), ValueError, "count must be an integer between 1 and 65536, not 65537"),
    (dict(op="HALT", count=0), ValueError, "HALT takes no count, got count=0"),
    (dict(op="READ", bank=0, addr=0, count=1), ValueError, "READ needs dst"),
    (dict(op="READ", bank=16, addr=0, count=1, dst="E0"), ValueError,
     "bank must be an integer between 0 and 15, not 16"),
    (dict(op="READ", bank=0, addr=70000, count=1, dst="E0"), ValueError,
     "addr must be an integer between 0 and 65535, not 70000"),
    (dict(op="READ", bank=0, addr=0, count=1, dst="E32"), ValueError,
     "stream must be E or W followed by an index 0..31 (such as E3), not 'E32'"),
    (dict(op="READ", bank=0, addr=0, count=1, dst=3), TypeError,
     "stream must be a stream such as 'E3' or 'W0', not 3"),
    (dict(op="WRITE", bank=0, addr=0, count=1, src="E0", dst="E1"), ValueError, "WRITE takes no dst, got dst='E1'"),
    (dict(op="MATMUL", src="E0", count=1, addr=0, dst="E1"), ValueError,
     "MATMUL without emit takes no dst, got dst='E1'"),
    (dict(op="MATMUL", src="E0", count=1, addr=0, emit=1, dst="E1"), TypeError, "emit must be True or False, not 1"),
    (dict(op="VOP", vop="gelu", src="E0", count=1, dst="E1"), ValueError,
     "vop must be one of add, mul, max, relu, requant, lut, argmax, requantv, lsum, lmax, recip, rsqrt, spread, "
     "not 'gelu'"),
    (dict(op="VOP", vop="relu", src="E0", src2="E1", count=1, dst="E1"), ValueError,
     "VOP relu takes no src2, got src2='E1'"),
    (dict(op="SETQ", mult=0, shift=0, zp=0), ValueError, "mult must be an integer between 1 and 2147483647, not 0"),
    (dict(op="SETQ", mult=1, shift=32, zp=0), ValueError, "shift must be an integer between 0 and 31, not 32"),
    (dict(op="SETQ", mult=1, shift=0, zp=128), ValueError, "zp must be an integer between -128 and 127, not 128"),
])
def test_instruction_rejected(kw, exc, msg):
    with pytest.raises(exc) as info:
        Instruction(**kw)
    assert str(info.value) == msg


def test_stream_text():
    assert str(Stream("W", 31)) == "W31" and Stream.parse("e3") == Stream("E", 3)
    assert Stream.from_bits(Stream("W", 5).bits()) == Stream("W", 5) and Stream("W", 0).bits() == 32
    with pytest.raises(ValueError, match="stream direction must be 'E' or 'W', not 'N'"):
        Stream("N", 0)


_streams = st.builds(Stream, st.sampled_from(isa.DIRECTIONS), st.integers(0, isa.MAX_STREAMS - 1))


def _field_value(name):
    f = FIELDS[name]
    if f.kind == "stream":
        return _streams
    if f.kind == "flag":
        return st.booleans()
    return st.integers(f.lo, f.hi)


@st.composite
def instructions(draw):
    op = draw(st.sampled_from(list(OPCODES)))
    kw = {}
    if op == "VOP":
        kw["vop"] = draw(st.sampled_from(list(VXU_OPS)))
    if op == "MATMUL":
        kw["emit"] = draw(st.booleans())
    for name in isa.used_fields(op, kw.get("vop"), kw.get("emit", False)):
        if name not in kw:
            kw[name] = draw(_field_value(name))
    return Instruction(op, **kw)


@settings(max_examples=500, derandomize=True, deadline=None)
@given(instructions())
def test_encode_decode_round_trip(instr):
    word = encode(instr)
    assert 0 <= word < 1 << 64
    assert decode(word) == instr


@settings(max_examples=1000, derandomize=True, deadline=None)
@given(st.one_of(
    st.integers(0, (1 << 64) - 1),
    # legal opcodes with random bodies reach the field checks
    st.builds(lambda op, body: (op << 58) | body, st.sampled_from([o.code for o in OPCODES.values()]),
              st.integers(0, (1 << 58) - 1)),
    # legal words with one bit flipped
    st.builds(lambda i, bit: encode(i) ^ (1 << bit), instructions(), st.integers(0, 63)),
))
def test_decode_never_crashes_and_encode_restores_the_word(word):
    instr = decode(word)
    assert encode(instr) == word
    if isinstance(instr, IllegalInstruction):
        assert instr.error in (ErrorCode.ILLEGAL_OPCODE, ErrorCode.BAD_FIELD) and instr.reason
        op = OPCODE_BY_CODE.get(word >> 58)
        wrong_kind = op is not None and op.kinds is not None and "mem" not in op.kinds
        expected = ErrorCode.ILLEGAL_OPCODE if wrong_kind else instr.error
        assert isa.fault(instr, SMALL, "mem").code == expected


@pytest.mark.parametrize("word, code, reason", [
    (0, ErrorCode.ILLEGAL_OPCODE, "opcode 0x00 is not assigned"),
    (0x3F << 58, ErrorCode.ILLEGAL_OPCODE, "opcode 0x3f is not assigned"),
    (0x0800_0000_0000_0001, ErrorCode.BAD_FIELD, "HALT does not use bit 0, which must be 0"),
    (0x0800_0000_0000_0003, ErrorCode.BAD_FIELD, "HALT does not use bits 0, 1, which must be 0"),
    (0x6000_0000_0000_00F0, ErrorCode.BAD_FIELD, "VXU operation 15 is not assigned"),
    (0x6400_0000_0000_0000, ErrorCode.BAD_FIELD, "SETQ mult=0 is outside 1..2147483647"),
    (0x4400_0000_0000_0000 | (5 << 40), ErrorCode.BAD_FIELD,
     "MATMUL does not use bits 40, 42, which must be 0"),    # dst bits without emit
])
def test_illegal_words(word, code, reason):
    assert decode(word) == IllegalInstruction(word, code, reason)


def test_decode_rejects_non_words():
    with pytest.raises(ValueError, match="word must be between 0 and 2\\*\\*64 - 1, not -1"):
        decode(-1)
    with pytest.raises(TypeError):
        decode("0x0")


# ---- configuration checks -----------------------------------------------------------------------------
def R(**kw):
    return Instruction("READ", **{"bank": 0, "addr": 0, "count": 1, "dst": "E0", **kw})


@pytest.mark.parametrize("instr, kind, code, msg", [
    (R(), "mxu", ErrorCode.ILLEGAL_OPCODE, "READ runs on MEM slices, not on MXU slices"),
    (Instruction("LOADW", src="E0", count=5), "mxu", ErrorCode.BAD_ADDRESS,
     "count must be between 1 and 4 (mxu_rows) for config tiny, not 5"),
    (R(bank=2), "mem", ErrorCode.BAD_BANK, "bank must be between 0 and 1 for config tiny, not 2"),
    (R(addr=64), "mem", ErrorCode.BAD_ADDRESS, "addr must be between 0 and 63 for config tiny, not 64"),
    (R(addr=60, count=5), "mem", ErrorCode.BAD_ADDRESS,
     "count must be between 1 and 4 from addr=60 for config tiny (mem_depth = 64), not 5"),
    (Instruction("MATMUL", src="E0", count=2, addr=63), "mxu", ErrorCode.BAD_ADDRESS,
     "count must be between 1 and 1 from addr=63 for config tiny (mxu_acc_depth = 64), not 2"),
    (R(dst="W4"), "mem", ErrorCode.BAD_STREAM, "dst must be E0..E3 or W0..W3 for config tiny, not W4"),
    (Instruction("VOP", vop="max", src="E0", src2="E9", count=1, dst="E0"), "vxu", ErrorCode.BAD_STREAM,
     "src2 must be E0..E3 or W0..W3 for config tiny, not E9"),
    # lowest code wins: a bad bank and a bad stream report the bank
    (R(bank=3, dst="E7"), "mem", ErrorCode.BAD_BANK, "bank must be between 0 and 1 for config tiny, not 3"),
])
def test_faults(instr, kind, code, msg):
    f = isa.fault(instr, TINY, kind)
    assert (f.code, f.message) == (code, msg)
    with pytest.raises(isa.InstructionError) as info:
        isa.check(instr, TINY, kind)
    assert info.value.code == code and str(info.value) == msg


def test_lowest_code_wins_over_word_level_faults():
    # A word with stray bits (BAD_FIELD) whose opcode the slice kind cannot run is ILLEGAL_OPCODE.
    word = isa.encode(Instruction("SETQ", mult=1, shift=0, zp=0)) | 1 << 50
    assert isa.fault(isa.decode(word), TINY, "vxu").code == ErrorCode.BAD_FIELD
    assert isa.fault(isa.decode(word), TINY, "mem").code == ErrorCode.ILLEGAL_OPCODE
    # ... and so is a VOP with stray bits naming an operation the configuration lacks
    c = TINY.replace(vxu_ops=("add",))
    word = isa.encode(Instruction("VOP", vop="relu", src="E0", count=1, dst="E1")) | 1 << 47
    assert isa.fault(isa.decode(word), TINY, "vxu").code == ErrorCode.BAD_FIELD
    assert isa.fault(isa.decode(word), c, "vxu").code == ErrorCode.ILLEGAL_OPCODE


def test_vxu_operation_must_be_configured():
    c = TINY.replace(vxu_ops=("add", "relu"))
    instr = Instruction("VOP", vop="max", src="E0", src2="E1", count=1, dst="E0")
    f = isa.fault(instr, c, "vxu")
    assert f.code == ErrorCode.ILLEGAL_OPCODE
    assert f.message == "vop must be one of add, relu for config tiny, not 'max'"
    assert isa.fault(instr, TINY, "vxu") is None


def test_fine_instructions_pass_everywhere_they_belong():
    for op in OPCODES.values():
        for kind in op.kinds or ("mem", "mxu", "vxu"):
            kw = {"vop": "add"} if op.name == "VOP" else {}
            for name in isa.used_fields(op.name, kw.get("vop")):
                f = FIELDS[name]
                kw.setdefault(name, Stream("E", 0) if f.kind == "stream" else
                              (False if f.kind == "flag" else max(f.lo, min(1, f.hi))))
            assert isa.check(Instruction(op.name, **kw), TINY, kind)


# ---- timing -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", [TINY, SMALL, TSP], ids=lambda c: c.name)
def test_mxu_latency_comes_from_spec_mxu(config):
    assert isa.mxu_result_latency(config) == isa.MXU_INPUT_OFFSET + config.mxu.latency
    t = isa.timing(Instruction("MATMUL", src="E0", count=7, addr=0, emit=True, dst="E1"), config)
    assert (t.unit, t.busy, t.items, t.first_in, t.first_out) == \
        ("array", 7, 7, 1, isa.mxu_result_latency(config))
    assert isa.timing(Instruction("MATMUL", src="E0", count=7, addr=0), config).first_out is None


def test_timing_table():
    t = isa.timing
    assert t(Instruction("NOP", count=9), TINY) == isa.OpTiming("queue", 9, 0, None, None)
    assert t(R(count=3), TINY) == isa.OpTiming("read", 3, 3, None, isa.MEM_READ_LATENCY)
    assert t(Instruction("WRITE", src="E0", bank=0, addr=0, count=3), TINY) == \
        isa.OpTiming("write", 3, 3, isa.MEM_WRITE_LATENCY, None)
    assert t(Instruction("LOADLUT", src="E0"), TINY).busy == 64 and t(Instruction("LOADLUT", src="E0"), TSP).busy == 1
    assert t(Instruction("SETQ", mult=1, shift=0, zp=0), TINY).busy == 1
    v = t(Instruction("VOP", vop="relu", src="E0", count=2, dst="E1"), TINY)
    assert v.first_out - v.first_in == isa.VXU_PIPELINE
    # every opcode has a timing, and its unit is the opcode's
    for op in OPCODES.values():
        assert op.unit in ("queue", "read", "write", "weights", "array", "alu", "send", "recv")


def test_mem_read_latency_matches_the_sram():
    from rtl.sram import READ_LATENCY
    assert isa.MEM_SRAM_READ_STAGES == READ_LATENCY
    assert isa.MEM_READ_LATENCY == isa.MEM_DECODE_STAGES + READ_LATENCY


# ---- error codes and docs -----------------------------------------------------------------------------
def test_every_error_code_has_a_meaning():
    names = ["ILLEGAL_OPCODE", "BAD_FIELD", "BAD_BANK", "BAD_ADDRESS", "BAD_STREAM", "UNIT_BUSY",
             "STREAM_CONFLICT", "QUEUE_OVERRUN"]
    assert all(hasattr(ErrorCode, n) for n in names)
    assert set(isa.ERROR_MEANINGS) == set(ErrorCode)
    for code in ErrorCode:
        assert isinstance(code.meaning, str) and len(code.meaning) > 5 and "\n" not in code.meaning
        assert 0 <= code < 1 << isa.ERROR_CODE_BITS
    assert len({int(c) for c in ErrorCode}) == len(ErrorCode) and ErrorCode.OK == 0


def test_docs_isa_md_is_current():
    path = ROOT / "docs" / "isa.md"
    assert path.exists() and path.read_text() == isa.render_markdown(), (
        f"docs/isa.md is stale: regenerate it with `{isa.DOC_COMMAND}` (from the repository root)")


def test_docs_name_every_opcode_field_and_error():
    doc = isa.render_markdown()
    for name in [*OPCODES, *FIELDS, *VXU_OPS, *(c.name for c in ErrorCode)]:
        assert f"`{name}`" in doc, name
    for op in OPCODES:
        assert f"`{isa.syntax(op)}`" in doc


def test_main_usage(capsys):
    assert isa.main([]) == 2
    assert isa.main(["--doc"]) == 0
    assert capsys.readouterr().out == isa.render_markdown()
