"""Image sources for evaluation: folders, archives, arrays, tensors, datasets and generators.

:func:`open_images` turns anything that holds images into an :class:`ImageSet`: iterate it to
get :class:`ImageRecord` s whose ``image`` is an ``[H, W, 3]`` ``uint8`` RGB numpy array
(C-contiguous, writable, its own memory), in a deterministic order.

Sources:

=================================  ================================================================
source                             what is read
=================================  ================================================================
folder                             image files below it (recursively unless ``recursive=False``):
                                   ``png jpg jpeg webp bmp tif tiff ppm pgm``, any letter case;
                                   sorted by relative path (``/``-separated, code-point order);
                                   hidden files and folders (``.name``) and ``__MACOSX`` skipped
``.zip``                           its image members, filtered and sorted as a folder's
``.tar .tar.gz .tgz``              its image members, filtered as a folder's, in archive order
(``.tar.bz2 .tar.xz``)             (the archive is read as one stream, never seeked)
``.npy`` / ``.npz``                an ``[N, H, W, C]`` (or ``[N, C, H, W]``) array, as the ADM
                                   reference batches store them; ``.npz`` reads ``key`` (default
                                   ``"arr_0"``), streamed: the array is never loaded whole
one image file                     that file (any format Pillow reads)
list / tuple of paths              those files, in the order given (any format Pillow reads)
``numpy.ndarray``                  ``[N, H, W, C]`` (or ``[N, C, H, W]``), or one ``[H, W, C]``
                                   image; ``C`` is 1, 3 or 4
``torch.Tensor``                   ``[N, C, H, W]`` (or ``[N, H, W, C]``), or one ``[C, H, W]``
list of images                     arrays, tensors or PIL images, one image each; sizes may
                                   differ
``torch.utils.data.Dataset``       items are images (PIL, tensor, array, path) or tuples
                                   ``(image, label, ...)`` or dicts with an ``"image"``/``"img"``
                                   key; read in the calling thread
``torch.utils.data.DataLoader``    batches: ``[B, ...]`` tensors/arrays, ``(images, labels)``,
                                   dicts, or lists of images
callable ``fn`` + ``count``        a generator: ``fn(n)`` is called with ``n = batch_size`` (the
                                   last call with what is left) and returns ``n`` images: an
                                   ``[n, 3, H, W]`` or ``[n, H, W, 3]`` tensor/array, or a list
=================================  ================================================================

Array and tensor images are ``uint8`` (0..255) or floating point holding 0..1 (float16,
bfloat16, float32, float64); floats become ``uint8`` by rounding, ``floor(x * 255 + 0.5)``
(torchmetrics' ``normalize=True`` truncates instead). Floats must lie in
``[-0.05, 1.05]`` (clipped to 0..1); anything else (images in -1..1 or 0..255, NaN) raises a
``ValueError``. Other dtypes raise a ``TypeError``. Channels: 1 (grey, replicated), 3 (RGB), 4
(RGBA, alpha dropped). For a tensor whose dims 1 and 3 both could be channels, channel-first
wins; for a numpy array, channel-last wins.

Files are decoded as clean-fid and pytorch-fid decode them, ``Image.open(f).convert("RGB")``,
so that FID numbers agree with theirs. What Pillow 13 does for each mode:

==============================  ===============================================================
Pillow mode (typical file)      RGB result
==============================  ===============================================================
``RGB`` (JPEG, PNG, WebP, ...)  unchanged; 16-bit RGB PNGs open as ``RGB`` holding the high
                                byte of each sample (``v >> 8``)
``L`` (8-bit grey)              ``(v, v, v)``
``1`` (bilevel)                 0 -> ``(0, 0, 0)``, 1 -> ``(255, 255, 255)``
``LA`` (grey + alpha)           ``(v, v, v)``; alpha dropped, not composited onto a background
``RGBA``, ``RGBX``              alpha dropped, not composited
``P`` (palette)                 the palette colour; transparency (``tRNS``, an index or per-entry
                                alphas) ignored
``PA`` (palette + alpha)        the palette colour; alpha dropped
``CMYK`` (TIFF, Adobe JPEG)     ``R = round((255 - C) * (255 - K) / 255)``, G and B likewise
                                (no colour management; Adobe's inverted JPEG CMYK is undone
                                by the decoder first)
``YCbCr``, ``LAB``, ``HSV``     Pillow's conversion of that colour space
``I;16`` (16-bit grey PNG/TIFF) ``min(v, 255)`` repeated: clipped, not rescaled, so a typical
                                16-bit image turns almost white
``I`` (32-bit integer)          ``clip(v, 0, 255)`` repeated
``F`` (32-bit float TIFF)       ``clip(v, 0, 255)`` truncated toward zero, repeated
==============================  ===============================================================

``high_bit_depth="scale"`` maps ``I;16`` and ``I`` images (taken as 16-bit) to
``round(v * 255 / 65535)`` instead; the default ``"clip"`` is the peers' behaviour. EXIF
orientation is not applied (the peers do not either), ICC profiles are ignored, and a file with
several frames gives its first.

Files are decoded by a thread pool (Pillow releases the GIL while it decodes) of ``workers``
threads, at most a few images per worker ahead of the consumer, so memory stays flat however
large the set; records come in source order whatever the number of workers. A file that cannot
be read (missing, corrupt, truncated, not an image) is skipped with a
:class:`SkippedImageWarning` naming it and the reason, a summary warning after the last image,
and an entry in :attr:`ImageSet.skipped`; ``strict=True`` raises :class:`ImageReadError`
instead.

Example:
    >>> import numpy as np
    >>> s = open_images(np.zeros((4, 8, 6, 3), np.uint8))
    >>> len(s), [r.image.shape for r in s][0]
    (4, (8, 6, 3))
"""

from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import io
import os
import stat
import tarfile
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "ImageRecord",
    "ImageSet",
    "SkippedImageWarning",
    "open_images",
]

#: File name extensions (lower case, without the dot) taken as images in folders and archives.
IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "ppm", "pgm"})

_ZIP_EXTENSIONS = (".zip",)
_TAR_EXTENSIONS = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_HASH_CHUNK = 1 << 16  # fingerprints hash the first and last 64 KiB of each file
_FLOAT_TOLERANCE = 0.05  # floats may stray this far outside 0..1 before it is an error
_HIGH_BIT_DEPTH = ("clip", "scale")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_DEFAULT_GENERATOR_BATCH = 64


class SkippedImageWarning(UserWarning):
    """An image file could not be read and was left out of the set."""


class ImageReadError(ValueError):
    """An image file could not be read (raised with ``strict=True``); names the file."""


@dataclass(frozen=True, eq=False)
class ImageRecord:
    """One image of an :class:`ImageSet`.

    Attributes:
        name: where it came from: the path relative to the folder or the archive member name,
            the path as given for file lists, ``"array[12]"``-style names for in-memory data.
        image: ``[H, W, 3]`` ``uint8`` RGB, C-contiguous, writable, not shared with the source.
        index: its position in the source order (the same in every shard).
        label: the label a dataset item carried, else None.
    """

    name: str
    image: np.ndarray
    index: int
    label: Any = None


class _Failure:
    """A file that could not be read: its reason, in place of an image."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


# ----------------------------------------------------------------------------------------------
# Conversions
# ----------------------------------------------------------------------------------------------


def _pil_to_rgb(im: Image.Image, high_bit_depth: str = "clip") -> np.ndarray:
    """``im.convert("RGB")`` as an ``[H, W, 3]`` uint8 array (the peers' conversion)."""
    if "transparency" in im.info and im.mode in ("L", "RGB", "P"):
        # convert("RGB") ignores the transparency for the pixels but warns about byte-string
        # transparency; dropping the key gives the same pixels without the warning.
        im.info.pop("transparency", None)
    if high_bit_depth == "scale" and im.mode in _SIXTEEN_BIT_MODES:
        v = np.asarray(im).astype(np.int64)
        v = (np.clip(v, 0, 65535) * 255 + 32767) // 65535
        return np.ascontiguousarray(np.repeat(v.astype(np.uint8)[:, :, None], 3, axis=2))
    rgb = im if im.mode == "RGB" else im.convert("RGB")
    out = np.array(rgb, dtype=np.uint8)
    if out.ndim != 3 or out.shape[2] != 3:  # defensive: Pillow always gives [H, W, 3] here
        raise ValueError(f"decoded to shape {out.shape}, expected [H, W, 3]")
    return out


def _decode(data: bytes | str, high_bit_depth: str) -> np.ndarray | _Failure:
    """Decode one file (a path or its bytes); a :class:`_Failure` instead of raising."""
    try:
        src = io.BytesIO(data) if isinstance(data, bytes) else data
        with Image.open(src) as im:
            im.load()
            return _pil_to_rgb(im, high_bit_depth)
    except Exception as exc:  # any decoder failure is reported, never fatal
        return _Failure(_reason(exc))


def _reason(exc: BaseException) -> str:
    msg = str(exc).strip()
    if isinstance(exc, FileNotFoundError):
        msg = "no such file"
    elif isinstance(exc, Image.UnidentifiedImageError):
        msg = "not an image Pillow can identify"
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _float_to_uint8(x: np.ndarray, what: str) -> np.ndarray:
    x64 = x.astype(np.float64, copy=False)
    if x64.size:
        lo, hi = float(x64.min()), float(x64.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"Expected finite values in {what}, got NaN or infinity")
        if lo < -_FLOAT_TOLERANCE or hi > 1 + _FLOAT_TOLERANCE:
            hint = (
                " (images in -1..1? map them with (x + 1) / 2)"
                if lo < -0.5
                else " (images in 0..255? pass uint8 or divide by 255)"
                if hi > 2
                else ""
            )
            raise ValueError(
                f"Expected float values in 0..1 in {what}, got {lo:.4g}..{hi:.4g}{hint}"
            )
    return np.clip(np.floor(x64 * 255.0 + 0.5), 0, 255).astype(np.uint8)


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        t = x.detach()
        if t.is_complex():
            raise TypeError(f"Expected a uint8 or floating-point image, got {t.dtype}")
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()
        return t.cpu().numpy()
    return np.asarray(x)


def _check_dtype(a: np.ndarray, what: str) -> None:
    if a.dtype != np.uint8 and not np.issubdtype(a.dtype, np.floating):
        raise TypeError(
            f"Expected {what} of dtype uint8 (0..255) or floating point (0..1), got {a.dtype}"
        )


def _hwc_to_rgb(a: np.ndarray, what: str) -> np.ndarray:
    """``[H, W, C]`` (C = 1, 3, 4) uint8/float -> a fresh ``[H, W, 3]`` uint8 array."""
    c = a.shape[2]
    if c not in (1, 3, 4):
        raise ValueError(f"Expected {what} with 1, 3 or 4 channels, got {c}")
    if c == 4:
        a = a[:, :, :3]
    if a.dtype == np.uint8:
        out = np.empty((*a.shape[:2], 3), dtype=np.uint8)
        out[...] = a  # broadcasts one channel to three; always a copy
        return out
    u8 = _float_to_uint8(a, what)
    return np.ascontiguousarray(np.broadcast_to(u8, (*a.shape[:2], 3)))


def _batch_layout(shape: tuple[int, ...], torch_first: bool, what: str) -> str:
    """``"nchw"`` or ``"nhwc"`` for a 4-D batch."""
    first, last = shape[1] in (1, 3, 4), shape[3] in (1, 3, 4)
    if first and (torch_first or not last):
        return "nchw"
    if last:
        return "nhwc"
    raise ValueError(
        f"Expected {what} of shape [N, 3, H, W] or [N, H, W, 3] (1, 3 or 4 channels), "
        f"got {list(shape)}"
    )


def _image_to_rgb(x: Any, what: str) -> np.ndarray:
    """One image of any supported kind -> ``[H, W, 3]`` uint8."""
    if isinstance(x, Image.Image):
        return _pil_to_rgb(x)
    if isinstance(x, (str, os.PathLike)):
        r = _decode(os.fspath(x), "clip")
        if isinstance(r, _Failure):
            raise ImageReadError(f"{os.fspath(x)}: {r.reason}")
        return r
    if not isinstance(x, (torch.Tensor, np.ndarray)):
        raise TypeError(
            f"Expected {what} to be a PIL image, numpy array, torch tensor or path, "
            f"got {type(x).__name__}"
        )
    is_torch = isinstance(x, torch.Tensor)
    a = _to_numpy(x)
    _check_dtype(a, what)
    if a.ndim == 2:
        a = a[:, :, None]
    elif a.ndim == 3:
        first, last = a.shape[0] in (1, 3, 4), a.shape[2] in (1, 3, 4)
        if first and (is_torch or not last):
            a = a.transpose(1, 2, 0)
        elif not last:
            raise ValueError(
                f"Expected {what} of shape [3, H, W] or [H, W, 3] (1, 3 or 4 channels), "
                f"got {list(a.shape)}"
            )
    else:
        raise ValueError(f"Expected {what} to be one image (2-D or 3-D), got {a.ndim}-D")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"Expected {what} of non-zero height and width, got {list(a.shape)}")
    return _hwc_to_rgb(a, what)


def _batch_images(x: Any, what: str) -> Iterator[np.ndarray]:
    """Images of a batch (4-D tensor/array, or a sequence of images) as ``[H, W, 3]`` uint8."""
    if isinstance(x, (torch.Tensor, np.ndarray)) and x.ndim == 4:
        is_torch = isinstance(x, torch.Tensor)
        layout = _batch_layout(tuple(x.shape), is_torch, what)
        if is_torch and (_is_tensor_float16(x) or x.device.type != "cpu"):
            x = _to_numpy(x)  # one transfer for the batch
        for i in range(x.shape[0]):
            xi = _to_numpy(x[i])
            _check_dtype(xi, what)
            if layout == "nchw":
                xi = xi.transpose(1, 2, 0)
            yield _hwc_to_rgb(xi, f"{what}[{i}]")
        return
    if isinstance(x, (torch.Tensor, np.ndarray)):
        raise ValueError(f"Expected {what} to be a batch [N, C, H, W], got {x.ndim}-D")
    if isinstance(x, (list, tuple)):
        for i, xi in enumerate(x):
            yield _image_to_rgb(xi, f"{what}[{i}]")
        return
    raise TypeError(
        f"Expected {what} to be a 4-D tensor/array or a list of images, got {type(x).__name__}"
    )


def _is_tensor_float16(x: torch.Tensor) -> bool:
    return x.dtype in (torch.float16, torch.bfloat16)


# ----------------------------------------------------------------------------------------------
# Helpers: ordered parallel map, file listing, hashing
# ----------------------------------------------------------------------------------------------


def _ordered_map(
    fn: Callable[[Any], Any], items: Iterator[Any], workers: int
) -> Iterator[tuple[Any, Any]]:
    """``(item, fn(item))`` in the order of ``items``, ``fn`` run by ``workers`` threads.

    At most ``2 * workers + 2`` items are in flight, so memory does not grow with the input.
    Closing the iterator early cancels what has not started.
    """
    if workers <= 1:
        for item in items:
            yield item, fn(item)
        return
    ahead = 2 * workers + 2
    pending: collections.deque = collections.deque()
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="fastperc-io") as pool:
        try:
            for item in items:
                pending.append((item, pool.submit(fn, item)))
                if len(pending) >= ahead:
                    first, fut = pending.popleft()
                    yield first, fut.result()
            while pending:
                first, fut = pending.popleft()
                yield first, fut.result()
        finally:
            for _, fut in pending:
                fut.cancel()


def _is_hidden(parts: Sequence[str]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _has_image_ext(name: str) -> bool:
    _, ext = os.path.splitext(name)
    return ext[1:].lower() in IMAGE_EXTENSIONS


def _archive_name_ok(name: str, recursive: bool) -> bool:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or _is_hidden(parts) or not _has_image_ext(parts[-1]):
        return False
    return recursive or len(parts) == 1


def _scan_folder(root: str, recursive: bool) -> list[str]:
    """Relative ``/``-separated paths of the image files below ``root``, sorted."""
    found: list[str] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symbolic link back up the tree
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = [d for d in dirnames if not _is_hidden([d])] if recursive else []
        rel = os.path.relpath(dirpath, root)
        for f in filenames:
            if _is_hidden([f]) or not _has_image_ext(f):
                continue
            path = os.path.join(dirpath, f)
            if not os.path.isfile(path):  # broken link, fifo, ...
                continue
            found.append(f if rel == "." else f"{rel.replace(os.sep, '/')}/{f}")
    found.sort()
    return found


def _file_digest(path: str) -> str:
    """``size:mtime_ns:sha256(first and last 64 KiB)`` of a file (or the error reading it)."""
    try:
        st = os.stat(path)
        h = hashlib.sha256()
        with open(path, "rb") as f:
            h.update(f.read(_HASH_CHUNK))
            if st.st_size > 2 * _HASH_CHUNK:
                f.seek(st.st_size - _HASH_CHUNK)
            h.update(f.read(_HASH_CHUNK))
        return f"{st.st_size}:{st.st_mtime_ns}:{h.hexdigest()}"
    except OSError as exc:
        return f"unreadable:{type(exc).__name__}"


def _hash_array(h: Any, a: np.ndarray) -> None:
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.reshape(-1).view(np.uint8).data)


def _hash_tensor(h: Any, t: torch.Tensor) -> None:
    t = t.detach().cpu().contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    if t.numel():
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)


def _default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


# ----------------------------------------------------------------------------------------------
# ImageSet and its sources
# ----------------------------------------------------------------------------------------------


class ImageSet:
    """A source of images, read lazily; made by :func:`open_images`.

    Iterate it for :class:`ImageRecord` s in source order; :meth:`iter_shard` gives one
    process's share. ``len()`` is the number of images (files, for file sources: a file that
    turns out unreadable is counted but skipped), when known without decoding; ``count`` is
    that number or None.

    Attributes:
        kind: ``"folder"``, ``"zip"``, ``"tar"``, ``"files"``, ``"npy"``, ``"npz"``,
            ``"array"``, ``"tensor"``, ``"list"``, ``"dataset"``, ``"dataloader"`` or
            ``"generator"``.
        skipped: ``(name, reason)`` of every file the last iteration could not read.
        workers: decoding threads.
        strict: raise :class:`ImageReadError` on an unreadable file instead of skipping it.
    """

    kind = "abstract"

    def __init__(self, *, workers: int, strict: bool, limit: int | None) -> None:
        self.workers = workers
        self.strict = strict
        self.skipped: list[tuple[str, str]] = []
        self._limit = limit
        self._fingerprint: str | None = None
        self._unknown: str | None = None  # why the count is not known, when it is not

    # -- subclass interface --------------------------------------------------------------------
    def _total(self) -> int | None:
        """Images available in the source (before ``count``), None when unknown."""
        raise NotImplementedError

    def _produce(self, rank: int, world: int) -> Iterator[tuple[int, str, Any, Any]]:
        """``(index, name, image or _Failure, label)`` for the indices of one shard."""
        raise NotImplementedError

    def _digest(self, h: Any) -> None:
        """Feed what identifies the content into hash ``h``."""
        raise NotImplementedError

    def describe(self) -> str:
        """A short description, e.g. ``"folder 'data/real' (50000 images, recursive)"``."""
        raise NotImplementedError

    # -- public --------------------------------------------------------------------------------
    @property
    def count(self) -> int | None:
        """The number of images (``count=`` applied), or None when not known before reading."""
        total = self._total()
        if total is None:
            return self._limit
        return total if self._limit is None else min(total, self._limit)

    def __len__(self) -> int:
        n = self.count
        if n is None:
            why = self._unknown or "it is not known before reading the source"
            raise TypeError(
                f"len() of {self.describe()} is not available: {why}; check `count` (None "
                "here) or pass count= to open_images"
            )
        return n

    def __repr__(self) -> str:
        return f"<ImageSet {self.describe()}>"

    def __iter__(self) -> Iterator[ImageRecord]:
        return self._run(0, 1)

    def iter_shard(self, rank: int, world_size: int) -> Iterator[ImageRecord]:
        """The images whose index ``i`` has ``i % world_size == rank``, in order.

        The shards of ranks ``0 .. world_size - 1`` partition the set. File sources read (and
        decode) only their own shard's files; tar archives, iterable datasets and data loaders
        are still read through once.

        Args:
            rank: this process's rank, ``0 <= rank < world_size``.
            world_size: the number of shards, >= 1.

        Example:
            >>> import numpy as np
            >>> s = open_images(np.zeros((5, 2, 2, 3), np.uint8))
            >>> [r.index for r in s.iter_shard(1, 2)]
            [1, 3]
        """
        for name, v in (("rank", rank), ("world_size", world_size)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"Expected `{name}` to be an int, got {type(v).__name__}")
        if world_size < 1:
            raise ValueError(f"Expected `world_size` >= 1, got {world_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"Expected 0 <= `rank` < world_size = {world_size}, got {rank}")
        return self._run(int(rank), int(world_size))

    def fingerprint(self) -> str:
        """A hex string that changes when the images change (sha256).

        Files: relative name, size, modification time and a hash of the first and last 64 KiB
        of each; archives and array files: the same of the archive file (plus each zip
        member's CRC). In-memory arrays and tensors: a hash of their bytes. Datasets and data
        loaders: a hash of the decoded images (reads them all once; a shuffling loader gives a
        new value each time). ``count`` and ``high_bit_depth`` are part of it. Generators have
        no fixed content and raise ``TypeError``.
        """
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(f"fastperc.inputs/1:{self.kind}:{self._limit}:".encode())
            self._digest(h)
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    # -- iteration -----------------------------------------------------------------------------
    def _indices(self, rank: int, world: int, total: int | None) -> Iterator[int]:
        stop = (
            total
            if self._limit is None
            else (self._limit if total is None else min(total, self._limit))
        )
        i = rank
        while stop is None or i < stop:
            yield i
            i += world

    def _run(self, rank: int, world: int) -> Iterator[ImageRecord]:
        self.skipped = skipped = []
        for index, name, result, label in self._produce(rank, world):
            if isinstance(result, _Failure):
                if self.strict:
                    raise ImageReadError(f"cannot read image {name!r}: {result.reason}")
                skipped.append((name, result.reason))
                warnings.warn(
                    f"skipped {name!r}: {result.reason}", SkippedImageWarning, stacklevel=2
                )
                continue
            yield ImageRecord(name, result, index, label)
        if skipped:
            warnings.warn(
                f"{len(skipped)} unreadable file(s) skipped in {self.describe()}; "
                "see ImageSet.skipped",
                SkippedImageWarning,
                stacklevel=2,
            )


class _FileSet(ImageSet):
    """Image files on disk: a folder's, or a list of paths."""

    def __init__(
        self, paths: list[str], names: list[str], desc: str, kind: str, high_bit_depth: str,
        **kw: Any,
    ) -> None:  # fmt: skip
        super().__init__(**kw)
        self.kind = kind
        self._paths = paths
        self._names = names
        self._desc = desc
        self._hbd = high_bit_depth

    def _total(self) -> int:
        return len(self._paths)

    def describe(self) -> str:
        return f"{self._desc} ({self.count} images)"

    def _produce(self, rank: int, world: int) -> Iterator[tuple[int, str, Any, Any]]:
        hbd = self._hbd
        paths = self._paths

        def load(i: int) -> np.ndarray | _Failure:
            return _decode(paths[i], hbd)

        for i, result in _ordered_map(load, self._indices(rank, world, len(paths)), self.workers):
            yield i, self._names[i], result, None

    def _digest(self, h: Any) -> None:
        h.update(f"{self._hbd}:".encode())
        idx = list(self._indices(0, 1, len(self._paths)))
        for i, digest in _ordered_map(lambda i: _file_digest(self._paths[i]), iter(idx),
                                      self.workers):  # fmt: skip
            h.update(f"{self._names[i]}\0{digest}\n".encode())


class _ZipSet(ImageSet):
    kind = "zip"

    def __init__(self, path: str, recursive: bool, high_bit_depth: str, **kw: Any) -> None:
        super().__init__(**kw)
        self._path = path
        self._hbd = high_bit_depth
        try:
            with zipfile.ZipFile(path) as zf:
                infos = [i for i in zf.infolist() if not i.is_dir()]
        except (OSError, zipfile.BadZipFile) as exc:
            raise ValueError(f"cannot open zip archive {path!r}: {_reason(exc)}") from None
        infos = [i for i in infos if _archive_name_ok(i.filename, recursive)]
        infos.sort(key=lambda i: i.filename)
        if not infos:
            raise ValueError(f"no image files ({_ext_list()}) in zip archive {path!r}")
        self._members = [(i.filename, i.CRC, i.file_size) for i in infos]

    def _total(self) -> int:
        return len(self._members)

    def describe(self) -> str:
        return f"zip {self._path!r} ({self.count} images)"

    def _produce(self, rank: int, world: int) -> Iterator[tuple[int, str, Any, Any]]:
        with zipfile.ZipFile(self._path) as zf:

            def read() -> Iterator[tuple[int, bytes | _Failure]]:
                for i in self._indices(rank, world, len(self._members)):
                    try:
                        yield i, zf.read(self._members[i][0])
                    except Exception as exc:
                        yield i, _Failure(_reason(exc))

            def load(item: tuple[int, bytes | _Failure]) -> np.ndarray | _Failure:
                data = item[1]
                return data if isinstance(data, _Failure) else _decode(data, self._hbd)

            for (i, _), result in _ordered_map(load, read(), self.workers):
                yield i, self._members[i][0], result, None

    def _digest(self, h: Any) -> None:
        h.update(f"{self._hbd}:{_file_digest(self._path)}\n".encode())
        for i in self._indices(0, 1, len(self._members)):
            name, crc, size = self._members[i]
            h.update(f"{name}\0{crc}:{size}\n".encode())


class _TarSet(ImageSet):
    kind = "tar"

    def __init__(self, path: str, recursive: bool, high_bit_depth: str, **kw: Any) -> None:
        super().__init__(**kw)
        self._path = path
        self._recursive = recursive
        self._hbd = high_bit_depth
        self._n: int | None = None
        try:
            with tarfile.open(path, "r:*") as tf:
                # An uncompressed archive is listed now (headers only); a compressed one when
                # len() asks or after the first complete pass.
                if tf.fileobj is not None and type(tf.fileobj).__name__ not in (
                    "GzipFile", "BZ2File", "LZMAFile"
                ):  # fmt: skip
                    self._n = sum(1 for m in tf if self._wanted(m))
                else:
                    next(iter(tf), None)  # reads the first header: a broken archive fails now
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise ValueError(f"cannot open tar archive {path!r}: {_reason(exc)}") from None
        if self._n == 0:
            raise ValueError(f"no image files ({_ext_list()}) in tar archive {path!r}")

    def _wanted(self, m: tarfile.TarInfo) -> bool:
        return m.isfile() and _archive_name_ok(m.name, self._recursive)

    def _total(self) -> int | None:
        return self._n

    @property
    def count(self) -> int | None:
        if self._n is None and self._limit is None and self._unknown is None:
            self._list()
        return super().count

    def _list(self) -> None:
        try:
            with tarfile.open(self._path, "r:*") as tf:
                self._n = sum(1 for m in tf if self._wanted(m))
        except (OSError, tarfile.TarError, EOFError) as exc:
            # Reported per image when the archive is read; the count stays unknown.
            self._unknown = f"the archive is damaged ({_reason(exc)})"

    def describe(self) -> str:
        n = (
            "?"
            if self._n is None
            else (self._n if self._limit is None else min(self._n, self._limit))
        )
        return f"tar {self._path!r} ({n} images)"

    def _produce(self, rank: int, world: int) -> Iterator[tuple[int, str, Any, Any]]:
        limit = self._limit

        def read() -> Iterator[tuple[int, str, bytes | _Failure]]:
            n = 0
            try:
                with tarfile.open(self._path, "r|*") as tf:
                    for m in tf:
                        if not self._wanted(m):
                            continue
                        i, n = n, n + 1
                        if limit is not None and i >= limit:
                            break
                        if i % world != rank:
                            continue
                        try:
                            f = tf.extractfile(m)
                            data = f.read() if f is not None else _Failure("not a regular file")
                        except (OSError, tarfile.TarError, EOFError) as exc:
                            yield i, m.name, _Failure(_reason(exc))
                            return  # the stream cannot go on after a read error
                        yield i, m.name, data
            except (OSError, tarfile.TarError, EOFError) as exc:
                yield n, f"{self._path}#{n}", _Failure(f"archive unreadable: {_reason(exc)}")
                return
            if limit is None or n < limit:
                self._n = n
            if n == 0:
                raise ValueError(f"no image files ({_ext_list()}) in tar archive {self._path!r}")

        def load(item: tuple[int, str, bytes | _Failure]) -> np.ndarray | _Failure:
            data = item[2]
            return data if isinstance(data, _Failure) else _decode(data, self._hbd)

        for (i, name, _), result in _ordered_map(load, read(), self.workers):
            yield i, name, result, None

    def _digest(self, h: Any) -> None:
        h.update(f"{self._hbd}:{self._recursive}:{_file_digest(self._path)}\n".encode())


def _ext_list() -> str:
    return ", ".join(sorted(IMAGE_EXTENSIONS))


class _ArraySet(ImageSet):
    """A 4-D numpy array or tensor (possibly memory-mapped from a ``.npy`` file)."""

    def __init__(self, data: Any, kind: str, desc: str, file: str | None, **kw: Any) -> None:
        super().__init__(**kw)
        self.kind = kind
        is_torch = isinstance(data, torch.Tensor)
        what = "`source`"
        if is_torch:
            if data.dtype != torch.uint8 and not data.dtype.is_floating_point:
                raise TypeError(
                    f"Expected {what} of dtype uint8 (0..255) or floating point (0..1), "
                    f"got {data.dtype}"
                )
        else:
            _check_dtype(data, what)
        if data.ndim == 3:  # one image
            data = data[None]
        if data.ndim != 4:
            raise ValueError(
                f"Expected {what} of shape [N, 3, H, W] or [N, H, W, 3] (or one image), "
                f"got {list(data.shape)}"
            )
        self._layout = _batch_layout(tuple(data.shape), is_torch, what)
        if data.shape[0] == 0:
            raise ValueError(f"Expected at least one image in {what}, got shape {list(data.shape)}")
        self._data = data
        self._file = file
        self._desc = desc
        self._prefix = kind

    def _total(self) -> int:
        return int(self._data.shape[0])

    def describe(self) -> str:
        d = self._data
        shape = "x".join(str(int(s)) for s in d.shape)
        return f"{self._desc} [{shape}] {str(d.dtype).replace('torch.', '')} ({self.count} images)"

    def _produce(self, rank: int, world: int) -> Iterator[tuple[int, str, Any, Any]]:
        for i in self._indices(rank, world, self._total()):
            xi = _to_numpy(self._data[i])
            if self._layout == "nchw":
                xi = xi.transpose(1, 2, 0)
            yield i, f"{self._prefix}[{i}]", _hwc_to_rgb(xi, f"{self._prefix}[{i}]"), None

    def _digest(self, h: Any) -> None:
        if self._file is not None:
            h.update(_file_digest(self._file).encode())
            return
        n = self.count
        d = self._data if n == self._total() else self._data[:n]
        if isinstance(d, torch.Tensor):
            _hash_tensor(h, d)
        else:
            _hash_array(h, d)


class _NpzSet(ImageSet):
    """One array of an ``.npz`` file, read image by image from the zip stream."""

    kind = "npz"

    def __init__(self, path: str, key: str | None, **kw: Any) -> None:
        super().__init__(**kw)
        self._path = path
        try:
            with zipfile.ZipFile(path) as zf:
                keys = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
                if key is None:
                    key = "arr_0" if "arr_0" in keys or len(keys) != 1 else keys[0]
                if key not in keys:
                    raise ValueError(
                        f"Expected `key` to name an array of {path!r}, got {key!r}; it holds "
                        f"{sorted(keys)}"
                    )
                with zf.open(key + ".npy") as f:
                    header = _npy_header(f)
        except (OSError, zipfile.BadZipFile) as exc:
            raise ValueError(f"cannot open npz file {path!r}: {_reason(exc)}") from None
        self._key = key
        shape, fortran, dtype = header if header is not None else (None, True, None)
        if header is None or fortran or dtype.hasobject:
            # An unusual layout: load the array whole.
            with np.load(path, allow_pickle=False) as z:
                arr = z[key]
            self._inner: _ArraySet | None = _ArraySet(
                arr, "npz", f"npz {path!r}:{key}", path,
                workers=self.workers, strict=self.strict, limit=self._limit,
            )  # fmt: skip
            self._shape, self._dtype = arr.shape, arr.dtype
        else:
            self._inner = None
            probe = _ArraySet(
                np.empty((1, *shape[1:]), dtype), "npz", "", None,
                workers=1, strict=False, limit=None,
            ) if len(shape) == 4 else None  # fmt: skip
            if probe is None or shape[0] == 0:
                raise ValueError(
                    f"Expected array {key!r} of {path!r} of shape [N, H, W, 3] or "
                    f"[N, 3, H, W], got {list(shape)}"
                )
            self._layout = probe._layout
            self._shape, self._dtype = shape, dtype

    def _total(self) -> int:
        return int(self._shape[0])

    def describe(self) -> str:
        shape = "x".join(str(int(s)) for s in self._shape)
        return f"npz {self._path!r}:{self._key} [{shape}] {self._dtype} ({self.count} images)"

    def _produce(self, rank: int, world: int) -> Iterator[tuple[int, str, Any, Any]]:
        if self._inner is not None:
            for i, _, img, label in self._inner._produce(rank, world):
                yield i, f"{self._key}[{i}]", img, label
            return
        item_shape = tuple(self._shape[1:])
        nbytes = int(np.prod(item_shape)) * self._dtype.itemsize
        with zipfile.ZipFile(self._path) as zf, zf.open(self._key + ".npy") as f:
            _npy_header(f)
            stop = self.count
            for i in range(stop):
                if i % world != rank:
                    skipped = f.read(nbytes)  # zip streams cannot seek cheaply
                    if len(skipped) < nbytes:
                        yield i, f"{self._key}[{i}]", _Failure("array data truncated"), None
                        return
                    continue
                buf = f.read(nbytes)
                name = f"{self._key}[{i}]"
                if len(buf) < nbytes:
                    yield i, name, _Failure("array data truncated"), None
                    return
                xi = np.frombuffer(buf, self._dtype).reshape(item_shape)
                if self._layout == "nchw":
                    xi = xi.transpose(1, 2, 0)
                yield i, name, _hwc_to_rgb(xi, name), None

    def _digest(self, h: Any) -> None:
        h.update(f"{self._key}:{_file_digest(self._path)}".encode())


def _npy_header(f: Any) -> tuple[tuple[int, ...], bool, np.dtype] | None:
    """(shape, fortran_order, dtype) of a ``.npy`` stream, None for format versions >= 3."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    return None


class _ListSet(ImageSet):
    """A list of in-memory images (arrays, tensors, PIL images); sizes may differ."""

    kind = "list"

    def __init__(self, items: Sequence[Any], **kw: Any) -> None:
        super().__init__(**kw)
        self._items = list(items)

    def _total(self) -> int:
        return len(self._items)

    def describe(self) -> str:
        return f"list of {len(self._items)} in-memory images ({self.count} used)"

    def _produce(self, rank: int, world: int) -> Iterator[tuple[int, str, Any, Any]]:
        for i in self._indices(rank, world, len(self._items)):
            yield i, f"list[{i}]", _image_to_rgb(self._items[i], f"source[{i}]"), None

    def _digest(self, h: Any) -> None:
        for i in self._indices(0, 1, len(self._items)):
            x = self._items[i]
            if isinstance(x, torch.Tensor):
                _hash_tensor(h, x)
            elif isinstance(x, np.ndarray):
                _hash_array(h, x)
            else:
                _hash_array(h, _image_to_rgb(x, f"source[{i}]"))


def _split_item(item: Any, what: str) -> tuple[Any, Any]:
    """(image, label) of a dataset item."""
    if isinstance(item, dict):
        for k in ("image", "img"):
            if k in item:
                return item[k], item.get("label")
        raise ValueError(f"Expected {what} (a dict) to have an 'image' or 'img' key, got "
                         f"{sorted(map(str, item))}")  # fmt: skip
    if isinstance(item, (tuple, list)) and not isinstance(item, str):
        if not item:
            raise ValueError(f"Expected {what} to hold an image, got an empty {type(item)}")
        return item[0], item[1] if len(item) > 1 else None
    return item, None


def _plain_label(label: Any) -> Any:
    if isinstance(label, torch.Tensor) and label.numel() == 1:
        return label.item()
    if isinstance(label, np.ndarray) and label.size == 1:
        return label.item()
    return label


class _DatasetSet(ImageSet):
    kind = "dataset"

    def __init__(self, ds: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self._ds = ds
        self._iterable = isinstance(ds, torch.utils.data.IterableDataset) or not hasattr(
            ds, "__getitem__"
        )
        self._n: int | None = None
        if not self._iterable:
            try:
                self._n = len(ds)
            except TypeError:
                self._iterable = True

    def _total(self) -> int | None:
        return self._n

    def describe(self) -> str:
        n = "?" if self.count is None else self.count
        return f"dataset {type(self._ds).__name__} ({n} images)"

    def _items(self, rank: int, world: int) -> Iterator[tuple[int, Any]]:
        if not self._iterable:
            for i in self._indices(rank, world, self._n):
                yield i, self._ds[i]
            return
        for i, item in enumerate(self._ds):
            if self._limit is not None and i >= self._limit:
                return
            if i % world == rank:
                yield i, item

    def _produce(self, rank: int, world: int) -> Iterator[tuple[int, str, Any, Any]]:
        for i, item in self._items(rank, world):
            img, label = _split_item(item, f"dataset item {i}")
            yield i, f"dataset[{i}]", _image_to_rgb(img, f"dataset item {i}"), _plain_label(label)

    def _digest(self, h: Any) -> None:
        for _, _, img, _ in self._produce(0, 1):
            _hash_array(h, img)


class _LoaderSet(ImageSet):
    kind = "dataloader"

    def __init__(self, loader: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self._loader = loader
        self._n: int | None = None
        try:
            bs = loader.batch_size
            n = len(loader.sampler) if bs is not None else len(loader)
            if bs is not None and loader.drop_last:
                n = n // bs * bs
            self._n = int(n)
        except (TypeError, AttributeError):
            self._n = None

    def _total(self) -> int | None:
        return self._n

    def describe(self) -> str:
        n = "?" if self.count is None else self.count
        return f"dataloader over {type(self._loader.dataset).__name__} ({n} images)"

    def _produce(self, rank: int, world: int) -> Iterator[tuple[int, str, Any, Any]]:
        i = 0
        for b, batch in enumerate(self._loader):
            images, labels = self._split_batch(batch, b)
            for j, img in enumerate(images):
                if self._limit is not None and i >= self._limit:
                    return
                if i % world == rank:
                    label = None if labels is None else _plain_label(labels[j])
                    yield i, f"dataloader[{i}]", img, label
                i += 1

    @staticmethod
    def _split_batch(batch: Any, b: int) -> tuple[Iterator[np.ndarray], Any]:
        what = f"batch {b}"
        labels = None
        if isinstance(batch, dict):
            images, labels = _split_item(batch, what)
        elif isinstance(batch, (tuple, list)) and batch and isinstance(
            batch[0], (torch.Tensor, np.ndarray)
        ) and batch[0].ndim == 4:  # fmt: skip
            images, labels = batch[0], (batch[1] if len(batch) > 1 else None)
        elif isinstance(batch, (tuple, list)):
            pairs = [_split_item(x, f"{what}[{k}]") for k, x in enumerate(batch)]
            images, labels = [p[0] for p in pairs], [p[1] for p in pairs]
        else:
            images = batch
        return _batch_images(images, what), labels

    def _digest(self, h: Any) -> None:
        for _, _, img, _ in self._produce(0, 1):
            _hash_array(h, img)


class _GeneratorSet(ImageSet):
    kind = "generator"

    def __init__(self, fn: Callable[[int], Any], batch_size: int, **kw: Any) -> None:
        super().__init__(**kw)
        self._fn = fn
        self._batch = batch_size

    def _total(self) -> int | None:
        return self._limit

    def describe(self) -> str:
        name = getattr(self._fn, "__qualname__", type(self._fn).__name__)
        return f"generator {name} ({self.count} images, batches of {self._batch})"

    def _produce(self, rank: int, world: int) -> Iterator[tuple[int, str, Any, Any]]:
        mine = list(self._indices(rank, world, self._limit))
        for start in range(0, len(mine), self._batch):
            idx = mine[start : start + self._batch]
            out = self._fn(len(idx))
            n = len(out) if isinstance(out, (list, tuple)) else getattr(out, "shape", (None,))[0]
            if n != len(idx):
                raise ValueError(
                    f"Expected the generator to return {len(idx)} images for fn({len(idx)}), "
                    f"got {n}"
                )
            for i, img in zip(idx, _batch_images(out, "the generator's output")):
                yield i, f"generated[{i}]", img, None

    def _digest(self, h: Any) -> None:
        raise TypeError(
            "a generator source has no fixed content and so no fingerprint; cache statistics "
            "of file, array or dataset sources only"
        )


# ----------------------------------------------------------------------------------------------
# open_images
# ----------------------------------------------------------------------------------------------


def _check_positive(name: str, v: Any, allow_none: bool = True) -> int | None:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"Expected `{name}` to be a positive int, got {type(v).__name__}")
    if v < 1:
        raise ValueError(f"Expected `{name}` >= 1, got {v}")
    return int(v)


def _lower_endswith(path: str, exts: Sequence[str]) -> bool:
    p = path.lower()
    return any(p.endswith(e) for e in exts)


def open_images(
    source: Any,
    *,
    workers: int | None = None,
    strict: bool = False,
    recursive: bool = True,
    count: int | None = None,
    batch_size: int | None = None,
    key: str | None = None,
    high_bit_depth: str = "clip",
) -> ImageSet:
    """Open a source of images for streaming, decoded as clean-fid/pytorch-fid decode them.

    See the module documentation for the sources and the mode conversions.

    Args:
        source: a folder, an image file, a ``.zip``/``.tar``/``.tar.gz``/``.tgz`` archive, an
            ``.npy``/``.npz`` array file (str or os.PathLike); a list of paths; a numpy array
            or torch tensor (a batch or one image); a list of arrays/tensors/PIL images; a
            ``torch.utils.data.Dataset`` or ``DataLoader``; or a callable ``fn(n)`` returning
            ``n`` images (``[n, 3, H, W]`` or ``[n, H, W, 3]``, uint8 or float 0..1), with
            ``count``.
        workers: decoding threads for file sources; default ``min(8, os.cpu_count())``.
        strict: raise :class:`ImageReadError` on an unreadable file instead of skipping it
            with a :class:`SkippedImageWarning`.
        recursive: descend into sub-folders (folders, and sub-directories of archives).
        count: use the first ``count`` images only; required for a generator (how many to
            generate). A ``ValueError`` when the source is known to hold fewer.
        batch_size: images per call of a generator (default 64); ignored otherwise.
        key: the array of an ``.npz`` file (default ``"arr_0"``, or its only array).
        high_bit_depth: ``"clip"`` (the peers' ``convert("RGB")``) or ``"scale"``: 16-bit
            grey images rescaled to 0..255.

    Returns:
        An :class:`ImageSet`.

    Raises:
        TypeError: an unsupported source or argument type.
        ValueError: a path that does not exist, a folder or archive without images, an
            ``.npz`` without ``key``, a bad shape, ``count`` larger than the source.

    Example:
        >>> import os, tempfile
        >>> from PIL import Image
        >>> d = tempfile.mkdtemp()
        >>> for i in range(3):
        ...     Image.new("L", (5 + i, 4), 10 * i).save(os.path.join(d, f"{i}.PNG"))
        >>> s = open_images(d, workers=2)
        >>> [(r.name, r.image.shape) for r in s]
        [('0.PNG', (4, 5, 3)), ('1.PNG', (4, 6, 3)), ('2.PNG', (4, 7, 3))]
    """
    workers = _default_workers() if workers is None else _check_positive("workers", workers)
    count = _check_positive("count", count)
    batch_size = _check_positive("batch_size", batch_size)
    if not isinstance(strict, bool):
        raise TypeError(f"Expected `strict` to be a bool, got {type(strict).__name__}")
    if not isinstance(recursive, bool):
        raise TypeError(f"Expected `recursive` to be a bool, got {type(recursive).__name__}")
    if high_bit_depth not in _HIGH_BIT_DEPTH:
        raise ValueError(f"Expected `high_bit_depth` in {_HIGH_BIT_DEPTH}, got {high_bit_depth!r}")
    if key is not None and not isinstance(key, str):
        raise TypeError(f"Expected `key` to be a str, got {type(key).__name__}")
    kw: dict[str, Any] = {"workers": workers, "strict": strict, "limit": count}
    s = _open(source, recursive, batch_size, key, high_bit_depth, kw)
    total = s._total()
    if count is not None and total is not None and count > total:
        raise ValueError(f"Expected `count` <= {total} (the images in {s.describe()}), got {count}")
    return s


def _open(
    source: Any, recursive: bool, batch_size: int | None, key: str | None, hbd: str,
    kw: dict[str, Any],
) -> ImageSet:  # fmt: skip
    if isinstance(source, ImageSet):
        return source
    if isinstance(source, (str, os.PathLike)):
        return _open_path(os.fspath(source), recursive, key, hbd, kw)  # type: ignore[arg-type]
    if isinstance(source, torch.Tensor):
        return _ArraySet(source, "tensor", "tensor", None, **kw)
    if isinstance(source, np.ndarray):
        return _ArraySet(source, "array", "array", None, **kw)
    if isinstance(source, torch.utils.data.DataLoader):
        return _LoaderSet(source, **kw)
    if isinstance(source, torch.utils.data.Dataset):
        return _DatasetSet(source, **kw)
    if isinstance(source, (list, tuple)):
        if not source:
            raise ValueError("Expected `source` to hold at least one image, got an empty list")
        if all(isinstance(x, (str, os.PathLike)) for x in source):
            paths = [os.fspath(x) for x in source]
            if any(isinstance(p, bytes) for p in paths):
                raise TypeError("Expected `source` paths as str or os.PathLike[str], got bytes")
            return _FileSet(paths, paths, "file list", "files", hbd, **kw)  # type: ignore[arg-type]
        if all(isinstance(x, (np.ndarray, torch.Tensor, Image.Image)) for x in source):
            return _ListSet(source, **kw)
        kinds = sorted({type(x).__name__ for x in source})
        raise TypeError(
            "Expected `source` to be a list of paths or a list of images (arrays, tensors, PIL "
            f"images), got a list of {kinds}"
        )
    if callable(source):
        if kw["limit"] is None:
            raise ValueError(
                "Expected `count` (how many images to generate) with a generator `source`, got None"
            )
        return _GeneratorSet(source, batch_size or _DEFAULT_GENERATOR_BATCH, **kw)
    raise TypeError(
        "Expected `source` to be a folder, file or archive path, a list of paths, a numpy "
        "array, a torch tensor, a list of images, a torch Dataset or DataLoader, or a callable "
        f"fn(n) with count=, got {type(source).__name__}"
    )


def _open_path(path: str, recursive: bool, key: str | None, hbd: str, kw: dict) -> ImageSet:
    try:
        st = os.stat(path)
    except OSError:
        raise ValueError(f"Expected `source` to be an existing path, got {path!r}") from None
    if stat.S_ISDIR(st.st_mode):
        names = _scan_folder(path, recursive)
        if not names:
            where = "in or below" if recursive else "in"
            raise ValueError(f"no image files ({_ext_list()}) {where} folder {path!r}")
        paths = [os.path.join(path, *n.split("/")) for n in names]
        desc = f"folder {path!r}" + (", recursive" if recursive else "")
        return _FileSet(paths, names, desc, "folder", hbd, **kw)
    if _lower_endswith(path, _ZIP_EXTENSIONS):
        return _ZipSet(path, recursive, hbd, **kw)
    if _lower_endswith(path, _TAR_EXTENSIONS):
        return _TarSet(path, recursive, hbd, **kw)
    if _lower_endswith(path, (".npz",)):
        return _NpzSet(path, key, **kw)
    if _lower_endswith(path, (".npy",)):
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read npy file {path!r}: {_reason(exc)}") from None
        return _ArraySet(arr, "npy", f"npy {path!r}", path, **kw)
    return _FileSet([path], [path], f"file {path!r}", "files", hbd, **kw)
