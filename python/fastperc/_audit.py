"""Dataset compression audit: do two image sets differ in ways known to move FID?

Comparing a JPEG-stored reference set with PNG generated images (or two JPEG sets of different
quality, chroma subsampling or resolution) adds a difference that FID measures on top of the
content: scores move by whole points. :func:`audit` reads the file headers of both sets (never
the pixels), describes each (:class:`SetAudit`: formats, JPEG quality from the quantization
tables, chroma subsampling, progressive share, colour modes and bit depths, resolutions,
unreadable files) and lists :class:`Finding` s with the expected direction of the bias and a
fix, such as re-encoding the lossless set with :func:`fastperc.jpeg.jpeg_simulate` at the JPEG
set's quality (``--match-jpeg 75`` on the command line).

Example:
    >>> import os, tempfile
    >>> from PIL import Image
    >>> a, b = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> for i in range(4):
    ...     im = Image.new("RGB", (32, 24), (60 * i, 90, 30))
    ...     im.save(os.path.join(a, f"{i}.png"))
    ...     im.save(os.path.join(b, f"{i}.jpg"), quality=75)
    >>> report = audit(a, b)
    >>> report.suggested_match_jpeg, report.suggested_subsampling, report.suggested_reencode
    (75, '4:2:0', 'a')
    >>> report.findings[0].kind, report.findings[0].direction
    ('format', 'up')
"""

from __future__ import annotations

import collections
import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from . import inputs as _inputs
from .jpeg_io import inspect_jpeg

__all__ = ["SEVERITIES", "AuditReport", "Finding", "SetAudit", "audit", "audit_set"]

#: Finding severities, mildest first.
SEVERITIES = ("info", "warning", "critical")

_HEAD = 1 << 16  # bytes read from each file before Pillow and the JPEG parser look at it
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
_SIXTEEN_BIT_GREY = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
# Chroma resolution kept, finest first: re-encoding to a coarser one matches sets.
_SUBSAMPLING_RANK = {"4:4:4": 0, "4:4:0": 1, "4:2:2": 1, "4:2:0": 2, "4:1:1": 2, "4:0:0": 0}
_QUALITY_GAP = 5  # JPEG quality points that count as a gap
_QUALITY_GAP_CRITICAL = 15
_LOSSLESS_MAX_LOSSY_SHARE = 0.1
_JPEG_MIN_SHARE = 0.5


@dataclass
class SetAudit:
    """What the headers of one image set say.

    Attributes:
        source: the set's description (:meth:`fastperc.inputs.ImageSet.describe`).
        kind: ``"files"`` (headers read) or ``"in-memory"`` (arrays, tensors, datasets,
            generators: lossless by construction; only the resolution is known, if that).
        images: images described: readable files, or in-memory images when the number is
            known.
        files_total: files in the source (more than ``images + len(unreadable)`` when
            ``max_files`` sampled it).
        formats: file count per format (``"JPEG"``, ``"PNG"``, ``"WEBP-lossy"``,
            ``"WEBP-lossless"``, ``"TIFF"``, ``"BMP"``, ...; ``"in-memory"``).
        lossy: files in a lossy coding (JPEG, lossy WebP, JPEG-compressed TIFF).
        jpeg_quality: JPEG files per IJG quality 1..100 (from the quantization tables).
        jpeg_quality_estimated: JPEG files whose tables are not libjpeg's scaled tables (the
            quality is the closest fit).
        subsampling: JPEG files per chroma subsampling (``"4:2:0"``, ``"4:4:4"``, ...).
        progressive: progressive JPEG files.
        modes: files per Pillow mode (``"RGB"``, ``"L"``, ``"P"``, ``"RGBA"``, ``"I;16"``, ...).
        bit_depths: files per bits per sample.
        resolutions: images per ``(width, height)``.
        unreadable: ``(name, reason)`` of files whose header could not be read.
        note: a remark such as ``"in-memory, lossless"``.
    """

    source: str
    kind: str
    images: int = 0
    files_total: int = 0
    formats: dict[str, int] = field(default_factory=dict)
    lossy: int = 0
    jpeg_quality: dict[int, int] = field(default_factory=dict)
    jpeg_quality_estimated: int = 0
    subsampling: dict[str, int] = field(default_factory=dict)
    progressive: int = 0
    modes: dict[str, int] = field(default_factory=dict)
    bit_depths: dict[int, int] = field(default_factory=dict)
    resolutions: dict[tuple[int, int], int] = field(default_factory=dict)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    note: str = ""

    @property
    def jpeg_count(self) -> int:
        return self.formats.get("JPEG", 0)

    @property
    def jpeg_share(self) -> float:
        """Share of the described images that are JPEG files."""
        return self.jpeg_count / self.images if self.images else 0.0

    @property
    def lossy_share(self) -> float:
        return self.lossy / self.images if self.images else 0.0

    @property
    def is_jpeg(self) -> bool:
        """Mostly (>= 50%) JPEG files."""
        return self.jpeg_share >= _JPEG_MIN_SHARE

    @property
    def is_lossless(self) -> bool:
        """In memory, or files of which fewer than 10% are lossy."""
        if self.kind == "in-memory":
            return True
        return self.images > 0 and self.lossy_share < _LOSSLESS_MAX_LOSSY_SHARE

    @property
    def dominant_quality(self) -> int | None:
        """The most common JPEG quality (the higher one on a tie), None without JPEGs."""
        return _mode_of(self.jpeg_quality)

    @property
    def dominant_subsampling(self) -> str | None:
        return _mode_of(self.subsampling)

    @property
    def dominant_resolution(self) -> tuple[int, int] | None:
        return _mode_of(self.resolutions)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (histogram keys as strings; resolutions as ``"WxH"``)."""
        return {
            "source": self.source,
            "kind": self.kind,
            "images": self.images,
            "files_total": self.files_total,
            "formats": dict(self.formats),
            "lossy": self.lossy,
            "jpeg_quality": {str(k): v for k, v in sorted(self.jpeg_quality.items())},
            "jpeg_quality_estimated": self.jpeg_quality_estimated,
            "dominant_quality": self.dominant_quality,
            "subsampling": dict(self.subsampling),
            "progressive": self.progressive,
            "modes": dict(self.modes),
            "bit_depths": {str(k): v for k, v in sorted(self.bit_depths.items())},
            "resolutions": {f"{w}x{h}": n for (w, h), n in _by_count(self.resolutions)},
            "unreadable": [[n, r] for n, r in self.unreadable],
            "note": self.note,
        }


@dataclass(frozen=True)
class Finding:
    """One way the two sets differ (or one set's peculiarity).

    Attributes:
        severity: ``"info"``, ``"warning"`` or ``"critical"``.
        kind: ``"format"``, ``"format-mix"``, ``"jpeg-quality"``, ``"subsampling"``,
            ``"resolution"``, ``"aspect-ratio"``, ``"colour-mode"``, ``"bit-depth"``,
            ``"alpha"``, ``"unreadable"``, ``"mixed-quality"``, ``"mixed-resolution"``,
            ``"progressive"``, ``"quality-estimated"``, ``"unknown-content"``.
        message: what differs, in a sentence or two.
        direction: the expected effect on FID: ``"up"`` (it reads higher than the content
            warrants), ``"down"`` or ``"unknown"``.
        fix: what to do about it, or None.
    """

    severity: str
    kind: str
    message: str
    direction: str = "up"
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "kind": self.kind,
            "message": self.message,
            "direction": self.direction,
            "fix": self.fix,
        }


@dataclass
class AuditReport:
    """The audit of two sets: both descriptions, the findings and a suggested fix.

    Attributes:
        a, b: the :class:`SetAudit` of each set.
        findings: most severe first.
        suggested_match_jpeg: the JPEG quality to re-encode with before measuring
            (``--match-jpeg``), or None: the JPEG side's dominant quality when one side is JPEG
            and the other lossless; the lower quality when both are JPEG and differ by >= 5.
        suggested_subsampling: the chroma subsampling to re-encode with (the JPEG side's, or
            the coarser of two), or None.
        suggested_reencode: which set to re-encode: ``"a"``, ``"b"``, ``"both"`` or None.
    """

    a: SetAudit
    b: SetAudit
    findings: list[Finding]
    suggested_match_jpeg: int | None = None
    suggested_subsampling: str | None = None
    suggested_reencode: str | None = None

    @property
    def max_severity(self) -> str | None:
        """The most severe finding's severity, None without findings."""
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=SEVERITIES.index)

    @property
    def ok(self) -> bool:
        """No finding above ``"info"``."""
        return all(f.severity == "info" for f in self.findings)

    @property
    def fix_flag(self) -> str | None:
        """The command-line option of the suggested fix, e.g. ``"--match-jpeg 75"``, or None."""
        q = self.suggested_match_jpeg
        return None if q is None else f"--match-jpeg {q}"

    @property
    def fix_hint(self) -> str | None:
        """The suggested fix in a line: ``"--match-jpeg 75: re-encode set A with ..."``."""
        q = self.suggested_match_jpeg
        if q is None:
            return None
        which = {"a": "set A", "b": "set B", "both": "both sets"}.get(
            self.suggested_reencode or "", "the other set"
        )
        sub = self.suggested_subsampling or "4:2:0"
        return (
            f"--match-jpeg {q}: re-encode {which} with fastperc.jpeg.jpeg_simulate(x, "
            f"quality={q}, subsampling={sub!r}) before measuring"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of everything in the report."""
        return {
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
            "ok": self.ok,
            "max_severity": self.max_severity,
            "suggested_match_jpeg": self.suggested_match_jpeg,
            "suggested_subsampling": self.suggested_subsampling,
            "suggested_reencode": self.suggested_reencode,
            "fix_flag": self.fix_flag,
            "fix_hint": self.fix_hint,
        }

    def to_markdown(self) -> str:
        """The report as Markdown: a side-by-side table, the findings, the suggested fix."""
        a, b = self.a, self.b
        rows = [
            ("source", a.source, b.source),
            ("images described", _images_cell(a), _images_cell(b)),
            ("unreadable files", str(len(a.unreadable)), str(len(b.unreadable))),
            ("formats", _formats_cell(a), _formats_cell(b)),
            ("JPEG quality", _quality_cell(a), _quality_cell(b)),
            ("chroma subsampling", _jpeg_hist_cell(a.subsampling, a),
             _jpeg_hist_cell(b.subsampling, b)),
            ("progressive JPEG", _progressive_cell(a), _progressive_cell(b)),
            ("colour modes", _hist_cell(a.modes, a), _hist_cell(b.modes, b)),
            ("bits per sample", _hist_cell(a.bit_depths, a), _hist_cell(b.bit_depths, b)),
            ("resolutions", _res_cell(a), _res_cell(b)),
        ]  # fmt: skip
        lines = ["# Dataset compression audit", "", "| | set A | set B |", "|---|---|---|"]
        lines += [f"| {k} | {_md(x)} | {_md(y)} |" for k, x, y in rows]
        lines += ["", "## Findings", ""]
        if not self.findings:
            lines.append("None: the sets match in format, JPEG quality, subsampling and size.")
        for f in self.findings:
            bias = {"up": "FID biased up", "down": "FID biased down"}.get(
                f.direction, "effect on FID unknown"
            )
            line = f"- **{f.severity}** ({f.kind}; {bias}): {f.message}"
            if f.fix:
                line += f" Fix: {f.fix}"
            lines.append(line)
        hint = self.fix_hint
        if hint:
            lines += ["", "## Suggested fix", "", f"`{self.fix_flag}`: {hint.split(': ', 1)[1]}"]
        elif not self.ok:
            lines += ["", "## Suggested fix", "", "See the findings above."]
        for s, tag in ((a, "A"), (b, "B")):
            if s.unreadable:
                lines += ["", f"## Unreadable files in set {tag}", ""]
                lines += [f"- `{n}`: {r}" for n, r in s.unreadable[:20]]
                if len(s.unreadable) > 20:
                    lines.append(f"- ... and {len(s.unreadable) - 20} more")
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.to_markdown()


# ----------------------------------------------------------------------------------------------
# Reading headers
# ----------------------------------------------------------------------------------------------


@dataclass
class _Probe:
    fmt: str
    mode: str
    size: tuple[int, int]
    bits: int
    lossy: bool
    quality: int | None = None
    quality_exact: bool = True
    subsampling: str | None = None
    progressive: bool = False


def _webp_kind(head: bytes) -> str:
    """``"lossy"`` or ``"lossless"`` from the RIFF chunks of a WebP file."""
    o = 12
    while o + 8 <= len(head):
        fourcc = head[o : o + 4]
        (size,) = struct.unpack("<I", head[o + 4 : o + 8])
        if fourcc == b"VP8L":
            return "lossless"
        if fourcc == b"VP8 ":
            return "lossy"
        if fourcc == b"ANMF":  # an animation frame: its sub-chunks follow a 16-byte header
            o += 8 + 16
            continue
        o += 8 + size + (size & 1)
    return "lossy"


def _png_bits(head: bytes) -> int | None:
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and len(head) > 24:
        return head[24]
    return None


def _probe(path: str | None, data: bytes | None) -> _Probe:
    """Describe one file from its header. Raises on anything unreadable.

    A file is read once, its first 64 KiB; only a header longer than that (a large EXIF or ICC
    segment, a TIFF directory at the end) sends the readers back to the file itself.
    """
    if data is not None:
        return _describe(data, data[:_HEAD])
    assert path is not None
    with open(path, "rb") as f:
        head = f.read(_HEAD)
    if len(head) < _HEAD:  # the whole file
        return _describe(head, head)
    try:
        return _describe(head, head)
    except Exception:
        return _describe(path, head)


def _describe(src: str | bytes, head: bytes) -> _Probe:
    """The header facts of a file given as its path or its (possibly partial) bytes."""
    with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as im:
        fmt = im.format or "unknown"
        mode, size = im.mode, (int(im.size[0]), int(im.size[1]))
        tiff_bits = tiff_comp = None
        if fmt == "TIFF":
            tags = getattr(im, "tag_v2", {})
            bits_tag = tags.get(258)
            tiff_bits = max(bits_tag) if isinstance(bits_tag, tuple) else bits_tag
            tiff_comp = tags.get(259)
    if size[0] < 1 or size[1] < 1:
        raise ValueError(f"empty image ({size[0]}x{size[1]})")
    bits = {"1": 1, "I": 32, "F": 32}.get(mode, 16 if mode.startswith("I;16") else 8)
    probe = _Probe(fmt, mode, size, bits, lossy=False)
    if fmt in ("JPEG", "MPO"):
        probe.fmt = "JPEG"
        info = inspect_jpeg(src)
        probe.lossy = info.mode != "lossless"
        probe.bits = info.precision
        probe.quality, probe.quality_exact = info.quality, info.quality_exact
        probe.subsampling = info.subsampling
        probe.progressive = info.mode == "progressive"
    elif fmt == "PNG":
        probe.bits = _png_bits(head) or bits
    elif fmt == "WEBP":
        kind = _webp_kind(head)
        probe.fmt, probe.lossy = f"WEBP-{kind}", kind == "lossy"
    elif fmt == "TIFF":
        probe.bits = int(tiff_bits) if isinstance(tiff_bits, int) else bits
        probe.lossy = tiff_comp in (6, 7, 34892)  # old JPEG, JPEG, lossy JPEG (DNG)
    return probe


def _entries(s: _inputs.ImageSet, max_files: int | None) -> Iterator[tuple[str, str | None, Any]]:
    """``(name, path, data)`` of the files of a file-based set (sampled to ``max_files``)."""
    n = s.count
    pick: set[int] | None = None
    if max_files is not None and n is not None and n > max_files:
        pick = {i * n // max_files for i in range(max_files)}  # evenly spread, deterministic
    if isinstance(s, _inputs._FileSet):
        for i in range(n or 0):
            if pick is None or i in pick:
                yield s._names[i], s._paths[i], None
    elif isinstance(s, _inputs._ZipSet):
        import zipfile

        with zipfile.ZipFile(s._path) as zf:
            for i in range(n or 0):
                if pick is None or i in pick:
                    name = s._members[i][0]
                    try:
                        yield name, None, zf.read(name)
                    except Exception as exc:
                        yield name, None, _inputs._Failure(_inputs._reason(exc))
    elif isinstance(s, _inputs._TarSet):
        for i, name, data in _tar_entries(s):
            if max_files is not None and pick is None and i >= max_files:
                return
            if pick is None or i in pick:
                yield name, None, data


def _tar_entries(s: _inputs._TarSet) -> Iterator[tuple[int, str, Any]]:
    import tarfile

    i = 0
    try:
        with tarfile.open(s._path, "r|*") as tf:
            for m in tf:
                if not s._wanted(m):
                    continue
                if s._limit is not None and i >= s._limit:
                    return
                f = tf.extractfile(m)
                yield i, m.name, f.read() if f is not None else b""
                i += 1
    except (OSError, tarfile.TarError, EOFError) as exc:
        yield i, f"{s._path}#{i}", _inputs._Failure(f"archive unreadable: {_inputs._reason(exc)}")


def _in_memory_resolutions(s: _inputs.ImageSet) -> dict[tuple[int, int], int]:
    """Resolutions known from an array's shape (no reading); empty when not known."""
    shape = None
    layout = None
    if isinstance(s, _inputs._ArraySet):
        shape, layout = tuple(int(x) for x in s._data.shape), s._layout
    elif isinstance(s, _inputs._NpzSet) and s._inner is None:
        shape, layout = tuple(int(x) for x in s._shape), s._layout
    elif isinstance(s, _inputs._NpzSet) and s._inner is not None:
        shape, layout = tuple(int(x) for x in s._inner._data.shape), s._inner._layout
    if shape is None:
        if isinstance(s, _inputs._ListSet):
            out: collections.Counter = collections.Counter()
            for i in range(s.count or 0):
                x = s._items[i]
                if isinstance(x, Image.Image):
                    out[(x.width, x.height)] += 1
                elif getattr(x, "ndim", 0) in (2, 3):
                    h, w = _hw_of(x)
                    out[(w, h)] += 1
            return dict(out)
        return {}
    h, w = (shape[2], shape[3]) if layout == "nchw" else (shape[1], shape[2])
    return {(w, h): s.count or 0}


def _hw_of(x: Any) -> tuple[int, int]:
    shp = tuple(int(v) for v in x.shape)
    if len(shp) == 2:
        return shp[0], shp[1]
    is_torch = type(x).__module__.startswith("torch")
    first, last = shp[0] in (1, 3, 4), shp[2] in (1, 3, 4)
    return (shp[1], shp[2]) if first and (is_torch or not last) else (shp[0], shp[1])


def audit_set(
    source: Any,
    *,
    workers: int | None = None,
    max_files: int | None = None,
    recursive: bool = True,
    key: str | None = None,
) -> SetAudit:
    """Describe the storage of one image set from its file headers (pixels are not decoded).

    Args:
        source: anything :func:`fastperc.inputs.open_images` takes (an
            :class:`~fastperc.inputs.ImageSet` it made is taken as is, e.g. for an ``.npz``
            ``key``). Folders, archives and file lists are read (Pillow's lazy ``Image.open`` and
            :func:`fastperc.jpeg_io.inspect_jpeg` on the header bytes); arrays, tensors,
            datasets and generators are described as ``"in-memory, lossless"`` (with their
            resolution when the shape gives it).
        workers: threads reading headers (default ``min(8, os.cpu_count())``).
        max_files: read at most this many files, spread evenly over the set.
        recursive: descend into sub-folders.
        key: the array of an ``.npz`` file.

    Returns:
        A :class:`SetAudit`. Unreadable files are listed in ``unreadable``, never raised.

    Example:
        >>> import io, os, tempfile
        >>> from PIL import Image
        >>> d = tempfile.mkdtemp()
        >>> Image.new("RGB", (40, 30)).save(os.path.join(d, "x.jpg"), quality=90)
        >>> s = audit_set(d)
        >>> s.formats, s.jpeg_quality, s.subsampling, s.resolutions
        ({'JPEG': 1}, {90: 1}, {'4:2:0': 1}, {(40, 30): 1})
    """
    if max_files is not None:
        max_files = _inputs._check_positive("max_files", max_files)
    workers = _inputs._default_workers() if workers is None else workers
    if callable(source) and not isinstance(source, (str, os.PathLike)) and not hasattr(
        source, "__len__"
    ) and not isinstance(source, _inputs.ImageSet):  # fmt: skip
        # a generator: its images exist only when generated; lossless by construction
        return SetAudit(
            source=f"generator {getattr(source, '__qualname__', type(source).__name__)}",
            kind="in-memory",
            formats={},
            note="in-memory, lossless (generated; size unknown until generated)",
        )
    s = _inputs.open_images(source, workers=workers, recursive=recursive, key=key)
    if not isinstance(s, (_inputs._FileSet, _inputs._ZipSet, _inputs._TarSet)):
        res = _in_memory_resolutions(s)
        n = sum(res.values()) if res else (s.count or 0)
        return SetAudit(
            source=s.describe(),
            kind="in-memory",
            images=n,
            formats={"in-memory": n} if n else {},
            resolutions=res,
            note="in-memory, lossless" + ("" if res else " (size unknown until read)"),
        )
    out = SetAudit(source=s.describe(), kind="files")
    fmts: collections.Counter = collections.Counter()
    qual: collections.Counter = collections.Counter()
    subs: collections.Counter = collections.Counter()
    modes: collections.Counter = collections.Counter()
    bits: collections.Counter = collections.Counter()
    res: collections.Counter = collections.Counter()

    def probe(entry: tuple[str, str | None, Any]) -> _Probe | _inputs._Failure:
        _, path, data = entry
        if isinstance(data, _inputs._Failure):
            return data
        try:
            return _probe(path, data)
        except Exception as exc:  # a bad file is reported, never fatal
            return _inputs._Failure(_inputs._reason(exc))

    seen = 0
    for (name, _, _), p in _inputs._ordered_map(probe, _entries(s, max_files), max(1, workers)):
        seen += 1
        if isinstance(p, _inputs._Failure):
            out.unreadable.append((name, p.reason))
            continue
        out.images += 1
        fmts[p.fmt] += 1
        modes[p.mode] += 1
        bits[p.bits] += 1
        res[p.size] += 1
        out.lossy += int(p.lossy)
        if p.fmt == "JPEG":
            if p.quality is not None:
                qual[p.quality] += 1
            out.jpeg_quality_estimated += int(not p.quality_exact)
            if p.subsampling is not None:
                subs[p.subsampling] += 1
            out.progressive += int(p.progressive)
    out.files_total = s.count if s.count is not None else seen
    out.formats, out.jpeg_quality, out.subsampling = dict(fmts), dict(qual), dict(subs)
    out.modes, out.bit_depths, out.resolutions = dict(modes), dict(bits), dict(res)
    if max_files is not None and out.files_total > seen:
        out.note = f"sampled {seen} of {out.files_total} files"
    return out


# ----------------------------------------------------------------------------------------------
# The verdict
# ----------------------------------------------------------------------------------------------


def audit(
    a: Any,
    b: Any,
    *,
    workers: int | None = None,
    max_files: int | None = None,
    recursive: bool = True,
) -> AuditReport:
    """Compare how two image sets are stored and flag differences known to move FID.

    Flags (with the expected direction of the bias and a fix): one set JPEG and the other
    lossless (critical), a JPEG quality gap of 5 or more (critical from 15), different chroma
    subsampling, different resolutions or aspect ratios, a greyscale/colour or 16-bit
    difference, unreadable files; and, as ``"info"``, a set's own mix of qualities or sizes.
    Matched sets give no finding above ``"info"``.

    Args:
        a, b: the two sets, anything :func:`audit_set` takes (paths, arrays, tensors, ...).
        workers: threads reading headers.
        max_files: read at most this many files of each set, spread evenly.
        recursive: descend into sub-folders.

    Returns:
        An :class:`AuditReport`; ``str(report)`` is a readable Markdown report.

    Example:
        >>> import numpy as np
        >>> r = audit(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((3, 8, 8, 3), np.uint8))
        >>> r.ok, r.findings
        (True, [])
    """
    sa = audit_set(a, workers=workers, max_files=max_files, recursive=recursive)
    sb = audit_set(b, workers=workers, max_files=max_files, recursive=recursive)
    return compare(sa, sb)


def compare(sa: SetAudit, sb: SetAudit) -> AuditReport:
    """The :class:`AuditReport` of two :class:`SetAudit` s (what :func:`audit` returns)."""
    findings: list[Finding] = []
    report = AuditReport(sa, sb, findings)
    sides = (("A", sa), ("B", sb))

    for tag, s in sides:
        if s.unreadable:
            first = f"{s.unreadable[0][0]}: {s.unreadable[0][1]}"
            findings.append(Finding(
                "warning", "unreadable",
                f"{len(s.unreadable)} file(s) of set {tag} cannot be read (first: {first}); "
                "they are skipped when measuring.",
                "unknown", "repair or remove them; see the list in the report",
            ))  # fmt: skip
        if s.kind == "in-memory" and s.images == 0 and not s.resolutions:
            findings.append(Finding(
                "info", "unknown-content",
                f"set {tag} ({s.source}) is in memory: lossless, its size unknown until read.",
                "unknown",
            ))  # fmt: skip

    _compare_formats(report, sa, sb)
    _compare_jpeg(report, sa, sb)
    _compare_resolution(findings, sa, sb)
    _compare_modes(findings, sa, sb)

    findings.sort(key=lambda f: -SEVERITIES.index(f.severity))
    return report


def _compare_formats(report: AuditReport, sa: SetAudit, sb: SetAudit) -> None:
    for (ta, x), (tb, y), side in ((("A", sa), ("B", sb), "b"), (("B", sb), ("A", sa), "a")):
        if x.is_jpeg and y.is_lossless:
            q, sub = x.dominant_quality, x.dominant_subsampling or "4:2:0"
            report.suggested_match_jpeg = q
            report.suggested_subsampling = sub
            report.suggested_reencode = side
            report.findings.append(Finding(
                "critical", "format",
                f"set {ta} is JPEG ({x.jpeg_share:.0%} of its files, mostly quality {q}, {sub}) "
                f"and set {tb} is lossless ({_describe_formats(y)}): FID measures the JPEG "
                "artifacts on top of the content, typically by whole points.",
                "up",
                f"--match-jpeg {q}: re-encode set {tb} with fastperc.jpeg.jpeg_simulate(x, "
                f"quality={q}, subsampling={sub!r}) before measuring",
            ))  # fmt: skip
            return
    if sa.images and sb.images and abs(sa.lossy_share - sb.lossy_share) >= 0.2:
        report.findings.append(Finding(
            "warning", "format-mix",
            f"the sets mix lossy files differently: set A {sa.lossy_share:.0%} lossy "
            f"({_describe_formats(sa)}), set B {sb.lossy_share:.0%} ({_describe_formats(sb)}).",
            "up", "store both sets in the same format (or re-encode the lossless one)",
        ))  # fmt: skip
    elif (sa.is_lossless and not sb.is_lossless and not sb.is_jpeg and sb.images) or (
        sb.is_lossless and not sa.is_lossless and not sa.is_jpeg and sa.images
    ):
        report.findings.append(Finding(
            "warning", "format-mix",
            f"one set is lossless and the other holds lossy files: set A "
            f"{_describe_formats(sa)}, set B {_describe_formats(sb)}.",
            "up", "store both sets in the same format",
        ))  # fmt: skip


def _compare_jpeg(report: AuditReport, sa: SetAudit, sb: SetAudit) -> None:
    findings = report.findings
    for tag, s in (("A", sa), ("B", sb)):
        q = s.dominant_quality
        if s.jpeg_count and q is not None and s.jpeg_quality[q] / s.jpeg_count < 0.8:
            findings.append(Finding(
                "info", "mixed-quality",
                f"set {tag} mixes JPEG qualities: {_top(s.jpeg_quality, s.jpeg_count, 4)}.",
                "unknown",
            ))  # fmt: skip
        if s.jpeg_quality_estimated:
            findings.append(Finding(
                "info", "quality-estimated",
                f"{s.jpeg_quality_estimated} JPEG file(s) of set {tag} use non-libjpeg "
                "quantization tables; their quality is the closest libjpeg quality.",
                "unknown",
            ))  # fmt: skip
    if not (sa.is_jpeg and sb.is_jpeg):
        return
    qa, qb = sa.dominant_quality, sb.dominant_quality
    reencode_q = reencode_s = None
    if qa is not None and qb is not None and abs(qa - qb) >= _QUALITY_GAP:
        lo = min(qa, qb)
        hi_tag, reencode_q = ("A", "a") if qa > qb else ("B", "b")
        sev = "critical" if abs(qa - qb) >= _QUALITY_GAP_CRITICAL else "warning"
        report.suggested_match_jpeg = lo
        findings.append(Finding(
            sev, "jpeg-quality",
            f"JPEG quality differs: set A mostly {qa}, set B mostly {qb}; the lower quality's "
            "stronger artifacts read as a distribution difference.",
            "up",
            f"--match-jpeg {lo}: re-encode set {hi_tag} at quality {lo} before measuring",
        ))  # fmt: skip
    ssa, ssb = sa.dominant_subsampling, sb.dominant_subsampling
    if ssa and ssb and ssa != ssb:
        coarse = max((ssa, ssb), key=lambda x: _SUBSAMPLING_RANK.get(x, 3))
        fine_tag, reencode_s = ("A", "a") if coarse == ssb else ("B", "b")
        report.suggested_subsampling = coarse
        findings.append(Finding(
            "warning", "subsampling",
            f"chroma subsampling differs: set A mostly {ssa}, set B mostly {ssb}; the coarser "
            "one blurs colour edges.",
            "up",
            f"re-encode set {fine_tag} with subsampling={coarse!r}",
        ))  # fmt: skip
    if reencode_q or reencode_s:
        if report.suggested_match_jpeg is None:
            report.suggested_match_jpeg = min(q for q in (qa, qb) if q is not None)
        if report.suggested_subsampling is None:
            report.suggested_subsampling = ssa or ssb
        both = reencode_q and reencode_s and reencode_q != reencode_s
        report.suggested_reencode = "both" if both else (reencode_q or reencode_s)
    elif (sa.progressive > 0) != (sb.progressive > 0):
        findings.append(Finding(
            "info", "progressive",
            f"progressive JPEG: set A {sa.progressive} of {sa.jpeg_count}, set B "
            f"{sb.progressive} of {sb.jpeg_count} (decoded to the same pixels as baseline).",
            "unknown",
        ))  # fmt: skip


def _compare_resolution(findings: list[Finding], sa: SetAudit, sb: SetAudit) -> None:
    for tag, s in (("A", sa), ("B", sb)):
        r = s.dominant_resolution
        total = sum(s.resolutions.values())
        if r is not None and s.resolutions[r] / total < 0.9:
            findings.append(Finding(
                "info", "mixed-resolution",
                f"set {tag} mixes image sizes: {_top_res(s.resolutions, total)}.",
                "unknown",
            ))  # fmt: skip
    ra, rb = sa.dominant_resolution, sb.dominant_resolution
    if ra is None or rb is None or ra == rb:
        return
    ara, arb = ra[0] / ra[1], rb[0] / rb[1]
    if abs(ara / arb - 1) > 0.01:
        findings.append(Finding(
            "warning", "aspect-ratio",
            f"aspect ratios differ: set A mostly {ra[0]}x{ra[1]} ({ara:.3g}:1), set B mostly "
            f"{rb[0]}x{rb[1]} ({arb:.3g}:1); a resize to the extractor's square input "
            "distorts them differently.",
            "up", "crop both sets to the same aspect ratio before measuring",
        ))  # fmt: skip
    factor = max(ra[0] * ra[1], rb[0] * rb[1]) / min(ra[0] * ra[1], rb[0] * rb[1])
    findings.append(Finding(
        "warning", "resolution",
        f"resolutions differ: set A mostly {ra[0]}x{ra[1]}, set B mostly {rb[0]}x{rb[1]} "
        f"({factor:.3g}x the pixels); resizing to the extractor's input then differs in "
        "sharpness and aliasing between the sets.",
        "up", "resize both sets to the same resolution (antialiased) before measuring",
    ))  # fmt: skip


def _compare_modes(findings: list[Finding], sa: SetAudit, sb: SetAudit) -> None:
    def share(s: SetAudit, modes: frozenset) -> float:
        n = sum(s.modes.values())
        return sum(v for m, v in s.modes.items() if m in modes) / n if n else 0.0

    if sa.modes and sb.modes:
        ga, gb = share(sa, _GREY_MODES), share(sb, _GREY_MODES)
        if abs(ga - gb) >= 0.1:
            findings.append(Finding(
                "warning", "colour-mode",
                f"greyscale files: set A {ga:.0%}, set B {gb:.0%}; grey images (replicated to "
                "RGB) read as a colour difference.",
                "up", "use the same colour mode in both sets",
            ))  # fmt: skip
    for tag, s in (("A", sa), ("B", sb)):
        n16 = sum(v for m, v in s.modes.items() if m in _SIXTEEN_BIT_GREY)
        if n16:
            findings.append(Finding(
                "warning", "bit-depth",
                f"{n16} file(s) of set {tag} are 16-bit greyscale: the peers' decoding "
                "(convert('RGB')) clips them to 255, which turns most of them white.",
                "up",
                "convert them to 8 bits first, or read with open_images(..., "
                "high_bit_depth='scale')",
            ))  # fmt: skip
        n16rgb = sum(v for d, v in s.bit_depths.items() if d == 16) - n16
        if n16rgb > 0:
            findings.append(Finding(
                "info", "bit-depth",
                f"{n16rgb} file(s) of set {tag} store 16 bits per sample; they are read as "
                "their high byte.",
                "unknown",
            ))  # fmt: skip
    alpha = [share(s, _ALPHA_MODES) for s in (sa, sb)]
    if max(alpha) > 0 and abs(alpha[0] - alpha[1]) >= 0.1:
        findings.append(Finding(
            "info", "alpha",
            f"files with an alpha channel: set A {alpha[0]:.0%}, set B {alpha[1]:.0%}; alpha is "
            "dropped, not composited, so transparent areas show their stored colour.",
            "unknown",
        ))  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Formatting helpers
# ----------------------------------------------------------------------------------------------


def _mode_of(hist: dict) -> Any:
    if not hist:
        return None
    return max(hist.items(), key=lambda kv: (kv[1], kv[0]))[0]


def _by_count(hist: dict) -> list[tuple[Any, int]]:
    return sorted(hist.items(), key=lambda kv: (-kv[1], str(kv[0])))


def _top(hist: dict, total: int, k: int) -> str:
    items = _by_count(hist)
    parts = [f"{key} {n / total:.0%}" for key, n in items[:k]]
    if len(items) > k:
        parts.append(f"{len(items) - k} more")
    return ", ".join(parts)


def _top_res(hist: dict, total: int, k: int = 3) -> str:
    return _top({f"{w}x{h}": n for (w, h), n in hist.items()}, total, k)


def _describe_formats(s: SetAudit) -> str:
    if s.kind == "in-memory":
        return "in-memory"
    return _top(s.formats, max(1, s.images), 3) if s.formats else "no readable files"


def _images_cell(s: SetAudit) -> str:
    if s.kind == "in-memory":
        return f"{s.images or '?'} ({s.note})"
    return f"{s.images} of {s.files_total} files" + (f" ({s.note})" if s.note else "")


def _formats_cell(s: SetAudit) -> str:
    return "in-memory (lossless)" if s.kind == "in-memory" else _hist_cell(s.formats, s)


def _hist_cell(hist: dict, s: SetAudit) -> str:
    total = sum(hist.values())
    return _top(hist, total, 4) if total else "-"


def _jpeg_hist_cell(hist: dict, s: SetAudit) -> str:
    total = sum(hist.values())
    return _top(hist, total, 3) if total else "-"


def _quality_cell(s: SetAudit) -> str:
    total = sum(s.jpeg_quality.values())
    if not total:
        return "-"
    cell = _top(s.jpeg_quality, total, 3)
    if s.jpeg_quality_estimated:
        cell += f" ({s.jpeg_quality_estimated} estimated)"
    return cell


def _progressive_cell(s: SetAudit) -> str:
    return f"{s.progressive} of {s.jpeg_count}" if s.jpeg_count else "-"


def _res_cell(s: SetAudit) -> str:
    total = sum(s.resolutions.values())
    return _top_res(s.resolutions, total) if total else "-"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|")
