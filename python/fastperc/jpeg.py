"""JPEG in the DCT domain: quantization tables, the 8x8 block DCT, quantization and a JPEG round
trip of image batches (:func:`jpeg_simulate`).

Images follow the conventions of :mod:`fastperc.color`: a ``torch.Tensor`` ``[C, H, W]`` or
``[*, C, H, W]`` (``channels_last`` kept), a ``numpy.ndarray`` ``[H, W, C]`` or ``[*, H, W, C]``
(``layout="chw"|"hwc"`` overrides), ``uint8`` (0..255) or floating (0..``value_range``, 1 by
default). ``C`` is 3 (RGB, coded as YCbCr) or 1 (a greyscale JPEG: one luma component).

Coefficient layout: :func:`block_dct` turns planes ``[..., H, W]`` into
``[..., ceil(H/8), ceil(W/8), 8, 8]``: block row, block column, then the 8x8 coefficients with
the vertical frequency first (``[..., v, u]``, natural row-major order, DC at ``[..., 0, 0]``).
Quantization tables are ``[8, 8]`` in the same natural order (Pillow's ``qtables`` and
``Image.quantization`` use it too); :func:`zigzag` gives the order in which JPEG files store them.

Backends: the PyTorch reference implements every op; :func:`jpeg_simulate` also runs on the
Triton kernels (``fastperc.kernels.jpeg``: CUDA tensors, or CPU tensors under
``TRITON_INTERPRET=1``) and on the C++ kernel (CPU tensors and numpy arrays; forward values, the
reference where gradients must flow). ``backend="auto"`` picks a fast backend where one implements the op and
the reference otherwise; naming a backend that does not implement an op raises
:class:`fastperc.BackendError`.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from . import dispatch
from ._backend_call import cpp, dtype_code, kernels_module, np_view
from ._image import Image, as_tensor, parse_image
from .reference import color as cref
from .reference import jpeg as ref

__all__ = [
    "block_dct",
    "block_idct",
    "dequantize",
    "jpeg_simulate",
    "quant_table",
    "quantize",
    "scale_table",
    "unzigzag",
    "zigzag",
]

ArrayLike = torch.Tensor | np.ndarray

MODES = ("exact", "float", "differentiable")
ROUNDINGS = ("nearest", "ste", "cubic")
SUBSAMPLINGS = tuple(cref.SUBSAMPLING)  # ("4:4:4", "4:2:2", "4:2:0")
COMPONENTS = ("luma", "chroma")

#: Largest table entry the exact mode accepts: libjpeg-turbo keeps the ISLOW divisor ``8 * q``
#: in 16 bits.
EXACT_TABLE_MAX = 8191

#: The backends that implement each op. The C++ and Triton fast paths add themselves here.
_IMPLEMENTED: dict[str, tuple[str, ...]] = {
    "block_dct": ("torch",),
    "block_idct": ("torch",),
    "jpeg_simulate": ("torch", "triton", "cpp"),
}

#: Per backend, a loader of its :func:`jpeg_simulate` round trips: a dict mode -> function with
#: the signature and semantics of the reference's ``simulate_exact(x8, tables, subsampling)``,
#: ``simulate_float(x, tables, subsampling)`` and
#: ``simulate_differentiable(x, tables, subsampling, rounding)`` (``[N, C, H, W]`` on 0..255).
_SIMULATE = {
    "torch": lambda: {
        "exact": ref.simulate_exact,
        "float": ref.simulate_float,
        "differentiable": ref.simulate_differentiable,
    },
    "triton": lambda: kernels_module("jpeg").SIMULATE,
    # The C++ kernel computes forward values only: with gradients to propagate, the reference.
    "cpp": lambda: _SIMULATE["torch"](),
}


def _simulate_cpp(
    img: Image,
    out: torch.Tensor,
    quality: int,
    subsampling: str,
    mode: str,
    rounding: str,
    tables: object,
) -> None:
    """The C++ round trip (``csrc/jpeg_sim.cpp``): reads the caller's view in its own dtype,
    layout and value range and fills ``out``, with the conversions of :func:`jpeg_simulate`."""
    tabs = _simulation_tables(tables, quality, mode, torch.device("cpu"), torch.float64)
    cpp().jpeg_simulate(
        np_view(img.t),
        np_view(out),
        dtype_code(img.t),
        mode,
        rounding,
        subsampling,
        tabs.detach().to(torch.float64).numpy(),
        float(img.value_range),
    )


#: Backends whose :func:`jpeg_simulate` takes the parsed image and fills the output itself
#: (any dtype, layout and value range), used when no gradient has to flow.
_SIMULATE_IMAGES = {"cpp": _simulate_cpp}


def _needs_grad(mode: str, t: torch.Tensor, tables: object) -> bool:
    if mode != "differentiable" or not torch.is_grad_enabled():
        return False
    return t.requires_grad or (isinstance(tables, torch.Tensor) and tables.requires_grad)


# ----------------------------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------------------------


def _check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"Expected `{name}` to be one of {choices}, got {value!r}")
    return value


def _check_quality(quality: object) -> int:
    if isinstance(quality, (bool, np.bool_)) or not isinstance(quality, (int, np.integer)):
        raise TypeError(f"Expected `quality` to be an int in 1..100, got {type(quality).__name__}")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"Expected `quality` in 1..100, got {int(quality)}")
    return int(quality)


def _check_bool(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"Expected `{name}` to be a bool, got {type(value).__name__}")
    return bool(value)


def _as_tensor(x: object, name: str) -> tuple[torch.Tensor, bool]:
    """A torch view of a tensor or numpy array, and whether it was numpy (see
    :func:`fastperc._image.as_tensor`); booleans are refused."""
    if isinstance(x, np.ndarray) and x.dtype == np.bool_:
        raise TypeError(f"Expected `{name}` with an integer or float dtype, got {x.dtype}")
    return as_tensor(x, name)


def _float_work_dtype(t: torch.Tensor) -> torch.dtype:
    return t.dtype if t.dtype in (torch.float32, torch.float64) else torch.float32


def _as_table(
    table: object, name: str, *, dtype: torch.dtype, device: torch.device, stacked: bool = False
) -> torch.Tensor:
    """Validate a quantization table: positive, finite, last two dimensions (8, 8).

    ``stacked``: also accept ``[K, 8, 8]`` with K in 1..3 (one table per component) and return
    ``[K, 8, 8]``.
    """
    if isinstance(table, (list, tuple)):
        try:
            t = torch.as_tensor(np.asarray(table, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"Expected `{name}` to be a numeric array, got {table!r}") from exc
    else:
        t, _ = _as_tensor(table, name)
    if t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"Expected `{name}` with a real numeric dtype, got {t.dtype}")
    shape = tuple(t.shape)
    if stacked:
        ok = shape == (8, 8) or (len(shape) == 3 and 1 <= shape[0] <= 3 and shape[1:] == (8, 8))
        if not ok:
            raise ValueError(
                f"Expected `{name}` of shape (8, 8) or (K, 8, 8) with K in 1..3 (natural order), "
                f"got {shape}"
            )
    elif len(shape) < 2 or shape[-2:] != (8, 8):
        raise ValueError(f"Expected `{name}` of shape (*, 8, 8) (natural order), got {shape}")
    t = t.to(device=device, dtype=dtype)
    with torch.no_grad():
        if not bool(torch.isfinite(t).all()) or not bool((t > 0).all()):
            raise ValueError(f"Expected `{name}` with finite entries > 0")
    if stacked and t.dim() == 2:
        t = t[None]
    return t


def _named_backend(backend: object) -> bool:
    if backend not in (None, "auto"):
        return True
    env = os.environ.get("FASTPERC_BACKEND", "auto").strip().lower() or "auto"
    return env != "auto"


def _backend(backend: object, t: torch.Tensor, op: str) -> str:
    """Resolve ``backend`` for ``op``: the dispatch rule, then a fall-back to the reference for a
    fast backend that does not implement ``op`` yet (an error if it was asked for by name)."""
    be = dispatch.resolve(backend, t, op=op)  # type: ignore[arg-type]
    if be in _IMPLEMENTED[op]:
        return be
    if _named_backend(backend):
        raise dispatch.BackendError(
            f"{op}: backend {be!r} does not implement this op yet; the backends that do are "
            f"{list(_IMPLEMENTED[op])} (pass backend='torch', or 'auto' with FASTPERC_BACKEND unset)."
        )
    return "torch"


def _wrap_like(t: torch.Tensor, was_numpy: bool) -> ArrayLike:
    return t.numpy() if was_numpy else t


# ----------------------------------------------------------------------------------------------
# Quantization tables and zigzag order
# ----------------------------------------------------------------------------------------------


def quant_table(
    quality: int = 75, component: str = "luma", force_baseline: bool = True
) -> torch.Tensor:
    """The quantization table libjpeg (and so Pillow) uses at ``quality``.

    The Annex K table of ``component`` scaled by ``jpeg_quality_scaling`` (``5000 / q`` below 50,
    ``200 - 2 q`` from 50) as ``jpeg_add_quant_table`` does: ``(base * scale + 50) // 100``,
    clamped to 1..255 when ``force_baseline`` (the default, as ``jpeg_set_quality`` is called by
    Pillow) and to 1..32767 otherwise.

    Args:
        quality: 1..100.
        component: ``"luma"`` or ``"chroma"``.
        force_baseline: limit entries to 255.

    Returns:
        An int32 tensor ``[8, 8]`` in natural order.

    Example:
        >>> from fastperc.jpeg import quant_table
        >>> quant_table(50)[0].tolist()
        [16, 11, 10, 16, 24, 40, 51, 61]
        >>> int(quant_table(10, "chroma").max())
        255
    """
    q = _check_quality(quality)
    _check_choice(component, "component", COMPONENTS)
    fb = _check_bool(force_baseline, "force_baseline")
    return torch.from_numpy(ref.quant_table(q, component, fb).astype(np.int32))


def scale_table(base: object, quality: int, force_baseline: bool = True) -> ArrayLike:
    """Scale any base table as libjpeg scales the standard ones (see :func:`quant_table`).

    Args:
        base: integer entries in 1..32767, shape ``(*, 8, 8)`` or ``(*, 64)`` (a tensor, array or
            nested list).
        quality: 1..100.
        force_baseline: limit entries to 255.

    Returns:
        int32 entries of ``base``'s shape; a numpy array for numpy input, else a tensor.

    Example:
        >>> from fastperc.jpeg import scale_table
        >>> scale_table([[10] * 8] * 8, 25)[0, :3].tolist()
        [20, 20, 20]
    """
    q = _check_quality(quality)
    fb = _check_bool(force_baseline, "force_baseline")
    if isinstance(base, (list, tuple)):
        arr = np.asarray(base)
        was_numpy = False
    else:
        t, was_numpy = _as_tensor(base, "base")
        arr = t.detach().cpu().numpy()
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"Expected `base` with numeric entries, got dtype {arr.dtype}")
    if arr.ndim == 0 or not (arr.shape[-1] == 64 or arr.shape[-2:] == (8, 8)):
        raise ValueError(f"Expected `base` of shape (*, 8, 8) or (*, 64), got {arr.shape}")
    if (
        not np.all(np.isfinite(arr))
        or not np.all(arr == np.round(arr))
        or arr.min() < 1
        or arr.max() > ref.QUANT_MAX
    ):
        raise ValueError(f"Expected `base` with integer entries in 1..{ref.QUANT_MAX}")
    out = ref.scaled_table(arr.astype(np.int64), ref.quality_scaling(q), fb).astype(np.int32)
    return out if was_numpy else torch.from_numpy(out)


#: ``ZIGZAG[k]``: the natural (row-major) index of the k-th coefficient in zigzag order.
ZIGZAG = torch.from_numpy(ref.ZIGZAG)
#: ``UNZIGZAG[n]``: the zigzag position of natural index ``n``.
UNZIGZAG = torch.from_numpy(ref.UNZIGZAG)


def zigzag(blocks: ArrayLike) -> ArrayLike:
    """Reorder ``[..., 8, 8]`` blocks (natural order) into ``[..., 64]`` zigzag sequences, the
    order of JPEG's DQT tables and entropy-coded coefficients.

    Example:
        >>> import torch
        >>> from fastperc.jpeg import zigzag
        >>> zigzag(torch.arange(64).view(8, 8))[:6].tolist()
        [0, 1, 8, 16, 9, 2]
    """
    t, was_numpy = _as_tensor(blocks, "blocks")
    if t.dim() < 2 or tuple(t.shape[-2:]) != (8, 8):
        raise ValueError(f"Expected `blocks` of shape (*, 8, 8), got {tuple(t.shape)}")
    out = t.reshape(*t.shape[:-2], 64)[..., ZIGZAG.to(t.device)]
    return _wrap_like(out, was_numpy)


def unzigzag(seq: ArrayLike) -> ArrayLike:
    """Inverse of :func:`zigzag`: ``[..., 64]`` zigzag sequences -> ``[..., 8, 8]`` blocks."""
    t, was_numpy = _as_tensor(seq, "seq")
    if t.dim() < 1 or t.shape[-1] != 64:
        raise ValueError(f"Expected `seq` of shape (*, 64), got {tuple(t.shape)}")
    out = t[..., UNZIGZAG.to(t.device)].reshape(*t.shape[:-1], 8, 8)
    return _wrap_like(out, was_numpy)


# ----------------------------------------------------------------------------------------------
# Block DCT and quantization
# ----------------------------------------------------------------------------------------------


def _float_input(x: object, name: str) -> tuple[torch.Tensor, bool]:
    t, was_numpy = _as_tensor(x, name)
    if t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"Expected a real `{name}`, got {t.dtype}")
    return t.to(_float_work_dtype(t)), was_numpy


def block_dct(planes: ArrayLike, *, backend: str = "auto") -> ArrayLike:
    """Orthonormal 8x8 DCT-II of every block of ``[..., H, W]`` planes.

    Planes of any size are first edge-replicated to whole blocks (as libjpeg pads an image).
    The transform is orthonormal (``D @ block @ D.T`` with ``D @ D.T = I``), so the coefficients
    are those of libjpeg's DCTs divided by 8 and a JPEG quantizer applies to them directly
    (:func:`quantize`). JPEG's level shift (subtracting 128 from 8-bit samples) is not applied.

    Args:
        planes: ``[..., H, W]``; float32 and float64 are kept, other dtypes computed in float32.
        backend: ``"auto"`` or ``"torch"``.

    Returns:
        ``[..., ceil(H/8), ceil(W/8), 8, 8]`` coefficients ``[..., v, u]`` (vertical frequency
        first), of the same type.

    Example:
        >>> import torch
        >>> from fastperc.jpeg import block_dct
        >>> c = block_dct(torch.ones(10, 20))
        >>> tuple(c.shape), round(float(c[0, 0, 0, 0]), 4)
        ((2, 3, 8, 8), 8.0)
    """
    t, was_numpy = _float_input(planes, "planes")
    if t.dim() < 2 or t.shape[-1] == 0 or t.shape[-2] == 0:
        raise ValueError(f"Expected non-empty `planes` of shape (*, H, W), got {tuple(t.shape)}")
    _backend(backend, t, "block_dct")
    return _wrap_like(ref.block_dct(t), was_numpy)


def block_idct(
    coeffs: ArrayLike, size: tuple[int, int] | None = None, *, backend: str = "auto"
) -> ArrayLike:
    """Inverse of :func:`block_dct`: ``[..., hb, wb, 8, 8]`` -> ``[..., 8 hb, 8 wb]`` planes,
    cropped to ``size = (H, W)`` when given (``ceil(H/8) == hb`` and ``ceil(W/8) == wb``).

    Example:
        >>> import torch
        >>> from fastperc.jpeg import block_dct, block_idct
        >>> x = torch.rand(2, 13, 21, dtype=torch.float64)
        >>> torch.allclose(block_idct(block_dct(x), size=(13, 21)), x)
        True
    """
    t, was_numpy = _float_input(coeffs, "coeffs")
    if t.dim() < 4 or tuple(t.shape[-2:]) != (8, 8):
        raise ValueError(f"Expected `coeffs` of shape (*, hb, wb, 8, 8), got {tuple(t.shape)}")
    hb, wb = int(t.shape[-4]), int(t.shape[-3])
    if size is not None:
        if (
            not isinstance(size, (tuple, list))
            or len(size) != 2
            or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size)
        ):
            raise TypeError(f"Expected `size` to be a pair of ints (H, W), got {size!r}")
        h, w = int(size[0]), int(size[1])
        if h < 1 or w < 1 or ref.blocks_for(h) != hb or ref.blocks_for(w) != wb:
            raise ValueError(
                f"Expected `size` (H, W) with ceil(H/8) = {hb} and ceil(W/8) = {wb} "
                f"(the block grid of `coeffs`), got {tuple(size)}"
            )
    _backend(backend, t, "block_idct")
    out = ref.block_idct(t)
    if size is not None:
        out = out[..., : int(size[0]), : int(size[1])]
    return _wrap_like(out, was_numpy)


def quantize(coeffs: ArrayLike, table: object, rounding: str = "nearest") -> ArrayLike:
    """Quantize orthonormal DCT coefficients: ``rounding(coeffs / table)``.

    With the orthonormal scaling of :func:`block_dct` this is libjpeg's quantizer (which divides
    its 8-times-larger coefficients by ``8 * q``).

    Args:
        coeffs: ``[..., 8, 8]`` coefficients (float; integers are converted to float32).
        table: ``[8, 8]`` (or anything of shape ``(*, 8, 8)`` broadcastable against ``coeffs``),
            positive.
        rounding: ``"nearest"`` (half away from zero, as libjpeg), ``"ste"`` (the same values,
            gradient of the identity: the straight-through estimator) or ``"cubic"``
            (``round(x) + (x - round(x)) ** 3``, Shin & Song 2017, gradient
            ``3 (x - round(x)) ** 2``).

    Returns:
        Float quantized coefficients (integral values unless ``"cubic"``), same type.

    Example:
        >>> import torch
        >>> from fastperc.jpeg import quantize
        >>> c = torch.zeros(8, 8)
        >>> c[0, :3] = torch.tensor([20.0, -20.0, 11.9])
        >>> quantize(c, torch.full((8, 8), 8))[0, :3].tolist()
        [3.0, -3.0, 1.0]
    """
    _check_choice(rounding, "rounding", ROUNDINGS)
    t, was_numpy = _float_input(coeffs, "coeffs")
    if t.dim() < 2 or tuple(t.shape[-2:]) != (8, 8):
        raise ValueError(f"Expected `coeffs` of shape (*, 8, 8), got {tuple(t.shape)}")
    tab = _as_table(table, "table", dtype=t.dtype, device=t.device)
    return _wrap_like(ref.quantize(t, tab, rounding), was_numpy)


def dequantize(qcoeffs: ArrayLike, table: object) -> ArrayLike:
    """``qcoeffs * table``: back to orthonormal coefficients (float; integer input such as
    coefficients read from a file gives float32).

    Example:
        >>> import torch
        >>> from fastperc.jpeg import dequantize, quant_table
        >>> float(dequantize(torch.ones(8, 8, dtype=torch.int16), quant_table(50))[0, 0])
        16.0
    """
    t, was_numpy = _float_input(qcoeffs, "qcoeffs")
    if t.dim() < 2 or tuple(t.shape[-2:]) != (8, 8):
        raise ValueError(f"Expected `qcoeffs` of shape (*, 8, 8), got {tuple(t.shape)}")
    tab = _as_table(table, "table", dtype=t.dtype, device=t.device)
    return _wrap_like(ref.dequantize(t, tab), was_numpy)


# ----------------------------------------------------------------------------------------------
# The round trip
# ----------------------------------------------------------------------------------------------


def _simulation_tables(
    tables: object, quality: int, mode: str, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """``[K, 8, 8]`` tables for :func:`jpeg_simulate` (K = 1..3, see :func:`ref.component_tables`)."""
    if tables is None:
        luma = ref.quant_table(quality, "luma")
        chroma = ref.quant_table(quality, "chroma")
        return torch.from_numpy(np.stack([luma, chroma])).to(device=device, dtype=dtype)
    if mode == "exact":
        t = _as_table(tables, "tables", dtype=torch.float64, device=device, stacked=True)
        if not bool((t == t.round()).all()) or float(t.max()) > EXACT_TABLE_MAX:
            raise ValueError(
                f"Expected `tables` with integer entries in 1..{EXACT_TABLE_MAX} for "
                "mode='exact' (libjpeg-turbo keeps the divisor 8 * q in 16 bits)"
            )
        return t.to(torch.int64)
    return _as_table(tables, "tables", dtype=dtype, device=device, stacked=True)


def jpeg_simulate(
    images: ArrayLike,
    quality: int = 75,
    subsampling: str = "4:2:0",
    mode: str = "exact",
    tables: object = None,
    *,
    rounding: str | None = None,
    value_range: float | None = None,
    layout: str = "auto",
    backend: str = "auto",
) -> ArrayLike:
    """Compress and decompress images with JPEG (everything but the lossless entropy coding).

    The pipeline: RGB -> YCbCr, chroma downsampling, level shift, 8x8 DCT, quantization,
    dequantization, inverse DCT, chroma upsampling, YCbCr -> RGB, range limiting. A 1-channel
    image is a greyscale JPEG (one luma component, no colour conversion, ``subsampling``
    ignored).

    Modes:

    * ``"exact"``: libjpeg-turbo's integer pipeline with the settings of Pillow's
      ``Image.save(buf, "JPEG", quality=q, subsampling=s)`` (fixed-point colour, ``h2v1``/``h2v2``
      downsampling with their rounding bias, ISLOW forward and inverse DCT, rounding half away
      from zero, fancy upsampling). For ``uint8`` input the result equals
      ``Image.open(buf)`` of that file bit for bit. Float input is first rounded to 8 bits
      (``round(x / value_range * 255)``); the output is ``k / 255 * value_range``. The inverse DCT
      saturates out-of-range samples as libjpeg-turbo's x86 and Arm SIMD code (and so Pillow)
      does; see :func:`fastperc.reference.jpeg.range_limit` for the portable C code's wrap-around.
    * ``"float"``: the exact pipeline with floating-point colour conversion (the exact JFIF
      coefficients) and DCTs (matrix products with the cosines), in float32 (float64 for
      float64 input). Values are rounded where libjpeg rounds (8-bit YCbCr, the two DCT passes
      at libjpeg's intermediate precision, 8-bit samples after the inverse DCT) and chroma
      resampling is the 8-bit one, so the quantizer nearly always makes libjpeg's decisions:
      on photos over 99% of pixels are within 1 of Pillow's (mostly identical). Not
      differentiable.
    * ``"differentiable"``: a smooth version of the pipeline: float colour, box-filter chroma
      downsampling, orthonormal DCT, quantization with a rounding that passes gradients
      (``rounding``: ``"cubic"``, the default, or ``"ste"``), libjpeg's triangle upsampling
      weights, clamping after the inverse DCT and at the end, no other rounding (so it is not
      within 1 of libjpeg; about 37-50 dB PSNR from the exact mode on photos). Use float input;
      gradients reach ``images`` (and ``tables``, if given as a tensor that requires grad). With ``"cubic"``,
      ``torch.autograd.gradcheck`` holds (away from the measure-zero points where the
      approximation jumps); ``"ste"`` is, by design, not the derivative of its forward values.

    Args:
        images: RGB or greyscale image(s), see the module docstring.
        quality: 1..100, libjpeg's scale (ignored when ``tables`` is given).
        subsampling: ``"4:2:0"`` (Pillow's ``subsampling=2`` and its default), ``"4:2:2"``
            (``1``) or ``"4:4:4"`` (``0``).
        mode: ``"exact"``, ``"float"`` or ``"differentiable"``.
        tables: quantization tables in natural order, used as given (already scaled): ``(8, 8)``
            for every component, or ``(K, 8, 8)`` with K = 2 (luma, chroma) or 3 (Y, Cb, Cr).
            Integers in 1..8191 for ``"exact"``; any positive values otherwise.
        rounding: ``None`` (the mode's default), ``"nearest"`` (exact, float), ``"ste"`` or
            ``"cubic"`` (differentiable).
        value_range: 1 (default) or 255 for float images; ``None``/255 for uint8.
        layout: ``"auto"``, ``"chw"`` or ``"hwc"``.
        backend: ``"auto"``, ``"torch"``, ``"cpp"`` or ``"triton"`` (see :mod:`fastperc.dispatch`).

    Returns:
        The decoded image(s): same type, shape, dtype and layout as ``images``.

    Example:
        >>> import numpy as np
        >>> from fastperc.jpeg import jpeg_simulate
        >>> img = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
        >>> out = jpeg_simulate(img, quality=90)
        >>> out.shape, out.dtype
        ((16, 24, 3), dtype('uint8'))
    """
    q = _check_quality(quality)
    _check_choice(subsampling, "subsampling", SUBSAMPLINGS)
    _check_choice(mode, "mode", MODES)
    allowed = ("ste", "cubic") if mode == "differentiable" else ("nearest",)
    if rounding is None:
        rounding = "cubic" if mode == "differentiable" else "nearest"
    _check_choice(rounding, "rounding", ROUNDINGS)
    if rounding not in allowed:
        raise ValueError(f"Expected `rounding` in {allowed} for mode={mode!r}, got {rounding!r}")
    img = parse_image(
        images,
        "images",
        channels=(1, 3),
        layout=layout,
        value_range=value_range,
    )
    be = _backend(backend, img.t, "jpeg_simulate")
    if be in _SIMULATE_IMAGES and not _needs_grad(mode, img.t, tables):
        out = img.new_output(img.t.shape[1], img.t.shape[2], img.t.shape[3], img.t.dtype)
        _SIMULATE_IMAGES[be](img, out, q, subsampling, mode, rounding, tables)
        return img.wrap(out)
    simulate = _SIMULATE[be]()[mode]
    _, c, h, w = img.t.shape
    vr = img.value_range
    if mode == "exact":
        tabs = _simulation_tables(tables, q, mode, img.t.device, torch.int64)
        if img.is_uint8:
            x8 = img.t
        else:
            scaled = img.t.detach().to(torch.float64) * (255.0 / vr)
            x8 = torch.floor(scaled + 0.5).clamp(0, 255).to(torch.uint8)
        y8 = simulate(x8, tabs, subsampling)
        res = y8 if img.is_uint8 else (y8.to(torch.float64) * (vr / 255.0)).to(img.t.dtype)
    else:
        work = _float_work_dtype(img.t)
        tabs = _simulation_tables(tables, q, mode, img.t.device, work)
        x = img.t.to(work)
        if not img.is_uint8 and vr != 255.0:
            x = x * (255.0 / vr)
        if mode == "float":
            y = simulate(x, tabs, subsampling)
        else:
            y = simulate(x, tabs, subsampling, rounding)
        if img.is_uint8:
            res = ref.round_half_up(y).clamp(0, 255).to(torch.uint8)
        else:
            res = (y * (vr / 255.0) if vr != 255.0 else y).to(img.t.dtype)
    out = img.new_output(c, h, w, res.dtype)
    out.copy_(res)
    return img.wrap(out)


# ----------------------------------------------------------------------------------------------
# JPEG files: inspect_jpeg / read_coefficients live in fastperc.jpeg_io
# ----------------------------------------------------------------------------------------------

_JPEG_IO_NAMES = ("inspect_jpeg", "read_coefficients")

try:
    from .jpeg_io import inspect_jpeg, read_coefficients  # noqa: F401
except ImportError:
    # Not built yet, or jpeg_io is being imported first and imports this module (a cycle): look
    # the names up on first use instead, which raises the real error if the module is missing.
    def __getattr__(name: str) -> object:
        if name in _JPEG_IO_NAMES:
            from . import jpeg_io

            return getattr(jpeg_io, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
else:
    __all__ += list(_JPEG_IO_NAMES)
