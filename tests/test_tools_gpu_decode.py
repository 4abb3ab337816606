"""``tools/gpu_decode.py``: batch-1 decode tokens/s with PyTorch (on the CPU here), and ``conveyor perf
--gpu-measured`` showing its JSON beside the roofline."""
import json
import statistics
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import torch

from cli.main import main
from tools import gpu_decode

SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "gpu_decode.py"
TINY = ["--layers", "2", "--d-model", "64", "--heads", "4", "--kv-heads", "2", "--d-ff", "128", "--vocab", "100"]


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu") / "gpu.json"
    argv = ["--device", "cpu", *TINY, "--prompt", "8", "--tokens", "8", "--repeats", "3", "--json", str(out)]
    assert gpu_decode.main(argv) == 0
    return out, json.loads(out.read_text())


def test_cpu_run_writes_the_fields(measured):
    _, r = measured
    assert r["format"] == "conveyor-gpu-decode" and r["device"] == "cpu" and r["torch"] == torch.__version__
    assert r["device_name"].startswith("cpu") and datetime.fromisoformat(r["timestamp"]).tzinfo is not None
    ref, shape = r["runs"]
    assert ref["model"] == "gpt" and not ref["kv_cache"]
    assert shape["model"].startswith("llama-2-7b~layers=2") and shape["kv_cache"]
    assert shape["shape"]["layers"] == 2 and shape["shape"]["d_model"] == 64 and shape["shape"]["n_kv_heads"] == 2
    for run in (ref, shape):
        assert (run["batch"], run["prompt"], run["tokens"], run["repeats"]) == (1, 8, 8, 3)
        assert len(run["seconds"]) == len(run["tokens_per_s_all"]) == 3 and all(s > 0 for s in run["seconds"])
        assert run["tokens_per_s"] > 0
        assert run["tokens_per_s"] == statistics.median(8 / s for s in run["seconds"])
        assert run["dtype"] == "float32" and run["weight_bytes"] == 4 * run["params"]
    # the stack's parameters: embedding and head 100 x 64 each, the final norm, 2 layers of q k v o, SwiGLU, norms
    layer = 64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 128 + 2 * 64
    assert shape["params"] == 2 * 100 * 64 + 64 + 2 * layer


def test_the_kv_cache_decode_equals_recomputing_the_sequence():
    """The stack's step-by-step logits over its KV cache equal a prefill of the whole sequence."""
    from perf.models import MODELS
    shape = MODELS["llama-2-7b"].__class__("t", 2, 64, 4, 2, 128, "swiglu", 50, 32, tied=False)
    stack = gpu_decode.LlamaStack(shape, torch, "cpu", torch.float64, seed=3)
    ids = torch.randint(0, 50, (1, 10), generator=torch.Generator().manual_seed(1))
    whole = stack.step(ids, 0, stack.new_cache(1, 10))
    cache = stack.new_cache(1, 10)
    stack.step(ids[:, :6], 0, cache)
    for i in range(6, 10):
        last = stack.step(ids[:, i:i + 1], i, cache)
    torch.testing.assert_close(last, whole)
    other = stack.step(ids[:, :9], 0, stack.new_cache(1, 10))
    assert not torch.allclose(other, whole)                 # the check can fail: another prefix, other logits


def test_help_and_no_cuda():
    h = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert h.returncode == 0 and "--device" in h.stdout and "--gpu-measured" in h.stdout
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    r = subprocess.run([sys.executable, str(SCRIPT), *TINY], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no CUDA device" in r.stderr and "--device cpu" in r.stderr and not r.stdout


@pytest.mark.parametrize("argv, message", [
    (["--device", "cpu", "--only", "shape", "--shape", "llama-2-7b", "--layers", "0"],
     "argument --layers: must be an integer of at least 1, not 0"),
    (["--device", "cpu", "--only", "shape", "--heads", "5"], "n_heads must divide d_model: 4096 % 5 != 0"),
    (["--device", "cpu", "--only", "reference", "--prompt", "60", "--tokens", "10"],
     "--prompt + --tokens must be at most the reference gpt's context of 64, not 70"),
])
def test_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        gpu_decode.main(argv)
    err = capsys.readouterr().err + str(e.value.code)
    assert message in err and e.value.code != 0


def test_conveyor_perf_shows_the_file_beside_the_roofline(measured, capsys, tmp_path):
    path, r = measured
    assert main(["perf", "llama-2-7b", "--gpu-measured", str(path), "--json", str(tmp_path / "p.json")]) == 0
    text = capsys.readouterr().out
    assert f"  measured here {path}: cpu" in text
    for run in r["runs"]:
        assert f"{run['model']} (float32, batch 1, 8+8 tokens): {run['tokens_per_s']:,.1f} tokens/s per user" in text
    j = json.loads((tmp_path / "p.json").read_text())
    assert j["gpu_measured_file"]["runs"] == r["runs"] and j["gpu_measured_file"]["gpu"] is None
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "conveyor-gpu-decode", "runs": [{"model": "x"}]}))
    assert main(["perf", "gpt", "--prompt", "8", "--tokens", "8", "--gpu-measured", str(bad)]) == 2
    assert "argument --gpu-measured: " in (err := capsys.readouterr().err) and "run 0 lacks dtype" in err
    assert main(["perf", "gpt", "--gpu-measured", str(tmp_path / "none.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_a_file_from_an_h100_is_set_against_its_bandwidth(measured, capsys, tmp_path):
    _, r = measured
    f = tmp_path / "h100.json"
    f.write_text(json.dumps(dict(r, device="cuda", device_name="NVIDIA H100 80GB HBM3")))
    assert main(["perf", "llama-2-7b", "--gpu-measured", str(f)]) == 0
    text = capsys.readouterr().out
    run = r["runs"][1]
    share = run["bytes_per_token"] * run["tokens_per_s"] / 3.35e12
    assert f"{share:.0%} of the H100's HBM bandwidth" in text
