"""A system of chips joined by scheduled links (docs/multichip.md): the RTL twin of ``golden.system``.

``System(config, chips, topology)`` holds ``chips`` ``rtl.chip.Chip(config, links=…)`` and, for every
directed link of the topology (``golden.system``'s: ``"line"`` joins chip ``c``'s east end with chip
``c + 1``'s west end both ways, ``"ring"`` also the last chip's east with chip 0's west), a delay line of
``link_latency`` registers: the word on a chip's ``tx`` during ``u`` is on the other chip's ``rx`` during
``u + link_latency`` (``rtl.link_delay.LinkDelayLine``).

* **Host edges**: one per chip (each card has its own host link): ports ``cmd<c>`` / ``resp<c>``, the chip's
  own streams and commands. Loads, MEM writes and reads go to each chip as on a lone chip.
* **Start**: a chip's START (its host edge accepting it) arms it; in the first cycle in which every chip is
  armed (or accepts START), every chip's core gets the START pulse together, the delay lines are cleared and
  every chip runs from the same cycle 0. A chip's host edge waits (as it does while its chip runs) from its
  START until the system is done, so a STATUS or READ_MEM after START answers after the whole run.
* **Done**: in the first cycle in which every chip is done and every delay line is empty the system is done,
  ``cycles`` = that cycle's number (= golden's ``D + 1``, ``D`` the last cycle with a chip running or a word
  in flight).
* **Faults**: a chip that faults in cycle ``t`` (``Chip.fault_now``, a done chip's ``LINK_DROPPED`` included)
  stops every running chip at the end of ``t``; the system is done with ``cycles = t + 1``, ``error`` high,
  ``err_chip`` the lowest chip that faulted in ``t`` and ``err_cycle`` = ``t``. The code, slice and pc are
  that chip's own (its STATUS). The delay lines move only while the system runs: words still in flight
  after a fault stay where they are (and are cleared at the next start).

Other ports (harnesses and waveforms): ``running``, ``done``, ``error``, ``cycles`` (32), ``err_chip``
(3), ``err_cycle`` (32). ``chips`` is 1 … ``MAX_RTL_CHIPS`` (8).
"""
import operator
from functools import reduce

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from .chip import Chip
from .common import check_config
from .link_delay import LinkDelayLine

__all__ = ["System", "TOPOLOGIES", "MAX_RTL_CHIPS", "links_of", "check_system_args"]

TOPOLOGIES = ("line", "ring")
#: The RTL system's chips (issue 11: 1–8; ``err_chip`` is 3 bits). ``golden.system`` takes up to
#: ``spec.config.MAX_CHIPS``.
MAX_RTL_CHIPS = 8


def check_system_args(config, chips, topology):
    """``ValueError`` / ``TypeError`` in one line for a bad configuration, chip count or topology of a
    ``System`` (also what ``sim.system_verilator`` checks before any build); returns ``(config, chips,
    topology)``."""
    check_config(config)
    if not isinstance(chips, int) or isinstance(chips, bool) or not 1 <= chips <= MAX_RTL_CHIPS:
        raise ValueError(f"chips must be an integer between 1 and {MAX_RTL_CHIPS}, not {chips!r}")
    if topology not in TOPOLOGIES:
        raise ValueError(f"topology must be one of {', '.join(map(repr, TOPOLOGIES))}, not {topology!r}")
    if (chips > 1 or topology == "ring") and set(config.link_ends) != {"west", "east"}:
        raise ValueError(f"a {topology} of {chips} chip{'s' * (chips > 1)} needs a link slice at both ends of "
                         f"config {config.name} (slices: {', '.join(config.slice_names)}; ChipConfig.with_links() "
                         f"adds them)")
    return config, chips, topology


def links_of(chips, topology):
    """The directed links ``((src chip, src end), (dst chip, dst end))`` of ``chips`` chips in ``topology``,
    in ``golden.system.SystemSim``'s order."""
    pairs = [(c, c + 1) for c in range(chips - 1)]
    if topology == "ring":
        pairs.append((chips - 1, 0))
    out = []
    for a, b in pairs:
        out += [((a, "east"), (b, "west")), ((b, "west"), (a, "east"))]
    return out


class System(wiring.Component):
    """``chips`` chips of ``config`` in ``topology`` (module docstring)."""

    def __init__(self, config, chips=2, topology="line"):
        check_system_args(config, chips, topology)
        self.config, self.n, self.topology = config, chips, topology
        self.links = links_of(chips, topology)
        ends = [[] for _ in range(chips)]
        for (sc, se), (dc, de) in self.links:
            for c, e in ((sc, se), (dc, de)):
                if e not in ends[c]:
                    ends[c].append(e)
        self.chips = [Chip(config, links=tuple(e)) for e in ends]
        members = {}
        for c, chip in enumerate(self.chips):
            members[f"cmd{c}"] = chip.signature.members["cmd"]
            members[f"resp{c}"] = chip.signature.members["resp"]
        members.update(running=Out(1), done=Out(1), error=Out(1), cycles=Out(32),
                       err_chip=Out((MAX_RTL_CHIPS - 1).bit_length()), err_cycle=Out(32))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        n = self.n
        for c, chip in enumerate(self.chips):
            m.submodules[f"chip{c}"] = chip
            wiring.connect(m, wiring.flipped(getattr(self, f"cmd{c}")), chip.cmd)
            wiring.connect(m, chip.resp, wiring.flipped(getattr(self, f"resp{c}")))

        # ---- start: every chip together ----
        armed = [Signal(name=f"armed{c}") for c in range(n)]
        fire = Signal()
        m.d.comb += fire.eq(reduce(operator.and_, [a | ch.start_req for a, ch in zip(armed, self.chips)]))
        for a, ch in zip(armed, self.chips):
            m.d.sync += a.eq((a | ch.start_req) & ~fire)

        running = Signal()
        done = Signal()
        err = Signal()
        err_chip = Signal((MAX_RTL_CHIPS - 1).bit_length())
        t = Signal(32)
        cycles = Signal(32)
        err_cycle = Signal(32)

        # ---- delay lines ----
        empty = []
        for i, ((sc, se), (dc, de)) in enumerate(self.links):
            line = LinkDelayLine(self.config)
            m.submodules[f"link{i}_c{sc}{se[0]}_c{dc}{de[0]}"] = line
            rx = getattr(self.chips[dc], f"rx_{de}")
            m.d.comb += [
                line.src.eq(getattr(self.chips[sc], f"tx_{se}")),
                line.run.eq(running),       # frozen outside a run; a word left after a fault arrives nowhere
                line.clear.eq(fire),
                rx.data.eq(line.out.data),
                rx.valid.eq(line.out.valid & running),
            ]
            empty.append(line.empty)

        faults = [ch.fault_now for ch in self.chips]
        any_fault = Signal()
        all_done = Signal()
        m.d.comb += [
            any_fault.eq(reduce(operator.or_, faults)),
            all_done.eq(reduce(operator.and_, [ch.done for ch in self.chips] + empty)),
        ]
        for ch, a in zip(self.chips, armed):
            m.d.comb += [ch.sys_start.eq(fire), ch.sys_busy.eq(a | running), ch.stop.eq(running & any_fault)]

        with m.If(fire):
            m.d.sync += [running.eq(1), done.eq(0), err.eq(0), err_chip.eq(0), t.eq(0), cycles.eq(0),
                         err_cycle.eq(0)]
        with m.Elif(running):
            m.d.sync += t.eq(t + 1)
            with m.If(any_fault):
                m.d.sync += [running.eq(0), done.eq(1), err.eq(1), cycles.eq(t + 1), err_cycle.eq(t)]
                for c in reversed(range(n)):
                    with m.If(faults[c]):
                        m.d.sync += err_chip.eq(c)
            with m.Elif(all_done):
                m.d.sync += [running.eq(0), done.eq(1), cycles.eq(t)]
        m.d.comb += [self.running.eq(running), self.done.eq(done), self.error.eq(err), self.cycles.eq(cycles),
                     self.err_chip.eq(err_chip), self.err_cycle.eq(err_cycle)]
        return m
