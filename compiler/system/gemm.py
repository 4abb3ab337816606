"""A GEMM split across the chips of a system, and the cost model that chooses the split.

``gemm(config, X, W, chips, split="auto")``: ``Y = X @ W`` (int8 ``M × K`` @ int8 ``K × N`` → int32) on
``chips`` chips, each running the one-chip GEMM of ``compiler.kernels.gemm`` on its share; every chip has
its own host edge (docs/multichip.md), so the host writes each chip's operands and reads its results:

* ``"rows"``: chip ``c`` computes rows ``M·c/n … M·(c+1)/n`` of ``Y`` (its rows of ``X``, all of ``W``): the
  weights are installed on every chip, the activations divided;
* ``"tensor"``: chip ``c`` computes a block of ``Y``'s columns (whole MXU tiles of ``N``; all of ``X``, its
  columns of ``W``): the weights divided, every chip streaming all activations;
* ``"auto"``: the cost model: both are scheduled and the one with fewer predicted cycles (exact: the
  scheduler's own cycles, which the chips reproduce) that fits the chips' MEM wins, ties to ``rows``;
  ``reason`` says what each would take.

No chip needs another's data, so no link carries anything: the speed-up is the work divided (less the
part every chip repeats: the weight installs of ``rows``, the activation streaming of ``tensor``).
``chips_needed`` is the fewest chips on which a GEMM fits at all.
"""
import numpy as np

from golden.mxu import matmul
from spec.config import MAX_CHIPS

from ..kernels import _check_gemm
from ..kernels import gemm as chip_gemm
from ..memory import MemoryFull
from ..phases import _tiles
from .kernel import SPLITS, SystemKernel, system_config

__all__ = ["gemm", "chips_needed", "shares", "choose"]


def shares(n, parts, unit=1, what="rows"):
    """``parts`` consecutive ``(start, stop)`` pieces of ``range(n)`` in whole ``unit``\\ s (the last piece may
    end in a partial unit), as even as that allows, larger pieces first; ``ValueError`` ("cannot be divided")
    when there are fewer units than parts."""
    units = _tiles(n, unit)
    if units < parts:
        piece = f"tiles of {unit} {what}" if unit > 1 else what
        raise ValueError(f"{n} {what} cannot be divided among {parts} chips: each needs at least one of the "
                         f"{units} {piece}")
    out, u0 = [], 0
    for c in range(parts):
        k = units // parts + (c < units % parts)
        out.append((u0 * unit, min(n, (u0 + k) * unit)))
        u0 += k
    return out


def _check_chips(chips):
    if not isinstance(chips, int) or isinstance(chips, bool) or not 1 <= chips <= MAX_CHIPS:
        raise ValueError(f"chips must be an integer between 1 and {MAX_CHIPS}, not {chips!r}")
    return chips


def _split_gemm(config, X, W, chips, split, topology):
    c = system_config(config, chips)
    M, N = X.shape[0], W.shape[1]
    if split == "rows":
        pieces = shares(M, chips)
        kernels = [chip_gemm(c, X[a:b], W) for a, b in pieces]
    else:
        pieces = shares(N, chips, c.mxu_cols, "columns")
        kernels = [chip_gemm(c, X, W[:, a:b]) for a, b in pieces]
    unpackers = [k.unpack for k in kernels]

    def unpack(raw):
        parts = [u(r) for u, r in zip(unpackers, raw)]
        return np.concatenate(parts, axis=0 if split == "rows" else 1)

    return SystemKernel("gemm", c, topology, [k.program for k in kernels], [k.inputs for k in kernels],
                        [k.outputs for k in kernels], matmul(X, W), unpack, [k.matmul_items for k in kernels],
                        split)


def _describe(split, chips, kern, err):
    if err is not None:
        return f"{split}: does not fit ({err})"
    return f"{split}: {kern.predicted_cycles:,} cycles on {chips} chip{'s' * (chips > 1)}"


def _fits_not(e):
    """Whether ``e`` says a split does not fit (MEM, or fewer tiles than chips), not a bad argument."""
    return isinstance(e, MemoryFull) or "cannot be divided" in str(e)


def choose(what, builders, split, chips, config, needed):
    """The cost model: build ``builders[s]()`` for ``split`` (or every split for ``"auto"``) and keep the one
    with the fewest predicted cycles (the scheduler's exact cycles) that fits, ties to the first of
    ``SPLITS``; ``reason`` lists what each takes. ``MemoryFull`` naming each split's shortfall when none fits,
    with ``needed(chips)`` (``None`` or a sentence on the chips that would hold it) after it."""
    if split not in SPLITS + ("auto",):
        raise ValueError(f"split must be one of {', '.join(map(repr, SPLITS + ('auto',)))}, not {split!r}")
    results = {}
    for s in ((split,) if split != "auto" else SPLITS):
        try:
            results[s] = (builders[s](), None)
        except ValueError as e:
            if not _fits_not(e):
                raise
            results[s] = (None, e)
    fits = {s: k for s, (k, e) in results.items() if k is not None}
    why = "; ".join(_describe(s, chips, k, e) for s, (k, e) in results.items())
    if not fits:
        first = next(e for _, e in results.values())
        more = needed(chips)
        raise MemoryFull(f"{what} does not fit {chips} chip{'s' * (chips > 1)} of config {config.name}: {why}"
                         + (f"; {more}" if more else ""), words=getattr(first, "words", 0),
                         anywhere=getattr(first, "anywhere", 0))
    best = min(fits, key=lambda s: (fits[s].predicted_cycles, SPLITS.index(s)))
    kern = fits[best]
    kern.reason = why if split != "auto" else f"{best} chosen: {why}"
    return kern


def gemm(config, X, W, chips=2, split="auto", topology="line"):
    """``Y = X @ W`` on ``chips`` chips of ``config`` (link slices added when it has none), divided by
    ``split`` (module docstring); a ``SystemKernel``. ``MemoryFull`` when no split fits, naming what each
    needs and the fewest chips that would hold it."""
    _check_gemm(X, W)
    _check_chips(chips)
    (M, K), N = X.shape, W.shape[1]

    def needed(n):
        need = chips_needed(config, M, K, N)
        if need is None:
            return f"it does not fit on {MAX_CHIPS} chips either"
        if need[0] > n:
            return f"it needs at least {need[0]} chips ({need[1]} split)"
        return f"it fits {need[0]} chip{'s' * (need[0] > 1)} with the {need[1]} split"

    builders = {s: (lambda s=s: _split_gemm(config, X, W, chips, s, topology)) for s in SPLITS}
    return choose(f"GEMM {M} x {K} x {N}", builders, split, chips, system_config(config, chips), needed)


def chips_needed(config, M, K, N, limit=MAX_CHIPS):
    """``(chips, split)``: the fewest chips (up to ``limit``) on which a GEMM of ``M × K × N`` fits, or
    ``None``. Placement only (the operands are zeros)."""
    X, W = np.zeros((M, K), np.int8), np.zeros((K, N), np.int8)
    for n in range(1, limit + 1):
        for s in SPLITS:
            try:
                _split_gemm(config, X, W, n, s, "line")
            except ValueError as e:
                if _fits_not(e):
                    continue
                raise
            return n, s
    return None
