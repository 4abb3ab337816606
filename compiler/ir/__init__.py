"""A small typed graph IR for the compiler, built with a numpy API, with a float32 reference.

Contracts
---------
* ``Graph()`` collects ``Node`` s in build order, which is a topological order (an op can only take tensors
  that already exist). ``g.input(name, shape, dtype="float32")`` declares an input; every op method returns
  a ``Tensor`` handle (the output of one node; a node has exactly one output, named like the node).
  ``g.output(t, name=None)`` marks a tensor as a graph output under ``name`` (default: the tensor's name).
* Shapes are tuples of ints; the *leading* dimension of an input may be ``None`` (any batch size), and
  ``None`` then propagates to the ops' outputs. Every node checks its operands' shapes and dtypes when it
  is built and refuses them with a ``ValueError`` (shapes, ranks) or ``TypeError`` (kinds, dtypes) whose
  message names the op and the node, e.g. ``linear 'fc2': x has 32 features but W has 64 rows``.
* dtypes: ``"float32"`` (activations), ``"int32"`` / ``"int64"`` (token ids of an ``embedding``, the
  result of ``argmax``: ``"int32"``). Float ops take float32 tensors only.
* Ops (``x``, ``a``, ``b``, ``ids``: ``Tensor`` s of this graph; ``W``, ``b`` constants, ``table``: numpy
  arrays, copied and stored as float32):

  ============================  ======================================================================
  ``linear(x, W, b=None)``      ``x @ W (+ b)``: ``x`` (B, K) or (B, …, K), ``W`` **(K, N)**, ``b`` (N,).
                                Note that ``torch.nn.Linear.weight`` is stored (N, K): pass ``weight.T``.
  ``matmul(a, b)``              ``a @ b`` of two tensors: (M, K) @ (K, N) → (M, N), or batched with the
                                same leading dimensions, (…, M, K) @ (…, K, N) → (…, M, N)
  ``add(a, b)``                 ``a + b``; ``b`` a tensor or a constant, of ``a``'s shape or a (N,)
                                vector broadcast over the last axis of ``a`` (N = ``a.shape[-1]``); a
                                constant may also broadcast along the leading axes only ((T, N) for
                                ``a`` (None, T, N))
  ``relu(x)``                   ``max(x, 0)``
  ``tanh/sigmoid/gelu/exp(x)``  elementwise "table" activations (on the chip: a 256-entry lookup);
                                ``gelu`` is the exact one, ``x · (1 + erf(x / √2)) / 2``
  ``embedding(ids, table)``     ``table[ids]``: ``ids`` int of any shape, ``table`` (V, D) → ids.shape + (D,)
  ``argmax(x, axis=-1)``        the index of the largest entry along ``axis`` (the lowest on ties), int32
  ``reshape(x, shape)``         numpy ``reshape``; at most one ``-1``; a ``None`` batch stays the one
                                free dimension (the target must then hold exactly one ``-1``)
  ============================  ======================================================================

  The transformer ops (``TRANSFORMER_OPS``; ``compiler.quantize`` refuses them but ``silu``, a table op, and
  ``mul`` of 2-D tensors by a tensor, a scalar or a (N,) constant): ``softmax``,
  ``layernorm``, ``rmsnorm``, ``mul``, ``neg``, ``silu``, ``transpose``, ``concat``, ``slice``,
  ``masked_fill``, ``attention``: ``compiler.ir.transformer`` (the table of their operands and shapes) and
  ``compiler.ir.reference`` (their semantics). ``fuse_attention(g)`` (``compiler.ir.fuse``) returns ``g`` with
  every ``softmax(masked_fill(q @ transpose(k) · scale, causal mask, -inf)) @ v`` as one ``attention``.

  Each op takes an optional ``name=`` (else ``op_<n>``, ``n`` counting the graph's nodes from 0, inputs
  included); names are unique across the graph.
* ``g.run_float(inputs)`` → ``{output name: array}``: the float32 numpy reference (each op computed in
  float32, ``gelu``'s erf in float64 then rounded to float32). ``g.evaluate(inputs)`` returns every
  tensor by name (used for calibration). ``inputs`` must hold exactly the graph's inputs, with matching
  shapes (``None`` = any size) and kinds (float / int); ids out of range are a ``ValueError``.
* ``g.nodes`` (topological, inputs included as op ``"input"``), ``g.inputs`` (``Tensor`` s),
  ``g.outputs`` (``{name: Tensor}``), ``g.node(name)``, ``g.consumers(name)``, ``g.summary()`` /
  ``repr(g)``.
"""
from .fuse import fuse_attention
from .graph import Graph
from .node import DTYPES, Node, Tensor
from .reference import FLOAT_FUNCTIONS, TABLE_OPS, TRANSFORMER_OPS
from .rotary import fuse_rotate_half

__all__ = ["Tensor", "Node", "Graph", "DTYPES", "TABLE_OPS", "FLOAT_FUNCTIONS", "TRANSFORMER_OPS", "fuse_attention",
           "fuse_rotate_half"]
