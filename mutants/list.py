"""The mutants: small deliberate bugs in rtl/, each of which some test (or proof) must catch.

Each :class:`Mutant` names a file under ``rtl/``, an exact snippet of it (which must occur there exactly once:
``tests/test_mutants.py`` checks that, so the table cannot silently rot when the RTL changes), its
replacement, a one-line description of the bug, and its *killers*, tried in order until one fails:

* ``"tests/…"``: a pytest target (a file or a node id), run as ``pytest -x -q -p no:cacheprovider -n 0``;
* ``"formal:NAME"``: the proof ``python -m formal.run NAME``;
* ``"module:MOD ARG …"``: ``python -m MOD ARG …``.

Put the fastest killer that catches the bug first (a single test), then a broader one (its whole file) as a
fallback in case that test is later renamed or weakened; the runner's sanity run makes sure the unmutated
copy passes every killer. To add a kind of killer (a new proof, a pyverilator property test), append it to
the tuple.

When a snippet stops matching because the RTL was edited, update ``original`` (and ``replacement``) to the
new text of the same bug: ``python -m pytest tests/test_mutants.py`` says which.
"""
from dataclasses import dataclass

__all__ = ["Mutant", "MUTANTS", "by_name"]


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str            # relative to the repository root, under rtl/
    original: str        # exact text, occurring exactly once in ``file``
    replacement: str
    description: str
    killers: tuple       # tried in order; see the module docstring


MXU_T = "tests/test_mxu_amaranth.py"
MXU_SLICE_T = "tests/test_mxu_slice_rtl.py"
HOST_T = "tests/test_host_rtl.py"
MEM_T = "tests/test_mem_rtl.py"
VXU_T = "tests/test_vxu_rtl.py"
STREAMS_T = "tests/test_streams_rtl.py"
ICU_T = "tests/test_icu_rtl.py"
DECODE_T = "tests/test_decode_rtl.py"
KILL_T = "tests/test_mutant_killers.py"
INDEXED_T = "tests/test_indexed_rtl.py"      # its Amaranth-simulator tests only (the Verilator ones would build)
LINK_T = "tests/test_link_rtl.py"            # Amaranth's simulator only
SLOTS_T = "tests/test_weight_slots.py"

MUTANTS = (
    # ---- rtl/mxu.py: the systolic array ---------------------------------------------------------------
    Mutant(
        "mxu_skew_off_by_one", "rtl/mxu.py",
        'pes[r][0].a_in.eq(_delay(m, a_data[r], r, f"a_data_r{r}"))',
        'pes[r][0].a_in.eq(_delay(m, a_data[r], r + 1, f"a_data_r{r}"))',
        "activation row skew one cycle too long (row r delayed r + 1 cycles; its swap flag still r)",
        (f"{MXU_T}::test_random_trace_matches_golden", MXU_T),
    ),
    Mutant(
        "mxu_deskew_off_by_one", "rtl/mxu.py",
        "_delay(m, pes[R - 1][c].psum_out, C - 1 - c,",
        "_delay(m, pes[R - 1][c].psum_out, C - c,",
        "output de-skew one cycle too long in every column (results leave a cycle after their tag)",
        (f"{MXU_T}::test_random_trace_matches_golden", MXU_T),
    ),
    Mutant(
        "mxu_swap_early", "rtl/mxu.py",
        "pes[r][c].swap_next.eq(pes[r][c - 1].swap_in)",
        "pes[r][c].swap_next.eq(pes[r][c - 1].swap_next)",
        "weight swap one cycle early in columns 1.. (swap_next taken two cycles ahead): the last activation "
        "of the old tile multiplies by the new weight",
        ("formal:mxu_buffer", f"{MXU_T}::test_random_trace_matches_golden", MXU_T),
    ),
    Mutant(
        "mxu_slot_of_this_cycle", "rtl/mxu.py",
        "shadows[self.slot_next]))",
        "shadows[self.slot_in]))",
        "a swap takes the shadow of the slot on slot_in (the activation before it) instead of slot_next",
        (f"{SLOTS_T}::test_rtl_mxu_with_slots_matches_golden", SLOTS_T),
    ),
    Mutant(
        "mxu_slot_forward_any_write", "rtl/mxu.py",
        "Mux(self.w_we & (self.w_slot == self.slot_next), self.w_in,",
        "Mux(self.w_we, self.w_in,",
        "a swap takes a weight written in the same cycle to any slot, not only to its own",
        (f"{SLOTS_T}::test_rtl_mxu_with_slots_matches_golden", SLOTS_T),
    ),
    Mutant(
        "mxu_slot_skew_off_by_one", "rtl/mxu.py",
        'w_slots.append(_delay(m, w_slots[-1], 1, f"w_slot_c{c}"))',
        'w_slots.append(_delay(m, w_slots[-1], 2, f"w_slot_c{c}"))',
        "a weight row's slot reaches column c (c > 0) c cycles after its data (written with an older row's slot)",
        (f"{SLOTS_T}::test_rtl_mxu_with_slots_matches_golden", SLOTS_T),
    ),
    Mutant(
        "mxu_slice_loadw_slot_zero", "rtl/mxu_slice.py",
        'm.d.sync += l_slot.eq(self._turn(m, issue_loadw, "loadw_turn"))',
        'm.d.sync += l_slot.eq(0 * self._turn(m, issue_loadw, "loadw_turn"))',
        "every LOADW writes slot 0 while the swaps go round the slots",
        (f"{SLOTS_T}::test_the_chip_rtl_takes_the_weight_slots_in_turn", SLOTS_T),
    ),
    Mutant(
        "mxu_swap_ignores_valid", "rtl/mxu.py",
        "pes[0][0].swap_next.eq(self.a_swap & self.a_valid)",
        "pes[0][0].swap_next.eq(self.a_swap)",
        "PE (0, 0) swaps on a_swap without a_valid (the other PEs still wait for a valid activation)",
        ("formal:mxu_buffer", f"{MXU_T}::test_random_trace_matches_golden", MXU_T),
    ),
    Mutant(
        "mxu_acc_never_cleared", "rtl/mxu.py",
        "tag.acc.eq(self.a_acc),",
        "tag.acc.eq(1),",
        "accumulator flag ignored: every activation adds to the old accumulator word (never cleared)",
        (f"{MXU_T}::test_random_trace_matches_golden", MXU_T),
    ),
    Mutant(
        "mxu_acc_forward_dropped", "rtl/mxu.py",
        'm.d.sync += fwd_add.eq(same(4, 3, "acc_same_add") & stages[3].acc & stages[4].valid)',
        "m.d.sync += fwd_add.eq(0)",
        "accumulator read-after-write forwarding of the newest result dropped (back-to-back accumulates "
        "to one address read a stale word)",
        (f"{MXU_T}::test_random_trace_matches_golden", MXU_T),
    ),
    Mutant(
        "mxu_emit_ignored", "rtl/mxu.py",
        "self.y_valid.eq(tag_acc.valid & tag_acc.emit)",
        "self.y_valid.eq(tag_acc.valid)",
        "emit flag ignored: every activation's accumulator word leaves on y, partial sums included",
        (f"{MXU_T}::test_random_trace_matches_golden", MXU_T),
    ),
    Mutant(
        "mxu_weight_write_ignores_valid", "rtl/mxu.py",
        "w_sel.eq(Mux(self.w_valid, 1 << self.w_row, 0))",
        "w_sel.eq(1 << self.w_row)",
        "weight port writes the shadow row w_row every cycle, w_valid or not",
        ("formal:mxu_buffer", f"{MXU_T}::test_random_trace_matches_golden", MXU_T),
    ),
    # ---- rtl/host.py: the valid/ready host edge --------------------------------------------------------
    Mutant(
        "host_resp_ready_ignored", "rtl/host.py",
        "fifo.r_en.eq(self.resp.ready)",
        "fifo.r_en.eq(1)",
        "resp.ready ignored: the response FIFO pops its head every cycle, taken or not (responses lost)",
        ("formal:host_edge", f"{HOST_T}::test_random_commands_and_backpressure", HOST_T),
    ),
    Mutant(
        "host_cmd_ready_ignored", "rtl/host.py",
        "fire.eq(self.cmd.valid & self.cmd.ready)",
        "fire.eq(self.cmd.valid)",
        "cmd.ready ignored inside the edge: a command is acted on whenever valid, even while ready is low",
        ("formal:host_edge", f"{HOST_T}::test_random_commands_and_backpressure", HOST_T),
    ),
    Mutant(
        "host_credit_off_by_one", "rtl/host.py",
        "(outstanding < RESPONSE_DEPTH)",
        "(outstanding <= RESPONSE_DEPTH)",
        "response credit (FIFO full) check off by one: a ninth outstanding READ_MEM/STATUS is accepted into "
        "an eight-entry FIFO and its response is lost",
        # not formal:host_edge: overflowing needs 9 outstanding responses, deeper than its induction depth
        # of 8, so the proof ends UNKNOWN (no counterexample), which is not a catch
        (f"{HOST_T}::test_random_commands_and_backpressure", HOST_T),
    ),
    Mutant(
        "host_start_ignores_pipeline", "rtl/host.py",
        "self.cmd.ready.eq(~self.running & ~self.start & ~pipe_busy)",
        "self.cmd.ready.eq(~self.running & ~self.start)",
        "START accepted while a READ_MEM/STATUS is still in the response pipeline (the read overlaps the run)",
        (f"{HOST_T}::test_random_commands_and_backpressure", HOST_T),
    ),
    Mutant(
        "host_response_kind_misaligned", "rtl/host.py",
        "fifo.w_data.eq(Mux(resp_st[-1], status, word))",
        "fifo.w_data.eq(Mux(resp_st[-2], status, word))",
        "response pairing off by one stage: a response takes the STATUS/READ_MEM kind of the command after it",
        (f"{HOST_T}::test_random_commands_and_backpressure", HOST_T),
    ),
    # ---- rtl/mem.py: the MEM slice ---------------------------------------------------------------------
    Mutant(
        "mem_read_bank_bit_dropped", "rtl/mem.py",
        'r_bank.eq(field(self.word, "bank")),',
        'r_bank.eq(field(self.word, "bank")[0]),',
        "READ unit keeps only bit 0 of the bank index (bank 2 reads bank 0, 3 reads 1: needs > 2 banks)",
        (f"{MEM_T}::test_random_reads_and_writes", MEM_T),
    ),
    Mutant(
        "mem_write_bank_bit_dropped", "rtl/mem.py",
        "ram.wr_en.eq(w_on & ~w_fault & (w_bank == b)),",
        "ram.wr_en.eq(w_on & ~w_fault & (w_bank[0] == b % 2)),",
        "WRITE unit compares only bit 0 of the bank index (a write to bank 2 also lands in bank 0)",
        (f"{MEM_T}::test_random_reads_and_writes", MEM_T),
    ),
    Mutant(
        "mem_write_count_off_by_one", "rtl/mem.py",
        'w_left.eq(field(self.word, "count") + 1),',
        'w_left.eq(field(self.word, "count") + 2),',
        "WRITE stores count + 1 words (one past the end)",
        (f"{MEM_T}::test_random_reads_and_writes", MEM_T),
    ),
    Mutant(
        "mem_writex_index_ignored", "rtl/mem.py",
        "w_at.eq(Mux(x_write, x_base, w_addr)),",
        "w_at.eq(w_addr),",
        "WRITEX's item 0 (and so every item) ignores the index sampled with it: it stores at addr + i",
        (f"{MEM_T}::test_random_indexed_reads_and_writes", MEM_T),
    ),
    Mutant(
        "mem_index_limit_off_by_one", "rtl/mem.py",
        "(x[:-1] + x_addr + x_countm1 >= depth)",
        "(x[:-1] + x_addr + x_countm1 > depth)",
        "an index one past the limit (addr + x + count = mem_depth + 1) is taken, not INDEX_RANGE",
        (f"{MEM_T}::test_directed_indexed", MEM_T),
    ),
    Mutant(
        "mem_index_negative_ok", "rtl/mem.py",
        "x_bad.eq(x[-1] | (",
        "x_bad.eq((",
        "a negative index is not INDEX_RANGE (its low bits address a word)",
        (f"{MEM_T}::test_directed_indexed", MEM_T),
    ),
    Mutant(
        "mem_index_fault_stops_write_unit", "rtl/mem.py",
        "w_fault.eq(x_fault & x_write),",
        "w_fault.eq(x_fault),",
        "a READX's INDEX_RANGE also suppresses the store of a WRITE running in the same cycle",
        (f"{MEM_T}::test_directed_indexed", MEM_T),
    ),
    Mutant(
        "mem_index_lane_zero", "rtl/mem.py",
        "m.d.comb += x.eq(self.seen[1][lane])",
        "m.d.comb += x.eq(self.seen[1][0])",
        "READX/WRITEX always take lane 0 of the index stream",
        (f"{MEM_T}::test_random_indexed_reads_and_writes", MEM_T),
    ),
    Mutant(
        "mem_writex_index_from_src", "rtl/mem.py",
        'x_stream.eq(Mux(issue_readx, field(self.word, "src"), field(self.word, "src2"))),',
        'x_stream.eq(field(self.word, "src")),',
        "WRITEX takes its index from its data stream (src), not src2",
        (f"{MEM_T}::test_random_indexed_reads_and_writes", MEM_T),
    ),
    Mutant(
        "mem_writex_index_starts_reads", "rtl/mem.py",
        "with m.Elif(x_on & x_read):",
        "with m.Elif(x_on):",
        "a WRITEX's index also starts the read unit (spurious stream writes)",
        (f"{MEM_T}::test_random_indexed_reads_and_writes", MEM_T),
    ),
    Mutant(
        "mem_readx_fault_still_reads", "rtl/mem.py",
        "r_left.eq(Mux(x_bad, 0, x_countm1 + 1))",
        "r_left.eq(x_countm1 + 1)",
        "a READX whose index faults still reads (and writes its stream) if run stays high",
        (f"{MEM_T}::test_random_indexed_reads_and_writes", MEM_T),
    ),
    Mutant(
        "mem_host_write_unchecked", "rtl/mem.py",
        "ram.wr_en.eq(self.host_we & host_ok & (self.host_bank == b)),",
        "ram.wr_en.eq(self.host_we & (self.host_bank == b)),",
        "host writes to an out-of-range address are not ignored (they wrap into the bank)",
        (f"{MEM_T}::test_host_port_ignores_out_of_range", MEM_T),
    ),
    # ---- rtl/vxu.py: the vector unit ---------------------------------------------------------------------
    Mutant(
        "vxu_sat_low_off_by_one", "rtl/vxu.py",
        "Mux(v < _INT8_MIN, _INT8_MIN, v)",
        "Mux(v < _INT8_MIN + 1, _INT8_MIN + 1, v)",
        "requant saturates at -127 instead of -128 (a symmetric clamp)",
        (f"{VXU_T}::test_random_schedule", VXU_T),
    ),
    Mutant(
        "vxu_sat_high_off_by_one", "rtl/vxu.py",
        "Mux(v > _INT8_MAX, _INT8_MAX,",
        "Mux(v > _INT8_MAX + 1, _INT8_MAX + 1,",
        "requant saturates at 128 instead of 127",
        (f"{VXU_T}::test_random_schedule", VXU_T),
    ),
    Mutant(
        "vxu_round_truncates", "rtl/vxu.py",
        "q.eq((r3[k][:_R_BITS] + 1) >> 1)",
        "q.eq(r3[k][:_R_BITS] >> 1)",
        "requant rounding: halves (and above) round toward zero instead of away from it",
        (f"{VXU_T}::test_random_schedule", VXU_T),
    ),
    Mutant(
        "vxu_r_saturation_dropped", "rtl/vxu.py",
        "m.d.sync += r3[k].eq(Mux(r > _R_SAT, _R_SAT, r))",
        "m.d.sync += r3[k].eq(r)",
        "requant's intermediate r is not saturated at 511: large products wrap in the 9-bit field",
        (f"{VXU_T}::test_random_schedule", VXU_T),
    ),
    Mutant(
        "vxu_shift_not_pipelined", "rtl/vxu.py",
        "p2[k][_HALF_SHIFT:] >> shift_s[1]",
        "p2[k][_HALF_SHIFT:] >> shift",
        "requant takes the SETQ shift in force two cycles after sampling, not the one it sampled with",
        (f"{VXU_T}::test_random_schedule", VXU_T),
    ),
    Mutant(
        "vxu_argmax_tie_reversed", "rtl/vxu.py",
        "take_b = vb > va",
        "take_b = vb >= va",
        "argmax tie-break reversed: the higher lane index wins a tie",
        (f"{VXU_T}::test_random_schedule", VXU_T),
    ),
    Mutant(
        "vxu_lsum_drops_lane", "rtl/vxu.py",
        "[(x1[k].as_signed(),) for k in range(L)]",
        "[(x1[k].as_signed(),) for k in range(max(1, L - 1))]",
        "lsum leaves the last lane out of its adder tree",
        (f"{VXU_T}::test_lsum_lmax_extremes", VXU_T),
    ),
    Mutant(
        "vxu_recip_shift_off_by_one", "rtl/vxu.py",
        "v, sh = _rom_read(m, recip_rom, f2[k]), e2[k]",
        "v, sh = _rom_read(m, recip_rom, f2[k]), e2[k] + 1",
        "recip shifts its table entry right by e + 1 instead of e (half the result)",
        (f"{VXU_T}::test_recip_rsqrt_extremes", VXU_T),
    ),
    Mutant(
        "vxu_lut_reset_lost", "rtl/vxu.py",
        "return Mux(loaded, rd.data, LUT_RESET).as_signed()",
        "return Mux(1, rd.data, LUT_RESET).as_signed()",
        "the table's memory is read whatever lut_loaded says: after a reset the last run's table is still there",
        (f"{VXU_T}::test_reset_clears_state", VXU_T),
    ),
    Mutant(
        "vxu_chain_misses_same_cycle", "rtl/vxu.py",
        "m.d.comb += [a[k].eq(Mux(chain, Mux(out_valid, out[k], last[k]), seen_a[k])) for k in range(L)]",
        "m.d.comb += [a[k].eq(Mux(chain, last[k], seen_a[k])) for k in range(L)]",
        "a chained VOP takes the result kept from before, not the one put in its own sampling cycle",
        (f"{VXU_T}::test_random_schedule", VXU_T),
    ),
    Mutant(
        "vxu_chain_keeps_invalid", "rtl/vxu.py",
        "        with m.If(out_valid):\n            m.d.sync += [last[k].eq(out[k]) for k in range(L)]",
        "        with m.If(1):\n            m.d.sync += [last[k].eq(out[k]) for k in range(L)]",
        "the latest result is overwritten every cycle, also by the output register's idle contents",
        (f"{VXU_T}::test_random_schedule", VXU_T),
    ),
    Mutant(
        "vxu_chain_reset_lost", "rtl/vxu.py",
        "last = [Signal(signed(LANE_BITS), name=f\"last{k}\") for k in range(L)]",
        "last = [Signal(signed(LANE_BITS), name=f\"last{k}\", reset_less=True) for k in range(L)]",
        "the latest result survives a reset (START): a chained VOP first in a run sees the last run's result",
        (f"{VXU_T}::test_reset_clears_state", VXU_T),
    ),
    Mutant(
        "vxu_lut_lane_misplaced", "rtl/vxu.py",
        "e = j * L + k\n",
        "e = j * L + (k ^ 1)\n",
        "LOADLUT writes lane k of a vector into the entry of lane k ^ 1 (neighbouring entries swapped)",
        (f"{VXU_T}::test_lut_every_index", VXU_T),
    ),
    Mutant(
        "vxu_rsqrt_parity_swapped", "rtl/vxu.py",
        "_rom_read(m, rsqrt_rom, Cat(f2[k], e2[k][0]))",
        "_rom_read(m, rsqrt_rom, Cat(f2[k], ~e2[k][0]))",
        "rsqrt reads the table of the other parity of e (off by a factor sqrt(2))",
        (f"{VXU_T}::test_recip_rsqrt_extremes", VXU_T),
    ),
    Mutant(
        "vxu_rom_negative_as_positive", "rtl/vxu.py",
        "pos2.eq(Cat(*(x1[k].as_signed() > 0 for k in range(L))))",
        "pos2.eq(Cat(*(x1[k] != 0 for k in range(L))))",
        "recip/rsqrt take a negative lane as an unsigned magnitude instead of giving 2**31 - 1",
        (f"{VXU_T}::test_recip_rsqrt_extremes", VXU_T),
    ),
    Mutant(
        "vxu_spread_latch_every_item", "rtl/vxu.py",
        'with m.If(first & is_op(0, "spread")):',
        'with m.If(is_op(0, "spread")):',
        "spread re-latches its operand on every item, not only item 0's",
        (f"{VXU_T}::test_spread_counts", VXU_T),
    ),
    Mutant(
        "vxu_spread_index_stuck", "rtl/vxu.py",
        "item.eq(Mux(item == L - 1, 0, item + 1))",
        "item.eq(item)",
        "spread's lane index does not advance: every item puts lane 0",
        (f"{VXU_T}::test_spread_counts", VXU_T),
    ),
    Mutant(
        "vxu_spread_index_not_restarted", "rtl/vxu.py",
        "m.d.sync += [first.eq(1), item.eq(0)]",
        "m.d.sync += [first.eq(1)]",
        "spread's lane index is not reset at a VOP's issue: it goes on from the previous VOP's count mod L",
        (f"{VXU_T}::test_spread_counts", VXU_T),
    ),
    # ---- rtl/streams.py: the stream registers ------------------------------------------------------------
    Mutant(
        "streams_east_slot_misplaced", "rtl/streams.py",
        "(tick - p)[:slot_bits]",
        "(tick - 2 * p)[:slot_bits]",
        "eastward slots are misplaced: a value written by slice p is not in the slot slice p + 1 reads next",
        ("formal:streams", f"{STREAMS_T}::test_random_writes_move_one_hop_per_cycle", STREAMS_T),
    ),
    Mutant(
        "streams_edge_zeros_lost", "rtl/streams.py",
        "live[d].eq(((live[d] & ~(edge << tick)) | ",
        "live[d].eq(((live[d]) | ",
        "the edges inject no zeros: a slot's old value comes round again N cycles after it left the chip",
        ("formal:streams", f"{STREAMS_T}::test_random_writes_move_one_hop_per_cycle", STREAMS_T),
    ),
    # ---- rtl/link_delay.py: a link's delay line --------------------------------------------------------
    Mutant(
        "link_delay_ring_no_wrap", "rtl/link_delay.py",
        "ptr.eq(Mux(ptr == n - 1, 0, ptr + 1))",
        "ptr.eq(ptr + 1)",
        "the ring's pointer does not wrap at the latency: a line whose latency is not a power of two is too long",
        ("formal:link_delay", "tests/test_link_delay_rtl.py"),
    ),
    Mutant(
        "link_delay_stale_valid", "rtl/link_delay.py",
        "valid.eq((valid & ~(Const(1, n) << ptr)[:n]) | ",
        "valid.eq((valid) | ",
        "an invalid word does not clear its slot's valid bit: the word of latency cycles earlier arrives again",
        ("formal:link_delay", "tests/test_link_delay_rtl.py"),
    ),
    # ---- rtl/icu.py: the instruction queue ---------------------------------------------------------------
    Mutant(
        "icu_pc_advance_every_cycle", "rtl/icu.py",
        "pc_next.eq(pc + issue)",
        "pc_next.eq(pc + ready)",
        "pc advances on every ready cycle, also when the instruction faulted instead of issuing",
        ("formal:icu", f"{KILL_T}::test_queue_does_nothing_after_a_fault", KILL_T),
    ),
    Mutant(
        "icu_prefetch_stale", "rtl/icu.py",
        "rd.addr.eq(Mux(self.start, 0, pc_next))",
        "rd.addr.eq(Mux(self.start, 0, pc))",
        "queue memory read with this cycle's pc, not the next: the word at pc arrives a cycle late",
        ("formal:icu", f"{ICU_T}::test_queue_matches_reference", ICU_T),
    ),
    Mutant(
        "icu_halt_not_terminal", "rtl/icu.py",
        "m.d.sync += halted.eq(1)",
        "m.d.sync += halted.eq(0)",
        "HALT does not halt: the queue goes on issuing after it",
        ("formal:icu", f"{ICU_T}::test_queue_matches_reference", f"{KILL_T}::test_queue_does_nothing_after_halt"),
    ),
    Mutant(
        "icu_fault_not_sticky", "rtl/icu.py",
        "m.d.sync += faulted.eq(1)",
        "m.d.sync += faulted.eq(0)",
        "a fault is not sticky: the queue goes on issuing after it",
        ("formal:icu", f"{KILL_T}::test_queue_does_nothing_after_a_fault", KILL_T),
    ),
    Mutant(
        "icu_busy_off_by_one", "rtl/icu.py",
        "m.d.sync += sig.eq(dec.busy - 1)",
        "m.d.sync += sig.eq(dec.busy - 2)",
        "a unit is free one cycle early (UNIT_BUSY missed for an instruction issued in its last busy cycle)",
        (f"{ICU_T}::test_queue_matches_reference", ICU_T),
    ),
    Mutant(
        "icu_idle_ignores_activity", "rtl/icu.py",
        "self.idle.eq((halted | (issue & dec.halt)) & (active == 0))",
        "self.idle.eq(halted | (issue & dec.halt))",
        "idle as soon as HALT issues, with instructions still active (the run ends early)",
        (f"{ICU_T}::test_queue_matches_reference", ICU_T),
    ),
    Mutant(
        "icu_program_length_ignored", "rtl/icu.py",
        "word.eq(Mux(pc < length, rd.data, 0))",
        "word.eq(rd.data)",
        "words past the loaded program length are read from memory instead of as 0 (ILLEGAL_OPCODE)",
        (f"{ICU_T}::test_queue_matches_reference", ICU_T),
    ),
    Mutant(
        "icu_rt_fault_at_pc", "rtl/icu.py",
        "self.fault_pc.eq(Mux(static_fault, pc, self.rt_pc if self.kind in RT_PC_KINDS else pc - 1)),",
        "self.fault_pc.eq(Mux(static_fault, pc, self.rt_pc if self.kind in RT_PC_KINDS else pc)),",
        "a run-time fault (INDEX_RANGE) is reported at the queue's pc, not at the READX/WRITEX's (pc - 1)",
        ("formal:icu", f"{INDEXED_T}::test_directed_amaranth", f"{INDEXED_T}::test_random_amaranth"),
    ),
    Mutant(
        "icu_rt_fault_wins", "rtl/icu.py",
        "self.fault_code.eq(Mux(static_fault, code, Mux(late_fault, self.rt_fault, 0))),",
        "self.fault_code.eq(Mux(late_fault, self.rt_fault, Mux(static_fault, code, 0))),",
        "a run-time fault wins over a static fault of the same cycle on the same slice (not the lowest code)",
        ("formal:icu", f"{INDEXED_T}::test_directed_amaranth", f"{INDEXED_T}::test_random_amaranth"),
    ),
    Mutant(
        "icu_rt_fault_not_sticky", "rtl/icu.py",
        "late_fault.eq(self.run & ~faulted & (self.rt_fault != 0)),",
        "late_fault.eq(self.run & (self.rt_fault != 0)),",
        "a run-time fault is reported after the queue has faulted (a WRITEX issued with a READX's fault)",
        ("formal:icu",),
    ),
    # ---- rtl/decode.py: the decoder ----------------------------------------------------------------------
    Mutant(
        "decode_unassigned_opcode_legal", "rtl/decode.py",
        "raised[ErrorCode.ILLEGAL_OPCODE].append(other)",
        "pass",
        "an unassigned opcode (or one not legal on the slice kind) is accepted instead of ILLEGAL_OPCODE",
        (f"{DECODE_T}::test_decoder_matches_spec", DECODE_T),
    ),
    Mutant(
        "decode_missing_vxu_op_legal", "rtl/decode.py",
        "raised[ErrorCode.ILLEGAL_OPCODE].append(sel)",
        "pass",
        "a VOP whose operation the configuration lacks is accepted instead of ILLEGAL_OPCODE",
        (f"{DECODE_T}::test_decoder_matches_spec", DECODE_T),
    ),
    Mutant(
        "decode_stray_bits_ignored", "rtl/decode.py",
        "raised[ErrorCode.BAD_FIELD].append(sel & stray.any())",
        "pass",
        "bits outside an instruction's fields are not a BAD_FIELD fault",
        (f"{DECODE_T}::test_decoder_matches_spec", DECODE_T),
    ),
    Mutant(
        "decode_joint_limit_off_by_one", "rtl/decode.py",
        'field(word, "addr") + countm1 >= depth',
        'field(word, "addr") + countm1 > depth',
        "addr + count <= depth checked one word too loosely (a READ/WRITE one past the end is accepted)",
        (f"{DECODE_T}::test_decoder_matches_spec", DECODE_T),
    ),
    # ---- rtl/mxu_slice.py, rtl/sram.py -----------------------------------------------------------------
    Mutant(
        "mxu_slice_dst_delay_short", "rtl/mxu_slice.py",
        "for k in range(p.latency):",
        "for k in range(p.latency - 1):",
        "the MATMUL dst delay line is a cycle short: a result goes to the next MATMUL's dst when they differ",
        (f"{MXU_SLICE_T}::test_random_tiles_match_golden", MXU_SLICE_T),
    ),
    Mutant(
        "sram_read_transparent", "rtl/sram.py",
        "rd = mem.read_port()",
        "rd = mem.read_port(transparent_for=(wr,))",
        "the SRAM read port is transparent: a read colliding with a write returns the new word, not the old",
        ("tests/test_sram.py::test_generic_collisions", "tests/test_sram.py"),
    ),
    # ---- rtl/chip.py: run control ------------------------------------------------------------------------
    Mutant(
        "chip_fault_lowest_slice_reversed", "rtl/chip.py",
        "for p in reversed(range(P)):",
        "for p in range(P):",
        "when two slices fault in one cycle, the highest-numbered one is reported, not the lowest",
        (f"{KILL_T}::test_chip_reports_lowest_faulting_slice", KILL_T),
    ),
    Mutant(
        "chip_rt_fault_unwired", "rtl/chip.py",
        "m.d.comb += q.rt_fault.eq(s.rt_fault)",
        "m.d.comb += q.rt_fault.eq(0)",
        "the MEM slices' INDEX_RANGE never reaches the sticky error: the run goes on",
        (f"{INDEXED_T}::test_directed_amaranth", f"{INDEXED_T}::test_random_amaranth"),
    ),
    # ---- rtl/link.py, rtl/system.py and the chip's link wiring ------------------------------------------
    Mutant(
        "link_interval_off_by_one", "rtl/link.py",
        "m.d.sync += [left.eq(left - 1), phase.eq(iv - 1)]",
        "m.d.sync += [left.eq(left - 1), phase.eq(iv)]",
        "SEND and RECV items link_interval + 1 cycles apart, not link_interval",
        (f"{LINK_T}::test_back_to_back_at_the_link_rate", LINK_T),
    ),
    Mutant(
        "link_count_off_by_one", "rtl/link.py",
        'left.eq(field(self.word, "count") + 1)',
        'left.eq(field(self.word, "count") + 2)',
        "SEND and RECV run one item more than their count",
        (f"{LINK_T}::test_back_to_back_at_the_link_rate", LINK_T),
    ),
    Mutant(
        "link_send_src_unlatched", "rtl/link.py",
        "self.sel[0].eq(src),",
        'self.sel[0].eq(field(self.word, "src")),',
        "SEND reads the src field of whatever word is on the issue port, not the one it latched",
        (f"{LINK_T}::test_one_vector_across", LINK_T),
    ),
    Mutant(
        "link_recv_dst_unlatched", "rtl/link.py",
        "self.put.stream.eq(dst),",
        'self.put.stream.eq(field(self.word, "dst")),',
        "RECV writes onto the dst field of whatever word is on the issue port, not the one it latched",
        (f"{LINK_T}::test_one_vector_across", LINK_T),
    ),
    Mutant(
        "link_recv_empty_unchecked", "rtl/link.py",
        "empty.eq(recv_now & ~rx_valid),",
        "empty.eq(0),",
        "a RECV item with no valid word arriving is not RECV_EMPTY (it writes nothing, silently)",
        (f"{LINK_T}::test_recv_early_is_recv_empty_and_late_is_link_dropped", LINK_T),
    ),
    Mutant(
        "link_dropped_unchecked", "rtl/link.py",
        "dropped_rx.eq(self.run & rx_valid & ~recv_now),",
        "dropped_rx.eq(0),",
        "a word arriving where no RECV item takes it is lost silently, not LINK_DROPPED",
        (f"{LINK_T}::test_recv_early_is_recv_empty_and_late_is_link_dropped", LINK_T),
    ),
    Mutant(
        "link_send_nowhere_ok", "rtl/link.py",
        "dropped_send.eq(send_now & int(not self.connected)),",
        "dropped_send.eq(0),",
        "a SEND on a link that leads nowhere is not LINK_DROPPED",
        (f"{LINK_T}::test_links_that_lead_nowhere", LINK_T),
    ),
    Mutant(
        "link_dropped_pc_latched", "rtl/link.py",
        "self.rt_pc.eq(self.queue_pc)]",
        "self.rt_pc.eq(recv_pc)]",
        "a dropped arriving word is reported at the last RECV's pc, not the queue's pc of that cycle",
        (f"{LINK_T}::test_recv_early_is_recv_empty_and_late_is_link_dropped", LINK_T),
    ),
    Mutant(
        "link_recv_empty_queue_pc", "rtl/link.py",
        "self.rt_pc.eq(recv_pc)]",
        "self.rt_pc.eq(self.queue_pc)]",
        "RECV_EMPTY is reported at the queue's current pc, not the RECV's",
        (f"{LINK_T}::test_recv_early_is_recv_empty_and_late_is_link_dropped", LINK_T),
    ),
    Mutant(
        "chip_link_pc_minus_one", "rtl/chip.py",
        "m.d.comb += [q.rt_pc.eq(s.rt_pc), s.queue_pc.eq(q.pc)]",
        "m.d.comb += [q.rt_pc.eq(q.pc - 1), s.queue_pc.eq(q.pc)]",
        "the link slices' faults are reported at pc - 1 (INDEX_RANGE's rule), not the slice's pc",
        (f"{LINK_T}::test_recv_early_is_recv_empty_and_late_is_link_dropped", LINK_T),
    ),
    Mutant(
        "chip_done_link_unwatched", "rtl/chip.py",
        "m.d.comb += watch.eq(done & ~err & reduce(operator.or_, [v for _, v in late], 0))",
        "m.d.comb += watch.eq(0)",
        "a word arriving at a chip that is already done is lost silently, not LINK_DROPPED",
        (f"{LINK_T}::test_a_word_sent_to_a_done_chip_is_dropped_on_arrival", LINK_T),
    ),
    Mutant(
        "system_latency_off_by_one", "rtl/link_delay.py",
        "        n = self.latency\n",
        "        n = self.latency + 1\n",
        "the delay lines are one cycle longer than link_latency",
        (f"{LINK_T}::test_one_vector_across", LINK_T),
    ),
    Mutant(
        "system_stop_ignored", "rtl/system.py",
        "ch.stop.eq(running & any_fault)",
        "ch.stop.eq(0)",
        "a fault on one chip does not stop the others (they run on to their own end)",
        (f"{LINK_T}::test_a_fault_stops_every_chip_and_ties_go_to_the_lowest_chip", LINK_T),
    ),
)


def by_name():
    """``{name: Mutant}``; names are unique."""
    out = {}
    for mu in MUTANTS:
        if mu.name in out:
            raise ValueError(f"duplicate mutant name {mu.name!r}")
        out[mu.name] = mu
    return out
