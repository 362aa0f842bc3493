"""Triton kernels for the colour ops of :mod:`fastperc.color` and their launchers.

The spec is :mod:`fastperc.reference.color`; every kernel reproduces its formulas:

* :func:`affine` -- YCbCr / gray: ``out[i] = sum_j M[i][j] * (x[j] - shift[j]) + offset[i]``, in
  libjpeg's 16-bit fixed point for ``uint8`` (bit-exact), in float32 (float64 for float64
  images) otherwise.
* :func:`pointwise` -- the sRGB transfer curves, XYZ and L*a*b* conversions.
* :func:`chroma_downsample` / :func:`chroma_upsample` -- libjpeg's ``h2v1``/``h2v2``
  downsampling and nearest / fancy upsampling (bit-exact for ``uint8``).

Conventions shared by every kernel:

* Tensors are ``[N, C, H, W]`` with arbitrary (non-negative) strides, passed as arguments, so
  NCHW, NHWC / ``channels_last`` and sliced views need no copy. The output is preallocated by
  the caller (possibly strided too).
* One flat 1-D grid over the output pixels ``(n, h, w)``; each program handles ``BLOCK``
  pixels and loops over the channels; every load and store is masked.
* Index arithmetic is int32 unless a tensor spans ``2**31`` elements or more, then the launcher
  sets ``I64`` and every index is int64 before it is multiplied by a stride.
* Floating math runs in ``CT`` (float32, or float64 for float64 images); float16 / bfloat16 are
  widened to float32 on load and rounded once on store.
* Float scalars are passed as float64 kernel arguments (annotated ``tl.float64``) and narrowed
  to ``CT`` in the kernel, so float64 images get float64 coefficients.
* ``pow`` and the cube root use libdevice on a GPU and ``exp2(p * log2(x))`` under
  ``TRITON_INTERPRET=1`` (libdevice has no interpreter implementation); both are guarded
  for ``x <= 0``.

Accuracy against the float64 reference: ``uint8`` results of the fixed-point and chroma paths are
bit-exact, float64 results agree to ~1e-15. float32 results differ by float32 rounding: within
1e-6 of ``max(|value|, range)``, except where the math amplifies it -- a*/b* near grey (terms
cancel: ~5e-5 absolute on the ±128 scale) and the sRGB-encoded outputs of ``xyz_to_rgb`` /
``lab_to_rgb`` near black (the curve's slope 12.92 times the matrix's rounding: up to ~4e-6 of the
range). float16 / bfloat16 results are the float32 result rounded once (to nearest even), so they
rarely differ from the reference by one unit in the last place.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from triton.language.extra import libdevice

BLOCK = 1024  # output pixels per program
_NUM_WARPS = 4
_INT32_LIMIT = 2**31

# Compile-time op codes of the pointwise kernel.
OP_SRGB_TO_LINEAR = 0
OP_LINEAR_TO_SRGB = 1
OP_RGB_TO_XYZ = 2
OP_XYZ_TO_RGB = 3
OP_RGB_TO_LAB = 4
OP_LAB_TO_RGB = 5
POINTWISE_OPS = {
    "srgb_to_linear": OP_SRGB_TO_LINEAR,
    "linear_to_srgb": OP_LINEAR_TO_SRGB,
    "rgb_to_xyz": OP_RGB_TO_XYZ,
    "xyz_to_rgb": OP_XYZ_TO_RGB,
    "rgb_to_lab": OP_RGB_TO_LAB,
    "lab_to_rgb": OP_LAB_TO_RGB,
}
_ELEMENTWISE_OPS = (OP_SRGB_TO_LINEAR, OP_LINEAR_TO_SRGB)

_SUPPORTED_DTYPES = (torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64)
_FLOAT_DTYPES = _SUPPORTED_DTYPES[1:]
_SUBSAMPLINGS = ((1, 1), (2, 1), (2, 2))  # (fh, fv) of 4:4:4, 4:2:2, 4:2:0

# Coefficient arguments are runtime values: never specialise (recompile) on them.
_MATRIX_ARGS = [f"m{i}{j}" for i in range(3) for j in range(3)]
_AFFINE_COEFS = [*_MATRIX_ARGS, "s0", "s1", "s2", "o0", "o1", "o2"]
_POINTWISE_COEFS = [*_MATRIX_ARGS, "wx", "wy", "wz", "in_scale", "out_scale"]


# ----------------------------------------------------------------------------------------------
# Shared device helpers
# ----------------------------------------------------------------------------------------------


@triton.jit
def _pixels(NPIX, HW, W, BLOCK: tl.constexpr, I64: tl.constexpr):
    """This program's ``BLOCK`` flat pixel indices: (mask, n, h, w)."""
    pid = tl.program_id(0)
    if I64:
        p = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    else:
        p = pid * BLOCK + tl.arange(0, BLOCK)
    mask = p < NPIX
    n = p // HW
    r = p - n * HW
    h = r // W
    w = r - h * W
    return mask, n, h, w


@triton.jit
def _coef(a, CT: tl.constexpr):
    """A float64 scalar argument narrowed to the compute type (kept as is for float64).

    Use it inline (``x * _coef(a, CT)``), never as ``c = _coef(a, CT)``: the interpreter turns
    every assignment of a Python float into a float32 tensor, which would round float64
    coefficients.
    """
    if CT == tl.float64:
        return a
    else:
        return tl.cast(a, CT)


@triton.jit
def _to_out(v, out_ty: tl.constexpr):
    """Round ``v`` to the output dtype (round to nearest even).

    float32 -> bfloat16 is rounded here with integer ops: the interpreter's own conversion
    truncates, and doing it the same way everywhere keeps the GPU and interpreter paths equal.
    """
    if out_ty == tl.bfloat16 and v.dtype == tl.float32:
        bits = v.to(tl.uint32, bitcast=True)
        bits = (bits + (0x7FFF + ((bits >> 16) & 1))) & 0xFFFF0000
        r = tl.where(v != v, v, bits.to(tl.float32, bitcast=True))
        return r.to(tl.bfloat16)  # exact: the low 16 bits are zero
    else:
        return v.to(out_ty)


@triton.jit
def _pow_pos(t, P: tl.constexpr, USE_LIBDEVICE: tl.constexpr):
    """``t ** P`` for ``t > 0`` (callers substitute a positive value where ``t <= 0``)."""
    if USE_LIBDEVICE:
        r = libdevice.pow(t, tl.full(t.shape, P, t.dtype))
    else:
        r = tl.exp2(tl.log2(t) * P)
    return r


@triton.jit
def _cbrt_pos(t, USE_LIBDEVICE: tl.constexpr):
    """Cube root of ``t > 0``."""
    if USE_LIBDEVICE:
        r = libdevice.cbrt(t)
    else:
        r = tl.exp2(tl.log2(t) * (1.0 / 3.0))
    return r


@triton.jit
def _srgb_to_linear(v, USE_LIBDEVICE: tl.constexpr):
    """IEC 61966-2-1 decoding of ``v`` on 0..1 (reference.srgb_to_linear_f64)."""
    t = (v + 0.055) * (1.0 / 1.055)
    pos = t > 0.0
    p = tl.where(pos, _pow_pos(tl.where(pos, t, 1.0), 2.4, USE_LIBDEVICE), 0.0)
    return tl.where(v > 0.04045, p, v * (1.0 / 12.92))


@triton.jit
def _linear_to_srgb(v, USE_LIBDEVICE: tl.constexpr):
    """IEC 61966-2-1 encoding of ``v`` on 0..1 (reference.linear_to_srgb_f64)."""
    pos = v > 0.0
    p = tl.where(pos, _pow_pos(tl.where(pos, v, 1.0), 1.0 / 2.4, USE_LIBDEVICE), 0.0)
    return tl.where(v > 0.0031308, 1.055 * p - 0.055, v * 12.92)


@triton.jit
def _lab_f(t, USE_LIBDEVICE: tl.constexpr):
    """CIE Lab ``f(t)`` (reference._lab_f)."""
    pos = t > 0.0
    c = tl.where(pos, _cbrt_pos(tl.where(pos, t, 1.0), USE_LIBDEVICE), 0.0)
    return tl.where(t > 0.008856, c, 7.787 * t + 16.0 / 116.0)


@triton.jit
def _lab_finv(t):
    """Inverse of :func:`_lab_f` (reference._lab_finv)."""
    return tl.where(t > 0.2068966, t * t * t, (t - 16.0 / 116.0) * (1.0 / 7.787))


# ----------------------------------------------------------------------------------------------
# Affine conversions (YCbCr, gray)
# ----------------------------------------------------------------------------------------------


@triton.jit(do_not_specialize=_AFFINE_COEFS)
def _affine_fixed_kernel(
    src_ptr,  # *u8, [N, 3, H, W] input image
    dst_ptr,  # *u8, [N, K, H, W] output image
    NPIX,  # N * H * W, number of output pixels
    HW,  # H * W
    W,  # image width
    s_sn,  # src stride (elements) of the N dim
    s_sc,  # src stride (elements) of the C dim
    s_sh,  # src stride (elements) of the H dim
    s_sw,  # src stride (elements) of the W dim
    d_sn,  # dst stride (elements) of the N dim
    d_sc,  # dst stride (elements) of the C dim
    d_sh,  # dst stride (elements) of the H dim
    d_sw,  # dst stride (elements) of the W dim
    m00,  # matrix[0][0], int at 2**16 scale
    m01,  # matrix[0][1], int at 2**16 scale
    m02,  # matrix[0][2], int at 2**16 scale
    m10,  # matrix[1][0], int at 2**16 scale (unused when K == 1)
    m11,  # matrix[1][1], int at 2**16 scale (unused when K == 1)
    m12,  # matrix[1][2], int at 2**16 scale (unused when K == 1)
    m20,  # matrix[2][0], int at 2**16 scale (unused when K == 1)
    m21,  # matrix[2][1], int at 2**16 scale (unused when K == 1)
    m22,  # matrix[2][2], int at 2**16 scale (unused when K == 1)
    s0,  # input shift of channel 0, int
    s1,  # input shift of channel 1, int
    s2,  # input shift of channel 2, int
    o0,  # output offset of channel 0, int at 2**16 scale, rounding included
    o1,  # output offset of channel 1, int at 2**16 scale, rounding included
    o2,  # output offset of channel 2, int at 2**16 scale, rounding included
    K: tl.constexpr,  # output channels: 3 or 1
    BLOCK: tl.constexpr,  # pixels per program
    I64: tl.constexpr,  # int64 index arithmetic
):
    mask, n, h, w = _pixels(NPIX, HW, W, BLOCK, I64)
    src = src_ptr + (n * s_sn + h * s_sh + w * s_sw)
    dst = dst_ptr + (n * d_sn + h * d_sh + w * d_sw)
    x0 = tl.load(src, mask=mask, other=0).to(tl.int32) - s0
    x1 = tl.load(src + s_sc, mask=mask, other=0).to(tl.int32) - s1
    x2 = tl.load(src + 2 * s_sc, mask=mask, other=0).to(tl.int32) - s2
    # int32 is enough: |M| < 2**17, |x - s| <= 255, |offset| < 2**24.
    y0 = (m00 * x0 + m01 * x1 + m02 * x2 + o0) >> 16  # arithmetic shift: floor
    tl.store(dst, tl.minimum(tl.maximum(y0, 0), 255).to(tl.uint8), mask=mask)
    if K == 3:
        y1 = (m10 * x0 + m11 * x1 + m12 * x2 + o1) >> 16
        y2 = (m20 * x0 + m21 * x1 + m22 * x2 + o2) >> 16
        tl.store(dst + d_sc, tl.minimum(tl.maximum(y1, 0), 255).to(tl.uint8), mask=mask)
        tl.store(dst + 2 * d_sc, tl.minimum(tl.maximum(y2, 0), 255).to(tl.uint8), mask=mask)


@triton.jit(do_not_specialize=_AFFINE_COEFS)
def _affine_float_kernel(
    src_ptr,  # *float, [N, 3, H, W] input image
    dst_ptr,  # *float, [N, K, H, W] output image (same dtype)
    NPIX,  # N * H * W, number of output pixels
    HW,  # H * W
    W,  # image width
    s_sn,  # src stride (elements) of the N dim
    s_sc,  # src stride (elements) of the C dim
    s_sh,  # src stride (elements) of the H dim
    s_sw,  # src stride (elements) of the W dim
    d_sn,  # dst stride (elements) of the N dim
    d_sc,  # dst stride (elements) of the C dim
    d_sh,  # dst stride (elements) of the H dim
    d_sw,  # dst stride (elements) of the W dim
    m00: tl.float64,  # matrix[0][0]
    m01: tl.float64,  # matrix[0][1]
    m02: tl.float64,  # matrix[0][2]
    m10: tl.float64,  # matrix[1][0] (unused when K == 1)
    m11: tl.float64,  # matrix[1][1] (unused when K == 1)
    m12: tl.float64,  # matrix[1][2] (unused when K == 1)
    m20: tl.float64,  # matrix[2][0] (unused when K == 1)
    m21: tl.float64,  # matrix[2][1] (unused when K == 1)
    m22: tl.float64,  # matrix[2][2] (unused when K == 1)
    s0: tl.float64,  # input shift of channel 0
    s1: tl.float64,  # input shift of channel 1
    s2: tl.float64,  # input shift of channel 2
    o0: tl.float64,  # output offset of channel 0
    o1: tl.float64,  # output offset of channel 1
    o2: tl.float64,  # output offset of channel 2
    K: tl.constexpr,  # output channels: 3 or 1
    CT: tl.constexpr,  # compute dtype: tl.float32 or tl.float64
    BLOCK: tl.constexpr,  # pixels per program
    I64: tl.constexpr,  # int64 index arithmetic
):
    mask, n, h, w = _pixels(NPIX, HW, W, BLOCK, I64)
    src = src_ptr + (n * s_sn + h * s_sh + w * s_sw)
    dst = dst_ptr + (n * d_sn + h * d_sh + w * d_sw)
    out_ty = dst_ptr.dtype.element_ty
    x0 = tl.load(src, mask=mask, other=0).to(CT) - _coef(s0, CT)
    x1 = tl.load(src + s_sc, mask=mask, other=0).to(CT) - _coef(s1, CT)
    x2 = tl.load(src + 2 * s_sc, mask=mask, other=0).to(CT) - _coef(s2, CT)
    # Same summation order as the reference: ((t0 + t1) + t2) + offset.
    y0 = _coef(m00, CT) * x0 + _coef(m01, CT) * x1 + _coef(m02, CT) * x2 + _coef(o0, CT)
    tl.store(dst, _to_out(y0, out_ty), mask=mask)
    if K == 3:
        y1 = _coef(m10, CT) * x0 + _coef(m11, CT) * x1 + _coef(m12, CT) * x2 + _coef(o1, CT)
        y2 = _coef(m20, CT) * x0 + _coef(m21, CT) * x1 + _coef(m22, CT) * x2 + _coef(o2, CT)
        tl.store(dst + d_sc, _to_out(y1, out_ty), mask=mask)
        tl.store(dst + 2 * d_sc, _to_out(y2, out_ty), mask=mask)


# ----------------------------------------------------------------------------------------------
# Non-linear conversions (transfer curve, XYZ, Lab)
# ----------------------------------------------------------------------------------------------


@triton.jit(do_not_specialize=_POINTWISE_COEFS)
def _pointwise_kernel(
    src_ptr,  # *u8|float, [N, C, H, W] input image
    dst_ptr,  # *float, [N, C, H, W] output image (C == 3 except for the transfer curves)
    NPIX,  # N * H * W, number of output pixels
    HW,  # H * W
    W,  # image width
    C,  # channels (loop count of the elementwise ops; 3 otherwise)
    s_sn,  # src stride (elements) of the N dim
    s_sc,  # src stride (elements) of the C dim
    s_sh,  # src stride (elements) of the H dim
    s_sw,  # src stride (elements) of the W dim
    d_sn,  # dst stride (elements) of the N dim
    d_sc,  # dst stride (elements) of the C dim
    d_sh,  # dst stride (elements) of the H dim
    d_sw,  # dst stride (elements) of the W dim
    m00: tl.float64,  # matrix[0][0]
    m01: tl.float64,  # matrix[0][1]
    m02: tl.float64,  # matrix[0][2]
    m10: tl.float64,  # matrix[1][0]
    m11: tl.float64,  # matrix[1][1]
    m12: tl.float64,  # matrix[1][2]
    m20: tl.float64,  # matrix[2][0]
    m21: tl.float64,  # matrix[2][1]
    m22: tl.float64,  # matrix[2][2]
    wx: tl.float64,  # reference white X (Lab ops)
    wy: tl.float64,  # reference white Y (Lab ops)
    wz: tl.float64,  # reference white Z (Lab ops)
    in_scale: tl.float64,  # input multiplier (1 / value_range) applied on load
    out_scale: tl.float64,  # output multiplier (value_range) applied before the store
    OP: tl.constexpr,  # one of the OP_* codes
    ENCODED: tl.constexpr,  # RGB side is sRGB-encoded (XYZ/Lab ops)
    CLIP: tl.constexpr,  # clip RGB to 0..1 before scaling (xyz_to_rgb, lab_to_rgb)
    CT: tl.constexpr,  # compute dtype: tl.float32 or tl.float64
    USE_LIBDEVICE: tl.constexpr,  # pow / cbrt from libdevice (compiled) or exp2/log2
    BLOCK: tl.constexpr,  # pixels per program
    I64: tl.constexpr,  # int64 index arithmetic
):
    mask, n, h, w = _pixels(NPIX, HW, W, BLOCK, I64)
    src = src_ptr + (n * s_sn + h * s_sh + w * s_sw)
    dst = dst_ptr + (n * d_sn + h * d_sh + w * d_sw)
    out_ty = dst_ptr.dtype.element_ty
    if OP == 0 or OP == 1:  # OP_SRGB_TO_LINEAR, OP_LINEAR_TO_SRGB: channel by channel
        for c in range(0, C):
            v = tl.load(src + c * s_sc, mask=mask, other=0).to(CT) * _coef(in_scale, CT)
            if OP == 0:
                y = _srgb_to_linear(v, USE_LIBDEVICE)
            else:
                y = _linear_to_srgb(v, USE_LIBDEVICE)
            tl.store(dst + c * d_sc, _to_out(y * _coef(out_scale, CT), out_ty), mask=mask)
    else:
        a0 = tl.load(src, mask=mask, other=0).to(CT)
        a1 = tl.load(src + s_sc, mask=mask, other=0).to(CT)
        a2 = tl.load(src + 2 * s_sc, mask=mask, other=0).to(CT)
        if OP == 2 or OP == 4:  # OP_RGB_TO_XYZ, OP_RGB_TO_LAB
            a0 = a0 * _coef(in_scale, CT)
            a1 = a1 * _coef(in_scale, CT)
            a2 = a2 * _coef(in_scale, CT)
            if ENCODED:
                a0 = _srgb_to_linear(a0, USE_LIBDEVICE)
                a1 = _srgb_to_linear(a1, USE_LIBDEVICE)
                a2 = _srgb_to_linear(a2, USE_LIBDEVICE)
        else:  # OP_XYZ_TO_RGB, OP_LAB_TO_RGB
            if OP == 5:  # Lab -> XYZ
                fy = (a0 + 16.0) * (1.0 / 116.0)
                fx = a1 * (1.0 / 500.0) + fy
                fz = tl.maximum(fy - a2 * (1.0 / 200.0), 0.0)
                a0 = _lab_finv(fx) * _coef(wx, CT)
                a1 = _lab_finv(fy) * _coef(wy, CT)
                a2 = _lab_finv(fz) * _coef(wz, CT)
        # 3x3 matrix, summed in the reference's order.
        b0 = _coef(m00, CT) * a0 + _coef(m01, CT) * a1 + _coef(m02, CT) * a2
        b1 = _coef(m10, CT) * a0 + _coef(m11, CT) * a1 + _coef(m12, CT) * a2
        b2 = _coef(m20, CT) * a0 + _coef(m21, CT) * a1 + _coef(m22, CT) * a2
        if OP == 4:  # XYZ -> Lab
            f0 = _lab_f(b0 / _coef(wx, CT), USE_LIBDEVICE)
            f1 = _lab_f(b1 / _coef(wy, CT), USE_LIBDEVICE)
            f2 = _lab_f(b2 / _coef(wz, CT), USE_LIBDEVICE)
            b0 = 116.0 * f1 - 16.0
            b1 = 500.0 * (f0 - f1)
            b2 = 200.0 * (f1 - f2)
        elif OP == 3 or OP == 5:  # linear RGB -> output RGB
            if ENCODED:
                b0 = _linear_to_srgb(b0, USE_LIBDEVICE)
                b1 = _linear_to_srgb(b1, USE_LIBDEVICE)
                b2 = _linear_to_srgb(b2, USE_LIBDEVICE)
            if CLIP:
                b0 = tl.minimum(tl.maximum(b0, 0.0), 1.0)
                b1 = tl.minimum(tl.maximum(b1, 0.0), 1.0)
                b2 = tl.minimum(tl.maximum(b2, 0.0), 1.0)
            b0 = b0 * _coef(out_scale, CT)
            b1 = b1 * _coef(out_scale, CT)
            b2 = b2 * _coef(out_scale, CT)
        tl.store(dst, _to_out(b0, out_ty), mask=mask)
        tl.store(dst + d_sc, _to_out(b1, out_ty), mask=mask)
        tl.store(dst + 2 * d_sc, _to_out(b2, out_ty), mask=mask)


# ----------------------------------------------------------------------------------------------
# Chroma resampling
# ----------------------------------------------------------------------------------------------


@triton.jit
def _chroma_down_kernel(
    src_ptr,  # *u8|float, [N, K, H, W] full-size chroma planes
    dst_ptr,  # *same, [N, K, Hc, Wc] subsampled planes, Hc = ceil(H / FV), Wc = ceil(W / FH)
    NPIX,  # N * Hc * Wc, number of output pixels
    HWC,  # Hc * Wc
    WC,  # Wc
    H,  # source height (last row replicated below it)
    W,  # source width (last column replicated right of it)
    K,  # channels (2 for Cb, Cr)
    s_sn,  # src stride (elements) of the N dim
    s_sc,  # src stride (elements) of the C dim
    s_sh,  # src stride (elements) of the H dim
    s_sw,  # src stride (elements) of the W dim
    d_sn,  # dst stride (elements) of the N dim
    d_sc,  # dst stride (elements) of the C dim
    d_sh,  # dst stride (elements) of the H dim
    d_sw,  # dst stride (elements) of the W dim
    FH: tl.constexpr,  # horizontal factor: 2
    FV: tl.constexpr,  # vertical factor: 1 (4:2:2) or 2 (4:2:0)
    IS_INT: tl.constexpr,  # uint8 data: libjpeg's biased integer average
    CT: tl.constexpr,  # float compute dtype (unused for uint8)
    BLOCK: tl.constexpr,  # output pixels per program
    I64: tl.constexpr,  # int64 index arithmetic
):
    mask, n, i, j = _pixels(NPIX, HWC, WC, BLOCK, I64)
    r0 = i * FV
    c0 = j * FH
    r1 = tl.minimum(r0 + (FV - 1), H - 1)  # replicate the bottom row
    c1 = tl.minimum(c0 + (FH - 1), W - 1)  # replicate the right column
    base = src_ptr + n * s_sn
    o00 = r0 * s_sh + c0 * s_sw
    o01 = r0 * s_sh + c1 * s_sw
    o10 = r1 * s_sh + c0 * s_sw
    o11 = r1 * s_sh + c1 * s_sw
    dst = dst_ptr + (n * d_sn + i * d_sh + j * d_sw)
    odd = (j % 2).to(tl.int32)  # output column parity selects libjpeg's bias
    for c in range(0, K):
        p = base + c * s_sc
        if IS_INT:
            s = tl.load(p + o00, mask=mask, other=0).to(tl.int32)
            s += tl.load(p + o01, mask=mask, other=0).to(tl.int32)
            if FV == 2:
                s += tl.load(p + o10, mask=mask, other=0).to(tl.int32)
                s += tl.load(p + o11, mask=mask, other=0).to(tl.int32)
                y = (s + 1 + odd) >> 2  # h2v2_downsample: bias 1, 2, 1, 2, ...
            else:
                y = (s + odd) >> 1  # h2v1_downsample: bias 0, 1, 0, 1, ...
            tl.store(dst + c * d_sc, y.to(tl.uint8), mask=mask)
        else:
            s = tl.load(p + o00, mask=mask, other=0).to(CT)
            s += tl.load(p + o01, mask=mask, other=0).to(CT)
            if FV == 2:
                s += tl.load(p + o10, mask=mask, other=0).to(CT)
                s += tl.load(p + o11, mask=mask, other=0).to(CT)
                y = s * 0.25
            else:
                y = s * 0.5
            tl.store(dst + c * d_sc, _to_out(y, dst_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _chroma_up_kernel(
    src_ptr,  # *u8|float, [N, K, Hc, Wc] subsampled chroma planes
    dst_ptr,  # *same, [N, K, H, W] full-size planes
    NPIX,  # N * H * W, number of output pixels
    HW,  # H * W
    W,  # output width
    HC,  # Hc, source height
    WC,  # Wc, source width
    K,  # channels (2 for Cb, Cr)
    s_sn,  # src stride (elements) of the N dim
    s_sc,  # src stride (elements) of the C dim
    s_sh,  # src stride (elements) of the H dim
    s_sw,  # src stride (elements) of the W dim
    d_sn,  # dst stride (elements) of the N dim
    d_sc,  # dst stride (elements) of the C dim
    d_sh,  # dst stride (elements) of the H dim
    d_sw,  # dst stride (elements) of the W dim
    FH: tl.constexpr,  # horizontal factor: 2
    FV: tl.constexpr,  # vertical factor: 1 (4:2:2) or 2 (4:2:0)
    FANCY: tl.constexpr,  # libjpeg's triangle filter (else nearest); needs Wc > 2
    IS_INT: tl.constexpr,  # uint8 data: libjpeg's integer rounding
    CT: tl.constexpr,  # float compute dtype (unused for uint8)
    BLOCK: tl.constexpr,  # output pixels per program
    I64: tl.constexpr,  # int64 index arithmetic
):
    mask, n, y, x = _pixels(NPIX, HW, W, BLOCK, I64)
    dst = dst_ptr + (n * d_sn + y * d_sh + x * d_sw)
    base = src_ptr + n * s_sn
    out_ty = dst_ptr.dtype.element_ty
    if FANCY:
        # Column x takes the nearer sample j = x // 2 (weight 3) and the further one j -/+ 1
        # (x even / odd, weight 1), clamped to the plane; rows likewise for 4:2:0.
        j = x // 2
        oddx = x % 2
        jn = tl.minimum(tl.maximum(j + 2 * oddx - 1, 0), WC - 1)
        oj = j * s_sw
        ojn = jn * s_sw
        if FV == 2:
            i = y // 2
            oddy = y % 2
            inb = tl.minimum(tl.maximum(i + 2 * oddy - 1, 0), HC - 1)
            oi = i * s_sh
            oin = inb * s_sh
        else:
            oi = y * s_sh
        odd = oddx.to(tl.int32)
        for c in range(0, K):
            p = base + c * s_sc
            if IS_INT:
                a = tl.load(p + oi + oj, mask=mask, other=0).to(tl.int32)
                b = tl.load(p + oi + ojn, mask=mask, other=0).to(tl.int32)
                if FV == 2:
                    a = 3 * a + tl.load(p + oin + oj, mask=mask, other=0).to(tl.int32)
                    b = 3 * b + tl.load(p + oin + ojn, mask=mask, other=0).to(tl.int32)
                    v = (3 * a + b + 8 - odd) >> 4  # h2v2_fancy_upsample
                else:
                    v = (3 * a + b + 1 + odd) >> 2  # h2v1_fancy_upsample
                tl.store(dst + c * d_sc, v.to(tl.uint8), mask=mask)
            else:
                a = tl.load(p + oi + oj, mask=mask, other=0).to(CT)
                b = tl.load(p + oi + ojn, mask=mask, other=0).to(CT)
                if FV == 2:
                    a = 3.0 * a + tl.load(p + oin + oj, mask=mask, other=0).to(CT)
                    b = 3.0 * b + tl.load(p + oin + ojn, mask=mask, other=0).to(CT)
                    v = (3.0 * a + b) * 0.0625
                else:
                    v = (3.0 * a + b) * 0.25
                tl.store(dst + c * d_sc, _to_out(v, out_ty), mask=mask)
    else:
        o = (y // FV) * s_sh + (x // FH) * s_sw
        for c in range(0, K):
            v = tl.load(base + c * s_sc + o, mask=mask, other=0)
            tl.store(dst + c * d_sc, v, mask=mask)


# ----------------------------------------------------------------------------------------------
# Launchers
# ----------------------------------------------------------------------------------------------

_USE_LIBDEVICE = isinstance(_pointwise_kernel, triton.runtime.jit.JITFunction)  # not interpreted


def _max_offset(t: torch.Tensor) -> int:
    return sum((s - 1) * abs(st) for s, st in zip(t.shape, t.stride()) if s > 0)


def _needs_i64(npix: int, *tensors: torch.Tensor) -> bool:
    """Whether any index or element offset of the launch can reach 2**31."""
    top = max([npix] + [_max_offset(t) for t in tensors])
    return top + BLOCK >= _INT32_LIMIT


def _check(src: torch.Tensor, dst: torch.Tensor, op: str, dtypes=_SUPPORTED_DTYPES) -> None:
    if src.dim() != 4 or dst.dim() != 4:
        raise ValueError(
            f"{op}: expected 4-D [N, C, H, W] tensors, got {tuple(src.shape)} -> {tuple(dst.shape)}"
        )
    if src.dtype not in dtypes:
        raise TypeError(f"{op}: unsupported input dtype {src.dtype}")
    if dst.dtype not in _SUPPORTED_DTYPES:
        raise TypeError(f"{op}: unsupported output dtype {dst.dtype}")
    if src.device != dst.device:
        raise ValueError(f"{op}: input on {src.device} but output on {dst.device}")


def _compute_type(t: torch.Tensor):
    return tl.float64 if t.dtype == torch.float64 else tl.float32


def _grid(npix: int) -> tuple[int]:
    return (triton.cdiv(npix, BLOCK),)


def affine(src: torch.Tensor, dst: torch.Tensor, spec) -> None:
    """Apply an affine colour map (``reference.color.AffineSpec``) into ``dst``.

    Args:
        src: ``[N, 3, H, W]`` image, any strides; ``uint8`` with a fixed-point spec, or a float
            dtype with a float spec.
        dst: preallocated ``[N, K, H, W]`` output of the same dtype, ``K = len(spec.matrix)``
            (3 or 1), any strides.
        spec: ``out[i] = sum_j matrix[i][j] * (x[j] - shift[j]) + offset[i]``. Fixed point:
            int32 arithmetic, ``>> 16`` (floor), clamp to 0..255, bit-exact with
            ``reference.color.apply_affine``. Float: computed in float32 (float64 for float64
            images), not clamped.
    """
    _check(src, dst, "affine")
    n, c, h, w = src.shape
    k = len(spec.matrix)
    if c != 3 or k not in (1, 3) or tuple(dst.shape) != (n, k, h, w):
        raise ValueError(
            f"affine: expected [N, 3, H, W] -> [N, {k}, H, W] with K in (1, 3), got "
            f"{tuple(src.shape)} -> {tuple(dst.shape)}"
        )
    if dst.dtype != src.dtype:
        raise TypeError(f"affine: expected dst of dtype {src.dtype}, got {dst.dtype}")
    if spec.fixed_point != (src.dtype == torch.uint8):
        raise TypeError(
            f"affine: a {'fixed-point' if spec.fixed_point else 'float'} spec does not apply "
            f"to {src.dtype} images"
        )
    npix = n * h * w
    if npix == 0:
        return
    rows = [tuple(r) for r in spec.matrix] + [(0, 0, 0)] * (3 - k)
    offs = list(spec.offset) + [0] * (3 - k)
    cast = int if spec.fixed_point else float
    coefs = [cast(v) for r in rows for v in r]
    coefs += [cast(v) for v in spec.shift] + [cast(v) for v in offs]
    args = (src, dst, npix, h * w, w, *src.stride(), *dst.stride(), *coefs)
    i64 = _needs_i64(npix, src, dst)
    if spec.fixed_point:
        _affine_fixed_kernel[_grid(npix)](*args, K=k, BLOCK=BLOCK, I64=i64, num_warps=_NUM_WARPS)
    else:
        _affine_float_kernel[_grid(npix)](
            *args, K=k, CT=_compute_type(src), BLOCK=BLOCK, I64=i64, num_warps=_NUM_WARPS
        )


def pointwise(
    op: str,
    src: torch.Tensor,
    dst: torch.Tensor,
    matrix9,
    white3,
    in_scale: float,
    out_scale: float,
    encoded: bool,
    clip: bool,
) -> None:
    """Run a non-linear colour conversion into ``dst``.

    Args:
        op: ``"srgb_to_linear"`` / ``"linear_to_srgb"`` (any channel count, channel by channel:
            ``out = curve(x * in_scale) * out_scale``), ``"rgb_to_xyz"``, ``"xyz_to_rgb"``,
            ``"rgb_to_lab"``, ``"lab_to_rgb"`` (3 channels).
        src: ``[N, C, H, W]`` image, any strides; ``uint8`` or a float dtype.
        dst: preallocated ``[N, C, H, W]`` float output (float32 for ``uint8`` input, else the
            input dtype), any strides.
        matrix9: the 3x3 matrix, row-major (``XYZ_FROM_RGB`` for rgb_to_xyz/lab,
            ``RGB_FROM_XYZ`` for xyz/lab_to_rgb; ignored by the transfer curves).
        white3: reference white XYZ of the Lab ops.
        in_scale: input multiplier applied on load (transfer curves, rgb_to_xyz, rgb_to_lab).
        out_scale: output multiplier (transfer curves, xyz_to_rgb, lab_to_rgb).
        encoded: the RGB side is sRGB-encoded (XYZ and Lab ops).
        clip: clip RGB to 0..1 before ``out_scale`` (xyz_to_rgb, lab_to_rgb).

    Floating math is float32 (float64 for float64 inputs); see the module docstring for the
    accuracy against the float64 reference.
    """
    if op not in POINTWISE_OPS:
        raise ValueError(f"pointwise: unknown op {op!r}, expected one of {tuple(POINTWISE_OPS)}")
    code = POINTWISE_OPS[op]
    _check(src, dst, op)
    if dst.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{op}: expected a floating output, got {dst.dtype}")
    n, c, h, w = src.shape
    if code not in _ELEMENTWISE_OPS and c != 3:
        raise ValueError(f"{op}: expected 3 channels, got {tuple(src.shape)}")
    if tuple(dst.shape) != (n, c, h, w):
        raise ValueError(f"{op}: expected dst of shape {(n, c, h, w)}, got {tuple(dst.shape)}")
    m = [float(v) for v in matrix9]
    wxyz = [float(v) for v in white3]
    if len(m) != 9 or len(wxyz) != 3:
        raise ValueError(f"{op}: expected 9 matrix entries and 3 white values")
    npix = n * h * w
    if npix == 0 or c == 0:
        return
    ct = tl.float64 if src.dtype == torch.float64 or dst.dtype == torch.float64 else tl.float32
    _pointwise_kernel[_grid(npix)](
        src, dst, npix, h * w, w, c, *src.stride(), *dst.stride(),
        *m, *wxyz, float(in_scale), float(out_scale),
        OP=code,
        ENCODED=bool(encoded),
        CLIP=bool(clip),
        CT=ct,
        USE_LIBDEVICE=_USE_LIBDEVICE,
        BLOCK=BLOCK,
        I64=_needs_i64(npix, src, dst),
        num_warps=_NUM_WARPS,
    )  # fmt: skip


def _check_factors(fh: int, fv: int, op: str) -> None:
    if (fh, fv) not in _SUBSAMPLINGS:
        raise ValueError(f"{op}: unsupported factors (fh, fv)={(fh, fv)}, expected {_SUBSAMPLINGS}")


def chroma_downsample(src: torch.Tensor, dst: torch.Tensor, fh: int, fv: int) -> None:
    """Subsample chroma planes as libjpeg's compressor (``jcsample.c``) into ``dst``.

    Args:
        src: ``[N, K, H, W]`` planes (Cb, Cr), any strides.
        dst: preallocated ``[N, K, ceil(H / fv), ceil(W / fh)]`` output of the same dtype.
        fh, fv: horizontal / vertical factors: ``(2, 2)`` (4:2:0), ``(2, 1)`` (4:2:2) or
            ``(1, 1)`` (a copy).

    The last row / column is replicated when ``H`` / ``W`` is odd. ``uint8`` uses libjpeg's
    biased average (``h2v2``: ``(sum + 1|2) >> 2``, ``h2v1``: ``(sum + 0|1) >> 1``, the bias
    alternating with the output column), bit-exact; floats the plain mean.
    """
    _check(src, dst, "chroma_downsample")
    _check_factors(fh, fv, "chroma_downsample")
    n, k, h, w = src.shape
    hc, wc = -(-h // fv), -(-w // fh)
    if tuple(dst.shape) != (n, k, hc, wc) or dst.dtype != src.dtype:
        raise ValueError(
            f"chroma_downsample: expected dst {src.dtype} of shape {(n, k, hc, wc)}, got "
            f"{dst.dtype} {tuple(dst.shape)}"
        )
    npix = n * hc * wc
    if npix == 0 or k == 0:
        return
    if fh == 1 and fv == 1:
        dst.copy_(src)
        return
    _chroma_down_kernel[_grid(npix)](
        src, dst, npix, hc * wc, wc, h, w, k, *src.stride(), *dst.stride(),
        FH=fh,
        FV=fv,
        IS_INT=src.dtype == torch.uint8,
        CT=_compute_type(src),
        BLOCK=BLOCK,
        I64=_needs_i64(npix, src, dst),
        num_warps=_NUM_WARPS,
    )  # fmt: skip


def chroma_upsample(src: torch.Tensor, dst: torch.Tensor, fh: int, fv: int, fancy: bool) -> None:
    """Upsample chroma planes as libjpeg's decompressor (``jdsample.c``) into ``dst``.

    Args:
        src: ``[N, K, Hc, Wc]`` subsampled planes, any strides.
        dst: preallocated ``[N, K, H, W]`` output of the same dtype with
            ``Hc = ceil(H / fv)``, ``Wc = ceil(W / fh)``, any strides.
        fh, fv: ``(2, 2)`` (4:2:0), ``(2, 1)`` (4:2:2) or ``(1, 1)`` (a copy).
        fancy: libjpeg's triangle filter (3/4 nearer + 1/4 further sample, clamped at the
            borders; ``uint8`` rounding ``+8/+7 >> 4`` (4:2:0) and ``+1/+2 >> 2`` (4:2:2) by
            output column parity, bit-exact; floats ``/16`` and ``/4``). Like libjpeg it falls
            back to nearest when ``Wc <= 2``. Otherwise nearest: each sample replicated.
    """
    _check(src, dst, "chroma_upsample")
    _check_factors(fh, fv, "chroma_upsample")
    n, k, hc, wc = src.shape
    h, w = dst.shape[2], dst.shape[3]
    if (
        dst.shape[0] != n
        or dst.shape[1] != k
        or (-(-h // fv), -(-w // fh)) != (hc, wc)
        or dst.dtype != src.dtype
    ):
        raise ValueError(
            f"chroma_upsample: {src.dtype} {tuple(src.shape)} does not upsample by "
            f"({fh}, {fv}) to {dst.dtype} {tuple(dst.shape)}"
        )
    npix = n * h * w
    if npix == 0 or k == 0:
        return
    if fh == 1 and fv == 1:
        dst.copy_(src)
        return
    _chroma_up_kernel[_grid(npix)](
        src, dst, npix, h * w, w, hc, wc, k, *src.stride(), *dst.stride(),
        FH=fh,
        FV=fv,
        FANCY=bool(fancy) and wc > 2,
        IS_INT=src.dtype == torch.uint8,
        CT=_compute_type(src),
        BLOCK=BLOCK,
        I64=_needs_i64(npix, src, dst),
        num_warps=_NUM_WARPS,
    )  # fmt: skip
