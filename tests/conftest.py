"""Shared fixtures: backends under test, real photographs, output poisoning."""

from __future__ import annotations

import os

import torch

# Triton kernels are tested on the CPU through the interpreter when no GPU is present. The flag
# must be set before any kernel module is imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import numpy as np
import pytest

from fastperc import _image, dispatch


def fast_backends() -> list:
    """The fast backends to compare with the reference, skipped with a reason when absent."""
    params = []
    for name in ("cpp", "triton"):
        reason = dispatch.available_backends()[name]
        marks = [pytest.mark.skipif(reason is not None, reason=f"{name}: {reason}")]
        if name == "triton":
            marks.append(pytest.mark.triton)
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def usable_fast_backends() -> list[str]:
    return [n for n in ("cpp", "triton") if dispatch.available_backends()[n] is None]


@pytest.fixture(params=[0.0, 255.0], ids=["poison0", "poison255"])
def poisoned(request, monkeypatch):
    """Fill every output a public op allocates with a poison value before the kernel runs."""
    monkeypatch.setattr(_image, "POISON", request.param)
    return request.param


def _photos() -> dict[str, np.ndarray]:
    import skimage.data

    return {n: getattr(skimage.data, n)() for n in ("astronaut", "coffee", "chelsea")}


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """Real colour photographs bundled with scikit-image (HWC uint8)."""
    return _photos()


@pytest.fixture(scope="session")
def photo(photos) -> np.ndarray:
    """One photo, cropped to an awkward size (odd, not a multiple of 8 or 16)."""
    return np.ascontiguousarray(photos["chelsea"][:203, :301])
