"""Post-training int8 quantization of a ``compiler.ir.Graph``, and the bit-exact int8 reference.

``quantize(graph, calibration)`` → ``QGraph``. ``calibration`` is one ``{input name: array}`` dict or a
list of them; the float graph is run on each (``Graph.evaluate``) and every tensor's min and max over all
of them is its calibration range (plain min/max, no percentile clipping). A graph holding a transformer op
(``compiler.ir.TRANSFORMER_OPS``) other than ``silu`` and the 2-D ``mul`` below, or a batched (N-D) ``matmul``,
is refused before calibration with a ``NotImplementedError`` naming the op and the node (their int8 rules
are issue 10's next step).

The scheme (what the lowering stage must follow)
------------------------------------------------
* **Activations: per-tensor asymmetric int8.** ``real = scale · (q - zp)``, ``q`` in -128 … 127,
  ``zp`` in -128 … 127. From a range ``[mn, mx]``: ``lo = min(mn, 0)``, ``hi = max(mx, 0)`` (0 is always
  exact), ``[0, 0]`` is widened to ``[0, 1]``; ``scale = (hi - lo) / 255``, ``zp = clamp(round_half_away(-128
  - lo / scale), -128, 127)``. A non-negative tensor (after a ReLU, a sigmoid) gets ``zp = -128`` and uses
  all 256 codes.
* **Weights: per-output-channel symmetric int8** (``zp = 0``): ``s_w[c] = max(max|W[:, c]| / 127, s_top ·
  CHANNEL_SCALE_FLOOR)`` with ``s_top`` the largest channel's scale and the floor ``2**-16`` (a zero or
  nearly dead column cannot get a vanishing scale; an all-zero ``W`` takes 1/127), ``W_q =
  clamp(round_half_away(W / s_w), -127, 127)`` (-128 never appears).
* **Rounding**: ``round_half_away`` everywhere (ties away from zero); float steps (input quantization, the
  compile-time constants) in float64, exact on ties.
* **Input quantization** (on the host, the only float step at run time): ``q = clamp(round_half_away(x /
  scale) + zp, -128, 127)``. Integer inputs (embedding ids) pass unchanged.
* **linear** ``y = x @ W + b`` (with a following ``add`` of a constant (N,) vector folded into ``b``, and a
  following ``relu`` fused, when the intermediate tensor has that one consumer and is not a graph output):

  - ``acc = golden.mxu.matmul(q_x, W_q)`` (int8 × int8 → int32, on the MXU), then
  - ``acc = golden.vxu.add(acc, bias)`` (int32, wraps), with the compile-time int32 vector
    ``bias[c] = round_half_away(b[c] / (s_x · s_w[c])) - zp_x · Σ_k W_q[k, c]`` (the input zero point is
    folded into the bias: no run-time correction);
  - ``q = requantv(acc, mult, shift, zp_out)``: per channel ``clamp(zp_out + round_half_away(acc[c] · mult[c]
    / 2**(31 + shift)), -128, 127)`` with ``mult[c] / 2**(31 + shift) ≈ s_x · s_w[c] / s_out``: one
    ``shift`` for all channels (the chip's ``requantv`` takes ``mult`` as a per-lane vector operand and
    ``shift``/``zp`` from SETQ). See ``requant_multipliers`` for how they are chosen;
  - fused ReLU: ``q = golden.vxu.vmax(q, zp_out)`` (clamp at the zero point). Its output range starts at 0,
    so ``zp_out = -128`` and the clamp is a no-op the lowering may skip (``Requant.clamp_needed``).

  ``quantize`` refuses (``ValueError``) a linear whose int32 accumulator could wrap (``K · 128 · 127 · 2 +
  max|bias|`` must stay below 2**31), so no valid input ever wraps.
* **matmul** of two activations ``a`` (M, K), ``b`` (K, N): ``acc = matmul(q_a, q_b) - zp_b · rowsum(q_a) -
  zp_a · colsum(q_b) + K · zp_a · zp_b`` (int32, with ``golden.vxu.mul``/``add``), one multiplier ``s_a · s_b
  / s_out`` for every channel (as a vector), then requant (and a fused ReLU) as for linear.
* **add** ``a + b``: ``acc = q_a · m_a + q_b · m_b + c`` in int32 (``golden.vxu.mul``/``add``) with the
  accumulator scale ``s_acc = max(s_a, s_b) / 2**16``, ``m = round_half_away(s / s_acc)`` (so ``m <= 2**16``
  and ``|acc| <= 2**25``), ``c = -(m_a · zp_a + m_b · zp_b)``; a constant ``b`` has no ``q_b`` and is folded:
  ``c = round_half_away(b / s_acc) - m_a · zp_a`` (taking ``s_b = max|b| / 127``). Then requant with the one
  multiplier ``s_acc / s_out`` (and a fused ReLU).
* **mul** (2-D tensors only, so far) of two activations: ``acc = (q_a - zp_a) · (q_b - zp_b)`` in int32
  (``golden.vxu.add`` of ``-zp`` then ``golden.vxu.mul``; ``|acc| <= 255**2``), one multiplier ``s_a · s_b /
  s_out``; by a constant ``b`` of shape () or (N,): ``k = round_half_away(b / s_k)`` with ``s_k = max|b| /
  2**15`` (``MUL_CONST_BITS``; an all-zero ``b`` takes ``s_k = 1``), ``acc = q_a · k + c`` with ``c = -zp_a ·
  k`` (``|acc| <= 255 · 2**15``), one multiplier ``s_a · s_k / s_out``. Then requant (no ReLU is fused).
* **output scales and the multiplier bound**: the requant multiplier must be below 1 (``shift >= 0``): when
  the calibrated ``s_out`` is finer than ``max(acc scale)`` it is widened to ``max(acc scale) / (1 -
  2**-20)`` (the codes cannot be finer than the accumulator's unit anyway; ``zp`` recomputed).
* **relu** not fused (its input has other consumers or is an output): ``q = vmax(q_x, zp_x)``, the same
  scale and zero point.
* **tanh, sigmoid, gelu, exp, silu**: a 256-entry int8 table in ``golden.vxu.lut`` order (entry ``j`` for the
  input code ``q`` with ``q & 0xFF == j``): ``table[q & 0xFF] = quantize(f(s_x · (q - zp_x)))``, ``f`` the
  float32 function of ``compiler.ir.FLOAT_FUNCTIONS``. The output range is ``f``'s image of the 256 input
  codes (not the calibration samples: every code the table can produce is representable).
* **embedding**: the table quantized per-tensor symmetric (``s = max|T| / 127``, ``zp = 0``,
  ±127); the output is ``T_q[ids]`` with that scale (a gather, no arithmetic).
* **argmax** works on the int8 codes of its input (``golden.vxu.argmax``: the lowest index on ties), not on
  the int32 accumulator of a preceding linear: with per-channel weight scales the accumulators of
  different channels are in different units, while the int8 codes share one scale. Output int32 indices.
* **reshape**: the same codes, scale and zero point.

``QGraph``: ``steps`` (``QStep`` s in topological order, fused groups as one step), ``qparams`` (``{tensor
name: QParams}`` for every int8 tensor the steps produce, graph inputs included), ``run_int8(inputs)`` (the
bit-exact reference: ``{output name: int8 codes}``, argmax int32), ``dequantize(name, q)``,
``run_dequantized(inputs)``, ``weight_bytes``, ``summary()``.
"""
from .driver import quantize
from .graph import QGraph, QStep
from .ops import ACC_SCALE_BITS, MUL_CONST_BITS
from .params import CHANNEL_SCALE_FLOOR as CHANNEL_SCALE_FLOOR
from .params import QParams, Requant, quantize_weights, requant_multipliers, requantv, round_half_away

__all__ = ["QParams", "Requant", "QStep", "QGraph", "quantize", "requantv", "requant_multipliers",
           "round_half_away", "quantize_weights", "ACC_SCALE_BITS", "MUL_CONST_BITS"]
