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

How it is built (a simulator-speed choice; the contract above is all the rest of the chip relies on): no value
moves. A value keeps its *diagonal*: what slice ``p`` sees on ``E s`` during cycle ``t`` lives in slot
``(t - p) mod N`` of stream ``E s`` (``W s``: slot ``(t - (P-1-p)) mod N``), ``N`` the smallest power of two
at least ``P``. So a hop is nothing at all, a write by slice ``p`` is one write into the slot the next
position reads next cycle, and a read port is one indexed read. All slots sit in one ``Memory`` (address
``Cat(slot, stream, direction)``, one write port per slice, one asynchronous read port per read port), and a
bit per slot (``live_e``, ``live_w``: one bit vector per direction, a machine word for the presets) says the
slot was written since it left the edge: the edge's slot ``t mod N`` of
every stream is marked dead each cycle (unless slice 0 writes it eastward, slice ``P-1`` westward), and a
dead slot reads 0. Per cycle that is ``P`` conditional vector writes instead of ``2 × S × (P-1)`` vector
copies; ``formal/streams.py`` proves it against the shifting registers of the contract.
"""
import operator
from functools import reduce

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, wiring
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

    @property
    def slots(self):
        """Slots per (direction, stream): the smallest power of two that is at least the slice count."""
        return 1 << (len(self._config.slices) - 1).bit_length()

    def sel(self, p):
        return getattr(self, f"sel{p}")

    def seen(self, p):
        return getattr(self, f"seen{p}")

    def elaborate(self, platform):
        m = Module()
        c = self._config
        P, S = len(c.slices), c.streams
        west_bit = isa.STREAM_INDEX_BITS
        N = self.slots
        slot_bits = (N - 1).bit_length()                 # N is a power of two
        index_bits = max(1, (S - 1).bit_length())
        per_dir = N << index_bits                        # slots of one direction: address Cat(slot, stream)
        # the slots: one memory, address Cat(slot, stream, direction); only the slices' writes touch it
        m.submodules.slots = mem = memory.Memory(shape=vector_layout(c), depth=2 * per_dir, init=[])
        # tick = t mod N (cleared by reset); live_e[a] (live_w[a]) = slot a of the east (west) half holds a value
        # put since it left the edge. One bit vector per direction: for the presets at most 64 bits, which
        # Verilator keeps in a machine word (one vector over both directions would be a multi-word one).
        tick = Signal(range(N), name="tick")
        live = (Signal(per_dir, name="live_e"), Signal(per_dir, name="live_w"))
        m.d.sync += tick.eq(tick + 1)

        def slot(p, west):
            """The slot of what slice ``p`` sees this cycle on the stream direction ``west`` names."""
            return Mux(west, (tick - (P - 1 - p))[:slot_bits], (tick - p)[:slot_bits])

        # the edge: slot tick of every stream is at position 0 east (P-1 west), a register that is constant 0,
        # so what moves on from it is 0 (dead) unless slice 0 (P-1) writes it
        edge = Const(sum(1 << (g * N) for g in range(1 << index_bits)), per_dir)
        sets = ([], [])
        for p in range(P):
            put = self.put[p]
            index = put.stream[:west_bit]
            west = put.stream[west_bit]
            wr = mem.write_port()
            # a write off the chip's edge (slice P-1 east, 0 west) lands in a slot no read port sees before the
            # edge marks it dead: N >= P
            m.d.comb += [wr.en.eq(put.valid & (index < S)), wr.data.eq(put.data),
                         wr.addr.eq(Cat(slot(p, west), index[:index_bits], west))]
            bit = (Const(1, per_dir) << wr.addr[:-1])[:per_dir]
            sets[0].append(Mux(wr.en & ~west, bit, 0))
            sets[1].append(Mux(wr.en & west, bit, 0))
        for d in (0, 1):
            m.d.sync += live[d].eq(((live[d] & ~(edge << tick)) | reduce(operator.or_, sets[d]))[:per_dir])
        for p in range(P):
            for i in range(self._reads[p]):
                sel = self.sel(p)[i]
                index, west = sel[:west_bit], sel[west_bit]
                on_chip = (west if p + 1 < P else 0) | (~west if p >= 1 else 0)  # 0: the edge, zeros
                addr = Cat(slot(p, west), index[:index_bits], west)
                rd = mem.read_port(domain="comb")
                m.d.comb += rd.addr.eq(addr)
                alive = Mux(west, live[1], live[0]).bit_select(addr[:-1], 1)
                with m.If((index < S) & on_chip & alive):
                    m.d.comb += self.seen(p)[i].eq(rd.data)
        return m
