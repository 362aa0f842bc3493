"""Triton kernels for :mod:`fastperc.metrics`: SSIM statistics (forward and backward), squared
errors, CIEDE2000, and the autograd Functions built on them.

The spec is :mod:`fastperc.reference.metrics`. The public API hands these launchers float
planes in the compute type (float32, or float64 for float64 images), with any luma mix and
``uint8`` conversion already applied by torch ops (so they stay differentiable).

* :func:`ssim_cs` -- per-plane mean SSIM and mean contrast-structure of ``[N, P, H, W]``
  planes. One program per ``BH x BW`` tile of the output map: the five local statistics are
  filtered with the separable 11-tap window (a horizontal pass per window row, accumulated
  vertically), the SSIM and cs terms are evaluated and summed per tile; tile sums are added in
  float64 by torch. No full-size map is stored in the forward pass. ``variant="torchmetrics"``
  pads the planes by reflection with ``torch.nn.functional.pad`` first, clamps the variances at
  0 and averages cs over the interior only.
* Backward: a first kernel recomputes the statistics per output pixel and stores the five
  derivatives of the (weighted) SSIM/cs sums with respect to the filtered statistics; a second
  one applies the transposed (full) filter and the chain rule ``d/dx = F'(P_mx) + 2 x F'(P_xx)
  + y F'(P_xy)`` per input pixel.
* :func:`mse` -- per-image mean squared error (float64 accumulation of float tile sums), with
  a torch-expressed backward.
* :func:`ciede2000` -- per-pixel Delta E 2000, computed in float64 for every dtype. ``atan2``
  is evaluated with argument reduction and a degree-23 odd series (libdevice is not available
  to the interpreter), accurate to ~1e-16.

Conventions as in :mod:`fastperc.kernels.color`: strides are kernel arguments, every load and
store is masked, float scalars are float64 arguments narrowed inline, ``I64`` switches index
arithmetic to int64 for tensors spanning ``2**31`` elements.
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

BH = 16  # output rows per SSIM program (on a GPU)
BW = 32  # output columns per SSIM program (on a GPU)
BLOCK = 1024  # elements per program of the elementwise kernels
_NUM_WARPS = 4
_INT32_LIMIT = 2**31
RADIUS = 5
TM_PAD = 5
K1 = 0.01
K2 = 0.03
_SSIM_COEFS = ["c1", "c2", "inv_ns", "inv_nc"]


def _window(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    from fastperc.reference.metrics import gaussian_window

    return gaussian_window().to(device=device, dtype=dtype)


@triton.jit
def _coef(a, CT: tl.constexpr):
    """A float64 scalar argument narrowed to the compute type; use inline only."""
    if CT == tl.float64:
        return a
    else:
        return tl.cast(a, CT)


@triton.jit
def _stats(
    x_ptr,  # plane base of x
    y_ptr,  # plane base of y
    win_ptr,  # the 11-tap window, CT
    oh,  # [BH, 1] output rows
    ow,  # [1, BW] output columns
    mask,  # [BH, BW] valid output pixels
    sxh,  # x row stride
    sxw,  # x column stride
    syh,  # y row stride
    syw,  # y column stride
    CT: tl.constexpr,  # compute type
    R: tl.constexpr,  # window radius (5)
):
    """The five filtered statistics (means, second moments) of every output pixel of a tile."""
    mx = tl.zeros(mask.shape, CT)
    my = tl.zeros(mask.shape, CT)
    exx = tl.zeros(mask.shape, CT)
    eyy = tl.zeros(mask.shape, CT)
    exy = tl.zeros(mask.shape, CT)
    for i in tl.static_range(2 * R + 1):
        hx = tl.zeros(mask.shape, CT)
        hy = tl.zeros(mask.shape, CT)
        hxx = tl.zeros(mask.shape, CT)
        hyy = tl.zeros(mask.shape, CT)
        hxy = tl.zeros(mask.shape, CT)
        for j in tl.static_range(2 * R + 1):
            gj = tl.load(win_ptr + j)
            xv = tl.load(x_ptr + (oh + i) * sxh + (ow + j) * sxw, mask=mask, other=0.0).to(CT)
            yv = tl.load(y_ptr + (oh + i) * syh + (ow + j) * syw, mask=mask, other=0.0).to(CT)
            hx += gj * xv
            hy += gj * yv
            hxx += gj * (xv * xv)
            hyy += gj * (yv * yv)
            hxy += gj * (xv * yv)
        gi = tl.load(win_ptr + i)
        mx += gi * hx
        my += gi * hy
        exx += gi * hxx
        eyy += gi * hyy
        exy += gi * hxy
    return mx, my, exx, eyy, exy


@triton.jit
def _tile(Ho, Wo, BH: tl.constexpr, BW: tl.constexpr, I64: tl.constexpr):
    """(plane index, [BH, 1] rows, [1, BW] columns, mask) of this program's output tile."""
    pid_m = tl.program_id(0).to(tl.int64)
    pid_t = tl.program_id(1)
    ntw = tl.cdiv(Wo, BW)
    th = pid_t // ntw
    tw = pid_t - th * ntw
    oh = th * BH + tl.arange(0, BH)[:, None]
    ow = tw * BW + tl.arange(0, BW)[None, :]
    if I64:
        oh = oh.to(tl.int64)
        ow = ow.to(tl.int64)
    mask = (oh < Ho) & (ow < Wo)
    return pid_m, pid_t, oh, ow, mask


@triton.jit(do_not_specialize=_SSIM_COEFS)
def _ssim_fwd_kernel(
    x_ptr,  # [M, Hp, Wp] planes (strided)
    y_ptr,  # [M, Hp, Wp] planes (strided)
    win_ptr,  # [11] window, CT
    part_ptr,  # [M, T, 2] tile sums of the SSIM and cs maps, CT
    Ho,  # output map height (Hp - 10)
    Wo,  # output map width (Wp - 10)
    T,  # tiles per plane
    sxm,
    sxh,
    sxw,  # x strides
    sym,
    syh,
    syw,  # y strides
    c1: tl.float64,  # (K1 L)^2
    c2: tl.float64,  # (K2 L)^2
    inv_ns: tl.float64,  # unused here (shared signature with the backward)
    inv_nc: tl.float64,  # unused here
    cs_h0,
    cs_h1,
    cs_w0,
    cs_w1,  # the output box over which cs is averaged
    CT: tl.constexpr,  # compute type
    CLAMP: tl.constexpr,  # clamp the variances at 0 (torchmetrics)
    BH: tl.constexpr,
    BW: tl.constexpr,
    R: tl.constexpr,
    I64: tl.constexpr,
):
    pid_m, pid_t, oh, ow, mask = _tile(Ho, Wo, BH, BW, I64)
    mx, my, exx, eyy, exy = _stats(
        x_ptr + pid_m * sxm, y_ptr + pid_m * sym, win_ptr, oh, ow, mask, sxh, sxw, syh, syw, CT, R
    )
    mxx = mx * mx
    myy = my * my
    mxy = mx * my
    sxx = exx - mxx
    syy = eyy - myy
    sxy = exy - mxy
    if CLAMP:
        sxx = tl.maximum(sxx, 0.0)
        syy = tl.maximum(syy, 0.0)
    cs = (2.0 * sxy + _coef(c2, CT)) / (sxx + syy + _coef(c2, CT))
    ss = (2.0 * mxy + _coef(c1, CT)) / (mxx + myy + _coef(c1, CT)) * cs
    in_cs = mask & (oh >= cs_h0) & (oh < cs_h1) & (ow >= cs_w0) & (ow < cs_w1)
    s_sum = tl.sum(tl.sum(tl.where(mask, ss, 0.0), axis=1), axis=0)
    c_sum = tl.sum(tl.sum(tl.where(in_cs, cs, 0.0), axis=1), axis=0)
    base = part_ptr + (pid_m * T + pid_t) * 2
    tl.store(base, s_sum)
    tl.store(base + 1, c_sum)


@triton.jit(do_not_specialize=_SSIM_COEFS)
def _ssim_bwd_maps_kernel(
    x_ptr,  # [M, Hp, Wp] planes (strided)
    y_ptr,  # [M, Hp, Wp] planes (strided)
    win_ptr,  # [11] window, CT
    gs_ptr,  # [M] upstream gradient of the mean SSIM, CT
    gc_ptr,  # [M] upstream gradient of the mean cs, CT
    p_ptr,  # [5, M, Ho, Wo] contiguous output: d(weighted sums) / d(statistics), CT
    Ho,
    Wo,
    M,  # planes
    sxm,
    sxh,
    sxw,
    sym,
    syh,
    syw,
    c1: tl.float64,
    c2: tl.float64,
    inv_ns: tl.float64,  # 1 / pixels of the SSIM map
    inv_nc: tl.float64,  # 1 / pixels of the cs box
    cs_h0,
    cs_h1,
    cs_w0,
    cs_w1,
    CT: tl.constexpr,
    CLAMP: tl.constexpr,
    BH: tl.constexpr,
    BW: tl.constexpr,
    R: tl.constexpr,
    I64: tl.constexpr,
):
    pid_m, _, oh, ow, mask = _tile(Ho, Wo, BH, BW, I64)
    mx, my, exx, eyy, exy = _stats(
        x_ptr + pid_m * sxm, y_ptr + pid_m * sym, win_ptr, oh, ow, mask, sxh, sxw, syh, syw, CT, R
    )
    mxx = mx * mx
    myy = my * my
    mxy = mx * my
    sxx = exx - mxx
    syy = eyy - myy
    sxy = exy - mxy
    ix = tl.full(mask.shape, 1.0, CT)
    iy = tl.full(mask.shape, 1.0, CT)
    if CLAMP:
        ix = tl.where(sxx >= 0.0, ix, 0.0)
        iy = tl.where(syy >= 0.0, iy, 0.0)
        sxx = tl.maximum(sxx, 0.0)
        syy = tl.maximum(syy, 0.0)
    a1 = 2.0 * mxy + _coef(c1, CT)
    b1 = mxx + myy + _coef(c1, CT)
    a2 = 2.0 * sxy + _coef(c2, CT)
    b2 = sxx + syy + _coef(c2, CT)
    cs = a2 / b2
    ss = a1 / b1 * cs
    us = tl.load(gs_ptr + pid_m) * _coef(inv_ns, CT)
    uc = tl.load(gc_ptr + pid_m) * _coef(inv_nc, CT)
    in_cs = (oh >= cs_h0) & (oh < cs_h1) & (ow >= cs_w0) & (ow < cs_w1)
    uc = tl.where(in_cs, uc, 0.0)
    d = b1 * b2
    g_a1 = us * (a2 / d)
    g_a2 = us * (a1 / d) + uc / b2
    g_b1 = -us * (ss / b1)
    g_b2 = -(us * ss + uc * cs) / b2
    p_mx = 2.0 * (g_a1 * my + g_b1 * mx - g_a2 * my - g_b2 * mx * ix)
    p_my = 2.0 * (g_a1 * mx + g_b1 * my - g_a2 * mx - g_b2 * my * iy)
    p_xx = g_b2 * ix
    p_yy = g_b2 * iy
    p_xy = 2.0 * g_a2
    plane = Ho * Wo
    off = pid_m * plane + oh * Wo + ow
    step = M * plane
    tl.store(p_ptr + off, p_mx, mask=mask)
    tl.store(p_ptr + step + off, p_my, mask=mask)
    tl.store(p_ptr + 2 * step + off, p_xx, mask=mask)
    tl.store(p_ptr + 3 * step + off, p_yy, mask=mask)
    tl.store(p_ptr + 4 * step + off, p_xy, mask=mask)


@triton.jit
def _ssim_bwd_input_kernel(
    x_ptr,  # [M, Hp, Wp] planes (strided)
    y_ptr,  # [M, Hp, Wp] planes (strided)
    win_ptr,  # [11] window, CT
    p_ptr,  # [5, M, Ho, Wo] contiguous derivative maps
    dx_ptr,  # [M, Hp, Wp] contiguous output, CT
    dy_ptr,  # [M, Hp, Wp] contiguous output, CT (unused without NEED_DY)
    Hp,
    Wp,
    Ho,
    Wo,
    M,
    sxm,
    sxh,
    sxw,
    sym,
    syh,
    syw,
    CT: tl.constexpr,
    NEED_DX: tl.constexpr,
    NEED_DY: tl.constexpr,
    BH: tl.constexpr,
    BW: tl.constexpr,
    R: tl.constexpr,
    I64: tl.constexpr,
):
    pid_m, _, ih, iw, mask = _tile(Hp, Wp, BH, BW, I64)
    plane = Ho * Wo
    step = M * plane
    pm = p_ptr + pid_m * plane
    f_mx = tl.zeros(mask.shape, CT)
    f_my = tl.zeros(mask.shape, CT)
    f_xx = tl.zeros(mask.shape, CT)
    f_yy = tl.zeros(mask.shape, CT)
    f_xy = tl.zeros(mask.shape, CT)
    for i in tl.static_range(2 * R + 1):
        gi = tl.load(win_ptr + i)
        oh = ih - i
        for j in tl.static_range(2 * R + 1):
            w = gi * tl.load(win_ptr + j)
            ow = iw - j
            ok = mask & (oh >= 0) & (oh < Ho) & (ow >= 0) & (ow < Wo)
            off = oh * Wo + ow
            f_xy += w * tl.load(pm + 4 * step + off, mask=ok, other=0.0)
            if NEED_DX:
                f_mx += w * tl.load(pm + off, mask=ok, other=0.0)
                f_xx += w * tl.load(pm + 2 * step + off, mask=ok, other=0.0)
            if NEED_DY:
                f_my += w * tl.load(pm + step + off, mask=ok, other=0.0)
                f_yy += w * tl.load(pm + 3 * step + off, mask=ok, other=0.0)
    xv = tl.load(x_ptr + pid_m * sxm + ih * sxh + iw * sxw, mask=mask, other=0.0).to(CT)
    yv = tl.load(y_ptr + pid_m * sym + ih * syh + iw * syw, mask=mask, other=0.0).to(CT)
    out = pid_m * Hp * Wp + ih * Wp + iw
    if NEED_DX:
        tl.store(dx_ptr + out, f_mx + 2.0 * xv * f_xx + yv * f_xy, mask=mask)
    if NEED_DY:
        tl.store(dy_ptr + out, f_my + 2.0 * yv * f_yy + xv * f_xy, mask=mask)


def _max_offset(t: torch.Tensor) -> int:
    return sum((s - 1) * abs(st) for s, st in zip(t.shape, t.stride()) if s > 0)


def _needs_i64(*tensors: torch.Tensor) -> bool:
    return max(max(_max_offset(t), t.numel()) for t in tensors) + BLOCK >= _INT32_LIMIT


def _tile_shape(rows: int, cols: int) -> tuple[int, int]:
    """SSIM tile (rows, columns) per program. The interpreter pays per operation, not per
    element, so under ``TRITON_INTERPRET=1`` a tile covers up to 256 x 256 pixels."""
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        return min(triton.next_power_of_2(rows), 256), min(triton.next_power_of_2(cols), 256)
    return BH, BW


def _ct(t: torch.Tensor):
    return tl.float64 if t.dtype == torch.float64 else tl.float32


class _SsimCs(torch.autograd.Function):
    """Per-plane mean SSIM and cs of ``[M, Hp, Wp]`` planes (valid filtering), float64 ``[M]``."""

    @staticmethod
    def forward(ctx, x, y, c1, c2, clamp, box):
        m, hp, wp = x.shape
        ho, wo = hp - 2 * RADIUS, wp - 2 * RADIUS
        win = _window(x.dtype, x.device)
        bh, bw = _tile_shape(ho, wo)
        tiles = triton.cdiv(ho, bh) * triton.cdiv(wo, bw)
        part = torch.empty((m, tiles, 2), dtype=x.dtype, device=x.device)
        i64 = _needs_i64(x, y)
        _ssim_fwd_kernel[(m, tiles)](
            x, y, win, part, ho, wo, tiles, *x.stride(), *y.stride(), c1, c2, 0.0, 0.0, *box,
            CT=_ct(x), CLAMP=clamp, BH=bh, BW=bw, R=RADIUS, I64=i64, num_warps=_NUM_WARPS,
        )  # fmt: skip
        sums = part.to(torch.float64).sum(dim=1)
        n_s = ho * wo
        n_c = max((box[1] - box[0]) * (box[3] - box[2]), 1)
        ctx.save_for_backward(x, y)
        ctx.consts = (c1, c2, clamp, box, n_s, n_c)
        return sums[:, 0] / n_s, sums[:, 1] / n_c

    @staticmethod
    def backward(ctx, gs, gc):
        x, y = ctx.saved_tensors
        c1, c2, clamp, box, n_s, n_c = ctx.consts
        need_dx, need_dy = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (need_dx or need_dy):
            return None, None, None, None, None, None
        m, hp, wp = x.shape
        ho, wo = hp - 2 * RADIUS, wp - 2 * RADIUS
        win = _window(x.dtype, x.device)
        gs = torch.zeros(m, device=x.device) if gs is None else gs
        gc = torch.zeros(m, device=x.device) if gc is None else gc
        gs = gs.to(x.dtype).contiguous()
        gc = gc.to(x.dtype).contiguous()
        maps = torch.empty((5, m, ho, wo), dtype=x.dtype, device=x.device)
        i64 = _needs_i64(x, y, maps)
        bh, bw = _tile_shape(ho, wo)
        tiles = triton.cdiv(ho, bh) * triton.cdiv(wo, bw)
        _ssim_bwd_maps_kernel[(m, tiles)](
            x, y, win, gs, gc, maps, ho, wo, m, *x.stride(), *y.stride(), c1, c2,
            1.0 / n_s, 1.0 / n_c, *box,
            CT=_ct(x), CLAMP=clamp, BH=bh, BW=bw, R=RADIUS, I64=i64, num_warps=_NUM_WARPS,
        )  # fmt: skip
        dx = torch.empty((m, hp, wp), dtype=x.dtype, device=x.device) if need_dx else None
        dy = torch.empty((m, hp, wp), dtype=x.dtype, device=x.device) if need_dy else None
        bh, bw = _tile_shape(hp, wp)
        tiles_in = triton.cdiv(hp, bh) * triton.cdiv(wp, bw)
        _ssim_bwd_input_kernel[(m, tiles_in)](
            x, y, win, maps, dx if need_dx else maps, dy if need_dy else maps,
            hp, wp, ho, wo, m, *x.stride(), *y.stride(),
            CT=_ct(x), NEED_DX=need_dx, NEED_DY=need_dy, BH=bh, BW=bw, R=RADIUS, I64=i64,
            num_warps=_NUM_WARPS,
        )  # fmt: skip
        return dx, dy, None, None, None, None


def ssim_cs(
    x: torch.Tensor, y: torch.Tensor, data_range: float, variant: str, *, want_cs: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-plane mean SSIM and cs of float ``[N, P, H, W]`` planes, float64 ``[N, P]`` each.

    Differentiable with respect to ``x`` and ``y``. ``variant``: ``"valid"`` or
    ``"torchmetrics"`` (reflect padding by 5, variances clamped at 0, cs over the interior).
    ``want_cs`` is accepted for symmetry with the C++ backend (cs costs nothing extra here).
    """
    del want_cs
    if x.dtype not in (torch.float32, torch.float64) or y.dtype != x.dtype:
        raise TypeError(f"ssim_cs: expected float32/float64 planes, got {x.dtype}, {y.dtype}")
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ssim_cs: expected two [N, P, H, W], got {x.shape} and {y.shape}")
    n, p, h, w = x.shape
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    if variant == "torchmetrics":
        q = TM_PAD
        x = F.pad(x, (q, q, q, q), mode="reflect")
        y = F.pad(y, (q, q, q, q), mode="reflect")
        box = (q, h - q, q, w - q)
        clamp = True
    else:
        box = (0, h - 2 * RADIUS, 0, w - 2 * RADIUS)
        clamp = False
    hp, wp = x.shape[2:]
    s, c = _SsimCs.apply(x.reshape(n * p, hp, wp), y.reshape(n * p, hp, wp), c1, c2, clamp, box)
    return s.view(n, p), c.view(n, p)


# ----------------------------------------------------------------------------------------------
# Squared error
# ----------------------------------------------------------------------------------------------


@triton.jit
def _sq_err_kernel(
    x_ptr,  # [N, P, H, W] (strided)
    y_ptr,  # [N, P, H, W] (strided)
    part_ptr,  # [N, T] partial sums, CT
    L,  # P * H * W elements per image
    HW,  # H * W
    W,
    T,  # programs per image
    sxn,
    sxc,
    sxh,
    sxw,
    syn,
    syc,
    syh,
    syw,
    CT: tl.constexpr,
    BLOCK: tl.constexpr,
    I64: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    t = tl.program_id(1)
    if I64:
        q = t.to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    else:
        q = t * BLOCK + tl.arange(0, BLOCK)
    mask = q < L
    c = q // HW
    r = q - c * HW
    h = r // W
    w = r - h * W
    xv = tl.load(x_ptr + n * sxn + c * sxc + h * sxh + w * sxw, mask=mask, other=0.0).to(CT)
    yv = tl.load(y_ptr + n * syn + c * syc + h * syh + w * syw, mask=mask, other=0.0).to(CT)
    d = xv - yv
    tl.store(part_ptr + n * T + t, tl.sum(d * d, axis=0))


class _Mse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y):
        n, p, h, w = x.shape
        length = p * h * w
        tiles = triton.cdiv(length, BLOCK)
        part = torch.empty((n, tiles), dtype=x.dtype, device=x.device)
        _sq_err_kernel[(n, tiles)](
            x, y, part, length, h * w, w, tiles, *x.stride(), *y.stride(),
            CT=_ct(x), BLOCK=BLOCK, I64=_needs_i64(x, y), num_warps=_NUM_WARPS,
        )  # fmt: skip
        ctx.save_for_backward(x, y)
        return part.to(torch.float64).sum(dim=1) / length

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        length = x[0].numel()
        d = (x - y) * (2.0 * g.to(x.dtype) / length).view(-1, 1, 1, 1)
        return (d if ctx.needs_input_grad[0] else None), (-d if ctx.needs_input_grad[1] else None)


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error of float ``[N, P, H, W]`` planes: float64 ``[N]``.

    Differentiable with respect to both inputs.
    """
    if x.dtype not in (torch.float32, torch.float64) or y.dtype != x.dtype:
        raise TypeError(f"mse: expected float32/float64 planes, got {x.dtype}, {y.dtype}")
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"mse: expected two [N, P, H, W], got {x.shape} and {y.shape}")
    return _Mse.apply(x, y)


# ----------------------------------------------------------------------------------------------
# CIEDE2000
# ----------------------------------------------------------------------------------------------

_PI = math.pi


@triton.jit
def _atan_small(v):
    """atan(v) for |v| <= 0.2: the odd series to v**23 (error below 1e-17)."""
    v2 = v * v
    s = 1.0 / 21.0 - v2 * (1.0 / 23.0)
    s = 1.0 / 19.0 - v2 * s
    s = 1.0 / 17.0 - v2 * s
    s = 1.0 / 15.0 - v2 * s
    s = 1.0 / 13.0 - v2 * s
    s = 1.0 / 11.0 - v2 * s
    s = 1.0 / 9.0 - v2 * s
    s = 1.0 / 7.0 - v2 * s
    s = 1.0 / 5.0 - v2 * s
    s = 1.0 / 3.0 - v2 * s
    s = 1.0 - v2 * s
    return v * s


@triton.jit
def _atan2(y, x):
    """atan2(y, x) in float64, as numpy's (-pi..pi; atan2(0, 0) = 0)."""
    ax = tl.abs(x)
    ay = tl.abs(y)
    hi = tl.maximum(ax, ay)
    lo = tl.minimum(ax, ay)
    t = tl.where(hi > 0.0, lo / tl.where(hi > 0.0, hi, 1.0), 0.0)  # 0..1
    big = t > 0.41421356237309503  # tan(pi / 8): atan(t) = pi/4 + atan((t - 1) / (t + 1))
    u = tl.where(big, (t - 1.0) / (t + 1.0), t)  # |u| <= tan(pi / 8)
    v = u / (1.0 + tl.sqrt(1.0 + u * u))  # atan(u) = 2 atan(v), |v| <= tan(pi / 16)
    r = 2.0 * _atan_small(v)
    r = tl.where(big, r + 0.7853981633974483, r)
    r = tl.where(ay > ax, 1.5707963267948966 - r, r)
    r = tl.where(x < 0.0, 3.141592653589793 - r, r)
    return tl.where(y < 0.0, -r, r)


@triton.jit
def _ciede_kernel(
    a_ptr,  # [N, 3, H, W] L*a*b* (strided)
    b_ptr,  # [N, 3, H, W] L*a*b* (strided)
    out_ptr,  # [N, H, W] output (strided)
    NPIX,  # N * H * W
    HW,
    W,
    san,
    sac,
    sah,
    saw,
    sbn,
    sbc,
    sbh,
    sbw,
    son,
    soh,
    sow,
    BLOCK: tl.constexpr,
    I64: tl.constexpr,
):
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
    pa = a_ptr + n * san + h * sah + w * saw
    pb = b_ptr + n * sbn + h * sbh + w * sbw
    L1 = tl.load(pa, mask=mask, other=0.0).to(tl.float64)
    a1 = tl.load(pa + sac, mask=mask, other=0.0).to(tl.float64)
    b1 = tl.load(pa + 2 * sac, mask=mask, other=0.0).to(tl.float64)
    L2 = tl.load(pb, mask=mask, other=0.0).to(tl.float64)
    a2 = tl.load(pb + sbc, mask=mask, other=0.0).to(tl.float64)
    b2 = tl.load(pb + 2 * sbc, mask=mask, other=0.0).to(tl.float64)
    # Constants stay inline (an assigned Python float would become float32 in the interpreter);
    # 6103515625.0 = 25**7, 6.283185307179586 = 2 pi.
    cbar = 0.5 * (tl.sqrt(a1 * a1 + b1 * b1) + tl.sqrt(a2 * a2 + b2 * b2))
    cb2 = cbar * cbar
    c7 = cb2 * cb2 * cb2 * cbar
    g = 0.5 * (1.0 - tl.sqrt(c7 / (c7 + 6103515625.0)))
    ap1 = a1 * (1.0 + g)
    ap2 = a2 * (1.0 + g)
    c1 = tl.sqrt(ap1 * ap1 + b1 * b1)
    c2 = tl.sqrt(ap2 * ap2 + b2 * b2)
    h1 = _atan2(b1, ap1)
    h2 = _atan2(b2, ap2)
    h1 = tl.where(h1 < 0.0, h1 + 6.283185307179586, h1)
    h2 = tl.where(h2 < 0.0, h2 + 6.283185307179586, h2)

    lbar = 0.5 * (L1 + L2)
    tmp = (lbar - 50.0) * (lbar - 50.0)
    sl = 1.0 + 0.015 * tmp / tl.sqrt(20.0 + tmp)
    l_term = (L2 - L1) / sl

    cbar = 0.5 * (c1 + c2)
    sc = 1.0 + 0.045 * cbar
    c_term = (c2 - c1) / sc

    h_diff = h2 - h1
    h_sum = h1 + h2
    cc = c1 * c2
    zero = cc == 0.0
    dh = tl.where(h_diff > 3.141592653589793, h_diff - 6.283185307179586, h_diff)
    dh = tl.where(h_diff < -3.141592653589793, h_diff + 6.283185307179586, dh)
    dh = tl.where(zero, 0.0, dh)
    dh_term = 2.0 * tl.sqrt(cc) * tl.sin(dh / 2.0)

    wrap = (~zero) & (tl.abs(h_diff) > 3.141592653589793)
    hbar = tl.where(wrap & (h_sum < 6.283185307179586), h_sum + 6.283185307179586, h_sum)
    hbar = tl.where(wrap & (h_sum >= 6.283185307179586), h_sum - 6.283185307179586, hbar)
    hbar = tl.where(zero, hbar * 2.0, hbar) * 0.5

    t = (
        1.0
        - 0.17 * tl.cos(hbar - 0.5235987755982988)
        + 0.24 * tl.cos(2.0 * hbar)
        + 0.32 * tl.cos(3.0 * hbar + 0.10471975511965977)
        - 0.20 * tl.cos(4.0 * hbar - 1.0995574287564276)
    )
    sh = 1.0 + 0.015 * cbar * t
    h_term = dh_term / sh

    cb2 = cbar * cbar
    c7 = cb2 * cb2 * cb2 * cbar
    rc = 2.0 * tl.sqrt(c7 / (c7 + 6103515625.0))
    e = (hbar * 57.29577951308232 - 275.0) / 25.0
    dtheta = 0.5235987755982988 * tl.exp(-(e * e))
    r_term = -tl.sin(2.0 * dtheta) * rc * c_term * h_term

    de2 = l_term * l_term + c_term * c_term + h_term * h_term + r_term
    de = tl.sqrt(tl.where(de2 < 0.0, 0.0, de2))  # NaN stays NaN
    tl.store(out_ptr + n * son + h * soh + w * sow, de.to(out_ptr.dtype.element_ty), mask=mask)


def ciede2000(lab1: torch.Tensor, lab2: torch.Tensor, out: torch.Tensor) -> None:
    """Per-pixel CIEDE2000 of ``[N, 3, H, W]`` L*a*b* tensors (float32 or float64, any strides)
    into the preallocated ``[N, H, W]`` ``out`` of their dtype; computed in float64. Not
    differentiable."""
    if lab1.dtype not in (torch.float32, torch.float64) or lab2.dtype != lab1.dtype:
        raise TypeError(f"ciede2000: expected float32/float64 Lab, got {lab1.dtype}, {lab2.dtype}")
    if lab1.shape != lab2.shape or lab1.dim() != 4 or lab1.shape[1] != 3:
        raise ValueError(f"ciede2000: expected two [N, 3, H, W], got {lab1.shape}, {lab2.shape}")
    n, _, h, w = lab1.shape
    if tuple(out.shape) != (n, h, w) or out.dtype != lab1.dtype:
        raise ValueError(f"ciede2000: expected out [N, H, W] of {lab1.dtype}, got {out.shape}")
    npix = n * h * w
    _ciede_kernel[(triton.cdiv(npix, BLOCK),)](
        lab1, lab2, out, npix, h * w, w, *lab1.stride(), *lab2.stride(), *out.stride(),
        BLOCK=BLOCK, I64=_needs_i64(lab1, lab2, out), num_warps=_NUM_WARPS,
    )  # fmt: skip
