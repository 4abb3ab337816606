"""A language model's decode step in tensor parallel over a line of chips (Megatron-LM's split of a block).

``lower_decode_system(qgraph, graph1, config, chips, pick)`` → ``(parts, plan)``: one ``(CompiledModel,
StepData)`` per chip (``compiler.lm.decode``'s step, each chip lowering its share of the step graph,
``ShardPlan.shard``) and the ``ShardPlan`` (``compiler.system.shard``: the split and the all-reduce).

* Divided: the attentions by whole heads (each chip its heads' q, k, v columns and KV caches, the output
  projection's rows), the MLPs by whole tiles of their hidden columns, and, with ``pick="host"``, the head by
  tiles of the vocabulary (the host reads each chip's logits from its own host edge).
* Replicated: the embedding, the norms, the residual adds (and with ``pick="chip"`` the head and the argmax):
  every chip computes them on the same data, so no chip waits for another's copy; the host writes the token
  word to every chip's host edge.
* Every chip's lowering is ``compiler.lm.decode._Decode``'s generator (``lower``), whose row linears yield a
  meeting (``shard.row_linear``); ``shard.lockstep`` places each all-reduce on every builder at once. The
  step's predicted cycles are the system's: the largest chip's.
"""
from spec.config import MAX_CHIPS

from ..lm.decode import _Decode, _decode_steps, _mem_summary
from ..memory import MemoryFull
from .kernel import system_config
from .shard import ShardPlan, lockstep, row_linear, shard_plan

__all__ = ["ShardPlan", "shard_plan", "lower_decode_system"]


class _Shard(_Decode):
    """Chip ``chip``'s share of the decode step (``ShardPlan.shard``); a row linear is a meeting point."""

    def __init__(self, qg, g1, config, pick, plan, chip):
        self.plan, self.chip, self.row_groups = plan, chip, plan.rows
        super().__init__(qg, g1, config, pick, shard=lambda qd: plan.shard(qd, chip))

    def lower_step(self, st, groups, last_attention):
        if st.name in self.row_groups:
            return row_linear(self.lw, st, self.chip, self.plan.chips)
        return super().lower_step(st, groups, last_attention)


def lower_decode_system(qgraph, graph1, config, chips, pick="host"):
    """The decode step of ``qgraph`` on ``chips`` chips of ``config`` in a line (module docstring):
    ``([(CompiledModel, StepData)] per chip, ShardPlan)``."""
    if isinstance(chips, bool) or not isinstance(chips, int) or not 2 <= chips <= MAX_CHIPS:
        raise ValueError(f"chips must be an integer between 2 and {MAX_CHIPS} for a tensor-parallel decode step, "
                         f"not {chips!r}")
    c = system_config(config, chips)
    plan = shard_plan(_decode_steps(qgraph, graph1)[0], chips, c, pick)
    shards = [_Shard(qgraph, graph1, c, pick, plan, k) for k in range(chips)]
    try:
        lockstep([s.lower() for s in shards], lambda: [s.lw.b for s in shards])
    except MemoryFull as e:
        raise MemoryFull(f"the decode step on {chips} chips does not fit config {config.name}: {e} (MEM taken so "
                         f"far on chip 0: {_mem_summary(shards[0].lw)})", e.words, e.anywhere) from None
    parts = [s.finish() for s in shards]
    vocab = int(qgraph.graph.node(next(iter(qgraph.outputs.values()))).shape[-1])
    for _, data in parts:
        data.vocab = vocab          # the token ids a step takes (a chip's logits may be a share of them)
    return parts, plan
