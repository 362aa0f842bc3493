"""The C++ and Triton metric backends against the PyTorch reference.

Awkward sizes (the smallest the window allows, odd, not multiples of 8), batches, every dtype,
NCHW / NHWC numpy / channels_last / strided views, intermediate buffers poisoned. The C++
kernels compute SSIM in float32 (float64 for float64 input) and PSNR/CIEDE2000 in float64.
Triton runs under the interpreter on the CPU here, so its shapes stay tiny; its backward pass is
checked against the reference's autograd gradient and with a gradcheck.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastperc import metrics

from .conftest import fast_backends

DTYPES = [torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64]


def _pair(shape, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(shape, generator=g, dtype=torch.float64)
    b = (a + 0.15 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    if dtype == torch.uint8:
        return (a * 255).round().to(dtype), (b * 255).round().to(dtype)
    return a.to(dtype), b.to(dtype)


def _tol(dtype, kind="ssim"):
    if dtype == torch.float64:
        return 1e-12
    return 2e-6 if kind == "ssim" else 1e-6


def _close(got, want, tol):
    got = torch.as_tensor(np.asarray(got) if not isinstance(got, torch.Tensor) else got)
    want = torch.as_tensor(want)
    assert got.shape == want.shape
    err = (got.double() - want.double()).abs().max().item()
    assert err <= tol * max(1.0, want.double().abs().max().item()), err


def _views(a, b, layout):
    if layout == "nchw":
        return a, b, {}
    if layout == "nhwc_numpy":
        if a.dtype == torch.bfloat16:
            pytest.skip("numpy has no bfloat16")
        return a.movedim(-3, -1).numpy(), b.movedim(-3, -1).numpy(), {}
    if layout == "channels_last":
        return (
            a.contiguous(memory_format=torch.channels_last),
            b.contiguous(memory_format=torch.channels_last),
            {},
        )
    # strided: every other column of a wider image, transposed
    wa = torch.cat([a, a], dim=-1)[..., ::2].transpose(-1, -2)
    wb = torch.cat([b, b], dim=-1)[..., ::2].transpose(-1, -2)
    return wa, wb, {}


# ----------------------------------------------------------------------------------------------
# C++
# ----------------------------------------------------------------------------------------------

SHAPES = [(1, 1, 11, 11), (2, 3, 17, 31), (3, 2, 40, 13), (1, 3, 64, 48)]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d)[6:])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("variant", ["valid", "torchmetrics"])
def test_cpp_ssim(shape, dtype, variant):
    a, b = _pair(shape, dtype)
    for channel in ("rgb", "y", "y_jpeg") if shape[1] == 3 else ("rgb",):
        kw = {"channel": channel, "variant": variant, "reduction": "none"}
        want = metrics.ssim(a, b, backend="torch", **kw)
        got = metrics.ssim(a, b, backend="cpp", **kw)
        assert got.dtype == want.dtype
        _close(got, want, _tol(dtype))


@pytest.mark.parametrize("layout", ["nhwc_numpy", "channels_last", "strided"])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32], ids=["uint8", "float32"])
def test_cpp_layouts(layout, dtype):
    a, b = _pair((2, 3, 19, 23), dtype, seed=3)
    x, y, _ = _views(a, b, layout)
    ref_a, ref_b = (a, b) if layout != "strided" else (x, y)
    for fn in (metrics.ssim, metrics.psnr):
        for channel in ("rgb", "y"):
            want = fn(ref_a, ref_b, backend="torch", channel=channel, reduction="none")
            got = fn(x, y, backend="cpp", channel=channel, reduction="none")
            _close(got, want, _tol(dtype))
    want = metrics.ciede2000(ref_a, ref_b, backend="torch", reduction="image")
    _close(metrics.ciede2000(x, y, backend="cpp", reduction="image"), want, 1e-6)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float16, torch.float32, torch.float64],
                         ids=lambda d: str(d)[6:])  # fmt: skip
@pytest.mark.parametrize("variant", ["valid", "torchmetrics"])
def test_cpp_ms_ssim(dtype, variant, poisoned):
    side = 161 if variant == "valid" else 176
    shape = (1, 3, side, side + 6) if poisoned else (2, 1, side + 11, side)  # odd / even scales
    a, b = _pair(shape, dtype, seed=int(poisoned))
    for channel in ("rgb", "y") if shape[1] == 3 else ("rgb",):
        kw = {"channel": channel, "variant": variant, "reduction": "none"}
        want = metrics.ms_ssim(a, b, backend="torch", **kw)
        tol = 1e-12 if dtype == torch.float64 else 1e-5  # float32 pooling and filtering
        _close(metrics.ms_ssim(a, b, backend="cpp", **kw), want, tol)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d)[6:])
def test_cpp_psnr(dtype):
    for shape in [(1, 1, 1, 1), (2, 3, 5, 7), (3, 3, 33, 17)]:
        a, b = _pair(shape, dtype, seed=1)
        channels = ("rgb", "y", "y_jpeg") if shape[1] == 3 else ("rgb",)
        for channel in channels:
            kw = {"channel": channel, "reduction": "none"}
            want = metrics.psnr(a, b, backend="torch", **kw)
            _close(metrics.psnr(a, b, backend="cpp", **kw), want, _tol(dtype, "psnr"))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d)[6:])
def test_cpp_ciede2000(dtype, poisoned):
    for shape in [(1, 3, 1, 1), (2, 3, 9, 14)]:
        a, b = _pair(shape, dtype, seed=2)
        want = metrics.ciede2000(a, b, backend="torch")
        got = metrics.ciede2000(a, b, backend="cpp")
        assert got.dtype == want.dtype and got.shape == (shape[0], *shape[2:])
        _close(got, want, 1e-5 if dtype != torch.float64 else 1e-12)


# ----------------------------------------------------------------------------------------------
# Both fast backends (Triton interpreted: tiny shapes)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", fast_backends())
@pytest.mark.parametrize(
    ("variant", "dtype", "channel"),
    [
        ("valid", torch.float32, "rgb"),
        ("valid", torch.uint8, "y"),
        ("torchmetrics", torch.float64, "rgb"),
        ("torchmetrics", torch.float32, "y_jpeg"),
    ],
)
def test_ssim_backend(backend, variant, dtype, channel):
    a, b = _pair((1, 2 if channel == "rgb" else 3, 13, 17), dtype)
    kw = {"variant": variant, "channel": channel, "reduction": "none"}
    want = metrics.ssim(a, b, backend="torch", **kw)
    _close(metrics.ssim(a, b, backend=backend, **kw), want, _tol(dtype))


@pytest.mark.parametrize("backend", fast_backends())
def test_ms_ssim_backend(backend):
    a, b = _pair((1, 1, 161, 165), torch.float32)
    want = metrics.ms_ssim(a, b, backend="torch")
    _close(metrics.ms_ssim(a, b, backend=backend), want, 1e-5)


@pytest.mark.parametrize("backend", fast_backends())
def test_psnr_and_ciede2000_backend(backend, poisoned):
    a, b = _pair((2, 3, 9, 13), torch.float32, seed=5)
    for channel in ("rgb", "y"):
        want = metrics.psnr(a, b, backend="torch", channel=channel, reduction="none")
        _close(metrics.psnr(a, b, backend=backend, channel=channel, reduction="none"), want, 1e-6)
    rng = np.random.default_rng(3)
    lo, hi = np.array([0, -100, -100]).reshape(3, 1, 1), np.array([100, 100, 100]).reshape(3, 1, 1)
    la = rng.uniform(lo, hi, (2, 3, 7, 9))
    lb = rng.uniform(lo, hi, (2, 3, 7, 9))
    la[:, 1:, 0] = 0.0  # achromatic rows
    lb[:, 1:, 1] = 0.0
    la[0, :, 2], lb[0, :, 2] = lb[0, :, 2], lb[0, :, 2]  # equal colours
    ta, tb = torch.from_numpy(la), torch.from_numpy(lb)
    want = metrics.ciede2000(ta, tb, space="lab", backend="torch")
    _close(metrics.ciede2000(ta, tb, space="lab", backend=backend), want, 1e-12)
    _close(metrics.ciede2000(ta.float(), tb.float(), space="lab", backend=backend),
           metrics.ciede2000(ta.float(), tb.float(), space="lab", backend="torch"), 1e-6)  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Triton gradients
# ----------------------------------------------------------------------------------------------

triton_only = [p for p in fast_backends() if p.id == "triton"]


@pytest.mark.parametrize("backend", triton_only)
@pytest.mark.parametrize("variant", ["valid", "torchmetrics"])
def test_triton_ssim_gradient(backend, variant):
    a, b = _pair((1, 1, 12, 13), torch.float64, seed=4)
    grads = {}
    for be in ("torch", backend):
        x, y = a.clone().requires_grad_(), b.clone().requires_grad_()
        metrics.ssim(x, y, backend=be, variant=variant).backward()
        grads[be] = (x.grad, y.grad)
    for g_ref, g in zip(grads["torch"], grads[backend]):
        assert (g - g_ref).abs().max().item() <= 1e-12 * max(1.0, g_ref.abs().max().item())
    # only one input requiring grad
    x = a.clone().requires_grad_()
    metrics.ssim(x, b, backend=backend, variant=variant).backward()
    assert torch.allclose(x.grad, grads["torch"][0], rtol=0, atol=1e-14)


@pytest.mark.parametrize("backend", triton_only)
def test_triton_gradcheck(backend):
    g = torch.Generator().manual_seed(6)
    x = torch.rand(1, 1, 11, 12, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 1, 11, 12, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda p: metrics.ssim(p, y.detach(), backend=backend), (x,), fast_mode=True
    )
    for be in ("torch", backend):  # PSNR's backward is torch ops around the Triton forward
        p, q = x.detach().clone().requires_grad_(), y.detach().clone().requires_grad_()
        metrics.psnr(p, q, backend=be, channel="rgb").backward()
        if be == "torch":
            want = (p.grad, q.grad)
    assert torch.allclose(p.grad, want[0], atol=1e-12) and torch.allclose(
        q.grad, want[1], atol=1e-12
    )
