"""Glue between public ops and the fast backends: torch views to numpy buffers for C++."""

from __future__ import annotations

import numpy as np
import torch

from . import _ext

_CODES = {
    torch.uint8: "u8",
    torch.float16: "f16",
    torch.bfloat16: "bf16",
    torch.float32: "f32",
    torch.float64: "f64",
}


def dtype_code(t: torch.Tensor) -> str:
    return _CODES[t.dtype]


def np_view(t: torch.Tensor) -> np.ndarray:
    """A zero-copy numpy view of a CPU tensor (bfloat16 reinterpreted as uint16 bits)."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy()


def cpp():
    return _ext.cpp()


def kernels_module(name: str):
    """Import ``fastperc.kernels.<name>`` lazily (Triton is optional)."""
    import importlib

    return importlib.import_module(f"fastperc.kernels.{name}")
