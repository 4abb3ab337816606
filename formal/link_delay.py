"""Proof: the link delay line (``rtl.link_delay.LinkDelayLine``), latency 3 (the ring) and 1 (a register),
side by side, 1-lane link words.

Environment: any ``src`` (valid, data), any ``run`` and ``clear`` (never both: the system clears a line at
its start, when nothing runs), a synchronous reset at any cycle.

Properties (``Assert``), against the contract's registers ``r[0] … r[latency-1]`` kept by the proof itself
(``r[0] <= src``, ``r[k] <= r[k-1]`` while ``run``; ``clear`` and reset clear every ``valid``):

* ``out.valid`` is ``r[latency-1].valid``; while it is high ``out.data`` is ``r[latency-1].data``;
* ``empty`` is high exactly when no ``r[k]`` is valid.

Helper invariants (latency 3, for the induction): ``ptr < 3``, and register ``r[k]`` is the ring's word at
``(ptr - 1 - k) mod 3`` with its valid bit.

Covers: a valid word out of the ring after a stop of two cycles in its way; a clear with words in flight.
"""
from amaranth.asserts import AnySeq
from amaranth.hdl import Array, Assert, Assume, Cover, Mux, Signal

from .common import Proof, Wrapper, open_module

LATENCIES = (3, 1)

BUGS = {
    "clear_lost": "the ring line never sees clear: words of an earlier run arrive in the next",
    "moves_when_stopped": "the ring line moves while run is low",
    "late_out": "the ring line's output comes one cycle late",
}


def config(latency):
    from spec.config import ChipConfig
    return ChipConfig.preset("tiny").replace(name="formal-link", lanes=1, streams=1, slices=("mem", "mxu"),
                                             mxu_rows=1, mxu_cols=1, link_latency=latency)


class LinkDelayProof(Wrapper):
    BUGS = BUGS

    def elaborate(self, platform):
        from rtl.link_delay import LinkDelayLine
        m = self.module()
        m.d.comb += self.cd_sync.rst.eq(AnySeq(1))
        src_valid, src_data, run, clear = AnySeq(1), AnySeq(32), AnySeq(1), AnySeq(1)
        m.d.comb += Assume(~(run & clear))
        covers = []
        for n in LATENCIES:
            m.submodules[f"line{n}"] = dut = LinkDelayLine(config(n))
            inner = open_module(dut, platform) if n > 1 else None
            ring = n > 1
            planted = self.bug if ring else None
            m.d.comb += [dut.src.valid.eq(src_valid), dut.src.data[0].eq(src_data),
                         dut.run.eq(1 if planted == "moves_when_stopped" else run),
                         dut.clear.eq(0 if planted == "clear_lost" else clear)]
            out_valid, out_data = dut.out.valid, dut.out.data[0].as_unsigned()
            if planted == "late_out":
                late_valid, late_data = Signal(name="late_valid"), Signal(32, name="late_data")
                m.d.sync += [late_valid.eq(out_valid), late_data.eq(out_data)]
                out_valid, out_data = late_valid, late_data

            # ---- the contract's registers -----------------------------------------------------------
            rv = [Signal(name=f"ref{n}_valid{k}") for k in range(n)]
            rd = [Signal(32, name=f"ref{n}_data{k}") for k in range(n)]
            with m.If(run):
                m.d.sync += [rv[0].eq(src_valid), rd[0].eq(src_data)]
                m.d.sync += [rv[k].eq(rv[k - 1]) for k in range(1, n)]
                m.d.sync += [rd[k].eq(rd[k - 1]) for k in range(1, n)]
            with m.If(clear):
                m.d.sync += [v.eq(0) for v in rv]
            m.d.comb += Assert(out_valid == rv[-1], f"latency {n}: out.valid is not r[{n - 1}].valid")
            with m.If(rv[-1]):
                m.d.comb += Assert(out_data == rd[-1], f"latency {n}: out.data is not r[{n - 1}].data")
            m.d.comb += Assert(dut.empty == (sum(rv) == 0), f"latency {n}: empty is wrong")

            if ring:
                # ---- helper invariants: where the ring keeps r[k] ----------------------------------------
                ptr, valid = inner.sig("ptr"), inner.sig("valid")
                words = Array(w.as_value() for w in inner.peek_memory(m, "ring"))
                m.d.comb += Assert(ptr < n, "invariant: ptr < latency")
                for k in range(n):
                    addr = Signal(range(n), name=f"addr{n}_{k}")
                    m.d.comb += addr.eq(Mux(ptr >= k + 1, ptr - (k + 1), ptr + n - (k + 1)))
                    m.d.comb += Assert(valid.bit_select(addr, 1) == rv[k], f"invariant: valid of r[{k}]")
                    with m.If(rv[k]):
                        m.d.comb += Assert(words[addr][:32] == rd[k], f"invariant: data of r[{k}]")
                # a valid word out after two stopped cycles on its way; a clear with words in flight
                stops = Signal(range(3), name="stops")
                with m.If(~run & ~clear & (sum(rv) != 0)):
                    m.d.sync += stops.eq(Mux(stops == 2, 2, stops + 1))
                covers += [out_valid & (stops == 2), clear & (sum(rv) >= 2)]
        m.d.comb += [Cover(c) for c in covers]
        return m


PROOF = Proof(name="link_delay", title="link delay line (LinkDelayLine, latency 3 as a ring and 1): the "
                                       "contract's shifting registers, frozen when stopped, cleared at start",
              build=lambda bug=None: LinkDelayProof(bug=bug), depth=8, cover_depth=10, bugs=BUGS)
