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
from amaranth.hdl import Array, Const, Instance, Module, Mux, Signal, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from spec.mxu import (
    ACC_BITS,
    ACC_READ_STAGES,
    DATA_BITS,
    MULTIPLY_STAGES,
    PRODUCT_STAGES,
    PSUM_STAGES,
    MXUParams,
    bits_for,
)

from .dsp import Multiplier, is_ecp5
from .sram import READ_LATENCY, RegisteredRAM

if READ_LATENCY != ACC_READ_STAGES:  # pragma: no cover - the spec and the SRAM must agree
    raise ImportError(f"rtl.sram reads in {READ_LATENCY} cycles, spec.mxu.ACC_READ_STAGES is {ACC_READ_STAGES}")

__all__ = ["ProcessingElement", "MXU"]


class ProcessingElement(wiring.Component):
    """One MAC of the array, with double-buffered weight.

    Contract: ``psum_out`` (registered) equals ``psum_in`` (as presented ``MULTIPLY_STAGES + PRODUCT_STAGES``
    cycles after ``a_in``) plus ``a_in × w``, where ``w`` is the shadow weight if ``swap_in`` is high with ``a_in``
    and the active weight otherwise; on ``swap_in`` the shadow weight becomes the active one. ``w_we`` writes
    ``w_in`` into the shadow weight at the end of the cycle (a swap in the same cycle still takes the old
    shadow value). ``a_out`` and ``swap_out`` are ``a_in`` and ``swap_in`` delayed one cycle, for the
    neighbour to the east. Reset clears both weights.

    With ``early_swap`` the PE also takes ``swap_next``, which must be ``swap_in`` one cycle ahead (what
    ``swap_in`` will be in the next cycle). The weight the multiplier uses is then a register of its own,
    loaded a cycle ahead, instead of a multiplexer driven by ``swap_in`` in front of the multiplier; the
    contract is otherwise the same.

    With ``slots`` > 1 (early swap only) there is a shadow weight per slot: ``w_slot`` says which one ``w_we``
    writes, ``slot_in`` (with ``swap_in``; ``slot_next`` a cycle ahead, with ``swap_next``) which one a swap
    takes; ``slot_out`` is ``slot_in`` delayed one cycle. Reset clears them all.
    """
    def __init__(self, psum_bits, early_swap=False, slots=1):
        if slots > 1 and not early_swap:
            raise ValueError(f"a PE of {slots} weight slots needs early_swap")
        self._psum_bits = psum_bits
        self._early_swap = early_swap
        self._slots = slots
        sb = bits_for(slots)
        super().__init__({
            "a_in": In(signed(DATA_BITS)),
            "swap_in": In(1),
            **({"swap_next": In(1)} if early_swap else {}),
            **({"slot_in": In(sb), "slot_next": In(sb), "w_slot": In(sb), "slot_out": Out(sb)} if slots > 1 else {}),
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

        w_use = Signal(signed(DATA_BITS))
        if self._slots > 1:
            # a shadow weight per slot; the swap's slot picks the one the next activation multiplies by, the
            # write of this cycle to that slot included (as with one slot)
            shadows = Array(Signal(signed(DATA_BITS), name=f"w_shadow{k}") for k in range(self._slots))
            with m.If(self.w_we):
                m.d.sync += shadows[self.w_slot].eq(self.w_in)
            w_cur = Signal(signed(DATA_BITS), name="w_cur")
            with m.If(self.swap_next):
                m.d.sync += w_cur.eq(Mux(self.w_we & (self.w_slot == self.slot_next), self.w_in,
                                         shadows[self.slot_next]))
            m.d.comb += w_use.eq(w_cur)
            m.d.sync += self.slot_out.eq(self.slot_in)
        elif self._early_swap:
            w_shadow = Signal(signed(DATA_BITS))
            with m.If(self.w_we):
                m.d.sync += w_shadow.eq(self.w_in)
            # ``swap_next`` is ``swap_in`` one cycle ahead, so the weight the next activation multiplies by
            # is known a cycle early and kept in a register that feeds the multiplier directly: the shadow
            # weight as it will be after this cycle's write (what a swap on the next cycle takes), or the
            # one in use.
            w_cur = Signal(signed(DATA_BITS), name="w_cur")
            with m.If(self.swap_next):
                m.d.sync += w_cur.eq(Mux(self.w_we, self.w_in, w_shadow))
            m.d.comb += w_use.eq(w_cur)
        else:
            w_shadow = Signal(signed(DATA_BITS))
            with m.If(self.w_we):
                m.d.sync += w_shadow.eq(self.w_in)
            w_active = Signal(signed(DATA_BITS))
            m.d.comb += w_use.eq(Mux(self.swap_in, w_shadow, w_active))
            with m.If(self.swap_in):
                m.d.sync += w_active.eq(w_shadow)

        m.d.comb += [mul.a.eq(self.a_in), mul.b.eq(w_use)]
        product = Signal.like(mul.p, name="product")  # PRODUCT_STAGES: the route out of the DSP, alone
        m.d.sync += [
            self.a_out.eq(self.a_in),
            self.swap_out.eq(self.swap_in),
            product.eq(mul.p),
            self.psum_out.eq(self.psum_in + product),
        ]
        return m


def _ccu2c_init(f):
    """The 16-bit INIT of a CCU2C half computing ``f(A, B, C, D)``."""
    return sum(1 << i for i in range(16) if f(i & 1, (i >> 1) & 1, (i >> 2) & 1, (i >> 3) & 1))


class MuxAdd(wiring.Component):
    """``y = (a if sel else b) + x``, ``width`` bits, wrapping; combinational.

    On ECP5 the multiplexer is folded into the carry chain: one ``CCU2C`` per two bits, each half's LUT4
    computing the propagate ``x ^ (sel ? a : b)`` from ``A = x, B = a, C = sel, D = b`` (the generate is
    ``A``, which is right whenever the propagate is low), so the select costs no LUT level. Elsewhere a
    plain multiplexer and adder.
    """
    def __init__(self, width):
        self._width = width
        super().__init__({"sel": In(1), "a": In(width), "b": In(width), "x": In(width), "y": Out(width)})

    def elaborate(self, platform):
        m = Module()
        w = self._width
        if not is_ecp5(platform):
            m.d.comb += self.y.eq(Mux(self.sel, self.a, self.b) + self.x)
            return m
        init = Const(_ccu2c_init(lambda a, b, c, d: a ^ (b if c else d)), 16)
        zero = Const(0, 1)
        carry = zero
        for i in range(0, w, 2):
            halves = {}
            outs = []
            for h in (0, 1):
                bit = i + h
                s = Signal(name=f"s{bit}")
                if bit < w:
                    halves.update({f"i_A{h}": self.x[bit], f"i_B{h}": self.a[bit], f"i_C{h}": self.sel,
                                   f"i_D{h}": self.b[bit]})
                    outs.append(s)
                else:
                    halves.update({f"i_A{h}": zero, f"i_B{h}": zero, f"i_C{h}": zero, f"i_D{h}": zero})
                halves[f"o_S{h}"] = s
            cout = Signal(name=f"co{i + 1}")
            m.submodules[f"ccu2c_{i}"] = Instance(
                "CCU2C", p_INIT0=init, p_INIT1=init, p_INJECT1_0="NO", p_INJECT1_1="NO",
                i_CIN=carry, o_COUT=cout, **halves)
            for k, s in enumerate(outs):
                m.d.comb += self.y[i + k].eq(s)
            carry = cout
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
    weight_slots : int
        Tiles of shadow weights (``spec.mxu``: a weight row and a swap name their slot on ``w_slot``,
        ``a_slot``; ports present only with more than one slot).

    Ports (all sampled at the rising edge of ``sync``; see :mod:`spec.mxu` for the timing contract)
    ----------------------------------------------------------------------------------------------
    ``w_valid``, ``w_row``, ``w_data``
        A weight row for the shadow buffer: ``w_data[c]`` goes to PE ``(w_row, c)``.
    ``a_valid``, ``a_data``, ``a_swap``, ``a_acc``, ``a_emit``, ``a_addr``
        An activation vector (``a_data[r]`` enters array row ``r``) and what to do with its result.
    ``y_valid``, ``y_data``, ``y_addr``
        A result vector, ``latency`` cycles after its activation.
    """
    def __init__(self, rows, cols, acc_depth=1024, weight_slots=1):
        self.params = MXUParams(rows, cols, acc_depth, weight_slots)
        p = self.params
        slots = {"w_slot": In(p.slot_bits), "a_slot": In(p.slot_bits)} if p.slot_bits else {}
        super().__init__({
            **slots,
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
        w_sel = Signal(R, name="w_sel_r")  # the weight row, decoded: bit r set when row r is written
        w_data = Signal.like(self.w_data, name="w_data_r")
        tag_layout = data.StructLayout({"valid": 1, "acc": 1, "emit": 1, "addr": p.addr_bits})
        tag = Signal(tag_layout, name="tag_r")
        a_swap = Signal(name="a_swap_r")
        a_data = Signal.like(self.a_data, name="a_data_r")
        m.d.sync += [
            w_sel.eq(Mux(self.w_valid, 1 << self.w_row, 0)),  # truncated to R bits: rows >= R write nothing
            w_data.eq(self.w_data),
            tag.valid.eq(self.a_valid),
            tag.acc.eq(self.a_acc),
            tag.emit.eq(self.a_emit),
            tag.addr.eq(self.a_addr),
            a_swap.eq(self.a_swap & self.a_valid),
            a_data.eq(self.a_data),
        ]

        S = p.weight_slots
        if S > 1:
            # The slots travel as the row index and the swap do, each on one delay line shared by the columns
            # (w_slots[c]: the write slot as column c sees it) and by the rows (a_slots[k]: the swap's slot k
            # cycles after the port; row r takes it at k = r + 1, a cycle earlier as slot_next).
            w_slots = [Signal(p.slot_bits, name="w_slot_r")]
            a_slots = [self.a_slot, Signal(p.slot_bits, name="a_slot_r")]
            m.d.sync += [w_slots[0].eq(self.w_slot), a_slots[1].eq(self.a_slot)]
            for c in range(1, C):
                w_slots.append(_delay(m, w_slots[-1], 1, f"w_slot_c{c}"))
            for k in range(2, R + 1):
                a_slots.append(_delay(m, a_slots[-1], 1, f"a_slot_d{k}"))

        # Every PE learns of a swap a cycle ahead (``swap_next``): from its west neighbour's input, in column 0
        # from the row skew one stage earlier, and PE (0, 0) from the ports, as the input register does.
        pes = [[ProcessingElement(p.psum_bits, early_swap=True, slots=S) for _ in range(C)] for _ in range(R)]
        for r in range(R):
            for c in range(C):
                m.submodules[f"pe_r{r}_c{c}"] = pes[r][c]

        # Weight column skew: column c sees each weight row c cycles after column 0, like activations do.
        for c in range(C):
            col_sel = _delay(m, w_sel, c, f"w_sel_c{c}")
            col_data = _delay(m, w_data[c], c, f"w_data_c{c}")
            for r in range(R):
                m.d.comb += [
                    pes[r][c].w_we.eq(col_sel[r]),
                    pes[r][c].w_in.eq(col_data),
                ]
            if S > 1:
                for r in range(R):
                    m.d.comb += pes[r][c].w_slot.eq(w_slots[c])

        # Activation row skew, then east through the array; partial sums south.
        for r in range(R):
            m.d.comb += [
                pes[r][0].a_in.eq(_delay(m, a_data[r], r, f"a_data_r{r}")),
                pes[r][0].swap_in.eq(_delay(m, a_swap, r, f"a_swap_r{r}")),
            ]
            if r > 0:
                m.d.comb += pes[r][0].swap_next.eq(_delay(m, a_swap, r - 1, f"a_swap_r{r}"))
            else:
                m.d.comb += pes[0][0].swap_next.eq(self.a_swap & self.a_valid)
            for c in range(1, C):
                m.d.comb += [
                    pes[r][c].a_in.eq(pes[r][c - 1].a_out),
                    pes[r][c].swap_in.eq(pes[r][c - 1].swap_out),
                    pes[r][c].swap_next.eq(pes[r][c - 1].swap_in),
                ]
            if S > 1:
                m.d.comb += [pes[r][0].slot_in.eq(a_slots[r + 1]), pes[r][0].slot_next.eq(a_slots[r])]
                for c in range(1, C):
                    m.d.comb += [pes[r][c].slot_in.eq(pes[r][c - 1].slot_out),
                                 pes[r][c].slot_next.eq(pes[r][c - 1].slot_in)]
        for c in range(C):
            m.d.comb += pes[0][c].psum_in.eq(0)
            for r in range(1, R):
                m.d.comb += pes[r][c].psum_in.eq(pes[r - 1][c].psum_out)

        # De-skew: column c leaves the array c cycles after column 0.
        result = Signal(data.ArrayLayout(signed(ACC_BITS), C), name="array_result")
        for c in range(C):
            m.d.comb += result[c].eq(_delay(m, pes[R - 1][c].psum_out, C - 1 - c, f"deskew_c{c}"))

        # The tag travels alongside and reaches the accumulator stage with the de-skewed result. The
        # accumulator SRAM is read ACC_READ_STAGES + 2 cycles before that stage, from the tag that far
        # upstream; its word is registered once more in fabric (``acc_ram``), then completed with the
        # results the SRAM has not seen yet into ``acc_pre``, the adder's operand.
        to_acc_stage = (R - 1) + (C - 1) + MULTIPLY_STAGES + PRODUCT_STAGES + PSUM_STAGES
        tag_rd = _delay(m, tag, to_acc_stage - ACC_READ_STAGES - 2, "tag")  # 4 cycles before the acc stage
        tag_p3 = _delay(m, tag_rd, 1, "tag_p3")
        tag_p2 = _delay(m, tag_p3, 1, "tag_p2")
        tag_p1 = _delay(m, tag_p2, 1, "tag_p1")
        tag_acc = _delay(m, tag_p1, 1, "tag_acc")

        m.submodules.acc_mem = acc_mem = RegisteredRAM(data.ArrayLayout(signed(ACC_BITS), C), p.acc_depth)
        m.d.comb += acc_mem.rd_addr.eq(tag_rd.addr)
        acc_ram = Signal.like(acc_mem.rd_data, name="acc_ram")
        m.d.sync += acc_ram.eq(acc_mem.rd_data)

        # Results of the accumulator stage, newest first: hist_data[i] is the one from i + 1 cycles ago. The
        # SRAM is written from hist_data[0], a cycle after the accumulator stage, so a read misses the results
        # of the five accumulator stages before its own: the four older ones are merged into ``acc_pre`` a
        # cycle before the accumulator stage (from hist_data[0..3]), the newest one inside the adder (from
        # hist_data[0]).
        hist = [Signal(data.StructLayout({"valid": 1, "addr": p.addr_bits}), name=f"acc_hist{i}") for i in (1, 2, 3)]
        hist_data = [Signal.like(acc_mem.rd_data, name=f"acc_hist{i}_data") for i in (1, 2, 3, 4)]

        # The items in flight, one stage apart: the one at stages[k] during a cycle is at stages[k + 1] during
        # the next. ``same(older, x)`` is registered a cycle ahead: whether the items that will then be at
        # stages[older] and stages[x] have the same address.
        stages = [tag_rd, tag_p3, tag_p2, tag_p1, tag_acc, *hist]

        def same(older, x, name):
            flag = Signal(name=name)
            m.d.sync += flag.eq(stages[older - 1].addr == stages[x - 1].addr)
            return flag

        # The adder's operand for the item at tag_p1, chosen while it is at tag_p2 and registered as a one-hot
        # select (priority resolved, newest first), so that the data path is a plain AND-OR: the results of
        # the items now at tag_acc, hist[0], hist[1], hist[2] (in hist_data[0..3] a cycle later), else the
        # SRAM's word; nothing (zero) when the item does not accumulate.
        hits = [same(older, 2, f"acc_same{older}") & stages[older].valid for older in (4, 5, 6, 7)]
        use = [Signal(name=f"acc_use{i}") for i in range(4)]
        use_ram = Signal(name="acc_use_ram")
        missed = stages[2].acc
        for i, hit in enumerate(hits):
            m.d.sync += use[i].eq(missed & hit)
            missed = missed & ~hit
        m.d.sync += use_ram.eq(missed)
        width = len(Value.cast(acc_mem.rd_data))
        pre_next = Signal(width, name="acc_pre_next")
        terms = [Value.cast(hist_data[i]) & use[i].replicate(width) for i in range(4)]
        terms.append(Value.cast(acc_ram) & use_ram.replicate(width))
        m.d.comb += pre_next.eq(terms[0] | terms[1] | terms[2] | terms[3] | terms[4])

        # The newest result is chosen inside the adder, for the item at tag_acc.
        fwd_add = Signal(name="acc_fwd_add")
        m.d.sync += fwd_add.eq(same(4, 3, "acc_same_add") & stages[3].acc & stages[4].valid)

        acc_pre = Signal.like(acc_mem.rd_data, name="acc_pre")
        m.d.sync += acc_pre.eq(pre_next)

        # The accumulator stage: the newest result (hist_data[0]) is chosen inside the adder.
        acc_sum = Signal(data.ArrayLayout(signed(ACC_BITS), C), name="acc_sum")
        for c in range(C):
            m.submodules[f"acc_add{c}"] = add = MuxAdd(ACC_BITS)
            m.d.comb += [
                add.sel.eq(fwd_add),
                add.a.eq(hist_data[0][c]),
                add.b.eq(acc_pre[c]),
                add.x.eq(result[c]),
                acc_sum[c].eq(add.y),
            ]
        m.d.comb += [
            acc_mem.wr_addr.eq(hist[0].addr),
            acc_mem.wr_data.eq(hist_data[0]),
            acc_mem.wr_en.eq(hist[0].valid),
        ]
        m.d.sync += [
            hist[0].valid.eq(tag_acc.valid),
            hist[0].addr.eq(tag_acc.addr),
            hist[1].eq(hist[0]),
            hist[2].eq(hist[1]),
            hist_data[0].eq(acc_sum),
            hist_data[1].eq(hist_data[0]),
            hist_data[2].eq(hist_data[1]),
            hist_data[3].eq(hist_data[2]),
        ]
        m.d.sync += [
            self.y_valid.eq(tag_acc.valid & tag_acc.emit),
            self.y_addr.eq(tag_acc.addr),
            self.y_data.eq(acc_sum),
        ]
        return m
