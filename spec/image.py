"""A program's memory image: what is written into MEM before a run, checked against a configuration.

An image is a list of ``(slice, bank, addr, vectors)`` (slice by index or name, ``vectors`` an ``n × L`` integer
array of int32 lane values), as the compiler's programs, the assembler's data files and the simulators all use
it. ``check_mem_inputs(config, inputs)`` checks one against ``config`` (a MEM slice, banks and words in range,
int32 values) and returns it normalized; ``read_npz(path)`` reads the arrays of an ``.npz`` file without pickle
(the one way data files are read here).
"""
import zipfile
import zlib

import numpy as np

__all__ = ["check_mem_inputs", "read_npz"]


def check_mem_inputs(config, inputs, labels=None):
    """``inputs`` checked: ``[(slice index, bank, addr, n × L integer array)]``; a ``ValueError`` names the
    item by ``labels[n]`` (default ``inputs[n]``)."""
    out = []
    for n, item in enumerate(inputs):
        label = f"inputs[{n}]" if labels is None else labels[n]
        if not isinstance(item, (tuple, list)) or len(item) != 4:
            raise ValueError(f"{label} must be (slice, bank, addr, vectors), not {item!r}")
        slice_ref, bank, addr, vectors = item
        try:
            p = config.slice_index(slice_ref)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{label}: {e}") from None
        if config.slices[p] != "mem":
            raise ValueError(f"{label}: slice {config.slice_names[p]} is not a MEM slice")
        if not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in (bank, addr)):
            raise ValueError(f"{label}: bank and addr must be integers, not {bank!r} and {addr!r}")
        v = np.asarray(vectors)
        if v.ndim == 1:
            v = v[None, :]
        if v.ndim != 2 or v.shape[1] != config.lanes or v.dtype.kind not in "iu":
            raise ValueError(f"{label}: vectors must be an integer array of shape (n, {config.lanes}), "
                             f"not {v.dtype} {v.shape}")
        if v.size and (int(v.min()) < -2**31 or int(v.max()) > 2**31 - 1):
            raise ValueError(f"{label}: values must be int32 ({-2**31} .. {2**31 - 1}), not "
                             f"{int(v.min())} .. {int(v.max())}")
        if not 0 <= bank < config.mem_banks or not 0 <= addr or addr + len(v) > config.mem_depth:
            raise ValueError(f"{label}: bank {bank}, words {addr} .. {addr + len(v) - 1} do not fit in "
                             f"{config.mem_banks} banks of {config.mem_depth} words")
        out.append((p, int(bank), int(addr), v))
    return out



def read_npz(path, what="file"):
    """Every array of the ``.npz`` file ``path`` as ``{key: array}``, read at once with ``allow_pickle=False``.
    Anything else (a missing or unreadable file, an ``.npy`` or other non-zip file, a truncated or corrupt
    archive, an object array that would need pickle) is a one-line ``ValueError`` naming ``what`` and
    ``path`` (and the key)."""
    try:
        npz = np.load(path, allow_pickle=False)
    except OSError as e:
        raise ValueError(f"cannot read {what} {path}: {e.strerror or e}") from None
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error, MemoryError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ValueError(f"{what} {path} is not a readable .npz file ({reason})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{what} {path} is a single .npy array, not an .npz file (np.savez writes one)")
    out = {}
    with npz:
        for key in npz.files:
            try:
                out[key] = npz[key]
            except ValueError as e:
                if "pickle" in str(e):
                    raise ValueError(f"{what} {path}: key {key!r} is an object array (it needs pickle, which is "
                                     f"not read); it must be a numeric array") from None
                raise ValueError(f"{what} {path}: key {key!r} cannot be read "
                                 f"({' '.join(str(e).split())})") from None
            except (OSError, EOFError, KeyError, NotImplementedError, zipfile.BadZipFile, zlib.error,
                    MemoryError) as e:
                reason = " ".join(str(e).split()) or "truncated"
                raise ValueError(f"{what} {path}: key {key!r} cannot be read ({type(e).__name__}: "
                                 f"{reason})") from None
    return out
