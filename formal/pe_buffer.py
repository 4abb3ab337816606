"""Proof: the double-buffered weight of one processing element (``rtl.mxu.ProcessingElement``), in both of
its forms side by side on the same inputs: the plain one (an active weight and a multiplexer driven by
``swap_in``) and the ``early_swap`` one the MXU uses (a weight register loaded a cycle ahead from
``swap_next``, which is ``swap_in`` one cycle early).

Environment: any ``a_in``, ``psum_in``, ``w_we``/``w_in`` and swaps, a synchronous reset at any cycle.

Properties (``Assert``), against the PE's contract kept as a model (a shadow and an active weight):

* the weight multiplied with ``a_in`` is the shadow weight when ``swap_in`` is high (the shadow before this
  cycle's ``w_we`` write), else the active one; a swap makes the shadow the active one; ``w_we`` writes
  the shadow at the end of the cycle; reset clears both;
* the multiplier's operands are ``a_in`` and that weight (the arithmetic after it, ``psum_out = psum_in +
  a_in × w``, is left to the simulation tests: a multiplier equivalence makes the induction time out);
  ``a_out``/``swap_out`` are ``a_in``/``swap_in`` a cycle later;
* helper invariants: the PEs' shadow (and, plain form, active) registers equal the model's.

Covers: a swap in the same cycle as a shadow write; two swaps back to back, the second of a new weight.

A PE of two weight slots (``slots=2``) is checked beside them on the same inputs plus a write slot and the
swap's slot (any, every cycle), against a model of a shadow per slot: the weight used, each shadow, ``slot_out``.
"""
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Cover, Mux, Signal, signed

from .common import Proof, Wrapper, open_module, prev

PSUM_BITS = 20

BUGS = {
    "late_write": "the shadow write reaches the PEs one cycle late",
    "swap_next_late": "the early-swap PE gets swap_next in the same cycle as swap_in, not a cycle ahead",
    "slot_next_late": "the two-slot PE gets the swap's slot with swap_in, not a cycle ahead",
}


class PEBufferProof(Wrapper):
    BUGS = BUGS

    def elaborate(self, platform):
        from rtl.mxu import ProcessingElement
        m = self.module()
        cd = self.cd_sync
        rst = Signal()
        m.d.comb += [rst.eq(AnySeq(1)), cd.rst.eq(rst)]
        m.submodules.plain = plain = ProcessingElement(PSUM_BITS)
        m.submodules.early = early = ProcessingElement(PSUM_BITS, early_swap=True)
        o_plain, o_early = open_module(plain, platform), open_module(early, platform)

        a_in, w_in = Signal(signed(8)), Signal(signed(8))
        psum_in = Signal(signed(PSUM_BITS))
        w_we, swap_next = Signal(), Signal()
        m.d.comb += [a_in.eq(AnySeq(8)), w_in.eq(AnySeq(8)), psum_in.eq(AnySeq(PSUM_BITS)), w_we.eq(AnySeq(1)),
                     swap_next.eq(AnySeq(1))]
        swap_in = prev(m, swap_next, "swap_in")
        dut_we, dut_w = w_we, w_in
        if self.bug == "late_write":
            dut_we, dut_w = prev(m, w_we, "late_we"), prev(m, w_in, "late_w")
        for pe in (plain, early):
            m.d.comb += [pe.a_in.eq(a_in), pe.psum_in.eq(psum_in), pe.w_we.eq(dut_we), pe.w_in.eq(dut_w),
                         pe.swap_in.eq(swap_in)]
        m.d.comb += early.swap_next.eq(swap_in if self.bug == "swap_next_late" else swap_next)

        # ---- the model ---------------------------------------------------------------------------------
        shadow, active = Signal(signed(8), name="shadow"), Signal(signed(8), name="active")
        w = Signal(signed(8), name="w_model")
        m.d.comb += w.eq(Mux(swap_in, shadow, active))
        m.d.sync += active.eq(w)
        with m.If(w_we):
            m.d.sync += shadow.eq(w_in)

        since = Signal(range(2))   # 0 in the cycle after a reset
        m.d.sync += since.eq(1)
        for name, pe, opened in (("plain", plain, o_plain), ("early", early, o_early)):
            m.d.comb += [
                Assert(opened.sig("w_use") == w, f"{name} PE: the weight used is not the contract's"),
                Assert(opened.sig("w_shadow") == shadow, f"invariant: {name} PE shadow weight"),
            ]
            mul = opened.submodules["mul"]
            m.d.comb += Assert((mul.a == a_in) & (mul.b == w), f"{name} PE: the multiplier's operands")
            a_q, swap_q = prev(m, a_in, f"{name}_a_q"), prev(m, swap_in, f"{name}_swap_q")
            with m.If(since != 0):
                m.d.comb += [Assert(pe.a_out == a_q, f"{name} PE: a_out"),
                             Assert(pe.swap_out == swap_q, f"{name} PE: swap_out")]
        m.d.comb += Assert(o_plain.sig("w_active") == active, "invariant: plain PE active weight")

        # ---- a PE of two weight slots, against a model of a shadow per slot -----------------------------
        m.submodules.slotted = slotted = ProcessingElement(PSUM_BITS, early_swap=True, slots=2)
        o_slot = open_module(slotted, platform)
        w_slot, slot_next = Signal(), Signal()
        m.d.comb += [w_slot.eq(AnySeq(1)), slot_next.eq(AnySeq(1))]
        slot_in = prev(m, slot_next, "slot_in")
        m.d.comb += [slotted.a_in.eq(a_in), slotted.psum_in.eq(psum_in), slotted.w_we.eq(dut_we),
                     slotted.w_in.eq(dut_w), slotted.w_slot.eq(w_slot), slotted.swap_in.eq(swap_in),
                     slotted.slot_in.eq(slot_in),
                     slotted.slot_next.eq(slot_in if self.bug == "slot_next_late" else slot_next),
                     slotted.swap_next.eq(swap_in if self.bug == "swap_next_late" else swap_next)]
        shadows = [Signal(signed(8), name=f"shadow{k}") for k in range(2)]
        active2, w2 = Signal(signed(8), name="active2"), Signal(signed(8), name="w_model2")
        m.d.comb += w2.eq(Mux(swap_in, Mux(slot_in, shadows[1], shadows[0]), active2))
        m.d.sync += active2.eq(w2)
        for k in range(2):
            with m.If(w_we & (w_slot == k)):
                m.d.sync += shadows[k].eq(w_in)
            m.d.comb += Assert(o_slot.sig(f"w_shadow{k}") == shadows[k], f"invariant: slotted PE shadow {k}")
        m.d.comb += Assert(o_slot.sig("w_use") == w2, "slotted PE: the weight used is not the contract's")
        with m.If(since != 0):
            m.d.comb += Assert(slotted.slot_out == prev(m, slot_in, "slot_q"), "slotted PE: slot_out")
        m.d.comb += Cover(swap_in & w_we & (w_slot != slot_in) & (w2 != active2))

        m.d.comb += [Cover(swap_in & w_we & (w_in != shadow)),
                     Cover(prev(m, swap_in & w_we & (w_in != shadow), "c1") & swap_in & (w != active))]
        return m


PROOF = Proof(name="pe_buffer", title="PE weight double buffer (ProcessingElement, plain, early-swap and two "
                                      "slots): weight used, swap, write, psum arithmetic",
              build=lambda bug=None: PEBufferProof(bug=bug), depth=4, cover_depth=10, bugs=BUGS)
