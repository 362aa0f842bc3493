"""fastperc.models: the FID Inception against pytorch-fid and an independent forward, the
folded fast path against the unfolded network, weights loading and search, EfficientNet-Lite0's
real ImageNet predictions, and get_extractor.

pytorch-fid is a test-only peer (skipped when it cannot be imported); it is built without a
download by handing its ``load_state_dict_from_url`` our seeded random weights.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import sys
import types
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from fastperc import data, models
from fastperc.models import (
    Extractor,
    ExtractorFallbackWarning,
    WeightsHashError,
    WeightsNotFoundError,
    efficientnet_lite0,
    get_extractor,
    inception_v3_fid,
)
from fastperc.models import efficientnet as E
from fastperc.models import inception as I
from fastperc.models import weights as W

SEED = 1


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference relative to the largest magnitude of ``b``."""
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


@functools.cache
def random_sd() -> dict[str, torch.Tensor]:
    return I.random_state_dict(seed=SEED)


@functools.cache
def images() -> torch.Tensor:
    """Two 299 x 299 images (0..255): a real photo and noise."""
    from PIL import Image

    photo = Image.fromarray(data.load_photo("chelsea")).resize((299, 299), Image.BICUBIC)
    a = torch.from_numpy(np.asarray(photo).copy()).permute(2, 0, 1).float()
    b = torch.rand(3, 299, 299, generator=torch.Generator().manual_seed(0)) * 255
    return torch.stack([a, b])


@functools.cache
def small_image() -> torch.Tensor:
    """An image that is not 299 x 299 (resized inside the network, as pytorch-fid does)."""
    return torch.rand(1, 3, 173, 250, generator=torch.Generator().manual_seed(2)) * 255


def pytorch_fid_inception():
    """pytorch_fid.inception with the download replaced by our weights, or skip."""
    sys.modules.setdefault(
        "torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations")
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mod = importlib.import_module("pytorch_fid.inception")
    except Exception as exc:
        pytest.skip(f"pytorch_fid is not importable: {exc}")
    return mod


@contextlib.contextmanager
def no_download(mod):
    """Make pytorch-fid's weight download return our random weights."""
    orig = mod.load_state_dict_from_url
    mod.load_state_dict_from_url = lambda *a, **k: random_sd()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        mod.load_state_dict_from_url = orig


@functools.cache
def peer_outputs():
    """pytorch-fid's four block outputs on images() and small_image() (computed once)."""
    mod = pytorch_fid_inception()
    with no_download(mod):
        net = mod.InceptionV3(output_blocks=(0, 1, 2, 3), use_fid_inception=True).eval()
    with torch.no_grad():
        return net(images() / 255), net(small_image() / 255)


@functools.cache
def ours_random(fold: bool = True) -> Extractor:
    return inception_v3_fid(random_sd(), fold=fold)


@functools.cache
def ours_blocks(fold: bool = True) -> list[torch.Tensor]:
    """Our four block outputs on images() (computed once per path)."""
    return ours_random(fold).blocks(images())


# ----------------------------------------------------------------------------------------------
# An independent forward of the FID Inception, written from the architecture description
# ----------------------------------------------------------------------------------------------


def _cbr(sd, name, x, stride=1, padding=0):
    x = F.conv2d(x, sd[f"{name}.conv.weight"], None, stride, padding)
    x = F.batch_norm(
        x,
        sd[f"{name}.bn.running_mean"],
        sd[f"{name}.bn.running_var"],
        sd[f"{name}.bn.weight"],
        sd[f"{name}.bn.bias"],
        False,
        0.0,
        1e-3,
    )
    return F.relu(x)


def _tf_avg(x):
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


def independent_pool3(sd, x01):
    """pool3 of images in [0, 1] (any size), from the state dict with functional ops only."""
    x = F.interpolate(x01, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
    x = _cbr(sd, "Conv2d_1a_3x3", x, stride=2)
    x = _cbr(sd, "Conv2d_2a_3x3", x)
    x = _cbr(sd, "Conv2d_2b_3x3", x, padding=1)
    x = F.max_pool2d(x, 3, 2)
    x = _cbr(sd, "Conv2d_4a_3x3", _cbr(sd, "Conv2d_3b_1x1", x))
    x = F.max_pool2d(x, 3, 2)
    for m in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):
        a = _cbr(sd, f"{m}.branch1x1", x)
        b = _cbr(sd, f"{m}.branch5x5_2", _cbr(sd, f"{m}.branch5x5_1", x), padding=2)
        c = _cbr(sd, f"{m}.branch3x3dbl_1", x)
        c = _cbr(
            sd, f"{m}.branch3x3dbl_3", _cbr(sd, f"{m}.branch3x3dbl_2", c, padding=1), padding=1
        )
        d = _cbr(sd, f"{m}.branch_pool", _tf_avg(x))
        x = torch.cat([a, b, c, d], 1)
    m = "Mixed_6a"
    a = _cbr(sd, f"{m}.branch3x3", x, stride=2)
    c = _cbr(sd, f"{m}.branch3x3dbl_2", _cbr(sd, f"{m}.branch3x3dbl_1", x), padding=1)
    c = _cbr(sd, f"{m}.branch3x3dbl_3", c, stride=2)
    x = torch.cat([a, c, F.max_pool2d(x, 3, 2)], 1)
    h, v = (0, 3), (3, 0)  # paddings of the 1x7 and 7x1 convolutions
    for m in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
        a = _cbr(sd, f"{m}.branch1x1", x)
        b = _cbr(sd, f"{m}.branch7x7_2", _cbr(sd, f"{m}.branch7x7_1", x), padding=h)
        b = _cbr(sd, f"{m}.branch7x7_3", b, padding=v)
        c = _cbr(sd, f"{m}.branch7x7dbl_1", x)
        for i, p in zip(range(2, 6), (v, h, v, h)):
            c = _cbr(sd, f"{m}.branch7x7dbl_{i}", c, padding=p)
        d = _cbr(sd, f"{m}.branch_pool", _tf_avg(x))
        x = torch.cat([a, b, c, d], 1)
    m = "Mixed_7a"
    a = _cbr(sd, f"{m}.branch3x3_2", _cbr(sd, f"{m}.branch3x3_1", x), stride=2)
    b = _cbr(sd, f"{m}.branch7x7x3_2", _cbr(sd, f"{m}.branch7x7x3_1", x), padding=h)
    b = _cbr(sd, f"{m}.branch7x7x3_4", _cbr(sd, f"{m}.branch7x7x3_3", b, padding=v), stride=2)
    x = torch.cat([a, b, F.max_pool2d(x, 3, 2)], 1)
    for m, pool in (("Mixed_7b", _tf_avg), ("Mixed_7c", lambda t: F.max_pool2d(t, 3, 1, 1))):
        a = _cbr(sd, f"{m}.branch1x1", x)
        b = _cbr(sd, f"{m}.branch3x3_1", x)
        b1 = _cbr(sd, f"{m}.branch3x3_2a", b, padding=(0, 1))
        b2 = _cbr(sd, f"{m}.branch3x3_2b", b, padding=(1, 0))
        c = _cbr(sd, f"{m}.branch3x3dbl_2", _cbr(sd, f"{m}.branch3x3dbl_1", x), padding=1)
        c1 = _cbr(sd, f"{m}.branch3x3dbl_3a", c, padding=(0, 1))
        c2 = _cbr(sd, f"{m}.branch3x3dbl_3b", c, padding=(1, 0))
        d = _cbr(sd, f"{m}.branch_pool", pool(x))
        x = torch.cat([a, b1, b2, c1, c2, d], 1)
    return x.mean((2, 3))


# ----------------------------------------------------------------------------------------------
# FID Inception: layout and numerics
# ----------------------------------------------------------------------------------------------


def test_state_dict_keys_match_pytorch_fid():
    mod = pytorch_fid_inception()
    with no_download(mod):
        peer = mod.fid_inception_v3()
    theirs = peer.state_dict()
    ours = ours_random().net.state_dict()
    assert list(ours) == list(theirs)  # same keys in the same order
    assert all(ours[k].shape == theirs[k].shape for k in ours)
    # both directions load with strict=True
    I.InceptionV3FID().load_state_dict(theirs, strict=True)
    peer.load_state_dict(ours, strict=True)


def test_blocks_equal_pytorch_fid():
    """All four of pytorch-fid's blocks (64/192/768 maps, 2048 pool3), unfolded and folded."""
    theirs, _ = peer_outputs()
    ref, fast = ours_blocks(fold=False), ours_blocks(fold=True)
    for r, f, t in zip(ref, fast, theirs):
        assert r.shape == t.shape
        assert rel(r, t) <= 1e-6  # same ops in the same order
        assert rel(f, t) <= 1e-5  # batch norms folded, channels-last
    assert float((theirs[3] > 0).float().mean()) > 0.5  # the random net is not degenerate


def test_fast_ops_are_enabled_on_the_folded_copy_only():
    ex = ours_random()
    assert not ex.net.fast_ops and not ex.net.Mixed_5b.fast_ops
    fast = models._base.FastPath().get(ex.net)
    assert fast.fast_ops and fast.Mixed_5b.fast_ops and fast.Mixed_7c.fast_ops


@pytest.mark.parametrize(
    "shape, k, s, p",
    [
        ((2, 64, 147, 147), 3, 2, 0),  # the stem's pools
        ((1, 5, 9, 10), 3, 2, 0),  # odd channels, uneven sizes
        ((3, 7, 8, 8), 3, 1, 1),  # Mixed_7c's padded pool
        ((1, 1, 1, 1), 1, 1, 0),
        ((2, 3, 3, 3), 3, 2, 1),  # windows clipped on every side
        ((1, 17, 5, 4), 2, 3, 1),
    ],
)
@pytest.mark.parametrize("relu", [False, True])
def test_max_pool_kernel_equals_torch(shape, k, s, p, relu):
    from fastperc.models._base import max_pool2d

    g = torch.Generator().manual_seed(sum(shape) + k + s + p)
    x = torch.randn(*shape, generator=g)
    x.view(-1)[:: max(1, x.numel() // 3)] = float("nan")  # NaN wins its windows, as in torch
    x = x.contiguous(memory_format=torch.channels_last)
    want = F.max_pool2d(x, k, s, p)
    want = F.relu(want) if relu else want
    for ctx in (torch.inference_mode(), torch.no_grad(), contextlib.nullcontext()):
        with ctx:
            got = max_pool2d(x, k, s, p, relu=relu)
        assert got.shape == want.shape
        assert got.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(got.isnan(), want.isnan())
        assert torch.equal(got.nan_to_num(), want.nan_to_num())
    # other layouts and gradients take torch's path, with the same values
    y = x.contiguous().requires_grad_(True)
    out = max_pool2d(y, k, s, p, relu=relu)
    assert torch.equal(out.detach().nan_to_num(), want.nan_to_num())
    out.nan_to_num().sum().backward()
    assert y.grad is not None


def test_max_pool_kernel_rejects_bad_arguments():
    from fastperc import _ext

    cpp = _ext.cpp()
    x = np.zeros((1, 8, 8, 4), np.float32).transpose(0, 3, 1, 2)  # channels-last [1, 4, 8, 8]
    out = np.zeros((1, 3, 3, 4), np.float32).transpose(0, 3, 1, 2)
    cpp.max_pool(x, out, 3, 2, 0, False)
    with pytest.raises(ValueError, match="dst"):
        cpp.max_pool(x, np.zeros((1, 2, 2, 4), np.float32).transpose(0, 3, 1, 2), 3, 2, 0, False)
    with pytest.raises(ValueError, match="pad"):
        cpp.max_pool(x, out, 3, 2, 2, False)
    with pytest.raises(ValueError, match="stride"):
        cpp.max_pool(x, out, 3, 0, 0, False)
    with pytest.raises(ValueError, match="contiguous channels"):
        cpp.max_pool(np.ascontiguousarray(x), np.ascontiguousarray(out), 3, 2, 0, False)
    with pytest.raises(TypeError, match="src"):
        cpp.max_pool(x.astype(np.float64), out, 3, 2, 0, False)
    with pytest.raises(ValueError, match="src"):
        cpp.max_pool(x[:, :, :2, :2], out[:, :, :1, :1], 3, 2, 0, False)


def test_resize_inside_equals_pytorch_fid():
    """Images that are not 299 x 299 are resized bilinearly inside, as pytorch-fid does."""
    _, theirs = peer_outputs()
    ours = ours_random().blocks(small_image(), (0, 3))
    assert rel(ours[0], theirs[0]) <= 1e-5
    assert rel(ours[1], theirs[3]) <= 1e-5


def test_independent_forward():
    want = independent_pool3(random_sd(), images()[:1] / 255)
    assert rel(ours_blocks()[3][:1].flatten(1), want) <= 1e-5
    assert torch.equal(ours_random()(images()), ours_blocks()[3].flatten(1))


@pytest.mark.parametrize("dims", [64, 192, 768])
def test_smaller_dims_are_spatial_means(dims):
    theirs, _ = peer_outputs()
    ex = inception_v3_fid(random_sd(), dims=dims)
    f = ex(images())
    assert f.shape == (2, dims) and ex.dim == dims and ex.provenance["dim"] == dims
    want = theirs[I.BLOCK_INDEX_BY_DIM[dims]].mean((2, 3))
    assert rel(f, want) <= 1e-5


def test_logits_and_single_pass():
    theirs, _ = peer_outputs()
    ex, x = ours_random(), images()[1:]
    f, lg = ex.features_and_logits(x)
    pool3 = theirs[3][1:].flatten(1)
    fc = {k[3:]: v for k, v in random_sd().items() if k.startswith("fc.")}
    assert f.shape == (1, 2048) and lg.shape == (1, 1008)
    assert rel(f, pool3) <= 1e-5
    assert rel(lg, pool3 @ fc["weight"].T) <= 1e-5  # no bias by default (as IS code does)
    assert rel(ex.logits(x, bias=True), pool3 @ fc["weight"].T + fc["bias"]) <= 1e-5


def test_extractor_attributes():
    ex = ours_random()
    assert isinstance(ex, Extractor) and isinstance(ex, nn.Module)
    assert ex.name == "inception_v3_fid" and ex.dim == 2048
    assert ex.input_size == (299, 299) and ex.resize_mode == "pil_bicubic"
    p = ex.provenance
    assert p["name"] == "inception_v3_fid" and p["dim"] == 2048 and "2x - 1" in p["normalization"]
    assert not ex.training


# ----------------------------------------------------------------------------------------------
# Weights files: pytorch-fid's state dict, clean-fid's TorchScript, the search, the download
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fid_weights_dir(tmp_path_factory):
    """A folder holding our random weights under pytorch-fid's file name."""
    d = tmp_path_factory.mktemp("weights")
    torch.save(random_sd(), d / W.INCEPTION_FID.filename)
    return d


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No weights anywhere: empty cache and torch hub folders, no FASTPERC_WEIGHTS."""
    monkeypatch.delenv(W.ENV_WEIGHTS, raising=False)
    monkeypatch.setenv(W.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path


def test_state_dict_round_trip_through_file(fid_weights_dir, clean_env):
    path = fid_weights_dir / W.INCEPTION_FID.filename
    ex = inception_v3_fid(path)
    p = ex.provenance
    assert p["weights"] == W.INCEPTION_FID.filename and p["source"] == "pytorch-fid state dict"
    assert p["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert p["sha256_matches_published"] is False  # random weights, not the published file
    sd = ex.net.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in random_sd().items())
    # a folder works too
    assert inception_v3_fid(fid_weights_dir, hash_check=False).provenance["weights"] == (
        W.INCEPTION_FID.filename
    )


@pytest.mark.parametrize("where", ["env_file", "env_folder", "cache", "torch_hub"])
def test_weights_search(where, fid_weights_dir, clean_env, monkeypatch):
    src = fid_weights_dir / W.INCEPTION_FID.filename
    if where == "env_file":
        monkeypatch.setenv(W.ENV_WEIGHTS, str(src))
    elif where == "env_folder":
        monkeypatch.setenv(W.ENV_WEIGHTS, str(fid_weights_dir))
    else:
        folder = clean_env / ("cache" if where == "cache" else "torch_home/hub/checkpoints")
        folder.mkdir(parents=True)
        (folder / src.name).symlink_to(src)
    ex = inception_v3_fid(hash_check=False)
    assert ex.provenance["weights"] == W.INCEPTION_FID.filename
    auto = get_extractor("auto", hash_check=False)  # no fallback warning: weights were found
    assert auto.name == "inception_v3_fid"
    assert auto.provenance["selected_by"].startswith("auto: Inception")


def test_missing_weights_error(clean_env, monkeypatch):
    def no_network(*a, **k):
        raise AssertionError("no download without download=True")

    monkeypatch.setattr(W.urllib.request, "urlopen", no_network)
    with pytest.raises(WeightsNotFoundError) as info:
        inception_v3_fid()
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert W.INCEPTION_FID.filename in msg and W.INCEPTION_TORCHSCRIPT.filename in msg
    assert str(clean_env / "cache") in msg and "FASTPERC_WEIGHTS" in msg
    assert "download=True" in msg and "weights=" in msg
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        inception_v3_fid(clean_env / "nope.pth")
    with pytest.raises(WeightsNotFoundError, match="No Inception weights in folder"):
        inception_v3_fid(clean_env)
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        efficientnet_lite0(clean_env / "nope.pth")


def test_download_checks_the_hash(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"fastperc" * 1000)
    good = hashlib.sha256(src.read_bytes()).hexdigest()
    dest = tmp_path / "out" / "w.pth"
    with pytest.raises(WeightsHashError, match="SHA-256"):
        W.download(src.as_uri(), dest, "0" * 64)
    assert not dest.exists() and not list(dest.parent.glob("*.part"))  # nothing left behind
    assert W.download(src.as_uri(), dest, good) == dest
    assert dest.read_bytes() == src.read_bytes()
    with pytest.raises(ValueError, match="sha256"):
        W.download(src.as_uri(), dest, "abc")
    # the published file: pytorch-fid's URL, with its full hash
    assert W.INCEPTION_FID.url.endswith(W.INCEPTION_FID.filename)
    assert W.INCEPTION_FID.sha256.startswith(W.INCEPTION_FID.sha256_prefix)
    assert W.check_hash(W.INCEPTION_FID.sha256, W.INCEPTION_FID) is True
    with pytest.raises(ValueError, match="not downloaded automatically"):
        W.download_weights(W.INCEPTION_TORCHSCRIPT, tmp_path)


class _TSLayer(nn.Module):
    """A conv layer as clean-fid's TorchScript file stores it: weight, beta, mean, var."""

    def __init__(self, sd, name):
        super().__init__()
        self.weight = nn.Parameter(sd[f"{name}.conv.weight"].clone())
        self.beta = nn.Parameter(sd[f"{name}.bn.bias"].clone())
        self.mean = nn.Parameter(sd[f"{name}.bn.running_mean"].clone())
        self.var = nn.Parameter(sd[f"{name}.bn.running_var"].clone())

    def forward(self, x):
        return x


class _TSNode(nn.Module):
    def forward(self, x):
        return x


def test_clean_fid_torchscript_parameters_are_mapped(tmp_path):
    sd = dict(random_sd())
    for k in sd:  # the TorchScript's batch norms have no scale
        if k.endswith("bn.weight"):
            sd[k] = torch.ones_like(sd[k])
    root = _TSNode()
    for ours, theirs in I.torchscript_key_map().items():
        *parents, leaf = theirs.split(".")
        m = root
        for p in parents:
            if not hasattr(m, p):
                setattr(m, p, _TSNode())
            m = getattr(m, p)
        setattr(m, leaf, _TSLayer(sd, ours))
    root.output = nn.Linear(2048, 1008)
    root.output.weight.data.copy_(sd["fc.weight"])
    root.output.bias.data.copy_(sd["fc.bias"])
    path = tmp_path / W.INCEPTION_TORCHSCRIPT.filename
    with warnings.catch_warnings():  # torch.jit is deprecated, but the file format is what it is
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(root), str(path))
    assert W.is_torchscript(path)

    ex = inception_v3_fid(path)
    assert ex.provenance["source"] == "clean-fid TorchScript (parameters mapped)"
    assert ex.provenance["sha256_matches_published"] is None  # no published hash
    assert ex.normalize == "clean_fid"  # clean-fid's (x - 128) / 128 with its file
    x = images()[:1]
    want = independent_pool3(sd, (x - 128) / 128 * 0.5 + 0.5)  # [0,1] such that 2y-1 = (x-128)/128
    assert rel(ex(x), want) <= 1e-5
    assert inception_v3_fid(path, normalize="pytorch_fid").normalize == "pytorch_fid"


class _TinyTS(nn.Module):
    """A TorchScript file of another layout: run through its own ``layers``."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
            nn.AdaptiveAvgPool2d(4), nn.Conv2d(3, 2048, 1), nn.AdaptiveAvgPool2d(1)
        )
        self.output = nn.Linear(2048, 1008)

    def forward(self, x):
        return self.output(self.layers(x).flatten(1))


def test_unmappable_torchscript_runs_as_is(tmp_path):
    torch.manual_seed(0)
    net = _TinyTS()
    path = tmp_path / "other.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net), str(path))
    ex = inception_v3_fid(path)
    assert isinstance(ex, I.TorchScriptInceptionExtractor)
    assert "run as is" in ex.provenance["source"] and ex.provenance["mapping_error"]
    x = torch.rand(2, 3, 40, 50) * 255
    with torch.no_grad():
        xn = (F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) - 128) / 128
        want = net.layers(xn).flatten(1)
        f, lg = ex.features_and_logits(x)
    assert rel(f, want) <= 1e-6 and f.shape == (2, 2048)
    assert rel(lg, want @ net.output.weight.detach().T) <= 1e-6
    with pytest.raises(ValueError, match="dims=768"):
        inception_v3_fid(path, dims=768)


# ----------------------------------------------------------------------------------------------
# EfficientNet-Lite0 with the package's real ImageNet weights
# ----------------------------------------------------------------------------------------------


@functools.cache
def effnet(fold: bool = True) -> Extractor:
    try:
        return efficientnet_lite0(fold=fold)
    except WeightsNotFoundError as exc:
        pytest.skip(str(exc))


def eval_crop(name: str) -> torch.Tensor:
    """TensorFlow's evaluation crop: the central 224/256 of the shorter side, bicubic to 224."""
    from PIL import Image

    im = Image.fromarray(data.load_photo(name))
    w, h = im.size
    s = int(min(w, h) * 224 / 256)
    left, top = (w - s) // 2, (h - s) // 2
    im = im.crop((left, top, left + s, top + s)).resize((224, 224), Image.BICUBIC)
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float()


@functools.cache
def photo_logits() -> dict[str, torch.Tensor]:
    x = torch.stack([eval_crop(n) for n in data.PHOTOS])
    return dict(zip(data.PHOTOS, effnet().logits(x)))


def test_efficientnet_weights_and_layout():
    path = E.package_weights_path()
    sd = torch.load(path, map_location="cpu", weights_only=True)
    net = E.EfficientNetLite0()
    assert list(net.state_dict()) == list(sd)
    net.load_state_dict(sd, strict=True)
    n = sum(v.numel() for k, v in sd.items() if "running" not in k and "num_batches" not in k)
    assert n == 4_652_008
    ex = effnet()
    assert ex.name == "efficientnet_lite0" and ex.dim == 1280 and ex.input_size == (224, 224)
    assert ex.provenance["sha256"] == E.SHA256 and ex.provenance["sha256_matches_published"]


@pytest.mark.parametrize(
    "name,classes,k",
    [
        ("chelsea", range(281, 286), 1),  # a cat: tabby / tiger / Persian / Siamese / Egyptian
        ("coffee", (967, 968), 1),  # espresso or cup
        ("rocket", (657, 744, 812), 3),  # missile / projectile / space shuttle in the top 3
        ("astronaut", (560,), 5),  # she holds a helmet: football helmet in the top 5
    ],
)
def test_efficientnet_classifies_photos(name, classes, k):
    top = photo_logits()[name].topk(k).indices.tolist()
    names = [E.IMAGENET_CLASSES.get(i, str(i)) for i in top]
    assert set(top) & set(classes), f"{name}: top-{k} {names}"


def test_efficientnet_confident_on_easy_photos():
    p = {n: lg.softmax(0) for n, lg in photo_logits().items()}
    assert float(p["chelsea"][281:286].sum()) > 0.8
    assert float(p["coffee"][967]) > 0.8


def test_efficientnet_features_deterministic_and_folded():
    x = torch.stack([eval_crop("chelsea"), eval_crop("coffee")])
    fast = effnet()(x)
    assert fast.shape == (2, 1280) and fast.dtype == torch.float32
    assert torch.equal(fast, effnet()(x))  # deterministic
    assert rel(effnet()(x[1:]), fast[1:]) <= 1e-5  # batch-independent
    assert rel(fast, effnet(fold=False)(x)) <= 1e-5  # folded == unfolded
    assert float(fast.min()) >= 0 and float(fast.max()) <= 6  # ReLU6 then a mean


def test_tf_same_padding():
    conv = E.Conv2dSame(3, 4, 3, stride=2, bias=False)
    x = torch.randn(1, 3, 10, 11)
    # 10 -> 5 outputs: total padding 1, all of it after; 11 -> 6: 2, one on each side
    want = F.conv2d(F.pad(x, (1, 1, 0, 1)), conv.weight, None, 2)
    assert torch.allclose(conv(x), want, atol=1e-6)
    assert conv(x).shape == (1, 4, 5, 6)
    assert E._same_pad(224, 5, 2) == (1, 2) and E._same_pad(56, 3, 1) == (1, 1)


def test_fast_path_follows_parameter_changes():
    ex = efficientnet_lite0("random")
    x = torch.rand(1, 3, 64, 64) * 255
    before = ex(x)
    with torch.no_grad():
        ex.net._bn1.bias.add_(1.0)  # in place: the folded copy must be rebuilt
    after = ex(x)
    assert not torch.allclose(before, after)
    assert rel(after, efficientnet_lite0(ex.net.state_dict(), fold=False)(x)) <= 1e-5


def test_gradients_flow_through_the_reference_path():
    ex = efficientnet_lite0("random")
    x = (torch.rand(1, 3, 48, 48) * 255).requires_grad_(True)
    f = ex(x)
    f.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert rel(f.detach(), ex(x.detach())) <= 1e-5


def test_bfloat16_autocast_close():
    x = torch.stack([eval_crop("chelsea")])
    ref = effnet()(x)
    bf = efficientnet_lite0(precision="bfloat16")(x)
    assert bf.dtype == torch.float32
    cos = F.cosine_similarity(bf, ref).item()
    assert cos > 0.99, cos


# ----------------------------------------------------------------------------------------------
# get_extractor and input checks
# ----------------------------------------------------------------------------------------------


def test_auto_falls_back_to_efficientnet_loudly(clean_env):
    with pytest.warns(ExtractorFallbackWarning, match="NOT comparable"):
        ex = get_extractor("auto")
    assert ex.name == "efficientnet_lite0"
    assert "EfficientNet-Lite0" in ex.provenance["selected_by"]
    assert issubclass(ExtractorFallbackWarning, UserWarning)


def test_auto_with_download_and_without_any_weights(clean_env, fid_weights_dir, monkeypatch):
    fetched = []

    def fake_download(spec, folder=None):  # stands in for the network
        fetched.append(spec.filename)
        return fid_weights_dir / spec.filename

    monkeypatch.setattr(W, "download_weights", fake_download)
    ex = get_extractor("auto", download=True, hash_check=False)
    assert ex.name == "inception_v3_fid" and fetched == [W.INCEPTION_FID.filename]
    assert ex.provenance["selected_by"] == "auto: Inception (download allowed)"

    def no_package():
        raise WeightsNotFoundError("package missing")

    monkeypatch.setattr(E, "package_weights_path", no_package)
    with pytest.raises(WeightsNotFoundError, match="not available either: package missing"):
        get_extractor("auto")


def test_get_extractor_by_name(fid_weights_dir):
    ex = get_extractor("inception", weights=fid_weights_dir, hash_check=False, dims=768)
    assert ex.name == "inception_v3_fid" and ex.dim == 768
    assert get_extractor("efficientnet_lite0").dim == 1280
    assert get_extractor(ex) is ex
    with pytest.raises(ValueError, match="spec"):
        get_extractor("vgg")
    with pytest.raises(TypeError, match="spec"):
        get_extractor(3)


def test_wrap_module_and_callable():
    torch.manual_seed(0)
    lazy = get_extractor(nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(12, 5)))
    assert lazy.dim == 5  # discovered by a probe forward
    assert lazy(torch.rand(3, 3, 17, 9) * 255).shape == (3, 5)
    assert lazy.input_size is None and lazy.provenance["selected_by"] == "wrapped module"

    def mean_rgb(x):
        return x.mean((2, 3), keepdim=True)  # [N, 3, 1, 1] is flattened

    ex = get_extractor(mean_rgb, dim=3, input_size=32, value_range=1)
    assert ex.dim == 3 and ex.input_size == (32, 32) and ex.name == "mean_rgb"
    out = ex(torch.full((2, 3, 32, 32), 255.0))
    assert torch.allclose(out, torch.ones(2, 3))
    with pytest.raises(NotImplementedError):
        ex.logits(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"returned 3 features, expected dim = 4"):
        get_extractor(mean_rgb, dim=4)(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        get_extractor(lambda x: x)(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="pass `dim=`"):
        _ = get_extractor(lambda x: F.max_pool2d(x, 4).flatten(1), input_size=(2, 2)).dim
    with pytest.raises(ValueError, match="input_size"):
        get_extractor(mean_rgb, input_size=(0, 3))


@pytest.mark.parametrize(
    "bad,err,match",
    [
        (np.zeros((1, 3, 8, 8), np.float32), TypeError, "torch.Tensor"),
        (torch.zeros(3, 8, 8), ValueError, r"\[N, 3, H, W\]"),
        (torch.zeros(1, 4, 8, 8), ValueError, r"\[N, 3, H, W\]"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.int32), TypeError, "int32"),
        (torch.zeros(0, 3, 8, 8), ValueError, "non-empty"),
    ],
)
def test_bad_input(bad, err, match):
    with pytest.raises(err, match=match):
        efficientnet_lite0("random")(bad)


def test_bad_arguments():
    with pytest.raises(ValueError, match="dims"):
        inception_v3_fid("random", dims=100)
    with pytest.raises(ValueError, match="normalize"):
        inception_v3_fid("random", normalize="imagenet")
    with pytest.raises(ValueError, match="precision"):
        efficientnet_lite0("random", precision="int8")
    with pytest.raises(TypeError, match="weights"):
        inception_v3_fid(3.5)


def test_uint8_input_accepted():
    ex = efficientnet_lite0("random")
    x = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    assert torch.equal(ex(x), ex(x.float()))


def test_package_exports_models():
    import fastperc

    assert fastperc.models is models
