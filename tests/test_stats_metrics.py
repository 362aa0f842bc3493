"""KID, CMMD, precision/recall, density/coverage, Inception Score, the bootstrap and FD-infinity
against the float64 brute-force reference, with tiny tiles to exercise the blocking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastperc import stats
from fastperc.reference import stats as ref

from .test_stats import decaying_features


@pytest.fixture(params=["one_tile", "many_tiles"])
def tiles(request, monkeypatch):
    """Run a test with the default tile size, then with tiles of a few rows (and row blocks
    that do not divide the data) so that every blocked loop takes several turns."""
    if request.param == "many_tiles":
        monkeypatch.setattr(stats, "_BLOCK_BYTES", 8 * 64 * 37)
        monkeypatch.setattr(stats, "_tile_rows", lambda d: 37)
    return request.param


# ----------------------------------------------------------------------------------------------
# KID and MMD
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["gram", "subsets"])
@pytest.mark.parametrize(
    "degree,gamma,coef", [(3, None, 1.0), (2, 0.3, 0.5), (1, None, 0.0), (6, 0.05, 1.0)]
)
def test_kid_paths_match_the_reference(tiles, path, degree, gamma, coef):
    a = decaying_features(150, 24, 1)
    b = decaying_features(130, 24, 2, mean=0.6).float()  # mixed dtypes are fine
    idx = stats._kid_subsets(150, 130, 6, 50, 5, "numpy")
    kern = stats._Kernel("poly", degree=degree, gamma=gamma, coef=coef, dim=24)
    got = stats._kid_values(a, b, idx, 50, kern, path)
    mean, std, vals = ref.kid(a, b, idx, degree=degree, gamma=gamma, coef=coef)
    np.testing.assert_allclose(got, vals, rtol=1e-11)
    out = stats.kid(a, b, subsets=6, subset_size=50, degree=degree, gamma=gamma, coef=coef, seed=5)
    assert out.mean == pytest.approx(mean, rel=1e-11) and out.std == pytest.approx(std, rel=1e-9)


def test_kid_subsets_are_seeded_and_clamped():
    a, b = decaying_features(40, 8, 3), decaying_features(30, 8, 4)
    r1 = stats.kid(a, b, subsets=5, seed=1)
    assert r1 == stats.kid(a.numpy(), b.numpy(), subsets=5, seed=1)
    assert r1 != stats.kid(a, b, subsets=5, seed=2)
    # subset_size 1000 is clamped to the 30 rows of b, so every subset of b is all of b
    idx = stats._kid_subsets(40, 30, 5, 30, 1, "numpy")
    assert all(sorted(ib.tolist()) == list(range(30)) for _, ib in idx)
    assert r1.mean == pytest.approx(ref.kid(a, b, idx)[0], rel=1e-11)
    t = stats._kid_subsets(40, 30, 3, 30, 1, "torch")
    g = torch.Generator().manual_seed(1)
    assert np.array_equal(t[0][0], torch.randperm(40, generator=g)[:30].numpy())


@pytest.mark.parametrize("unbiased", [False, True])
@pytest.mark.parametrize("kernel", ["rbf", "poly"])
def test_mmd_matches_the_reference(tiles, kernel, unbiased):
    a = 3 * decaying_features(120, 16, 5)
    b = 3 * decaying_features(90, 16, 6, mean=0.7)
    got = stats.mmd(a, b, kernel=kernel, sigma=2.0, unbiased=unbiased)
    if kernel == "rbf":
        want = ref.mmd(a, b, sigma=2.0, unbiased=unbiased)
    else:
        kxx, kyy, kxy = (ref.polynomial_kernel(p, q) for p, q in ((a, a), (b, b), (a, b)))
        n, m = 120, 90
        if unbiased:
            exx = (kxx.sum() - kxx.trace()) / (n * (n - 1))
            eyy = (kyy.sum() - kyy.trace()) / (m * (m - 1))
        else:
            exx, eyy = kxx.mean(), kyy.mean()
        want = float(1000 * (exx + eyy - 2 * kxy.mean()))
    assert got == pytest.approx(want, rel=1e-10)


def test_cmmd_defaults():
    x = torch.randn(200, 32, generator=torch.Generator().manual_seed(0))
    y = x + 0.5
    want = ref.mmd(x, y)  # sigma 10, scale 1000, the biased estimator
    assert stats.mmd(x, y) == pytest.approx(want, rel=1e-10)
    assert abs(stats.mmd(x, x)) < 1e-9
    assert stats.mmd(x, x, unbiased=True) < 0  # the unbiased estimate of 0 fluctuates around it


# ----------------------------------------------------------------------------------------------
# Precision, recall, density, coverage
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 5])
def test_knn_metrics_match_the_reference(tiles, k):
    real = decaying_features(170, 20, 7, decay=0.5)
    fake = decaying_features(150, 20, 8, mean=0.52, decay=0.55).float()
    torch.testing.assert_close(
        stats._knn_radii(real, k), ref.knn_radii(real, k), rtol=1e-12, atol=1e-12
    )
    p, r = ref.precision_recall(real, fake, k)
    dens, cov = ref.density_coverage(real, fake, k)
    assert stats.precision_recall(real, fake, k) == (p, r)
    assert stats.density_coverage(real, fake, k) == pytest.approx((dens, cov), rel=1e-14)
    out = stats.prdc(real, fake, k)
    assert out.density == pytest.approx(dens, rel=1e-14) and out.coverage == cov
    assert 0 < p < 1 and 0 < r < 1 and 0 < cov < 1


def test_knn_metrics_on_identical_sets():
    x = decaying_features(100, 10, 9)
    assert stats.precision_recall(x, x) == (1.0, 1.0)
    d = stats.density_coverage(x, x)
    # every fake point has a real twin, whose k-th neighbour lies exactly on the radius: such
    # ties fall either way with rounding (as with prdc/scikit-learn), so density is ~1 here
    assert d.coverage == 1.0 and d.density == pytest.approx(1.0, abs=0.05)


# ----------------------------------------------------------------------------------------------
# Inception Score
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("splits", [1, 3, 10])
def test_inception_score_matches_the_reference(splits):
    logits = 4 * torch.randn(997, 30, generator=torch.Generator().manual_seed(splits))
    p = torch.softmax(logits.double(), 1)
    want = ref.inception_score(p, splits)
    assert stats.inception_score(logits, splits) == pytest.approx(want, rel=1e-12)
    assert stats.inception_score(p.numpy(), splits, probs=True) == pytest.approx(want, rel=1e-12)


def test_inception_score_extremes():
    sure = torch.eye(10).repeat(5, 1) * 1000  # confident, uniform over classes: IS = #classes
    assert stats.inception_score(sure, splits=5).mean == pytest.approx(10.0, rel=1e-12)
    one = torch.zeros(50, 10)
    one[:, 3] = 1.0  # always the same class: IS = 1
    r = stats.inception_score(one, splits=2, probs=True)
    assert r.mean == pytest.approx(1.0, abs=1e-12) and r.std == 0
    with pytest.raises(ValueError, match="probabilities with probs=True"):
        stats.inception_score(one * 2, probs=True, splits=2)
    with pytest.raises(ValueError, match=r"at least 10 rows \(one per split"):
        stats.inception_score(one[:5])


# ----------------------------------------------------------------------------------------------
# Confidence
# ----------------------------------------------------------------------------------------------


def test_bootstrap_replicates_equal_explicit_resampling():
    a = decaying_features(80, 12, 10)
    b = decaying_features(60, 12, 11, mean=0.6)
    out = stats.frechet_distance_bootstrap(a, b, n=4, seed=3)
    rng = np.random.default_rng(3)
    for rep in out.replicates:
        ia, ib = rng.integers(0, 80, 80), rng.integers(0, 60, 60)
        mu1, s1 = ref.mean_cov(a[ia])
        mu2, s2 = ref.mean_cov(b[ib])
        assert rep == pytest.approx(ref.frechet_distance(mu1, s1, mu2, s2), rel=1e-10)
    assert out.value == pytest.approx(stats.frechet_distance(a, b), rel=1e-14)
    assert out.low <= out.high and len(out.replicates) == 4
    again = stats.frechet_distance_bootstrap(a, b, n=4, seed=3)
    np.testing.assert_array_equal(again.replicates, out.replicates)


def test_bootstrap_holds_statistics_fixed_and_covers_the_value():
    real = stats.FeatureStats.from_features(decaying_features(2000, 8, 12))
    fake = decaying_features(300, 8, 13, mean=0.6)
    out = stats.frechet_distance_bootstrap(real, fake, n=60, confidence=0.9)
    assert out.confidence == 0.9 and out.std > 0
    assert out.low < out.value < out.high
    with pytest.raises(ValueError, match="resamples raw features"):
        stats.frechet_distance_bootstrap(real, real)
    with pytest.raises(ValueError, match=r"`confidence` in \(0, 1\)"):
        stats.frechet_distance_bootstrap(real, fake, confidence=95)


def test_fd_infinity_removes_the_finite_sample_bias():
    """Both sets from one Gaussian: FD_N is pure 1/N bias, FD-infinity is ~0."""
    d = 16
    x = decaying_features(20000, d, 14)
    mu, sigma = ref.mean_cov(x)  # the 'population'
    fake = decaying_features(3000, d, 15)
    out = stats.fd_infinity((mu, sigma), fake)
    assert len(out.sizes) == 15 and out.sizes[0] == 300 and out.sizes[-1] == 3000
    assert out.slope > 0 and out.fds[0] > out.fds[-1]
    assert abs(out.value) < 0.05 * out.fds[0]  # FD_300 is ~0.03, all bias
    fd_n = stats.frechet_distance(
        (mu, sigma), fake[torch.from_numpy(np.random.default_rng(0).permutation(3000))]
    )
    assert out.fds[-1] == pytest.approx(fd_n, rel=1e-10)  # the last size is all of fake
    two = stats.fd_infinity((mu, sigma), fake, sizes=[500, 3000])
    assert two.value == pytest.approx(
        (two.fds[1] * 3000 - two.fds[0] * 500) / 2500, rel=1e-9
    )  # the line through two points
    with pytest.raises(ValueError, match="at least 2 distinct sizes"):
        stats.fd_infinity((mu, sigma), fake, sizes=[500, 500])
    with pytest.raises(ValueError, match="<= the 3000 rows"):
        stats.fd_infinity((mu, sigma), fake, sizes=[500, 4000])


# ----------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------


def test_metric_argument_errors():
    x = decaying_features(20, 6, 16)
    with pytest.raises(ValueError, match=r"`feats_b` with D = 6 features per row \(as `feats_a`\)"):
        stats.kid(x, x[:, :5])
    with pytest.raises(ValueError, match="`feats_a` with at least 2 rows"):
        stats.kid(x[:1], x)
    with pytest.raises(ValueError, match="`feats_a` has 1 of 20 rows with NaN"):
        stats.mmd(torch.where(torch.arange(20)[:, None] == 4, float("nan"), x), x)
    with pytest.raises(TypeError, match="`subsets` to be an int"):
        stats.kid(x, x, subsets=1.5)
    with pytest.raises(ValueError, match="`subset_size` >= 2"):
        stats.kid(x, x, subset_size=1)
    with pytest.raises(ValueError, match="`sampler` to be one of"):
        stats.kid(x, x, sampler="python")
    with pytest.raises(ValueError, match="`gamma` to be a positive finite number"):
        stats.kid(x, x, gamma=-1.0)
    with pytest.raises(ValueError, match="`kernel` to be one of"):
        stats.mmd(x, x, kernel="laplace")
    with pytest.raises(ValueError, match="`sigma` to be a positive"):
        stats.mmd(x, x, sigma=0)
    with pytest.raises(ValueError, match=r"`real` with at least 6 rows \(more than k = 5"):
        stats.density_coverage(x[:5], x)
    with pytest.raises(ValueError, match=r"`fake` with D = 6 .*got shape \(20, 3\)"):
        stats.precision_recall(x, x[:, :3])
    with pytest.raises(ValueError, match="`k` >= 1"):
        stats.prdc(x, x, k=0)
    with pytest.raises(TypeError, match="`outputs` with a floating dtype"):
        stats.inception_score(torch.zeros(20, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="`probs` to be a bool"):
        stats.inception_score(x, probs=1)
