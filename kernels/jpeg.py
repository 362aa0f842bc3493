"""Triton kernels for :func:`fastperc.jpeg.jpeg_simulate` and their launchers.

The spec is :mod:`fastperc.reference.jpeg`. The launchers :func:`simulate_exact`,
:func:`simulate_float` and :func:`simulate_differentiable` take and return what the reference
functions of the same names do (``[N, C, H, W]`` images, C = 1 or 3, on 0..255; ``[K, 8, 8]``
tables), so :mod:`fastperc.jpeg` swaps them in through its backend table (:data:`SIMULATE`).

Design
------
* **Tiles with the block index last.** A program owns ``NB = 32 * num_warps`` 8x8 blocks held as
  ``[8, 8, NB]`` tiles (row or vertical frequency, column or horizontal frequency, block). The
  block axis is the one spread over the threads, so each thread holds whole blocks and every
  transform below is in-thread multiply-adds: no shuffles, no shared memory, no barriers.
* **The 1-D DCT passes are 8x8 matrix products.** Inside one pass of libjpeg's ISLOW transforms
  (``jfdctint.c``, ``jidctint.c``) the butterflies only add and multiply by integer constants;
  rounding happens once, in the pass's final ``DESCALE``. So each pass is an integer matrix
  (the butterflies evaluated on unit vectors, :func:`islow_matrices`) followed by that descale,
  bit-exact in int32 (every sum stays below 2**31 for 8-bit data). The float mode uses the
  matrices of :func:`fastperc.reference.jpeg.fdct_float` with its rounding points, the
  differentiable mode the orthonormal DCT matrix.
* **Quantization without integer division.** ``(|c| + 4 q) // (8 q)`` equals
  ``floor((|c| + 4 q + 0.5) * fl32(1 / (8 q)))`` in float32 for every numerator below ``2**22``
  (the product's relative error, below ``2**-23``, moves it by less than ``2**-6 / (8 q)``,
  while the ``+ 0.5`` keeps the exact value at least ``0.5 / (8 q)`` from an integer). The
  reciprocals are computed once per call on the host.
* **Two fused kernels per round trip.** :func:`_chroma_kernel` runs once per chroma block (one
  per MCU when subsampled): RGB -> Cb/Cr (fixed point), the biased ``h2v1``/``h2v2`` average with
  libjpeg's edge replication, then the whole code of each block (level shift, forward DCT,
  quantization, dequantization, inverse DCT, range limit), writing the small decoded chroma
  planes. :func:`_luma_kernel` runs once per luma block: RGB -> Y, the code of the block, the
  chroma of its pixels (coded in place for 4:4:4, fancy-upsampled from the small planes
  otherwise: that needs neighbouring blocks, hence the second kernel), YCbCr -> RGB, store. No
  luma plane goes through memory; 4:4:4 and greyscale take one launch. Per pixel (4:2:0, uint8)
  the global traffic is the RGB input read twice, half a byte of chroma written and read back,
  and the output written.
* **Edge replication by clamped loads.** Blocks past the image edge load ``min(y, H - 1)``,
  ``min(x, W - 1)`` (libjpeg's ``expand_right_edge`` / bottom-row replication, before
  downsampling for chroma, plus the downsampled row replication of ``jcprepct.c``); stores are
  masked to the image (or to the ``ceil(H / v) x ceil(W / h)`` chroma planes the decoder
  upsamples).
* **Backward of the differentiable mode** (:class:`_Differentiable`): three kernels recompute the
  forward in registers (only the small decoded chroma planes are saved) and apply the transposed
  stages: :func:`_luma_bwd_kernel` (colour back and clamps, the luma block, padding folded onto
  the edge pixels; writes the input gradient's luma part and the full-resolution chroma
  gradient), :func:`_chroma_up_bwd_kernel` (transpose of the upsampling, a gather) and
  :func:`_chroma_bwd_kernel` (the chroma blocks, the transpose of the box downsampling and of the
  edge replication; adds the chroma part to the input gradient). Gradients with respect to the
  quantization tables come from the reference (autograd through
  :func:`fastperc.reference.jpeg.simulate_differentiable`), computed only when asked for.

Accuracy
--------
* exact: bit-exact with :func:`fastperc.reference.jpeg.simulate_exact` (so with Pillow).
* float: colour conversions in float64 as the reference (so the 8-bit YCbCr is the same); the DCT
  sums in float32 (float64 for float64 images) in another order than the reference's matrix
  products, so a sum within a few ulps of one of the rounding points may round the other way:
  with float64 images the results equal the reference's; with float32 a few pixels in ten
  thousand differ, almost always by one level.
* differentiable: computed in float32 (float64 for float64 images), colour included; values and
  gradients agree with the reference to float rounding, except where a quantizer input sits
  within rounding error of a half (the rounding may then go the other way, as it may between
  two float32 evaluations of the reference itself).
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from fastperc import _image
from fastperc.dispatch import triton_interpret
from fastperc.reference import color as cref
from fastperc.reference import jpeg as ref

NUM_WARPS = 4
NB_GPU = 32 * NUM_WARPS  # blocks per program on a GPU: one per thread
NB_INTERPRET = 16  # blocks per program under TRITON_INTERPRET=1 (small: more programs tested)
BLOCK = 1024  # pixels per program of the per-pixel kernel
_INT32_LIMIT = 2**31

MODE_EXACT = 0
MODE_FLOAT = 1
MODE_DIFF = 2

# libjpeg's fixed-point colour conversions (jccolor.c, jdcolor.c) as compile-time constants:
# per output channel (m0, m1, m2, s0, s1, s2, offset), out = (sum m_j (x_j - s_j) + offset) >> 16.


def _fixed_rows(spec: cref.AffineSpec) -> tuple[tuple[int, ...], ...]:
    return tuple(
        tuple(int(v) for v in (*row, *spec.shift, off))
        for row, off in zip(spec.matrix, spec.offset)
    )


_YCC_FWD = tl.constexpr(_fixed_rows(cref.ycbcr_forward_spec("bt601", True, True, 255.0)))
_YCC_INV = tl.constexpr(_fixed_rows(cref.ycbcr_inverse_spec("bt601", True, True, 255.0)))


# ----------------------------------------------------------------------------------------------
# Host-side constants
# ----------------------------------------------------------------------------------------------


def islow_matrices() -> tuple[torch.Tensor, torch.Tensor]:
    """The integer matrices of libjpeg's ISLOW 1-D passes, ``(forward, inverse)``, int64 [8, 8].

    ``forward[u, x]``: coefficient ``u`` of the forward pass (``jfdctint.c``) for input ``x``,
    scaled so that pass 1 is ``DESCALE(forward @ x, 11)`` and pass 2
    ``DESCALE(forward @ x, 15)`` (rows 0 and 4, which libjpeg shifts instead of multiplying,
    carry ``2**13``). ``inverse[x, v]``: sample ``x`` of the inverse pass (``jidctint.c``), pass 1
    ``DESCALE(inverse @ y, 11)``, pass 2 ``DESCALE(inverse @ y, 18)``. Obtained by running the
    reference passes on unit vectors scaled by ``2**20``, whose descale then divides exactly.
    """
    unit = torch.eye(8, dtype=torch.int64) << 20  # column j: e_j * 2**20
    fwd = ref._fdct_1d(unit, first_pass=True)  # DESCALE(v * 2**20, 11) = v * 2**9
    inv = ref._idct_1d(unit, ref.CONST_BITS - ref.PASS1_BITS)
    for m in (fwd, inv):
        if bool((m & 511).any()):  # pragma: no cover - a change in the reference's passes
            raise AssertionError("ISLOW passes are not linear before their descale")
    return fwd >> 9, inv >> 9


#: The interpreter's formulation: matrix products as broadcast products and the per-pixel stages
#: on whole tiles (few, large interpreter steps). Compiled, the products are rank-1 updates with
#: compile-time constants, and the per-pixel stages are run-time loops over the
#: eight rows of the blocks, neither unrolled nor pipelined, so that only one row's loads are in
#: flight at a time: otherwise the compiler hoists hundreds of loads and spills registers.
_BROADCAST = tl.constexpr(triton_interpret())

#: The ISLOW matrices as compile-time integers, flat: entry (u, k) of matrix K (0: forward,
#: 1: inverse) at ``K * 64 + u * 8 + k``.
_ISLOW = tl.constexpr(tuple(int(v) for m in islow_matrices() for v in m.reshape(64).tolist()))


@functools.cache
def _matrices(kind: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``[2, 64]``: the forward matrix ``A`` (pass ``out = A @ in``) and the inverse one ``B``."""
    if kind == "islow":
        a, b = islow_matrices()
    elif kind == "float":  # fdct_float / idct_float: C and C.T
        a = ref.scaled_dct_matrix(torch.float64)
        b = a.T
    else:  # orthonormal: D and D.T
        a = ref.dct_matrix(torch.float64)
        b = a.T
    return torch.stack([a.reshape(64), b.reshape(64)]).to(dtype=dtype, device=device)


@functools.cache
def _colour_coefs(device: torch.device) -> torch.Tensor:
    """float64 ``[30]``: matrix (9), shift (3), offset (3) of the float RGB -> YCbCr map, then
    the same for YCbCr -> RGB (``reference.color`` specs, 0..255 scale)."""
    vals: list[float] = []
    for spec in (
        cref.ycbcr_forward_spec("bt601", True, False, 255.0),
        cref.ycbcr_inverse_spec("bt601", True, False, 255.0),
    ):
        vals += [float(v) for row in spec.matrix for v in row]
        vals += [float(v) for v in spec.shift] + [float(v) for v in spec.offset]
    return torch.tensor(vals, dtype=torch.float64, device=device)


_FWD = 0  # offset of the forward colour map in the coefficient vector
_INV = 15  # offset of the inverse one


# ----------------------------------------------------------------------------------------------
# Device helpers: blocks, transforms, quantization
# ----------------------------------------------------------------------------------------------


@triton.jit
def _blocks(NBLK, WB, HBWB, NB: tl.constexpr, I64: tl.constexpr):
    """This program's ``NB`` blocks of an ``[N, HB, WB]`` block grid: (mask, n, by, bx), each
    ``[NB]``."""
    g = tl.program_id(0) * NB + tl.arange(0, NB)
    mask = g < NBLK
    n = g // HBWB
    rem = g - n * HBWB
    by = rem // WB
    bx = rem - by * WB
    if I64:
        n = n.to(tl.int64)
        by = by.to(tl.int64)
        bx = bx.to(tl.int64)
    return mask, n, by, bx


@triton.jit
def _rows8():
    """Row and column indices of a tile: ``[8, 1, 1]`` and ``[1, 8, 1]``."""
    return tl.arange(0, 8)[:, None, None], tl.arange(0, 8)[None, :, None]


@triton.jit
def _pick(x, k: tl.constexpr, AXIS: tl.constexpr):
    """Slice ``k`` of a tile along ``AXIS`` (0 or 1). The axis lies inside each thread, so once
    compiled the select and the sum reduce to naming registers."""
    if AXIS == 0:
        i = tl.arange(0, 8)[:, None, None]
    else:
        i = tl.arange(0, 8)[None, :, None]
    return tl.sum(tl.where(i == k, x, 0), axis=AXIS)


@triton.jit
def _mcol(mat_ptr, K: tl.constexpr, k: tl.constexpr, CONST: tl.constexpr):
    """Column ``k`` of transform matrix ``K`` (0: forward, 1: inverse) as an ``[8]`` vector:
    compile-time integers (``_ISLOW``, when ``CONST``) or loaded from ``mat_ptr`` ``[2, 64]``."""
    u = tl.arange(0, 8)
    if CONST:
        v = tl.where(u == 0, _ISLOW[K * 64 + k], 0)
        for j in tl.static_range(1, 8):
            v = tl.where(u == j, _ISLOW[K * 64 + j * 8 + k], v)
    else:
        v = tl.load(mat_ptr + K * 64 + u * 8 + k)
    return v


@triton.jit
def _load_mat(mat_ptr, K: tl.constexpr):
    """Matrix ``K`` of ``mat_ptr`` ``[2, 64]`` as an ``[8, 8]`` tile."""
    i = tl.arange(0, 8)
    return tl.load(mat_ptr + K * 64 + i[:, None] * 8 + i[None, :])


@triton.jit
def _rows(x, mat_ptr, K: tl.constexpr, CONST: tl.constexpr):
    """Transform every row of a tile: ``out[r, u, b] = sum_c m[u, c] x[r, c, b]`` (``m``: matrix
    ``K``). Compiled: eight rank-1 updates, so that no 8x8x8 product is materialized (it would
    not fit in registers); interpreted: one broadcast product (far fewer interpreter steps)."""
    if _BROADCAST:
        m = _load_mat(mat_ptr, K)
        out = tl.sum(x[:, None, :, :] * m[None, :, :, None], axis=2)
    else:
        out = _pick(x, 0, 1)[:, None, :] * _mcol(mat_ptr, K, 0, CONST)[None, :, None]
        for k in tl.static_range(1, 8):
            out += _pick(x, k, 1)[:, None, :] * _mcol(mat_ptr, K, k, CONST)[None, :, None]
    return out


@triton.jit
def _cols(x, mat_ptr, K: tl.constexpr, CONST: tl.constexpr):
    """Transform every column of a tile: ``out[v, c, b] = sum_r m[v, r] x[r, c, b]``."""
    if _BROADCAST:
        m = _load_mat(mat_ptr, K)
        out = tl.sum(m[:, :, None, None] * x[None, :, :, :], axis=1)
    else:
        out = _mcol(mat_ptr, K, 0, CONST)[:, None, None] * _pick(x, 0, 0)[None, :, :]
        for k in tl.static_range(1, 8):
            out += _mcol(mat_ptr, K, k, CONST)[:, None, None] * _pick(x, k, 0)[None, :, :]
    return out


@triton.jit
def _load_table(tab_ptr, comp: tl.constexpr):
    """Row ``comp`` of a ``[3, 64]`` table tensor as an ``[8, 8, 1]`` tile (natural order)."""
    r, c = _rows8()
    return tl.load(tab_ptr + comp * 64 + r * 8 + c)


@triton.jit
def _div(a, b, CT: tl.constexpr):
    """``a / b`` correctly rounded (a plain ``/`` is approximate for float32 on a GPU)."""
    if CT == tl.float32:
        return tl.math.div_rn(a, b)
    else:
        return a / b


@triton.jit
def _round_half_away(v):
    """Round to nearest, ties away from zero (``reference.jpeg.round_half_away``)."""
    r = tl.floor(tl.abs(v) + 0.5)
    return tl.where(v < 0, -r, r)


@triton.jit
def _code_exact(s, q_ptr, rcp_ptr, mat_ptr, comp: tl.constexpr):
    """libjpeg-turbo's code of int32 sample tiles (0..255): level shift, ISLOW forward DCT,
    quantization (half away from zero, divisor ``8 q``), dequantization, ISLOW inverse DCT,
    saturation to 0..255 (``reference.jpeg.range_limit(..., "clamp")``)."""
    p = (_rows(s - 128, mat_ptr, 0, True) + 1024) >> 11  # DESCALE(., CONST_BITS - PASS1_BITS)
    coef = (_cols(p, mat_ptr, 0, True) + 16384) >> 15  # DESCALE(., CONST_BITS + PASS1_BITS)
    q = _load_table(q_ptr, comp)
    # (|coef| + 4 q) // (8 q) through the float32 reciprocal (see the module docstring)
    num = tl.abs(coef) + q * 4
    z = tl.floor((num.to(tl.float32) + 0.5) * _load_table(rcp_ptr, comp)).to(tl.int32)
    deq = tl.where(coef < 0, -z, z) * q
    w = (_cols(deq, mat_ptr, 1, True) + 1024) >> 11  # columns: DESCALE(., CONST_BITS - PASS1_BITS)
    rec = (_rows(w, mat_ptr, 1, True) + 131072) >> 18  # rows: DESCALE(., CONST_BITS+PASS1_BITS+3)
    return tl.minimum(tl.maximum(rec + 128, 0), 255)


@triton.jit
def _code_float(s, q_ptr, mat_ptr, comp: tl.constexpr, CT: tl.constexpr):
    """The float mode's code of int32 sample tiles (``reference.jpeg.simulate_float``): float DCT
    passes rounded as libjpeg's, ``round_half_away(coef8 / (8 q)) * q``, float inverse passes."""
    p = tl.floor(_rows(s.to(CT) - 128.0, mat_ptr, 0, False) * 4.0 + 0.5)
    coef = tl.floor(_cols(p, mat_ptr, 0, False) * 0.25 + 0.5)
    t = _load_table(q_ptr, comp)
    deq = _round_half_away(_div(coef, t * 8.0, CT)) * t
    w = tl.floor(_cols(deq, mat_ptr, 1, False) * 4.0 + 0.5)
    rec = tl.floor(_rows(w, mat_ptr, 1, False) * 0.03125 + 0.5)
    return tl.minimum(tl.maximum(rec + 128.0, 0.0), 255.0).to(tl.int32)


@triton.jit
def _code_diff(s, q_ptr, mat_ptr, comp: tl.constexpr, CUBIC: tl.constexpr, CT: tl.constexpr):
    """The differentiable mode's code of float sample tiles (``reference.jpeg._code_plane_float``):
    orthonormal DCT, ``rounding(coef / q) * q``, inverse DCT, clamp to 0..255.

    Returns (decoded tile, quantizer input ``coef / q``, inverse DCT + 128 before the clamp)."""
    coef = _cols(_rows(s - 128.0, mat_ptr, 0, False), mat_ptr, 0, False)
    t = _load_table(q_ptr, comp)
    z = _div(coef, t, CT)
    r = _round_half_away(z)
    if CUBIC:
        e = z - r
        r = r + e * e * e
    rec = _rows(_cols(r * t, mat_ptr, 1, False), mat_ptr, 1, False) + 128.0
    return tl.minimum(tl.maximum(rec, 0.0), 255.0), z, rec


@triton.jit
def _code_diff_bwd(g, z, rec, q_ptr, mat_ptr, comp: tl.constexpr, CUBIC: tl.constexpr,
                   CT: tl.constexpr):  # fmt: skip
    """Backward of :func:`_code_diff`: the gradient of its decoded tile -> that of its samples."""
    g = tl.where((rec >= 0.0) & (rec <= 255.0), g, 0.0)  # clamp (torch's: bounds included)
    t = _load_table(q_ptr, comp)
    # the transpose of the inverse DCT (D.T @ . @ D) is the forward one (D @ . @ D.T)
    g = _cols(_rows(g, mat_ptr, 0, False), mat_ptr, 0, False) * t
    if CUBIC:
        e = z - _round_half_away(z)
        g = g * (3.0 * e * e)
    g = _div(g, t, CT)
    return _rows(_cols(g, mat_ptr, 1, False), mat_ptr, 1, False)


@triton.jit
def _code(s, q_ptr, rcp_ptr, mat_ptr, comp: tl.constexpr, MODE: tl.constexpr,
          CUBIC: tl.constexpr, CT: tl.constexpr):  # fmt: skip
    """Decoded tile of a sample tile in ``MODE`` (int32 tiles for the exact and float modes)."""
    if MODE == 0:
        out = _code_exact(s, q_ptr, rcp_ptr, mat_ptr, comp)
    elif MODE == 1:
        out = _code_float(s, q_ptr, mat_ptr, comp, CT)
    else:
        out, _z, _rec = _code_diff(s, q_ptr, mat_ptr, comp, CUBIC, CT)
    return out


# ----------------------------------------------------------------------------------------------
# Device helpers: colour and resampling
# ----------------------------------------------------------------------------------------------


@triton.jit
def _fixed(a0, a1, a2, row: tl.constexpr):
    """One channel of a fixed-point colour map, clamped to 0..255 (``apply_affine``)."""
    v = row[0] * (a0 - row[3]) + row[1] * (a1 - row[4]) + row[2] * (a2 - row[5]) + row[6]
    return tl.minimum(tl.maximum(v >> 16, 0), 255)


@triton.jit
def _affine(a0, a1, a2, col_ptr, base: tl.constexpr, i: tl.constexpr, CT: tl.constexpr):
    """Channel ``i`` of the float colour map at ``col_ptr + base`` (matrix, shift, offset),
    summed in the reference's order, in ``CT``."""
    m = col_ptr + base + i * 3
    s = col_ptr + base + 9
    v = tl.load(m).to(CT) * (a0 - tl.load(s).to(CT))
    v += tl.load(m + 1).to(CT) * (a1 - tl.load(s + 1).to(CT))
    v += tl.load(m + 2).to(CT) * (a2 - tl.load(s + 2).to(CT))
    return v + tl.load(col_ptr + base + 12 + i).to(CT)


@triton.jit
def _affine_t(g0, g1, g2, col_ptr, base: tl.constexpr, j: tl.constexpr, CT: tl.constexpr):
    """Input ``j`` of the transpose of the float colour map at ``col_ptr + base``:
    ``sum_i m[i][j] g_i`` (the backward of :func:`_affine`)."""
    m = col_ptr + base + j
    return tl.load(m).to(CT) * g0 + tl.load(m + 3).to(CT) * g1 + tl.load(m + 6).to(CT) * g2


@triton.jit
def _to_ycc(r, g, b, col_ptr, ch: tl.constexpr, MODE: tl.constexpr, CT: tl.constexpr):
    """Channel ``ch`` (0: Y, 1: Cb, 2: Cr) of RGB tiles as loaded: libjpeg's fixed point (exact
    mode), the float64 map narrowed to the image dtype and rounded to 8 bits as
    ``simulate_float`` (float mode; int32 results), or the float map in ``CT``
    (differentiable mode)."""
    if MODE == 0:
        v = _fixed(r.to(tl.int32), g.to(tl.int32), b.to(tl.int32), _YCC_FWD[ch])
    elif MODE == 1:
        f = _affine(r.to(tl.float64), g.to(tl.float64), b.to(tl.float64), col_ptr, 0, ch,
                    tl.float64).to(CT)  # fmt: skip
        if ch == 0:
            f = tl.floor(f + 0.5)  # luma: half up
        else:
            f = tl.ceil(f - 0.5)  # chroma: half down
        v = tl.minimum(tl.maximum(f, 0.0), 255.0).to(tl.int32)
    else:
        v = _affine(r, g, b, col_ptr, 0, ch, CT)
    return v


@triton.jit
def _to_rgb(yv, cb, cr, col_ptr, ch: tl.constexpr, MODE: tl.constexpr, CT: tl.constexpr):
    """Channel ``ch`` of RGB from decoded Y, Cb, Cr tiles, before the final clamp of the float
    modes (the exact mode's fixed point clamps)."""
    if MODE == 0:
        v = _fixed(yv, cb, cr, _YCC_INV[ch])
    elif MODE == 1:
        v = _affine(yv.to(tl.float64), cb.to(tl.float64), cr.to(tl.float64), col_ptr, 15, ch,
                    tl.float64).to(CT)  # fmt: skip
    else:
        v = _affine(yv, cb, cr, col_ptr, 15, ch, CT)
    return v


@triton.jit
def _upsample(plane, y, x, mask, HC, WC, FH: tl.constexpr, FV: tl.constexpr,
              FANCY: tl.constexpr, IS_INT: tl.constexpr, CT: tl.constexpr):  # fmt: skip
    """Chroma at full-resolution pixels ``(y, x)`` from a decoded plane (``[HC, WC]``,
    contiguous) as libjpeg's decoder: fancy (triangle) upsampling, or nearest when ``FANCY`` is
    off (``WC <= 2``); a plain read for 4:4:4. Bit-exact integer rounding for uint8 planes."""
    if FH == 2 and FANCY:
        # Column x takes the nearer sample j = x // 2 (weight 3) and the further one j -/+ 1
        # (x even / odd, weight 1), clamped to the plane; rows likewise for 4:2:0.
        j = x // 2
        oddx = x % 2
        jn = tl.minimum(tl.maximum(j + 2 * oddx - 1, 0), WC - 1)
        if FV == 2:
            i = y // 2
            inb = tl.minimum(tl.maximum(i + 2 * (y % 2) - 1, 0), HC - 1)
        else:
            i = y
        a = tl.load(plane + i * WC + j, mask=mask, other=0)
        b = tl.load(plane + i * WC + jn, mask=mask, other=0)
        if IS_INT:
            a = a.to(tl.int32)
            b = b.to(tl.int32)
            if FV == 2:
                a = 3 * a + tl.load(plane + inb * WC + j, mask=mask, other=0).to(tl.int32)
                b = 3 * b + tl.load(plane + inb * WC + jn, mask=mask, other=0).to(tl.int32)
                v = (3 * a + b + 8 - oddx) >> 4  # h2v2_fancy_upsample
            else:
                v = (3 * a + b + 1 + oddx) >> 2  # h2v1_fancy_upsample
        else:
            if FV == 2:
                a = 3.0 * a + tl.load(plane + inb * WC + j, mask=mask, other=0)
                b = 3.0 * b + tl.load(plane + inb * WC + jn, mask=mask, other=0)
                v = (3.0 * a + b) * 0.0625
            else:
                v = (3.0 * a + b) * 0.25
    else:
        v = tl.load(plane + (y // FV) * WC + x // FH, mask=mask, other=0)
        if IS_INT:
            v = v.to(tl.int32)
    return v


@triton.jit
def _put_row(tile, rr, row):
    """``tile`` ``[8, 8, NB]`` with row ``rr`` replaced by ``row`` ``[8, NB]``."""
    r = tl.arange(0, 8)[:, None, None]
    return tl.where(r == rr, row[None, :, :], tile)


@triton.jit
def _row_of(tile, rr):
    """Row ``rr`` of a tile ``[8, 8, NB]`` (or ``[8, 1, NB]``), as ``[8, NB]`` (``[1, NB]``)."""
    r = tl.arange(0, 8)[:, None, None]
    return tl.sum(tl.where(r == rr, tile, 0), axis=0)


@triton.jit
def _luma_samples(src, y, x, mask, H, W, s_c, s_h, s_w, col_ptr, C: tl.constexpr,
                  MODE: tl.constexpr, CT: tl.constexpr):  # fmt: skip
    """Luma samples of pixels ``(y, x)`` (edge-replicated): the grey channel (rounded to 8 bits in
    the float mode) or Y of RGB."""
    p = src + tl.minimum(y, H - 1) * s_h + tl.minimum(x, W - 1) * s_w
    if C == 1:
        v = tl.load(p, mask=mask, other=0)
        if MODE == 0:
            v = v.to(tl.int32)
        elif MODE == 1:
            v = tl.minimum(tl.maximum(tl.floor(v + 0.5), 0.0), 255.0).to(tl.int32)
    else:
        red = tl.load(p, mask=mask, other=0)
        green = tl.load(p + s_c, mask=mask, other=0)
        blue = tl.load(p + 2 * s_c, mask=mask, other=0)
        v = _to_ycc(red, green, blue, col_ptr, 0, MODE, CT)
    return v


@triton.jit
def _chroma_samples(src, i, j, mask, H, W, HC, s_c, s_h, s_w, col_ptr, ch: tl.constexpr,
                    FH: tl.constexpr, FV: tl.constexpr, MODE: tl.constexpr,
                    CT: tl.constexpr):  # fmt: skip
    """Samples ``(i, j)`` of the padded, subsampled plane of chroma channel ``ch`` as the
    compressor builds it: full-resolution pixels edge-replicated (rows to a whole row group,
    columns to whole MCUs), converted, averaged (libjpeg's biased ``h2v1``/``h2v2`` average for
    8-bit samples, the mean for the differentiable mode), rows below the plane replicated."""
    ic = tl.minimum(i, HC - 1)
    for dy in tl.static_range(FV):
        row = tl.minimum(ic * FV + dy, H - 1)
        for dx in tl.static_range(FH):
            p = src + row * s_h + tl.minimum(j * FH + dx, W - 1) * s_w
            r = tl.load(p, mask=mask, other=0)
            g = tl.load(p + s_c, mask=mask, other=0)
            b = tl.load(p + 2 * s_c, mask=mask, other=0)
            if dy == 0 and dx == 0:
                acc = _to_ycc(r, g, b, col_ptr, ch, MODE, CT)
            else:
                acc += _to_ycc(r, g, b, col_ptr, ch, MODE, CT)
    if FH == 2:
        if MODE == 2:
            acc = acc * (0.5 / FV)  # box filter
        elif FV == 2:
            acc = (acc + 1 + j % 2) >> 2  # h2v2_downsample: bias 1, 2, 1, 2, ...
        else:
            acc = (acc + j % 2) >> 1  # h2v1_downsample: bias 0, 1, 0, 1, ...
    return acc


@triton.jit
def _sample_tile(src, by, bx, bmask, H, W, HC, s_c, s_h, s_w, col_ptr, ch: tl.constexpr,
                 C: tl.constexpr, FH: tl.constexpr, FV: tl.constexpr, MODE: tl.constexpr,
                 CT: tl.constexpr, NB: tl.constexpr):  # fmt: skip
    """The samples of blocks ``(by, bx)`` (``[NB]``) of channel ``ch`` (0: luma, else a chroma
    plane): a tile ``[8, 8, NB]``, int32 for the exact and float modes. ``src``: the image of
    each block (``[NB]`` pointers)."""
    if _BROADCAST:
        r, c = _rows8()
        y = by[None, None, :] * 8 + r
        x = bx[None, None, :] * 8 + c
        s3 = src[None, None, :]
        m3 = bmask[None, None, :]
        if ch == 0:
            tile = _luma_samples(s3, y, x, m3, H, W, s_c, s_h, s_w, col_ptr, C, MODE, CT)
        else:
            tile = _chroma_samples(s3, y, x, m3, H, W, HC, s_c, s_h, s_w, col_ptr, ch, FH, FV,
                                   MODE, CT)  # fmt: skip
    else:
        if MODE == 2:
            tile = tl.zeros([8, 8, NB], CT)
        else:
            tile = tl.zeros([8, 8, NB], tl.int32)
        x = bx[None, :] * 8 + tl.arange(0, 8)[:, None]  # [8, NB]
        for rr in tl.range(0, 8, num_stages=1, loop_unroll_factor=1):  # see _BROADCAST
            y = by[None, :] * 8 + rr
            if ch == 0:
                row = _luma_samples(src[None, :], y, x, bmask[None, :], H, W, s_c, s_h, s_w,
                                    col_ptr, C, MODE, CT)  # fmt: skip
            else:
                row = _chroma_samples(src[None, :], y, x, bmask[None, :], H, W, HC, s_c, s_h,
                                      s_w, col_ptr, ch, FH, FV, MODE, CT)  # fmt: skip
            tile = _put_row(tile, rr, row)
    return tile


@triton.jit
def _fold_edges(g, y, x, H, W):
    """Transpose of edge replication inside a tile: the gradient of rows ``>= H - 1`` summed onto
    row ``H - 1``, then columns likewise (every replicated sample lies in its source's block)."""
    tail = tl.sum(tl.where(y >= H - 1, g, 0.0), axis=0)
    g = tl.where(y == H - 1, tail[None, :, :], g)
    tail = tl.sum(tl.where(x >= W - 1, g, 0.0), axis=1)
    return tl.where(x == W - 1, tail[:, None, :], g)


# ----------------------------------------------------------------------------------------------
# Forward kernels
# ----------------------------------------------------------------------------------------------


@triton.jit
def _chroma_kernel(
    src_ptr,  # *u8|float, [N, 3, H, W] RGB image (uint8 for MODE 0, CT otherwise), any strides
    dst_ptr,  # *u8|CT, [N, 2, HC, WC] decoded Cb, Cr planes (contiguous; CT for MODE 2)
    q_ptr,  # *i32|CT, [3, 64] quantization tables of Y, Cb, Cr (natural order)
    rcp_ptr,  # *f32, [3, 64] fl32(1 / (8 q)) (MODE 0)
    mat_ptr,  # *i32|CT, [2, 64] forward / inverse 1-D transform matrices
    col_ptr,  # *f64, [30] float colour maps (MODE 1, 2)
    NBLK,  # N * CHB * CWB, number of chroma blocks
    CWB,  # chroma blocks per row, ceil(W / (8 FH))
    CHBWB,  # CHB * CWB, chroma blocks per image (CHB = ceil(H / (8 FV)))
    H,  # image height
    W,  # image width
    HC,  # chroma plane height, ceil(H / FV)
    WC,  # chroma plane width, ceil(W / FH)
    s_n,  # src stride (elements) of the N dim
    s_c,  # src stride (elements) of the C dim
    s_h,  # src stride (elements) of the H dim
    s_w,  # src stride (elements) of the W dim
    FH: tl.constexpr,  # horizontal factor: 1 (4:4:4) or 2
    FV: tl.constexpr,  # vertical factor: 1 or 2 (4:2:0)
    MODE: tl.constexpr,  # MODE_EXACT, MODE_FLOAT or MODE_DIFF
    CUBIC: tl.constexpr,  # MODE 2: cubic rounding (else straight-through)
    CT: tl.constexpr,  # float compute dtype (MODE 1, 2)
    NB: tl.constexpr,  # blocks per program
    I64: tl.constexpr,  # int64 index arithmetic
):
    bmask, n, by, bx = _blocks(NBLK, CWB, CHBWB, NB, I64)
    r, c = _rows8()
    i = by[None, None, :] * 8 + r  # row and column of each sample in the chroma plane
    j = bx[None, None, :] * 8 + c
    src = src_ptr + n * s_n
    dst = dst_ptr + n[None, None, :] * (2 * HC * WC) + i * WC + j
    smask = bmask[None, None, :] & (i < HC) & (j < WC)
    out_ty = dst_ptr.dtype.element_ty
    # One component at a time, stored at once: the second reloads the (cached) pixels instead of
    # keeping a second tile live through the first one's transforms.
    cb = _sample_tile(src, by, bx, bmask, H, W, HC, s_c, s_h, s_w, col_ptr, 1, 3, FH, FV, MODE,
                      CT, NB)  # fmt: skip
    cb = _code(cb, q_ptr, rcp_ptr, mat_ptr, 1, MODE, CUBIC, CT)
    tl.store(dst, cb.to(out_ty), mask=smask)
    cr = _sample_tile(src, by, bx, bmask, H, W, HC, s_c, s_h, s_w, col_ptr, 2, 3, FH, FV, MODE,
                      CT, NB)  # fmt: skip
    cr = _code(cr, q_ptr, rcp_ptr, mat_ptr, 2, MODE, CUBIC, CT)
    tl.store(dst + HC * WC, cr.to(out_ty), mask=smask)


@triton.jit
def _emit(dst, plane, yv, y, x, ok, H, W, HC, WC, col_ptr, C: tl.constexpr, FH: tl.constexpr,
          FV: tl.constexpr, FANCY: tl.constexpr, MODE: tl.constexpr, CT: tl.constexpr):  # fmt: skip
    """Store the output pixels ``(y, x)`` (mask ``ok``) of decoded luma ``yv``: the grey value, or
    RGB from ``yv`` and the chroma upsampled from ``plane``."""
    out_ty = dst.dtype.element_ty
    if C == 1:
        tl.store(dst + y * W + x, yv.to(out_ty), mask=ok)
    else:
        cb = _upsample(plane, y, x, ok, HC, WC, FH, FV, FANCY, MODE != 2, CT)
        cr = _upsample(plane + HC * WC, y, x, ok, HC, WC, FH, FV, FANCY, MODE != 2, CT)
        for ch in tl.static_range(3):
            v = _to_rgb(yv, cb, cr, col_ptr, ch, MODE, CT)
            if MODE != 0:
                v = tl.minimum(tl.maximum(v, 0.0), 255.0)
            tl.store(dst + ch * H * W + y * W + x, v.to(out_ty), mask=ok)


@triton.jit
def _luma_kernel(
    src_ptr,  # *u8|float, [N, C, H, W] image (uint8 for MODE 0, CT otherwise), any strides
    chroma_ptr,  # *u8|CT, [N, 2, HC, WC] decoded Cb, Cr planes from _chroma_kernel (C == 3)
    dst_ptr,  # *u8|CT, [N, C, H, W] output (contiguous)
    q_ptr,  # *i32|CT, [3, 64] quantization tables of Y, Cb, Cr (natural order)
    rcp_ptr,  # *f32, [3, 64] fl32(1 / (8 q)) (MODE 0)
    mat_ptr,  # *i32|CT, [2, 64] forward / inverse 1-D transform matrices
    col_ptr,  # *f64, [30] float colour maps (MODE 1, 2)
    NBLK,  # N * HB * WB, number of luma blocks
    WB,  # blocks per row, ceil(W / 8)
    HBWB,  # HB * WB, blocks per image
    H,  # image height
    W,  # image width
    HC,  # chroma plane height (C == 3)
    WC,  # chroma plane width (C == 3)
    s_n,  # src stride (elements) of the N dim
    s_c,  # src stride (elements) of the C dim
    s_h,  # src stride (elements) of the H dim
    s_w,  # src stride (elements) of the W dim
    C: tl.constexpr,  # channels: 1 (greyscale JPEG) or 3
    FH: tl.constexpr,  # horizontal chroma factor: 1 (4:4:4) or 2
    FV: tl.constexpr,  # vertical chroma factor: 1 or 2 (4:2:0)
    FANCY: tl.constexpr,  # fancy upsampling (WC > 2), else nearest
    MODE: tl.constexpr,  # MODE_EXACT, MODE_FLOAT or MODE_DIFF
    CUBIC: tl.constexpr,  # MODE 2: cubic rounding (else straight-through)
    CT: tl.constexpr,  # float compute dtype (MODE 1, 2)
    NB: tl.constexpr,  # blocks per program
    I64: tl.constexpr,  # int64 index arithmetic
):
    bmask, n, by, bx = _blocks(NBLK, WB, HBWB, NB, I64)
    yd = _sample_tile(src_ptr + n * s_n, by, bx, bmask, H, W, HC, s_c, s_h, s_w, col_ptr, 0, C,
                      FH, FV, MODE, CT, NB)  # fmt: skip
    yd = _code(yd, q_ptr, rcp_ptr, mat_ptr, 0, MODE, CUBIC, CT)
    dst = dst_ptr + n * (C * H * W)
    plane = chroma_ptr + n * (2 * HC * WC)
    if _BROADCAST:
        r, c = _rows8()
        y = by[None, None, :] * 8 + r
        x = bx[None, None, :] * 8 + c
        ok = bmask[None, None, :] & (y < H) & (x < W)
        _emit(dst[None, None, :], plane[None, None, :], yd, y, x, ok, H, W, HC, WC, col_ptr, C,
              FH, FV, FANCY, MODE, CT)  # fmt: skip
    else:
        x = bx[None, :] * 8 + tl.arange(0, 8)[:, None]  # [8, NB]
        for rr in tl.range(0, 8, num_stages=1, loop_unroll_factor=1):  # see _BROADCAST
            y = by[None, :] * 8 + rr
            ok = bmask[None, :] & (y < H) & (x < W)
            _emit(dst[None, :], plane[None, :], _row_of(yd, rr), y, x, ok, H, W, HC, WC, col_ptr,
                  C, FH, FV, FANCY, MODE, CT)  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Backward kernels (differentiable mode)
# ----------------------------------------------------------------------------------------------


@triton.jit
def _colour_bwd(gout, gch, plane, yv, y, x, ok, H, W, HC, WC, g_c, g_h, g_w, col_ptr,
                C: tl.constexpr, FH: tl.constexpr, FV: tl.constexpr, FANCY: tl.constexpr,
                CT: tl.constexpr):  # fmt: skip
    """Gradient of decoded luma ``yv`` at pixels ``(y, x)`` from the output gradient ``gout``
    (zero outside the image: the crop), through the final clamp and YCbCr -> RGB; the chroma
    gradients go to ``gch``."""
    if C == 1:
        gy = tl.load(gout + y * g_h + x * g_w, mask=ok, other=0.0)
    else:
        cb = _upsample(plane, y, x, ok, HC, WC, FH, FV, FANCY, False, CT)
        cr = _upsample(plane + HC * WC, y, x, ok, HC, WC, FH, FV, FANCY, False, CT)
        p = gout + y * g_h + x * g_w
        o = _to_rgb(yv, cb, cr, col_ptr, 0, 2, CT)
        g0 = tl.load(p, mask=ok & (o >= 0.0) & (o <= 255.0), other=0.0)
        o = _to_rgb(yv, cb, cr, col_ptr, 1, 2, CT)
        g1 = tl.load(p + g_c, mask=ok & (o >= 0.0) & (o <= 255.0), other=0.0)
        o = _to_rgb(yv, cb, cr, col_ptr, 2, 2, CT)
        g2 = tl.load(p + 2 * g_c, mask=ok & (o >= 0.0) & (o <= 255.0), other=0.0)
        q = gch + y * W + x
        tl.store(q, _affine_t(g0, g1, g2, col_ptr, 15, 1, CT), mask=ok)
        tl.store(q + H * W, _affine_t(g0, g1, g2, col_ptr, 15, 2, CT), mask=ok)
        gy = _affine_t(g0, g1, g2, col_ptr, 15, 0, CT)
    return gy


@triton.jit
def _emit_luma_grad(gin, gy, y, x, ok, H, W, col_ptr, C: tl.constexpr, CT: tl.constexpr):
    """Store the input gradient of the luma path: ``gy`` itself (grey) or the luma row of the
    transpose of RGB -> YCbCr (the chroma rows are added by :func:`_chroma_bwd_kernel`)."""
    if C == 1:
        tl.store(gin + y * W + x, gy, mask=ok)
    else:
        for ch in tl.static_range(3):
            tl.store(gin + ch * H * W + y * W + x, tl.load(col_ptr + ch).to(CT) * gy, mask=ok)


@triton.jit
def _luma_bwd_kernel(
    src_ptr,  # *CT, [N, C, H, W] forward input, any strides
    chroma_ptr,  # *CT, [N, 2, HC, WC] decoded Cb, Cr planes saved by the forward (C == 3)
    gout_ptr,  # *CT, [N, C, H, W] gradient of the output, any strides
    gin_ptr,  # *CT, [N, C, H, W] gradient of the input (contiguous; written: its luma part)
    gch_ptr,  # *CT, [N, 2, H, W] gradient of the upsampled Cb, Cr (contiguous; written, C == 3)
    q_ptr,  # *CT, [3, 64] quantization tables of Y, Cb, Cr (natural order)
    mat_ptr,  # *CT, [2, 64] orthonormal DCT matrix and its transpose
    col_ptr,  # *f64, [30] float colour maps
    NBLK,  # N * HB * WB, number of luma blocks
    WB,  # blocks per row, ceil(W / 8)
    HBWB,  # HB * WB, blocks per image
    H,  # image height
    W,  # image width
    HC,  # chroma plane height (C == 3)
    WC,  # chroma plane width (C == 3)
    s_n,  # src stride (elements) of the N dim
    s_c,  # src stride (elements) of the C dim
    s_h,  # src stride (elements) of the H dim
    s_w,  # src stride (elements) of the W dim
    g_n,  # gout stride (elements) of the N dim
    g_c,  # gout stride (elements) of the C dim
    g_h,  # gout stride (elements) of the H dim
    g_w,  # gout stride (elements) of the W dim
    C: tl.constexpr,  # channels: 1 or 3
    FH: tl.constexpr,  # horizontal chroma factor: 1 (4:4:4) or 2
    FV: tl.constexpr,  # vertical chroma factor: 1 or 2 (4:2:0)
    FANCY: tl.constexpr,  # fancy upsampling (WC > 2), else nearest
    CUBIC: tl.constexpr,  # cubic rounding (else straight-through)
    CT: tl.constexpr,  # float compute dtype
    NB: tl.constexpr,  # blocks per program
    I64: tl.constexpr,  # int64 index arithmetic
):
    bmask, n, by, bx = _blocks(NBLK, WB, HBWB, NB, I64)
    v = _sample_tile(src_ptr + n * s_n, by, bx, bmask, H, W, HC, s_c, s_h, s_w, col_ptr, 0, C,
                     FH, FV, 2, CT, NB)  # fmt: skip
    yd, z, rec = _code_diff(v, q_ptr, mat_ptr, 0, CUBIC, CT)
    gout = gout_ptr + n * g_n
    gch = gch_ptr + n * (2 * H * W)
    plane = chroma_ptr + n * (2 * HC * WC)
    gin = gin_ptr + n * (C * H * W)
    r, c = _rows8()
    y3 = by[None, None, :] * 8 + r
    x3 = bx[None, None, :] * 8 + c
    if _BROADCAST:
        ok = bmask[None, None, :] & (y3 < H) & (x3 < W)
        g = _colour_bwd(gout[None, None, :], gch[None, None, :], plane[None, None, :], yd, y3, x3,
                        ok, H, W, HC, WC, g_c, g_h, g_w, col_ptr, C, FH, FV, FANCY, CT)  # fmt: skip
    else:
        g = tl.zeros([8, 8, NB], CT)
        x = bx[None, :] * 8 + tl.arange(0, 8)[:, None]  # [8, NB]
        for rr in tl.range(0, 8, num_stages=1, loop_unroll_factor=1):  # see _BROADCAST
            y = by[None, :] * 8 + rr
            ok = bmask[None, :] & (y < H) & (x < W)
            gy = _colour_bwd(gout[None, :], gch[None, :], plane[None, :], _row_of(yd, rr), y, x,
                             ok, H, W, HC, WC, g_c, g_h, g_w, col_ptr, C, FH, FV, FANCY, CT)  # fmt: skip
            g = _put_row(g, rr, gy)
    g = _code_diff_bwd(g, z, rec, q_ptr, mat_ptr, 0, CUBIC, CT)
    g = _fold_edges(g, y3, x3, H, W)
    if _BROADCAST:
        ok = bmask[None, None, :] & (y3 < H) & (x3 < W)
        _emit_luma_grad(gin[None, None, :], g, y3, x3, ok, H, W, col_ptr, C, CT)
    else:
        x = bx[None, :] * 8 + tl.arange(0, 8)[:, None]
        for rr in tl.range(0, 8, num_stages=1, loop_unroll_factor=1):  # see _BROADCAST
            y = by[None, :] * 8 + rr
            ok = bmask[None, :] & (y < H) & (x < W)
            _emit_luma_grad(gin[None, :], _row_of(g, rr), y, x, ok, H, W, col_ptr, C, CT)


@triton.jit
def _chroma_up_bwd_kernel(
    gch_ptr,  # *CT, [N, 2, H, W] gradient of the upsampled Cb, Cr (contiguous)
    gsm_ptr,  # *CT, [N, 2, HC, WC] gradient of the subsampled planes (contiguous; written)
    NPIX,  # N * 2 * HC * WC
    H,  # image height
    W,  # image width
    HC,  # subsampled height
    WC,  # subsampled width
    FV: tl.constexpr,  # vertical factor: 1 (4:2:2) or 2 (4:2:0); the horizontal one is 2
    FANCY: tl.constexpr,  # fancy upsampling (WC > 2), else nearest
    CT: tl.constexpr,  # float compute dtype
    BLOCK: tl.constexpr,  # samples per program
    I64: tl.constexpr,  # int64 index arithmetic
):
    pid = tl.program_id(0)
    if I64:
        p = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    else:
        p = pid * BLOCK + tl.arange(0, BLOCK)
    mask = p < NPIX
    nk = p // (HC * WC)  # image * 2 + channel
    rem = p - nk * (HC * WC)
    i = rem // WC
    j = rem - i * WC
    src = gch_ptr + nk * (H * W)
    acc = tl.zeros([BLOCK], CT)
    if FANCY:
        # Output pixel (y, x) weighs sample (i, j) by wy * wx / 16 (4:2:0) or wx / 4 (4:2:2), with
        # wx = 3 [x // 2 == j] + [jn(x) == j] (jn: the further column, clamped) and wy likewise.
        for ty in tl.static_range(4 if FV == 2 else 1):
            if FV == 2:
                yy = 2 * i - 1 + ty
                iy = tl.maximum(yy, 0) // 2
                inb = tl.minimum(tl.maximum(iy + 2 * (yy % 2) - 1, 0), HC - 1)
                wy = 3 * (iy == i).to(tl.int32) + (inb == i).to(tl.int32)
                okr = (yy >= 0) & (yy < H)
            else:
                yy = i
                wy = 1
                okr = yy < H
            for tx in tl.static_range(4):
                xx = 2 * j - 1 + tx
                jx = tl.maximum(xx, 0) // 2
                jn = tl.minimum(tl.maximum(jx + 2 * (xx % 2) - 1, 0), WC - 1)
                wx = 3 * (jx == j).to(tl.int32) + (jn == j).to(tl.int32)
                ok = mask & okr & (xx >= 0) & (xx < W)
                g = tl.load(src + yy * W + xx, mask=ok, other=0.0)
                acc += (wy * wx).to(CT) * g
        acc = acc * (0.0625 if FV == 2 else 0.25)
    else:
        for ty in tl.static_range(FV):
            for tx in tl.static_range(2):
                yy = i * FV + ty
                xx = j * 2 + tx
                ok = mask & (yy < H) & (xx < W)
                acc += tl.load(src + yy * W + xx, mask=ok, other=0.0)
    tl.store(gsm_ptr + p, acc, mask=mask)


@triton.jit
def _chroma_scatter(gin, g, tail, i, j, mask, H, W, HC, WC, col_ptr, ch: tl.constexpr,
                    FH: tl.constexpr, FV: tl.constexpr, CT: tl.constexpr):  # fmt: skip
    """Add the gradient ``g`` of chroma samples ``(i, j)`` (``tail``: the gradient gathered at
    the last image column, see :func:`_chroma_bwd_component`) to the input gradient of the
    full-resolution pixels they average, through row ``ch`` of the transpose of RGB -> YCbCr."""
    for dy in tl.static_range(FV):
        yy = i * FV + dy
        # rows past H - 1 (the bottom padding of an odd height) replicate row H - 1
        w = tl.where(yy == H - 1, (FV * HC - H + 1) * (1.0 / (FH * FV)), 1.0 / (FH * FV))
        for dx in tl.static_range(FH):
            xx = j * FH + dx
            ok = mask & (i < HC) & (j < WC) & (yy < H) & (xx < W)
            gx = tl.where(xx == W - 1, tail, g) * w
            p = gin + yy * W + xx
            for k in tl.static_range(3):
                add = tl.load(col_ptr + ch * 3 + k).to(CT) * gx
                tl.store(p + k * H * W, tl.load(p + k * H * W, mask=ok, other=0.0) + add, mask=ok)


@triton.jit
def _chroma_bwd_component(src, gsm, gin, by, bx, bmask, H, W, HC, WC, s_c, s_h, s_w, q_ptr,
                          mat_ptr, col_ptr, ch: tl.constexpr, FH: tl.constexpr,
                          FV: tl.constexpr, CUBIC: tl.constexpr, CT: tl.constexpr,
                          NB: tl.constexpr):  # fmt: skip
    """Backward of one chroma channel's blocks: gradient of the decoded plane (``gsm``) -> the
    channel's part of the input gradient (added into ``gin``)."""
    s = _sample_tile(src, by, bx, bmask, H, W, HC, s_c, s_h, s_w, col_ptr, ch, 3, FH, FV, 2, CT,
                     NB)  # fmt: skip
    _d, z, rec = _code_diff(s, q_ptr, mat_ptr, ch, CUBIC, CT)
    r, c = _rows8()
    i = by[None, None, :] * 8 + r
    j = bx[None, None, :] * 8 + c
    inside = bmask[None, None, :] & (i < HC) & (j < WC)  # the decoder's crop
    g = tl.load(gsm[None, None, :] + i * WC + j, mask=inside, other=0.0)
    g = _code_diff_bwd(g, z, rec, q_ptr, mat_ptr, ch, CUBIC, CT)
    # rows of the block past HC - 1 replicate row HC - 1 of the plane
    tail = tl.sum(tl.where(i >= HC - 1, g, 0.0), axis=0)
    g = tl.where(i == HC - 1, tail[None, :, :], g)
    # full-resolution columns past W - 1 replicate column W - 1: sample column j averages
    # columns FH j .. FH j + FH - 1, cnt(j) of which are at or past W - 1 (all of them in the
    # block holding column W - 1)
    cnt = (j * FH >= W - 1).to(CT)
    if FH == 2:
        cnt += (j * 2 + 1 >= W - 1).to(CT)
    tail = tl.sum(g * cnt, axis=1)[:, None, :]  # [8, 1, NB]
    if _BROADCAST:
        _chroma_scatter(gin[None, None, :], g, tail, i, j, bmask[None, None, :], H, W, HC, WC,
                        col_ptr, ch, FH, FV, CT)  # fmt: skip
    else:
        j2 = bx[None, :] * 8 + tl.arange(0, 8)[:, None]  # [8, NB]
        for rr in tl.range(0, 8, num_stages=1, loop_unroll_factor=1):  # see _BROADCAST
            _chroma_scatter(gin[None, :], _row_of(g, rr), _row_of(tail, rr), by[None, :] * 8 + rr,
                            j2, bmask[None, :], H, W, HC, WC, col_ptr, ch, FH, FV, CT)  # fmt: skip


@triton.jit
def _chroma_bwd_kernel(
    src_ptr,  # *CT, [N, 3, H, W] forward input, any strides
    gsm_ptr,  # *CT, [N, 2, HC, WC] gradient of the decoded chroma planes (contiguous)
    gin_ptr,  # *CT, [N, 3, H, W] gradient of the input (contiguous; the chroma part is added)
    q_ptr,  # *CT, [3, 64] quantization tables of Y, Cb, Cr (natural order)
    mat_ptr,  # *CT, [2, 64] orthonormal DCT matrix and its transpose
    col_ptr,  # *f64, [30] float colour maps
    NBLK,  # N * CHB * CWB, number of chroma blocks
    CWB,  # chroma blocks per row
    CHBWB,  # chroma blocks per image
    H,  # image height
    W,  # image width
    HC,  # chroma plane height, ceil(H / FV)
    WC,  # chroma plane width, ceil(W / FH)
    s_n,  # src stride (elements) of the N dim
    s_c,  # src stride (elements) of the C dim
    s_h,  # src stride (elements) of the H dim
    s_w,  # src stride (elements) of the W dim
    FH: tl.constexpr,  # horizontal factor: 1 (4:4:4) or 2
    FV: tl.constexpr,  # vertical factor: 1 or 2 (4:2:0)
    CUBIC: tl.constexpr,  # cubic rounding (else straight-through)
    CT: tl.constexpr,  # float compute dtype
    NB: tl.constexpr,  # blocks per program
    I64: tl.constexpr,  # int64 index arithmetic
):
    bmask, n, by, bx = _blocks(NBLK, CWB, CHBWB, NB, I64)
    src = src_ptr + n * s_n
    gsm = gsm_ptr + n * (2 * HC * WC)
    gin = gin_ptr + n * (3 * H * W)
    _chroma_bwd_component(src, gsm, gin, by, bx, bmask, H, W, HC, WC, s_c, s_h, s_w, q_ptr,
                          mat_ptr, col_ptr, 1, FH, FV, CUBIC, CT, NB)  # fmt: skip
    _chroma_bwd_component(src, gsm + HC * WC, gin, by, bx, bmask, H, W, HC, WC, s_c, s_h, s_w,
                          q_ptr, mat_ptr, col_ptr, 2, FH, FV, CUBIC, CT, NB)  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Launchers
# ----------------------------------------------------------------------------------------------

_INTERPRETED = not isinstance(_luma_kernel, triton.runtime.jit.JITFunction)
_NB = NB_INTERPRET if _INTERPRETED else NB_GPU


def _max_offset(t: torch.Tensor) -> int:
    return sum((s - 1) * abs(st) for s, st in zip(t.shape, t.stride()) if s > 0)


def _needs_i64(count: int, *tensors: torch.Tensor) -> bool:
    """Whether an index or element offset of the launch can reach 2**31."""
    top = max([count * 64] + [_max_offset(t) for t in tensors])
    return top + 64 * BLOCK >= _INT32_LIMIT


def _new(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A buffer the kernels fill (poisoned first when tests ask for it, see ``_image.POISON``)."""
    out = torch.empty(shape, dtype=dtype, device=device)
    if _image.POISON is not None:
        out.fill_(_image.POISON)
    return out


def _check(x: torch.Tensor, tables: torch.Tensor, subsampling: str, dtypes, op: str) -> None:
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(
            f"{op}: expected an image [N, C, H, W] with C in (1, 3), got {tuple(x.shape)}"
        )
    if x.dtype not in dtypes:
        raise TypeError(f"{op}: expected an image of dtype {dtypes}, got {x.dtype}")
    if tables.dim() != 3 or not 1 <= tables.shape[0] <= 3 or tuple(tables.shape[1:]) != (8, 8):
        raise ValueError(
            f"{op}: expected tables [K, 8, 8] with K in 1..3, got {tuple(tables.shape)}"
        )
    if subsampling not in cref.SUBSAMPLING:
        raise ValueError(f"{op}: unknown subsampling {subsampling!r}")


def _component_tables(
    tables: torch.Tensor, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """``[3, 64]``: the table of Y, Cb, Cr (``reference.jpeg.component_tables``)."""
    k = tables.shape[0]
    idx = [min(c, k - 1) for c in range(3)]
    return tables.detach()[idx].reshape(3, 64).to(device=device, dtype=dtype).contiguous()


class _Geometry:
    """Block grids of an ``[N, C, H, W]`` image with the given subsampling."""

    def __init__(self, x: torch.Tensor, subsampling: str) -> None:
        self.n, self.c, self.h, self.w = (int(v) for v in x.shape)
        self.fh, self.fv = cref.SUBSAMPLING[subsampling] if self.c == 3 else (1, 1)
        self.hb, self.wb = ref.blocks_for(self.h), ref.blocks_for(self.w)
        self.hc, self.wc = -(-self.h // self.fv), -(-self.w // self.fh)
        self.chb = -(-self.h // (8 * self.fv))
        self.cwb = -(-self.w // (8 * self.fh))
        self.subsampled = self.fh == 2
        self.fancy = self.wc > 2

    @property
    def luma_blocks(self) -> int:
        return self.n * self.hb * self.wb

    @property
    def chroma_blocks(self) -> int:
        return self.n * self.chb * self.cwb


def _ct(dtype: torch.dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


def _forward(
    x: torch.Tensor,
    q: torch.Tensor,
    rcp: torch.Tensor,
    mats: torch.Tensor,
    subsampling: str,
    mode: int,
    cubic: bool,
    out_dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run the forward kernels; return the output and the decoded chroma planes (None for one
    channel)."""
    geo = _Geometry(x, subsampling)
    dev = x.device
    out = _new((geo.n, geo.c, geo.h, geo.w), out_dtype, dev)
    ct = _ct(out_dtype if mode != MODE_EXACT else torch.float32)
    coefs = _colour_coefs(dev)
    i64 = _needs_i64(geo.luma_blocks, x, out)
    chroma = None
    if geo.c == 3:
        dtype = out_dtype if mode == MODE_DIFF else torch.uint8
        chroma = _new((geo.n, 2, geo.hc, geo.wc), dtype, dev)
        _chroma_kernel[(triton.cdiv(geo.chroma_blocks, _NB),)](
            x, chroma, q, rcp, mats, coefs,
            geo.chroma_blocks, geo.cwb, geo.chb * geo.cwb, geo.h, geo.w, geo.hc, geo.wc,
            *x.stride(),
            FH=geo.fh, FV=geo.fv, MODE=mode, CUBIC=cubic, CT=ct, NB=_NB, I64=i64,
            num_warps=NUM_WARPS,
        )  # fmt: skip
    _luma_kernel[(triton.cdiv(geo.luma_blocks, _NB),)](
        x, chroma if chroma is not None else out, out, q, rcp, mats, coefs,
        geo.luma_blocks, geo.wb, geo.hb * geo.wb, geo.h, geo.w, geo.hc, geo.wc,
        *x.stride(),
        C=geo.c, FH=geo.fh, FV=geo.fv, FANCY=geo.fancy, MODE=mode, CUBIC=cubic, CT=ct,
        NB=_NB, I64=i64,
        num_warps=NUM_WARPS,
    )  # fmt: skip
    return out, chroma


def simulate_exact(
    x: torch.Tensor, tables: torch.Tensor, subsampling: str = "4:2:0"
) -> torch.Tensor:
    """Exact round trip of uint8 ``[N, C, H, W]`` (C = 1 or 3, any strides) through
    libjpeg-turbo's codec: :func:`fastperc.reference.jpeg.simulate_exact` (with the default
    ``"clamp"`` range limiting), bit for bit.

    Args:
        x: uint8 images on a CUDA device (or the CPU under ``TRITON_INTERPRET=1``).
        tables: ``[K, 8, 8]`` integer quantization tables (K = 1..3, natural order), entries in
            1..8191 (``fastperc.jpeg.EXACT_TABLE_MAX``).
        subsampling: ``"4:4:4"``, ``"4:2:2"`` or ``"4:2:0"`` (ignored for one channel).

    Returns:
        A new contiguous uint8 tensor ``[N, C, H, W]``.
    """
    _check(x, tables, subsampling, (torch.uint8,), "simulate_exact")
    dev = x.device
    q = _component_tables(tables, torch.int64, dev)
    if bool((q < 1).any()) or bool((q > 8191).any()):
        raise ValueError("simulate_exact: expected table entries in 1..8191")
    rcp = (1.0 / (8.0 * q.to(torch.float64))).to(torch.float32)
    mats = _matrices("islow", torch.int32, dev)  # read by the interpreted formulation only
    out, _ = _forward(x, q.to(torch.int32), rcp, mats, subsampling, MODE_EXACT, False, torch.uint8)
    return out


def simulate_float(
    x: torch.Tensor, tables: torch.Tensor, subsampling: str = "4:2:0"
) -> torch.Tensor:
    """The float mode (:func:`fastperc.reference.jpeg.simulate_float`): float32 or float64
    ``[N, C, H, W]`` on 0..255 (any strides) -> decoded images of the same dtype on 0..255.

    ``tables``: ``[K, 8, 8]`` positive tables (K = 1..3). Colour conversions run in float64 and
    the DCTs in the image's dtype; see the module docstring for the agreement with the reference.
    """
    _check(x, tables, subsampling, (torch.float32, torch.float64), "simulate_float")
    dev = x.device
    q = _component_tables(tables, x.dtype, dev)
    mats = _matrices("float", x.dtype, dev)
    out, _ = _forward(x, q, q, mats, subsampling, MODE_FLOAT, False, x.dtype)
    return out


def _diff_forward(
    x: torch.Tensor, q: torch.Tensor, subsampling: str, cubic: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    mats = _matrices("ortho", x.dtype, x.device)
    return _forward(x, q, q, mats, subsampling, MODE_DIFF, cubic, x.dtype)


def _diff_backward(
    x: torch.Tensor,
    q: torch.Tensor,
    chroma: torch.Tensor | None,
    gout: torch.Tensor,
    subsampling: str,
    cubic: bool,
) -> torch.Tensor:
    """Gradient of the differentiable round trip with respect to its input ``x``."""
    geo = _Geometry(x, subsampling)
    dev = x.device
    ct = _ct(x.dtype)
    mats = _matrices("ortho", x.dtype, dev)
    coefs = _colour_coefs(dev)
    gin = _new((geo.n, geo.c, geo.h, geo.w), x.dtype, dev)
    gch = _new((geo.n, 2, geo.h, geo.w), x.dtype, dev) if geo.c == 3 else gin
    i64 = _needs_i64(geo.luma_blocks, x, gout, gin, gch)
    _luma_bwd_kernel[(triton.cdiv(geo.luma_blocks, _NB),)](
        x, chroma if chroma is not None else gin, gout, gin, gch, q, mats, coefs,
        geo.luma_blocks, geo.wb, geo.hb * geo.wb, geo.h, geo.w, geo.hc, geo.wc,
        *x.stride(), *gout.stride(),
        C=geo.c, FH=geo.fh, FV=geo.fv, FANCY=geo.fancy, CUBIC=cubic, CT=ct, NB=_NB, I64=i64,
        num_warps=NUM_WARPS,
    )  # fmt: skip
    if geo.c == 1:
        return gin
    gsm = gch  # 4:4:4: the chroma planes are not resampled
    if geo.subsampled:
        gsm = _new((geo.n, 2, geo.hc, geo.wc), x.dtype, dev)
        npix = gsm.numel()
        _chroma_up_bwd_kernel[(triton.cdiv(npix, BLOCK),)](
            gch, gsm, npix, geo.h, geo.w, geo.hc, geo.wc,
            FV=geo.fv, FANCY=geo.fancy, CT=ct, BLOCK=BLOCK, I64=i64,
            num_warps=NUM_WARPS,
        )  # fmt: skip
    _chroma_bwd_kernel[(triton.cdiv(geo.chroma_blocks, _NB),)](
        x, gsm, gin, q, mats, coefs,
        geo.chroma_blocks, geo.cwb, geo.chb * geo.cwb, geo.h, geo.w, geo.hc, geo.wc,
        *x.stride(),
        FH=geo.fh, FV=geo.fv, CUBIC=cubic, CT=ct, NB=_NB, I64=i64,
        num_warps=NUM_WARPS,
    )  # fmt: skip
    return gin


class _Differentiable(torch.autograd.Function):
    """The differentiable round trip with Triton forward and backward kernels (gradients with
    respect to the tables from the reference)."""

    @staticmethod
    def forward(ctx, x, tables, subsampling, rounding):  # type: ignore[override]
        cubic = rounding == "cubic"
        q = _component_tables(tables, x.dtype, x.device)
        out, chroma = _diff_forward(x.detach(), q, subsampling, cubic)
        ctx.save_for_backward(x, tables, q, chroma if chroma is not None else out.new_empty(0))
        ctx.subsampling = subsampling
        ctx.rounding = rounding
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gout):  # type: ignore[override]
        x, tables, q, chroma = ctx.saved_tensors
        gx = gt = None
        if ctx.needs_input_grad[0]:
            gx = _diff_backward(
                x.detach(),
                q,
                chroma if chroma.numel() else None,
                gout,
                ctx.subsampling,
                ctx.rounding == "cubic",
            )
        if ctx.needs_input_grad[1]:
            with torch.enable_grad():
                t = tables.detach().requires_grad_(True)
                y = ref.simulate_differentiable(x.detach(), t, ctx.subsampling, ctx.rounding)
                (gt,) = torch.autograd.grad(y, t, gout)
        return gx, gt, None, None


def simulate_differentiable(
    x: torch.Tensor, tables: torch.Tensor, subsampling: str = "4:2:0", rounding: str = "cubic"
) -> torch.Tensor:
    """The differentiable mode (:func:`fastperc.reference.jpeg.simulate_differentiable`): float32
    or float64 ``[N, C, H, W]`` on 0..255 (any strides) -> decoded images of the same dtype.

    Differentiable with respect to ``x`` by the Triton backward kernels and with respect to
    ``tables`` (``[K, 8, 8]``, when it requires grad) through the reference; not twice
    differentiable. ``rounding``: ``"cubic"`` or ``"ste"``.
    """
    _check(x, tables, subsampling, (torch.float32, torch.float64), "simulate_differentiable")
    if rounding not in ("cubic", "ste"):
        raise ValueError(
            f"simulate_differentiable: expected rounding 'cubic' or 'ste', got {rounding!r}"
        )
    if torch.is_grad_enabled() and (x.requires_grad or tables.requires_grad):
        return _Differentiable.apply(x, tables, subsampling, rounding)
    q = _component_tables(tables, x.dtype, x.device)
    return _diff_forward(x, q, subsampling, rounding == "cubic")[0]


#: The round trip of each mode, as :mod:`fastperc.jpeg` dispatches it.
SIMULATE = {
    "exact": simulate_exact,
    "float": simulate_float,
    "differentiable": simulate_differentiable,
}


# ----------------------------------------------------------------------------------------------
# Compiling for a GPU without one
# ----------------------------------------------------------------------------------------------


def compile_for_gpu(arch: int = 90, variants: str = "all", verbose: bool = False) -> list[str]:
    """Compile the kernels for an NVIDIA GPU of compute capability ``arch`` without a GPU
    (``triton.compile`` of an ``ASTSource`` for ``GPUTarget("cuda", arch, 32)``), which catches
    what the interpreter does not check (types, layouts, constexpr use).

    Args:
        arch: compute capability times ten (90: H100/H200).
        variants: ``"all"`` (every mode, subsampling and channel count) or ``"some"`` (4:2:0
            only: one variant of each kernel and mode).
        verbose: print each line as soon as its variant is compiled.

    Returns:
        One line per compiled variant: kernel, constants, registers and spills when the bundled
        ``cuobjdump`` is available.

    Must run without ``TRITON_INTERPRET`` (the kernels must be JIT functions).
    """
    if _INTERPRETED:
        raise RuntimeError("compile_for_gpu: unset TRITON_INTERPRET (the kernels are interpreted)")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    target = GPUTarget("cuda", arch, 32)
    cases: list[tuple[object, dict[str, str], dict[str, object]]] = []
    layouts = [(3, 2, 2), (3, 2, 1), (3, 1, 1), (1, 1, 1)] if variants == "all" else [(3, 2, 2)]
    for mode in (MODE_EXACT, MODE_FLOAT, MODE_DIFF):
        img = {MODE_EXACT: "*u8", MODE_FLOAT: "*fp32", MODE_DIFF: "*fp32"}[mode]
        small = "*fp32" if mode == MODE_DIFF else "*u8"
        tab = "*i32" if mode == MODE_EXACT else "*fp32"
        common = {"q_ptr": tab, "rcp_ptr": "*fp32", "mat_ptr": tab, "col_ptr": "*fp64"}
        for c, fh, fv in layouts:
            sig = {"src_ptr": img, "chroma_ptr": small, "dst_ptr": img, **common}
            consts = dict(C=c, FH=fh, FV=fv, FANCY=True, MODE=mode, CUBIC=True, CT=tl.float32)
            cases.append((_luma_kernel, sig, consts))
            if c == 3:
                sig = {"src_ptr": img, "dst_ptr": small, **common}
                consts = dict(FH=fh, FV=fv, MODE=mode, CUBIC=True, CT=tl.float32)
                cases.append((_chroma_kernel, sig, consts))
    common = {"q_ptr": "*fp32", "mat_ptr": "*fp32", "col_ptr": "*fp64"}
    for c, fh, fv in layouts:
        sig = {"src_ptr": "*fp32", "chroma_ptr": "*fp32", "gout_ptr": "*fp32",
               "gin_ptr": "*fp32", "gch_ptr": "*fp32", **common}  # fmt: skip
        consts = dict(C=c, FH=fh, FV=fv, FANCY=True, CUBIC=True, CT=tl.float32)
        cases.append((_luma_bwd_kernel, sig, consts))
        if c == 3:
            sig = {"src_ptr": "*fp32", "gsm_ptr": "*fp32", "gin_ptr": "*fp32", **common}
            cases.append((_chroma_bwd_kernel, sig, dict(FH=fh, FV=fv, CUBIC=True, CT=tl.float32)))
        if fh == 2:
            sig = {"gch_ptr": "*fp32", "gsm_ptr": "*fp32"}
            consts = dict(FV=fv, FANCY=True, CT=tl.float32, BLOCK=BLOCK)
            cases.append((_chroma_up_bwd_kernel, sig, consts))
    lines = []
    for fn, ptrs, consts in cases:
        consts = {**consts, "I64": False}
        if "NB" in fn.arg_names:
            consts["NB"] = NB_GPU
        signature = {}
        for param in fn.params:
            if param.is_constexpr:
                signature[param.name] = "constexpr"
                if param.name not in consts:
                    raise ValueError(f"compile_for_gpu: no value for {fn.__name__}.{param.name}")
            else:
                signature[param.name] = ptrs.get(param.name, "i32")
        src = ASTSource(fn=fn, signature=signature, constexprs=consts)
        compiled = triton.compile(src, target=target, options={"num_warps": NUM_WARPS})
        shown = {k: v for k, v in consts.items() if k not in ("CT", "I64", "NB", "BLOCK")}
        lines.append(f"{fn.__name__} {shown}: {_resource_usage(compiled.asm.get('cubin'))}")
        if verbose:
            print(lines[-1], flush=True)
    return lines


def _resource_usage(cubin: bytes | None) -> str:
    """Registers / spill stores of a cubin from the ``cuobjdump`` bundled with Triton."""
    import os
    import subprocess
    import tempfile

    tool = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    if cubin is None or not os.path.exists(tool):
        return "compiled"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        res = subprocess.run([tool, "-res-usage", f.name], capture_output=True, text=True)
    for line in res.stdout.splitlines():
        if "REG:" in line:
            fields = dict(kv.split(":", 1) for kv in line.split() if ":" in kv)
            return f"registers {fields.get('REG')}, stack {fields.get('STACK')}, local {fields.get('LOCAL')}"
    return "compiled"
