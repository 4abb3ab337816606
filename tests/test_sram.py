# amaranth: UnusedElaboratable=no
"""rtl.sram.RegisteredRAM: the generic elaboration simulated against a Python model of the contract, and the
ECP5 elaboration checked structurally (DP16KD instances with their output registers) and simulated with a
behavioural stand-in for DP16KD (the real primitive cannot be simulated here).
"""
import random
import re

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Cat, ClockSignal, Const, Elaboratable, Module, Signal, Value, signed
from amaranth.lib import data, memory
from amaranth.sim import Simulator

from fpga.flow import stand_in_platform
from rtl.sram import EBR_CONFIGS, READ_LATENCY, RegisteredRAM, ecp5_tiling
from spec.mxu import ACC_READ_STAGES
from tests.reset_harness import ResetHarness

# --- A Python model of the contract --------------------------------------------------------------------

def _expected(depth, ops, resets=()):
    """``rd_data`` during each cycle, per the contract; ``None`` where it is unspecified on ECP5.

    ``ops[t] = (wr_en, wr_addr, wr_data, rd_addr)`` is presented during cycle ``t``. Returns two lists:
    the generic expectation (old word on a same-cycle collision) and the ECP5 one (``None`` there).
    Reset (cycles in ``resets``) changes nothing: the contents and the read registers are not reset.
    """
    mem = [0] * depth
    generic, ecp5 = [0] * READ_LATENCY, [0] * READ_LATENCY
    for wr_en, wr_addr, wr_data, rd_addr in ops:
        word = mem[rd_addr]  # as stored before the writes that end this cycle
        generic.append(word)
        ecp5.append(None if wr_en and wr_addr == rd_addr else word)
        if wr_en:
            mem[wr_addr] = wr_data
    return generic[:len(ops)], ecp5[:len(ops)]


def _simulate(dut, ops, resets=()):
    """Present ``ops[t]`` during cycle ``t`` (reset during ``resets``); return ``rd_data`` in each cycle."""
    harness = ResetHarness(dut)
    wr_data, rd_data = Value.cast(dut.wr_data), Value.cast(dut.rd_data)
    seen = []

    async def testbench(ctx):
        for cycle, (wr_en, wr_addr, data_in, rd_addr) in enumerate(ops):
            ctx.set(dut.wr_en, wr_en)
            ctx.set(dut.wr_addr, wr_addr)
            ctx.set(wr_data, data_in)
            ctx.set(dut.rd_addr, rd_addr)
            ctx.set(harness.rst, cycle in resets)
            seen.append(ctx.get(rd_data))
            await ctx.tick()

    sim = Simulator(harness)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return seen


def _random_ops(depth, width, n, seed, hot=None):
    """Random traffic; with ``hot``, addresses come mostly from a few so that reads hit recent writes."""
    rng = random.Random(seed)
    hot_addrs = [rng.randrange(depth) for _ in range(hot or 0)]

    def addr():
        if hot_addrs and rng.random() < 0.7:
            return rng.choice(hot_addrs)
        return rng.randrange(depth)
    return [(int(rng.random() < 0.6), addr(), rng.getrandbits(width), addr()) for _ in range(n)]


def _collisions(depth, width, seed):
    """Directed: reads of an address written in the same cycle, the cycle before and the cycle after."""
    rng = random.Random(seed)
    ops = []
    for _ in range(20):
        a = rng.randrange(depth)
        other = (a + 1) % depth
        v0, v1, v2, v3 = (rng.getrandbits(width) for _ in range(4))
        ops += [
            (1, a, v0, other),      # a := v0
            (1, a, v1, a),          # same cycle: the read sees v0 (generic), unspecified (ECP5)
            (0, 0, 0, a),           # the write of the previous cycle is seen: v1
            (1, other, v2, a),      # an unrelated write
            (0, 0, 0, a),           # read a ...
            (1, a, v3, other),      # ... written the cycle after the read: not seen (v1)
            (0, 0, 0, other),
        ]
    return ops


def _aliases(depth, width, seed, stride=512):
    """Directed: addresses ``stride`` apart (the same word of different banks of block RAM), all written
    with different values, then read back."""
    rng = random.Random(seed)
    ops = []
    for _ in range(8):
        low = rng.randrange(min(stride, depth))
        addrs = list(range(low, depth, stride))
        ops += [(1, a, rng.getrandbits(width), low) for a in addrs]
        ops += [(0, 0, 0, a) for a in reversed(addrs)]
    return ops + [(0, 0, 0, 0)] * 2


def _as_value(shape_width, signed_shape, value):
    """A bit pattern as the (possibly signed) integer ``ctx.get`` returns for the port."""
    if signed_shape and value >> (shape_width - 1):
        return value - (1 << shape_width)
    return value


def _check(seen, expected, width, signed_shape):
    mask = (1 << width) - 1
    for cycle, (got, want) in enumerate(zip(seen, expected)):
        if want is None:
            continue
        assert got & mask == want, f"cycle {cycle}: rd_data {got & mask:#x}, expected {want:#x}"
        assert got == _as_value(width, signed_shape, want)


# --- The generic elaboration ---------------------------------------------------------------------------

SHAPES = [
    pytest.param(data.ArrayLayout(signed(32), 8), 256, id="8xint32x256"),
    pytest.param(signed(37), 5, id="int37x5"),
    pytest.param(8, 2, id="u8x2"),
    pytest.param(1, 33, id="u1x33"),
]


def _shape_info(ram):
    port = Value.cast(ram.rd_data)
    return len(port), port.shape().signed


def test_read_latency_matches_the_spec():
    assert READ_LATENCY == ACC_READ_STAGES == 2


@pytest.mark.parametrize("shape, depth", SHAPES)
def test_generic_random_traffic(shape, depth):
    ram = RegisteredRAM(shape, depth)
    width, is_signed = _shape_info(ram)
    ops = _random_ops(depth, width, 600, seed=depth * 7 + width, hot=3)
    generic, _ = _expected(depth, ops)
    _check(_simulate(ram, ops), generic, width, is_signed)


@pytest.mark.parametrize("shape, depth", SHAPES)
def test_generic_collisions(shape, depth):
    ram = RegisteredRAM(shape, depth)
    width, is_signed = _shape_info(ram)
    ops = _collisions(depth, width, seed=depth)
    generic, _ = _expected(depth, ops)
    seen = _simulate(ram, ops)
    _check(seen, generic, width, is_signed)


def test_generic_collision_values_spelled_out():
    """The same-cycle, previous-cycle and next-cycle cases, by hand."""
    ram = RegisteredRAM(16, 4)
    ops = [
        (1, 2, 0x1111, 0),  # 0: mem[2] := 0x1111
        (1, 2, 0x2222, 2),  # 1: read 2 while writing it: old word 0x1111, seen in cycle 3
        (0, 0, 0, 2),       # 2: read 2, written the cycle before: 0x2222, seen in cycle 4
        (1, 2, 0x3333, 0),  # 3: write 2 the cycle after the read of cycle 2: not seen by it
        (0, 0, 0, 2),       # 4: read 2: 0x3333, seen in cycle 6
        (0, 0, 0, 0),
        (0, 0, 0, 0),
    ]
    assert _simulate(ram, ops) == [0, 0, 0, 0x1111, 0x2222, 0, 0x3333]


def test_generic_starts_at_zero_and_reset_clears_nothing():
    depth, width = 16, 24
    ram = RegisteredRAM(width, depth)
    ops = [(1, a, 0xA00000 + a, 0) for a in range(depth)]           # fill, reading address 0 meanwhile
    ops += [(0, 0, 0, a) for a in range(depth)] + [(0, 0, 0, 0)] * 2  # read back, through resets
    resets = {depth + 3, depth + 4, depth + 9}
    generic, _ = _expected(depth, ops, resets)
    seen = _simulate(ram, ops, resets)
    assert seen[:3] == [0, 0, 0]       # the registers and the contents start at zero
    assert seen == generic
    assert seen[-depth:] == [0xA00000 + a for a in range(depth)]


def test_generic_elaboration_has_no_block_ram_instances():
    for platform in (None, stand_in_platform("ice40-up5k")):
        text = rtlil.convert(RegisteredRAM(data.ArrayLayout(signed(32), 8), 256), name="top",
                             platform=platform, emit_src=False)
        assert "DP16KD" not in text and "OUTREG" not in text
        assert re.search(r"^\s*memory width 256 size 256 ", text, re.M)


# --- The ECP5 elaboration ------------------------------------------------------------------------------

@pytest.mark.parametrize("width, depth, expected", [
    (256, 256, (36, 8, 1)),     # the 8×8 MXU's accumulators: 8 blocks of 512 × 36
    (256, 512, (36, 8, 1)),
    (256, 1024, (18, 15, 1)),   # 15 blocks of 1024 × 18 rather than 16 of 512 × 36
    (256, 2048, (9, 29, 1)),
    (2048, 1024, (18, 114, 1)),  # 64 columns of int32
    (2048, 4096, (9, 228, 2)),   # 456 blocks: more than an 85F has (208), but well formed
    (9, 4096, (9, 1, 2)),
    (32, 3, (36, 1, 1)),
    (1, 16384, (1, 1, 1)),
])
def test_ecp5_tiling(width, depth, expected):
    t = ecp5_tiling(width, depth)
    assert (t.data_width, t.lanes, t.banks) == expected
    assert t.lanes * t.data_width >= width and t.banks * t.words >= depth
    # no configuration needs fewer blocks
    assert t.blocks == min(-(-width // w) * -(-depth // d) for w, d in EBR_CONFIGS)


def _cells(text, kind):
    """The RTLIL cells of type ``kind``: {name: body}."""
    return dict(re.findall(rf"^\s*cell \\{kind} (\S+)\n(.*?)^\s*end$", text, re.M | re.S))


@pytest.mark.parametrize("shape, depth", [
    (data.ArrayLayout(signed(32), 8), 256),
    (signed(37), 600),
    (9, 4096),
    (data.ArrayLayout(signed(32), 64), 1024),
])
def test_ecp5_elaboration_instantiates_block_rams_with_output_registers(shape, depth):
    ram = RegisteredRAM(shape, depth)
    t = ram.ecp5_tiling
    text = rtlil.convert(ram, name="top", platform=stand_in_platform("ecp5-85f"), emit_src=False)
    cells = _cells(text, "DP16KD")
    assert len(cells) == t.blocks
    assert not re.search(r"^\s*memory ", text, re.M) and "$memrd" not in text  # nothing for yosys to infer
    for body in cells.values():
        params = dict(re.findall(r"parameter \\(\S+) (.+)", body))
        conns = dict(re.findall(r"connect \\(\S+) (.+)", body))
        assert params["REGMODE_A"] == params["REGMODE_B"] == '"OUTREG"'
        assert params["DATA_WIDTH_A"] == params["DATA_WIDTH_B"] == str(t.data_width)
        assert params["GSR"] == '"ENABLED"' and params["RESETMODE"] == '"SYNC"'
        assert params["CSDECODE_A"] == params["CSDECODE_B"] == '"0b000"'
        assert not any(p.startswith("INITVAL") for p in params)  # the primitive's default: zeros
        assert conns["CLKA"] == conns["CLKB"] == r"\clk [0]"
        assert conns["CEB"] == conns["OCEB"] == conns["OCEA"] == conns["CEA"] == "1'1"
        assert conns["RSTA"] == conns["RSTB"] == conns["WEB"] == "1'0"
        assert all(conns[f"CS{p}{i}"] == "1'0" for p in "AB" for i in range(3))
        assert r"\rst" not in body  # reset reaches neither the contents nor the output registers


class _DP16KDModel(Elaboratable):
    """Behaviour of ``DP16KD`` in the configurations RegisteredRAM uses, for simulation.

    Port A writes, port B reads, both ``DATA_WIDTH`` wide with the address on pins ``AD*[13:lsb]``; in the
    36-bit (pseudo-dual-port) mode the word is ``{DIB, DIA}``/``{DOB, DOA}`` and ``ADA0..3`` enable its four
    9-bit bytes, in the 18-bit mode ``ADA0..1`` enable its two bytes (and ``WEA`` the write), below that
    ``WEA`` alone. ``CE*`` enable the port, ``OCEB`` the output register. A same-address read during a
    write returns the old word. Rejects any other configuration.
    """
    LSB = {36: 5, 18: 4, 9: 3, 4: 2, 2: 1, 1: 0}

    def __init__(self, **kwargs):
        self.p = {k[2:]: v for k, v in kwargs.items() if k.startswith("p_")}
        self.i = {k[2:]: v for k, v in kwargs.items() if k.startswith("i_")}
        self.o = {k[2:]: v for k, v in kwargs.items() if k.startswith("o_")}

    def elaborate(self, platform):
        p, i, o = self.p, self.i, self.o
        w = p["DATA_WIDTH_A"]
        assert p["DATA_WIDTH_B"] == w and w in self.LSB
        assert p["REGMODE_B"] == "OUTREG" and p["REGMODE_A"] == "OUTREG"
        assert p["CSDECODE_A"] == p["CSDECODE_B"] == "0b000" and p["GSR"] == "ENABLED"
        for name in ("CSA0", "CSA1", "CSA2", "CSB0", "CSB1", "CSB2", "RSTA", "RSTB", "WEB"):
            assert isinstance(i[name], Const) and i[name].value == 0, name
        for name in ("CLKA", "CLKB"):
            assert isinstance(i[name], ClockSignal) and i[name].domain == "sync"
        lsb = self.LSB[w]

        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=w, depth=16384 >> lsb, init=[])
        wr = mem.write_port(granularity=9 if w >= 18 else None)
        rd = mem.read_port()
        m.d.comb += [
            wr.addr.eq(Cat(*(i[f"ADA{k}"] for k in range(lsb, 14)))),
            rd.addr.eq(Cat(*(i[f"ADB{k}"] for k in range(lsb, 14)))),
            rd.en.eq(i["CEB"]),
        ]
        if w == 36:
            m.d.comb += [
                wr.data.eq(Cat(*(i[f"DIA{k}"] for k in range(18)), *(i[f"DIB{k}"] for k in range(18)))),
                wr.en.eq(Cat(*(i[f"ADA{k}"] & i["CEA"] for k in range(4)))),
            ]
        elif w == 18:
            m.d.comb += [
                wr.data.eq(Cat(*(i[f"DIA{k}"] for k in range(18)))),
                wr.en.eq(Cat(*(i[f"ADA{k}"] & i["WEA"] & i["CEA"] for k in range(2)))),
            ]
        else:
            m.d.comb += [
                wr.data.eq(Cat(*(i[f"DIA{k}"] for k in range(w)))),
                wr.en.eq(i["WEA"] & i["CEA"]),
            ]
        out = Signal(w, reset_less=True)
        with m.If(i["OCEB"]):
            m.d.sync += out.eq(rd.data)
        if w == 36:
            m.d.comb += [o[f"DOA{k}"].eq(out[k]) for k in range(18) if f"DOA{k}" in o]
            m.d.comb += [o[f"DOB{k}"].eq(out[18 + k]) for k in range(18) if f"DOB{k}" in o]
        else:
            m.d.comb += [o[f"DOB{k}"].eq(out[k]) for k in range(w) if f"DOB{k}" in o]
        return m


class _ModelledECP5RAM(RegisteredRAM):
    """The ECP5 elaboration, with the behavioural model in place of each DP16KD instance."""

    def elaborate(self, platform):
        return self._elaborate_ecp5()

    def _ebr(self, **kwargs):
        return _DP16KDModel(**kwargs)


@pytest.mark.parametrize("shape, depth", [
    pytest.param(data.ArrayLayout(signed(32), 8), 256, id="36-bit mode, 8 lanes"),
    pytest.param(signed(40), 100, id="36-bit mode, partial lane"),
    pytest.param(signed(37), 600, id="18-bit mode"),
    pytest.param(20, 2000, id="9-bit mode"),
    pytest.param(9, 4096, id="9-bit mode, 2 banks"),
    pytest.param(5, 3000, id="4-bit mode"),
    pytest.param(4, 10000, id="4-bit mode, 3 banks"),
    pytest.param(2, 8000, id="2-bit mode"),
    pytest.param(1, 16384, id="1-bit mode"),
])
def test_ecp5_structure_with_a_behavioural_block_ram(shape, depth):
    """Tiling, bank decode, lane slicing and the bank multiplexer's timing, with DP16KD modelled."""
    ram = _ModelledECP5RAM(shape, depth)
    width, is_signed = _shape_info(ram)
    ops = _random_ops(depth, width, 500, seed=depth + width, hot=4) + _collisions(depth, width, seed=width)
    ops += _aliases(depth, width, seed=depth, stride=ram.ecp5_tiling.words)
    _, ecp5 = _expected(depth, ops, resets={50, 51})
    _check(_simulate(ram, ops, resets={50, 51}), ecp5, width, is_signed)


def test_mxu_accumulators_use_block_rams_with_output_registers_on_ecp5():
    """The 8×8 MXU's accumulator SRAM (8 columns of int32, 256 deep) is 8 DP16KD in the 36-bit mode."""
    from rtl.mxu import MXU
    text = rtlil.convert(MXU(8, 8, 256), name="top", platform=stand_in_platform("ecp5-85f"), emit_src=False)
    cells = _cells(text, "DP16KD")
    assert len(cells) == 8
    for body in cells.values():
        assert 'parameter \\REGMODE_B "OUTREG"' in body and "parameter \\DATA_WIDTH_B 36" in body
