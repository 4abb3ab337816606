"""Proof: the MXU's weight double buffer (``rtl.mxu.MXU`` with its ``ProcessingElement``s, early-swap form)
on a 2×2 array with 2 accumulator words.

Environment: any weight rows (``w_valid``, ``w_row``, ``w_data``) at any cycle, any activations
(``a_valid``, ``a_swap``, data, flags), a synchronous reset at any cycle.

The contract (``spec.mxu``, "Weights"): a weight row presented at ``t_w`` with index ``r`` is written into the
shadow weights of row ``r``; an activation presented at ``t_a`` with ``swap`` makes row ``r`` take the shadow
value written by the latest weight row presented at a cycle ``t_w <= t_a + r - 1``. The proof keeps that
model at the ports (the shadow tile, and per row the installed tile, switched ``r`` cycles after the
swapping activation) and checks, in every PE ``(r, c)`` and every cycle:

* the weight the multiplier uses for the activation now at the PE (presented ``1 + r + c`` cycles before)
  is the model's weight of that activation: the tile installed by the latest swapping activation up to and
  including it. Every PE of one activation thus uses one and the same tile: a swap never exposes a
  half-installed tile, whatever the timing of the next tile's rows (even rows written during the swap);
* helper invariant for the induction: each PE's shadow weight is the model's shadow, as the column skew
  delays it.

Covers: a swap whose next tile is being written in the very cycles it travels down the rows; two swaps
back to back.
"""
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Cover, Mux, Signal, signed

from .common import Proof, Wrapper, open_module, prev

ROWS, COLS, ACC_DEPTH = 2, 2, 2

BUGS = {
    "late_row": "weight rows reach the array one cycle late (the swap takes a stale row)",
    "phantom_swap": "the array sees a swap nobody issued whenever a weight row is written with w_data[0] odd",
    "wrong_row": "a weight row with w_data[1] odd goes into the other row",
}


class MXUBufferProof(Wrapper):
    BUGS = BUGS

    def elaborate(self, platform):
        from rtl.mxu import MXU
        m = self.module()
        cd = self.cd_sync
        m.submodules.dut = dut = MXU(ROWS, COLS, ACC_DEPTH)
        array = open_module(dut, platform)
        pes = [[open_module(array.submodules[f"pe_r{r}_c{c}"], platform) for c in range(COLS)]
               for r in range(ROWS)]
        m.d.comb += cd.rst.eq(AnySeq(1))

        # ---- environment -------------------------------------------------------------------------------
        w_valid, w_row = Signal(), Signal(dut.params.row_bits)
        w_data = [Signal(signed(8), name=f"w_data{c}") for c in range(COLS)]
        a_valid, a_swap = Signal(), Signal()
        m.d.comb += [w_valid.eq(AnySeq(1)), w_row.eq(AnySeq(len(w_row))), a_valid.eq(AnySeq(1)),
                     a_swap.eq(AnySeq(1))]
        m.d.comb += [w.eq(AnySeq(8)) for w in w_data]
        m.d.comb += [dut.a_acc.eq(AnySeq(1)), dut.a_emit.eq(AnySeq(1)), dut.a_addr.eq(AnySeq(len(dut.a_addr)))]
        for r in range(ROWS):
            m.d.comb += dut.a_data[r].eq(AnySeq(8))
        dut_w = dict(valid=w_valid, row=w_row, data=w_data)
        if self.bug == "late_row":
            dut_w = dict(valid=prev(m, w_valid, "late_valid"), row=prev(m, w_row, "late_row"),
                         data=[prev(m, w, f"late_data{c}") for c, w in enumerate(w_data)])
        m.d.comb += [dut.w_valid.eq(dut_w["valid"]), dut.w_row.eq(dut_w["row"])]
        m.d.comb += [dut.w_data[c].eq(dut_w["data"][c]) for c in range(COLS)]
        if self.bug == "wrong_row":
            m.d.comb += dut.w_row.eq(w_row ^ w_data[1][0])
        m.d.comb += [dut.a_valid.eq(a_valid), dut.a_swap.eq(a_swap)]
        if self.bug == "phantom_swap":
            m.d.comb += [dut.a_valid.eq(a_valid | (w_valid & w_data[0][0])),
                         dut.a_swap.eq(a_swap | (w_valid & w_data[0][0]))]

        # ---- the model at the ports ---------------------------------------------------------------------
        shadow = [[Signal(signed(8), name=f"shadow_r{r}_c{c}") for c in range(COLS)] for r in range(ROWS)]
        active = [[Signal(signed(8), name=f"active_r{r}_c{c}") for c in range(COLS)] for r in range(ROWS)]
        with m.If(w_valid):
            for r in range(ROWS):
                with m.If(w_row == r):
                    m.d.sync += [shadow[r][c].eq(w_data[c]) for c in range(COLS)]
        swap_at = [a_valid & a_swap]      # swap_at[r]: the swapping activation reaches row r's switch now
        for r in range(1, ROWS):
            swap_at.append(prev(m, swap_at[-1], f"swap_at_r{r}"))
        for r in range(ROWS):
            for c in range(COLS):
                use = Signal(signed(8), name=f"use_r{r}_c{c}")   # row r's weight for the activation of t - r
                m.d.comb += use.eq(Mux(swap_at[r], shadow[r][c], active[r][c]))
                m.d.sync += active[r][c].eq(use)
                # that activation reaches PE (r, c) 1 + c cycles later (input register, c hops east)
                want = use
                for k in range(1 + c):
                    want = prev(m, want, f"use_r{r}_c{c}_d{k + 1}")
                m.d.comb += Assert(pes[r][c].sig("w_cur") == want,
                                   f"PE ({r}, {c}) multiplies by a weight of another tile")
                sh = shadow[r][c]
                for k in range(1 + c):
                    sh = prev(m, sh, f"shadow_r{r}_c{c}_d{k + 1}")
                m.d.comb += Assert(pes[r][c].sig("w_shadow") == sh, f"invariant: PE ({r}, {c}) shadow weight")

        # ---- covers -------------------------------------------------------------------------------------
        m.d.comb += [
            Cover(swap_at[ROWS - 1] & w_valid & (w_row == ROWS - 1) & prev(m, w_valid & (w_row == 0), "w0_q")
                  & (active[ROWS - 1][COLS - 1] != 0)),
            Cover(swap_at[0] & prev(m, swap_at[0], "swap_q") & (shadow[0][0] != active[0][0])),
        ]
        return m


PROOF = Proof(name="mxu_buffer", title="MXU weight double buffer (MXU 2x2, early-swap PEs): a swap never exposes "
                                       "a half-installed tile",
              build=lambda bug=None: MXUBufferProof(bug=bug), depth=6, cover_depth=12, bugs=BUGS)
