"""Assembler and disassembler of the chip's instruction queues (the syntax of docs/isa.md).

``assemble(text, config)`` turns program text into one list of 64-bit words per slice (``config.slices``
order); ``disassemble(programs, config)`` prints the canonical text back. Both read ``spec.isa`` only, and
they round-trip exactly: ``assemble(disassemble(p, c), c) == p`` for any per-slice word lists (a word the
slice would reject prints as ``.word``), and canonical text (``disassemble``'s output) reassembles and
prints to itself.

Syntax::

    ; comment to the end of the line
    .slice mem0                          ; a section per slice: canonical name (kind + ordinal: mem0,
        READ bank=0 addr=0 count=16 -> E3    ; mxu0 ...), the bare kind when it has one slice (mxu),
        NOP 5                            ; or the index (.slice 2)
        HALT
    .slice mxu
        LOADW E3 count=4
        MATMUL E2 count=64 addr=0 swap emit -> W1
        .word 0x0000000000000000         ; a raw 64-bit word, any value (for tests of faults)
        HALT
    .slice vxu0
        SETQ mult=1073741824 shift=0 zp=-3
        VOP add E1 W2 count=8 -> E0      ; VOP <operation> <inputs> count=<n> -> <output>
        VOP relu E0 count=8 -> W1

* One instruction per line, in the forms ``spec.isa.syntax(op)`` gives. Input streams are positional after
  the mnemonic (and the VXU operation), ``key=value`` immediates and bare flags follow in any order, the
  output stream comes after ``->``. ``NOP`` alone means ``NOP 1``. Mnemonics, operations, flags and streams
  are case-insensitive; integers are decimal or ``0x`` hex.
* A slice without a section gets the program ``HALT``; a section holds exactly what it lists. A section may
  appear once; a program holds at most ``queue_depth`` words.
* Every error is an ``AsmError`` (a ``ValueError``) whose message starts ``line N: '<text>': `` and says
  what is allowed, e.g. ``line 7: 'MATMLU E2 count=4 addr=0': unknown mnemonic 'MATMLU' (did you mean
  MATMUL?)``. Configuration limits (banks, depth, streams, VXU operations, slice kinds) are checked with
  ``spec.isa.check``.
"""
import difflib
import re

from spec import isa
from spec.isa import FIELDS, OPCODES, VXU_OPS, Instruction, Stream

__all__ = ["AsmError", "assemble", "disassemble", "parse_instruction", "format_instruction", "HALT_WORD"]

HALT_WORD = isa.encode(Instruction("HALT"))
_INDENT = "    "


class AsmError(ValueError):
    """An assembly error: ``line`` (1-based, or ``None``), ``text`` (the source line), ``reason``."""

    def __init__(self, line, text, reason):
        self.line, self.text, self.reason = line, text, reason
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{where}{text.strip()!r}: {reason}" if text is not None else f"{where}{reason}")


def _suggest(word, choices):
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _int(name, text):
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError(f"{name} must be an integer, not {text!r}") from None


def parse_instruction(text):
    """One instruction (without comment) → ``Instruction``; ``ValueError``/``TypeError`` say what is wrong."""
    tokens = text.replace("->", " -> ").replace(",", " ").split()
    # "key = value" → "key=value"
    joined = []
    for tok in tokens:
        if joined and (tok == "=" or tok.startswith("=") or joined[-1].endswith("=")) and joined[-1] != "->":
            joined[-1] += tok
        else:
            joined.append(tok)
    tokens = joined
    if not tokens:
        raise ValueError("empty instruction")
    mnemonic = tokens[0].upper()
    if mnemonic not in OPCODES:
        raise ValueError(f"unknown mnemonic {tokens[0]!r}{_suggest(mnemonic, OPCODES)}")
    spec = OPCODES[mnemonic]
    rest = tokens[1:]
    out = None
    if "->" in rest:
        at = rest.index("->")
        after = rest[at + 1:]
        if "dst" not in spec.fields:
            raise ValueError(f"{mnemonic} has no output stream ('->'); the form is {isa.syntax(mnemonic)}")
        if len(after) != 1:
            raise ValueError(f"'->' must be followed by exactly one stream, not {' '.join(after)!r}")
        out = Stream.parse(after[0])
        rest = rest[:at]
    kw = {}
    if mnemonic == "NOP":
        if len(rest) > 1:
            raise ValueError(f"NOP takes one count, not {' '.join(rest)!r}")
        if not rest:
            return Instruction("NOP", count=1)
        key, _, value = rest[0].rpartition("=")
        if key.lower() not in ("", "count"):
            raise ValueError(f"NOP takes one count, not {rest[0]!r}")
        return Instruction("NOP", count=_int("count", value))
    if spec.name == "VOP":
        if not rest or "=" in rest[0]:
            raise ValueError(f"VOP needs an operation, one of {', '.join(VXU_OPS)}")
        vop = rest.pop(0).lower()
        if vop not in VXU_OPS:
            raise ValueError(f"unknown VXU operation {vop!r}{_suggest(vop, VXU_OPS)}; the operations are "
                             f"{', '.join(VXU_OPS)}")
        kw["vop"] = vop
    inputs = [n for n in spec.fields if n in ("src", "src2")]
    if spec.name == "VOP" and VXU_OPS[kw["vop"]].arity == 1:
        inputs.remove("src2")
    flags = [n for n in spec.fields if FIELDS[n].kind == "flag"]
    immediates = [n for n in spec.fields if FIELDS[n].kind in ("uint", "sint", "count")]
    streams = []
    what = f"VOP {kw['vop']}" if spec.name == "VOP" else mnemonic
    for tok in rest:
        if "=" in tok:
            key, value = tok.split("=", 1)
            key = key.lower()
            if key not in immediates:
                allowed = ", ".join(immediates) or "none"
                raise ValueError(f"{what} has no field {key!r}{_suggest(key, immediates)}; its fields are "
                                 f"{allowed}")
            if key in kw:
                raise ValueError(f"{key} is given twice")
            kw[key] = _int(key, value)
        elif tok.lower() in flags:
            if tok.lower() in kw:
                raise ValueError(f"{tok.lower()} is given twice")
            kw[tok.lower()] = True
        else:
            try:
                s = Stream.parse(tok)
            except ValueError as e:
                if re.fullmatch(r"[EW][-+]?\d+", tok, re.IGNORECASE):    # a stream, out of range
                    raise ValueError(f"input stream {tok!r} is out of range: {e}") from None
                allowed = f"the flags {', '.join(flags)}" if flags else "no flags"
                plural = "s" if len(inputs) != 1 else ""
                raise ValueError(f"unexpected {tok!r}: {what} takes {len(inputs)} input stream{plural}, "
                                 f"key=value fields and {allowed}; the form is {isa.syntax(mnemonic)}") from None
            streams.append(s)
    if len(streams) != len(inputs):
        raise ValueError(f"{what} takes {len(inputs)} input stream{'s' if len(inputs) != 1 else ''}, "
                         f"not {len(streams)}; the form is {isa.syntax(mnemonic)}")
    kw.update(zip(inputs, streams))
    if out is not None:
        kw["dst"] = out
    if spec.name == "MATMUL" and kw.get("emit") and out is None:
        raise ValueError("MATMUL with emit needs '-> <stream>' for its results")
    if spec.name == "MATMUL" and out is not None and not kw.get("emit"):
        raise ValueError("MATMUL with '-> <stream>' needs the emit flag")
    if spec.name != "MATMUL" and "dst" in spec.fields and out is None:
        raise ValueError(f"{what} needs '-> <stream>' for its results")
    for name in immediates:
        if name not in kw:
            raise ValueError(f"{what} needs {name}=<{name}>; the form is {isa.syntax(mnemonic)}")
    return Instruction(spec.name, **kw)


def format_instruction(instr):
    """The canonical text of an ``Instruction`` (the form ``spec.isa.syntax`` describes)."""
    if instr.op == "NOP":
        return f"NOP {instr.count}"
    parts = [instr.op]
    if instr.op == "VOP":
        parts.append(instr.vop)
    used = isa.used_fields(instr.op, instr.vop, instr.emit)
    parts += [str(getattr(instr, n)) for n in used if n in ("src", "src2")]
    parts += [f"{n}={getattr(instr, n)}" for n in used if FIELDS[n].kind in ("uint", "sint", "count")]
    parts += [n for n in used if FIELDS[n].kind == "flag" and getattr(instr, n)]
    if "dst" in used:
        parts += ["->", str(instr.dst)]
    return " ".join(parts)


def _strip(line):
    return line.split(";", 1)[0].strip()


def assemble(text, config):
    """Program text → one list of 64-bit words per slice of ``config`` (a ``spec.config.ChipConfig``)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, not {text!r}")
    programs = [None] * len(config.slices)
    started = {}
    current = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = _strip(raw)
        if not line:
            continue
        if line.startswith("."):
            directive, _, arg = line.partition(" ")
            directive, arg = directive.lower(), arg.strip()
            if directive == ".slice":
                if not arg:
                    raise AsmError(n, line, f".slice needs a slice: one of {', '.join(config.slice_names)} "
                                            f"or an index 0..{len(config.slices) - 1}")
                ref = int(arg) if arg.isdigit() else arg.lower()
                try:
                    index = config.slice_index(ref)
                except ValueError as e:
                    hint = _suggest(ref, config.slice_names) if isinstance(ref, str) else ""
                    raise AsmError(n, line, f"{e}{hint}") from None
                if index in started:
                    raise AsmError(n, line, f"slice {config.slice_names[index]} already has a section "
                                            f"(line {started[index]})")
                started[index] = n
                programs[index] = []
                current = index
                continue
            if directive == ".word":
                if current is None:
                    raise AsmError(n, line, "'.word' outside a section: start one with '.slice <name or index>'")
                try:
                    word = int(arg, 0)
                except ValueError:
                    raise AsmError(n, line, f".word needs an integer between 0 and 2**64 - 1, not {arg!r}") from None
                if not 0 <= word < 1 << isa.WORD_BITS:
                    raise AsmError(n, line, f".word needs an integer between 0 and 2**64 - 1, not {arg}")
                programs[current].append(word)
                continue
            raise AsmError(n, line, f"unknown directive {directive!r}{_suggest(directive, ['.slice', '.word'])}; "
                                    f"the directives are .slice and .word")
        if current is None:
            raise AsmError(n, line, "instruction outside a section: start one with '.slice <name or index>'")
        try:
            instr = parse_instruction(line)
            isa.check(instr, config, config.slices[current])
        except (ValueError, TypeError) as e:
            reason = str(e)
            if isinstance(e, isa.InstructionError):
                reason = f"{reason} ({e.code.name} on slice {config.slice_names[current]})"
            raise AsmError(n, line, reason) from None
        programs[current].append(isa.encode(instr))
    for index, program in enumerate(programs):
        if program is None:
            programs[index] = [HALT_WORD]
        elif len(program) > config.queue_depth:
            raise AsmError(started[index], None,
                           f"slice {config.slice_names[index]} has {len(program)} words, more than queue_depth "
                           f"= {config.queue_depth} of config {config.name}")
    return programs


def disassemble(programs, config):
    """Per-slice word lists → canonical program text (see the module docstring)."""
    sections = []
    for index, words in enumerate(isa.check_programs(programs, config)):
        if words == [HALT_WORD]:
            continue
        lines = [f".slice {config.slice_names[index]}"]
        for word in words:
            instr = isa.decode(word)
            f = isa.fault(instr, config, config.slices[index])
            if f is None:
                lines.append(_INDENT + format_instruction(instr))
            else:
                what = "" if not instr.legal else format_instruction(instr) + ": "
                lines.append(f"{_INDENT}.word 0x{word:016x}  ; {f.code.name}: {what}{f.message}")
        sections.append("\n".join(lines) + "\n")
    return "\n".join(sections)
