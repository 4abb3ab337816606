"""Published *measured* GPU figures (issue 12, item 5): what GPUs were seen to do, beside the roofline.

Each ``Measured`` is one figure from a public benchmark, with what exactly was measured, on what (GPU, count,
precision, software), at what batch and lengths, when, and where it was published. ``value`` is the figure
in the unit of ``metric``: ``"tokens_per_s_per_user"`` (decode speed of one user's stream) or
``"time_to_first_token_s"``. Where a figure is derived from the published one (tokens/s per user as ``1 /``
the published inter-token latency), ``what`` says so. Figures are kept only where the source names the GPU,
the model, the precision and the batch (or concurrency) of the run; unknown fields are ``None``.

``beside_roofline(model, gpu_name, gpu, econ, prompt, tokens)`` lists the figures of a model (by its
``perf.models`` name) on a GPU, each with the roofline of ``perf.gpu`` at the same GPU count, batch and
lengths (the estimate's ``prompt`` and ``tokens`` where the source does not give them) and
``of_roofline``: the measured speed as a fraction of the roofline's (roofline time / measured time).

Searched and not found (so not here): a published per-user decode figure of Llama-2-70B on an H100 or H200
that names its precision and batch (NVIDIA's TensorRT-LLM tables of 2023 give batch-1 first-token latency
and large-batch throughput only); MLPerf Inference reports throughput under a per-token latency limit, not a
per-user speed; no Artificial Analysis page was found in the sources searched.
"""
from dataclasses import asdict, dataclass

from perf.assumptions import GPU, Economics
from perf.gpu import roofline
from perf.models import MODELS

__all__ = ["Measured", "MEASURED", "METRICS", "beside_roofline"]

METRICS = ("tokens_per_s_per_user", "time_to_first_token_s")

_NIM = "https://docs.nvidia.com/nim/benchmarking/llm/1.0.0/performance"
_NIM_WHAT = ("NVIDIA NIM LLM benchmarking guide, 'Performance', Llama-3.3-70b-instruct results, NIM 1.8.0, "
             "'2 x H100 80G, fp8 TP2', {isl} input / {osl} output tokens, concurrency 1: inter-token latency "
             "(ITL) {itl} ms, measured client-side with AIPerf; tokens/s per user = 1000 / ITL (the page's "
             "throughput column, {thr} tokens/s, also counts the wait for the first token). Llama 3.3 70B has "
             "the shape of Llama-3-70B (80 layers, d_model 8192, 64 heads, 8 KV heads, FFN 28672, vocabulary "
             "128,256)")


@dataclass(frozen=True)
class Measured:
    """One published measured figure (module docstring)."""
    name: str
    model: str              #: the perf.models name of the model's shape
    published_model: str    #: the model as the source names it
    gpu: str                #: "h100" or "h200" (perf.assumptions)
    gpus: int               #: GPUs of the run
    metric: str
    value: float
    precision: str
    batch: int              #: batch size or concurrency (users decoding together)
    prompt: int | None
    tokens: int | None
    software: str
    date: str
    source: str
    what: str

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, not {self.model!r}")
        if self.gpu not in ("h100", "h200"):
            raise ValueError(f"gpu must be 'h100' or 'h200', not {self.gpu!r}")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, not {self.metric!r}")
        if not self.value > 0 or self.gpus < 1 or self.batch < 1:
            raise ValueError(f"{self.name}: value, gpus and batch must be positive")
        if not self.source.startswith("https://") or not self.what.strip():
            raise ValueError(f"{self.name}: source must be an https:// address and what must say what was measured")

    def to_dict(self):
        return asdict(self)


MEASURED = (
    Measured("nim-1.8-llama-3.3-70b-2xh100-fp8-500-2000", "llama-3-70b", "Llama-3.3-70B-Instruct", "h100", 2,
             "tokens_per_s_per_user", round(1000 / 18.91, 2), "fp8", 1, 500, 2000,
             "NVIDIA NIM for LLMs 1.8.0 (TensorRT-LLM), tensor parallel 2",
             "not dated on the page (NIM 1.8.0, after Llama 3.3's release of Dec 2024)", _NIM,
             _NIM_WHAT.format(isl=500, osl=2000, itl=18.91, thr=52.85)),
    Measured("nim-1.8-llama-3.3-70b-2xh100-fp8-5000-500", "llama-3-70b", "Llama-3.3-70B-Instruct", "h100", 2,
             "tokens_per_s_per_user", round(1000 / 18.58, 2), "fp8", 1, 5000, 500,
             "NVIDIA NIM for LLMs 1.8.0 (TensorRT-LLM), tensor parallel 2",
             "not dated on the page (NIM 1.8.0, after Llama 3.3's release of Dec 2024)", _NIM,
             _NIM_WHAT.format(isl=5000, osl=500, itl=18.58, thr=51.67)),
    Measured("nvidia-blog-llama-3.3-70b-h200-fp8-batch1", "llama-3-70b", "Llama 3.3 70B", "h200", 1,
             "tokens_per_s_per_user", 51.14, "fp8", 1, None, None, "TensorRT-LLM (late 2024)",
             "Dec 2024 (NVIDIA Technical Blog; reported Dec 17, 2024)",
             "https://developer.nvidia.com/blog/boost-llama-3-3-70b-inference-throughput-3x-with-nvidia-tensorrt-"
             "llm-speculative-decoding/",
             "NVIDIA Technical Blog, 'Boost Llama 3.3 70B Inference Throughput 3x with NVIDIA TensorRT-LLM "
             "Speculative Decoding': output tokens/s of Llama 3.3 70B at batch size 1 in FP8 on an H200 without "
             "speculative decoding, 51.14 (181.74 with a draft model: 3.55x); one H200 as restated by reports "
             "of the post (the table's footnote with lengths and GPU count was not read here)"),
    Measured("trtllm-0.5-llama-2-70b-4xh100-fp8-ttft", "llama-2-70b", "LLaMA 70B (Llama 2 70B)", "h100", 4,
             "time_to_first_token_s", 0.026, "fp8", 1, 128, 1, "TensorRT-LLM v0.5.0, tensor parallel 4",
             "Oct 2023 (TensorRT-LLM v0.5)",
             "https://github.com/NVIDIA/TensorRT-LLM/blob/release/0.5.0/docs/source/performance.md",
             "TensorRT-LLM 'Performance of TensorRT-LLM', Low Latency table, H100 GPUs (FP8): LLaMA 70B, batch "
             "size 1, TP 4, input length 128: 1st token latency 26 ms (the page's methodology names the "
             "Llama2-70b benchmark); no per-user decode speed is given there"),
)


def beside_roofline(model, gpu_name, gpu: GPU, econ: Economics, prompt, tokens):
    """The figures of ``MEASURED`` for ``model`` (a ``perf.models`` name) on ``gpu_name``, each with the roofline
    of ``perf.gpu`` at its GPU count, batch and lengths and ``of_roofline`` (module docstring)."""
    out = []
    for f in MEASURED:
        if f.model != model or f.gpu != gpu_name:
            continue
        p = f.prompt if f.prompt is not None else prompt
        t = f.tokens if f.tokens is not None else tokens
        r = roofline(MODELS[f.model], gpu, econ, f.batch, p, t, gpus=f.gpus)
        if f.metric == "tokens_per_s_per_user":
            roof, of = r["tokens_per_s_per_user"], f.value / r["tokens_per_s_per_user"]
        else:
            roof, of = r["time_to_first_token_s"], r["time_to_first_token_s"] / f.value
        out.append(dict(f.to_dict(), roofline=roof, roofline_prompt=p, roofline_tokens=t, of_roofline=of))
    return out
