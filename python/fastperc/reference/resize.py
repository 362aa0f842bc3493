"""Reference image resampling (the spec of :func:`fastperc.resize.resize` on every backend).

Every method is separable: an output image is ``Wy @ X @ Wx.T`` per channel, with one weight
matrix per axis. A matrix is stored as a band (:class:`Taps`): output index ``o`` reads the
``K`` input samples ``start[o] .. start[o] + K - 1`` with weights ``weight[o, :]`` (zeros where
a row needs fewer taps), and ``0 <= start[o] <= in_size - K``, so a kernel never reads outside
the image. The tables are computed once per ``(method, in_size, out_size)`` in float64.

Methods
-------
* ``"pil_bicubic"``, ``"pil_bilinear"``, ``"pil_lanczos"``, ``"pil_hamming"``, ``"pil_box"``:
  Pillow's antialiased ``Image.resize`` (``Resample.c``): for an output sample ``o`` the
  centre is ``c = (o + 0.5) * in / out``, the filter is stretched by ``s = max(in / out, 1)``
  (so downscaling low-passes), the taps are ``x = trunc(c - support * s + 0.5) ..
  trunc(c + support * s + 0.5) - 1`` clipped to the image, each weighs
  ``filter((x - c + 0.5) / s)``, and the weights are divided by their sum. Pillow applies the
  horizontal pass first, then the vertical one, accumulating in float64 and storing float32
  in between ("F" images): results agree with this float64 spec to float32 rounding (well
  within 1e-4 on 0..255 data). ``"pil_bicubic"`` is clean-fid's "clean" resize (Keys' cubic,
  ``a = -0.5``, support 2).
* ``"bilinear"``: ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
  antialias=False)``, pytorch-fid's in-network resize: source coordinate
  ``max((o + 0.5) * in / out - 0.5, 0)``, two taps, the upper one clamped to the last sample.
  The coordinates and weights are computed as PyTorch computes them for float32 tensors (the
  scale ``in / out`` rounded to float32, the coordinate by a fused multiply-add rounded to
  float32, ``1 - lambda`` in float32), so the weights equal PyTorch's bit for bit; float64
  images use float64 coordinates, as PyTorch does for float64 tensors.
* ``"legacy_tensorflow"``: the resize inside clean-fid's ``legacy_tensorflow`` Inception (the
  TorchScript network of ``inception-2015-12-05.pt``), which emulates TF1's
  ``tf.image.resize_bilinear(align_corners=False)`` with ``affine_grid`` / ``grid_sample``:
  source coordinate ``o * in / out`` (no half-pixel offset), two taps, clamped to the border.
  The per-axis weights are the float32 ones that network computes (taken from PyTorch's own
  ``affine_grid`` / ``grid_sample``, see :func:`_tf_legacy_taps`); the network's 2-D weight
  products are rounded to float32 where this spec multiplies in float64 (~3e-5 on 0..255).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

#: Pillow's filters: name -> support (in input samples, before stretching).
PIL_SUPPORT = {"box": 0.5, "bilinear": 1.0, "hamming": 1.0, "bicubic": 2.0, "lanczos": 3.0}

METHODS = (
    "pil_bicubic",
    "pil_bilinear",
    "pil_lanczos",
    "pil_hamming",
    "pil_box",
    "bilinear",
    "legacy_tensorflow",
)

#: Whether each method clips its result to the value range by default: clean-fid's PIL resizers
#: clip to 0..255 (``np.asarray(img).clip(0, 255)``); pytorch-fid and the TorchScript
#: Inception do not (their bilinear interpolation never leaves the input's range anyway).
DEFAULT_CLIP = {m: m.startswith("pil_") for m in METHODS}


# ----------------------------------------------------------------------------------------------
# Weight tables
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # hashed by identity (tables are cached)
class Taps:
    """One axis of a separable resampling: ``out[o] = sum_k weight[o, k] * in[start[o] + k]``."""

    start: np.ndarray  # int64 [out_size], 0 <= start <= in_size - K
    weight: np.ndarray  # float64 [out_size, K]
    in_size: int

    @property
    def out_size(self) -> int:
        return int(self.start.shape[0])

    @property
    def k(self) -> int:
        return int(self.weight.shape[1])

    def dense(self) -> np.ndarray:
        """The ``[out_size, in_size]`` weight matrix."""
        m = np.zeros((self.out_size, self.in_size))
        rows = np.repeat(np.arange(self.out_size), self.k)
        cols = (self.start[:, None] + np.arange(self.k)).reshape(-1)
        np.add.at(m, (rows, cols), self.weight.reshape(-1))
        return m


def _pil_filter(name: str, x: np.ndarray) -> np.ndarray:
    """Pillow's filter functions (``Resample.c``), evaluated in float64 as Pillow does."""
    if name == "box":
        return ((x > -0.5) & (x <= 0.5)).astype(np.float64)
    ax = np.abs(x)
    if name == "bilinear":
        return np.where(ax < 1.0, 1.0 - ax, 0.0)
    if name == "bicubic":
        a = -0.5
        near = ((a + 2.0) * ax - (a + 3.0)) * ax * ax + 1
        far = (((ax - 5) * ax + 8) * ax - 4) * a
        return np.where(ax < 1.0, near, np.where(ax < 2.0, far, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        px = ax * np.pi
        sinc = np.where(ax == 0.0, 1.0, np.sin(px) / px)
        if name == "hamming":  # Pillow's constants are the float literals 0.54f and 0.46f
            c0, c1 = float(np.float32(0.54)), float(np.float32(0.46))
            w = sinc * (c0 + c1 * np.cos(px))
            return np.where(ax == 0.0, 1.0, np.where(ax >= 1.0, 0.0, w))
        if name == "lanczos":
            px3 = (ax / 3) * np.pi
            sinc3 = np.where(ax == 0.0, 1.0, np.sin(px3) / px3)
            return np.where((x >= -3.0) & (x < 3.0), sinc * sinc3, 0.0)
    raise ValueError(f"unknown Pillow filter {name!r}")


def _band(lo: np.ndarray, w: np.ndarray, in_size: int) -> Taps:
    """Taps from rows whose first tap is ``lo`` (weights ``w[o, :]``, zero past each row's last
    tap), with the starts moved left where needed so that every row fits in the image."""
    out_size, k = w.shape
    k = max(1, min(k, in_size))
    nz = w != 0
    last = np.where(nz.any(1), w.shape[1] - 1 - np.argmax(nz[:, ::-1], axis=1), 0)
    if np.any(last >= k):  # never happens for the tables built here
        raise AssertionError("weight rows wider than the image")
    start = np.minimum(lo, in_size - k).astype(np.int64)
    offset = lo - start
    band = np.zeros((out_size, k))
    cols = offset[:, None] + np.arange(w.shape[1])
    keep = nz & (cols < k)
    rows = np.nonzero(keep)[0]
    band[rows, cols[keep]] = w[keep]
    return Taps(start, band, int(in_size))


def _pil_taps(name: str, in_size: int, out_size: int) -> Taps:
    support = PIL_SUPPORT[name]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = support * filterscale
    center = (np.arange(out_size) + 0.5) * scale
    xmin = np.maximum(np.trunc(center - support + 0.5), 0).astype(np.int64)
    xmax = np.minimum(np.trunc(center + support + 0.5), in_size).astype(np.int64) - xmin
    k = int(xmax.max())
    x = np.arange(k)
    arg = ((x[None, :] + xmin[:, None]).astype(np.float64) - center[:, None] + 0.5) * (
        1.0 / filterscale
    )
    w = np.where(x[None, :] < xmax[:, None], _pil_filter(name, arg), 0.0)
    ww = np.zeros(out_size)
    for j in range(k):  # summed in Pillow's order
        ww = ww + w[:, j]
    w = np.where(ww[:, None] != 0.0, w / np.where(ww == 0.0, 1.0, ww)[:, None], w)
    return _band(xmin, w, in_size)


def _two_tap(i0: np.ndarray, l0: np.ndarray, l1: np.ndarray, in_size: int) -> Taps:
    """Linear interpolation between ``i0`` and ``min(i0 + 1, in_size - 1)``."""
    i1 = np.minimum(i0 + 1, in_size - 1)
    out_size = i0.shape[0]
    if in_size == 1:
        return Taps(np.zeros(out_size, np.int64), (l0 + l1)[:, None], 1)
    w = np.zeros((out_size, 3))
    w[:, 0] = l0
    w[:, 1] += np.where(i1 == i0, 0.0, l1)
    w[:, 0] += np.where(i1 == i0, l1, 0.0)
    return _band(i0.astype(np.int64), w[:, :2], in_size)


def _torch_bilinear_taps(in_size: int, out_size: int, float32_coords: bool) -> Taps:
    o = np.arange(out_size)
    if in_size == out_size:  # PyTorch copies
        return Taps(o.astype(np.int64), np.ones((out_size, 1)), in_size)
    if float32_coords:
        f32 = np.float32
        scale = f32(in_size) / f32(out_size)
        d = o.astype(f32) + f32(0.5)
        # a fused multiply-add rounded once: the float64 product of two float32 is exact
        src = (np.float64(scale) * d.astype(np.float64) - 0.5).astype(f32)
        src = np.maximum(src, f32(0))
        i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
        l1 = np.clip(src - i0.astype(f32), f32(0), f32(1)).astype(f32)
        l0 = (f32(1) - l1).astype(f32)
        return _two_tap(i0, l0.astype(np.float64), l1.astype(np.float64), in_size)
    src = np.maximum((in_size / out_size) * (o + 0.5) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    l1 = np.clip(src - i0, 0.0, 1.0)
    return _two_tap(i0, 1.0 - l1, l1, in_size)


def _tf_legacy_taps(in_size: int, out_size: int) -> Taps:
    """The weights of the resize inside clean-fid's ``legacy_tensorflow`` Inception network.

    The network (the TorchScript ``inception-2015-12-05.pt``) runs, in float32::

        theta = torch.eye(2, 3)
        theta[0, 2] += theta[0, 0] / width - theta[0, 0] / 299  # likewise [1, 2] with height
        grid = F.affine_grid(theta[None], [n, c, 299, 299], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    i.e. TF1's ``resize_bilinear``: source coordinate ``o * in / out``, clamped to the border.
    The coordinates it rounds to float32 move results by up to ~1e-2 on 0..255 photos against
    exact coordinates, so the weights are taken from that same computation: the steps above
    applied to one-hot rows (one axis at a time, the other of size 1, which the network maps
    exactly to itself) give the network's float32 weights along each axis.
    """
    import torch.nn.functional as F

    theta = torch.eye(2, 3)
    theta[0, 2] += theta[0, 0] / in_size - theta[0, 0] / out_size
    grid = F.affine_grid(theta[None], [1, 1, 1, out_size], align_corners=False)
    rows, cols, vals = [], [], []
    chunk = max(1, min(in_size, (1 << 22) // in_size))
    for c0 in range(0, in_size, chunk):
        c1 = min(in_size, c0 + chunk)
        onehot = torch.zeros(1, c1 - c0, 1, in_size)
        onehot[0, torch.arange(c1 - c0), 0, torch.arange(c0, c1)] = 1.0
        w = F.grid_sample(onehot, grid, mode="bilinear", padding_mode="border", align_corners=False)
        i, o = torch.nonzero(w[0, :, 0, :], as_tuple=True)
        rows.append(o.numpy())
        cols.append(i.numpy() + c0)
        vals.append(w[0, i, 0, o].double().numpy())
    o, i, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    lo = np.full(out_size, in_size, np.int64)
    np.minimum.at(lo, o, i)
    lo = np.where(lo == in_size, 0, lo)
    k = max(1, int((i - lo[o]).max(initial=0)) + 1)
    band = np.zeros((out_size, k))
    np.add.at(band, (o, i - lo[o]), v)
    return _band(lo, band, in_size)


@functools.lru_cache(maxsize=256)
def taps(method: str, in_size: int, out_size: int, float32_coords: bool = True) -> Taps:
    """The weight table of ``method`` along one axis (cached; treat the arrays as read-only).

    ``float32_coords`` applies to ``"bilinear"`` only: PyTorch's float32 coordinates (the
    default) or float64 ones (float64 images).
    """
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be >= 1, got {in_size} -> {out_size}")
    if method.startswith("pil_"):
        t = _pil_taps(method[4:], in_size, out_size)
    elif method == "bilinear":
        t = _torch_bilinear_taps(in_size, out_size, float32_coords)
    elif method == "legacy_tensorflow":
        t = _tf_legacy_taps(in_size, out_size)
    else:
        raise ValueError(f"Expected `method` to be one of {METHODS}, got {method!r}")
    t.start.setflags(write=False)
    t.weight.setflags(write=False)
    return t


@functools.lru_cache(maxsize=256)
def transposed(t: Taps) -> Taps:
    """The band of the transposed matrix (``in_size`` rows reading ``out_size`` samples): the
    adjoint resampling, i.e. the backward pass of ``t``."""
    o = np.repeat(np.arange(t.out_size), t.k)
    i = (t.start[:, None] + np.arange(t.k)).reshape(-1)
    w = t.weight.reshape(-1)
    keep = w != 0
    o, i, w = o[keep], i[keep], w[keep]
    lo = np.full(t.in_size, t.out_size, np.int64)
    hi = np.full(t.in_size, -1, np.int64)
    np.minimum.at(lo, i, o)
    np.maximum.at(hi, i, o)
    lo = np.where(hi < 0, 0, lo)
    k = max(1, int((hi - lo + 1).max()))
    rows = np.zeros((t.in_size, k))
    np.add.at(rows, (i, o - lo[i]), w)
    out = _band(lo, rows, t.out_size)
    out.start.setflags(write=False)
    out.weight.setflags(write=False)
    return out


# ----------------------------------------------------------------------------------------------
# Resampling
# ----------------------------------------------------------------------------------------------


def resample_axis(x: torch.Tensor, t: Taps, dim: int) -> torch.Tensor:
    """``out[..., o, ...] = sum_k t.weight[o, k] * x[..., t.start[o] + k, ...]`` along ``dim``,
    the taps added in order (as Pillow); a non-finite sample reaches only the outputs whose taps
    read it."""
    shape = [1] * x.dim()
    shape[dim] = t.out_size
    out = None
    for k in range(t.k):
        idx = torch.from_numpy(t.start + k).to(x.device)
        wk = torch.from_numpy(t.weight[:, k].copy()).to(x.device, x.dtype).view(shape)
        term = x.index_select(dim, idx) * wk
        out = term if out is None else out + term
    assert out is not None
    return out


def resample(x: torch.Tensor, ty: Taps, tx: Taps) -> torch.Tensor:
    """``Wy @ x @ Wx.T`` over the last two dims of ``x`` ``[N, C, H, W]``, in x's dtype: the
    horizontal pass, then the vertical one (Pillow's order)."""
    return resample_axis(resample_axis(x, tx, x.dim() - 1), ty, x.dim() - 2)


def resize(
    x: torch.Tensor,
    size: tuple[int, int],
    method: str = "pil_bicubic",
    clip: bool = True,
    high: float = 255.0,
) -> torch.Tensor:
    """Resize ``x`` ``[N, C, H, W]`` (any real dtype) to ``size = (h, w)``, in float64.

    With ``clip`` the result is clipped to ``0..high`` (NaN stays NaN). Differentiable with
    respect to ``x`` (the gradient is the transposed resampling, zero where clipped).
    """
    h, w = x.shape[-2:]
    f32 = x.dtype != torch.float64
    ty = taps(method, int(h), int(size[0]), f32)
    tx = taps(method, int(w), int(size[1]), f32)
    out = resample(x.to(torch.float64), ty, tx)
    if clip:
        out = out.clamp(0.0, float(high))
    return out
