"""Say what is happening on long work: what, where, and roughly how long it will take.

``with step("building the Verilator model of chip small", where=bdir, estimate=358.0, basis="the last
build") as s: ...`` reports on standard error:

* on a terminal, a live line redrawn every second (``… building the Verilator model of chip small in
  build/sim/chip_small_… 1:23 of about 5:58 (the last build)``), replaced by ``done in 5:51`` at the end;
* elsewhere (logs, CI, pipes), plain lines: one when the step starts, one every ``HEARTBEAT`` seconds while it
  runs (``… still building …, 2:00 of about 5:58``) and one when it ends (``… done in 5:51``);
* ``s.update(text)`` adds what the step is at (``run 3 of 6``) to the live line (plain output shows it in the
  next heartbeat);
* nothing at all when quiet: ``CONVEYOR_QUIET=1`` in the environment (the test suite sets it), or
  ``set_quiet(True)`` (``conveyor --quiet``).

``remembered(path)`` / ``remember(path, seconds)``: a duration kept in a small text file beside the work (a
build directory's ``build_seconds.txt``), for the next estimate.
"""
import contextlib
import os
import sys
import threading
import time
from pathlib import Path

__all__ = ["step", "set_quiet", "quiet", "remembered", "remember", "duration", "HEARTBEAT", "QUIET_ENV"]

QUIET_ENV = "CONVEYOR_QUIET"
#: seconds between the plain progress lines of a step that is still running (logs, CI)
HEARTBEAT = 60.0
_quiet: bool | None = None
_active: list = []          # the steps reporting now, outermost first (only the innermost ticks)


def set_quiet(value):
    """Turn progress reports off (``True``), on (``False``), or back to the environment's choice (``None``)."""
    global _quiet
    _quiet = None if value is None else bool(value)


def quiet():
    """Whether progress reports are off."""
    if _quiet is not None:
        return _quiet
    return os.environ.get(QUIET_ENV, "").strip().lower() not in ("", "0", "false", "no")


def duration(seconds):
    """``seconds`` as ``m:ss`` (``h:mm:ss`` past an hour)."""
    s = int(round(max(0.0, float(seconds))))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def remembered(path):
    """The seconds stored in ``path`` by ``remember``, or None (no such file, or not a number)."""
    try:
        value = float(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None
    return value if value > 0 else None


def remember(path, seconds):
    """Store ``seconds`` in ``path`` for the next estimate (silently skipped when it cannot be written)."""
    with contextlib.suppress(OSError):
        Path(path).write_text(f"{float(seconds):.1f}\n")


class _Step:
    def __init__(self, what, where, estimate, basis, stream, live):
        self.what, self.where, self.estimate, self.basis = what, where, estimate, basis
        self.stream, self.live = stream, live
        self.detail = ""
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = None

    def _about(self):
        if self.estimate is None:
            return ""
        return f" of about {duration(self.estimate)}" + (f" ({self.basis})" if self.basis else "")

    def _head(self):
        return self.what + (f" in {self.where}" if self.where else "")

    def _write(self, text, end="\n"):
        with self._lock:
            if self.live:
                text = "\r\x1b[2K" + text
            self.stream.write(text + end)
            self.stream.flush()

    def start(self):
        if _active and _active[-1].live and self.live:
            self._write("", end="\n")            # the enclosing step's live line stays, this one goes below
        _active.append(self)
        if self.live:
            self._write(f"… {self._head()}", end="")
        else:
            eta = f" (about {duration(self.estimate)}{', ' + self.basis if self.basis else ''})" \
                if self.estimate is not None else ""
            self._write(f"… {self._head()}{eta}")
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._thread.start()

    def _tick(self):
        period = 1.0 if self.live else HEARTBEAT
        while not self._stop.wait(period):
            if _active and _active[-1] is not self:    # an inner step is reporting
                continue
            elapsed = duration(time.monotonic() - self.t0)
            detail = f", {self.detail}" if self.detail else ""
            if self.live:
                self._write(f"… {self._head()} {elapsed}{self._about()}{detail}", end="")
            else:
                self._write(f"… still {self.what}, {elapsed}{self._about()}{detail}")

    def update(self, detail):
        """What the step is at now (shown with the elapsed time)."""
        self.detail = str(detail)

    def finish(self, ok):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self in _active:
            _active.remove(self)
        took = duration(time.monotonic() - self.t0)
        self._write(f"… {self.what}: {'done in ' + took if ok else 'failed after ' + took}")


class _Silent:
    detail = ""

    def update(self, detail):
        self.detail = str(detail)


@contextlib.contextmanager
def step(what, *, where=None, estimate=None, basis=None, stream=None):
    """Report ``what`` (``where``: the folder it works in; ``estimate``: seconds it should take, ``basis``:
    where that figure comes from) while the ``with`` body runs (module docstring). Yields an object with
    ``update(text)``."""
    if quiet():
        yield _Silent()
        return
    stream = stream if stream is not None else sys.stderr
    live = bool(getattr(stream, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"
    s = _Step(what, where, estimate, basis, stream, live)
    s.start()
    ok = False
    try:
        yield s
        ok = True
    finally:
        s.finish(ok)
