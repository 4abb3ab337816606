"""Placement: where a lowering puts every region in MEM, and trying placements until one schedules.

* Constants (``const``, ``const_vectors``) go to the MEM slice with the most free words that none of the
  operands read at the same time holds (weights: not the GEMM's activations; biases: neither; multipliers:
  not the accumulators), in one slice when they fit; ``pref_region`` takes a list of such exclusion sets
  (the first that leaves room wins) and a ``plan`` rotating the slices, for placements tried one by one.
* A step's output (``placed``) goes in place when nothing else reads its input, else on MEM slices the step
  does not read (slices already holding activations first, then west of the MXU first), else on the others:
  one queue per slice issues one instruction per cycle, so a slice's READs and WRITEs can collide. The
  placements are tried in that order (``snapshot`` of builder and allocator, ``restore``, retry) until one
  schedules; the first scheduling error when none does.
* A region that does not fit raises the ``MemAllocator`` ``MemoryFull`` (a ``ValueError``): what, how many
  words and bytes, and the free words.
* Liveness (``release_dead``, after every step): a tensor's remaining readers are counted from the graph (one
  more for each graph output it is, never consumed); a region no tensor with readers left holds (aliases
  share a region) goes back to the allocator, the step's constants and scratch regions included (constants
  not, with ``keep_constants``: a program that runs again on the same MEM, the decode step of ``compiler/lm``).
* Relaxed (the second pass of ``lower``, for a model the first cannot place): data written on the chip takes
  those words first (``reuse``: safe, since every later phase starts at ``ProgramBuilder.end``, after the
  last read of what was there; constants and inputs, loaded before the run, never do), constants go to the
  fullest slice that holds them (``fit``), and a constant whose preferred slices have no room falls back to
  the excluded ones (``spill`` rotates them); ``attempts`` retries a step over these choices.
"""
import copy

import numpy as np

from ..memory import MemAllocator, MemoryFull, Region, _sides
from ..phases import _tiles
from ..schedule import ProgramBuilder
from .layout import PAD_CODE
from .model import InputsLayout

__all__ = ["Lowering"]


class Lowering:
    """The state of one lowering (module docstring): ``q`` the ``QGraph``, ``c`` the config, ``b`` the
    ``ProgramBuilder``, ``alloc`` the ``MemAllocator``, ``T`` the tensors by name (``layout._T``), and what
    the ``CompiledModel`` is made of (``regions``, ``constants``, ``layout``, ``matmuls``). ``relaxed``: reuse
    dead regions' MEM and let constants fall back to the slices their preference excludes (module
    docstring)."""

    def __init__(self, qgraph, config, batch, relaxed=False):
        self.q, self.c, self.batch = qgraph, config, batch
        self.relaxed = relaxed
        self.reuse = relaxed                # relaxed: data written on the chip takes reusable words first
        self.fit = relaxed                  # relaxed: constants to the fullest slice that holds them first
        self.spill = 0                      # relaxed: the rotation of the excluded slices a constant falls back to
        self.released = set()               # ids of the regions handed back to the allocator
        self.keep_constants = False         # a program run again and again (compiler/lm): constants stay
        self.parents = {}                   # tensor name -> the region it is a part of (slices of tiles)
        self.prefetch = False               # linears install their first weight tile under earlier work
        self.weight_home = None             # a MEM slice for the linears' weights, which other data keep off
        self.alloc = MemAllocator(config)
        self.b = ProgramBuilder(config)
        self.mxu, self.vxu = config.positions("mxu")[0], config.positions("vxu")[0]
        self.T = {}
        self.regions = []                   # (role, Region)
        self.constants = []
        self.act_slices = []                # MEM slices holding activations, in order of first use
        self.layout = InputsLayout(config)
        self.matmuls = 0
        self.uses = {}                      # tensor name -> remaining uses (consumer steps + outputs)
        for st in qgraph.steps:
            for i in st.inputs:
                self.uses[i] = self.uses.get(i, 0) + 1
        for t in qgraph.outputs.values():
            self.uses[t] = self.uses.get(t, 0) + 1

    # ---- allocation --------------------------------------------------------------------------------
    def _what(self, desc, n, avoid=""):
        return f" ({desc}; {n} words = {n * 4 * self.c.lanes} bytes{avoid})"

    def region(self, role, name, n, exclude=(), granule=1, desc="", avoid="", order=None, loaded=None,
               weights=False):
        """A region of ``n`` words on MEM slices not in ``exclude``: in one slice when it fits (``order``:
        the slices to try, else activations west of the MXU first / constants by most free words; relaxed:
        by fewest, then the excluded slices, rotated by ``spill``), else spread over them (the
        ``MemAllocator`` error when they do not hold it). ``loaded`` (default: constants): the host writes it
        before the run, so it never takes reusable words; anything else does first when relaxed.

        With a ``weight_home`` slice, a linear's ``weights`` go there when they fit and every other region
        keeps off it when it fits elsewhere: the weight READs of tiles installed early (``_gemm_prefetched``)
        then never wait for the read port of a slice the vector passes use. A preference, never a refusal."""
        h = self.weight_home
        if h is not None:
            if weights:
                tries = [dict(order=[h])] if order is None and h not in set(exclude) else []
            elif order is not None:
                tries = [dict(order=[p for p in order if p != h])] if h in order and len(order) > 1 else []
            else:
                tries = [dict(exclude=set(exclude) | {h})]
            for kw in tries:
                args = {"exclude": exclude, "order": order, **kw}
                try:
                    return self._region(role, name, n, granule=granule, desc=desc, avoid=avoid, loaded=loaded,
                                        **args)
                except ValueError:          # does not fit there: as without a home
                    pass
        return self._region(role, name, n, exclude, granule, desc, avoid, order, loaded)

    def _region(self, role, name, n, exclude=(), granule=1, desc="", avoid="", order=None, loaded=None):
        c = self.c
        reuse = self.reuse and not (role == "const" if loaded is None else loaded)
        rest = []                           # relaxed: the fallback, whose reads must schedule apart from the operands'
        if order is None:
            mems = c.positions("mem")
            allowed = [p for p in mems if p not in set(exclude)]

            def room(p):
                return self.alloc.free_words(p) + (self.alloc.reusable_words(p) if reuse else 0)
            if role == "act":
                west, east = _sides(c, self.mxu)
                order = [p for p in west + east if p in allowed]
            else:                           # relaxed (fit): the fullest slice that holds it first (holes kept)
                order = sorted(allowed, key=room if self.fit else lambda p: -room(p))
            if self.relaxed and role == "const":
                rest = sorted((p for p in mems if p not in allowed), key=lambda p: -room(p))
                rest = rest[self.spill % len(rest):] + rest[:self.spill % len(rest)] if rest else []
        what = self._what(desc, n, avoid)
        region = None
        for cand in [[p] for p in order] + ([order] if rest and order else []) + [[p] for p in rest]:
            try:                            # one slice when it fits (the preferred ones first, then spread)
                region = self.alloc.alloc(name, n, cand, granule=granule, what=what, reuse=reuse)
                break
            except ValueError:
                continue
        if region is None:                  # the MemAllocator error (relaxed: the exclusion was a preference)
            what = self._what(desc, n, avoid.replace(", on ", ", preferably on ", 1) if rest else avoid)
            region = self.alloc.alloc(name, n, order + rest, granule=granule, what=what, reuse=reuse)
        if role == "act":
            self.act_slices += [p for p in region.slices if p not in self.act_slices]
        self.regions.append((role, region))
        return region

    def const(self, name, data, exclude=(), granule=1, desc="", avoid="", weights=False):
        data = np.asarray(data)
        r = self.region("const", name, len(data), exclude, granule, desc, avoid, weights=weights)
        self.constants += r.inputs(data)
        return r

    def const_vectors(self, name, vector, n, exclude):
        """``n`` word locations (one per operand word) reading copies of ``vector`` (at most 16 copies)."""
        reps = max(1, min(n, 16))
        r = self.const(name, np.tile(np.asarray(vector, np.int64), (reps, 1)), exclude, granule=reps,
                       desc=f"{reps} copies of one vector", avoid=", on MEM slices not holding its operand")
        return [r.locs[i % reps] for i in range(n)]

    # ---- trying placements -------------------------------------------------------------------------
    def snapshot(self):
        """What ``restore`` goes back to: builder, allocator, regions, constants, tensors, input views."""
        return (copy.deepcopy(self.b, {id(self.c): self.c}), self.alloc.state, len(self.regions),
                len(self.constants), list(self.act_slices), self.matmuls,
                {name: (t, t.kind, t.region, t.pad) for name, t in self.T.items()},
                {name: len(v) for name, v in self.layout.views.items()}, dict(self.parents))

    def restore(self, snap):
        b, alloc, nr, nc, acts, mm, tensors, views, parents = snap
        self.parents = dict(parents)
        self.b, self.alloc.state, self.matmuls = copy.deepcopy(b, {id(self.c): self.c}), alloc, mm
        del self.regions[nr:]
        del self.constants[nc:]
        self.act_slices[:] = acts
        self.T.clear()
        for name, (t, kind, region, pad) in tensors.items():
            t.kind, t.region, t.pad = kind, region, pad
            self.T[name] = t
        for name in list(self.layout.views):
            n = views.get(name, 0)
            del self.layout.views[name][n:], self.layout.gathers[name][n:]
            if not n:
                del self.layout.views[name], self.layout.gathers[name]

    def attempts(self, fn, st, n):
        """``fn(self, st)`` (step ``st``'s lowering) with ``spill`` = 0, 1, … ``n - 1`` until it schedules
        (restoring in between): each try puts the constants that find no preferred slice on another of the
        excluded ones; then the same without reusing MEM in this step (reused words can collide too), then
        both with the constants by most free words."""
        snap = self.snapshot()
        first = None
        for fit, reuse, spill in [(f, r, k) for f in (True, False) for r in (True, False) for k in range(n)]:
            self.fit, self.reuse, self.spill = fit, reuse, spill
            try:
                return fn(self, st)
            except ValueError as e:
                first = first or e
                self.restore(snap)
                if isinstance(e, MemoryFull) and e.hopeless:
                    break                   # larger than all MEM it could take: no other choice helps
        raise first

    def release_dead(self):
        """Hand every region no later step nor output reads back to the allocator (after a step: every later
        phase starts at ``ProgramBuilder.end``, after the last read of the dead data)."""
        live = {id(t.region) for t in self.T.values() if t.region is not None and self.uses.get(t.name, 0) > 0}
        live |= {id(r) for name, r in self.parents.items() if self.uses.get(name, 0) > 0}
        for role, r in self.regions:
            if role == "const" and self.keep_constants:
                continue
            if id(r) not in live and id(r) not in self.released:
                self.released.add(id(r))
                self.alloc.release(r)

    def placed(self, name, n, desc, body, busy=(), inplace=None):
        """Run ``body(region)`` (allocations and scheduling of a phase writing a new activation of ``n``
        words) with the first output placement that schedules: ``inplace`` (a region) when given, then one
        slice at a time (slices not in ``busy``, the ones the phase reads, first; a slice's queue issues one
        instruction per cycle, so its READs and WRITEs may collide), then spread. The first scheduling error
        when none works; the ``MemAllocator`` error when the region fits nowhere."""
        c = self.c
        west, east = _sides(c, self.mxu)
        base = [p for p in self.act_slices] + [p for p in west + east if p not in self.act_slices]
        order = [p for p in base if p not in set(busy)] + [p for p in base if p in set(busy)]
        cands = ([inplace] if inplace is not None else []) + [[p] for p in order] + [order]
        snap = self.snapshot()
        first = None
        for i, cand in enumerate(cands):
            if isinstance(cand, Region):
                region = cand
            else:
                try:
                    region = self.region("act", name, n, desc=desc, order=cand)
                except ValueError:
                    if i == len(cands) - 1:
                        raise
                    continue
            try:
                return body(region)
            except ValueError as e:
                first = first or e
                self.restore(snap)
        raise first

    # ---- tensors -----------------------------------------------------------------------------------
    def act(self, t, where):
        """``t`` as an activation in MEM (a graph input is given its region now)."""
        if t.kind == "act":
            return t
        if t.kind == "host":
            M, N = t.rows, t.features
            nt = _tiles(N, self.c.mxu_cols)
            r = self.region("act", f"input '{t.source}'" + (f" as {t.shape}" if t.name != t.source else ""),
                            nt * M, desc=f"int8 {M} x {N} as {nt} tiles x {M} words", loaded=True)
            self.layout.views.setdefault(t.source, []).append((t.shape, r))
            self.layout.gathers.setdefault(t.source, []).append(t.gather)
            t.kind, t.region, t.pad = "act", r, PAD_CODE
            return t
        if t.kind == "ids":
            raise NotImplementedError(f"{where}: its input {t.name!r} holds integer ids, which the lowering "
                                      f"only takes as the ids of an embedding")
        raise NotImplementedError(f"{where}: its input {t.name!r} holds argmax indices, which the lowering "
                                  f"only returns as outputs")

    def consume(self, name):
        self.uses[name] -= 1

    def in_place_ok(self, t):
        """Whether no later step nor output reads ``t``'s region (through ``t`` or an alias)."""
        base = self.parents.get(t.name, t.region)
        return all(self.uses.get(o.name, 0) == 0 for o in self.T.values()
                   if o.region is t.region or self.parents.get(o.name, o.region) is base)

    def vxu_step(self, st, x, body):
        """``body(out region)`` for a VXU pass over ``x`` writing step ``st``'s output (in place when no one
        else reads ``x``)."""
        return self.placed(f"'{st.name}'", len(x.region),
                           f"int8 {x.rows} x {x.features} as {len(x.region) // x.rows} tiles x {x.rows} words",
                           body, busy=x.region.slices, inplace=x.region if self.in_place_ok(x) else None)

    def operand(self, st, i=0):
        """Input ``i`` of step ``st`` as an activation in MEM (``act``; errors name the step)."""
        return self.act(self.T[st.inputs[i]], f"{st.op} '{st.name}'")

    def out_shape(self, st):
        """The shape of step ``st``'s output: its graph node's (the batch filled in), or ``st.params
        ["out_shape"]`` for a step made by a later stage (``compiler/lm``) that has no node."""
        if "out_shape" in st.params:
            return tuple(st.params["out_shape"])
        return self.shape(self.q.graph.node(st.fused[-1]).shape)

    def shape(self, shape):
        return tuple(self.batch if d is None else int(d) for d in shape)

    def channel_locs(self, r, reps, M, Nt):
        """Word locations of ``r`` (``reps`` copies per N tile) for the words ``nt·M + m`` of an activation."""
        return [r.locs[nt * reps + m % reps] for nt in range(Nt) for m in range(M)]

    def pref_region(self, role, name, n, prefs, plan=0, data=None, granule=1, desc="", avoid=""):
        """A region (a constant holding ``data`` when given) on MEM slices outside the first exclusion set of
        ``prefs`` that holds it; the slices by most free words, rotated by ``plan`` (another placement to
        try when one does not schedule)."""
        mems = sorted(self.c.positions("mem"), key=lambda q: -self.alloc.free_words(q))
        for i, ex in enumerate(prefs):
            allowed = [q for q in mems if q not in set(ex)]
            if allowed:
                k = plan % len(allowed)
                allowed = allowed[k:] + allowed[:k]
            try:
                r = self.region(role, name, n, granule=granule, desc=desc, avoid=avoid, order=allowed)
            except ValueError:
                if i == len(prefs) - 1:
                    raise
                continue
            if data is not None:
                self.constants += r.inputs(np.asarray(data))
            return r

