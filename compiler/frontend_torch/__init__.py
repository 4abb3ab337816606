"""A PyTorch front end: ``from_torch(module, example_inputs)`` → a ``compiler.ir.Graph``.

The module is traced with ``torch.fx`` (as ``symbolic_trace`` does, its buffers as ``get_attr`` nodes; so its
``forward`` must not branch on tensor values) and run once on ``example_inputs``
(``torch.fx.passes.shape_prop.ShapeProp``) for the shape and value of every node; each fx node then becomes
one IR node **of the same name** (``fc1``, ``_0``, ``_2_1`` for nested ``nn.Sequential`` children, ``relu``,
``argmax`` …), so the IR's own errors name the torch node too. A node computed from sizes and constants only
(``self.tril[:T, :T] == 0``, ``self.wpe(self.pos[:T])``, ``self.cos[:T]``) is folded into a constant at the
traced shapes: the sequence length is the example's (only the batch is free). Last, attention written out is
fused into one ``attention`` (``compiler.ir.fuse_attention``).

``import torch`` happens inside ``from_torch``: ``compiler`` (and this package) import without torch.

Inputs
------
* The graph inputs are the ``forward`` 's arguments, under their names (``nn.Sequential``'s is ``input``).
  ``example_inputs``: a dict ``{argument name: numpy array or torch tensor}``, a tuple / list in argument
  order, or one array for a one-argument ``forward``. Float arrays are taken as float32, integer ones as
  int64 (int32 stays int32) (token ids for an ``nn.Embedding``).
* ``dynamic_batch=True`` (default): the leading dimension of every input is declared ``None`` (any batch
  size); a reshape must then keep the leading (batch) dimension (the traced output's first size equals its
  input's) and becomes ``reshape(x, (-1, …))``. Use an example batch size that differs from the other
  sizes. ``dynamic_batch=False``: the example shapes, exactly.

Supported (everything else is refused, see below)
-------------------------------------------------
==========================================================  ===================================================
``nn.Linear`` (with or without bias), ``F.linear`` with       ``linear``, ``W = weight.T`` (float32 copies);
parameters / buffers of the module                           the input (batch, …, features)
``nn.ReLU``, ``F.relu``, ``torch.relu``, ``x.relu()``        ``relu``
``nn.Tanh``, ``torch.tanh``, ``F.tanh``, ``x.tanh()``        ``tanh``
``nn.Sigmoid``, ``torch.sigmoid``, ``F.sigmoid``, ``x.sigmoid()``  ``sigmoid``
``nn.GELU()`` / ``F.gelu(x)`` with ``approximate='none'``    ``gelu`` (exact, erf); ``'tanh'`` is refused
``torch.exp``, ``x.exp()``                                   ``exp``
``nn.Embedding`` (``max_norm=None``)                         ``embedding`` (the weight, float32)
``torch.argmax(x, dim)``, ``x.argmax(dim)`` (``keepdim=False``, an int ``dim``)  ``argmax``
``nn.Flatten``, ``torch.flatten``, ``x.flatten``,            ``reshape`` to the traced output shape (shape
``torch.reshape``, ``x.reshape``, ``x.view``                 arguments such as ``x.size(0)``, ``x.shape[0]``
                                                             are taken from the trace)
``x + y``, ``torch.add(x, y)`` (tensors, or a parameter /    ``add`` (``y`` of ``x``'s shape or a vector over
a number as ``y``)                                           the last axis; a constant broadcast along the
                                                             leading axes, size-1 axes first dropped)
``x @ y``, ``torch.matmul(x, y)`` of two activations, 2-D    ``matmul`` (``y`` 's rows must be known: with
or batched with the same leading dimensions                  an input as ``y`` use ``dynamic_batch=False``)
``nn.Sequential`` (nested), ``nn.Identity``, ``nn.Dropout``  traced through; identity / dropout (eval mode
(in eval mode), ``x.contiguous()``                           only) are skipped
==========================================================  ===================================================

The transformer ops (``compiler.frontend_torch.transformer``; float only so far, ``compiler.quantize`` refuses
them):

==========================================================  ===================================================
``nn.LayerNorm``, ``F.layer_norm`` (over the last axis)      ``layernorm`` (weight, bias, eps)
``nn.RMSNorm``, ``F.rms_norm`` (over the last axis)          ``rmsnorm`` (weight, eps; ``eps=None``: float32's)
``nn.SiLU``, ``F.silu``                                      ``silu``
``nn.Softmax(dim)``, ``F.softmax``, ``torch.softmax``,       ``softmax`` (the last axis only)
``x.softmax``
``x * y``, ``torch.mul``, ``x.mul`` (a tensor of ``x``'s     ``mul`` (``x * 0.5``: a scalar constant)
shape, a parameter / buffer / constant expression, a number)
``x / c``, ``torch.div``, ``x.div`` (``c`` a constant)       ``mul`` by ``1 / c``
``-x``, ``torch.neg``, ``x.neg()``                           ``neg``
``x.transpose(a, b)``, ``torch.transpose``,                  ``transpose``
``x.permute(…)`` that swaps two axes
``x[..., a:b]`` (slices along the last axis; sizes from      ``slice``
``x.shape`` allowed)
``torch.cat`` / ``torch.concat`` (last axis)                 ``concat``
``x.split``, ``torch.split``, ``x.chunk``, ``torch.chunk``   one ``slice`` per piece taken (``q, k, v =
(last axis)                                                  x.split(D, dim=-1)``)
``x.masked_fill(mask, value)``, ``torch.masked_fill``        ``masked_fill``; the mask a constant expression
                                                             (``self.tril[:T, :T] == 0``)
``F.scaled_dot_product_attention(q, k, v, is_causal=…,       ``attention`` (no ``attn_mask``, ``dropout_p=0``,
scale=…)``                                                   no ``enable_gqa``)
``softmax((q @ k.transpose(-2, -1)) * c, masked_fill with    ``attention(q, k, v, causal=True, scale=c)``
the causal mask, -inf) @ v`` (and without the mask)          (``compiler.ir.fuse_attention``)
==========================================================  ===================================================

Outputs: one returned tensor is the output ``"output"``; a tuple / list gives ``"output_0"``,
``"output_1"`` …; a dict gives its keys.

Errors
------
An op outside the table raises ``UnsupportedOpError`` (a ``ValueError``) naming the op and the fx node, e.g.
``unsupported op torch.nn.Conv1d at node 'conv' (supported: torch.nn.Linear, …)``, ``unsupported op
operator.pow at node 'pow_1' (…)`` for a Python-side ``x ** 2``, ``unsupported op
torch.nn.GELU(approximate='tanh') at node 'act' (only the exact GELU, approximate='none', is supported)``,
``unsupported op operator.getitem at node 'getitem' (only slices along the last axis are supported …)``.
Other problems (a model fx cannot trace, example inputs that do not match the ``forward``, a reshape that
mixes the batch dimension) raise ``ValueError``; shape and dtype errors of the IR builder propagate
unchanged (they name the op and the node).
"""
from .errors import SUPPORTED, UnsupportedOpError
from .trace import from_torch

__all__ = ["from_torch", "UnsupportedOpError", "SUPPORTED"]
