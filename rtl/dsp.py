"""A pipelined signed multiplier that maps onto the ECP5 DSP block's own registers.

Yosys maps a plain ``a * b`` onto a ``MULT18X18D`` without using the block's input and output registers,
so the timing path runs fabric flip-flop → DSP → fabric. :class:`Multiplier` instead instantiates the
primitive itself with its input and output registers on when it is elaborated for an ECP5, and
elaborates to the same two-stage pipeline in plain logic for everything else (simulation, iCE40, ...).
"""
from amaranth.hdl import ClockSignal, Const, Instance, Module, ResetSignal, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec.mxu import MULTIPLY_STAGES

__all__ = ["LATENCY", "MAX_OPERAND_WIDTH", "Multiplier", "is_ecp5"]

#: Cycles from operands on ``a``/``b`` to their product on ``p``; set by the specification.
LATENCY = MULTIPLY_STAGES
if LATENCY != 2:  # pragma: no cover - guards the specification against this implementation
    raise ImportError(f"rtl.dsp implements a 2-stage multiplier, but spec.mxu.MULTIPLY_STAGES is "
                      f"{MULTIPLY_STAGES}")

#: Widest operand the ECP5 ``MULT18X18D`` takes.
MAX_OPERAND_WIDTH = 18


def is_ecp5(platform):
    """Whether ``platform`` describes a Lattice ECP5.

    True for amaranth's ``LatticePlatform`` subclasses with an ECP5 device (their ``family`` attribute
    is ``"ecp5"``, e.g. ``amaranth_boards.ulx3s.ULX3S_85F_Platform``) and for any stand-in object with
    ``family = "ecp5"`` (as used for out-of-context synthesis by :mod:`fpga.flow`). False for ``None``
    (simulation) and for other families (iCE40 platforms say ``"iCE40"``).
    """
    return getattr(platform, "family", None) == "ecp5"


def _check_width(name, value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer between 1 and {MAX_OPERAND_WIDTH}, not {value!r}")
    if not 1 <= value <= MAX_OPERAND_WIDTH:
        raise ValueError(f"{name} must be an integer between 1 and {MAX_OPERAND_WIDTH}, not {value!r}")
    return value


class Multiplier(wiring.Component):
    """Signed ``a_width`` × ``b_width`` multiplier with a latency of :data:`LATENCY` (2) cycles.

    Ports
    -----
    a : In(signed(a_width))
    b : In(signed(b_width))
    p : Out(signed(a_width + b_width))
        The exact product (it never overflows: ``(-2**(n-1)) * (-2**(m-1)) = 2**(n+m-2)`` fits).

    Contract
    --------
    * Operands presented on ``a`` and ``b`` during cycle ``t`` appear as ``a * b`` on ``p`` during cycle
      ``t + 2``: one register stage on the operands, one on the product, both in the ``sync`` domain.
    * Fully pipelined: a new pair of operands every cycle, one product every cycle.
    * A (synchronous) reset during cycle ``t_r`` clears both stages: ``p`` reads 0 during cycles
      ``t_r + 1`` and ``t_r + 2``, then follows the operands presented from ``t_r + 1`` on. After
      configuration (or at simulation start) both stages hold 0 as well.

    Implementations
    ---------------
    * ``elaborate(platform)`` with an ECP5 platform (see :func:`is_ecp5`): one ``MULT18X18D`` with
      ``REG_INPUTA_CLK = REG_INPUTB_CLK = REG_OUTPUT_CLK = "CLK0"`` (pipeline register bypassed),
      operands sign-extended to 18 bits, ``SIGNEDA = SIGNEDB = 1``, ``CLK0`` = the ``sync`` clock,
      ``CE0 = 1``, ``RST0`` = the ``sync`` reset with ``RESETMODE = "SYNC"`` (tied low if ``sync`` is
      reset-less). The block's registers start at 0 after configuration and follow the global set/reset
      (``GSR = "ENABLED"``) as fabric flip-flops do: amaranth's ECP5 board platforms make ``sync``
      reset-less and reset the whole design through GSR, which then clears this block too.
    * Anything else (``None`` for Amaranth's simulator, iCE40, ...): a plain registered multiply, two
      fabric register stages; yosys may still map the multiply itself onto a DSP (e.g. SB_MAC16).

    Differences the surrounding design could see (ECP5 only)
    -------------------------------------------------------
    * The DSP registers are outside Amaranth's control flow: wrapping this component (or a design
      containing it) in ``EnableInserter`` or ``ResetInserter`` affects the fabric version but not the
      ``MULT18X18D``, whose CE stays tied high and whose RST stays the plain ``sync`` domain reset. Gate
      the data around it instead, or stall by holding the operands upstream.
    * The ``RESETMODE = "SYNC"`` matches Amaranth's default ``sync`` domain; if the design defines
      ``sync`` with ``async_reset=True`` the fabric version resets asynchronously and this one does not.
    * Neither Amaranth's simulator nor Verilator can run the primitive; simulate the fabric version
      (``platform=None``) — it has the same latency and values.
    """

    def __init__(self, a_width=8, b_width=8):
        self._a_width = _check_width("a_width", a_width)
        self._b_width = _check_width("b_width", b_width)
        super().__init__({
            "a": In(signed(a_width)),
            "b": In(signed(b_width)),
            "p": Out(signed(a_width + b_width)),
        })

    @property
    def a_width(self):
        return self._a_width

    @property
    def b_width(self):
        return self._b_width

    @property
    def latency(self):
        """Cycles from operands to product (:data:`LATENCY`)."""
        return LATENCY

    def elaborate(self, platform):
        if is_ecp5(platform):
            return self._elaborate_ecp5()
        return self._elaborate_fabric()

    def _elaborate_fabric(self):
        m = Module()
        a_reg = Signal.like(self.a)
        b_reg = Signal.like(self.b)
        p_reg = Signal.like(self.p)
        m.d.sync += [
            a_reg.eq(self.a),
            b_reg.eq(self.b),
            p_reg.eq(a_reg * b_reg),
        ]
        m.d.comb += self.p.eq(p_reg)
        return m

    def _elaborate_ecp5(self):
        m = Module()
        a18 = Signal(signed(MAX_OPERAND_WIDTH))
        b18 = Signal(signed(MAX_OPERAND_WIDTH))
        p36 = Signal(signed(2 * MAX_OPERAND_WIDTH))
        m.d.comb += [
            a18.eq(self.a),  # sign-extends: both sides are signed
            b18.eq(self.b),
            self.p.eq(p36[:len(self.p)]),
        ]
        ports = {}
        for i in range(MAX_OPERAND_WIDTH):
            ports[f"i_A{i}"] = a18[i]
            ports[f"i_B{i}"] = b18[i]
            ports[f"i_C{i}"] = Const(0, 1)
        for i in range(2 * MAX_OPERAND_WIDTH):
            ports[f"o_P{i}"] = p36[i]
        m.submodules.mult = Instance(
            "MULT18X18D",
            p_REG_INPUTA_CLK="CLK0", p_REG_INPUTA_CE="CE0", p_REG_INPUTA_RST="RST0",
            p_REG_INPUTB_CLK="CLK0", p_REG_INPUTB_CE="CE0", p_REG_INPUTB_RST="RST0",
            p_REG_INPUTC_CLK="NONE",
            p_REG_PIPELINE_CLK="NONE",
            p_REG_OUTPUT_CLK="CLK0", p_REG_OUTPUT_CE="CE0", p_REG_OUTPUT_RST="RST0",
            p_CLK0_DIV="ENABLED",
            p_HIGHSPEED_CLK="NONE",
            p_GSR="ENABLED",
            p_CAS_MATCH_REG="FALSE",
            p_SOURCEB_MODE="B_SHIFT",
            p_MULT_BYPASS="DISABLED",
            p_RESETMODE="SYNC",
            i_SIGNEDA=Const(1, 1),
            i_SIGNEDB=Const(1, 1),
            i_SOURCEA=Const(0, 1),
            i_SOURCEB=Const(0, 1),
            i_CLK0=ClockSignal("sync"),
            i_CE0=Const(1, 1),
            # 0 if ``sync`` is reset-less (amaranth's ECP5 board platforms reset through GSR instead).
            i_RST0=ResetSignal("sync", allow_reset_less=True),
            **{f"i_{name}": Const(0, 1) for name in ("CLK1", "CLK2", "CLK3", "CE1", "CE2", "CE3",
                                                      "RST1", "RST2", "RST3")},
            **ports,
        )
        return m
