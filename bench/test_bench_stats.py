"""pytest-benchmark suite for the feature statistics: ``python -m pytest bench/ --benchmark-only``.

Each group times fastperc next to the peers on the same data, at sizes that take seconds, not
minutes; the standalone ``bench_stats.py`` writes the recorded table at the issue's sizes.
"""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest
import torch

from fastperc import stats

D = 768
_g = torch.Generator().manual_seed(0)
FEATS = (torch.randn(4 * D, D, generator=_g) * torch.arange(1, D + 1) ** -0.75 + 0.5).float()
FEATS_NP = FEATS.numpy()
S1 = stats.FeatureStats.from_features(FEATS[: 2 * D], compute_dtype=torch.float64)
S2 = stats.FeatureStats.from_features(FEATS[2 * D :], compute_dtype=torch.float64)
MU1, SIG1, MU2, SIG2 = S1.mean, S1.cov, S2.mean, S2.cov


def _peer(module: str, attr: str):
    sys.modules.setdefault(
        "torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mod = pytest.importorskip(module)
    return getattr(mod, attr)


@pytest.mark.benchmark(group=f"frechet_distance D={D}")
def test_fd_fastperc(benchmark):
    benchmark(stats.frechet_distance, (MU1, SIG1), (MU2, SIG2))


@pytest.mark.benchmark(group=f"frechet_distance D={D}")
def test_fd_floor_eigvalsh(benchmark):
    benchmark(torch.linalg.eigvalsh, SIG1)


@pytest.mark.benchmark(group=f"frechet_distance D={D}")
def test_fd_torchmetrics(benchmark):
    fn = _peer("torchmetrics.image.fid", "_compute_fid")
    benchmark(fn, MU1, SIG1, MU2, SIG2)


@pytest.mark.benchmark(group=f"frechet_distance D={D}")
def test_fd_pytorch_fid(benchmark):
    fn = _peer("pytorch_fid.fid_score", "calculate_frechet_distance")
    args = [t.numpy() for t in (MU1, SIG1, MU2, SIG2)]

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args)

    benchmark(run)


@pytest.mark.benchmark(group=f"covariance {4 * D}x{D} float32")
def test_accumulate_fastperc(benchmark):
    benchmark(lambda: stats.FeatureStats(D).update(FEATS).cov)


@pytest.mark.benchmark(group=f"covariance {4 * D}x{D} float32")
def test_accumulate_numpy_syrk(benchmark):
    benchmark(lambda: FEATS_NP.T @ FEATS_NP)


@pytest.mark.benchmark(group=f"covariance {4 * D}x{D} float32")
def test_accumulate_np_cov(benchmark):
    benchmark(np.cov, FEATS_NP, rowvar=False)


@pytest.mark.benchmark(group="kid 10x500, D=768")
def test_kid_fastperc(benchmark):
    benchmark(stats.kid, FEATS[:1500], FEATS[1500:], subsets=10, subset_size=500)


@pytest.mark.benchmark(group="kid 10x500, D=768")
def test_kid_clean_fid(benchmark):
    fn = _peer("cleanfid.fid", "kernel_distance")
    a, b = FEATS_NP[:1500].astype(np.float64), FEATS_NP[1500:].astype(np.float64)
    benchmark(fn, a, b, num_subsets=10, max_subset_size=500)
