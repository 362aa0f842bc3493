"""The command line: exit codes, JSON output, the demo on the bundled photos."""

from __future__ import annotations

import json

import pytest

from fastperc import cli


def test_info_json(capsys):
    assert cli.main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["backends"]["torch"] is None


def test_demo_quick(capsys, tmp_path):
    out = tmp_path / "report"
    assert cli.main(["demo", "--quick", "--json", "--no-progress", "--out", str(out)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["jpeg_exact_identical_to_pillow"] == 1.0
    fid = {r["quality"]: r["fid"] for r in res["rows"]}
    assert fid[50] > fid[90] > fid[100] >= 0
    assert res["provenance"]["name"] == "efficientnet_lite0"
    assert sorted(p.name for p in out.iterdir()) == ["curve.json", "curve.png", "report.md"]
    assert "FID" in (out / "report.md").read_text()


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for cmd in ("fid", "kid", "stats", "audit", "jpeg", "jpeg-sensitivity", "demo", "info"):
        assert cmd in text
    assert "exit codes" in text


def test_jpeg_inspect(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    good = tmp_path / "a.jpg"
    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(good, quality=80)
    bad = tmp_path / "b.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0garbage")
    assert cli.main(["jpeg", "inspect", str(good), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["quality"] == 80
    assert cli.main(["jpeg", "inspect", str(good), str(bad)]) == 1
    text = capsys.readouterr().out
    assert "quality 80" in text and "error" in text


def test_audit_command(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for i in range(4):
        img = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
        img.save(tmp_path / "a" / f"{i}.png")
        img.save(tmp_path / "b" / f"{i}.jpg", quality=75)
    assert cli.main(["audit", str(tmp_path / "a"), str(tmp_path / "b"), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["suggested_match_jpeg"] == 75


def test_usage_errors(capsys):
    assert cli.main([]) == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["demo", "--backend", "gpu"])
    assert exc.value.code == 2
    capsys.readouterr()


def test_jpeg_sensitivity_command(tmp_path, capsys):
    from PIL import Image

    from fastperc import data

    src = tmp_path / "photos"
    src.mkdir()
    for i, crop in enumerate(data.demo_crops(quick=True)[:4]):
        Image.fromarray(crop).save(src / f"{i}.png")
    out = tmp_path / "report"
    args = ["jpeg-sensitivity", str(src), "--qualities", "90", "30", "--metrics", "psnr", "ssim"]
    assert cli.main([*args, "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    psnr = {r["quality"]: r["psnr"] for r in res["rows"]}
    assert psnr[90] > psnr[30] > 20
    assert {p.name for p in out.iterdir()} == {"curve.png", "curve.json", "report.md"}
    with pytest.raises(SystemExit) as exc:
        cli.main([*args[:2], "--qualities", "101"])
    assert exc.value.code == 2
    capsys.readouterr()
