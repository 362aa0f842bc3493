"""fastperc.audit: the compression audit of two image sets."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import fastperc
from fastperc import AuditReport, SetAudit, audit, audit_set

RNG = np.random.default_rng(7)


def _images(n: int, h: int = 40, w: int = 56) -> list[Image.Image]:
    out = []
    for _ in range(n):
        base = RNG.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
        big = np.kron(base, np.ones((8, 8, 1), np.uint8))[:h, :w]  # some structure, some noise
        noise = RNG.integers(0, 40, (h, w, 3), dtype=np.uint8)
        out.append(Image.fromarray(big // 2 + noise))
    return out


def _folder(tmp_path, name, images, ext="png", **save_kw):
    d = tmp_path / name
    d.mkdir()
    for i, im in enumerate(images):
        im.save(d / f"{i:03d}.{ext}", **save_kw)
    return d


def _severe(report: AuditReport) -> list[tuple[str, str]]:
    return [(f.kind, f.severity) for f in report.findings if f.severity != "info"]


def test_planted_png_vs_jpeg75(tmp_path):
    ims = _images(6)
    png = _folder(tmp_path, "png", ims)
    jpg = _folder(tmp_path, "jpg", ims, "jpg", quality=75)
    for a, b, reencode in ((png, jpg, "a"), (jpg, png, "b")):
        r = audit(a, b, workers=2)
        assert r.suggested_match_jpeg == 75
        assert r.suggested_subsampling == "4:2:0"
        assert r.suggested_reencode == reencode
        assert not r.ok and r.max_severity == "critical"
        first = r.findings[0]
        assert (first.kind, first.severity, first.direction) == ("format", "critical", "up")
        assert "--match-jpeg 75" in first.fix and "jpeg_simulate" in first.fix
        assert r.fix_flag == "--match-jpeg 75"
        text = str(r)
        assert "--match-jpeg 75" in text and "JPEG 100%" in text and "PNG 100%" in text
        d = r.to_dict()
        assert json.loads(json.dumps(d)) == d
        assert d["suggested_match_jpeg"] == 75 and d["findings"][0]["kind"] == "format"
    sj = r.a
    assert sj.formats == {"JPEG": 6} and sj.jpeg_quality == {75: 6}
    assert sj.subsampling == {"4:2:0": 6} and sj.resolutions == {(56, 40): 6}
    assert sj.modes == {"RGB": 6} and sj.bit_depths == {8: 6} and sj.lossy == 6
    assert sj.dominant_quality == 75 and sj.is_jpeg and not sj.is_lossless
    assert r.b.formats == {"PNG": 6} and r.b.is_lossless and r.b.jpeg_quality == {}


def test_matched_sets_stay_quiet(tmp_path):
    a = _folder(tmp_path, "a", _images(4))
    b = _folder(tmp_path, "b", _images(5))
    ja = _folder(tmp_path, "ja", _images(4), "jpg", quality=75)
    jb = _folder(tmp_path, "jb", _images(3), "jpg", quality=75)
    for x, y in ((a, b), (ja, jb), (a, np.zeros((3, 40, 56, 3), np.uint8))):
        r = audit(x, y)
        assert r.ok, r.findings
        assert _severe(r) == []
        assert r.suggested_match_jpeg is None and r.suggested_reencode is None
        assert "None: the sets match" in r.to_markdown()
    r = audit(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), np.zeros((2, 8, 8, 3), np.uint8))
    assert r.findings == [] and r.a.kind == "in-memory" and r.a.resolutions == {(8, 8): 2}


def test_quality_gap(tmp_path):
    ims = _images(4)
    q95 = _folder(tmp_path, "q95", ims, "jpg", quality=95)
    q75 = _folder(tmp_path, "q75", ims, "jpg", quality=75)
    r = audit(q95, q75)
    kinds = dict(_severe(r))
    assert kinds == {"jpeg-quality": "critical"}
    assert r.suggested_match_jpeg == 75 and r.suggested_reencode == "a"
    assert r.suggested_subsampling == "4:2:0"
    q80 = _folder(tmp_path, "q80", ims, "jpg", quality=80)
    assert dict(_severe(audit(q80, q75))) == {"jpeg-quality": "warning"}
    q77 = _folder(tmp_path, "q77", ims, "jpg", quality=77)
    r = audit(q77, q75)  # a gap under 5 is not a finding
    assert r.ok and r.suggested_match_jpeg is None


def test_subsampling_gap(tmp_path):
    ims = _images(4)
    s444 = _folder(tmp_path, "s444", ims, "jpg", quality=75, subsampling=0)
    s420 = _folder(tmp_path, "s420", ims, "jpg", quality=75, subsampling=2)
    r = audit(s420, s444)
    assert dict(_severe(r)) == {"subsampling": "warning"}
    assert r.suggested_subsampling == "4:2:0" and r.suggested_reencode == "b"
    assert r.suggested_match_jpeg == 75
    assert r.a.subsampling == {"4:2:0": 4} and r.b.subsampling == {"4:4:4": 4}
    # both a quality and a subsampling gap pointing at different sets: re-encode both
    q90_420 = _folder(tmp_path, "q90", ims, "jpg", quality=90, subsampling=2)
    r = audit(q90_420, s444)
    assert r.suggested_reencode == "both"
    assert (r.suggested_match_jpeg, r.suggested_subsampling) == (75, "4:2:0")


def test_malformed_files_reported_not_fatal(tmp_path):
    d = _folder(tmp_path, "bad", _images(3))
    (d / "x.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    (d / "y.jpg").write_bytes(b"\xff\xd8\xff\xdb\x00\x43\x00")  # a DQT cut short
    (d / "z.webp").write_bytes(b"")
    s = audit_set(d)
    assert s.images == 3 and s.files_total == 6
    assert [n for n, _ in s.unreadable] == ["x.png", "y.jpg", "z.webp"]
    assert all(reason for _, reason in s.unreadable)
    r = audit(d, _folder(tmp_path, "good", _images(2)))
    assert ("unreadable", "warning") in _severe(r)
    assert "x.png" in r.to_markdown()


def test_resolution_mismatch(tmp_path):
    a = _folder(tmp_path, "a", _images(3, 32, 32))
    b = _folder(tmp_path, "b", _images(3, 64, 64))
    c = _folder(tmp_path, "c", _images(3, 32, 48))
    r = audit(a, b)
    assert dict(_severe(r)) == {"resolution": "warning"}
    assert "32x32" in r.findings[0].message and "64x64" in r.findings[0].message
    assert r.findings[0].direction == "up"
    assert set(dict(_severe(audit(a, c)))) == {"resolution", "aspect-ratio"}
    mixed = _folder(tmp_path, "m", _images(2, 32, 32) + _images(2, 16, 16))
    r = audit(mixed, mixed)
    assert r.ok and [f.kind for f in r.findings] == ["mixed-resolution"] * 2


def test_audit_set_details(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    ims = _images(2)
    ims[0].save(d / "p.jpg", quality=60, progressive=True)
    ims[1].convert("L").save(d / "g.jpg", quality=90)
    ims[0].convert("RGBA").save(d / "a.png")
    ims[0].save(d / "lossy.webp", quality=80)
    ims[0].save(d / "lossless.webp", lossless=True)
    Image.fromarray(np.full((4, 4), 3000, np.uint16)).save(d / "g16.png")
    ims[0].save(d / "t.tif")
    s = audit_set(d)
    assert s.formats == {"JPEG": 2, "PNG": 2, "WEBP-lossy": 1, "WEBP-lossless": 1, "TIFF": 1}
    assert s.jpeg_quality == {60: 1, 90: 1} and s.progressive == 1
    assert s.subsampling == {"4:2:0": 1, "4:0:0": 1}
    assert s.modes == {"RGB": 4, "L": 1, "RGBA": 1, "I;16": 1}
    assert s.bit_depths == {8: 6, 16: 1} and s.lossy == 3
    r = audit(d, d)
    assert ("bit-depth", "warning") in _severe(r)  # 16-bit grey is clipped by convert("RGB")
    json.dumps(r.to_dict())
    # archives, sampling
    ims = _images(6)
    folder = _folder(tmp_path, "f", ims, "jpg", quality=85)
    with zipfile.ZipFile(tmp_path / "f.zip", "w") as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, p.name)
    with tarfile.open(tmp_path / "f.tgz", "w:gz") as tf:
        for p in sorted(folder.iterdir()):
            tf.add(p, p.name)
    for src in (folder, tmp_path / "f.zip", tmp_path / "f.tgz"):
        s = audit_set(src)
        assert s.formats == {"JPEG": 6} and s.jpeg_quality == {85: 6} and not s.unreadable
    s = audit_set(folder, max_files=2)
    assert s.images == 2 and s.files_total == 6 and "sampled" in s.note


def test_in_memory_sides(tmp_path):
    jpg = _folder(tmp_path, "j", _images(3), "jpg", quality=80)
    r = audit(jpg, lambda n: torch.zeros(n, 3, 40, 56))  # a generator: lossless
    assert r.suggested_match_jpeg == 80 and r.suggested_reencode == "b"
    assert r.b.kind == "in-memory" and "lossless" in r.b.note
    r = audit(torch.zeros(2, 3, 40, 56, dtype=torch.uint8), jpg)
    assert r.suggested_match_jpeg == 80 and r.suggested_reencode == "a"
    assert r.a.resolutions == {(56, 40): 2}
    d = SetAudit("x", "files")
    assert d.dominant_quality is None and d.to_dict()["images"] == 0
    assert fastperc.audit is audit and callable(fastperc.audit)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="existing path"):
        audit(tmp_path / "missing", tmp_path)
    with pytest.raises(TypeError, match="max_files"):
        audit_set(np.zeros((1, 2, 2, 3), np.uint8), max_files="3")


def test_jpeg_header_read_from_bytes(tmp_path):
    buf = io.BytesIO()
    _images(1)[0].save(buf, "JPEG", quality=70, subsampling=1)
    with zipfile.ZipFile(tmp_path / "one.zip", "w") as zf:
        zf.writestr("sub/a.JPEG", buf.getvalue())
    s = audit_set(tmp_path / "one.zip")
    assert s.subsampling == {"4:2:2": 1} and s.jpeg_quality == {70: 1}
