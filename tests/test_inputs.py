"""fastperc.inputs: every source kind, Pillow's mode conversions, errors, order, shards."""

from __future__ import annotations

import io
import os
import struct
import tarfile
import threading
import time
import warnings
import zipfile
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from fastperc import inputs
from fastperc.inputs import ImageReadError, SkippedImageWarning, open_images

RNG = np.random.default_rng(1234)


def _rgb(h: int, w: int) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _peer(path_or_bytes) -> np.ndarray:
    """clean-fid's / pytorch-fid's decoding."""
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # P + byte transparency warns in convert()
        return np.array(Image.open(src).convert("RGB"))


@pytest.fixture
def tree(tmp_path):
    """A nested folder: upper-case extensions, mixed sizes, hidden files and non-images."""
    root = tmp_path / "imgs"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "__MACOSX").mkdir()
    files = {
        "a.png": (9, 7),
        "B.PNG": (5, 11),
        "c.JPG": (16, 16),
        "d.jpeg": (8, 13),
        "sub/e.webp": (10, 6),
        "sub/f.BMP": (3, 4),
        "sub/deeper/g.tif": (7, 7),
        "sub/deeper/h.TIFF": (12, 5),
    }
    for name, (h, w) in files.items():
        Image.fromarray(_rgb(h, w)).save(root / name)
    Image.fromarray(_rgb(4, 4)).save(root / ".hidden" / "x.png")
    Image.fromarray(_rgb(4, 4)).save(root / "__MACOSX" / "y.png")
    Image.fromarray(_rgb(4, 4)).save(root / "._z.png")
    (root / "notes.txt").write_text("not an image")
    return root, sorted(files)


def _records(s, **kw):
    return [(r.name, r.image) for r in s]


def _check_record_arrays(recs):
    for r in recs:
        assert r.image.dtype == np.uint8 and r.image.ndim == 3 and r.image.shape[2] == 3
        assert r.image.flags.c_contiguous and r.image.flags.writeable


# ---------------------------------------------------------------------------------------------
# folders, files, archives
# ---------------------------------------------------------------------------------------------


def test_folder_nested_sorted_mixed_sizes(tree):
    root, names = tree
    s = open_images(root, workers=3)
    assert len(s) == s.count == len(names) and s.kind == "folder"
    recs = list(s)
    assert [r.name for r in recs] == names
    assert [r.index for r in recs] == list(range(len(names)))
    _check_record_arrays(recs)
    for r in recs:
        np.testing.assert_array_equal(r.image, _peer(root / r.name))
    assert {r.image.shape for r in recs} == {_peer(root / n).shape for n in names}
    assert s.skipped == []
    assert "folder" in s.describe() and str(len(names)) in s.describe()


def test_folder_not_recursive(tree):
    root, names = tree
    s = open_images(root, recursive=False)
    assert [r.name for r in s] == [n for n in names if "/" not in n]


def test_order_independent_of_workers(tree):
    root, _ = tree
    one = _records(open_images(root, workers=1))
    four = _records(open_images(root, workers=4))
    assert [n for n, _ in one] == [n for n, _ in four]
    for (_, x), (_, y) in zip(one, four):
        np.testing.assert_array_equal(x, y)


def test_single_file_and_path_list(tree):
    root, names = tree
    s = open_images(str(root / "c.JPG"))
    assert len(s) == 1
    (r,) = list(s)
    np.testing.assert_array_equal(r.image, _peer(root / "c.JPG"))
    paths = [root / names[3], str(root / names[0])]
    recs = list(open_images(paths, workers=2))
    assert [r.name for r in recs] == [str(p) for p in paths]
    np.testing.assert_array_equal(recs[0].image, _peer(root / names[3]))


def _zip(root, names, dest, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(dest, "w", compression) as zf:
        for n in reversed(names):  # stored out of order: the reader sorts
            zf.write(root / n, n)
        zf.writestr("sub/readme.txt", "x")
        zf.writestr("__MACOSX/sub/._e.webp", "x")
        zf.writestr("dir/", "")
    return dest


def test_zip(tree, tmp_path):
    root, names = tree
    for comp in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        s = open_images(_zip(root, names, tmp_path / f"x{comp}.zip", comp), workers=2)
        assert len(s) == len(names) and s.kind == "zip"
        recs = list(s)
        assert [r.name for r in recs] == names
        for r in recs:
            np.testing.assert_array_equal(r.image, _peer(root / r.name))


@pytest.mark.parametrize("suffix, mode", [(".tar", "w"), (".tar.gz", "w:gz"), (".tgz", "w:gz")])
def test_tar(tree, tmp_path, suffix, mode):
    root, names = tree
    dest = tmp_path / f"x{suffix}"
    with tarfile.open(dest, mode) as tf:
        for n in names:  # archive order is the order read
            tf.add(root / n, n)
        info = tarfile.TarInfo("notes.txt")
        tf.addfile(info, io.BytesIO(b""))
    s = open_images(dest, workers=3)
    recs = list(s)
    assert s.kind == "tar" and len(s) == len(names)
    assert [r.name for r in recs] == names
    for r in recs:
        np.testing.assert_array_equal(r.image, _peer(root / r.name))
    assert [r.name for r in open_images(dest, count=3)] == names[:3]


def test_npz_npy(tmp_path):
    arr = RNG.integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)
    labels = np.arange(5)
    np.savez(tmp_path / "ref.npz", arr, labels)  # arr_0, arr_1: an ADM reference batch
    np.savez_compressed(tmp_path / "c.npz", images=arr.transpose(0, 3, 1, 2))
    np.save(tmp_path / "a.npy", arr)
    for src, key in ((tmp_path / "ref.npz", None), (tmp_path / "c.npz", "images"),
                     (tmp_path / "c.npz", None), (tmp_path / "a.npy", None)):  # fmt: skip
        s = open_images(src, key=key)
        assert len(s) == 5
        got = np.stack([r.image for r in s])
        np.testing.assert_array_equal(got, arr)
    assert [r.name for r in open_images(tmp_path / "ref.npz", count=2)] == ["arr_0[0]", "arr_0[1]"]
    with pytest.raises(ValueError, match=r"`key`.*'nope'.*arr_0"):
        open_images(tmp_path / "ref.npz", key="nope")
    with pytest.raises(ValueError, match="shape"):
        open_images(tmp_path / "ref.npz", key="arr_1")


# ---------------------------------------------------------------------------------------------
# Pillow modes: the same RGB as convert("RGB")
# ---------------------------------------------------------------------------------------------


def _png16_rgb(h: int, w: int) -> tuple[bytes, np.ndarray]:
    """A 16-bit RGB PNG (Pillow cannot write one) and its samples."""

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    v = RNG.integers(0, 65536, (h, w, 3)).astype(">u2")
    raw = b"".join(b"\x00" + v[y].tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
    return png + chunk(b"IEND", b""), v.astype(np.uint16)


def _mode_image(mode: str) -> Image.Image:
    h, w = 5, 7
    if mode in ("I;16", "I", "F"):
        dt = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
        v = RNG.integers(-300 if mode != "I;16" else 0, 70000 if mode == "I;16" else 600, (h, w))
        im = Image.fromarray(v.astype(dt))
        assert im.mode == mode
        return im
    if mode == "P" or mode == "PA":
        im = Image.fromarray(RNG.integers(0, 4, (h, w), dtype=np.uint8), "L").convert("P")
        im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 99, 199])
        if mode == "PA":
            im = im.convert("PA")
            im.putalpha(Image.fromarray(RNG.integers(0, 256, (h, w), dtype=np.uint8)))
        return im
    bands = len(Image.new(mode, (1, 1)).getbands())
    data = RNG.integers(0, 256, (h, w, bands), dtype=np.uint8)
    if mode == "1":
        return Image.fromarray(data[:, :, 0] > 127)
    return Image.frombytes(mode, (w, h), data.tobytes())


@pytest.mark.parametrize(
    "mode, fmt, save_kw",
    [
        ("1", "PNG", {}),
        ("L", "PNG", {}),
        ("LA", "PNG", {}),
        ("RGBA", "PNG", {}),
        ("RGBA", "WEBP", {"lossless": True}),
        ("P", "PNG", {}),
        ("P", "PNG", {"transparency": 1}),
        ("P", "PNG", {"transparency": bytes([0, 128, 255])}),
        ("I;16", "PNG", {}),
        ("I;16", "TIFF", {}),
        ("I", "TIFF", {}),
        ("F", "TIFF", {}),
        ("CMYK", "TIFF", {}),
        ("CMYK", "JPEG", {}),
        ("L", "JPEG", {}),
        ("1", "BMP", {}),
    ],
)
def test_mode_conversions_match_pillow(tmp_path, mode, fmt, save_kw):
    path = tmp_path / f"x.{fmt.lower()}"
    _mode_image(mode).save(path, fmt, **save_kw)
    with Image.open(path) as im:
        assert im.mode == mode or fmt == "WEBP"
    (r,) = list(open_images(path))
    np.testing.assert_array_equal(r.image, _peer(path))
    assert r.image.flags.c_contiguous and r.image.dtype == np.uint8


@pytest.mark.parametrize("mode", ["PA", "LA", "RGBA", "YCbCr", "HSV", "LAB", "I;16", "F", "1"])
def test_in_memory_pil_modes_match_pillow(mode):
    im = _mode_image(mode)  # PA cannot be written to a file; in memory it can be passed
    (r,) = list(open_images([im]))
    np.testing.assert_array_equal(r.image, np.array(im.convert("RGB")))


def test_sixteen_bit_clip_and_scale(tmp_path):
    v = np.array([[0, 100, 255, 256, 1000, 65535]], dtype=np.uint16)
    Image.fromarray(v).save(tmp_path / "g.png")
    (r,) = list(open_images(tmp_path / "g.png"))
    np.testing.assert_array_equal(r.image[..., 0], [[0, 100, 255, 255, 255, 255]])  # clipped
    (r,) = list(open_images(tmp_path / "g.png", high_bit_depth="scale"))
    np.testing.assert_array_equal(r.image[..., 0], np.round(v.astype(np.float64) * 255 / 65535))
    assert r.image.shape == (1, 6, 3) and (r.image == r.image[..., :1]).all()
    png, samples = _png16_rgb(3, 4)  # 16-bit RGB: Pillow keeps the high byte
    (tmp_path / "c.png").write_bytes(png)
    (r,) = list(open_images(tmp_path / "c.png"))
    np.testing.assert_array_equal(r.image, samples >> 8)
    np.testing.assert_array_equal(r.image, _peer(tmp_path / "c.png"))
    with pytest.raises(ValueError, match="high_bit_depth"):
        open_images(tmp_path, high_bit_depth="rescale")


# ---------------------------------------------------------------------------------------------
# arrays, tensors, datasets, generators
# ---------------------------------------------------------------------------------------------


def test_tensors_and_arrays():
    x = RNG.integers(0, 256, (3, 5, 6, 3), dtype=np.uint8)
    want = list(x)
    sources = [
        x,
        np.ascontiguousarray(x.transpose(0, 3, 1, 2)),  # NCHW numpy
        torch.from_numpy(x).permute(0, 3, 1, 2),  # NCHW, non-contiguous
        torch.from_numpy(x),  # NHWC tensor
        x[::-1][::-1],
    ]
    for src in sources:
        s = open_images(src)
        assert len(s) == 3
        recs = list(s)
        _check_record_arrays(recs)
        for r, w in zip(recs, want):
            np.testing.assert_array_equal(r.image, w)
    (r,) = list(open_images(x[1]))  # one HWC image
    np.testing.assert_array_equal(r.image, x[1])
    (r,) = list(open_images(torch.from_numpy(x[1]).permute(2, 0, 1)))  # one CHW image
    np.testing.assert_array_equal(r.image, x[1])
    recs = list(open_images(x))
    recs[0].image[:] = 0  # records never alias the source
    assert x[0].any()


def test_float_and_channel_conversions():
    f = torch.tensor([0.0, 0.5 / 255, 0.49 / 255, 1.0, 1.02, -0.01, 127.5 / 255]).reshape(
        1, 1, 1, 7
    )
    f = f.expand(1, 3, 1, 7)
    (r,) = list(open_images(f))
    np.testing.assert_array_equal(r.image[0, :, 0], [0, 1, 0, 255, 255, 0, 128])
    for dt in (torch.float16, torch.bfloat16, torch.float64):
        (r,) = list(open_images(torch.full((1, 3, 2, 2), 0.5, dtype=dt)))
        assert (r.image == 128).all()
    grey = RNG.integers(0, 256, (2, 4, 5, 1), dtype=np.uint8)
    for r, g in zip(open_images(grey), grey):
        np.testing.assert_array_equal(r.image, np.repeat(g, 3, axis=2))
    rgba = RNG.integers(0, 256, (2, 4, 4, 4), dtype=np.uint8)
    for r, g in zip(open_images(rgba), rgba):
        np.testing.assert_array_equal(r.image, g[:, :, :3])
    with pytest.raises(ValueError, match=r"-1\.\.1"):
        list(open_images(torch.rand(2, 3, 4, 4) * 2 - 1))
    with pytest.raises(ValueError, match=r"0\.\.255"):
        list(open_images(torch.rand(2, 3, 4, 4) * 255))
    with pytest.raises(ValueError, match="NaN"):
        list(open_images(torch.full((1, 3, 2, 2), float("nan"))))
    with pytest.raises(TypeError, match="int64"):
        open_images(np.zeros((2, 4, 4, 3), np.int64))
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        open_images(np.zeros((2, 5, 6, 5), np.uint8))


def test_list_of_images_mixed_sizes():
    items = [_rgb(4, 5), torch.from_numpy(_rgb(6, 3)).permute(2, 0, 1), Image.fromarray(_rgb(2, 2))]
    s = open_images(items)
    recs = list(s)
    assert len(s) == 3 and [r.image.shape for r in recs] == [(4, 5, 3), (6, 3, 3), (2, 2, 3)]
    np.testing.assert_array_equal(recs[1].image, items[1].permute(1, 2, 0).numpy())
    np.testing.assert_array_equal(recs[2].image, np.asarray(items[2]))


class _PairDataset(torch.utils.data.Dataset):
    def __init__(self, n: int, kind: str = "tensor") -> None:
        self.x = RNG.integers(0, 256, (n, 4, 5, 3), dtype=np.uint8)
        self.kind = kind

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        if self.kind == "pil":
            return Image.fromarray(self.x[i])
        if self.kind == "dict":
            return {"image": self.x[i], "label": i}
        return torch.from_numpy(self.x[i]).permute(2, 0, 1).float() / 255, 10 + i


class _Stream(torch.utils.data.IterableDataset):
    def __init__(self, x: np.ndarray) -> None:
        self.x = x

    def __iter__(self):
        return iter(list(self.x))


def test_datasets_and_loaders():
    for kind in ("tensor", "pil", "dict"):
        ds = _PairDataset(5, kind)
        s = open_images(ds)
        recs = list(s)
        assert len(s) == 5 and s.kind == "dataset"
        np.testing.assert_array_equal(np.stack([r.image for r in recs]), ds.x)
        if kind == "tensor":
            assert [r.label for r in recs] == [10, 11, 12, 13, 14]
    ds = _PairDataset(7)
    loader = torch.utils.data.DataLoader(ds, batch_size=3)
    s = open_images(loader)
    recs = list(s)
    assert len(s) == 7 and s.kind == "dataloader"
    np.testing.assert_array_equal(np.stack([r.image for r in recs]), ds.x)
    assert [r.label for r in recs] == list(range(10, 17))
    dl = torch.utils.data.DataLoader(ds, batch_size=3, drop_last=True)
    assert len(open_images(dl)) == 6 == len(list(open_images(dl)))
    stream = open_images(_Stream(ds.x))
    assert stream.count is None
    with pytest.raises(TypeError, match="not known before reading"):
        len(stream)
    np.testing.assert_array_equal(np.stack([r.image for r in stream]), ds.x)
    assert len(list(open_images(_Stream(ds.x), count=4))) == 4


def test_generator():
    calls = []

    def fn(n):
        calls.append(n)
        return torch.full((n, 3, 4, 4), len(calls) / 255)

    s = open_images(fn, count=10, batch_size=4)
    recs = list(s)
    assert len(s) == 10 and calls == [4, 4, 2]
    assert [int(r.image[0, 0, 0]) for r in recs] == [1] * 4 + [2] * 4 + [3] * 2
    assert [r.name for r in recs][:2] == ["generated[0]", "generated[1]"]
    calls.clear()
    shard = list(s.iter_shard(1, 3))  # a rank generates only its own share
    assert [r.index for r in shard] == [1, 4, 7] and calls == [3]

    def hwc_list(n):
        return [_rgb(3, 3) for _ in range(n)]

    assert len(list(open_images(hwc_list, count=5, batch_size=2))) == 5
    with pytest.raises(ValueError, match="count"):
        open_images(fn)
    with pytest.raises(ValueError, match="return 4 images"):
        list(open_images(lambda n: torch.zeros(1, 3, 2, 2), count=4, batch_size=4))
    with pytest.raises(TypeError, match="no fixed content"):
        s.fingerprint()


# ---------------------------------------------------------------------------------------------
# unreadable files
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def broken(tmp_path):
    d = tmp_path / "broken"
    d.mkdir()
    for i in range(4):
        Image.fromarray(_rgb(16, 16)).save(d / f"{i}.png")
    buf = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(buf, "JPEG")
    (d / "1t.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])  # truncated
    png = (d / "2.png").read_bytes()
    (d / "2t.png").write_bytes(png[: len(png) - 30])  # truncated PNG
    (d / "3c.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # corrupt header
    (d / "zero.webp").write_bytes(b"")
    return d


def test_unreadable_files_warn_and_skip(broken):
    s = open_images(broken, workers=2)
    assert len(s) == 8
    with pytest.warns(SkippedImageWarning) as rec:
        names = [r.name for r in s]
    assert names == ["0.png", "1.png", "2.png", "3.png"]
    bad = ["1t.jpg", "2t.png", "3c.png", "zero.webp"]
    assert [n for n, _ in s.skipped] == bad
    assert all(reason for _, reason in s.skipped)
    msgs = [str(w.message) for w in rec]
    assert len(msgs) == 5  # one per file, then the summary
    for name, msg in zip(bad, msgs):
        assert name in msg
    assert "4 unreadable" in msgs[-1]
    assert "truncated" in dict(s.skipped)["1t.jpg"]


def test_unreadable_files_strict(broken, tmp_path):
    with pytest.raises(ImageReadError, match=r"1t\.jpg.*truncated"):
        list(open_images(broken, strict=True, workers=3))
    missing = [tmp_path / "nope.png"]
    with pytest.raises(ImageReadError, match=r"nope\.png.*no such file"):
        list(open_images(missing, strict=True))
    assert issubclass(ImageReadError, ValueError)


def test_corrupt_zip_member(tmp_path):
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as zf:
        buf = io.BytesIO()
        Image.fromarray(_rgb(4, 4)).save(buf, "PNG")
        zf.writestr("a.png", buf.getvalue())
        zf.writestr("b.jpg", b"\xff\xd8\xff garbage")
    s = open_images(tmp_path / "z.zip")
    with pytest.warns(SkippedImageWarning) as rec:
        assert [r.name for r in s] == ["a.png"]
    assert "b.jpg" in str(rec[0].message)
    assert [n for n, _ in s.skipped] == ["b.jpg"]


def test_bad_sources(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no image files.*empty"):
        open_images(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"existing path.*missing"):
        open_images(tmp_path / "missing")
    with zipfile.ZipFile(tmp_path / "e.zip", "w") as zf:
        zf.writestr("a.txt", "x")
    with pytest.raises(ValueError, match=r"no image files.*e\.zip"):
        open_images(tmp_path / "e.zip")
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"bad\.zip"):
        open_images(tmp_path / "bad.zip")
    with pytest.raises(TypeError, match="source"):
        open_images(3.5)
    with pytest.raises(TypeError, match="list of"):
        open_images([1, 2])
    with pytest.raises(ValueError, match="empty list"):
        open_images([])
    with pytest.raises(TypeError, match="workers"):
        open_images(np.zeros((1, 2, 2, 3), np.uint8), workers=1.5)
    with pytest.raises(ValueError, match="count"):
        open_images(np.zeros((2, 2, 2, 3), np.uint8), count=3)
    s = open_images(np.zeros((2, 2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="rank"):
        s.iter_shard(2, 2)
    with pytest.raises(ValueError, match="world_size"):
        s.iter_shard(0, 0)


# ---------------------------------------------------------------------------------------------
# shards, fingerprints, streaming
# ---------------------------------------------------------------------------------------------


def test_shards_partition(tree, tmp_path):
    root, names = tree
    with tarfile.open(tmp_path / "t.tar.gz", "w:gz") as tf:
        for n in names:
            tf.add(root / n, n)
    sources = [
        open_images(root, workers=2),
        open_images(tmp_path / "t.tar.gz"),
        open_images(RNG.integers(0, 256, (7, 2, 2, 3), dtype=np.uint8)),
        open_images(_PairDataset(7)),
        open_images(torch.utils.data.DataLoader(_PairDataset(7), batch_size=2)),
    ]
    for s in sources:
        full = [(r.index, r.name) for r in s]
        for world in (1, 2, 3):
            shards = [[(r.index, r.name) for r in s.iter_shard(k, world)] for k in range(world)]
            for k, sh in enumerate(shards):
                assert all(i % world == k for i, _ in sh)
            assert sorted(x for sh in shards for x in sh) == full


def test_fingerprint(tree, tmp_path):
    root, names = tree
    f1 = open_images(root).fingerprint()
    assert f1 == open_images(root, workers=1).fingerprint()
    assert len(f1) == 64 and int(f1, 16) >= 0
    assert open_images(root, count=3).fingerprint() != f1
    target = root / names[0]
    st = os.stat(target)
    img = _peer(target)
    img[0, 0] ^= 255
    Image.fromarray(img).save(target)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # same time stamp: content counts
    assert open_images(root).fingerprint() != f1
    x = RNG.integers(0, 256, (3, 4, 4, 3), dtype=np.uint8)
    fx = open_images(x).fingerprint()
    assert fx == open_images(x.copy()).fingerprint()
    x[2, 3, 3, 2] ^= 1
    assert open_images(x).fingerprint() != fx
    t = torch.rand(2, 3, 4, 4)
    assert open_images(t).fingerprint() == open_images(t.clone()).fingerprint()
    ds = _PairDataset(3)
    assert open_images(ds).fingerprint() == open_images(ds).fingerprint()
    np.savez(tmp_path / "r.npz", x)
    fz = open_images(tmp_path / "r.npz").fingerprint()
    np.savez(tmp_path / "r.npz", x + 1)
    assert open_images(tmp_path / "r.npz").fingerprint() != fz


def test_bounded_read_ahead_and_early_stop():
    running = 0
    peak = 0
    started = []
    lock = threading.Lock()

    def fn(i):
        nonlocal running, peak
        with lock:
            started.append(i)
            running += 1
            peak = max(peak, running)
        time.sleep(0.002)
        with lock:
            running -= 1
        return i * 2

    it = inputs._ordered_map(fn, iter(range(1000)), 3)
    got = [next(it)[1] for _ in range(5)]
    assert got == [0, 2, 4, 6, 8]
    time.sleep(0.05)
    assert len(started) <= 5 + 2 * 3 + 2  # never more than the read-ahead in flight
    it.close()  # cancels what has not started; returns without hanging
    assert peak <= 3
    assert [v for _, v in inputs._ordered_map(fn, iter(range(50)), 4)] == list(range(0, 100, 2))


def test_early_break_folder(tree):
    root, _ = tree
    s = open_images(root, workers=4)
    first = next(iter(s))  # the iterator is dropped with decodes still in flight
    assert first.index == 0
    assert len(list(s)) == len(s)
