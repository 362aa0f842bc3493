"""Reference full-reference image metrics: PSNR, SSIM, MS-SSIM, CIEDE2000 (the spec).

Every function takes ``[N, C, H, W]`` tensors (any strides, any supported dtype), computes in
float64 with plain differentiable torch ops, and returns float64 results.

Conventions
-----------
* **Window**: the Gaussian of Wang et al. (2004): 11 taps, sigma 1.5, normalised to sum 1
  (:func:`gaussian_window`), applied separably (rows, then columns).
* **SSIM** (``variant="valid"``, the default): the original definition. The five local
  statistics (means, variances, covariance; population form) are filtered without padding, so
  the SSIM map is ``(H - 10) x (W - 10)``; its mean per channel, then the mean over channels,
  is the image's SSIM. This is what scikit-image computes with ``gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False`` (it filters with reflection and then crops the
  border the window touched) and what ``pytorch_msssim`` computes.
* **SSIM** (``variant="torchmetrics"``): torchmetrics' version. Both images are padded by 5
  pixels with ``reflect`` padding, the filtered variances are clamped at 0, and the SSIM map
  (``H x W``, border included) is averaged; its contrast-structure map is cropped back to the
  ``(H - 10) x (W - 10)`` interior.
* **MS-SSIM**: five scales with the weights ``(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``.
  ``"valid"`` follows ``pytorch_msssim``: between scales a 2x2 average pool that pads odd sizes
  with one zero row/column on each side (``avg_pool2d(kernel_size=2, padding=size % 2)``,
  zeros counted in the average); contrast-structure values clamped at 0 (``relu``) at the four
  finer scales, SSIM clamped at 0 at the coarsest; the weighted product per channel, then the
  mean over channels. ``"torchmetrics"`` follows torchmetrics: the padded SSIM per image (all
  channels together), plain 2x2 average pooling (odd sizes floored), ``relu`` at every scale,
  the weighted product per image.
* **Y channel**: ``"y"`` is the luma of super-resolution papers (MATLAB's ``rgb2ycbcr``, as
  BasicSR's ``test_y_channel``): ``Y = 16/255 * R + (65.481 R + 128.553 G + 24.966 B) / 255``
  on RGB in 0..``data_range`` units, i.e. studio-swing 16..235 for 0..255 data, not rounded.
  ``"y_jpeg"`` is JPEG/JFIF full-range luma ``0.299 R + 0.587 G + 0.114 B``. Either is computed
  from the RGB values before any filtering, and the metric uses the same ``data_range``.
* **PSNR**: ``10 log10(data_range**2 / MSE)`` per image (MSE over channels and pixels), as
  scikit-image's ``peak_signal_noise_ratio``; identical images give ``inf``.
* **CIEDE2000**: per-pixel Delta E 2000 of two CIE L*a*b* images with ``kL = kC = kH = 1``,
  written as scikit-image's ``deltaE_ciede2000`` (hue angles in 0..2 pi, the ``C1 C2 = 0``
  special cases).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

WIN_SIZE = 11
WIN_SIGMA = 1.5
K1 = 0.01
K2 = 0.03
#: MS-SSIM scale weights (Wang, Simoncelli, Bovik 2003), finest scale first.
MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: Padding of torchmetrics' variant: ``int(3.5 * sigma + 0.5)``.
TM_PAD = 5
VARIANTS = ("valid", "torchmetrics")

#: Luma weights ``(wR, wG, wB)`` and offset (in units of the data range) of ``channel="y"``
#: (super-resolution / MATLAB ``rgb2ycbcr``) and ``channel="y_jpeg"`` (JFIF).
LUMA = {
    "y": ((65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0), 16.0 / 255.0),
    "y_jpeg": ((0.299, 0.587, 0.114), 0.0),
}


def gaussian_window(size: int = WIN_SIZE, sigma: float = WIN_SIGMA) -> torch.Tensor:
    """The normalised 1-D Gaussian window, float64, centred on ``size // 2``."""
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def min_size(variant: str) -> int:
    """Smallest height/width SSIM accepts: the window (valid), or 6 (reflect padding by 5)."""
    return WIN_SIZE if variant == "valid" else TM_PAD + 1


def ms_min_size(variant: str) -> int:
    """Smallest height/width MS-SSIM accepts: the coarsest scale must hold the window.

    ``"valid"``: ``> (11 - 1) * 2**4 = 160`` (pytorch_msssim's condition); ``"torchmetrics"``:
    ``H // 16 > 10`` (torchmetrics' condition).
    """
    return (WIN_SIZE - 1) * 2**4 + 1 if variant == "valid" else (WIN_SIZE - 1) * 16 + 16


def to_luma(x: torch.Tensor, channel: str, data_range: float) -> torch.Tensor:
    """``[N, 3, H, W]`` RGB -> ``[N, 1, H, W]`` float64 luma (see the module docstring)."""
    (wr, wg, wb), off = LUMA[channel]
    x = x.to(torch.float64)
    y = wr * x[:, 0:1] + wg * x[:, 1:2] + wb * x[:, 2:3]
    return y + off * data_range if off else y


def select_channels(x: torch.Tensor, channel: str, data_range: float) -> torch.Tensor:
    """The float64 planes a metric compares: every channel (``"rgb"``) or one luma plane."""
    if channel == "rgb":
        return x.to(torch.float64)
    return to_luma(x, channel, data_range)


def _filter_valid(x: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    """Separable valid correlation of every plane of ``[N, C, H, W]`` with ``win``."""
    c = x.shape[1]
    k = win.to(x.dtype)
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ssim_maps(
    x: torch.Tensor, y: torch.Tensor, data_range: float, variant: str = "valid"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The SSIM and contrast-structure maps of two float ``[N, C, H, W]`` batches.

    ``"valid"``: both ``(H - 10) x (W - 10)``. ``"torchmetrics"``: the SSIM map ``H x W``
    (reflect padding), the contrast-structure map cropped to ``(H - 10) x (W - 10)``.
    """
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    if variant == "torchmetrics":
        p = TM_PAD
        x = F.pad(x, (p, p, p, p), mode="reflect")
        y = F.pad(y, (p, p, p, p), mode="reflect")
    win = gaussian_window()
    mu_x = _filter_valid(x, win)
    mu_y = _filter_valid(y, win)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    s_xx = _filter_valid(x * x, win) - mu_xx
    s_yy = _filter_valid(y * y, win) - mu_yy
    s_xy = _filter_valid(x * y, win) - mu_xy
    if variant == "torchmetrics":
        s_xx = s_xx.clamp(min=0.0)
        s_yy = s_yy.clamp(min=0.0)
    cs = (2.0 * s_xy + c2) / (s_xx + s_yy + c2)
    ssim = (2.0 * mu_xy + c1) / (mu_xx + mu_yy + c1) * cs
    if variant == "torchmetrics":
        p = TM_PAD
        cs = cs[..., p:-p, p:-p]
    return ssim, cs


def ssim_per_channel(
    x: torch.Tensor, y: torch.Tensor, data_range: float, variant: str = "valid"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure per plane: two float64 ``[N, C]`` tensors."""
    s, cs = ssim_maps(x.to(torch.float64), y.to(torch.float64), data_range, variant)
    return s.mean(dim=(2, 3)), cs.mean(dim=(2, 3))


def _pool_valid(x: torch.Tensor) -> torch.Tensor:
    """pytorch_msssim's 2x2 average pool: odd sizes padded by one zero on each side."""
    pad = [s % 2 for s in x.shape[2:]]
    return F.avg_pool2d(x, kernel_size=2, padding=pad)


def ssim(
    a: torch.Tensor,
    b: torch.Tensor,
    data_range: float,
    channel: str = "rgb",
    variant: str = "valid",
) -> torch.Tensor:
    """SSIM per image, float64 ``[N]``."""
    x = select_channels(a, channel, data_range)
    y = select_channels(b, channel, data_range)
    s, _ = ssim_per_channel(x, y, data_range, variant)
    return s.mean(dim=1)


def ms_combine(
    ssim_levels: list[torch.Tensor],
    cs_levels: list[torch.Tensor],
    variant: str = "valid",
    weights: tuple[float, ...] = MS_WEIGHTS,
) -> torch.Tensor:
    """MS-SSIM per image from per-plane ``[N, P]`` SSIM and cs means of every scale.

    Uses the coarsest scale's SSIM and the finer scales' cs (see the module docstring).
    """
    w = torch.tensor(weights, dtype=torch.float64, device=ssim_levels[-1].device)
    vals = [*cs_levels[: len(weights) - 1], ssim_levels[len(weights) - 1]]
    if variant == "torchmetrics":
        vals = [v.mean(dim=1) for v in vals]  # per image, channels pooled
    stack = torch.relu(torch.stack([v.to(torch.float64) for v in vals], dim=0))
    prod = torch.prod(stack ** w.view(-1, *([1] * (stack.dim() - 1))), dim=0)
    return prod.mean(dim=1) if variant == "valid" else prod


def pool2(x: torch.Tensor, variant: str = "valid") -> torch.Tensor:
    """The 2x2 average pooling between MS-SSIM scales of ``variant``."""
    return _pool_valid(x) if variant == "valid" else F.avg_pool2d(x, 2)


def ms_ssim(
    a: torch.Tensor,
    b: torch.Tensor,
    data_range: float,
    channel: str = "rgb",
    variant: str = "valid",
    weights: tuple[float, ...] = MS_WEIGHTS,
) -> torch.Tensor:
    """MS-SSIM per image, float64 ``[N]``."""
    x = select_channels(a, channel, data_range)
    y = select_channels(b, channel, data_range)
    ss, cs = [], []
    for i in range(len(weights)):
        s, c = ssim_per_channel(x, y, data_range, variant)
        ss.append(s)
        cs.append(c)
        if i < len(weights) - 1:
            x, y = pool2(x, variant), pool2(y, variant)
    return ms_combine(ss, cs, variant, weights)


def mse(a: torch.Tensor, b: torch.Tensor, data_range: float, channel: str = "rgb") -> torch.Tensor:
    """Mean squared error per image over the compared planes, float64 ``[N]``."""
    x = select_channels(a, channel, data_range)
    y = select_channels(b, channel, data_range)
    return ((x - y) ** 2).mean(dim=(1, 2, 3))


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float, channel: str = "rgb") -> torch.Tensor:
    """PSNR per image in dB, float64 ``[N]`` (``inf`` where the images are equal)."""
    return 10.0 * torch.log10(data_range**2 / mse(a, b, data_range, channel))


def psnr_from_mse(m: torch.Tensor, data_range: float) -> torch.Tensor:
    return 10.0 * torch.log10(data_range**2 / m)


def _polar_2pi(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r = torch.hypot(x, y)
    t = torch.atan2(y, x)
    return r, torch.where(t < 0.0, t + 2.0 * math.pi, t)


def ciede2000(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """Per-pixel CIEDE2000 of two ``[N, 3, H, W]`` L*a*b* batches: float64 ``[N, H, W]``."""
    lab1 = lab1.to(torch.float64)
    lab2 = lab2.to(torch.float64)
    L1, a1, b1 = lab1.unbind(1)
    L2, a2, b2 = lab2.unbind(1)
    p7 = 25.0**7
    cbar = 0.5 * (torch.hypot(a1, b1) + torch.hypot(a2, b2))
    c7 = cbar**7
    g = 0.5 * (1.0 - torch.sqrt(c7 / (c7 + p7)))
    c1, h1 = _polar_2pi(a1 * (1.0 + g), b1)
    c2, h2 = _polar_2pi(a2 * (1.0 + g), b2)

    lbar = 0.5 * (L1 + L2)
    tmp = (lbar - 50.0) ** 2
    sl = 1.0 + 0.015 * tmp / torch.sqrt(20.0 + tmp)
    l_term = (L2 - L1) / sl

    cbar = 0.5 * (c1 + c2)
    sc = 1.0 + 0.045 * cbar
    c_term = (c2 - c1) / sc

    h_diff = h2 - h1
    h_sum = h1 + h2
    cc = c1 * c2
    zero = cc == 0.0
    dh = torch.where(h_diff > math.pi, h_diff - 2.0 * math.pi, h_diff)
    dh = torch.where(h_diff < -math.pi, h_diff + 2.0 * math.pi, dh)
    dh = torch.where(zero, torch.zeros_like(dh), dh)
    dh_term = 2.0 * torch.sqrt(cc) * torch.sin(dh / 2.0)

    wrap = (~zero) & (h_diff.abs() > math.pi)
    hbar = torch.where(wrap & (h_sum < 2.0 * math.pi), h_sum + 2.0 * math.pi, h_sum)
    hbar = torch.where(wrap & (h_sum >= 2.0 * math.pi), h_sum - 2.0 * math.pi, hbar)
    hbar = torch.where(zero, hbar * 2.0, hbar) * 0.5

    t = (
        1.0
        - 0.17 * torch.cos(hbar - math.radians(30.0))
        + 0.24 * torch.cos(2.0 * hbar)
        + 0.32 * torch.cos(3.0 * hbar + math.radians(6.0))
        - 0.20 * torch.cos(4.0 * hbar - math.radians(63.0))
    )
    sh = 1.0 + 0.015 * cbar * t
    h_term = dh_term / sh

    c7 = cbar**7
    rc = 2.0 * torch.sqrt(c7 / (c7 + p7))
    dtheta = math.radians(30.0) * torch.exp(-(((torch.rad2deg(hbar) - 275.0) / 25.0) ** 2))
    r_term = -torch.sin(2.0 * dtheta) * rc * c_term * h_term

    de2 = l_term**2 + c_term**2 + h_term**2 + r_term
    return torch.sqrt(de2.clamp(min=0.0))
