"""Colour conversions and chroma subsampling.

Every op takes a ``torch.Tensor`` or ``numpy.ndarray`` image and returns the same type:

* layout: torch tensors are ``[C, H, W]`` or ``[*, C, H, W]`` (``channels_last`` tensors keep
  their memory format), numpy arrays ``[H, W, C]`` or ``[*, H, W, C]``; ``layout="chw"|"hwc"``
  overrides;
* dtype: ``uint8`` (0..255), ``float16``, ``bfloat16``, ``float32``, ``float64`` (0..1 by
  default; pass ``value_range=255`` for 0..255 floats);
* backend: ``"auto"`` (CUDA tensor -> Triton, CPU -> C++, tensors requiring grad -> the
  differentiable PyTorch reference), or ``"cpp"``, ``"triton"``, ``"torch"``; see
  :mod:`fastperc.dispatch`.

8-bit YCbCr conversions reproduce libjpeg-turbo's fixed-point arithmetic bit for bit on every
backend (``jccolor.c``, ``jdcolor.c``), and the chroma ops reproduce its ``h2v1``/``h2v2``
downsampling and fancy upsampling (``jcsample.c``, ``jdsample.c``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from . import dispatch
from ._backend_call import cpp, dtype_code, kernels_module, np_view
from ._image import FLOAT_DTYPES, Image, parse_image
from .reference import color as ref

__all__ = [
    "chroma_downsample",
    "chroma_upsample",
    "lab_to_rgb",
    "linear_to_srgb",
    "rgb_to_gray",
    "rgb_to_lab",
    "rgb_to_xyz",
    "rgb_to_ycbcr",
    "srgb_to_linear",
    "xyz_to_rgb",
    "ycbcr_to_rgb",
]

ArrayLike = torch.Tensor | np.ndarray
_STANDARDS = tuple(ref.LUMA_WEIGHTS)


def _check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"Expected `{name}` to be one of {choices}, got {value!r}")
    return value


def _check_bool(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"Expected `{name}` to be a bool, got {type(value).__name__}")
    return bool(value)


# ----------------------------------------------------------------------------------------------
# Affine conversions
# ----------------------------------------------------------------------------------------------


def _affine(img: Image, spec: ref.AffineSpec, backend: str, op: str) -> ArrayLike:
    _, _, h, w = img.t.shape
    out = img.new_output(spec.out_channels, h, w, img.t.dtype)
    be = dispatch.resolve(backend, img.t, op=op)
    if be == "torch":
        out.copy_(ref.apply_affine(img.t, spec))
    elif be == "cpp":
        cpp().affine(
            np_view(img.t),
            np_view(out),
            [float(v) for row in spec.matrix for v in row],
            [float(v) for v in spec.shift],
            [float(v) for v in spec.offset],
            spec.fixed_point,
            dtype_code(img.t),
        )
    else:
        kernels_module("color").affine(img.t, out, spec)
    return img.wrap(out)


def rgb_to_ycbcr(
    image: ArrayLike,
    *,
    standard: str = "bt601",
    full_range: bool = True,
    value_range: float | None = None,
    layout: str = "auto",
    backend: str = "auto",
) -> ArrayLike:
    """Convert RGB to YCbCr.

    The default is JPEG/JFIF: BT.601 luma weights, full range (Y 0..255, Cb/Cr centred on 128).
    ``full_range=False`` gives studio swing (Y 16..235, Cb/Cr 16..240). For ``uint8`` images in
    the JPEG default the result equals libjpeg-turbo's ``rgb_ycc_convert`` bit for bit; other
    8-bit cases use the same 16-bit fixed point with rounded coefficients. Floating images
    use the exact coefficients (Cb/Cr offset ``128/255 * value_range``) and are not clamped.

    Args:
        image: RGB image(s), see the module docstring for layouts and dtypes.
        standard: ``"bt601"`` (JPEG, default) or ``"bt709"``.
        full_range: full range (JPEG) or studio swing.
        value_range: 1 (default) or 255 for floating images; must be ``None``/255 for uint8.
        layout: ``"auto"``, ``"chw"`` or ``"hwc"``.
        backend: ``"auto"``, ``"cpp"``, ``"triton"`` or ``"torch"``.

    Returns:
        YCbCr image(s) of the same type, dtype and layout.

    Example:
        >>> import torch, fastperc
        >>> x = torch.tensor([255, 0, 0], dtype=torch.uint8).view(3, 1, 1)
        >>> fastperc.color.rgb_to_ycbcr(x).flatten().tolist()
        [76, 85, 255]
    """
    _check_choice(standard, "standard", _STANDARDS)
    _check_bool(full_range, "full_range")
    img = parse_image(image, "image", channels=(3,), layout=layout, value_range=value_range)
    spec = ref.ycbcr_forward_spec(standard, full_range, img.is_uint8, img.value_range)
    return _affine(img, spec, backend, "rgb_to_ycbcr")


def ycbcr_to_rgb(
    image: ArrayLike,
    *,
    standard: str = "bt601",
    full_range: bool = True,
    value_range: float | None = None,
    layout: str = "auto",
    backend: str = "auto",
) -> ArrayLike:
    """Convert YCbCr to RGB; the inverse of :func:`rgb_to_ycbcr`.

    For ``uint8`` images in the JPEG default the result equals libjpeg-turbo's
    ``ycc_rgb_convert`` bit for bit (range-limited to 0..255). Floating results are not clamped.

    Example:
        >>> import torch, fastperc
        >>> y = torch.tensor([76, 85, 255], dtype=torch.uint8).view(3, 1, 1)
        >>> fastperc.color.ycbcr_to_rgb(y).flatten().tolist()
        [254, 0, 0]
    """
    _check_choice(standard, "standard", _STANDARDS)
    _check_bool(full_range, "full_range")
    img = parse_image(image, "image", channels=(3,), layout=layout, value_range=value_range)
    spec = ref.ycbcr_inverse_spec(standard, full_range, img.is_uint8, img.value_range)
    return _affine(img, spec, backend, "ycbcr_to_rgb")


def rgb_to_gray(
    image: ArrayLike,
    *,
    standard: str = "bt601",
    value_range: float | None = None,
    layout: str = "auto",
    backend: str = "auto",
) -> ArrayLike:
    """Convert RGB to one luma channel.

    BT.601 weights by default; for ``uint8`` this equals libjpeg's ``rgb_gray_convert`` and
    Pillow's ``Image.convert("L")``: ``(19595 R + 38470 G + 7471 B + 32768) >> 16``.

    Example:
        >>> import numpy as np, fastperc
        >>> fastperc.color.rgb_to_gray(np.full((1, 1, 3), 200, np.uint8)).ravel().tolist()
        [200]
    """
    _check_choice(standard, "standard", _STANDARDS)
    img = parse_image(image, "image", channels=(3,), layout=layout, value_range=value_range)
    return _affine(img, ref.gray_spec(standard, img.is_uint8), backend, "rgb_to_gray")


# ----------------------------------------------------------------------------------------------
# Non-linear conversions: transfer curve, XYZ, Lab
# ----------------------------------------------------------------------------------------------


def _pointwise(
    img: Image,
    op: str,
    backend: str,
    *,
    out_channels: int,
    out_dtype: torch.dtype,
    in_scale: float,
    out_scale: float,
    matrix: np.ndarray | None = None,
    encoded: bool = True,
    clip: bool = False,
    reference: Callable[[torch.Tensor], torch.Tensor],
) -> ArrayLike:
    _, _, h, w = img.t.shape
    out = img.new_output(out_channels, h, w, out_dtype)
    be = dispatch.resolve(backend, img.t, op=op)
    m = [0.0] * 9 if matrix is None else [float(v) for v in matrix.reshape(-1)]
    if be == "torch":
        out.copy_(reference(img.t))
    elif be == "cpp":
        cpp().pointwise(
            op,
            np_view(img.t),
            np_view(out),
            dtype_code(img.t),
            dtype_code(out),
            m,
            [float(v) for v in ref.D65_WHITE],
            float(in_scale),
            float(out_scale),
            bool(encoded),
            bool(clip),
        )
    else:
        kernels_module("color").pointwise(
            op, img.t, out, m, ref.D65_WHITE, in_scale, out_scale, encoded, clip
        )
    return img.wrap(out)


def _float_out(img: Image) -> torch.dtype:
    return torch.float32 if img.is_uint8 else img.t.dtype


def srgb_to_linear(
    image: ArrayLike,
    *,
    value_range: float | None = None,
    layout: str = "auto",
    backend: str = "auto",
) -> ArrayLike:
    """Decode the sRGB transfer curve (IEC 61966-2-1) to linear light, channel by channel.

    ``uint8`` input gives float32 on 0..1; floating input keeps its dtype and ``value_range``.

    Example:
        >>> import torch, fastperc
        >>> round(float(fastperc.color.srgb_to_linear(torch.full((1, 1, 1), 0.5)).item()), 4)
        0.214
    """
    img = parse_image(image, "image", channels=None, layout=layout, value_range=value_range)
    out_scale = 1.0 if img.is_uint8 else img.value_range
    in_scale = 1.0 / img.value_range
    return _pointwise(
        img,
        "srgb_to_linear",
        backend,
        out_channels=img.t.shape[1],
        out_dtype=_float_out(img),
        in_scale=in_scale,
        out_scale=out_scale,
        reference=lambda t: ref.srgb_to_linear(t, in_scale, out_scale),
    )


def linear_to_srgb(
    image: ArrayLike,
    *,
    value_range: float | None = None,
    layout: str = "auto",
    backend: str = "auto",
) -> ArrayLike:
    """Encode linear light with the sRGB transfer curve (IEC 61966-2-1); floating input only.

    Example:
        >>> import torch, fastperc
        >>> round(float(fastperc.color.linear_to_srgb(torch.full((1, 1, 1), 0.214)).item()), 3)
        0.5
    """
    img = parse_image(
        image, "image", channels=None, layout=layout, value_range=value_range, dtypes=FLOAT_DTYPES
    )
    s = img.value_range
    return _pointwise(
        img,
        "linear_to_srgb",
        backend,
        out_channels=img.t.shape[1],
        out_dtype=img.t.dtype,
        in_scale=1.0 / s,
        out_scale=s,
        reference=lambda t: ref.linear_to_srgb(t, 1.0 / s, s),
    )


def rgb_to_xyz(
    image: ArrayLike,
    *,
    linear: bool = False,
    value_range: float | None = None,
    layout: str = "auto",
    backend: str = "auto",
) -> ArrayLike:
    """Convert sRGB (or linear RGB with ``linear=True``) to CIE XYZ, D65, white at Y = 1.

    The matrix is the sRGB one used by scikit-image (``rgb2xyz``) and kornia. The result is
    float (float32 for ``uint8`` input) whatever ``value_range`` the RGB side has.
    """
    encoded = not _check_bool(linear, "linear")
    img = parse_image(image, "image", channels=(3,), layout=layout, value_range=value_range)
    in_scale = 1.0 / img.value_range
    return _pointwise(
        img,
        "rgb_to_xyz",
        backend,
        out_channels=3,
        out_dtype=_float_out(img),
        in_scale=in_scale,
        out_scale=1.0,
        matrix=ref.XYZ_FROM_RGB,
        encoded=encoded,
        reference=lambda t: ref.rgb_to_xyz(t, in_scale, encoded),
    )


def xyz_to_rgb(
    image: ArrayLike,
    *,
    linear: bool = False,
    clip: bool = True,
    value_range: float | None = None,
    layout: str = "auto",
    backend: str = "auto",
) -> ArrayLike:
    """Convert CIE XYZ (D65, white at Y = 1) to sRGB (or linear RGB with ``linear=True``).

    Out-of-gamut values are clipped to 0..1 before scaling when ``clip`` (as scikit-image's
    ``xyz2rgb``); ``value_range`` sets the range of the RGB output.
    """
    encoded = not _check_bool(linear, "linear")
    clip = _check_bool(clip, "clip")
    img = parse_image(image, "image", channels=(3,), layout=layout, dtypes=FLOAT_DTYPES)
    from ._image import check_value_range

    s = check_value_range(value_range, img.t.dtype, "image")
    return _pointwise(
        img,
        "xyz_to_rgb",
        backend,
        out_channels=3,
        out_dtype=img.t.dtype,
        in_scale=1.0,
        out_scale=s,
        matrix=ref.RGB_FROM_XYZ,
        encoded=encoded,
        clip=clip,
        reference=lambda t: ref.xyz_to_rgb(t, s, encoded, clip),
    )


def rgb_to_lab(
    image: ArrayLike,
    *,
    value_range: float | None = None,
    layout: str = "auto",
    backend: str = "auto",
) -> ArrayLike:
    """Convert sRGB to CIE L*a*b* (D65 white), as scikit-image's ``rgb2lab``.

    L* is on 0..100, a* and b* roughly on -128..127; float32 for ``uint8`` input.

    Example:
        >>> import torch, fastperc
        >>> lab = fastperc.color.rgb_to_lab(torch.ones(3, 1, 1))
        >>> [round(v, 3) for v in lab.flatten().tolist()]
        [100.0, 0.005, -0.01]
    """
    img = parse_image(image, "image", channels=(3,), layout=layout, value_range=value_range)
    in_scale = 1.0 / img.value_range
    return _pointwise(
        img,
        "rgb_to_lab",
        backend,
        out_channels=3,
        out_dtype=_float_out(img),
        in_scale=in_scale,
        out_scale=1.0,
        matrix=ref.XYZ_FROM_RGB,
        reference=lambda t: ref.rgb_to_lab(t, in_scale),
    )


def lab_to_rgb(
    image: ArrayLike,
    *,
    clip: bool = True,
    value_range: float | None = None,
    layout: str = "auto",
    backend: str = "auto",
) -> ArrayLike:
    """Convert CIE L*a*b* (D65) to sRGB, as scikit-image's ``lab2rgb``; floating input only.

    ``value_range`` sets the range of the RGB output; ``clip`` clips it to the gamut.
    """
    clip = _check_bool(clip, "clip")
    img = parse_image(image, "image", channels=(3,), layout=layout, dtypes=FLOAT_DTYPES)
    from ._image import check_value_range

    s = check_value_range(value_range, img.t.dtype, "image")
    return _pointwise(
        img,
        "lab_to_rgb",
        backend,
        out_channels=3,
        out_dtype=img.t.dtype,
        in_scale=1.0,
        out_scale=s,
        matrix=ref.RGB_FROM_XYZ,
        clip=clip,
        reference=lambda t: ref.lab_to_rgb(t, s, clip),
    )


# ----------------------------------------------------------------------------------------------
# Chroma subsampling
# ----------------------------------------------------------------------------------------------

_SUBSAMPLINGS = tuple(ref.SUBSAMPLING)


def chroma_downsample(
    ycbcr: ArrayLike,
    subsampling: str = "4:2:0",
    *,
    layout: str = "auto",
    backend: str = "auto",
) -> tuple[ArrayLike, ArrayLike]:
    """Split a YCbCr image into full-size luma and subsampled chroma, as libjpeg's compressor.

    ``"4:2:0"`` halves both directions, ``"4:2:2"`` the width, ``"4:4:4"`` neither. Chroma is
    ``ceil(H / v) x ceil(W / h)``; odd sizes replicate the last row/column. ``uint8`` uses
    libjpeg's ordered-dither rounding bias (``jcsample.c``), floats the plain mean.

    Returns:
        ``(y, cbcr)``: ``y`` with 1 channel at full size and ``cbcr`` with 2 channels,
        in the input's type and layout.

    Example:
        >>> import torch, fastperc
        >>> y, c = fastperc.color.chroma_downsample(torch.zeros(3, 5, 7, dtype=torch.uint8))
        >>> tuple(y.shape), tuple(c.shape)
        ((1, 5, 7), (2, 3, 4))
    """
    _check_choice(subsampling, "subsampling", _SUBSAMPLINGS)
    img = parse_image(ycbcr, "ycbcr", channels=(3,), layout=layout)
    _, _, h, w = img.t.shape
    hc, wc = ref.chroma_size(h, w, subsampling)
    fh, fv = ref.SUBSAMPLING[subsampling]
    y = img.new_output(1, h, w, img.t.dtype)
    c = img.new_output(2, hc, wc, img.t.dtype)
    y.copy_(img.t[:, :1])
    src = img.t[:, 1:]
    be = dispatch.resolve(backend, img.t, op="chroma_downsample")
    if be == "torch":
        c.copy_(ref.chroma_downsample(src, subsampling))
    elif be == "cpp":
        cpp().chroma_downsample(np_view(src), np_view(c), fh, fv, dtype_code(src))
    else:
        kernels_module("color").chroma_downsample(src, c, fh, fv)
    return img.wrap(y), img.wrap(c)


def chroma_upsample(
    y: ArrayLike,
    cbcr: ArrayLike,
    subsampling: str = "4:2:0",
    *,
    method: str = "fancy",
    layout: str = "auto",
    backend: str = "auto",
) -> ArrayLike:
    """Rebuild a full-size YCbCr image from luma and subsampled chroma, as libjpeg's decoder.

    ``method="fancy"`` (libjpeg's default, used by Pillow) is a triangle filter with libjpeg's
    rounding; like libjpeg it falls back to ``"nearest"`` when the chroma is at most 2 samples
    wide. ``"nearest"`` replicates samples.

    Args:
        y: luma, 1 channel, ``H x W``.
        cbcr: chroma, 2 channels, ``ceil(H / v) x ceil(W / h)`` (as :func:`chroma_downsample`).
        subsampling: ``"4:2:0"``, ``"4:2:2"`` or ``"4:4:4"``.
        method: ``"fancy"`` or ``"nearest"``.

    Returns:
        The 3-channel YCbCr image, in the type and layout of ``y``.
    """
    _check_choice(subsampling, "subsampling", _SUBSAMPLINGS)
    _check_choice(method, "method", ("fancy", "nearest"))
    yi = parse_image(y, "y", channels=(1,), layout=layout)
    ci = parse_image(cbcr, "cbcr", channels=(2,), layout=layout)
    if yi.numpy != ci.numpy or yi.t.dtype != ci.t.dtype or yi.t.device != ci.t.device:
        raise TypeError(
            "Expected `y` and `cbcr` of the same type, dtype and device, got "
            f"{type(y).__name__}/{yi.t.dtype}/{yi.t.device} and "
            f"{type(cbcr).__name__}/{ci.t.dtype}/{ci.t.device}"
        )
    n, _, h, w = yi.t.shape
    hc, wc = ref.chroma_size(h, w, subsampling)
    if yi.lead != ci.lead or tuple(ci.t.shape) != (n, 2, hc, wc):
        raise ValueError(
            f"Expected `cbcr` with batch {yi.lead} and chroma size {hc}x{wc} "
            f"({subsampling} of a {h}x{w} `y`), got batch {ci.lead} and size "
            f"{ci.t.shape[2]}x{ci.t.shape[3]}"
        )
    out = yi.new_output(3, h, w, yi.t.dtype)
    out[:, :1].copy_(yi.t)
    dst = out[:, 1:]
    fh, fv = ref.SUBSAMPLING[subsampling]
    be = dispatch.resolve(backend, yi.t, op="chroma_upsample")
    if be == "torch":
        dst.copy_(ref.chroma_upsample(ci.t, subsampling, h, w, method))
    elif be == "cpp":
        cpp().chroma_upsample(
            np_view(ci.t), np_view(dst), fh, fv, method == "fancy", dtype_code(ci.t)
        )
    else:
        kernels_module("color").chroma_upsample(ci.t, dst, fh, fv, method == "fancy")
    return yi.wrap(out)
