"""The link slice in the specification (docs/multichip.md): configuration fields and their messages, the
SEND/RECV opcodes (numbers, words, encode/decode/assembler round trips, static faults, timing) and the link
fault codes."""
import numpy as np
import pytest

from spec import isa
from spec.asm import assemble, disassemble, format_instruction, parse_instruction
from spec.config import (
    DEFAULT_LINK_INTERVAL,
    DEFAULT_LINK_LATENCY,
    MAX_LINK_INTERVAL,
    MAX_LINK_LATENCY,
    PRESETS,
    RTL_SLICE_KINDS,
    SLICE_KINDS,
    ChipConfig,
)
from spec.isa import ErrorCode, Instruction, LinkErrorCode, Stream, decode, encode

TINY = PRESETS["tiny"]
LINKED = TINY.with_links()          # link0, mem0, mem1, mxu0, vxu0, mem2, link1
SEED = 2026


# ---- configuration ------------------------------------------------------------------------------------
@pytest.mark.parametrize("changes, exc, msg", [
    (dict(slices=("mem", "link", "mem")), ValueError,
     "slices[1] must be one of 'mem', 'mxu', 'vxu', not 'link': a link slice sits at either end of the chip"),
    (dict(slices=("link", "mem", "vxu", "link", "mem")), ValueError,
     "slices[3] must be one of 'mem', 'mxu', 'vxu', not 'link': a link slice sits at either end of the chip"),
    (dict(slices=("link", "link")), ValueError, "slices must include at least one 'mem' slice, not ('link', 'link')"),
    (dict(link_latency=0), ValueError, f"link_latency must be an integer between 1 and {MAX_LINK_LATENCY}, not 0"),
    (dict(link_latency=MAX_LINK_LATENCY + 1), ValueError,
     f"link_latency must be an integer between 1 and {MAX_LINK_LATENCY}, not {MAX_LINK_LATENCY + 1}"),
    (dict(link_latency="16"), TypeError, f"link_latency must be an integer between 1 and {MAX_LINK_LATENCY}, not '16'"),
    (dict(link_latency=True), TypeError,
     f"link_latency must be an integer between 1 and {MAX_LINK_LATENCY}, not True"),
    (dict(link_interval=0), ValueError,
     f"link_interval must be an integer between 1 and {MAX_LINK_INTERVAL}, not 0"),
    (dict(link_interval=MAX_LINK_INTERVAL + 1), ValueError,
     f"link_interval must be an integer between 1 and {MAX_LINK_INTERVAL}, not {MAX_LINK_INTERVAL + 1}"),
    (dict(link_interval=4.0), TypeError,
     f"link_interval must be an integer between 1 and {MAX_LINK_INTERVAL}, not 4.0"),
])
def test_link_fields_rejected(changes, exc, msg):
    with pytest.raises(exc) as info:
        TINY.replace(**changes)
    assert str(info.value) == msg


def test_link_pins_of_the_spec():
    assert (MAX_LINK_LATENCY, MAX_LINK_INTERVAL) == (1024, 256)
    assert (TINY.link_latency, TINY.link_interval) == (DEFAULT_LINK_LATENCY, DEFAULT_LINK_INTERVAL) == (16, 4)
    assert SLICE_KINDS["link"].units == ("send", "recv") and SLICE_KINDS["link"].rtl     # rtl/link.py
    assert RTL_SLICE_KINDS == ("mem", "mxu", "vxu", "link")
    assert all(SLICE_KINDS[k].rtl for k in RTL_SLICE_KINDS)


def test_link_slices_sit_at_the_ends():
    assert LINKED.name == "tiny_link"
    assert LINKED.slices == ("link",) + TINY.slices + ("link",)
    assert LINKED.slice_names[0] == "link0" and LINKED.slice_names[-1] == "link1"
    assert LINKED.link_ends == {"west": 0, "east": len(LINKED.slices) - 1}
    west = TINY.with_links(east=False)
    east = TINY.with_links(west=False)
    assert west.link_ends == {"west": 0} and east.link_ends == {"east": len(TINY.slices)}
    assert TINY.link_ends == {}
    assert LINKED.positions("link") == (0, len(LINKED.slices) - 1)
    with pytest.raises(ValueError, match="config 'tiny_link' already has link slices"):
        LINKED.with_links()
    with pytest.raises(ValueError, match="with_links needs west=True, east=True or both"):
        TINY.with_links(west=False, east=False)


def test_check_rtl_accepts_link_slices():
    """The link slice has RTL (rtl/link.py): check_rtl() takes link configurations, and still refuses a kind
    without RTL (its message names the slice and the kind)."""
    assert LINKED.check_rtl() is LINKED
    assert TINY.with_links(west=False).check_rtl().slices[-1] == "link"
    assert TINY.check_rtl() is TINY
    import dataclasses

    from spec import config as config_module
    saved = config_module.SLICE_KINDS["link"]
    config_module.SLICE_KINDS["link"] = dataclasses.replace(saved, rtl=False)
    try:
        with pytest.raises(ValueError) as info:
            LINKED.check_rtl()
    finally:
        config_module.SLICE_KINDS["link"] = saved
    assert str(info.value) == ("config 'tiny_link' cannot be generated as RTL: slices[0] is a 'link' slice, and slice "
                               "kind 'link' has no RTL yet (golden models it: docs/multichip.md)")
    # no preset has a link slice (each preset builds RTL somewhere in the suite)
    assert not any("link" in c.slices for c in PRESETS.values())


def test_to_dict_leaves_default_link_fields_out_without_link_slices():
    d = TINY.to_dict()
    assert "link_latency" not in d and "link_interval" not in d
    assert ChipConfig.from_dict(d) == TINY
    slow = TINY.replace(link_latency=40)
    assert slow.to_dict()["link_latency"] == 40 and "link_interval" not in slow.to_dict()
    assert ChipConfig.from_dict(slow.to_dict()) == slow
    d = LINKED.to_dict()
    assert (d["link_latency"], d["link_interval"]) == (DEFAULT_LINK_LATENCY, DEFAULT_LINK_INTERVAL)
    assert ChipConfig.from_dict(d) == LINKED


# ---- opcodes and words --------------------------------------------------------------------------------
def test_send_recv_opcodes():
    send, recv = isa.OPCODES["SEND"], isa.OPCODES["RECV"]
    assert (send.code, send.kinds, send.unit, send.fields) == (0x20, ("link",), "send", ("src", "count"))
    assert (recv.code, recv.kinds, recv.unit, recv.fields) == (0x21, ("link",), "recv", ("count", "dst"))
    assert send.code >> 3 == recv.code >> 3 == 4          # the link group of bits 5:3
    assert isa.syntax("SEND") == "SEND <src> count=<count>"
    assert isa.syntax("RECV") == "RECV count=<count> -> <dst>"


def test_pinned_link_words():
    assert encode(Instruction("SEND", src="W1", count=3)) == 0x8210_0000_0200_0000
    assert encode(Instruction("RECV", count=2, dst="E0")) == 0x8400_0000_0100_0000
    assert decode(0x8210_0000_0200_0000) == Instruction("SEND", src=Stream("W", 1), count=3)


def test_send_recv_encode_decode_round_trip():
    rng = np.random.default_rng(SEED)
    print(f"seed {SEED}")
    for _ in range(300):
        s = Stream(isa.DIRECTIONS[int(rng.integers(0, 2))], int(rng.integers(0, isa.MAX_STREAMS)))
        n = int(rng.integers(1, isa.MAX_COUNT + 1))
        for ins in (Instruction("SEND", src=s, count=n), Instruction("RECV", count=n, dst=s)):
            w = encode(ins)
            assert decode(w) == ins and encode(decode(w)) == w
            assert parse_instruction(format_instruction(ins)) == ins
            assert parse_instruction(format_instruction(ins).lower()) == ins


def test_stray_bits_are_bad_field():
    w = encode(Instruction("SEND", src="E0", count=1)) | 1 << isa.FIELDS["dst"].lsb
    d = decode(w)
    assert not d.legal and d.error == ErrorCode.BAD_FIELD and encode(d) == w
    assert isa.fault(d, LINKED, "link").code == ErrorCode.BAD_FIELD
    assert isa.fault(d, LINKED, "mem").code == ErrorCode.ILLEGAL_OPCODE      # the lowest code wins


def test_assemble_disassemble_on_a_linked_chip():
    text = (".slice link0\n    RECV count=4 -> E2\n    HALT\n\n"
            ".slice mem1\n    READ bank=1 addr=3 count=2 -> E1\n    HALT\n\n"
            ".slice link1\n    NOP 3\n    SEND E1 count=2\n    HALT\n")
    programs = assemble(text, LINKED)
    assert programs[0] == [encode(Instruction("RECV", count=4, dst="E2")), encode(Instruction("HALT"))]
    assert programs[-1][1] == encode(Instruction("SEND", src="E1", count=2))
    assert disassemble(programs, LINKED) == text
    assert assemble(disassemble(programs, LINKED), LINKED) == programs


def test_static_faults_of_the_link_opcodes():
    send, recv = Instruction("SEND", src="E0", count=5), Instruction("RECV", count=5, dst="W3")
    assert isa.fault(send, LINKED, "link") is None and isa.fault(recv, LINKED, "link") is None
    f = isa.fault(send, LINKED, "mem")
    assert (f.code, f.message) == (ErrorCode.ILLEGAL_OPCODE, "SEND runs on LINK slices, not on MEM slices")
    f = isa.fault(Instruction("READ", bank=0, addr=0, count=1, dst="E0"), LINKED, "link")
    assert (f.code, f.message) == (ErrorCode.ILLEGAL_OPCODE, "READ runs on MEM slices, not on LINK slices")
    f = isa.fault(Instruction("SEND", src="W4", count=1), LINKED, "link")
    assert (f.code, f.message) == (ErrorCode.BAD_STREAM, "src must be E0..E3 or W0..W3 for config tiny_link, not W4")
    f = isa.fault(Instruction("RECV", count=1, dst="E4"), LINKED, "link")
    assert (f.code, f.field) == (ErrorCode.BAD_STREAM, "dst")
    with pytest.raises(ValueError, match=r"SEND runs on LINK slices, not on VXU slices \(ILLEGAL_OPCODE on slice "
                                         r"vxu0\)"):
        assemble(".slice vxu\n    SEND E0 count=1\n", LINKED)
    # NOP and HALT run on link slices too
    assert isa.fault(Instruction("NOP", count=3), LINKED, "link") is None


# ---- timing -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("interval", [1, 2, DEFAULT_LINK_INTERVAL, 7])
@pytest.mark.parametrize("count", [1, 2, 9])
def test_link_timing(interval, count):
    c = LINKED.replace(link_interval=interval)
    t = isa.timing(Instruction("SEND", src="E0", count=count), c)
    assert t == isa.OpTiming("send", count * interval, count, isa.LINK_SEND_OFFSET, None, interval=interval)
    last_sample = isa.LINK_SEND_OFFSET + (count - 1) * interval      # relative to the issue cycle
    assert t.span == max(count * interval, last_sample + 1)
    r = isa.timing(Instruction("RECV", count=count, dst="E0"), c)
    assert r == isa.OpTiming("recv", count * interval, count, None, isa.LINK_RECV_OFFSET, interval=interval)
    assert r.span == max(count * interval, isa.LINK_RECV_OFFSET + (count - 1) * interval + 1)


def test_link_offsets_and_recv_delay():
    assert isa.LINK_SEND_OFFSET == 1 and isa.LINK_RECV_OFFSET == 1
    for latency in (1, DEFAULT_LINK_LATENCY, MAX_LINK_LATENCY):
        c = LINKED.replace(link_latency=latency)
        assert isa.link_recv_delay(c) == isa.LINK_SEND_OFFSET + latency - isa.LINK_RECV_OFFSET == latency


def test_interval_one_keeps_the_old_spans():
    """OpTiming's interval defaults to 1, and the other opcodes' spans are the consecutive-item formula."""
    assert isa.timing(Instruction("READ", bank=0, addr=0, count=5, dst="E0"), TINY).span == \
        isa.MEM_READ_LATENCY + 5
    assert isa.timing(Instruction("WRITE", src="E0", bank=0, addr=0, count=5), TINY).span == \
        isa.MEM_WRITE_LATENCY + 5
    assert isa.timing(Instruction("VOP", vop="relu", src="E0", count=3, dst="E1"), TINY).span == \
        isa.VXU_INPUT_OFFSET + isa.VXU_PIPELINE + 3
    assert isa.OpTiming("read", 3, 3, None, 1).interval == 1


# ---- fault codes --------------------------------------------------------------------------------------
def test_link_error_codes():
    assert (int(LinkErrorCode.RECV_EMPTY), int(LinkErrorCode.LINK_DROPPED)) == (10, 11)
    # the link codes stay out of ErrorCode (the decoder's flags, the chips' Verilog): the link slice reports them
    # itself as run-time faults (rtl/link.py), above every static code, as rtl/icu.py's priority needs
    assert max(ErrorCode) == ErrorCode.INDEX_RANGE < min(LinkErrorCode)
    assert not {int(c) for c in ErrorCode} & {int(c) for c in LinkErrorCode}
    assert [int(c) for c in isa.FAULT_CODES] == sorted(int(c) for c in isa.FAULT_CODES)
    assert all(0 <= c < 1 << isa.ERROR_CODE_BITS for c in isa.FAULT_CODES)
    assert set(isa.LINK_ERROR_MEANINGS) == set(LinkErrorCode)
    for code in LinkErrorCode:
        assert len(code.meaning) > 20 and "\n" not in code.meaning
        assert isa.error_code(int(code)) is code
    assert isa.error_code(3) is ErrorCode.BAD_BANK
    with pytest.raises(ValueError, match="fault code must be one of 0, 1, .*, 11, not 12"):
        isa.error_code(12)


def test_docs_list_the_link_opcodes_and_codes():
    doc = isa.render_markdown()
    for code in LinkErrorCode:
        assert f"| {int(code)} | `{code.name}` | {code.meaning} |" in doc
    for op in ("SEND", "RECV"):
        assert f"`{isa.syntax(op)}`" in doc
    assert "4 link" in doc and "link_recv_delay" in doc
