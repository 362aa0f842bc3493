"""Triton kernels for :func:`fastperc.resize.resize`: separable resampling with weight tables.

The spec is :mod:`fastperc.reference.resize`; its tables (:class:`~fastperc.reference.resize.Taps`:
``out[o] = sum_k weight[o, k] * in[start[o] + k]``, ``K`` taps per output sample) drive one
kernel that resamples along one axis of an ``[N, C, H, W]`` tensor (any strides). A resize is
two launches (the axis whose pass leaves the smaller intermediate first), the intermediate kept
in float32 (float64 for float64 images), as Pillow keeps its own in float32.

* Every sum is accumulated in float64, in the taps' order, whatever the input dtype (uint8,
  float16, bfloat16, float32, float64); each pass rounds once on store. Results are within
  float32 rounding of the float64 reference (~1e-5 on 0..255 data).
* The backward pass of the (unclipped) resampling is the transposed resampling: the same kernel
  with the transposed tables (:func:`fastperc.reference.resize.transposed`), applied to the
  output gradient along one axis and then the other. :class:`_Resample` wires both into
  autograd; a clip is applied by the caller with ``torch.clamp`` when gradients are needed.
* One flat 1-D grid over the output elements ``(n, c, h, w)``, ``BLOCK`` per program, every load
  and store masked; index arithmetic in int32 unless an offset can reach ``2**31`` (``I64``).
"""

from __future__ import annotations

import weakref

import torch
import triton
import triton.language as tl

BLOCK = 512  # output elements per program
_NUM_WARPS = 4
_INT32_LIMIT = 2**31
_SUPPORTED_DTYPES = (torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64)


@triton.jit(do_not_specialize=["lo", "hi"])
def _resample_axis_kernel(
    src_ptr,  # *u8|float, [N, C, H_in, W_in] (one of H_in/W_in equals the output's)
    dst_ptr,  # *f32|f64, [N, C, H_out, W_out]
    start_ptr,  # *i64, [S_out]: first tap of each output sample along the axis
    w_ptr,  # *f64, [S_out, K]: tap weights
    NEL,  # N * C * H_out * W_out, number of output elements
    C,  # channels
    HO,  # output height
    WO,  # output width
    K,  # taps per output sample
    s_sn,  # src stride (elements) of the N dim
    s_sc,  # src stride (elements) of the C dim
    s_sh,  # src stride (elements) of the H dim
    s_sw,  # src stride (elements) of the W dim
    d_sn,  # dst stride (elements) of the N dim
    d_sc,  # dst stride (elements) of the C dim
    d_sh,  # dst stride (elements) of the H dim
    d_sw,  # dst stride (elements) of the W dim
    lo: tl.float64,  # clip bounds (used when CLIP)
    hi: tl.float64,
    AXIS: tl.constexpr,  # 0: resample along H, 1: along W
    CLIP: tl.constexpr,  # clamp the result to [lo, hi] (NaN stays NaN)
    BLOCK: tl.constexpr,  # output elements per program
    I64: tl.constexpr,  # int64 index arithmetic
):
    pid = tl.program_id(0)
    if I64:
        e = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    else:
        e = pid * BLOCK + tl.arange(0, BLOCK)
    mask = e < NEL
    w = e % WO
    t = e // WO
    h = t % HO
    t = t // HO
    c = t % C
    n = t // C
    if AXIS == 0:
        o = h
        base = n * s_sn + c * s_sc + w * s_sw
        step = s_sh
    else:
        o = w
        base = n * s_sn + c * s_sc + h * s_sh
        step = s_sw
    first = tl.load(start_ptr + o, mask=mask, other=0)
    if I64:
        first = first.to(tl.int64)
    else:
        first = first.to(tl.int32)
    acc = tl.zeros([BLOCK], dtype=tl.float64)
    for k in range(0, K):
        wk = tl.load(w_ptr + o * K + k, mask=mask, other=0.0)
        v = tl.load(src_ptr + base + (first + k) * step, mask=mask, other=0)
        acc += wk * v.to(tl.float64)
    if CLIP:
        acc = tl.where(acc < lo, lo, tl.where(acc > hi, hi, acc))
    dst = dst_ptr + (n * d_sn + c * d_sc + h * d_sh + w * d_sw)
    tl.store(dst, acc.to(dst_ptr.dtype.element_ty), mask=mask)


# ----------------------------------------------------------------------------------------------
# Launchers
# ----------------------------------------------------------------------------------------------

#: Device copies of the tables, per Taps object (the reference caches those) and device.
_DEVICE_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _tables(taps, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    per = _DEVICE_TABLES.setdefault(taps, {})
    key = str(device)
    if key not in per:
        per[key] = (
            torch.tensor(taps.start.tolist(), dtype=torch.int64).to(device),
            torch.from_numpy(taps.weight.copy()).to(device),
        )
    return per[key]


def _max_offset(t: torch.Tensor) -> int:
    return sum((s - 1) * abs(st) for s, st in zip(t.shape, t.stride()))


def _resample_axis(src: torch.Tensor, dst: torch.Tensor, taps, axis: int, clip, lo, hi) -> None:
    start, weight = _tables(taps, src.device)
    n, c, ho, wo = dst.shape
    nel = n * c * ho * wo
    if nel == 0:
        return
    i64 = max(nel, _max_offset(src), _max_offset(dst)) + BLOCK >= _INT32_LIMIT
    _resample_axis_kernel[(triton.cdiv(nel, BLOCK),)](
        src, dst, start, weight, nel, c, ho, wo, taps.k,
        *src.stride(), *dst.stride(), float(lo), float(hi),
        AXIS=axis, CLIP=bool(clip), BLOCK=BLOCK, I64=i64, num_warps=_NUM_WARPS,
    )  # fmt: skip


def _check(src: torch.Tensor, dst: torch.Tensor, ty, tx) -> None:
    if src.dim() != 4 or dst.dim() != 4:
        raise ValueError(
            f"resize: expected 4-D [N, C, H, W] tensors, got {tuple(src.shape)} -> {tuple(dst.shape)}"
        )
    if src.dtype not in _SUPPORTED_DTYPES:
        raise TypeError(f"resize: unsupported dtype {src.dtype}")
    want = torch.float64 if src.dtype == torch.float64 else torch.float32
    if dst.dtype != want:
        raise TypeError(f"resize: expected a {want} output for {src.dtype} input, got {dst.dtype}")
    n, c, h, w = src.shape
    if tuple(dst.shape) != (n, c, ty.out_size, tx.out_size) or (h, w) != (ty.in_size, tx.in_size):
        raise ValueError(
            f"resize: tables for {ty.in_size}x{tx.in_size} -> {ty.out_size}x{tx.out_size} do not "
            f"fit {tuple(src.shape)} -> {tuple(dst.shape)}"
        )
    if src.device != dst.device:
        raise ValueError(f"resize: tensors on {src.device} and {dst.device}")


def _two_passes(src: torch.Tensor, dst: torch.Tensor, ty, tx, clip: bool, lo: float, hi: float):
    """``dst = clip(Wy @ src @ Wx.T)``: along W then H, or H then W, whichever intermediate is
    smaller (W first on a tie, as Pillow)."""
    n, c, h, w = src.shape
    ho, wo = ty.out_size, tx.out_size
    mid_dtype = torch.float64 if dst.dtype == torch.float64 else torch.float32
    if h * wo <= ho * w:
        mid = torch.empty((n, c, h, wo), dtype=mid_dtype, device=src.device)
        _resample_axis(src, mid, tx, 1, False, 0.0, 0.0)
        _resample_axis(mid, dst, ty, 0, clip, lo, hi)
    else:
        mid = torch.empty((n, c, ho, w), dtype=mid_dtype, device=src.device)
        _resample_axis(src, mid, ty, 0, False, 0.0, 0.0)
        _resample_axis(mid, dst, tx, 1, clip, lo, hi)


class _Resample(torch.autograd.Function):
    """The linear resampling ``Wy @ x @ Wx.T`` with Triton forward and backward kernels."""

    @staticmethod
    def forward(ctx, x, ty, tx):  # type: ignore[override]
        out_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        out = torch.empty(
            (*x.shape[:2], ty.out_size, tx.out_size), dtype=out_dtype, device=x.device
        )
        _two_passes(x.detach(), out, ty, tx, False, 0.0, 0.0)
        ctx.taps = (ty, tx)
        ctx.x_meta = (tuple(x.shape), x.dtype)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gout):  # type: ignore[override]
        from fastperc.reference.resize import transposed

        ty, tx = ctx.taps
        shape, dtype = ctx.x_meta
        acc = torch.float64 if dtype == torch.float64 else torch.float32
        gx = torch.empty(shape, dtype=acc, device=gout.device)
        _two_passes(gout, gx, transposed(ty), transposed(tx), False, 0.0, 0.0)
        return gx.to(dtype), None, None


def resize(src: torch.Tensor, dst: torch.Tensor, ty, tx, clip: bool, lo: float, hi: float) -> None:
    """Resample ``src`` ``[N, C, H, W]`` (any strides) into the preallocated ``dst``.

    Args:
        src: the images; uint8, float16, bfloat16, float32 or float64.
        dst: ``[N, C, ty.out_size, tx.out_size]``, float32 (float64 for float64 ``src``), any
            strides.
        ty, tx: the height and width tables (:func:`fastperc.reference.resize.taps`).
        clip: clamp the result to ``[lo, hi]``.
        lo, hi: the clip bounds.
    """
    _check(src, dst, ty, tx)
    _two_passes(src, dst, ty, tx, clip, lo, hi)


def resize_differentiable(src: torch.Tensor, ty, tx) -> torch.Tensor:
    """``Wy @ src @ Wx.T`` (unclipped) as a new tensor, differentiable with respect to ``src``
    (float16 / bfloat16 / float32 / float64) through the Triton backward kernels."""
    if src.dim() != 4 or not src.is_floating_point():
        raise ValueError(
            f"resize: expected a floating [N, C, H, W] tensor, got {src.dtype} {tuple(src.shape)}"
        )
    return _Resample.apply(src, ty, tx)
