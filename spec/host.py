"""The host edge's protocol (docs/chip.md, "Host edge"): commands, their fields and the status word.

Read by the RTL (``rtl/host.py``), the harness drivers (``sim/``) and the golden host model alike.
"""
from enum import IntEnum

from spec import isa
from spec.lanes import pack_lanes

__all__ = ["HostOp", "COMMAND_FIELDS", "STATUS_FIELDS", "data_bits", "command_bits", "pack_command",
           "unpack_command", "pack_status", "unpack_status"]


class HostOp(IntEnum):
    """Host command opcodes (3 bits; 0 and 6 are unused and do nothing, 7 is the harness's own)."""
    WRITE_QUEUE = 1
    WRITE_MEM = 2
    READ_MEM = 3
    START = 4
    STATUS = 5


#: Fields of a command, LSB first: (name, bits); ``data`` is ``data_bits(config)`` wide.
COMMAND_FIELDS = (("op", 3), ("slice", isa.SLICE_INDEX_BITS), ("bank", 4), ("addr", 16))
#: Fields of the STATUS response, LSB first: (name, bits).
STATUS_FIELDS = (("done", 1), ("error", 1), ("code", isa.ERROR_CODE_BITS), ("slice", isa.SLICE_INDEX_BITS),
                 ("pc", isa.FAULT_PC_BITS), ("cycles", 32))


def data_bits(config):
    """Width of a command's ``data`` and of a response: a vector (32·L bits), at least a queue word."""
    return max(32 * config.lanes, isa.WORD_BITS)


def pack_command(config, op, slice=0, bank=0, addr=0, data=0):
    """A command as one integer: the fields of ``COMMAND_FIELDS`` then ``data`` (an int, or ``L`` lanes
    packed as 32-bit two's complement, lane 0 lowest)."""
    if not isinstance(data, int):
        lanes = list(data)
        if len(lanes) != config.lanes:
            raise ValueError(f"data must have {config.lanes} lanes, not {len(lanes)}")
        data = pack_lanes(lanes, 32)
    word, pos = 0, 0
    for (name, bits), value in zip(COMMAND_FIELDS, (int(op), slice, bank, addr)):
        if not 0 <= value < 1 << bits:
            raise ValueError(f"{name} must be between 0 and {(1 << bits) - 1}, not {value}")
        word |= value << pos
        pos += bits
    if not 0 <= data < 1 << data_bits(config):
        raise ValueError(f"data must fit in {data_bits(config)} bits")
    return word | data << pos


def command_bits(config):
    """Width of a packed command."""
    return sum(b for _, b in COMMAND_FIELDS) + data_bits(config)


def unpack_command(config, value):
    """A packed command (``pack_command``'s int) as a dict of ``COMMAND_FIELDS`` and ``data`` (an int)."""
    if not 0 <= value < 1 << command_bits(config):
        raise ValueError(f"a command must fit in {command_bits(config)} bits")
    out, pos = {}, 0
    for name, bits in COMMAND_FIELDS:
        out[name] = (value >> pos) & ((1 << bits) - 1)
        pos += bits
    out["data"] = value >> pos
    return out


def pack_status(**fields):
    """The STATUS response as an int from ``STATUS_FIELDS`` values (missing ones are 0)."""
    unknown = set(fields) - {name for name, _ in STATUS_FIELDS}
    if unknown:
        raise ValueError(f"unknown status fields {sorted(unknown)}")
    word, pos = 0, 0
    for name, bits in STATUS_FIELDS:
        value = int(fields.get(name, 0))
        if not 0 <= value < 1 << bits:
            raise ValueError(f"{name} must be between 0 and {(1 << bits) - 1}, not {value}")
        word |= value << pos
        pos += bits
    return word


def unpack_status(value):
    """The STATUS response (an int) as a dict of ``STATUS_FIELDS``."""
    out, pos = {}, 0
    for name, bits in STATUS_FIELDS:
        out[name] = (value >> pos) & ((1 << bits) - 1)
        pos += bits
    return out
