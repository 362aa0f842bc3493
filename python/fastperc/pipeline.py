"""The evaluation pipeline: images -> resize -> features -> statistics -> FID / KID.

:func:`extract_features`, :func:`compute_stats`, :func:`fid` and :func:`kid` take any image
source :func:`fastperc.inputs.open_images` reads (folders, archives, ``.npy``/``.npz`` arrays,
tensors, datasets, generators) or, where statistics suffice, a statistics file
(``.npz`` with ``mu``/``sigma`` as pytorch-fid, clean-fid and :meth:`FeatureStats.save` write
them) or a :class:`~fastperc.stats.FeatureStats`.

Each image is decoded (in parallel threads, streamed), resized to the extractor's input size
by the ``mode``'s protocol, batched and run through the extractor; the features are
accumulated into float64 statistics as they come, so memory does not grow with the number of
images. Decoding and resizing run in a producer thread (the C++ kernels release the GIL) while
the network runs on the previous batch.

Modes (the resize protocol before the network):

* ``"clean"`` (default): clean-fid's: PIL's antialiased bicubic on float images
  (:func:`fastperc.resize.resize` with ``method="pil_bicubic"``), no re-quantization;
* ``"legacy_pytorch"``: pytorch-fid's: bilinear without antialiasing
  (``align_corners=False``), the network's own input resize;
* ``"legacy_tensorflow"``: clean-fid's ``legacy_tensorflow`` resize.

Under ``torchrun`` (``torch.distributed`` initialised with more than one process), every rank
reads its round-robin shard of the images and the statistics are all-reduced
(:meth:`FeatureStats.all_reduce`), so every rank returns the same result::

    torchrun --nproc-per-node 8 -m fastperc fid real/ fake/ --device cuda

Statistics are cached (``cache=True``) under ``$FASTPERC_CACHE/stats`` (default
``~/.cache/fastperc/stats``), keyed by the source's fingerprint (file names, sizes, times and
content samples), the extractor's provenance, the mode and the fastperc version.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .stats import KID, FeatureStats, frechet_distance
from .stats import kid as _kid

__all__ = [
    "MODES",
    "Features",
    "compute_stats",
    "extract_features",
    "fid",
    "kid",
    "load_stats_file",
]

#: The resize protocols before the network.
MODES = ("clean", "legacy_pytorch", "legacy_tensorflow")
_RESIZE_METHOD = {
    "clean": "pil_bicubic",
    "legacy_pytorch": "bilinear",
    "legacy_tensorflow": "legacy_tensorflow",
}


# ----------------------------------------------------------------------------------------------
# Arguments
# ----------------------------------------------------------------------------------------------


def _check_mode(mode: object) -> str:
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"Expected `mode` to be one of {MODES}, got {mode!r}")
    return mode


def _check_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"Expected `{name}` to be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"Expected `{name}` >= 1, got {value}")
    return int(value)


def _resolve_device(device: object) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)  # type: ignore[arg-type]
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"Expected `device` to be a torch device or its name, got {device!r}"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"`device` is {device!r} but CUDA is not available")
    return dev


def _cache_dir() -> Path:
    root = os.environ.get("FASTPERC_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "fastperc"
    )
    return Path(root) / "stats"


# ----------------------------------------------------------------------------------------------
# Statistics files
# ----------------------------------------------------------------------------------------------


def _npz_keys(path: str) -> list[str] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return list(z.files)
    except Exception:
        return None


def _is_stats_file(source: object) -> bool:
    if not isinstance(source, (str, os.PathLike)):
        return False
    path = os.fspath(source)
    if not path.lower().endswith(".npz") or not os.path.isfile(path):
        return False
    keys = _npz_keys(path)
    return keys is not None and (("mu" in keys and "sigma" in keys) or "feats" in keys)


def load_stats_file(path: str | os.PathLike) -> FeatureStats:
    """Statistics from an ``.npz`` written by fastperc, pytorch-fid or clean-fid."""
    return FeatureStats.load(path)


# ----------------------------------------------------------------------------------------------
# Extraction
# ----------------------------------------------------------------------------------------------


@dataclass
class Features:
    """Features of an image set.

    Attributes:
        features: ``[N, D]`` float32 features, in the source's order (``None`` when only the
            statistics were kept).
        stats: their float64 :class:`~fastperc.stats.FeatureStats`.
        logits: ``[N, classes]`` classifier outputs when requested, else ``None``.
        names: the image names, in order.
        skipped: ``(name, reason)`` of the inputs that could not be read.
        provenance: how the features were made (extractor, weights, mode, fastperc version).
    """

    features: np.ndarray | None
    stats: FeatureStats
    logits: np.ndarray | None = None
    names: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    provenance: dict[str, object] = field(default_factory=dict)


def _distributed() -> tuple[int, int]:
    """(rank, world size) of an initialised process group, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _progress(total: int | None, desc: str, enabled: bool | None):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, dynamic_ncols=True)


def _source_len(images: object) -> int | None:
    try:
        return len(images)  # type: ignore[arg-type]
    except TypeError:
        return None


class _Producer(threading.Thread):
    """Decodes, transforms and resizes images into float32 NHWC batches on a bounded queue."""

    _DONE = object()

    def __init__(
        self,
        records: Iterator,
        batch_size: int,
        prepare: Callable[[np.ndarray], np.ndarray],
        depth: int = 2,
        first_batch: int | None = None,
    ) -> None:
        super().__init__(daemon=True, name="fastperc-producer")
        self.records = records
        self.batch_size = batch_size
        # A smaller first batch starts the network sooner: until it arrives, nothing overlaps
        # the decoding.
        self.first_batch = min(batch_size, first_batch or batch_size)
        self.prepare = prepare
        self.q: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def _put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        try:
            names: list[str] = []
            arrays: list[np.ndarray] = []
            size = self.first_batch
            for rec in self.records:
                if self.stop.is_set():
                    return
                arrays.append(self.prepare(rec.image))
                names.append(rec.name)
                if len(arrays) == size:
                    if not self._put((names, np.stack(arrays))):
                        return
                    names, arrays, size = [], [], self.batch_size
            if arrays and not self._put((names, np.stack(arrays))):
                return
        except BaseException as exc:
            self.error = exc
        finally:
            self._put(self._DONE)

    def batches(self) -> Iterator[tuple[list[str], np.ndarray]]:
        self.start()
        try:
            while True:
                item = self.q.get()
                if item is self._DONE:
                    break
                yield item
        finally:
            self.stop.set()
            self.join(timeout=5)
        if self.error is not None:
            raise self.error


def _preparer(
    size: tuple[int, int] | None,
    method: str,
    transform: Callable[[np.ndarray], np.ndarray] | None,
) -> Callable[[np.ndarray], np.ndarray]:
    """uint8 HWC RGB -> float32 HWC 0..255 at the extractor's input size."""

    def prepare(img: np.ndarray) -> np.ndarray:
        if transform is not None:
            img = transform(img)
        if size is None or tuple(img.shape[:2]) == tuple(size):
            return np.asarray(img, dtype=np.float32)
        from .resize import resize

        return np.asarray(resize(img, size, method=method), dtype=np.float32)

    return prepare


def _open(source: object, *, workers: int | None, strict: bool):
    from .inputs import open_images

    return open_images(source, workers=workers, strict=strict)


def extract_features(
    images: object,
    *,
    extractor: object = "auto",
    weights: str | os.PathLike | None = None,
    mode: str = "clean",
    batch_size: int = 32,
    device: object = None,
    workers: int | None = None,
    strict: bool = False,
    progress: bool | None = None,
    keep_features: bool = True,
    logits: bool = False,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    desc: str = "features",
) -> Features:
    """Run an image source through a feature extractor.

    Args:
        images: anything :func:`fastperc.inputs.open_images` reads.
        extractor: ``"auto"``, ``"inception"``, ``"efficientnet_lite0"``, an
            :class:`~fastperc.models.Extractor`, or any ``torch.nn.Module``/callable mapping
            float32 ``[N, 3, H, W]`` images in 0..255 to ``[N, D]`` features
            (see :func:`fastperc.models.get_extractor`).
        weights: the weights file of a named extractor (e.g. pytorch-fid's
            ``pt_inception-2015-12-05-6726825d.pth``).
        mode: the resize protocol: ``"clean"``, ``"legacy_pytorch"``, ``"legacy_tensorflow"``.
        batch_size: images per forward pass (the first pass takes at most 16, so the network
            starts while the rest is still being decoded).
        device: where the network runs (default: CUDA when available, else the CPU).
        workers: decoding threads (default: :func:`fastperc.inputs.open_images`'s).
        strict: raise on an unreadable image instead of skipping it with a warning.
        progress: show a progress bar on stderr (default: when stderr is a terminal).
        keep_features: keep the ``[N, D]`` matrix (needed by KID); else statistics only.
        logits: also keep the classifier outputs (Inception Score).
        transform: a function applied to each decoded uint8 ``[H, W, 3]`` image before the
            resize (e.g. a JPEG re-encoding).
        desc: the progress bar's label.

    Returns:
        :class:`Features`. Under ``torch.distributed`` every rank returns the statistics of all
        ranks' images; ``features``/``logits``/``names`` are gathered too when kept.
    """
    from .models import get_extractor

    mode = _check_mode(mode)
    batch_size = _check_positive_int(batch_size, "batch_size")
    dev = _resolve_device(device)
    ext = get_extractor(extractor, weights=weights, device=dev)
    ext = ext.to(dev).eval()
    method = _RESIZE_METHOD[mode]
    size = getattr(ext, "input_size", None)
    source = _open(images, workers=workers, strict=strict)
    rank, world = _distributed()
    records = source.iter_shard(rank, world) if world > 1 else iter(source)
    total = _source_len(source)
    if total is not None and world > 1:
        total = len(range(rank, total, world))
    bar = _progress(total, desc, progress if rank == 0 else False)
    # machine-specific entries (where the weights file lies, how it was chosen) stay out: they
    # would make statistics computed on two machines look different
    provenance: dict[str, object] = {
        **{
            str(k): v
            for k, v in dict(getattr(ext, "provenance", {}) or {}).items()
            if k not in ("path", "selected_by")
        },
        "mode": mode,
        "resize": method,
        "fastperc_version": __version__,
    }
    provenance = {
        k: (v if isinstance(v, (str, int, float, bool)) or v is None else str(v))
        for k, v in provenance.items()
    }
    # float64 products: the statistics do not depend on batching or sharding beyond rounding
    stats = FeatureStats(provenance=provenance, compute_dtype=torch.float64)
    feats: list[np.ndarray] = []
    outs: list[np.ndarray] = []
    names: list[str] = []
    # first batch: 16 images (or batch_size if smaller) -- enough for oneDNN's batched
    # convolutions, half the wait of a default batch before the network starts
    producer = _Producer(records, batch_size, _preparer(size, method, transform), first_batch=16)
    channels_last = dev.type == "cpu"
    try:
        with torch.inference_mode():
            for batch_names, batch in producer.batches():
                x = torch.from_numpy(batch).to(dev, non_blocking=True).permute(0, 3, 1, 2)
                x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
                if logits:
                    f, lg = ext.features_and_logits(x)  # one pass for both
                else:
                    f = ext(x)
                if not isinstance(f, torch.Tensor) or f.ndim != 2 or f.shape[0] != x.shape[0]:
                    raise ValueError(
                        f"Expected the extractor to return [N, D] features for a batch of "
                        f"{x.shape[0]}, got "
                        f"{tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__}"
                    )
                f = f.float()
                if not bool(torch.isfinite(f).all()):
                    bad = [batch_names[i] for i in (~torch.isfinite(f).all(1)).nonzero()[:, 0]]
                    raise ValueError(f"The extractor returned non-finite features for {bad[:5]}")
                stats.update(f)
                if keep_features:
                    feats.append(f.cpu().numpy())
                if logits:
                    outs.append(lg.float().cpu().numpy())
                names.extend(batch_names)
                if bar is not None:
                    bar.update(len(batch_names))
    finally:
        if bar is not None:
            bar.close()
    skipped = list(getattr(source, "skipped", []) or [])
    feat_mat = np.concatenate(feats) if feats else None
    logit_mat = np.concatenate(outs) if outs else None
    if world > 1:
        import torch.distributed as dist

        if stats.count == 0:  # a rank with no images still takes part in the reduction
            dim = int(getattr(ext, "dim", 0) or 0)
            if dim:
                stats = FeatureStats(
                    dim,
                    provenance=provenance,
                    device=torch.device("cpu"),
                    compute_dtype=torch.float64,
                )
        stats.all_reduce()
        gathered: list = [None] * world
        dist.all_gather_object(gathered, (names, feat_mat, logit_mat, skipped))
        names, skipped = [], []
        fm, lm = [], []
        for n, f, lg, sk in gathered:
            names.extend(n)
            skipped.extend(sk)
            if f is not None:
                fm.append(f)
            if lg is not None:
                lm.append(lg)
        feat_mat = np.concatenate(fm) if fm else None
        logit_mat = np.concatenate(lm) if lm else None
    if not names:
        raise ValueError(
            f"No image of `images` could be read ({len(skipped)} skipped): {skipped[:3]}"
            if skipped
            else "No images in `images`"
        )
    return Features(feat_mat, stats, logit_mat, names, skipped, provenance)


# ----------------------------------------------------------------------------------------------
# Statistics with caching
# ----------------------------------------------------------------------------------------------


def _cache_key(source: object, ext_provenance: dict, mode: str, extra: dict) -> str | None:
    fp = None
    try:
        opened = _open(source, workers=1, strict=False)
        fp = opened.fingerprint()
    except Exception:
        return None
    if not fp:
        return None
    blob = json.dumps(
        {"source": fp, "extractor": ext_provenance, "mode": mode, "v": __version__, **extra},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _cacheable(source: object) -> bool:
    if isinstance(source, (str, os.PathLike)):
        return True
    return isinstance(source, (list, tuple)) and all(
        isinstance(s, (str, os.PathLike)) for s in source
    )


def compute_stats(
    images: object,
    *,
    extractor: object = "auto",
    weights: str | os.PathLike | None = None,
    mode: str = "clean",
    batch_size: int = 32,
    device: object = None,
    workers: int | None = None,
    strict: bool = False,
    progress: bool | None = None,
    cache: bool = True,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    transform_key: str | None = None,
) -> FeatureStats:
    """Feature statistics (count, mean, covariance) of an image set.

    ``images`` is anything :func:`fastperc.inputs.open_images` reads, a statistics ``.npz``
    (returned as loaded), or a :class:`~fastperc.stats.FeatureStats`. Other arguments as
    :func:`extract_features`; ``cache=True`` keeps the statistics of folders and files under
    ``$FASTPERC_CACHE/stats`` and reuses them while the files, the extractor and the settings
    are unchanged. ``transform_key`` names ``transform`` in the cache key (without it a
    transformed set is not cached).

    Example:
        >>> import fastperc  # doctest: +SKIP
        >>> s = fastperc.compute_stats("real/", extractor="efficientnet_lite0")  # doctest: +SKIP
        >>> s.save("real.npz")  # doctest: +SKIP
    """
    if isinstance(images, FeatureStats):
        return images
    if _is_stats_file(images):
        return load_stats_file(images)  # type: ignore[arg-type]
    mode = _check_mode(mode)
    key = path = None
    _, world = _distributed()
    if cache and world == 1 and _cacheable(images) and (transform is None or transform_key):
        from .models import get_extractor

        ext = get_extractor(extractor, weights=weights, device=_resolve_device(device))
        prov = dict(getattr(ext, "provenance", {}) or {})
        key = _cache_key(images, prov, mode, {"transform": transform_key})
        extractor = ext
        if key:
            path = _cache_dir() / f"{key}.npz"
            if path.is_file():
                try:
                    return FeatureStats.load(path)
                except ValueError:
                    pass  # a damaged cache entry is recomputed and replaced
    res = extract_features(
        images,
        extractor=extractor,
        weights=weights,
        mode=mode,
        batch_size=batch_size,
        device=device,
        workers=workers,
        strict=strict,
        progress=progress,
        keep_features=False,
        transform=transform,
    )
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            res.stats.save(path)
        except OSError as exc:
            warnings.warn(f"Could not write the statistics cache {path}: {exc}", stacklevel=2)
    return res.stats


def _jpeg_transform(quality: int, subsampling: str) -> Callable[[np.ndarray], np.ndarray]:
    from .jpeg import jpeg_simulate

    def transform(img: np.ndarray) -> np.ndarray:
        return jpeg_simulate(img, quality=quality, subsampling=subsampling, mode="exact")

    return transform


def _match_jpeg_plan(a: object, b: object, match_jpeg: object, subsampling: str | None):
    """(sides to re-encode: a tuple of 0/1, quality, subsampling) for ``match_jpeg``."""
    if match_jpeg is None or match_jpeg is False:
        return (), None, None
    if match_jpeg == "auto":
        from ._audit import audit

        report = audit(a, b)
        q = report.suggested_match_jpeg
        if q is None or report.suggested_reencode is None:
            return (), None, None
        sides = {"a": (0,), "b": (1,), "both": (0, 1)}[report.suggested_reencode]
        sub = subsampling or report.suggested_subsampling or "4:2:0"
        return sides, int(q), sub
    if isinstance(match_jpeg, bool) or not isinstance(match_jpeg, (int, np.integer)):
        raise TypeError(
            f"Expected `match_jpeg` to be None, 'auto' or a JPEG quality 1..100, got {match_jpeg!r}"
        )
    if not 1 <= int(match_jpeg) <= 100:
        raise ValueError(f"Expected `match_jpeg` in 1..100, got {match_jpeg}")
    return (1,), int(match_jpeg), subsampling or "4:2:0"


def fid(
    a: object,
    b: object,
    *,
    extractor: object = "auto",
    weights: str | os.PathLike | None = None,
    mode: str = "clean",
    batch_size: int = 32,
    device: object = None,
    workers: int | None = None,
    strict: bool = False,
    progress: bool | None = None,
    cache: bool = True,
    match_jpeg: object = None,
    match_subsampling: str | None = None,
) -> float:
    """Fréchet distance between the features of two image sets (FID with the FID Inception).

    Args:
        a, b: image sources (:func:`fastperc.inputs.open_images`), statistics ``.npz`` files
            or :class:`~fastperc.stats.FeatureStats`.
        match_jpeg: ``None``; a JPEG quality to re-encode ``b`` with before measuring
            (exact :func:`fastperc.jpeg.jpeg_simulate`); or ``"auto"``: when
            :func:`fastperc.audit` finds one set stored as JPEG and the other lossless, the
            lossless one is re-encoded at the JPEG set's dominant quality.
        match_subsampling: the chroma subsampling of that re-encoding (default: the audit's
            finding, else ``"4:2:0"``).
        Others: as :func:`compute_stats`.

    Returns:
        The distance (float).

    Example:
        >>> import fastperc  # doctest: +SKIP
        >>> fastperc.fid("real/", "fake/")  # doctest: +SKIP
        3.14...
    """
    sa, sb, _ = _fid_sides(
        a,
        b,
        match_jpeg=match_jpeg,
        match_subsampling=match_subsampling,
        extractor=extractor,
        weights=weights,
        mode=mode,
        batch_size=batch_size,
        device=device,
        workers=workers,
        strict=strict,
        progress=progress,
        cache=cache,
    )
    return frechet_distance(sa, sb)


def _fid_sides(a: object, b: object, *, match_jpeg: object, match_subsampling: object, **kw):
    """Statistics of both sides (with the ``match_jpeg`` plan applied) and the plan."""
    if match_subsampling is not None and match_subsampling not in ("4:4:4", "4:2:2", "4:2:0"):
        raise ValueError(
            "Expected `match_subsampling` to be None, '4:4:4', '4:2:2' or '4:2:0', got "
            f"{match_subsampling!r}"
        )
    plan = _match_jpeg_plan(a, b, match_jpeg, match_subsampling)
    sides, q, sub = plan
    kw["extractor"] = _shared_extractor(kw["extractor"], kw["weights"], kw["device"])
    sa = _stats_side(a, kw, 0 in sides, q, sub)
    sb = _stats_side(b, kw, 1 in sides, q, sub)
    return sa, sb, plan


def _shared_extractor(extractor: object, weights: object, device: object) -> object:
    """Build a named extractor once for both sides (the weights load once)."""
    if isinstance(extractor, str):
        from .models import get_extractor

        return get_extractor(extractor, weights=weights, device=_resolve_device(device))
    return extractor


def _stats_side(src: object, kw: dict, reencode: bool, q: int | None, sub: str | None):
    if not reencode or isinstance(src, FeatureStats) or _is_stats_file(src):
        return compute_stats(src, **kw)
    return compute_stats(
        src, **kw, transform=_jpeg_transform(q, sub), transform_key=f"jpeg:{q}:{sub}"
    )


def kid(
    a: object,
    b: object,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
    seed: int = 0,
    extractor: object = "auto",
    weights: str | os.PathLike | None = None,
    mode: str = "clean",
    batch_size: int = 32,
    device: object = None,
    workers: int | None = None,
    strict: bool = False,
    progress: bool | None = None,
) -> KID:
    """Kernel Inception Distance between two image sets (see :func:`fastperc.stats.kid`).

    ``a``/``b`` are image sources, ``[N, D]`` feature matrices, or ``.npz`` files with raw
    ``feats`` (clean-fid's KID statistics). Returns ``KID(mean, std)``.
    """
    ext = _shared_extractor(extractor, weights, device)

    def feats(src: object, desc: str) -> np.ndarray:
        if isinstance(src, (np.ndarray, torch.Tensor)) and src.ndim == 2:
            return np.asarray(src.detach().cpu() if isinstance(src, torch.Tensor) else src)
        if isinstance(src, (str, os.PathLike)) and _is_stats_file(src):
            with np.load(os.fspath(src), allow_pickle=False) as z:
                if "feats" not in z.files:
                    raise ValueError(
                        f"{os.fspath(src)!r} holds mean and covariance only: KID needs raw "
                        "features (`feats`)"
                    )
                return np.asarray(z["feats"])
        return extract_features(
            src,
            extractor=ext,
            weights=weights,
            mode=mode,
            batch_size=batch_size,
            device=device,
            workers=workers,
            strict=strict,
            progress=progress,
            desc=desc,
        ).features

    fa = feats(a, "features A")
    fb = feats(b, "features B")
    return _kid(fa, fb, subsets, subset_size, degree, gamma, coef, seed)
