"""fastperc.stats against the implementations people use today, on identical inputs and seeds:
pytorch-fid and clean-fid (FD through scipy's sqrtm, KID), torchmetrics (FID, KID, IS) and
the authors' ``prdc`` package (precision, recall, density, coverage).

The peers are test-only dependencies; a test skips when its peer cannot be imported.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys
import types
import warnings

import numpy as np
import pytest
import torch

from fastperc import stats
from fastperc.stats import FeatureStats, frechet_distance

from .test_stats import decaying_features


def peer(module: str, attr: str):
    """``module.attr`` from a peer package, or skip. torchvision's compiled operators do not
    match this torch build; the peers only need its Python parts, so the module that registers
    the operators is stubbed before they import it."""
    sys.modules.setdefault(
        "torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations")
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mod = importlib.import_module(module)
    except Exception as exc:  # ImportError, or a peer's own import-time failure
        pytest.skip(f"{module} is not importable: {exc}")
    return getattr(mod, attr)


@contextlib.contextmanager
def quiet():
    """Peers' deprecation warnings (scipy's ``sqrtm(disp=...)``, torchmetrics' memory notes)
    and prints are theirs, not ours."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(None):
        warnings.simplefilter("ignore")
        yield


class Identity(torch.nn.Module):
    """A 'feature extractor' for torchmetrics that returns its input: the metric classes then
    run their own state and compute code on our features."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.num_features = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


# ----------------------------------------------------------------------------------------------
# Fréchet distance
# ----------------------------------------------------------------------------------------------


@functools.cache
def fd_case(d: int):
    """Two feature sets with decaying spectra (N > D, so scipy's sqrtm is accurate), their
    numpy moments as pytorch-fid computes them, and our FD."""
    a = decaying_features(int(1.1 * d) + 150, d, 100 + d)
    b = decaying_features(d + 100, d, 200 + d, mean=0.52, decay=0.7, shift_seed=1)
    ours = frechet_distance(FeatureStats.from_features(a), FeatureStats.from_features(b))
    return a, b, ours


@functools.cache
def numpy_moments(d: int):
    """The moments as pytorch-fid computes them: numpy mean and ``np.cov(rowvar=False)``."""
    a, b, _ = fd_case(d)
    an, bn = a.numpy(), b.numpy()
    return an.mean(0), np.cov(an, rowvar=False), bn.mean(0), np.cov(bn, rowvar=False)


FD_CASES = [
    pytest.param(64, "pytorch_fid", id="d64-pytorch_fid"),
    pytest.param(64, "clean_fid", id="d64-clean_fid"),
    pytest.param(64, "torchmetrics", id="d64-torchmetrics"),
    pytest.param(768, "pytorch_fid", id="d768-pytorch_fid"),
    pytest.param(768, "clean_fid", id="d768-clean_fid"),
    pytest.param(768, "torchmetrics", id="d768-torchmetrics"),
    # D = 2048 against the fastest peer only (scipy's sqrtm takes ~10 s there; the benchmark
    # records its agreement at 2048 and 4096)
    pytest.param(2048, "torchmetrics", id="d2048-torchmetrics"),
]


@pytest.mark.parametrize("d,name", FD_CASES)
def test_frechet_distance_matches_peers(d, name):
    a, b, ours = fd_case(d)
    if name == "pytorch_fid":
        fn = peer("pytorch_fid.fid_score", "calculate_frechet_distance")
        with quiet():
            theirs = float(fn(*numpy_moments(d)))
    elif name == "clean_fid":
        fn = peer("cleanfid.fid", "frechet_distance")
        with quiet():
            theirs = float(fn(*numpy_moments(d)))
    else:  # torchmetrics' whole metric: float64 raw-sum states, eigvals of S1 S2
        fid_cls = peer("torchmetrics.image.fid", "FrechetInceptionDistance")
        with quiet():
            metric = fid_cls(feature=Identity(d))
            metric.update(a, real=True)
            metric.update(b, real=False)
            theirs = float(metric.compute())
    assert abs(ours - theirs) <= 1e-6 * theirs, (ours, theirs)


def test_singular_case_where_sqrtm_goes_complex():
    """N < D: scipy's sqrtm of S1 S2 returns complex values; pytorch-fid drops the imaginary
    part. Ours stays real and matches the 40-digit value (tested in test_stats.py); here the
    peer's error is shown to be far larger than ours."""
    from .test_stats import _mp_frechet

    sqrtm = peer("scipy.linalg", "sqrtm")
    fn = peer("pytorch_fid.fid_score", "calculate_frechet_distance")
    a, b = decaying_features(30, 64, 300), decaying_features(25, 64, 301)
    an, bn = a.numpy(), b.numpy()
    mu1, s1, mu2, s2 = an.mean(0), np.cov(an, rowvar=False), bn.mean(0), np.cov(bn, rowvar=False)
    with quiet():
        root = sqrtm(s1 @ s2)
        theirs = float(fn(mu1, s1, mu2, s2))
    assert np.iscomplexobj(root) and np.abs(root.imag).max() > 0
    want = float(_mp_frechet(an, bn))
    ours = frechet_distance(a, b)
    assert abs(ours - want) <= 1e-12 * want
    assert abs(ours - want) < abs(theirs - want)


# ----------------------------------------------------------------------------------------------
# KID
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "d,na,nb,subsets,size",
    [
        (64, 500, 600, 20, 200),  # small sets: the full-Gram path
        (768, 1200, 1100, 5, 1000),  # clean-fid's default subset size (clamped to 1100)
        (768, 3000, 2500, 3, 100),  # many rows, few small subsets: the per-subset path
    ],
)
def test_kid_matches_clean_fid_on_the_same_subsets(d, na, nb, subsets, size):
    kernel_distance = peer("cleanfid.fid", "kernel_distance")
    a = decaying_features(na, d, 400).numpy()
    b = decaying_features(nb, d, 401, mean=0.55).numpy()
    np.random.seed(7)  # noqa: NPY002  (clean-fid draws from the global state)
    with quiet():
        theirs = kernel_distance(a, b, num_subsets=subsets, max_subset_size=size)
    ours = stats.kid(a, b, subsets=subsets, subset_size=size, seed=7)
    assert abs(ours.mean - theirs) <= 1e-9 * abs(theirs)


@pytest.mark.parametrize("d", [64, 768])
def test_kid_matches_torchmetrics_on_the_same_subsets(d):
    kid_cls = peer("torchmetrics.image.kid", "KernelInceptionDistance")
    a = decaying_features(700, d, 410)
    b = decaying_features(650, d, 411, mean=0.55)
    with quiet():
        metric = kid_cls(feature=Identity(d), subsets=15, subset_size=300)
        metric.update(a, real=True)
        metric.update(b, real=False)
        torch.manual_seed(3)
        mean, std = (float(v) for v in metric.compute())
    ours = stats.kid(a, b, subsets=15, subset_size=300, seed=3, sampler="torch")
    assert abs(ours.mean - mean) <= 1e-9 * abs(mean)
    assert abs(ours.std - std) <= 1e-9 * abs(std)


# ----------------------------------------------------------------------------------------------
# Precision, recall, density, coverage
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("d,nr,nf,dtype", [(64, 600, 500, np.float64), (768, 300, 350, np.float32)])
def test_prdc_matches_the_prdc_package(d, nr, nf, dtype):
    compute_prdc = peer("prdc", "compute_prdc")
    real = decaying_features(nr, d, 500).numpy().astype(dtype)
    fake = decaying_features(nf, d, 501, mean=0.505, decay=0.72).numpy().astype(dtype)
    with quiet():
        p5 = compute_prdc(real, fake, nearest_k=5)
        p3 = compute_prdc(real, fake, nearest_k=3)
    ours = stats.prdc(real, fake, k=5)
    assert ours.precision == p5["precision"] and ours.recall == p5["recall"]
    assert ours.density == pytest.approx(p5["density"], rel=1e-14)
    assert ours.coverage == p5["coverage"]
    assert 0 < ours.precision < 1 and 0 < ours.coverage < 1  # a non-trivial case
    pr = stats.precision_recall(torch.from_numpy(real), torch.from_numpy(fake), k=3)
    assert (pr.precision, pr.recall) == (p3["precision"], p3["recall"])
    dc = stats.density_coverage(real, fake, k=5)
    assert dc.density == pytest.approx(p5["density"], rel=1e-14)
    assert dc.coverage == p5["coverage"]


# ----------------------------------------------------------------------------------------------
# Inception Score
# ----------------------------------------------------------------------------------------------


def test_inception_score_matches_torchmetrics():
    is_cls = peer("torchmetrics.image.inception", "InceptionScore")
    logits = 3 * torch.randn(
        1000, 50, generator=torch.Generator().manual_seed(5), dtype=torch.float64
    )
    with quiet():
        metric = is_cls(feature=Identity(50), splits=10)
        metric.update(logits)
        torch.manual_seed(11)
        mean, std = (float(v) for v in metric.compute())
    torch.manual_seed(11)
    perm = torch.randperm(1000)  # torchmetrics shuffles before splitting; we do not
    ours = stats.inception_score(logits[perm], splits=10)
    assert ours.mean == pytest.approx(mean, rel=1e-12)
    assert ours.std * (10 / 9) ** 0.5 == pytest.approx(std, rel=1e-9)  # theirs: ddof=1
