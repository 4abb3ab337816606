"""Shared pieces of the proofs: the ``Proof`` record, the wrapper base and a look inside unchanged RTL.

``open_module(obj, platform)`` elaborates ``obj`` one level with its own, unchanged ``elaborate`` and makes
later elaboration of ``obj`` reuse that very ``Module``, so a proof can name the component's internal
signals (``Opened.sig("produce")``) in helper invariants and add read-only observation ports to its
memories (``Opened.peek_memory``): a k-induction proof needs invariants on state the ports do not show.
Nothing of the component's behaviour changes.
"""
import dataclasses

from amaranth.hdl import ClockDomain, Elaboratable, Module, Signal
from amaranth.hdl._ast import Statement

__all__ = ["Proof", "Wrapper", "Opened", "open_module", "prev"]


@dataclasses.dataclass
class Proof:
    """One proof: ``build(bug)`` returns the wrapper (``bug`` is ``None`` or a key of ``bugs``)."""
    name: str
    title: str
    build: object
    depth: int                     # k of the k-induction (and the BMC base case)
    cover_depth: int
    bugs: dict                     # planted bug name -> what it breaks (each must make the proof FAIL)
    engine: str = "smtbmc boolector"
    cover_engine: str = "smtbmc boolector"


class Wrapper(Elaboratable):
    """A proof's top: owns the ``sync`` domain so the clock becomes a top-level port of the RTLIL (an
    undriven clock would let Yosys delete every flop and make the proof vacuous)."""

    #: planted bug name -> what it breaks; a subclass names its own
    BUGS: dict = {}

    def __init__(self, bug=None):
        if bug is not None and bug not in self.BUGS:
            raise ValueError(f"unknown planted bug {bug!r}; known: {', '.join(self.BUGS)}")
        self.bug = bug
        self.cd_sync = ClockDomain("sync")

    def module(self):
        """A new ``Module`` whose ``sync`` domain is this wrapper's (clock and reset top-level ports)."""
        m = Module()
        m.domains.sync = self.cd_sync
        return m


def _signals(stmts, out):
    for stmt in stmts:
        if isinstance(stmt, Statement):
            for sig in (*stmt._lhs_signals(), *stmt._rhs_signals()):
                out.setdefault(sig.name, {})[id(sig)] = sig


class Opened:
    """A component elaborated one level: ``module``, its ``submodules`` by name, its signals by name."""

    def __init__(self, obj, module):
        self.obj = obj
        self.module = module
        self.submodules = {k: (v[0] if isinstance(v, tuple) else v) for k, v in module._named_submodules.items()}
        self._by_name = {}
        for stmts in module._statements.values():
            _signals(stmts, self._by_name)

    def sig(self, name):
        found = list(self._by_name.get(name, {}).values())
        if len(found) != 1:
            raise KeyError(f"{type(self.obj).__name__}: {len(found)} signals named {name!r} "
                           f"(names: {', '.join(sorted(self._by_name))})")
        return found[0]

    def peek_memory(self, m, name):
        """The words of memory submodule ``name`` (a list, one per address), seen through asynchronous read
        ports added for observation only (driven from the proof's module ``m``; the memory's own ports are
        untouched)."""
        mem = self.submodules[name]
        words = []
        for addr in range(mem.depth):
            port = mem.read_port(domain="comb")
            m.d.comb += port.addr.eq(addr)
            words.append(port.data)
        return words


def open_module(obj, platform):
    """Elaborate ``obj`` (an unchanged RTL ``Elaboratable``) one level and pin the result (module doc)."""
    module = type(obj).elaborate(obj, platform)
    obj.elaborate = lambda platform: module
    return Opened(obj, module)


def prev(m, value, name, reset_less=False):
    """A register holding ``value`` of the previous cycle, reset to 0 (``Past`` is gone in Amaranth 0.5)."""
    reg = Signal.like(value, name=name, reset_less=reset_less)
    m.d.sync += reg.eq(value)
    return reg
