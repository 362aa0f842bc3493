"""The evaluation pipeline end to end on the bundled photos with the real (offline)
EfficientNet-Lite0 features: images -> resize -> features -> statistics -> FID/KID, the JPEG
sensitivity experiment, the CLI against the Python API."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import fastperc
from fastperc import cli, data, pipeline, sensitivity
from fastperc.stats import FeatureStats, frechet_distance


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    return data.demo_crops(quick=True)  # 58 x 96 x 96 x 3


@pytest.fixture(scope="module")
def folders(tmp_path_factory, crops):
    """The crops as PNG files, and as Pillow JPEGs at q=95 and q=50 (4:2:0)."""
    root = tmp_path_factory.mktemp("sets")
    out = {}
    for name, q in (("png", None), ("q95", 95), ("q50", 50)):
        d = root / name
        d.mkdir()
        for i, c in enumerate(crops):
            im = Image.fromarray(c)
            if q is None:
                im.save(d / f"{i:03d}.png")
            else:
                im.save(d / f"{i:03d}.jpg", quality=q)
        out[name] = str(d)
    return out


@pytest.fixture(scope="module")
def lite():
    from fastperc.models import get_extractor

    return get_extractor("efficientnet_lite0", device="cpu")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTPERC_CACHE", str(tmp_path / "cache"))


def test_fid_of_a_set_with_itself_and_its_jpeg_copies(folders, lite):
    kw = dict(extractor=lite, batch_size=16, progress=False)
    s_png = pipeline.compute_stats(folders["png"], **kw)
    s_95 = pipeline.compute_stats(folders["q95"], **kw)
    s_50 = pipeline.compute_stats(folders["q50"], **kw)
    assert s_png.count == 58 and s_png.dim == 1280
    assert frechet_distance(s_png, s_png) < 1e-9
    f95, f50 = frechet_distance(s_png, s_95), frechet_distance(s_png, s_50)
    assert 0 < f95 < f50
    assert fastperc.fid(folders["png"], folders["q50"], **kw) == pytest.approx(f50, rel=1e-9)


def test_features_do_not_depend_on_batch_size_or_workers(crops, lite):
    a = pipeline.extract_features(crops[:10], extractor=lite, batch_size=3, progress=False)
    b = pipeline.extract_features(
        list(crops[:10]), extractor=lite, batch_size=10, workers=1, progress=False
    )
    assert a.features.shape == (10, 1280)
    np.testing.assert_allclose(a.features, b.features, rtol=1e-4, atol=1e-5)
    assert len(a.names) == len(b.names) == 10


def test_stats_cache_and_files(folders, lite, tmp_path):
    kw = dict(extractor=lite, batch_size=32, progress=False)
    s1 = pipeline.compute_stats(folders["q95"], **kw)
    cached = list((tmp_path / "cache" / "stats").glob("*.npz"))
    assert len(cached) == 1
    s2 = pipeline.compute_stats(folders["q95"], **kw)
    assert torch.equal(s1.mean, s2.mean)
    out = tmp_path / "q95.npz"
    s1.save(out)
    # a statistics file is accepted wherever an image set is
    assert fastperc.fid(str(out), folders["q95"], **kw) < 1e-9
    assert s1.provenance["mode"] == "clean"


def test_match_jpeg(folders, lite):
    kw = dict(extractor=lite, batch_size=32, progress=False)
    plain = fastperc.fid(folders["q50"], folders["png"], **kw)
    matched = fastperc.fid(folders["q50"], folders["png"], match_jpeg=50, **kw)
    auto = fastperc.fid(folders["q50"], folders["png"], match_jpeg="auto", **kw)
    assert matched < plain / 5
    assert auto == pytest.approx(matched, rel=1e-9)


def test_kid_pipeline(crops, lite):
    """KID grows with the distortion. (The unbiased estimator is slightly negative for sets of
    similar images, e.g. a set against itself, whose kernel diagonal stands out.)"""
    a, b = crops[::2], crops[1::2]
    m = len(b)  # whole sets: deterministic

    def shifted(k: int) -> np.ndarray:
        return np.clip(b.astype(np.int16) + k, 0, 255).astype(np.uint8)

    ks = [
        pipeline.kid(a, shifted(k), extractor=lite, subset_size=m, progress=False)
        for k in (0, 40, 80)
    ]
    assert ks[0].mean < ks[1].mean < ks[2].mean
    assert all(k.std == 0 for k in ks)
    feats = pipeline.extract_features(a, extractor=lite, progress=False).features
    assert pipeline.kid(feats, shifted(80), extractor=lite, subset_size=m).mean == pytest.approx(
        ks[2].mean, rel=1e-6
    )


def test_cli_matches_the_python_api(folders, lite, capsys):
    kw = dict(extractor=lite, batch_size=32, progress=False)
    expected = fastperc.fid(folders["png"], folders["q95"], **kw)
    code = cli.main(
        ["fid", folders["png"], folders["q95"], "--extractor", "efficientnet_lite0", "--json"]
    )
    assert code == 0
    res = json.loads(capsys.readouterr().out)
    assert res["fid"] == pytest.approx(expected, rel=1e-9)
    assert res["a"]["count"] == res["b"]["count"] == 58


def test_cli_errors(tmp_path, capsys):
    lite = ["--extractor", "efficientnet_lite0"]
    assert cli.main(["fid", str(tmp_path / "missing"), str(tmp_path), *lite]) == 2
    assert "missing" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    out = str(tmp_path / "x.npz")
    assert cli.main(["stats", str(tmp_path / "empty"), "-o", out, *lite]) == 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        cli.main(["fid", "a"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["fid", "a", "b", "--batch-size", "0"])
    assert exc.value.code == 2
    capsys.readouterr()


def test_sensitivity_curve_is_monotone(crops, lite, tmp_path):
    curve = sensitivity.jpeg_curve(
        crops, qualities=(100, 90, 25), extractor=lite, bootstrap=10, progress=False
    )
    fid = {r.quality: r.fid for r in curve.rows}
    assert fid[25] > fid[90] > fid[100] >= 0
    assert fid[100] < 0.5 * fid[90]  # q=100 still subsamples the chroma (4:2:0)
    psnr = {r.quality: r.psnr for r in curve.rows}
    assert psnr[100] > psnr[90] > psnr[25]
    for r in curve.rows:
        assert r.fid_low <= r.fid <= r.fid_high or r.fid_high - r.fid_low < 1e-9
        assert 0 < r.ssim <= 1
    md = curve.to_markdown()
    assert md.count("\n") == 4 and "| 25 |" in md
    fig = curve.plot(tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 1000
    assert fig is not None
    assert json.loads(curve.to_json())["rows"][0]["quality"] == 100


def test_sensitivity_errors(crops):
    with pytest.raises(ValueError, match="`qualities`"):
        sensitivity.jpeg_curve(crops, qualities=(0,))
    with pytest.raises(ValueError, match="`metrics`"):
        sensitivity.jpeg_curve(crops, metrics=("lpips",))
    with pytest.raises(ValueError, match="`subsampling`"):
        sensitivity.jpeg_curve(crops, subsampling="4:1:1")


def test_pipeline_argument_errors(crops):
    with pytest.raises(ValueError, match="`mode`"):
        pipeline.extract_features(crops, mode="bicubic")
    with pytest.raises(ValueError, match="`batch_size`"):
        pipeline.extract_features(crops, batch_size=0)
    with pytest.raises(TypeError, match="`match_jpeg`"):
        fastperc.fid(crops, crops, match_jpeg="high")


def test_custom_extractor_module(crops):
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten())
    res = pipeline.extract_features(crops[:5], extractor=net, progress=False)
    assert res.features.shape == (5, 48)
    expected = torch.from_numpy(crops[:5]).permute(0, 3, 1, 2).float()
    expected = torch.nn.functional.adaptive_avg_pool2d(expected, 4).flatten(1)
    np.testing.assert_allclose(res.features, expected.numpy(), rtol=1e-5, atol=1e-3)
    assert isinstance(res.stats, FeatureStats) and res.stats.count == 5


def test_cli_match_jpeg_auto_reports_its_effect(folders, capsys):
    args = ["fid", folders["q50"], folders["png"], "--extractor", "efficientnet_lite0"]
    assert cli.main([*args, "--match-jpeg", "auto", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["match_jpeg"] == {"reencoded": ["b"], "quality": 50, "subsampling": "4:2:0"}
    assert res["fid"] < res["fid_without_match_jpeg"] / 5
    assert cli.main([*args, "--match-jpeg", "auto"]) == 0
    text = capsys.readouterr().out
    assert "re-encoded as JPEG q=50" in text and "without the re-encoding" in text
