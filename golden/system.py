"""Golden model of a system of chips joined by scheduled links (docs/multichip.md).

``SystemSim`` steps ``chips`` ``golden.chip.ChipSim``\\ s of one configuration in lock step, all starting on
cycle 0, and carries the words of their link slices over delay lines of ``config.link_latency`` cycles.
It reads ``spec`` and ``golden.chip`` only.

API
---
::

    sys = SystemSim(config, chips=4, topology="ring")     # config: a ChipConfig with link slices
    sys.load(chip, programs)                 # one word list per slice of chip ``chip`` (spec.asm.assemble)
    sys.write_mem(chip, slice, bank, addr, vectors)
    res = sys.run(max_cycles=1_000_000)      # -> SystemResult
    res.cycles                               # the system's done cycle (below)
    res.chip_cycles, res.errors              # per chip: its done cycle, its error (ChipError or None)
    res.error                                # None or SysError(code, chip, slice, pc, cycle)
    res.links                                # per directed link: LinkStats (words carried, busy cycles)
    res.read_mem(chip, slice, bank, addr, count)

Topology
--------
A link slice at index 0 of a chip is its **west** end, one at the last index its **east** end. ``"line"``:
chip ``c``'s east link slice and chip ``c + 1``'s west link slice are joined, both ways (two directed links,
each a delay line); chip 0's west and the last chip's east lead nowhere. ``"ring"``: the same, and the last
chip's east joined with chip 0's west (with one chip, its own east with its own west). A system of two or
more chips, and every ring, needs link slices at both ends of ``config``. A link slice that leads nowhere
faults on use (``golden.chip``: its SEND ``LINK_DROPPED``, its RECV ``RECV_EMPTY``).

Semantics
---------
* A word a SEND samples during cycle ``u`` is taken by the RECV item of the other end during
  ``u + link_latency`` (``Link.push`` / ``Link.take``); a valid bit travels with it, so a RECV item with no
  word is ``RECV_EMPTY`` and a word no RECV item takes in its arrival cycle is ``LINK_DROPPED`` (on the
  receiving chip, at its link slice, with that queue's pc). A link carries at most one word every
  ``link_interval`` cycles; the SEND unit's busy time guarantees it (``spec.isa.timing``).
* Every chip runs as ``golden.chip`` says, one cycle at a time, chips in index order (the order is not
  observable: a word pushed during ``u`` is seen from ``u + link_latency >= u + 1`` on). A chip's cycles are
  its own done cycle. A chip that is done still receives: a word arriving at it is ``LINK_DROPPED``.
* **Done.** The system is done on the first cycle ``D`` after which every chip is done and no word is in
  flight on any link; ``cycles = D + 1`` (so ``cycles`` is the largest chip's cycles unless a word was left
  in flight, which then faults on arrival).
* **Faults** stop the whole system at the end of the cycle ``t`` they are detected in, as one chip stops
  (``golden.chip``): chips still running end with ``cycles = t + 1``, each chip that faulted in ``t`` reports
  its own error (lowest slice, then lowest code), and the system error is the first fault in cycle order,
  ties to the lowest chip, then the lowest slice, then the lowest code: ``SysError(code, chip, slice, pc,
  cycle)``.
"""
from dataclasses import dataclass
from typing import NamedTuple

from golden.chip import DEFAULT_MAX_CYCLES, ChipFault, ChipSim, ChipTimeout
from spec import isa
from spec.config import MAX_CHIPS, ChipConfig

__all__ = ["TOPOLOGIES", "Link", "LinkStats", "SysError", "SystemResult", "SystemSim"]

TOPOLOGIES = ("line", "ring")


class SysError(NamedTuple):
    """The system's sticky error: code, chip, slice index, program counter and cycle."""
    code: isa.ErrorCode
    chip: int
    slice: int
    pc: int
    cycle: int


class LinkStats(NamedTuple):
    """One directed link after a run: ``name`` (``"c0.east->c1.west"``), its ends, the words it carried and the
    cycles it was busy (``words × link_interval``)."""
    name: str
    src_chip: int
    src_slice: int
    dst_chip: int
    dst_slice: int
    words: int
    busy_cycles: int


class Link:
    """A directed link: a delay line of ``latency`` cycles carrying (valid, vector) words.

    ``push(u, v)``: the word enters during cycle ``u`` (a SEND's sample) and arrives during ``u + latency``;
    ``take(u)``: the word arriving during ``u``, or ``None`` (a RECV item); ``dropped(u)``: after the receiving
    chip's cycle ``u``, whether a word arrived during ``u`` that nothing took (it is discarded)."""

    def __init__(self, latency, name=""):
        self.latency = latency
        self.name = name
        self.words = 0
        self._arriving = {}           # arrival cycle -> vector (the valid bit: present or not)

    def push(self, u, vector):
        arrival = u + self.latency
        if arrival in self._arriving:    # pragma: no cover - one SEND unit per link slice, busy for count · interval
            raise ChipFault(f"link {self.name}: two words would arrive in cycle {arrival}")
        self._arriving[arrival] = vector
        self.words += 1

    def take(self, u):
        return self._arriving.pop(u, None)

    def dropped(self, u):
        return self._arriving.pop(u, None) is not None

    @property
    def in_flight(self):
        return len(self._arriving)


@dataclass
class SystemResult:
    """What a system run gives back: the system's ``cycles`` and ``error``, each chip's ``ChipResult``
    (``chips``) and each directed link's ``LinkStats`` (``links``)."""
    config: ChipConfig
    topology: str
    cycles: int
    error: SysError | None
    chips: tuple
    links: tuple

    @property
    def ok(self):
        return self.error is None

    @property
    def chip_cycles(self):
        return tuple(r.cycles for r in self.chips)

    @property
    def errors(self):
        return tuple(r.error for r in self.chips)

    def link(self, name):
        """The ``LinkStats`` called ``name`` (``"c0.east->c1.west"``)."""
        for ln in self.links:
            if ln.name == name:
                return ln
        raise ValueError(f"link {name!r} is not in this system (links: {', '.join(ln.name for ln in self.links)})")

    def read_mem(self, chip, slice, bank, addr, count=1):
        return self.chips[_chip_index(chip, len(self.chips))].read_mem(slice, bank, addr, count)


def _chip_index(chip, n):
    if not isinstance(chip, int) or isinstance(chip, bool):
        raise TypeError(f"chip must be an integer between 0 and {n - 1}, not {chip!r}")
    if not 0 <= chip < n:
        raise ValueError(f"chip must be an integer between 0 and {n - 1}, not {chip!r}")
    return chip


class SystemSim:
    """``chips`` chips of ``config`` joined in a ``topology`` (module docstring). ``chips`` defaults to
    ``config.chips``."""

    def __init__(self, config, chips=None, topology="line"):
        if not isinstance(config, ChipConfig):
            raise TypeError(f"config must be a spec.config.ChipConfig, not {config!r}")
        n = config.chips if chips is None else chips
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"chips must be an integer between 1 and {MAX_CHIPS}, not {n!r}")
        if not 1 <= n <= MAX_CHIPS:
            raise ValueError(f"chips must be an integer between 1 and {MAX_CHIPS}, not {n!r}")
        if not isinstance(topology, str) or topology not in TOPOLOGIES:
            raise ValueError(f"topology must be one of {', '.join(map(repr, TOPOLOGIES))}, not {topology!r}")
        ends = config.link_ends
        if (n > 1 or topology == "ring") and set(ends) != {"west", "east"}:
            raise ValueError(f"a {topology} of {n} chip{'s' * (n > 1)} needs a link slice at both ends of config "
                             f"{config.name} (slices: {', '.join(config.slice_names)}; ChipConfig.with_links() "
                             f"adds them)")
        self.config, self.topology, self.n = config, topology, n
        self.sims = [ChipSim(config) for _ in range(n)]
        self.links = []              # (Link, src chip, src slice, dst chip, dst slice)
        pairs = [(c, c + 1) for c in range(n - 1)]
        if topology == "ring":
            pairs.append((n - 1, 0))
        wiring = {}                  # (chip, slice) -> [out, into]
        for a, b in pairs:
            east, west = ends["east"], ends["west"]
            for (sc, sp, sn), (dc, dp, dn) in (((a, east, "east"), (b, west, "west")),
                                               ((b, west, "west"), (a, east, "east"))):
                link = Link(config.link_latency, f"c{sc}.{sn}->c{dc}.{dn}")
                self.links.append((link, sc, sp, dc, dp))
                wiring.setdefault((sc, sp), [None, None])[0] = link
                wiring.setdefault((dc, dp), [None, None])[1] = link
        for (c, p), (out, into) in wiring.items():
            self.sims[c].connect(p, out=out, into=into)
        self._ran = False

    # ---- loading ------------------------------------------------------------------------------------
    def chip(self, chip):
        """The ``ChipSim`` of chip ``chip``."""
        return self.sims[_chip_index(chip, self.n)]

    def load(self, chip, programs):
        """Load chip ``chip``'s programs: one word list per slice (``ChipSim.load``)."""
        self.chip(chip).load(programs)

    def write_mem(self, chip, slice, bank, addr, vectors):
        self.chip(chip).write_mem(slice, bank, addr, vectors)

    def read_mem(self, chip, slice, bank, addr, count=1):
        return self.chip(chip).read_mem(slice, bank, addr, count)

    # ---- running ------------------------------------------------------------------------------------
    def run(self, max_cycles=DEFAULT_MAX_CYCLES, record=False):
        """Run every chip from cycle 0 until the system is done (module docstring); ``ChipTimeout`` if it is
        not done within ``max_cycles``."""
        if self._ran:
            raise ChipFault("this SystemSim has already run; make a new one")
        self._ran = True
        sims = self.sims
        for s in sims:
            s.start(record=record)
        error = None
        t = 0
        while True:
            if t >= max_cycles:
                raise ChipTimeout(f"the system was not done within max_cycles = {max_cycles}")
            faults = [s._watch(t) if s.done else s._cycle() for s in sims]
            if any(faults):
                found = []
                for c, (s, f) in enumerate(zip(sims, faults)):
                    if s.done:
                        pass                  # a done chip keeps its cycles (and the error _watch set)
                    elif f:
                        s._conclude(f)        # stops it with its own error
                    else:
                        s._stop(None)         # stopped by another chip's fault
                    if f:
                        found.append((c,) + min(f, key=lambda x: (x[0], x[1])))
                c, p, code, pc = min(found, key=lambda x: (x[0], x[1], x[2]))
                error = SysError(isa.error_code(code), c, p, pc, t)
                break
            for s in sims:
                if not s.done:
                    s._conclude([])
            if all(s.done for s in sims) and not any(ln.in_flight for ln, *_ in self.links):
                break
            t += 1
        iv = self.config.link_interval
        links = tuple(LinkStats(ln.name, sc, sp, dc, dp, ln.words, ln.words * iv)
                      for ln, sc, sp, dc, dp in self.links)
        return SystemResult(self.config, self.topology, t + 1, error, tuple(s.result() for s in sims), links)

