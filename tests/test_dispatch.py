"""Backend selection rules."""

from __future__ import annotations

import pytest
import torch

import fastperc
from fastperc import color, dispatch


def test_auto_picks_cpp_on_cpu_when_built():
    x = torch.zeros(1, 3, 4, 4)
    expected = "cpp" if dispatch.available_backends()["cpp"] is None else "torch"
    assert dispatch.resolve("auto", x, op="t") == expected
    assert dispatch.resolve(None, x, op="t") == expected


def test_auto_picks_reference_for_autograd():
    x = torch.zeros(1, 3, 4, 4, requires_grad=True)
    assert dispatch.resolve("auto", x, op="t") == "torch"
    y = color.rgb_to_lab(x)
    y.sum().backward()
    assert x.grad is not None


def test_env_variable_overrides_auto(monkeypatch):
    x = torch.zeros(1, 3, 4, 4)
    monkeypatch.setenv("FASTPERC_BACKEND", "torch")
    assert dispatch.resolve("auto", x, op="t") == "torch"
    if dispatch.available_backends()["cpp"] is None:  # an explicit argument wins
        assert dispatch.resolve("cpp", x, op="t") == "cpp"
    monkeypatch.setenv("FASTPERC_BACKEND", "gpu")
    with pytest.raises(ValueError, match="FASTPERC_BACKEND"):
        dispatch.resolve("auto", x, op="t")


def test_named_backend_that_cannot_run_raises(monkeypatch):
    x = torch.zeros(1, 3, 4, 4)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(fastperc.BackendError, match=r"backend 'triton' cannot run.*CUDA"):
        color.rgb_to_ycbcr(x, backend="triton")
    monkeypatch.setattr(dispatch._ext, "_C", None)
    monkeypatch.setattr(dispatch._ext, "_IMPORT_ERROR", "simulated")
    with pytest.raises(fastperc.BackendError, match=r"backend 'cpp'.*simulated"):
        color.rgb_to_ycbcr(x, backend="cpp")
    # automatic choice falls back quietly
    assert dispatch.resolve("auto", x, op="t") == "torch"
    color.rgb_to_ycbcr(x)


def test_available_backends_reports_reasons():
    info = fastperc.available_backends()
    assert set(info) == {"torch", "cpp", "triton"}
    assert info["torch"] is None
