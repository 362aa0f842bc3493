"""A drop-in for torchmetrics' ``FrechetInceptionDistance`` and ``KernelInceptionDistance``.

The one-line change::

    from torchmetrics.image.fid import FrechetInceptionDistance       # before
    from fastperc.compat.torchmetrics import FrechetInceptionDistance  # after

    fid = FrechetInceptionDistance(feature=2048)
    fid.update(real_uint8, real=True)
    fid.update(fake_uint8, real=False)
    fid.compute()  # tensor(...)

Same constructor parameters and defaults as torchmetrics 1.9, the same ``update(imgs, real)``,
``compute()`` and ``reset()`` (``reset_real_features=False`` keeps the real statistics), the same
input conventions (uint8 images by default; ``normalize=True`` takes float images in [0, 1]
and converts them with ``(imgs * 255).byte()`` as torchmetrics does; a ``torch.nn.Module`` as
``feature`` gets the images as they are) and the same Inception protocol as torch-fidelity
(bilinear resize to 299 x 299, antialiased unless ``antialias=False`` (then TensorFlow 1's
resize), ``(x - 128) / 128``). What differs:

* The state is a float64 :class:`fastperc.stats.FeatureStats` per side (mean and centred
  scatter, merged with Chan's update): no cancellation in ``sum x x^T - n mu mu^T``, and the
  distance is the exact symmetric one (:func:`fastperc.stats.frechet_distance`) instead of
  the eigenvalues of the non-symmetric ``S1 S2``.
* Under ``torch.distributed`` the state is all-reduced at ``compute()`` (every rank returns
  the same value; the local state is left as it was), as torchmetrics syncs it.
* Not a ``torchmetrics.Metric`` (torchmetrics is not needed): ``forward`` is ``update``;
  ``MetricCollection``, ``plot`` and ``set_dtype`` are not offered. Of torchmetrics' metric
  keyword arguments ``process_group`` and ``sync_on_compute`` are used, the others
  (``compute_on_cpu``, ``dist_sync_on_step``, ``dist_sync_fn``, ...) are accepted and ignored.
* The Inception weights (``feature`` an int) come from ``feature_extractor_weights_path`` or the
  search of :func:`fastperc.models.inception_v3_fid` (pytorch-fid's file has the same network;
  torch-fidelity is not needed). A custom module's feature length is taken from its first
  batch (no dummy forward at construction, so ``input_img_size`` is not used).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..stats import FeatureStats, frechet_distance

__all__ = ["FrechetInceptionDistance", "KernelInceptionDistance"]

_METRIC_KWARGS = {
    "compute_on_cpu",
    "dist_sync_on_step",
    "process_group",
    "dist_sync_fn",
    "distributed_available_fn",
    "sync_on_compute",
    "compute_with_cache",
    "compiled",
}


def _metric_kwargs(kwargs: dict[str, Any]) -> tuple[object, bool]:
    unknown = sorted(set(kwargs) - _METRIC_KWARGS)
    if unknown:
        raise ValueError(f"Unexpected keyword arguments: {', '.join(f'`{k}`' for k in unknown)}")
    sync = kwargs.get("sync_on_compute", True)
    if not isinstance(sync, bool):
        raise ValueError(f"Expected keyword argument `sync_on_compute` to be a bool, got {sync!r}")
    return kwargs.get("process_group"), sync


def _world(group: object) -> int:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(group)  # type: ignore[arg-type]
    return 1


def resize_bilinear_tf1(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TensorFlow 1's ``resize_bilinear`` (``align_corners=False``, no half-pixel centres):
    output pixel ``i`` samples the input at ``i * in / out``, the last row/column replicated."""

    def axis(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
        i0 = src.floor().long().clamp_(max=n_in - 1)
        i1 = (i0 + 1).clamp_(max=n_in - 1)
        return i0.to(x.device), i1.to(x.device), (src - i0).to(x.device, x.dtype)

    (y0, y1, wy), (x0, x1, wx) = axis(x.shape[-2], size[0]), axis(x.shape[-1], size[1])
    top, bottom = x[..., y0, :], x[..., y1, :]
    rows = top + (bottom - top) * wy[:, None]
    left, right = rows[..., x0], rows[..., x1]
    return left + (right - left) * wx


class _FidelityInception(nn.Module):
    """torch-fidelity's Inception protocol on uint8 images: float, bilinear resize to 299,
    ``(x - 128) / 128``, the FID network's features ``feature`` (64, 192, 768, 2048 or
    ``"logits_unbiased"``)."""

    def __init__(self, feature: int | str, weights: object, antialias: bool) -> None:
        super().__init__()
        from ..models.inception import inception_v3_fid

        self.feature = feature
        self.antialias = antialias
        dims = 2048 if feature == "logits_unbiased" else int(feature)
        self.extractor = inception_v3_fid(weights, dims=dims, normalize="clean_fid")
        self.num_features = 1008 if feature == "logits_unbiased" else dims

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        if not isinstance(imgs, torch.Tensor) or imgs.dtype != torch.uint8:
            got = imgs.dtype if isinstance(imgs, torch.Tensor) else type(imgs).__name__
            raise TypeError(
                f"Expected `imgs` to be a torch.uint8 tensor [N, 3, H, W] (or float in [0, 1] "
                f"with normalize=True), got {got}"
            )
        if imgs.ndim != 4 or imgs.shape[1] != 3:
            raise ValueError(f"Expected `imgs` of shape [N, 3, H, W], got {tuple(imgs.shape)}")
        x = imgs.to(self.extractor.net.fc.weight.device).float()
        if tuple(x.shape[-2:]) != (299, 299):
            if self.antialias:
                x = F.interpolate(
                    x, size=(299, 299), mode="bilinear", align_corners=False, antialias=True
                )
            else:
                x = resize_bilinear_tf1(x, (299, 299))
        if self.feature == "logits_unbiased":
            return self.extractor.logits(x)
        return self.extractor(x)


def _check_feature(feature: object, allowed: tuple) -> None:
    if isinstance(feature, bool) or not isinstance(feature, (int, str, nn.Module)):
        raise TypeError("Got unknown input to argument `feature`")
    if not isinstance(feature, nn.Module) and feature not in allowed:
        raise ValueError(
            f"Integer input to argument `feature` must be one of {allowed}, but got {feature}."
        )


class FrechetInceptionDistance(nn.Module):
    """Fréchet Inception Distance between the images passed with ``real=True`` and those with
    ``real=False`` (a drop-in for ``torchmetrics.image.fid.FrechetInceptionDistance``).

    Args:
        feature: 64, 192, 768 or 2048 (the FID Inception's features; needs its weights), or a
            ``torch.nn.Module`` mapping a batch of images to ``[N, D]`` features.
        reset_real_features: whether :meth:`reset` also clears the real images' statistics.
        normalize: with the Inception, take float images in [0, 1] (converted with
            ``(imgs * 255).byte()``) instead of uint8; with a custom module, nothing is
            converted.
        input_img_size: accepted for compatibility (not used).
        feature_extractor_weights_path: the Inception weights file (default: searched).
        antialias: resize to 299 with antialiasing (torchmetrics' default) or as TensorFlow 1.
        kwargs: torchmetrics' metric options; ``process_group`` and ``sync_on_compute`` are
            used, the others accepted and ignored.

    Example:
        >>> import torch
        >>> from fastperc.compat.torchmetrics import FrechetInceptionDistance
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4))
        >>> fid = FrechetInceptionDistance(feature=net, normalize=True)
        >>> g = torch.Generator().manual_seed(0)
        >>> fid.update(torch.rand(20, 3, 2, 2, generator=g), real=True)
        >>> fid.update(torch.rand(20, 3, 2, 2, generator=g), real=False)
        >>> bool(fid.compute() >= 0)
        True
    """

    higher_is_better = False
    is_differentiable = False

    def __init__(
        self,
        feature: int | nn.Module = 2048,
        reset_real_features: bool = True,
        normalize: bool = False,
        input_img_size: tuple[int, int, int] = (3, 299, 299),
        feature_extractor_weights_path: str | None = None,
        antialias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.process_group, self.sync_on_compute = _metric_kwargs(kwargs)
        if not isinstance(normalize, bool):
            raise ValueError("Argument `normalize` expected to be a bool")
        if not isinstance(reset_real_features, bool):
            raise ValueError("Argument `reset_real_features` expected to be a bool")
        _check_feature(feature, (64, 192, 768, 2048))
        self.normalize = normalize
        self.reset_real_features = reset_real_features
        self.input_img_size = input_img_size
        self.used_custom_model = isinstance(feature, nn.Module)
        self.inception: nn.Module = (
            feature  # type: ignore[assignment]
            if isinstance(feature, nn.Module)
            else _FidelityInception(feature, feature_extractor_weights_path, antialias)
        )
        self.orig_dtype = torch.float32
        self._real = FeatureStats(compute_dtype=torch.float64)
        self._fake = FeatureStats(compute_dtype=torch.float64)

    # -- state ----------------------------------------------------------------------------------

    @property
    def real_stats(self) -> FeatureStats:
        """The real images' statistics on this process."""
        return self._real

    @property
    def fake_stats(self) -> FeatureStats:
        """The generated images' statistics on this process."""
        return self._fake

    @property
    def real_features_num_samples(self) -> torch.Tensor:
        return torch.tensor(self._real.count or 0)

    @property
    def fake_features_num_samples(self) -> torch.Tensor:
        return torch.tensor(self._fake.count or 0)

    def _features(self, imgs: torch.Tensor) -> torch.Tensor:
        if self.normalize and not self.used_custom_model:
            imgs = (imgs * 255).byte()
        features = self.inception(imgs)
        if not isinstance(features, torch.Tensor):
            raise TypeError(
                f"Expected the feature extractor to return a torch.Tensor, got "
                f"{type(features).__name__}"
            )
        self.orig_dtype = features.dtype
        if features.dim() == 1:
            features = features.unsqueeze(0)
        if features.dim() != 2:
            raise ValueError(
                f"Expected the feature extractor to return [N, D] features, got "
                f"{tuple(features.shape)}"
            )
        return features.detach().double()

    def update(self, imgs: torch.Tensor, real: bool) -> None:
        """Add a batch of images to the real (``real=True``) or generated statistics."""
        features = self._features(imgs)
        (self._real if real else self._fake).update(features)

    def forward(self, imgs: torch.Tensor, real: bool) -> None:
        """Same as :meth:`update`."""
        self.update(imgs, real)

    def _synced(self, stats: FeatureStats) -> FeatureStats:
        if not self.sync_on_compute or _world(self.process_group) <= 1:
            return stats
        return stats.copy().all_reduce(self.process_group)

    def compute(self) -> torch.Tensor:
        """The FID (a scalar tensor in the features' dtype), over all processes' images under
        ``torch.distributed``."""
        real, fake = self._synced(self._real), self._synced(self._fake)
        if (real.count or 0) < 2 or (fake.count or 0) < 2:
            raise RuntimeError(
                "More than one sample is required for both the real and fake distributed to "
                "compute FID"
            )
        value = frechet_distance(real, fake)
        dev = real.device or torch.device("cpu")
        return torch.tensor(value, dtype=torch.float64, device=dev).to(self.orig_dtype)

    def reset(self) -> None:
        """Clear the generated images' statistics, and the real ones unless
        ``reset_real_features=False``."""
        self._fake = FeatureStats(compute_dtype=torch.float64)
        if self.reset_real_features:
            self._real = FeatureStats(compute_dtype=torch.float64)


class KernelInceptionDistance(nn.Module):
    """Kernel Inception Distance (a drop-in for ``torchmetrics.image.kid.KernelInceptionDistance``).

    Keeps the features (as torchmetrics does) and at :meth:`compute` draws ``subsets`` subsets
    of ``subset_size`` rows with ``torch.randperm`` from torch's global random state, real then
    fake, exactly as torchmetrics does (so ``torch.manual_seed(s)`` before ``compute()`` gives
    torchmetrics' subsets); the MMD sums run in float64. Under ``torch.distributed`` the
    features of all processes are gathered at ``compute()``, in rank order.

    Args:
        feature: ``"logits_unbiased"``, 64, 192, 768, 2048 or a ``torch.nn.Module``.
        subsets, subset_size: the number and size of the subsets.
        degree, gamma, coef: the polynomial kernel ``(gamma x.y + coef)^degree``
            (``gamma=None``: 1 / D).
        reset_real_features, normalize, kwargs: as :class:`FrechetInceptionDistance`.

    Returns (of :meth:`compute`):
        ``(kid_mean, kid_std)`` scalar tensors (the std with ``ddof=0``).
    """

    higher_is_better = False
    is_differentiable = False

    def __init__(
        self,
        feature: str | int | nn.Module = 2048,
        subsets: int = 100,
        subset_size: int = 1000,
        degree: int = 3,
        gamma: float | None = None,
        coef: float = 1.0,
        reset_real_features: bool = True,
        normalize: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.process_group, self.sync_on_compute = _metric_kwargs(kwargs)
        _check_feature(feature, ("logits_unbiased", 64, 192, 768, 2048))
        for name, value in (("subsets", subsets), ("subset_size", subset_size), ("degree", degree)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"Argument `{name}` expected to be integer larger than 0")
        if gamma is not None and not (isinstance(gamma, float) and gamma > 0):
            raise ValueError("Argument `gamma` expected to be `None` or float larger than 0")
        if not (isinstance(coef, float) and coef > 0):
            raise ValueError("Argument `coef` expected to be float larger than 0")
        if not isinstance(reset_real_features, bool):
            raise ValueError("Argument `reset_real_features` expected to be a bool")
        if not isinstance(normalize, bool):
            raise ValueError("Argument `normalize` expected to be a bool")
        self.subsets, self.subset_size, self.degree = subsets, subset_size, degree
        self.gamma, self.coef = gamma, coef
        self.reset_real_features, self.normalize = reset_real_features, normalize
        self.used_custom_model = isinstance(feature, nn.Module)
        self.inception: nn.Module = (
            feature  # type: ignore[assignment]
            if isinstance(feature, nn.Module)
            else _FidelityInception(feature, None, True)
        )
        self.real_features: list[torch.Tensor] = []
        self.fake_features: list[torch.Tensor] = []

    def update(self, imgs: torch.Tensor, real: bool) -> None:
        """Add a batch of images to the real (``real=True``) or generated features."""
        if self.normalize and not self.used_custom_model:
            imgs = (imgs * 255).byte()
        features = self.inception(imgs)
        if not isinstance(features, torch.Tensor) or features.dim() != 2:
            got = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features)
            raise ValueError(f"Expected the feature extractor to return [N, D] features, got {got}")
        (self.real_features if real else self.fake_features).append(features.detach())

    def forward(self, imgs: torch.Tensor, real: bool) -> None:
        """Same as :meth:`update`."""
        self.update(imgs, real)

    def _gathered(self, feats: list[torch.Tensor]) -> torch.Tensor | None:
        local = torch.cat(feats) if feats else None
        if not self.sync_on_compute or _world(self.process_group) <= 1:
            return local
        import torch.distributed as dist

        parts: list = [None] * _world(self.process_group)
        mine = None if local is None else local.cpu()
        dist.all_gather_object(parts, mine, group=self.process_group)  # type: ignore[arg-type]
        parts = [p for p in parts if p is not None]
        if not parts:
            return None
        dev = local.device if local is not None else torch.device("cpu")
        return torch.cat(parts).to(dev)

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, std)`` of the unbiased MMD^2 over the subsets."""
        from ..stats import _features, _Kernel, _kid_values

        real, fake = self._gathered(self.real_features), self._gathered(self.fake_features)
        n_real = 0 if real is None else real.shape[0]
        n_fake = 0 if fake is None else fake.shape[0]
        if self.subset_size < 2:
            raise ValueError("Argument `subset_size` must be at least 2 for the unbiased MMD")
        if n_real < self.subset_size or n_fake < self.subset_size:
            raise ValueError("Argument `subset_size` should be smaller than the number of samples")
        assert real is not None and fake is not None
        dtype = real.dtype
        a = _features(real, "real features", min_rows=2)
        b = _features(fake, "fake features", dim=int(a.shape[1]), min_rows=2)
        m = self.subset_size
        idx = []
        for _ in range(self.subsets):  # torchmetrics' draws: global RNG, real then fake
            ia = torch.randperm(n_real)[:m].numpy()
            ib = torch.randperm(n_fake)[:m].numpy()
            idx.append((ia, ib))
        kern = _Kernel(
            "poly", degree=self.degree, gamma=self.gamma, coef=self.coef, dim=int(a.shape[1])
        )
        vals = np.asarray(_kid_values(a, b, idx, m, kern))
        dev = real.device
        mean = torch.tensor(vals.mean(), dtype=torch.float64, device=dev).to(dtype)
        std = torch.tensor(vals.std(), dtype=torch.float64, device=dev).to(dtype)
        return mean, std

    def reset(self) -> None:
        """Clear the generated features, and the real ones unless
        ``reset_real_features=False``."""
        self.fake_features = []
        if self.reset_real_features:
            self.real_features = []
