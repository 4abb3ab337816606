"""A two-layer MLP in tensor parallel across a line of chips, the partial sums added over the links.

``mlp(config, X, W1, b1, q1, W2, chips)`` computes what ``compiler.kernels.mlp`` computes on one chip,
``Y = relu(requant(X @ W1 + b1)) @ W2`` (int32), divided the way Megatron-LM divides a transformer's MLP:

* chip ``c`` holds a block of ``W1``'s columns (whole MXU tiles), the same block of ``b1`` and the same block
  of ``W2``'s rows, and all of ``X`` (its host edge writes it);
* it computes its block of the hidden layer, ``H_c = relu(requant(X @ W1_c + b1_c))`` (the requantization is
  per tensor, so a block of columns needs nothing from the other chips), and its partial result
  ``P_c = H_c @ W2_c`` (int32), exactly the one-chip kernel's phases on its share;
* ``Y = Σ_c P_c``: ``compiler.system.transfer.reduce_line`` sends the last chip's partial sums west, every chip
  adding its own at the VXU as they pass, and chip 0 stores ``Y`` over its ``P_0``.

Every chip computes for the same time (equal shares), then the reduction takes ``n·link_interval`` cycles for
``n = ceil(N2 / mxu_cols)·M`` result vectors plus a fixed delay per chip: the split pays when the layers' MXU
work is large against the second layer's output. ``split="auto"`` weighs it against ``rows`` by their
exact cycles (``compiler.system.gemm.choose``).
"""
import numpy as np

from golden import vxu as gvxu
from golden.mxu import matmul

from ..kernels import (
    _check_config,
    _check_gemm,
    _check_ints,
    _dense_expected,
    _dense_phase,
    _gemm_regions,
    _requant_params,
    check_int8,
)
from ..kernels import mlp as chip_mlp
from ..memory import MemAllocator, _sides
from ..phases import _Gemm, _gemm_phase, _pack_bias, _pack_w, _pack_x, _tiles, _ToMem, _unpack_y
from ..schedule import ProgramBuilder
from .gemm import _check_chips, choose, shares
from .kernel import SystemKernel, system_config
from .transfer import reduce_line

__all__ = ["mlp"]


def _check(c, X, W1, b1, q1, W2):
    _check_gemm(X, W1, "X", "W1")
    check_int8("W2", W2)
    K, N1 = X.shape[1], W1.shape[1]
    if W2.shape[0] != N1:
        raise ValueError(f"W1 is {K} x {N1} but W2 is {W2.shape[0]} x {W2.shape[1]}: W2 must have {N1} rows")
    if c.mxu_rows != c.mxu_cols:
        raise ValueError(f"mlp needs a square MXU (mxu_rows == mxu_cols) so that hidden result words are the "
                         f"second layer's activation words, not {c.mxu_rows} x {c.mxu_cols}")
    return (_check_ints("b1", b1, (N1,), gvxu.INT32_MIN, gvxu.INT32_MAX), _requant_params(q1))


def mlp(config, X, W1, b1, q1, W2, chips=2, split="auto", topology="line"):
    """``relu(requant(X @ W1 + b1)) @ W2`` on ``chips`` chips of ``config``: ``split`` ``"tensor"`` (module
    docstring), ``"rows"`` (chip ``c`` runs ``compiler.kernels.mlp`` on its rows of ``X`` with all the weights:
    no transfers) or ``"auto"`` (``compiler.system.gemm.choose``: the fewer predicted cycles among those that
    fit, ``reason`` saying what each takes). A ``SystemKernel``; its ``transfers`` are the words per link."""
    _check_chips(chips)
    c = system_config(_check_config(config, "mxu", "vxu"), chips)
    b1, q = _check(c, X, W1, b1, q1, W2)
    if topology not in ("line", "ring"):
        raise ValueError(f"topology must be 'line' or 'ring', not {topology!r}")
    builders = {"tensor": lambda: _tensor(c, X, W1, b1, q, W2, chips, topology),
                "rows": lambda: _rows(c, X, W1, b1, q, W2, chips, topology)}
    return choose(f"MLP {X.shape[0]} x {X.shape[1]} x {W1.shape[1]} x {W2.shape[1]}", builders, split, chips,
                  c, lambda n: None)


def _rows(c, X, W1, b1, q, W2, chips, topology):
    kernels = [chip_mlp(c, X[a:e], W1, b1, q, W2) for a, e in shares(X.shape[0], chips)]
    unpackers = [k.unpack for k in kernels]
    hidden = _dense_expected(X, W1, b1, q).astype(np.int8)
    return SystemKernel("mlp", c, topology, [k.program for k in kernels], [k.inputs for k in kernels],
                        [{"y": k.outputs["y"]} for k in kernels], matmul(hidden, W2),
                        lambda raw: np.concatenate([u(r) for u, r in zip(unpackers, raw)]),
                        [k.matmul_items for k in kernels], "rows")


def _tensor(c, X, W1, b1, q, W2, chips, topology):
    (M, K), N1, N2 = X.shape, W1.shape[1], W2.shape[1]
    pieces = shares(N1, chips, c.mxu_cols, "hidden columns")
    builders = [ProgramBuilder(c) for _ in range(chips)]
    inputs, parts, items, allocs = [], [], [], []
    for b, (a, e) in zip(builders, pieces):
        alloc = MemAllocator(c)
        allocs.append(alloc)
        x, w1, bias_reg, h, reps, mm1 = _dense_phase(b, alloc, c, M, K, e - a, b1[a:e], q, "hidden")
        _, w2 = _gemm_regions(c, alloc, M, e - a, N2, x=h)
        west, east = _sides(c, c.positions("mxu")[0])
        y = alloc.alloc("Y" if chips == 1 else "P", _tiles(N2, c.mxu_cols) * M, east + west[::-1],
                        what=f" (int32 {M} x {N2}{'' if chips == 1 else ', partial sums'})")
        mm2 = _gemm_phase(b, b.end, _Gemm(M, e - a, N2, h, w2), _ToMem(b, y, M))
        inputs.append(x.inputs(_pack_x(X, c)) + w1.inputs(_pack_w(W1[:, a:e], c))
                      + bias_reg.inputs(_pack_bias(b1[a:e], c, reps)) + w2.inputs(_pack_w(W2[a:e], c)))
        parts.append(y)
        items.append(mm1 + mm2)
    out = parts[0]
    if chips > 1:   # chip 0 stores the totals apart from its partial sums (a queue issues one READ or WRITE a cycle)
        vxu = c.positions("vxu")[0]
        near = sorted((p for p in c.positions("mem") if p not in out.slices), key=lambda p: abs(p - vxu))
        out = allocs[0].alloc("Y", len(out.locs), near, what=f" (int32 {M} x {N2}, on chip 0's MEM slices holding "
                                                               f"no partial sums)")
    reduce_line(builders, [y.locs for y in parts], max(b.end for b in builders), out=out.locs)
    programs = [b.finish() for b in builders]
    outputs = [{"y": out.segments}] + [{} for _ in range(chips - 1)]
    hidden = _dense_expected(X, W1, b1, q).astype(np.int8)
    words = _tiles(N2, c.mxu_cols) * M
    transfers = {f"c{k + 1}.west->c{k}.east": words for k in range(chips - 1)}
    return SystemKernel("mlp", c, topology, programs, inputs, outputs, matmul(hidden, W2),
                        lambda raw: _unpack_y(raw[0]["y"], M, N2, c), items, "tensor", transfers=transfers)
