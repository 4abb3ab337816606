"""The matrix unit (MXU): a weight-stationary systolic array of int8 × int8 → int32 MACs.

The timing contract (latency, when weight rows may arrive, accumulator semantics, reset) is stated once, in
:mod:`spec.mxu`, and this generator follows it. In brief:

* ``rows × cols`` processing elements (PEs). PE ``(r, c)`` holds weight ``W[r, c]``. Activations enter at the
  west edge, row ``r`` delayed by ``r`` cycles (the skew), and move one PE east per cycle; partial sums move
  one PE south per cycle; column ``c`` leaves the south edge ``c`` cycles after column 0 and is delayed by
  ``cols - 1 - c`` cycles (the de-skew) so that a whole result vector leaves in one cycle.
* Weight double buffering: every PE has a *shadow* weight, written by the weight port (a row per cycle, the
  column-``c`` element delayed by ``c`` cycles, exactly as activations are), and an *active* weight. The
  ``swap`` flag travels with its activation through the skew and the array, so each PE switches to its shadow
  weight on the very cycle the new tile's first activation reaches it. Older activations still in the array
  keep using the old weights: tiles run back to back with no bubble.
* An accumulator SRAM (``acc_depth`` words of ``cols`` int32) at the south edge adds results across K tiles
  (two's complement, wrapping) and emits finished vectors.

Throughput: one activation vector in and one result vector out per cycle, no stalls, no back-pressure.
"""
from amaranth.hdl import Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from spec.mxu import (ACC_BITS, ACC_READ_STAGES, DATA_BITS, MULTIPLY_STAGES, PRODUCT_STAGES, PSUM_STAGES,
                      MXUParams)
from .dsp import Multiplier
from .sram import READ_LATENCY, RegisteredRAM

if READ_LATENCY != ACC_READ_STAGES:  # pragma: no cover - the spec and the SRAM must agree
    raise ImportError(f"rtl.sram reads in {READ_LATENCY} cycles, spec.mxu.ACC_READ_STAGES is {ACC_READ_STAGES}")

__all__ = ["ProcessingElement", "MXU"]


class ProcessingElement(wiring.Component):
    """One MAC of the array, with double-buffered weight.

    Contract: ``psum_out`` (registered) equals ``psum_in`` (as presented ``MULTIPLY_STAGES + PRODUCT_STAGES``
    cycles after ``a_in``) plus ``a_in × w``, where ``w`` is the shadow weight if ``swap_in`` is high with ``a_in`` and the
    active weight otherwise; on ``swap_in`` the shadow weight becomes the active one. ``w_we`` writes
    ``w_in`` into the shadow weight at the end of the cycle (a swap in the same cycle still takes the old
    shadow value). ``a_out`` and ``swap_out`` are ``a_in`` and ``swap_in`` delayed one cycle, for the
    neighbour to the east. Reset clears both weights.
    """
    def __init__(self, psum_bits):
        self._psum_bits = psum_bits
        super().__init__({
            "a_in": In(signed(DATA_BITS)),
            "swap_in": In(1),
            "psum_in": In(signed(psum_bits)),
            "w_we": In(1),
            "w_in": In(signed(DATA_BITS)),
            "a_out": Out(signed(DATA_BITS)),
            "swap_out": Out(1),
            "psum_out": Out(signed(psum_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mul = mul = Multiplier(DATA_BITS, DATA_BITS)

        w_active = Signal(signed(DATA_BITS))
        w_shadow = Signal(signed(DATA_BITS))
        w_use = Signal(signed(DATA_BITS))
        m.d.comb += w_use.eq(Mux(self.swap_in, w_shadow, w_active))
        with m.If(self.swap_in):
            m.d.sync += w_active.eq(w_shadow)
        with m.If(self.w_we):
            m.d.sync += w_shadow.eq(self.w_in)

        m.d.comb += [mul.a.eq(self.a_in), mul.b.eq(w_use)]
        product = Signal.like(mul.p, name="product")  # PRODUCT_STAGES: the route out of the DSP, alone
        m.d.sync += [
            self.a_out.eq(self.a_in),
            self.swap_out.eq(self.swap_in),
            product.eq(mul.p),
            self.psum_out.eq(self.psum_in + product),
        ]
        return m


def _delay(m, sig, cycles, name):
    """``sig`` delayed by ``cycles`` registers (reset to zero); ``sig`` itself when ``cycles`` is 0."""
    for i in range(cycles):
        nxt = Signal.like(sig, name=f"{name}_d{i + 1}")
        m.d.sync += nxt.eq(sig)
        sig = nxt
    return sig


class MXU(wiring.Component):
    """Weight-stationary systolic matrix unit with double-buffered weights and int32 accumulators.

    Parameters
    ----------
    rows, cols : int
        Array size, each from 1 to 64. ``rows`` is the reduction (K) width, ``cols`` the output (N) width.
    acc_depth : int
        Words of accumulator SRAM (each ``cols`` int32).

    Ports (all sampled at the rising edge of ``sync``; see :mod:`spec.mxu` for the timing contract)
    ----------------------------------------------------------------------------------------------
    ``w_valid``, ``w_row``, ``w_data``
        A weight row for the shadow buffer: ``w_data[c]`` goes to PE ``(w_row, c)``.
    ``a_valid``, ``a_data``, ``a_swap``, ``a_acc``, ``a_emit``, ``a_addr``
        An activation vector (``a_data[r]`` enters array row ``r``) and what to do with its result.
    ``y_valid``, ``y_data``, ``y_addr``
        A result vector, ``latency`` cycles after its activation.
    """
    def __init__(self, rows, cols, acc_depth=1024):
        self.params = MXUParams(rows, cols, acc_depth)
        p = self.params
        super().__init__({
            "w_valid": In(1),
            "w_row": In(p.row_bits),
            "w_data": In(data.ArrayLayout(signed(DATA_BITS), cols)),
            "a_valid": In(1),
            "a_swap": In(1),
            "a_acc": In(1),
            "a_emit": In(1),
            "a_addr": In(p.addr_bits),
            "a_data": In(data.ArrayLayout(signed(DATA_BITS), rows)),
            "y_valid": Out(1),
            "y_addr": Out(p.addr_bits),
            "y_data": Out(data.ArrayLayout(signed(ACC_BITS), cols)),
        })

    @property
    def latency(self):
        return self.params.latency

    def elaborate(self, platform):
        m = Module()
        p = self.params
        R, C = p.rows, p.cols

        # Input registers.
        w_valid = Signal(name="w_valid_r")
        w_row = Signal(p.row_bits, name="w_row_r")
        w_data = Signal.like(self.w_data, name="w_data_r")
        tag_layout = data.StructLayout({"valid": 1, "acc": 1, "emit": 1, "addr": p.addr_bits})
        tag = Signal(tag_layout, name="tag_r")
        a_swap = Signal(name="a_swap_r")
        a_data = Signal.like(self.a_data, name="a_data_r")
        m.d.sync += [
            w_valid.eq(self.w_valid),
            w_row.eq(self.w_row),
            w_data.eq(self.w_data),
            tag.valid.eq(self.a_valid),
            tag.acc.eq(self.a_acc),
            tag.emit.eq(self.a_emit),
            tag.addr.eq(self.a_addr),
            a_swap.eq(self.a_swap & self.a_valid),
            a_data.eq(self.a_data),
        ]

        pes = [[ProcessingElement(p.psum_bits) for _ in range(C)] for _ in range(R)]
        for r in range(R):
            for c in range(C):
                m.submodules[f"pe_r{r}_c{c}"] = pes[r][c]

        # Weight column skew: column c sees each weight row c cycles after column 0, like activations do.
        for c in range(C):
            col_valid = _delay(m, w_valid, c, f"w_valid_c{c}")
            col_row = _delay(m, w_row, c, f"w_row_c{c}")
            col_data = _delay(m, w_data[c], c, f"w_data_c{c}")
            for r in range(R):
                m.d.comb += [
                    pes[r][c].w_we.eq(col_valid & (col_row == r)),
                    pes[r][c].w_in.eq(col_data),
                ]

        # Activation row skew, then east through the array; partial sums south.
        for r in range(R):
            m.d.comb += [
                pes[r][0].a_in.eq(_delay(m, a_data[r], r, f"a_data_r{r}")),
                pes[r][0].swap_in.eq(_delay(m, a_swap, r, f"a_swap_r{r}")),
            ]
            for c in range(1, C):
                m.d.comb += [
                    pes[r][c].a_in.eq(pes[r][c - 1].a_out),
                    pes[r][c].swap_in.eq(pes[r][c - 1].swap_out),
                ]
        for c in range(C):
            m.d.comb += pes[0][c].psum_in.eq(0)
            for r in range(1, R):
                m.d.comb += pes[r][c].psum_in.eq(pes[r - 1][c].psum_out)

        # De-skew: column c leaves the array c cycles after column 0.
        result = Signal(data.ArrayLayout(signed(ACC_BITS), C), name="array_result")
        for c in range(C):
            m.d.comb += result[c].eq(_delay(m, pes[R - 1][c].psum_out, C - 1 - c, f"deskew_c{c}"))

        # The tag travels alongside and reaches the accumulator stage with the de-skewed result. The
        # accumulator SRAM is read ACC_READ_STAGES cycles earlier, from the tag that far upstream.
        to_acc_stage = (R - 1) + (C - 1) + MULTIPLY_STAGES + PRODUCT_STAGES + PSUM_STAGES
        tag_read = _delay(m, tag, to_acc_stage - ACC_READ_STAGES, "tag")
        tag_pre = _delay(m, tag_read, ACC_READ_STAGES - 1, "tag_read")
        tag_acc = _delay(m, tag_pre, 1, "tag_acc")

        m.submodules.acc_mem = acc_mem = RegisteredRAM(data.ArrayLayout(signed(ACC_BITS), C), p.acc_depth)
        m.d.comb += acc_mem.rd_addr.eq(tag_read.addr)

        # The SRAM read misses the two results written just before it: forward them. Which one applies is
        # decided a cycle early, so the compare stays off the path from the SRAM to the adder.
        hist = [Signal(data.StructLayout({"valid": 1, "addr": p.addr_bits}), name=f"acc_hist{i}") for i in (1, 2)]
        hist_data = [Signal.like(acc_mem.rd_data, name=f"acc_hist{i}_data") for i in (1, 2)]
        hit = [Signal(name=f"acc_hit{i}") for i in (1, 2)]
        m.d.sync += [
            hit[0].eq(tag_acc.valid & (tag_acc.addr == tag_pre.addr)),
            hit[1].eq(hist[0].valid & (hist[0].addr == tag_pre.addr)),
        ]
        old = Signal.like(acc_mem.rd_data, name="acc_old")
        with m.If(hit[0]):
            m.d.comb += old.eq(hist_data[0])
        with m.Elif(hit[1]):
            m.d.comb += old.eq(hist_data[1])
        with m.Else():
            m.d.comb += old.eq(acc_mem.rd_data)

        acc_sum = Signal(data.ArrayLayout(signed(ACC_BITS), C), name="acc_sum")
        for c in range(C):
            m.d.comb += acc_sum[c].eq(Mux(tag_acc.acc, old[c], 0) + result[c])
        wrote = tag_acc.valid & ~ResetSignal("sync")
        m.d.comb += [
            acc_mem.wr_addr.eq(tag_acc.addr),
            acc_mem.wr_data.eq(acc_sum),
            acc_mem.wr_en.eq(wrote),
        ]
        m.d.sync += [
            hist[0].valid.eq(tag_acc.valid),
            hist[0].addr.eq(tag_acc.addr),
            hist_data[0].eq(acc_sum),
            hist[1].eq(hist[0]),
            hist_data[1].eq(hist_data[0]),
        ]
        m.d.sync += [
            self.y_valid.eq(tag_acc.valid & tag_acc.emit),
            self.y_addr.eq(tag_acc.addr),
            self.y_data.eq(acc_sum),
        ]
        return m
