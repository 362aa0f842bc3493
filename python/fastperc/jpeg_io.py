"""Reading JPEG files: header inspection and quantized DCT coefficients.

* :func:`inspect_jpeg` parses the markers up to the first scan: size, components and sampling
  factors, coding process, quantization tables, the IJG quality they correspond to, restart
  interval, APPn segments (JFIF, EXIF, ICC, Adobe, XMP) and comments.
* :func:`read_coefficients` decodes the quantized DCT coefficients of every component, as stored
  in the file (the block-domain view torchjpeg gives), without an inverse DCT.

Both run a C++ parser (``csrc/jpeg_codec.h``) that treats every byte as hostile: malformed data
raises :class:`ValueError` naming the byte offset and the reason; it never crashes, hangs or
allocates more than the limits below allow. Files that use a coding process the decoder does not
implement (arithmetic coding, lossless, hierarchical) raise :class:`NotImplementedError` from
:func:`read_coefficients`; :func:`inspect_jpeg` still describes them.

Limits: the frame may have at most ``max_pixels`` pixels (default :data:`MAX_PIXELS`,
2**28), and :func:`read_coefficients` allocates coefficient memory only when the file holds at
least one byte of scan data per 8 blocks of the frame (every block of a complete file costs at
least one bit), so a small file can never declare its way into a large allocation.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from . import _ext

__all__ = [
    "MAX_PIXELS",
    "JpegCoefficients",
    "JpegComponent",
    "JpegInfo",
    "inspect_jpeg",
    "read_coefficients",
]

#: Largest ``width * height`` accepted unless the caller passes another ``max_pixels``.
MAX_PIXELS = 1 << 28

# First read of a file by inspect_jpeg; doubled while the markers before the first scan need more.
_INSPECT_CHUNK = 1 << 16

Source = Union[str, "os.PathLike[str]", "os.PathLike[bytes]", bytes, bytearray, memoryview]

# ITU-T T.81 Annex K tables (K.1 luminance, K.2 chrominance), natural row-major order.
_LUMA_BASE = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
     14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
     18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    dtype=np.int64,
)  # fmt: skip
_CHROMA_BASE = np.full(64, 99, dtype=np.int64)
_CHROMA_BASE[[0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 24, 25]] = [
    17, 18, 24, 47, 18, 21, 26, 66, 24, 26, 56, 47, 66,
]  # fmt: skip


def _ijg_table(base: np.ndarray, quality: int, force_baseline: bool = True) -> np.ndarray:
    """libjpeg's ``jpeg_quality_scaling`` + ``jpeg_add_quant_table`` of one base table."""
    q = min(max(int(quality), 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    table = (base * scale + 50) // 100
    return np.clip(table, 1, 255 if force_baseline else 32767)


@functools.cache
def _ijg_tables() -> np.ndarray:
    """All IJG tables: [force_baseline (True, False), luma/chroma, quality 1..100, 64]."""
    out = np.empty((2, 2, 100, 64), dtype=np.int64)
    for i, fb in enumerate((True, False)):
        for j, base in enumerate((_LUMA_BASE, _CHROMA_BASE)):
            for q in range(1, 101):
                out[i, j, q - 1] = _ijg_table(base, q, fb)
    return out


@functools.cache
def _ijg_luma_lookup() -> tuple[dict[bytes, int], dict[bytes, int]]:
    """Per force_baseline (True, False): luma table as little-endian uint16 bytes -> quality.

    No two qualities give the same luma table, so the map is one to one.
    """
    tables = _ijg_tables()
    maps = tuple(
        {tables[fb, 0, q].astype("<u2").tobytes(): q + 1 for q in range(100)} for fb in range(2)
    )
    return maps  # type: ignore[return-value]


def _estimate_quality(
    luma: np.ndarray | None, chroma: np.ndarray | None
) -> tuple[int | None, bool]:
    """IJG quality of a luma (and optionally chroma) table: (q, exact).

    Exact when the tables equal libjpeg's Annex K tables scaled for some q (with or without
    force_baseline); otherwise the q whose tables are closest in mean absolute log ratio.
    """
    if luma is None:
        return None, False
    tables = _ijg_tables()  # [2, 2, 100, 64]
    key = luma.astype("<u2").tobytes()
    for fb, lookup in enumerate(_ijg_luma_lookup()):
        q = lookup.get(key)
        if q is not None and (
            chroma is None or np.array_equal(chroma.reshape(64), tables[fb, 1, q - 1])
        ):
            return q, True
    lu = luma.reshape(64).astype(np.int64)
    err = np.abs(np.log(tables[:, 0]) - np.log(np.maximum(lu, 1))).mean(axis=-1)
    if chroma is not None:
        ch = np.maximum(chroma.reshape(64).astype(np.int64), 1)
        err = err + np.abs(np.log(tables[:, 1]) - np.log(ch)).mean(axis=-1)
    _, q = np.unravel_index(int(np.argmin(err)), err.shape)
    return int(q) + 1, False


@dataclass(frozen=True)
class JpegComponent:
    """One component of the frame header (SOFn)."""

    id: int  #: component identifier Ci
    h: int  #: horizontal sampling factor, 1..4
    v: int  #: vertical sampling factor, 1..4
    quant_table_id: int  #: quantization table selector Tq, 0..3


@dataclass(frozen=True, eq=False)
class JpegInfo:
    """What the markers of a JPEG file say, up to its first scan.

    Attributes:
        width, height: image size in pixels.
        components: the frame's components, in frame order.
        subsampling: ``"4:4:4"``, ``"4:2:2"``, ``"4:2:0"``, ``"4:4:0"``, ``"4:1:1"`` (from the
            first component's sampling factors over the others'), ``"4:0:0"`` for one
            component, ``"other"`` for anything else.
        mode: ``"baseline"`` (SOF0), ``"extended"`` (sequential, SOF1/5/9/13),
            ``"progressive"`` (SOF2/6/10/14) or ``"lossless"`` (SOF3/7/11/15).
        arithmetic: arithmetic coding (SOF9 and up) instead of Huffman.
        hierarchical: a differential frame (SOF5-7, SOF13-15).
        precision: sample precision in bits.
        quant_tables: quantization tables defined when the first scan starts, by table id,
            uint16 [8, 8] in natural (row-major) order.
        quality: IJG quality 1..100 of the tables (None without a table for component 0).
        quality_exact: True when the tables are exactly libjpeg's Annex K tables scaled for
            ``quality`` (with or without force_baseline); False when ``quality`` is the
            best fit of a file written with other tables.
        restart_interval: MCUs per restart interval (0: none) when the first scan starts.
        has_jfif, has_exif, has_icc, has_adobe, has_xmp: presence of the APP0 "JFIF", APP1
            "Exif", APP2 "ICC_PROFILE", APP14 "Adobe" and APP1 XMP segments.
        adobe_transform: the APP14 Adobe transform flag (0 none/CMYK, 1 YCbCr, 2 YCCK), or
            None without that segment.
        comment: the first COM segment, or None.
        comments: every COM segment before the first scan.
        app_segments: (n, identifier, payload length) of every APPn segment.
    """

    width: int
    height: int
    components: tuple[JpegComponent, ...]
    subsampling: str
    mode: str
    arithmetic: bool
    hierarchical: bool
    precision: int
    quant_tables: dict[int, np.ndarray]
    quality: int | None
    quality_exact: bool
    restart_interval: int
    has_jfif: bool
    has_exif: bool
    has_icc: bool
    has_adobe: bool
    has_xmp: bool
    adobe_transform: int | None
    comment: bytes | None
    comments: tuple[bytes, ...]
    app_segments: tuple[tuple[int, str, int], ...]

    @property
    def num_components(self) -> int:
        return len(self.components)

    @property
    def sampling_factors(self) -> tuple[tuple[int, int], ...]:
        """(h, v) per component."""
        return tuple((c.h, c.v) for c in self.components)


@dataclass(frozen=True, eq=False)
class JpegCoefficients:
    """The quantized DCT coefficients of a JPEG file, as stored in it.

    Attributes:
        coefficients: per component, int16 [blocks_v, blocks_h, 8, 8]: block (by, bx) covers
            samples [8*by, 8*by + 8) x [8*bx, 8*bx + 8) of the component, and each block is in
            natural row-major order (``[u, v]`` = vertical frequency u, horizontal frequency v;
            de-zigzagged), not multiplied by the quantization table. The block grid is padded
            to whole MCUs as in the file: ``blocks_h = ceil(width / (8 * hmax)) * h`` and
            ``blocks_v = ceil(height / (8 * vmax)) * v``, so it may extend past
            ``component_sizes``. Padding blocks that the file does not code (those of a
            component coded in a single-component scan) are zero.
        quant_tables: per component, its uint16 [8, 8] table (natural order) as it was when
            the component's first scan started (multiply to dequantize).
        sampling_factors: (h, v) per component.
        component_ids: Ci per component.
        component_sizes: (height, width) in samples per component:
            ``ceil(height * v / vmax)``, ``ceil(width * h / hmax)``.
        width, height: image size in pixels.
        info: the header, as :func:`inspect_jpeg` reports it.
    """

    coefficients: tuple[np.ndarray, ...]
    quant_tables: tuple[np.ndarray, ...]
    sampling_factors: tuple[tuple[int, int], ...]
    component_ids: tuple[int, ...]
    component_sizes: tuple[tuple[int, int], ...]
    width: int
    height: int
    info: JpegInfo


def _subsampling_name(components: tuple[JpegComponent, ...]) -> str:
    if len(components) == 1:
        return "4:0:0"
    first = components[0]
    hmax = max(c.h for c in components)
    vmax = max(c.v for c in components)
    chroma = {(c.h, c.v) for c in components[1:3]}
    rest = components[3:]
    if (first.h, first.v) != (hmax, vmax) or len(chroma) != 1:
        return "other"
    if any((c.h, c.v) != (first.h, first.v) for c in rest):
        return "other"
    ch, cv = chroma.pop()
    if first.h % ch or first.v % cv:
        return "other"
    names = {(1, 1): "4:4:4", (2, 1): "4:2:2", (2, 2): "4:2:0", (1, 2): "4:4:0", (4, 1): "4:1:1"}
    return names.get((first.h // ch, first.v // cv), "other")


def _table(entry: tuple[int, bytes]) -> np.ndarray:
    """(precision bits, 64 little-endian uint16 in natural order) -> writable uint16 [8, 8]."""
    return np.frombuffer(entry[1], dtype="<u2").astype(np.uint16).reshape(8, 8)


def _info_from_dict(d: dict[str, Any]) -> JpegInfo:
    components = tuple(
        JpegComponent(id=c["id"], h=c["h"], v=c["v"], quant_table_id=c["tq"])
        for c in d["components"]
    )
    tables = {int(k): _table(v) for k, v in sorted(d["quant_tables"].items())}
    luma = tables.get(components[0].quant_table_id)
    chroma = None
    if len(components) > 1 and components[1].quant_table_id != components[0].quant_table_id:
        chroma = tables.get(components[1].quant_table_id)
        if chroma is None:
            luma = None
    quality, exact = _estimate_quality(luma, chroma)
    comments = tuple(d["comments"])
    return JpegInfo(
        width=d["width"],
        height=d["height"],
        components=components,
        subsampling=_subsampling_name(components),
        mode=d["mode"],
        arithmetic=d["arithmetic"],
        hierarchical=d["hierarchical"],
        precision=d["precision"],
        quant_tables=tables,
        quality=quality,
        quality_exact=exact,
        restart_interval=d["restart_interval"],
        has_jfif=d["has_jfif"],
        has_exif=d["has_exif"],
        has_icc=d["has_icc"],
        has_adobe=d["has_adobe"],
        has_xmp=d["has_xmp"],
        adobe_transform=None if d["adobe_transform"] < 0 else d["adobe_transform"],
        comment=comments[0] if comments else None,
        comments=comments,
        app_segments=tuple((n, ident, length) for n, _off, length, ident in d["app_segments"]),
    )


def _check_max_pixels(max_pixels: int) -> int:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)):
        raise TypeError(f"Expected `max_pixels` to be an int, got {type(max_pixels).__name__}")
    if max_pixels < 1:
        raise ValueError(f"Expected `max_pixels` >= 1, got {max_pixels}")
    return int(max_pixels)


def _as_path(source: object) -> str | bytes | None:
    """The path of a path-like source, None for bytes-like data; TypeError otherwise."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return None
    raise TypeError(
        "Expected `source` to be a path (str or os.PathLike) or the file's bytes (bytes, "
        f"bytearray or memoryview), got {type(source).__name__}"
    )


def _as_bytes(source: bytes | bytearray | memoryview) -> bytes:
    # bytes is passed as is; mutable buffers are copied so the parser, which runs without the
    # GIL, sees data no other thread can change.
    return source if isinstance(source, bytes) else bytes(source)


def _relabel(exc: Exception, path: str | bytes | None) -> Exception:
    """The same exception type, its message prefixed with the path of the file."""
    if path is None:
        return exc
    name = os.fsdecode(path)
    return type(exc)(f"{name}: {exc}")


def inspect_jpeg(source: Source, *, max_pixels: int = MAX_PIXELS) -> JpegInfo:
    """Describe a JPEG file from its markers, without decoding the image.

    Only the bytes up to the first scan header are read (of a file: in chunks, as needed).

    Args:
        source: a path (str or os.PathLike) or the file's contents (bytes, bytearray,
            memoryview).
        max_pixels: largest accepted ``width * height``.

    Returns:
        A :class:`JpegInfo`.

    Raises:
        TypeError: ``source`` is of another type.
        ValueError: malformed data (the message names the byte offset and the reason), or a
            frame larger than ``max_pixels``.
        NotImplementedError: a frame of height 0 (defined by a DNL marker) or with more than
            4 components.
        OSError: the file cannot be read.

    Example:
        >>> import io
        >>> from PIL import Image
        >>> buf = io.BytesIO()
        >>> Image.new("RGB", (40, 30)).save(buf, "JPEG", quality=90)
        >>> info = inspect_jpeg(buf.getvalue())
        >>> (info.width, info.height, info.subsampling, info.quality, info.quality_exact)
        (40, 30, '4:2:0', 90, True)
    """
    path = _as_path(source)
    max_pixels = _check_max_pixels(max_pixels)
    native = _ext.cpp()
    try:
        if path is None:
            d = native.jpeg_inspect(_as_bytes(source), max_pixels, False)  # type: ignore[arg-type]
        else:
            with open(path, "rb") as f:
                data = f.read(_INSPECT_CHUNK)
                eof = len(data) < _INSPECT_CHUNK
                while True:
                    d = native.jpeg_inspect(data, max_pixels, not eof)
                    if d is not None:
                        break
                    more = f.read(len(data))
                    eof = len(more) < len(data)
                    data += more
    except (ValueError, NotImplementedError) as exc:
        raise _relabel(exc, path) from None
    return _info_from_dict(d)


def read_coefficients(source: Source, *, max_pixels: int = MAX_PIXELS) -> JpegCoefficients:
    """Decode the quantized DCT coefficients of every component of a JPEG file.

    Huffman-coded sequential (baseline and extended, 8- or 12-bit) and progressive files are
    decoded: any sampling factors 1..4, interleaved and single-component scans, restart
    markers. The result is what the file stores: dequantize by multiplying with
    ``quant_tables[c]``; the orthonormal 2-D IDCT of the dequantized block (+128 for 8-bit
    data) gives the samples up to libjpeg's integer rounding.

    Args:
        source: a path (str or os.PathLike) or the file's contents (bytes, bytearray,
            memoryview).
        max_pixels: largest accepted ``width * height``.

    Returns:
        A :class:`JpegCoefficients`.

    Raises:
        TypeError: ``source`` is of another type.
        ValueError: malformed or truncated data, including corrupt entropy-coded data that
            libjpeg would decode with a warning (the message names the byte offset and the
            reason), or a frame larger than ``max_pixels``.
        NotImplementedError: arithmetic-coded, lossless or hierarchical files.
        OSError: the file cannot be read.

    Example:
        >>> import io
        >>> from PIL import Image
        >>> buf = io.BytesIO()
        >>> Image.new("L", (20, 10), 200).save(buf, "JPEG", quality=90)
        >>> coefs = read_coefficients(buf.getvalue())
        >>> coefs.coefficients[0].shape
        (2, 3, 8, 8)
        >>> int(coefs.coefficients[0][0, 0, 0, 0] * coefs.quant_tables[0][0, 0]) // 8 + 128
        200
    """
    path = _as_path(source)
    max_pixels = _check_max_pixels(max_pixels)
    native = _ext.cpp()
    try:
        if path is None:
            data = _as_bytes(source)  # type: ignore[arg-type]
        else:
            with open(path, "rb") as f:
                data = f.read()
        d = native.jpeg_read_coefficients(data, max_pixels)
    except (ValueError, NotImplementedError) as exc:
        raise _relabel(exc, path) from None
    info = _info_from_dict(d)
    return JpegCoefficients(
        coefficients=tuple(d["coefficients"]),
        quant_tables=tuple(_table(t) for t in d["component_tables"]),
        sampling_factors=info.sampling_factors,
        component_ids=tuple(c.id for c in info.components),
        component_sizes=tuple((c["height"], c["width"]) for c in d["components"]),
        width=info.width,
        height=info.height,
        info=info,
    )
