"""Property: the instruction decoder (``rtl.decode.Decoder``, preset ``tiny``, one per slice kind, the three
side by side in one model) in Verilator through pyverilator gives, for any 64-bit word, what ``spec.isa``
says: ``fault(decode(word), config, kind)``'s code, and for a word that does not fault the unit, ``busy``
and ``span`` of ``timing`` and the queue-operation flags (``tests.test_decode_rtl.expected``).

A word is an opcode (any of the 64 codes, the assigned ones weighted in) with each field the opcode carries
drawn near the configuration's limits (stream indices around ``streams``, ``count`` around the depth or the
MXU's rows, ``addr`` and ``bank`` around theirs, SETQ's ``mult`` at 0/1/2**31, every ``vop`` code), then
perhaps a few flipped bits, or a raw 64-bit word. An example checks a few words (the decoder is
combinational: one ``eval`` per word, checked on the three kinds); a mismatch names the kind, the word,
its decoding and the outputs that differ, and hypothesis shrinks the word (towards fewer set bits).
"""
from hypothesis import given
from hypothesis import strategies as st

from spec import isa
from spec.config import PRESETS, RTL_SLICE_KINDS
from spec.isa import FIELDS, OPCODE_FIELD, OPCODES
from tests.props import PROPS, unit_sim
from tests.test_decode_rtl import expected

CONFIG = PRESETS["tiny"]
WORDS_PER_EXAMPLE = 8
OUTPUTS = ("fault_code", "is_queue_op", "halt", "nop", "unit", "busy", "span")


def _all_kinds():
    """One component holding a ``Decoder`` per slice kind on a shared ``word`` (one build for the three):
    outputs ``<kind>_<output>``."""
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from rtl.decode import Decoder

    decoders = {kind: Decoder(CONFIG, kind) for kind in RTL_SLICE_KINDS}

    class AllKinds(wiring.Component):
        def __init__(self):
            members = {"word": In(isa.WORD_BITS)}
            for kind, dec in decoders.items():
                for name in OUTPUTS:
                    members[f"{kind}_{name}"] = Out(len(getattr(dec, name)))
            super().__init__(members)

        def elaborate(self, platform):
            m = Module()
            for kind, dec in decoders.items():
                m.submodules[kind] = dec
                m.d.comb += dec.word.eq(self.word)
                m.d.comb += [getattr(self, f"{kind}_{name}").eq(getattr(dec, name)) for name in OUTPUTS]
            return m

    return AllKinds()


def decoder_sim():
    return unit_sim(("decode", CONFIG), _all_kinds, f"decode_{CONFIG.name}")


def _around(*limits, width):
    """Raw field values at and next to each limit, inside the field's ``width`` bits."""
    top = (1 << width) - 1
    vals = {0, 1, top}
    for lim in limits:
        vals.update(v for v in (lim - 1, lim, lim + 1) if 0 <= v <= top)
    return sorted(vals)


def _raw_values(op, name):
    """A strategy of raw bits for field ``name`` of opcode ``op``: the interesting ones or anything."""
    f = FIELDS[name]
    c = CONFIG
    if f.kind == "stream":
        idx = _around(c.streams, isa.MAX_STREAMS - 1, width=isa.STREAM_INDEX_BITS)
        interesting = [d << isa.STREAM_INDEX_BITS | i for d in (0, 1) for i in idx]
    elif f.kind == "count":       # raw = count - 1
        depth = c.mem_depth if op in ("READ", "WRITE") else c.mxu_acc_depth
        interesting = _around(c.mxu_rows - 1, depth - 1, 7, width=f.width)
    elif name == "addr":
        interesting = _around(c.mem_depth, c.mxu_acc_depth, width=f.width)
    elif name == "bank":
        interesting = _around(c.mem_banks, width=f.width)
    elif f.kind in ("flag", "vop") or f.width <= 5:
        return st.integers(0, (1 << f.width) - 1)
    else:                          # mult (0 is out of range), zp
        interesting = _around(f.hi, 1 << (f.width - 1), width=f.width)
    return st.one_of(st.sampled_from(interesting), st.integers(0, (1 << f.width) - 1))


def _fields_of(op):
    names = set()
    for vop in (list(isa.VXU_OPS) if op == "VOP" else [None]):
        for emit in ((False, True) if op == "MATMUL" else (False,)):
            names.update(isa.used_fields(op, vop, emit))
    return sorted(names, key=lambda n: FIELDS[n].lsb)


#: per opcode: the raw bits of every field it may carry (present or not, by vop/emit) in one strategy
_FIELD_STRATEGIES = {op: st.tuples(*(_raw_values(op, n) for n in _fields_of(op))) for op in OPCODES}


@st.composite
def words(draw):
    how = draw(st.sampled_from(("instruction",) * 5 + ("flipped",) * 2 + ("other opcode", "raw")))
    if how == "raw":
        return draw(st.integers(0, (1 << isa.WORD_BITS) - 1))
    op = draw(st.sampled_from(list(OPCODES)))
    word = OPCODES[op].code << OPCODE_FIELD.lsb
    for name, raw in zip(_fields_of(op), draw(_FIELD_STRATEGIES[op])):
        f = FIELDS[name]
        if op == "VOP" and name == "src2":
            continue          # added below only for binary operations (or as stray bits)
        if op == "MATMUL" and name == "dst":
            continue
        word |= raw << f.lsb
    vop_code = (word >> FIELDS["vop"].lsb) & 0xF
    binary_vop = op == "VOP" and any(o.code == vop_code and o.arity == 2 for o in isa.VXU_OPS.values())
    if binary_vop or (op == "MATMUL" and word >> FIELDS["emit"].lsb & 1):
        name = "src2" if op == "VOP" else "dst"
        word |= draw(_raw_values(op, name)) << FIELDS[name].lsb
    if how == "flipped":
        for bit in draw(st.lists(st.integers(0, isa.WORD_BITS - 1), min_size=1, max_size=3)):
            word ^= 1 << bit
    elif how == "other opcode":
        code = draw(st.one_of(st.sampled_from([o.code for o in OPCODES.values()]),
                              st.integers(0, (1 << OPCODE_FIELD.width) - 1)))
        word = (word & ~OPCODE_FIELD.mask & ((1 << isa.WORD_BITS) - 1)) | code << OPCODE_FIELD.lsb
    return word


def check_words(ws, kinds=RTL_SLICE_KINDS, spec_expected=expected):
    """Each word on the decoders of ``kinds`` (one ``eval`` per word gives all three)."""
    sim = decoder_sim()
    for i, w in enumerate(ws):
        sim["word"] = w
        for kind in kinds:
            want = spec_expected(w, CONFIG, kind)
            got = {k: sim[f"{kind}_{k}"] for k in want}
            assert got == want, (f"decoder {CONFIG.name}/{kind}, word {i} of the example: {w:#018x} "
                                 f"({isa.decode(w)}): got {got}, want {want}")


@PROPS
@given(ws=st.lists(words(), min_size=1, max_size=WORDS_PER_EXAMPLE))
def test_decoder_matches_spec(ws):
    check_words(ws)
