"""A quantized graph in pipeline parallel: consecutive steps on consecutive chips of a line, the live tensors
forwarded over the links.

``lower_pipeline(qgraph, config, batch, chips=None, boundaries=None)`` lowers the steps of ``qgraph`` in
order, as ``compiler.lower`` does, each on the chip whose turn it is, with that chip's own
``compiler.lower.placement.Lowering`` (builder, allocator, tensors):

* ``boundaries`` (the index of the first step of chips 1, 2, …: increasing, within the steps) fixes the
  partition; without it the partition is greedy: a chip takes steps until the next does not fit its MEM
  (``MemoryFull``), and the next chip goes on from there, so a graph too large for one chip is lowered on as
  many chips as it needs (``chips``, when given, is then the most it may use);
* at a boundary, every tensor still to be read (by a later step or as an output) moves to the next chip: the
  activations (and argmax indices) in one transfer over the link (``compiler.system.transfer.send``: READ,
  SEND, RECV and WRITE per vector, one vector every ``link_interval`` cycles), into regions the next chip
  allocates; graph inputs not yet in MEM stay on the host and go to the chip that first reads them (each
  chip has its own host edge);
* the next chip's first step starts when the transfer has landed (every phase starts at its builder's
  ``end``), so the chips run one after another: the pipeline holds a model larger than one chip's MEM at the
  cost of the transfers; it does not overlap a single batch's chips (that would take micro-batches).

The result is a ``SystemModel``: one ``compiler.lower.CompiledModel`` per chip (the last holds the outputs),
``predicted_cycles`` (the system's), ``run_golden(float_inputs)`` on ``golden.system.SystemSim`` (equal to
``QGraph.run_int8``), ``chip_inputs(codes)`` for the RTL harness.
"""
from dataclasses import dataclass, field
from types import SimpleNamespace

from spec.config import MAX_CHIPS

from ..lower import finish
from ..lower.layout import _T
from ..lower.placement import Lowering
from ..lower.registry import lowering_for
from ..memory import MemoryFull
from ..quantize import QGraph
from .kernel import system_config
from .transfer import send

__all__ = ["SystemModel", "lower_pipeline"]


@dataclass
class SystemModel:
    """A graph lowered on ``len(models)`` chips of a line (module docstring, or in tensor parallel:
    ``compiler.system.tensor``): ``boundaries`` the first step of every chip after the first (the pipeline),
    ``transfers`` the words each link carries."""
    qgraph: QGraph
    config: object
    models: list
    boundaries: list
    transfers: dict = field(default_factory=dict)
    topology: str = "line"
    split: str = "pipeline"         # or "tensor" (compiler.system.tensor: boundaries empty, every chip all steps)
    plan: list = field(default_factory=list)        # tensor: what each chip holds (ShardPlan.describe)
    reason: str = ""                # compiler.compile(split="auto"): why this split

    @property
    def chips(self):
        return len(self.models)

    @property
    def chip_cycles(self):
        return tuple(m.program.predicted_cycles for m in self.models)

    @property
    def predicted_cycles(self):
        return max(self.chip_cycles)

    @property
    def matmul_items(self):
        return [m.matmul_items for m in self.models]

    def quantize_inputs(self, inputs):
        """``{input name: int8 codes}`` of float ``inputs`` for every chip that loads one."""
        codes = {}
        for m in self.models:
            codes.update(m.quantize_inputs(inputs))
        return codes

    def chip_inputs(self, codes):
        """Per chip, the MEM words the host writes before the run: its constants and its inputs."""
        return [m.constants + m.pack_inputs({k: v for k, v in codes.items() if k in m.inputs_layout.views})
                for m in self.models]

    def simulate(self, codes, max_cycles=None):
        """Every chip's program, constants and inputs on a fresh ``golden.system.SystemSim``, run: its
        ``SystemResult``."""
        from golden.system import SystemSim
        sim = SystemSim(self.config, chips=self.chips, topology=self.topology)
        for c, (m, words) in enumerate(zip(self.models, self.chip_inputs(codes))):
            sim.load(c, m.program.words)
            for s, bank, addr, w in words:
                sim.write_mem(c, s, bank, addr, w)
        return sim.run(max_cycles=max_cycles or self.predicted_cycles + 1000)

    @property
    def batch(self):
        return self.models[0].batch

    @property
    def outputs(self):
        return self.models[-1].outputs

    @property
    def inputs_layout(self):
        """Every chip's input views together (each input is loaded by the chips that read it)."""
        views, gathers = {}, {}
        for m in self.models:
            for name, vs in m.inputs_layout.views.items():
                views.setdefault(name, []).extend(vs)
                gathers.setdefault(name, []).extend(m.inputs_layout.gathers.get(name) or [None] * len(vs))
        return SimpleNamespace(views=views, gathers=gathers)

    def unpack_outputs(self, source):
        """The outputs from the last chip's final MEM: ``source`` a ``golden.system.SystemResult``, a list of
        per-chip MEM contents (``{slice name: banks × depth × L}``) or one of ``CompiledModel.unpack_outputs``'
        sources for the last chip."""
        if hasattr(source, "chips") and hasattr(source, "links"):
            source = source.chips[-1]
        elif isinstance(source, (list, tuple)):
            source = source[-1]
        return self.models[-1].unpack_outputs(source)

    def run_golden(self, inputs, max_cycles=None):
        """Quantize float ``inputs`` (as ``QGraph.run_int8``) and run on ``golden.system.SystemSim``: ``(outputs,
        cycles)``. A fault raises ``RuntimeError``."""
        res = self.simulate(self.quantize_inputs(inputs), max_cycles)
        if res.error is not None:
            raise RuntimeError(f"the system faulted: {res.error}")
        return self.unpack_outputs(res), res.cycles


def _check_boundaries(boundaries, n_steps, chips):
    b = list(boundaries)
    if any(not isinstance(x, int) or isinstance(x, bool) for x in b) or b != sorted(set(b)) or (
            b and not 1 <= b[0] <= b[-1] < n_steps):
        raise ValueError(f"boundaries must be increasing step indices between 1 and {n_steps - 1}, not {boundaries!r}")
    if chips is not None and len(b) != chips - 1:
        raise ValueError(f"boundaries must give the first step of each chip after the first: {chips - 1} for "
                         f"{chips} chips, not {len(b)}")
    return b


class _Pipeline:
    def __init__(self, qgraph, config, batch):
        self.q, self.c, self.batch = qgraph, config, batch
        self.lws = [Lowering(qgraph, config, batch, relaxed=True)]
        self.first = []                 # the first step index of every chip after the first
        self.transfers = {}

    def next_chip(self, si, st):
        """Start chip ``len(lws)`` at step ``si`` (``st``): move every tensor still to be read to it."""
        old = self.lws[-1]
        new = Lowering(self.q, self.c, self.batch, relaxed=True)
        new.uses = dict(old.uses)
        k = len(self.lws) - 1
        src, dst = [], []
        for name, t in old.T.items():
            if old.uses.get(name, 0) <= 0 and name not in st.inputs:
                continue
            if t.kind in ("host", "ids"):       # still on the host: the next chip's host edge loads it
                new.T[name] = _T(name, t.kind, t.shape, source=t.source, gather=t.gather)
                continue
            n = len(t.region.locs)
            r = new.region("act", f"'{name}' from chip {k}", n, desc=f"{t.kind} {t.shape} from chip {k}")
            new.T[name] = _T(name, t.kind, t.shape, region=r, pad=t.pad, source=t.source)
            src += t.region.locs
            dst += r.locs
        self.lws.append(new)
        self.first.append(si)
        if src:
            try:
                send([lw.b for lw in self.lws], k, k + 1, src, dst, max(old.b.end, new.b.end))
            except ValueError as e:
                raise ValueError(f"moving {len(src)} words of live tensors from chip {k} to chip {k + 1} before "
                              f"{st.op} '{st.name}' (a READ and a SEND item per word, one every link_interval = "
                              f"{self.c.link_interval} cycles): {e}") from None
            self.transfers[f"c{k}.east->c{k + 1}.west"] = len(src)

    def models(self):
        return [finish(lw, with_outputs=i == len(self.lws) - 1) for i, lw in enumerate(self.lws)]


def lower_pipeline(qgraph, config, batch=None, chips=None, boundaries=None):
    """Lower ``qgraph`` on a line of chips of ``config`` (link slices added when it has none) in pipeline
    parallel (module docstring): a ``SystemModel``."""
    if not isinstance(qgraph, QGraph):
        raise TypeError(f"qgraph must be a compiler.quantize.QGraph, not {type(qgraph).__name__}")
    if chips is not None and (not isinstance(chips, int) or isinstance(chips, bool) or not 1 <= chips <= MAX_CHIPS):
        raise ValueError(f"chips must be an integer between 1 and {MAX_CHIPS}, not {chips!r}")
    steps = qgraph.steps
    if boundaries is not None:
        boundaries = _check_boundaries(boundaries, len(steps), chips)
    limit = chips or MAX_CHIPS
    c = system_config(config, 2)
    batch = 1 if batch is None else batch
    p = _Pipeline(qgraph, c, batch)
    for si, st in enumerate(steps):
        if boundaries is not None and si in boundaries:
            p.next_chip(si, st)
        lw = p.lws[-1]
        for i in st.inputs:
            lw.consume(i)
        fn = lowering_for(st)
        tries = len(c.positions("mem"))
        if boundaries is not None:
            lw.attempts(fn, st, tries)
        else:
            snap = lw.snapshot()
            try:
                lw.attempts(fn, st, tries)
            except MemoryFull as e:
                if len(p.lws) == limit:
                    raise MemoryFull(f"{st.op} '{st.name}' does not fit chip {limit - 1}, the last of the {limit} "
                                     f"allowed (config {c.name}): {e}", words=e.words, anywhere=e.anywhere) from None
                lw.restore(snap)
                p.next_chip(si, st)
                lw = p.lws[-1]
                try:
                    lw.attempts(fn, st, tries)
                except MemoryFull as e2:
                    raise MemoryFull(f"{st.op} '{st.name}' does not fit one chip of config {c.name} even on a chip "
                                     f"of its own (with the tensors it reads): {e2}", words=e2.words,
                                     anywhere=e2.anywhere) from None
        lw.release_dead()
    return SystemModel(qgraph, c, p.models(), p.first, p.transfers)
