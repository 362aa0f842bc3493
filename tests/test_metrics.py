"""The metric reference and public API against scikit-image, pytorch_msssim, torchmetrics and piq.

Real photographs (scikit-image's) with noise and a blur, and pure noise; the peers computed in
float64 where they allow it. Also: the Y conventions, reductions, layouts, gradients (gradcheck
of the reference) and the errors.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fastperc import BackendError, metrics
from fastperc.reference import metrics as ref


def peer(module: str, attr: str):
    """``module.attr`` from a peer package, or skip (torchvision's compiled ops are stubbed)."""
    sys.modules.setdefault(
        "torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations")
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mod = importlib.import_module(module)
    except Exception as exc:  # ImportError, or a peer's own import-time failure
        pytest.skip(f"{module} is not importable: {exc}")
    return getattr(mod, attr)


def _distort(img: np.ndarray, seed: int) -> np.ndarray:
    """A noisy, slightly blurred copy of an HWC uint8 photo."""
    rng = np.random.default_rng(seed)
    t = torch.from_numpy(img).permute(2, 0, 1)[None].double()
    t = F.avg_pool2d(F.pad(t, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    t = t + torch.from_numpy(rng.normal(0, 8, t.shape))
    return t.clamp(0, 255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()


@pytest.fixture(scope="module")
def pairs(photos):
    """(name, reference HWC uint8, distorted HWC uint8): three photos and a noise pair."""
    out = []
    for i, (name, img) in enumerate(sorted(photos.items())):
        img = np.ascontiguousarray(img[:183, :197])
        out.append((name, img, _distort(img, i)))
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (181, 203, 3), dtype=np.uint8)
    out.append(("noise", noise, _distort(noise, 9)))
    return out


def _nchw(x: np.ndarray, dtype=torch.float64) -> torch.Tensor:
    return torch.from_numpy(x).permute(2, 0, 1)[None].to(dtype)


# ----------------------------------------------------------------------------------------------
# Peers
# ----------------------------------------------------------------------------------------------


def test_ssim_matches_skimage(pairs):
    sk = peer("skimage.metrics", "structural_similarity")
    for name, a, b in pairs:
        want = sk(
            a, b, channel_axis=2, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=255,
        )  # fmt: skip
        got = float(ref.ssim(_nchw(a), _nchw(b), 255.0)[0])
        assert abs(got - want) <= 1e-10, name
        for be in ("torch", "cpp"):
            got = float(metrics.ssim(a, b, backend=be))
            assert abs(got - want) <= 1e-5, (name, be)  # float32 compute for uint8


def test_ssim_gray_matches_skimage(pairs):
    sk = peer("skimage.metrics", "structural_similarity")
    _, a, b = pairs[0]
    a, b = a[..., :1].astype(np.float64) / 255, b[..., :1].astype(np.float64) / 255
    want = sk(a[..., 0], b[..., 0], gaussian_weights=True, sigma=1.5,
              use_sample_covariance=False, data_range=1.0)  # fmt: skip
    assert abs(float(metrics.ssim(a, b)) - want) <= 1e-12


def test_ssim_and_ms_ssim_match_pytorch_msssim(pairs):
    pm_ssim = peer("pytorch_msssim", "ssim")
    pm_ms = peer("pytorch_msssim", "ms_ssim")
    win = ref.gaussian_window().view(1, 1, 1, -1).repeat(3, 1, 1, 1)
    for name, a, b in pairs[2:]:
        x, y = _nchw(a), _nchw(b)
        assert (
            abs(float(pm_ssim(x, y, data_range=255, win=win)) - float(ref.ssim(x, y, 255.0)[0]))
            <= 1e-12
        )
        exact = float(pm_ms(x, y, data_range=255, win=win))
        assert abs(exact - float(ref.ms_ssim(x, y, 255.0)[0])) <= 1e-12, name
        for be in ("cpp", "torch"):
            got = float(metrics.ms_ssim(a, b, backend=be))
            assert abs(got - exact) <= 1e-5, (name, be)
    # with its own float32-built window pytorch_msssim moves by ~5e-6
    assert abs(float(pm_ms(x, y, data_range=255)) - exact) <= 1e-5


def test_torchmetrics_variant(pairs):
    tm_ssim = peer("torchmetrics.functional.image", "structural_similarity_index_measure")
    tm_ms = peer("torchmetrics.functional.image", "multiscale_structural_similarity_index_measure")
    diffs = []
    for name, a, b in pairs[2:]:
        x, y = _nchw(a), _nchw(b)
        want = float(tm_ssim(x, y, data_range=255.0))
        for be in ("cpp", "torch"):
            got = float(metrics.ssim(a, b, variant="torchmetrics", backend=be))
            assert abs(got - want) <= 1e-5, (name, be)
        diffs.append(abs(float(metrics.ssim(a, b)) - want))
        if name == "coffee":
            want = float(tm_ms(x, y, data_range=255.0))
            for be in ("cpp", "torch"):
                got = float(metrics.ms_ssim(a, b, variant="torchmetrics", backend=be))
                assert abs(got - want) <= 1e-5, (name, be)
    assert max(diffs) > 1e-4  # the two definitions really differ on photographs


def test_ssim_matches_piq(pairs):
    piq_ssim = peer("piq", "ssim")
    for name, a, b in pairs:
        x, y = _nchw(a) / 255, _nchw(b) / 255
        want = float(piq_ssim(x, y, data_range=1.0, downsample=False))
        assert abs(float(metrics.ssim(x, y)) - want) <= 1e-10, name


def test_psnr_matches_skimage(pairs):
    sk = peer("skimage.metrics", "peak_signal_noise_ratio")
    for name, a, b in pairs:
        want = sk(a, b, data_range=255)
        for be in ("torch", "cpp"):
            assert abs(float(metrics.psnr(a, b, backend=be)) - want) <= 1e-5, (name, be)  # float32
            per = metrics.psnr(a.astype(np.float64), b.astype(np.float64), data_range=255,
                               reduction="none", backend=be)  # fmt: skip
            assert abs(float(per) - want) <= 1e-10, (name, be)
        af, bf = a.astype(np.float32) / 255, b.astype(np.float32) / 255
        want = sk(af.astype(np.float64), bf.astype(np.float64), data_range=1.0)
        assert abs(float(metrics.psnr(af, bf)) - want) <= 1e-4, name


def test_ciede2000_matches_skimage(pairs):
    de = peer("skimage.color", "deltaE_ciede2000")
    rgb2lab = peer("skimage.color", "rgb2lab")
    for name, a, b in pairs[:2]:
        la, lb = rgb2lab(a), rgb2lab(b)  # float64
        want = de(la, lb)
        for be in ("torch", "cpp"):
            got = metrics.ciede2000(la, lb, space="lab", backend=be)
            assert got.dtype == np.float64 and got.shape == want.shape
            assert np.abs(got - want).max() <= 1e-6, (name, be)
            got = metrics.ciede2000(a.astype(np.float64) / 255, b.astype(np.float64) / 255,
                                    backend=be)  # fmt: skip
            assert np.abs(got - want).max() <= 1e-6, (name, be)


def test_ciede2000_special_cases():
    de = peer("skimage.color", "deltaE_ciede2000")
    rng = np.random.default_rng(3)
    la = rng.uniform([0, -100, -100], [100, 100, 100], (9, 11, 3))
    lb = rng.uniform([0, -100, -100], [100, 100, 100], (9, 11, 3))
    la[0] = lb[0]  # equal colours
    la[1, :, 1:] = 0.0  # achromatic (C = 0) against chromatic
    lb[2, :, 1:] = 0.0
    la[2, :, 1:] = 0.0  # both achromatic
    la[3, :, 2] = 0.0  # hue exactly 0 / pi
    lb[3, :, 2] = -0.0
    la[4, :, 1], lb[4, :, 1] = -50.0, -50.0  # a* < 0, hue differences across pi
    # Sharma, Wu, Dalal (2005) test pair 1: 2.0425
    la[5, 0], lb[5, 0] = (50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485)
    for be in ("torch", "cpp"):
        got = metrics.ciede2000(la, lb, space="lab", backend=be)
        assert np.abs(got - de(la, lb)).max() <= 1e-10, be
        assert abs(got[5, 0] - 2.0425) < 1e-4


# ----------------------------------------------------------------------------------------------
# Y channel, reductions, layouts, dtypes
# ----------------------------------------------------------------------------------------------


def test_y_channel_conventions(pairs):
    """'y' is BasicSR's / MATLAB rgb2ycbcr luma (16..235), 'y_jpeg' the JFIF luma."""
    sk_psnr = peer("skimage.metrics", "peak_signal_noise_ratio")
    sk_ssim = peer("skimage.metrics", "structural_similarity")
    _, a, b = pairs[1]

    def sr_y(img):  # BasicSR rgb2ycbcr(y_only=True) on 0..1, times 255
        x = img.astype(np.float64) / 255.0
        return (x @ np.array([65.481, 128.553, 24.966]) + 16.0) / 255.0 * 255.0

    ya, yb = sr_y(a), sr_y(b)
    assert 16 <= ya.min() and ya.max() <= 235.0 + 1e-9
    want = sk_psnr(ya, yb, data_range=255)
    assert abs(float(metrics.psnr(a, b, channel="y")) - want) <= 1e-5  # float32 result
    want = sk_ssim(ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                   data_range=255)  # fmt: skip
    assert abs(float(metrics.ssim(a, b, channel="y")) - want) <= 1e-5
    assert abs(float(ref.ssim(_nchw(a), _nchw(b), 255.0, "y")[0]) - want) <= 1e-12
    jy = lambda img: img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # noqa: E731
    want = sk_psnr(jy(a), jy(b), data_range=255)
    assert abs(float(metrics.psnr(a, b, channel="y_jpeg")) - want) <= 1e-5


def test_reduction_layout_and_types():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 3, 20, 24, generator=g)
    b = (a + 0.05 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    for fn in (metrics.psnr, metrics.ssim):
        per = fn(a, b, reduction="none")
        assert per.shape == (2, 3) and per.dtype == torch.float32
        assert torch.allclose(fn(a, b), per.mean())
        one = fn(a[1, 2], b[1, 2], reduction="none")
        assert one.shape == () and torch.allclose(one, per[1, 2])
        # numpy HWC in -> numpy out, same values
        an, bn = a.permute(0, 1, 3, 4, 2).numpy(), b.permute(0, 1, 3, 4, 2).numpy()
        got = fn(an, bn, reduction="none")
        assert isinstance(got, np.ndarray) and np.allclose(got, per.numpy())
        assert isinstance(fn(an, bn), np.floating)
        # channels_last / strided views
        cl = a[0].contiguous(memory_format=torch.channels_last)
        assert torch.allclose(fn(cl, b[0]), fn(a[0], b[0]))
        assert fn(a.double(), b.double()).dtype == torch.float64
    # 0..255 floats with data_range=255 equal uint8
    au = (a * 255).round().to(torch.uint8)
    bu = (b * 255).round().to(torch.uint8)
    want = float(metrics.ssim(au.double(), bu.double(), data_range=255))
    assert abs(float(metrics.ssim(au, bu)) - want) <= 1e-6
    lab = metrics.ciede2000(a, b, reduction="none")
    assert lab.shape == (2, 3, 20, 24)
    assert metrics.ciede2000(a, b, reduction="image").shape == (2, 3)
    assert torch.allclose(metrics.ciede2000(a, b, reduction="mean"), lab.double().mean().float())


def test_identical_images():
    a = torch.rand(2, 3, 16, 17)
    assert torch.equal(metrics.psnr(a, a, reduction="none"), torch.full((2,), float("inf")))
    assert torch.allclose(metrics.ssim(a, a), torch.tensor(1.0))
    assert float(metrics.ciede2000(a, a, reduction="mean")) == 0.0


# ----------------------------------------------------------------------------------------------
# Gradients
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["valid", "torchmetrics"])
def test_reference_gradcheck(variant):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 11, 12, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 3, 11, 12, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda p, q: ref.ssim(p, q, 1.0, "y", variant=variant), (x, y), fast_mode=True
    )
    assert torch.autograd.gradcheck(lambda p, q: ref.psnr(p, q, 1.0), (x, y), fast_mode=True)


def test_auto_backend_with_grad():
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    y = torch.rand(1, 3, 16, 16)
    metrics.ssim(x, y).backward()  # auto -> the reference
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with pytest.raises(BackendError, match="not differentiable"):
        metrics.ssim(y, x, backend="cpp")
    with torch.no_grad():
        metrics.ssim(x, y, backend="cpp")


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------


def test_errors():
    a = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"at least 11x11 pixels.*10x16"):
        metrics.ssim(a[..., :10, :], a[..., :10, :])
    metrics.ssim(a[..., :6, :6], a[..., :6, :6], variant="torchmetrics")
    with pytest.raises(ValueError, match="at least 6x6"):
        metrics.ssim(a[..., :5, :], a[..., :5, :], variant="torchmetrics")
    big = torch.rand(1, 1, 160, 200)
    with pytest.raises(ValueError, match=r"ms_ssim: expected images of at least 161x161"):
        metrics.ms_ssim(big, big)
    with pytest.raises(ValueError, match="same shape"):
        metrics.ssim(a, a[:1])
    with pytest.raises(ValueError, match="same shape"):
        metrics.psnr(a, a[..., :15])
    with pytest.raises(TypeError, match="same type, dtype and device"):
        metrics.ssim(a, a.double())
    with pytest.raises(TypeError, match="same type, dtype and device"):
        metrics.psnr(a[0], a[0].numpy(), layout="chw")
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="data_range"):
            metrics.psnr(a, a, data_range=bad)
    for bad in ("1", True, [1.0]):
        with pytest.raises(TypeError, match="data_range"):
            metrics.ssim(a, a, data_range=bad)
    with pytest.raises(ValueError, match="channel"):
        metrics.ssim(a, a, channel="Y")
    with pytest.raises(ValueError, match=r"3 channels"):
        metrics.psnr(a[:, :2], a[:, :2], channel="y")
    with pytest.raises(ValueError, match="reduction"):
        metrics.ssim(a, a, reduction="sum")
    with pytest.raises(ValueError, match="variant"):
        metrics.ms_ssim(a, a, variant="pytorch_msssim")
    with pytest.raises(ValueError, match="space"):
        metrics.ciede2000(a, a, space="xyz")
    with pytest.raises(TypeError, match="dtype"):
        metrics.ciede2000(a.to(torch.uint8), a.to(torch.uint8), space="lab")
    with pytest.raises(ValueError, match="value_range"):
        metrics.ciede2000(a, a, space="lab", value_range=255)


@pytest.mark.parametrize("backend", ["torch", "cpp"])
@pytest.mark.parametrize("fn", ["psnr", "ssim", "ms_ssim", "ciede2000"])
def test_non_finite_input_raises(fn, backend):
    a = torch.rand(2, 3, 170, 170) if fn == "ms_ssim" else torch.rand(2, 3, 20, 21)
    b = a.clone()
    b[1, 2, 10, 5] = float("nan")
    with pytest.raises(ValueError, match=r"expected finite .*image\(s\) \[1\]"):
        getattr(metrics, fn)(a, b, backend=backend)
    b[1, 2, 10, 5] = float("inf")
    with pytest.raises(ValueError, match="expected finite"):
        getattr(metrics, fn)(b, a, backend=backend)
