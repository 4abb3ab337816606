"""A PyTorch front end: ``from_torch(module, example_inputs)`` → a ``compiler.ir.Graph``.

The module is traced with ``torch.fx.symbolic_trace`` (so its ``forward`` must not branch on tensor values)
and run once on ``example_inputs`` (``torch.fx.passes.shape_prop.ShapeProp``) for the shape of every value;
each fx node then becomes one IR node **of the same name** (``fc1``, ``_0``, ``_2_1`` for nested
``nn.Sequential`` children, ``relu``, ``argmax`` …), so the IR's own errors name the torch node too.

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
parameters / buffers of the module                           the input must be 2-D (batch, features)
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
a number as ``y``)                                           the last axis)
``x @ y``, ``torch.matmul(x, y)`` of two 2-D activations     ``matmul`` (``y`` 's rows must be known: with
                                                             an input as ``y`` use ``dynamic_batch=False``)
``nn.Sequential`` (nested), ``nn.Identity``, ``nn.Dropout``  traced through; identity / dropout (eval mode
(in eval mode), ``x.contiguous()``                           only) are skipped
==========================================================  ===================================================

Outputs: one returned tensor is the output ``"output"``; a tuple / list gives ``"output_0"``,
``"output_1"`` …; a dict gives its keys.

Errors
------
An op outside the table raises ``UnsupportedOpError`` (a ``ValueError``) naming the op and the fx node, e.g.
``unsupported op torch.nn.Conv1d at node 'conv' (supported: torch.nn.Linear, …)``, ``unsupported op
operator.mul at node 'mul' (…)`` for a Python-side ``x * 2``, ``unsupported op
torch.nn.GELU(approximate='tanh') at node 'act' (only the exact GELU, approximate='none', is supported)``.
Other problems (a model fx cannot trace, example inputs that do not match the ``forward``, a reshape that
mixes the batch dimension) raise ``ValueError``; shape and dtype errors of the IR builder propagate
unchanged (they name the op and the node).
"""
from .errors import SUPPORTED, UnsupportedOpError
from .trace import from_torch

__all__ = ["from_torch", "UnsupportedOpError", "SUPPORTED"]
