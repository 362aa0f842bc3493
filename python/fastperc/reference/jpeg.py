"""Reference JPEG in the DCT domain (the spec for every backend).

Three round trips of an image through JPEG compression, without entropy coding:

* **exact**: libjpeg-turbo's 8-bit integer pipeline with the settings Pillow uses for
  ``Image.save(..., "JPEG")``: fixed-point RGB -> YCbCr (``jccolor.c``), chroma downsampling with
  its ordered-dither bias (``jcsample.c``), the ISLOW forward DCT (``jfdctint.c``),
  quantization with rounding half away from zero (``jcdctmgr.c``), dequantization and the ISLOW
  inverse DCT with its range limiting (``jidctint.c``), fancy upsampling (``jdsample.c``) and
  fixed-point YCbCr -> RGB (``jdcolor.c``). The decoded image equals Pillow's bit for bit.
* **float**: the exact pipeline with floating-point colour conversion (exact JFIF coefficients)
  and DCTs (matrix products), rounded where libjpeg rounds so that it stays within one level of
  libjpeg on nearly every pixel (:func:`simulate_float`).
* **differentiable**: a smooth version: float colour, box-filter downsampling, the orthonormal
  DCT, a rounding whose gradient is useful (the straight-through estimator or the cubic
  approximation of Shin & Song, 2017), the triangle upsampling filter, no intermediate rounding
  (:func:`simulate_differentiable`).

Conventions
-----------
* Planes are ``[..., H, W]``; blocks are ``[..., H / 8, W / 8, 8, 8]`` where the last two
  dimensions are (vertical, horizontal) frequency for coefficients and (row, column) for samples.
  Quantization tables are ``[8, 8]`` in natural (row-major) order, as they act on that layout.
* The integer DCTs keep libjpeg's scaling: :func:`fdct_islow` returns coefficients 8 times the
  orthonormal ones, which is why libjpeg divides them by ``8 * q``; :func:`idct_islow` takes
  dequantized coefficients (``coef * q``, orthonormal scale) and returns centred samples.
* Padding to whole blocks follows libjpeg: a full-size component is edge-replicated to
  ``width_in_blocks * 8`` columns and ``height_in_blocks * 8`` rows. A subsampled component is
  made from full-resolution rows edge-replicated to ``2 * width_in_blocks * 8`` columns (and to an
  even number of rows for 4:2:0, the prep controller's bottom padding) *before* downsampling, so
  padded chroma columns carry the dither bias of their column; afterwards the last downsampled
  row is replicated down to a whole block row (``expand_bottom_edge`` in ``jcprepct.c``). Blocks
  beyond ``height_in_blocks``/``width_in_blocks`` (libjpeg's dummy blocks filling a partial MCU)
  never reach the decoded image and are not modelled.
* On decode, the chroma planes are cropped to ``ceil(H / v) x ceil(W / h)`` before upsampling, as
  the decoder's main controller and upsampler do (:func:`fastperc.reference.color.chroma_upsample`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from . import color as cref

# ----------------------------------------------------------------------------------------------
# Quantization tables (ITU-T T.81 Annex K, jcparam.c) and libjpeg's quality scaling
# ----------------------------------------------------------------------------------------------

#: Annex K.1 luminance table, natural order.
LUMA_BASE = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.int64,
)

#: Annex K.1 chrominance table, natural order.
CHROMA_BASE = np.full((8, 8), 99, dtype=np.int64)
CHROMA_BASE[:4, :4] = [
    [17, 18, 24, 47],
    [18, 21, 26, 66],
    [24, 26, 56, 99],
    [47, 66, 99, 99],
]

#: The largest table entry libjpeg stores (``jpeg_add_quant_table``); baseline files use 255.
QUANT_MAX = 32767
BASELINE_MAX = 255


def quality_scaling(quality: int) -> int:
    """libjpeg's ``jpeg_quality_scaling``: quality (clamped to 1..100) -> percentage scale.

    ``5000 / q`` (integer division) below 50, ``200 - 2 q`` from 50 on; 100 gives 0, which
    :func:`scaled_table` turns into an all-ones table.
    """
    q = min(max(int(quality), 1), 100)
    return 5000 // q if q < 50 else 200 - 2 * q


def scaled_table(base: np.ndarray, scale: int, force_baseline: bool = True) -> np.ndarray:
    """libjpeg's ``jpeg_add_quant_table``: ``(base * scale + 50) / 100`` in integer arithmetic,
    limited to 1..32767, and to 1..255 when ``force_baseline``."""
    t = (np.asarray(base, dtype=np.int64) * int(scale) + 50) // 100
    t = np.clip(t, 1, BASELINE_MAX if force_baseline else QUANT_MAX)
    return t.astype(np.int64)


def quant_table(quality: int, component: str = "luma", force_baseline: bool = True) -> np.ndarray:
    """The table libjpeg's ``jpeg_set_quality(quality, force_baseline)`` installs."""
    base = LUMA_BASE if component == "luma" else CHROMA_BASE
    return scaled_table(base, quality_scaling(quality), force_baseline)


# ----------------------------------------------------------------------------------------------
# Zigzag order (jutils.c jpeg_natural_order)
# ----------------------------------------------------------------------------------------------


def _zigzag_order() -> np.ndarray:
    """Natural (row-major) index of the k-th coefficient in zigzag order: walk the
    anti-diagonals, alternating direction (even diagonals run up and to the right)."""
    order = []
    for s in range(15):
        cells = [(r, s - r) for r in range(8) if 0 <= s - r < 8]  # r increasing = down-left
        if s % 2 == 0:
            cells.reverse()  # up-right: row decreasing
        order.extend(r * 8 + c for r, c in cells)
    return np.array(order, dtype=np.int64)


#: ``ZIGZAG[k]`` is the natural index of the k-th coefficient in zigzag order.
ZIGZAG = _zigzag_order()
#: ``UNZIGZAG[n]`` is the zigzag position of natural index n.
UNZIGZAG = np.argsort(ZIGZAG)


# ----------------------------------------------------------------------------------------------
# Blocks
# ----------------------------------------------------------------------------------------------


def blocks_for(n: int) -> int:
    """Number of 8-sample blocks covering ``n`` samples."""
    return -(-n // 8)


def pad_replicate(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Extend ``[..., H0, W0]`` to ``[..., h, w]`` (h >= H0, w >= W0) by repeating the last row
    and column, as libjpeg's ``expand_right_edge`` / ``expand_bottom_edge``."""
    h0, w0 = x.shape[-2], x.shape[-1]
    if h != h0:
        x = x.index_select(-2, torch.arange(h, device=x.device).clamp_max(h0 - 1))
    if w != w0:
        x = x.index_select(-1, torch.arange(w, device=x.device).clamp_max(w0 - 1))
    return x


def to_blocks(x: torch.Tensor) -> torch.Tensor:
    """``[..., 8 hb, 8 wb]`` -> ``[..., hb, wb, 8, 8]``."""
    *lead, h, w = x.shape
    return x.reshape(*lead, h // 8, 8, w // 8, 8).transpose(-3, -2)


def from_blocks(b: torch.Tensor) -> torch.Tensor:
    """``[..., hb, wb, 8, 8]`` -> ``[..., 8 hb, 8 wb]``."""
    *lead, hb, wb, _, _ = b.shape
    return b.transpose(-3, -2).reshape(*lead, hb * 8, wb * 8)


# ----------------------------------------------------------------------------------------------
# ISLOW integer DCT (jfdctint.c, jidctint.c): Loeffler-Ligtenberg-Moschytz with 13-bit constants
# ----------------------------------------------------------------------------------------------

CONST_BITS = 13
PASS1_BITS = 2


def _c13(x: float) -> int:
    """A constant in 13-bit fixed point, rounded (the values jfdctint.c spells out)."""
    return int(x * (1 << CONST_BITS) + 0.5)


F_0_298631336 = _c13(0.298631336)  # 2446
F_0_390180644 = _c13(0.390180644)  # 3196
F_0_541196100 = _c13(0.541196100)  # 4433
F_0_765366865 = _c13(0.765366865)  # 6270
F_0_899976223 = _c13(0.899976223)  # 7373
F_1_175875602 = _c13(1.175875602)  # 9633
F_1_501321110 = _c13(1.501321110)  # 12299
F_1_847759065 = _c13(1.847759065)  # 15137
F_1_961570560 = _c13(1.961570560)  # 16069
F_2_053119869 = _c13(2.053119869)  # 16819
F_2_562915447 = _c13(2.562915447)  # 20995
F_3_072711026 = _c13(3.072711026)  # 25172


def descale(x: torch.Tensor, n: int) -> torch.Tensor:
    """libjpeg's ``DESCALE``: add half, arithmetic shift right (rounds half up)."""
    return (x + (1 << (n - 1))) >> n


def _odd_rotations(
    t4: torch.Tensor, t5: torch.Tensor, t6: torch.Tensor, t7: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The odd part shared by the forward and inverse 1-D transforms (LL&M figure 8).

    Takes the four odd inputs in the order the forward transform names them (tmp4..tmp7; the
    inverse passes y7, y5, y3, y1) and returns the four unscaled odd outputs in the same order.
    """
    z1 = t4 + t7
    z2 = t5 + t6
    z3 = t4 + t6
    z4 = t5 + t7
    z5 = (z3 + z4) * F_1_175875602
    z1 = z1 * -F_0_899976223
    z2 = z2 * -F_2_562915447
    z3 = z3 * -F_1_961570560 + z5
    z4 = z4 * -F_0_390180644 + z5
    return (
        t4 * F_0_298631336 + z1 + z3,
        t5 * F_2_053119869 + z2 + z4,
        t6 * F_3_072711026 + z2 + z3,
        t7 * F_1_501321110 + z1 + z4,
    )


def _fdct_1d(d: torch.Tensor, first_pass: bool) -> torch.Tensor:
    """One pass of jfdctint.c along dimension 0 of an integer tensor ``[8, ...]``."""
    x = list(d.unbind(0))
    t0, t7 = x[0] + x[7], x[0] - x[7]
    t1, t6 = x[1] + x[6], x[1] - x[6]
    t2, t5 = x[2] + x[5], x[2] - x[5]
    t3, t4 = x[3] + x[4], x[3] - x[4]
    t10, t13 = t0 + t3, t0 - t3
    t11, t12 = t1 + t2, t1 - t2
    if first_pass:  # rows: keep PASS1_BITS extra bits
        o0 = (t10 + t11) << PASS1_BITS
        o4 = (t10 - t11) << PASS1_BITS
        shift = CONST_BITS - PASS1_BITS
    else:  # columns: drop them, leaving the overall factor of 8
        o0 = descale(t10 + t11, PASS1_BITS)
        o4 = descale(t10 - t11, PASS1_BITS)
        shift = CONST_BITS + PASS1_BITS
    z1 = (t12 + t13) * F_0_541196100
    o2 = descale(z1 + t13 * F_0_765366865, shift)
    o6 = descale(z1 - t12 * F_1_847759065, shift)
    r4, r5, r6, r7 = _odd_rotations(t4, t5, t6, t7)
    o7, o5, o3, o1 = (descale(v, shift) for v in (r4, r5, r6, r7))
    return torch.stack([o0, o1, o2, o3, o4, o5, o6, o7], dim=0)


def _transform_layout(blocks: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``[..., 8, 8]`` -> contiguous ``[8 (row), 8 (column), M]`` of ``dtype``, so that each of
    the eight inputs of a 1-D pass is a contiguous run of M values."""
    t = blocks.reshape(-1, 8, 8).permute(1, 2, 0)
    return t.to(dtype, memory_format=torch.contiguous_format)


def _block_layout(t: torch.Tensor, lead: torch.Size) -> torch.Tensor:
    """Inverse of :func:`_transform_layout`."""
    return t.permute(2, 0, 1).reshape(*lead, 8, 8)


def fdct_islow(blocks: torch.Tensor) -> torch.Tensor:
    """libjpeg's ``jpeg_fdct_islow`` on centred samples ``[..., 8, 8]`` (values -128..127).

    Rows first, then columns. Returns int32 coefficients ``[..., v, u]`` scaled up by 8 relative
    to the orthonormal DCT. 32-bit arithmetic is what jfdctint.c is designed for (with 8-bit
    samples every intermediate stays below 2**26) and every output fits its 16-bit ``DCTELEM``.
    """
    d = _transform_layout(blocks, torch.int32)  # [row, col, M]
    d = _fdct_1d(d.transpose(0, 1), first_pass=True)  # over columns within each row -> [u, row, M]
    d = _fdct_1d(d.transpose(0, 1), first_pass=False)  # over rows -> [v, u, M]
    return _block_layout(d, blocks.shape[:-2])


def _idct_1d(d: torch.Tensor, shift: int) -> torch.Tensor:
    """One pass of jidctint.c along dimension 0 of an integer tensor ``[8, ...]``.

    The all-AC-zero shortcuts of jidctint.c give the same values as the full computation
    (``DESCALE(dc << 13, 11) == dc << 2`` and ``DESCALE(w << 13, 18) == DESCALE(w, 5)``), so they
    are not modelled.
    """
    y = list(d.unbind(0))
    z1 = (y[2] + y[6]) * F_0_541196100
    t2 = z1 - y[6] * F_1_847759065
    t3 = z1 + y[2] * F_0_765366865
    t0 = (y[0] + y[4]) << CONST_BITS
    t1 = (y[0] - y[4]) << CONST_BITS
    t10, t13 = t0 + t3, t0 - t3
    t11, t12 = t1 + t2, t1 - t2
    o7s, o5s, o3s, o1s = _odd_rotations(y[7], y[5], y[3], y[1])
    out = [
        t10 + o1s,
        t11 + o3s,
        t12 + o5s,
        t13 + o7s,
        t13 - o7s,
        t12 - o5s,
        t11 - o3s,
        t10 - o1s,
    ]
    return torch.stack([descale(v, shift) for v in out], dim=0)


def idct_islow(dequantized: torch.Tensor) -> torch.Tensor:
    """libjpeg's ``jpeg_idct_islow`` before range limiting.

    Takes dequantized coefficients ``coef * q`` ``[..., v, u]`` (integers, orthonormal scale) and
    returns the centred int64 samples ``[..., 8, 8]`` that jidctint.c looks up in the range-limit
    table (see :func:`range_limit`). Columns first (pass 1 keeps ``PASS1_BITS`` extra bits), then
    rows (removing them and the factor of 8). The arithmetic is 64-bit like the C code's ``JLONG``
    on 64-bit platforms, so coefficients read from arbitrary files cannot overflow it.
    """
    d = _transform_layout(dequantized, torch.int64)  # [v, u, M]
    d = _idct_1d(d, CONST_BITS - PASS1_BITS)  # over v -> [row, u, M]
    d = _idct_1d(d.transpose(0, 1), CONST_BITS + PASS1_BITS + 3)  # over u -> [col, row, M]
    return _block_layout(d.transpose(0, 1), dequantized.shape[:-2])


RANGE_MASK = 4 * 255 + 3  # 1023: two bits wider than a sample


def range_limit(x: torch.Tensor, mode: str = "clamp") -> torch.Tensor:
    """Turn centred IDCT outputs into samples 0..255 (uint8).

    ``"clamp"``: ``clamp(x + 128, 0, 255)``, what libjpeg-turbo's x86 SIMD inverse DCTs do
    (saturating packs) and so what Pillow decodes on x86-64. ``"mask"``: the table of
    ``prepare_range_limit_table`` (jdmaster.c) indexed with ``x & RANGE_MASK``, as the C
    jidctint.c does: equal to ``"clamp"`` for -512 <= x < 512, while values further out wrap
    (512..895 -> 0, -640 -> 255, ...). Quantized coefficients of 8-bit images rarely get there.
    """
    if mode == "clamp":
        return (x + 128).clamp(0, 255).to(torch.uint8)
    if mode != "mask":
        raise ValueError(f"Expected range-limit mode 'clamp' or 'mask', got {mode!r}")
    m = x & RANGE_MASK
    out = torch.where(m < 128, m + 128, torch.where(m < 512, 255, torch.where(m < 896, 0, m - 896)))
    return out.to(torch.uint8)


# ----------------------------------------------------------------------------------------------
# Quantization (jcdctmgr.c)
# ----------------------------------------------------------------------------------------------


def divide_round(x: torch.Tensor, divisor: torch.Tensor) -> torch.Tensor:
    """``x / divisor`` rounded half away from zero, in integers (libjpeg's portable quantizer:
    ``sign(x) * ((|x| + divisor / 2) / divisor)``)."""
    x = x.to(torch.int64)
    d = divisor.to(torch.int64)
    q = torch.div(x.abs() + (d >> 1), d, rounding_mode="floor")
    return torch.where(x < 0, -q, q)


def quantize_islow(coef8: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Quantize ISLOW coefficients (scaled by 8) with a table: divisor ``q << 3``."""
    return divide_round(coef8, table.to(torch.int64) << 3)


def reciprocal_divisors(divisor: int) -> tuple[int, int, int]:
    """libjpeg-turbo's ``compute_reciprocal`` for 16-bit ``DCTELEM``: (reciprocal, correction,
    shift) such that ``((|x| + correction) * reciprocal) >> (shift + 16)`` replaces the division.
    Kept to prove the replacement exact (tests compare it with :func:`divide_round`)."""
    if divisor <= 1:
        return 1, 0, -16
    b = divisor.bit_length() - 1  # flss(divisor) - 1
    r = 16 + b
    fq, fr = divmod(1 << r, divisor)
    c = divisor // 2
    if fr == 0:  # power of two
        fq >>= 1
        r -= 1
    elif fr <= divisor // 2:
        c += 1
    else:
        fq += 1
    return fq, c, r - 16


def quantize_reciprocal(x: torch.Tensor, divisor: int | torch.Tensor) -> torch.Tensor:
    """Quantize with libjpeg-turbo's reciprocal multiplication (``quantize`` in jcdctmgr.c).

    ``divisor`` is an int or an integer tensor broadcastable against ``x`` (one divisor per
    element, as a table applies to a block).
    """
    d = torch.as_tensor(divisor, dtype=torch.int64)
    values = torch.unique(d)
    consts = torch.tensor([reciprocal_divisors(int(v)) for v in values], dtype=torch.int64)
    idx = torch.searchsorted(values, d)
    recip, corr, shift = consts[idx, 0], consts[idx, 1], consts[idx, 2]
    x = x.to(torch.int64)
    q = ((x.abs() + corr) * recip) >> (shift + 16)
    return torch.where(x < 0, -q, q)


# ----------------------------------------------------------------------------------------------
# Orthonormal float DCT
# ----------------------------------------------------------------------------------------------


def dct_matrix(
    dtype: torch.dtype = torch.float64, device: torch.device | None = None
) -> torch.Tensor:
    """The orthonormal 8-point DCT-II matrix ``D[u, x] = a(u) cos((2x + 1) u pi / 16)``,
    ``a(0) = sqrt(1/8)``, ``a(u) = 1/2``; ``D @ D.T == I``."""
    u = np.arange(8)[:, None]
    x = np.arange(8)[None, :]
    d = np.cos((2 * x + 1) * u * math.pi / 16) * 0.5
    d[0, :] = math.sqrt(1 / 8)
    return torch.as_tensor(d, dtype=dtype, device=device)


def dct2(blocks: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D DCT-II of ``[..., 8, 8]`` float blocks: ``D @ B @ D.T``."""
    d = dct_matrix(blocks.dtype, blocks.device)
    return d @ blocks @ d.T


def idct2(coeffs: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dct2`: ``D.T @ C @ D``."""
    d = dct_matrix(coeffs.dtype, coeffs.device)
    return d.T @ coeffs @ d


def block_dct(planes: torch.Tensor) -> torch.Tensor:
    """``[..., H, W]`` float planes -> ``[..., ceil(H/8), ceil(W/8), 8, 8]`` orthonormal DCT
    coefficients, edge-replicating the planes to whole blocks."""
    h, w = planes.shape[-2], planes.shape[-1]
    return dct2(to_blocks(pad_replicate(planes, blocks_for(h) * 8, blocks_for(w) * 8)))


def block_idct(coeffs: torch.Tensor) -> torch.Tensor:
    """``[..., hb, wb, 8, 8]`` coefficients -> ``[..., 8 hb, 8 wb]`` planes."""
    return from_blocks(idct2(coeffs))


# ----------------------------------------------------------------------------------------------
# Rounding for quantization
# ----------------------------------------------------------------------------------------------


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    """Round to nearest, ties away from zero (libjpeg's quantizer), for floats."""
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Straight-through rounding: the forward value of :func:`round_half_away`, the gradient of
    the identity."""
    return x + (round_half_away(x) - x).detach()


def round_cubic(x: torch.Tensor) -> torch.Tensor:
    """Shin & Song (2017): ``round(x) + (x - round(x)) ** 3``, with ``round`` a constant for the
    gradient (so the derivative is ``3 (x - round(x)) ** 2``)."""
    r = round_half_away(x).detach()
    return r + (x - r) ** 3


ROUNDINGS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "nearest": round_half_away,
    "ste": round_ste,
    "cubic": round_cubic,
}


def quantize(coeffs: torch.Tensor, table: torch.Tensor, rounding: str = "nearest") -> torch.Tensor:
    """``rounding(coeffs / table)`` on orthonormal coefficients; libjpeg's ``(8 c) / (8 q)``."""
    return ROUNDINGS[rounding](coeffs / table)


def dequantize(qcoeffs: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    return qcoeffs * table


# ----------------------------------------------------------------------------------------------
# Component geometry
# ----------------------------------------------------------------------------------------------


def component_tables(tables: torch.Tensor, channels: int) -> list[torch.Tensor]:
    """The table of each component: ``tables`` is ``[K, 8, 8]``; component ``c`` uses table
    ``min(c, K - 1)`` (libjpeg's default: luma table 0, both chroma components table 1)."""
    k = tables.shape[0]
    return [tables[min(c, k - 1)] for c in range(channels)]


def _chroma_geometry(h: int, w: int, subsampling: str) -> tuple[int, int, int, int, int, int]:
    """(fh, fv, hc, wc, hb, wb): sampling factors, downsampled size and block counts of a chroma
    component (``width_in_blocks = ceil(W / (8 fh))``, ``downsampled_width = ceil(W / fh)``)."""
    fh, fv = cref.SUBSAMPLING[subsampling]
    hc, wc = -(-h // fv), -(-w // fh)
    return fh, fv, hc, wc, -(-h // (8 * fv)), -(-w // (8 * fh))


def pad_chroma_full_res(c: torch.Tensor, subsampling: str) -> torch.Tensor:
    """Pad full-resolution chroma ``[..., H, W]`` the way the compressor does before
    downsampling: rows to a whole row group (``fv``), columns to ``fh * 8 * width_in_blocks``."""
    h, w = c.shape[-2], c.shape[-1]
    fh, fv, hc, _, _, wb = _chroma_geometry(h, w, subsampling)
    return pad_replicate(c, hc * fv, wb * 8 * fh)


# ----------------------------------------------------------------------------------------------
# Exact mode: libjpeg-turbo's integer pipeline
# ----------------------------------------------------------------------------------------------


def encode_plane_exact(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """uint8 ``[..., 8 hb, 8 wb]`` -> quantized int64 coefficients ``[..., hb, wb, 8, 8]``."""
    coef = fdct_islow(to_blocks(plane.to(torch.int64) - 128))
    return quantize_islow(coef, table)


def decode_plane_exact(
    qcoef: torch.Tensor, table: torch.Tensor, range_mode: str = "clamp"
) -> torch.Tensor:
    """Quantized coefficients ``[..., hb, wb, 8, 8]`` -> uint8 ``[..., 8 hb, 8 wb]``."""
    rec = idct_islow(qcoef.to(torch.int64) * table.to(torch.int64))
    return from_blocks(range_limit(rec, range_mode))


def encode_exact(
    x: torch.Tensor, tables: torch.Tensor, subsampling: str = "4:2:0"
) -> list[torch.Tensor]:
    """Compress uint8 ``[N, C, H, W]`` (C = 1 or 3) to quantized coefficients.

    Returns one int64 tensor ``[N, hb, wb, 8, 8]`` per component (Y, Cb, Cr), with libjpeg's
    ``height_in_blocks x width_in_blocks`` blocks. ``tables`` is ``[K, 8, 8]`` (see
    :func:`component_tables`); ``subsampling`` is ignored for one channel.
    """
    _, c, h, w = x.shape
    tabs = component_tables(tables.to(x.device), c)
    if c == 1:
        planes = [x[:, 0]]
    else:
        spec = cref.ycbcr_forward_spec("bt601", True, True, 255.0)
        ycc = cref.apply_affine(x, spec)
        planes = [ycc[:, 0], ycc[:, 1], ycc[:, 2]]
    y = pad_replicate(planes[0], blocks_for(h) * 8, blocks_for(w) * 8)
    out = [encode_plane_exact(y, tabs[0])]
    if c == 1:
        return out
    if subsampling == "4:4:4":
        chroma = pad_replicate(torch.stack(planes[1:], 1), blocks_for(h) * 8, blocks_for(w) * 8)
    else:
        _, _, _, _, hb, _ = _chroma_geometry(h, w, subsampling)
        full = pad_chroma_full_res(torch.stack(planes[1:], 1), subsampling)
        down = cref.chroma_downsample(full, subsampling)  # exact sizes: no padding inside
        chroma = pad_replicate(down, hb * 8, down.shape[-1])
    out.append(encode_plane_exact(chroma[:, 0], tabs[1]))
    out.append(encode_plane_exact(chroma[:, 1], tabs[2]))
    return out


def decode_exact(
    coefs: Sequence[torch.Tensor],
    tables: torch.Tensor,
    subsampling: str,
    h: int,
    w: int,
    range_mode: str = "clamp",
) -> torch.Tensor:
    """Decompress quantized coefficients (as :func:`encode_exact` returns them; extra dummy
    blocks at the right and bottom are allowed) to uint8 ``[N, C, H, W]`` as libjpeg-turbo does
    with fancy upsampling."""
    c = len(coefs)
    tabs = component_tables(tables.to(coefs[0].device), c)
    hb, wb = blocks_for(h), blocks_for(w)
    y = decode_plane_exact(coefs[0][:, :hb, :wb], tabs[0], range_mode)[..., :h, :w]
    if c == 1:
        return y[:, None]
    if subsampling == "4:4:4":
        cb = decode_plane_exact(coefs[1][:, :hb, :wb], tabs[1], range_mode)[..., :h, :w]
        cr = decode_plane_exact(coefs[2][:, :hb, :wb], tabs[2], range_mode)[..., :h, :w]
        ycc = torch.stack([y, cb, cr], 1)
    else:
        _, _, hc, wc, chb, cwb = _chroma_geometry(h, w, subsampling)
        small = torch.stack(
            [
                decode_plane_exact(coefs[k][:, :chb, :cwb], tabs[k], range_mode)[..., :hc, :wc]
                for k in (1, 2)
            ],
            1,
        )
        full = cref.chroma_upsample(small, subsampling, h, w, "fancy")
        ycc = torch.cat([y[:, None], full], 1)
    spec = cref.ycbcr_inverse_spec("bt601", True, True, 255.0)
    return cref.apply_affine(ycc, spec)


def simulate_exact(
    x: torch.Tensor, tables: torch.Tensor, subsampling: str = "4:2:0", range_mode: str = "clamp"
) -> torch.Tensor:
    """Exact round trip of uint8 ``[N, C, H, W]`` (C = 1 or 3) through libjpeg-turbo's codec."""
    _, _, h, w = x.shape
    return decode_exact(encode_exact(x, tables, subsampling), tables, subsampling, h, w, range_mode)


# ----------------------------------------------------------------------------------------------
# Float and differentiable modes
# ----------------------------------------------------------------------------------------------


def _code_plane_float(
    plane: torch.Tensor, table: torch.Tensor, rounding: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """Float plane ``[..., 8 hb, 8 wb]`` on 0..255 -> decoded plane, clamped to 0..255:
    level shift, orthonormal DCT, ``rounding(coef / q) * q``, inverse DCT."""
    coef = dct2(to_blocks(plane - 128.0))
    rec = idct2(rounding(coef / table) * table)
    return from_blocks(rec + 128.0).clamp(0.0, 255.0)


def round_half_up(x: torch.Tensor) -> torch.Tensor:
    """``floor(x + 0.5)``: how libjpeg's fixed-point stages round (``+ ONE_HALF >> 16``)."""
    return torch.floor(x + 0.5)


def round_half_down(x: torch.Tensor) -> torch.Tensor:
    """``ceil(x - 0.5)``: libjpeg's rounding of Cb and Cr (``+ ONE_HALF - 1 >> 16``)."""
    return torch.ceil(x - 0.5)


def scaled_dct_matrix(
    dtype: torch.dtype = torch.float64, device: torch.device | None = None
) -> torch.Tensor:
    """``sqrt(8) * D``: the DCT matrix in the scaling of libjpeg's 1-D passes. Its rows 0 and 4
    are exactly ``+-1`` (as in the integer butterflies), so sums that tie at a half in libjpeg tie
    exactly here too."""
    c = dct_matrix(torch.float64) * math.sqrt(8)
    c[0] = 1.0
    c[4] = torch.round(c[4])
    return c.to(dtype=dtype, device=device)


def fdct_float(blocks: torch.Tensor) -> torch.Tensor:
    """The forward DCT of the float mode: float matrix products at libjpeg's ISLOW precision.

    ``blocks`` are centred samples ``[..., 8, 8]`` (float). The row pass is rounded (half up) to
    a quarter, ``PASS1_BITS``, of libjpeg's sqrt(8)-scaled 1-D transform, the column pass to
    integers of the 8-times-scaled 2-D one, as :func:`fdct_islow` rounds; the remaining
    difference from it is the 13-bit precision of its constants. Returns coefficients scaled by
    8 (integral floats).
    """
    c = scaled_dct_matrix(blocks.dtype, blocks.device)
    rows = round_half_up((blocks @ c.T) * (1 << PASS1_BITS))
    return round_half_up((c @ rows) / (1 << PASS1_BITS))


def idct_float(dequantized: torch.Tensor) -> torch.Tensor:
    """The inverse DCT of the float mode: ``dequantized`` ``[..., v, u]`` (orthonormal scale)
    -> centred samples rounded to integers, with :func:`idct_islow`'s intermediate rounding
    (columns to a quarter of the sqrt(8)-scaled transform, then rows to integers)."""
    c = scaled_dct_matrix(dequantized.dtype, dequantized.device)
    cols = round_half_up((c.T @ dequantized) * (1 << PASS1_BITS))
    return round_half_up((cols @ c) / (1 << (PASS1_BITS + 3)))


def simulate_float(
    x: torch.Tensor, tables: torch.Tensor, subsampling: str = "4:2:0"
) -> torch.Tensor:
    """The float mode: :func:`simulate_exact` with floating-point colour conversion and DCTs.

    ``x`` is ``[N, C, H, W]`` float on 0..255 (C = 1 or 3). The colour conversion uses the exact
    JFIF coefficients and the DCTs float matrix products (:func:`fdct_float`,
    :func:`idct_float`), in ``x``'s dtype. Values are rounded where libjpeg rounds: YCbCr to
    8 bits (luma half up, chroma half down, as jccolor.c), the DCT passes to libjpeg's
    intermediate precision, samples after the inverse DCT; chroma resampling is the 8-bit one of
    the exact mode. So the quantizer sees libjpeg's coefficients up to the 13-bit precision of
    its constants, and the decoded image stays within one level of libjpeg's on nearly every
    pixel (without these rounding points a float pipeline drifts by 2 or more levels on 5-15% of
    the pixels of a photo). Returns the decoded image as unrounded floats on 0..255 (clamped).
    """
    _, c, h, w = x.shape
    tabs = [t.to(dtype=x.dtype, device=x.device) for t in component_tables(tables, c)]
    if c == 1:
        planes = round_half_up(x).clamp(0.0, 255.0).to(torch.uint8)
    else:
        ycc = cref.apply_affine(x, cref.ycbcr_forward_spec("bt601", True, False, 255.0))
        planes = torch.cat([round_half_up(ycc[:, :1]), round_half_down(ycc[:, 1:])], 1)
        planes = planes.clamp(0.0, 255.0).to(torch.uint8)

    def code(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        coef8 = fdct_float(to_blocks(plane.to(x.dtype) - 128.0))
        rec = idct_float(round_half_away(coef8 / (8.0 * table)) * table)
        return from_blocks(rec + 128.0).clamp(0.0, 255.0).to(torch.uint8)

    hb, wb = blocks_for(h), blocks_for(w)
    y = code(pad_replicate(planes[:, 0], hb * 8, wb * 8), tabs[0])[..., :h, :w]
    if c == 1:
        return y[:, None].to(x.dtype)
    if subsampling == "4:4:4":
        ch = pad_replicate(planes[:, 1:], hb * 8, wb * 8)
        chroma = torch.stack([code(ch[:, k], tabs[k + 1])[..., :h, :w] for k in (0, 1)], 1)
    else:
        _, _, hc, wc, chb, _ = _chroma_geometry(h, w, subsampling)
        down = cref.chroma_downsample(pad_chroma_full_res(planes[:, 1:], subsampling), subsampling)
        down = pad_replicate(down, chb * 8, down.shape[-1])
        small = torch.stack([code(down[:, k], tabs[k + 1])[..., :hc, :wc] for k in (0, 1)], 1)
        chroma = cref.chroma_upsample(small, subsampling, h, w, "fancy")
    ycc = torch.cat([y[:, None], chroma], 1).to(x.dtype)
    rgb = cref.apply_affine(ycc, cref.ycbcr_inverse_spec("bt601", True, False, 255.0))
    return rgb.clamp(0.0, 255.0)


def simulate_differentiable(
    x: torch.Tensor, tables: torch.Tensor, subsampling: str = "4:2:0", rounding: str = "cubic"
) -> torch.Tensor:
    """The differentiable mode: a smooth version of the round trip.

    ``x`` is ``[N, C, H, W]`` float on 0..255 (C = 1 or 3). The structure mirrors
    :func:`simulate_exact` (same padding, same crops, the same upsampling weights) with every
    integer step replaced by its real-valued counterpart and no intermediate rounding: exact JFIF
    colour coefficients, box-filter downsampling, orthonormal DCT, quantization with
    ``rounding`` (``"ste"`` or ``"cubic"``, see :data:`ROUNDINGS`), clamping to 0..255 after the
    inverse DCT and at the end. Returns unrounded floats on 0..255 in ``x``'s dtype.
    """
    rnd = ROUNDINGS[rounding]
    _, c, h, w = x.shape
    tabs = [t.to(dtype=x.dtype, device=x.device) for t in component_tables(tables, c)]
    hb, wb = blocks_for(h), blocks_for(w)
    if c == 1:
        y = pad_replicate(x[:, 0], hb * 8, wb * 8)
        return _code_plane_float(y, tabs[0], rnd)[..., :h, :w][:, None]
    ycc = cref.apply_affine(x, cref.ycbcr_forward_spec("bt601", True, False, 255.0))
    y = _code_plane_float(pad_replicate(ycc[:, 0], hb * 8, wb * 8), tabs[0], rnd)[..., :h, :w]
    if subsampling == "4:4:4":
        ch = pad_replicate(ycc[:, 1:], hb * 8, wb * 8)
        chroma = torch.stack(
            [_code_plane_float(ch[:, k], tabs[k + 1], rnd)[..., :h, :w] for k in (0, 1)], 1
        )
    else:
        _, _, hc, wc, chb, _ = _chroma_geometry(h, w, subsampling)
        down = cref.chroma_downsample(pad_chroma_full_res(ycc[:, 1:], subsampling), subsampling)
        down = pad_replicate(down, chb * 8, down.shape[-1])
        small = torch.stack(
            [_code_plane_float(down[:, k], tabs[k + 1], rnd)[..., :hc, :wc] for k in (0, 1)], 1
        )
        chroma = cref.chroma_upsample(small, subsampling, h, w, "fancy")
    out = torch.cat([y[:, None], chroma], 1)
    rgb = cref.apply_affine(out, cref.ycbcr_inverse_spec("bt601", True, False, 255.0))
    return rgb.clamp(0.0, 255.0)
