"""Type stubs for ``fastperc._C``, the compiled CPU kernels (sources in ``csrc/``).

Internal API: the public ops in :mod:`fastperc.color` call these through
:mod:`fastperc._backend_call`, which turns torch tensors into zero-copy numpy views
(``[N, C, H, W]``, any strides; bfloat16 arrives as int16 bits with the dtype code ``"bf16"``).

Every function checks its arguments (raising ``ValueError``/``TypeError`` that name the
argument), releases the GIL, writes ``dst`` in place and returns ``None``. ``dst`` must be
writeable, free of self-overlap and must not overlap ``src``; arrays must be aligned to their
itemsize and in native byte order.
"""

from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

import numpy as np

DTypeCode: TypeAlias = Literal["u8", "f16", "bf16", "f32", "f64"]
PointOp: TypeAlias = Literal[
    "srgb_to_linear", "linear_to_srgb", "rgb_to_xyz", "xyz_to_rgb", "rgb_to_lab", "lab_to_rgb"
]

#: Whether the extension was built with OpenMP (multi-threaded kernels).
HAVE_OPENMP: bool

def affine(
    src: np.ndarray,
    dst: np.ndarray,
    matrix: Sequence[float],
    shift: Sequence[float],
    offset: Sequence[float],
    fixed_point: bool,
    dtype: DTypeCode,
) -> None:
    """``dst[:, i] = sum_j matrix[i][j] * (src[:, j] - shift[j]) + offset[i]``.

    Args:
        src: ``[N, 3, H, W]``.
        dst: ``[N, k, H, W]``, k = 1 or 3, same dtype as ``src``.
        matrix: ``k * 3`` numbers, row-major.
        shift: 3 numbers, subtracted from the input channels.
        offset: ``k`` numbers, added to the output channels.
        fixed_point: required for (and only allowed with) ``"u8"``: integer coefficients at
            2**16 scale, int32 accumulation, arithmetic ``>> 16`` (floor), clamp to 0..255;
            bit-exact with ``reference.color.apply_affine``. Floats use float32 arithmetic
            (float64 for ``"f64"``) and are not clamped.
        dtype: dtype code of both arrays.
    """

def pointwise(
    op: PointOp,
    src: np.ndarray,
    dst: np.ndarray,
    src_dtype: DTypeCode,
    dst_dtype: DTypeCode,
    matrix9: Sequence[float],
    white3: Sequence[float],
    in_scale: float,
    out_scale: float,
    encoded: bool,
    clip: bool,
) -> None:
    """``dst = out_scale * op(in_scale * src)``, the formulas of ``reference.color``.

    ``srgb_to_linear``/``linear_to_srgb`` act per channel (any channel count); the XYZ and Lab
    ops on 3 channels. ``src_dtype`` ``"u8"`` needs ``dst_dtype`` ``"f32"``; float dtypes keep
    theirs. Computed in float64 for every dtype.

    Args:
        matrix9: row-major 3x3 (``XYZ_FROM_RGB`` for ``rgb_to_*``, ``RGB_FROM_XYZ`` for
            ``*_to_rgb``); unused by the curves.
        white3: reference white (Lab ops).
        encoded: the RGB side is sRGB-encoded (``rgb_to_xyz``/``xyz_to_rgb``; must be True for
            the Lab ops; ignored by the curves).
        clip: clamp RGB to 0..1 before ``out_scale`` (``xyz_to_rgb``/``lab_to_rgb`` only).
    """

def chroma_downsample(src: np.ndarray, dst: np.ndarray, fh: int, fv: int, dtype: DTypeCode) -> None:
    """libjpeg's chroma downsampling: ``[N, K, H, W]`` -> ``[N, K, ceil(H/fv), ceil(W/fh)]``.

    ``(fh, fv)`` in ``(2, 2)`` (4:2:0), ``(2, 1)`` (4:2:2), ``(1, 1)`` (4:4:4, a copy). The last
    row/column is replicated for odd sizes. ``"u8"``: ``h2v2_downsample`` /
    ``h2v1_downsample`` with their alternating rounding bias; floats: the mean.
    """

def chroma_upsample(
    src: np.ndarray, dst: np.ndarray, fh: int, fv: int, fancy: bool, dtype: DTypeCode
) -> None:
    """libjpeg's chroma upsampling: ``[N, K, ceil(H/fv), ceil(W/fh)]`` -> ``[N, K, H, W]``.

    ``fancy``: the triangle filter of ``h2v1_fancy_upsample`` / ``h2v2_fancy_upsample`` (with
    libjpeg's rounding for ``"u8"``, exact weights for floats), falling back to replication
    when the chroma is at most 2 samples wide; otherwise replication.
    """

# ---- JPEG marker parser / coefficient decoder (csrc/jpeg_io.cpp; wrapped by jpeg_io.py) ----

#: Default pixel limit of the JPEG parser (width * height).
JPEG_DEFAULT_MAX_PIXELS: int

def jpeg_inspect(data: bytes, max_pixels: int, partial: bool = False) -> dict[str, Any] | None:
    """Parse JPEG markers up to the first scan; a dict of header fields (see ``jpeg_io.py``).

    With ``partial=True`` returns None when the data ends too early.
    """

def jpeg_read_coefficients(data: bytes, max_pixels: int) -> dict[str, Any]:
    """Decode the quantized DCT coefficients of a Huffman-coded sequential or progressive JPEG.

    The header fields plus per-component int16 arrays ``[blocks_v, blocks_h, 8, 8]``.
    """

# ---- Fused JPEG round trip (csrc/jpeg_sim.cpp; wrapped by jpeg.py) ----

def jpeg_simulate(
    src: np.ndarray,
    dst: np.ndarray,
    dtype: DTypeCode,
    mode: str,
    rounding: str,
    subsampling: str,
    tables: np.ndarray,
    value_range: float,
) -> None:
    """JPEG round trip of ``[N, C, H, W]`` images (C = 1 or 3) into ``dst`` (same shape/dtype).

    ``mode``: ``"exact"`` (libjpeg-turbo's integer pipeline, bit for bit), ``"float"`` or
    ``"differentiable"`` (forward values of the rounding approximation ``rounding``).
    ``tables``: float64 ``[2, 8, 8]`` (luma, chroma) quantization tables.
    """

# ---- Full-reference metrics (csrc/metrics.cpp; wrapped by metrics.py) ----

def ssim_sums(
    a: np.ndarray,
    b: np.ndarray,
    out: np.ndarray,
    dtype: DTypeCode,
    mix: Sequence[float],
    win: Sequence[float],
    c1: float,
    c2: float,
    reflect: bool,
    want_cs: bool,
) -> None:
    """Mean SSIM and contrast-structure of every compared plane of ``[N, C, H, W]`` ``a`` and
    ``b`` into float64 ``out`` ``[N, P, 2]`` (P = C, or 1 with a luma ``mix`` ``[wR, wG, wB,
    offset]``); ``win``: the symmetric 11-tap window; ``reflect``: torchmetrics' variant."""

def sq_error_sums(
    a: np.ndarray, b: np.ndarray, out: np.ndarray, dtype: DTypeCode, mix: Sequence[float]
) -> None:
    """Per-image sum of squared differences of the compared planes into float64 ``out [N]``."""

def avg_pool2(
    src: np.ndarray, dst: np.ndarray, dtype: DTypeCode, mix: Sequence[float], pad_odd: bool
) -> None:
    """2x2 average pooling of the compared planes into ``dst`` (float64 for f64, else float32);
    ``pad_odd``: pytorch_msssim's zero padding of odd sizes, else floor."""

def ciede2000(a: np.ndarray, b: np.ndarray, dst: np.ndarray, dtype: DTypeCode) -> None:
    """Per-pixel CIEDE2000 of ``[N, 3, H, W]`` L*a*b* into ``dst [N, 1, H, W]`` (f32 or f64)."""

def get_num_threads() -> int:
    """Threads the extension's OpenMP regions use (1 without OpenMP)."""

def set_num_threads(n: int) -> None:
    """Set the threads of the extension's OpenMP regions for calls made from this thread."""

def resize(
    src: np.ndarray,
    dst: np.ndarray,
    y_start: np.ndarray,
    y_weight: np.ndarray,
    x_start: np.ndarray,
    x_weight: np.ndarray,
    clip: bool,
    lo: float,
    hi: float,
    dtype: DTypeCode,
) -> None:
    """Separable resampling with precomputed tables (``fastperc.reference.resize.Taps``):
    ``dst[n, c, y, x] = sum_ij y_weight[y, i] * x_weight[x, j] * src[n, c, y_start[y] + i,
    x_start[x] + j]``, clamped to ``[lo, hi]`` when ``clip`` (NaN kept).

    Args:
        src: ``[N, C, H, W]`` of dtype ``dtype``, any strides.
        dst: ``[N, C, h, w]``, float32 (float64 for ``"f64"``), any non-overlapping strides.
        y_start: int64 ``[h]``, C-contiguous, each in ``0..H - ky``.
        y_weight: float64 ``[h, ky]``, C-contiguous, finite.
        x_start: int64 ``[w]``, each in ``0..W - kx``.
        x_weight: float64 ``[w, kx]``.
        clip: clamp the result to ``[lo, hi]``.
        lo, hi: finite clip bounds, ``lo <= hi``.
        dtype: dtype code of ``src``.

    Sums are float64 in the taps' order; the result is rounded once to the output dtype.
    """

# ---- Max pooling (csrc/pool.cpp; wrapped by models/_base.py) ----

def max_pool(
    src: np.ndarray, dst: np.ndarray, k: int, stride: int, pad: int, relu: bool
) -> None: ...

# ---- Centring of feature blocks (csrc/moments.cpp; used by stats.FeatureStats) ----

def center_columns(
    src: np.ndarray, dst: np.ndarray, shift: np.ndarray, dtype: DTypeCode
) -> np.ndarray:
    """``dst = src - shift`` for ``[1, 1, N, D]`` float32/float64 rows with a contiguous last
    dimension; returns the float64 column sums of ``dst`` (fixed chunks of rows, so the same
    bits whatever the thread count)."""
