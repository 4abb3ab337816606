"""The MXU slice: the foundation's systolic array (``rtl.mxu.MXU``) fed from the streams.

Contract (docs/chip.md, docs/isa.md "Timing"; the golden twin is ``golden.chip``):

* ``LOADW src count`` issued at ``t``: during ``t + MXU_INPUT_OFFSET + i`` the low bytes of lanes
  ``0 … mxu_cols - 1`` of the vector seen on ``src`` go to the MXU's weight port as shadow row ``i``.
* ``MATMUL src count addr [swap] [acc] [emit] [-> dst]`` issued at ``t``: during ``t + MXU_INPUT_OFFSET + i``
  the low bytes of lanes ``0 … mxu_rows - 1`` of ``src`` enter the array as an activation with accumulator
  ``addr + i``, ``swap`` on item 0 only, ``acc``/``emit`` on all. A result the array emits (``latency``
  cycles after its activation, ``spec.mxu``) is written on that MATMUL's ``dst``: lanes ``0 … mxu_cols - 1``
  the int32 results, the other lanes 0. ``dst`` travels alongside the array in a delay line, so a result
  still in flight keeps its own MATMUL's ``dst`` when the next MATMUL names another.
* With ``mxu_weight_slots`` > 1, each LOADW writes the next weight slot and each swapping MATMUL swaps in the
  next one (two counters, from 0 after reset; ``spec.isa``).
* The two units run at once (LOADW of the next tile during the MATMULs of this one). Writes are gated by
  ``run``; the array itself runs freely (its state starts over at reset, its accumulators are SRAM).
"""
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from spec import isa

from .common import field, int8_lanes, slice_signature
from .mxu import MXU

if isa.MXU_INPUT_OFFSET != 1:  # pragma: no cover - the units register an instruction for one cycle
    raise ImportError("rtl.mxu_slice presents item 0 the cycle after issue")

__all__ = ["MXUSlice"]


class MXUSlice(wiring.Component):
    """The MXU slice of ``config`` (a ``spec.config.ChipConfig``). Ports: docs/chip.md, "RTL structure";
    read port 0 feeds the weights (LOADW), port 1 the activations (MATMUL)."""
    READS = 2

    def __init__(self, config):
        self._config = config.check_rtl()
        super().__init__(slice_signature(
            config, self.READS,
            # for waveforms: the units' state
            loadw_left=Out(isa.FIELDS["count"].width + 1),
            matmul_left=Out(isa.FIELDS["count"].width + 1),
        ))

    def elaborate(self, platform):
        m = Module()
        c = self._config
        p = c.mxu
        m.submodules.array = mxu = MXU(p.rows, p.cols, p.acc_depth, p.weight_slots)
        count_bits = isa.FIELDS["count"].width + 1
        op = field(self.word, "op")
        issue_loadw = self.run & self.issue & (op == isa.OPCODES["LOADW"].code)
        issue_matmul = self.run & self.issue & (op == isa.OPCODES["MATMUL"].code)

        # ---- LOADW unit ----
        l_left = Signal(count_bits)
        l_row = Signal(p.row_bits)
        l_src = Signal(isa.FIELDS["src"].width)
        l_on = Signal()
        m.d.comb += [l_on.eq(self.run & (l_left != 0)), self.loadw_left.eq(l_left)]
        with m.If(issue_loadw):
            m.d.sync += [l_left.eq(field(self.word, "count") + 1), l_row.eq(0), l_src.eq(field(self.word, "src"))]
        with m.Elif(l_on):
            m.d.sync += [l_left.eq(l_left - 1), l_row.eq(l_row + 1)]
        m.d.comb += self.sel[0].eq(l_src)
        if p.weight_slots > 1:      # LOADWs and swapping MATMULs take the weight slots in turn
            l_slot = Signal(p.slot_bits)
            with m.If(issue_loadw):
                m.d.sync += l_slot.eq(self._turn(m, issue_loadw, "loadw_turn"))
            m.d.comb += mxu.w_slot.eq(l_slot)
        w_seen = self.seen[0]
        m.d.comb += [
            mxu.w_valid.eq(l_on),
            mxu.w_row.eq(l_row),
            mxu.w_data.eq(int8_lanes(w_seen, p.cols)),
        ]

        # ---- MATMUL unit ----
        a_left = Signal(count_bits)
        a_addr = Signal(p.addr_bits)
        a_first = Signal()
        a_swap, a_acc, a_emit = Signal(), Signal(), Signal()
        a_src = Signal(isa.FIELDS["src"].width)
        a_dst = Signal(isa.FIELDS["dst"].width)
        a_on = Signal()
        m.d.comb += [a_on.eq(self.run & (a_left != 0)), self.matmul_left.eq(a_left)]
        with m.If(issue_matmul):
            m.d.sync += [
                a_left.eq(field(self.word, "count") + 1),
                a_addr.eq(field(self.word, "addr")),
                a_first.eq(1),
                a_swap.eq(field(self.word, "swap")),
                a_acc.eq(field(self.word, "acc")),
                a_emit.eq(field(self.word, "emit")),
                a_src.eq(field(self.word, "src")),
                a_dst.eq(field(self.word, "dst")),
            ]
        with m.Elif(a_on):
            m.d.sync += [a_left.eq(a_left - 1), a_addr.eq(a_addr + 1), a_first.eq(0)]
        m.d.comb += self.sel[1].eq(a_src)
        if p.weight_slots > 1:
            a_slot = Signal(p.slot_bits)
            swapping = issue_matmul & field(self.word, "swap")
            with m.If(swapping):
                m.d.sync += a_slot.eq(self._turn(m, swapping, "swap_turn"))
            m.d.comb += mxu.a_slot.eq(a_slot)
        a_seen = self.seen[1]
        m.d.comb += [
            mxu.a_valid.eq(a_on),
            mxu.a_data.eq(int8_lanes(a_seen, p.rows)),
            mxu.a_swap.eq(a_swap & a_first),
            mxu.a_acc.eq(a_acc),
            mxu.a_emit.eq(a_emit),
            mxu.a_addr.eq(a_addr),
        ]

        # ---- results: dst rides a delay line as long as the array's latency ----
        dst = a_dst
        for k in range(p.latency):
            nxt = Signal.like(a_dst, name=f"dst_{k + 1}")
            m.d.sync += nxt.eq(dst)
            dst = nxt
        m.d.comb += [
            self.put.valid.eq(mxu.y_valid & self.run),
            self.put.stream.eq(dst),
        ]
        for lane in range(p.cols):
            m.d.comb += self.put.data[lane].eq(mxu.y_data[lane])
        return m

    def _turn(self, m, take, name):
        """A counter of the weight slots, 0 … slots - 1 and round again, stepping on ``take``: its value now."""
        p = self._config.mxu
        turn = Signal(p.slot_bits, name=name)
        with m.If(take):
            m.d.sync += turn.eq(Mux(turn == p.weight_slots - 1, 0, turn + 1))
        return turn
