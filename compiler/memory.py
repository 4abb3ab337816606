"""MEM regions and their allocator: the words of on-chip SRAM an array occupies, slice by slice.

* ``Region(name, config, locs)``: ``locs[i] = (slice index, bank, addr)`` of word ``i``; ``segments`` (the
  contiguous pieces by slice name), ``runs`` (pieces of at most ``isa.MAX_COUNT`` words, what one READ or
  WRITE covers), ``inputs(data)`` (what the host writes to fill it).
* ``MemAllocator(config)``: hands out words slice by slice, bank by bank, lowest free address first;
  ``release(region)`` hands a dead region's words back, for ``alloc(..., reuse=True)`` (data written on the
  chip after the last read of what was there). A region that does not fit raises ``MemoryFull`` (a
  ``ValueError``) naming it, its words, the slices and their free words.
"""
from dataclasses import dataclass

import numpy as np

from spec import isa
from spec.config import ChipConfig

__all__ = ["Region", "MemAllocator", "MemoryFull"]


class MemoryFull(ValueError):
    """A region does not fit in the MEM slices it may take (the message: what, how big, how much is free).
    ``words``: its size; ``anywhere``: the words it could take on every MEM slice together; ``hopeless``: it
    would not fit even there, so no other choice of slices helps."""

    def __init__(self, message, words=0, anywhere=0):
        super().__init__(message)
        self.words, self.anywhere = words, anywhere

    @property
    def hopeless(self):
        return self.words > self.anywhere


@dataclass
class Region:
    """Words of MEM holding one array: ``locs[i] = (slice index, bank, addr)`` of word ``i``."""
    name: str
    config: ChipConfig
    locs: list

    def __len__(self):
        return len(self.locs)

    @property
    def slices(self):
        return sorted({p for p, _, _ in self.locs})

    def runs(self, start=0, stop=None):
        """``(i0, slice, bank, addr, count)`` of the maximal contiguous runs of words ``start … stop-1``."""
        return _runs(self.locs[start:stop], start)

    @property
    def segments(self):
        """``((slice name, bank, addr, count), …)``: the region as contiguous pieces, in word order."""
        names = self.config.slice_names
        return tuple((names[p], bank, addr, n) for _, p, bank, addr, n in self.runs())

    def inputs(self, data):
        """``[(slice name, bank, addr, words)]`` that store ``data`` (``len(self) × L``) in the region."""
        data = np.asarray(data)
        assert data.shape == (len(self), self.config.lanes), (data.shape, len(self))
        names = self.config.slice_names
        return [(names[p], bank, addr, data[i0:i0 + n]) for i0, p, bank, addr, n in self.runs()]


def _runs(locs, offset=0):
    out = []
    i = 0
    while i < len(locs):
        p, bank, addr = locs[i]
        n = 1
        while i + n < len(locs) and n < isa.MAX_COUNT and locs[i + n] == (p, bank, addr + n):
            n += 1
        out.append((offset + i, p, bank, addr, n))
        i += n
    return out


class MemAllocator:
    """Hands out MEM words slice by slice, bank by bank (lowest free address first). ``free[p][bank]``: the
    first word of the bank never handed out; ``reusable[p]``: ``(bank, addr)`` of words handed back by
    ``release`` (their data dead), which ``alloc(..., reuse=True)`` gives out first. Only data written on
    the chip may take reusable words: data the host loads before the run needs words nothing else ever
    holds (the caller says which, and guarantees a released word is not read again)."""

    def __init__(self, config):
        self.config = config
        self.free = {p: [0] * config.mem_banks for p in config.positions("mem")}
        self.reusable = {p: [] for p in config.positions("mem")}

    def free_words(self, p):
        """Words of slice ``p`` never handed out."""
        return sum(self.config.mem_depth - a for a in self.free[p])

    def reusable_words(self, p):
        """Words of slice ``p`` handed back by ``release``, not yet given out again."""
        return len(self.reusable[p])

    @property
    def state(self):
        """A copy of what is free (``free``, ``reusable``), for trying an allocation and going back."""
        return {p: list(v) for p, v in self.free.items()}, {p: list(v) for p, v in self.reusable.items()}

    @state.setter
    def state(self, value):
        free, reusable = value
        self.free, self.reusable = {p: list(v) for p, v in free.items()}, {p: list(v) for p, v in reusable.items()}

    def release(self, region):
        """Hand ``region``'s words back (nothing reads them any more): reusable by ``alloc(..., reuse=True)``."""
        for p in region.slices:
            self.reusable[p] = sorted(self.reusable[p] + [(bank, addr) for q, bank, addr in region.locs if q == p])

    def alloc_table(self, name, n, slices, what=""):
        """A ``Region`` of ``n`` words at consecutive addresses of one bank (a table a READX/WRITEX indexes: word
        ``i`` at ``addr + i``), on the first of ``slices`` with a bank that holds it; never reused words.
        ``MemoryFull`` naming the largest such piece when none does."""
        c = self.config
        for p in dict.fromkeys(slices):
            for bank in range(c.mem_banks):
                a = self.free[p][bank]
                if a + n <= c.mem_depth:
                    self.free[p][bank] = a + n
                    return Region(name, c, [(p, bank, a + i) for i in range(n)])
        best = max((c.mem_depth - self.free[p][b] for p in slices for b in range(c.mem_banks)), default=0)
        names = ", ".join(c.slice_names[p] for p in slices) or "no MEM slice"
        raise MemoryFull(f"{name}{what} needs {n} consecutive words of one MEM bank (it is indexed by READX/"
                         f"WRITEX) but the largest free run on {names} is {best} words (config {c.name}: "
                         f"{c.mem_banks} banks x {c.mem_depth} words per slice)", words=n,
                         anywhere=sum(self.free_words(q) for q in self.free))

    def alloc(self, name, n, slices, granule=1, what="", reuse=False):
        """A ``Region`` of ``n`` words filling ``slices`` in order (with ``reuse``, each slice's reusable words
        first); a ``granule`` of words never straddles two slices. ``MemoryFull`` (a ``ValueError``: what does
        not fit, the free words, and by how much) when they are too small."""
        c = self.config
        slices = list(dict.fromkeys(slices))
        room = {p: self.free_words(p) + (self.reusable_words(p) if reuse else 0) for p in slices}
        take, got = {}, 0
        for p in slices:                    # what each slice gives: whole granules, then a last shorter piece
            k = min(room[p] // granule, (n - got) // granule) * granule
            if 0 < n - got - k < granule and room[p] - k >= n - got - k:
                k = n - got
            take[p], got = k, got + k
        if got < n:
            names = ", ".join(c.slice_names[p] for p in slices) or "no MEM slice"
            dead = 0 if reuse else sum(self.reusable_words(p) for p in slices)
            anywhere = sum(self.free_words(p) + (self.reusable_words(p) if reuse else 0) for p in self.free)
            where = (f"{names} (config {c.name}: {c.mem_banks} banks x {c.mem_depth} words per slice) have "
                     f"{sum(room.values())} free" if slices else f"no MEM slice may hold it (config {c.name}: "
                     f"{c.mem_banks} banks x {c.mem_depth} words per slice)")
            raise MemoryFull(f"{name}{what} needs {n} words of MEM but {where}"
                             f"{f' in pieces of {granule}' if granule > 1 else ''}: it does not fit, short by "
                             f"{n - got} words"
                             + (f" ({dead} more words are free again after their last use, but data loaded "
                                f"before the run needs words nothing else holds)" if dead else ""),
                             words=n, anywhere=anywhere)
        locs = []
        for p in slices:
            pool = self.reusable[p] if reuse else []
            reused = min(take[p], len(pool))
            locs += [(p, bank, addr) for bank, addr in pool[:reused]]
            for _ in range(take[p] - reused):
                bank = next(b for b in range(c.mem_banks) if self.free[p][b] < c.mem_depth)
                locs.append((p, bank, self.free[p][bank]))
                self.free[p][bank] += 1
            if reused:
                self.reusable[p] = pool[reused:]
        return Region(name, c, locs)


def _sides(config, pos):
    """MEM slices west of ``pos`` (west first) and east of it (nearest first)."""
    mems = config.positions("mem")
    return [p for p in mems if p < pos], [p for p in mems if p > pos]

