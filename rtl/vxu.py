"""The VXU slice: the per-lane vector ALU (VOP), its requantization registers (SETQ) and lookup table
(LOADLUT), as ``docs/chip.md`` ("RTL structure") and ``golden/chip.py`` define them cycle for cycle.

Every opcode, field position, latency and reset value comes from :mod:`spec.isa`; the arithmetic is the one
of ``spec.isa.VXU_OPS`` (bit-exact twin: ``golden/vxu.py``, which this module never imports).

Contract
--------
* Ports: ``run``, ``issue``, ``word``, ``seen`` (In), ``sel``, ``put`` (Out), the slice ports of
  docs/chip.md. Everything is in the ``sync`` domain; every register holds while ``run`` is low (the whole
  slice is wrapped in an ``EnableInserter(run)``) and ``put.valid`` is low then. The domain's reset clears
  the SETQ registers (``REQUANT_RESET``), the table (``LUT_RESET``) and every valid bit.
* The ICU issues only ``VOP``, ``SETQ`` and ``LOADLUT`` words that do not fault, and only when the ``alu``
  unit is free (``spec.isa.timing(...).busy`` after the previous one), so a new VOP/LOADLUT may issue in the
  cycle of the previous one's last item and a SETQ in any cycle after a VOP/LOADLUT's issue cycle.
* ``VOP`` issued at ``t`` with ``count`` ``n``: item ``i`` samples ``a = see(src)`` (and ``b = see(src2)``)
  during ``u = t + VXU_INPUT_OFFSET + i``; its result is ``put`` on ``dst`` during ``u + VXU_PIPELINE``.
  Only the operations of ``config.vxu_ops`` get hardware (others never issue; their result is unspecified).
* ``SETQ`` issued at ``t``: ``mult``, ``shift``, ``zp`` take the word's values at the end of ``t``.
* ``LOADLUT`` issued at ``t``: during ``t + VXU_INPUT_OFFSET + j`` (``j < lut_vectors(L)``) entry
  ``j·L + k`` takes the low byte of lane ``k`` of ``see(src)`` (entries past 255 do not exist).
* The SETQ parameters and the table in force at an item's sampling cycle are the ones its result uses,
  whatever a later SETQ/LOADLUT does while it is in the pipeline: ``shift`` and ``zp`` travel with the
  operands (``mult`` is consumed at sampling, it is the requant multiplier's second operand; ``requantv``
  ignores it and takes ``b & 0x7FFFFFFF`` instead, also at sampling), and the table
  is read in the cycle after sampling, when it provably has not changed yet (the earliest LOADLUT after a
  VOP issues in the VOP's last sampling cycle ``u`` and writes its first entries at the end of ``u + 1``).

Pipeline (``VXU_PIPELINE`` = 4 register stages; stage ``k`` is the register written at the end of
``u + k - 1``, stage 4 drives ``put`` during ``u + 4``):

1. operands: ``x`` (``|a|`` for requant/requantv, else ``a``), ``y`` (``mult`` for requant, ``b &
   0x7FFFFFFF`` (the lane's low 31 bits, zero-extended) for requantv, else ``b``), the sign of ``a``, the
   captured ``shift``/``zp``;
2. ``add``, ``max``, ``relu``, ``lut`` results; the 64-bit product ``x × y`` (one unsigned 32 × 32
   multiplier per lane, shared by ``mul``, whose low 32 bits do not depend on signedness, and
   ``requant``/``requantv``, whose ``|a| × m < 2**62`` (``m < 2**31``) is exact); the first levels of the
   argmax comparator tree;
3. ``mul``: the product's low 32 bits; ``requant``/``requantv``: ``r = min(|p| >> (30 + shift), 511)``;
   argmax levels;
4. ``requant``/``requantv``: ``q = (r + 1) >> 1`` (= ``round_half_away(|p| / 2**(31 + shift))``, saturated
   at 256, which cannot change the clamped result), ``clamp(zp ± q, -128, 127)``; argmax: lane 0 the index.

``requant`` and ``requantv`` share everything after the multiplier's second operand (a select in stage 1);
each is generated only when ``config.vxu_ops`` has it.
"""
from functools import reduce
from operator import or_

from amaranth.hdl import Cat, EnableInserter, Module, Mux, Signal, signed
from amaranth.lib import wiring

from spec.isa import (
    FIELDS,
    LUT_ENTRIES,
    LUT_RESET,
    MAX_COUNT,
    OPCODES,
    REQUANT_RESET,
    VXU_INPUT_OFFSET,
    VXU_OPS,
    VXU_PIPELINE,
    lut_vectors,
)

from .common import LANE_BITS, STREAM_BITS, field, slice_signature

__all__ = ["VXUSlice"]

if VXU_INPUT_OFFSET != 1:  # pragma: no cover - the slice samples in the cycle after the issue cycle
    raise ImportError(f"rtl.vxu samples one cycle after issue, spec.isa.VXU_INPUT_OFFSET is {VXU_INPUT_OFFSET}")
if VXU_PIPELINE != 4:  # pragma: no cover - the stages below are laid out for four
    raise ImportError(f"rtl.vxu implements a 4-stage VXU pipeline, spec.isa.VXU_PIPELINE is {VXU_PIPELINE}")

_BYTE = 8
_INT8_MIN, _INT8_MAX = -(1 << (_BYTE - 1)), (1 << (_BYTE - 1)) - 1
#: requantv's multiplier: the low 31 bits of the lane of b (golden/vxu.py ``REQUANTV_MULT_MASK``)
_MULT_BITS = 31
#: requant divides by ``2**(31 + shift)``; stage 3 keeps one bit more, for the rounding half
_HALF_SHIFT = 31 - 1
#: ``r`` of stage 3 saturates here: ``q = (r + 1) >> 1 >= 256`` already clamps whatever the zero point.
_R_SAT = 511
_R_BITS = _R_SAT.bit_length()


def _argmax_level(cands):
    """One comparator level: pairs ``(value, index)`` candidates (lower indices on the left, which wins
    ties); an odd one out passes through. Returns combinational candidates."""
    out = []
    for i in range(0, len(cands) - 1, 2):
        (va, ia), (vb, ib) = cands[i], cands[i + 1]
        take_b = vb > va
        out.append((Mux(take_b, vb, va), Mux(take_b, ib, ia)))
    if len(cands) % 2:
        out.append(cands[-1])
    return out


class VXUSlice(wiring.Component):
    """A VXU slice of ``config`` (a ``spec.config.ChipConfig``); see the module docstring for the contract.
    Read port 0 is operand ``a`` (and LOADLUT's source), port 1 operand ``b``."""
    READS = 2

    def __init__(self, config):
        self._config = config.check_rtl()
        super().__init__(slice_signature(config, self.READS))

    def elaborate(self, platform):
        c = self._config
        L = c.lanes
        ops = set(c.vxu_ops)
        code = {name: VXU_OPS[name].code for name in ops}
        binary = any(VXU_OPS[name].arity == 2 for name in ops)
        rq_ops = [name for name in ("requant", "requantv") if name in ops]   # the shared requant datapath
        has_mult = bool(ops & {"mul", "requant", "requantv"})
        n_lut = lut_vectors(L)
        vop_bits = FIELDS["vop"].width
        m = Module()

        # ---- the alu unit's instruction registers -------------------------------------------------
        left = Signal(range(MAX_COUNT + 1))      # items still to sample (VOP or LOADLUT)
        is_lut = Signal()
        src = Signal(STREAM_BITS)
        src2 = Signal(STREAM_BITS)
        dst = Signal(STREAM_BITS)
        vop = Signal(vop_bits)
        j = Signal(range(n_lut + 1))             # LOADLUT vector index
        mult = Signal(FIELDS["mult"].width, init=REQUANT_RESET[0])
        shift = Signal(FIELDS["shift"].width, init=REQUANT_RESET[1])
        zp = Signal(signed(FIELDS["zp"].width), init=REQUANT_RESET[2])
        # the table only if something reads it (a LOADLUT without ``lut`` still runs its items, unseen)
        table = ([Signal(signed(_BYTE), init=LUT_RESET, name=f"lut{e}") for e in range(LUT_ENTRIES)]
                 if "lut" in ops else [])

        opcode = field(self.word, "op")
        with m.If(left != 0):
            m.d.sync += left.eq(left - 1)
            with m.If(is_lut):
                m.d.sync += j.eq(j + 1)
        with m.If(self.issue):
            with m.If(opcode == OPCODES["VOP"].code):
                m.d.sync += [left.eq(field(self.word, "count") + 1), is_lut.eq(0),
                             src.eq(field(self.word, "src")), src2.eq(field(self.word, "src2")),
                             dst.eq(field(self.word, "dst")), vop.eq(field(self.word, "vop"))]
            with m.If(opcode == OPCODES["LOADLUT"].code):
                m.d.sync += [left.eq(n_lut), is_lut.eq(1), j.eq(0), src.eq(field(self.word, "src"))]
            with m.If(opcode == OPCODES["SETQ"].code):
                m.d.sync += [mult.eq(field(self.word, "mult")), shift.eq(field(self.word, "shift")),
                             zp.eq(field(self.word, "zp"))]

        # ---- stage 0: the streams (the interconnect answers the read ports in the same cycle) ----------
        m.d.comb += self.sel[0].eq(src)
        a = [self.seen[0][k] for k in range(L)]
        if binary:
            m.d.comb += self.sel[1].eq(src2)
            b = [self.seen[1][k] for k in range(L)]
        sample = Signal()
        m.d.comb += sample.eq((left != 0) & ~is_lut)

        # LOADLUT: vector j sets entries j·L … j·L + L - 1
        for jj in range(n_lut if table else 0):
            with m.If((left != 0) & is_lut & (j == jj)):
                for k in range(L):
                    e = jj * L + k
                    if e < LUT_ENTRIES:
                        m.d.sync += table[e].eq(a[k][:_BYTE])

        # ---- per-stage control: valid, dst, operation --------------------------------------------
        valid = [Signal(name=f"valid{s}") for s in range(1, VXU_PIPELINE + 1)]
        dsts = [Signal(STREAM_BITS, name=f"dst{s}") for s in range(1, VXU_PIPELINE + 1)]
        vops = [Signal(vop_bits, name=f"vop{s}") for s in range(1, VXU_PIPELINE + 1)]
        m.d.sync += [valid[0].eq(sample), dsts[0].eq(dst), vops[0].eq(vop)]
        for s in range(1, VXU_PIPELINE):
            m.d.sync += [valid[s].eq(valid[s - 1]), dsts[s].eq(dsts[s - 1]), vops[s].eq(vops[s - 1])]

        def is_op(stage, name):   # stage: 0 = the sampling cycle, s = register stage s
            return (vop if stage == 0 else vops[stage - 1]) == code[name]

        def is_rq(stage):         # requant or requantv (whichever are configured)
            return reduce(or_, (is_op(stage, name) for name in rq_ops))

        # ---- stage 1: operands ---------------------------------------------------------------------
        x1 = [Signal(LANE_BITS, name=f"x1_{k}") for k in range(L)]
        y1 = [Signal(LANE_BITS, name=f"y1_{k}") for k in range(L)]
        for k in range(L):
            y = b[k] if binary else 0
            if "requantv" in ops:       # binary: b exists
                y = Mux(is_op(0, "requantv"), b[k][:_MULT_BITS], y)
            if "requant" in ops:
                y = Mux(is_op(0, "requant"), mult, y) if binary else mult
            if rq_ops:
                m.d.sync += x1[k].eq(Mux(is_rq(0) & a[k][-1], -a[k], a[k]))
            else:
                m.d.sync += x1[k].eq(a[k])
            m.d.sync += y1[k].eq(y)
        if rq_ops:
            neg = [Signal(L, name=f"neg{s}") for s in range(1, 4)]
            shift_s = [Signal.like(shift, name=f"shift{s}") for s in range(1, 3)]
            zp_s = [Signal.like(zp, name=f"zp{s}") for s in range(1, 4)]
            m.d.sync += [neg[0].eq(Cat(*(a[k][-1] for k in range(L)))), shift_s[0].eq(shift), zp_s[0].eq(zp),
                         neg[1].eq(neg[0]), neg[2].eq(neg[1]), shift_s[1].eq(shift_s[0]),
                         zp_s[1].eq(zp_s[0]), zp_s[2].eq(zp_s[1])]

        # ---- stage 2: the simple operations, the product ------------------------------------------
        r2 = [Signal(LANE_BITS, name=f"r2_{k}") for k in range(L)]
        p2 = [Signal(2 * LANE_BITS, name=f"p2_{k}") for k in range(L)] if has_mult else None
        table_bits = Signal(len(table) * _BYTE)
        m.d.comb += table_bits.eq(Cat(*table))
        for k in range(L):
            xs, ys = x1[k].as_signed(), y1[k].as_signed()
            if has_mult:
                m.d.sync += p2[k].eq(x1[k] * y1[k])
            with m.Switch(vops[0]):
                if "add" in ops:
                    with m.Case(code["add"]):
                        m.d.sync += r2[k].eq(x1[k] + y1[k])
                if "max" in ops:
                    with m.Case(code["max"]):
                        m.d.sync += r2[k].eq(Mux(xs > ys, xs, ys))
                if "relu" in ops:
                    with m.Case(code["relu"]):
                        m.d.sync += r2[k].eq(Mux(xs < 0, 0, xs))
                if "lut" in ops:
                    with m.Case(code["lut"]):
                        m.d.sync += r2[k].eq(table_bits.word_select(x1[k][:_BYTE], _BYTE).as_signed())

        # argmax: a comparator tree, its levels spread over the computing cycles of stages 2, 3 and 4
        if "argmax" in ops:
            depth = max(0, (L - 1).bit_length())
            per_stage = [depth // 3 + (1 if i < depth % 3 else 0) for i in range(3)]
            idx_bits = max(1, (L - 1).bit_length())
            cands = [(x1[k].as_signed(), k) for k in range(L)]
            for stage, levels in zip((2, 3), per_stage[:2]):
                for _ in range(levels):
                    cands = _argmax_level(cands)
                regs = []
                for i, (v, ix) in enumerate(cands):
                    rv = Signal(signed(LANE_BITS), name=f"amax{stage}_v{i}")
                    ri = Signal(idx_bits, name=f"amax{stage}_i{i}")
                    m.d.sync += [rv.eq(v), ri.eq(ix)]
                    regs.append((rv, ri))
                cands = regs
            for _ in range(per_stage[2]):
                cands = _argmax_level(cands)
            assert len(cands) == 1
            amax_index = cands[0][1]

        # ---- stage 3: mul's low half, requant's shift ---------------------------------------------
        r3 = [Signal(LANE_BITS, name=f"r3_{k}") for k in range(L)]
        for k in range(L):
            m.d.sync += r3[k].eq(r2[k])
            if "mul" in ops:
                with m.If(is_op(2, "mul")):
                    m.d.sync += r3[k].eq(p2[k][:LANE_BITS])
            if rq_ops:
                r = Signal(2 * LANE_BITS - _HALF_SHIFT, name=f"rq_r{k}")
                m.d.comb += r.eq(p2[k][_HALF_SHIFT:] >> shift_s[1])   # |p| >> (30 + shift)
                with m.If(is_rq(2)):
                    m.d.sync += r3[k].eq(Mux(r > _R_SAT, _R_SAT, r))

        # ---- stage 4: the output register -----------------------------------------------------------
        out = [Signal(signed(LANE_BITS), name=f"out{k}") for k in range(L)]
        for k in range(L):
            m.d.sync += out[k].eq(r3[k])
            if rq_ops:
                q = Signal(_R_BITS, name=f"rq_q{k}")
                v = Signal(signed(_R_BITS + 2), name=f"rq_v{k}")
                m.d.comb += [q.eq((r3[k][:_R_BITS] + 1) >> 1),
                             v.eq(zp_s[2] + Mux(neg[2][k], -q, q))]
                with m.If(is_rq(3)):
                    m.d.sync += out[k].eq(Mux(v > _INT8_MAX, _INT8_MAX, Mux(v < _INT8_MIN, _INT8_MIN, v)))
            if "argmax" in ops:
                with m.If(is_op(3, "argmax")):
                    m.d.sync += out[k].eq(amax_index if k == 0 else 0)

        m.d.comb += [self.put.valid.eq(valid[-1] & self.run), self.put.stream.eq(dsts[-1])]
        m.d.comb += [self.put.data[k].eq(out[k]) for k in range(L)]
        return EnableInserter({"sync": self.run})(m)
