"""Helpers shared by the drop-in modules."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch

from ..stats import FeatureStats


def resolve_device(device: object, name: str = "device") -> torch.device:
    """``None`` -> CUDA when available, else the CPU; anything ``torch.device`` takes."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)  # type: ignore[arg-type]
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"Expected `{name}` to be a torch.device or a device name, got {device!r}"
        ) from exc


def check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"Expected `{name}` to be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"Expected `{name}` >= {minimum}, got {value}")
    return int(value)


def is_extractor(model: object) -> bool:
    """Whether ``model`` is a fastperc :class:`~fastperc.models._base.Extractor` (0..255 in)."""
    from ..models._base import Extractor

    return isinstance(model, Extractor)


def same_size_batches(records: Iterable, batch_size: int) -> Iterator[tuple[list[str], np.ndarray]]:
    """``(names, [B, H, W, 3] uint8)`` batches of consecutive images of one size (a batch ends
    early where the size changes, so folders of mixed sizes work)."""
    names: list[str] = []
    imgs: list[np.ndarray] = []
    for rec in records:
        if imgs and rec.image.shape != imgs[0].shape:
            yield names, np.stack(imgs)
            names, imgs = [], []
        names.append(rec.name)
        imgs.append(rec.image)
        if len(imgs) == batch_size:
            yield names, np.stack(imgs)
            names, imgs = [], []
    if imgs:
        yield names, np.stack(imgs)


def accumulate(
    batches: Iterable[torch.Tensor],
    *,
    keep: bool,
    dims: int | None = None,
    dims_name: str = "dims",
) -> tuple[FeatureStats, np.ndarray | None]:
    """float64 statistics (and, with ``keep``, the stacked float32 features) of feature
    batches ``[B, D]``."""
    stats = FeatureStats(compute_dtype=torch.float64)
    kept: list[np.ndarray] = []
    for f in batches:
        if dims is not None and f.shape[1] != dims:
            raise ValueError(
                f"The model returned {f.shape[1]} features per image, but `{dims_name}` is {dims}"
            )
        if not bool(torch.isfinite(f).all()):
            raise ValueError("The model returned NaN or Inf features")
        stats.update(f)
        if keep:
            kept.append(f.detach().float().cpu().numpy())
    return stats, (np.concatenate(kept) if kept else None)


def no_images(what: str) -> ValueError:
    return ValueError(f"No images found in {what}")


def progress(iterable: Iterable, enabled: bool, desc: str, total: int | None = None):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total)


def as_float_features(x: object, name: str) -> np.ndarray:
    """A numpy float array from an array-like of features (torch tensors are moved to the CPU)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"Expected `{name}` to hold numbers, got dtype {a.dtype}")
    return a if a.dtype.kind == "f" else a.astype(np.float64)


Fn = Callable[[np.ndarray], np.ndarray]
