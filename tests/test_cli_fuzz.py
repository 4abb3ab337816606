"""The conveyor command fuzzed with hypothesis: bad input of any kind gets one line and exit status 2.

Random argument lists of every subcommand, malformed assembly files (``conveyor run PROG.s``), ``--data``
files, corrupt or truncated compiled program folders (``conveyor run OUT --inputs X.npz``), input ``.npz``
files of every dtype and shape, and broken ``MODEL.py`` files (``conveyor compile``). The command runs in
process (``cli.main.main``) so that the examples are cheap. Whatever the input, ``main`` must either

* reject it: exit status 2 and exactly one line ``conveyor: error: ...`` on stderr, nothing raised; or
* accept it: the input was valid. The expensive back ends (Verilator and Amaranth simulations, the
  elaboration of the RTL, synthesis, the digits demo, the kernels of ``sim gemm`` and ``demo mlp``) are
  replaced by a stub that raises ``Accepted`` once every check has passed, so a valid example costs
  nothing; the golden model runs for real (``--backend golden`` on a small compiled model: exit 0, or 1
  for a program that faults).

An uncaught exception (a traceback for the user) fails the test, as does any other exit status. The
examples are derandomized (the same ones on every run); their total is ``sum(EXAMPLES.values())``
(``test_example_budget`` pins it at 10,000 or more).
"""
import contextlib
import io
import json
import math
import os
import pickle
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import main
from compiler.ir import Graph
from spec import isa
from spec.config import PRESETS

EXAMPLES = {
    "argv_tokens": 3000,
    "argv_structured": 2500,
    "assembly": 2800,
    "data_npz": 400,
    "compiled_folder": 600,
    "inputs_npz": 500,
    "model_file": 200,
}


#: CONVEYOR_FUZZ_SCALE=0.1 runs a tenth of the examples (a quick local run); CI runs them all.
SCALE = float(os.environ.get("CONVEYOR_FUZZ_SCALE", "1"))


def fuzz_settings(name):
    return settings(max_examples=max(1, round(EXAMPLES[name] * SCALE)), derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


class Accepted(BaseException):
    """Raised by the stubbed back ends: every check passed, the run would start now."""


def _accept(*args, **kwargs):
    raise Accepted()


@pytest.fixture(scope="module", autouse=True)
def stubbed_backends(tmp_path_factory):
    """Replace everything slow (builds, RTL simulations, synthesis, training) with ``_accept``, and run in
    a scratch folder so that relative output paths land there."""
    import compiler.kernels
    import demos.digits
    import fpga.flow
    import rtl.chip
    import rtl.mxu
    import sim.amaranth_sim
    import sim.chip_verilator
    import sim.verilator
    scratch = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as mp:
        for module, name in [(sim.chip_verilator, "ChipSimulator"), (sim.verilator, "MXUSimulator"),
                             (sim.amaranth_sim, "run_mxu_trace"), (rtl.chip, "Chip"), (rtl.mxu, "MXU"),
                             (fpga.flow, "synthesize"), (fpga.flow, "build_bitstream"),
                             (demos.digits, "run_demo"), (compiler.kernels, "gemm"), (compiler.kernels, "mlp")]:
            mp.setattr(module, name, _accept)
        mp.chdir(scratch)
        mp.delenv("CONVEYOR_DEBUG", raising=False)
        yield scratch


def call(argv):
    """``(status, stdout, stderr)`` of ``main(argv)``; status ``"accepted"`` when a stubbed back end was
    reached. Anything else raised propagates (and fails the example)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        try:
            status = main([str(a) for a in argv])
        except Accepted:
            status = "accepted"
        except SystemExit as e:        # --help (argparse exits 0); any other code is a failure below
            status = e.code
    # numpy's overflow / invalid-value warnings would reach the user's terminal: bad values must be refused
    runtime = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not runtime, (argv, runtime)
    return status, out.getvalue(), err.getvalue()


def check(argv, allowed=("accepted", 0, 2)):
    """Run ``argv``: an allowed status, and a status 2 comes with exactly one ``conveyor: error:`` line."""
    status, out, err = call(argv)
    assert status in allowed, (argv, status, out, err)
    assert "Traceback" not in out + err, (argv, out, err)
    if status == 2:
        assert err.startswith("conveyor: error: ") and err.endswith("\n") and err.count("\n") == 1, (argv, err)
        assert len(err) > len("conveyor: error: ") + 5, (argv, err)
    elif status in ("accepted", 0):
        assert "error" not in err, (argv, err)
    return status, out, err


# ---- values and paths ---------------------------------------------------------------------------------
INTS = st.one_of(st.integers(-3, 70), st.integers(-2**70, 2**70), st.sampled_from([0, 1, 64, 65, 65536, 65537]))
NUMBERS = st.one_of(INTS.map(str), st.sampled_from(["", " ", "1.5", "0x10", "1e3", "nan", "-0", "٣", "1_000",
                                                     "+4", "07", "ten", "--1", "4 ", "\x00"]))
# Odd characters: ASCII punctuation and controls, non-ASCII digits and letters, a BOM, a combining mark.
ALPHABET = list("abcxyzEW019 _-=.,;:>@/\\'\"#\t\r\x00\x7f") + ["٣", "é", "ß", "\ufeff", "\u0301", "€", "😀", "\u2028"]
TEXT = st.text(st.sampled_from(ALPHABET), max_size=12)
# Output paths: relative ones land in the scratch folder; the rest cannot be written (a file in the way,
# a folder where a file goes, /dev/null as a folder, an empty name).
OUT_PATHS = st.sampled_from(["out", "o/p/q", "r.json", "a.png", "afile/x", "afile", "adir", "/dev/null/x",
                             "", ".", "x.npz", "sub/y.npz", "/proc/conveyor-no/x"])
CONFIGS = st.one_of(st.sampled_from(list(PRESETS) + ["tiny.json", "bad.json", "missing.json", "adir", "afile",
                                                     "HUGE", ""]), TEXT)


@pytest.fixture(scope="module")
def files(stubbed_backends):
    """Fixed files in the scratch folder that the argument fuzzing refers to."""
    d = stubbed_backends
    (d / "afile").write_text("not a folder\n")
    (d / "adir").mkdir(exist_ok=True)
    (d / "tiny.json").write_text(json.dumps(PRESETS["tiny"].to_dict()))
    (d / "bad.json").write_text('{"name": "x", "lanes": -1}')
    (d / "prog.s").write_text(".slice mem0\n    HALT\n")
    np.savez(d / "data.npz", **{"mem0.0": np.arange(8).reshape(2, 4)})
    return d


@pytest.fixture(scope="module")
def work(stubbed_backends, tmp_path_factory):
    """A folder of the files that the tests below write (apart from the scratch folder, where the argument
    fuzzing creates files and folders of any name)."""
    return tmp_path_factory.mktemp("work")


OPTIONS = {
    ("gen", "mxu"): {"--rows": NUMBERS, "--cols": NUMBERS, "--acc-depth": NUMBERS, "-o": OUT_PATHS,
                     "--output": OUT_PATHS},
    ("gen", "chip"): {"--config": CONFIGS, "-o": OUT_PATHS},
    ("compile",): {"--config": CONFIGS, "-o": OUT_PATHS, "--batch": NUMBERS, "--timeline": OUT_PATHS,
                   "--json": OUT_PATHS},
    ("run",): {"--config": CONFIGS, "--inputs": OUT_PATHS, "--backend": st.sampled_from(["golden", "verilator",
                                                                                          "rtl", ""]),
               "--outputs": OUT_PATHS, "--data": st.sampled_from(["data.npz", "prog.s", "missing.npz", "adir"]),
               "--waves": None, "--json": OUT_PATHS, "--seed": NUMBERS, "--build-dir": OUT_PATHS},
    ("sim", "gemm"): {"--m": NUMBERS, "--k": NUMBERS, "--n": NUMBERS,
                      "--unit": st.sampled_from(["chip", "mxu", "gpu"]), "--config": CONFIGS, "--rows": NUMBERS,
                      "--cols": NUMBERS, "--acc-depth": NUMBERS, "--seed": NUMBERS,
                      "--simulator": st.sampled_from(["verilator", "amaranth", "iverilog"]), "--waves": None,
                      "--json": OUT_PATHS, "--build-dir": OUT_PATHS},
    ("demo", "mlp"): {"--config": CONFIGS, "--m": NUMBERS, "--k": NUMBERS, "--hidden": NUMBERS, "--n": NUMBERS,
                      "--seed": NUMBERS, "--waves": None, "--out": OUT_PATHS, "--json": OUT_PATHS,
                      "--build-dir": OUT_PATHS},
    ("demo", "digits"): {"--config": CONFIGS, "--batch": NUMBERS, "--seed": NUMBERS,
                         "--backend": st.sampled_from(["golden", "verilator", "x"]), "--json": OUT_PATHS,
                         "--build-dir": OUT_PATHS},
    ("fpga",): {"--target": st.sampled_from(["ecp5-85f", "ice40-up5k", "xc7", ""]), "--rows": NUMBERS,
                "--cols": NUMBERS, "--acc-depth": NUMBERS, "--json": OUT_PATHS, "--bitstream": None,
                "--no-dsp": None, "--seed": NUMBERS, "--build-dir": OUT_PATHS},
}
POSITIONAL = {("compile",): st.sampled_from(["model.py", "missing.py", "adir", "afile", "prog.s", ""]),
              ("run",): st.sampled_from(["prog.s", "missing.s", "adir", "afile", "data.npz", ""])}
VOCAB = sorted({w for cmd in OPTIONS for w in cmd} | {o for opts in OPTIONS.values() for o in opts}
               | {"-h", "--help", "--", "-", "tiny", "small", "tsp", "1", "0", "-1", "x", "prog.s"})


def _small(text):
    """Keep a valid size argument small (so that an accepted example does little work before the stub)."""
    try:
        v = int(text, 10)
    except ValueError:
        return text
    return str(v % 17) if 0 < v else text


@st.composite
def structured_argv(draw):
    cmd = draw(st.sampled_from(sorted(OPTIONS)))
    opts = OPTIONS[cmd]
    argv = list(cmd)
    if cmd in POSITIONAL and draw(st.booleans()) or cmd in POSITIONAL and draw(st.integers(0, 9)) > 0:
        argv.append(draw(POSITIONAL[cmd]))
    names = draw(st.lists(st.sampled_from(sorted(opts)), max_size=len(opts) + 2))
    # most examples give the required options, so that the later checks are reached
    if draw(st.integers(0, 4)) > 0:
        required = {("gen", "mxu"): ["-o"], ("gen", "chip"): ["-o"], ("compile",): ["-o"],
                    ("sim", "gemm"): ["--m", "--k", "--n"], ("fpga",): ["--target"]}.get(cmd, [])
        names = required + names
    for name in names:
        argv.append(name)
        if opts[name] is not None and draw(st.integers(0, 15)) > 0:     # now and then the value is missing
            value = draw(opts[name])
            argv.append(_small(value) if name in ("--m", "--k", "--n", "--hidden", "--batch") else value)
    if draw(st.integers(0, 9)) == 0:
        argv.insert(draw(st.integers(0, len(argv))), draw(st.one_of(st.sampled_from(VOCAB), TEXT)))
    return argv


@given(argv=st.lists(st.one_of(st.sampled_from(VOCAB), NUMBERS, TEXT), max_size=10))
@fuzz_settings("argv_tokens")
def test_fuzz_random_arguments(files, argv):
    check(argv)


@given(argv=structured_argv())
@fuzz_settings("argv_structured")
def test_fuzz_subcommand_arguments(files, argv):
    check(argv)


# ---- assembly files ---------------------------------------------------------------------------------
TINY = PRESETS["tiny"]
STREAMS = st.one_of(st.builds(lambda d, i: f"{d}{i}", st.sampled_from("EWewX"), st.integers(-1, 40)),
                    st.sampled_from(["E", "W", "E-1", "E0x1", "->", "E 1"]))
FIELD_NAMES = sorted(isa.FIELDS) + ["cnt", "", "=", "count=count"]
MNEMONICS = sorted(isa.OPCODES) + [m.lower() for m in isa.OPCODES] + ["MATMLU", "", "VOP relu", "VOP add",
                                                                       "VOP bogus", ".word", ".slice"]


# The assembly text comes from a seeded ``random.Random`` that hypothesis draws: far cheaper per example than
# drawing every token through hypothesis (examples still replay exactly; shrinking is coarser).
_ODD_TEXT = ["", " ", "٣", "é", "\ufeff", "\x00", "\t", "=", "==", "->->", ";", ",,", "'", "0x", "-", "E", "W",
             "ten", "1.5", "\u2028", "😀"]
_STREAM_WORDS = ["E", "W", "E-1", "E0x1", "E 1", "e1", "w0", "X1", "E32", "W40", "E99999999999999999999"]


def _rand_int(r):
    return r.choice([r.randint(-3, 70), r.randint(-2**70, 2**70), r.choice([0, 1, 15, 16, 64, 65, 65535, 65536,
                                                                           65537, 2**31, 2**32, 2**64])])


def _rand_number(r):
    v = _rand_int(r)
    return r.choice([str(v), str(v), hex(v) if v >= 0 else str(v), r.choice(_ODD_TEXT)])


def _rand_stream(r):
    return r.choice([f"{r.choice('EWew')}{r.randint(0, 40)}", f"E{r.randint(0, 3)}", r.choice(_STREAM_WORDS)])


def _rand_instruction(r):
    parts = [r.choice(MNEMONICS)]
    for _ in range(r.randint(0, 6)):
        k = r.randint(0, 5)
        if k == 0:
            parts.append(_rand_stream(r))
        elif k in (1, 2):
            parts.append(f"{r.choice(FIELD_NAMES)}={_rand_number(r)}")
        elif k == 3:
            parts.append(r.choice(["swap", "acc", "emit", "SWAP", "relu", ",", "= 3", "count", "count ="]))
        elif k == 4:
            parts += ["->", _rand_stream(r)]
        else:
            parts.append(r.choice(_ODD_TEXT))
    return " ".join(parts) + (f" ; {r.choice(_ODD_TEXT)}" if r.random() < 0.2 else "")


def _rand_line(r):
    k = r.randint(0, 11)
    if k == 0:
        return r.choice(_ODD_TEXT) + r.choice(_ODD_TEXT)
    if k == 1:
        return f".slice {r.choice(list(TINY.slice_names) + ['mxu', 'vxu', '9', '-1', '', 'MEM0', '0x1'])}"
    if k == 2:
        return f".{r.choice(['word', 'WORD', 'wrd', 'slice'])} {_rand_number(r)}"
    return _rand_instruction(r)


@st.composite
def asm_text(draw):
    r = draw(st.randoms(use_true_random=True))
    lines = []
    for _ in range(r.randint(0, 4)):
        lines.append(f".slice {r.choice(TINY.slice_names)}")
        lines += ["    " + _rand_line(r) for _ in range(r.randint(0, 5))]
    if r.random() < 0.5:
        lines.insert(r.randint(0, len(lines)), _rand_line(r))
    return "\n".join(lines) + r.choice(["\n", "", "\r\n", "\n\n"])


@given(text=asm_text(), raw=st.one_of(st.none(), st.binary(max_size=40)), config=st.sampled_from(["tiny", "small"]))
@fuzz_settings("assembly")
def test_fuzz_assembly_files(work, text, raw, config):
    prog = work / "fuzz.s"
    if raw is None:
        prog.write_text(text)
    else:      # bytes, often not UTF-8
        prog.write_bytes(raw + text.encode("utf-8", "surrogatepass")[:20])
    status, _, err = check(["run", prog, "--config", config])
    if status == 2:
        assert "fuzz.s" in err, err


# ---- --data files -------------------------------------------------------------------------------------
DTYPES = st.sampled_from(["int8", "int16", "int32", "int64", "uint8", "uint64", "float32", "float64", "bool",
                          "complex64", "U3", "S2", "object", "V4", "datetime64[s]"])
SHAPES = st.lists(st.integers(0, 5), max_size=3).map(tuple)


@st.composite
def arrays(draw, shape=SHAPES, dtype=DTYPES):
    dt = draw(dtype)
    shp = draw(shape)
    if dt == "object":
        return np.array([draw(st.one_of(st.integers(), TEXT)) for _ in range(max(1, math.prod(shp)))],
                        dtype=object)
    n = math.prod(shp) * np.dtype(dt).itemsize
    # the bytes from a drawn seed (drawing them one by one through hypothesis is slow); now and then all zero
    raw = np.random.default_rng(draw(st.integers(0, 2**32))).bytes(n) if draw(st.booleans()) else bytes(n)
    return np.frombuffer(raw, dtype=dt).reshape(shp).copy()


def write_npz(path, entries, *, pickle_ok=True):
    """An .npz of ``entries`` (name → array), object arrays pickled (as ``np.savez`` does)."""
    with zipfile.ZipFile(path, "w") as z:
        for name, a in entries.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, a, allow_pickle=pickle_ok)
            z.writestr(name + ".npy", buf.getvalue())


# names np.savez can store (zip member names: not empty, no NUL, no '/')
KEY_TEXT = TEXT.filter(lambda t: t and "/" not in t and "\x00" not in t)
DATA_KEYS = st.one_of(st.builds(lambda s, b, a: f"{s}.{b}" + ("" if a is None else f"@{a}"),
                                st.sampled_from(list(TINY.slice_names) + ["mem9", "MEM0", "x"]),
                                st.integers(0, 3), st.one_of(st.none(), st.integers(0, 70))), KEY_TEXT)


@given(entries=st.dictionaries(DATA_KEYS, arrays(shape=st.one_of(SHAPES, st.tuples(st.integers(0, 70),
                                                                                    st.sampled_from([4, 3, 16])))),
                               max_size=3),
       corrupt=st.one_of(st.none(), st.integers(0, 400)))
@fuzz_settings("data_npz")
def test_fuzz_data_files(work, entries, corrupt):
    path = work / "fuzzdata.npz"
    write_npz(path, entries)
    if corrupt is not None:
        blob = bytearray(path.read_bytes())
        path.write_bytes(bytes(blob[:corrupt]) if corrupt % 2 else bytes(blob[:corrupt]) + b"\xff" * 7)
    prog = work / "halt.s"
    prog.write_text(".slice mem0\n    HALT\n")
    status, _, err = check(["run", prog, "--config", "tiny", "--data", path])
    if status == 2:
        assert "fuzzdata.npz" in err, err


# ---- compiled program folders -------------------------------------------------------------------------
def tiny_model():
    rng = np.random.default_rng(0)
    g = Graph()
    h = g.input("x", (None, 6))
    h = g.linear(h, rng.normal(size=(6, 5)) / 3, rng.normal(size=5) * 0.1, name="fc1")
    h = g.relu(h, name="relu1")
    h = g.linear(h, rng.normal(size=(5, 3)) / 3, rng.normal(size=3) * 0.1, name="fc2")
    g.output(h, "logits")
    g.output(g.argmax(h, name="cls"), "cls")
    return g


@pytest.fixture(scope="module")
def compiled(stubbed_backends, work):
    """A valid compiled program (``conveyor compile``'s output), its files' bytes, and valid inputs."""
    import compiler
    x = np.random.default_rng(1).normal(size=(4, 6)).astype(np.float32)
    cp = compiler.compile(tiny_model(), {"x": x}, config="tiny")
    d = cp.save(work / "compiled")
    np.savez(work / "x.npz", x=x)
    status, out, err = call(["run", d, "--inputs", work / "x.npz", "--backend", "golden"])
    assert status == 0, (out, err)
    return d, (d / "program.json").read_bytes(), (d / "data.npz").read_bytes(), x


JSON_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), INTS, st.floats(allow_nan=False), TEXT),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(TEXT, inner, max_size=3)), max_leaves=6)


def _paths(obj, prefix=()):
    """Every path (tuple of keys/indices) into a JSON value."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _mutate_json(data, meta):
    meta = json.loads(json.dumps(meta))
    for _ in range(data.draw(st.integers(1, 2))):
        paths = [p for p in _paths(meta) if p and p[0] not in ("sram_report", "assembly")]
        if not paths:
            break
        path = paths[data.draw(st.integers(0, len(paths) - 1))]
        parent = meta
        for k in path[:-1]:
            parent = parent[k]
        action = data.draw(st.integers(0, 3))
        old = parent[path[-1]]
        if action == 0:          # delete the key (or list item)
            del parent[path[-1]]
        elif action == 1 and isinstance(old, int) and not isinstance(old, bool):   # a nearby or extreme int
            parent[path[-1]] = data.draw(st.one_of(st.integers(old - 3, old + 70), st.sampled_from(
                [-1, 0, 2**31, 2**64, -2**63])))
        else:                    # any JSON value
            parent[path[-1]] = data.draw(JSON_VALUES)
    return meta


def _mutate_npz(data, blob):
    npz = np.load(io.BytesIO(blob))
    entries = {k: npz[k] for k in npz.files}
    keys = sorted(entries)
    for _ in range(data.draw(st.integers(1, 2))):
        key = keys[data.draw(st.integers(0, len(keys) - 1))]
        action = data.draw(st.integers(0, 5))
        a = entries[key]
        if action == 0:
            entries.pop(key)
            keys.remove(key)
        elif action == 1:        # another dtype, same values
            dt = data.draw(st.sampled_from(["int8", "uint8", "int64", "float64", "bool", "complex64", "U4"]))
            entries[key] = a.astype(dt) if a.dtype.kind in "iufcb" else np.zeros(a.shape, dt)
        elif action == 2:        # another shape
            entries[key] = data.draw(arrays(dtype=st.just(str(a.dtype)) if a.dtype.kind != "O" else DTYPES))
        elif action == 3:        # a pickled object array
            entries[key] = np.array([pickle.dumps(1), None, "x"], dtype=object)
        elif action == 4:        # random values of the same dtype and shape
            entries[key] = data.draw(arrays(shape=st.just(a.shape), dtype=st.just(str(a.dtype))))
        else:                    # an extra key
            entries[data.draw(KEY_TEXT.filter(lambda t: t not in entries))] = a
        if not keys:
            break
    buf = io.BytesIO()
    z = buf
    with zipfile.ZipFile(z, "w") as zf:
        for name, arr in entries.items():
            b = io.BytesIO()
            np.lib.format.write_array(b, arr, allow_pickle=True)
            zf.writestr(name + ".npy", b.getvalue())
    return buf.getvalue()


def _corrupt_bytes(data, blob):
    kind = data.draw(st.integers(0, 2))
    if kind == 0:            # truncated
        return blob[:data.draw(st.integers(0, len(blob) - 1))]
    out = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(out) - 1))
        out[i] = data.draw(st.integers(0, 255)) if kind == 1 else out[i] ^ (1 << data.draw(st.integers(0, 7)))
    return bytes(out)


@given(data=st.data())
@fuzz_settings("compiled_folder")
def test_fuzz_compiled_program_folders(compiled, work, data):
    good, pj, dz, _ = compiled
    d = work / "broken"
    d.mkdir(exist_ok=True)
    what = data.draw(st.sampled_from(["json", "json-bytes", "npz", "npz-bytes", "missing", "both"]))
    new_pj, new_dz = pj, dz
    if what in ("json", "both"):
        new_pj = json.dumps(_mutate_json(data, json.loads(pj))).encode()
    if what == "json-bytes":
        new_pj = _corrupt_bytes(data, pj)
    if what in ("npz", "both"):
        new_dz = _mutate_npz(data, dz)
    if what == "npz-bytes":
        new_dz = _corrupt_bytes(data, dz)
    for name, blob in (("program.json", new_pj), ("data.npz", new_dz)):
        (d / name).unlink(missing_ok=True)
        if what != "missing" or data.draw(st.booleans()):
            (d / name).write_bytes(blob)
    if what == "missing" and (d / "program.json").exists() and (d / "data.npz").exists():
        (d / "data.npz").unlink()
    backend = data.draw(st.sampled_from(["golden", "golden", "golden", "verilator"]))
    status, _, err = check(["run", d, "--inputs", work / "x.npz", "--backend", backend],
                           allowed=("accepted", 0, 1, 2))
    if status == 2 and "program.json" in os.listdir(d):
        assert "broken" in err or "x.npz" in err, err


# ---- input .npz files ---------------------------------------------------------------------------------
@given(entries=st.dictionaries(st.one_of(st.just("x"), KEY_TEXT),
                               st.one_of(arrays(shape=st.one_of(SHAPES, st.tuples(st.integers(0, 9), st.just(6)))),
                                         arrays(shape=st.tuples(st.integers(0, 9), st.just(6)),
                                                dtype=st.sampled_from(["float16", "float32", "float64"]))),
                               max_size=2),
       kind=st.sampled_from(["npz", "npz", "npz", "npy", "text", "truncated"]))
@fuzz_settings("inputs_npz")
def test_fuzz_input_files(compiled, work, entries, kind):
    good = compiled[0]
    path = work / "fuzzx.npz"
    write_npz(path, entries)
    if kind == "npy":
        np.save(path.with_suffix(".npy"), next(iter(entries.values()), np.zeros(3)), allow_pickle=True)
        path.with_suffix(".npy").replace(path)
    elif kind == "text":
        path.write_text("x = [1, 2, 3]\n")
    elif kind == "truncated":
        path.write_bytes(path.read_bytes()[:len(entries) * 37])
    status, _, err = check(["run", good, "--inputs", path, "--backend", "golden"], allowed=(0, 2))
    if status == 2:
        assert "fuzzx.npz" in err, err


# ---- MODEL.py files -----------------------------------------------------------------------------------
MODEL_BODIES = [
    "def model():\n    return tiny()\n\ndef example_inputs():\n    return {'x': X}\n",
    "def model():\n    return tiny()\n",
    "def example_inputs():\n    return {'x': X}\n",
    "model = 3\nexample_inputs = 4\n",
    "def model():\n    return 42\n\ndef example_inputs():\n    return {'x': X}\n",
    "def model():\n    return tiny()\n\ndef example_inputs():\n    return [X]\n",
    "def model():\n    return tiny()\n\ndef example_inputs():\n    return {'y': X}\n",
    "def model():\n    return tiny()\n\ndef example_inputs():\n    return {'x': X.astype('U8')}\n",
    "def model():\n    return tiny()\n\ndef example_inputs():\n    return {'x': X[:, :3]}\n",
    "def model():\n    raise KeyError('boom')\n\ndef example_inputs():\n    return {'x': X}\n",
    "def model():\n    return tiny()\n\ndef example_inputs():\n    import sys; sys.exit(3)\n",
    "raise SystemExit(0)\n",
    "import no_such_module_conveyor\n",
    "def model(:\n",
]
MODEL_HEADER = ("import numpy as np\nfrom compiler.ir import Graph\n\n"
                "def tiny():\n    g = Graph()\n"
                "    h = g.relu(g.linear(g.input('x', (None, 6)), np.eye(6, 3), np.zeros(3)))\n"
                "    g.output(h, 'y')\n    return g\n\n"
                "X = np.random.default_rng(1).normal(size=(2, 6)).astype(np.float32)\n")


@given(body=st.one_of(st.sampled_from(MODEL_BODIES), TEXT), header=st.booleans(),
       extra=st.lists(st.sampled_from(["--batch", "0", "3", "--config", "tsp", "tiny", "--timeline", "t.png",
                                       "--json", "afile/x"]), max_size=3))
@fuzz_settings("model_file")
def test_fuzz_model_files(files, work, body, header, extra):
    model = work / "fuzzmodel.py"
    model.write_text((MODEL_HEADER if header else "") + body)
    status, _, err = check(["compile", model, "-o", work / "compiled_out", "--config", "tiny", *extra])
    if status == 2:
        assert "fuzzmodel.py" in err or "argument" in err or "afile" in err or "config" in err, err


def test_example_budget():
    assert sum(EXAMPLES.values()) >= 10_000


# ---- the bugs the fuzzing found, pinned -----------------------------------------------------------------
def test_found_bugs_are_one_line_errors(compiled, work):
    """Each of these used to end in a traceback (or a message without the file)."""
    good = compiled[0]
    (work / "latin1.s").write_bytes(b".slice mem0\n    HALT ; caf\xe9\n")
    np.save(work / "one.npy", np.zeros((2, 6), np.float32))
    (work / "one.npy").replace(work / "one_npy.npz")
    (work / "trunc.npz").write_bytes((work / "x.npz").read_bytes()[:60])
    np.savez(work / "nan.npz", x=np.full((2, 6), np.nan, np.float32))
    write_npz(work / "obj.npz", {"x": np.array([1, "a"], dtype=object)})
    np.savez(work / "big.npz", **{"mem0.0": np.full((1, 4), 2**40)})
    cases = [
        (["run", work / "latin1.s", "--config", "tiny"], "is not UTF-8 text (byte 0xe9"),
        (["run", good, "--inputs", work / "one_npy.npz", "--backend", "golden"], "is a single .npy array"),
        (["run", good, "--inputs", work / "trunc.npz", "--backend", "golden"], "is not a readable .npz file"),
        (["run", good, "--inputs", work / "nan.npz", "--backend", "golden"], "NaN or infinite"),
        (["run", good, "--inputs", work / "obj.npz", "--backend", "golden"], "is an object array"),
        (["run", work / "halt.s", "--config", "tiny", "--data", work / "big.npz"],
         "key 'mem0.0': values must be int32"),
        (["gen", "mxu", "-o", "/dev/null/x"], "cannot use /dev/null/x: Not a directory"),
        (["sim", "gemm", "--m", str(10**12), "--k", "64", "--n", "16"], "need at least"),
        (["demo", "mlp", "--config", "tiny", "--m", str(10**12)], "make the sizes smaller"),
    ]
    (work / "halt.s").write_text(".slice mem0\n    HALT\n")
    for argv, message in cases:
        status, _, err = check(argv, allowed=(2,))
        assert message in err, (argv, err)


def test_corrupt_compiled_words_are_named(compiled, work):
    good, pj, dz, _ = compiled
    d = work / "badwords"
    d.mkdir(exist_ok=True)
    (d / "program.json").write_bytes(pj)
    npz = dict(np.load(io.BytesIO(dz)))
    npz["words_0"] = np.zeros_like(npz["words_0"])
    np.savez(d / "data.npz", **npz)
    status, _, err = check(["run", d, "--inputs", work / "x.npz", "--backend", "golden"], allowed=(2,))
    assert "malformed compiled program" in err and "words_0[0] = 0x0000000000000000" in err and "ILLEGAL_OPCODE" in err
