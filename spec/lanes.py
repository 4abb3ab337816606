"""How a vector of lanes lies in one bit vector: lane 0 in the least significant bits, each lane ``bits``
wide, two's complement. The same on every port (the MXU's int8 and int32 vectors, the chip's int32 stream
vectors) and in every host word (``spec.host``), so packing and unpacking are written once, here.
"""
__all__ = ["pack_lanes", "unpack_lanes"]


def pack_lanes(values, bits):
    """Pack signed lane values (lane 0 in the least significant bits) into one unsigned integer."""
    mask = (1 << bits) - 1
    out = 0
    for i, v in enumerate(values):
        out |= (int(v) & mask) << (bits * i)
    return out


def unpack_lanes(word, bits, lanes):
    """Inverse of :func:`pack_lanes`: signed lane values from an unsigned integer."""
    mask = (1 << bits) - 1
    half = 1 << (bits - 1)
    return [(((word >> (bits * i)) & mask) ^ half) - half for i in range(lanes)]
