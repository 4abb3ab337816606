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
  A ``spread``'s item ``i`` puts lane ``i mod L`` of item 0's ``a`` on every lane: ``a`` is latched in item
  0's sampling cycle (a register, ``held``), later items' stream values are ignored; the latch and the item
  counter restart at every VOP's issue, so a spread issued in the previous one's last sampling cycle takes
  its own item 0 while the previous one's last items still read the old latch (they read it in the cycle
  after their sampling, before the new item 0's sampling cycle ends).
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
   captured ``shift``/``zp``; spread's item index ``i mod L``;
2. ``add``, ``max``, ``relu``, ``lut`` results (the table is a 256-byte memory with a combinational read
   port per lane, and a bit per LOADLUT vector, cleared by reset, saying the vector was loaded since: an
   entry of one that was not reads ``LUT_RESET``; a word select of 256 byte registers had Verilator shift
   all 2048 bits per lane per cycle, a fifth of the ``small`` chip's simulation time), ``spread``'s lane of
   the latch; the 64-bit product ``x × y``
   (one unsigned 32 × 32 multiplier per lane, shared by ``mul``, whose low 32 bits do not depend on
   signedness, and ``requant``/``requantv``, whose ``|a| × m < 2**62`` (``m < 2**31``) is exact); the first
   levels of the max tree (argmax, lmax) and of the lsum adder tree; recip/rsqrt: ``e`` the position of
   ``x``'s leading one (a priority encoder over bits 0 … 30, as a 5-level binary search), ``f`` the
   ``ROM_INDEX_BITS`` bits after it (``((x << 7) >> e) & 127``), ``x > 0``;
3. ``mul``: the product's low 32 bits; ``requant``/``requantv``: ``r = min(|p| >> (30 + shift), 511)``;
   tree levels; recip: the entry ``RECIP_ROM[f]`` and the shift ``e``; rsqrt: ``RSQRT_ROM[e & 1][f]`` and
   ``e >> 1`` (for ``x <= 0``: ``2**31 - 1`` and shift 0); the tables are read-only memories initialized
   from :mod:`spec.vxu_rom` (one per operation, rsqrt's two parities in one table indexed by ``(e & 1, f)``),
   with one combinational read port per lane (a ROM array in the Verilog: a multiplexer per lane in
   logic; a word select of one constant made the Verilator model of ``small`` build 1.5 times slower);
4. ``requant``/``requantv``: ``q = (r + 1) >> 1`` (= ``round_half_away(|p| / 2**(31 + shift))``, saturated
   at 256, which cannot change the clamped result), ``clamp(zp ± q, -128, 127)``; argmax: lane 0 the index;
   the last tree levels: lmax the maximum, lsum the sum (wrapping) on every lane; recip/rsqrt: the entry
   shifted right.

The trees have ``ceil(log2 L)`` levels, split over stages 2, 3, 4 (the earlier stages take the extra ones);
argmax and lmax share one comparator tree (the index only when argmax is configured). ``requant`` and
``requantv`` share everything after the multiplier's second operand (a select in stage 1), ``recip`` and
``rsqrt`` the normalization and the shift; each operation is generated only when ``config.vxu_ops`` has it.
"""
from functools import reduce
from operator import or_

from amaranth.hdl import Cat, Const, EnableInserter, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

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
from spec.vxu_rom import NONPOSITIVE_RESULT, RECIP_ROM, ROM_INDEX_BITS, RSQRT_ROM

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
#: recip/rsqrt: a positive lane's leading one is at 0 … 30
_MAG_BITS = LANE_BITS - 1
_EXP_BITS = (_MAG_BITS - 1).bit_length()
#: width of a table entry (every entry of spec.vxu_rom is below 2**31)
_ROM_BITS = max(v.bit_length() for v in RECIP_ROM + RSQRT_ROM[0] + RSQRT_ROM[1])


def _max_pick(a, b):
    """Comparator of the max tree: candidates ``(value, index…)``, ``a`` the lower lanes; ``b`` wins only if
    strictly larger (the lowest index wins ties, as argmax wants; lmax reads only the value)."""
    (va, *ia), (vb, *ib) = a, b
    take_b = vb > va
    return (Mux(take_b, vb, va), *(Mux(take_b, y, x) for x, y in zip(ia, ib)))


def _sum_pick(a, b):
    """Adder of the lsum tree: ``(value,)`` candidates, wrapping modulo 2**32."""
    return ((a[0] + b[0])[:LANE_BITS].as_signed(),)


def _tree_level(cands, pick):
    """One level of a reduction tree: pairs neighbouring candidates with ``pick``; an odd one out passes
    through. Returns combinational candidates."""
    out = [pick(cands[i], cands[i + 1]) for i in range(0, len(cands) - 1, 2)]
    if len(cands) % 2:
        out.append(cands[-1])
    return out


def _tree(m, leaves, shapes, pick, name):
    """A reduction tree over ``leaves`` (tuples of values of ``shapes``, one per lane of stage 1), its
    ``ceil(log2 L)`` levels spread over the computing cycles of stages 2, 3 and 4 (the earlier stages take
    the extra levels); registers after the levels of stages 2 and 3. Returns the combinational root, to be
    registered by stage 4."""
    depth = max(0, (len(leaves) - 1).bit_length())
    per_stage = [depth // 3 + (1 if i < depth % 3 else 0) for i in range(3)]
    cands = leaves
    for stage, levels in zip((2, 3), per_stage[:2]):
        for _ in range(levels):
            cands = _tree_level(cands, pick)
        regs = []
        for i, cand in enumerate(cands):
            rs = tuple(Signal(shape, name=f"{name}{stage}_{i}_{j}") for j, shape in enumerate(shapes))
            m.d.sync += [r.eq(v) for r, v in zip(rs, cand)]
            regs.append(rs)
        cands = regs
    for _ in range(per_stage[2]):
        cands = _tree_level(cands, pick)
    assert len(cands) == 1
    return cands[0]


def _leading_one(x):
    """The position of the highest set bit of ``x`` (0 when ``x`` is 0): a priority encoder, as a binary
    search (``log2`` levels: at each, is anything set in the upper half of what is left?)."""
    width = len(x)
    bits = (width - 1).bit_length()
    pos = []                                     # the result's bits, most significant first
    rest = x
    for level in reversed(range(bits)):
        half = 1 << level
        hi = rest[half:] if len(rest) > half else rest[:0]
        upper = hi.any() if len(hi) else Const(0, 1)
        pos.append(upper)
        lo = rest[:half]
        rest = Mux(upper, hi, lo) if len(hi) else lo
    return Cat(*reversed(pos))


def _rom(entries):
    """A table of ``spec.vxu_rom`` as a read-only memory (no write port; its reads are combinational: one
    multiplexer per reader, a ROM array in the Verilog)."""
    return Memory(shape=_ROM_BITS, depth=len(entries), init=entries)


def _rom_read(m, rom, addr):
    """The entry of ``rom`` at ``addr``, through a new combinational read port."""
    port = rom.read_port(domain="comb")
    m.d.comb += port.addr.eq(addr)
    return port.data


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
        rom_ops = [name for name in ("recip", "rsqrt") if name in ops]       # the shared normalization
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
        chain = Signal()                         # operand a is the latest result (VOP's chain flag)
        j = Signal(range(n_lut + 1))             # LOADLUT vector index
        mult = Signal(FIELDS["mult"].width, init=REQUANT_RESET[0])
        shift = Signal(FIELDS["shift"].width, init=REQUANT_RESET[1])
        zp = Signal(signed(FIELDS["zp"].width), init=REQUANT_RESET[2])
        # the table only if something reads it (a LOADLUT without ``lut`` still runs its items, unseen)
        has_lut = "lut" in ops

        opcode = field(self.word, "op")
        with m.If(left != 0):
            m.d.sync += left.eq(left - 1)
            with m.If(is_lut):
                m.d.sync += j.eq(j + 1)
        with m.If(self.issue):
            with m.If(opcode == OPCODES["VOP"].code):
                m.d.sync += [left.eq(field(self.word, "count") + 1), is_lut.eq(0),
                             src.eq(field(self.word, "src")), src2.eq(field(self.word, "src2")),
                             dst.eq(field(self.word, "dst")), vop.eq(field(self.word, "vop")),
                             chain.eq(field(self.word, "chain"))]
            with m.If(opcode == OPCODES["LOADLUT"].code):
                m.d.sync += [left.eq(n_lut), is_lut.eq(1), j.eq(0), src.eq(field(self.word, "src")),
                             chain.eq(0)]
            with m.If(opcode == OPCODES["SETQ"].code):
                m.d.sync += [mult.eq(field(self.word, "mult")), shift.eq(field(self.word, "shift")),
                             zp.eq(field(self.word, "zp"))]

        # ---- stage 0: the streams (the interconnect answers the read ports in the same cycle) ----------
        m.d.comb += self.sel[0].eq(src)
        seen_a = [self.seen[0][k] for k in range(L)]
        # chain: operand a is the latest result, the output register's when it holds one this cycle, else the
        # last one kept (``last``, cleared by reset); ``last`` and the output register are declared here
        out = [Signal(signed(LANE_BITS), name=f"out{k}") for k in range(L)]
        out_valid = Signal()
        last = [Signal(signed(LANE_BITS), name=f"last{k}") for k in range(L)]
        a = [Signal(signed(LANE_BITS), name=f"a{k}") for k in range(L)]      # a signal each, computed once
        m.d.comb += [a[k].eq(Mux(chain, Mux(out_valid, out[k], last[k]), seen_a[k])) for k in range(L)]
        if binary:
            m.d.comb += self.sel[1].eq(src2)
            b = [self.seen[1][k] for k in range(L)]
        sample = Signal()
        m.d.comb += sample.eq((left != 0) & ~is_lut)

        # LOADLUT: vector j sets entries j·L … j·L + L - 1. The table is a memory (one write port per lane, a
        # combinational read port per lane: an array lookup in Verilator, not a shift of all 2048 bits) and a
        # bit per vector, ``lut_loaded``, cleared by reset: an entry of a vector not loaded since reads
        # LUT_RESET (the memory itself keeps what an earlier run left).
        if has_lut:
            m.submodules.lut = lut = Memory(shape=_BYTE, depth=LUT_ENTRIES, init=[])
            # the vector j that entry e belongs to (e // L), as a read-only memory: no divider for any L (and
            # none at all when one vector holds the whole table, L >= 256: no zero-width words)
            if n_lut > 1:
                m.submodules.lut_vector = lut_vector = Memory(shape=range(n_lut), depth=LUT_ENTRIES,
                                                              init=[e // L for e in range(LUT_ENTRIES)])
            lut_loaded = Signal(n_lut, name="lut_loaded")
            loading = (left != 0) & is_lut
            for k in range(min(L, LUT_ENTRIES)):
                wr = lut.write_port()
                e = j * L + k
                m.d.comb += [wr.en.eq(loading & (e < LUT_ENTRIES)), wr.addr.eq(e), wr.data.eq(seen_a[k][:_BYTE])]
            with m.If(loading):
                m.d.sync += lut_loaded.eq(lut_loaded | (Const(1, n_lut) << j)[:n_lut])

            def lut_read(x):
                """The table's entry ``x`` (int8), combinational."""
                rd = lut.read_port(domain="comb")
                m.d.comb += rd.addr.eq(x)
                loaded = lut_loaded.bit_select(_rom_read(m, lut_vector, x), 1) if n_lut > 1 else lut_loaded[0]
                return Mux(loaded, rd.data, LUT_RESET).as_signed()

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

        def is_rom(stage):        # recip or rsqrt (whichever are configured)
            return reduce(or_, (is_op(stage, name) for name in rom_ops))

        # spread: item 0's operand a is latched (``held``) in its sampling cycle; ``item`` counts the items
        # modulo L. Both restart at a VOP's issue (which comes after a previous VOP's last sample, or in its
        # cycle: the issue wins).
        if "spread" in ops:
            first = Signal()                     # the next sample is item 0 of its VOP
            item = Signal(range(L))
            held = [Signal(LANE_BITS, name=f"held{k}") for k in range(L)]
            with m.If(sample):
                m.d.sync += [first.eq(0), item.eq(Mux(item == L - 1, 0, item + 1))]
                with m.If(first & is_op(0, "spread")):
                    m.d.sync += [held[k].eq(a[k]) for k in range(L)]
            with m.If(self.issue & (opcode == OPCODES["VOP"].code)):
                m.d.sync += [first.eq(1), item.eq(0)]

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

        if "spread" in ops:
            item1 = Signal.like(item)
            m.d.sync += item1.eq(item)

        # ---- stage 2: the simple operations, the product ------------------------------------------
        r2 = [Signal(LANE_BITS, name=f"r2_{k}") for k in range(L)]
        p2 = [Signal(2 * LANE_BITS, name=f"p2_{k}") for k in range(L)] if has_mult else None
        if "spread" in ops:      # lane ``item mod L`` of the latched operand, on every lane
            spread_v = Signal(LANE_BITS)
            m.d.comb += spread_v.eq(Cat(*held).word_select(item1, LANE_BITS) if L > 1 else held[0])
        for k in range(L):
            xs, ys = x1[k].as_signed(), y1[k].as_signed()
            looked = lut_read(x1[k][:_BYTE]) if has_lut else None   # outside the Switch: unconditional ports
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
                        m.d.sync += r2[k].eq(looked)
                if "spread" in ops:
                    with m.Case(code["spread"]):
                        m.d.sync += r2[k].eq(spread_v)

        # recip/rsqrt: the leading one's position e (a priority encoder), the 7 bits f after it, a > 0
        if rom_ops:
            e2 = [Signal(_EXP_BITS, name=f"rom_e2_{k}") for k in range(L)]
            f2 = [Signal(ROM_INDEX_BITS, name=f"rom_f2_{k}") for k in range(L)]
            pos2 = Signal(L)                     # lane k: a > 0
            for k in range(L):
                mag = x1[k][:_MAG_BITS]
                e = Signal(_EXP_BITS, name=f"rom_e{k}")
                m.d.comb += e.eq(_leading_one(mag))
                m.d.sync += [e2[k].eq(e), f2[k].eq((Cat(Const(0, ROM_INDEX_BITS), mag) >> e)[:ROM_INDEX_BITS])]
            m.d.sync += pos2.eq(Cat(*(x1[k].as_signed() > 0 for k in range(L))))

        # argmax, lmax: one comparator tree (argmax also carries the lane index); lsum: an adder tree. Their
        # levels are spread over the computing cycles of stages 2, 3 and 4.
        if ops & {"argmax", "lmax"}:
            idx_bits = max(1, (L - 1).bit_length())
            with_index = "argmax" in ops
            shapes = (signed(LANE_BITS),) + ((idx_bits,) if with_index else ())
            leaves = [(x1[k].as_signed(),) + ((k,) if with_index else ()) for k in range(L)]
            root = _tree(m, leaves, shapes, _max_pick, "amax")
            amax_value = root[0]
            amax_index = root[1] if with_index else None
        if "lsum" in ops:
            lsum_value = _tree(m, [(x1[k].as_signed(),) for k in range(L)], (signed(LANE_BITS),), _sum_pick,
                               "lsum")[0]

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
        # recip/rsqrt: the table entry (rsqrt's table by the parity of e), the shift; a <= 0: 2**31 - 1 >> 0
        if rom_ops:
            sh3 = [Signal(_EXP_BITS, name=f"rom_sh3_{k}") for k in range(L)]
            if "recip" in ops:
                m.submodules.recip_rom = recip_rom = _rom(RECIP_ROM)
            if "rsqrt" in ops:     # entry p·ROM_ENTRIES + f: RSQRT_ROM[p][f]
                m.submodules.rsqrt_rom = rsqrt_rom = _rom(RSQRT_ROM[0] + RSQRT_ROM[1])
            for k in range(L):
                if "recip" in ops:
                    v, sh = _rom_read(m, recip_rom, f2[k]), e2[k]
                if "rsqrt" in ops:
                    v_r = _rom_read(m, rsqrt_rom, Cat(f2[k], e2[k][0]))
                    sh_r = e2[k] >> 1
                    if "recip" in ops:
                        v, sh = Mux(is_op(2, "rsqrt"), v_r, v), Mux(is_op(2, "rsqrt"), sh_r, sh)
                    else:
                        v, sh = v_r, sh_r
                with m.If(is_rom(2)):
                    m.d.sync += [r3[k].eq(Mux(pos2[k], v, NONPOSITIVE_RESULT)), sh3[k].eq(Mux(pos2[k], sh, 0))]

        # ---- stage 4: the output register -----------------------------------------------------------
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
            if "lmax" in ops:
                with m.If(is_op(3, "lmax")):
                    m.d.sync += out[k].eq(amax_value)
            if "lsum" in ops:
                with m.If(is_op(3, "lsum")):
                    m.d.sync += out[k].eq(lsum_value)
            if rom_ops:
                with m.If(is_rom(3)):
                    m.d.sync += out[k].eq(r3[k][:_ROM_BITS] >> sh3[k])

        m.d.comb += out_valid.eq(valid[-1])
        with m.If(out_valid):
            m.d.sync += [last[k].eq(out[k]) for k in range(L)]
        m.d.comb += [self.put.valid.eq(valid[-1] & self.run), self.put.stream.eq(dsts[-1])]
        m.d.comb += [self.put.data[k].eq(out[k]) for k in range(L)]
        return EnableInserter({"sync": self.run})(m)
