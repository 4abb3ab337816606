"""Configuration of the streaming chip (docs/chip.md): ``ChipConfig`` and its presets.

``ChipConfig`` is a frozen dataclass validated on construction: every field is checked with an error that
names the field, the value and what is allowed (``TypeError`` for a wrong type, ``ValueError`` for a wrong
value; collection fields element by element,
``slices[2] must be one of 'mem', 'mxu', 'vxu', 'link', not 'gpu'``).
Limits that come from the instruction word (streams, banks, depth, queue depth, slice count) are read from
``spec.isa``; the MXU's from ``spec.mxu`` (``ChipConfig.mxu`` is an ``MXUParams``, the one MXU spec).

Slices run west → east. The rule: at least one ``mem`` slice (nothing else holds data), at most
``spec.isa.MAX_SLICES`` slices (the width of the slice index in fault reports), and a ``link`` slice only at
either end (index 0: the link to the chip on the west; the last index: to the chip on the east).
``SLICE_KINDS`` describes each kind; a new kind is one entry there plus its opcodes in ``spec.isa``.

Chip-to-chip links (docs/multichip.md): ``link_latency`` is the cycles from a SEND's sampling of a vector to
the cycle a RECV on the neighbouring chip takes it, ``link_interval`` the cycles between two vectors on one
link (a link carries one vector every ``link_interval`` cycles). A slice kind whose ``SliceKind.rtl`` is
false would be golden-only: ``check_rtl()`` refuses a configuration that has one, and ``RTL_SLICE_KINDS``
lists the kinds the RTL has (every kind, now that ``link`` has ``rtl/link.py``). ``to_dict()`` leaves the
two link fields out of a configuration without link slices while they hold their defaults (so the dicts,
JSON files and build hashes of such configurations stay as they were before links existed); ``from_dict``
fills them back in.

``mxu_weight_slots`` (1 … ``spec.mxu.MAX_WEIGHT_SLOTS``, default 1) is how many tiles of shadow weights the MXU
holds ahead of their swaps (``spec.mxu``); ``to_dict()`` leaves it out at 1.

Model-only configurations (``rtl=False``, such as the ``tsp`` preset) may have an MXU up to ``lanes`` on a
side instead of the RTL array's 64; they feed the performance model only, and RTL generators call
``config.check_rtl()``, which refuses them with a clear message.

Slice names: kind + ordinal among slices of that kind, west first (``mem0``, ``mem1``, ``mxu0``); a kind
with a single slice may also be named by the bare kind (``mxu``).
"""
import math
import re
from dataclasses import MISSING, dataclass, fields
from dataclasses import replace as _dc_replace

from spec import isa
from spec.mxu import MAX_ACC_DEPTH, MAX_WEIGHT_SLOTS, MIN_ACC_DEPTH, MXUParams, check_dim

__all__ = [
    "SliceKind", "SLICE_KINDS", "RTL_SLICE_KINDS", "MAX_LANES", "MAX_CHIPS", "MAX_LINK_LATENCY",
    "MAX_LINK_INTERVAL", "DEFAULT_LINK_LATENCY", "DEFAULT_LINK_INTERVAL", "ModelMXUParams", "ChipConfig",
    "PRESETS", "DEFAULT_PRESET",
]

MAX_LANES = 320          #: the published TSP's vector width
MAX_CHIPS = 64
MAX_LINK_LATENCY = 1024  #: cycles a link word may travel (the depth of the link's delay line)
MAX_LINK_INTERVAL = 256  #: cycles between two words on one link, at the slowest
DEFAULT_LINK_LATENCY = 16
DEFAULT_LINK_INTERVAL = 4


@dataclass(frozen=True)
class SliceKind:
    """A kind of slice: its name, a one-line description, its units (besides the instruction queue) and
    whether the RTL has a component for it (``rtl``; a kind without one is modelled by golden only)."""
    name: str
    description: str
    units: tuple
    rtl: bool = True


SLICE_KINDS = {k.name: k for k in [
    SliceKind("mem", "on-chip SRAM: mem_banks banks of mem_depth vectors, read onto and written from streams",
              ("read", "write")),
    SliceKind("mxu", "weight-stationary systolic array, int8 x int8 -> int32, double-buffered weights "
                     "(spec/mxu.py)", ("weights", "array")),
    SliceKind("vxu", "per-lane vector ALU: arithmetic, requantization, table activations, argmax", ("alu",)),
    SliceKind("link", "chip-to-chip link at either end of the chip: SEND a stream's vectors to the neighbouring "
                      "chip, RECV what arrives onto a stream (docs/multichip.md)", ("send", "recv")),
]}
#: The slice kinds the RTL has a component for (``rtl/chip.py``), in ``SLICE_KINDS`` order.
RTL_SLICE_KINDS = tuple(k.name for k in SLICE_KINDS.values() if k.rtl)


@dataclass(frozen=True)
class ModelMXUParams(MXUParams):
    """``MXUParams`` of a model-only configuration: sides up to ``MAX_LANES`` instead of the RTL's 64.
    Everything else (latency, widths) is inherited, so the formulas stay in ``spec.mxu``."""

    def __post_init__(self):
        _int("rows", self.rows, 1, MAX_LANES)
        _int("cols", self.cols, 1, MAX_LANES)
        _int("acc_depth", self.acc_depth, MIN_ACC_DEPTH, MAX_ACC_DEPTH)
        _int("weight_slots", self.weight_slots, 1, MAX_WEIGHT_SLOTS)


def _int(name, value, lo, hi, what=None):
    allowed = what or f"an integer between {lo} and {hi}"
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be {allowed}, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be {allowed}, not {value!r}")
    return value


def _names(names):
    return ", ".join(repr(n) for n in names)


def _sequence(name, value, allowed):
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
        raise TypeError(f"{name} must be a tuple of {allowed}, not {value!r}")
    return tuple(value)


_NAME_RE = re.compile(r"[A-Za-z0-9_.\-]+\Z")


@dataclass(frozen=True)
class ChipConfig:
    """The machine. See the module docstring for the rules; ``PRESETS`` for examples."""
    name: str
    lanes: int
    streams: int
    slices: tuple
    mem_banks: int
    mem_depth: int
    mxu_rows: int
    mxu_cols: int
    mxu_acc_depth: int
    vxu_ops: tuple
    queue_depth: int
    chips: int = 1
    clock_mhz: float = 100.0
    rtl: bool = True
    link_latency: int = DEFAULT_LINK_LATENCY
    link_interval: int = DEFAULT_LINK_INTERVAL
    mxu_weight_slots: int = 1

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            exc = ValueError if isinstance(self.name, str) else TypeError
            raise exc(f"name must be a non-empty string of letters, digits, '_', '-' or '.', not {self.name!r}")
        if not isinstance(self.rtl, bool):
            raise TypeError(f"rtl must be True or False, not {self.rtl!r}")
        _int("lanes", self.lanes, 1, MAX_LANES)
        _int("streams", self.streams, 1, isa.MAX_STREAMS)
        self._check_slices()
        _int("mem_banks", self.mem_banks, 1, isa.MAX_BANKS)
        _int("mem_depth", self.mem_depth, 2, isa.MAX_MEM_DEPTH)
        for dim in ("mxu_rows", "mxu_cols"):
            value = getattr(self, dim)
            if self.rtl:
                check_dim(dim, value)
            else:
                _int(dim, value, 1, MAX_LANES)
            if value > self.lanes:
                raise ValueError(f"{dim} must be at most lanes = {self.lanes}, not {value}")
        _int("mxu_acc_depth", self.mxu_acc_depth, MIN_ACC_DEPTH, MAX_ACC_DEPTH)
        _int("mxu_weight_slots", self.mxu_weight_slots, 1, MAX_WEIGHT_SLOTS)
        self._check_vxu_ops()
        _int("queue_depth", self.queue_depth, 1, isa.MAX_QUEUE_DEPTH)
        _int("chips", self.chips, 1, MAX_CHIPS)
        c = self.clock_mhz
        if not isinstance(c, (int, float)) or isinstance(c, bool):
            raise TypeError(f"clock_mhz must be a positive number of MHz, not {c!r}")
        if not (math.isfinite(c) and c > 0):
            raise ValueError(f"clock_mhz must be a positive number of MHz, not {c!r}")
        object.__setattr__(self, "clock_mhz", float(c))
        _int("link_latency", self.link_latency, 1, MAX_LINK_LATENCY)
        _int("link_interval", self.link_interval, 1, MAX_LINK_INTERVAL)

    def _check_slices(self):
        kinds = tuple(SLICE_KINDS)
        slices = _sequence("slices", self.slices, f"slice kinds ({_names(kinds)})")
        object.__setattr__(self, "slices", slices)
        for i, kind in enumerate(slices):
            if not isinstance(kind, str):
                raise TypeError(f"slices[{i}] must be one of {_names(kinds)}, not {kind!r}")
            if kind not in SLICE_KINDS:
                raise ValueError(f"slices[{i}] must be one of {_names(kinds)}, not {kind!r}")
        if not 1 <= len(slices) <= isa.MAX_SLICES:
            raise ValueError(f"slices must hold between 1 and {isa.MAX_SLICES} slices, not {len(slices)}")
        inner = _names(k for k in kinds if k != "link")
        for i, kind in enumerate(slices[1:-1], start=1):
            if kind == "link":
                raise ValueError(f"slices[{i}] must be one of {inner}, not 'link': a link slice sits at either "
                                 f"end of the chip")
        if "mem" not in slices:
            raise ValueError(f"slices must include at least one 'mem' slice, not {slices!r}")

    def _check_vxu_ops(self):
        ops = _sequence("vxu_ops", self.vxu_ops, f"VXU operations ({_names(isa.VXU_OPS)})")
        object.__setattr__(self, "vxu_ops", ops)
        for i, op in enumerate(ops):
            if not isinstance(op, str):
                raise TypeError(f"vxu_ops[{i}] must be one of {_names(isa.VXU_OPS)}, not {op!r}")
            if op not in isa.VXU_OPS:
                raise ValueError(f"vxu_ops[{i}] must be one of {_names(isa.VXU_OPS)}, not {op!r}")
            if op in ops[:i]:
                raise ValueError(f"vxu_ops[{i}] must not repeat an operation, not {op!r} again")

    # ---- presets and copies ---------------------------------------------------------------------------
    @classmethod
    def preset(cls, name):
        """The preset called ``name`` (``PRESETS``)."""
        if name not in PRESETS:
            raise ValueError(f"preset must be one of {_names(PRESETS)}, not {name!r}")
        return PRESETS[name]

    def replace(self, **changes):
        """A validated copy with ``changes`` applied (unknown field names are rejected)."""
        _reject_unknown(changes)
        return _dc_replace(self, **changes)

    def to_dict(self):
        """A JSON-safe dict (lists for tuples) that ``from_dict`` turns back into an equal config. Without
        link slices, ``link_latency`` and ``link_interval`` are left out while they hold their defaults."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["slices"], d["vxu_ops"] = list(self.slices), list(self.vxu_ops)
        if "link" not in self.slices:
            for f in fields(self):
                if f.name.startswith("link_") and d[f.name] == f.default:
                    del d[f.name]
        if d["mxu_weight_slots"] == 1:          # one slot: the configurations saved before slots existed
            del d["mxu_weight_slots"]
        return d

    @classmethod
    def from_dict(cls, d):
        """The config of ``to_dict()``'s output; unknown keys are rejected, missing ones named."""
        if not isinstance(d, dict):
            raise TypeError(f"ChipConfig.from_dict needs a dict, not {d!r}")
        _reject_unknown(d)
        missing = [f.name for f in fields(cls) if f.name not in d and f.default is MISSING]
        if missing:
            raise ValueError(f"ChipConfig.from_dict is missing {_names(missing)}")
        return cls(**d)

    # ---- derived --------------------------------------------------------------------------------------
    @property
    def mxu(self):
        """The MXU's ``spec.mxu.MXUParams`` (a ``ModelMXUParams`` for a model-only configuration)."""
        params = MXUParams if self.rtl else ModelMXUParams
        return params(self.mxu_rows, self.mxu_cols, self.mxu_acc_depth, self.mxu_weight_slots)

    def check_rtl(self):
        """Raise ``ValueError`` unless the configuration can be generated as RTL; returns ``self``."""
        if not self.rtl:
            raise ValueError(f"config {self.name!r} is model-only (rtl=False): it feeds the performance model "
                             f"and cannot be generated as RTL (its MXU is {self.mxu_rows}x{self.mxu_cols}, the "
                             f"RTL allows at most 64x64)")
        for i, kind in enumerate(self.slices):
            if not SLICE_KINDS[kind].rtl:
                raise ValueError(f"config {self.name!r} cannot be generated as RTL: slices[{i}] is a {kind!r} "
                                 f"slice, and slice kind {kind!r} has no RTL yet (golden models it: "
                                 f"docs/multichip.md)")
        return self

    def with_links(self, west=True, east=True):
        """A copy named ``<name>_link`` with a ``link`` slice added at the west and/or east end (a chip of a
        system: ``golden.system``). The configuration must not have link slices already."""
        if "link" in self.slices:
            raise ValueError(f"config {self.name!r} already has link slices (slices: {', '.join(self.slice_names)})")
        if not (west or east):
            raise ValueError("with_links needs west=True, east=True or both")
        return self.replace(name=f"{self.name}_link",
                            slices=("link",) * bool(west) + self.slices + ("link",) * bool(east))

    @property
    def link_ends(self):
        """The link slices by end: ``{"west": 0, "east": P - 1}``, holding only the ends that have one."""
        ends = {}
        if self.slices[0] == "link":
            ends["west"] = 0
        if self.slices[-1] == "link" and len(self.slices) > 1:
            ends["east"] = len(self.slices) - 1
        return ends

    def positions(self, kind):
        """Slice indices of ``kind``, west first."""
        if kind not in SLICE_KINDS:
            raise ValueError(f"kind must be one of {_names(SLICE_KINDS)}, not {kind!r}")
        return tuple(i for i, k in enumerate(self.slices) if k == kind)

    @property
    def slice_names(self):
        """Canonical slice names, west first: kind + ordinal (``mem0``, ``mem1``, ``mxu0`` …)."""
        seen = {}
        names = []
        for kind in self.slices:
            names.append(f"{kind}{seen.get(kind, 0)}")
            seen[kind] = seen.get(kind, 0) + 1
        return tuple(names)

    def slice_index(self, ref):
        """The index of slice ``ref``: an index, a canonical name, or a bare kind that has one slice."""
        if isinstance(ref, int) and not isinstance(ref, bool):
            if 0 <= ref < len(self.slices):
                return ref
            raise ValueError(f"slice index must be between 0 and {len(self.slices) - 1} for config {self.name}, "
                             f"not {ref}")
        if not isinstance(ref, str):
            raise TypeError(f"slice must be an index or a name, not {ref!r}")
        names = self.slice_names
        if ref in names:
            return names.index(ref)
        if ref in SLICE_KINDS and len(self.positions(ref)) == 1:
            return self.positions(ref)[0]
        raise ValueError(f"slice {ref!r} is not in config {self.name} (slices: {', '.join(names)})")

    @property
    def vector_bytes(self):
        """Bytes of one int8 vector (``lanes``)."""
        return self.lanes

    @property
    def mem_bytes_per_slice(self):
        """int8 capacity of one MEM slice."""
        return self.mem_banks * self.mem_depth * self.lanes


def _reject_unknown(d):
    known = [f.name for f in fields(ChipConfig)]
    unknown = [k for k in d if k not in known]
    if unknown:
        raise ValueError(f"unknown ChipConfig field{'s' if len(unknown) > 1 else ''} {_names(unknown)} "
                         f"(fields: {', '.join(known)})")


_ALL_VXU = tuple(isa.VXU_OPS)

PRESETS = {c.name: c for c in [
    # fast tests
    ChipConfig(name="tiny", lanes=4, streams=4, slices=("mem", "mem", "mxu", "vxu", "mem"), mem_banks=2,
               mem_depth=64, mxu_rows=4, mxu_cols=4, mxu_acc_depth=64, vxu_ops=_ALL_VXU, queue_depth=256,
               clock_mhz=100.0),
    # the default: an FPGA-sized MXU tile; 4 MEM slices of 4 banks x 1024 words hold a GEMM of
    # 1024 x 64 x 64 (activations, weights and int32 results) with room to spare; queues of 4096 words
    # hold the decode step of the reference language models (issue 10: about 2300 words on the busiest slice)
    ChipConfig(name="small", lanes=16, streams=8, slices=("mem", "mem", "mxu", "vxu", "mem", "mem"),
               mem_banks=4, mem_depth=1024, mxu_rows=16, mxu_cols=16, mxu_acc_depth=1024, vxu_ops=_ALL_VXU,
               queue_depth=4096, clock_mhz=100.0),
    # the published TSP, for the performance model only: 88 MEM slices of 2.5 MiB (2 × 4096 words of
    # 320 bytes), four 320×320 MXU planes (two at each end), 32 streams per direction, 900 MHz
    ChipConfig(name="tsp", lanes=320, streams=32,
               slices=("mxu", "mxu") + ("mem",) * 44 + ("vxu",) + ("mem",) * 44 + ("mxu", "mxu"),
               mem_banks=2, mem_depth=4096, mxu_rows=320, mxu_cols=320, mxu_acc_depth=4096, vxu_ops=_ALL_VXU,
               queue_depth=65536, clock_mhz=900.0, rtl=False),
]}
DEFAULT_PRESET = "small"
