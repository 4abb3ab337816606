"""Train the reference language models on CPU, deterministically from a seed, and cache them under ``build/``.

* ``train(arch, seed=0, *, config=None, **settings)`` → ``(model, report)``: ``arch`` "gpt" or "llama"
  (``demos.lm.models``), ``settings`` the fields of ``Settings`` (steps, batch size, learning rate, …).
  AdamW (weight decay on the matrices and embeddings only), linear warm-up then cosine decay, gradients
  clipped; batches drawn from ``numpy.random.default_rng(seed)``, the weights initialised after
  ``torch.manual_seed(seed)`` (in a forked RNG: the caller's is left as it was), deterministic algorithms on
  and ``threads`` torch threads while training (both restored after). The same seed and settings give the
  same weights, bit for bit, on one machine. ``report``: a dict, JSON-ready: the losses in nats per character
  (``initial_loss``: the first batch's; ``train_loss`` on ``eval_windows`` evenly spaced windows of the
  training split; ``val_loss`` on every non-overlapping window of the validation split), the corpus's
  ``unigram_entropy``, ``seconds`` (the training loop's wall time), ``params``, ``config``, ``settings``.
* ``load_or_train(arch, seed=0, build_dir=None, *, config=None, **settings)``: the same, cached as
  ``<build>/lm/<arch>_<key>.npz`` (the state_dict as numpy arrays: no pickle, read with
  ``allow_pickle=False``) beside ``<arch>_<key>.json`` (the report); ``key`` hashes the arch, seed, config,
  settings and the corpus (``settings_key``). A cached pair is reused (``report["cached"]`` says which).
  ``build_dir``: the build root, default ``$CONVEYOR_BUILD`` or ``build/``.
* ``save_weights(model, path)`` / ``load_weights(arch, path, config=None)``: the npz form alone.
"""
import contextlib
import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sim import progress
from sim.runner import default_build

from . import models, text

__all__ = ["Settings", "train", "load_or_train", "evaluate", "settings_key", "save_weights", "load_weights"]


@dataclass(frozen=True)
class Settings:
    """How a model is trained (the defaults: ``python -m demos.lm.train`` measures them)."""
    steps: int = 3000
    batch_size: int = 32
    lr: float = 3e-3             #: peak learning rate, after ``warmup`` steps
    min_lr: float = 3e-4         #: the cosine decay's end
    warmup: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_windows: int = 512      #: training-split windows for ``train_loss``
    threads: int = 1             #: torch threads: 1, as 2 threads run 4-8x slower when the 2 cores are shared

    def __post_init__(self):
        for name in ("steps", "batch_size", "warmup", "eval_windows", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer: {v!r}")

    def lr_at(self, i):
        """The learning rate of step ``i`` (0-based)."""
        if i < self.warmup:
            return self.lr * (i + 1) / self.warmup
        t = (i - self.warmup) / max(1, self.steps - self.warmup)
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1 + math.cos(math.pi * min(1.0, t)))


@contextlib.contextmanager
def _deterministic(seed, threads):
    """Seeded torch RNG (forked), deterministic algorithms and ``threads`` threads, restored afterwards."""
    was = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
           torch.get_num_threads())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(was[0], warn_only=was[1])
            torch.set_num_threads(was[2])


@torch.no_grad()
def evaluate(model, ids, limit=None, chunk=128):
    """Mean cross-entropy, nats per character, of ``model`` on the non-overlapping windows of ``ids``
    (``limit``: that many, evenly spaced)."""
    x, y = text.windows(ids, model.config.context, limit)
    total = 0.0
    for i in range(0, len(x), chunk):
        logits = model(torch.from_numpy(x[i:i + chunk]))
        total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), torch.from_numpy(y[i:i + chunk]).reshape(-1),
                                 reduction="sum").item()
    return total / y.size


def train(arch, seed=0, *, config=None, **settings):
    """Train a fresh ``arch`` model from ``seed`` (module docstring): ``(model, report)``."""
    s = Settings(**settings)
    train_ids, val_ids = text.split()
    rng = np.random.default_rng(seed)
    with _deterministic(seed, s.threads):
        model = models.build(arch, config)
        c = model.config
        matrices = [p for p in model.parameters() if p.dim() >= 2]
        vectors = [p for p in model.parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": matrices, "weight_decay": s.weight_decay},
                                 {"params": vectors, "weight_decay": 0.0}], lr=s.lr, betas=(0.9, 0.99))
        what = f"training the {arch} LM ({model.num_params():,} parameters, {s.steps} steps, seed {seed})"
        t0 = time.monotonic()
        with progress.step(what) as st:
            for i in range(s.steps):
                for group in opt.param_groups:
                    group["lr"] = s.lr_at(i)
                x, y = (torch.from_numpy(a) for a in text.batch(train_ids, s.batch_size, c.context, rng))
                loss = F.cross_entropy(model(x).reshape(-1, c.vocab_size), y.reshape(-1))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
                opt.step()
                if i == 0:
                    initial = loss.item()
                if i % 25 == 0 or i == s.steps - 1:
                    st.update(f"step {i + 1} of {s.steps}, loss {loss.item():.3f}")
        seconds = time.monotonic() - t0
        model.eval()
        report = {"arch": arch, "seed": seed, "params": model.num_params(), "initial_loss": initial,
                  "train_loss": evaluate(model, train_ids, s.eval_windows), "val_loss": evaluate(model, val_ids),
                  "unigram_entropy": text.unigram_entropy(), "seconds": round(seconds, 2),
                  "steps": s.steps, "config": asdict(c), "settings": asdict(s), "torch": torch.__version__}
    return model, report


def settings_key(arch, seed, config, settings):
    """12 hex digits naming a trained model: arch, seed, config, ``Settings`` and the corpus's digest."""
    key = {"arch": arch, "seed": seed, "config": asdict(models.config_of(arch, config)), "settings": asdict(settings),
           "corpus": text.corpus_digest()}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def _replace(path, write):
    """Write ``path`` through a temporary file beside it (``write(file)``), then rename: no half files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


def save_weights(model, path):
    """``model``'s state_dict as float32 numpy arrays in ``path`` (.npz, no pickled objects)."""
    arrays = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    _replace(Path(path), lambda f: np.savez(f, **arrays))


def load_weights(arch, path, config=None):
    """A ``models.build(arch, config)`` model with the weights of ``path`` (``np.load(allow_pickle=False)``),
    in eval mode."""
    with torch.random.fork_rng(devices=[]):
        model = models.build(arch, config)
    with np.load(path, allow_pickle=False) as z:
        model.load_state_dict({k: torch.from_numpy(z[k]) for k in z.files}, strict=True)
    return model.eval()


def load_or_train(arch, seed=0, build_dir=None, *, config=None, **settings):
    """``train(arch, seed, ...)`` cached under ``<build_dir>/lm/`` (module docstring): ``(model, report)``."""
    s = Settings(**settings)
    root = Path(build_dir) if build_dir is not None else default_build()
    stem = root / "lm" / f"{arch}_{settings_key(arch, seed, config, s)}"
    npz, js = stem.with_suffix(".npz"), stem.with_suffix(".json")
    if npz.exists() and js.exists():
        report = json.loads(js.read_text())
        return load_weights(arch, npz, report["config"]), {**report, "cached": True, "path": str(npz)}
    model, report = train(arch, seed, config=config, **asdict(s))
    save_weights(model, npz)
    _replace(js, lambda f: f.write((json.dumps(report, indent=1) + "\n").encode()))
    return model, {**report, "cached": False, "path": str(npz)}


if __name__ == "__main__":
    import sys
    for name in sys.argv[1:] or list(models.ARCHS):
        _, rep = load_or_train(name)
        print(json.dumps({k: rep[k] for k in ("arch", "params", "steps", "seconds", "initial_loss", "train_loss",
                                              "val_loss", "unigram_entropy", "cached", "path")}))
