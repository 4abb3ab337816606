"""Definitions every chip component shares (docs/chip.md, "RTL structure").

* ``vector_layout(config)``: a vector, ``L`` lanes of int32.
* ``stream_write_layout(config)``: what a slice writes onto the streams in one cycle (``valid``, ``stream``
  in the ISA's 6-bit form, ``data``).
* ``field(word, name)``: a field of an instruction word, positions from ``spec.isa.FIELDS``.
* ``see_stream(m, see_e, see_w, bits, name)``: the vector on stream ``bits`` (6-bit ISA form) at a slice.
* ``int8_lanes(vector, n)``: the low bytes of lanes ``0 … n-1`` as signed 8-bit values (how int8 units read
  a lane).
"""
from amaranth.hdl import Cat, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data

from spec import isa

__all__ = ["LANE_BITS", "STREAM_BITS", "vector_layout", "stream_write_layout", "streams_layout", "field",
           "see_stream", "int8_lanes"]

LANE_BITS = 32
STREAM_BITS = isa.STREAM_INDEX_BITS + 1


def vector_layout(config):
    """``L`` lanes of int32."""
    return data.ArrayLayout(signed(LANE_BITS), config.lanes)


def streams_layout(config):
    """The ``S`` vectors of one direction at one slice position."""
    return data.ArrayLayout(vector_layout(config), config.streams)


def stream_write_layout(config):
    """One slice's stream write in one cycle."""
    return data.StructLayout({"valid": 1, "stream": unsigned(STREAM_BITS), "data": vector_layout(config)})


def field(word, name):
    """Field ``name`` of instruction ``word`` (a 64-bit ``Value``), unsigned, as ``spec.isa.FIELDS`` places it."""
    f = isa.OPCODE_FIELD if name == "op" else isa.FIELDS[name]
    return Value.cast(word)[f.lsb:f.lsb + f.width]


def see_stream(m, see_e, see_w, bits, name):
    """The vector a slice sees on stream ``bits`` (``field(word, "src")`` etc.): a ``vector_layout`` signal
    called ``name``, driven in ``m`` by one multiplexer over the ``S`` streams of each direction (a named
    signal, so that every use shares the one multiplexer). Indices at or above ``S`` never reach here (the
    ICU faults them)."""
    index = Value.cast(bits)[:isa.STREAM_INDEX_BITS]
    west = Value.cast(bits)[isa.STREAM_INDEX_BITS]
    seen = Signal(see_e.shape().elem_shape, name=name)
    if len(see_e) == 1:
        m.d.comb += seen.eq(Mux(west, see_w[0].as_value(), see_e[0].as_value()))
    else:
        m.d.comb += seen.eq(Mux(west, see_w[index].as_value(), see_e[index].as_value()))
    return seen


def int8_lanes(vector, n):
    """The low byte of lanes ``0 … n-1`` of ``vector`` (a ``vector_layout`` view), as an
    ``ArrayLayout(signed(8), n)``-shaped ``Value``."""
    return Cat(*(Value.cast(vector[i])[:8] for i in range(n)))
