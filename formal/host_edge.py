"""Proof: the host edge (``rtl.host.HostEdge``): its ``cmd``/``resp`` streams (``amaranth.lib.stream``), the
strobes toward the core and the response FIFO inside, on a 2-slice chip (MEM, MXU) with 1-lane vectors,
2 banks of 4 words and 4-word queues.

Environment: a stream-compliant host (``cmd.valid`` held and ``cmd.payload`` stable until ``cmd.ready``),
any ``resp.ready``, any ``running``, any status inputs, any ``mem_rdata``, and a synchronous reset at any
cycle.

Properties (``Assert``):

* ``resp`` handshake: ``resp.valid`` stays high and ``resp.payload`` stable until ``resp.ready`` takes it;
* acceptance: ``cmd.ready`` is low while ``running`` or ``start``; a START is never accepted within two
  cycles of a READ_MEM/STATUS (no host read or status sample overlaps the START reset);
* strobes: a command accepted during ``c`` pulses exactly its strobe during ``c + 1`` (``q_load_en``,
  ``mem_we``, ``mem_re``: one-hot of the slice, only when the slice/bank/address is valid; ``start``)
  with its fields on ``q_load_addr``/``q_load_word``/``mem_bank``/``mem_addr``/``mem_wdata``, and nothing
  otherwise;
* responses: every READ_MEM/STATUS enters the response FIFO during ``c + 3`` with ``mem_rdata[slice]``
  (0 if the read was invalid) or the packed status inputs, the FIFO never overflows, and at most
  ``RESPONSE_DEPTH`` responses are outstanding;
* no loss, no duplication, order: the response of the ``idx``-th responding command (``idx`` arbitrary), whose
  word is ``val`` (arbitrary), is the ``idx``-th response delivered on ``resp``, with value ``val``;
* helper invariants for the induction: the credit counter, the response pipeline and the FIFO's level agree
  with the proof's counts, and the tracked response sits intact where the FIFO's pointers place it.

Covers: a full response FIFO; the third response delivered after back-pressure; a START right after a
STATUS (waiting the two cycles).
"""
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Array, Assert, Assume, Cat, Cover, Mux, Signal

from .common import Proof, Wrapper, open_module, prev

COUNT_BITS = 6

BUGS = {
    "lost_command": "a command the host sees accepted does not reach the edge when data bit 0 is set",
    "late_status": "the edge samples the status inputs one cycle late",
    "ready_glitch": "the response FIFO sees resp.ready high one cycle when the host did not take the item",
}


def config():
    from spec.config import ChipConfig
    return ChipConfig.preset("tiny").replace(name="formal-host", lanes=1, streams=1, slices=("mem", "mxu"),
                                             mem_banks=2, mem_depth=4, mxu_rows=1, mxu_cols=1, queue_depth=4)


class HostEdgeProof(Wrapper):
    BUGS = BUGS

    def elaborate(self, platform):
        from rtl.common import LANE_BITS
        from rtl.host import RESPONSE_DEPTH, STATUS_PORTS, HostEdge
        from spec.host import STATUS_FIELDS, HostOp, data_bits
        m = self.module()
        cd = self.cd_sync
        c = config()
        P, V, D = len(c.slices), LANE_BITS * c.lanes, data_bits(c)
        m.submodules.dut = dut = HostEdge(c)
        edge = open_module(dut, platform)
        fifo = edge.submodules["fifo"]
        fifo_in = open_module(fifo, platform)

        m.d.comb += cd.rst.eq(AnySeq(1))
        rst_q = Signal(reset_less=True, init=1)
        m.d.sync += rst_q.eq(cd.rst)

        # ---- environment ---------------------------------------------------------------------------------
        valid = Signal()
        cmd = Signal.like(dut.cmd.payload)
        m.d.comb += [valid.eq(AnySeq(1)), cmd.eq(AnySeq(len(cmd.as_value())))]
        ready_in = Signal()     # the host's resp.ready
        m.d.comb += ready_in.eq(AnySeq(1))
        m.d.comb += dut.running.eq(AnySeq(1))
        status_in = []
        for name, bits in STATUS_FIELDS:
            port = getattr(dut, STATUS_PORTS[name])
            sig = Signal(bits, name=f"status_{name}")
            m.d.comb += sig.eq(AnySeq(bits))
            if self.bug == "late_status":
                m.d.sync += port.eq(sig)
            else:
                m.d.comb += port.eq(sig)
            status_in.append(sig)
        for p in range(P):
            m.d.comb += dut.mem_rdata[p].eq(AnySeq(V))
        m.d.comb += [dut.cmd.valid.eq(valid), dut.cmd.payload.eq(cmd), dut.resp.ready.eq(ready_in)]
        if self.bug == "lost_command":
            m.d.comb += dut.cmd.valid.eq(valid & ~cmd.data[0])
        if self.bug == "ready_glitch":
            m.d.comb += dut.resp.ready.eq(ready_in | (AnySeq(1) & (fifo.level == 2)))

        fire = Signal()
        m.d.comb += fire.eq(valid & dut.cmd.ready)
        # the host keeps a command until it is taken (stream rule), except across a reset
        p_valid, p_ready, p_cmd = prev(m, valid, "p_valid"), prev(m, dut.cmd.ready, "p_ready"), prev(m, cmd, "p_cmd")
        with m.If(~rst_q & p_valid & ~p_ready):
            m.d.comb += [Assume(valid), Assume(cmd.as_value() == p_cmd.as_value())]

        op = cmd.op
        is_mem = Cat(*(cmd.slice == p for p in c.positions("mem"))).any()
        mem_ok = is_mem & (cmd.bank < c.mem_banks) & (cmd.addr < c.mem_depth)
        q_ok = (cmd.slice < P) & (cmd.addr < c.queue_depth)
        onehot = Cat(*(cmd.slice == p for p in range(P)))
        responds = fire & ((op == HostOp.READ_MEM) | (op == HostOp.STATUS))

        # ---- acceptance ----------------------------------------------------------------------------------
        m.d.comb += Assert(~dut.cmd.ready | (~dut.running & ~dut.start), "cmd.ready while running or start")
        r1 = prev(m, responds, "responded_1")
        r2 = prev(m, r1, "responded_2")
        with m.If(fire & (op == HostOp.START)):
            m.d.comb += Assert(~r1 & ~r2, "START accepted while a host read/status sample is in flight")

        # ---- strobes -------------------------------------------------------------------------------------
        def strobe(cond, name):
            return prev(m, Mux(fire & cond, onehot, 0), name)
        want_q = strobe((op == HostOp.WRITE_QUEUE) & q_ok, "want_q_load_en")
        want_we = strobe((op == HostOp.WRITE_MEM) & mem_ok, "want_mem_we")
        want_re = strobe((op == HostOp.READ_MEM) & mem_ok, "want_mem_re")
        want_start = prev(m, fire & (op == HostOp.START), "want_start")
        m.d.comb += [
            Assert(dut.q_load_en == want_q, "q_load_en is not the accepted WRITE_QUEUE"),
            Assert(dut.mem_we == want_we, "mem_we is not the accepted WRITE_MEM"),
            Assert(dut.mem_re == want_re, "mem_re is not the accepted READ_MEM"),
            Assert(dut.start == want_start, "start is not the accepted START"),
        ]
        c_prev = prev(m, cmd, "cmd_prev")
        with m.If(want_q.any()):
            m.d.comb += [Assert(dut.q_load_addr == c_prev.addr, "q_load_addr"),
                         Assert(dut.q_load_word == c_prev.data[:64], "q_load_word")]
        with m.If(want_we.any() | want_re.any()):
            m.d.comb += [Assert(dut.mem_bank == c_prev.bank, "mem_bank"),
                         Assert(dut.mem_addr == c_prev.addr, "mem_addr")]
        with m.If(want_we.any()):
            m.d.comb += Assert(dut.mem_wdata == c_prev.data[:V], "mem_wdata")

        # ---- responses: the proof's own pipeline (stage k: accepted k cycles ago) -------------------------
        reads = fire & (op == HostOp.READ_MEM) & mem_ok
        stages = [dict(v=responds, st=fire & (op == HostOp.STATUS), sel=Mux(reads, onehot, 0))]
        for k in range(1, 4):
            stages.append({key: prev(m, val, f"pipe{k}_{key}") for key, val in stages[-1].items()})
        last = stages[3]
        word = Signal(V)
        for p in c.positions("mem"):
            with m.If(last["sel"][p]):
                m.d.comb += word.eq(dut.mem_rdata[p])
        expect = Signal(D)
        m.d.comb += expect.eq(Mux(last["st"], Cat(*status_in), word))
        m.d.comb += Assert(fifo.w_en == last["v"], "a response does not enter the FIFO 3 cycles after acceptance")
        with m.If(last["v"]):
            m.d.comb += Assert(fifo.w_data == expect, "the response word is not mem_rdata[slice]/status/0")
        m.d.comb += Assert(~fifo.w_en | fifo.w_rdy, "response FIFO overflow")
        for k in range(1, 4):   # helper invariants: the edge's pipeline is the proof's
            m.d.comb += [Assert(edge.sig(f"resp_v{k}") == stages[k]["v"], f"invariant: resp_v{k}"),
                         Assert(edge.sig(f"resp_status{k}") == stages[k]["st"], f"invariant: resp_status{k}")]
            if k >= 2:
                m.d.comb += Assert(edge.sig(f"read_sel{k}") == stages[k]["sel"], f"invariant: read_sel{k}")

        # ---- resp handshake ------------------------------------------------------------------------------
        rv, rp = dut.resp.valid, dut.resp.payload.data
        p_rv, p_rr, p_rp = prev(m, rv, "p_resp_valid"), prev(m, ready_in, "p_resp_ready"), prev(m, rp, "p_resp_data")
        with m.If(~rst_q & ~cd.rst & p_rv & ~p_rr):
            m.d.comb += [Assert(rv, "resp.valid dropped before transfer"),
                         Assert(rp == p_rp, "resp.payload changed while stalled")]

        # ---- counts, no loss / duplication / order ------------------------------------------------------
        give = rv & ready_in
        n_in, n_w, n_out = Signal(COUNT_BITS), Signal(COUNT_BITS), Signal(COUNT_BITS)
        with m.If(responds):
            m.d.sync += n_in.eq(n_in + 1)
        with m.If(last["v"]):
            m.d.sync += n_w.eq(n_w + 1)
        with m.If(give):
            m.d.sync += n_out.eq(n_out + 1)
        outstanding = Signal(COUNT_BITS)
        m.d.comb += outstanding.eq(n_in - n_out)
        in_pipe = stages[1]["v"] + stages[2]["v"] + stages[3]["v"]
        m.d.comb += [
            Assert(outstanding <= RESPONSE_DEPTH, "more than RESPONSE_DEPTH responses outstanding"),
            Assert(edge.sig("outstanding") == outstanding, "invariant: the credit counter"),
            Assert(((n_in - n_w) & (2 ** COUNT_BITS - 1)) == in_pipe, "invariant: responses in the pipeline"),
            Assert(fifo.level == ((n_w - n_out) & (2 ** COUNT_BITS - 1)), "invariant: FIFO level"),
        ]
        idx, val = AnyConst(COUNT_BITS), AnyConst(D)
        with m.If(last["v"] & (n_w == idx)):
            m.d.comb += Assume(expect == val)
        with m.If(give & (n_out == idx)):
            m.d.comb += Assert(rp == val, "response lost, duplicated, corrupted or reordered")
        # helper invariant: the tracked response is intact where the FIFO's state places it
        inner_depth = RESPONSE_DEPTH - 1
        words = Array(fifo_in.peek_memory(m, "storage"))
        pos = Signal(COUNT_BITS)
        m.d.comb += pos.eq(idx - n_out)
        slot = Signal(range(2 * RESPONSE_DEPTH))
        m.d.comb += slot.eq(fifo_in.sig("consume") + pos - fifo.r_rdy)
        addr = Signal(range(RESPONSE_DEPTH))
        m.d.comb += addr.eq(Mux(slot >= inner_depth, slot - inner_depth, slot))
        entry = Signal(D)
        m.d.comb += entry.eq(Mux(fifo.r_rdy & (pos == 0), fifo.r_data, words[addr]))
        with m.If(pos < fifo.level):
            m.d.comb += Assert(entry == val, "invariant: tracked response intact inside the FIFO")

        # ---- covers --------------------------------------------------------------------------------------
        st_q = prev(m, fire & (op == HostOp.STATUS), "status_accepted")
        m.d.comb += [
            Cover(fifo.level == RESPONSE_DEPTH),
            Cover(give & (n_out == 2) & (idx == 2) & p_rv & ~p_rr),
            Cover(fire & (op == HostOp.START) & prev(m, prev(m, st_q, "st_q2"), "st_q3")),
        ]
        return m


PROOF = Proof(name="host_edge", title="host edge (HostEdge: cmd/resp streams, strobes, response FIFO): handshake, "
                                      "no loss/duplication, order, reset at any cycle",
              build=lambda bug=None: HostEdgeProof(bug=bug), depth=8, cover_depth=24, bugs=BUGS)
