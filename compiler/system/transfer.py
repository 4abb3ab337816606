"""Vectors between neighbouring chips over the scheduled links: transfers and a reduction along a line.

Every chip has its own ``compiler.schedule.ProgramBuilder``; all chips start on cycle 0, so the builders share
one clock and a transfer is placed on both ends at once. The timing is ``spec.isa``'s (docs/multichip.md):
a SEND issued at ``s`` samples item ``i`` from its stream during ``s + LINK_SEND_OFFSET + i·I`` (``I`` =
``link_interval``); the word arrives ``link_latency`` cycles later, when the RECV issued
``link_recv_delay(config)`` after the SEND writes it onto its stream. A link carries one vector every ``I``
cycles, so each item has a READ (or a VOP, or a WRITE) of its own, ``I`` cycles after the previous one.

* ``send(builders, src, dst, src_locs, dst_locs, start)``: the words ``src_locs`` of chip ``src`` into
  ``dst_locs`` of the neighbouring chip ``dst`` (MEM → link → link → MEM).
* ``reduce_line(builders, parts, start)``: ``parts[c]`` are ``n`` words of partial sums on chip ``c`` of a line;
  the last chip sends its words west, every chip on the way adds its own at the VXU as they pass (the sum
  leaves for the next chip west in the same stream of items) and chip 0 stores the totals over its own
  ``parts[0]``: ``Σ_c parts[c]`` with int32 wrap-around, in ``n·I`` cycles plus a fixed delay per chip.
* ``place_together(builders, first, place)``: the trial placement both use: ``place(t)`` for ``t = first …``
  on every builder at once, rolled back everywhere when any chip refuses it.

Stream indices (the direction comes from the positions): ``LINK_DATA`` for the words a RECV puts on the chip
or a SEND takes off it, ``LINK_PART`` for the local partial sums on their way to the VXU, ``LINK_SUM`` for the
sums leaving it.
"""
from spec import isa
from spec.isa import Instruction, Stream

from ..phases import _read_to, _vxu_pass, _write_from
from ..schedule import Conflict

__all__ = ["send", "reduce_line", "allreduce_line", "place_together", "link_slice", "LINK_DATA", "LINK_PART",
           "LINK_SUM"]

LINK_DATA, LINK_PART, LINK_SUM = 0, 1, 2
#: How many candidate start cycles a trial placement tries before giving up with the last refusal.
MAX_TRIES = 64
#: ``allreduce_line``: the lags (in link intervals) of the east reduction behind the west one it tries, and the
#: start cycles it tries for each.
STAGGER, STAGGER_TRIES = 4, 16


def link_slice(config, end):
    """The index of the link slice at ``end`` (``"west"`` or ``"east"``) of ``config``."""
    ends = config.link_ends
    if end not in ends:
        raise ValueError(f"config {config.name} has no link slice at its {end} end (slices: "
                         f"{', '.join(config.slice_names)}; ChipConfig.with_links() adds them)")
    return ends[end]


def _ends(src, dst):
    """The ends joining chip ``src`` to its neighbour ``dst`` in a line: (``src``'s end, ``dst``'s end)."""
    if dst == src + 1:
        return "east", "west"
    if dst == src - 1:
        return "west", "east"
    raise ValueError(f"chips {src} and {dst} are not neighbours in a line: a transfer goes to chip {src - 1} or "
                     f"{src + 1}")


def place_together(builders, first, place, tries=MAX_TRIES):
    """``place(t)`` for ``t = first, …`` until every builder takes it (each trial rolled back on all builders
    when one refuses: a ``Conflict`` steps on by its ``shift``; another refusal is raised at once, since no
    later start helps); returns ``(t, what place returned)``. After ``tries`` candidates the last
    ``Conflict`` is raised."""
    t = first
    for _ in range(tries):
        tokens = [b.checkpoint() for b in builders]
        try:
            out = place(t)
        except ValueError as e:
            for b, tok in zip(builders, tokens):
                b.rollback(tok)
            if not isinstance(e, Conflict):
                raise               # not a matter of when (a queue too short, a field out of range)
            last = e
            t += e.shift
            continue
        for b in builders:
            b.commit()
        return t, out
    raise last


def _link_ops(op, link, t, n, iv, **fields):
    """``op`` (SEND or RECV) instructions for ``n`` items from issue ``t``, one every ``iv`` cycles (``count`` at
    most ``MAX_COUNT`` each)."""
    return [(link, t + i0 * iv, Instruction(op, count=min(isa.MAX_COUNT, n - i0), **fields))
            for i0 in range(0, n, isa.MAX_COUNT)]


def _sends(link, s, n, stream, iv):
    return _link_ops("SEND", link, s, n, iv, src=stream)


def _recvs(link, r, n, stream, iv):
    return _link_ops("RECV", link, r, n, iv, dst=stream)


def send(builders, src, dst, src_locs, dst_locs, start):
    """Move the words ``src_locs`` of chip ``src`` into ``dst_locs`` of chip ``dst`` (a neighbour in a line),
    the first SEND at or after ``start`` where both chips take it (``place_together``). Returns the SEND's
    issue cycle."""
    if len(src_locs) != len(dst_locs) or not src_locs:
        raise ValueError(f"a transfer needs as many destination words as source words (at least 1), not "
                         f"{len(src_locs)} and {len(dst_locs)}")
    bs, bd = builders[src], builders[dst]
    c = bs.config
    se, de = _ends(src, dst)
    ls, ld = link_slice(c, se), link_slice(c, de)
    iv, n = c.link_interval, len(src_locs)

    def place(s):
        a_items, b_items = [], []
        for i, loc in enumerate(src_locs):
            u = s + isa.LINK_SEND_OFFSET + i * iv            # the SEND samples item i
            _read_to(bs, a_items, [loc], ls, u, LINK_DATA, f"words for chip {dst}, item {i}")
        a_items += _sends(ls, s, n, Stream(bs.direction(src_locs[0][0], ls), LINK_DATA), iv)
        r = s + isa.link_recv_delay(c)
        for i, loc in enumerate(dst_locs):
            a = r + isa.LINK_RECV_OFFSET + i * iv            # the RECV writes item i onto its stream
            _write_from(bd, b_items, [loc], ld, a, LINK_DATA, f"words from chip {src}, item {i}")
        b_items += _recvs(ld, r, n, Stream(bd.direction(ld, dst_locs[0][0]), LINK_DATA), iv)
        bs.place(a_items)
        bd.place(b_items)

    lo = isa.MEM_READ_LATENCY + max(bs.hops(p, ls) for p, _, _ in src_locs) - isa.LINK_SEND_OFFSET   # READs >= 0
    s, _ = place_together([bs, bd], max(start, lo), place)
    return s


def reduce_line(builders, parts, start, out=None, toward="west", taps=None):
    """Add the partial sums ``parts[c]`` (``n`` word locations on chip ``c`` of a line, the same ``n`` on every
    chip) over the links into ``out`` (``n`` words; default: the root's ``parts``; on a MEM slice that also holds
    them, an item's store may want the slice's queue in the cycle another's READ does, which no start cycle
    avoids) on the root: chip 0 (``toward="west"``: the last chip sends, each chip on the way adds its own) or
    the last chip (``toward="east"``: chip 0 sends). ``taps``: ``{chip: (incoming, outgoing)}``, word locations
    (or ``None``) where a chip on the way also stores the running sums it receives and the ones it sends on,
    sampled off the streams as they pass (``_write_from(claim=False)``: the tap's slice must lie between the
    link and the VXU on that stream's way). The leaf's first SEND at or after ``start``; returns its issue cycle
    (``None`` for one chip: nothing to add)."""
    n_chips = len(builders)
    if len(parts) != n_chips or len({len(p) for p in parts}) != 1 or not parts[0]:
        raise ValueError(f"reduce_line needs as many partial-sum regions as chips ({n_chips}), of one length "
                         f"(at least 1), not {[len(p) for p in parts]}")
    if toward not in ("west", "east"):
        raise ValueError(f"toward must be 'west' or 'east', not {toward!r}")
    if n_chips == 1:
        return None
    root = 0 if toward == "west" else n_chips - 1
    out_locs = list(parts[root] if out is None else out)
    if len(out_locs) != len(parts[root]):
        raise ValueError(f"reduce_line: out has {len(out_locs)} words, the partial sums {len(parts[root])}")
    chain = _Chain(builders, parts, out_locs, toward, taps)

    def place(s_last):
        for b, items in zip(builders, chain.items(s_last)):
            b.place(items)

    s, _ = place_together(builders, max(start, chain.lo), place)
    return s


class _Chain:
    """The items of one reduction along a line (``reduce_line``), for a given first SEND of the leaf."""

    def __init__(self, builders, parts, out_locs, toward, taps):
        n = len(builders)
        self.real = list(range(n)) if toward == "west" else list(range(n))[::-1]     # root first, leaf last
        self.B, self.P = [builders[k] for k in self.real], [parts[k] for k in self.real]
        self.out_locs, self.taps = out_locs, dict(taps or {})
        c = self.c = builders[0].config
        self.up = link_slice(c, toward)                                        # towards the root
        self.down = link_slice(c, "east" if toward == "west" else "west")     # from the leaf
        self.vxu = c.positions("vxu")[0]
        self.lo = isa.MEM_READ_LATENCY + max(self.B[-1].hops(p, self.up) for p, _, _ in self.P[-1]) \
            - isa.LINK_SEND_OFFSET                                             # the leaf's READs at cycle >= 0

    def _tap(self, b, items, locs, src, dst, first, index, what):
        c, iv = self.c, self.c.link_interval
        for i, loc in enumerate(locs or ()):
            if not min(src, dst) < loc[0] < max(src, dst):
                raise ValueError(f"reduce_line: a tap of the {what} must lie between {c.slice_names[src]} and "
                                 f"{c.slice_names[dst]}, not on {c.slice_names[loc[0]]}")
            _write_from(b, items, [loc], src, first + i * iv, index, f"{what}, item {i}", claim=False)

    def items(self, s):
        """Per chip (in chip order), the items of the reduction whose leaf issues its first SEND at ``s``."""
        B, P, real, up, down, vxu = self.B, self.P, self.real, self.up, self.down, self.vxu
        iv, n, delay = self.c.link_interval, len(P[0]), isa.link_recv_delay(self.c)
        per_chip = [[] for _ in B]
        # the leaf: its partial sums straight onto its link towards the root
        b, items = B[-1], per_chip[-1]
        for i, loc in enumerate(P[-1]):
            _read_to(b, items, [loc], up, s + isa.LINK_SEND_OFFSET + i * iv, LINK_DATA,
                     f"partial sums for chip {real[-2]}, item {i}")
        items += _sends(up, s, n, Stream(b.direction(P[-1][0][0], up), LINK_DATA), iv)
        for j in range(len(B) - 2, -1, -1):
            b, items, k = B[j], per_chip[j], real[j]
            tin, tout = self.taps.get(k, (None, None))
            r = s + delay                                        # RECV issue; item i on the stream during a_i
            arriving = Stream(b.direction(down, vxu), LINK_DATA)
            items += _recvs(down, r, n, arriving, iv)
            self._tap(b, items, tin, down, vxu, r + isa.LINK_RECV_OFFSET, LINK_DATA, f"sums from chip {real[j + 1]}")
            out_first = None
            for i, loc in enumerate(P[j]):
                a = r + isa.LINK_RECV_OFFSET + i * iv
                b.claim_stream(arriving, down, vxu, a, 1, f"sums from chip {real[j + 1]}, item {i}")
                f = b.arrival(down, vxu, a)                      # the VXU samples both operands
                _read_to(b, items, [loc], vxu, f, LINK_PART, f"partial sums of chip {k}, item {i}")
                o = f + isa.VXU_PIPELINE                         # the sum leaves the VXU
                if j > 0:
                    dst, sent = up, Stream(b.direction(vxu, up), LINK_SUM)
                    b.claim_stream(sent, vxu, up, o, 1, f"sums for chip {real[j - 1]}, item {i}")
                    if i == 0:
                        self._tap(b, items, tout, vxu, up, o, LINK_SUM, f"sums for chip {real[j - 1]}")
                else:
                    dst = self.out_locs[i][0]
                    sent = Stream(b.direction(vxu, dst), LINK_SUM)
                    _write_from(b, items, [self.out_locs[i]], vxu, o, LINK_SUM, f"sums, item {i}")
                items.append((vxu, f - isa.VXU_INPUT_OFFSET, Instruction(
                    "VOP", vop="add", src=arriving, src2=Stream(b.direction(loc[0], vxu), LINK_PART), count=1,
                    dst=sent)))
                if out_first is None:
                    out_first = b.arrival(vxu, dst, o)
            if j > 0:
                s = out_first - isa.LINK_SEND_OFFSET
                items += _sends(up, s, n, Stream(b.direction(vxu, up), LINK_SUM), iv)
        return [per_chip[real.index(k)] for k in range(len(B))]


def allreduce_line(builders, parts, totals, taps=None):
    """``Σ_c parts[c]`` on every chip of a line into ``totals[c]`` (``n`` words each, apart from the partial
    sums' slices on the two end chips), starting when every chip's partial sums are stored. Returns the
    totals' word locations per chip.

    With ``taps`` (``{chip: (incoming, outgoing)}`` for every chip but the two ends: ``n`` words each, on two
    MEM slices between the VXU and the east link): two reductions at once, placed together, west into chip
    0's totals and east into the last chip's; every chip in between stores the running sum arriving from the
    east (the sum of the chips east of it) and the one it sends east (its own plus the chips' west of it) as
    they pass, and adds them into its totals: every chip has the sum after one trip along the line. Without
    ``taps`` (or with fewer than two MEM slices east of the VXU): the sums reduced into chip 0, then sent east
    hop by hop (``send``), a trip there and back."""
    n = len(builders)
    if n == 1:
        raise ValueError("allreduce_line needs at least 2 chips")
    start = max(max(b.ready(reads=p) for b, p in zip(builders, parts)),
                max(b.ready(writes=t) for b, t in zip(builders, totals)))
    if taps is None:
        reduce_line(builders, parts, start, out=totals[0])
        src = list(totals[0])
        for k in range(n - 1):
            dst = list(totals[k + 1])
            s0 = max(builders[k].ready(reads=src), builders[k + 1].ready(writes=dst))
            send(builders, k, k + 1, src, dst, s0)
            src = dst
        return [list(t) for t in totals]
    if set(taps) != set(range(1, n - 1)):
        raise ValueError(f"allreduce_line: taps for chips 1 … {n - 2} (the middle of the line), not {sorted(taps)}")
    west = _Chain(builders, parts, list(totals[0]), "west", {k: (t[0], None) for k, t in taps.items()})
    east = _Chain(builders, parts, list(totals[-1]), "east", {k: (None, t[1]) for k, t in taps.items()})
    iv = builders[0].config.link_interval
    for lag in range(STAGGER * iv):          # the east reduction this much later: the two may want one queue
        def place(s, lag=lag):
            for b, a, e in zip(builders, west.items(s), east.items(s + lag)):
                b.place(a + e)
        try:
            place_together(builders, max(start, west.lo, east.lo - lag), place, tries=STAGGER_TRIES)
        except Conflict:
            continue
        for k, (tin, tout) in taps.items():
            _vxu_pass(builders[k], None, "add", tin, totals[k], b_locs=tout)
        return [list(t) for t in totals]
    return allreduce_line(builders, parts, totals)      # no stagger schedules: there and back
