"""A drop-in for clean-fid (``cleanfid.fid``).

The one-line change::

    from cleanfid import fid                  # before
    from fastperc.compat import cleanfid as fid   # after

    score = fid.compute_fid("real/", "fake/")  # unchanged

Same names, parameters and defaults as clean-fid 0.1.35: :func:`compute_fid`,
:func:`compute_kid`, :func:`make_custom_stats`, :func:`remove_custom_stats`,
:func:`frechet_distance`, :func:`kernel_distance`, :func:`get_folder_features`,
:func:`fid_from_feats`. The same protocol: ``mode="clean"`` resizes with PIL's bicubic filter on
float images to 299 x 299 (fastperc's C++ resize), ``"legacy_pytorch"`` as pytorch-fid,
``"legacy_tensorflow"`` with the TensorFlow 1 resize; the FID Inception normalised as
clean-fid's TorchScript network does (``(x - 128) / 128``; ``legacy_pytorch``: ``2 x / 255 -
1``). What differs:

* ``device=None`` (the default) means CUDA when available, else the CPU (clean-fid's default
  ``torch.device("cuda")`` fails on machines without a GPU); ``use_dataparallel`` is accepted and
  ignored (run several processes under ``torchrun`` instead: each reads its shard and the
  statistics are all-reduced).
* :func:`frechet_distance` is exact (:func:`fastperc.stats.frechet_distance`); ``eps`` is not
  needed. :func:`kernel_distance` draws the same subsets from numpy's global random state as
  clean-fid (so ``np.random.seed(s)`` before it gives clean-fid's number for that seed) and
  computes each subset's MMD in float64 (clean-fid computes in the features' dtype).
* Reference statistics (``dataset_name``) are looked up in clean-fid's ``stats`` folder (that
  of the installed ``cleanfid`` package, else ``$FASTPERC_CACHE/cleanfid_stats``) under
  clean-fid's names ``{name}_{mode}[_{model}]_{split}_{res}.npz`` (lower case), and never
  downloaded: a missing file raises a ``FileNotFoundError`` naming it, its URL and how to
  make it with :func:`make_custom_stats`.
* Inception weights are searched for as :func:`fastperc.models.inception_v3_fid` does (clean-fid's
  ``inception-2015-12-05.pt`` or pytorch-fid's file; no download).
* ``num_workers`` is a number of decoding threads; ``model_name="clip_vit_b_32"`` is not
  offered (pass a ``custom_feat_extractor``); generated images (``gen``) are quantised to 8 bits
  before the resize (clean-fid resizes the float output).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..stats import frechet_distance as _frechet_distance
from . import _common

__all__ = [
    "compute_fid",
    "compute_kid",
    "fid_from_feats",
    "frechet_distance",
    "get_folder_features",
    "kernel_distance",
    "make_custom_stats",
    "remove_custom_stats",
    "stats_folder",
]

_BASE_URL = "https://www.cs.cmu.edu/~clean-fid/stats/"
_MODES = ("clean", "legacy_pytorch", "legacy_tensorflow")


# ----------------------------------------------------------------------------------------------
# Distances
# ----------------------------------------------------------------------------------------------


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """Fréchet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``, exactly (see
    :func:`fastperc.stats.frechet_distance`); clean-fid's number to ~1e-6 relative on
    well-conditioned covariances. ``eps`` is accepted for compatibility and not needed.

    Example:
        >>> import numpy as np
        >>> float(frechet_distance(np.zeros(3), np.eye(3), np.ones(3), np.eye(3)))
        3.0
    """
    from .pytorch_fid import calculate_frechet_distance

    return calculate_frechet_distance(mu1, sigma1, mu2, sigma2, eps)


def kernel_distance(feats1, feats2, num_subsets=100, max_subset_size=1000):
    """KID: the unbiased MMD^2 with the kernel ``(x.y / d + 1)^3``, averaged over
    ``num_subsets`` random subsets of ``m = min(n1, n2, max_subset_size)`` rows of each set.

    The subsets are drawn from numpy's global random state exactly as clean-fid draws them
    (``np.random.choice(n, m, replace=False)``, ``feats2`` then ``feats1`` in each round), so
    after the same ``np.random.seed(s)`` both give the same subsets; the sums run in float64.

    Args:
        feats1, feats2: ``[N, D]`` features (numpy or torch).
        num_subsets: number of subsets.
        max_subset_size: rows per subset at most.

    Returns:
        The mean over subsets (a Python float, as clean-fid).

    Example:
        >>> import numpy as np
        >>> np.random.seed(0)
        >>> x = np.random.randn(200, 8)
        >>> near = kernel_distance(x, x + 0.01, num_subsets=5, max_subset_size=100)
        >>> far = kernel_distance(x, x + 1.0, num_subsets=5, max_subset_size=100)
        >>> abs(near) < 0.5 < far
        True
    """
    from ..stats import _features, _Kernel, _kid_values

    a = _features(_common.as_float_features(feats1, "feats1"), "feats1", min_rows=2)
    b = _features(
        _common.as_float_features(feats2, "feats2"),
        "feats2",
        dim=int(a.shape[1]),
        dim_of=" (as `feats1`)",
        min_rows=2,
    )
    num_subsets = _common.check_int(num_subsets, "num_subsets", 1)
    max_subset_size = _common.check_int(max_subset_size, "max_subset_size", 2)
    m = min(a.shape[0], b.shape[0], max_subset_size)
    idx = []
    for _ in range(num_subsets):  # clean-fid's order: x from feats2, then y from feats1
        ib = np.random.choice(b.shape[0], m, replace=False)  # noqa: NPY002 - clean-fid's draws
        ia = np.random.choice(a.shape[0], m, replace=False)  # noqa: NPY002
        idx.append((ia, ib))
    kern = _Kernel("poly", degree=3, gamma=None, coef=1.0, dim=int(a.shape[1]))
    return float(_kid_values(a, b, idx, m, kern).mean())


def fid_from_feats(feats1, feats2):
    """FID between two ``[N, D]`` feature matrices."""
    a = _common.as_float_features(feats1, "feats1")
    b = _common.as_float_features(feats2, "feats2")
    return np.float64(_frechet_distance(a, b))


# ----------------------------------------------------------------------------------------------
# Reference statistics
# ----------------------------------------------------------------------------------------------


def stats_folder() -> Path:
    """Where clean-fid keeps its statistics: the ``stats`` folder of the installed ``cleanfid``
    package, else ``$FASTPERC_CACHE/cleanfid_stats`` (``~/.cache/fastperc/cleanfid_stats``)."""
    try:
        spec = importlib.util.find_spec("cleanfid")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        return Path(spec.origin).parent / "stats"
    from ..models.weights import cache_dir

    return cache_dir() / "cleanfid_stats"


def _model_modifier(model_name: str) -> str:
    return "" if model_name == "inception_v3" else "_" + model_name


def _stats_file(name, mode, model_name, split, res, metric="FID") -> str:
    if split == "custom":
        res = "na"
    kid = "_kid" if metric == "KID" else ""
    return f"{name}_{mode}{_model_modifier(model_name)}_{split}_{res}{kid}.npz".lower()


def _reference(name, res, mode, model_name, split, metric):
    fname = _stats_file(name, mode, model_name, split, res, metric)
    path = stats_folder() / fname
    if not path.is_file():
        raise FileNotFoundError(
            f"No reference statistics {fname!r} in {path.parent} (dataset_name={name!r}, "
            f"dataset_res={res!r}, dataset_split={split!r}, mode={mode!r}). They are never "
            f"downloaded: fetch {_BASE_URL}{fname} into that folder, or make them from a folder "
            f"of images with make_custom_stats({name!r}, fdir, mode={mode!r}) and pass "
            f"dataset_split='custom'."
        )
    with np.load(path) as z:
        if metric == "KID":
            return z["feats"]
        return z["mu"], z["sigma"]


# ----------------------------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------------------------


def _check_mode(mode: object) -> str:
    if mode not in _MODES:
        raise ValueError(f"Expected `mode` to be one of {_MODES}, got {mode!r}")
    return mode  # type: ignore[return-value]


def _feature_model(
    mode: str,
    model_name: str,
    custom_feat_extractor: object,
    device: torch.device,
    custom_fn_resize: Callable | None,
):
    """The extractor (fed 0..255 float images) for ``mode``/``model_name``."""
    from ..models._base import Extractor, ModuleExtractor

    size = None if custom_fn_resize is not None else (299, 299)
    if custom_feat_extractor is not None:
        if isinstance(custom_feat_extractor, Extractor) and custom_fn_resize is None:
            return custom_feat_extractor
        return ModuleExtractor(custom_feat_extractor, input_size=size, name="custom_feat_extractor")
    if model_name != "inception_v3":
        raise ValueError(
            f"model_name={model_name!r} is not offered (only 'inception_v3'); pass your network "
            "as `custom_feat_extractor`"
        )
    from ..models.inception import inception_v3_fid

    ext = inception_v3_fid(
        None,
        normalize="pytorch_fid" if mode == "legacy_pytorch" else "clean_fid",
        resize_mode={"clean": "pil_bicubic", "legacy_pytorch": "bilinear"}.get(
            mode, "legacy_tensorflow"
        ),
        device=device,
    )
    if custom_fn_resize is not None:
        return ModuleExtractor(ext, input_size=None, name="inception_v3_fid")
    return ext


def _transform(custom_image_tranform, custom_fn_resize):
    if custom_image_tranform is None and custom_fn_resize is None:
        return None
    first = custom_image_tranform or (lambda x: x)
    second = custom_fn_resize or (lambda x: x)
    return lambda img: np.asarray(second(first(img)), dtype=np.float32)


def _cleanfid_files(fdir: str) -> list[str]:
    """clean-fid's listing of a folder: recursive, lower-case extensions, sorted paths."""
    from glob import glob

    exts = {"bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tif", "tiff", "webp", "npy"}
    return sorted(
        f
        for ext in exts
        for f in glob(os.path.join(glob_escape(fdir), f"**/*.{ext}"), recursive=True)
    )


def glob_escape(path: str) -> str:
    import glob

    return glob.escape(path)


def _folder_source(fdir, num=None, shuffle=False, seed=0, workers=1, verbose=True):
    from ..inputs import open_images

    fdir = os.fspath(fdir)
    if num is not None and shuffle:  # the same random subset as clean-fid
        import random

        if not os.path.isdir(fdir):
            raise ValueError(f"shuffle=True needs a folder, got {fdir!r}")
        files = _cleanfid_files(fdir)
        if verbose:
            print(f"Found {len(files)} images in the folder {fdir}")
        random.seed(seed)
        random.shuffle(files)
        return open_images(files[:num], workers=workers)
    source = open_images(fdir, workers=workers)
    if verbose:
        print(f"Found {len(source)} images in the folder {fdir}")
    if num is not None:
        num = _common.check_int(num, "num", 1)
        return open_images(fdir, workers=workers, count=min(num, len(source)))
    return source


def _features(
    source,
    feat_model,
    *,
    mode,
    batch_size,
    device,
    workers,
    verbose,
    keep,
    transform,
    desc,
):
    from ..pipeline import extract_features

    return extract_features(
        source,
        extractor=feat_model,
        mode=mode,
        batch_size=_common.check_int(batch_size, "batch_size", 1),
        device=device,
        workers=workers,
        strict=True,
        progress=bool(verbose),
        keep_features=keep,
        transform=transform,
        desc=desc,
    )


def get_folder_features(
    fdir,
    model=None,
    num_workers=12,
    num=None,
    shuffle=False,
    seed=0,
    batch_size=128,
    device=None,
    mode="clean",
    custom_fn_resize=None,
    description="",
    verbose=True,
    custom_image_tranform=None,
):
    """The ``[N, D]`` float32 features of the images in ``fdir`` (a folder, searched
    recursively, or a zip file); ``model=None`` is the FID Inception for ``mode``, else a
    callable mapping ``[N, 3, H, W]`` 0..255 float images (resized) to ``[N, D]``."""
    mode = _check_mode(mode)
    dev = _common.resolve_device(device)
    workers = max(1, _common.check_int(num_workers, "num_workers", 0))
    ext = _feature_model(mode, "inception_v3", model, dev, custom_fn_resize)
    src = _folder_source(fdir, num, shuffle, seed, workers, verbose)
    res = _features(
        src,
        ext,
        mode=mode,
        batch_size=batch_size,
        device=dev,
        workers=workers,
        verbose=verbose,
        keep=True,
        transform=_transform(custom_image_tranform, custom_fn_resize),
        desc=description or "features",
    )
    return res.features


def _generator_source(gen, z_dim, num_gen, batch_size, device):
    """An image source calling ``gen`` on batches of ``torch.randn(batch, z_dim)`` (images
    0..255, NCHW), quantised to 8 bits."""
    from ..inputs import open_images

    def fn(n: int) -> torch.Tensor:
        with torch.no_grad():
            z = torch.randn((n, z_dim)).to(device)
            img = gen(z)
        if not isinstance(img, torch.Tensor):
            img = torch.as_tensor(np.asarray(img))
        return img.detach().cpu().float().clamp(0, 255).round().to(torch.uint8)

    return open_images(fn, count=num_gen, batch_size=batch_size)


def _side(
    *,
    fdir=None,
    gen=None,
    feat_model,
    mode,
    batch_size,
    device,
    workers,
    verbose,
    keep,
    transform,
    desc,
    z_dim=512,
    num_gen=50_000,
):
    src = (
        _folder_source(fdir, workers=workers, verbose=verbose)
        if fdir is not None
        else _generator_source(gen, z_dim, num_gen, batch_size, device)
    )
    return _features(
        src,
        feat_model,
        mode=mode,
        batch_size=batch_size,
        device=device,
        workers=workers,
        verbose=verbose,
        keep=keep,
        transform=transform,
        desc=desc,
    )


# ----------------------------------------------------------------------------------------------
# FID and KID
# ----------------------------------------------------------------------------------------------


def compute_fid(
    fdir1=None,
    fdir2=None,
    gen=None,
    mode="clean",
    model_name="inception_v3",
    num_workers=12,
    batch_size=32,
    device=None,
    dataset_name="FFHQ",
    dataset_res=1024,
    dataset_split="train",
    num_gen=50_000,
    z_dim=512,
    custom_feat_extractor=None,
    verbose=True,
    custom_image_tranform=None,
    custom_fn_resize=None,
    use_dataparallel=True,
):
    """FID as clean-fid computes it, between two folders, a folder and reference statistics, a
    generator and a folder, or a generator and reference statistics.

    Args:
        fdir1, fdir2: folders (searched recursively) or zip files of images.
        gen: a generator ``G(z)`` returning ``[B, 3, H, W]`` images in 0..255 for
            ``z = torch.randn(B, z_dim)``; ``num_gen`` images are generated.
        mode: ``"clean"``, ``"legacy_pytorch"`` or ``"legacy_tensorflow"``.
        model_name: ``"inception_v3"`` (the reference statistics' model name too).
        num_workers: decoding threads.
        batch_size: images per forward pass.
        device: where the network runs; ``None``: CUDA when available, else the CPU.
        dataset_name, dataset_res, dataset_split: the reference statistics used when only one
            side is given (see :func:`stats_folder`; ``dataset_split="custom"`` for those of
            :func:`make_custom_stats`).
        custom_feat_extractor: a callable mapping ``[N, 3, H, W]`` 0..255 float images to
            ``[N, D]`` features, used instead of the Inception.
        verbose: print what is computed and show progress bars.
        custom_image_tranform: a function on each ``[H, W, 3]`` uint8 image before the resize.
        custom_fn_resize: a function replacing the resize (``[H, W, 3]`` in, ``[h, w, 3]``
            0..255 out).
        use_dataparallel: accepted and ignored.

    Returns:
        The FID (numpy float64).

    Example:
        >>> from fastperc.compat import cleanfid as fid  # doctest: +SKIP
        >>> fid.compute_fid("real/", "fake/")  # doctest: +SKIP
    """
    del use_dataparallel
    mode = _check_mode(mode)
    if fdir1 is None and gen is None:
        raise ValueError("invalid combination of directories and models entered")
    ref = None
    if fdir2 is None:  # the reference statistics first: a missing file fails fast
        ref = _reference(dataset_name, dataset_res, mode, model_name, dataset_split, "FID")
    dev = _common.resolve_device(device)
    workers = max(1, _common.check_int(num_workers, "num_workers", 0))
    feat_model = _feature_model(mode, model_name, custom_feat_extractor, dev, custom_fn_resize)
    common = dict(
        feat_model=feat_model,
        mode=mode,
        batch_size=batch_size,
        device=dev,
        workers=workers,
        verbose=verbose,
        keep=False,
        transform=_transform(custom_image_tranform, custom_fn_resize),
        z_dim=z_dim,
        num_gen=num_gen,
    )
    if fdir1 is not None and fdir2 is not None:
        if verbose:
            print("compute FID between two folders")
        s1 = _side(fdir=fdir1, desc=f"FID {os.path.basename(fdir1)} : ", **common).stats
        s2 = _side(fdir=fdir2, desc=f"FID {os.path.basename(fdir2)} : ", **common).stats
        return np.float64(_frechet_distance(s1, s2))
    if fdir1 is not None:
        if verbose:
            print(f"compute FID of a folder with {dataset_name} statistics")
        s = _side(fdir=fdir1, desc=f"FID {os.path.basename(fdir1)} : ", **common).stats
        return np.float64(_frechet_distance(s, ref))
    if gen is not None and fdir2 is not None:
        if verbose:
            print("compute FID of a model, using references in fdir2")
        s2 = _side(fdir=fdir2, desc=f"FID {os.path.basename(fdir2)} : ", **common).stats
        s = _side(gen=gen, desc="FID model: ", **common).stats
        return np.float64(_frechet_distance(s, s2))
    if gen is not None:
        if verbose:
            print(f"compute FID of a model with {dataset_name}-{dataset_res} statistics")
        s = _side(gen=gen, desc="FID model: ", **common).stats
        return np.float64(_frechet_distance(s, ref))
    raise ValueError("invalid combination of directories and models entered")


def compute_kid(
    fdir1=None,
    fdir2=None,
    gen=None,
    mode="clean",
    num_workers=12,
    batch_size=32,
    device=None,
    dataset_name="FFHQ",
    dataset_res=1024,
    dataset_split="train",
    num_gen=50_000,
    z_dim=512,
    verbose=True,
    use_dataparallel=True,
):
    """KID as clean-fid computes it (:func:`kernel_distance` on the Inception features; the
    subsets come from numpy's global random state). Arguments as :func:`compute_fid`.

    Returns:
        The KID (a Python float).
    """
    del use_dataparallel
    mode = _check_mode(mode)
    if fdir1 is None and gen is None:
        raise ValueError("invalid combination of directories and models entered")
    ref = None
    if fdir2 is None:  # the reference features first: a missing file fails fast
        ref = _reference(dataset_name, dataset_res, mode, "inception_v3", dataset_split, "KID")
    dev = _common.resolve_device(device)
    workers = max(1, _common.check_int(num_workers, "num_workers", 0))
    feat_model = _feature_model(mode, "inception_v3", None, dev, None)
    common = dict(
        feat_model=feat_model,
        mode=mode,
        batch_size=batch_size,
        device=dev,
        workers=workers,
        verbose=verbose,
        keep=True,
        transform=None,
        z_dim=z_dim,
        num_gen=num_gen,
    )
    if fdir1 is not None and fdir2 is not None:
        if verbose:
            print("compute KID between two folders")
        f1 = _side(fdir=fdir1, desc=f"KID {os.path.basename(fdir1)} : ", **common).features
        f2 = _side(fdir=fdir2, desc=f"KID {os.path.basename(fdir2)} : ", **common).features
        return kernel_distance(f1, f2)
    if fdir1 is not None:
        if verbose:
            print(f"compute KID of a folder with {dataset_name} statistics")
        f = _side(fdir=fdir1, desc=f"KID {os.path.basename(fdir1)} : ", **common).features
        return kernel_distance(ref, f)
    if gen is not None and fdir2 is not None:
        if verbose:
            print("compute KID of a model, using references in fdir2")
        ref = _side(fdir=fdir2, desc=f"KID {os.path.basename(fdir2)} : ", **common).features
        f = _side(gen=gen, desc="KID model: ", **common).features
        return kernel_distance(ref, f)
    if gen is not None:
        if verbose:
            print(f"compute KID of a model with {dataset_name}-{dataset_res} statistics")
        f = _side(gen=gen, desc="KID model: ", **common).features
        return kernel_distance(ref, f)
    raise ValueError("invalid combination of directories and models entered")


# ----------------------------------------------------------------------------------------------
# Custom statistics
# ----------------------------------------------------------------------------------------------


def make_custom_stats(
    name,
    fdir,
    num=None,
    mode="clean",
    model_name="inception_v3",
    num_workers=0,
    batch_size=64,
    device=None,
    verbose=True,
):
    """Compute and store the statistics of a folder of images under ``name``, where
    ``compute_fid(fdir1, dataset_name=name, dataset_split="custom", mode=mode)`` (here and in
    clean-fid) finds them: ``{name}_{mode}_custom_na.npz`` (``mu``, ``sigma``) and
    ``..._kid.npz`` (``feats``) in :func:`stats_folder`.

    Raises:
        FileExistsError: statistics of that name exist (remove them with
            :func:`remove_custom_stats`).
    """
    mode = _check_mode(mode)
    folder = stats_folder()
    outf = folder / _stats_file(name, mode, model_name, "custom", "na")
    if outf.exists():
        raise FileExistsError(
            f"The statistics file {name} already exists ({outf}). Use remove_custom_stats to "
            "delete it first."
        )
    dev = _common.resolve_device(device)
    workers = max(1, _common.check_int(num_workers, "num_workers", 0))
    ext = _feature_model(mode, model_name, None, dev, None)
    src = _folder_source(fdir, num, False, 0, workers, verbose)
    res = _features(
        src,
        ext,
        mode=mode,
        batch_size=batch_size,
        device=dev,
        workers=workers,
        verbose=verbose,
        keep=True,
        transform=None,
        desc=f"custom stats: {os.path.basename(os.fspath(fdir))} : ",
    )
    mu, sigma = res.stats.numpy()
    folder.mkdir(parents=True, exist_ok=True)
    if verbose:
        print(f"saving custom FID stats to {outf}")
    np.savez_compressed(outf, mu=mu, sigma=sigma)
    kid_f = folder / _stats_file(name, mode, model_name, "custom", "na", "KID")
    if verbose:
        print(f"saving custom KID stats to {kid_f}")
    np.savez_compressed(kid_f, feats=res.features)


def remove_custom_stats(name, mode="clean", model_name="inception_v3"):
    """Delete the statistics :func:`make_custom_stats` wrote under ``name``."""
    folder = stats_folder()
    fid_f = folder / _stats_file(name, mode, model_name, "custom", "na")
    if not fid_f.exists():
        raise FileNotFoundError(f"The stats file {name} does not exist ({fid_f})")
    fid_f.unlink()
    kid_f = folder / _stats_file(name, mode, model_name, "custom", "na", "KID")
    if kid_f.exists():
        kid_f.unlink()
