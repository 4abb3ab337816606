"""Proof: the stream registers (``rtl.streams.StreamInterconnect``) on a 4-slice chip with 2 streams per
direction and 1-lane vectors, 2 read ports per slice.

Environment: any writes ``put[p]`` (valid, stream, data), any read selects, a synchronous reset at any cycle.

Properties (``Assert``):

* the contract as a reference model: every read port of every slice sees, for every stream it names, the
  register ``E[s][p]``/``W[s][p]`` of ``docs/chip.md`` ("Streams"), kept by the proof itself
  (``E[s][p+1] <= put[p].data if put[p] writes E s else E[s][p]``, edges 0, reset to 0), and 0 for a stream
  index at or above ``S``;
* the travelling value: a value ``val`` written by slice ``p`` (arbitrary) on stream ``d s`` (arbitrary) on a
  cycle ``t`` (arbitrary) is seen by slice ``p ± k`` on cycle ``t + k``, for every ``k`` up to the chip's
  edge, unless a slice on its way writes the same stream first (or a reset clears it).

Covers: a value seen three hops east of where it was written, and two hops west.
"""
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Array, Assert, Cat, Const, Cover, Mux, Signal

from .common import Proof, Wrapper, open_module

READS = 2

BUGS = {
    "drop_write": "slice 1's writes are lost when lane 0 is odd",
    "wrong_direction": "slice 2's eastward writes go west",
    "stale_read": "slice 1's read port 0 answers with last cycle's value",
}


def config():
    from spec.config import ChipConfig
    return ChipConfig.preset("tiny").replace(name="formal-streams", lanes=1, streams=2,
                                             slices=("mem", "mxu", "vxu", "mem"), mxu_rows=1, mxu_cols=1)


class StreamsProof(Wrapper):
    BUGS = BUGS

    def elaborate(self, platform):
        from rtl.common import STREAM_BITS
        from rtl.streams import StreamInterconnect
        from spec import isa
        m = self.module()
        cd = self.cd_sync
        c = config()
        P, S = len(c.slices), c.streams
        west_bit = isa.STREAM_INDEX_BITS
        m.submodules.dut = dut = StreamInterconnect(c, [READS] * P)
        inner = open_module(dut, platform)
        m.d.comb += cd.rst.eq(AnySeq(1))

        # ---- environment: what each slice writes (as the slices see it) and reads ----------------------
        put = [dict(valid=Signal(name=f"put{p}_valid"), stream=Signal(STREAM_BITS, name=f"put{p}_stream"),
                    data=Signal(32, name=f"put{p}_data")) for p in range(P)]
        for p in range(P):
            m.d.comb += [put[p]["valid"].eq(AnySeq(1)), put[p]["stream"].eq(AnySeq(STREAM_BITS)),
                         put[p]["data"].eq(AnySeq(32))]
            for i in range(READS):
                m.d.comb += dut.sel(p)[i].eq(AnySeq(STREAM_BITS))
            valid, stream = put[p]["valid"], put[p]["stream"]
            if self.bug == "drop_write" and p == 1:
                valid = valid & ~put[p]["data"][0]
            if self.bug == "wrong_direction" and p == 2:
                stream = stream | (1 << west_bit)
            m.d.comb += [dut.put[p].valid.eq(valid), dut.put[p].stream.eq(stream),
                         dut.put[p].data[0].eq(put[p]["data"])]

        def seen(p, i):
            v = dut.seen(p)[i][0].as_unsigned()
            if self.bug == "stale_read" and p == 1 and i == 0:
                old = Signal(32, name="stale")
                m.d.sync += old.eq(v)
                return old
            return v

        def writes(p, d, s):
            return put[p]["valid"] & (put[p]["stream"] == ((d << west_bit) | s))

        # ---- the reference model of the contract ------------------------------------------------------
        ref = [[[Signal(32, name=f"ref_{'ew'[d]}{s}_at{p}") for p in range(P)] for s in range(S)] for d in (0, 1)]
        for s in range(S):
            for p in range(P):
                # east: ref[0][s][p] <= written by p-1, else ref[0][s][p-1]; position 0 stays 0
                if p >= 1:
                    m.d.sync += ref[0][s][p].eq(Mux(writes(p - 1, 0, s), put[p - 1]["data"], ref[0][s][p - 1]))
                if p <= P - 2:
                    m.d.sync += ref[1][s][p].eq(Mux(writes(p + 1, 1, s), put[p + 1]["data"], ref[1][s][p + 1]))
        # helper invariant for the induction: every stream register of the contract is where the rotating
        # slots keep it (rtl/streams.py: slot (t - p) mod N east, (t - (P-1-p)) mod N west; a dead slot is 0)
        words = Array(w.as_value() for w in inner.peek_memory(m, "slots"))
        tick, live = inner.sig("tick"), (inner.sig("live_e"), inner.sig("live_w"))
        slot_bits = (dut.slots - 1).bit_length()
        index_bits = max(1, (S - 1).bit_length())
        for d in (0, 1):
            for s in range(S):
                for p in range(P):
                    if (d == 0 and p >= 1) or (d == 1 and p <= P - 2):
                        name = f"{'ew'[d]}{s}_at{p}"
                        addr = Signal(slot_bits + index_bits + 1, name=f"addr_{name}")
                        m.d.comb += addr.eq(Cat((tick - (p if d == 0 else P - 1 - p))[:slot_bits],
                                                Const(s, index_bits), d))
                        reg = Mux(live[d].bit_select(addr[:-1], 1), words[addr], 0)
                        m.d.comb += Assert(reg == ref[d][s][p], f"invariant: register {name}")
        for p in range(P):
            for i in range(READS):
                sel = dut.sel(p)[i]
                expect = Signal(32, name=f"expect{p}_{i}")
                m.d.comb += expect.eq(0)
                for d in (0, 1):
                    for s in range(S):
                        with m.If(sel == ((d << west_bit) | s)):
                            m.d.comb += expect.eq(ref[d][s][p])
                m.d.comb += Assert(seen(p, i) == expect, f"slice {p} port {i}: not the stream register")

        # ---- the travelling value ---------------------------------------------------------------------
        p0, d0, s0, val = AnyConst(range(P)), AnyConst(1), AnyConst(range(S)), AnyConst(32)
        go = AnySeq(1)
        on = Signal()
        pos = Signal(range(P + 1))
        age = Signal(range(P + 1))
        step = Mux(d0, -1, 1)
        src_write = Signal()
        for p in range(P):
            with m.If(p0 == p):
                m.d.comb += src_write.eq(writes(p, d0, s0) & (put[p]["data"] == val))
        hop_ok = Signal()        # the register ahead of pos exists (not past the edge)
        m.d.comb += hop_ok.eq(Mux(d0, pos != 0, pos != P - 1))
        overwritten = Signal()   # slice pos writes the same stream this cycle
        for p in range(P):
            with m.If(pos == p):
                m.d.comb += overwritten.eq(writes(p, d0, s0))
        with m.If(on):
            with m.If(hop_ok & ~overwritten):
                m.d.sync += [pos.eq(pos + step), age.eq(age + 1)]
            with m.Else():
                m.d.sync += on.eq(0)
        with m.Elif(go & src_write & Mux(d0, p0 != 0, p0 != P - 1)):
            m.d.sync += [on.eq(1), pos.eq(p0 + step), age.eq(1)]
        with m.If(on):
            m.d.comb += [Assert(Mux(d0, pos + age == p0, pos == p0 + age), "invariant: one hop per cycle"),
                         Assert((pos < P) & (age < P), "invariant: on the chip")]
            for d in (0, 1):
                for s in range(S):
                    for p in range(P):
                        with m.If((d0 == d) & (s0 == s) & (pos == p)):
                            m.d.comb += Assert(ref[d][s][p] == val, "invariant: the value is in the register at pos")
            for p in range(P):
                for i in range(READS):
                    with m.If((pos == p) & (dut.sel(p)[i] == ((d0 << west_bit) | s0))):
                        m.d.comb += Assert(seen(p, i) == val, f"value written at p0 not at p0 ± age (slice {p})")

        m.d.comb += [Cover(on & (age == 3) & ~d0), Cover(on & (age == 2) & d0)]
        return m


PROOF = Proof(name="streams", title="stream registers (StreamInterconnect, 4 slices, 2+2 streams): slice p at t "
                                    "-> slice p ± d at t + d, reference model of the contract",
              build=lambda bug=None: StreamsProof(bug=bug), depth=3, cover_depth=8, bugs=BUGS,
              engine="smtbmc z3")   # boolector stalls on this one
