"""Definitions every chip component shares (docs/chip.md, "RTL structure").

* ``vector_layout(config)``: a vector, ``L`` lanes of int32.
* ``stream_write_layout(config)``: what a slice writes onto the streams in one cycle (``valid``, ``stream``
  in the ISA's 6-bit form, ``data``).
* ``field(word, name)``: a field of an instruction word, positions from ``spec.isa.FIELDS``.
* ``read_ports(config, n)``, ``slice_signature(config, reads, **extra)``: the ports every slice has; a slice
  names the streams it reads (``sel``) and the interconnect answers with the vectors (``seen``).
* ``int8_lanes(vector, n)``: the low bytes of lanes ``0 … n-1`` as signed 8-bit values (how int8 units read
  a lane).
"""
from amaranth.hdl import Cat, Value, signed, unsigned
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from spec import isa

__all__ = ["LANE_BITS", "STREAM_BITS", "vector_layout", "stream_write_layout", "field", "check_config",
           "check_config_kind", "read_ports", "slice_signature", "int8_lanes"]

LANE_BITS = 32
STREAM_BITS = isa.STREAM_INDEX_BITS + 1


def vector_layout(config):
    """``L`` lanes of int32."""
    return data.ArrayLayout(signed(LANE_BITS), config.lanes)


def stream_write_layout(config):
    """One slice's stream write in one cycle."""
    return data.StructLayout({"valid": 1, "stream": unsigned(STREAM_BITS), "data": vector_layout(config)})


def field(word, name):
    """Field ``name`` of instruction ``word`` (a 64-bit ``Value``), unsigned, as ``spec.isa.FIELDS`` places it."""
    f = isa.OPCODE_FIELD if name == "op" else isa.FIELDS[name]
    return Value.cast(word)[f.lsb:f.lsb + f.width]


def check_config(config):
    """Check that ``config`` is a ``ChipConfig`` that can be generated as RTL (``TypeError`` for another
    type, ``ValueError`` from ``ChipConfig.check_rtl``); returns it."""
    from spec.config import ChipConfig
    if not isinstance(config, ChipConfig):
        raise TypeError(f"config must be a spec.config.ChipConfig, not {config!r}")
    return config.check_rtl()


def check_config_kind(config, kind):
    """Check the arguments of a per-slice component: an RTL ``ChipConfig`` and one of its slice kinds
    (``TypeError`` for a wrong type, ``ValueError`` for a wrong value, naming what is allowed)."""
    from spec.config import SLICE_KINDS
    check_config(config)
    if not isinstance(kind, str) or kind not in SLICE_KINDS:
        kinds = ", ".join(repr(k) for k in SLICE_KINDS)
        exc = ValueError if isinstance(kind, str) else TypeError
        raise exc(f"kind must be one of {kinds}, not {kind!r}")


def read_ports(config, n):
    """The signature members of a slice with ``n`` stream read ports: ``sel`` (Out: the 6-bit stream each
    port reads this cycle) and ``seen`` (In: the vector on that stream at the slice, the same cycle)."""
    return {"sel": Out(data.ArrayLayout(unsigned(STREAM_BITS), n)),
            "seen": In(data.ArrayLayout(vector_layout(config), n))}


def slice_signature(config, reads, **extra):
    """The members every slice component has (docs/chip.md, "RTL structure") plus ``extra``: ``run``,
    ``issue``, ``word``, ``reads`` stream read ports (``read_ports``) and ``put``."""
    return {
        "run": In(1),
        "issue": In(1),
        "word": In(isa.WORD_BITS),
        **read_ports(config, reads),
        "put": Out(stream_write_layout(config)),
        **extra,
    }


def int8_lanes(vector, n):
    """The low byte of lanes ``0 … n-1`` of ``vector`` (a ``vector_layout`` view), as an
    ``ArrayLayout(signed(8), n)``-shaped ``Value``."""
    return Cat(*(Value.cast(vector[i])[:8] for i in range(n)))
