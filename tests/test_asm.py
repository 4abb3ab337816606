"""spec/asm.py: the assembler and disassembler round-trip exactly, and errors say line, text and what is allowed."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spec import isa
from spec.asm import HALT_WORD, AsmError, assemble, disassemble, format_instruction, parse_instruction
from spec.config import PRESETS
from spec.isa import Instruction, encode

TINY, SMALL = PRESETS["tiny"], PRESETS["small"]

PROGRAM = """\
; a tour of the syntax
.slice mem0                    ; by canonical name
    READ bank=1 addr=0 count=16 -> E3
    nop 5                      ; case-insensitive
    NOP
    HALT

.slice mxu                     ; the bare kind: tiny has one MXU
    LOADW E3 count=4
    MATMUL e2 count=64 addr=0 swap emit -> W1
    MATMUL E2, count = 4, addr=0x3c acc
    .word 0
    HALT
.slice 3                       ; by index: vxu0
    SETQ zp=-3 mult=0x40000000 shift=0
    VOP add E1 W2 count=8 -> E0
    VOP RELU E0 count=8->W1
    LOADLUT E0
    HALT
"""

CANONICAL = """\
.slice mem0
    READ bank=1 addr=0 count=16 -> E3
    NOP 5
    NOP 1
    HALT

.slice mxu0
    LOADW E3 count=4
    MATMUL E2 count=64 addr=0 swap emit -> W1
    MATMUL E2 count=4 addr=60 acc
    .word 0x0000000000000000  ; ILLEGAL_OPCODE: opcode 0x00 is not assigned
    HALT

.slice vxu0
    SETQ mult=1073741824 shift=0 zp=-3
    VOP add E1 W2 count=8 -> E0
    VOP relu E0 count=8 -> W1
    LOADLUT E0
    HALT
"""


def test_program_assembles_to_the_isa_words():
    p = assemble(PROGRAM, TINY)
    assert len(p) == len(TINY.slices)
    Ins = Instruction
    assert p[0] == [encode(Ins("READ", bank=1, addr=0, count=16, dst="E3")), encode(Ins("NOP", count=5)),
                    encode(Ins("NOP", count=1)), HALT_WORD]
    assert p[2] == [encode(Ins("LOADW", src="E3", count=4)),
                    encode(Ins("MATMUL", src="E2", count=64, addr=0, swap=True, emit=True, dst="W1")),
                    encode(Ins("MATMUL", src="E2", count=4, addr=60, acc=True)), 0, HALT_WORD]
    assert p[3][0] == encode(Ins("SETQ", mult=1 << 30, shift=0, zp=-3))
    assert p[1] == p[4] == [HALT_WORD]            # slices without a section just halt
    assert HALT_WORD == encode(Ins("HALT"))


def test_canonical_text_round_trips():
    p = assemble(PROGRAM, TINY)
    assert disassemble(p, TINY) == CANONICAL
    assert assemble(CANONICAL, TINY) == p
    assert disassemble(assemble(CANONICAL, TINY), TINY) == CANONICAL


def test_empty_section_and_halt_only_slices():
    p = assemble(".slice mem1\n.slice mem2\n    HALT\n", TINY)
    assert p[1] == [] and p[4] == [HALT_WORD] and p[0] == [HALT_WORD]
    text = disassemble(p, TINY)
    assert text == ".slice mem1\n"
    assert assemble(text, TINY) == p


def test_words_illegal_on_their_slice_disassemble_as_word():
    read = encode(Instruction("READ", bank=0, addr=0, count=1, dst="E0"))
    wide = encode(Instruction("READ", bank=0, addr=0, count=1, dst="E7"))   # tiny has 4 streams
    p = [[HALT_WORD]] * 5
    p[2], p[0] = [read], [wide]
    text = disassemble(p, TINY)
    assert "    .word 0x2000000000000000  ; ILLEGAL_OPCODE: READ bank=0 addr=0 count=1 -> E0: READ runs on " \
           "MEM slices, not on MXU slices" in text
    assert "BAD_STREAM: READ bank=0 addr=0 count=1 -> E7: dst must be E0..E3 or W0..W3 for config tiny" in text
    assert assemble(text, TINY) == p
    assert disassemble(p, SMALL.replace(slices=("mem", "mem", "mxu", "vxu", "mem"))).count(".word") == 1


_streams = st.builds(isa.Stream, st.sampled_from(isa.DIRECTIONS), st.integers(0, isa.MAX_STREAMS - 1))


@st.composite
def instructions(draw):
    op = draw(st.sampled_from(list(isa.OPCODES)))
    kw = {}
    if op == "VOP":
        kw["vop"] = draw(st.sampled_from(list(isa.VXU_OPS)))
    if op == "MATMUL":
        kw["emit"] = draw(st.booleans())
    for name in isa.used_fields(op, kw.get("vop"), kw.get("emit", False)):
        f = isa.FIELDS[name]
        if name not in kw:
            kw[name] = draw(_streams if f.kind == "stream" else st.booleans() if f.kind == "flag"
                            else st.integers(f.lo, f.hi))
    return Instruction(op, **kw)


@settings(max_examples=500, derandomize=True, deadline=None)
@given(instructions())
def test_format_parse_round_trip(instr):
    text = format_instruction(instr)
    assert parse_instruction(text) == instr
    assert parse_instruction(text.lower()) == instr


_words = st.one_of(st.integers(0, (1 << 64) - 1), instructions().map(encode), st.just(HALT_WORD))


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(st.lists(_words, max_size=8), min_size=5, max_size=5))
def test_any_words_round_trip(programs):
    text = disassemble(programs, TINY)
    assert assemble(text, TINY) == programs
    assert disassemble(assemble(text, TINY), TINY) == text


@pytest.mark.parametrize("text, msg", [
    (".slice mxu\n\n    MATMLU E2 count=4 addr=0\n",
     "line 3: 'MATMLU E2 count=4 addr=0': unknown mnemonic 'MATMLU' (did you mean MATMUL?)"),
    (".slice mem0\n READ bank=4 addr=0 count=1 -> E0",
     "line 2: 'READ bank=4 addr=0 count=1 -> E0': bank must be between 0 and 1 for config tiny, not 4 "
     "(BAD_BANK on slice mem0)"),
    (".slice mem0\n READ bank=0 addr=60 count=16 -> E0",
     "line 2: 'READ bank=0 addr=60 count=16 -> E0': count must be between 1 and 4 from addr=60 for config tiny "
     "(mem_depth = 64), not 16 (BAD_ADDRESS on slice mem0)"),
    (".slice mem0\n READ bank=0 addr=0 count=1 -> W4",
     "line 2: 'READ bank=0 addr=0 count=1 -> W4': dst must be E0..E3 or W0..W3 for config tiny, not W4 "
     "(BAD_STREAM on slice mem0)"),
    (".slice mem0\n READ bank=0 addr=0 count=70000 -> E0",
     "line 2: 'READ bank=0 addr=0 count=70000 -> E0': count must be an integer between 1 and 65536, not 70000"),
    (".slice mem0\n NOP 0", "line 2: 'NOP 0': count must be an integer between 1 and 65536, not 0"),
    (".slice mem0\n NOP x", "line 2: 'NOP x': count must be an integer, not 'x'"),
    (".slice vxu\n SETQ mult=1 shift=0 zp=200",
     "line 2: 'SETQ mult=1 shift=0 zp=200': zp must be an integer between -128 and 127, not 200"),
    (".slice vxu\n SETQ mult=1 shift=0",
     "line 2: 'SETQ mult=1 shift=0': SETQ needs zp=<zp>; the form is SETQ mult=<mult> shift=<shift> zp=<zp>"),
    (".slice mem0\n READ bnak=0 addr=0 count=1 -> E1",
     "line 2: 'READ bnak=0 addr=0 count=1 -> E1': READ has no field 'bnak' (did you mean bank?); its fields "
     "are bank, addr, count"),
    (".slice mem0\n READ bank=0 bank=1 addr=0 count=1 -> E1",
     "line 2: 'READ bank=0 bank=1 addr=0 count=1 -> E1': bank is given twice"),
    (".slice mem0\n READ bank=0 addr=0 count=1",
     "line 2: 'READ bank=0 addr=0 count=1': READ needs '-> <stream>' for its results"),
    (".slice mem0\n WRITE E0 bank=0 addr=0 count=1 -> E1",
     "line 2: 'WRITE E0 bank=0 addr=0 count=1 -> E1': WRITE has no output stream ('->'); the form is "
     "WRITE <src> bank=<bank> addr=<addr> count=<count>"),
    (".slice mxu\n MATMUL E0 count=1 addr=0 emit",
     "line 2: 'MATMUL E0 count=1 addr=0 emit': MATMUL with emit needs '-> <stream>' for its results"),
    (".slice mxu\n MATMUL E0 count=1 addr=0 -> E1",
     "line 2: 'MATMUL E0 count=1 addr=0 -> E1': MATMUL with '-> <stream>' needs the emit flag"),
    (".slice mxu\n MATMUL E0 count=1 addr=0 flip",
     "line 2: 'MATMUL E0 count=1 addr=0 flip': unexpected 'flip': MATMUL takes 1 input stream, key=value "
     "fields and the flags swap, acc, emit; the form is MATMUL <src> count=<count> addr=<addr> [swap] [acc] [emit] "
     "[-> <dst>]"),
    (".slice vxu\n VOP relu E1 E2 count=1 -> E0",
     "line 2: 'VOP relu E1 E2 count=1 -> E0': VOP relu takes 1 input stream, not 2; the form is "
     "VOP <vop> <src> [<src2>] count=<count> [chain] -> <dst>"),
    (".slice vxu\n VOP ad E1 E2 count=1 -> E0",
     "line 2: 'VOP ad E1 E2 count=1 -> E0': unknown VXU operation 'ad' (did you mean add?); the operations are "
     "add, mul, max, relu, requant, lut, argmax, requantv, lsum, lmax, recip, rsqrt, spread"),
    (".slice mem1\n LOADW E0 count=1",
     "line 2: 'LOADW E0 count=1': LOADW runs on MXU slices, not on MEM slices (ILLEGAL_OPCODE on slice mem1)"),
    ("HALT", "line 1: 'HALT': instruction outside a section: start one with '.slice <name or index>'"),
    (".slice mem7", "line 1: '.slice mem7': slice 'mem7' is not in config tiny (slices: mem0, mem1, mxu0, vxu0, "
                    "mem2) (did you mean mem2?)"),
    (".slice 9", "line 1: '.slice 9': slice index must be between 0 and 4 for config tiny, not 9"),
    (".slice mem0\n HALT\n.slice 0\n HALT",
     "line 3: '.slice 0': slice mem0 already has a section (line 1)"),
    (".slise mem0", "line 1: '.slise mem0': unknown directive '.slise' (did you mean .slice?); the directives are "
                    ".slice and .word"),
    (".slice mem0\n .word 0x1ffffffffffffffff",
     "line 2: '.word 0x1ffffffffffffffff': .word needs an integer between 0 and 2**64 - 1, not "
     "0x1ffffffffffffffff"),
    (".slice mem0\n" + " NOP\n" * 257, "line 1: slice mem0 has 257 words, more than queue_depth = 256 of config tiny"),
])
def test_errors(text, msg):
    with pytest.raises(AsmError) as info:
        assemble(text, TINY)
    assert str(info.value) == msg
    assert info.value.line == int(msg.split(":")[0].split()[1])


def test_vop_operation_not_in_config():
    c = TINY.replace(vxu_ops=("add",))
    with pytest.raises(AsmError, match=r"vop must be one of add for config tiny, not 'relu' \(ILLEGAL_OPCODE"):
        assemble(".slice vxu\n VOP relu E0 count=1 -> E1", c)


def test_disassemble_checks_its_input():
    with pytest.raises(ValueError, match="programs must be a list of 5 word lists"):
        disassemble([[HALT_WORD]], TINY)
    with pytest.raises(TypeError):
        assemble(b".slice mem0", TINY)


# ---- every immediate and stream field: out-of-range values are rejected with field, range and line -------
def _valid_instruction(op):
    """A valid instruction of ``op`` (fields at their lowest values, streams E0, emit with its dst)."""
    spec = isa.OPCODES[op]
    kw = {"vop": "add"} if op == "VOP" else {}
    for name in spec.fields:
        f = isa.FIELDS[name]
        if f.kind in ("uint", "sint", "count"):
            kw[name] = f.lo
        elif f.kind == "stream":
            kw[name] = "E0"
    if op == "MATMUL":
        kw["emit"] = True
    return Instruction(op, **kw)


RANGE_CASES = [(op, name, bad)
               for op, spec in isa.OPCODES.items()
               for name in spec.fields if isa.FIELDS[name].kind in ("uint", "sint", "count")
               for bad in (isa.FIELDS[name].lo - 1, isa.FIELDS[name].hi + 1, -2**63, 2**64)]


@pytest.mark.parametrize("op, name, bad", RANGE_CASES, ids=[f"{op}-{n}-{b}" for op, n, b in RANGE_CASES])
def test_out_of_range_immediate_names_field_range_and_line(op, name, bad):
    f = isa.FIELDS[name]
    good = format_instruction(_valid_instruction(op))
    field_text = f"NOP {f.lo}" if op == "NOP" else f"{name}={f.lo}"
    assert field_text in good, good
    line = good.replace(field_text, f"NOP {bad}" if op == "NOP" else f"{name}={bad}")
    kind = {"READ": "mem0", "WRITE": "mem0", "LOADW": "mxu", "MATMUL": "mxu", "VOP": "vxu", "SETQ": "vxu",
            "LOADLUT": "vxu"}.get(op, "mem0")
    with pytest.raises(AsmError) as e:
        assemble(f".slice {kind}\n    NOP 1\n    {line}\n", SMALL)
    msg = str(e.value)
    assert e.value.line == 3 and msg.startswith(f"line 3: {line!r}: "), msg
    assert f"{name} must be an integer between {f.lo} and {f.hi}, not {bad}" in msg, msg


@pytest.mark.parametrize("op", [op for op, s in isa.OPCODES.items() if any(isa.FIELDS[n].kind == "stream"
                                                                          for n in s.fields)])
@pytest.mark.parametrize("bad", ["E32", "W32", "E-1", "W999"])
def test_out_of_range_stream_names_range_and_line(op, bad):
    good = format_instruction(_valid_instruction(op))
    line = good.replace("E0", bad, 1)
    kind = {"READ": "mem0", "WRITE": "mem0", "LOADW": "mxu", "MATMUL": "mxu"}.get(op, "vxu")
    with pytest.raises(AsmError) as e:
        assemble(f".slice {kind}\n    {line}\n", SMALL)
    msg = str(e.value)
    assert e.value.line == 2 and msg.startswith(f"line 2: {line!r}: "), msg
    assert f"stream must be E or W followed by an index 0..{isa.MAX_STREAMS - 1}" in msg and repr(bad) in msg, msg


@pytest.mark.parametrize("line, field, allowed", [
    ("READ bank=2 addr=0 count=1 -> E0", "bank", "between 0 and 1"),          # tiny: 2 banks
    ("READ bank=0 addr=64 count=1 -> E0", "addr", "between 0 and 63"),        # tiny: 64 words
    ("READ bank=0 addr=0 count=1 -> E4", "E4", "BAD_STREAM"),                  # tiny: 4 streams
])
def test_config_limits_name_the_field_and_the_code(line, field, allowed):
    with pytest.raises(AsmError) as e:
        assemble(f".slice mem0\n    {line}\n", TINY)
    msg = str(e.value)
    assert msg.startswith(f"line 2: {line!r}: ") and field in msg and allowed in msg, msg


def test_word_out_of_range():
    for bad in ("-1", str(2**64), "0x1" + "0" * 16):
        with pytest.raises(AsmError, match=r"line 2: .*\.word needs an integer between 0 and 2\*\*64 - 1"):
            assemble(f".slice mem0\n    .word {bad}\n", TINY)
