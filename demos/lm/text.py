"""The language models' text: the help topics that ship with Python, as characters.

* ``corpus()``: the values of ``pydoc_data.topics.topics`` joined in sorted key order (deterministic for a
  given Python: 464,970 characters on 3.11, about 465 KB of English with code samples);
* ``VOCAB``: the sorted set of the corpus's characters (103 on Python 3.11: newline, printable ASCII but
  ``$`` and backquote, and ``° ß – — ‘ ’ “ ” …``); ``VOCAB_SIZE``; ``encode(text)`` → int64 ids,
  ``decode(ids)`` → text;
* ``split()``: the fixed split, ``(train_ids, val_ids)``: the first 90 % of the corpus trains, the last 10 %
  validates (no shuffling: the same split on every run);
* ``batch(ids, batch_size, context, rng)``: ``(x, y)`` int64 arrays ``(batch_size, context)`` of windows at
  offsets drawn from the caller's ``numpy.random.Generator``, ``y`` the next character of each position;
* ``windows(ids, context, limit=None)``: the non-overlapping windows of ``ids`` (evenly thinned to ``limit``),
  for deterministic evaluation;
* ``unigram_entropy(ids=None)``: the entropy of the character frequencies in nats per character (the whole
  corpus by default: 3.2498 on Python 3.11), the loss of the best model that ignores context.
"""
import functools
import hashlib

import numpy as np

__all__ = ["corpus", "corpus_digest", "VOCAB", "VOCAB_SIZE", "VAL_FRACTION", "encode", "decode", "split",
           "batch", "windows", "unigram_entropy"]

#: the share of the corpus, at its end, kept for validation
VAL_FRACTION = 0.1


@functools.cache
def corpus():
    """The corpus: ``pydoc_data.topics.topics``' values joined in sorted key order."""
    from pydoc_data.topics import topics
    return "".join(topics[k] for k in sorted(topics))


@functools.cache
def corpus_digest():
    """SHA-256 of the corpus (UTF-8), hex: it names the text a cached model was trained on."""
    return hashlib.sha256(corpus().encode()).hexdigest()


VOCAB = "".join(sorted(set(corpus())))
VOCAB_SIZE = len(VOCAB)
_INDEX = {ch: i for i, ch in enumerate(VOCAB)}


def encode(text):
    """``text`` as int64 ids of ``VOCAB``; a character outside it is a ``ValueError`` naming it."""
    try:
        return np.fromiter((_INDEX[ch] for ch in text), dtype=np.int64, count=len(text))
    except KeyError as e:
        raise ValueError(f"character {e.args[0]!r} is not in the vocabulary of {VOCAB_SIZE} characters") from None


def decode(ids):
    """The text of int ids of ``VOCAB`` (any integer sequence or array)."""
    return "".join(VOCAB[int(i)] for i in np.asarray(ids).reshape(-1))


@functools.cache
def _ids():
    ids = encode(corpus())
    ids.setflags(write=False)
    return ids


def split():
    """``(train_ids, val_ids)``: read-only int64 arrays, the first 90 % and the last 10 % of the corpus."""
    ids = _ids()
    n_train = len(ids) - int(round(VAL_FRACTION * len(ids)))
    return ids[:n_train], ids[n_train:]


def batch(ids, batch_size, context, rng):
    """``(x, y)``, int64 ``(batch_size, context)``: windows of ``ids`` at offsets drawn from ``rng`` (a
    ``numpy.random.Generator``), ``y`` shifted one character on."""
    if len(ids) < context + 1:
        raise ValueError(f"{len(ids)} ids are too few for windows of context {context} (need {context + 1})")
    starts = rng.integers(0, len(ids) - context, size=batch_size)
    rows = starts[:, None] + np.arange(context)
    return ids[rows], ids[rows + 1]


def windows(ids, context, limit=None):
    """``(x, y)``, int64 ``(n, context)``: the non-overlapping windows of ``ids`` (``y`` shifted one on),
    every one, or ``limit`` of them evenly spaced."""
    n = (len(ids) - 1) // context
    picks = np.arange(n) if limit is None or limit >= n else np.linspace(0, n - 1, limit).round().astype(int)
    rows = picks[:, None] * context + np.arange(context)
    return ids[rows], ids[rows + 1]


def unigram_entropy(ids=None):
    """Entropy of the character frequencies of ``ids`` (default: the whole corpus), nats per character."""
    ids = _ids() if ids is None else np.asarray(ids)
    p = np.bincount(ids, minlength=VOCAB_SIZE) / len(ids)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())
