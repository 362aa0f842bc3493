"""Validation of image arguments and allocation of outputs, shared by every public op.

An image argument is a ``torch.Tensor`` or ``numpy.ndarray``:

* torch tensors are channel-first, ``[C, H, W]`` or ``[*, C, H, W]``; a ``channels_last``
  tensor keeps its memory format in the output;
* numpy arrays are channel-last, ``[H, W, C]`` or ``[*, H, W, C]`` (images as numpy, PIL and
  OpenCV store them);
* ``layout="chw"`` or ``"hwc"`` overrides either default.

Internally every op sees a strided ``[N, C, H, W]`` torch view of the caller's memory (no copy)
and writes into an output allocated in the caller's layout; the result goes back as the type it
came as.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
SUPPORTED_DTYPES = (torch.uint8, *FLOAT_DTYPES)

#: Tests set this to fill every freshly allocated output first, so that an element a kernel
#: forgets to write shows up as a mismatch.
POISON: float | None = None
_LAYOUTS = ("auto", "chw", "hwc")


def _dtype_name(d: object) -> str:
    return str(d).replace("torch.", "")


@dataclass
class Image:
    """A parsed image argument."""

    name: str
    t: torch.Tensor  # [N, C, H, W] strided view of the caller's data
    numpy: bool  # the caller passed a numpy array
    layout: str  # "chw" or "hwc"
    lead: tuple[int, ...]  # the caller's leading (batch) dims; () for a single image
    value_range: float  # 255 for uint8; 1.0 (default) or the caller's for floats
    channels_last: bool  # the caller's tensor used the channels_last memory format

    @property
    def is_uint8(self) -> bool:
        return self.t.dtype == torch.uint8

    @property
    def shape_hw(self) -> tuple[int, int]:
        return int(self.t.shape[2]), int(self.t.shape[3])

    def new_output(self, channels: int, h: int, w: int, dtype: torch.dtype) -> torch.Tensor:
        """A fresh ``[N, C, H, W]`` tensor laid out in memory as the caller's image."""
        n = self.t.shape[0]
        dev = self.t.device
        if self.layout == "hwc" or self.channels_last:
            out = torch.empty((n, h, w, channels), dtype=dtype, device=dev).permute(0, 3, 1, 2)
        else:
            out = torch.empty((n, channels, h, w), dtype=dtype, device=dev)
        if POISON is not None:
            out.fill_(POISON)
        return out

    def wrap(self, out: torch.Tensor) -> torch.Tensor | np.ndarray:
        """Turn an ``[N, C, H, W]`` result back into the caller's type, rank and layout."""
        if self.layout == "hwc":
            out = out.permute(0, 2, 3, 1)
        out = out.reshape(*self.lead, *out.shape[1:]) if self.lead else out[0]
        if self.numpy:
            if out.dtype == torch.bfloat16:  # numpy has no bfloat16
                return out.float().numpy()
            return out.numpy()
        return out


def as_tensor(x: object, name: str) -> tuple[torch.Tensor, bool]:
    """Return a torch view of ``x`` and whether it was a numpy array (no copy when possible)."""
    if isinstance(x, torch.Tensor):
        return x, False
    if isinstance(x, np.ndarray):
        if not x.dtype.isnative:
            x = x.astype(x.dtype.newbyteorder("="))
        if any(s < 0 for s in x.strides):  # torch cannot view negative strides
            x = np.ascontiguousarray(x)
        try:
            with warnings.catch_warnings():  # read-only arrays: fastperc never writes inputs
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                return torch.from_numpy(x), True
        except TypeError as exc:
            raise TypeError(
                f"Expected `{name}` with dtype uint8, float16, float32 or float64, "
                f"got numpy dtype {x.dtype}"
            ) from exc
    raise TypeError(
        f"Expected `{name}` to be a torch.Tensor or numpy.ndarray, got {type(x).__name__}"
    )


def check_value_range(value_range: object, dtype: torch.dtype, name: str) -> float:
    if dtype == torch.uint8:
        if value_range is None or (
            isinstance(value_range, (int, float)) and float(value_range) == 255.0
        ):
            return 255.0
        raise ValueError(
            f"`value_range`={value_range!r} does not fit uint8 `{name}`: uint8 images hold "
            "0..255 (leave value_range=None, or convert the image to a float dtype)"
        )
    if value_range is None:
        return 1.0
    if isinstance(value_range, bool) or not isinstance(value_range, (int, float)):
        raise TypeError(
            f"Expected `value_range` to be a positive number (e.g. 1.0 or 255), got "
            f"{type(value_range).__name__}"
        )
    v = float(value_range)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"Expected `value_range` to be a positive finite number, got {v}")
    return v


def parse_image(
    x: object,
    name: str,
    *,
    channels: tuple[int, ...] | None,
    layout: str = "auto",
    value_range: object = None,
    dtypes: tuple[torch.dtype, ...] = SUPPORTED_DTYPES,
    shape_hint: str | None = None,
) -> Image:
    """Validate an image argument and return its ``[N, C, H, W]`` view.

    Args:
        x: the caller's tensor or array.
        name: the argument's name, quoted in errors.
        channels: accepted channel counts (``None``: any).
        layout: ``"auto"``, ``"chw"`` or ``"hwc"``.
        value_range: the caller's ``value_range`` argument.
        dtypes: accepted dtypes.
        shape_hint: the expected shape, spelled for error messages.
    """
    if not isinstance(layout, str) or layout not in _LAYOUTS:
        raise ValueError(f"Expected `layout` to be one of {_LAYOUTS}, got {layout!r}")
    t, was_numpy = as_tensor(x, name)
    if t.dtype not in dtypes:
        allowed = ", ".join(_dtype_name(d) for d in dtypes)
        raise TypeError(f"Expected `{name}` with dtype in ({allowed}), got {_dtype_name(t.dtype)}")
    lay = layout if layout != "auto" else ("hwc" if was_numpy else "chw")
    c_spec = "C" if channels is None else "|".join(str(c) for c in channels)
    hint = shape_hint or (f"(*, {c_spec}, H, W)" if lay == "chw" else f"(*, H, W, {c_spec})")
    if t.dim() < 3:
        raise ValueError(f"Expected `{name}` of shape {hint} ({lay} layout), got {tuple(t.shape)}")
    c = t.shape[-3] if lay == "chw" else t.shape[-1]
    if channels is not None and c not in channels:
        raise ValueError(
            f"Expected `{name}` of shape {hint} ({lay} layout) with {c_spec} channels, "
            f"got {tuple(t.shape)}"
        )
    if t.numel() == 0:
        raise ValueError(f"Expected a non-empty `{name}`, got shape {tuple(t.shape)}")
    if t.is_complex():
        raise TypeError(f"Expected a real `{name}`, got {_dtype_name(t.dtype)}")
    vr = check_value_range(value_range, t.dtype, name)
    lead = tuple(int(s) for s in t.shape[:-3])
    channels_last = (
        not was_numpy
        and lay == "chw"
        and t.dim() == 4
        and t.shape[1] > 1
        and t.is_contiguous(memory_format=torch.channels_last)
        and not t.is_contiguous()
    )
    if lay == "hwc":
        t = t.movedim(-1, -3)
    t4 = t.reshape(-1, *t.shape[-3:]) if t.dim() != 4 else t
    return Image(name, t4, was_numpy, lay, lead, vr, channels_last)
