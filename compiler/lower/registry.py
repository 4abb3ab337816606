"""The one table of what is lowered: ``LOWERINGS`` maps a ``QGraph`` step's ``op`` to ``fn(lw, st)``.

``lw`` is the ``placement.Lowering`` under way, ``st`` the ``compiler.quantize`` step. ``fn`` reads its inputs
from ``lw.T`` (``lw.operand(st, i)`` as activations in MEM), allocates its constants and output through
``lw``, schedules its phases on ``lw.b`` from ``lw.b.end`` (after everything before it) and sets
``lw.T[st.name]``. ``lowering_for(st)``: the entry, or ``NotImplementedError`` naming the op and the node.
"""
from .add import lower_add
from .argmax import lower_argmax
from .embedding import lower_embedding
from .graph_input import lower_input
from .linear import lower_linear
from .matmul import lower_matmul
from .mul import lower_mul
from .relu import lower_relu
from .reshape import lower_reshape
from .rotate import lower_rotate_half
from .rows import lower_norm, lower_softmax
from .slice import lower_slice
from .table import lower_table

__all__ = ["LOWERINGS", "lowering_for"]


def lower_attention_refused(lw, st):
    """Attention over a whole sequence is not lowered: a language model runs as decode steps."""
    raise NotImplementedError(f"attention '{st.name}': a compiled program runs attention only as a language "
                              f"model's decode step, with its KV cache in MEM: compile the model with "
                              f"compiler.compile_lm(model, max_context, calibration=ids)")

LOWERINGS = {
    "input": lower_input,
    "linear": lower_linear,
    "matmul": lower_matmul,
    "add": lower_add,
    "mul": lower_mul,
    "norm": lower_norm,            # layernorm, rmsnorm
    "softmax": lower_softmax,
    "relu": lower_relu,
    "table": lower_table,          # tanh, sigmoid, gelu, exp, silu
    "embedding": lower_embedding,
    "argmax": lower_argmax,
    "reshape": lower_reshape,
    "slice": lower_slice,
    "rotate_half": lower_rotate_half,
    "attention": lower_attention_refused,
}


def lowering_for(st):
    """The lowering of step ``st`` (``LOWERINGS[st.op]``)."""
    fn = LOWERINGS.get(st.op)
    if fn is None:
        raise NotImplementedError(f"{st.op} '{st.fused[0]}': the lowering handles linear, matmul, add, mul, "
                                  f"layernorm/rmsnorm, softmax, slice, rotate_half, relu, tanh/sigmoid/gelu/exp/silu, "
                                  f"embedding (of input ids), argmax and reshape steps, not {st.op}")
    return fn
