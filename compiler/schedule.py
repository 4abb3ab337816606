"""Static scheduling: instructions placed at absolute issue cycles, one queue per slice.

Contracts
---------
* ``ProgramBuilder(config)`` collects, per slice, instructions at absolute issue cycles. ``at(slice, cycle,
  instr)`` (slice: index or name; instr: a ``spec.isa.Instruction`` or one line of assembly) requires
  ``cycle`` to be at or after the slice's next free issue cycle (instructions of one slice are placed in
  issue order) and the instruction's unit to be free at ``cycle`` (``spec.isa.timing`` busy times); the gap
  since the previous instruction is filled with ``NOP n`` (``n <= spec.isa.MAX_COUNT``, split when longer).
  Every refusal is a ``ValueError`` naming the slice, the cycle, the instruction and the conflict;
  ``place(items)`` places ``(slice, cycle, instr)`` triples sorted by cycle.
* ``claim_stream(stream, writer, reader, cycle, count)`` records that ``count`` values written by slice
  ``writer`` during ``cycle …`` travel to slice ``reader``; a value is seen by slice ``writer ± d`` during
  ``cycle + d``. Two claims that would hold one stream register at one position in one cycle are refused
  (the later write would overwrite the earlier value in flight).
* ``backfill`` (off by default; the decode step of ``compiler.lm`` sets it): an instruction may also go *before*
  its slice's next free issue cycle, into a gap of ``NOP`` s, when its unit is free throughout (a ``mem``
  slice's READ/WRITE/READX/WRITEX, or a VXU ``VOP`` that reads no state: not chained, not ``requant``,
  ``requantv`` or ``lut``, and not just ahead of a chained VOP, whose operand it would become). Independent
  work placed later then fills the queues' idle cycles. A READ or WRITE in a gap is refused when it would read
  before a store, or store before a read or store, of its words placed earlier (the order the slice's queue
  kept by itself); READX/WRITEX (a window of words) rely on their phases starting at ``ready``. The link
  queues and the MXU's MATMULs stay in issue order (a swap's weights are the last loaded); with weight slots
  (``mxu_weight_slots`` > 1) a LOADW may go into a gap of the MXU queue once the weights unit is free of every
  LOADW placed before it, so LOADWs still issue in the order they were placed (their slots' turns), and a slot
  is rewritten only after its last swap (``slot_swap``, the GEMM phase's rule).
* ``finish()`` appends ``HALT`` to every queue (at its next free issue cycle) and returns a ``Program``:
  ``words`` (one list per slice, what ``golden.chip.ChipSim.load`` takes), ``text`` (canonical assembly,
  ``spec.asm.disassemble``), ``schedule`` (per slice ``(cycle, Instruction)``, NOPs and HALT included) and
  ``predicted_cycles = 1 + max(issue + span - 1)`` over every instruction (HALTs included, span from
  ``spec.isa.timing``): exactly ``ChipSim``'s ``cycles``. A program longer than ``queue_depth`` is refused.
* ``hops``/``direction``/``arrival``: stream travel between slices (a value written by slice ``p`` during
  ``t`` is seen by slice ``q`` during ``t + |q - p|``, eastward when ``q > p``).
"""
from bisect import bisect_right
from dataclasses import dataclass, field

from spec import isa
from spec.config import ChipConfig
from spec.isa import Instruction, Stream

__all__ = ["Program", "ProgramBuilder", "ProgramFigures", "Conflict", "hops", "direction", "arrival"]


def _slice(config, ref):
    if type(ref) is int and 0 <= ref < len(config.slices):     # the common case, fast (placement trials)
        return ref
    return config.slice_index(ref)


def _way(config, p, q):
    if p == q:
        raise ValueError(f"src and dst must be different slices, not both {config.slice_names[p]}")
    return "E" if q > p else "W"


def direction(config, src, dst):
    """The direction (``"E"`` or ``"W"``) a value takes from slice ``src`` to slice ``dst``."""
    return _way(config, _slice(config, src), _slice(config, dst))


def hops(config, src, dst, direction=None):
    """Cycles from slice ``src`` writing a stream to slice ``dst`` seeing it (``|dst - src|``). ``direction``
    (``"E"``/``"W"``), when given, must be the one that reaches ``dst``."""
    p, q = _slice(config, src), _slice(config, dst)
    d = _way(config, p, q)
    if direction is not None and direction != d:
        names = config.slice_names
        raise ValueError(f"direction must be {d!r} to go from {names[p]} to {names[q]}, not {direction!r}")
    return abs(q - p)


def arrival(config, src, dst, cycle, direction=None):
    """The cycle in which slice ``dst`` sees a value slice ``src`` writes during ``cycle``."""
    return cycle + hops(config, src, dst, direction)


def _instr_text(instr):
    from spec.asm import format_instruction
    return format_instruction(instr)


@dataclass
class Program:
    """A finished static schedule (see the module docstring)."""
    config: ChipConfig
    words: list
    schedule: list
    predicted_cycles: int
    text: str = field(repr=False, default="")

    def instructions(self, op=None):
        """Every placed ``(slice index, cycle, Instruction)`` (of opcode ``op`` when given), NOPs and HALTs
        included."""
        return [(p, t, ins) for p, sched in enumerate(self.schedule) for t, ins in sched
                if op is None or ins.op == op]

    def count_items(self, op):
        """Total ``count`` of every instruction of opcode ``op`` (e.g. MATMUL activations)."""
        return sum(ins.count for _, _, ins in self.instructions(op))


class ProgramFigures:
    """The figures of anything holding a ``program`` (a ``Program``) and its ``matmul_items`` (MXU
    activations): a compiled kernel or model."""

    @property
    def cycles(self):
        """The predicted cycle count (``program.predicted_cycles``)."""
        return self.program.predicted_cycles

    @property
    def utilization(self):
        """MATMUL activations / predicted cycles (1.0: the array took an activation every cycle)."""
        return self.matmul_items / self.program.predicted_cycles


class Conflict(ValueError):
    """An instruction that cannot go where it was asked because something placed earlier holds its queue, its
    unit or a stream then: ``shift`` is how many cycles later the same placement would get past this conflict
    (at least 1), which lets a trial placement (``phases._eager``) step to its next candidate directly."""

    def __init__(self, message, shift=1):
        super().__init__(message)
        self.shift = max(1, int(shift))


class ProgramBuilder:
    """Places instructions at absolute issue cycles (module docstring)."""

    def __init__(self, config):
        if not isinstance(config, ChipConfig):
            raise TypeError(f"config must be a spec.config.ChipConfig, not {config!r}")
        self.config = config
        P = len(config.slices)
        self._sched = [[] for _ in range(P)]      # (cycle, Instruction), NOPs included
        self._next = [0] * P                       # next free issue cycle of each queue
        self._last = -1                            # last cycle of any activity so far
        self._streams = {}                         # (dir, index, position, cycle) -> label
        self._stored = {}                          # (slice, bank, addr) -> last cycle a WRITE stores it
        self._presented = {}                       # (slice, bank, addr) -> last cycle a READ presents it
        self._journal = None                       # what a trial placement changed (checkpoint/rollback)
        self._spans = [dict() for _ in range(P)]   # unit -> [(first cycle, end, instr)] it is busy, by first cycle
        self.eager = False                         # phases start when their data is ready (ready()), not at end
        self.backfill = False                      # instructions may fill the NOP gaps of mem and VXU queues
        self.last_swap = -1                        # sampling cycle of the last MATMUL activation that swapped
        self.slot_swap = [-1] * config.mxu_weight_slots   # ... that swapped in each weight slot
        self.loadws = self.swaps = 0               # LOADWs and swapping MATMULs placed (their slots' turns)
        self.vxu_last = None                       # the last VXU pass: (its last VOP, out words, first result)
        self._done = False

    def __deepcopy__(self, memo):
        """A copy to go back to (``compiler.lower.placement``'s snapshots): the containers are copied, their
        items (cycles, frozen ``Instruction`` s, labels) are immutable and shared; the config is the same."""
        new = object.__new__(ProgramBuilder)
        new.__dict__.update(self.__dict__)
        new._sched = [list(s) for s in self._sched]
        new._next = list(self._next)
        new._spans = [{u: list(v) for u, v in d.items()} for d in self._spans]
        new._streams = dict(self._streams)
        new._stored = dict(self._stored)
        new._presented = dict(self._presented)
        new.slot_swap = list(self.slot_swap)
        new._journal = None
        return new

    # ---- data readiness and trial placements (phases that start early) -------------------------------
    def ready(self, reads=(), writes=()):
        """The first cycle a phase may start at (issue its first READ) so that its READs of ``reads`` see every
        store placed so far and its stores into ``writes`` come after every placed READ and store of them:
        ``(slice, bank, addr)`` word locations. At most ``end``."""
        t = 0
        for loc in reads:
            t = max(t, self._stored.get(loc, -1) + 1)
        for loc in writes:
            t = max(t, self._stored.get(loc, -1) + 1, self._presented.get(loc, -1) + 1)
        return min(t, self.end)

    def checkpoint(self):
        """Start a trial: ``rollback(token)`` undoes everything placed since (``commit()`` keeps it)."""
        self._journal = []
        return ([len(q) for q in self._sched], list(self._next), self._last,
                (self.last_swap, list(self.slot_swap), self.loadws, self.swaps),
                [{u: len(v) for u, v in d.items()} for d in self._spans])

    def rollback(self, token):
        lens, nxt, last, swap, spans = token
        for d, key, old in reversed(self._journal):
            if d is None:               # a list changed in place (a backfill, a span): its copy from before
                key[:] = old
            elif old is None:
                d.pop(key, None)
            else:
                d[key] = old
        for q, n in zip(self._sched, lens):
            del q[n:]
        for d, kept in zip(self._spans, spans):
            for u in list(d):
                if u in kept:
                    del d[u][kept[u]:]
                else:
                    del d[u]
        self._next, self._last = nxt, last
        self.last_swap, slots, self.loadws, self.swaps = swap
        self.slot_swap = list(slots)            # the token's copy stays as it was (a token may be rolled back again)
        self._journal = None

    def commit(self):
        self._journal = None

    @property
    def in_trial(self):
        """Whether a trial placement is open (``checkpoint`` without its ``rollback``/``commit``)."""
        return self._journal is not None

    def in_order(self, reads=(), stores=()):
        """Whether READs presenting ``(location, cycle)`` of ``reads`` see every store placed so far, and stores
        ``(location, cycle)`` of ``stores`` come after every placed READ and store of their words: the exact
        form of ``ready`` for a phase whose cycles are known."""
        return self._lateness(reads, stores) == 0

    def _lateness(self, reads=(), stores=()):
        """How many cycles later ``reads`` and ``stores`` (as in ``in_order``) must all be to be in order (0: they
        are)."""
        late = [self._stored.get(loc, -1) + 1 - t for loc, t in reads]
        late += [max(self._stored.get(loc, -1), self._presented.get(loc, -1)) + 1 - t for loc, t in stores]
        return max([0] + late)

    def last_op(self, slice, op):
        """``(cycle, instr)`` of the last ``op`` placed on ``slice``, or ``None``."""
        return next(((t, ins) for t, ins in reversed(self._sched[_slice(self.config, slice)]) if ins.op == op),
                    None)

    def _set(self, d, key, value):
        if self._journal is not None:
            self._journal.append((d, key, d.get(key)))
        d[key] = value

    def _keep(self, lst):
        """Before ``lst`` (a queue's schedule, a unit's spans) changes in place during a trial: its copy, for
        ``rollback``."""
        if self._journal is not None:
            self._journal.append((None, lst, list(lst)))

    # ---- queries -------------------------------------------------------------------------------------
    def next_issue(self, slice):
        """The first cycle at which slice ``slice`` may issue its next instruction."""
        return self._next[_slice(self.config, slice)]

    def delay(self, slice, cycle, instr):
        """How many cycles later than ``cycle`` the queue of ``slice`` and the unit ``instr`` uses must let it
        issue (0: ``at`` takes it as far as they go; streams and data order are not looked at): a probe, which
        places nothing, for a phase that moves one instruction's cycle on its own."""
        p = _slice(self.config, slice)
        tm = isa.timing(instr, self.config)
        if cycle >= self._next[p]:
            return 0 if tm.unit == "queue" else max(0, self._free(p, tm.unit)[0] - cycle)
        if not (self.backfill and self._may_backfill(p, cycle, instr)):
            return self._next[p] - cycle
        _, (_, there) = self._gap(p, cycle)
        if there.op != "NOP":
            return 1
        span = self._overlap(p, tm.unit, cycle, cycle + tm.busy)
        return span[1] - cycle if span else 0

    def unit_free(self, slice, unit):
        """The first cycle at which ``unit`` of ``slice`` is free."""
        return self._free(_slice(self.config, slice), unit)[0]

    def _free(self, p, unit):
        """``(first free cycle, instr, issue cycle)`` of ``unit`` of slice ``p``: the end of its last span (spans do
        not overlap, so the last to start ends last), ``(0, None, None)`` when it never ran."""
        spans = self._spans[p].get(unit)
        return (spans[-1][1], spans[-1][2], spans[-1][0]) if spans else (0, None, None)

    @property
    def end(self):
        """One past the last cycle of activity of every instruction placed so far (0 when none): a phase
        started here sees every earlier operation finished (MEM stores included)."""
        return self._last + 1

    def hops(self, src, dst, direction=None):
        return hops(self.config, src, dst, direction)

    def direction(self, src, dst):
        return direction(self.config, src, dst)

    def arrival(self, src, dst, cycle, direction=None):
        return arrival(self.config, src, dst, cycle, direction)

    # ---- placing -------------------------------------------------------------------------------------
    def _where(self, p, cycle, instr):
        return f"slice {self.config.slice_names[p]}, cycle {cycle}, {_instr_text(instr)}"

    def at(self, slice, cycle, instr, window=None):
        """Issue ``instr`` on ``slice`` at ``cycle`` (module docstring); returns ``instr``. A READX or WRITEX
        needs ``window``: how many words from its ``addr`` its index may reach (every one of them counts as
        read, or stored, for ``ready``)."""
        if self._done:
            raise ValueError("this ProgramBuilder has finished; make a new one")
        c = self.config
        p = _slice(c, slice)
        if not isinstance(cycle, int) or isinstance(cycle, bool):
            raise TypeError(f"cycle must be a non-negative integer, not {cycle!r}")
        if cycle < 0:
            raise ValueError(f"cycle must be a non-negative integer, not {cycle}")
        if isinstance(instr, str):
            from spec.asm import parse_instruction
            try:
                instr = parse_instruction(instr)
            except (TypeError, ValueError) as e:
                raise ValueError(f"slice {c.slice_names[p]}, cycle {cycle}: {instr.strip()!r}: {e}") from None
        if not isinstance(instr, Instruction):
            raise TypeError(f"instr must be a spec.isa.Instruction or a line of assembly, not {instr!r}")
        if instr.op == "HALT":
            raise ValueError(f"{self._where(p, cycle, instr)}: HALT is appended by finish(), not placed")
        f = isa.fault(instr, c, c.slices[p])
        if f is not None:
            raise ValueError(f"{self._where(p, cycle, instr)}: {f.message} ({f.code.name})")
        indexed = instr.op in ("READX", "WRITEX")
        if indexed != (window is not None) or indexed and not (
                isinstance(window, int) and instr.count <= window <= c.mem_depth - instr.addr):
            raise ValueError(f"{self._where(p, cycle, instr)}: " + (
                f"window must be an integer between count = {instr.count} and {c.mem_depth - instr.addr} "
                f"(the words its index may reach), not {window!r}" if indexed else "only READX and WRITEX take "
                                                                                   "a window"))
        tm = isa.timing(instr, c)
        if cycle < self._next[p]:
            if not (self.backfill and self._may_backfill(p, cycle, instr)):
                prev_t, prev = next((t, ins) for t, ins in reversed(self._sched[p]))
                raise Conflict(f"{self._where(p, cycle, instr)}: the queue is not free before cycle "
                               f"{self._next[p]} (it issues {_instr_text(prev)} at cycle {prev_t}); "
                               f"instructions of a slice must be placed in issue order", self._next[p] - cycle)
            self._backfill(p, cycle, instr, tm)
        else:
            if tm.unit != "queue":
                free, other, t_other = self._free(p, tm.unit)
                if cycle < free:
                    raise Conflict(f"{self._where(p, cycle, instr)}: unit {tm.unit} is busy until cycle {free - 1} "
                                   f"with {_instr_text(other)} issued at cycle {t_other}", free - cycle)
            words = len(self._sched[p]) + self._nops(cycle - self._next[p]) + 1
            self._check_depth(p, cycle, instr, words)
            self._fill(p, cycle)
            self._sched[p].append((cycle, instr))
            if tm.unit == "queue":
                self._next[p] = cycle + tm.busy
            else:
                self._next[p] = cycle + 1
                self._spans[p].setdefault(tm.unit, []).append((cycle, cycle + tm.busy, instr))
        self._last = max(self._last, cycle + tm.span - 1)
        if instr.op in ("READ", "WRITE"):       # the latest cycle (a backfilled one may be earlier than another)
            d, off = ((self._presented, isa.MEM_DECODE_STAGES) if instr.op == "READ"
                      else (self._stored, isa.MEM_WRITE_LATENCY))
            for i in range(instr.count):
                key = (p, instr.bank, instr.addr + i)
                self._set(d, key, max(cycle + off + i, d.get(key, -1)))
        elif instr.op == "MATMUL" and instr.swap:
            self.last_swap = max(self.last_swap, cycle + isa.MXU_INPUT_OFFSET)
            self.slot_swap[self.swaps % len(self.slot_swap)] = cycle + isa.MXU_INPUT_OFFSET
            self.swaps += 1
        elif instr.op == "LOADW":
            self.loadws += 1
        elif indexed:               # any word of the window, until the last item's cycle
            last = cycle + (isa.MEM_INDEX_OFFSET + isa.MEM_DECODE_STAGES if instr.op == "READX"
                            else isa.MEM_WRITE_LATENCY) + instr.count - 1
            d = self._presented if instr.op == "READX" else self._stored
            for i in range(window):
                self._set(d, (p, instr.bank, instr.addr + i), max(last, d.get((p, instr.bank, instr.addr + i), -1)))
        return instr

    def _check_depth(self, p, cycle, instr, words):
        c = self.config
        if words + 1 > c.queue_depth:
            raise ValueError(f"{self._where(p, cycle, instr)}: the program of slice {c.slice_names[p]} needs "
                             f"{words + 1} words with its HALT, more than queue_depth = {c.queue_depth} of config "
                             f"{c.name} (by {words + 1 - c.queue_depth})")

    def _may_backfill(self, p, cycle, instr):
        """Whether ``instr`` may go into a gap of slice ``p``'s queue at ``cycle`` (module docstring:
        ``backfill``)."""
        kind = self.config.slices[p]
        if kind == "mem":
            return instr.op in ("READ", "WRITE", "READX", "WRITEX")
        if kind == "mxu" and instr.op == "LOADW":   # after every LOADW placed: the slots' turns are issue order
            return self.config.mxu_weight_slots > 1 and cycle >= self._free(p, "weights")[0]
        return (kind == "vxu" and instr.op == "VOP" and not instr.chain
                and instr.vop not in ("requant", "requantv", "lut"))

    def _data_order(self, p, cycle, instr):
        """``_lateness`` of a READ's or WRITE's words (0 for other instructions): in issue order a slice's queue
        kept their data order by itself; in a gap it must be checked. (READX/WRITEX reach a window of words: the
        indexed phases start after the window's placed reads and stores, ``ready``, and a READX → VXU → WRITEX
        of one phase stores each word after reading it, which a check of the whole window would refuse.)"""
        if instr.op not in ("READ", "WRITE"):
            return 0
        first = cycle + (isa.MEM_DECODE_STAGES if instr.op == "READ" else isa.MEM_WRITE_LATENCY)
        words = [((p, instr.bank, instr.addr + i), first + i) for i in range(instr.count)]
        return self._lateness(words, ()) if instr.op == "READ" else self._lateness((), words)

    def _gap(self, p, cycle):
        """``(index, (issue cycle, instr))`` of the entry of slice ``p``'s queue that holds ``cycle`` (below its next
        issue cycle): an instruction issued then, or the ``NOP`` gap around it."""
        sched = self._sched[p]
        i = bisect_right(sched, cycle, key=lambda e: e[0]) - 1
        return i, sched[i]

    def _overlap(self, p, unit, cycle, end):
        """The span ``(first, end, instr)`` of ``unit`` of slice ``p`` that overlaps cycles ``cycle … end - 1``, or
        ``None`` (spans do not overlap, so the last to start before ``end`` is the one to look at)."""
        spans = self._spans[p].get(unit, [])
        k = bisect_right(spans, end - 1, key=lambda e: e[0]) - 1
        return spans[k] if k >= 0 and spans[k][1] > cycle else None

    def _backfill(self, p, cycle, instr, tm):
        """Put ``instr`` into the NOP gap of slice ``p`` that holds ``cycle`` (``Conflict`` when none does, or its
        unit is busy then, or a chained VOP follows it, or its words' data order would break)."""
        if self.config.slices[p] == "mem":
            late = self._data_order(p, cycle, instr)
            if late:
                raise Conflict(f"{self._where(p, cycle, instr)}: in this gap it would read before a store, or store "
                               f"before a read or store, of its words placed earlier", late)
        sched = self._sched[p]
        i, (t0, nop) = self._gap(p, cycle)
        if nop.op != "NOP":
            raise Conflict(f"{self._where(p, cycle, instr)}: the queue issues {_instr_text(nop)} then", 1)
        if instr.op == "VOP":
            after = next(((t, ins) for t, ins in sched[i + 1:] if ins.op == "VOP"), None)
            if after is not None and after[1].chain:
                raise Conflict(f"{self._where(p, cycle, instr)}: the chained {_instr_text(after[1])} at cycle "
                               f"{after[0]} takes the VXU's latest result", after[0] + 1 - cycle)
        spans = self._spans[p].setdefault(tm.unit, [])
        end = cycle + tm.busy
        span = self._overlap(p, tm.unit, cycle, end)
        if span:
            first, stop, other = span
            raise Conflict(f"{self._where(p, cycle, instr)}: unit {tm.unit} is busy from cycle {first} to {stop - 1} "
                           f"with {_instr_text(other)}", stop - cycle)
        self._check_depth(p, cycle, instr, len(sched) + 2)
        n = nop.count
        new = ([(t0, Instruction("NOP", count=cycle - t0))] if cycle > t0 else []) + [(cycle, instr)]
        if t0 + n > cycle + 1:
            new.append((cycle + 1, Instruction("NOP", count=t0 + n - cycle - 1)))
        self._keep(sched)
        sched[i:i + 1] = new
        self._keep(spans)
        spans.insert(bisect_right(spans, end - 1, key=lambda e: e[0]), (cycle, end, instr))

    def place(self, items):
        """Place ``(slice, cycle, instr)`` triples (or ``(slice, cycle, instr, window)`` for READX/WRITEX) in
        cycle order (stable for equal cycles)."""
        for s, t, ins, *w in sorted(items, key=lambda it: it[1]):
            self.at(s, t, ins, *w)

    @staticmethod
    def _nops(gap):
        return -(-gap // isa.MAX_COUNT) if gap > 0 else 0

    def _fill(self, p, cycle):
        t = self._next[p]
        while t < cycle:
            n = min(cycle - t, isa.MAX_COUNT)
            self._sched[p].append((t, Instruction("NOP", count=n)))
            self._last = max(self._last, t + n - 1)
            t += n
        self._next[p] = max(self._next[p], cycle)

    # ---- streams -------------------------------------------------------------------------------------
    def claim_stream(self, stream, writer, reader, cycle, count=1, label=""):
        """Record ``count`` values written on ``stream`` by ``writer`` during ``cycle …`` and read by
        ``reader``; ``ValueError`` if one would overwrite (or be overwritten by) a value claimed earlier."""
        c = self.config
        s = Stream.parse(stream)
        if s.index >= c.streams:
            raise ValueError(f"stream must be E0..E{c.streams - 1} or W0..W{c.streams - 1} for config {c.name}, "
                             f"not {s}")
        p, q = _slice(c, writer), _slice(c, reader)
        d = hops(c, p, q, s.direction)
        step = 1 if s.direction == "E" else -1
        what = label or f"{c.slice_names[p]} -> {c.slice_names[q]}"
        for i in range(count):
            for h in range(1, d + 1):
                key = (s.direction, s.index, p + step * h, cycle + i + h)
                other = self._streams.get(key)
                if other is not None:
                    # item i meets this stream register taken until the end of the run of claims there: a start
                    # any less late meets it again
                    end = key[3] + 1
                    while (s.direction, s.index, key[2], end) in self._streams:
                        end += 1
                    raise Conflict(f"stream {s} at slice {c.slice_names[key[2]]}, cycle {key[3]}: {what} (item {i}, "
                                   f"written during cycle {cycle + i}) collides with {other}", end - key[3])
        for i in range(count):
            for h in range(1, d + 1):
                self._set(self._streams, (s.direction, s.index, p + step * h, cycle + i + h), what)

    # ---- finishing -----------------------------------------------------------------------------------
    def finish(self):
        """Append HALT to every queue and return the ``Program``."""
        if self._done:
            raise ValueError("this ProgramBuilder has finished; make a new one")
        c = self.config
        last = self._last
        for p in range(len(c.slices)):
            if len(self._sched[p]) + 1 > c.queue_depth:
                raise ValueError(f"the program of slice {c.slice_names[p]} needs {len(self._sched[p]) + 1} words "
                                 f"with its HALT, more than queue_depth = {c.queue_depth} of config {c.name}")
            self._sched[p].append((self._next[p], Instruction("HALT")))
            last = max(last, self._next[p])
        self._done = True
        words = [[isa.encode(ins) for _, ins in sched] for sched in self._sched]
        from spec.asm import disassemble
        return Program(config=c, words=words, schedule=[list(s) for s in self._sched], predicted_cycles=last + 1,
                       text=disassemble(words, c))
