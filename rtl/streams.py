"""The stream interconnect: ``S`` eastward and ``S`` westward stream registers at every slice position.

Contract (docs/chip.md, "Streams"). Let ``E[s][p]`` be the register slice ``p`` sees on eastward stream ``s``
during a cycle (what a read port of slice ``p`` naming ``E s`` gets). At the end of the cycle::

    E[s][p+1] <= put[p].data  if put[p] writes stream E s  else  E[s][p]
    W[s][p-1] <= put[p].data  if put[p] writes stream W s  else  W[s][p]

``E[s][0]`` and ``W[s][P-1]`` are constant 0 (the edges inject zeros); what slice ``P-1`` writes eastward
(slice 0 westward) leaves the chip. A value written by slice ``p`` during cycle ``t`` is seen by slice
``p ± d`` during ``t + d``: one hop per cycle, no stalls, nothing travelling with the data but its timing.
Reset clears every register (the chip resets the interconnect at the start of every run).

Reads: slice ``p`` has ``reads[p]`` read ports. Port ``i`` names a stream (``sel[p][i]``, the ISA's 6-bit
form) and gets, in the same cycle, the vector the slice sees on it (``seen[p][i]``; 0 for an index at or
above ``S``, which the queues never issue). The multiplexers live here, next to the registers, so a slice
never receives all ``2 × S`` vectors.
"""
from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from spec import isa

from .common import STREAM_BITS, stream_write_layout, vector_layout

__all__ = ["StreamInterconnect"]


class StreamInterconnect(wiring.Component):
    """Stream registers between the slices of ``config`` (a ``spec.config.ChipConfig``), with ``reads[p]``
    read ports at slice ``p``.

    Ports, per slice ``p`` (``P = len(config.slices)``): ``put[p]`` (the slice's stream write,
    ``rtl.common.stream_write_layout``), ``sel[p]`` and ``seen[p]`` (its read ports, as
    ``rtl.common.read_ports`` describes them from the slice's side).
    """

    def __init__(self, config, reads):
        self._config = config
        P = len(config.slices)
        reads = tuple(reads)
        if len(reads) != P or not all(isinstance(n, int) and n >= 1 for n in reads):
            raise ValueError(f"reads must give each of the {P} slices at least one read port, not {reads!r}")
        self._reads = reads
        super().__init__({
            "put": In(stream_write_layout(config)).array(P),
            **{f"sel{p}": In(data.ArrayLayout(unsigned(STREAM_BITS), n)) for p, n in enumerate(reads)},
            **{f"seen{p}": Out(data.ArrayLayout(vector_layout(config), n)) for p, n in enumerate(reads)},
        })

    def sel(self, p):
        return getattr(self, f"sel{p}")

    def seen(self, p):
        return getattr(self, f"seen{p}")

    def elaborate(self, platform):
        m = Module()
        c = self._config
        P, S = len(c.slices), c.streams
        west_bit = isa.STREAM_INDEX_BITS
        # regs[0][p][s] is what slice p sees on E s (p = 1 … P-1), regs[1][p][s] on W s (p = 0 … P-2): one
        # signal per register (a whole vector, not a slice of a wider array, which simulates faster)
        vec = vector_layout(c)
        regs = ({p: [Signal(vec, name=f"e{s}_at{p}") for s in range(S)] for p in range(1, P)},
                {p: [Signal(vec, name=f"w{s}_at{p}") for s in range(S)] for p in range(P - 1)})
        for p in range(P):
            put = self.put[p]
            index = put.stream[:west_bit]
            west = put.stream[west_bit]
            for s in range(S):
                hit = put.valid & (index == s)
                if p + 1 < P:   # eastward into position p + 1
                    old = regs[0][p][s] if p in regs[0] else 0
                    with m.If(hit & ~west):
                        m.d.sync += regs[0][p + 1][s].eq(put.data)
                    with m.Else():
                        m.d.sync += regs[0][p + 1][s].eq(old)
                if p >= 1:      # westward into position p - 1
                    old = regs[1][p][s] if p in regs[1] else 0
                    with m.If(hit & west):
                        m.d.sync += regs[1][p - 1][s].eq(put.data)
                    with m.Else():
                        m.d.sync += regs[1][p - 1][s].eq(old)
        for p in range(P):
            for i in range(self._reads[p]):
                with m.Switch(self.sel(p)[i]):
                    for d in (0, 1):
                        if p not in regs[d]:
                            continue        # the edge: zeros (the default)
                        for s in range(S):
                            with m.Case((d << west_bit) | s):
                                m.d.comb += self.seen(p)[i].eq(regs[d][p][s])
        return m
