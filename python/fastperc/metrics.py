"""Full-reference image metrics: PSNR, SSIM, MS-SSIM and CIEDE2000.

Every metric compares two images of the same shape, type, dtype and device:

* layout: torch tensors ``[C, H, W]`` or ``[*, C, H, W]``, numpy arrays ``[H, W, C]`` or
  ``[*, H, W, C]`` (``layout="chw"|"hwc"`` overrides), as everywhere in fastperc;
* dtype: ``uint8`` or a float dtype; ``data_range`` is the span of the values (the ``L`` of
  SSIM's ``C1 = (K1 L)**2``, the peak of PSNR). It defaults to 255 for ``uint8`` and to 1.0 for
  floating images; pass ``data_range=255`` for floats on 0..255;
* ``channel``: ``"rgb"`` compares every channel as given (any channel count, e.g. gray) and
  averages over channels; ``"y"`` compares the luma of super-resolution papers (MATLAB
  ``rgb2ycbcr``, BasicSR's ``test_y_channel``: ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` on
  RGB in 0..1, i.e. studio-swing 16..235 on the 0..255 scale, not rounded); ``"y_jpeg"`` the
  JPEG/JFIF full-range luma ``0.299 R + 0.587 G + 0.114 B`` (the Y of
  :func:`fastperc.color.rgb_to_ycbcr`). Luma needs 3-channel RGB input; the metric then uses
  the same ``data_range`` as the RGB data;
* ``reduction``: ``"mean"`` (default) averages the per-image values over every leading
  dimension and returns a scalar; ``"none"`` returns one value per image, shaped like the
  leading dimensions (``()`` for a single image);
* results are float64 for float64 inputs and float32 otherwise, as a tensor on the inputs'
  device (a numpy array or numpy scalar for numpy inputs);
* backend: ``"auto"`` (CUDA -> Triton, CPU -> C++, inputs that require grad -> the
  differentiable PyTorch reference), ``"cpp"``, ``"triton"`` or ``"torch"``; see
  :mod:`fastperc.dispatch`. The reference and Triton backends are differentiable (PSNR, SSIM,
  MS-SSIM); the C++ backend is not and refuses inputs that require grad.

Non-finite inputs raise ``ValueError`` (the check is made on the result, so it costs nothing
when the inputs are finite, and on CUDA it synchronises once per call).

SSIM follows the original definition (Wang et al. 2004): an 11-tap Gaussian window of sigma
1.5, ``K1 = 0.01``, ``K2 = 0.03``, population statistics, **valid** filtering (no padding: the
SSIM map is ``(H - 10) x (W - 10)``), the mean of the map per channel and then over channels.
This equals scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=...)`` and ``pytorch_msssim.ssim``.
``variant="torchmetrics"`` reproduces torchmetrics instead (reflect padding by 5 pixels, the
whole ``H x W`` map averaged, variances clamped at 0). The peers differ from each other by up to
~3e-3 on photographs, so pick the variant whose numbers you need to compare with.
See :mod:`fastperc.reference.metrics` for every formula.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import _image, color, dispatch
from ._backend_call import cpp, dtype_code, kernels_module, np_view
from ._image import FLOAT_DTYPES, Image, parse_image
from .dispatch import BackendError
from .reference import metrics as ref

__all__ = ["ciede2000", "ms_ssim", "psnr", "ssim"]

ArrayLike = torch.Tensor | np.ndarray
CHANNELS = ("rgb", "y", "y_jpeg")
REDUCTIONS = ("mean", "none")
VARIANTS = ref.VARIANTS
_DIFFERENTIABLE = ("torch", "triton")


def _check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"Expected `{name}` to be one of {choices}, got {value!r}")
    return value


def _data_range(value: object, dtype: torch.dtype) -> float:
    if value is None:
        return 255.0 if dtype == torch.uint8 else 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(
            "Expected `data_range` to be a positive number (e.g. 1.0 or 255) or None, got "
            f"{type(value).__name__}"
        )
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"Expected `data_range` to be a positive finite number, got {value!r}")
    return v


def _parse_pair(a: object, b: object, layout: str, channel: str) -> tuple[Image, Image]:
    channels = None if channel == "rgb" else (3,)
    ia = parse_image(a, "a", channels=channels, layout=layout)
    ib = parse_image(b, "b", channels=channels, layout=layout)
    _check_pair(a, b, ia, ib)
    return ia, ib


def _check_pair(a: object, b: object, ia: Image, ib: Image) -> None:
    if ia.numpy != ib.numpy or ia.t.dtype != ib.t.dtype or ia.t.device != ib.t.device:
        raise TypeError(
            "Expected `a` and `b` of the same type, dtype and device, got "
            f"{type(a).__name__}/{str(ia.t.dtype).replace('torch.', '')}/{ia.t.device} and "
            f"{type(b).__name__}/{str(ib.t.dtype).replace('torch.', '')}/{ib.t.device}"
        )
    if ia.lead != ib.lead or ia.t.shape[1:] != ib.t.shape[1:]:
        raise ValueError(
            f"Expected `a` and `b` of the same shape, got {tuple(np.shape(a))} and "
            f"{tuple(np.shape(b))}"
        )


def _check_size(img: Image, lo: int, op: str, why: str) -> None:
    h, w = img.shape_hw
    if h < lo or w < lo:
        raise ValueError(
            f"{op}: expected images of at least {lo}x{lo} pixels ({why}), got {h}x{w} "
            "(height x width)"
        )


def _resolve(backend: str, ia: Image, ib: Image, op: str) -> str:
    """dispatch.resolve, counting grad on either input; refuses grad on the C++ backend."""
    grad = torch.is_grad_enabled() and (ia.t.requires_grad or ib.t.requires_grad)
    t = ib.t if (ib.t.requires_grad and not ia.t.requires_grad) else ia.t
    be = dispatch.resolve(backend, t, op=op)
    if grad and be not in _DIFFERENTIABLE:
        raise BackendError(
            f"{op}: backend {be!r} is not differentiable and an input requires grad; use "
            "backend='torch' (or 'triton' on CUDA), or detach the inputs"
        )
    return be


def _mix(channel: str, data_range: float) -> list[float]:
    if channel == "rgb":
        return []
    (wr, wg, wb), off = ref.LUMA[channel]
    return [wr, wg, wb, off * data_range]


def _out_dtype(img: Image) -> torch.dtype:
    return torch.float64 if img.t.dtype == torch.float64 else torch.float32


def _check_finite(values: torch.Tensor, op: str) -> None:
    """``values``: per-image results (any trailing dims); raise naming the images that are not
    finite."""
    ok = torch.isfinite(values.detach())
    if not bool(ok.all()):
        bad = (~ok.reshape(ok.shape[0], -1).all(dim=1)).nonzero().flatten().tolist()[:8]
        raise ValueError(
            f"{op}: expected finite `a` and `b` (no NaN or inf, and values whose squares are "
            f"finite in the compute precision), got a non-finite result for image(s) {bad}"
        )


def _finish(per_image: torch.Tensor, img: Image, reduction: str) -> ArrayLike:
    out = per_image.to(_out_dtype(img))
    out = out.mean() if reduction == "mean" else out.reshape(img.lead)
    if img.numpy:
        arr = out.detach().numpy()
        return arr[()] if arr.ndim == 0 else arr
    return out


def _empty(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A fresh buffer a kernel fills (poisoned first when the tests ask for it)."""
    out = torch.empty(shape, dtype=dtype, device=device)
    if _image.POISON is not None:
        out.fill_(_image.POISON)
    return out


def _as_compute(t: torch.Tensor) -> torch.Tensor:
    """A torch float copy in the kernels' compute type (float64 for float64, else float32)."""
    return t.to(torch.float64 if t.dtype == torch.float64 else torch.float32)


# ----------------------------------------------------------------------------------------------
# PSNR
# ----------------------------------------------------------------------------------------------


def psnr(
    a: ArrayLike,
    b: ArrayLike,
    *,
    data_range: float | None = None,
    channel: str = "rgb",
    reduction: str = "mean",
    layout: str = "auto",
    backend: str = "auto",
) -> ArrayLike:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range**2 / MSE)`` per image.

    The MSE is taken per image over every compared channel and pixel (as scikit-image's
    ``peak_signal_noise_ratio``), then ``reduction`` averages the per-image PSNRs. Identical
    images give ``inf``. Super-resolution papers usually also crop ``scale`` border pixels:
    slice the images before calling.

    Args:
        a, b: the two images (see the module docstring for layouts and dtypes).
        data_range: the peak value; 255 for ``uint8`` and 1.0 for floats by default.
        channel: ``"rgb"`` (every channel), ``"y"`` (super-resolution luma) or ``"y_jpeg"``.
        reduction: ``"mean"`` or ``"none"``.
        layout: ``"auto"``, ``"chw"`` or ``"hwc"``.
        backend: ``"auto"``, ``"cpp"``, ``"triton"`` or ``"torch"``.

    Returns:
        The PSNR in dB: a scalar, or one value per image with ``reduction="none"``.

    Example:
        >>> import torch, fastperc
        >>> a = torch.zeros(3, 8, 8)
        >>> round(float(fastperc.metrics.psnr(a, a + 0.1)), 3)
        20.0
    """
    _check_choice(channel, "channel", CHANNELS)
    _check_choice(reduction, "reduction", REDUCTIONS)
    ia, ib = _parse_pair(a, b, layout, channel)
    dr = _data_range(data_range, ia.t.dtype)
    be = _resolve(backend, ia, ib, "psnr")
    if be == "torch":
        m = ref.mse(ia.t, ib.t, dr, channel)
    elif be == "cpp":
        n, c, h, w = ia.t.shape
        sums = np.zeros(n, np.float64)
        cpp().sq_error_sums(np_view(ia.t), np_view(ib.t), sums, dtype_code(ia.t), _mix(channel, dr))
        planes = 1 if channel != "rgb" else c
        m = torch.from_numpy(sums / (planes * h * w))
    else:
        x, y = _planes_for_triton(ia.t, ib.t, channel, dr)
        m = kernels_module("metrics").mse(x, y)
    _check_finite(m, "psnr")
    return _finish(ref.psnr_from_mse(m, dr), ia, reduction)


def _planes_for_triton(
    a: torch.Tensor, b: torch.Tensor, channel: str, dr: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The compared planes as compute-type tensors (differentiable torch ops)."""
    if channel == "rgb":
        return _as_compute(a), _as_compute(b)
    ct = torch.float64 if a.dtype == torch.float64 else torch.float32
    return ref.to_luma(a, channel, dr).to(ct), ref.to_luma(b, channel, dr).to(ct)


# ----------------------------------------------------------------------------------------------
# SSIM and MS-SSIM
# ----------------------------------------------------------------------------------------------


def _constants(dr: float) -> tuple[float, float]:
    return (ref.K1 * dr) ** 2, (ref.K2 * dr) ** 2


def _cpp_ssim_sums(
    x: torch.Tensor, y: torch.Tensor, mix: list[float], dr: float, variant: str, want_cs: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-plane SSIM and cs means ``[N, P]`` (float64) from the C++ kernel."""
    n, c = x.shape[:2]
    planes = 1 if mix else c
    out = np.zeros((n, planes, 2), np.float64)
    c1, c2 = _constants(dr)
    cpp().ssim_sums(
        np_view(x),
        np_view(y),
        out,
        dtype_code(x),
        mix,
        ref.gaussian_window().tolist(),
        c1,
        c2,
        variant == "torchmetrics",
        want_cs,
    )
    t = torch.from_numpy(out)
    return t[..., 0], t[..., 1]


def _cpp_pool(x: torch.Tensor, mix: list[float], variant: str) -> torch.Tensor:
    n, c, h, w = x.shape
    planes = 1 if mix else c
    pad = variant == "valid"
    hd, wd = (h // 2 + h % 2, w // 2 + w % 2) if pad else (h // 2, w // 2)
    ct = torch.float64 if x.dtype == torch.float64 else torch.float32
    out = _empty((n, planes, hd, wd), ct, x.device)
    cpp().avg_pool2(np_view(x), np_view(out), dtype_code(x), mix, pad)
    return out


def ssim(
    a: ArrayLike,
    b: ArrayLike,
    *,
    data_range: float | None = None,
    channel: str = "rgb",
    reduction: str = "mean",
    variant: str = "valid",
    layout: str = "auto",
    backend: str = "auto",
) -> ArrayLike:
    """Structural similarity (SSIM), Gaussian window 11 / sigma 1.5, K1 0.01, K2 0.03.

    ``variant="valid"`` (default) is the original definition, equal to scikit-image's
    ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``
    and to ``pytorch_msssim.ssim``; images need at least 11x11 pixels.
    ``variant="torchmetrics"`` reproduces torchmetrics' ``structural_similarity_index_measure``
    (reflect padding, the border included in the mean); images need at least 6x6 pixels.

    Args:
        a, b: the two images (see the module docstring for layouts and dtypes).
        data_range: the span of the values; 255 for ``uint8`` and 1.0 for floats by default.
        channel: ``"rgb"`` (every channel, averaged), ``"y"`` (super-resolution luma) or
            ``"y_jpeg"``.
        reduction: ``"mean"`` or ``"none"``.
        variant: ``"valid"`` or ``"torchmetrics"``.
        layout: ``"auto"``, ``"chw"`` or ``"hwc"``.
        backend: ``"auto"``, ``"cpp"``, ``"triton"`` or ``"torch"``.

    Returns:
        SSIM (at most 1): a scalar, or one value per image with ``reduction="none"``.

    Example:
        >>> import torch, fastperc
        >>> a = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> float(fastperc.metrics.ssim(a, a))
        1.0
    """
    _check_choice(channel, "channel", CHANNELS)
    _check_choice(reduction, "reduction", REDUCTIONS)
    _check_choice(variant, "variant", VARIANTS)
    ia, ib = _parse_pair(a, b, layout, channel)
    dr = _data_range(data_range, ia.t.dtype)
    lo = ref.min_size(variant)
    why = "the 11x11 window" if variant == "valid" else "reflect padding by 5"
    _check_size(ia, lo, "ssim", why)
    be = _resolve(backend, ia, ib, "ssim")
    if be == "torch":
        per = ref.ssim(ia.t, ib.t, dr, channel, variant)
    elif be == "cpp":
        s, _ = _cpp_ssim_sums(ia.t, ib.t, _mix(channel, dr), dr, variant, False)
        per = s.mean(dim=1)
    else:
        x, y = _planes_for_triton(ia.t, ib.t, channel, dr)
        s, _ = kernels_module("metrics").ssim_cs(x, y, dr, variant, want_cs=False)
        per = s.mean(dim=1)
    _check_finite(per, "ssim")
    return _finish(per, ia, reduction)


def ms_ssim(
    a: ArrayLike,
    b: ArrayLike,
    *,
    data_range: float | None = None,
    channel: str = "rgb",
    reduction: str = "mean",
    variant: str = "valid",
    layout: str = "auto",
    backend: str = "auto",
) -> ArrayLike:
    """Multi-scale SSIM: five scales, weights ``(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``.

    ``variant="valid"`` (default) follows ``pytorch_msssim.ms_ssim``: 2x2 average pooling
    between scales (odd sizes zero-padded by one pixel on each side), cs clamped at 0 at the
    four finer scales and SSIM at the coarsest, the weighted product per channel, then the mean
    over channels. Images need more than ``(11 - 1) * 2**4 = 160`` pixels per side.
    ``variant="torchmetrics"`` reproduces torchmetrics'
    ``multiscale_structural_similarity_index_measure`` (padded SSIM per image, pooling that
    floors odd sizes, ``normalize="relu"``); images need at least 176 pixels per side.

    Args:
        a, b: the two images (see the module docstring for layouts and dtypes).
        data_range: the span of the values; 255 for ``uint8`` and 1.0 for floats by default.
        channel: ``"rgb"``, ``"y"`` or ``"y_jpeg"``.
        reduction: ``"mean"`` or ``"none"``.
        variant: ``"valid"`` or ``"torchmetrics"``.
        layout: ``"auto"``, ``"chw"`` or ``"hwc"``.
        backend: ``"auto"``, ``"cpp"``, ``"triton"`` or ``"torch"``.

    Returns:
        MS-SSIM in 0..1: a scalar, or one value per image with ``reduction="none"``.

    Example:
        >>> import torch, fastperc
        >>> a = torch.rand(1, 3, 161, 161, generator=torch.Generator().manual_seed(0))
        >>> round(float(fastperc.metrics.ms_ssim(a, a)), 6)
        1.0
    """
    _check_choice(channel, "channel", CHANNELS)
    _check_choice(reduction, "reduction", REDUCTIONS)
    _check_choice(variant, "variant", VARIANTS)
    ia, ib = _parse_pair(a, b, layout, channel)
    dr = _data_range(data_range, ia.t.dtype)
    lo = ref.ms_min_size(variant)
    _check_size(ia, lo, "ms_ssim", "5 scales, the coarsest must hold the 11x11 window")
    be = _resolve(backend, ia, ib, "ms_ssim")
    levels = len(ref.MS_WEIGHTS)
    if be == "torch":
        per = ref.ms_ssim(ia.t, ib.t, dr, channel, variant)
    else:
        ss, cs = [], []
        if be == "cpp":
            x, y, mix = ia.t, ib.t, _mix(channel, dr)
            for i in range(levels):
                s, c = _cpp_ssim_sums(x, y, mix, dr, variant, True)
                ss.append(s)
                cs.append(c)
                if i < levels - 1:
                    x, y = _cpp_pool(x, mix, variant), _cpp_pool(y, mix, variant)
                    mix = []
        else:
            km = kernels_module("metrics")
            x, y = _planes_for_triton(ia.t, ib.t, channel, dr)
            for i in range(levels):
                s, c = km.ssim_cs(x, y, dr, variant, want_cs=True)
                ss.append(s)
                cs.append(c)
                if i < levels - 1:
                    x, y = ref.pool2(x, variant), ref.pool2(y, variant)
        per = ref.ms_combine(ss, cs, variant)
    _check_finite(per, "ms_ssim")
    return _finish(per, ia, reduction)


# ----------------------------------------------------------------------------------------------
# CIEDE2000
# ----------------------------------------------------------------------------------------------

_DE_REDUCTIONS = ("none", "image", "mean")


def ciede2000(
    a: ArrayLike,
    b: ArrayLike,
    *,
    space: str = "rgb",
    reduction: str = "none",
    value_range: float | None = None,
    layout: str = "auto",
    backend: str = "auto",
) -> ArrayLike:
    """CIEDE2000 colour difference (Delta E 2000, ``kL = kC = kH = 1``) per pixel.

    The formula is scikit-image's ``deltaE_ciede2000``. With ``space="rgb"`` (default) the
    images are sRGB (``uint8``, or floats on 0..``value_range``) and are converted to CIE
    L*a*b* (D65) with :func:`fastperc.color.rgb_to_lab` first; with ``space="lab"`` they are
    L*a*b* already (float, 3 channels: L* 0..100, a*, b*).

    Args:
        a, b: the two images, 3 channels (see the module docstring for layouts and dtypes).
        space: ``"rgb"`` or ``"lab"``.
        reduction: ``"none"`` (per-pixel map, shaped ``[*, H, W]``), ``"image"`` (mean per
            image, shaped ``[*]``) or ``"mean"`` (one scalar).
        value_range: the range of floating RGB input (1 by default; 255 for 0..255 floats).
        layout: ``"auto"``, ``"chw"`` or ``"hwc"``.
        backend: ``"auto"``, ``"cpp"``, ``"triton"`` or ``"torch"``.

    Returns:
        Delta E 2000 (float64 for float64 input, float32 otherwise).

    Example:
        >>> import numpy as np, fastperc
        >>> lab1 = np.array([[[50.0, 2.6772, -79.7751]]])
        >>> lab2 = np.array([[[50.0, 0.0, -82.7485]]])
        >>> round(float(fastperc.metrics.ciede2000(lab1, lab2, space="lab")[0, 0]), 4)
        2.0425
    """
    _check_choice(space, "space", ("rgb", "lab"))
    _check_choice(reduction, "reduction", _DE_REDUCTIONS)
    dtypes = FLOAT_DTYPES if space == "lab" else None
    ia = parse_image(a, "a", channels=(3,), layout=layout, **({"dtypes": dtypes} if dtypes else {}))
    ib = parse_image(b, "b", channels=(3,), layout=layout, **({"dtypes": dtypes} if dtypes else {}))
    _check_pair(a, b, ia, ib)
    be = _resolve(backend, ia, ib, "ciede2000")
    if space == "rgb":
        vr = value_range
        la = color.rgb_to_lab(ia.t, value_range=vr, layout="chw", backend=be)
        lb = color.rgb_to_lab(ib.t, value_range=vr, layout="chw", backend=be)
    else:
        if value_range is not None:
            raise ValueError("`value_range` applies to space='rgb' only, got space='lab'")
        la, lb = ia.t, ib.t
    out_dtype = torch.float64 if la.dtype == torch.float64 else torch.float32
    if be == "torch":
        de = ref.ciede2000(la, lb)
    elif be == "cpp":
        la, lb = la.to(out_dtype), lb.to(out_dtype)
        n, _, h, w = la.shape
        out = _empty((n, 1, h, w), out_dtype, la.device)
        cpp().ciede2000(np_view(la), np_view(lb), np_view(out), dtype_code(out))
        de = out[:, 0]
    else:
        n, _, h, w = la.shape
        de = _empty((n, h, w), out_dtype, la.device)
        kernels_module("metrics").ciede2000(la.to(out_dtype), lb.to(out_dtype), de)
    _check_finite(de, "ciede2000")
    if reduction == "mean":
        val = de.to(torch.float64).mean().reshape(1)
    elif reduction == "image":
        val = de.to(torch.float64).mean(dim=(1, 2))
    else:
        val = de
    val = val.to(out_dtype)
    if reduction == "mean":
        val = val[0]
    elif reduction == "image":
        val = val.reshape(ia.lead)
    else:
        val = val.reshape(*ia.lead, *val.shape[1:])
    if ia.numpy:
        arr = val.detach().numpy()
        return arr[()] if arr.ndim == 0 else arr
    return val
