"""Where feature-extractor weights come from: local files, the cache, or a checked download.

Weights are never fetched unless the caller asks for it (``download=True``). The search order
for a weights file that is not given explicitly is:

1. the ``FASTPERC_WEIGHTS`` environment variable: a file (used as is) or a folder (searched for
   the known file names);
2. the fastperc cache folder: ``$FASTPERC_CACHE`` if set, else ``~/.cache/fastperc``;
3. PyTorch's hub checkpoint folder (``torch.hub.get_dir()/checkpoints``), where pytorch-fid's
   own download puts its Inception file;
4. only with ``download=True``: the published URL, into the cache folder, with a SHA-256 check.

Example:
    >>> from fastperc.models import weights
    >>> weights.INCEPTION_FID.filename
    'pt_inception-2015-12-05-6726825d.pth'
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

ENV_WEIGHTS = "FASTPERC_WEIGHTS"
ENV_CACHE = "FASTPERC_CACHE"


class WeightsNotFoundError(FileNotFoundError):
    """No weights file was found for a model (the message lists where it looked and how to
    provide one)."""


class WeightsHashError(ValueError):
    """A downloaded weights file does not have the published SHA-256."""


@dataclass(frozen=True)
class WeightsFile:
    """A published weights file.

    Attributes:
        model: the model the file belongs to.
        filename: its published file name (what the search looks for).
        url: where it is published.
        sha256: its SHA-256 (hex), or ``None`` when only a prefix is known.
        sha256_prefix: the hash prefix written into the file name (torch.hub convention).
        fmt: ``"state_dict"`` (``torch.save`` of a state dict) or ``"torchscript"``.
        size: size in bytes when known.
    """

    model: str
    filename: str
    url: str
    sha256: str | None
    sha256_prefix: str
    fmt: str
    size: int | None = None


#: pytorch-fid's FID Inception weights (a port of TensorFlow's 2015-12-05 Inception graph). The
#: URL is pytorch-fid's ``FID_WEIGHTS_URL``; ``6726825d`` in the name is the start of the SHA-256.
INCEPTION_FID = WeightsFile(
    model="inception_v3_fid",
    filename="pt_inception-2015-12-05-6726825d.pth",
    url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth",
    sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
    sha256_prefix="6726825d",
    fmt="state_dict",
    size=95_628_359,
)

#: clean-fid's (and StyleGAN2-ADA's) TorchScript translation of the same TensorFlow graph. No
#: hash is published with it, so a download of it is not offered; use a local copy.
INCEPTION_TORCHSCRIPT = WeightsFile(
    model="inception_v3_fid",
    filename="inception-2015-12-05.pt",
    url="https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/"
    "inception-2015-12-05.pt",
    sha256=None,
    sha256_prefix="",
    fmt="torchscript",
)

INCEPTION_FILES = (INCEPTION_FID, INCEPTION_TORCHSCRIPT)


def cache_dir() -> Path:
    """The fastperc cache folder: ``$FASTPERC_CACHE``, else ``~/.cache/fastperc``."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/fastperc").expanduser()


def _hub_checkpoints() -> Path | None:
    try:
        import torch.hub

        return Path(torch.hub.get_dir()) / "checkpoints"
    except Exception:  # pragma: no cover - torch.hub is always there in practice
        return None


def search_locations() -> list[tuple[str, Path]]:
    """``(label, folder or file)`` in the order the search visits them."""
    out: list[tuple[str, Path]] = []
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        out.append((f"${ENV_WEIGHTS}", Path(env).expanduser()))
    out.append(("cache" + (f" (${ENV_CACHE})" if os.environ.get(ENV_CACHE) else ""), cache_dir()))
    hub = _hub_checkpoints()
    if hub is not None:
        out.append(("torch hub checkpoints", hub))
    return out


def find_weights(files: tuple[WeightsFile, ...]) -> tuple[Path, WeightsFile | None] | None:
    """The first weights file found for one of ``files`` (search order above), or ``None``.

    A ``FASTPERC_WEIGHTS`` that names a file is returned as is (with ``None`` as its
    description unless its name is a known one).
    """
    for _, loc in search_locations():
        if loc.is_file():
            return loc, next((f for f in files if f.filename == loc.name), None)
        if loc.is_dir():
            for f in files:
                p = loc / f.filename
                if p.is_file():
                    return p, f
    return None


def not_found_message(files: tuple[WeightsFile, ...], what: str) -> str:
    looked = "; ".join(f"{label}: {path}" for label, path in search_locations())
    names = " or ".join(f"`{f.filename}`" for f in files)
    first = files[0]
    return (
        f"No weights found for {what}: expected a file named {names}. Looked in: {looked}. "
        f"Provide it with `weights=<path to the file or its folder>`, or set "
        f"{ENV_WEIGHTS}=<file or folder>, or put it in {cache_dir()} (set {ENV_CACHE} to use "
        f"another cache folder), or pass download=True to fetch {first.url} (SHA-256 checked)."
    )


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def check_hash(digest: str, spec: WeightsFile) -> bool | None:
    """Whether ``digest`` is the published hash of ``spec`` (``None`` when none is published)."""
    if spec.sha256:
        return digest == spec.sha256
    if spec.sha256_prefix:
        return digest.startswith(spec.sha256_prefix)
    return None


def download(
    url: str,
    dest: str | os.PathLike[str],
    sha256: str,
    *,
    progress: bool = False,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` and check its SHA-256.

    The bytes go to a temporary file in the destination folder, which is renamed into place
    only after the hash matches, so an interrupted or corrupted download never leaves a file
    under the final name.

    Args:
        url: the address (``https://`` or ``file://``).
        dest: the final file path.
        sha256: expected SHA-256, hex (required: nothing is kept unchecked).
        progress: print a progress line to stderr.
        timeout: socket timeout in seconds.

    Returns:
        ``dest`` as a ``Path``.

    Raises:
        WeightsHashError: the downloaded bytes have another hash.
    """
    if not isinstance(sha256, str) or len(sha256) != 64:
        raise ValueError(f"Expected `sha256` to be a 64-character hex string, got {sha256!r}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0)
            done = 0
            while True:
                b = resp.read(1 << 20)
                if not b:
                    break
                out.write(b)
                h.update(b)
                done += len(b)
                if progress:
                    import sys

                    pct = f" {100 * done / total:5.1f}%" if total else ""
                    print(f"\r{dest.name}: {done / 1e6:.1f} MB{pct}", end="", file=sys.stderr)
        if progress:
            import sys

            print(file=sys.stderr)
        digest = h.hexdigest()
        if digest != sha256.lower():
            raise WeightsHashError(
                f"Downloaded {url} has SHA-256 {digest}, expected {sha256}; the file was "
                "discarded (a corrupted or changed download)"
            )
        os.replace(tmp, dest)
        tmp = ""
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def download_weights(spec: WeightsFile, folder: str | os.PathLike[str] | None = None) -> Path:
    """Fetch a published weights file into ``folder`` (default: the cache), hash-checked.

    Returns the path; an existing file with the right hash is reused.
    """
    if not spec.sha256:
        raise ValueError(
            f"No published SHA-256 for `{spec.filename}`, so it is not downloaded automatically; "
            f"download it yourself from {spec.url} and pass its path as `weights=`"
        )
    folder = Path(folder) if folder is not None else cache_dir()
    dest = folder / spec.filename
    if dest.is_file() and sha256_file(dest) == spec.sha256:
        return dest
    return download(spec.url, dest, spec.sha256, progress=True)


def is_torchscript(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a TorchScript archive (``torch.jit.save``) rather than ``torch.save``."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return any("/code/" in n or n.endswith("constants.pkl") for n in names)
