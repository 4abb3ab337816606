"""A quantized graph in tensor parallel over a line of chips: Megatron-LM's split of its MLPs.

``lower_tensor(qgraph, config, batch, chips)`` → ``SystemModel`` (``split="tensor"``): every chip lowers
``ShardPlan.shard(qgraph, chip)`` (``compiler.system.shard``) with its own ``compiler.lower.placement.Lowering``,
the steps in order as ``compiler.lower`` does: a linear feeding another (through a ReLU, a table, elementwise
steps) has its output columns divided among the chips in whole MXU tiles, the second one its input rows; the
partial sums of the second are all-reduced over the links (``shard.row_linear``, ``shard.lockstep``), and every
chip requantizes the totals. Everything else is replicated (every chip loads the inputs from its own host
edge and computes the steps outside a split), so every chip ends with the outputs: the host reads them from the
last chip, as for the pipeline.

Against the pipeline (``compiler.system.pipeline``), which runs the chips one after another for a batch, the
split divides the weight installs of the split layers among the chips at the cost of an all-reduce of the
second layer's output (``n`` vectors of each batch row); ``compiler.compile(..., chips=N, split="auto")``
builds both and keeps the fewer predicted cycles (the scheduler's exact ones), saying why.
"""
from spec.config import MAX_CHIPS

from ..lower import finish, lower_step
from ..lower.placement import Lowering
from ..memory import MemoryFull
from ..quantize import QGraph
from .kernel import system_config
from .pipeline import SystemModel
from .shard import link_words, lockstep, row_linear, shard_plan

__all__ = ["lower_tensor"]


def _steps(lw, plan, chip):
    """Chip ``chip``'s lowering of its share (a generator meeting the others at each row linear)."""
    rows = plan.rows
    for st in lw.q.steps:
        for i in st.inputs:
            lw.consume(i)
        if st.name in rows:
            yield from row_linear(lw, st, chip, plan.chips)
        else:
            lower_step(lw, st)
        lw.release_dead()


def _lower(qgraph, c, batch, plan, relaxed):
    lws = [Lowering(plan.shard(qgraph, k), c, batch, relaxed=relaxed) for k in range(plan.chips)]
    lockstep([_steps(lw, plan, k) for k, lw in enumerate(lws)], lambda: [lw.b for lw in lws])
    return [finish(lw) for lw in lws]


def lower_tensor(qgraph, config, batch=None, chips=2):
    """Lower ``qgraph`` on ``chips`` chips of ``config`` (link slices added when it has none) in tensor parallel
    (module docstring): a ``SystemModel``. ``NotImplementedError`` when no linear feeds another (nothing to
    divide), ``ValueError`` when a layer has fewer tiles than chips."""
    if not isinstance(qgraph, QGraph):
        raise TypeError(f"qgraph must be a compiler.quantize.QGraph, not {type(qgraph).__name__}")
    if isinstance(chips, bool) or not isinstance(chips, int) or not 2 <= chips <= MAX_CHIPS:
        raise ValueError(f"chips must be an integer between 2 and {MAX_CHIPS} for a tensor split, not {chips!r}")
    c = system_config(config, chips)
    batch = 1 if batch is None else batch
    plan = shard_plan(qgraph, chips, c, pick=None)
    try:
        models = _lower(qgraph, c, batch, plan, relaxed=False)
    except ValueError as strict:    # MEM full, or no placement schedules: reuse dead MEM, as compiler.lower does
        try:
            models = _lower(qgraph, c, batch, plan, relaxed=True)
        except MemoryFull:
            raise
        except ValueError as e:
            raise ValueError(f"{strict} (and with MEM reused and the placement preferences relaxed: {e})") from None
    return SystemModel(qgraph, c, models, [], link_words(c, [m.program for m in models]), split="tensor",
                       plan=plan.describe())
