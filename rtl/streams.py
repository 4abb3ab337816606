"""The stream interconnect: ``S`` eastward and ``S`` westward stream registers at every slice position.

Contract (docs/chip.md, "Streams"). Let ``E[s][p]`` be the register slice ``p`` sees on eastward stream ``s``
(``see_e[p][s]``) during a cycle. At the end of the cycle::

    E[s][p+1] <= put[p].data  if put[p] writes stream E s  else  E[s][p]
    W[s][p-1] <= put[p].data  if put[p] writes stream W s  else  W[s][p]

``E[s][0]`` and ``W[s][P-1]`` are constant 0 (the edges inject zeros); what slice ``P-1`` writes eastward
(slice 0 westward) leaves the chip. A value written by slice ``p`` during cycle ``t`` is seen by slice
``p ± d`` during ``t + d``: one hop per cycle, no stalls, nothing travelling with the data but its timing.
Reset clears every register (the chip resets the interconnect at the start of every run).
"""
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec import isa
from .common import stream_write_layout, streams_layout

__all__ = ["StreamInterconnect"]


class StreamInterconnect(wiring.Component):
    """Stream registers between the slices of ``config`` (a ``spec.config.ChipConfig``).

    Ports, per slice ``p`` (``P = len(config.slices)``): ``see_e[p]``, ``see_w[p]`` (the ``S`` vectors the
    slice sees this cycle) and ``put[p]`` (the slice's stream write, ``rtl.common.stream_write_layout``).
    """

    def __init__(self, config):
        self._config = config
        P = len(config.slices)
        lay = streams_layout(config)
        super().__init__({
            "see_e": Out(lay).array(P),
            "see_w": Out(lay).array(P),
            "put": In(stream_write_layout(config)).array(P),
        })

    def elaborate(self, platform):
        m = Module()
        c = self._config
        P, S = len(c.slices), c.streams
        lay = streams_layout(c)
        west_bit = isa.STREAM_INDEX_BITS
        # regs_e[p] is what slice p sees eastward (p = 1 … P-1); regs_w[p] westward (p = 0 … P-2)
        regs_e = {p: Signal(lay, name=f"e_at{p}") for p in range(1, P)}
        regs_w = {p: Signal(lay, name=f"w_at{p}") for p in range(P - 1)}
        for p in range(P):
            if p in regs_e:
                m.d.comb += self.see_e[p].eq(regs_e[p])
            if p in regs_w:
                m.d.comb += self.see_w[p].eq(regs_w[p])
        for p in range(P):
            put = self.put[p]
            index = put.stream[:west_bit]
            west = put.stream[west_bit]
            for s in range(S):
                hit = put.valid & (index == s)
                if p + 1 < P:   # eastward into position p + 1
                    with m.If(hit & ~west):
                        m.d.sync += regs_e[p + 1][s].eq(put.data)
                    with m.Else():
                        m.d.sync += regs_e[p + 1][s].eq(self.see_e[p][s])
                if p >= 1:      # westward into position p - 1
                    with m.If(hit & west):
                        m.d.sync += regs_w[p - 1][s].eq(put.data)
                    with m.Else():
                        m.d.sync += regs_w[p - 1][s].eq(self.see_w[p][s])
        return m
