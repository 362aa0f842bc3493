"""Reference feature statistics: every metric of :mod:`fastperc.stats`, the plain way, in float64.

These functions are the specification the fast implementations are tested against. They take
``[N, D]`` torch tensors or numpy arrays, compute in float64 on the CPU, materialise whole
matrices (memory O(N^2) or O(D^2)) and favour the textbook formula over speed:

* moments: the two-pass mean and the ``ddof=1`` covariance ``Xc^T Xc / (N - 1)``;
* Fréchet distance ``|mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2)``, with the trace term
  computed two independent ways: the symmetric eigen formulation (:func:`trace_sqrt_product`)
  and the plain one of the non-symmetric product (:func:`trace_sqrt_product_eigvals`, what
  ``sqrtm``/``eigvals``-based implementations compute);
* KID (polynomial-kernel unbiased MMD^2) on given subsets, CMMD (Gaussian-kernel MMD), k-NN
  precision/recall and density/coverage on full distance matrices, Inception Score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "density_coverage",
    "frechet_distance",
    "inception_score",
    "kid",
    "knn_radii",
    "mean_cov",
    "mmd",
    "mmd2_unbiased",
    "pairwise_distances",
    "polynomial_kernel",
    "precision_recall",
    "trace_sqrt_product",
    "trace_sqrt_product_eigvals",
]


def f64(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A float64 CPU copy of ``x``."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.array(x, dtype=np.float64))
    return x.detach().to("cpu", torch.float64).clone()


# ----------------------------------------------------------------------------------------------
# Moments and the Fréchet distance
# ----------------------------------------------------------------------------------------------


def mean_cov(features: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-pass mean and unbiased (``ddof=1``) covariance of ``[N, D]`` features."""
    x = f64(features)
    mu = x.mean(0)
    xc = x - mu
    return mu, xc.T @ xc / (x.shape[0] - 1)


def trace_sqrt_product(sigma1: torch.Tensor, sigma2: torch.Tensor) -> float:
    """``tr sqrt(S1 S2)`` for covariance matrices, by the symmetric eigen formulation.

    ``S1 = V diag(w) V^T`` (eigh, negative rounding noise clamped to 0), ``R = V diag(sqrt w)
    V^T``; ``R S2 R`` is symmetric positive semi-definite and similar to ``S1 S2``
    (``R^-1 (R S2 R) R = S1 S2`` when S1 is invertible, by continuity otherwise), so its
    eigenvalues are those of ``S1 S2``, all real and >= 0, and the trace of the square root is
    the sum of their square roots.
    """
    s1, s2 = f64(sigma1), f64(sigma2)
    w, v = torch.linalg.eigh((s1 + s1.T) / 2)
    r = (v * w.clamp_min(0).sqrt()) @ v.T
    m = r @ s2 @ r
    lam = torch.linalg.eigvalsh((m + m.T) / 2)
    return float(lam.clamp_min(0).sqrt().sum())


def trace_sqrt_product_eigvals(sigma1: torch.Tensor, sigma2: torch.Tensor) -> float:
    """``tr sqrt(S1 S2)`` the plain way: the eigenvalues of the non-symmetric product ``S1 S2``
    (as a matrix square root would see them), square-rooted in complex arithmetic, real part.

    This is what ``sqrtm``- and ``eigvals``-based implementations compute; it is accurate for
    well-conditioned covariances and is kept as the independent check of
    :func:`trace_sqrt_product`.
    """
    lam = torch.linalg.eigvals(f64(sigma1) @ f64(sigma2))
    return float(lam.sqrt().real.sum())


def frechet_distance(
    mu1: torch.Tensor | np.ndarray,
    sigma1: torch.Tensor | np.ndarray,
    mu2: torch.Tensor | np.ndarray,
    sigma2: torch.Tensor | np.ndarray,
    *,
    method: str = "eigh",
) -> float:
    """``|mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2)``.

    Args:
        mu1, sigma1, mu2, sigma2: means ``[D]`` and covariances ``[D, D]``.
        method: ``"eigh"`` (:func:`trace_sqrt_product`) or ``"eigvals"``
            (:func:`trace_sqrt_product_eigvals`).
    """
    m1, m2, s1, s2 = f64(mu1), f64(mu2), f64(sigma1), f64(sigma2)
    tr = trace_sqrt_product(s1, s2) if method == "eigh" else trace_sqrt_product_eigvals(s1, s2)
    d = m1 - m2
    return float(d @ d + s1.trace() + s2.trace() - 2 * tr)


# ----------------------------------------------------------------------------------------------
# Kernel distances
# ----------------------------------------------------------------------------------------------


def polynomial_kernel(
    x: torch.Tensor, y: torch.Tensor, degree: int = 3, gamma: float | None = None, coef: float = 1.0
) -> torch.Tensor:
    """``(gamma x.y + coef)^degree`` for all pairs; ``gamma`` defaults to ``1 / D``."""
    x, y = f64(x), f64(y)
    g = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * g + coef) ** degree


def mmd2_unbiased(kxx: torch.Tensor, kyy: torch.Tensor, kxy: torch.Tensor) -> float:
    """The unbiased MMD^2 estimator from kernel matrices of two samples of equal size ``m``:
    off-diagonal means of ``Kxx`` and ``Kyy`` minus twice the full mean of ``Kxy``."""
    m = kxx.shape[0]
    sxx = kxx.sum() - kxx.diagonal().sum()
    syy = kyy.sum() - kyy.diagonal().sum()
    return float((sxx + syy) / (m * (m - 1)) - 2 * kxy.sum() / (m * m))


def kid(
    feats_a: torch.Tensor | np.ndarray,
    feats_b: torch.Tensor | np.ndarray,
    subsets: Sequence[tuple[Sequence[int], Sequence[int]]],
    *,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
) -> tuple[float, float, list[float]]:
    """KID on given subsets: for each ``(idx_a, idx_b)`` the unbiased polynomial-kernel MMD^2
    of ``feats_a[idx_a]`` and ``feats_b[idx_b]``. Returns the mean, the population standard
    deviation (``ddof=0``) and the per-subset values."""
    a, b = f64(feats_a), f64(feats_b)
    vals = []
    for ia, ib in subsets:
        x, y = a[torch.as_tensor(np.asarray(ia))], b[torch.as_tensor(np.asarray(ib))]
        kxx = polynomial_kernel(x, x, degree, gamma, coef)
        kyy = polynomial_kernel(y, y, degree, gamma, coef)
        kxy = polynomial_kernel(x, y, degree, gamma, coef)
        vals.append(mmd2_unbiased(kxx, kyy, kxy))
    v = np.asarray(vals)
    return float(v.mean()), float(v.std()), vals


def mmd(
    feats_a: torch.Tensor | np.ndarray,
    feats_b: torch.Tensor | np.ndarray,
    *,
    sigma: float = 10.0,
    scale: float = 1000.0,
    unbiased: bool = False,
) -> float:
    """CMMD (Jayasumana et al. 2024): ``scale * (mean Kxx + mean Kyy - 2 mean Kxy)`` with the
    Gaussian kernel ``exp(-|x - y|^2 / (2 sigma^2))``; means over all pairs including ``i = j``
    (the estimator of the CMMD paper's code), or over ``i != j`` with ``unbiased=True``."""
    x, y = f64(feats_a), f64(feats_b)

    def k(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return torch.exp(-(pairwise_distances(p, q) ** 2) / (2 * sigma**2))

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    if unbiased:
        n, m = x.shape[0], y.shape[0]
        exx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
        eyy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    else:
        exx, eyy = kxx.mean(), kyy.mean()
    return float(scale * (exx + eyy - 2 * kxy.mean()))


# ----------------------------------------------------------------------------------------------
# k-NN manifold metrics
# ----------------------------------------------------------------------------------------------


def pairwise_distances(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Euclidean distances of all pairs, from coordinate differences (no Gram expansion)."""
    return torch.cdist(f64(x), f64(y), compute_mode="donot_use_mm_for_euclid_dist")


def knn_radii(x: torch.Tensor | np.ndarray, k: int) -> torch.Tensor:
    """Distance from each row of ``x`` to its ``k``-th nearest other row: the ``(k+1)``-th
    smallest entry of its row of the distance matrix, whose smallest is the distance 0 to
    itself."""
    d = pairwise_distances(x, x)
    d.fill_diagonal_(0.0)
    return d.sort(dim=1).values[:, k]


def precision_recall(
    real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray, k: int = 3
) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Precision: the fraction of fake samples inside at least one real k-NN ball (``d <= r``);
    recall: the fraction of real samples inside at least one fake k-NN ball.
    """
    d = pairwise_distances(real, fake)  # [N_real, N_fake]
    r_real, r_fake = knn_radii(real, k), knn_radii(fake, k)
    precision = (d <= r_real[:, None]).any(0).double().mean()
    recall = (d <= r_fake[None, :]).any(1).double().mean()
    return float(precision), float(recall)


def density_coverage(
    real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray, k: int = 5
) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), strict inequalities as the authors' code.

    Density: ``1/(k M) sum_j sum_i [d(real_i, fake_j) < r_i]``; coverage: the fraction of real
    samples whose nearest fake sample lies inside their own k-NN ball.
    """
    d = pairwise_distances(real, fake)
    r = knn_radii(real, k)
    inside = d < r[:, None]
    density = inside.double().sum(0).mean() / k
    coverage = (d.min(1).values < r).double().mean()
    return float(density), float(coverage)


# ----------------------------------------------------------------------------------------------
# Inception Score
# ----------------------------------------------------------------------------------------------


def inception_score(probs: torch.Tensor | np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Inception Score of class probabilities ``[N, C]`` (Salimans et al. 2016).

    The rows are cut into ``splits`` consecutive parts ``[i N // splits, (i + 1) N // splits)``
    as the original code does; each part scores ``exp(mean_x KL(p(y|x) || p(y)))`` with
    ``p(y)`` the part's mean, ``0 log 0 = 0``. Returns the mean and the population standard
    deviation over the parts.
    """
    p = f64(probs)
    n = p.shape[0]
    scores = []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        py = part.mean(0, keepdim=True)
        terms = torch.where(part > 0, part * (torch.log(part) - torch.log(py)), 0.0)
        scores.append(math.exp(float(terms.sum(1).mean())))
    s = np.asarray(scores)
    return float(s.mean()), float(s.std())
