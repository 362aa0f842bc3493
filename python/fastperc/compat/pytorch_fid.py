"""A drop-in for pytorch-fid (``pytorch_fid.fid_score`` and ``pytorch_fid.inception``).

The one-line change::

    from pytorch_fid import fid_score                 # before
    import fastperc.compat.pytorch_fid as fid_score   # after

    from pytorch_fid.fid_score import calculate_frechet_distance   # before
    from fastperc.compat.pytorch_fid import calculate_frechet_distance   # after

and on the command line ``python -m pytorch_fid a/ b/`` becomes
``python -m fastperc.compat.pytorch_fid a/ b/`` (same flags, same ``FID:  <value>`` output).

Same names, parameters and defaults as pytorch-fid 0.3; the same protocol: files decoded with
``Image.open(f).convert("RGB")``, scaled to [0, 1], resized inside the network to 299 x 299
(bilinear, ``align_corners=False``), mapped to [-1, 1], the FID Inception's block selected by
``dims`` (64, 192, 768 averaged over space, or the 2048-d pool3). What differs:

* :func:`calculate_frechet_distance` computes the distance exactly with
  :func:`fastperc.stats.frechet_distance` (symmetric eigenvalues, never complex) instead of
  ``scipy.linalg.sqrtm``: the same number to ~1e-6 relative on well-conditioned covariances and
  a more accurate one on near-singular ones (fewer images than dimensions), where ``sqrtm``
  loses digits or returns complex values. ``eps`` is accepted and not needed.
* Statistics are accumulated in float64 as the features come (memory O(D^2), not O(N D));
  ``get_activations`` still returns the ``[N, dims]`` matrix.
* Images of different sizes in one folder work (pytorch-fid's data loader cannot batch them).
* The weights are never downloaded unless asked: they are looked up in ``$FASTPERC_WEIGHTS``,
  the fastperc cache and torch hub's checkpoint folder (where pytorch-fid's own download put
  ``pt_inception-2015-12-05-6726825d.pth``); the command line takes ``--weights PATH`` and
  ``--download``. A missing file raises an error that names it and where it was looked for.
* ``num_workers`` is the number of decoding threads (not processes).
* :func:`calculate_activation_statistics` also takes a fastperc extractor
  (:func:`fastperc.models.inception_v3_fid`), which it feeds 0..255 images.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..stats import FeatureStats, frechet_distance
from . import _common

__all__ = [
    "IMAGE_EXTENSIONS",
    "InceptionV3",
    "calculate_activation_statistics",
    "calculate_fid_given_paths",
    "calculate_frechet_distance",
    "compute_statistics_of_path",
    "get_activations",
    "main",
    "save_fid_stats",
]

#: pytorch-fid's file extensions (lower case; a folder is not searched recursively).
IMAGE_EXTENSIONS = {"bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tif", "tiff", "webp"}


# ----------------------------------------------------------------------------------------------
# The network (pytorch_fid.inception.InceptionV3)
# ----------------------------------------------------------------------------------------------


class InceptionV3(nn.Module):
    """pytorch-fid's ``InceptionV3`` feature network: images in [0, 1] in, the outputs of the
    requested blocks out (0: 64 channels, 1: 192, 2: 768, 3: the pooled 2048).

    Args:
        output_blocks: indices of the blocks to return, in ascending order.
        resize_input: resize the input to 299 x 299 (bilinear, ``align_corners=False``).
        normalize_input: map [0, 1] to [-1, 1] (``2x - 1``).
        requires_grad: let the parameters require gradients (and run the unfolded network).
        use_fid_inception: must be True: the FID network (torchvision's ImageNet Inception is
            not offered).
        weights: keyword only, not in pytorch-fid: a weights file or folder, a state dict or
            ``"random"`` (tests); default: the search of
            :func:`fastperc.models.inception_v3_fid` (no download).

    Example:
        >>> import torch
        >>> net = InceptionV3([0], weights="random")
        >>> [o.shape for o in net(torch.rand(1, 3, 64, 64))]
        [torch.Size([1, 64, 73, 73])]
    """

    DEFAULT_BLOCK_INDEX = 3
    BLOCK_INDEX_BY_DIM: ClassVar[dict[int, int]] = {64: 0, 192: 1, 768: 2, 2048: 3}

    def __init__(
        self,
        output_blocks: Sequence[int] = (DEFAULT_BLOCK_INDEX,),
        resize_input: bool = True,
        normalize_input: bool = True,
        requires_grad: bool = False,
        use_fid_inception: bool = True,
        *,
        weights: object = None,
    ) -> None:
        super().__init__()
        from ..models._base import FastPath
        from ..models.inception import inception_v3_fid

        blocks = sorted(output_blocks)
        if not blocks or any(b not in (0, 1, 2, 3) for b in blocks):
            raise ValueError(f"Expected `output_blocks` to hold indices in 0..3, got {blocks!r}")
        if not use_fid_inception:
            raise ValueError(
                "use_fid_inception=False (torchvision's ImageNet Inception) is not offered: "
                "FID needs the FID Inception network"
            )
        self.resize_input = resize_input
        self.normalize_input = normalize_input
        self.output_blocks = blocks
        self.last_needed_block = max(blocks)
        self.net = inception_v3_fid(weights).net  # type: ignore[attr-defined]
        for p in self.net.parameters():
            p.requires_grad = requires_grad
        self.__dict__["_fast"] = FastPath(channels_last=True)

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        self.__dict__["_fast"].clear()
        return super()._apply(fn, recurse)

    def forward(self, inp: torch.Tensor) -> list[torch.Tensor]:
        """The selected blocks' outputs for ``inp`` ``[N, 3, H, W]`` in [0, 1]."""
        x = inp
        if self.resize_input:
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        if self.normalize_input:
            x = 2 * x - 1
        from ..models._base import wants_autograd

        if self.training or wants_autograd(self.net, x):
            outs = self.net.forward_blocks(x, self.last_needed_block)
        else:
            net = self.__dict__["_fast"].get(self.net)
            with torch.no_grad():
                outs = net.forward_blocks(
                    x.contiguous(memory_format=torch.channels_last), self.last_needed_block
                )
        return [outs[b] for b in self.output_blocks]


# ----------------------------------------------------------------------------------------------
# Features and statistics
# ----------------------------------------------------------------------------------------------


def _feature_batches(files, model, batch_size, device, num_workers):
    """Feature batches ``[B, D]`` of ``files`` run through ``model`` the pytorch-fid way."""
    from ..inputs import open_images

    batch_size = _common.check_int(batch_size, "batch_size", 1)
    workers = max(1, _common.check_int(num_workers, "num_workers", 0))
    if isinstance(files, (str, os.PathLike)):
        raise TypeError(
            "Expected `files` to be a list of image paths, got a single path (use "
            "compute_statistics_of_path for a folder)"
        )
    files = [os.fspath(f) for f in files]
    if not files:
        raise _common.no_images("`files` (an empty list)")
    dev = _common.resolve_device(device)
    ours = _common.is_extractor(model)
    if hasattr(model, "eval"):
        model.eval()
    source = open_images(files, workers=workers, strict=True)
    for _, batch in _common.same_size_batches(source, batch_size):
        x = torch.from_numpy(batch).to(dev).permute(0, 3, 1, 2).float()
        with torch.no_grad():
            if ours:  # fastperc extractors take 0..255
                yield model(x).float()
                continue
            out = model(x.div_(255))  # pytorch-fid's ToTensor: [0, 1]
            pred = out[0] if isinstance(out, (list, tuple)) else out
            if pred.ndim == 4:
                if pred.shape[2] != 1 or pred.shape[3] != 1:
                    pred = F.adaptive_avg_pool2d(pred, output_size=(1, 1))
                pred = pred.flatten(1)
            if pred.ndim != 2 or pred.shape[0] != x.shape[0]:
                raise ValueError(
                    f"Expected the model to return [N, D] or [N, D, h, w] features for a batch "
                    f"of {x.shape[0]}, got {tuple(pred.shape)}"
                )
            yield pred.float()


def get_activations(files, model, batch_size=50, dims=2048, device="cpu", num_workers=1):
    """The features of ``files``: a float64 ``[N, dims]`` array (as pytorch-fid's).

    Args:
        files: image file paths.
        model: pytorch-fid's ``InceptionV3`` (or :class:`InceptionV3`, or any module taking
            [0, 1] images and returning a list whose first entry is ``[N, D(, h, w)]``), or a
            fastperc extractor (fed 0..255).
        batch_size: images per forward pass (all images are used, whatever the batch size).
        dims: the feature length the model returns (checked).
        device: where the images are sent (the model must already be there).
        num_workers: decoding threads.

    Returns:
        ``[len(files), dims]`` float64 numpy array.
    """
    dims = _common.check_int(dims, "dims", 1)
    _, feats = _common.accumulate(
        _feature_batches(files, model, batch_size, device, num_workers), keep=True, dims=dims
    )
    assert feats is not None
    return feats.astype(np.float64)


def calculate_activation_statistics(
    files, model, batch_size=50, dims=2048, device="cpu", num_workers=1
):
    """``(mu, sigma)`` of the features of ``files`` (float64; ``sigma`` as ``np.cov``).

    Arguments as :func:`get_activations`. The statistics are accumulated in float64 batch by
    batch; the feature matrix is never stored.

    Example:
        >>> import os, tempfile, numpy as np
        >>> from PIL import Image
        >>> d = tempfile.mkdtemp()
        >>> files = []
        >>> for i in range(3):
        ...     files.append(os.path.join(d, f"{i}.png"))
        ...     Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(files[-1])
        >>> mu, sigma = calculate_activation_statistics(files, InceptionV3([0], weights="random"), dims=64)
        >>> mu.shape, sigma.shape
        ((64,), (64, 64))
    """
    stats = _statistics(files, model, batch_size, dims, device, num_workers)
    return stats.numpy()


def _statistics(files, model, batch_size, dims, device, num_workers) -> FeatureStats:
    dims = _common.check_int(dims, "dims", 1)
    stats, _ = _common.accumulate(
        _feature_batches(files, model, batch_size, device, num_workers), keep=False, dims=dims
    )
    if stats.count is None or stats.count < 2:
        raise ValueError(
            f"Statistics need at least 2 images, got {stats.count or 0} (the covariance of one "
            "image is undefined)"
        )
    return stats


def _folder_files(path: pathlib.Path) -> list[pathlib.Path]:
    # pytorch-fid's listing: not recursive, lower-case extensions
    return sorted(f for ext in IMAGE_EXTENSIONS for f in path.glob(f"*.{ext}"))


def _load_npz(path: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path) as f:
            return f["mu"][:], f["sigma"][:]
    except KeyError as exc:
        raise ValueError(f"{path!r} holds no `mu` and `sigma` arrays") from exc


def compute_statistics_of_path(path, model, batch_size, dims, device, num_workers=1):
    """``(mu, sigma)`` of a folder of images (its files with pytorch-fid's extensions, not
    recursive), or as stored in an ``.npz`` file (``mu``, ``sigma``)."""
    path = os.fspath(path)
    if path.endswith(".npz"):
        return _load_npz(path)
    files = _folder_files(pathlib.Path(path))
    if not files:
        raise _common.no_images(
            f"folder {path!r} (pytorch-fid reads *.{{{','.join(sorted(IMAGE_EXTENSIONS))}}}, "
            "not recursively)"
        )
    return calculate_activation_statistics(files, model, batch_size, dims, device, num_workers)


def _model(dims: int, device: object, weights: object = None, download: bool = False):
    from ..models.inception import BLOCK_INDEX_BY_DIM, inception_v3_fid

    if dims not in BLOCK_INDEX_BY_DIM:
        raise ValueError(f"Expected `dims` to be one of 64, 192, 768, 2048, got {dims!r}")
    return inception_v3_fid(
        weights,
        dims=dims,
        download=download,
        normalize="pytorch_fid",
        resize_mode="bilinear",
        device=_common.resolve_device(device),
    )


def _fid_given_paths(paths, batch_size, device, dims, num_workers, weights=None, download=False):
    for p in paths:
        if not os.path.exists(p):
            raise RuntimeError(f"Invalid path: {p}")
    model = _model(dims, device, weights, download)
    m1, s1 = compute_statistics_of_path(paths[0], model, batch_size, dims, device, num_workers)
    m2, s2 = compute_statistics_of_path(paths[1], model, batch_size, dims, device, num_workers)
    return calculate_frechet_distance(m1, s1, m2, s2)


def calculate_fid_given_paths(paths, batch_size, device, dims, num_workers=1):
    """FID between two folders or ``.npz`` statistics files (pytorch-fid's protocol).

    Raises:
        RuntimeError: a path does not exist (as pytorch-fid).
        fastperc.models.weights.WeightsNotFoundError: no Inception weights were found (the
            message names ``pt_inception-2015-12-05-6726825d.pth`` and where it looked).
    """
    return _fid_given_paths(paths, batch_size, device, dims, num_workers)


def _save_stats(paths, batch_size, device, dims, num_workers, weights=None, download=False):
    if not os.path.exists(paths[0]):
        raise RuntimeError(f"Invalid path: {paths[0]}")
    if os.path.exists(paths[1]):
        raise RuntimeError(f"Existing output file: {paths[1]}")
    print(f"Saving statistics for {paths[0]}")
    path = os.fspath(paths[0])
    if path.endswith(".npz"):
        m1, s1 = _load_npz(path)
        np.savez_compressed(paths[1], mu=m1, sigma=s1)
        return
    files = _folder_files(pathlib.Path(path))
    if not files:
        raise _common.no_images(f"folder {path!r}")
    model = _model(dims, device, weights, download)
    stats = _statistics(files, model, batch_size, dims, device, num_workers)
    mu, sigma = stats.numpy()
    np.savez_compressed(paths[1], mu=mu, sigma=sigma, count=np.int64(stats.count))


def save_fid_stats(paths, batch_size, device, dims, num_workers=1):
    """Write the statistics of the folder ``paths[0]`` to ``paths[1]`` (``np.savez_compressed``
    with ``mu`` and ``sigma`` as pytorch-fid, plus the image ``count``, which lets
    :meth:`fastperc.stats.FeatureStats.load` merge the file)."""
    _save_stats(paths, batch_size, device, dims, num_workers)


def calculate_frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """Fréchet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2))``, computed exactly by
    :func:`fastperc.stats.frechet_distance`: pytorch-fid's number to ~1e-6 relative on
    well-conditioned covariances, and accurate (never complex, no retry with ``eps`` on the
    diagonals) on near-singular ones.

    Args:
        mu1, sigma1: mean ``[D]`` and covariance ``[D, D]`` of the first set.
        mu2, sigma2: those of the second set.
        eps: accepted for compatibility; not needed.

    Returns:
        The distance as a numpy float64.

    Example:
        >>> import numpy as np
        >>> float(calculate_frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2)))
        4.0
    """
    del eps
    mu1 = np.atleast_1d(_common.as_float_features(mu1, "mu1"))
    mu2 = np.atleast_1d(_common.as_float_features(mu2, "mu2"))
    sigma1 = np.atleast_2d(_common.as_float_features(sigma1, "sigma1"))
    sigma2 = np.atleast_2d(_common.as_float_features(sigma2, "sigma2"))
    if mu1.shape != mu2.shape:
        raise ValueError(
            f"Training and test mean vectors have different lengths: {mu1.shape} and {mu2.shape}"
        )
    if sigma1.shape != sigma2.shape:
        raise ValueError(
            "Training and test covariances have different dimensions: "
            f"{sigma1.shape} and {sigma2.shape}"
        )
    return np.float64(frechet_distance((mu1, sigma1), (mu2, sigma2)))


# ----------------------------------------------------------------------------------------------
# The command line (python -m fastperc.compat.pytorch_fid)
# ----------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fastperc.compat.pytorch_fid",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="FID between two folders or .npz statistics files, as pytorch-fid computes it.",
    )
    p.add_argument("--batch-size", type=int, default=50, help="Batch size to use")
    p.add_argument(
        "--num-workers",
        type=int,
        help="Number of threads to use for decoding. Defaults to `min(8, num_cpus)`",
    )
    p.add_argument(
        "--device", type=str, default=None, help="Device to use. Like cuda, cuda:0 or cpu"
    )
    p.add_argument(
        "--dims",
        type=int,
        default=2048,
        choices=list(InceptionV3.BLOCK_INDEX_BY_DIM),
        help="Dimensionality of Inception features to use. By default, uses pool3 features",
    )
    p.add_argument(
        "--save-stats",
        action="store_true",
        help="Generate an npz archive from a directory of samples. The first path is used as "
        "input and the second as output.",
    )
    p.add_argument(
        "--weights",
        default=None,
        help="The Inception weights file (pt_inception-2015-12-05-6726825d.pth) or its folder "
        "(default: $FASTPERC_WEIGHTS, the fastperc cache, torch hub's checkpoints)",
    )
    p.add_argument(
        "--download",
        action="store_true",
        help="Download pytorch-fid's Inception weights (SHA-256 checked) if none are found",
    )
    p.add_argument(
        "path", type=str, nargs=2, help="Paths to the generated images or to .npz statistic files"
    )
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m fastperc.compat.pytorch_fid [--batch-size N] [--num-workers N] [--device D]
    [--dims {64,192,768,2048}] [--save-stats] [--weights PATH] [--download] path1 path2``:
    prints ``FID:  <value>`` as pytorch-fid does."""
    args = _parser().parse_args(argv)
    device = _common.resolve_device(args.device)
    if args.num_workers is None:
        try:
            num_cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not on every platform
            num_cpus = os.cpu_count()
        num_workers = min(num_cpus, 8) if num_cpus is not None else 1
    else:
        num_workers = args.num_workers
    if args.save_stats:
        _save_stats(
            args.path, args.batch_size, device, args.dims, num_workers, args.weights, args.download
        )
        return
    fid_value = _fid_given_paths(
        args.path, args.batch_size, device, args.dims, num_workers, args.weights, args.download
    )
    print("FID: ", fid_value)


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, ValueError, FileNotFoundError) as exc:
        from ..models.weights import WeightsNotFoundError

        hint = (
            " On this command line: --weights PATH or --download."
            if isinstance(exc, WeightsNotFoundError)
            else ""
        )
        print(f"error: {exc}{hint}", file=sys.stderr)
        sys.exit(2 if not isinstance(exc, RuntimeError) else 1)
