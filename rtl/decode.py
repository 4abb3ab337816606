"""The instruction decoder of a slice's queue (docs/chip.md, "Instruction queues and units", "Faults").

:class:`Decoder` is combinational: from a 64-bit instruction word it gives the static fault the chip raises
on issuing it on a slice of one kind (``spec.isa.fault(spec.isa.decode(word), config, kind)``, with the same
priority: the lowest code wins), the unit the instruction occupies, for how many cycles, and its activity
span (``spec.isa.timing``).

Nothing here is a copy of the ISA: the opcode numbers, field positions and masks, the fields each opcode
carries (``spec.isa.used_fields``, which depend on the VXU operation's arity and on MATMUL's ``emit``), the
field ranges, the limits of the configuration (banks, depth, streams, the MXU's rows, the VXU's operations)
and the busy/span formulas are worked out in Python at elaboration time from ``spec.isa`` and
``spec.config``:

* the *variants* of an opcode are its values of the fields ``used_fields`` depends on (``vop``, ``emit``);
  variants with the same rules share logic;
* the limits a configuration puts on a field (and the error code of crossing them) are found by asking
  ``spec.isa.fault`` about instructions that differ from a fault-free one in that field alone (a binary
  search; the rule ``addr + count <= depth`` of an opcode with both ``addr`` and ``count`` likewise), and
  checked at a few more points (READX/WRITEX's ``lane`` below ``lanes`` is such a limit, ``BAD_FIELD``);
* ``busy`` and ``span`` are linear in ``count``: ``spec.isa.timing`` at counts 1 and 2 gives the formula,
  checked at more counts.

Only opcodes legal on the slice kind are decoded in detail; every other opcode (unassigned ones included)
is ``ILLEGAL_OPCODE``.

Contract (``word`` In(64); every output a function of ``word`` alone)
-------------------------------------------------------------------
``fault_code``
    ``spec.isa.fault(spec.isa.decode(word), config, kind).code``, or 0 (``OK``) when there is none.
``is_queue_op``, ``halt``, ``nop``
    The instruction runs on the queue itself (NOP, HALT); it is a HALT; it is a NOP.
``unit``
    Index into ``spec.config.SLICE_KINDS[kind].units`` of the unit it occupies (0 for queue operations).
``busy``
    ``timing(instr, config).busy``: cycles the unit (the queue, for NOP) is busy from the issue cycle.
``span``
    ``timing(instr, config).span``: cycles from the issue cycle through its last activity.

The outputs other than ``fault_code`` are meaningful only when ``fault_code`` is 0.
"""
import dataclasses

from amaranth.hdl import Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec import isa
from spec.config import SLICE_KINDS
from spec.isa import FIELDS, OPCODE_FIELD, OPCODES, VXU_OPS, ErrorCode

from .common import check_config_kind, field

__all__ = ["Decoder", "OpcodeRule", "VariantRule", "decode_plan"]

#: Fields whose value changes which fields an instruction carries (the parameters of ``used_fields``).
_VARIANT_FIELDS = ("vop", "emit")
#: Field kinds whose configuration limits are probed (a fault from some value upward).
_PROBED_KINDS = ("stream", "uint", "count")
_COUNTS_CHECKED = (1, 2, 3, 17, 1000, isa.MAX_COUNT)


@dataclasses.dataclass(frozen=True)
class VariantRule:
    """What the decoder checks for one group of variants of an opcode (all fields Python values).

    ``illegal``: the variant faults ``ILLEGAL_OPCODE`` whatever the other bits (a VXU operation the
    configuration lacks). Otherwise: ``mask`` the bits the variant may set (opcode included); ``ranges``
    ``(field, lo, hi)`` a field value outside is ``BAD_FIELD``; ``limits`` ``(field, max_ok, code)`` a value
    (a stream's index) above ``max_ok`` faults ``code``; ``joint`` ``(depth, code)``: ``addr + count >
    depth`` faults ``code``; ``busy``/``span`` ``(a, b)``: ``a + b * count`` (``count`` 0 for opcodes without
    one)."""
    illegal: bool
    mask: int = 0
    ranges: tuple = ()
    limits: tuple = ()
    joint: tuple | None = None
    busy: tuple = (0, 0)
    span: tuple = (0, 0)


@dataclasses.dataclass(frozen=True)
class OpcodeRule:
    """An opcode legal on the slice kind: its spec, the unit index (``None`` for the queue) and its variant
    groups ``((conditions, VariantRule), ...)``, each condition a dict ``{field: value}`` of variant
    fields; ``unassigned_vop``: the ``vop`` codes no operation has (``BAD_FIELD``)."""
    spec: isa.OpSpec
    unit: int | None
    groups: tuple
    unassigned_vop: tuple


def _base_instruction(spec, variant):
    """A fault-free (if the variant allows it) instruction of ``spec`` with the variant's fields: every
    other used field at its lowest value (streams E0, count 1, addr/bank 0, SETQ mult 1)."""
    vop = variant.get("vop")
    emit = bool(variant.get("emit", False))
    kwargs = {}
    for name in isa.used_fields(spec.name, vop, emit):
        f = FIELDS[name]
        if f.kind == "stream":
            kwargs[name] = isa.Stream(isa.DIRECTIONS[0], 0)
        elif f.kind == "flag":
            kwargs[name] = bool(variant.get(name, False))
        elif f.kind == "vop":
            kwargs[name] = vop
        else:
            kwargs[name] = 0 if f.lo <= 0 <= f.hi else f.lo
    return isa.Instruction(spec.name, **kwargs)


def _code(instr, config, kind):
    f = isa.fault(instr, config, kind)
    return ErrorCode.OK if f is None else f.code


def _probe(make, lo, hi, config, kind, what):
    """Largest ``v`` in ``lo .. hi`` for which ``make(v)`` does not fault, and the code of ``make(v + 1)``
    (``None`` if ``hi`` itself is fine). ``make(lo)`` must not fault; faults must hold from some value up."""
    code = lambda v: _code(make(v), config, kind)  # noqa: E731
    if code(lo) != ErrorCode.OK:
        raise AssertionError(f"{what}: the lowest value {lo} already faults")
    if code(hi) == ErrorCode.OK:
        return hi, None
    good, bad = lo, hi
    while bad - good > 1:
        mid = (good + bad) // 2
        if code(mid) == ErrorCode.OK:
            good = mid
        else:
            bad = mid
    fault_code = code(bad)
    for v in {bad, (bad + hi) // 2, hi}:   # a limit, not a hole: every value above faults the same way
        if code(v) != fault_code:
            raise AssertionError(f"{what}: fault at {v} is {code(v)!r}, at {bad} {fault_code!r}")
    # The decoder raises every code it finds and the lowest wins: a limit that is BAD_FIELD (READX/WRITEX's
    # lane at or above the configuration's lanes) ranks as spec.isa.fault ranks it, after ILLEGAL_OPCODE and
    # with the word's own BAD_FIELD checks. An ILLEGAL_OPCODE limit would need the variant logic instead.
    if fault_code <= ErrorCode.ILLEGAL_OPCODE:
        raise AssertionError(f"{what}: limit fault {fault_code!r} would need a different priority")
    return good, fault_code


def _variant_rule(spec, variant, config, kind):
    base = _base_instruction(spec, variant)
    base_code = _code(base, config, kind)
    if base_code != ErrorCode.OK:
        # Only a variant-wide ILLEGAL_OPCODE (a VXU operation the configuration lacks) can fault the lowest
        # values; it wins over everything else in the word, as spec.isa.fault has it.
        if base_code != ErrorCode.ILLEGAL_OPCODE:
            raise AssertionError(f"{spec.name} {variant}: the lowest field values fault {base_code!r}")
        return VariantRule(illegal=True)
    used = isa.used_fields(spec.name, variant.get("vop"), bool(variant.get("emit", False)))
    mask = OPCODE_FIELD.mask
    ranges = []
    for name in used:
        f = FIELDS[name]
        mask |= f.mask
        if f.kind == "uint" and (f.lo > 0 or f.hi < (1 << f.width) - 1):   # decode()'s range check
            ranges.append((name, f.lo, f.hi))
    what = f"{spec.name} {variant}"
    with_ = lambda **kw: dataclasses.replace(base, **kw)  # noqa: E731
    limits = []
    joint = None
    probed = [n for n in used if FIELDS[n].kind in _PROBED_KINDS]
    if "addr" in probed and "count" in probed:
        # addr .. addr + count - 1 must fit: find the depth from the largest addr with count 1 and the
        # largest count there, then check the rule at more addresses.
        a_max, a_code = _probe(lambda a: with_(addr=a), FIELDS["addr"].lo, FIELDS["addr"].hi, config, kind,
                               f"{what} addr")
        c_max, c_code = _probe(lambda c: with_(addr=a_max, count=c), 1, isa.MAX_COUNT, config, kind,
                               f"{what} count at addr={a_max}")
        depth = a_max + c_max
        codes = {c for c in (a_code, c_code) if c is not None}
        if len(codes) > 1:
            raise AssertionError(f"{what}: addr and count faults differ: {codes}")
        code = codes.pop() if codes else None
        for a in sorted({0, 1, a_max // 2, a_max}):
            want = min(isa.MAX_COUNT, depth - a)
            got, got_code = _probe(lambda c, a=a: with_(addr=a, count=c), 1, isa.MAX_COUNT, config, kind,
                                   f"{what} count at addr={a}")
            if got != want or (got_code not in (None, code)):
                raise AssertionError(f"{what}: count limit at addr={a} is {got} ({got_code!r}), "
                                     f"expected {want} from addr + count <= {depth}")
        if code is not None:
            joint = (depth, code)
        probed = [n for n in probed if n not in ("addr", "count")]
    for name in probed:
        f = FIELDS[name]
        if f.kind == "stream":
            make = lambda i, name=name: with_(**{name: isa.Stream(isa.DIRECTIONS[0], i)})  # noqa: E731
            lo, hi = 0, isa.MAX_STREAMS - 1
        else:
            make = lambda v, name=name: with_(**{name: v})  # noqa: E731
            lo, hi = f.lo, f.hi
        max_ok, code = _probe(make, lo, hi, config, kind, f"{what} {name}")
        if f.kind == "stream":
            for d in isa.DIRECTIONS:   # the limit is on the index, whatever the direction
                for i, want in ((max_ok, ErrorCode.OK), (max_ok + 1, code)):
                    if i < isa.MAX_STREAMS and _code(with_(**{name: isa.Stream(d, i)}), config, kind) != want:
                        raise AssertionError(f"{what} {name}: {d}{i} does not fault {want!r}")
        if code is not None:
            limits.append((name, max_ok, code))

    def coefficients(attr):
        if "count" not in used:
            return (getattr(isa.timing(base, config), attr), 0)
        v1, v2 = (getattr(isa.timing(with_(count=c), config), attr) for c in (1, 2))
        a, b = 2 * v1 - v2, v2 - v1
        for c in _COUNTS_CHECKED:
            got = getattr(isa.timing(with_(count=c), config), attr)
            if got != a + b * c:
                raise AssertionError(f"{what}: timing {attr} at count={c} is {got}, not linear ({a} + {b}·count)")
        return (a, b)

    unit = isa.timing(base, config).unit
    if unit != spec.unit:
        raise AssertionError(f"{what}: timing unit {unit!r} is not the opcode's unit {spec.unit!r}")
    return VariantRule(False, mask, tuple(ranges), tuple(limits), joint, coefficients("busy"),
                       coefficients("span"))


def _variants(spec):
    """Every combination of the variant fields ``spec`` carries, as dicts ``{field: value}``."""
    out = [{}]
    for name in _VARIANT_FIELDS:
        if name not in spec.fields:
            continue
        if FIELDS[name].kind == "vop":
            values = sorted(v.code for v in VXU_OPS.values())
        elif FIELDS[name].kind == "flag":
            values = [0, 1]
        else:  # pragma: no cover - only vop and flag fields select variants
            raise AssertionError(name)
        out = [{**v, name: x} for v in out for x in values]
    return out


def _as_instruction_variant(variant):
    """``{"vop": code, "emit": 0/1}`` (word values) → keyword form for ``_base_instruction``."""
    by_code = {v.code: v.name for v in VXU_OPS.values()}
    return {k: (by_code[v] if k == "vop" else v) for k, v in variant.items()}


def decode_plan(config, kind):
    """The ``OpcodeRule`` of every opcode legal on ``kind``, worked out from ``spec.isa`` (module docstring)."""
    units = SLICE_KINDS[kind].units
    plan = []
    for spec in OPCODES.values():
        if spec.kinds is not None and kind not in spec.kinds:
            continue
        groups = {}
        for variant in _variants(spec):
            rule = _variant_rule(spec, _as_instruction_variant(variant), config, kind)
            groups.setdefault(rule, []).append(variant)
        unassigned = ()
        if "vop" in spec.fields:
            assigned = {v.code for v in VXU_OPS.values()}
            unassigned = tuple(c for c in range(1 << FIELDS["vop"].width) if c not in assigned)
        unit = None if spec.unit == "queue" else units.index(spec.unit)
        plan.append(OpcodeRule(spec, unit, tuple((tuple(c), r) for r, c in groups.items()), unassigned))
    return tuple(plan)


def _bits(n):
    return max(1, int(n).bit_length())


class Decoder(wiring.Component):
    """Combinational decoder of one slice kind's instruction words (module docstring: the contract).

    Parameters
    ----------
    config : spec.config.ChipConfig
    kind : str
        A slice kind of ``spec.config.SLICE_KINDS``.

    Attributes
    ----------
    ``units``: the kind's units (``unit`` indexes them); ``busy_bits``/``span_bits``: widths of ``busy``
    and ``span``, enough for every legal instruction.
    """
    def __init__(self, config, kind):
        check_config_kind(config, kind)
        self.config = config
        self.kind = kind
        self.units = SLICE_KINDS[kind].units
        self.plan = decode_plan(config, kind)
        max_busy = max_span = 1
        for op in self.plan:
            for _, rule in op.groups:
                c = isa.MAX_COUNT if "count" in op.spec.fields else 0
                max_busy = max(max_busy, rule.busy[0] + rule.busy[1] * c)
                max_span = max(max_span, rule.span[0] + rule.span[1] * c)
        self.busy_bits = _bits(max_busy)
        self.span_bits = _bits(max_span)
        super().__init__({
            "word": In(isa.WORD_BITS),
            "fault_code": Out(isa.ERROR_CODE_BITS),
            "is_queue_op": Out(1),
            "halt": Out(1),
            "nop": Out(1),
            "unit": Out(_bits(len(self.units) - 1)),
            "busy": Out(self.busy_bits),
            "span": Out(self.span_bits),
        })

    def elaborate(self, platform):
        m = Module()
        word = self.word
        countm1 = field(word, "count")   # count - 1, as stored
        # One flag per error code: the lowest code raised wins.
        raised = {code: [] for code in ErrorCode if code != ErrorCode.OK}

        def linear(coef):
            a, b = coef
            return Const(a) if b == 0 else countm1 * b + (a + b)

        with m.Switch(field(word, "op")):
            for op in self.plan:
                with m.Case(op.spec.code):
                    m.d.comb += [
                        self.is_queue_op.eq(op.unit is None),
                        self.halt.eq(op.spec.name == "HALT"),
                        self.nop.eq(op.spec.name == "NOP"),
                        self.unit.eq(op.unit or 0),
                    ]
                    if op.unassigned_vop:
                        flag = Signal(name=f"{op.spec.name.lower()}_bad_vop")
                        m.d.comb += flag.eq(field(word, "vop").matches(*op.unassigned_vop))
                        raised[ErrorCode.BAD_FIELD].append(flag)
                    for g, (conditions, rule) in enumerate(op.groups):
                        sel = Signal(name=f"{op.spec.name.lower()}_v{g}")
                        terms = []
                        for cond in conditions:
                            term = Const(1)
                            for name, value in cond.items():
                                term = term & (field(word, name) == value)
                            terms.append(term)
                        any_term = terms[0]
                        for t in terms[1:]:
                            any_term = any_term | t
                        m.d.comb += sel.eq(any_term)
                        if rule.illegal:
                            raised[ErrorCode.ILLEGAL_OPCODE].append(sel)
                            continue
                        stray = word & Const(~rule.mask & ((1 << isa.WORD_BITS) - 1), isa.WORD_BITS)
                        raised[ErrorCode.BAD_FIELD].append(sel & stray.any())
                        for name, lo, hi in rule.ranges:
                            v = field(word, name)
                            raised[ErrorCode.BAD_FIELD].append(sel & ((v < lo) | (v > hi)))
                        for name, max_ok, code in rule.limits:
                            v = field(word, name)
                            if FIELDS[name].kind == "stream":
                                v = v[:isa.STREAM_INDEX_BITS]
                            elif FIELDS[name].kind == "count":
                                v, max_ok = countm1, max_ok - 1
                            raised[code].append(sel & (v > max_ok))
                        if rule.joint is not None:
                            depth, code = rule.joint
                            # addr + count > depth  <=>  addr + (count - 1) >= depth
                            raised[code].append(sel & (field(word, "addr") + countm1 >= depth))
                        with m.If(sel):
                            m.d.comb += [
                                self.busy.eq(linear(rule.busy)),
                                self.span.eq(linear(rule.span)),
                            ]
            with m.Default():   # unassigned, or not legal on this kind
                other = Signal(name="other_opcode")
                m.d.comb += other.eq(1)
                raised[ErrorCode.ILLEGAL_OPCODE].append(other)

        flags = {}
        for code, terms in raised.items():
            flag = Signal(name=f"raise_{code.name.lower()}")
            value = Const(0)
            for t in terms:
                value = value | t
            m.d.comb += flag.eq(value)
            flags[code] = flag
        with m.If(flags[ErrorCode.ILLEGAL_OPCODE]):
            m.d.comb += self.fault_code.eq(ErrorCode.ILLEGAL_OPCODE)
        for code in sorted(flags)[1:]:
            with m.Elif(flags[code]):
                m.d.comb += self.fault_code.eq(code)
        return m
