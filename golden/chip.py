"""Golden ISA-level simulator of the whole streaming chip (docs/chip.md, docs/isa.md).

The twin of the chip RTL: it reads ``spec.config`` and ``spec.isa`` (every latency comes from
``spec.isa.timing`` and the constants next to it) and reuses the unit models ``golden.mxu`` and
``golden.vxu``; it never imports ``rtl/``. It is cycle-stepped: one Python iteration per clock cycle, the work
inside a cycle vectorised over lanes with numpy.

API
---
::

    sim = ChipSim(config)                    # a spec.config.ChipConfig
    sim.load(programs)                       # one word list per slice (spec.asm.assemble's output)
    sim.write_mem(slice, bank, addr, vectors)    # before run; slice: index or name ("mem1")
    res = sim.run(max_cycles=1_000_000)      # -> ChipResult
    res.cycles                               # the done cycle (below)
    res.error                                # None or ChipError(code, slice, pc, cycle)
    res.read_mem(slice, bank, addr, count)   # final memories (also sim.read_mem after the run)

    sim.start(); done = sim.step() ...; res = sim.result()   # the same run, one cycle per step()

Program faults are never raised: they come back in ``ChipResult.error``. Misuse of the API raises
``TypeError``/``ValueError`` (bad arguments) or ``ChipFault`` (running twice, not done within
``max_cycles``: ``ChipTimeout``; ``step`` before ``start`` or after the chip is done, ``result`` before it
is done).

``run`` is ``start`` then ``step`` until it returns ``True`` (checking ``max_cycles`` before each cycle), then
``result``. ``golden.system.SystemSim`` steps several chips that way in lock step, joined by links
(``connect``, below).

Semantics (what the RTL must match cycle for cycle)
---------------------------------------------------
Cycle ``t`` counts from 0, the cycle on which every queue issues its first instruction.

* **Streams.** ``E[s][p](t)`` is the value slice ``p`` sees on eastward stream ``s`` during cycle ``t``;
  ``E[s][p+1](t+1)`` is what slice ``p`` writes on ``E[s]`` during ``t`` if it writes, else ``E[s][p](t)``;
  westward streams mirror it; every register is 0 at cycle 0 and the edges inject 0 (``E[s][0](t) = 0``,
  ``W[s][P-1](t) = 0``); a value written eastward by the last slice (westward by slice 0) leaves the chip.
  A slice reading a stream sees the value arriving at its position, never its own write of that cycle.
* **Queues.** A queue issues at most one instruction per cycle, in order from pc 0 at cycle 0. ``NOP n``
  issued at ``t`` makes the next issue ``t + n``; every other instruction ``t + 1``; ``HALT`` stops the
  queue. A queue holds ``queue_depth`` words: the loaded program followed by zero words (so running off
  the program into unloaded words is ``ILLEGAL_OPCODE`` at ``pc = len(program)``); a queue whose pc
  reaches ``queue_depth`` (the whole queue was loaded and none of it halted) faults ``QUEUE_OVERRUN`` with
  ``pc = queue_depth``. ``load`` refuses a program longer than ``queue_depth`` (``ValueError``).
  The fault report's pc is ``PC_BITS + 1`` bits wide so that ``pc = queue_depth = MAX_QUEUE_DEPTH`` fits.
* **Operations.** An instruction issued at ``t`` occupies its unit for ``timing(instr).busy`` cycles; item ``i`` is
  sampled from its input stream(s) at ``t + first_in + i`` and written on its output stream at ``t + first_out + i``.
  READ presents word ``addr + i``'s address at ``t + MEM_DECODE_STAGES + i`` and reads the memory as stored before
  that cycle (a WRITE stores at the end of the cycle it samples, so a read of the same word in the same cycle sees the
  old value). READX samples its index ``x`` (lane ``lane`` of ``src``) at ``t + MEM_INDEX_OFFSET`` and presents word
  ``addr + x + i`` one cycle later than a READ would; WRITEX samples ``x`` (lane ``lane`` of ``src2``) with its data
  item 0 and stores item ``i`` at ``addr + x + i``. LOADW item ``i`` is weight row ``i`` (low bytes of lanes ``0 …
  mxu_cols - 1``); MATMUL item ``i`` is an activation (low bytes of lanes ``0 … mxu_rows - 1``) with accumulator
  ``addr + i``, ``swap`` on item 0 only, ``acc``/``emit`` on all, and the MXU contract of ``spec/mxu.py`` with those
  sampling cycles; its result (``mxu_cols`` int32 lanes, the other lanes 0) is written on ``dst``
  ``MXUParams.latency`` cycles after the activation was sampled. VOP computes ``golden.vxu`` on the sampled operands
  with the SETQ registers and table in force at the sampling cycle (with ``chain``, operand ``a`` is the VXU's
  latest result: the last vector it writes on its output during the sampling cycle or before, 0 before any);
  SETQ issued at ``t`` is in force for operands sampled from ``t + 1``; LOADLUT vector ``j`` sets entries ``j·L …``
  (low bytes, lanes past entry 255 ignored) when it is sampled. At cycle 0 every MEM word not written by
  ``write_mem``, every MXU weight and accumulator, the LUT, the VXU's latest result and the SETQ registers are 0
  (``spec.isa.REQUANT_RESET``, ``spec.isa.LUT_RESET``). The RTL starts every run (host START) from this state
  except the MXU accumulators, which are SRAM and keep their words: a program must write an accumulator
  (MATMUL without ``acc``) before it adds to it.
* **Activity span** of an issued instruction, the cycles in which it does something: from its issue cycle
  ``t`` through ``t + span - 1`` with ``span = max(busy, first_in + items, first_out + items)``, where a
  MATMUL's result cycles count whether or not it emits (its accumulator write-back is a result in flight):
  ``first_out = MXU_INPUT_OFFSET + latency`` for every MATMUL. HALT's span is its issue cycle (``busy`` 1).
  (``activity_span()`` below.)
* **Done.** ``cycles = D`` where ``D`` is the first cycle at which every queue has issued its HALT and every
  issued instruction's activity span has ended: ``D = 1 + max(t_issue + span - 1)`` over every instruction
  issued (HALTs included). Equivalently the chip ran cycles ``0 … D - 1``. Values still travelling on the
  streams at ``D`` are not waited for (no unit will read them).
* **Faults.** Detected during cycle ``t``: decode/static faults (``spec.isa.fault``: ILLEGAL_OPCODE, BAD_FIELD,
  BAD_BANK, BAD_ADDRESS, BAD_STREAM) and UNIT_BUSY when an instruction is at the head of a queue that issues at ``t``
  (the lowest code wins; the instruction does not issue); QUEUE_OVERRUN as above; STREAM_CONFLICT when two operations
  of one slice write one stream at one position in ``t`` (``pc`` of the later-issued one); INDEX_RANGE when a
  READX/WRITEX samples an index in ``t`` that ``spec.isa.index_fault`` refuses (``pc`` of that READX/WRITEX, which
  reads or stores nothing). The error is ``(code, slice, pc, t)``; when several slices fault in one cycle the lowest
  slice index wins (then the lowest code). Cycle ``t`` completes as usual (the running operations do their cycle-``t``
  work, including MEM stores at the end of ``t``), nothing happens from ``t + 1`` on (operations in flight are
  abandoned), and the chip is done: ``cycles = t + 1``. Whether the other slices issue during ``t`` is unobservable
  (no instruction acts on its issue cycle).

  Note: with the present units STREAM_CONFLICT cannot occur (each slice kind has one unit that writes
  streams, and its busy time keeps its own output items apart); the check is kept for future units.
* **Link slices** (docs/multichip.md). A ``link`` slice at index 0 talks to the chip on the west, one at the
  last index to the chip on the east. SEND item ``i`` (``t + LINK_SEND_OFFSET + i·link_interval``) samples
  its stream and puts the vector on the slice's outgoing link; RECV item ``i`` (``t + LINK_RECV_OFFSET +
  i·link_interval``) takes the word arriving on the incoming link in that cycle and writes it onto its
  stream in that cycle. The links are objects ``connect(slice, out=…, into=…)`` attaches (``golden.system``'s
  ``Link``: ``push(u, vector)`` puts a word on it during cycle ``u``; ``take(u)`` returns the word arriving
  during ``u``, or ``None``; ``dropped(u)``, asked after the cycle's operations, says whether a word arrived
  during ``u`` that no RECV took). Faults: a RECV item with nothing arriving is ``RECV_EMPTY`` (its pc); a word
  arriving that no RECV item takes is ``LINK_DROPPED`` on the receiving link slice, with its queue's pc at the
  start of that cycle (also after the chip is done, while a system still runs: ``golden.system``). A link
  slice with no link attached (a lone ``ChipSim``, the ends of a line of chips) leads nowhere: its SEND's first
  sample faults ``LINK_DROPPED`` (the SEND's pc, that cycle) and its RECV's first item ``RECV_EMPTY``, so a
  word is never silently lost nor a zero silently made up.
"""
import bisect
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from golden import vxu as gvxu
from golden.mxu import matmul, wrap_int32
from spec import isa
from spec.config import ChipConfig
from spec.isa import ErrorCode, LinkErrorCode

__all__ = ["ChipFault", "ChipTimeout", "ChipError", "ChipResult", "MXUStepper", "activity_span", "ChipSim"]

DEFAULT_MAX_CYCLES = 1_000_000


class ChipFault(RuntimeError):
    """Misuse of the simulator (not a program fault: those are returned in ``ChipResult.error``)."""


class ChipTimeout(ChipFault):
    """The chip was not done within ``max_cycles``."""


class ChipError(NamedTuple):
    """The sticky error: code (an ``ErrorCode``, or a ``LinkErrorCode`` of a link slice), slice index, program
    counter and the cycle it was detected in."""
    code: ErrorCode
    slice: int
    pc: int
    cycle: int


def _dir(stream):
    return isa.DIRECTIONS.index(stream.direction)


def activity_span(instr, config):
    """Cycles from an instruction's issue cycle through its last activity, inclusive (``OpTiming.span``)."""
    return isa.timing(instr, config).span


# ---- MXU ----------------------------------------------------------------------------------------------
class MXUStepper:
    """Incremental twin of ``golden.mxu.MXUModel`` (without reset: the chip has none), fed cycle by cycle.

    Call ``weight``/``activation`` with non-decreasing cycles and ``results(cycle)`` once per cycle (or
    later): it returns the results of activations presented ``latency`` cycles earlier. An activation's
    weights are fixed when its result is computed, by then every weight write its swap can take (row ``r``
    up to ``swap + r - 1 < swap + latency``) has been presented. ``tests/test_golden_chip.py`` proves it
    equal to ``MXUModel`` on random traces."""

    def __init__(self, params):
        self.params = params
        self.acc = np.zeros((params.acc_depth, params.cols), dtype=np.int32)
        # per slot and row: the cycles of the writes not yet superseded, and their data
        self._w_cycles = [[[] for _ in range(params.rows)] for _ in range(params.weight_slots)]
        self._w_data = [[[] for _ in range(params.rows)] for _ in range(params.weight_slots)]
        self._active = np.zeros((params.rows, params.cols), dtype=np.int8)
        self._pending = deque()

    def weight(self, cycle, row, data, slot=0):
        if not 0 <= row < self.params.rows:
            raise ValueError(f"row must be between 0 and {self.params.rows - 1}, not {row}")
        self._check_slot(slot)
        self._w_cycles[slot][row].append(cycle)
        self._w_data[slot][row].append(np.asarray(data, dtype=np.int8).copy())

    def activation(self, cycle, data, swap=False, acc=False, emit=False, addr=0, tag=None, slot=0):
        if not 0 <= addr < self.params.acc_depth:
            raise ValueError(f"addr must be between 0 and {self.params.acc_depth - 1}, not {addr}")
        self._check_slot(slot)
        self._pending.append((cycle, np.asarray(data, dtype=np.int8).copy(), swap, acc, emit, addr, tag, slot))

    def _check_slot(self, slot):
        if not 0 <= slot < self.params.weight_slots:
            raise ValueError(f"slot must be between 0 and {self.params.weight_slots - 1}, not {slot}")

    def _swap(self, t_s, slot):
        for r in range(self.params.rows):
            cycles, data = self._w_cycles[slot][r], self._w_data[slot][r]
            k = bisect.bisect_right(cycles, self.params.weight_deadline(t_s, r)) - 1
            if k >= 0:
                self._active[r] = data[k]
                # later swaps of the slot come later: writes before k can never be taken again
                del cycles[:k]
                del data[:k]
            else:
                self._active[r] = 0

    def results(self, cycle):
        """``[(out_cycle, addr, data int32[cols], emit, tag)]`` for activations presented at or before
        ``cycle - latency`` not yet returned, in activation order."""
        out = []
        lat = self.params.latency
        while self._pending and self._pending[0][0] + lat <= cycle:
            t_a, x, swap, acc, emit, addr, tag, slot = self._pending.popleft()
            if swap:
                self._swap(t_a, slot)
            y = matmul(x[None, :], self._active)[0]
            v = wrap_int32(self.acc[addr].astype(np.int64) + y) if acc else y
            self.acc[addr] = v
            out.append((t_a + lat, addr, v.copy(), emit, tag))
        return out


# ---- results ------------------------------------------------------------------------------------------
@dataclass
class ChipResult:
    """What a run gives back. ``mems[p]``: MEM slice ``p``'s banks (``banks × depth × L`` int32), ``None``
    for other slices; ``accumulators[p]``: MXU slice ``p``'s accumulator memory, else ``None``;
    ``stream_writes``: with ``run(record=True)``, every stream write as ``(cycle, slice, "E3", lanes)``."""
    config: ChipConfig
    cycles: int
    error: ChipError | None
    mems: tuple
    accumulators: tuple
    stream_writes: list | None = None

    @property
    def ok(self):
        return self.error is None

    def read_mem(self, slice, bank, addr, count=1):
        p = _mem_slice(self.config, slice)
        _check_range(self.config, bank, addr, count)
        return self.mems[p][bank, addr:addr + count].copy()


def _mem_slice(config, slice):
    p = config.slice_index(slice)
    if config.slices[p] != "mem":
        raise ValueError(f"slice {config.slice_names[p]} is a {config.slices[p].upper()} slice, not a MEM slice")
    return p


def _check_range(config, bank, addr, count):
    for name, value in (("bank", bank), ("addr", addr), ("count", count)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{name} must be an integer, not {value!r}")
    if not 0 <= bank < config.mem_banks:
        raise ValueError(f"bank must be between 0 and {config.mem_banks - 1}, not {bank}")
    if count < 1 or not 0 <= addr or addr + count > config.mem_depth:
        raise ValueError(f"addr .. addr + count - 1 must lie in 0 .. {config.mem_depth - 1}, "
                         f"not {addr} .. {addr + count - 1}")


# ---- operations ---------------------------------------------------------------------------------------
class _Op:
    """An issued operation on slice ``p``: ``step(u)`` does its work of cycle ``u``."""

    def __init__(self, sim, p, instr, t, pc):
        self.sim, self.p, self.instr, self.t, self.pc = sim, p, instr, t, pc
        self.tm = isa.timing(instr, sim.config)
        self.last = t + activity_span(instr, sim.config) - 1

    def _item(self, u, first, items):
        if first is None:
            return None
        d = u - self.t - first
        if d < 0 or d % self.tm.interval:
            return None
        i = d // self.tm.interval
        return i if i < items else None

    def item_in(self, u):
        """The input item sampled at ``u``, or ``None``."""
        return self._item(u, self.tm.first_in, self.tm.items_in)

    def item_out(self, u):
        """The output item written at ``u`` (by the item schedule alone), or ``None``."""
        return self._item(u, self.tm.first_out, self.tm.items)

    def index(self, u, stream):
        """A READX/WRITEX's index ``x``, sampled during ``t + MEM_INDEX_OFFSET`` (else ``None``): lane ``lane`` of
        ``stream``; ``None`` too when it faults ``INDEX_RANGE`` (reported for this cycle)."""
        if u != self.t + isa.MEM_INDEX_OFFSET:
            return None
        ins = self.instr
        x = int(self.sim._see(self.p, stream)[ins.lane])
        f = isa.index_fault(ins, x, self.sim.config)
        if f is not None:
            self.sim._faults.append((self.p, f.code, self.pc))
            self.x = None
            return None
        self.x = x
        return x


class _Read(_Op):
    def __init__(self, *a):
        super().__init__(*a)
        self.out = {}

    def step(self, u):
        sim, ins = self.sim, self.instr
        i = u - self.t - isa.MEM_DECODE_STAGES
        if 0 <= i < ins.count:   # address presented: the memory as stored before u
            self.out[self.t + self.tm.first_out + i] = sim.mem[self.p][ins.bank, ins.addr + i].copy()
        if u in self.out:
            sim._emit(self.p, ins.dst, self.out.pop(u), self.pc)


class _ReadX(_Op):
    """READX: the index during ``t + 1``, word ``addr + x + i`` presented during ``t + 2 + i``."""

    def __init__(self, *a):
        super().__init__(*a)
        self.out = {}
        self.x = None

    def step(self, u):
        sim, ins = self.sim, self.instr
        self.index(u, ins.src)
        i = u - self.t - isa.MEM_INDEX_OFFSET - isa.MEM_DECODE_STAGES
        if self.x is not None and 0 <= i < ins.count:
            self.out[self.t + self.tm.first_out + i] = sim.mem[self.p][ins.bank, ins.addr + self.x + i].copy()
        if u in self.out:
            sim._emit(self.p, ins.dst, self.out.pop(u), self.pc)


class _WriteX(_Op):
    """WRITEX: the index with data item 0 (``t + 1``); item ``i`` stored into word ``addr + x + i``."""

    def __init__(self, *a):
        super().__init__(*a)
        self.x = None

    def step(self, u):
        ins = self.instr
        self.index(u, ins.src2)
        i = self.item_in(u)
        if i is not None and self.x is not None:
            self.sim._stores.append((self.p, ins.bank, ins.addr + self.x + i, self.sim._see(self.p, ins.src)))


class _Write(_Op):
    def step(self, u):
        i = self.item_in(u)
        if i is not None:
            ins = self.instr
            self.sim._stores.append((self.p, ins.bank, ins.addr + i, self.sim._see(self.p, ins.src)))


def _next_slot(sim, p, kind):
    """The weight slot of the slice's next LOADW (``kind`` 0) or swapping MATMUL (1): each takes the slots in
    turn, from 0 (``spec.isa``, LOADW)."""
    n = sim.mxu_turns[p][kind]
    sim.mxu_turns[p][kind] = n + 1
    return n % sim.config.mxu_weight_slots


class _LoadW(_Op):
    def __init__(self, *a):
        super().__init__(*a)
        self.slot = _next_slot(self.sim, self.p, 0)

    def step(self, u):
        i = self.item_in(u)
        if i is not None:
            sim = self.sim
            v = sim._see(self.p, self.instr.src)[:sim.config.mxu_cols]
            sim.mxu[self.p].weight(u, i, gvxu.low_byte(v), self.slot)


class _MatMul(_Op):
    def __init__(self, *a):
        super().__init__(*a)
        self.slot = _next_slot(self.sim, self.p, 1) if self.instr.swap else 0

    def step(self, u):
        i = self.item_in(u)
        if i is not None:
            sim, ins = self.sim, self.instr
            x = gvxu.low_byte(sim._see(self.p, ins.src)[:sim.config.mxu_rows])
            sim.mxu[self.p].activation(u, x, swap=ins.swap and i == 0, acc=ins.acc, emit=ins.emit,
                                       addr=ins.addr + i, tag=(ins.dst, self.pc), slot=self.slot)


class _Vop(_Op):
    def __init__(self, *a):
        super().__init__(*a)
        self.out = {}
        self.held = None      # a spread's item 0 operand

    def step(self, u):
        sim, ins = self.sim, self.instr
        i = self.item_in(u)
        if i is not None:
            v = sim.vxu[self.p]
            a = _latest_result(v, u) if ins.chain else sim._see(self.p, ins.src)
            b = sim._see(self.p, ins.src2) if ins.src2 is not None else None
            if i == 0:
                self.held = a     # a spread's every item reads item 0's operand
            out = self.t + self.tm.first_out + i
            self.out[out] = v["results"][out] = gvxu.execute(ins.vop, a, b, v["params"], v["table"], item=i,
                                                             held=self.held)
        if u in self.out:
            _latest_result(sim.vxu[self.p], u - 1)     # forget the results before this one (kept: the latest)
            sim._emit(self.p, ins.dst, self.out.pop(u), self.pc)


def _latest_result(v, u):
    """A VXU's latest result at cycle ``u``: the last vector it puts on its output during ``u`` or before (every
    result is known from its sampling cycle, ``VXU_PIPELINE`` cycles ahead); zeros before the first."""
    done = [k for k in v["results"] if k <= u]
    if done:
        v["last"] = v["results"][max(done)]
        for k in done:
            del v["results"][k]
    return v["last"]


class _LoadLut(_Op):
    def step(self, u):
        j = self.item_in(u)
        if j is not None:
            sim = self.sim
            L = sim.config.lanes
            n = min(L, isa.LUT_ENTRIES - j * L)
            sim.vxu[self.p]["table"][j * L:j * L + n] = gvxu.low_byte(sim._see(self.p, self.instr.src)[:n])


class _SetQ(_Op):
    def step(self, u):
        if u == self.t:   # in force for operands sampled from t + 1: applied at the end of cycle t
            ins = self.instr
            self.sim._setq.append((self.p, gvxu.RequantParams(ins.mult, ins.shift, ins.zp)))


class _Send(_Op):
    """SEND: item ``i`` sampled during ``t + LINK_SEND_OFFSET + i·link_interval`` onto the outgoing link."""

    def step(self, u):
        if self.item_in(u) is not None:
            sim = self.sim
            link = sim._links[self.p][0]
            if link is None:
                sim._faults.append((self.p, LinkErrorCode.LINK_DROPPED, self.pc))
            else:
                link.push(u, sim._see(self.p, self.instr.src).copy())


class _Recv(_Op):
    """RECV: item ``i`` takes the word arriving during ``t + LINK_RECV_OFFSET + i·link_interval`` and writes
    it onto ``dst`` in that cycle."""

    def step(self, u):
        if self.item_out(u) is not None:
            sim = self.sim
            link = sim._links[self.p][1]
            v = None if link is None else link.take(u)
            if v is None:
                sim._faults.append((self.p, LinkErrorCode.RECV_EMPTY, self.pc))
            else:
                sim._emit(self.p, self.instr.dst, v, self.pc)


_OPS = {"READ": _Read, "WRITE": _Write, "READX": _ReadX, "WRITEX": _WriteX, "LOADW": _LoadW, "MATMUL": _MatMul,
        "VOP": _Vop, "LOADLUT": _LoadLut, "SETQ": _SetQ, "SEND": _Send, "RECV": _Recv}


class _Queue:
    def __init__(self, words, depth):
        self.words = list(words)
        self.depth = depth
        self.pc = 0
        self.next_issue = 0
        self.halted = False

    def word(self):
        return self.words[self.pc] if self.pc < len(self.words) else 0


# ---- the chip -----------------------------------------------------------------------------------------
class ChipSim:
    """Cycle-stepped golden model of one chip (see the module docstring for the exact semantics)."""

    def __init__(self, config):
        if not isinstance(config, ChipConfig):
            raise TypeError(f"config must be a spec.config.ChipConfig, not {config!r}")
        self.config = c = config
        P = len(c.slices)
        self.mem = [np.zeros((c.mem_banks, c.mem_depth, c.lanes), np.int32) if k == "mem" else None
                    for k in c.slices]
        self.mxu = [MXUStepper(c.mxu) if k == "mxu" else None for k in c.slices]
        self.mxu_turns = [[0, 0] for _ in c.slices]    # LOADWs and swapping MATMULs issued, per MXU slice
        self.vxu = [{"params": gvxu.RESET_REQUANT, "table": np.full(isa.LUT_ENTRIES, isa.LUT_RESET, np.int8),
                     "results": {}, "last": np.zeros(c.lanes, np.int32)}
                    if k == "vxu" else None for k in c.slices]
        self.programs = [[isa.encode(isa.Instruction("HALT"))] for _ in range(P)]
        self._links = {p: (None, None) for p in c.link_ends.values()}
        self._ran = False
        self._started = False
        self._cycles = None

    def connect(self, slice, out=None, into=None):
        """Attach links to link slice ``slice`` (before the run): ``out`` carries its SENDs' words, ``into``
        brings the words its RECVs take (see the module docstring; ``golden.system.Link``). ``None``: that
        direction leads nowhere."""
        p = self.config.slice_index(slice)
        if self.config.slices[p] != "link":
            raise ValueError(f"slice {self.config.slice_names[p]} is a {self.config.slices[p].upper()} slice, "
                             f"not a link slice")
        if self._ran:
            raise ChipFault("connect links before the run")
        self._links[p] = (out, into)

    # ---- loading ------------------------------------------------------------------------------------
    def load(self, programs):
        """Load one word list per slice (``config.slices`` order), as ``spec.asm.assemble`` returns."""
        c = self.config
        out = []
        for p, words in enumerate(isa.check_programs(programs, c)):
            if len(words) > c.queue_depth:
                raise ValueError(f"slice {c.slice_names[p]} has {len(words)} words, more than queue_depth = "
                                 f"{c.queue_depth} of config {c.name}")
            for w in words:
                if not isinstance(w, (int, np.integer)) or isinstance(w, bool) or not 0 <= w < 1 << isa.WORD_BITS:
                    raise ValueError(f"slice {c.slice_names[p]}: words must be integers in 0 .. 2**64 - 1, "
                                     f"not {w!r}")
            out.append([int(w) for w in words])
        self.programs = out

    def write_mem(self, slice, bank, addr, vectors):
        """Store ``vectors`` (``n × L`` int32 values, or one vector of ``L``) at words ``addr …`` of a bank."""
        p = _mem_slice(self.config, slice)
        v = np.asarray(vectors)
        if v.ndim == 1:
            v = v[None, :]
        if v.ndim != 2 or v.shape[1] != self.config.lanes:
            raise ValueError(f"vectors must have shape (n, {self.config.lanes}), not {np.shape(vectors)}")
        v = gvxu._as_int64(v, "vectors")
        _check_range(self.config, bank, addr, len(v))
        self.mem[p][bank, addr:addr + len(v)] = v.astype(np.int32)

    def read_mem(self, slice, bank, addr, count=1):
        """Words ``addr … addr + count - 1`` of a bank (``count × L`` int32)."""
        p = _mem_slice(self.config, slice)
        _check_range(self.config, bank, addr, count)
        return self.mem[p][bank, addr:addr + count].copy()

    # ---- per-cycle helpers --------------------------------------------------------------------------
    def _see(self, p, stream):
        return self._cur[_dir(stream), stream.index, p]

    def _emit(self, p, stream, vector, pc):
        self._writes.setdefault((_dir(stream), stream.index, p), []).append((np.asarray(vector, np.int32), pc))

    # ---- running ------------------------------------------------------------------------------------
    def run(self, max_cycles=DEFAULT_MAX_CYCLES, record=False):
        """Run from cycle 0 until done (module docstring); ``ChipTimeout`` if not done within ``max_cycles``."""
        self.start(record=record)
        while True:
            if self._t >= max_cycles:
                raise ChipTimeout(f"the chip was not done within max_cycles = {max_cycles}")
            if self.step():
                return self.result()

    def start(self, record=False):
        """Begin a run: the next ``step`` simulates cycle 0. With ``record``, the result lists every stream
        write. A ``ChipSim`` runs once."""
        if self._ran:
            raise ChipFault("this ChipSim has already run; make a new one")
        self._ran = self._started = True
        c = self.config
        P, S, L = len(c.slices), c.streams, c.lanes
        self._queues = [_Queue(w, c.queue_depth) for w in self.programs]
        self._busy = [dict() for _ in range(P)]        # unit -> first cycle it is free
        self._ops = []
        self._last_activity = -1
        self._log = [] if record else None
        self._cur = np.zeros((2, S, P, L), np.int32)
        self._t = 0
        self._cycles = None           # set when done (or stopped by a fault)
        self._error = None

    @property
    def cycle(self):
        """The cycle the next ``step`` simulates (after the run: the last cycle simulated)."""
        return self._t

    @property
    def done(self):
        """The run has ended: every queue halted with nothing in flight, or a fault stopped it."""
        return self._cycles is not None

    def step(self):
        """Simulate cycle ``cycle``; ``True`` when the chip is done after it (done or stopped by a fault)."""
        if not self._started:
            raise ChipFault("call start() before step()")
        if self.done:
            raise ChipFault(f"the chip is done (cycles = {self._cycles}); read result()")
        return self._conclude(self._cycle())

    def result(self):
        """The ``ChipResult`` of the run (``ChipFault`` until it is done)."""
        if not self.done:
            raise ChipFault("the run is not done: step() until it returns True, or run()")
        return ChipResult(self.config, self._cycles, self._error,
                          tuple(None if m is None else m.copy() for m in self.mem),
                          tuple(None if m is None else m.acc.copy() for m in self.mxu), self._log)

    # ---- one cycle (golden.system drives these directly) --------------------------------------------
    def _conclude(self, faults):
        """After cycle ``_t``'s work: stop on ``faults`` (lowest slice, then lowest code), else finish if done,
        else move on to the next cycle. ``True`` when the chip is done."""
        t = self._t
        if faults:
            p, code, pc = min(faults, key=lambda f: (f[0], f[1]))
            self._stop(ChipError(isa.error_code(code), p, pc, t))
            return True
        if all(q.halted for q in self._queues) and t >= self._last_activity:
            self._cycles = t + 1
            return True
        self._t += 1
        return False

    def _stop(self, error):
        """End the run at the end of cycle ``_t`` (a fault here or elsewhere in a system)."""
        self._cycles = self._t + 1
        self._error = error

    def _link_faults(self, pcs):
        """``LINK_DROPPED`` for each incoming link whose word of this cycle no RECV took."""
        return [(p, LinkErrorCode.LINK_DROPPED, pcs[p]) for p, (_, into) in self._links.items()
                if into is not None and into.dropped(self._t)]

    def _watch(self, t):
        """A done chip in a running system, cycle ``t``: its links still deliver (a word is ``LINK_DROPPED``).
        Returns the faults; a done chip keeps its cycles."""
        faults = [(p, LinkErrorCode.LINK_DROPPED, self._queues[p].pc) for p, (_, into) in self._links.items()
                  if into is not None and into.dropped(t)]
        if faults and self._error is None:
            p, code, pc = min(faults, key=lambda f: (f[0], f[1]))
            self._error = ChipError(isa.error_code(code), p, pc, t)
        return faults

    def _cycle(self):
        """Do cycle ``_t``'s work (issue, operations, end of cycle); return its faults ``[(slice, code, pc)]``."""
        c = self.config
        P, L = len(c.slices), c.lanes
        kinds = c.slices
        queues, busy, t = self._queues, self._busy, self._t
        self._writes, self._stores, self._setq = {}, [], []
        faults = self._faults = []
        pcs = [q.pc for q in queues]
        # ---- issue ----
        for p, q in enumerate(queues):
            if q.halted or t < q.next_issue:
                continue
            if q.pc >= q.depth:
                faults.append((p, ErrorCode.QUEUE_OVERRUN, q.pc))
                continue
            instr = isa.decode(q.word())
            f = isa.fault(instr, c, kinds[p])
            if f is not None:
                faults.append((p, f.code, q.pc))
                continue
            tm = isa.timing(instr, c)
            if tm.unit == "queue":
                if instr.op == "HALT":
                    q.halted = True
                q.next_issue = t + tm.busy
                self._last_activity = max(self._last_activity, t)
            else:
                if busy[p].get(tm.unit, 0) > t:
                    faults.append((p, ErrorCode.UNIT_BUSY, q.pc))
                    continue
                busy[p][tm.unit] = t + tm.busy
                op = _OPS[instr.op](self, p, instr, t, q.pc)
                self._ops.append(op)
                self._last_activity = max(self._last_activity, op.last)
                q.next_issue = t + 1
            q.pc += 1
        # ---- operations ----
        for op in self._ops:
            op.step(t)
        for p, m in enumerate(self.mxu):
            if m is None:
                continue
            for _, _, data, emit, (dst, pc) in m.results(t):
                if emit:
                    v = np.zeros(L, np.int32)
                    v[:c.mxu_cols] = data
                    self._emit(p, dst, v, pc)
        faults += self._link_faults(pcs)
        for (_d, _s, p), ws in self._writes.items():
            if len(ws) > 1:
                faults.append((p, ErrorCode.STREAM_CONFLICT, max(pc for _, pc in ws)))
        if self._log is not None:
            for (d, s, p), ws in sorted(self._writes.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1])):
                for v, _ in ws:
                    self._log.append((t, p, f"{isa.DIRECTIONS[d]}{s}", tuple(int(x) for x in v)))
        # ---- end of cycle ----
        for p, bank, addr, v in self._stores:
            self.mem[p][bank, addr] = v
        for p, params in self._setq:
            self.vxu[p]["params"] = params
        nxt = np.zeros_like(self._cur)
        nxt[0, :, 1:] = self._cur[0, :, :-1]
        nxt[1, :, :-1] = self._cur[1, :, 1:]
        for (d, s, p), ws in self._writes.items():
            q = p + 1 if d == 0 else p - 1
            if 0 <= q < P:
                nxt[d, s, q] = ws[-1][0]
        self._cur = nxt
        self._ops = [op for op in self._ops if op.last > t]
        return faults
