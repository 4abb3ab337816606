"""The instruction set of the streaming chip (docs/chip.md): the one source of truth.

Everything about instructions lives here: opcodes (names, numbers, the slice kinds that may run them, the
unit each occupies), the fields of the 64-bit instruction word (position, width, range, meaning), the VXU
operations, the timing of every operation (latencies), and the error codes of the sticky fault. The
assembler (``spec/asm.py``), the golden chip model, the RTL decoder and ``docs/isa.md`` all read it;
``python -m spec.isa --doc > docs/isa.md`` regenerates the docs (``render_markdown()``).

Contracts
---------
* ``Instruction`` is a validated, frozen value: it carries exactly the fields its opcode uses, each within
  the range the word can encode (``TypeError`` for a wrong type, ``ValueError`` for a wrong value, both
  naming the field). ``encode(instr)`` gives the 64-bit word; ``decode(word)`` gives back an equal
  ``Instruction``. ``decode`` never raises on a 64-bit word: a word the chip would reject decodes to an
  ``IllegalInstruction`` carrying the word, the ``ErrorCode`` and the reason, and ``encode`` of that gives
  the word back, so ``encode(decode(w)) == w`` for every word.
* Limits that depend on the machine (banks, depth, streams, the VXU's operations, the slice kind) are
  checked by ``fault(instr, config, kind)`` (returns a ``Fault`` or ``None``) and ``check`` (raises
  ``InstructionError``). When several faults apply, the lowest error code wins (the RTL decoder follows
  the same priority).
* Timing: an instruction *issues* on the cycle it leaves its queue; ``timing(instr, config)`` gives the unit
  it occupies, for how many cycles, and the offsets (from the issue cycle) of its first stream sample and
  first stream write; item ``i`` of a ``count`` form comes ``i`` cycles after the first (``interval`` cycles
  for the link opcodes SEND and RECV, which move one vector every ``link_interval`` cycles).
* Link slices (docs/multichip.md): SEND and RECV run on ``link`` slices at a chip's ends. Their run-time
  faults (``RECV_EMPTY``, ``LINK_DROPPED``) are the ``LinkErrorCode`` codes 10 and 11, numbered after
  ``ErrorCode`` in the same 4-bit fault code; ``FAULT_CODES`` lists every code and ``error_code(n)`` gives the
  member of a number.
"""
import math
import sys
from dataclasses import dataclass
from enum import IntEnum

from .vxu_rom import ROM_ENTRIES

__all__ = [
    "check_programs",
    "WORD_BITS", "DIRECTIONS", "STREAM_INDEX_BITS", "MAX_STREAMS", "SLICE_INDEX_BITS", "MAX_SLICES",
    "PC_BITS", "FAULT_PC_BITS", "MAX_QUEUE_DEPTH", "MAX_BANKS", "MAX_MEM_DEPTH", "MAX_COUNT", "LUT_ENTRIES",
    "MEM_DECODE_STAGES", "MEM_SRAM_READ_STAGES", "MEM_READ_LATENCY", "MEM_WRITE_LATENCY", "MEM_INDEX_OFFSET",
    "READX_LATENCY", "index_fault", "MXU_INPUT_OFFSET",
    "VXU_INPUT_OFFSET", "VXU_PIPELINE", "REQUANT_RESET", "LUT_RESET", "ErrorCode", "ERROR_MEANINGS", "Stream", "Field",
    "FIELDS", "OpSpec",
    "OPCODES", "OPCODE_BY_CODE", "VxuOp", "VXU_OPS", "Instruction", "IllegalInstruction", "InstructionError",
    "Fault", "OpTiming", "encode", "decode", "fault", "check", "timing", "lut_vectors", "mxu_result_latency",
    "used_fields", "syntax", "render_markdown", "ERROR_CODE_BITS", "OPCODE_FIELD", "DOC_COMMAND",
    "LINK_SEND_OFFSET", "LINK_RECV_OFFSET", "link_recv_delay", "LinkErrorCode", "LINK_ERROR_MEANINGS",
    "FAULT_CODES", "error_code",
]

WORD_BITS = 64
DIRECTIONS = ("E", "W")     #: stream directions: eastward (index 0 in the word), westward (1)
STREAM_INDEX_BITS = 5
MAX_STREAMS = 1 << STREAM_INDEX_BITS     #: streams per direction the word can name
SLICE_INDEX_BITS = 8                     #: width of the slice index in the sticky error report
MAX_SLICES = 1 << SLICE_INDEX_BITS
PC_BITS = 16                             #: width of a queue's program counter (and of the error report's pc)
MAX_QUEUE_DEPTH = 1 << PC_BITS
FAULT_PC_BITS = PC_BITS + 1              #: the error report's pc: QUEUE_OVERRUN reports pc = queue_depth
MAX_BANKS = 16                           #: banks the 4-bit ``bank`` field can name
MAX_MEM_DEPTH = 1 << 16                  #: words per bank the 16-bit ``addr`` field can name
MAX_COUNT = 1 << 16                      #: ``count`` is stored minus one in 16 bits: 1 … 65536
LUT_ENTRIES = 256                        #: entries of a VXU lookup table (one per int8 value)

# ---- latencies (cycle offsets from the issue cycle) ---------------------------------------------------
MEM_DECODE_STAGES = 1     #: the issue cycle decodes; the SRAM address is presented the cycle after
MEM_SRAM_READ_STAGES = 2  #: SRAM read: synchronous read plus output register (``rtl/sram.py`` READ_LATENCY)
#: READ issued at t puts word ``addr + i`` on its stream during cycle ``t + MEM_READ_LATENCY + i``.
MEM_READ_LATENCY = MEM_DECODE_STAGES + MEM_SRAM_READ_STAGES
#: WRITE issued at t stores the value it sees on its stream during ``t + MEM_WRITE_LATENCY + i`` into word
#: ``addr + i`` at the end of that cycle.
MEM_WRITE_LATENCY = 1
#: READX/WRITEX issued at t sample their index (lane ``lane`` of the index stream) during ``t + MEM_INDEX_OFFSET``.
MEM_INDEX_OFFSET = 1
#: READX issued at t latches its index during ``t + 1``, presents word ``addr + x + i``'s address during
#: ``t + 2 + i`` and puts it on its stream during ``t + READX_LATENCY + i``: one cycle after a READ would.
READX_LATENCY = MEM_READ_LATENCY + MEM_INDEX_OFFSET
#: LOADW/MATMUL issued at t present item ``i`` (the value on the stream during ``t + 1 + i``) to the MXU's
#: inputs in that same cycle; results follow after ``spec.mxu.MXUParams.latency``.
MXU_INPUT_OFFSET = 1
VXU_INPUT_OFFSET = 1      #: VOP/LOADLUT issued at t sample their streams during ``t + 1 + i``
VXU_PIPELINE = 4          #: VOP result of the operands sampled at u is written during ``u + VXU_PIPELINE``
#: SEND issued at t samples item ``i`` from its stream during ``t + LINK_SEND_OFFSET + i·link_interval``; the
#: vector enters the link at the end of that cycle.
LINK_SEND_OFFSET = 1
#: RECV issued at t takes item ``i`` from the link and writes it onto its stream during
#: ``t + LINK_RECV_OFFSET + i·link_interval``.
LINK_RECV_OFFSET = 1

# ---- state at the start of a run -------------------------------------------------------------------------
#: The SETQ registers (mult, shift, zp) at the start of every run, before any SETQ: all zero, so ``requant``
#: gives ``clamp(0 + 0) = 0`` until a SETQ (which needs mult >= 1) sets them.
REQUANT_RESET = (0, 0, 0)
#: Every entry of the VXU's lookup table at the start of every run, before any LOADLUT.
LUT_RESET = 0


class ErrorCode(IntEnum):
    """Codes of the sticky fault (code, slice, pc). ``OK`` means no fault; lower codes win ties."""
    OK = 0
    ILLEGAL_OPCODE = 1
    BAD_FIELD = 2
    BAD_BANK = 3
    BAD_ADDRESS = 4
    BAD_STREAM = 5
    UNIT_BUSY = 6
    STREAM_CONFLICT = 7
    QUEUE_OVERRUN = 8
    INDEX_RANGE = 9

    @property
    def meaning(self):
        return ERROR_MEANINGS[self]


ERROR_MEANINGS = {
    ErrorCode.OK: "no fault",
    ErrorCode.ILLEGAL_OPCODE: "the opcode is unassigned (an all-zero word included), not legal on this slice kind, "
                              "or names a VXU operation this configuration lacks",
    ErrorCode.BAD_FIELD: "a bit the opcode does not use is set, or a field holds a value no configuration allows "
                         "(an unassigned VXU operation, a SETQ mult of 0 or above 2**31 - 1), or a READX/WRITEX "
                         "lane at or above the configuration's lanes",
    ErrorCode.BAD_BANK: "a MEM bank at or above mem_banks",
    ErrorCode.BAD_ADDRESS: "addr .. addr + count - 1 runs past the bank (mem_depth) or the MXU accumulators "
                           "(mxu_acc_depth), or LOADW loads more rows than the MXU has",
    ErrorCode.BAD_STREAM: "a stream index at or above the configuration's streams per direction",
    ErrorCode.UNIT_BUSY: "an instruction issued to a unit whose previous operation still runs",
    ErrorCode.STREAM_CONFLICT: "two units of one slice write the same stream in the same cycle (unreachable with the "
                               "present units: each slice kind has one unit that writes streams, and its busy time "
                               "keeps its own items apart; the check is kept for future units)",
    ErrorCode.QUEUE_OVERRUN: "the program counter ran past the end of the queue (queue_depth) without a HALT",
    ErrorCode.INDEX_RANGE: "a READX or WRITEX index (a lane of its index stream, data known only at run time) is "
                           "negative or puts addr + index + count - 1 past the bank (mem_depth); raised in the "
                           "cycle the index is sampled, with the pc of that READX or WRITEX, which reads or "
                           "stores nothing",
}
ERROR_CODE_BITS = 4


class LinkErrorCode(IntEnum):
    """The run-time faults of the link slices (docs/multichip.md), numbered after ``ErrorCode`` in the same
    sticky fault code (``ERROR_CODE_BITS`` wide). They stay out of ``ErrorCode``, whose members are the codes the
    decoder and queue derive logic from (a flag per code in ``rtl/decode.py``, the priority of ``rtl/icu.py``):
    the link slice (``rtl/link.py``) raises these itself as run-time faults, above every static code, so the
    existing chips' RTL and Verilog are unchanged."""
    RECV_EMPTY = 10
    LINK_DROPPED = 11

    @property
    def meaning(self):
        return LINK_ERROR_MEANINGS[self]


LINK_ERROR_MEANINGS = {
    LinkErrorCode.RECV_EMPTY: "a RECV item found no valid word arriving on its link in the cycle it takes one (the "
                              "SEND was missing, late or early, or the link leads nowhere); raised in that cycle "
                              "with the pc of that RECV",
    LinkErrorCode.LINK_DROPPED: "a valid link word arrived where no RECV item takes it in that cycle (raised on the "
                                "receiving chip's link slice, with that queue's pc), or a SEND sampled a vector "
                                "for a link that leads nowhere (raised in the sampling cycle, with the SEND's pc)",
}
#: Every code of the sticky fault, in number order: ``ErrorCode`` then ``LinkErrorCode``.
FAULT_CODES = tuple(ErrorCode) + tuple(LinkErrorCode)


def error_code(n):
    """The ``ErrorCode`` or ``LinkErrorCode`` member of fault code ``n`` (``ValueError`` if none)."""
    for enum in (ErrorCode, LinkErrorCode):
        try:
            return enum(n)
        except ValueError:
            pass
    raise ValueError(f"fault code must be one of {', '.join(str(int(c)) for c in FAULT_CODES)}, not {n!r}")


def _type_error(name, value, allowed):
    return TypeError(f"{name} must be {allowed}, not {value!r}")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(name, value, lo, hi):
    if not _is_int(value):
        raise TypeError(f"{name} must be an integer between {lo} and {hi}, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer between {lo} and {hi}, not {value!r}")
    return value


# ---- streams ------------------------------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class Stream:
    """A stream register: a direction (``"E"`` eastward, ``"W"`` westward) and an index. Text form ``E3``.

    In the word a stream is 6 bits: bit 5 the direction (0 = E, 1 = W), bits 4..0 the index.
    """
    direction: str
    index: int

    def __post_init__(self):
        if not isinstance(self.direction, str):
            raise _type_error("stream direction", self.direction, "'E' or 'W'")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"stream direction must be 'E' or 'W', not {self.direction!r}")
        _check_int("stream index", self.index, 0, MAX_STREAMS - 1)

    def __str__(self):
        return f"{self.direction}{self.index}"

    @classmethod
    def parse(cls, text):
        """``"E3"`` → ``Stream("E", 3)`` (case-insensitive); ``ValueError`` naming the text otherwise."""
        if isinstance(text, Stream):
            return text
        if not isinstance(text, str):
            raise _type_error("stream", text, "a stream such as 'E3' or 'W0'")
        t = text.strip()
        if len(t) >= 2 and t[0].upper() in DIRECTIONS and t[1:].isdigit():
            index = int(t[1:])
            if index < MAX_STREAMS:
                return cls(t[0].upper(), index)
        raise ValueError(f"stream must be E or W followed by an index 0..{MAX_STREAMS - 1} (such as E3), "
                         f"not {text!r}")

    def bits(self):
        return (DIRECTIONS.index(self.direction) << STREAM_INDEX_BITS) | self.index

    @classmethod
    def from_bits(cls, bits):
        return cls(DIRECTIONS[(bits >> STREAM_INDEX_BITS) & 1], bits & (MAX_STREAMS - 1))


# ---- fields -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """A field of the instruction word: bits ``lsb .. lsb + width - 1``.

    ``kind``: ``stream`` (a ``Stream``), ``count`` (1 … 2**width, stored minus one), ``uint`` (``lo`` … ``hi``),
    ``sint`` (two's complement, ``lo`` … ``hi``), ``flag`` (bool), ``vop`` (a VXU operation name).
    Fields of one opcode never overlap; fields of different opcodes may share bits.
    """
    name: str
    lsb: int
    width: int
    kind: str
    meaning: str
    lo: int = 0
    hi: int = 0

    @property
    def msb(self):
        return self.lsb + self.width - 1

    @property
    def mask(self):
        return ((1 << self.width) - 1) << self.lsb

    def bits_text(self):
        return f"{self.msb}:{self.lsb}" if self.width > 1 else f"{self.lsb}"

    def range_text(self):
        if self.kind == "stream":
            return f"E0 … E{MAX_STREAMS - 1}, W0 … W{MAX_STREAMS - 1}"
        if self.kind == "flag":
            return "0 / 1"
        if self.kind == "vop":
            return ", ".join(VXU_OPS)
        return f"{self.lo} … {self.hi}"


OPCODE_FIELD = Field("op", 58, 6, "uint", "opcode", 0, 63)

FIELDS = {f.name: f for f in [
    Field("src", 52, 6, "stream", "input stream (WRITE and WRITEX data, READX's index, LOADW, MATMUL "
                                  "activations, VOP operand a, LOADLUT, SEND)"),
    Field("src2", 46, 6, "stream", "second input stream (operand b of a binary VOP, WRITEX's index)"),
    Field("dst", 40, 6, "stream", "output stream (READ, READX, MATMUL with emit, VOP, RECV)"),
    Field("count", 24, 16, "count", "repeat count: items (vectors, rows, cycles) the operation runs for; stored "
                                    "minus one", 1, MAX_COUNT),
    Field("addr", 8, 16, "uint", "first word (MEM) or accumulator (MXU) address; item i uses addr + i",
          0, MAX_MEM_DEPTH - 1),
    Field("bank", 4, 4, "uint", "MEM bank", 0, MAX_BANKS - 1),
    Field("vop", 4, 4, "vop", "VXU operation (VXU_OPS)", 0, 15),
    Field("swap", 0, 1, "flag", "MATMUL: the first activation makes the shadow weights active (those of the next "
                                "weight slot: swapping MATMULs take the slots in turn, from 0, as LOADWs do)"),
    Field("acc", 1, 1, "flag", "MATMUL: add each result to its accumulator instead of overwriting it"),
    Field("emit", 2, 1, "flag", "MATMUL: also write each result onto dst"),
    Field("chain", 0, 1, "flag", "VOP: operand a is the VXU's latest result (the last vector it put on its "
                                 "output, during the sampling cycle or before; 0 after reset) instead of src, "
                                 "which is then not read"),
    Field("lane", 0, 4, "uint", "READX/WRITEX: the lane of the index stream that holds the index (signed "
                                "int32), below the configuration's lanes", 0, 15),
    Field("mult", 0, 32, "uint", "SETQ: requantization multiplier (positive int32)", 1, (1 << 31) - 1),
    Field("shift", 32, 5, "uint", "SETQ: extra right shift, the divisor is 2**(31 + shift)", 0, 31),
    Field("zp", 37, 8, "sint", "SETQ: output zero point", -128, 127),
]}


# ---- VXU operations -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class VxuOp:
    name: str
    code: int
    arity: int        #: input streams: 1 (src) or 2 (src, src2)
    meaning: str


VXU_OPS = {v.name: v for v in [
    VxuOp("add", 0, 2, "a + b per lane, wrapping modulo 2**32"),
    VxuOp("mul", 1, 2, "a × b per lane, the low 32 bits"),
    VxuOp("max", 2, 2, "max(a, b) per lane"),
    VxuOp("relu", 3, 1, "max(a, 0) per lane"),
    VxuOp("requant", 4, 1, "clamp(zp + round_half_away(a × mult / 2**(31 + shift)), -128, 127) per lane, "
                          "with the SETQ parameters in force when a is sampled"),
    VxuOp("lut", 5, 1, "table[a & 0xFF] per lane (the table of the last LOADLUT)"),
    VxuOp("argmax", 6, 1, "lane 0: the index of the largest lane of a (the lowest on ties); other lanes 0"),
    VxuOp("requantv", 7, 2, "clamp(zp + round_half_away(a × m / 2**(31 + shift)), -128, 127) per lane, with the "
                           "per-lane multiplier m = b & 0x7FFFFFFF (b's low 31 bits, unsigned: a positive int32 "
                           "b is itself; bit 31 is ignored, so m = 0 gives zp) and shift, zp of the SETQ in "
                           "force when a is sampled (its mult unused)"),
    VxuOp("lsum", 8, 1, "every lane: the sum of the lanes of a, wrapping modulo 2**32 (a row's partial sum)"),
    VxuOp("lmax", 9, 1, "every lane: the largest lane of a (signed)"),
    VxuOp("recip", 10, 1, f"≈ 2**31 / a per lane: RECIP_ROM[f] >> e with a = 2**e · (1 + f / {ROM_ENTRIES} + …) "
                          "(spec/vxu_rom.py); a <= 0 gives 2**31 - 1"),
    VxuOp("rsqrt", 11, 1, "≈ 2**31 / sqrt(a) per lane: RSQRT_ROM[e & 1][f] >> (e >> 1) (spec/vxu_rom.py); "
                          "a <= 0 gives 2**31 - 1"),
    VxuOp("spread", 12, 1, "item i: every lane = lane i mod L of the a sampled by item 0 (a column of one "
                           "vector, for transposes; items after the first do not read src)"),
]}
_VXU_BY_CODE = {v.code: v for v in VXU_OPS.values()}


# ---- opcodes ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OpSpec:
    """An opcode: mnemonic, number, slice kinds that may run it (``None``: every kind), the unit it
    occupies (``queue`` for NOP/HALT) and its fields in text order."""
    name: str
    code: int
    kinds: tuple | None
    unit: str
    fields: tuple
    summary: str


OPCODES = {o.name: o for o in [
    OpSpec("NOP", 0x01, None, "queue", ("count",), "hold the queue for count cycles"),
    OpSpec("HALT", 0x02, None, "queue", (), "stop the queue; the slice is done when its operations finish"),
    OpSpec("READ", 0x08, ("mem",), "read", ("bank", "addr", "count", "dst"),
           "word addr + i of bank onto dst, i = 0 … count - 1"),
    OpSpec("WRITE", 0x09, ("mem",), "write", ("src", "bank", "addr", "count"),
           "src into word addr + i of bank, i = 0 … count - 1"),
    OpSpec("READX", 0x0A, ("mem",), "read", ("src", "bank", "addr", "count", "lane", "dst"),
           "word addr + x + i of bank onto dst, i = 0 … count - 1, x = lane `lane` of src when sampled (an "
           "address from data; the timing stays static)"),
    OpSpec("WRITEX", 0x0B, ("mem",), "write", ("src", "src2", "bank", "addr", "count", "lane"),
           "src into word addr + x + i of bank, i = 0 … count - 1, x = lane `lane` of src2 sampled with item 0"),
    OpSpec("LOADW", 0x10, ("mxu",), "weights", ("src", "count"),
           "vector i of src (lanes 0 … mxu_cols - 1) into shadow weight row i, i = 0 … count - 1, of the "
           "slice's next weight slot (LOADWs take the mxu_weight_slots slots in turn, from 0)"),
    OpSpec("MATMUL", 0x11, ("mxu",), "array", ("src", "count", "addr", "swap", "acc", "emit", "dst"),
           "count activations (lanes 0 … mxu_rows - 1 of src) through the array; activation i's result "
           "goes to accumulator addr + i and, with emit, onto dst"),
    OpSpec("VOP", 0x18, ("vxu",), "alu", ("vop", "src", "src2", "count", "chain", "dst"),
           "the VXU operation vop on count vectors of src (and src2) onto dst; with chain, operand a is the "
           "VXU's own latest result instead of src (a dependent operation without the MEM round trip)"),
    OpSpec("SETQ", 0x19, ("vxu",), "alu", ("mult", "shift", "zp"), "set the requantization parameters"),
    OpSpec("LOADLUT", 0x1A, ("vxu",), "alu", ("src",),
           "load the 256-entry table: entry j is lane j mod L of vector j // L of src"),
    OpSpec("SEND", 0x20, ("link",), "send", ("src", "count"),
           "vector i of src (sampled every link_interval cycles), i = 0 … count - 1, onto the link to the "
           "neighbouring chip on this slice's side"),
    OpSpec("RECV", 0x21, ("link",), "recv", ("count", "dst"),
           "the vector arriving on the link every link_interval cycles onto dst, i = 0 … count - 1"),
]}
OPCODE_BY_CODE = {o.code: o for o in OPCODES.values()}
#: The opcodes that address MEM words (``addr`` + ``count`` within ``mem_depth``).
MEM_OPS = ("READ", "WRITE", "READX", "WRITEX")


def used_fields(op, vop=None, emit=False):
    """Fields an instruction actually carries: the opcode's, less ``src2`` for a unary VOP and ``dst`` for a
    MATMUL without ``emit``."""
    spec = OPCODES[op]
    names = list(spec.fields)
    if op == "VOP" and vop in VXU_OPS and VXU_OPS[vop].arity == 1:
        names.remove("src2")
    if op == "MATMUL" and not emit:
        names.remove("dst")
    return tuple(names)


def syntax(op):
    """The canonical assembly form of ``op`` (``spec/asm.py`` parses and prints exactly this shape)."""
    spec = OPCODES[op]
    if op == "NOP":
        return "NOP <count>"
    parts = [op]
    if "vop" in spec.fields:
        parts.append("<vop>")
    parts += [f"<{n}>" if n != "src2" else "[<src2>]" for n in spec.fields if n in ("src", "src2")]
    parts += [f"{n}=<{n}>" for n in spec.fields if FIELDS[n].kind in ("uint", "sint", "count")]
    parts += [f"[{n}]" for n in spec.fields if FIELDS[n].kind == "flag"]
    if "dst" in spec.fields:
        parts.append("[-> <dst>]" if op == "MATMUL" else "-> <dst>")
    return " ".join(parts)


# ---- instructions -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Instruction:
    """One instruction. Give exactly the fields its opcode uses (``used_fields``); streams may be given as
    text (``"E3"``). Flags default to ``False``, other fields to ``None`` (absent)."""
    op: str
    count: int | None = None
    bank: int | None = None
    addr: int | None = None
    src: Stream | None = None
    src2: Stream | None = None
    dst: Stream | None = None
    vop: str | None = None
    swap: bool = False
    acc: bool = False
    emit: bool = False
    chain: bool = False
    mult: int | None = None
    shift: int | None = None
    zp: int | None = None
    lane: int | None = None

    def __post_init__(self):
        if not isinstance(self.op, str):
            raise _type_error("op", self.op, "an opcode name")
        if self.op not in OPCODES:
            raise ValueError(f"op must be one of {', '.join(OPCODES)}, not {self.op!r}")
        if self.op == "VOP":
            if not isinstance(self.vop, str):
                raise _type_error("vop", self.vop, f"one of {', '.join(VXU_OPS)}")
            if self.vop not in VXU_OPS:
                raise ValueError(f"vop must be one of {', '.join(VXU_OPS)}, not {self.vop!r}")
        used = used_fields(self.op, self.vop, self.emit)
        for name, f in FIELDS.items():
            value = getattr(self, name)
            if name not in used:
                if value is not None and value is not False:
                    raise ValueError(f"{self._what()} takes no {name}, got {name}={value!r}")
                continue
            if f.kind == "flag":
                if not isinstance(value, bool):
                    raise _type_error(name, value, "True or False")
            elif value is None:
                raise ValueError(f"{self._what()} needs {name}")
            elif f.kind == "stream":
                object.__setattr__(self, name, Stream.parse(value))
            elif f.kind != "vop":
                _check_int(name, value, f.lo, f.hi)

    def _what(self):
        if self.op == "VOP" and self.vop in VXU_OPS:
            return f"VOP {self.vop}"
        if self.op == "MATMUL":
            return "MATMUL with emit" if self.emit else "MATMUL without emit"
        return self.op

    @property
    def spec(self):
        return OPCODES[self.op]

    @property
    def legal(self):
        return True


@dataclass(frozen=True)
class IllegalInstruction:
    """A word the chip rejects whatever the configuration: ``error`` is its ``ErrorCode``."""
    word: int
    error: ErrorCode
    reason: str

    @property
    def legal(self):
        return False


class InstructionError(ValueError):
    """An instruction the configuration or slice kind does not allow; ``code`` is the chip's ``ErrorCode``."""

    def __init__(self, code, message, field=None):
        super().__init__(message)
        self.code = code
        self.field = field


@dataclass(frozen=True)
class Fault:
    code: ErrorCode
    field: str | None
    message: str


def encode(instr):
    """The 64-bit word of ``instr`` (an ``IllegalInstruction`` gives back its word)."""
    if isinstance(instr, IllegalInstruction):
        return instr.word
    if not isinstance(instr, Instruction):
        raise _type_error("instr", instr, "an Instruction")
    word = instr.spec.code << OPCODE_FIELD.lsb
    for name in used_fields(instr.op, instr.vop, instr.emit):
        f, value = FIELDS[name], getattr(instr, name)
        if f.kind == "stream":
            bits = value.bits()
        elif f.kind == "count":
            bits = value - 1
        elif f.kind == "flag":
            bits = int(value)
        elif f.kind == "vop":
            bits = VXU_OPS[value].code
        else:
            bits = value & ((1 << f.width) - 1)
        word |= bits << f.lsb
    return word


def decode(word):
    """The ``Instruction`` of a 64-bit word, or an ``IllegalInstruction`` saying why the chip rejects it."""
    if not _is_int(word):
        raise _type_error("word", word, "a 64-bit integer")
    if not 0 <= word < 1 << WORD_BITS:
        raise ValueError(f"word must be between 0 and 2**64 - 1, not {word!r}")
    code = (word & OPCODE_FIELD.mask) >> OPCODE_FIELD.lsb
    spec = OPCODE_BY_CODE.get(code)
    if spec is None:
        return IllegalInstruction(word, ErrorCode.ILLEGAL_OPCODE, f"opcode 0x{code:02x} is not assigned")
    values = {}

    def get(name):
        f = FIELDS[name]
        return (word & f.mask) >> f.lsb

    vop = None
    if "vop" in spec.fields:
        vx = _VXU_BY_CODE.get(get("vop"))
        if vx is None:
            return IllegalInstruction(word, ErrorCode.BAD_FIELD, f"VXU operation {get('vop')} is not assigned")
        vop = vx.name
    emit = bool(get("emit")) if "emit" in spec.fields else False
    used = used_fields(spec.name, vop, emit)
    mask = OPCODE_FIELD.mask
    for name in used:
        f, bits = FIELDS[name], get(name)
        mask |= f.mask
        if f.kind == "stream":
            values[name] = Stream.from_bits(bits)
        elif f.kind == "count":
            values[name] = bits + 1
        elif f.kind == "flag":
            values[name] = bool(bits)
        elif f.kind == "vop":
            values[name] = vop
        elif f.kind == "sint":
            values[name] = bits - (1 << f.width) if bits >> (f.width - 1) else bits
        else:
            if not f.lo <= bits <= f.hi:
                return IllegalInstruction(word, ErrorCode.BAD_FIELD,
                                          f"{spec.name} {name}={bits} is outside {f.lo}..{f.hi}")
            values[name] = bits
    stray = word & ~mask
    if stray:
        bits = [b for b in range(WORD_BITS) if stray >> b & 1]
        return IllegalInstruction(word, ErrorCode.BAD_FIELD,
                                  f"{spec.name} does not use bit{'s' if len(bits) > 1 else ''} "
                                  f"{', '.join(map(str, bits))}, which must be 0")
    return Instruction(spec.name, **values)


# ---- configuration-dependent checks -------------------------------------------------------------------
def _range_fault(code, name, value, hi, config, extra=""):
    return Fault(code, name, f"{name} must be between 0 and {hi} for config {config.name}{extra}, not {value}")


def _kind_reason(spec, kind):
    return (f"{spec.name} runs on {' or '.join(k.upper() for k in spec.kinds)} slices, "
            f"not on {kind.upper()} slices")


def _vop_fault(vop, config):
    return Fault(ErrorCode.ILLEGAL_OPCODE, "vop",
                 f"vop must be one of {', '.join(config.vxu_ops) or '(none)'} for config {config.name}, "
                 f"not {vop!r}")


def fault(instr, config, kind):
    """The fault the chip raises on issuing ``instr`` on a slice of ``kind`` in ``config`` (a
    ``spec.config.ChipConfig``), or ``None``. Only static checks: ``UNIT_BUSY``, ``STREAM_CONFLICT`` and
    ``QUEUE_OVERRUN`` depend on the schedule and are the simulators' business."""
    if isinstance(instr, IllegalInstruction):
        # The lowest code wins, also against what decode() found in the word alone: an opcode this slice
        # kind cannot run (or a VXU operation the configuration lacks) is ILLEGAL_OPCODE even when the word
        # has stray bits or an out-of-range field as well.
        if instr.error == ErrorCode.BAD_FIELD:
            spec = OPCODE_BY_CODE[(instr.word & OPCODE_FIELD.mask) >> OPCODE_FIELD.lsb]
            if spec.kinds is not None and kind not in spec.kinds:
                return Fault(ErrorCode.ILLEGAL_OPCODE, "op", _kind_reason(spec, kind))
            if "vop" in spec.fields:
                vx = _VXU_BY_CODE.get((instr.word & FIELDS["vop"].mask) >> FIELDS["vop"].lsb)
                if vx is not None and vx.name not in config.vxu_ops:
                    return _vop_fault(vx.name, config)
        return Fault(instr.error, None, instr.reason)
    if not isinstance(instr, Instruction):
        raise _type_error("instr", instr, "an Instruction or IllegalInstruction")
    spec = instr.spec
    if spec.kinds is not None and kind not in spec.kinds:
        return Fault(ErrorCode.ILLEGAL_OPCODE, "op", _kind_reason(spec, kind))
    if instr.op == "VOP" and instr.vop not in config.vxu_ops:
        return _vop_fault(instr.vop, config)
    if instr.lane is not None and instr.lane >= config.lanes:
        return Fault(ErrorCode.BAD_FIELD, "lane",
                     f"lane must be between 0 and {config.lanes - 1} (lanes) for config {config.name}, not "
                     f"{instr.lane}")
    if instr.bank is not None and instr.bank >= config.mem_banks:
        return _range_fault(ErrorCode.BAD_BANK, "bank", instr.bank, config.mem_banks - 1, config)
    if instr.addr is not None:
        depth, what = ((config.mem_depth, "mem_depth") if instr.op in MEM_OPS
                       else (config.mxu_acc_depth, "mxu_acc_depth"))
        if instr.addr >= depth:
            return _range_fault(ErrorCode.BAD_ADDRESS, "addr", instr.addr, depth - 1, config)
        if instr.addr + instr.count > depth:
            return Fault(ErrorCode.BAD_ADDRESS, "count",
                         f"count must be between 1 and {depth - instr.addr} from addr={instr.addr} for config "
                         f"{config.name} ({what} = {depth}), not {instr.count}")
    if instr.op == "LOADW" and instr.count > config.mxu_rows:
        return Fault(ErrorCode.BAD_ADDRESS, "count",
                     f"count must be between 1 and {config.mxu_rows} (mxu_rows) for config {config.name}, "
                     f"not {instr.count}")
    for name in ("src", "src2", "dst"):
        s = getattr(instr, name)
        if s is not None and s.index >= config.streams:
            return Fault(ErrorCode.BAD_STREAM, name,
                         f"{name} must be E0..E{config.streams - 1} or W0..W{config.streams - 1} for config "
                         f"{config.name}, not {s}")
    return None


def index_fault(instr, x, config):
    """The ``INDEX_RANGE`` fault of a READX/WRITEX ``instr`` whose sampled index is ``x`` (an int32), or ``None``."""
    depth = config.mem_depth
    if x < 0 or instr.addr + x + instr.count > depth:
        return Fault(ErrorCode.INDEX_RANGE, "lane",
                     f"{instr.op} index must be between 0 and {depth - instr.addr - instr.count} (addr={instr.addr}, "
                     f"count={instr.count}, mem_depth = {depth} of config {config.name}), not {x}")
    return None


def check(instr, config, kind):
    """``fault`` as an exception: raises ``InstructionError`` (with ``code`` and ``field``) or returns ``instr``."""
    f = fault(instr, config, kind)
    if f is not None:
        raise InstructionError(f.code, f.message, f.field)
    return instr


# ---- timing -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OpTiming:
    """Timing of one issued instruction, in cycles after its issue cycle ``t``.

    ``unit`` is busy during ``t … t + busy - 1`` (the next instruction for it may issue at ``t + busy``; for
    the ``queue`` unit, that is when the queue issues again). ``items`` items: item ``i`` is sampled from
    the input stream(s) during ``t + first_in + i·interval`` and/or written onto the output stream during
    ``t + first_out + i·interval`` (``None``: the operation has no such stream); ``interval`` is 1 but for
    the link opcodes (``link_interval``). ``in_items``, when given, is how many items are sampled (a READX
    samples one index and writes ``count`` words).
    """
    unit: str
    busy: int
    items: int
    first_in: int | None
    first_out: int | None
    #: Cycles after issue through the operation's last activity, inclusive of the issue cycle: the chip is
    #: done when every issued instruction's span has passed. A MATMUL without ``emit`` still counts its
    #: results (their accumulator write-back is in flight) even though nothing reaches a stream.
    last_result: int | None = None
    in_items: int | None = None
    interval: int = 1

    @property
    def items_in(self):
        """Items sampled from the input stream(s): ``in_items`` if given, else ``items``."""
        return self.items if self.in_items is None else self.in_items

    @property
    def span(self):
        span = self.busy
        if self.first_in is not None:
            span = max(span, self.first_in + (self.items_in - 1) * self.interval + 1)
        last = self.first_out if self.last_result is None else self.last_result
        if last is not None:
            span = max(span, last + (self.items - 1) * self.interval + 1)
        return span


def lut_vectors(lanes):
    """Vectors a LOADLUT reads: ``ceil(256 / lanes)``."""
    return math.ceil(LUT_ENTRIES / lanes)


def mxu_result_latency(config):
    """Cycles from a MATMUL's issue to its first result on ``dst``: ``MXU_INPUT_OFFSET`` plus the MXU's own
    latency (``spec.mxu.MXUParams.latency`` of ``config.mxu``)."""
    return MXU_INPUT_OFFSET + config.mxu.latency


def link_recv_delay(config):
    """Cycles from a SEND's issue to the issue of the RECV on the neighbouring chip that takes its vectors:
    item ``i`` is sampled during ``t + LINK_SEND_OFFSET + i·link_interval`` and taken ``link_latency`` cycles
    later, ``LINK_RECV_OFFSET`` after that RECV's issue plus ``i·link_interval``."""
    return LINK_SEND_OFFSET + config.link_latency - LINK_RECV_OFFSET


def timing(instr, config):
    """``OpTiming`` of ``instr`` in ``config``."""
    op = instr.op
    if op == "NOP":
        return OpTiming("queue", instr.count, 0, None, None)
    if op == "HALT":
        return OpTiming("queue", 1, 0, None, None)
    if op == "READ":
        return OpTiming("read", instr.count, instr.count, None, MEM_READ_LATENCY)
    if op == "WRITE":
        return OpTiming("write", instr.count, instr.count, MEM_WRITE_LATENCY, None)
    if op == "READX":        # the read port is taken from t + 2 to t + 1 + count
        return OpTiming("read", instr.count + MEM_INDEX_OFFSET, instr.count, MEM_INDEX_OFFSET, READX_LATENCY,
                        in_items=1)
    if op == "WRITEX":       # the index with item 0: the same sampling cycles as WRITE
        return OpTiming("write", instr.count, instr.count, MEM_WRITE_LATENCY, None)
    if op == "LOADW":
        return OpTiming("weights", instr.count, instr.count, MXU_INPUT_OFFSET, None)
    if op == "MATMUL":
        return OpTiming("array", instr.count, instr.count, MXU_INPUT_OFFSET,
                        mxu_result_latency(config) if instr.emit else None,
                        last_result=mxu_result_latency(config))
    if op == "VOP":
        return OpTiming("alu", instr.count, instr.count, VXU_INPUT_OFFSET, VXU_INPUT_OFFSET + VXU_PIPELINE)
    if op == "SETQ":
        return OpTiming("alu", 1, 0, None, None)
    if op == "LOADLUT":
        n = lut_vectors(config.lanes)
        return OpTiming("alu", n, n, VXU_INPUT_OFFSET, None)
    if op == "SEND":         # one vector every link_interval cycles: the link's rate is the unit's busy time
        return OpTiming("send", instr.count * config.link_interval, instr.count, LINK_SEND_OFFSET, None,
                        interval=config.link_interval)
    if op == "RECV":
        return OpTiming("recv", instr.count * config.link_interval, instr.count, None, LINK_RECV_OFFSET,
                        interval=config.link_interval)
    raise AssertionError(op)  # every opcode is handled above


# ---- documentation ------------------------------------------------------------------------------------
DOC_COMMAND = ".venv/bin/python -m spec.isa --doc > docs/isa.md"


def _md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown():
    """The text of ``docs/isa.md``, generated from the tables of this module."""
    from spec.config import PRESETS  # the presets' latencies; spec.config imports this module
    out = [
        "# The instruction set",
        "",
        f"<!-- Generated from spec/isa.py by `{DOC_COMMAND}`; do not edit by hand. -->",
        "",
        "Every slice runs one queue of 64-bit instruction words (docs/chip.md). An instruction **issues** on",
        "the cycle it leaves its queue; a queue issues at most one instruction per cycle, in order. An",
        "operation with a `count` runs for `count` consecutive cycles on its unit while the queue moves on.",
        "",
        "## Word layout",
        "",
        "`op` is bits 63:58 in every word. The other fields sit at fixed positions; fields of different",
        "opcodes may share bits (`bank`/`vop`, SETQ's immediates), fields of one opcode never do. Bits an",
        "instruction does not use must be 0 (else `BAD_FIELD`). The all-zero word is not an instruction",
        "(opcode 0 is unassigned), so a queue that runs into unloaded memory stops with `ILLEGAL_OPCODE`.",
        "A stream is 6 bits: bit 5 the direction (0 = E, 1 = W), bits 4:0 the index.",
        "",
        _md_table(["field", "bits", "width", "values", "meaning"],
                  [[f"`{OPCODE_FIELD.name}`", OPCODE_FIELD.bits_text(), OPCODE_FIELD.width, "see opcodes",
                    OPCODE_FIELD.meaning]]
                  + [[f"`{f.name}`", f.bits_text(), f.width, f.range_text(), f.meaning] for f in FIELDS.values()]),
        "",
        "## Opcodes",
        "",
        _md_table(["op", "code", "slices", "unit", "assembly", "meaning"],
                  [[f"`{o.name}`", f"0x{o.code:02X}", "all" if o.kinds is None else ", ".join(o.kinds),
                    o.unit, f"`{syntax(o.name)}`", o.summary] for o in OPCODES.values()]),
        "",
        "A unary VOP has no `src2`; a MATMUL has `-> dst` exactly when it has `emit`. Opcodes are grouped by",
        "slice kind in bits 5:3 (0 all, 1 MEM, 2 MXU, 3 VXU, 4 link).",
        "",
        "## VXU operations",
        "",
        _md_table(["vop", "code", "inputs", "result"],
                  [[f"`{v.name}`", v.code, "a, b" if v.arity == 2 else "a", v.meaning] for v in VXU_OPS.values()]),
        "",
        "## Timing",
        "",
        "Offsets are from the issue cycle `t`; item `i` of a `count` form is `i` cycles after item 0. A unit",
        "is busy for `busy` cycles from `t`; issuing to a busy unit is `UNIT_BUSY`.",
        "",
        _md_table(["op", "unit", "busy", "stream in (item 0)", "stream out (item 0)"], [
            ["`NOP n`", "queue", "n (the queue issues again at t + n)", "", ""],
            ["`READ`", "read", "count", "", f"t + {MEM_READ_LATENCY} (`MEM_READ_LATENCY`)"],
            ["`WRITE`", "write", "count", f"t + {MEM_WRITE_LATENCY} (`MEM_WRITE_LATENCY`)", ""],
            ["`READX`", "read", "count + 1", f"t + {MEM_INDEX_OFFSET} (`MEM_INDEX_OFFSET`; the index only)",
             f"t + {READX_LATENCY} (`READX_LATENCY`)"],
            ["`WRITEX`", "write", "count", f"t + {MEM_WRITE_LATENCY} (data; the index with item 0)", ""],
            ["`LOADW`", "weights", "count", f"t + {MXU_INPUT_OFFSET} (`MXU_INPUT_OFFSET`)", ""],
            ["`MATMUL`", "array", "count", f"t + {MXU_INPUT_OFFSET}",
             f"t + {MXU_INPUT_OFFSET} + `MXUParams.latency` (with emit)"],
            ["`VOP`", "alu", "count", f"t + {VXU_INPUT_OFFSET} (`VXU_INPUT_OFFSET`)",
             f"t + {VXU_INPUT_OFFSET + VXU_PIPELINE} (`VXU_INPUT_OFFSET + VXU_PIPELINE`)"],
            ["`SETQ`", "alu", "1", "", ""],
            ["`LOADLUT`", "alu", f"ceil({LUT_ENTRIES} / L)", f"t + {VXU_INPUT_OFFSET}", ""],
            ["`SEND`", "send", "count · I", f"t + {LINK_SEND_OFFSET} (`LINK_SEND_OFFSET`); item i at + i · I", ""],
            ["`RECV`", "recv", "count · I", "(the link)",
             f"t + {LINK_RECV_OFFSET} (`LINK_RECV_OFFSET`); item i at + i · I"],
        ]),
        "",
        f"* MEM: READ presents word `addr + i`'s address during `t + {MEM_DECODE_STAGES} + i`; the SRAM answers",
        f"  {MEM_SRAM_READ_STAGES} cycles later. WRITE stores at the end of the cycle it samples. A read",
        "  presented during cycle `u` sees the writes stored before `u` (not one stored during `u`).",
        f"* READX samples its index `x` (lane `lane` of `src`, a signed int32) during `t + {MEM_INDEX_OFFSET}`,",
        f"  presents word `addr + x + i` during `t + {MEM_INDEX_OFFSET + MEM_DECODE_STAGES} + i` and writes it on",
        f"  `dst` during `t + {READX_LATENCY} + i`. WRITEX samples `x` (lane `lane` of `src2`) with data item 0",
        "  and stores item `i` into word `addr + x + i`. An `x` below 0 or past the bank faults `INDEX_RANGE`",
        "  in the sampling cycle (nothing read or stored): the timing is static, only the address is data.",
        "* MXU: LOADW/MATMUL items go to the MXU's inputs in the cycle they are sampled, so the MXU contract",
        "  of `spec/mxu.py` applies with `t_w`, `t_a` the sampling cycles: a LOADW issued any cycle before",
        "  the MATMUL whose first activation swaps is in time. MATMUL: `swap` applies to the first",
        "  activation; `acc` and `emit` to all; activation `i` uses accumulator `addr + i`.",
        "* VXU: a SETQ issued at `t` is in force for operands sampled from `t + 1`. LOADLUT vector `j` gives",
        "  entries `j·L …`; lanes past entry 255 are ignored. A VOP with `chain` takes operand `a` of the item",
        "  it samples during `u` from the VXU's latest result: the last vector it put on its output during `u`",
        "  or before (0 after reset), so an item sampled during `u` chains to the one sampled during",
        f"  `u - {VXU_PIPELINE}` (`VXU_PIPELINE`); `src` is not read. A dependent VOP issued {VXU_PIPELINE} cycles",
        "  after the one it uses skips the MEM round trip (`compiler/phases.py` `_chained_pass`).",
        "* Links (`link` slices at a chip's ends, docs/multichip.md; `I` = `link_interval`, `D` =",
        "  `link_latency` of the configuration): a vector a SEND samples during `u` is taken by a RECV on the",
        "  neighbouring chip during `u + D` and written onto its `dst` in that cycle, so that RECV issues",
        "  `link_recv_delay(config)` = `LINK_SEND_OFFSET + D - LINK_RECV_OFFSET` cycles after the SEND. The",
        "  units' busy time `count · I` keeps each link at its rate: a SEND (RECV) may issue again `count · I`",
        "  cycles after the last, sooner is `UNIT_BUSY`. A RECV item with no word arriving is `RECV_EMPTY`,",
        "  a word arriving where no RECV item takes it `LINK_DROPPED`.",
        "",
        _md_table(["preset", "L", "MEM read", "MEM write", "MXU result", "VXU result", "LOADLUT busy"],
                  [[p.name, p.lanes, MEM_READ_LATENCY, MEM_WRITE_LATENCY, mxu_result_latency(p),
                    VXU_INPUT_OFFSET + VXU_PIPELINE, lut_vectors(p.lanes)] for p in PRESETS.values()]),
        "",
        "## Faults",
        "",
        "A fault is sticky: (code, slice, pc), the chip stops issuing everywhere in that cycle. When several",
        "apply to one instruction, the lowest code wins. Codes 10 and up are the link slices' run-time faults",
        "(`LinkErrorCode`, raised by the link slice itself, rtl/link.py; docs/multichip.md).",
        "",
        _md_table(["code", "name", "meaning"], [[int(c), f"`{c.name}`", c.meaning] for c in FAULT_CODES]),
        "",
        "## Assembly",
        "",
        "`spec/asm.py` assembles text into per-slice word lists and disassembles back; both directions",
        "round-trip exactly.",
        "",
        "```",
        ".slice mem0              ; a section per slice: by name (kind + ordinal, or the bare kind",
        "    READ bank=0 addr=0 count=16 -> E3   ; when it is the only one of its kind) or by index",
        "    NOP 5",
        "    HALT",
        ".slice 2",
        "    LOADW E3 count=4",
        "    MATMUL E2 count=64 addr=0 swap emit -> W1",
        "    .word 0x0000000000000000   ; a raw word (any 64-bit value; tests of faults)",
        "    HALT",
        "```",
        "",
        "* One instruction per line; `;` starts a comment; mnemonics, VXU operations, flags and streams are",
        "  case-insensitive (printed upper-case, lower-case, lower-case, upper-case). Integers are decimal or",
        "  `0x` hex.",
        "* Input streams are positional after the mnemonic (and the VXU operation); `key=value` immediates and",
        "  bare flags follow in any order; the output stream comes last after `->`. `NOP` alone is `NOP 1`.",
        "* A slice without a section gets the program `HALT`; a section holds exactly what it lists (a missing",
        "  HALT runs into unloaded words: `ILLEGAL_OPCODE`). A section may appear once; a program may hold at",
        "  most `queue_depth` words.",
        "* The disassembler prints the canonical form: sections in slice order by canonical name, the",
        "  instructions indented four spaces with fields in the order of the table above, a HALT-only slice",
        "  left out, and a word that faults statically on its slice as `.word` with the fault as a comment.",
        "",
    ]
    return "\n".join(out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["--doc"]:
        print("usage: python -m spec.isa --doc > docs/isa.md", file=sys.stderr)
        return 2
    sys.stdout.write(render_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())


def check_programs(programs, config):
    """Check that ``programs`` holds one word list per slice of ``config``; return them as lists."""
    if not isinstance(programs, (list, tuple)) or len(programs) != len(config.slices):
        raise ValueError(f"programs must be a list of {len(config.slices)} word lists (one per slice of config "
                         f"{config.name}), not {programs!r}")
    return [list(words) for words in programs]

