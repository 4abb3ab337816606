"""Writing a benchmark's results: the JSON file under ``bench/results/`` with the machine and the time taken."""
import json
import platform
import time
from pathlib import Path

__all__ = ["write_results"]


def write_results(path, result, started):
    """Add ``machine`` and ``seconds`` (since ``started``, a ``time.perf_counter()`` value) to ``result`` and
    write it as JSON to ``path``."""
    result = dict(result, machine={"python": platform.python_version(), "machine": platform.machine()},
                  seconds=round(time.perf_counter() - started, 1))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return out
