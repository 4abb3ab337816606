"""Closed-form cycle counts of the compiler's kernels, from the spec alone (no program is built).

Each function takes the shapes and a ``spec.config.ChipConfig`` and returns the cycle count the compiler's
static schedule predicts (``compiler.kernels.<name>(...).program.predicted_cycles``), exactly:
``gemm_cycles(M, K, N, c)``, ``dense_cycles(M, K, N, c)`` (``gemm_bias_requant_relu``),
``mlp_cycles(M, K, N1, N2, c)``, ``lut_cycles(n, c)`` (``lut_activation`` of ``n`` vectors) and
``argmax_cycles(n, c)``. The numbers read are the spec's: ``isa.MEM_READ_LATENCY``, ``isa.VXU_PIPELINE``,
``isa.lut_vectors``, ``config.mxu.latency`` (``spec.mxu``), and stream hops ``|q - p|`` between slices.

Method (``docs/perf.md``): where the kernels put their data follows the compiler's placement rules, which
are arithmetic on word counts (``_place``, a copy of ``compiler.memory.MemAllocator``'s fill rule: slices in
order, whole granules, lowest address first). A VXU pass from cycle ``s`` samples its first operand at
``f = s + MEM_READ_LATENCY + max hops(source, VXU)`` and ends one cycle after its last result word is
stored: ``f + VXU_PIPELINE + max over words (i + hops(VXU, slice of word i)) + 1``.

A GEMM is a sequence of ``n`` tiles (M block of at most ``mxu_acc_depth`` rows, N tile, K tile). With ``ws``
the first weight row's sampling cycle and ``T`` the first activation's, the scheduler's rules are
``ws' = max(T + 1, ws + R)`` and ``T' = max(T + mb, ws' + 1)``: a max-plus recurrence, solved in closed form
(``_last_T``): the last tile's ``T`` is the best of the all-compute path ``T1 + Σ a_i`` (``a_i = max(mb_i,
2)``) and the paths through one weight-bound stretch (``R`` a tile). Tile sizes take two values (full blocks
and the last), so the optimum is at a handful of break points.

With ``S > 1`` weight slots (``mxu_weight_slots``) a tile's install waits for the last swap of its own slot,
``S`` tiles back, not the previous one: ``ws_j = max(T_{j-S} + 1, ws_{j-1} + R)``, moved on a cycle while
it would meet the MXU slice's issue of an earlier tile's MATMUL (``ws_j = T_k``, ``k < j``), and ``T_j =
max(T_{j-1} + mb_{j-1}, ws_j + 1)``. The collision step is not max-plus, so this recurrence is stepped tile
by tile (``_last_T_slots``, ``O(tiles)``), from the same spec figures.

Scope: a kernel whose GEMM activations lie on both sides of the MXU, or whose results change direction or
get nearer the consumer along their words (placements the presets reach only near their MEM limits),
raises ``NotImplementedError`` naming the region: the schedule then splits a tile's MATMULs, which this
model does not cover. A kernel that does not fit in MEM raises ``ValueError`` as the compiler does.
"""
from spec import isa
from spec.config import ChipConfig

__all__ = ["gemm_cycles", "dense_cycles", "mlp_cycles", "lut_cycles", "argmax_cycles", "bias_reps"]

RL, PIPE = isa.MEM_READ_LATENCY, isa.VXU_PIPELINE


def _tiles(n, size):
    return -(-n // size)


def bias_reps(c, M, Nt):
    """Copies of each bias vector the kernels keep in MEM (the compiler's rule: at least 16, at most ``M``,
    enough that the bias READs stay within an eighth of the queue)."""
    return max(1, min(M, max(16, -(-16 * M * Nt // c.queue_depth))))


class _Mem:
    """Free words per MEM slice, filled as ``compiler.memory.MemAllocator`` fills them."""

    def __init__(self, c):
        self.c = c
        self.room = {p: c.mem_banks * c.mem_depth for p in c.positions("mem")}

    def place(self, name, n, slices, granule=1):
        """``[(slice, words)]`` of a region of ``n`` words, in word order."""
        out, got = [], 0
        for p in dict.fromkeys(slices):
            k = min(self.room[p] // granule, (n - got) // granule) * granule
            if 0 < n - got - k < granule and self.room[p] - k >= n - got - k:
                k = n - got
            if k:
                out.append((p, k))
                self.room[p] -= k
            got += k
        if got < n:
            raise ValueError(f"{name} needs {n} words of MEM, short by {n - got} (config {self.c.name})")
        return out


def _sides(c, pos):
    mems = c.positions("mem")
    return [p for p in mems if p < pos], [p for p in mems if p > pos]


def _hmax(region, to):
    return max(abs(p - to) for p, _ in region)


def _last_seen(region, frm):
    """``max over words i of (i + hops(frm, slice of word i))``."""
    i0, best = 0, 0
    for p, n in region:
        best = max(best, i0 + n - 1 + abs(p - frm))
        i0 += n
    return best


def _one_side(name, region, pos):
    if len({p > pos for p, _ in region}) > 1:
        raise NotImplementedError(f"{name} lies on both sides of slice {pos}: a tile's MATMULs split there, "
                                  f"which the closed form does not cover")


def _monotone(name, region, frm):
    hs = [abs(p - frm) for p, _ in region]
    if hs != sorted(hs):
        raise NotImplementedError(f"{name} gets nearer slice {frm} along its words: its last word is not the "
                                  f"last stored, which the closed form does not cover")


def _vxu_pass(c, start, src, out):
    """End (one past the last activity) of one VXU pass over ``src`` into ``out`` from ``start``."""
    vxu = c.positions("vxu")[0]
    f = start + RL + _hmax(src, vxu)
    return f + PIPE + _last_seen(out, vxu) + 1


def _last_T(T1, ws1, R, n, n1, a1, a2):
    """The last tile's first-activation cycle: max-plus solution of the tile recurrence (module docstring).
    Tiles 1 … n1 step by ``a1``, the rest by ``a2`` (``P(m)`` = sum of the first ``m`` steps)."""
    if n == 1:
        return T1

    def P(m):
        return a1 * min(m, n1) + a2 * max(0, m - n1)

    best = T1 + P(n - 1)                                         # never weight-bound
    cand = sorted({x for x in (1, 2, n1 - 1, n1, n1 + 1, n1 + 2, n - 2, n - 1) if 1 <= x <= n - 1})
    for k in cand:                                               # weight-bound from the start to tile k + 1
        best = max(best, ws1 + R * k + 1 + P(n - 1) - P(k))
        for j in cand:                                           # weight-bound from tile j + 1 to k + 1
            if j < k:
                best = max(best, T1 + P(j - 1) + R * (k - j) + 2 + P(n - 1) - P(k))
    return best


def _last_T_slots(T1, ws1, R, S, n, n1, m1, m2):
    """``_last_T`` with ``S`` weight slots, the recurrence stepped (module docstring): tiles 1 … n1 have ``m1``
    rows, the rest ``m2``."""
    ws, Ts = ws1, [T1]
    issued = {T1}                           # the MXU slice issues tile k's MATMUL at T_k - 1, its LOADW at ws - 1
    for j in range(1, n):
        ws += R
        if j >= S:
            ws = max(ws, Ts[j - S] + 1)
        while ws in issued:
            ws += 1
        T = max(Ts[-1] + (m1 if j <= n1 else m2), ws + 1)
        Ts.append(T)
        issued.add(T)
    return Ts[-1]


def _gemm_T(c, start, M, K, N, x, w):
    """``(T of the last tile, its rows)`` of a GEMM phase from ``start`` with activations ``x``, weights
    ``w``."""
    mxu = c.positions("mxu")[0]
    R, D = c.mxu_rows, c.mxu_acc_depth
    _one_side("the activations", x, mxu)
    tiles = _tiles(N, c.mxu_cols) * _tiles(K, R)
    blocks = _tiles(M, D)
    last = M - (blocks - 1) * D
    ws1 = start + RL + _hmax(w, mxu)
    T1 = max(ws1 + 1, start + RL + _hmax(x, mxu))
    n, n1 = blocks * tiles, (blocks - 1) * tiles
    S = c.mxu_weight_slots
    if S > 1:
        return _last_T_slots(T1, ws1, R, S, n, n1, D, last), last
    return _last_T(T1, ws1, R, n, n1, max(D, 2), max(last, 2)), last


def _check(c, *kinds):
    if not isinstance(c, ChipConfig):
        raise TypeError(f"config must be a spec.config.ChipConfig, not {c!r}")
    for kind in kinds:
        if not c.positions(kind):
            raise ValueError(f"config must have a {kind.upper()} slice, not {c.name}")


def _gemm_regions(c, mem, M, K, N, x=None):
    mxu = c.positions("mxu")[0]
    west, east = _sides(c, mxu)
    R = c.mxu_rows
    Kt, Nt = _tiles(K, R), _tiles(N, c.mxu_cols)
    if x is None:
        x = mem.place("X", Kt * M, west + east)
    busy = {p for p, _ in x}
    w = mem.place("W", Nt * Kt * R, [p for p in west + east if p not in busy], granule=R)
    return x, w


def _to_mem_end(c, mem, start, M, K, N, x, w):
    """End of a GEMM phase whose results go straight to MEM east of the MXU first."""
    mxu = c.positions("mxu")[0]
    west, east = _sides(c, mxu)
    y = mem.place("Y", _tiles(N, c.mxu_cols) * M, east + west[::-1])
    _one_side("the results", y, mxu)
    T, mb = _gemm_T(c, start, M, K, N, x, w)
    return T + c.mxu.latency + mb - 1 + _hmax(y, mxu) + 1


def gemm_cycles(M, K, N, config):
    """Cycles of ``compiler.kernels.gemm`` on an ``M × K`` by ``K × N`` product."""
    _check(config, "mxu")
    mem = _Mem(config)
    x, w = _gemm_regions(config, mem, M, K, N)
    return _to_mem_end(config, mem, 0, M, K, N, x, w)


def _dense_end(c, mem, M, K, N):
    """End of GEMM + bias add + requant + ReLU from cycle 0, and the output region."""
    mxu, vxu = c.positions("mxu")[0], c.positions("vxu")[0]
    Nt = _tiles(N, c.mxu_cols)
    x, w = _gemm_regions(c, mem, M, K, N)
    west, east = _sides(c, vxu)
    used = {p for p, _ in x} | {p for p, _ in w}
    reps = bias_reps(c, M, Nt)
    mem.place("bias", Nt * reps, [p for p in east + west[::-1] if p not in used], granule=reps)
    z = mem.place("Y", Nt * M, east + west[::-1])
    _monotone("the dense output", z, vxu)
    T, mb = _gemm_T(c, 0, M, K, N, x, w)
    f = T + c.mxu.latency + abs(vxu - mxu)             # the VXU sees the last tile's first result
    end = f + PIPE + mb - 1 + _hmax(z, vxu) + 1
    end = _vxu_pass(c, end, z, z)                      # requant
    return _vxu_pass(c, end, z, z), z                  # ReLU


def dense_cycles(M, K, N, config):
    """Cycles of ``compiler.kernels.gemm_bias_requant_relu`` (``relu(requant(X @ W + bias))``)."""
    _check(config, "mxu", "vxu")
    return _dense_end(config, _Mem(config), M, K, N)[0]


def mlp_cycles(M, K, N1, N2, config):
    """Cycles of ``compiler.kernels.mlp``: the dense layer ``M × K → N1``, then a GEMM ``N1 → N2``."""
    _check(config, "mxu", "vxu")
    if config.mxu_rows != config.mxu_cols:
        raise ValueError(f"mlp needs a square MXU, not {config.mxu_rows} x {config.mxu_cols}")
    mem = _Mem(config)
    end, h = _dense_end(config, mem, M, K, N1)
    _, w2 = _gemm_regions(config, mem, M, N1, N2, x=h)
    return _to_mem_end(config, mem, end, M, N1, N2, h, w2)


def lut_cycles(n, config):
    """Cycles of ``compiler.kernels.lut_activation`` on ``n`` vectors: LOADLUT of the table, one VOP lut pass."""
    _check(config, "vxu")
    mem, mems = _Mem(config), list(config.positions("mem"))
    vxu = config.positions("vxu")[0]
    nt = isa.lut_vectors(config.lanes)
    x = mem.place("x_vectors", n, mems)
    table = mem.place("table", nt, mems, granule=nt)
    out = mem.place("y", n, mems[::-1])
    loaded = RL + _hmax(table, vxu) + nt               # one past the LOADLUT's last sample
    return _vxu_pass(config, loaded, x, out)


def argmax_cycles(n, config):
    """Cycles of ``compiler.kernels.argmax`` on ``n`` vectors: one VOP argmax pass."""
    _check(config, "vxu")
    mem, mems = _Mem(config), list(config.positions("mem"))
    v = mem.place("vectors", n, mems)
    out = mem.place("y", n, mems[::-1])
    return _vxu_pass(config, 0, v, out)
