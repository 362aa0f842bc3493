"""Image resizing as the FID-family tools do it, fast and batched.

:func:`resize` reproduces the resize step of the common evaluation protocols:

* ``"pil_bicubic"`` (default): Pillow's antialiased ``Image.resize(..., BICUBIC)`` on float
  ("F" mode) images, channel by channel: clean-fid's "clean" resize
  (``make_resizer("PIL", False, "bicubic", (299, 299))``), which also clips to 0..255. Also
  ``"pil_bilinear"``, ``"pil_lanczos"``, ``"pil_hamming"``, ``"pil_box"``: the other Pillow
  filters, same algorithm.
* ``"bilinear"``: ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``
  without antialiasing, pytorch-fid's resize inside its Inception network (and clean-fid's
  ``legacy_pytorch`` mode).
* ``"legacy_tensorflow"``: the bilinear resize inside clean-fid's ``legacy_tensorflow`` network
  (TF1's ``resize_bilinear``: source coordinate ``o * in / out``, no half-pixel offset, border
  clamp), with that network's float32 weights.

The exact definitions, and how closely each matches its peer, are in
:mod:`fastperc.reference.resize`. Calling the module is calling the function:
``fastperc.resize(x, 299)`` is ``fastperc.resize.resize(x, 299)``.
"""

from __future__ import annotations

import os
import sys
import types

import numpy as np
import torch

from . import _ext, _image, dispatch
from ._backend_call import cpp, dtype_code, kernels_module, np_view
from ._image import parse_image
from .reference import resize as ref

__all__ = ["DEFAULT_CLIP", "METHODS", "resize"]

ArrayLike = torch.Tensor | np.ndarray

#: The supported ``method`` names.
METHODS = ref.METHODS
#: The default of ``clip`` per method: what the peer does (clean-fid's PIL resizers clip to
#: 0..255; the bilinear resizes inside pytorch-fid's and clean-fid's networks do not, and
#: cannot leave the input's range anyway).
DEFAULT_CLIP = dict(ref.DEFAULT_CLIP)

#: Backends implementing :func:`resize`, and which of them can propagate gradients.
_IMPLEMENTED = ("torch", "cpp", "triton")
_DIFFERENTIABLE = ("torch", "triton")
_MAX_SIZE = 1 << 20


def _check_size(size: object) -> tuple[int, int]:
    def one(v: object) -> int | None:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            return None
        return int(v)

    if isinstance(size, (tuple, list)) and len(size) == 2:
        hw = (one(size[0]), one(size[1]))
    else:
        v = one(size)
        hw = (v, v)
    if hw[0] is None or hw[1] is None or not all(1 <= s <= _MAX_SIZE for s in hw):  # type: ignore[operator]
        raise ValueError(
            "Expected `size` to be an int or an (height, width) pair of ints in "
            f"1..{_MAX_SIZE}, got {size!r}"
        )
    return hw  # type: ignore[return-value]


def _check_method(method: object) -> str:
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"Expected `method` to be one of {METHODS}, got {method!r}")
    return method


def resize(
    images: ArrayLike,
    size: int | tuple[int, int],
    method: str = "pil_bicubic",
    *,
    clip: bool | None = None,
    value_range: float | None = None,
    layout: str = "auto",
    backend: str = "auto",
) -> ArrayLike:
    """Resize images with the resampling of an evaluation protocol (Pillow bicubic by default).

    Every channel is resampled separately, with a separable filter whose weights are computed
    once per (method, input size, output size). ``"pil_*"`` methods antialias when
    downscaling (the filter stretches with the scale, as Pillow's); ``"bilinear"`` and
    ``"legacy_tensorflow"`` interpolate between the two nearest samples only.

    Args:
        images: image(s): a ``torch.Tensor`` ``[C, H, W]`` / ``[*, C, H, W]`` or a
            ``numpy.ndarray`` ``[H, W, C]`` / ``[*, H, W, C]`` (``layout`` overrides), any
            number of channels; ``uint8`` (0..255) or float16/bfloat16/float32/float64 (0..1, or
            0..``value_range``).
        size: the output size: an int for a square ``size x size`` (clean-fid's 299), or
            ``(height, width)``. Note: Pillow's ``resize`` takes ``(width, height)``.
        method: ``"pil_bicubic"`` (clean-fid "clean"), ``"pil_bilinear"``, ``"pil_lanczos"``,
            ``"pil_hamming"``, ``"pil_box"``, ``"bilinear"`` (pytorch-fid, PyTorch's
            ``interpolate`` without antialias), or ``"legacy_tensorflow"`` (clean-fid's
            TF-Inception in-network resize).
        clip: clip the result to ``0..value_range`` (0..255 for ``uint8``); ``None`` (default):
            as the method's peer does, ``True`` for ``"pil_*"`` (clean-fid clips), ``False`` for
            the bilinear methods. NaN stays NaN.
        value_range: the range of floating images: 1 (default) or e.g. 255; must be ``None`` or
            255 for ``uint8``.
        layout: ``"auto"``, ``"chw"`` or ``"hwc"``.
        backend: ``"auto"``, ``"cpp"``, ``"triton"`` or ``"torch"`` (see
            :mod:`fastperc.dispatch`). The ``torch`` and ``triton`` backends propagate
            gradients to a float input that requires them; ``"auto"`` picks ``torch`` then.

    Returns:
        The resized images, same container, layout and leading dims, ``[*, C, h, w]`` (torch)
        or ``[*, h, w, C]`` (numpy); float32 (float64 for float64 input), on 0..255 for
        ``uint8`` input and on the input's scale otherwise (not re-quantized, as clean-fid).

    Raises:
        ValueError: bad ``size``, ``method``, ``layout`` or image shape.
        TypeError: bad image type or dtype, or a non-bool ``clip``.
        fastperc.BackendError: a backend asked for by name cannot run the call (e.g.
            ``backend="cpp"`` with an input that requires gradients).

    Example:
        >>> import numpy as np, fastperc
        >>> img = np.zeros((512, 512, 3), np.uint8)
        >>> out = fastperc.resize(img, 299)  # clean-fid's "clean" resize
        >>> out.shape, out.dtype
        ((299, 299, 3), dtype('float32'))
    """
    method = _check_method(method)
    oh, ow = _check_size(size)
    if clip is None:
        clip = DEFAULT_CLIP[method]
    elif not isinstance(clip, (bool, np.bool_)):
        raise TypeError(f"Expected `clip` to be a bool or None, got {type(clip).__name__}")
    clip = bool(clip)
    if _numpy_u8_to_cpp(images, layout, value_range, backend):
        return _resize_numpy_u8(images, oh, ow, method, clip)
    img = parse_image(images, "images", channels=None, layout=layout, value_range=value_range)
    t = img.t
    _, c, h, w = t.shape
    out_dtype = torch.float64 if t.dtype == torch.float64 else torch.float32
    hi = float(img.value_range)
    needs_grad = t.requires_grad and torch.is_grad_enabled()
    be = dispatch.resolve(backend, t, op="resize")
    if needs_grad and be not in _DIFFERENTIABLE:
        raise dispatch.BackendError(
            f"resize: backend {be!r} does not propagate gradients and `images` requires them; "
            f"use one of {list(_DIFFERENTIABLE)} (or 'auto'), or detach the input."
        )
    f32_coords = t.dtype != torch.float64
    ty = ref.taps(method, int(h), oh, f32_coords)
    tx = ref.taps(method, int(w), ow, f32_coords)
    out = img.new_output(int(c), oh, ow, out_dtype)
    if be == "torch":
        res = ref.resample(t.to(torch.float64), ty, tx)
        if clip:
            res = res.clamp(0.0, hi)
        out.copy_(res)
    elif be == "cpp":
        _cpp_resize(np_view(t), np_view(out), ty, tx, clip, hi, dtype_code(t))
    else:
        kern = kernels_module("resize")
        if needs_grad:
            res = kern.resize_differentiable(t, ty, tx)
            out.copy_(res.clamp(0.0, hi) if clip else res)
        else:
            kern.resize(t, out, ty, tx, clip, 0.0, hi)
    return img.wrap(out)


def _cpp_resize(src: np.ndarray, dst: np.ndarray, ty, tx, clip: bool, hi: float, code: str) -> None:
    """The C++ kernel on NCHW views: ``dst`` = ``src`` resampled with the taps ``ty``/``tx``,
    clamped to ``[0, hi]`` when ``clip``."""
    cpp().resize(src, dst, ty.start, ty.weight, tx.start, tx.weight, clip, 0.0, hi, code)


def _numpy_u8_to_cpp(images: object, layout: object, value_range: object, backend: object) -> bool:
    """Whether the call is the common one that :func:`_resize_numpy_u8` serves: a non-empty
    uint8 numpy image (``[H, W, C]``) or batch (``[N, H, W, C]``) in the default layout, going
    to the C++ backend. Everything else takes the general path (which also raises the errors)."""
    if not (
        isinstance(images, np.ndarray)
        and images.dtype == np.uint8
        and images.ndim in (3, 4)
        and images.size > 0
        and value_range is None
        and layout in ("auto", "hwc")
        and _image.POISON is None
        and _ext.cpp_available()
    ):
        return False
    if backend == "cpp":
        return True
    if backend is None or backend == "auto":
        env = os.environ.get("FASTPERC_BACKEND", "auto").strip().lower() or "auto"
        return env in ("auto", "cpp")
    return False


def _resize_numpy_u8(images: np.ndarray, oh: int, ow: int, method: str, clip: bool) -> np.ndarray:
    """:func:`resize` of a uint8 numpy image or batch on the C++ backend, without the torch
    round trip of the general path (same kernel, same result; a visible share of the time of
    one 512x512 image)."""
    x = images if images.ndim == 4 else images[None]
    n, h, w, c = x.shape
    ty = ref.taps(method, int(h), oh, True)
    tx = ref.taps(method, int(w), ow, True)
    out = torch.empty((n, oh, ow, c), dtype=torch.float32).numpy()
    _cpp_resize(x.transpose(0, 3, 1, 2), out.transpose(0, 3, 1, 2), ty, tx, clip, 255.0, "u8")
    return out if images.ndim == 4 else out[0]


class _CallableModule(types.ModuleType):
    """Makes ``fastperc.resize(...)`` call :func:`resize` while the module stays importable."""

    def __call__(self, *args, **kwargs):
        return resize(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
