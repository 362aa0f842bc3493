"""The drop-in modules (fastperc.compat) against the peers they replace: same signatures, the
peers' numbers on the same images and features, their command line, their error cases."""

from __future__ import annotations

import importlib
import inspect
import os
import re
import subprocess
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fastperc.compat import cleanfid as cf
from fastperc.compat import pytorch_fid as pf
from fastperc.compat import torchmetrics as tm
from fastperc.models.inception import random_state_dict
from fastperc.models.weights import WeightsNotFoundError

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"


def peer(module: str):
    """A peer module, or skip. torchvision's compiled operators do not match this torch build;
    the peers only need its Python parts, so the module registering them is stubbed."""
    sys.modules.setdefault(
        "torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations")
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except Exception as exc:  # ImportError, or a peer's own import-time failure
        pytest.skip(f"{module} not usable here: {type(exc).__name__}: {exc}")


@pytest.fixture
def resize_module(monkeypatch):
    """``fastperc.resize`` as the pipeline imports it; a stand-in that refuses to run while the
    real module is absent (the tests below only feed images that need no resize)."""
    try:
        importlib.import_module("fastperc.resize")
    except ImportError:
        stub = types.ModuleType("fastperc.resize")

        def resize(*args, **kwargs):
            raise AssertionError("fastperc.resize is not available here")

        stub.resize = resize
        monkeypatch.setitem(sys.modules, "fastperc.resize", stub)


def quiet(fn, *args, **kwargs):
    """A peer's call with its own warnings (deprecations in its dependencies) silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _images(folder: Path, n: int, size: tuple[int, int], seed: int, lo: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img = rng.integers(lo, 256, (*size, 3), dtype=np.uint8)
        p = folder / f"img{i:02d}.png"
        Image.fromarray(img).save(p)
        out.append(p)
    return out


def _gaussians(d: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((5 * d, d)) @ rng.standard_normal((d, d))
    y = rng.standard_normal((5 * d, d)) * 0.8 + 0.3
    return x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)


def _same_parameters(ours, theirs, *, skip=(), extra_keyword_only=()):
    """Same parameter names, order, kinds and defaults (``skip``: defaults allowed to differ;
    ``extra_keyword_only``: our additions after theirs)."""
    po = list(inspect.signature(ours).parameters.values())
    pt = list(inspect.signature(theirs).parameters.values())
    assert [p.name for p in po] == [p.name for p in pt] + list(extra_keyword_only)
    for a, b in zip(po, pt):
        assert a.kind == b.kind, a.name
        if a.name not in skip:
            assert a.default == b.default, (a.name, a.default, b.default)
    for a in po[len(pt) :]:
        assert a.kind == inspect.Parameter.KEYWORD_ONLY


@pytest.fixture(scope="module")
def rand_sd() -> dict[str, torch.Tensor]:
    """Random FID-Inception weights (pytorch-fid's keys)."""
    return random_state_dict(seed=3)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory, rand_sd) -> Path:
    """Random FID-Inception weights saved under pytorch-fid's file name."""
    p = tmp_path_factory.mktemp("weights") / WEIGHTS_NAME
    torch.save(rand_sd, p)
    return p


@pytest.fixture
def no_weights(monkeypatch, tmp_path):
    monkeypatch.delenv("FASTPERC_WEIGHTS", raising=False)
    monkeypatch.setenv("FASTPERC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


@pytest.fixture
def peer_inception(monkeypatch, rand_sd):
    """pytorch-fid's own ``InceptionV3`` class, its weights download replaced by the random
    weights the fixtures save (no network)."""
    inception = peer("pytorch_fid.inception")
    monkeypatch.setattr(inception, "load_state_dict_from_url", lambda *a, **k: dict(rand_sd))
    return inception.InceptionV3


# ----------------------------------------------------------------------------------------------
# pytorch-fid
# ----------------------------------------------------------------------------------------------


def test_pytorch_fid_signatures():
    fs = peer("pytorch_fid.fid_score")
    inc = peer("pytorch_fid.inception")
    for name in (
        "get_activations",
        "calculate_frechet_distance",
        "calculate_activation_statistics",
        "compute_statistics_of_path",
        "calculate_fid_given_paths",
        "save_fid_stats",
    ):
        _same_parameters(getattr(pf, name), getattr(fs, name))
    _same_parameters(
        pf.InceptionV3.__init__, inc.InceptionV3.__init__, extra_keyword_only=["weights"]
    )
    assert pf.InceptionV3.BLOCK_INDEX_BY_DIM == inc.InceptionV3.BLOCK_INDEX_BY_DIM
    assert pf.IMAGE_EXTENSIONS == fs.IMAGE_EXTENSIONS
    # the command line's flags
    ours = {a.dest: a.default for a in pf._parser()._actions}
    theirs = {a.dest: a.default for a in fs.parser._actions}
    assert {k: ours[k] for k in theirs} == theirs


@pytest.mark.parametrize("d", [2, 7, 64])
def test_pytorch_fid_frechet_distance_matches(d):
    fs = peer("pytorch_fid.fid_score")
    mu1, s1, mu2, s2 = _gaussians(d, d)
    want = quiet(fs.calculate_frechet_distance, mu1, s1, mu2, s2)
    got = pf.calculate_frechet_distance(mu1, s1, mu2, s2)
    assert isinstance(got, np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # clean-fid's is the same function
    np.testing.assert_allclose(cf.frechet_distance(mu1, s1, mu2, s2), want, rtol=1e-6)


def test_pytorch_fid_frechet_distance_near_singular():
    """Fewer samples than dimensions: the covariances are singular. The exact value (from the
    raw features, in the N x N space) is what comes back; never complex, never negative."""
    from fastperc.stats import frechet_distance

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 64)), rng.standard_normal((25, 64)) + 0.1
    mu1, s1, mu2, s2 = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
    got = pf.calculate_frechet_distance(mu1, s1, mu2, s2)
    np.testing.assert_allclose(got, frechet_distance(x, y, method="gram"), rtol=1e-9)
    assert pf.calculate_frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0, abs=1e-9)


def test_pytorch_fid_frechet_distance_errors():
    mu1, s1, mu2, s2 = _gaussians(4, 0)
    with pytest.raises(ValueError, match="mean vectors have different lengths"):
        pf.calculate_frechet_distance(mu1, s1, mu2[:3], s2[:3, :3])
    with pytest.raises(ValueError, match="covariances have different dimensions"):
        pf.calculate_frechet_distance(mu1, s1, mu2, s2[:3, :3])
    with pytest.raises(TypeError, match="sigma1"):
        pf.calculate_frechet_distance(mu1, np.array([["a"]]), mu2, s2)


def test_pytorch_fid_activation_statistics_with_their_model(tmp_path, peer_inception):
    """pytorch-fid's own network object, run the pytorch-fid way: same mu and sigma."""
    fs = peer("pytorch_fid.fid_score")
    files = _images(tmp_path / "a", 5, (37, 45), seed=1)
    model = peer_inception([0])
    want_mu, want_sigma = quiet(fs.calculate_activation_statistics, files, model, 2, 64, "cpu", 0)
    mu, sigma = pf.calculate_activation_statistics(files, model, 2, 64, "cpu", 0)
    # the same network on the same [0, 1] batches; only the memory layout of the batch differs
    np.testing.assert_allclose(mu, want_mu, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(sigma, want_sigma, rtol=1e-5, atol=1e-7)
    feats = pf.get_activations(files, model, 3, 64, "cpu", 1)
    assert feats.shape == (5, 64) and feats.dtype == np.float64
    np.testing.assert_allclose(
        feats, quiet(fs.get_activations, files, model, 3, 64, "cpu", 0), rtol=1e-6
    )


def test_pytorch_fid_activation_statistics_with_our_models(tmp_path, peer_inception, rand_sd):
    """Our InceptionV3 (same weights) and our extractor give pytorch-fid's statistics to float32
    rounding (the batch norms are folded)."""
    fs = peer("pytorch_fid.fid_score")
    from fastperc.models.inception import inception_v3_fid

    files = _images(tmp_path / "a", 4, (40, 32), seed=2)
    want_mu, want_sigma = quiet(
        fs.calculate_activation_statistics, files, peer_inception([1]), 4, 192, "cpu", 0
    )
    ours_net = pf.InceptionV3([1], weights=rand_sd)
    ours_ext = inception_v3_fid(rand_sd, dims=192)
    for model in (ours_net, ours_ext):
        mu, sigma = pf.calculate_activation_statistics(files, model, 3, 192, "cpu", 1)
        np.testing.assert_allclose(mu, want_mu, rtol=2e-4, atol=1e-5)
        np.testing.assert_allclose(sigma, want_sigma, rtol=2e-3, atol=2e-5)
    with pytest.raises(ValueError, match="`dims` is 2048"):
        pf.calculate_activation_statistics(files, ours_net, 3, 2048, "cpu", 1)


def test_pytorch_fid_mixed_sizes_and_errors(tmp_path):
    net = pf.InceptionV3([0], weights="random")
    files = _images(tmp_path / "a", 2, (20, 30), seed=3) + _images(tmp_path / "b", 2, (31, 17), 4)
    mu, sigma = pf.calculate_activation_statistics(files, net, 50, 64, "cpu", 1)
    assert mu.shape == (64,) and sigma.shape == (64, 64) and np.isfinite(sigma).all()
    with pytest.raises(ValueError, match="at least 2 images"):
        pf.calculate_activation_statistics(files[:1], net, 50, 64, "cpu", 1)
    with pytest.raises(TypeError, match="list of image paths"):
        pf.calculate_activation_statistics(str(tmp_path / "a"), net, 50, 64, "cpu", 1)
    with pytest.raises(ValueError, match="No images"):
        pf.compute_statistics_of_path(str(tmp_path / "c"), net, 50, 64, "cpu")
    with pytest.raises(ValueError, match="use_fid_inception"):
        pf.InceptionV3(use_fid_inception=False)


def test_pytorch_fid_paths_and_saved_stats(tmp_path, monkeypatch, weights_file, peer_inception):
    fs = peer("pytorch_fid.fid_score")
    monkeypatch.setenv("FASTPERC_WEIGHTS", str(weights_file))
    a, b = tmp_path / "a", tmp_path / "b"
    _images(a, 4, (33, 29), seed=5)
    _images(b, 3, (33, 29), seed=6, lo=60)
    out = tmp_path / "a_stats.npz"
    pf.save_fid_stats([str(a), str(out)], 3, "cpu", 64)
    want_mu, want_sigma = quiet(
        fs.compute_statistics_of_path, str(a), peer_inception([0]), 3, 64, "cpu", 0
    )
    with np.load(out) as z:
        assert int(z["count"]) == 4
        np.testing.assert_allclose(z["mu"], want_mu, rtol=2e-4, atol=1e-5)
        np.testing.assert_allclose(z["sigma"], want_sigma, rtol=2e-3, atol=2e-5)
    # an .npz side is read back as pytorch-fid reads it
    m, s = pf.compute_statistics_of_path(str(out), None, 3, 64, "cpu")
    fid_files = pf.calculate_fid_given_paths([str(out), str(b)], 3, "cpu", 64)
    mb, sb = quiet(fs.compute_statistics_of_path, str(b), peer_inception([0]), 3, 64, "cpu", 0)
    np.testing.assert_allclose(
        fid_files, quiet(fs.calculate_frechet_distance, m, s, mb, sb), rtol=1e-5
    )
    with pytest.raises(RuntimeError, match="Existing output file"):
        pf.save_fid_stats([str(a), str(out)], 3, "cpu", 64)
    with pytest.raises(RuntimeError, match="Invalid path"):
        pf.calculate_fid_given_paths([str(a), str(tmp_path / "nope")], 3, "cpu", 64)


def test_pytorch_fid_missing_weights_names_the_file(tmp_path, no_weights):
    _images(tmp_path / "a", 2, (8, 8), seed=7)
    with pytest.raises(WeightsNotFoundError, match=re.escape(WEIGHTS_NAME)):
        pf.calculate_fid_given_paths([str(tmp_path / "a")] * 2, 2, "cpu", 2048)
    with pytest.raises(WeightsNotFoundError, match=re.escape(WEIGHTS_NAME)):
        pf.InceptionV3()


def test_pytorch_fid_command_line(tmp_path, weights_file, capsys):
    """``python -m fastperc.compat.pytorch_fid`` (a subprocess) prints pytorch-fid's line; the
    in-process ``main`` writes the same statistics file as ``--save-stats``."""
    a, b = tmp_path / "a", tmp_path / "b"
    _images(a, 3, (24, 20), seed=8)
    _images(b, 3, (24, 20), seed=9, lo=100)
    env = {**os.environ, "FASTPERC_WEIGHTS": str(weights_file)}
    cmd = [sys.executable, "-m", "fastperc.compat.pytorch_fid", "--dims", "64", "--device", "cpu"]
    res = subprocess.run(
        [*cmd, "--batch-size", "2", "--num-workers", "1", str(a), str(b)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("FID:")]
    assert len(line) == 1 and re.fullmatch(r"FID:  \d+\.\d+(e[-+]\d+)?", line[0]), res.stdout
    value = float(line[0].split()[1])
    pf.main(
        [
            "--dims",
            "64",
            "--weights",
            str(weights_file),
            "--save-stats",
            str(a),
            str(tmp_path / "a.npz"),
        ]
    )
    pf.main(
        [
            "--dims",
            "64",
            "--weights",
            str(weights_file),
            "--save-stats",
            str(b),
            str(tmp_path / "b.npz"),
        ]
    )
    capsys.readouterr()
    pf.main(
        [
            "--dims",
            "64",
            "--weights",
            str(weights_file),
            str(tmp_path / "a.npz"),
            str(tmp_path / "b.npz"),
        ]
    )
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed.startswith("FID:  ")
    assert float(printed.split()[1]) == pytest.approx(value, rel=1e-6)
    with pytest.raises(SystemExit):
        pf.main(["--dims", "65", str(a), str(b)])


# ----------------------------------------------------------------------------------------------
# clean-fid
# ----------------------------------------------------------------------------------------------


def test_cleanfid_signatures():
    fid = peer("cleanfid.fid")
    for name in ("compute_fid", "compute_kid", "make_custom_stats", "get_folder_features"):
        _same_parameters(getattr(cf, name), getattr(fid, name), skip=("device",))
        assert inspect.signature(getattr(cf, name)).parameters["device"].default is None
    for name in ("frechet_distance", "kernel_distance", "fid_from_feats", "remove_custom_stats"):
        _same_parameters(getattr(cf, name), getattr(fid, name))


def test_cleanfid_stats_folder_is_cleanfids():
    fid = peer("cleanfid.fid")
    import cleanfid

    assert fid is not None
    assert cf.stats_folder() == Path(cleanfid.__file__).parent / "stats"
    assert cf._stats_file("FFHQ", "clean", "inception_v3", "train", 1024) == (
        "ffhq_clean_train_1024.npz"
    )
    assert cf._stats_file("My", "legacy_pytorch", "clip_vit_b_32", "custom", 256, "KID") == (
        "my_legacy_pytorch_clip_vit_b_32_custom_na_kid.npz"
    )


@pytest.mark.parametrize(
    ("n1", "n2", "subsets", "size"), [(120, 90, 7, 50), (30, 40, 3, 1000), (2, 5, 2, 1000)]
)
def test_cleanfid_kernel_distance_same_draws(n1, n2, subsets, size):
    fid = peer("cleanfid.fid")
    rng = np.random.default_rng(n1)
    f1, f2 = rng.standard_normal((n1, 16)), rng.standard_normal((n2, 16)) * 1.1 + 0.05
    np.random.seed(11)  # noqa: NPY002 - clean-fid draws from the global state
    want = quiet(fid.kernel_distance, f1, f2, subsets, size)
    after_theirs = np.random.random()  # noqa: NPY002
    np.random.seed(11)  # noqa: NPY002
    got = cf.kernel_distance(f1, f2, subsets, size)
    assert np.random.random() == after_theirs  # noqa: NPY002 - the state advanced alike
    assert isinstance(got, float)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-13)
    # fastperc.stats.kid with the numpy sampler draws the same subsets for a seed
    from fastperc.stats import kid

    np.testing.assert_allclose(kid(f1, f2, subsets, size, seed=11).mean, got, rtol=1e-9, atol=1e-13)


def test_cleanfid_kernel_distance_errors():
    with pytest.raises(ValueError, match="feats2"):
        cf.kernel_distance(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="max_subset_size"):
        cf.kernel_distance(np.zeros((4, 3)), np.zeros((4, 3)), 2, 1)


class _TinyExtractor(torch.nn.Module):
    """A deterministic random conv net: 0..255 images to 6 features."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 6, 3, stride=2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.05)
            self.conv.bias.copy_(torch.randn(6, generator=g) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x.float() / 64.0)).mean((2, 3))


def _crop_resize(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img[:16, :16]).astype(np.float32)


def test_cleanfid_compute_fid_same_as_cleanfid(tmp_path, resize_module, capsys):
    """Two folders, a custom extractor, transform and resize: clean-fid's number."""
    fid = peer("cleanfid.fid")
    a, b = tmp_path / "a", tmp_path / "b"
    _images(a, 9, (21, 19), seed=10)
    _images(b, 8, (21, 19), seed=11, lo=40)
    net = _TinyExtractor()
    kw = dict(
        custom_feat_extractor=net,
        custom_fn_resize=_crop_resize,
        custom_image_tranform=lambda x: x[1:],
        batch_size=4,
        device=torch.device("cpu"),
        verbose=False,
    )
    want = quiet(fid.compute_fid, str(a), str(b), num_workers=0, **kw)
    got = cf.compute_fid(str(a), str(b), num_workers=2, **kw)
    assert isinstance(got, np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # features as clean-fid's get_folder_features returns them
    feats = cf.get_folder_features(
        str(a), net, num_workers=1, custom_fn_resize=_crop_resize, device="cpu", verbose=False
    )
    want_f = quiet(
        fid.get_folder_features,
        str(a),
        net,
        num_workers=0,
        custom_fn_resize=_crop_resize,
        device="cpu",
        verbose=False,
    )
    np.testing.assert_allclose(feats, want_f, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cf.fid_from_feats(feats, feats[::-1]), 0, atol=1e-9)


def test_cleanfid_compute_kid_two_folders(tmp_path, monkeypatch, resize_module):
    """compute_kid between folders: clean-fid's kernel_distance on clean-fid's features, with
    the same global numpy seed (a small network in place of the Inception)."""
    fid = peer("cleanfid.fid")
    from fastperc.models._base import ModuleExtractor

    net = _TinyExtractor()
    monkeypatch.setattr(
        cf, "_feature_model", lambda *a, **k: ModuleExtractor(net, input_size=None, name="tiny")
    )
    a, b = tmp_path / "a", tmp_path / "b"
    _images(a, 7, (16, 16), seed=14)
    _images(b, 6, (16, 16), seed=15, lo=120)
    np.random.seed(1)  # noqa: NPY002
    got = cf.compute_kid(str(a), str(b), num_workers=1, device="cpu", verbose=False)

    def feats(d):
        f = quiet(
            fid.get_folder_features,
            str(d),
            net,
            num_workers=0,
            custom_fn_resize=lambda x: x.astype(np.float32),
            device="cpu",
            verbose=False,
        )
        return f.astype(np.float64)

    fa, fb = feats(a), feats(b)
    np.random.seed(1)  # noqa: NPY002
    want = quiet(fid.kernel_distance, fa, fb)
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_cleanfid_missing_reference_statistics(tmp_path, monkeypatch):
    monkeypatch.setattr(cf, "stats_folder", lambda: tmp_path / "stats")
    with pytest.raises(FileNotFoundError, match=r"ffhq_clean_train_1024\.npz.*make_custom_stats"):
        cf.compute_fid(str(tmp_path), device="cpu", verbose=False)
    with pytest.raises(FileNotFoundError, match=r"ffhq_clean_train_1024_kid\.npz"):
        cf.compute_kid(str(tmp_path), device="cpu", verbose=False)
    with pytest.raises(ValueError, match="invalid combination"):
        cf.compute_fid(device="cpu")
    with pytest.raises(ValueError, match="`mode`"):
        cf.compute_fid(str(tmp_path), str(tmp_path), mode="tf", device="cpu")


def test_cleanfid_custom_stats_round_trip(tmp_path, monkeypatch, resize_module):
    """make_custom_stats writes clean-fid's file names; compute_fid / compute_kid with
    dataset_split="custom" find them (299 x 299 images: no resize needed; a small network
    stands in for the Inception, whose protocol the pytorch-fid tests check)."""
    from fastperc.models._base import ModuleExtractor

    monkeypatch.setattr(cf, "stats_folder", lambda: tmp_path / "stats")
    tiny = ModuleExtractor(_TinyExtractor(), input_size=(299, 299), name="tiny")
    monkeypatch.setattr(cf, "_feature_model", lambda *a, **k: tiny)
    a = tmp_path / "a"
    _images(a, 3, (299, 299), seed=12)
    cf.make_custom_stats("Mine", str(a), device="cpu", verbose=False)
    assert sorted(os.listdir(tmp_path / "stats")) == [
        "mine_clean_custom_na.npz",
        "mine_clean_custom_na_kid.npz",
    ]
    with pytest.raises(FileExistsError, match="remove_custom_stats"):
        cf.make_custom_stats("Mine", str(a), device="cpu", verbose=False)
    score = cf.compute_fid(
        str(a), dataset_name="Mine", dataset_split="custom", device="cpu", verbose=False
    )
    assert score == pytest.approx(0, abs=1e-6)
    with np.load(tmp_path / "stats" / "mine_clean_custom_na_kid.npz") as z:
        ref = z["feats"]
    assert ref.shape == (3, 6)
    np.random.seed(0)  # noqa: NPY002
    kid_value = cf.compute_kid(
        str(a), dataset_name="Mine", dataset_split="custom", device="cpu", verbose=False
    )
    np.random.seed(0)  # noqa: NPY002
    np.testing.assert_allclose(kid_value, cf.kernel_distance(ref, ref), rtol=1e-4, atol=1e-9)
    cf.remove_custom_stats("Mine")
    assert os.listdir(tmp_path / "stats") == []


def test_cleanfid_generator(tmp_path, resize_module):
    """``gen``: images generated from ``torch.randn(batch, z_dim)``, against a folder."""
    a = tmp_path / "a"
    _images(a, 5, (16, 16), seed=13)

    def gen(z: torch.Tensor) -> torch.Tensor:
        return (z[:, :3, None, None] * 40 + 128).expand(-1, 3, 16, 16)

    net = _TinyExtractor()
    kw = dict(custom_feat_extractor=net, custom_fn_resize=_crop_resize, device="cpu")
    torch.manual_seed(0)
    got = cf.compute_fid(
        gen=gen, fdir2=str(a), num_gen=7, z_dim=4, batch_size=3, verbose=False, **kw
    )
    torch.manual_seed(0)
    z = torch.cat([torch.randn(3, 4), torch.randn(3, 4), torch.randn(1, 4)])
    imgs = gen(z).clamp(0, 255).round().permute(0, 2, 3, 1).to(torch.uint8).numpy()
    fake = net(torch.from_numpy(np.stack([_crop_resize(i) for i in imgs])).permute(0, 3, 1, 2))
    real = torch.from_numpy(
        np.stack([_crop_resize(np.asarray(Image.open(p))) for p in sorted(a.iterdir())])
    )
    want = pf.calculate_frechet_distance(*_moments(fake), *_moments(net(real.permute(0, 3, 1, 2))))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def _moments(f: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    x = f.detach().double().numpy()
    return x.mean(0), np.cov(x, rowvar=False)


# ----------------------------------------------------------------------------------------------
# torchmetrics
# ----------------------------------------------------------------------------------------------


class _Float64Net(torch.nn.Module):
    """uint8 (or float) images to 8 float64 features, deterministic."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.w = torch.nn.Parameter(torch.randn(3 * 4, 8, generator=g, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.adaptive_avg_pool2d(x.double(), 2).flatten(1)
        return torch.tanh(x / 200.0 @ self.w)


def _batches(seed: int, n: int = 3, dtype=torch.uint8):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        r = torch.randint(0, 256, (30, 3, 12, 12), generator=g).to(dtype)
        f = torch.randint(0, 190, (25, 3, 12, 12), generator=g).to(dtype)
        yield r, f


def test_torchmetrics_signatures():
    fid_mod = peer("torchmetrics.image.fid")
    kid_mod = peer("torchmetrics.image.kid")
    _same_parameters(
        tm.FrechetInceptionDistance.__init__, fid_mod.FrechetInceptionDistance.__init__
    )
    _same_parameters(tm.KernelInceptionDistance.__init__, kid_mod.KernelInceptionDistance.__init__)


@pytest.mark.parametrize("reset_real", [True, False])
def test_torchmetrics_fid_same_as_torchmetrics(reset_real):
    fid_mod = peer("torchmetrics.image.fid")
    net = _Float64Net()
    theirs = fid_mod.FrechetInceptionDistance(feature=net, reset_real_features=reset_real)
    ours = tm.FrechetInceptionDistance(feature=net, reset_real_features=reset_real)
    for r, f in _batches(0):
        for m in (theirs, ours):
            m.update(r, real=True)
            m.update(f, real=False)
    want, got = quiet(theirs.compute), ours.compute()
    assert got.dtype == want.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
    assert int(ours.real_features_num_samples) == 90
    # reset: the fake side always, the real side unless reset_real_features=False
    for m in (theirs, ours):
        m.reset()
    for _, f in _batches(1, 2):
        for m in (theirs, ours):
            m.update(f, real=False)
            if reset_real:
                m.update(f.flip(0)[:20] // 2 + 60, real=True)
    torch.testing.assert_close(ours.compute(), quiet(theirs.compute), rtol=1e-6, atol=0)


def test_torchmetrics_fid_normalize_with_a_custom_module():
    fid_mod = peer("torchmetrics.image.fid")
    net = _Float64Net()
    theirs = fid_mod.FrechetInceptionDistance(feature=net, normalize=True)
    ours = tm.FrechetInceptionDistance(feature=net, normalize=True)
    for r, f in _batches(2, 2, torch.float32):
        for m in (theirs, ours):
            m.update(r / 255, real=True)
            m.update(f / 255, real=False)
    torch.testing.assert_close(ours.compute(), quiet(theirs.compute), rtol=1e-6, atol=0)


def test_torchmetrics_kid_same_as_torchmetrics():
    kid_mod = peer("torchmetrics.image.kid")
    net = _Float64Net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its "saves all features" warning
        theirs = kid_mod.KernelInceptionDistance(feature=net, subsets=6, subset_size=40)
    ours = tm.KernelInceptionDistance(feature=net, subsets=6, subset_size=40)
    for r, f in _batches(3):
        for m in (theirs, ours):
            m.update(r, real=True)
            m.update(f, real=False)
    torch.manual_seed(7)
    want = quiet(theirs.compute)
    torch.manual_seed(7)
    got = ours.compute()
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-15)
    ours.reset()
    assert ours.fake_features == [] and ours.real_features == []
    with pytest.raises(ValueError, match="subset_size"):
        ours.compute()


def test_torchmetrics_errors(no_weights):
    net = _Float64Net()
    m = tm.FrechetInceptionDistance(feature=net)
    m.update(next(_batches(4, 1))[0][:1], real=True)
    with pytest.raises(RuntimeError, match="More than one sample"):
        m.compute()
    with pytest.raises(ValueError, match="Unexpected keyword arguments: `bogus`"):
        tm.FrechetInceptionDistance(feature=net, bogus=1)
    with pytest.raises(ValueError, match="must be one of"):
        tm.FrechetInceptionDistance(feature=100)
    with pytest.raises(TypeError, match="unknown input"):
        tm.FrechetInceptionDistance(feature=2.0)
    with pytest.raises(ValueError, match="normalize"):
        tm.FrechetInceptionDistance(feature=net, normalize=1)
    with pytest.raises(WeightsNotFoundError, match=re.escape(WEIGHTS_NAME)):
        tm.FrechetInceptionDistance(feature=2048)
    with pytest.raises(ValueError, match="coef"):
        tm.KernelInceptionDistance(feature=net, coef=1)


def test_torchmetrics_inception_protocol(weights_file, rand_sd):
    """``feature=64`` runs the FID Inception on uint8 images as torch-fidelity does: resize to
    299 (antialiased bilinear), then (x - 128) / 128."""
    from fastperc.models.inception import inception_v3_fid

    m = tm.FrechetInceptionDistance(feature=64, feature_extractor_weights_path=str(weights_file))
    imgs = next(_batches(5, 1))[0][:2]
    x = torch.nn.functional.interpolate(
        imgs.float(), size=(299, 299), mode="bilinear", align_corners=False, antialias=True
    )
    net = inception_v3_fid(rand_sd, dims=64, normalize="clean_fid", fold=False)
    torch.testing.assert_close(m.inception(imgs), net(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(TypeError, match="uint8"):
        m.update(imgs.float(), real=True)
    m.normalize = True  # float [0, 1] in, (x * 255).byte() (truncation) as torchmetrics
    m.update(imgs.float() / 255, real=True)
    assert int(m.real_features_num_samples) == 2


def test_resize_bilinear_tf1():
    x = torch.tensor([[[[0.0, 10.0], [20.0, 30.0]]]])
    out = tm.resize_bilinear_tf1(x, (4, 4))
    # TensorFlow 1: output i samples the input at i * in / out (no half-pixel offset)
    want_row = torch.tensor([0.0, 5.0, 10.0, 10.0])
    torch.testing.assert_close(out[0, 0, 0], want_row)
    torch.testing.assert_close(out[0, 0, :, 0], 2 * want_row)
    torch.testing.assert_close(tm.resize_bilinear_tf1(x, (2, 2)), x)
