"""Specification of the matrix unit (MXU): widths, limits, port layout and timing.

This module is the single place where the MXU's numbers live. The RTL generator (``rtl/mxu.py``), the
golden model (``golden/mxu.py``), the trace builders in ``sim/`` and the docs all read it.

Conventions
-----------
The MXU computes ``y = x @ W`` on int8 operands with int32 results. ``W`` is a ``rows × cols`` tile: row ``r``
of the array holds ``W[r, :]`` (the reduction dimension K runs along rows), column ``c`` produces output
element ``c``. An activation vector holds ``rows`` int8 values; a result vector holds ``cols`` int32 values.

Timing contract (cycle ``t`` means "presented on the inputs during cycle t and sampled at the rising edge
that ends it"; every input is registered once on entry):

* **Result latency.** An activation presented at cycle ``t`` with ``emit`` set appears on ``y`` during cycle
  ``t + latency`` where ``latency = rows + cols + 4`` (input register, row skew ``rows - 1``, column skew
  ``cols - 1``, a two-stage multiplier, a product register, the partial-sum add, the accumulator stage).
  One result per cycle.
* **Weights.** A weight row presented at cycle ``t_w`` with index ``r`` is written into the *shadow* weights
  of array row ``r``. An activation presented at cycle ``t_a`` with ``swap`` set makes the shadow weights
  active, row by row as it travels: row ``r`` takes the shadow value written by the latest weight row
  presented at a cycle ``t_w <= t_a + r - 1``. So a tile's rows may be presented on consecutive cycles
  starting anywhere from the first cycle of the previous tile's activations up to one cycle before the
  swapping activation: the next tile installs while the current one computes, and back-to-back tiles of
  at least ``rows`` activations each run without idle cycles.
* **Weight slots.** With ``weight_slots = S`` (1 … ``MAX_WEIGHT_SLOTS``) the shadow weights are ``S`` tiles
  deep: a weight row carries a slot index ``w_slot`` and a swapping activation one, ``a_slot``; row ``r`` of
  the swap takes the latest write to (``a_slot``, ``r``) presented at ``t_w <= t_a + r - 1``. So up to ``S``
  tiles may be installed ahead of their swaps. With one slot the slot indices are absent (zero).
* **Accumulators.** Each activation carries an accumulator address ``addr``, an ``acc`` flag and an
  ``emit`` flag. Its result (``cols`` int32) is ``mem[addr] + y`` when ``acc`` is set, else ``y``; the result
  is written back to ``mem[addr]`` and, when ``emit`` is set, leaves on ``y`` with ``y_addr = addr``.
  Sums wrap around modulo 2**32 (two's complement), in RTL and golden alike. Results are applied in
  activation order, so back-to-back accumulations to one address see each other.
* **Reset.** A synchronous reset during cycle ``t_r`` clears every weight (active and shadow) and drops every
  activation presented at a cycle ``t <= t_r`` whose result would appear after ``t_r`` (and its accumulator
  write). Accumulator memory contents are not cleared (it is SRAM); the first use after a reset should not
  set ``acc``.
* ``valid`` low on an input means the other fields of that input are ignored (a ``swap`` without ``valid``
  does nothing).
"""
from dataclasses import dataclass

__all__ = [
    "DATA_BITS", "PRODUCT_BITS", "ACC_BITS", "MIN_DIM", "MAX_DIM", "MIN_ACC_DEPTH", "MAX_ACC_DEPTH",
    "INPUT_STAGES", "MULTIPLY_STAGES", "PRODUCT_STAGES", "PSUM_STAGES", "ACCUMULATE_STAGES", "ACC_READ_STAGES",
    "MAX_WEIGHT_SLOTS", "MXUParams", "check_dim", "check_acc_depth", "check_weight_slots", "bits_for",
]

DATA_BITS = 8          #: int8 activations and weights
PRODUCT_BITS = 2 * DATA_BITS
ACC_BITS = 32          #: int32 results and accumulators, wrapping modulo 2**32

MIN_DIM, MAX_DIM = 1, 64
MIN_ACC_DEPTH, MAX_ACC_DEPTH = 2, 1 << 16  # one word would need a zero-width address
MAX_WEIGHT_SLOTS = 16  #: tiles of shadow weights an MXU may hold ahead of their swaps

INPUT_STAGES = 1       #: every input is registered once on entry
MULTIPLY_STAGES = 2    #: multiplier input register and output register (maps onto DSP block registers)
PRODUCT_STAGES = 1     #: fabric register on the product, so the DSP-to-fabric route is a path of its own
PSUM_STAGES = 1        #: partial-sum add, registered, per array row
ACCUMULATE_STAGES = 1  #: accumulator read-modify-write and output register
ACC_READ_STAGES = 2    #: accumulator SRAM read: address register, then the block RAM's output register


def _check_int(name, value, lo, hi):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer between {lo} and {hi}, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer between {lo} and {hi}, not {value!r}")
    return value


def check_dim(name, value):
    """Check an array dimension (``rows`` or ``cols``)."""
    return _check_int(name, value, MIN_DIM, MAX_DIM)


def check_acc_depth(value):
    return _check_int("acc_depth", value, MIN_ACC_DEPTH, MAX_ACC_DEPTH)


def check_weight_slots(value):
    return _check_int("weight_slots", value, 1, MAX_WEIGHT_SLOTS)


def bits_for(n):
    """Bits needed to address ``n`` items (at least one)."""
    return max(1, (n - 1).bit_length())


@dataclass(frozen=True)
class MXUParams:
    """Parameters of one MXU instance, validated on construction."""
    rows: int
    cols: int
    acc_depth: int = 1024
    weight_slots: int = 1

    def __post_init__(self):
        check_dim("rows", self.rows)
        check_dim("cols", self.cols)
        check_acc_depth(self.acc_depth)
        check_weight_slots(self.weight_slots)

    @property
    def latency(self):
        """Cycles from an activation on the inputs to its result on ``y``."""
        return (INPUT_STAGES + (self.rows - 1) + (self.cols - 1) + MULTIPLY_STAGES + PRODUCT_STAGES
                + PSUM_STAGES + ACCUMULATE_STAGES)

    @property
    def row_bits(self):
        """Width of the ``w_row`` weight-row index."""
        return bits_for(self.rows)

    @property
    def slot_bits(self):
        """Width of the ``w_slot`` and ``a_slot`` indices (0 with one slot: the ports are absent)."""
        return 0 if self.weight_slots == 1 else bits_for(self.weight_slots)

    @property
    def addr_bits(self):
        """Width of accumulator addresses (``a_addr``, ``y_addr``)."""
        return bits_for(self.acc_depth)

    @property
    def psum_bits(self):
        """Width of partial sums inside the array: a sum of ``rows`` int8 products never overflows it."""
        # |product| <= 2**14 (only (-128)*(-128) reaches it), so rows products fit in 15 + bits(rows) + 1.
        return min(ACC_BITS, 2 * DATA_BITS + self.rows.bit_length())

    def weight_deadline(self, swap_cycle, row):
        """Latest cycle at which weight row ``row`` may be presented to be taken by a swap at ``swap_cycle``."""
        return swap_cycle + row - 1

    def macs_per_cycle(self):
        return self.rows * self.cols
