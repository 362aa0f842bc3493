"""The one place that imports the compiled extension, guarded.

A missing or broken build degrades to the reference backend (with ``backend="auto"``); asking
for ``backend="cpp"`` then raises with the reason and the fix.
"""

from __future__ import annotations

from types import ModuleType

_C: ModuleType | None
_IMPORT_ERROR: str | None

try:
    from . import _C  # type: ignore[attr-defined, no-redef]

    _IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised only on broken installs
    _C = None
    _IMPORT_ERROR = str(exc)


def cpp() -> ModuleType:
    """Return the compiled module or raise a RuntimeError saying how to build it."""
    if _C is None:
        raise RuntimeError(
            "the C++ backend of fastperc is not available: the extension module fastperc._C "
            f"failed to import ({_IMPORT_ERROR}). Reinstall with a C++17 compiler present "
            "(`pip install .` from a source checkout), or pass backend='torch'."
        )
    return _C


def cpp_available() -> bool:
    return _C is not None
