"""Constrained-random regression: random legal (and deliberately faulting) programs on the chip RTL
(Verilator) against the golden model.

``python -m verify.regress --seeds N [--start S] [--config tiny] [--jobs J] [--batch B]`` (``make regress
SEEDS=N START=S REGRESS_CONFIG=tiny``). Every seed ``s`` gives one *case* (``make_case(config, s)``, a pure
function of the configuration and the seed):

* ``kernel`` (about 35 %): a compiled kernel of ``compiler.kernels`` (GEMM, GEMM + bias + requant + ReLU,
  two-layer MLP, table activation, argmax) with random shapes that straddle the MXU's tile sizes and random
  int8 operands that always hold -128 and 127; golden must also give the numpy expectation and the
  compiler's predicted cycle count;
* ``random`` (about 45 %): a random program built with ``compiler.schedule.ProgramBuilder`` (so it is legal:
  no unit is issued to while busy): dataflows MEM -> (VXU VOP | MXU LOADW/MATMUL | nothing) -> MEM timed so
  the consumer samples the producer's items, plus stray READs, WRITEs, READXs, WRITEXs, LOADWs, MATMULs
  (``acc`` only on accumulators the program wrote before), VOPs of every operation, SETQs (random multiplier,
  shift, zero point), LOADLUTs and NOPs, on random streams of both directions; golden must give the predicted cycles
  (or ``INDEX_RANGE``: a stray READX/WRITEX's index is whatever its stream held);
* ``fault`` (about 20 %): such a program with one word replaced on purpose so that it stops with a known
  error (``ILLEGAL_OPCODE``, ``BAD_FIELD``, ``BAD_BANK``, ``BAD_ADDRESS``, ``BAD_STREAM``, ``UNIT_BUSY`` or
  ``QUEUE_OVERRUN``) at a known slice and pc; golden must report exactly that error.

MEM starts random (int8 values with -128/127, full int32 values with the extremes, or zeros), and every
word of every MEM slice is written by the host before each case, so a case does not depend on the ones
before it. Some cases also send host commands that must do nothing (bad slice/bank/address, unused ops) or
answer zeros (a READ_MEM of a non-MEM word).

Each case becomes host commands (``sim.chip_run``'s order: queues, data, START, STATUS, a read-back of
every MEM word); their expected responses come from ``golden.host.HostModel`` (``golden.chip.ChipSim``
behind the host edge). Cases run in **batches** on one harness process (a harness run costs about 2 s of
simulator start-up, the cases a few ms): seeds ``k·B … k·B + B - 1`` (``B = --batch``, default 10; fewer
for large memories) play back to back with batch ``k``'s valid/ready back-pressure percentages and harness
seed (``backpressure``). Every response is compared (cycles, error code/slice/pc, every MEM word). A run
that starts inside a batch replays the batch's earlier seeds first, so ``--start S --seeds 1`` gives the
harness the exact command stream and stall pattern seed ``S`` had in any larger run.

On a failure the first mismatch of the seed is printed with a one-line reproduction command; the exit
status is 1.
"""
from __future__ import annotations

import argparse
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from compiler import kernels
from compiler.schedule import ProgramBuilder
from spec import isa
from spec.config import PRESETS, ChipConfig
from spec.host import HostOp, pack_command, unpack_status
from spec.isa import ErrorCode, Instruction, Stream

__all__ = ["Case", "SeedResult", "make_case", "case_commands", "backpressure", "batch_size", "run_batch",
           "run_regression", "repro_command", "main"]

DEFAULT_BATCH = 10
MAX_BATCH_COMMANDS = 60_000          # the harness holds 65536 commands (sim.chip_verilator.MIN_DEPTH)
#: (valid %, ready %) classes of the back-pressure of a batch; the last is drawn uniformly at random.
BACKPRESSURE = [(100, 100), (50, 100), (100, 30), (20, 20), (70, 5), (None, None)]
KINDS = ("kernel", "random", "fault")


# ---- cases --------------------------------------------------------------------------------------------
@dataclass
class Case:
    """One seed's program, data and expectations."""
    seed: int
    kind: str                      #: kernel | random | fault
    what: str                      #: a short description
    programs: list                 #: one word list per slice (each at least one word)
    mem: list                      #: per slice: banks x depth x L int64 initial contents, None for non-MEM
    junk: list = field(default_factory=list)        #: extra host commands that must do nothing/answer 0
    expected_error: dict | None = None              #: fault cases: code/slice/pc golden must give
    predicted_cycles: int | None = None             #: legal programs: golden's cycle count
    kernel: object = None                           #: kernel cases: the compiler.kernels.Kernel


def _rng(config, seed, salt=0):
    return np.random.default_rng([int(seed), zlib.crc32(config.name.encode()), salt])


def _int8(rng, shape):
    a = rng.integers(-128, 128, shape).astype(np.int8)
    a.flat[0] = -128
    a.flat[-1] = 127
    return a


def _vectors(rng, n, lanes, mode=None):
    """``n x lanes`` int64 values: int8 range, full int32 range (with the extremes), or small."""
    mode = mode if mode is not None else rng.choice(["int8", "int32", "small"])
    if mode == "int8":
        v = rng.integers(-128, 128, (n, lanes))
        extremes = [-128, 127]
    elif mode == "int32":
        v = rng.integers(-2**31, 2**31, (n, lanes))
        extremes = [-2**31, 2**31 - 1, -1, 0]
    else:
        v = rng.integers(-8, 8, (n, lanes))
        extremes = [0]
    k = min(v.size, rng.integers(0, 4))
    if k:
        v.flat[rng.choice(v.size, k, replace=False)] = rng.choice(extremes, k)
    return v.astype(np.int64)


def _random_mem(rng, c, density=None):
    density = density if density is not None else rng.choice([0.0, 0.3, 1.0])
    out = []
    for kind in c.slices:
        if kind != "mem":
            out.append(None)
            continue
        m = np.zeros((c.mem_banks, c.mem_depth, c.lanes), np.int64)
        if density:
            mode = rng.choice(["int8", "int32", "small"])
            vals = _vectors(rng, c.mem_banks * c.mem_depth, c.lanes, mode).reshape(m.shape)
            keep = rng.random((c.mem_banks, c.mem_depth)) < density
            m[keep] = vals[keep]
        out.append(m)
    return out


def _kernel_case(rng, c, seed):
    R, C = c.mxu_rows, c.mxu_cols

    def dim(tile, lo=1):
        # around the tile boundaries: t-1, t, t+1 for t = tile, 2 tile, 3 tile, or anything small
        if rng.random() < 0.6:
            t = tile * int(rng.integers(1, 4))
            return max(lo, t + int(rng.integers(-1, 2)))
        return int(rng.integers(lo, 3 * tile + 2))

    for _ in range(20):
        name = rng.choice(["gemm", "gemm", "dense", "mlp", "lut", "argmax"])
        try:
            if name == "gemm":
                M, K, N = int(rng.integers(1, 3 * R + 6)), dim(R), dim(C)
                k = kernels.gemm(c, _int8(rng, (M, K)), _int8(rng, (K, N)))
                what = f"gemm {M}x{K}x{N}"
            elif name == "dense":
                M, K, N = int(rng.integers(1, 2 * R + 6)), dim(R), dim(C)
                bias = rng.integers(-40_000, 40_000, N)
                if N > 2:
                    bias[0] = -2**31
                mult, shift, zp = int(rng.integers(1, 2**31)) >> int(rng.integers(0, 12)) or 1, \
                    int(rng.integers(0, 4)), int(rng.integers(-128, 128))
                k = kernels.gemm_bias_requant_relu(c, _int8(rng, (M, K)), _int8(rng, (K, N)), bias, mult, shift, zp)
                what = f"gemm+bias+requant+relu {M}x{K}x{N} q=({mult},{shift},{zp})"
            elif name == "mlp":
                M, K, H, N = int(rng.integers(1, 2 * R + 4)), dim(R), dim(C), dim(C)
                b1 = rng.integers(-20_000, 20_000, H)
                q = (int(rng.integers(1, 2**31)) >> int(rng.integers(4, 14)) or 1, 0, int(rng.integers(-8, 8)))
                k = kernels.mlp(c, _int8(rng, (M, K)), _int8(rng, (K, H)), b1, q, _int8(rng, (H, N)))
                what = f"mlp {M}x{K}x{H}x{N}"
            elif name == "lut":
                n = int(rng.integers(1, 24))
                x = _vectors(rng, n, c.lanes, rng.choice(["int8", "int32"]))
                k = kernels.lut_activation(c, x, rng.integers(-128, 128, isa.LUT_ENTRIES))
                what = f"lut x{n}"
            else:
                n = int(rng.integers(1, 24))
                v = _vectors(rng, n, c.lanes, rng.choice(["int32", "small"]))
                k = kernels.argmax(c, v)
                what = f"argmax x{n}"
        except ValueError:      # does not fit this configuration's memories: draw another
            continue
        if any(len(w) > c.queue_depth for w in k.program.words):
            continue
        mem = _random_mem(rng, c, density=rng.choice([0.0, 0.5]))
        for s, bank, addr, words in k.inputs:
            p = c.slice_index(s)
            mem[p][bank, addr:addr + len(words)] = np.asarray(words, np.int64)
        return Case(seed, "kernel", what, [list(w) for w in k.program.words], mem,
                    predicted_cycles=k.program.predicted_cycles, kernel=k)
    raise RuntimeError(f"seed {seed}: no kernel fits config {c.name}")


class _Gen:
    """Random legal instructions placed on a ProgramBuilder."""

    def __init__(self, rng, c):
        self.rng, self.c = rng, c
        self.b = ProgramBuilder(c)
        self.mems = list(c.positions("mem"))
        self.mxus = list(c.positions("mxu"))
        self.vxus = list(c.positions("vxu"))
        self.acc_written = {p: set() for p in self.mxus}
        self.full = False

    def count(self, hi=12):
        return int(self.rng.integers(1, hi + 1))

    def stream(self, direction=None):
        d = direction or self.rng.choice(isa.DIRECTIONS)
        return Stream(str(d), int(self.rng.integers(0, self.c.streams)))

    def slack(self):
        return 0 if self.rng.random() < 0.5 else int(self.rng.integers(1, 8))

    def free(self, p, instr):
        u = isa.timing(instr, self.c).unit
        t = self.b.next_issue(p)
        return max(t, self.b.unit_free(p, u)) if u != "queue" else t

    def place(self, items):
        """Place ``[(p, cycle, instr)]`` (cycle order; ``(p, cycle, instr, window)`` for READX/WRITEX), or nothing
        if a queue would overflow."""
        try:
            self.b.place(items)
            return True
        except ValueError:
            self.full = True
            return False

    # -- single instructions at the earliest legal cycle plus slack --
    def mem_read(self, p):
        a = int(self.rng.integers(0, self.c.mem_depth))
        return Instruction("READ", bank=int(self.rng.integers(0, self.c.mem_banks)), addr=a,
                           count=self.count(min(12, self.c.mem_depth - a)), dst=self.stream())

    def mem_write(self, p, count=None, src=None):
        n = count or self.count()
        a = int(self.rng.integers(0, self.c.mem_depth - n + 1))
        return Instruction("WRITE", src=src or self.stream(), bank=int(self.rng.integers(0, self.c.mem_banks)),
                           addr=a, count=n)

    def matmul(self, p, count=None, src=None, dst=None, emit=None, swap=None):
        c, rng = self.c, self.rng
        n = count or self.count()
        a = int(rng.integers(0, c.mxu_acc_depth - n + 1))
        acc = all(x in self.acc_written[p] for x in range(a, a + n)) and rng.random() < 0.6
        emit = bool(rng.random() < 0.7) if emit is None else emit
        swap = bool(rng.random() < 0.5) if swap is None else swap
        self.acc_written[p].update(range(a, a + n))
        return Instruction("MATMUL", src=src or self.stream(), count=n, addr=a, swap=swap, acc=acc, emit=emit,
                           dst=(dst or self.stream()) if emit else None)

    def vop(self, p, count=None, src=None, src2=None, dst=None, op=None):
        op = op or str(self.rng.choice(self.c.vxu_ops))
        binary = isa.VXU_OPS[op].arity == 2
        return Instruction("VOP", vop=op, src=src or self.stream(), src2=(src2 or self.stream()) if binary else None,
                           count=count or self.count(), dst=dst or self.stream())

    def setq(self):
        rng = self.rng
        return Instruction("SETQ", mult=int(rng.integers(1, 2**31)) >> int(rng.integers(0, 20)) or 1,
                           shift=int(rng.integers(0, 32)) if rng.random() < 0.3 else int(rng.integers(0, 3)),
                           zp=int(rng.integers(-128, 128)))

    def single(self):
        c, rng = self.c, self.rng
        choices = ["read", "write", "nop"] * 2 + ["readx", "writex"] + ["loadw", "matmul"] * 2 * bool(self.mxus) \
            + ["vop", "setq", "loadlut"] * 2 * bool(self.vxus)
        what = rng.choice(choices)
        window = None
        if what in ("readx", "writex"):     # an index from whatever the stream holds: often INDEX_RANGE
            p = int(rng.choice(self.mems))
            n = self.count(4)
            a = int(rng.integers(0, self.c.mem_depth - n + 1))
            lane = int(rng.integers(0, min(c.lanes, 1 << isa.FIELDS["lane"].width)))
            bank = int(rng.integers(0, c.mem_banks))
            ins = (Instruction("READX", src=self.stream(), bank=bank, addr=a, count=n, lane=lane, dst=self.stream())
                   if what == "readx" else
                   Instruction("WRITEX", src=self.stream(), src2=self.stream(), bank=bank, addr=a, count=n, lane=lane))
            window = c.mem_depth - a
            self.place([(p, self.free(p, ins) + self.slack(), ins, window)])
            return
        if what == "read":
            p = int(rng.choice(self.mems))
            ins = self.mem_read(p)
        elif what == "write":
            p = int(rng.choice(self.mems))
            ins = self.mem_write(p)
        elif what == "nop":
            p = int(rng.integers(0, len(c.slices)))
            ins = Instruction("NOP", count=self.count(6))
        elif what == "loadw":
            p = int(rng.choice(self.mxus))
            ins = Instruction("LOADW", src=self.stream(), count=self.count(c.mxu_rows))
        elif what == "matmul":
            p = int(rng.choice(self.mxus))
            ins = self.matmul(p)
        elif what == "vop":
            p = int(rng.choice(self.vxus))
            ins = self.vop(p)
        elif what == "setq":
            p = int(rng.choice(self.vxus))
            ins = self.setq()
        else:
            p = int(rng.choice(self.vxus))
            ins = Instruction("LOADLUT", src=self.stream())
        self.place([(p, self.free(p, ins) + self.slack(), ins)])

    # -- dataflows: producers timed so that the consumer samples their items --
    def flow(self):
        c, rng = self.c, self.rng
        consumers = ["mem"] + ["vxu"] * bool(self.vxus) * 2 + ["mxu"] * bool(self.mxus) * 2
        kind = rng.choice(consumers)
        n = self.count(10)
        R = isa.MEM_READ_LATENCY
        if kind == "mem":
            if len(self.mems) < 2:
                return
            src, dst = (int(x) for x in rng.choice(self.mems, 2, replace=False))
            h = abs(dst - src)
            s = self.stream("E" if dst > src else "W")
            rd = self.mem_read(src)
            n = rd.count
            wr = self.mem_write(dst, count=n, src=s)
            rd = Instruction("READ", bank=rd.bank, addr=rd.addr, count=n, dst=s)
            # WRITE issued at tw samples during tw + 1 + i what READ at tr wrote during tr + R + i - h
            t = max(self.free(src, rd), self.free(dst, wr) - (R + h - isa.MEM_WRITE_LATENCY)) + self.slack()
            self.place([(src, t, rd), (dst, t + R + h - isa.MEM_WRITE_LATENCY, wr)])
            return
        if kind == "vxu":
            q = int(rng.choice(self.vxus))
            op = str(rng.choice(c.vxu_ops))
            binary = isa.VXU_OPS[op].arity == 2
            srcs = [int(x) for x in rng.choice(self.mems, 2 if binary and len(self.mems) > 1 else 1, replace=False)]
            if binary and len(srcs) < 2:
                op, binary = "relu", False
            dst = int(rng.choice(self.mems))
            streams = [self.stream("E" if q > p else "W") for p in srcs]
            if binary and streams[0] == streams[1]:
                streams[1] = Stream(streams[1].direction, (streams[1].index + 1) % c.streams) \
                    if c.streams > 1 else streams[1]
            out = self.stream("E" if dst > q else "W")
            reads = []
            for s in streams:
                a = int(rng.integers(0, c.mem_depth - n + 1))
                reads.append(Instruction("READ", bank=int(rng.integers(0, c.mem_banks)), addr=a, count=n, dst=s))
            v = Instruction("VOP", vop=op, src=streams[0], src2=streams[1] if binary else None, count=n, dst=out)
            wr = self.mem_write(dst, count=n, src=out)
            # VOP at tv samples during tv + 1 + i: READ on p at tr, seen at q during tr + R + |q - p| + i
            off_r = [R + abs(q - p) - isa.VXU_INPUT_OFFSET for p in srcs]      # tv = tr + off
            off_w = isa.VXU_INPUT_OFFSET + isa.VXU_PIPELINE + abs(dst - q) - isa.MEM_WRITE_LATENCY  # tw = tv + off
            tv = max([self.free(q, v)] + [self.free(p, r) + o for p, r, o in zip(srcs, reads, off_r)]
                     + [self.free(dst, wr) - off_w]) + self.slack()
            items = [(p, tv - o, r) for p, r, o in zip(srcs, reads, off_r)] + [(q, tv, v)]
            if rng.random() < 0.85:
                items.append((dst, tv + off_w, wr))
            if op in ("requant", "requantv") and rng.random() < 0.7:
                sq = self.setq()
                tq = self.free(q, sq)
                if tq + 1 <= tv:
                    items.insert(0, (q, tq, sq))
            self.place(items)
            return
        # MXU: weights READ -> LOADW, activations READ -> MATMUL (swap) -> WRITE
        q = int(rng.choice(self.mxus))
        pw, pa = (int(x) for x in rng.choice(self.mems, 2, replace=len(self.mems) < 2))
        dst = int(rng.choice(self.mems))
        sw, sa = self.stream("E" if q > pw else "W"), self.stream("E" if q > pa else "W")
        out = self.stream("E" if dst > q else "W")
        rows = self.count(c.mxu_rows)
        aw = int(rng.integers(0, c.mem_depth - rows + 1))
        rw = Instruction("READ", bank=int(rng.integers(0, c.mem_banks)), addr=aw, count=rows, dst=sw)
        lw = Instruction("LOADW", src=sw, count=rows)
        aa = int(rng.integers(0, c.mem_depth - n + 1))
        ra = Instruction("READ", bank=int(rng.integers(0, c.mem_banks)), addr=aa, count=n, dst=sa)
        mm = self.matmul(q, count=n, src=sa, dst=out, emit=bool(rng.random() < 0.85), swap=True)
        wr = self.mem_write(dst, count=n, src=out)
        off_w = R + abs(q - pw) - isa.MXU_INPUT_OFFSET         # tl = trw + off_w
        off_a = R + abs(q - pa) - isa.MXU_INPUT_OFFSET         # tm = tra + off_a
        off_o = isa.mxu_result_latency(c) + abs(dst - q) - isa.MEM_WRITE_LATENCY   # twr = tm + off_o
        tl = max(self.free(q, lw), self.free(pw, rw) + off_w) + self.slack()
        if pw == pa:
            # one READ unit: the activations' READ after the weights' READ is done
            tra_min = tl - off_w + rows
        else:
            tra_min = 0
        tm = max(tl + 1, self.free(pa, ra) + off_a, tra_min + off_a,
                 self.free(dst, wr) - off_o if mm.emit else 0) + self.slack()
        items = [(pw, tl - off_w, rw), (q, tl, lw), (pa, tm - off_a, ra), (q, tm, mm)]
        if mm.emit and rng.random() < 0.9:
            items.append((dst, tm + off_o, wr))
        self.place(items)


def _random_program(rng, c, n_ops):
    g = _Gen(rng, c)
    for _ in range(n_ops):
        if g.full:
            break
        if rng.random() < 0.55:
            g.flow()
        else:
            g.single()
    return g.b.finish()


def _word(op, **fields):
    w = isa.OPCODES[op].code << isa.OPCODE_FIELD.lsb
    for name, value in fields.items():
        f = isa.FIELDS[name]
        if f.kind == "count":
            value -= 1
        elif f.kind == "stream":
            value = Stream.parse(value).bits() if not isinstance(value, int) else value
        w |= (value & ((1 << f.width) - 1)) << f.lsb
    return w


def _fault_word(rng, c, kind):
    """A word that faults statically on a slice of ``kind``: ``(word, how)``."""
    S = c.streams
    bad_stream = int(rng.integers(S, isa.MAX_STREAMS)) if S < isa.MAX_STREAMS else None
    options = ["zero", "random", "unassigned", "other_kind", "stray"]
    if kind == "mem":
        options += ["bank", "addr", "stream"]
    elif kind == "mxu":
        options += ["acc_addr", "loadw_rows", "stream"]
    else:
        options += ["vop_code", "setq_zero", "stream", "missing_vop"]
    for _ in range(100):
        how = str(rng.choice(options))
        if how == "zero":
            w = 0
        elif how == "random":
            w = int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2))
        elif how == "unassigned":
            code = int(rng.choice([x for x in range(64) if x not in isa.OPCODE_BY_CODE]))
            w = (code << isa.OPCODE_FIELD.lsb) | int(rng.integers(0, 1 << 20))
        elif how == "other_kind":
            op = str(rng.choice([o.name for o in isa.OPCODES.values() if o.kinds and kind not in o.kinds]))
            w = _word(op, count=1) if "count" in isa.OPCODES[op].fields else _word(op)
        elif how == "stray":
            op = {"mem": "READ", "mxu": "LOADW", "vxu": "SETQ"}[kind] if rng.random() < 0.6 else "NOP"
            w = _word(op, count=1) if op in ("READ", "LOADW", "NOP") else _word(op, mult=1)
            w |= 1 << int(rng.integers(0, 58))
        elif how == "bank":
            w = _word("READ", bank=int(rng.integers(c.mem_banks, isa.MAX_BANKS)), addr=0, count=1, dst=0)
        elif how == "addr":
            a = int(rng.integers(0, c.mem_depth))
            w = _word("WRITE", src=0, bank=0, addr=a, count=c.mem_depth - a + int(rng.integers(1, 5)))
        elif how == "acc_addr":
            a = int(rng.integers(0, c.mxu_acc_depth))
            w = _word("MATMUL", src=0, count=c.mxu_acc_depth - a + int(rng.integers(1, 5)), addr=a)
        elif how == "loadw_rows":
            w = _word("LOADW", src=0, count=c.mxu_rows + int(rng.integers(1, 5)))
        elif how == "stream":
            if bad_stream is None:
                continue
            w = {"mem": _word("READ", bank=0, addr=0, count=1, dst=bad_stream),
                 "mxu": _word("LOADW", src=bad_stream, count=1),
                 "vxu": _word("VOP", vop=0, src=0, src2=bad_stream, count=1, dst=0)}[kind]
        elif how == "vop_code":
            w = _word("VOP", src=0, src2=0, count=1, dst=0) | (int(rng.integers(len(isa.VXU_OPS), 16))
                                                                << isa.FIELDS["vop"].lsb)
        elif how == "setq_zero":
            w = _word("SETQ", shift=int(rng.integers(0, 32)))
        else:       # a VXU operation this configuration lacks (none for the presets: try again)
            missing = [v for v in isa.VXU_OPS if v not in c.vxu_ops]
            if not missing:
                continue
            w = _word("VOP", vop=isa.VXU_OPS[missing[0]].code, src=0, src2=0, count=1, dst=0)
        w &= (1 << 64) - 1
        if isa.fault(isa.decode(w), c, kind) is not None:
            return w, how
    raise AssertionError("no faulting word found")


def _fault_case(rng, c, seed, prog, mem):
    words = [list(w) for w in prog.words]
    sched = prog.schedule
    P = len(c.slices)
    code_kind = rng.choice(["static"] * 5 + ["busy"] * 3 + ["overrun"])
    if code_kind == "busy":
        cands = []
        for p in range(P):
            for j, (t, ins) in enumerate(sched[p]):
                tm = isa.timing(ins, c)
                if tm.unit == "queue":
                    continue
                for j2 in range(j + 1, len(sched[p])):
                    if sched[p][j2][0] < t + tm.busy:
                        cands.append((p, j2, ins))
        if cands:
            p, j, ins = cands[int(rng.integers(0, len(cands)))]
            words[p][j] = isa.encode(ins)
            return words, {"code": "UNIT_BUSY", "slice": c.slice_names[p], "pc": j}, \
                f"UNIT_BUSY: {c.slice_names[p]} pc {j} reissues {ins.op}"
        code_kind = "static"
    if code_kind == "overrun":
        p = int(rng.integers(0, P))
        body = words[p][:-1]                         # without the HALT
        words[p] = body + [isa.encode(Instruction("NOP", count=1))] * (c.queue_depth - len(body))
        return words, {"code": "QUEUE_OVERRUN", "slice": c.slice_names[p], "pc": c.queue_depth}, \
            f"QUEUE_OVERRUN on {c.slice_names[p]}"
    p = int(rng.integers(0, P))
    n = len(words[p])
    j = int(rng.integers(n // 2, n)) if rng.random() < 0.7 else int(rng.integers(0, n))   # mostly after work
    w, how = _fault_word(rng, c, c.slices[p])
    words[p][j] = w
    f = isa.fault(isa.decode(w), c, c.slices[p])
    return words, {"code": f.code.name, "slice": c.slice_names[p], "pc": j}, \
        f"{f.code.name} ({how}, 0x{w:016x}) on {c.slice_names[p]} pc {j}"


def _junk(rng, c):
    """Host commands that must do nothing (or answer a READ_MEM with zeros)."""
    P = len(c.slices)
    non_mem = [p for p in range(P) if c.slices[p] != "mem"]
    out = []
    for _ in range(int(rng.integers(1, 6))):
        what = rng.choice(["read", "write", "unused", "queue"])
        p = int(rng.choice(c.positions("mem")))
        bad = rng.choice(["slice", "kind", "bank", "addr"])
        slice_, bank, addr = p, int(rng.integers(0, c.mem_banks)), int(rng.integers(0, c.mem_depth))
        if bad == "slice":
            slice_ = int(rng.integers(P, 256))
        elif bad == "kind" and non_mem:
            slice_ = int(rng.choice(non_mem))
        elif bad == "bank" and c.mem_banks < 16:
            bank = int(rng.integers(c.mem_banks, 16))
        elif c.mem_depth < 1 << 16:
            addr = int(rng.integers(c.mem_depth, 1 << 16))
        else:
            slice_ = int(rng.integers(P, 256))
        if what == "read":
            out.append(pack_command(c, HostOp.READ_MEM, slice=slice_, bank=bank, addr=addr))
        elif what == "write":
            out.append(pack_command(c, HostOp.WRITE_MEM, slice=slice_, bank=bank, addr=addr,
                                    data=[int(x) for x in _vectors(rng, 1, c.lanes)[0]]))
        elif what == "unused":
            out.append(pack_command(c, int(rng.choice([0, 6])), slice=slice_, bank=bank, addr=addr,
                                    data=int(rng.integers(0, 2**62))))
        else:
            if c.queue_depth < 1 << 16:
                out.append(pack_command(c, HostOp.WRITE_QUEUE, slice=int(rng.integers(0, P)),
                                        addr=int(rng.integers(c.queue_depth, 1 << 16)), data=0))
            else:
                out.append(pack_command(c, HostOp.WRITE_QUEUE, slice=int(rng.integers(P, 256)), addr=0, data=0))
    return out


def make_case(config: ChipConfig, seed: int) -> Case:
    """The case of ``seed`` on ``config`` (module docstring); deterministic."""
    c = config
    rng = _rng(c, seed)
    r = rng.random()
    kind = "kernel" if r < 0.35 else "random" if r < 0.80 else "fault"
    if kind == "kernel" and not (c.positions("mxu") and c.positions("vxu")):
        kind = "random"
    if kind == "kernel":
        case = _kernel_case(rng, c, seed)
    else:
        n_ops = int(rng.integers(3, 16)) if kind == "random" else int(rng.integers(1, 8))
        prog = _random_program(rng, c, n_ops)
        mem = _random_mem(rng, c)
        ops = sum(1 for sch in prog.schedule for _, ins in sch if ins.op not in ("NOP", "HALT"))
        if kind == "random":
            case = Case(seed, "random", f"{ops} instructions, {prog.predicted_cycles} cycles",
                        [list(w) for w in prog.words], mem, predicted_cycles=prog.predicted_cycles)
        else:
            words, err, what = _fault_case(rng, c, seed, prog, mem)
            case = Case(seed, "fault", what, words, mem, expected_error=err)
    if rng.random() < 0.25:
        case.junk = _junk(rng, c)
    return case


# ---- commands and expectations --------------------------------------------------------------------------
def case_commands(config, case):
    """``(commands, labels)``: the host commands of ``case`` and a label per response (``"status"``,
    ``("mem", slice, bank, addr)`` or ``("junk", i)``)."""
    c = config
    cmds, labels = [], []
    for p, words in enumerate(case.programs):
        assert words, "every slice needs a program (a queue keeps its previous one otherwise)"
        for a, w in enumerate(words):
            cmds.append(pack_command(c, HostOp.WRITE_QUEUE, slice=p, addr=a, data=int(w)))
    for p, m in enumerate(case.mem):
        if m is None:
            continue
        for b in range(c.mem_banks):
            for a in range(c.mem_depth):
                cmds.append(pack_command(c, HostOp.WRITE_MEM, slice=p, bank=b, addr=a, data=[int(x) for x in m[b, a]]))
    half = len(case.junk) // 2
    for i, j in enumerate(case.junk[:half]):
        cmds.append(j)
        if j & 7 == HostOp.READ_MEM:
            labels.append(("junk", i))
    cmds.append(pack_command(c, HostOp.START))
    cmds.append(pack_command(c, HostOp.STATUS))
    labels.append("status")
    for p in c.positions("mem"):
        for b in range(c.mem_banks):
            for a in range(c.mem_depth):
                cmds.append(pack_command(c, HostOp.READ_MEM, slice=p, bank=b, addr=a))
                labels.append(("mem", p, b, a))
    for i, j in enumerate(case.junk[half:], half):
        cmds.append(j)
        if j & 7 == HostOp.READ_MEM:
            labels.append(("junk", i))
    return cmds, labels


def _status_text(config, word):
    s = unpack_status(word)
    where = config.slice_names[s["slice"]] if s["slice"] < len(config.slices) else s["slice"]
    err = f"{ErrorCode(s['code']).name} on {where} at pc {s['pc']}" if s["error"] else "none"
    return f"done {s['done']}, cycles {s['cycles']}, error {err}"


def _golden_checks(config, case, host):
    """What golden gave against the case's own expectations (generator, compiler): a message or None."""
    c = config
    res = host.result
    err = None if res.error is None else {"code": res.error.code.name, "slice": c.slice_names[res.error.slice],
                                          "pc": int(res.error.pc)}
    if case.kind == "fault":
        if err != case.expected_error:
            return f"golden error {err}, the case expects {case.expected_error}"
        return None
    if err is not None and err["code"] == "INDEX_RANGE":
        return None             # a stray READX/WRITEX's index is whatever its stream held: a data fault, legal
    if err is not None:
        return f"golden faults ({err}) on a legal program"
    if case.predicted_cycles is not None and res.cycles != case.predicted_cycles:
        return f"golden takes {res.cycles} cycles, the schedule predicts {case.predicted_cycles}"
    k = case.kernel
    if k is not None:
        raw = {name: np.concatenate([res.read_mem(s, bank, addr, n) for s, bank, addr, n in segs])
               for name, segs in k.outputs.items()}
        got = k.unpack(raw)
        if not np.array_equal(got, k.expected):
            return f"golden's {k.name} result differs from the numpy expectation"
    return None


@dataclass
class SeedResult:
    seed: int
    kind: str
    what: str
    ok: bool
    mismatch: str | None = None
    cycles: int | None = None
    error: str | None = None
    golden_seconds: float = 0.0


def _describe(config, label, rtl, gold):
    c = config
    if label == "status":
        return f"STATUS: RTL {_status_text(c, rtl)}; golden {_status_text(c, gold)}"
    if label[0] == "junk":
        return f"READ_MEM of an invalid word (junk command {label[1]}): RTL {rtl:#x}, golden {gold:#x}"
    _, p, b, a = label
    from golden.host import unpack_vector
    r, g = unpack_vector(rtl, c.lanes), unpack_vector(gold, c.lanes)
    lane = int(np.argmax(r != g))
    return (f"{c.slice_names[p]} bank {b} word {a} lane {lane}: RTL {int(r[lane])}, golden {int(g[lane])} "
            f"(RTL {r.tolist()}, golden {g.tolist()})")


def batch_size(config, batch=DEFAULT_BATCH):
    """Seeds per harness run: ``batch``, fewer when a case's commands would not fit the harness."""
    per = 2 * len(config.positions("mem")) * config.mem_banks * config.mem_depth + len(config.slices) * 64 + 16
    return max(1, min(int(batch), MAX_BATCH_COMMANDS // per))


def backpressure(config, batch_index):
    """``(harness seed, valid %, ready %)`` of batch ``batch_index``."""
    rng = _rng(config, batch_index, salt=0xB10C)
    v, r = BACKPRESSURE[int(rng.integers(0, len(BACKPRESSURE)))]
    if v is None:
        v, r = int(rng.integers(1, 101)), int(rng.integers(1, 101))
    return int(rng.integers(1, 2**31)), v, r


def _play_cases(config, chip, cases, corrupt, bp):
    """Play ``cases`` in one harness run; the SeedResults."""
    from golden.host import HostModel
    c = config
    host = HostModel(c)
    cmds, segs, results = [], [], []
    total_cycles = 0
    for case in cases:
        cc, labels = case_commands(c, case)
        t0 = time.perf_counter()
        gold = host.apply(cc)
        gsec = time.perf_counter() - t0
        problem = _golden_checks(c, case, host)
        total_cycles += host.result.cycles
        if case.seed in corrupt:       # self-test of the checker: one golden MEM word made wrong
            i = next(i for i, lab in enumerate(labels) if lab[0] == "mem")
            gold[i] ^= 1 << 3
        segs.append((case, labels, gold, len(cmds), problem, gsec, host.result))
        cmds += cc
    hseed, vp, rp = bp
    n_resp = sum(len(s[1]) for s in segs)
    max_cycles = 2 * (len(cmds) * 100 // vp + n_resp * 100 // rp + total_cycles) + 10_000
    played = chip.play(cmds, n_resp, seed=hseed, valid_pct=vp, ready_pct=rp, max_cycles=max_cycles)
    k = 0
    for case, labels, gold, _, problem, gsec, gres in segs:
        rtl = played.responses[k:k + len(labels)]
        k += len(labels)
        mismatch = problem
        if mismatch is None:
            for lab, r, g in zip(labels, rtl, gold):
                if r != g:
                    mismatch = _describe(c, lab, r, g)
                    break
        err = None if gres.error is None else \
            f"{gres.error.code.name}@{c.slice_names[gres.error.slice]}:{gres.error.pc}"
        results.append(SeedResult(case.seed, case.kind, case.what, mismatch is None, mismatch, gres.cycles, err,
                                  gsec))
    return results


def run_batch(config_name, seeds, batch_index, build_root="build/sim", corrupt=(), coverage=False,
              coverage_dir=None):
    """Run ``seeds`` (a slice of batch ``batch_index``) in one harness run; falls back to one harness run
    per seed when the harness itself fails, to name the seed. Returns SeedResults (seed order)."""
    from sim.chip_verilator import ChipSimulator
    from sim.verilator import SimulationError
    c = PRESETS[config_name]
    chip = ChipSimulator(c, build_root=build_root, coverage=coverage, coverage_dir=coverage_dir)
    cases = [make_case(c, s) for s in seeds]
    bp = backpressure(c, batch_index)
    try:
        return _play_cases(c, chip, cases, set(corrupt), bp)
    except SimulationError as e:
        if len(cases) == 1:
            return [SeedResult(cases[0].seed, cases[0].kind, cases[0].what, False,
                               f"harness failure: {str(e).splitlines()[0]}")]
        out = []
        for case in cases:
            try:
                out += _play_cases(c, chip, [case], set(corrupt), bp)
            except SimulationError as e1:
                out.append(SeedResult(case.seed, case.kind, case.what, False,
                                      f"harness failure: {str(e1).splitlines()[0]}"))
        return out


def repro_command(config_name, seed, batch=DEFAULT_BATCH):
    extra = f" REGRESS_BATCH={batch}" if batch != DEFAULT_BATCH else ""
    extra_py = f" --batch {batch}" if batch != DEFAULT_BATCH else ""
    return (f"make regress SEEDS=1 START={seed} REGRESS_CONFIG={config_name}{extra}   "
            f"(or: python -m verify.regress --config {config_name} --start {seed} --seeds 1{extra_py})")


@dataclass
class Report:
    config: str
    start: int
    seeds: int
    results: list
    seconds: float
    build_seconds: float
    batch: int

    @property
    def failures(self):
        return [r for r in self.results if not r.ok]

    @property
    def ok(self):
        return not self.failures

    def summary(self):
        n = len(self.results)
        kinds = {k: sum(r.kind == k for r in self.results) for k in KINDS}
        errs = {}
        for r in self.results:
            if r.error:
                code = r.error.split("@")[0]
                errs[code] = errs.get(code, 0) + 1
        rate = n / self.seconds if self.seconds else 0.0
        lines = [f"regress {self.config}: {n} seeds ({self.start} .. {self.start + self.seeds - 1}"
                 + (f", with {n - self.seeds} earlier seeds of the first batch replayed" if n > self.seeds else "")
                 + f"), {n - len(self.failures)} pass, {len(self.failures)} fail; "
                 f"{self.seconds:.1f} s ({rate:.2f} seeds/s; build {self.build_seconds:.1f} s)",
                 "  cases: " + ", ".join(f"{k} {v}" for k, v in kinds.items())
                 + f"; chip cycles {sum(r.cycles or 0 for r in self.results)}"
                 + "; faults: " + (", ".join(f"{k} {v}" for k, v in sorted(errs.items())) or "none")]
        for r in self.failures[:1]:
            lines.append(f"FAIL seed {r.seed} ({r.kind}: {r.what}): {r.mismatch}")
            lines.append(f"  reproduce: {repro_command(self.config, r.seed, self.batch)}")
        if len(self.failures) > 1:
            lines.append("  other failing seeds: " + " ".join(str(r.seed) for r in self.failures[1:]))
        return "\n".join(lines)


def run_regression(config_name="tiny", start=0, seeds=200, jobs=1, batch=DEFAULT_BATCH, build_root="build/sim",
                   corrupt=(), verbose=False, out=sys.stdout, coverage=False, coverage_dir=None):
    """Run seeds ``start … start + seeds - 1`` (module docstring); returns a ``Report``."""
    from sim.chip_verilator import ChipSimulator
    c = PRESETS[config_name]
    if seeds < 1 or start < 0:
        raise ValueError("seeds must be >= 1 and start >= 0")
    B = batch_size(c, batch)
    t0 = time.perf_counter()
    chip = ChipSimulator(c, build_root=build_root, coverage=coverage, coverage_dir=coverage_dir)
    chip.build()
    build_seconds = chip.last_build_seconds
    first = (start // B) * B                      # replay the first batch's earlier seeds (module docstring)
    groups = {}
    for s in range(first, start + seeds):
        groups.setdefault(s // B, []).append(s)
    jobs_args = [(config_name, g, k, build_root, tuple(corrupt), coverage, coverage_dir)
                 for k, g in sorted(groups.items())]
    results = []

    def report(batch_results):
        for r in batch_results:
            results.append(r)
            if verbose or not r.ok:
                state = "ok" if r.ok else f"FAIL: {r.mismatch}"
                print(f"seed {r.seed:6d} {r.kind:6s} {r.cycles or 0:6d} cyc  {r.what[:60]:60s} {state}", file=out,
                      flush=True)

    if jobs <= 1 or len(jobs_args) == 1:
        for a in jobs_args:
            report(run_batch(*a))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as ex:
            for batch_results in ex.map(_run_batch_star, jobs_args):
                report(batch_results)
    results.sort(key=lambda r: r.seed)
    return Report(config_name, start, seeds, results, time.perf_counter() - t0, build_seconds, batch)


def _run_batch_star(args):
    return run_batch(*args)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m verify.regress", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=200, help="number of seeds (default 200)")
    ap.add_argument("--start", type=int, default=0, help="first seed (default 0)")
    ap.add_argument("--config", default="tiny", choices=[n for n, p in PRESETS.items() if p.rtl])
    ap.add_argument("--jobs", type=int, default=1, help="harness batches run in parallel (default 1)")
    ap.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                    help=f"seeds per harness run (default {DEFAULT_BATCH}; part of a seed's identity)")
    ap.add_argument("--build-root", default="build/sim")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per seed")
    ap.add_argument("--corrupt-golden", type=int, action="append", default=[], metavar="SEED",
                    help=argparse.SUPPRESS)     # checker self-test: flip a bit of one golden word of SEED
    args = ap.parse_args(argv)
    if args.seeds < 1 or args.start < 0 or args.jobs < 1 or args.batch < 1:
        ap.error("--seeds, --jobs and --batch must be >= 1, --start >= 0")
    rep = run_regression(args.config, args.start, args.seeds, args.jobs, args.batch, args.build_root,
                         args.corrupt_golden, args.verbose)
    print(rep.summary(), flush=True)
    return 0 if rep.ok else 1


if __name__ == "__main__":
    sys.exit(main())
