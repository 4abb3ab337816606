"""Schedule pieces with an address from data: READX / WRITEX (docs/isa.md) driven by an index word in MEM.

An *index word* is a MEM word whose lanes hold word offsets (for the decode step: where position ``p``'s rows
and cache words are, ``decode.py``); a phase READs it onto a stream so that it is in front of the READX or
WRITEX in the cycle that samples it. Tables are ``Region`` s of consecutive words of one bank
(``MemAllocator.alloc_table``); ``window`` (the table's length) is what the index may reach, and counts as
read or stored in the builder's data-readiness (``ProgramBuilder.ready``).

* ``gather(b, start, index, table, n, out)``: ``out[i] = table[x + i]``, ``i < n`` (READX, then WRITEs);
* ``scatter(b, start, index, src, table)``: ``table[x + i] = src[i]`` (READs, then WRITEX);
* ``indexed_add(b, start, index, table, inc)``: ``table[x + i] += inc[i]`` (READX → VXU add ← inc, WRITEX).

``index`` is ``(locs, lane)``: copies of the index word (on several MEM slices) and the lane holding ``x``;
each READ of it takes the nearest copy on a slice the phase's other operands do not use (so its READs never
queue behind theirs). Every phase starts at ``start`` or later (``None``: as soon as its data is ready on an
eager builder, ``phases._eager``).
"""
from spec import isa
from spec.isa import Instruction, Stream

from ..phases import VXU_A, VXU_B, VXU_OUT, _eager, _groups, _read_to, _write_from

__all__ = ["IDX", "GATHER", "gather", "scatter", "indexed_add"]

IDX, GATHER = 4, 5        #: stream indices: the index word on its way to a READX/WRITEX, a READX's words


def _table_start(table):
    p, bank, addr = table.locs[0]
    assert table.locs == [(p, bank, addr + i) for i in range(len(table))], "a table is one bank's consecutive words"
    return p, bank, addr


def _pick(b, index, dst, avoid):
    """The copy of the index word to READ for slice ``dst``: the nearest one not on ``dst`` nor on ``avoid``."""
    if not index[0]:
        raise AssertionError("an index word read after its last use (the decode step's position state is "
                             "updated for the next step after every read of it)")
    locs = [loc for loc in index[0] if loc[0] != dst and loc[0] not in set(avoid)]
    if not locs:
        raise ValueError(f"no copy of the index word lies off slices {sorted(set(avoid) | {dst})}")
    return min(locs, key=lambda loc: b.hops(loc[0], dst))


def _index_to(b, items, loc, dst, cycle, label):
    """READ the index word at ``loc`` so that slice ``dst`` sees it during ``cycle``."""
    _read_to(b, items, [loc], dst, cycle, IDX, label)


def _needs_streams(c):
    if c.streams <= GATHER:
        raise ValueError(f"the decode step's READX/WRITEX phases use streams {IDX} and {GATHER}: config {c.name} has "
                         f"{c.streams} per direction, it needs at least {GATHER + 1}")


def gather(b, start, index, table, n, out):
    """``out[i] = table[x + i]`` for ``i < n`` (module docstring); ``out`` on slices other than the table's."""
    if start is None:
        return _eager(b, list(index[0]) + list(table.locs), list(out), lambda s: gather(b, s, index, table, n, out))
    _needs_streams(b.config)
    pt, bank, addr = _table_start(table)
    items = []
    ix = _pick(b, index, pt, {p for p, _, _ in out})
    r = start + max(0, isa.MEM_READ_LATENCY + b.hops(ix[0], pt) - isa.MEM_INDEX_OFFSET)       # READX issue
    _index_to(b, items, ix, pt, r + isa.MEM_INDEX_OFFSET, "gather index")
    dirs = {b.direction(pt, p) for p, _, _ in out}
    assert len(dirs) == 1, "a gather's destinations lie on one side of its table"
    s = Stream(dirs.pop(), GATHER)
    items.append((pt, r, Instruction("READX", src=Stream(b.direction(ix[0], pt), IDX), bank=bank, addr=addr,
                                     count=n, lane=index[1], dst=s), len(table)))
    # _write_from claims the stream from the table's slice to each WRITE
    _write_from(b, items, list(out), pt, r + isa.READX_LATENCY, GATHER, "gathered words")
    b.place(items)


def scatter(b, start, index, src, table):
    """``table[x + i] = src[i]`` (module docstring); ``src`` on slices other than the table's."""
    if start is None:
        return _eager(b, list(index[0]) + list(src), list(table.locs), lambda s: scatter(b, s, index, src, table))
    _needs_streams(b.config)
    pt, bank, addr = _table_start(table)
    items = []
    ix = _pick(b, index, pt, {p for p, _, _ in src})
    hs = max(b.hops(p, pt) for p, _, _ in src)
    hi = b.hops(ix[0], pt)
    w = start + isa.MEM_READ_LATENCY + max(hs, hi) - isa.MEM_WRITE_LATENCY          # WRITEX issue
    first = w + isa.MEM_WRITE_LATENCY                                               # item 0 and the index sampled
    dirs = {b.direction(p, pt) for p, _, _ in src}
    assert len(dirs) == 1, "a scatter's sources lie on one side of its table"
    _read_to(b, items, list(src), pt, first, GATHER, "scattered words")
    _index_to(b, items, ix, pt, first, "scatter index")
    items.append((pt, w, Instruction("WRITEX", src=Stream(dirs.pop(), GATHER),
                                     src2=Stream(b.direction(ix[0], pt), IDX), bank=bank, addr=addr,
                                     count=len(src), lane=index[1]), len(table)))
    b.place(items)


def indexed_add(b, start, index, table, inc):
    """``table[x + i] += inc[i]`` for ``i < len(inc)`` (module docstring): READX → VXU ``add`` → WRITEX."""
    if start is None:
        return _eager(b, list(index[0]) + list(table.locs) + list(inc), list(table.locs),
                      lambda s: indexed_add(b, s, index, table, inc))
    c = b.config
    _needs_streams(c)
    vxu = c.positions("vxu")[0]
    pt, bank, addr = _table_start(table)
    if pt in {p for p, _, _ in inc}:
        raise ValueError(f"indexed add: the increments must lie off the table's slice {c.slice_names[pt]} (its read "
                         f"unit serves the READX)")
    n = len(inc)
    items = []
    ix = _pick(b, index, pt, {p for p, _, _ in inc})
    r = start + max(0, isa.MEM_READ_LATENCY + b.hops(ix[0], pt) - isa.MEM_INDEX_OFFSET)       # READX issue
    f = max(r + isa.READX_LATENCY + b.hops(pt, vxu),                               # the VXU samples item i at f + i
            start + isa.MEM_READ_LATENCY + max(b.hops(p, vxu) for p, _, _ in inc))
    r = f - isa.READX_LATENCY - b.hops(pt, vxu)
    _index_to(b, items, ix, pt, r + isa.MEM_INDEX_OFFSET, "indexed add: READX index")
    sa = Stream(b.direction(pt, vxu), VXU_A)
    b.claim_stream(sa, pt, vxu, r + isa.READX_LATENCY, n, "indexed add: table words")
    items.append((pt, r, Instruction("READX", src=Stream(b.direction(ix[0], pt), IDX), bank=bank, addr=addr,
                                     count=n, lane=index[1], dst=sa), len(table)))
    _read_to(b, items, list(inc), vxu, f, VXU_B, "indexed add: increments")
    od = b.direction(vxu, pt)
    for i0, k, bd in _groups([b.direction(p, vxu) for p, _, _ in inc]):
        items.append((vxu, f - 1 + i0, Instruction("VOP", vop="add", src=sa, src2=Stream(bd, VXU_B), count=k,
                                                   dst=Stream(od, VXU_OUT))))
    out = f + isa.VXU_PIPELINE
    so = Stream(od, VXU_OUT)
    b.claim_stream(so, vxu, pt, out, n, "indexed add: sums")
    first = out + b.hops(vxu, pt)                      # WRITEX samples item 0 (and its index) then
    _index_to(b, items, ix, pt, first, "indexed add: WRITEX index")
    items.append((pt, first - isa.MEM_WRITE_LATENCY, Instruction(
        "WRITEX", src=so, src2=Stream(b.direction(ix[0], pt), IDX), bank=bank, addr=addr, count=n,
        lane=index[1]), len(table)))
    b.place(items)
