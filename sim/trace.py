"""Per-cycle MXU input traces, captured outputs, and the hex files that the Verilator harness reads and writes.

A trace is what the MXU's input ports see on every cycle (cycle ``k`` = the ``k``-th cycle after the
harness reset is released; see ``sim/hdl/mxu_harness.sv``). The harness plays it from memories loaded with
``$readmemh`` and dumps every valid output with ``$writememh``; everything here is vectorised numpy so that
writing or reading a 1M-cycle trace takes well under a second.

File formats (one word per line, most significant hex digit first, lower-case, no ``@address`` lines):

``ctrl.hex`` (32-bit words, one per cycle)
    bit 0 ``rst``, bit 1 ``w_valid``, bit 2 ``a_valid``, bit 3 ``a_swap``, bit 4 ``a_acc``, bit 5 ``a_emit``,
    bits 15:8 ``w_row``, bits 31:16 ``a_addr``.
``w_data.hex`` (``cols * 8`` bits), ``a_data.hex`` (``rows * 8`` bits)
    element ``i`` in bits ``[8i+7:8i]``, two's complement, exactly as on the ports.
``y_data.hex`` (``cols * 32`` bits), ``y_meta.hex`` (64 bits: bits 31:0 cycle, bits 47:32 ``y_addr``)
    one line per captured output, in order.
``status.hex`` (64-bit words)
    ``[0]`` outputs stored, ``[1]`` outputs seen (more than stored on overflow), ``[2]`` overflow flag,
    ``[3]`` cycles run, ``[4]`` the magic number :data:`STATUS_MAGIC`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from spec.mxu import MXUParams

__all__ = [
    "MXUTrace", "MXUOutputs", "RunInfo", "HarnessStatus",
    "CTRL_FILE", "W_DATA_FILE", "A_DATA_FILE", "Y_DATA_FILE", "Y_META_FILE", "STATUS_FILE", "STATUS_MAGIC",
    "pack_ctrl", "unpack_ctrl", "write_hex_words", "read_hex_words",
    "write_trace_hex", "read_trace_hex", "write_outputs_hex", "read_outputs_hex", "read_status_hex",
]

CTRL_FILE = "ctrl.hex"
W_DATA_FILE = "w_data.hex"
A_DATA_FILE = "a_data.hex"
Y_DATA_FILE = "y_data.hex"
Y_META_FILE = "y_meta.hex"
STATUS_FILE = "status.hex"
STATUS_MAGIC = 0x4D58_5548_0000_0001  #: "MXUH", format version 1

# Bit positions in the 32-bit control word (keep in step with sim/hdl/mxu_harness.sv).
_CTRL_FLAGS = ("rst", "w_valid", "a_valid", "a_swap", "a_acc", "a_emit")  # bits 0..5
_CTRL_W_ROW_SHIFT, _CTRL_W_ROW_BITS = 8, 8
_CTRL_ADDR_SHIFT, _CTRL_ADDR_BITS = 16, 16
_FLAG_FIELDS = _CTRL_FLAGS
_INDEX_FIELDS = ("w_row", "a_addr")
_DATA_FIELDS = ("w_data", "a_data")


# --------------------------------------------------------------------------------------------------------
# Traces


@dataclass(eq=False)
class MXUTrace:
    """The MXU's inputs on each of ``cycles`` consecutive cycles.

    Flags (``rst``, ``w_valid``, ``a_valid``, ``a_swap``, ``a_acc``, ``a_emit``) are length-``T`` bool arrays
    (integer arrays holding only 0 and 1 are accepted); ``w_row`` and ``a_addr`` are integer arrays;
    ``w_data`` is ``T × cols`` int8 and ``a_data`` is ``T × rows`` int8. ``rst`` drives the MXU's synchronous
    reset (OR'd with the harness reset) so a trace can reset the MXU mid-run.
    """
    params: MXUParams
    rst: np.ndarray
    w_valid: np.ndarray
    w_row: np.ndarray
    w_data: np.ndarray
    a_valid: np.ndarray
    a_swap: np.ndarray
    a_acc: np.ndarray
    a_emit: np.ndarray
    a_addr: np.ndarray
    a_data: np.ndarray

    @classmethod
    def empty(cls, params: MXUParams, cycles: int) -> MXUTrace:
        """A trace of ``cycles`` idle cycles (every field zero)."""
        if not isinstance(params, MXUParams):
            raise TypeError(f"params must be an MXUParams, not {params!r}")
        if not isinstance(cycles, (int, np.integer)) or isinstance(cycles, bool) or cycles < 0:
            raise ValueError(f"cycles must be a non-negative integer, not {cycles!r}")
        T = int(cycles)
        flags = {name: np.zeros(T, dtype=bool) for name in _FLAG_FIELDS}
        return cls(params=params, w_row=np.zeros(T, dtype=np.int64), a_addr=np.zeros(T, dtype=np.int64),
                   w_data=np.zeros((T, params.cols), dtype=np.int8),
                   a_data=np.zeros((T, params.rows), dtype=np.int8), **flags)

    @property
    def cycles(self) -> int:
        return len(self.rst)

    def __len__(self) -> int:
        return self.cycles

    def check(self) -> MXUTrace:
        """Check shapes, dtypes and ranges; raise ValueError naming the field and the allowed range.

        Every cycle is checked, including cycles whose ``valid`` is low (the harness packs every field).
        Returns ``self``.
        """
        p = self.params
        if not isinstance(p, MXUParams):
            raise ValueError(f"params must be an MXUParams, not {p!r}")
        rst = np.asarray(self.rst)
        if rst.ndim != 1:
            raise ValueError(f"rst must be a 1-D array (one entry per cycle), not shape {rst.shape}")
        T = rst.shape[0]
        for name in _FLAG_FIELDS:
            a = np.asarray(getattr(self, name))
            if a.shape != (T,):
                raise ValueError(f"{name} must have shape ({T},) like rst, not {a.shape}")
            if a.dtype == bool:
                continue
            if a.dtype.kind not in "iu":
                raise ValueError(f"{name} must be a bool (or 0/1 integer) array, not dtype {a.dtype}")
            bad = np.flatnonzero((a != 0) & (a != 1))
            if len(bad):
                raise ValueError(f"{name}[{bad[0]}] = {a[bad[0]]} is out of range: {name} must be 0 or 1")
        for name, limit, what in (("w_row", p.rows, "rows"), ("a_addr", p.acc_depth, "acc_depth")):
            a = np.asarray(getattr(self, name))
            if a.shape != (T,):
                raise ValueError(f"{name} must have shape ({T},) like rst, not {a.shape}")
            if a.dtype.kind not in "iu":
                raise ValueError(f"{name} must be an integer array, not dtype {a.dtype}")
            bad = np.flatnonzero((a < 0) | (a >= limit))
            if len(bad):
                raise ValueError(f"{name}[{bad[0]}] = {a[bad[0]]} is out of range: "
                                 f"{name} must be in 0..{limit - 1} ({what} = {limit})")
        for name, width, what in (("w_data", p.cols, "cols"), ("a_data", p.rows, "rows")):
            a = np.asarray(getattr(self, name))
            if a.dtype != np.int8:
                raise ValueError(f"{name} must be an int8 array (values -128..127), not dtype {a.dtype}")
            if a.shape != (T, width):
                raise ValueError(f"{name} must have shape ({T}, {width}) (cycles × {what}), not {a.shape}")
        return self

    def __getitem__(self, sl: slice) -> MXUTrace:
        """Cycles ``sl`` of this trace (a slice), as a new trace sharing no memory."""
        if not isinstance(sl, slice):
            raise TypeError("MXUTrace can only be sliced (trace[a:b])")
        kw = {f.name: np.array(getattr(self, f.name)[sl]) for f in fields(self) if f.name != "params"}
        return MXUTrace(params=self.params, **kw)

    @classmethod
    def concat(cls, traces) -> MXUTrace:
        """The traces one after another (all with the same params)."""
        traces = list(traces)
        if not traces:
            raise ValueError("concat needs at least one trace")
        p = traces[0].params
        if any(t.params != p for t in traces):
            raise ValueError("concat: all traces must have the same params")
        kw = {f.name: np.concatenate([np.asarray(getattr(t, f.name)) for t in traces])
              for f in fields(cls) if f.name != "params"}
        return cls(params=p, **kw)


# --------------------------------------------------------------------------------------------------------
# Outputs


@dataclass
class RunInfo:
    """How a simulation went (filled in by :class:`sim.verilator.MXUSimulator`)."""
    cycles: int = 0                 #: cycles simulated after the harness reset (trace + drain)
    trace_cycles: int = 0           #: cycles of the trace that were played
    sim_seconds: float = 0.0        #: wall time of the simulator process (start, load, run, dump, exit)
    loop_seconds: float = 0.0       #: wall time inside the simulator from the harness reset release to done
    run_seconds: float = 0.0        #: wall time of the whole run() call (files, simulation, reading back)
    build_seconds: float = 0.0      #: wall time spent building (0 when the build was reused)
    run_dir: str | None = None      #: where the files of this run are (None once deleted)
    vcd_path: str | None = None     #: the VCD written when waves are on

    @property
    def cycles_per_second(self) -> float:
        """Cycles simulated per wall-clock second of the simulator process (start-up included)."""
        return self.cycles / self.sim_seconds if self.sim_seconds > 0 else 0.0

    @property
    def loop_cycles_per_second(self) -> float:
        """Cycles per wall-clock second of the simulation loop alone (reset release to done)."""
        return self.cycles / self.loop_seconds if self.loop_seconds > 0 else 0.0

    @property
    def overhead_seconds(self) -> float:
        """Simulator process time outside the simulation loop (start-up, $readmemh, $writememh, exit)."""
        return self.sim_seconds - self.loop_seconds


@dataclass(eq=False)
class MXUOutputs:
    """Every result vector that left the MXU, in order: one entry per cycle on which ``y_valid`` was high.

    ``cycle[i]`` is the cycle during which ``y_valid`` was high (sampled at the rising edge ending it),
    ``addr[i]`` is ``y_addr`` and ``data[i]`` the ``cols`` int32 elements of ``y_data``. Same fields and
    dtypes as ``golden.mxu.MXUResults``.
    """
    cycle: np.ndarray   #: int64
    addr: np.ndarray    #: int64
    data: np.ndarray    #: int32, N × cols
    info: RunInfo | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.cycle)

    @classmethod
    def empty(cls, cols: int) -> MXUOutputs:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, cols), np.int32))

    def mismatch(self, expected) -> str | None:
        """Describe the first difference from ``expected`` (anything with ``cycle``, ``addr``, ``data``).

        Returns None when both hold the same outputs on the same cycles.
        """
        ec = np.asarray(expected.cycle, dtype=np.int64)
        ea = np.asarray(expected.addr, dtype=np.int64)
        ed = np.asarray(expected.data)
        n = min(len(self.cycle), len(ec))
        for i in range(n):
            if (self.cycle[i] != ec[i] or self.addr[i] != ea[i]
                    or not np.array_equal(self.data[i], ed[i])):
                return (f"output {i} differs: got cycle {self.cycle[i]} addr {self.addr[i]} "
                        f"data {self.data[i].tolist()}, expected cycle {ec[i]} addr {ea[i]} "
                        f"data {ed[i].tolist()}")
        if len(self.cycle) != len(ec):
            extra = (f"first extra got: cycle {self.cycle[n]}" if len(self.cycle) > n
                     else f"first missing: cycle {ec[n]} addr {ea[n]}")
            return f"got {len(self.cycle)} outputs, expected {len(ec)} ({extra})"
        return None

    def assert_equal(self, expected) -> None:
        msg = self.mismatch(expected)
        if msg is not None:
            raise AssertionError(msg)


@dataclass
class HarnessStatus:
    stored: int      #: outputs written to y_data.hex / y_meta.hex
    seen: int        #: outputs that arrived (> stored when the capture memory overflowed)
    overflow: bool
    cycles: int      #: cycles run after the harness reset


# --------------------------------------------------------------------------------------------------------
# Generic hex words


def write_hex_words(path, words: np.ndarray) -> None:
    """Write ``words`` (``N × nbytes`` uint8, little-endian: byte 0 is bits 7:0) as ``$readmemh`` lines.

    Each line has ``2 * nbytes`` hex digits, most significant first.
    """
    words = np.asarray(words)
    if words.dtype != np.uint8 or words.ndim != 2:
        raise ValueError(f"words must be a 2-D uint8 array, not {words.dtype} {words.shape}")
    n, nbytes = words.shape
    be = np.ascontiguousarray(words[:, ::-1])
    digits = np.frombuffer(be.tobytes().hex().encode("ascii"), dtype=np.uint8).reshape(n, 2 * nbytes)
    out = np.empty((n, 2 * nbytes + 1), dtype=np.uint8)
    out[:, :-1] = digits
    out[:, -1] = ord("\n")
    Path(path).write_bytes(out.tobytes())


_HEX_VALUE = np.full(256, 255, dtype=np.uint8)
for _i, _ch in enumerate(b"0123456789abcdef"):
    _HEX_VALUE[_ch] = _i
for _i, _ch in enumerate(b"ABCDEF"):
    _HEX_VALUE[_ch] = 10 + _i


def read_hex_words(path, nbytes: int) -> np.ndarray:
    """Read a ``$writememh`` (or :func:`write_hex_words`) file into an ``N × nbytes`` uint8 array (little-endian).

    Lines must all have the same number of hex digits, at most ``2 * nbytes``; ``//`` comment lines and blank
    lines are skipped; ``@address`` lines, ``x``/``z`` digits and ragged lines raise ValueError.
    """
    raw = Path(path).read_bytes()
    if b"/" in raw or b"@" in raw or b"\r" in raw or b" " in raw or b"\t" in raw or b"\n\n" in raw:
        lines = []
        for line in raw.splitlines():
            line = line.strip()
            if not line or line.startswith(b"//"):
                continue
            if line.startswith(b"@"):
                raise ValueError(f"{path}: address lines ({line.decode(errors='replace')}) are not supported")
            lines.append(line)
        raw = b"".join(line + b"\n" for line in lines)
    if not raw:
        return np.zeros((0, nbytes), dtype=np.uint8)
    if not raw.endswith(b"\n"):
        raw += b"\n"
    width = raw.index(b"\n")
    if width == 0 or width > 2 * nbytes:
        raise ValueError(f"{path}: expected lines of 1 to {2 * nbytes} hex digits, line 1 has {width}")
    arr = None
    if len(raw) % (width + 1) == 0:
        arr = np.frombuffer(raw, dtype=np.uint8).reshape(-1, width + 1)
    if arr is None or np.any(arr[:, -1] != ord("\n")):
        bad = next(i for i, line in enumerate(raw.split(b"\n")) if len(line) != width)
        raise ValueError(f"{path}: line {bad + 1} has a different length from line 1 ({width} digits)")
    n = arr.shape[0]
    if width % 2 == 0:
        try:   # fast path: bytes.fromhex skips the newlines
            be = np.frombuffer(bytes.fromhex(raw.decode("ascii")), dtype=np.uint8).reshape(n, width // 2)
        except (ValueError, UnicodeDecodeError):
            pass   # the slow path below names the bad digit
        else:
            out = np.zeros((n, nbytes), dtype=np.uint8)
            out[:, :width // 2] = be[:, ::-1]
            return out
    nib = _HEX_VALUE[arr[:, :-1]]
    if np.any(nib == 255):
        r, c = (int(v[0]) for v in np.nonzero(nib == 255))
        raise ValueError(f"{path}: line {r + 1} has a non-hex digit {chr(arr[r, c])!r}")
    full = np.zeros((n, 2 * nbytes), dtype=np.uint8)
    full[:, 2 * nbytes - width:] = nib            # right-align: short lines have leading zeros dropped
    packed = ((full[:, 0::2] << 4) | full[:, 1::2]).astype(np.uint8, copy=False)   # big-endian bytes
    return np.ascontiguousarray(packed[:, ::-1])


def _int_words(values: np.ndarray, nbytes: int) -> np.ndarray:
    """Unsigned integers (< 2**64) as ``N × nbytes`` little-endian bytes."""
    v = np.ascontiguousarray(np.asarray(values, dtype=np.uint64).astype("<u8"))
    return v.view(np.uint8).reshape(-1, 8)[:, :nbytes]


def _words_int(words: np.ndarray) -> np.ndarray:
    """``N × nbytes`` (nbytes <= 8) little-endian bytes as uint64."""
    n, nbytes = words.shape
    full = np.zeros((n, 8), dtype=np.uint8)
    full[:, :nbytes] = words
    return full.view("<u8").reshape(n).astype(np.uint64)


# --------------------------------------------------------------------------------------------------------
# Trace files


def pack_ctrl(trace: MXUTrace) -> np.ndarray:
    """The 32-bit control words of a (checked) trace, as uint32."""
    word = np.zeros(trace.cycles, dtype=np.uint32)
    for bit, name in enumerate(_CTRL_FLAGS):
        word |= np.asarray(getattr(trace, name)).astype(np.uint32) << np.uint32(bit)
    word |= np.asarray(trace.w_row).astype(np.uint32) << np.uint32(_CTRL_W_ROW_SHIFT)
    word |= np.asarray(trace.a_addr).astype(np.uint32) << np.uint32(_CTRL_ADDR_SHIFT)
    return word


def unpack_ctrl(word: np.ndarray) -> dict:
    word = np.asarray(word, dtype=np.uint64)
    def bits(shift, width):
        return (word >> np.uint64(shift)) & np.uint64((1 << width) - 1)

    out = {name: bits(bit, 1).astype(bool) for bit, name in enumerate(_CTRL_FLAGS)}
    out["w_row"] = bits(_CTRL_W_ROW_SHIFT, _CTRL_W_ROW_BITS).astype(np.int64)
    out["a_addr"] = bits(_CTRL_ADDR_SHIFT, _CTRL_ADDR_BITS).astype(np.int64)
    return out


def write_trace_hex(trace: MXUTrace, directory) -> None:
    """Check ``trace`` and write ``ctrl.hex``, ``w_data.hex`` and ``a_data.hex`` into ``directory``."""
    trace.check()
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    write_hex_words(d / CTRL_FILE, _int_words(pack_ctrl(trace), 4))
    for name in _DATA_FIELDS:
        a = np.ascontiguousarray(np.asarray(getattr(trace, name), dtype=np.int8))
        write_hex_words(d / (W_DATA_FILE if name == "w_data" else A_DATA_FILE), a.view(np.uint8))


def read_trace_hex(directory, params: MXUParams) -> MXUTrace:
    """Read back what :func:`write_trace_hex` wrote (for tests and debugging)."""
    d = Path(directory)
    ctrl = unpack_ctrl(_words_int(read_hex_words(d / CTRL_FILE, 4)))
    w = read_hex_words(d / W_DATA_FILE, params.cols).view(np.int8)
    a = read_hex_words(d / A_DATA_FILE, params.rows).view(np.int8)
    return MXUTrace(params=params, w_data=np.array(w), a_data=np.array(a), **ctrl)


# --------------------------------------------------------------------------------------------------------
# Output files


def write_outputs_hex(outputs: MXUOutputs, directory, *, seen: int | None = None, overflow: bool = False,
                      cycles: int = 0) -> None:
    """Write outputs in the harness's format (for tests of :func:`read_outputs_hex`)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    data = np.ascontiguousarray(np.asarray(outputs.data, dtype="<i4"))
    n, cols = data.shape
    write_hex_words(d / Y_DATA_FILE, data.view(np.uint8).reshape(n, 4 * cols))
    meta = (np.asarray(outputs.cycle, dtype=np.uint64) & np.uint64(0xFFFF_FFFF)) \
        | (np.asarray(outputs.addr, dtype=np.uint64) << np.uint64(32))
    write_hex_words(d / Y_META_FILE, _int_words(meta, 8))
    status = np.array([n, n if seen is None else seen, int(overflow), cycles, STATUS_MAGIC], dtype=np.uint64)
    write_hex_words(d / STATUS_FILE, _int_words(status, 8))


def read_status_hex(directory) -> HarnessStatus:
    path = Path(directory) / STATUS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the harness did not finish (no $writememh)")
    words = _words_int(read_hex_words(path, 8))
    if len(words) < 5 or int(words[4]) != STATUS_MAGIC:
        raise ValueError(f"{path}: not a harness status file (magic {words[4] if len(words) > 4 else None})")
    return HarnessStatus(stored=int(words[0]), seen=int(words[1]), overflow=bool(words[2]),
                         cycles=int(words[3]))


def read_outputs_hex(directory, params: MXUParams) -> tuple[MXUOutputs, HarnessStatus]:
    """Read the captures that the harness dumped into ``directory``; also return its status words."""
    d = Path(directory)
    status = read_status_hex(d)
    cols = params.cols
    if status.stored == 0:
        return MXUOutputs.empty(cols), status
    data = read_hex_words(d / Y_DATA_FILE, 4 * cols)
    meta = _words_int(read_hex_words(d / Y_META_FILE, 8))
    if len(data) != status.stored or len(meta) != status.stored:
        raise ValueError(f"{d}: status says {status.stored} outputs, files hold {len(data)} data and "
                         f"{len(meta)} meta lines")
    out = MXUOutputs(
        cycle=(meta & np.uint64(0xFFFF_FFFF)).astype(np.int64),
        addr=((meta >> np.uint64(32)) & np.uint64(0xFFFF)).astype(np.int64),
        data=np.array(data.view("<i4").reshape(len(data), cols), dtype=np.int32),
    )
    return out, status


def _remove_outputs(directory) -> None:
    for name in (Y_DATA_FILE, Y_META_FILE, STATUS_FILE):
        try:
            os.unlink(Path(directory) / name)
        except FileNotFoundError:
            pass
