"""Reference colour conversions and chroma resampling (the spec for every backend).

All functions take ``[N, C, H, W]`` tensors (any strides) and return new tensors.

Conventions
-----------
* ``uint8`` images hold 0..255. Every 8-bit affine conversion is done in 16-bit fixed point,
  ``out = clamp((sum_j M[i][j] * (x[j] - s[j]) + o[i]) >> 16, 0, 255)`` with integer ``M`` and
  ``o``; for JPEG/JFIF (BT.601 full range) the constants, offsets and rounding are those of
  libjpeg-turbo's ``jccolor.c`` (encode) and ``jdcolor.c`` (decode), so results are bit-exact.
* Floating images hold 0..``value_range`` (1 by default). They are computed in float64 here.
  Chroma offsets scale with the range: ``128/255 * value_range`` (0.50196 for 0..1, 128 for 0..255),
  so ``f(x / 255) * 255 == f(x)`` up to rounding.
* Linear light, XYZ and Lab are always floating; 8-bit inputs give float32 on 0..1
  (XYZ with a white of Y = 1, L* on 0..100).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# ----------------------------------------------------------------------------------------------
# Constants
# ----------------------------------------------------------------------------------------------

#: Luma weights (Kr, Kb) of the supported standards; Kg = 1 - Kr - Kb.
LUMA_WEIGHTS = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}

SCALEBITS = 16  # libjpeg's fixed-point precision
ONE_HALF = 1 << (SCALEBITS - 1)


def FIX(x: float) -> int:
    """libjpeg's ``FIX(x)``: ``(INT32)(x * 65536 + 0.5)`` (truncation toward zero)."""
    return int(x * (1 << SCALEBITS) + 0.5)


def _fix_signed(x: float) -> int:
    """Round-half-up to 16-bit fixed point for either sign (libjpeg applies FIX to |x|)."""
    return FIX(x) if x >= 0 else -FIX(-x)


#: sRGB (IEC 61966-2-1) primaries, D65 white: linear RGB -> XYZ (the matrix scikit-image and
#: kornia use).
XYZ_FROM_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=np.float64,
)
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)
#: CIE D65 reference white (2 degree observer), as scikit-image and kornia use it.
D65_WHITE = (0.95047, 1.0, 1.08883)

SUBSAMPLING = {"4:4:4": (1, 1), "4:2:2": (2, 1), "4:2:0": (2, 2)}  # (h factor, v factor)


# ----------------------------------------------------------------------------------------------
# Affine conversions: a matrix, an input shift and an output offset
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AffineSpec:
    """``out[i] = sum_j matrix[i][j] * (x[j] - shift[j]) + offset[i]``.

    With ``fixed_point`` the entries are integers at 2**16 scale, the sum is shifted right by 16
    (floor) and clamped to 0..255; otherwise they are floats in units of the image's range.
    """

    matrix: tuple[tuple[float, ...], ...]
    shift: tuple[float, float, float]
    offset: tuple[float, ...]
    fixed_point: bool

    @property
    def out_channels(self) -> int:
        return len(self.matrix)


def _ycbcr_float_matrix(standard: str) -> np.ndarray:
    kr, kb = LUMA_WEIGHTS[standard]
    kg = 1.0 - kr - kb
    return np.array(
        [
            [kr, kg, kb],
            [-0.5 * kr / (1 - kb), -0.5 * kg / (1 - kb), 0.5],
            [0.5, -0.5 * kg / (1 - kr), -0.5 * kb / (1 - kr)],
        ]
    )


def _range_scale(full_range: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (scale, offset) on the 0..255 scale applied after the full-range matrix."""
    if full_range:
        return np.array([1.0, 1.0, 1.0]), np.array([0.0, 128.0, 128.0])
    return np.array([219 / 255, 224 / 255, 224 / 255]), np.array([16.0, 128.0, 128.0])


def ycbcr_forward_spec(
    standard: str, full_range: bool, uint8: bool, value_range: float
) -> AffineSpec:
    """The affine map RGB -> YCbCr."""
    if uint8 and standard == "bt601" and full_range:
        # jccolor.c, rgb_ycc_start/rgb_ycc_convert: FIX() of the 5-digit constants, Y rounded
        # with +ONE_HALF, Cb/Cr with CBCR_OFFSET + ONE_HALF - 1 so they never reach 256.
        cbcr_off = (128 << SCALEBITS) + ONE_HALF - 1
        return AffineSpec(
            matrix=(
                (FIX(0.29900), FIX(0.58700), FIX(0.11400)),
                (-FIX(0.16874), -FIX(0.33126), FIX(0.50000)),
                (FIX(0.50000), -FIX(0.41869), -FIX(0.08131)),
            ),
            shift=(0, 0, 0),
            offset=(ONE_HALF, cbcr_off, cbcr_off),
            fixed_point=True,
        )
    scale, off255 = _range_scale(full_range)
    m = _ycbcr_float_matrix(standard) * scale[:, None]
    if uint8:
        return AffineSpec(
            matrix=tuple(tuple(_fix_signed(v) for v in row) for row in m),
            shift=(0, 0, 0),
            offset=tuple(round(o * (1 << SCALEBITS)) + ONE_HALF for o in off255),
            fixed_point=True,
        )
    return AffineSpec(
        matrix=tuple(tuple(float(v) for v in row) for row in m),
        shift=(0.0, 0.0, 0.0),
        offset=tuple(float(o) * value_range / 255.0 for o in off255),
        fixed_point=False,
    )


def ycbcr_inverse_spec(
    standard: str, full_range: bool, uint8: bool, value_range: float
) -> AffineSpec:
    """The affine map YCbCr -> RGB."""
    if uint8 and standard == "bt601" and full_range:
        # jdcolor.c, build_ycc_rgb_table/ycc_rgb_convert: R = y + Cr_r_tab[cr],
        # G = y + ((Cb_g_tab[cb] + Cr_g_tab[cr]) >> 16), B = y + Cb_b_tab[cb], where the tables
        # hold FIX(c) * (x - 128) plus ONE_HALF; writing y as y << 16 gives one affine form.
        one = 1 << SCALEBITS
        return AffineSpec(
            matrix=(
                (one, 0, FIX(1.40200)),
                (one, -FIX(0.34414), -FIX(0.71414)),
                (one, FIX(1.77200), 0),
            ),
            shift=(0, 128, 128),
            offset=(ONE_HALF, ONE_HALF, ONE_HALF),
            fixed_point=True,
        )
    scale, off255 = _range_scale(full_range)
    # x_full = (x - off) / scale; rgb = inv(M) @ x_full  ->  rgb = (inv(M) / scale) @ (x - off)
    m = np.linalg.inv(_ycbcr_float_matrix(standard)) / scale[None, :]
    if uint8:
        return AffineSpec(
            matrix=tuple(tuple(_fix_signed(v) for v in row) for row in m),
            shift=tuple(int(o) for o in off255),  # type: ignore[arg-type]
            offset=(ONE_HALF, ONE_HALF, ONE_HALF),
            fixed_point=True,
        )
    return AffineSpec(
        matrix=tuple(tuple(float(v) for v in row) for row in m),
        shift=tuple(float(o) * value_range / 255.0 for o in off255),  # type: ignore[arg-type]
        offset=(0.0, 0.0, 0.0),
        fixed_point=False,
    )


def gray_spec(standard: str, uint8: bool) -> AffineSpec:
    """RGB -> luma. For 8-bit BT.601 this is libjpeg's ``rgb_gray_convert`` and Pillow's
    ``convert("L")``: ``(19595 R + 38470 G + 7471 B + 32768) >> 16``."""
    kr, kb = LUMA_WEIGHTS[standard]
    w = (kr, 1.0 - kr - kb, kb)
    if uint8:
        return AffineSpec((tuple(FIX(v) for v in w),), (0, 0, 0), (ONE_HALF,), True)
    return AffineSpec((w,), (0.0, 0.0, 0.0), (0.0,), False)


def apply_affine(x: torch.Tensor, spec: AffineSpec) -> torch.Tensor:
    """Apply an :class:`AffineSpec` to ``x`` of shape ``[N, 3, H, W]``."""
    if spec.fixed_point:
        xi = x.to(torch.int64)
        outs = []
        for row, o in zip(spec.matrix, spec.offset):
            acc = sum(int(m) * (xi[:, j] - int(spec.shift[j])) for j, m in enumerate(row)) + int(o)
            acc = torch.div(acc, 1 << SCALEBITS, rounding_mode="floor")  # arithmetic >> 16
            outs.append(acc.clamp(0, 255))
        return torch.stack(outs, dim=1).to(torch.uint8)
    xf = x.to(torch.float64)
    outs = [
        sum(m * (xf[:, j] - spec.shift[j]) for j, m in enumerate(row)) + o
        for row, o in zip(spec.matrix, spec.offset)
    ]
    return torch.stack(outs, dim=1).to(x.dtype)


# ----------------------------------------------------------------------------------------------
# Non-linear conversions
# ----------------------------------------------------------------------------------------------


def srgb_to_linear_f64(v: torch.Tensor) -> torch.Tensor:
    """IEC 61966-2-1 decoding curve on 0..1 values (float64)."""
    return torch.where(v > 0.04045, ((v + 0.055) / 1.055).clamp_min(0) ** 2.4, v / 12.92)


def linear_to_srgb_f64(v: torch.Tensor) -> torch.Tensor:
    """IEC 61966-2-1 encoding curve on 0..1 values (float64)."""
    return torch.where(v > 0.0031308, 1.055 * v.clamp_min(0) ** (1 / 2.4) - 0.055, v * 12.92)


def _matmul3(m: np.ndarray, x: torch.Tensor) -> torch.Tensor:
    return torch.stack([sum(float(m[i, j]) * x[:, j] for j in range(3)) for i in range(3)], dim=1)


def _lab_f(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > 0.008856, t.clamp_min(0) ** (1 / 3), 7.787 * t + 16.0 / 116.0)


def _lab_finv(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > 0.2068966, t**3, (t - 16.0 / 116.0) / 7.787)


def _out_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float32 if x.dtype == torch.uint8 else x.dtype


def srgb_to_linear(x: torch.Tensor, in_scale: float, out_scale: float) -> torch.Tensor:
    """sRGB-encoded -> linear light: ``out = curve(x * in_scale) * out_scale``."""
    y = srgb_to_linear_f64(x.to(torch.float64) * in_scale) * out_scale
    return y.to(_out_dtype(x))


def linear_to_srgb(x: torch.Tensor, in_scale: float, out_scale: float) -> torch.Tensor:
    """Linear light -> sRGB-encoded: ``out = curve(x * in_scale) * out_scale``."""
    y = linear_to_srgb_f64(x.to(torch.float64) * in_scale) * out_scale
    return y.to(_out_dtype(x))


def rgb_to_xyz(x: torch.Tensor, in_scale: float, encoded: bool) -> torch.Tensor:
    """RGB (sRGB-encoded unless ``encoded=False``) -> CIE XYZ with a white of Y = 1."""
    v = x.to(torch.float64) * in_scale
    if encoded:
        v = srgb_to_linear_f64(v)
    return _matmul3(XYZ_FROM_RGB, v).to(_out_dtype(x))


def xyz_to_rgb(x: torch.Tensor, out_scale: float, encoded: bool, clip: bool) -> torch.Tensor:
    """CIE XYZ -> RGB (sRGB-encoded unless ``encoded=False``), clipped to 0..1 when ``clip``."""
    v = _matmul3(RGB_FROM_XYZ, x.to(torch.float64))
    if encoded:
        v = linear_to_srgb_f64(v)
    if clip:
        v = v.clamp(0.0, 1.0)
    return (v * out_scale).to(x.dtype)


def rgb_to_lab(x: torch.Tensor, in_scale: float) -> torch.Tensor:
    """sRGB -> CIE L*a*b* (D65), the formulas of scikit-image's ``rgb2lab``."""
    xyz = rgb_to_xyz(x.to(torch.float64), in_scale, True)
    f = [_lab_f(xyz[:, i] / D65_WHITE[i]) for i in range(3)]
    lab = torch.stack([116.0 * f[1] - 16.0, 500.0 * (f[0] - f[1]), 200.0 * (f[1] - f[2])], dim=1)
    return lab.to(_out_dtype(x))


def lab_to_rgb(x: torch.Tensor, out_scale: float, clip: bool) -> torch.Tensor:
    """CIE L*a*b* (D65) -> sRGB; ``f(Z)`` is clipped at 0 as scikit-image and kornia do."""
    lab = x.to(torch.float64)
    fy = (lab[:, 0] + 16.0) / 116.0
    fx = lab[:, 1] / 500.0 + fy
    fz = (fy - lab[:, 2] / 200.0).clamp_min(0.0)
    xyz = torch.stack([_lab_finv(f) * w for f, w in zip((fx, fy, fz), D65_WHITE)], dim=1)
    return xyz_to_rgb(xyz, out_scale, True, clip).to(x.dtype)


# ----------------------------------------------------------------------------------------------
# Chroma subsampling (jcsample.c) and upsampling (jdsample.c)
# ----------------------------------------------------------------------------------------------


def chroma_size(h: int, w: int, subsampling: str) -> tuple[int, int]:
    """Size of the downsampled chroma planes: ``ceil(H / v), ceil(W / h)`` as libjpeg."""
    fh, fv = SUBSAMPLING[subsampling]
    return -(-h // fv), -(-w // fh)


def chroma_downsample(c: torch.Tensor, subsampling: str) -> torch.Tensor:
    """Downsample chroma planes ``[N, K, H, W]``.

    8-bit: libjpeg's ``h2v2_downsample`` ((p00 + p01 + p10 + p11 + bias) >> 2 with bias 1, 2,
    1, 2, ... along each output row) and ``h2v1_downsample`` ((a + b + bias) >> 1, bias 0, 1,
    ...). The right column and bottom row are replicated when W or H is odd (libjpeg's
    ``expand_right_edge`` and the prep controller's bottom-edge replication). Floating: the mean.
    """
    fh, fv = SUBSAMPLING[subsampling]
    if fh == 1 and fv == 1:
        return c.clone()
    n, k, h, w = c.shape
    hc, wc = chroma_size(h, w, subsampling)
    rows = torch.arange(hc * fv).clamp_max(h - 1)
    cols = torch.arange(wc * fh).clamp_max(w - 1)
    p = c[:, :, rows][:, :, :, cols]
    if c.dtype == torch.uint8:
        p = p.to(torch.int64)
        s = p.reshape(n, k, hc, fv, wc, fh).sum(dim=(3, 5))
        parity = torch.arange(wc) % 2
        if fv == 2:
            bias = 1 + parity  # 1, 2, 1, 2, ...
            return ((s + bias) >> 2).to(torch.uint8)
        bias = parity  # 0, 1, 0, 1, ...
        return ((s + bias) >> 1).to(torch.uint8)
    s = p.to(torch.float64).reshape(n, k, hc, fv, wc, fh).mean(dim=(3, 5))
    return s.to(c.dtype)


def _nearest(c: torch.Tensor, fh: int, fv: int, h: int, w: int) -> torch.Tensor:
    return c.repeat_interleave(fv, dim=2).repeat_interleave(fh, dim=3)[:, :, :h, :w]


def chroma_upsample(c: torch.Tensor, subsampling: str, h: int, w: int, method: str) -> torch.Tensor:
    """Upsample chroma planes ``[N, K, Hc, Wc]`` to ``[N, K, H, W]``.

    ``nearest`` replicates each sample. ``fancy`` is libjpeg's triangle filter (3/4 nearer,
    1/4 further sample in each subsampled direction, neighbours replicated at the borders) with
    its rounding: 4:2:0 ``(3 * this + last + 8) >> 4`` / ``(3 * this + next + 7) >> 4`` on column
    sums ``3 * nearer row + further row``; 4:2:2 ``(3a + b + 1) >> 2`` / ``(3a + b + 2) >> 2``.
    As in libjpeg, fancy upsampling falls back to ``nearest`` when ``Wc <= 2``.
    Floating inputs use the same weights without rounding.
    """
    fh, fv = SUBSAMPLING[subsampling]
    if fh == 1 and fv == 1:
        return c.clone()
    hc, wc = c.shape[2], c.shape[3]
    if method == "nearest" or wc <= 2:
        return _nearest(c, fh, fv, h, w)
    is_int = c.dtype == torch.uint8
    v = c.to(torch.int64 if is_int else torch.float64)

    # Output column x takes input column j = x // 2 (nearer) and j - 1 (x even) or j + 1
    # (x odd), clamped at the borders.
    x = torch.arange(wc * 2)
    j = x // 2
    odd_x = x % 2
    jn = (j + torch.where(odd_x == 1, 1, -1)).clamp(0, wc - 1)
    if fv == 1:  # 4:2:2, h2v1
        s = 3 * v[..., j] + v[..., jn]
        if is_int:
            out = (s + 1 + odd_x) >> 2
        else:
            out = s / 4.0
        return out[..., :w].to(c.dtype)
    # 4:2:0, h2v2: vertical pass on column sums, then horizontal.
    y = torch.arange(hc * 2)
    i = y // 2
    inb = (i + torch.where(y % 2 == 1, 1, -1)).clamp(0, hc - 1)
    colsum = 3 * v[:, :, i] + v[:, :, inb]  # [N, K, 2Hc, Wc]
    s = 3 * colsum[..., j] + colsum[..., jn]
    if is_int:
        out = (s + 8 - odd_x) >> 4
    else:
        out = s / 16.0
    return out[:, :, :h, :w].to(c.dtype)
