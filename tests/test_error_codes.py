"""Every ``spec.isa.ErrorCode`` (the fault table of docs/isa.md) has a program that triggers it, or a
documented reason why no program can.

``TRIGGERS`` maps each reachable code to assembly for ``tiny`` and the (slice, pc) it must stop at; the
programs run here on the golden model. The RTL runs the same kinds of programs in
tests/test_chip_verilator.py (``FAULTS``, Verilator), which must cover every reachable code too.
``UNREACHABLE`` names each code no program can raise, with the phrase that docs/isa.md (generated from
``spec.isa.ERROR_MEANINGS``) gives as the reason.
"""
import pytest

from golden.chip import ChipSim
from spec import isa
from spec.asm import assemble
from spec.config import PRESETS
from spec.isa import ErrorCode, Instruction
from tests.test_chip_verilator import FAULTS as RTL_FAULTS
from tests.test_chip_verilator import index_range_program

TINY = PRESETS["tiny"]


def word(op, **fields):
    """``.word`` of a raw instruction word (fields given as numbers, bypassing the encoder's checks)."""
    w = isa.OPCODES[op].code << isa.OPCODE_FIELD.lsb
    for name, value in fields.items():
        f = isa.FIELDS[name]
        w |= (value - 1 if f.kind == "count" else value) << f.lsb
    return f".word 0x{w:016x}"


TRIGGERS = {
    ErrorCode.OK: (".slice mem0\n    READ bank=0 addr=0 count=2 -> E0\n    HALT\n", None),
    ErrorCode.ILLEGAL_OPCODE: (".slice mem1\n    NOP 2\n    .word 0x0\n", ("mem1", 1)),
    ErrorCode.BAD_FIELD: (f".slice vxu\n    .word 0x{isa.encode(Instruction('HALT')) | 1 << 7:016x}\n", ("vxu0", 0)),
    ErrorCode.BAD_BANK: (f".slice mem2\n    NOP 1\n    {word('READ', bank=2, addr=0, count=1, dst=0)}\n",
                         ("mem2", 1)),
    ErrorCode.BAD_ADDRESS: (f".slice mxu\n    {word('MATMUL', src=0, count=2, addr=TINY.mxu_acc_depth - 1)}\n",
                            ("mxu0", 0)),
    ErrorCode.BAD_STREAM: (f".slice mem0\n    {word('WRITE', src=TINY.streams, bank=0, addr=0, count=1)}\n",
                           ("mem0", 0)),
    ErrorCode.UNIT_BUSY: (".slice mxu\n    LOADW E0 count=4\n    LOADW E0 count=1\n", ("mxu0", 1)),
    ErrorCode.QUEUE_OVERRUN: (".slice vxu\n" + "    NOP 1\n" * TINY.queue_depth, ("vxu0", TINY.queue_depth)),
    # a READX whose index (the VXU's recip of 0, 2**31 - 1) runs past the bank
    ErrorCode.INDEX_RANGE: (index_range_program(TINY)[0], ("mem1", 1)),
}

UNREACHABLE = {
    # golden/chip.py checks it (tests/test_golden_chip.py::test_stream_conflict_mechanism forces it with a
    # patched timing), but no program of the present ISA can raise it:
    ErrorCode.STREAM_CONFLICT: "unreachable with the present units",
}


def test_every_error_code_has_a_trigger_or_a_documented_reason():
    assert set(TRIGGERS) | set(UNREACHABLE) == set(ErrorCode)
    assert not set(TRIGGERS) & set(UNREACHABLE)


@pytest.mark.parametrize("code", list(TRIGGERS), ids=lambda c: c.name)
def test_trigger_program_raises_its_code_on_golden(code):
    text, where = TRIGGERS[code]
    sim = ChipSim(TINY)
    sim.load(assemble(text, TINY))
    res = sim.run(max_cycles=10_000)
    if where is None:
        assert res.error is None and res.ok
        return
    slice_name, pc = where
    assert res.error is not None, code
    assert (res.error.code, res.error.slice, res.error.pc) == (code, TINY.slice_index(slice_name), pc)


@pytest.mark.parametrize("code", list(UNREACHABLE), ids=lambda c: c.name)
def test_unreachable_code_is_documented(code):
    from pathlib import Path
    doc = (Path(__file__).resolve().parent.parent / "docs" / "isa.md").read_text()
    row = next(line for line in doc.splitlines() if line.startswith(f"| {int(code)} | `{code.name}` |"))
    assert UNREACHABLE[code] in row and UNREACHABLE[code] in code.meaning


def test_rtl_fault_tests_cover_every_reachable_code():
    """tests/test_chip_verilator.py::test_fault_stops_with_its_error runs a program per code on the RTL."""
    reachable = set(ErrorCode) - set(UNREACHABLE) - {ErrorCode.OK}
    assert reachable <= set(RTL_FAULTS), sorted(c.name for c in reachable - set(RTL_FAULTS))
