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

from ..phases import _read_to, _write_from
from ..schedule import Conflict

__all__ = ["send", "reduce_line", "allreduce_line", "place_together", "link_slice", "LINK_DATA", "LINK_PART",
           "LINK_SUM"]

LINK_DATA, LINK_PART, LINK_SUM = 0, 1, 2
#: How many candidate start cycles a trial placement tries before giving up with the last refusal.
MAX_TRIES = 64


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


def place_together(builders, first, place):
    """``place(t)`` for ``t = first, …`` until every builder takes it (each trial rolled back on all builders
    when one refuses: a ``Conflict`` steps on by its ``shift``; another refusal is raised at once, since no
    later start helps); returns ``(t, what place returned)``. After ``MAX_TRIES`` candidates the last
    ``Conflict`` is raised."""
    t = first
    for _ in range(MAX_TRIES):
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


def reduce_line(builders, parts, start, out=None):
    """Add the partial sums ``parts[c]`` (``n`` word locations on chip ``c`` of a line, the same ``n`` on every
    chip) over the links into chip 0's ``out`` (``n`` words; default ``parts[0]``: on a MEM slice that also holds
    ``parts[0]``'s words, an item's store may want the slice's queue in the cycle another's READ does, which
    no start cycle avoids), the last chip's first SEND at or after ``start``. Returns that SEND's issue cycle
    (``None`` for one chip: nothing to add)."""
    n_chips = len(builders)
    if len(parts) != n_chips or len({len(p) for p in parts}) != 1 or not parts[0]:
        raise ValueError(f"reduce_line needs as many partial-sum regions as chips ({n_chips}), of one length "
                         f"(at least 1), not {[len(p) for p in parts]}")
    if n_chips == 1:
        return None
    out_locs = list(parts[0] if out is None else out)
    if len(out_locs) != len(parts[0]):
        raise ValueError(f"reduce_line: out has {len(out_locs)} words, the partial sums {len(parts[0])}")
    c = builders[0].config
    west, east = link_slice(c, "west"), link_slice(c, "east")
    vxu = c.positions("vxu")[0]
    iv, n = c.link_interval, len(parts[0])
    delay = isa.link_recv_delay(c)

    def place(s_last):
        s = s_last
        per_chip = [[] for _ in range(n_chips)]
        # the last chip: its partial sums straight onto its west link
        b, items = builders[-1], per_chip[-1]
        for i, loc in enumerate(parts[-1]):
            _read_to(b, items, [loc], west, s + isa.LINK_SEND_OFFSET + i * iv, LINK_DATA,
                     f"partial sums for chip {n_chips - 2}, item {i}")
        items += _sends(west, s, n, Stream(b.direction(parts[-1][0][0], west), LINK_DATA), iv)
        for k in range(n_chips - 2, -1, -1):
            b, items = builders[k], per_chip[k]
            r = s + delay                                        # RECV issue; item i on the stream during a_i
            arriving = Stream(b.direction(east, vxu), LINK_DATA)
            items += _recvs(east, r, n, arriving, iv)
            out_first = None
            for i, loc in enumerate(parts[k]):
                a = r + isa.LINK_RECV_OFFSET + i * iv
                b.claim_stream(arriving, east, vxu, a, 1, f"sums from chip {k + 1}, item {i}")
                f = b.arrival(east, vxu, a)                      # the VXU samples both operands
                _read_to(b, items, [loc], vxu, f, LINK_PART, f"partial sums of chip {k}, item {i}")
                o = f + isa.VXU_PIPELINE                         # the sum leaves the VXU
                if k > 0:
                    dst, out = west, Stream(b.direction(vxu, west), LINK_SUM)
                    b.claim_stream(out, vxu, west, o, 1, f"sums for chip {k - 1}, item {i}")
                else:
                    dst = out_locs[i][0]
                    out = Stream(b.direction(vxu, dst), LINK_SUM)
                    _write_from(b, items, [out_locs[i]], vxu, o, LINK_SUM, f"sums, item {i}")
                items.append((vxu, f - isa.VXU_INPUT_OFFSET, Instruction(
                    "VOP", vop="add", src=arriving, src2=Stream(b.direction(loc[0], vxu), LINK_PART), count=1,
                    dst=out)))
                if out_first is None:
                    out_first = b.arrival(vxu, dst, o)
            if k > 0:
                s = out_first - isa.LINK_SEND_OFFSET
                items += _sends(west, s, n, Stream(b.direction(vxu, west), LINK_SUM), iv)
        for b, items in zip(builders, per_chip):
            b.place(items)

    lo = isa.MEM_READ_LATENCY + max(builders[-1].hops(p, west) for p, _, _ in parts[-1]) - isa.LINK_SEND_OFFSET
    s, _ = place_together(builders, max(start, lo), place)
    return s


def allreduce_line(builders, parts, out0):
    """``Σ_c parts[c]`` on every chip of a line: ``reduce_line`` into chip 0's ``out0`` (``n`` words apart from
    its partial sums), then the totals sent east hop by hop (``send``: chip ``k``'s copy into chip ``k + 1``'s
    ``parts[k + 1]``, once the reduction has read them). Starts when every chip's partial sums are stored.
    Returns the word locations holding the totals on each chip: ``[out0, parts[1], …]``."""
    start = max(max(b.ready(reads=p) for b, p in zip(builders, parts)), builders[0].ready(writes=out0))
    reduce_line(builders, parts, start, out=out0)
    src = list(out0)
    for k in range(len(builders) - 1):
        dst = list(parts[k + 1])
        s0 = max(builders[k].ready(reads=src), builders[k + 1].ready(writes=dst))
        send(builders, k, k + 1, src, dst, s0)
        src = dst
    return [list(out0)] + [list(p) for p in parts[1:]]
