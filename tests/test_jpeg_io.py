"""inspect_jpeg / read_coefficients against files Pillow (libjpeg-turbo) writes, and malformed
data that must raise cleanly."""

from __future__ import annotations

import io
import pathlib
import threading

import numpy as np
import pytest
from PIL import Image, ImageCms

from fastperc import jpeg_io
from fastperc.jpeg_io import (
    MAX_PIXELS,
    JpegComponent,
    inspect_jpeg,
    read_coefficients,
)

FUZZ_DIR = pathlib.Path(__file__).resolve().parent.parent / "fuzz"


def encode(img: np.ndarray | Image.Image, **kwargs) -> bytes:
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kwargs)
    return buf.getvalue()


def luma_plane(data: bytes) -> np.ndarray:
    """Pillow's decode of the first component (Y of a YCbCr file, or the grey plane)."""
    im = Image.open(io.BytesIO(data))
    if im.mode != "L":
        im.draft("YCbCr", im.size)
        assert im.mode == "YCbCr"
        return np.asarray(im)[..., 0]
    return np.asarray(im)


def idct_matrix() -> np.ndarray:
    """Orthonormal 8-point DCT-II matrix C (coefficients = C @ x), float64."""
    k = np.arange(8)[:, None]
    n = np.arange(8)[None, :]
    c = np.cos(np.pi * (2 * n + 1) * k / 16) * np.sqrt(2 / 8)
    c[0] /= np.sqrt(2)
    return c


def float_decode(coefs: np.ndarray, table: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Dequantize, float64 orthonormal IDCT, +128, round, clip; cropped to size (h, w)."""
    c = idct_matrix()
    deq = coefs.astype(np.float64) * table.astype(np.float64)
    pix = np.einsum("ui,yxuv,vj->yxij", c, deq, c) + 128.0
    bv, bh = coefs.shape[:2]
    plane = pix.transpose(0, 2, 1, 3).reshape(bv * 8, bh * 8)
    return np.clip(np.round(plane), 0, 255)[: size[0], : size[1]]


@pytest.fixture(scope="module")
def small(photos) -> np.ndarray:
    """An awkward crop (not a multiple of 8 or 16) of a real photo."""
    return np.ascontiguousarray(photos["astronaut"][37:140, 11:150])


@pytest.fixture(scope="module")
def tiny_jpeg(photos) -> bytes:
    """A small 4:2:0 file with restart markers, for the malformed-data corpus."""
    return encode(photos["coffee"][100:121, 200:230], quality=60, restart_marker_blocks=2)


# ---------------------------------------------------------------------------------------------
# inspect_jpeg
# ---------------------------------------------------------------------------------------------


def test_quality_recovered_for_every_q(small):
    for q in range(1, 101):
        for img in (small, small[..., 0]):
            data = encode(img, quality=q)
            info = inspect_jpeg(data)
            assert (info.quality, info.quality_exact) == (q, True), (q, img.ndim)
            # The tables are libjpeg's, and equal Pillow's. Pillow de-zigzags them with its
            # zigzag_index (natural row-major order), as we do.
            pil = Image.open(io.BytesIO(data)).quantization
            assert sorted(pil) == sorted(info.quant_tables)
            for tid, table in info.quant_tables.items():
                assert table.dtype == np.uint16 and table.shape == (8, 8)
                np.testing.assert_array_equal(table.reshape(64), pil[tid])
                base = jpeg_io._LUMA_BASE if tid == 0 else jpeg_io._CHROMA_BASE
                np.testing.assert_array_equal(table.reshape(64), jpeg_io._ijg_table(base, q))


def test_quality_estimate_of_other_tables(small):
    # Tables that are no scaled Annex K table: flagged inexact, best fit close to the source.
    luma = jpeg_io._ijg_table(jpeg_io._LUMA_BASE, 80).reshape(8, 8).copy()
    chroma = jpeg_io._ijg_table(jpeg_io._CHROMA_BASE, 80).reshape(8, 8).copy()
    luma[7, 7] += 3
    data = encode(small, qtables=[luma.reshape(64).tolist(), chroma.reshape(64).tolist()])
    info = inspect_jpeg(data)
    np.testing.assert_array_equal(info.quant_tables[0], luma)
    assert not info.quality_exact
    assert abs(info.quality - 80) <= 2
    # A flat table.
    flat = [5] * 64
    info = inspect_jpeg(encode(small, qtables=[flat, flat]))
    assert not info.quality_exact and 1 <= info.quality <= 100


@pytest.mark.parametrize(
    ("subsampling", "name", "factors"),
    [(0, "4:4:4", (1, 1)), (1, "4:2:2", (2, 1)), (2, "4:2:0", (2, 2))],
)
def test_subsampling_and_components(small, subsampling, name, factors):
    info = inspect_jpeg(encode(small, quality=85, subsampling=subsampling))
    assert info.subsampling == name
    assert info.components == (
        JpegComponent(1, *factors, 0),
        JpegComponent(2, 1, 1, 1),
        JpegComponent(3, 1, 1, 1),
    )
    assert info.sampling_factors == (factors, (1, 1), (1, 1))
    assert (info.width, info.height) == (small.shape[1], small.shape[0])
    assert (info.mode, info.arithmetic, info.hierarchical, info.precision) == (
        "baseline",
        False,
        False,
        8,
    )
    assert info.has_jfif and not (info.has_exif or info.has_icc or info.has_adobe)
    assert (info.restart_interval, info.comment, info.num_components) == (0, None, 3)


def test_greyscale_and_cmyk(small):
    info = inspect_jpeg(encode(small[..., 1], quality=70))
    assert info.components == (JpegComponent(1, 1, 1, 0),)
    assert info.subsampling == "4:0:0" and sorted(info.quant_tables) == [0]
    assert info.quality == 70 and info.quality_exact
    cmyk = Image.fromarray(small).convert("CMYK")
    info = inspect_jpeg(encode(cmyk, quality=70))
    assert info.num_components == 4 and info.subsampling == "4:4:4"
    assert info.has_adobe and info.adobe_transform == 0
    assert info.quality == 70 and info.quality_exact


def test_subsampling_names():
    def comps(*hv):
        return tuple(JpegComponent(i + 1, h, v, 0) for i, (h, v) in enumerate(hv))

    name = jpeg_io._subsampling_name
    assert name(comps((1, 2), (1, 1), (1, 1))) == "4:4:0"
    assert name(comps((4, 1), (1, 1), (1, 1))) == "4:1:1"
    assert name(comps((2, 2), (1, 1), (1, 1), (2, 2))) == "4:2:0"
    assert name(comps((2, 2), (1, 1), (2, 1))) == "other"
    assert name(comps((1, 1), (2, 2), (2, 2))) == "other"
    assert name(comps((3, 1), (2, 1), (2, 1))) == "other"
    assert name(comps((4, 4), (1, 1), (1, 1))) == "other"
    assert name(comps((2, 2))) == "4:0:0"


def test_metadata_segments(small):
    exif = Image.Exif()
    exif[0x010E] = "a description"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(small, exif=exif, icc_profile=icc, comment=b"hello \xff world")
    info = inspect_jpeg(data)
    assert info.has_jfif and info.has_exif and info.has_icc and not info.has_adobe
    assert info.comment == b"hello \xff world" and info.comments == (info.comment,)
    idents = [(n, ident) for n, ident, _ in info.app_segments]
    assert (1, "Exif") in idents and (2, "ICC_PROFILE") in idents
    assert inspect_jpeg(encode(small, exif=exif)).has_icc is False


def test_large_header_read_in_chunks(small, tmp_path):
    # An ICC profile of 200 kB spans several APP2 segments, past the first chunk read from a file.
    data = encode(small, icc_profile=bytes(range(256)) * 800, quality=42)
    path = tmp_path / "big header.jpg"
    path.write_bytes(data)
    from_file = inspect_jpeg(path)
    from_bytes = inspect_jpeg(data)
    assert from_file.has_icc and from_file.quality == 42
    assert from_file.app_segments == from_bytes.app_segments
    assert sum(1 for n, _, _ in from_file.app_segments if n == 2) == 4


@pytest.mark.parametrize("kind", ["str", "path", "bytes", "bytearray", "memoryview"])
def test_source_types(small, tmp_path, kind):
    data = encode(small, quality=33)
    path = tmp_path / "x.jpg"
    path.write_bytes(data)
    source = {
        "str": str(path),
        "path": path,
        "bytes": data,
        "bytearray": bytearray(data),
        "memoryview": memoryview(bytearray(data))[0:],
    }[kind]
    assert inspect_jpeg(source).quality == 33
    ref = read_coefficients(data)
    got = read_coefficients(source)
    for a, b in zip(ref.coefficients, got.coefficients, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [None, 3, 2.5, ["a.jpg"], np.zeros(10, np.uint8)])
def test_source_type_errors(bad):
    with pytest.raises(TypeError, match="Expected `source` to be a path"):
        inspect_jpeg(bad)
    with pytest.raises(TypeError, match="Expected `source` to be a path"):
        read_coefficients(bad)


def test_max_pixels(small):
    data = encode(small)
    n = small.shape[0] * small.shape[1]
    assert inspect_jpeg(data, max_pixels=n).width == small.shape[1]
    with pytest.raises(ValueError, match=rf"exceeds the limit of {n - 1} pixels"):
        inspect_jpeg(data, max_pixels=n - 1)
    with pytest.raises(ValueError, match="exceeds the limit"):
        read_coefficients(data, max_pixels=n - 1)
    with pytest.raises(ValueError, match="`max_pixels` >= 1"):
        inspect_jpeg(data, max_pixels=0)
    with pytest.raises(TypeError, match="`max_pixels` to be an int"):
        read_coefficients(data, max_pixels=1e9)
    assert MAX_PIXELS == 1 << 28
    assert jpeg_io._ext.cpp().JPEG_DEFAULT_MAX_PIXELS == MAX_PIXELS


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "not a jpeg.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(ValueError, match=r"not a jpeg\.png: invalid JPEG data at byte offset 0: "):
        inspect_jpeg(path)
    with pytest.raises(ValueError, match=r"not a jpeg\.png: .*expected SOI marker 0xFFD8"):
        read_coefficients(str(path))
    with pytest.raises(FileNotFoundError):
        inspect_jpeg(tmp_path / "missing.jpg")


# ---------------------------------------------------------------------------------------------
# read_coefficients
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("subsampling", [0, 1, 2])
def test_coefficient_layout(small, subsampling):
    h, w = small.shape[:2]  # 103 x 139
    coefs = read_coefficients(encode(small, quality=80, subsampling=subsampling))
    hs, vs = {0: (1, 1), 1: (2, 1), 2: (2, 2)}[subsampling]
    mx, my = -(-w // (8 * hs)), -(-h // (8 * vs))
    assert coefs.sampling_factors == ((hs, vs), (1, 1), (1, 1))
    assert coefs.component_ids == (1, 2, 3)
    assert (coefs.width, coefs.height) == (w, h)
    assert [c.shape for c in coefs.coefficients] == [
        (my * vs, mx * hs, 8, 8),
        (my, mx, 8, 8),
        (my, mx, 8, 8),
    ]
    assert coefs.component_sizes == ((h, w), (-(-h // vs), -(-w // hs)), (-(-h // vs), -(-w // hs)))
    assert all(c.dtype == np.int16 for c in coefs.coefficients)
    np.testing.assert_array_equal(coefs.quant_tables[0], coefs.info.quant_tables[0])
    np.testing.assert_array_equal(coefs.quant_tables[2], coefs.info.quant_tables[1])
    assert coefs.info.quality == 80


@pytest.mark.parametrize("quality", [5, 50, 75, 95])
@pytest.mark.parametrize("subsampling", [0, 2])
def test_dc_is_the_block_mean(photos, quality, subsampling):
    img = photos["chelsea"][:160, :240]
    data = encode(img, quality=quality, subsampling=subsampling)
    coefs = read_coefficients(data)
    y = luma_plane(data).astype(np.float64)
    means = y.reshape(20, 8, 30, 8).mean(axis=(1, 3))
    dc = coefs.coefficients[0][:20, :30, 0, 0] * float(coefs.quant_tables[0][0, 0]) / 8 + 128
    # Equal up to the rounding and clipping of the decoded samples.
    assert np.abs(dc - means).mean() < 0.6
    assert np.abs(dc - means).max() < 8


@pytest.mark.parametrize("quality", [1, 10, 50, 75, 90, 100])
@pytest.mark.parametrize("kind", ["grey", "444"])
def test_float_idct_matches_pillow(photos, quality, kind):
    img = photos["astronaut"][50:251, 60:301]  # 201 x 241: partial blocks on both edges
    if kind == "grey":
        img = np.asarray(Image.fromarray(img).convert("L"))
    data = encode(img, quality=quality, subsampling=0)
    coefs = read_coefficients(data)
    plane = float_decode(coefs.coefficients[0], coefs.quant_tables[0], coefs.component_sizes[0])
    diff = np.abs(plane - luma_plane(data))
    assert diff.max() <= 1, (diff.max(), (diff > 1).sum())
    assert (diff == 0).mean() > 0.95


@pytest.mark.parametrize("subsampling", [0, 1, 2, "grey"])
def test_progressive_equals_sequential(small, subsampling):
    img, kw = (
        (small[..., 0], {}) if subsampling == "grey" else (small, {"subsampling": subsampling})
    )
    base = encode(img, quality=77, **kw)
    prog = encode(img, quality=77, progressive=True, **kw)
    info = inspect_jpeg(prog)
    assert info.mode == "progressive" and info.quality == 77 and info.quality_exact
    a, b = read_coefficients(base), read_coefficients(prog)
    for x, y in zip(a.coefficients, b.coefficients, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(
    "option",
    [{"restart_marker_blocks": 1}, {"restart_marker_blocks": 7}, {"restart_marker_rows": 1}],
    ids=["blocks1", "blocks7", "rows1"],
)
@pytest.mark.parametrize("progressive", [False, True])
def test_restart_intervals(small, option, progressive):
    plain = read_coefficients(encode(small, quality=60))
    data = encode(small, quality=60, progressive=progressive, **option)
    info = inspect_jpeg(data)
    mcus_per_row = -(-small.shape[1] // 16)
    want = option.get("restart_marker_blocks", mcus_per_row)
    assert info.restart_interval == want
    assert data.count(b"\xff\xd0") > 0
    got = read_coefficients(data)
    for x, y in zip(plain.coefficients, got.coefficients, strict=True):
        np.testing.assert_array_equal(x, y)


def test_twelve_bit_extended_frame(small):
    # Relabel a baseline frame as extended (SOF1) with 12-bit samples: same entropy coding.
    data = bytearray(encode(small, quality=90))
    sof = data.index(b"\xff\xc0")
    data[sof + 1] = 0xC1
    data[sof + 4] = 12
    info = inspect_jpeg(data)
    assert (info.mode, info.precision) == ("extended", 12)
    ref = read_coefficients(encode(small, quality=90))
    got = read_coefficients(data)
    for x, y in zip(ref.coefficients, got.coefficients, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(
    ("marker", "mode", "arithmetic", "hierarchical", "what"),
    [
        (0xC9, "extended", True, False, "arithmetic-coded"),
        (0xCA, "progressive", True, False, "arithmetic-coded"),
        (0xC3, "lossless", False, False, "lossless"),
        (0xC5, "extended", False, True, "hierarchical"),
    ],
)
def test_unsupported_processes(small, marker, mode, arithmetic, hierarchical, what):
    # Relabel the frame header of a file Pillow wrote (progressive for the progressive process).
    progressive = mode == "progressive"
    data = bytearray(encode(small, progressive=progressive))
    data[data.index(b"\xff\xc2" if progressive else b"\xff\xc0") + 1] = marker
    info = inspect_jpeg(data)
    assert (info.mode, info.arithmetic, info.hierarchical) == (mode, arithmetic, hierarchical)
    with pytest.raises(NotImplementedError, match=f"{what}.*JPEG.*is not supported"):
        read_coefficients(data)


def test_threads_share_nothing(small):
    datas = [encode(small, quality=q) for q in (20, 40, 60, 80)]
    refs = [read_coefficients(d).coefficients[0] for d in datas]
    results: dict[int, np.ndarray] = {}

    def work(i):
        for _ in range(5):
            results[i] = read_coefficients(datas[i]).coefficients[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, ref in enumerate(refs):
        np.testing.assert_array_equal(results[i], ref)


# ---------------------------------------------------------------------------------------------
# Malformed data: ValueError (or NotImplementedError), never a crash or a hang
# ---------------------------------------------------------------------------------------------


def parse_both(data) -> None:
    """Run both entry points; only ValueError/NotImplementedError may escape."""
    for fn in (inspect_jpeg, read_coefficients):
        try:
            fn(data)
        except (ValueError, NotImplementedError):
            pass


def test_truncated_at_every_offset(tiny_jpeg):
    data = tiny_jpeg
    sos = data.index(b"\xff\xda")
    sos_end = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
    read_coefficients(data)
    for n in range(len(data)):
        with pytest.raises(ValueError, match="byte offset"):
            read_coefficients(data[:n])
        if n < sos_end:
            with pytest.raises(ValueError, match="byte offset"):
                inspect_jpeg(data[:n])
        else:
            assert inspect_jpeg(data[:n]).width == 30


def test_flipped_bytes(tiny_jpeg):
    rng = np.random.default_rng(0)
    for off in range(len(tiny_jpeg)):
        for value in (0x00, 0xFF, int(rng.integers(256)), tiny_jpeg[off] ^ 0x10):
            data = bytearray(tiny_jpeg)
            data[off] = value
            parse_both(bytes(data))


def test_random_garbage_after_soi():
    rng = np.random.default_rng(1)
    for _ in range(300):
        n = int(rng.integers(0, 200))
        parse_both(b"\xff\xd8" + rng.integers(0, 256, n, dtype=np.uint8).tobytes())


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def replace_segment(data: bytes, marker: int, new: bytes) -> bytes:
    start = data.index(bytes([0xFF, marker]))
    length = int.from_bytes(data[start + 2 : start + 4], "big")
    return data[:start] + new + data[start + 2 + length :]


def set_size(data: bytes, width: int, height: int) -> bytes:
    out = bytearray(data)
    sof = out.index(b"\xff\xc0")
    out[sof + 5 : sof + 7] = height.to_bytes(2, "big")
    out[sof + 7 : sof + 9] = width.to_bytes(2, "big")
    return bytes(out)


def test_malformed_cases(tiny_jpeg):
    d = tiny_jpeg
    soi, rest = d[:2], d[2:]
    cases = {
        "empty": (b"", "data ends before the SOI"),
        "not jpeg": (b"GIF89a" + bytes(20), "expected SOI"),
        "soi only": (soi, "data ends before the next marker"),
        "zero-length segment": (soi + b"\xff\xe0\x00\x00" + rest, "has length 0"),
        "length one": (soi + b"\xff\xfe\x00\x01" + rest, "has length 1"),
        "huge length": (soi + b"\xff\xe1\xff\xff" + rest[:100], "runs past the end"),
        "garbage between segments": (soi + b"\x00" + rest, "expected a marker"),
        "stuffed byte outside scan": (soi + b"\xff\x00" + rest, "stuffed byte"),
        "reserved marker": (soi + b"\xff\x02" + rest, "reserved marker 0xFF02"),
        "second SOI": (soi + soi + rest, "second SOI"),
        "no SOF": (replace_segment(d, 0xC0, b""), "SOS before the frame header"),
        "no SOS": (d[: d.index(b"\xff\xda")] + b"\xff\xd9", "EOI before any scan"),
        "no EOI": (d[:-2], "data ends before the next marker"),
        "duplicate SOF": (
            d.replace(b"\xff\xda", d[d.index(b"\xff\xc0") :][:19] + b"\xff\xda", 1),
            "second frame header",
        ),
        "undefined quant table": (replace_segment(d, 0xDB, b""), "quantization table 0"),
        "undefined huffman table": (replace_segment(d, 0xC4, b""), "Huffman table 0, which"),
        "zero width": (set_size(d, 0, 21), "image width is 0"),
        "absurd size": (set_size(d, 65535, 65535), "exceeds the limit of 268435456 pixels"),
        "bad sampling": (d.replace(b"\x01\x22\x00", b"\x01\x52\x00", 1), "sampling factors 5x2"),
        "bad DRI": (replace_segment(d, 0xDD, segment(0xDD, b"\x00")), "DRI segment length 3"),
        "DQT id 5": (replace_segment(d, 0xDB, segment(0xDB, b"\x05" + bytes(64))), "table id 5"),
        "short DQT": (replace_segment(d, 0xDB, segment(0xDB, b"\x00" + bytes(30))), "too short"),
        "bad huffman lengths": (
            replace_segment(d, 0xC4, segment(0xC4, b"\x00\x03" + bytes(15) + b"\x00\x01\x02")),
            "overflow the code space",
        ),
        "wrong restart marker": (d.replace(b"\xff\xd0", b"\xff\xd3", 1), "expected restart marker"),
        "scan data cut": (d[: d.index(b"\xff\xd0") - 4] + b"\xff\xd9", "ends in MCU|exhausted"),
    }
    for name, (data, message) in cases.items():
        with pytest.raises(ValueError, match=message):
            read_coefficients(data)
        if name not in ("no EOI", "wrong restart marker", "scan data cut"):
            with pytest.raises(ValueError, match=message):
                inspect_jpeg(data)


def test_dimensions_need_scan_data(tiny_jpeg):
    # A legal but large frame in a tiny file is described, but nothing is allocated for it.
    data = set_size(tiny_jpeg, 16000, 16000)
    assert inspect_jpeg(data).width == 16000
    with pytest.raises(ValueError, match="blocks but only .* bytes of scan data follow"):
        read_coefficients(data)
    with pytest.raises(NotImplementedError, match="height 0"):
        inspect_jpeg(set_size(tiny_jpeg, 30, 0))


def fuzz_files(sub: str) -> list[pathlib.Path]:
    folder = FUZZ_DIR / sub
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def test_fuzz_seed_corpus_decodes():
    seeds = fuzz_files("corpus")
    assert len(seeds) >= 10
    for path in seeds:
        info = inspect_jpeg(path)
        coefs = read_coefficients(path)
        assert coefs.width == info.width, path.name


def test_fuzz_crashers_raise_cleanly():
    # Inputs the fuzzers once found interesting (see fuzz/README.md); empty while none were.
    for path in fuzz_files("crashers"):
        parse_both(path.read_bytes())
