"""Proof: the response FIFO of the host edge, ``amaranth.lib.fifo.SyncFIFOBuffered`` (``rtl.host``: depth
``RESPONSE_DEPTH``), the only FIFO or skid buffer in ``rtl/`` (``grep -ri 'fifo\\|skid' rtl/``).

Environment: any ``w_en``/``w_data``/``r_en`` sequence and a synchronous reset at any cycle.

Properties (``Assert``):

* handshake: ``r_rdy`` stays high and ``r_data`` stable until ``r_en`` takes the item;
* occupancy: ``level`` is the number of items written and not yet read, at most ``depth``; ``w_rdy`` is
  high exactly when ``level < depth``; ``r_rdy`` implies ``level > 0``, and a non-empty FIFO presents an
  item on the next cycle at the latest;
* no loss, no duplication, ordering: the item written as number ``idx`` (an arbitrary constant) with value
  ``val`` (arbitrary) is read out as number ``idx`` with value ``val``;
* helper invariant for the induction: while item ``idx`` is inside, the output register or the storage word
  the FIFO's pointers place it at holds ``val``.

Covers: a full FIFO, the tracked item read after a wrap of the storage pointers, back-pressure while full.
"""
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Array, Assert, Assume, Cover, Mux, Signal
from amaranth.lib.fifo import SyncFIFOBuffered

from .common import Proof, Wrapper, open_module, prev

WIDTH = 8
COUNT_BITS = 6

BUGS = {
    "flip_data": "the consumer sees bit 0 of r_data flipped while 3 items are inside (corruption)",
    "lose_full": "a write seen as accepted is not passed to the FIFO when it holds depth - 1 items (loss)",
    "drop_valid": "r_rdy seen by the consumer drops for a cycle while stalled (handshake)",
}


class FIFOProof(Wrapper):
    BUGS = BUGS

    def __init__(self, depth=None, bug=None):
        super().__init__(bug)
        if depth is None:
            from rtl.host import RESPONSE_DEPTH
            depth = RESPONSE_DEPTH
        self.depth = depth

    def elaborate(self, platform):
        m = self.module()
        cd = self.cd_sync
        depth = self.depth
        fifo = SyncFIFOBuffered(width=WIDTH, depth=depth)
        inner = open_module(fifo, platform)
        m.submodules.dut = fifo

        # ---- environment (and the planted bugs, as faults between the FIFO and its users) ----------------
        w_en, w_data, r_en = Signal(), Signal(WIDTH), Signal()
        m.d.comb += [cd.rst.eq(AnySeq(1)), w_en.eq(AnySeq(1)), w_data.eq(AnySeq(WIDTH)), r_en.eq(AnySeq(1))]
        w_rdy, r_rdy, r_data = Signal(), Signal(), Signal(WIDTH)   # what the users see
        m.d.comb += [w_rdy.eq(fifo.w_rdy), r_rdy.eq(fifo.r_rdy), r_data.eq(fifo.r_data),
                     fifo.w_en.eq(w_en), fifo.w_data.eq(w_data), fifo.r_en.eq(r_en)]
        if self.bug == "flip_data":
            m.d.comb += r_data.eq(fifo.r_data ^ (fifo.level == 3))
        elif self.bug == "lose_full":
            m.d.comb += fifo.w_en.eq(w_en & (fifo.level != depth - 1))
        elif self.bug == "drop_valid":
            glitch = AnySeq(1)
            m.d.comb += r_rdy.eq(fifo.r_rdy & ~(glitch & ~r_en))
            m.d.comb += fifo.r_en.eq(r_en & r_rdy)

        w_xfer = w_en & w_rdy
        r_xfer = r_en & r_rdy
        rst_q = Signal(reset_less=True, init=1)
        m.d.sync += rst_q.eq(cd.rst)
        live = ~rst_q & ~cd.rst     # neither this cycle nor the previous one is a reset cycle

        # ---- handshake -----------------------------------------------------------------------------------
        p_rdy, p_en, p_data = prev(m, r_rdy, "p_r_rdy"), prev(m, r_en, "p_r_en"), prev(m, r_data, "p_r_data")
        with m.If(live & p_rdy & ~p_en):
            m.d.comb += [Assert(r_rdy, "r_rdy dropped before the item was read"),
                         Assert(r_data == p_data, "r_data changed while stalled")]

        # ---- occupancy -----------------------------------------------------------------------------------
        n_in, n_out = Signal(COUNT_BITS), Signal(COUNT_BITS)
        with m.If(w_xfer):
            m.d.sync += n_in.eq(n_in + 1)
        with m.If(r_xfer):
            m.d.sync += n_out.eq(n_out + 1)
        held = Signal(COUNT_BITS)
        m.d.comb += held.eq(n_in - n_out)
        m.d.comb += [
            Assert(held <= depth, "more items inside than the depth"),
            Assert(fifo.level == held, "level is not items written minus items read"),
            Assert(w_rdy == (held != depth), "w_rdy is not 'room for one more'"),
            Assert(~r_rdy | (held != 0), "r_rdy with nothing inside"),
        ]
        p_held = prev(m, held, "p_held")
        with m.If(~rst_q & ~cd.rst & (p_held != 0) & ~p_rdy):
            m.d.comb += Assert(r_rdy, "an item inside is not presented on the next cycle")

        # ---- the tracked item: no loss, no duplication, order -------------------------------------------
        idx, val = AnyConst(COUNT_BITS), AnyConst(WIDTH)
        with m.If(w_xfer & (n_in == idx)):
            m.d.comb += Assume(w_data == val)
        with m.If(r_xfer & (n_out == idx)):
            m.d.comb += Assert(r_data == val, "item lost, duplicated, corrupted or reordered")

        # helper invariant: where the FIFO's own state places item idx, it is intact
        if depth > 1:
            inner_depth = depth - 1
            words = Array(inner.peek_memory(m, "storage"))
            consume = inner.sig("consume")
            pos = Signal(COUNT_BITS)
            m.d.comb += pos.eq(idx - n_out)
            slot = Signal(range(2 * depth))
            m.d.comb += slot.eq(consume + pos - fifo.r_rdy)
            addr = Signal(range(depth))
            m.d.comb += addr.eq(Mux(slot >= inner_depth, slot - inner_depth, slot))
            entry = Signal(WIDTH)
            m.d.comb += entry.eq(Mux(fifo.r_rdy & (pos == 0), fifo.r_data, words[addr]))
            with m.If(pos < held):
                m.d.comb += Assert(entry == val, "invariant: tracked item intact inside the FIFO")

        # ---- covers --------------------------------------------------------------------------------------
        m.d.comb += [
            Cover(held == depth),
            Cover(r_xfer & (n_out == depth + 2) & (idx == depth + 2)),
            Cover((held == depth) & w_en & r_rdy & ~r_en),
        ]
        return m


PROOF = Proof(name="fifo", title="host response FIFO (SyncFIFOBuffered, depth RESPONSE_DEPTH): handshake, "
                                 "occupancy, no loss/duplication, order, reset at any cycle",
              build=lambda bug=None: FIFOProof(bug=bug), depth=12, cover_depth=20, bugs=BUGS)
