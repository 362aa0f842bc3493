"""Backend selection: one rule for every op.

* ``backend="auto"`` (the default): a CUDA tensor goes to Triton, a CPU tensor or numpy array to
  C++, a tensor that needs gradients (or lives elsewhere) to the PyTorch reference. An automatic
  choice falls back quietly to the reference when a fast backend cannot run.
* ``backend="cpp" | "triton" | "torch"`` forces one; if it cannot run, :class:`BackendError`
  says why and how to fix it.
* The environment variable ``FASTPERC_BACKEND`` sets the backend used where ``backend="auto"``;
  it counts as a request by name.

Triton kernels also run on CPU tensors under ``TRITON_INTERPRET=1`` (slowly; used in tests).
"""

from __future__ import annotations

import functools
import importlib.util
import os

import torch

from . import _ext

BACKENDS = ("torch", "cpp", "triton")
_CHOICES = ("auto", *BACKENDS)


class BackendError(RuntimeError):
    """A backend asked for by name cannot run this call."""


def triton_interpret() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@functools.lru_cache(maxsize=1)
def _triton_import_error() -> str | None:
    if importlib.util.find_spec("triton") is None:
        return "the `triton` package is not installed (pip install triton)"
    try:
        import triton  # noqa: F401
    except Exception as exc:  # pragma: no cover - depends on the environment
        return f"`import triton` failed: {exc}"
    return None


def triton_available() -> bool:
    return _triton_import_error() is None


def available_backends() -> dict[str, str | None]:
    """Map each backend to ``None`` if usable in this process, else the reason it is not."""
    reasons: dict[str, str | None] = {"torch": None}
    reasons["cpp"] = None if _ext.cpp_available() else _ext._IMPORT_ERROR
    err = _triton_import_error()
    if err is None and not torch.cuda.is_available() and not triton_interpret():
        err = "no CUDA GPU is visible (set TRITON_INTERPRET=1 to run the kernels on the CPU)"
    reasons["triton"] = err
    return reasons


def _why_not(backend: str, tensor: torch.Tensor) -> str | None:
    if backend == "torch":
        return None
    if backend == "cpp":
        if not _ext.cpp_available():
            return (
                f"the compiled extension fastperc._C did not import ({_ext._IMPORT_ERROR}); "
                "reinstall fastperc from source with a C++17 compiler"
            )
        if tensor.device.type != "cpu":
            return f"the C++ backend runs on CPU data, got a tensor on {tensor.device}"
        return None
    err = _triton_import_error()
    if err is not None:
        return err
    if tensor.device.type == "cuda":
        return None
    if tensor.device.type == "cpu" and triton_interpret():
        return None
    return (
        f"the Triton backend needs a CUDA tensor, got one on {tensor.device} "
        "(move it with .cuda(), or set TRITON_INTERPRET=1 to interpret the kernels on the CPU)"
    )


def resolve(backend: str | None, tensor: torch.Tensor, *, op: str) -> str:
    """Pick the backend that runs ``op`` on ``tensor``.

    Args:
        backend: ``"auto"``, ``"cpp"``, ``"triton"`` or ``"torch"`` (``None`` means ``"auto"``).
        tensor: the main input, as a torch tensor.
        op: the op's name, for error messages.
    """
    if backend is None:
        backend = "auto"
    if not isinstance(backend, str) or backend not in _CHOICES:
        raise ValueError(f"Expected `backend` to be one of {_CHOICES}, got {backend!r}")
    if backend == "auto":
        env = os.environ.get("FASTPERC_BACKEND", "auto").strip().lower() or "auto"
        if env not in _CHOICES:
            raise ValueError(
                f"Expected the environment variable FASTPERC_BACKEND to be one of {_CHOICES}, "
                f"got {env!r}"
            )
        backend = env
        if backend == "auto":
            if tensor.requires_grad and torch.is_grad_enabled():
                return "torch"
            if tensor.device.type == "cuda":
                return "triton" if _why_not("triton", tensor) is None else "torch"
            if tensor.device.type == "cpu":
                return "cpp" if _why_not("cpp", tensor) is None else "torch"
            return "torch"
    reason = _why_not(backend, tensor)
    if reason is not None:
        avail = [b for b, r in available_backends().items() if r is None]
        raise BackendError(
            f"{op}: backend {backend!r} cannot run this call: {reason}. "
            f"Backends available in this process: {avail}."
        )
    return backend
