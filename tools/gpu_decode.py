"""Measure batch-1 decode tokens/s of language models with PyTorch on a GPU (issue 12, item 5).

For whoever has a CUDA GPU: ``python tools/gpu_decode.py --json gpu.json`` times the decode of

* (a) a reference LM of ``demos/lm`` (``--arch gpt|llama``, loaded or trained by
  ``demos.lm.train.load_or_train``): its ``forward`` has no KV cache, so each token recomputes the sequence
  (its context is 64), and
* (b) a larger open model *shape* of ``perf.models`` (``--shape``, a Llama-style SwiGLU model; ``--layers``
  and the other size flags shrink it to fit the GPU) built here in plain torch with random weights: RMSNorm,
  rotary positions, grouped-query attention over a KV cache, SwiGLU, an untied head, greedy decoding.

Each run: a prefill of ``--prompt`` tokens, then ``--tokens`` decode steps timed (the GPU synchronised before
and after), ``--repeats`` times after one warm-up; tokens/s is ``tokens / seconds`` of each repeat, reported
as the median. The JSON (``--json FILE``, else standard output) holds the device name, torch version,
timestamp and per run the model, shape, dtype, batch, prompt, tokens, every repeat and the median, and
``bytes_per_token`` (the weights a token reads: all but the embedding table, plus the KV cache at the mean
context), which ``conveyor perf MODEL --gpu-measured FILE`` shows beside the roofline.

Without a CUDA device it says so and exits 2, unless ``--device cpu`` (which runs on the CPU, for testing).
"""
import argparse
import json
import math
import statistics
import sys
import time
from datetime import UTC, datetime

FORMAT, VERSION = "conveyor-gpu-decode", 1
DTYPES = ("bfloat16", "float16", "float32")
OVERRIDES = (("layers", "layers"), ("d_model", "d-model"), ("n_heads", "heads"), ("n_kv_heads", "kv-heads"),
             ("d_ff", "d-ff"), ("vocab", "vocab"))


def _positive(text):
    try:
        v = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer of at least 1, not {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be an integer of at least 1, not {v}")
    return v


def parser():
    from perf.models import MODELS
    swiglu = [n for n, m in MODELS.items() if m.ffn == "swiglu"]
    p = argparse.ArgumentParser(prog="gpu_decode.py", description=__doc__.split("\n\n")[0],
                                epilog="Writes JSON for `conveyor perf MODEL --gpu-measured FILE`. Exit status 2 "
                                       "without a CUDA device (unless --device cpu) or on a bad argument.")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cuda (default) or cpu (for testing)")
    p.add_argument("--dtype", choices=DTYPES, default=None,
                   help="weights and activations (default bfloat16 on cuda, float32 on cpu)")
    p.add_argument("--only", choices=("both", "reference", "shape"), default="both",
                   help="time the reference LM, the larger shape, or both (default)")
    p.add_argument("--arch", choices=("gpt", "llama"), default="gpt", help="the reference LM of demos/lm (default gpt)")
    p.add_argument("--shape", choices=swiglu, default="llama-2-7b",
                   help="the larger model's shape, from perf.models (default llama-2-7b)")
    for field, flag in OVERRIDES:
        p.add_argument(f"--{flag}", type=_positive, default=None, dest=field,
                       help=f"override the shape's {field} (to fit the GPU)")
    p.add_argument("--batch", type=_positive, default=1, help="users decoding together (default 1)")
    p.add_argument("--prompt", type=_positive, default=16, help="prompt tokens (default 16)")
    p.add_argument("--tokens", type=_positive, default=32, help="decode steps timed (default 32)")
    p.add_argument("--repeats", type=_positive, default=5, help="timed repeats after one warm-up (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and prompt (default 0)")
    p.add_argument("--json", metavar="FILE", help="write the JSON here (default: standard output)")
    return p


class LlamaStack:
    """A Llama-style decoder of a ``perf.models.ModelShape`` with random weights and a KV cache (plain torch)."""

    def __init__(self, shape, torch, device, dtype, seed):
        self.t, self.s = torch, shape
        g = torch.Generator(device="cpu").manual_seed(seed)
        d, kv, ff = shape.d_model, shape.kv_dim, shape.d_ff

        def w(*size):       # scaled so activations stay finite in 16 bits
            return (torch.randn(*size, generator=g) / math.sqrt(size[0])).to(device=device, dtype=dtype)

        self.embed = w(shape.vocab, d) * math.sqrt(shape.vocab)
        self.layers = [dict(n1=torch.ones(d, device=device, dtype=dtype), q=w(d, d), k=w(d, kv), v=w(d, kv),
                            o=w(d, d), n2=torch.ones(d, device=device, dtype=dtype), gate=w(d, ff), up=w(d, ff),
                            down=w(ff, d)) for _ in range(shape.layers)]
        self.norm = torch.ones(d, device=device, dtype=dtype)
        self.head = w(d, shape.vocab)
        hd = shape.head_dim
        inv = 1.0 / (10000 ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        ang = torch.outer(torch.arange(shape.context, dtype=torch.float32), inv)
        self.cos, self.sin = (f(ang).repeat(1, 2).to(device=device, dtype=dtype) for f in (torch.cos, torch.sin))
        self.device, self.dtype = device, dtype

    def params(self):
        n = self.embed.numel() + self.norm.numel() + self.head.numel()
        return n + sum(x.numel() for layer in self.layers for x in layer.values())

    def new_cache(self, batch, positions):
        s = self.s
        z = (batch, s.n_kv_heads, positions, s.head_dim)
        return [(self.t.zeros(z, device=self.device, dtype=self.dtype),
                 self.t.zeros(z, device=self.device, dtype=self.dtype)) for _ in range(s.layers)]

    def _rms(self, x, weight):
        xf = x.float()
        return (xf * self.t.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5)).to(x.dtype) * weight

    def _rotary(self, x, pos):
        T = x.size(2)
        cos, sin = self.cos[pos:pos + T], self.sin[pos:pos + T]
        a, b = x.chunk(2, dim=-1)
        return x * cos + self.t.cat((-b, a), dim=-1) * sin

    def step(self, ids, pos, cache):
        """Logits of the last of ``ids`` (B, T) at positions ``pos …``, the cache filled there."""
        F, s = self.t.nn.functional, self.s
        B, T = ids.shape
        H, Hk, hd = s.n_heads, s.n_kv_heads, s.head_dim
        x = self.embed[ids]
        for layer, (ck, cv) in zip(self.layers, cache):
            h = self._rms(x, layer["n1"])
            q = (h @ layer["q"]).view(B, T, H, hd).transpose(1, 2)
            k = (h @ layer["k"]).view(B, T, Hk, hd).transpose(1, 2)
            v = (h @ layer["v"]).view(B, T, Hk, hd).transpose(1, 2)
            q, k = self._rotary(q, pos), self._rotary(k, pos)
            ck[:, :, pos:pos + T], cv[:, :, pos:pos + T] = k, v
            keys = ck[:, :, :pos + T].repeat_interleave(H // Hk, dim=1)
            vals = cv[:, :, :pos + T].repeat_interleave(H // Hk, dim=1)
            att = F.scaled_dot_product_attention(q, keys, vals, is_causal=T > 1)
            x = x + att.transpose(1, 2).reshape(B, T, s.d_model) @ layer["o"]
            h = self._rms(x, layer["n2"])
            x = x + (F.silu(h @ layer["gate"]) * (h @ layer["up"])) @ layer["down"]
        return self._rms(x[:, -1], self.norm) @ self.head


def _sync(torch, device):
    if device == "cuda":
        torch.cuda.synchronize()


def _time(repeats, run):
    """``run()`` once to warm up, then ``repeats`` times: the seconds of each (its decode steps only)."""
    run()
    return [run() for _ in range(repeats)]


def _result(model, kind, shape, params, dtype, itemsize, args, seconds, bytes_per_token, kv_cache):
    rates = [args.tokens / s for s in seconds]
    med = statistics.median(rates)
    return {"model": model, "kind": kind, "shape": shape, "params": params, "dtype": dtype,
            "weight_bytes": params * itemsize, "bytes_per_token": bytes_per_token, "kv_cache": kv_cache,
            "batch": args.batch, "prompt": args.prompt, "tokens": args.tokens, "repeats": args.repeats,
            "seconds": seconds, "tokens_per_s_all": rates, "tokens_per_s": med, "ms_per_token": 1e3 / med}


def run_reference(args, torch, device, dtype):
    from demos.lm import train
    model, report = train.load_or_train(args.arch)
    cfg = model.config
    context = cfg.context
    if args.prompt + args.tokens > context:
        raise SystemExit(f"gpu_decode.py: error: --prompt + --tokens must be at most the reference {args.arch}'s "
                         f"context of {context}, not {args.prompt + args.tokens} (or give --only shape)")
    model = model.to(device=device, dtype=getattr(torch, dtype)).eval()
    g = torch.Generator(device="cpu").manual_seed(args.seed)
    prompt = torch.randint(0, cfg.vocab_size, (args.batch, args.prompt), generator=g).to(device)

    def run():
        with torch.no_grad():
            ids = prompt
            logits = model(ids)[:, -1]
            _sync(torch, device)
            t0 = time.perf_counter()
            for _ in range(args.tokens):
                ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=1)
                logits = model(ids)[:, -1]
            _sync(torch, device)
            return time.perf_counter() - t0

    seconds = _time(args.repeats, run)
    params = sum(p.numel() for p in model.parameters())
    size = torch.finfo(getattr(torch, dtype)).bits // 8
    shape = {k: getattr(cfg, k) for k in ("n_layer", "d_model", "n_head", "d_ff", "context", "vocab_size")}
    return _result(args.arch, "reference LM of demos/lm (trained weights; no KV cache: each token recomputes the "
                              "sequence)", shape, params, dtype, size, args, seconds, params * size, False)


def run_shape(args, torch, device, dtype):
    import dataclasses

    from perf.models import MODELS
    base = MODELS[args.shape]
    over = {f: getattr(args, f) for f, _ in OVERRIDES if getattr(args, f) is not None}
    name = base.name + ("" if not over else "~" + ",".join(f"{k}={v}" for k, v in over.items()))
    try:
        shape = dataclasses.replace(base, name=name, **over)
    except ValueError as e:
        raise SystemExit(f"gpu_decode.py: error: the shape {name}: {e}") from None
    if args.prompt + args.tokens > shape.context:
        raise SystemExit(f"gpu_decode.py: error: --prompt + --tokens must be at most {shape.name}'s context of "
                         f"{shape.context}, not {args.prompt + args.tokens}")
    tdtype = getattr(torch, dtype)
    stack = LlamaStack(shape, torch, device, tdtype, args.seed)
    g = torch.Generator(device="cpu").manual_seed(args.seed)
    prompt = torch.randint(0, shape.vocab, (args.batch, args.prompt), generator=g).to(device)

    def run():
        with torch.no_grad():
            cache = stack.new_cache(args.batch, args.prompt + args.tokens)
            logits = stack.step(prompt, 0, cache)
            _sync(torch, device)
            t0 = time.perf_counter()
            for i in range(args.tokens):
                nxt = logits.argmax(-1, keepdim=True)
                logits = stack.step(nxt, args.prompt + i, cache)
            _sync(torch, device)
            return time.perf_counter() - t0

    seconds = _time(args.repeats, run)
    size = torch.finfo(tdtype).bits // 8
    params = stack.params()
    kv = 2 * shape.layers * shape.kv_dim * (args.prompt + args.tokens / 2) * args.batch * size
    per_token = (params - stack.embed.numel()) * size + kv
    fields = {f.name: getattr(shape, f.name) for f in dataclasses.fields(shape)}
    return _result(shape.name, "Llama-style stack of a perf.models shape (random weights, KV cache)", fields, params,
                   dtype, size, args, seconds, per_token, True)


def main(argv=None):
    args = parser().parse_args(argv)
    import torch
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"gpu_decode.py: no CUDA device (torch {torch.__version__}: torch.cuda.is_available() is False); run "
              "it where an NVIDIA GPU is visible, or give --device cpu to run on the CPU", file=sys.stderr)
        return 2
    dtype = args.dtype or ("bfloat16" if args.device == "cuda" else "float32")
    torch.manual_seed(args.seed)
    name = torch.cuda.get_device_name(0) if args.device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    out = {"format": FORMAT, "version": VERSION, "device": args.device, "device_name": name,
           "torch": torch.__version__, "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
           "runs": []}
    if args.only in ("both", "reference"):
        out["runs"].append(run_reference(args, torch, args.device, dtype))
    if args.only in ("both", "shape"):
        out["runs"].append(run_shape(args, torch, args.device, dtype))
    for r in out["runs"]:
        print(f"{r['model']}: {r['tokens_per_s']:,.1f} tokens/s per user (median of {r['repeats']}, batch "
              f"{r['batch']}, {r['dtype']}) on {name}", file=sys.stderr)
    text = json.dumps(out, indent=1) + "\n"
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
