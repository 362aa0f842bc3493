"""FeatureStats and the Fréchet distance against the float64 reference: streaming and merging,
files, singular covariances against a high-precision computation, and bad input."""

from __future__ import annotations

import functools
import io
import json
import os
import warnings

import numpy as np
import pytest
import torch

from fastperc import stats
from fastperc.reference import stats as ref
from fastperc.stats import FeatureStats, ProvenanceWarning, frechet_distance


@functools.cache
def _basis(d: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1234)
    return torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))[0]


def decaying_features(
    n: int, d: int, seed: int, *, mean: float = 0.5, decay: float = 0.75, shift_seed: int = 0
):
    """Features with a decaying spectrum (eigenvalues ~ i^(-2 decay)) in a fixed random basis,
    around ``mean`` plus a per-dimension offset drawn from ``shift_seed``; float64."""
    f64 = torch.float64
    scale = torch.arange(1, d + 1, dtype=f64) ** -decay
    shift = torch.randn(d, generator=torch.Generator().manual_seed(shift_seed), dtype=f64)
    z = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=f64)
    return (z * scale) @ _basis(d).T + (mean + 0.1 * shift)


def rel(a, b) -> float:
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float((a - b).norm() / b.norm())


# ----------------------------------------------------------------------------------------------
# Streaming moments
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 7, 1000, None], ids=["b1", "b7", "b1000", "all"])
def test_any_split_gives_the_same_moments(batch):
    x = decaying_features(2003, 48, 0, mean=100.0)  # a large mean: raw sums would cancel
    mu, cov = ref.mean_cov(x)
    s = FeatureStats(48)
    for part in [x] if batch is None else x.split(batch):
        s.update(part)
    assert s.count == 2003
    assert rel(s.mean, mu) <= 1e-12
    assert rel(s.cov, cov) <= 1e-12


def test_streaming_blocks_inside_one_update(monkeypatch):
    """Updates are processed in row blocks; tiny blocks exercise the block merge."""
    x = decaying_features(1000, 40, 1)
    monkeypatch.setattr(stats, "_BLOCK_BYTES", 40 * 8 * 37)
    s = FeatureStats(compute_dtype=torch.float64).update(x)
    mu, cov = ref.mean_cov(x)
    assert rel(s.mean, mu) <= 1e-13 and rel(s.cov, cov) <= 1e-12


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_low_precision_inputs_accumulate_to_float64_quality(dtype):
    x = decaying_features(3000, 96, 2, mean=3.0).to(dtype)
    mu, cov = ref.mean_cov(x)  # the float64 two-pass result on the same (rounded) values
    fast = FeatureStats(96).update(x)
    exact = FeatureStats(96, compute_dtype=torch.float64).update(x)
    assert fast.mean.dtype == torch.float64 and fast.cov.dtype == torch.float64
    assert rel(fast.mean, mu) <= 1e-12
    assert rel(fast.cov, cov) <= 1e-6  # float32 products on centred blocks
    assert rel(exact.cov, cov) <= 1e-12
    # numpy input of the same values agrees
    if dtype != torch.bfloat16:
        assert rel(FeatureStats(96).update(x.numpy()).cov, fast.cov) <= 1e-15


# ----------------------------------------------------------------------------------------------
# The C++ accumulation kernels (csrc/moments.cpp)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,d", [(1, 1), (7, 3), (255, 17), (257, 130), (1000, 64)])
def test_center_columns_kernel(dtype, n, d):
    from fastperc import _ext

    rng = np.random.default_rng(n * d)
    big = rng.normal(3.0, 1.0, (n, d + 5)).astype(dtype)
    x = big[:, 2 : 2 + d]  # rows with a stride larger than D
    shift = rng.normal(3.0, 0.1, d)
    z = np.full((n, d), np.nan, dtype)  # poisoned: every element must be written
    code = "f32" if dtype == np.float32 else "f64"
    sums = _ext.cpp().center_columns(x[None, None], z[None, None], shift, code)
    want = x - shift.astype(dtype)
    np.testing.assert_array_equal(z, want)
    np.testing.assert_allclose(sums, want.astype(np.float64).sum(0), rtol=1e-13, atol=1e-12)
    old = _ext.cpp().get_num_threads()
    try:  # fixed chunks: the same bits with one thread
        _ext.cpp().set_num_threads(1)
        again = _ext.cpp().center_columns(x[None, None], z[None, None], shift, code)
    finally:
        _ext.cpp().set_num_threads(old)
    np.testing.assert_array_equal(again, sums)


@pytest.mark.parametrize("gdtype", [np.float32, np.float64])
@pytest.mark.parametrize("d,k", [(1, 1), (5, 2), (130, 3)])
def test_accumulate_scatter_kernel(gdtype, d, k):
    from fastperc import _ext

    rng = np.random.default_rng(d + k)
    m2 = rng.normal(size=(d, d))
    g = rng.normal(size=(d, d)).astype(gdtype)
    u, w = rng.normal(size=(k, d)), rng.normal(size=k)
    want = m2 + g + np.einsum("k,ki,kj->ij", w, u, u)
    code = "f32" if gdtype == np.float32 else "f64"
    _ext.cpp().accumulate_scatter(m2[None, None], g[None, None], u.reshape(-1), w, code)
    np.testing.assert_allclose(m2, want, rtol=1e-13, atol=1e-13)


def test_accumulation_kernels_reject_bad_arguments():
    from fastperc import _ext

    c = _ext.cpp()
    x, z = np.zeros((1, 1, 4, 3), np.float32), np.zeros((1, 1, 4, 3), np.float32)
    with pytest.raises(ValueError, match="`dtype` 'f32' or 'f64'"):
        c.center_columns(x, z, np.zeros(3), "u8")
    with pytest.raises(TypeError, match="`src` with numpy dtype float64"):
        c.center_columns(x, z, np.zeros(3), "f64")
    with pytest.raises(ValueError, match="`shift` of length 3"):
        c.center_columns(x, z, np.zeros(2), "f32")
    with pytest.raises(ValueError, match="`dst` of the shape"):
        c.center_columns(x, z[:, :, :2], np.zeros(3), "f32")
    with pytest.raises(ValueError, match="contiguous rows"):
        c.center_columns(
            np.zeros((1, 1, 3, 4), np.float32).transpose(0, 1, 3, 2), z, np.zeros(3), "f32"
        )
    with pytest.raises(ValueError, match="overlap"):
        c.center_columns(x, x, np.zeros(3), "f32")
    with pytest.raises(ValueError, match="shape \\[1, 1, N, D\\]"):
        c.center_columns(
            np.zeros((2, 1, 4, 3), np.float32),
            np.zeros((2, 1, 4, 3), np.float32),
            np.zeros(3),
            "f32",
        )
    m2, g = np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 3, 3), np.float32)
    with pytest.raises(ValueError, match="`u` of length 6"):
        c.accumulate_scatter(m2, g, np.zeros(5), [1.0, 2.0], "f32")
    with pytest.raises(ValueError, match="`m2` of shape"):
        c.accumulate_scatter(np.zeros((1, 1, 3, 4)), g, np.zeros(4), [1.0], "f32")
    with pytest.raises(ValueError, match="writeable"):
        ro = np.zeros((1, 1, 3, 3))
        ro.flags.writeable = False
        c.accumulate_scatter(ro, g, np.zeros(3), [1.0], "f32")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_accumulation_matches_the_torch_path(monkeypatch, dtype):
    """The C++ centring and scatter kernels give what the torch operations give (float64
    rounding apart), over several blocks and updates."""
    from fastperc import _ext

    x = decaying_features(2500, 40, 8, mean=2.0).to(dtype)

    def run():
        s = FeatureStats(40)
        for part in (x[:700], x[700:701], x[701:]):
            s.update(part)
        return s

    fused = run()
    monkeypatch.setattr(_ext, "cpp_available", lambda: False)
    plain = run()
    assert fused.count == plain.count == 2500
    assert rel(fused.mean, plain.mean) <= 1e-14
    assert rel(fused.cov, plain.cov) <= 1e-12


def test_merge_is_associative_and_equals_one_stream():
    x = decaying_features(900, 32, 3)
    parts = [FeatureStats.from_features(p) for p in (x[:100], x[100:550], x[550:])]
    left = (parts[0] + parts[1]) + parts[2]
    right = parts[0] + (parts[1] + parts[2])
    whole = FeatureStats.from_features(x)
    for s in (left, right):
        assert s.count == 900
        assert rel(s.mean, whole.mean) <= 1e-14 and rel(s.cov, whole.cov) <= 1e-13
    assert parts[0].count == 100  # + does not modify its operands
    empty = FeatureStats(32)
    assert rel((empty + parts[0]).cov, parts[0].cov) == 0
    assert (parts[0].copy().merge(empty)).count == 100
    inplace = parts[0].copy()
    assert inplace.merge(parts[1]) is inplace and inplace.count == 550


def test_state_dict_round_trip_through_torch_save():
    s = FeatureStats.from_features(decaying_features(50, 8, 4), provenance={"extractor": "x"})
    buf = io.BytesIO()
    torch.save(s.state_dict(), buf)
    buf.seek(0)
    t = FeatureStats().load_state_dict(torch.load(buf))
    assert t.count == 50 and t.dim == 8 and t.provenance == {"extractor": "x"}
    assert torch.equal(t.mean, s.mean) and torch.equal(t.cov, s.cov)
    t.update(decaying_features(10, 8, 5))  # still a live accumulator
    assert t.count == 60
    e = FeatureStats(8).load_state_dict(FeatureStats(8).state_dict())
    assert e.count == 0 and e.dim == 8


def test_properties_and_repr():
    s = FeatureStats(4, provenance={"resize": "clean"})
    assert s.dim == 4 and s.count == 0 and "count=0" in repr(s)
    with pytest.raises(ValueError, match="holds no samples"):
        s.mean
    s.update(np.ones((1, 4), np.float32))
    with pytest.raises(ValueError, match="at least 2 samples, this FeatureStats holds 1"):
        s.cov
    mu, sigma = s.update(np.zeros((1, 4))).numpy()
    assert mu.dtype == np.float64 and sigma.shape == (4, 4)
    np.testing.assert_allclose(
        sigma, np.cov(np.r_[np.ones((1, 4)), np.zeros((1, 4))], rowvar=False)
    )


# ----------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------


def test_save_load_round_trip_and_peer_readable(tmp_path):
    x = decaying_features(300, 16, 6)
    s = FeatureStats.from_features(x, provenance={"extractor": "inception", "weights": "sha256:ab"})
    path = tmp_path / "ref_stats"  # no suffix: used as given
    s.save(path)
    assert path.exists() and not (tmp_path / "ref_stats.npz").exists()
    with np.load(path) as z:  # what pytorch-fid / clean-fid do
        np.testing.assert_array_equal(z["mu"], s.mean.numpy())
        np.testing.assert_array_equal(z["sigma"], s.cov.numpy())
        assert z["mu"].dtype == np.float64 and int(z["count"]) == 300
        record = json.loads(str(z["fastperc"]))
    assert record["provenance"]["extractor"] == "inception" and "fastperc_version" in record
    t = FeatureStats.load(path)
    assert t.count == 300 and t.provenance["weights"] == "sha256:ab"
    assert torch.equal(t.mean, s.mean) and rel(t.cov, s.cov) <= 1e-15
    assert rel(t.update(x).cov, FeatureStats.from_features(torch.cat([x, x])).cov) <= 1e-13


def test_load_pytorch_fid_and_clean_fid_files(tmp_path):
    x = decaying_features(200, 12, 7).numpy()
    mu, sigma = x.mean(0), np.cov(x, rowvar=False)
    np.savez_compressed(tmp_path / "pfid.npz", mu=mu, sigma=sigma)  # pytorch-fid --save-stats
    np.savez(tmp_path / "kid.npz", feats=x)  # clean-fid's KID statistics
    a = FeatureStats.load(tmp_path / "pfid.npz")
    assert a.count is None and a.dim == 12
    np.testing.assert_array_equal(a.cov.numpy(), sigma)
    b = FeatureStats.load(str(tmp_path / "kid.npz"))
    assert b.count == 200
    assert frechet_distance(a, b) <= 1e-10
    with pytest.raises(ValueError, match="without a sample count"):
        a.update(x)
    with pytest.raises(ValueError, match="without a sample count"):
        b.merge(a)


def test_corrupted_and_truncated_files_raise_value_error(tmp_path):
    good = tmp_path / "good.npz"
    FeatureStats.from_features(decaying_features(100, 32, 8)).save(good)
    data = good.read_bytes()
    cases = {
        "garbage.npz": os.urandom(1000),
        "truncated.npz": data[: len(data) // 2],
        "tail_cut.npz": data[:-30],
        "empty.npz": b"",
    }
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(ValueError, match="Could not read feature statistics"):
            FeatureStats.load(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        FeatureStats.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "obj.npz", mu=np.array([object()]), sigma=np.eye(1))
    with pytest.raises(ValueError, match="Could not read"):
        FeatureStats.load(tmp_path / "obj.npz")
    np.savez(tmp_path / "nokeys.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match=r"expected the keys `mu` and `sigma`.*found \['a'\]"):
        FeatureStats.load(tmp_path / "nokeys.npz")
    np.savez(tmp_path / "shape.npz", mu=np.zeros(3), sigma=np.eye(4))
    with pytest.raises(ValueError, match=r"sigma of shape \[3, 3\] to match mu, got \(4, 4\)"):
        FeatureStats.load(tmp_path / "shape.npz")
    np.savez(tmp_path / "nan.npz", mu=np.array([np.nan, 0.0]), sigma=np.eye(2))
    with pytest.raises(ValueError, match="NaN or Inf"):
        FeatureStats.load(tmp_path / "nan.npz")
    np.savez(tmp_path / "count.npz", mu=np.zeros(2), sigma=np.eye(2), count=np.array(1.5))
    with pytest.raises(ValueError, match="`count` must be an integer"):
        FeatureStats.load(tmp_path / "count.npz")
    np.savez(tmp_path / "json.npz", mu=np.zeros(2), sigma=np.eye(2), fastperc=np.array("{oops"))
    with pytest.raises(ValueError, match="not valid JSON"):
        FeatureStats.load(tmp_path / "json.npz")


def test_save_needs_two_samples_and_leaves_no_partial_file(tmp_path):
    with pytest.raises(ValueError, match="at least 2 samples"):
        FeatureStats(3).update(np.zeros((1, 3))).save(tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------
# Fréchet distance against the reference
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [64, 768])
def test_frechet_distance_matches_the_reference(d):
    a, b = decaying_features(d + 200, d, 10), decaying_features(d + 107, d, 11, mean=0.6)
    mu1, s1 = ref.mean_cov(a)
    mu2, s2 = ref.mean_cov(b)
    want = ref.frechet_distance(mu1, s1, mu2, s2)
    sa, sb = FeatureStats.from_features(a), FeatureStats.from_features(b)
    assert abs(frechet_distance(sa, sb) - want) <= 1e-10 * want
    assert abs(frechet_distance((mu1.numpy(), s1.numpy()), (mu2, s2)) - want) <= 1e-10 * want
    assert abs(frechet_distance(a, sb) - want) <= 1e-10 * want  # raw features on one side
    if d == 64:  # every method, and the plain eigvals formula, on the small case
        assert abs(ref.frechet_distance(mu1, s1, mu2, s2, method="eigvals") - want) <= 1e-9 * want
        for method in ("cholesky", "eigh", "gram"):
            assert abs(frechet_distance(a, b, method=method) - want) <= 1e-10 * want, method


@pytest.mark.parametrize("d", [5, 193, 450])
def test_frechet_distance_cpu_linalg_paths_agree(monkeypatch, d):
    """On the CPU the congruence and the eigenvalues run in numpy's LAPACK up to a size and in
    torch's above it: both match the reference (odd sizes: partial panels of the blocking)."""
    import fastperc.stats as st

    a, b = decaying_features(d + 31, d, 20), decaying_features(2 * d + 3, d, 21, mean=0.3)
    mu1, s1 = ref.mean_cov(a)
    mu2, s2 = ref.mean_cov(b)
    want = ref.frechet_distance(mu1, s1, mu2, s2)
    low = torch.linalg.cholesky(s1)
    full = (low.T @ s2 @ low).tril()
    got = {}
    for limit in (10**9, 0):
        monkeypatch.setattr(st, "_NUMPY_EIG_MAX", limit)
        for block in (None, 64):
            m = st._congruence_lower(low, s2, block)
            assert isinstance(m, torch.Tensor) and m.dtype == torch.float64
            torch.testing.assert_close(
                m.tril(), full, rtol=1e-12, atol=1e-12 * float(full.abs().max())
            )
        got[limit] = frechet_distance((mu1, s1), (mu2, s2), method="cholesky")
        assert abs(got[limit] - want) <= 1e-10 * want, limit
    assert abs(got[0] - got[10**9]) <= 1e-11 * want


def test_identical_inputs_give_zero_never_negative():
    x = decaying_features(500, 64, 12)
    s = FeatureStats.from_features(x)
    tr = float(s.cov.trace())
    for a, b in [(s, s), (x, x), (s, x), ((s.mean, s.cov), x.numpy())]:
        fd = frechet_distance(a, b)
        assert 0.0 <= fd <= 1e-12 * tr
    assert 0.0 <= frechet_distance(x[:20], x[:20]) <= 1e-12 * tr  # singular: N < D


def _mp_frechet(a: np.ndarray, b: np.ndarray, dps: int = 40):
    """FD of two small feature sets in mpmath at ``dps`` digits, through the eigenvalues of
    C C^T, C = A B^T (A, B the centred rows over sqrt(N - 1)): no float64 anywhere."""
    mp = pytest.importorskip("mpmath")
    with mp.workdps(dps):

        def centred(x):
            n, d = x.shape
            rows = [[mp.mpf(float(v)) for v in r] for r in x]
            mu = [mp.fsum(r[j] for r in rows) / n for j in range(d)]
            s = mp.sqrt(n - 1)
            return mu, mp.matrix([[(r[j] - mu[j]) / s for j in range(d)] for r in rows])

        mu1, a_ = centred(a)
        mu2, b_ = centred(b)
        c = a_ * b_.T
        g = c.T * c if c.cols <= c.rows else c * c.T
        ev = mp.eigsy(g, eigvals_only=True)
        trs = mp.fsum(mp.sqrt(e) for e in ev if e > 0)
        tr1 = mp.fsum(v**2 for v in a_)
        tr2 = mp.fsum(v**2 for v in b_)
        dmu = mp.fsum((p - q) ** 2 for p, q in zip(mu1, mu2))
        return dmu + tr1 + tr2 - 2 * trs


@pytest.mark.parametrize("n1,n2", [(30, 20), (64, 40), (40, 90)])
def test_singular_covariances_match_high_precision(n1, n2):
    """N < D: S1 S2 is singular; sqrtm-based code goes complex here. Every method stays real
    and matches a 40-digit computation to near float64 rounding."""
    d = 64
    a, b = decaying_features(n1, d, 20), decaying_features(n2, d, 21, mean=0.55)
    want = float(_mp_frechet(a.numpy(), b.numpy()))
    mu1, s1 = ref.mean_cov(a)
    mu2, s2 = ref.mean_cov(b)
    got = {
        "features": frechet_distance(a, b),
        "gram": frechet_distance(a, b, method="gram"),
        "half": frechet_distance(a, (mu2, s2), method="gram"),
        "stats": frechet_distance((mu1, s1), (mu2, s2)),
        "eigh": frechet_distance((mu1, s1), (mu2, s2), method="eigh"),
    }
    for name, v in got.items():
        assert isinstance(v, float)
        assert abs(v - want) <= 1e-12 * want, (name, v, want)
    # the plain reference takes square roots of the ~1e-16 noise around the zero eigenvalues
    # and is off by up to ~1e-7 here: the noise threshold is what makes the difference
    assert abs(ref.frechet_distance(mu1, s1, mu2, s2) - want) <= 1e-6 * want


def test_cholesky_method_raises_when_both_covariances_are_singular():
    a, b = decaying_features(10, 32, 22), decaying_features(12, 32, 23)
    sa, sb = FeatureStats.from_features(a), FeatureStats.from_features(b)
    with pytest.raises(ValueError, match="method='cholesky' needs one positive definite"):
        frechet_distance(sa, sb, method="cholesky")
    assert frechet_distance(sa, sb) == pytest.approx(frechet_distance(a, b), rel=1e-12)


def test_one_singular_side_factors_the_other():
    a, b = decaying_features(20, 48, 24), decaying_features(80, 48, 25)
    want = float(_mp_frechet(a.numpy(), b.numpy()))
    sa, sb = FeatureStats.from_features(a), FeatureStats.from_features(b)
    assert frechet_distance(sa, sb, method="cholesky") == pytest.approx(want, rel=1e-12)
    assert frechet_distance(sb, sa, method="cholesky") == pytest.approx(want, rel=1e-12)


def test_cholesky_factor_is_cached_on_the_statistics(monkeypatch):
    """A FeatureStats keeps the Cholesky factor a distance computed: later distances against it
    (either argument order) skip the factorisation and give the same value; every change of
    the statistics drops it; copies share it, pickles and state dicts leave it out."""
    import pickle

    d = 40
    ref_x, x1, x2 = (decaying_features(200, d, s, mean=0.5 + 0.05 * s) for s in (30, 31, 32))
    calls = []
    real = torch.linalg.cholesky_ex
    monkeypatch.setattr(torch.linalg, "cholesky_ex", lambda m: calls.append(1) or real(m))

    r = FeatureStats.from_features(ref_x)
    s1, s2 = FeatureStats.from_features(x1), FeatureStats.from_features(x2)
    want1 = ref.frechet_distance(r.mean, r.cov, s1.mean, s1.cov)
    calls.clear()
    assert frechet_distance(r, s1) == pytest.approx(want1, rel=1e-12)
    assert len(calls) == 1  # r factored, kept
    assert frechet_distance(r, s2) > 0 and len(calls) == 1  # reused
    assert frechet_distance(s1, r) == pytest.approx(want1, rel=1e-12) and len(calls) == 1
    c = r.copy()
    assert frechet_distance(c, s1) == pytest.approx(want1, rel=1e-12) and len(calls) == 1
    p = pickle.loads(pickle.dumps(r))
    assert frechet_distance(p, s1) == pytest.approx(want1, rel=1e-12) and len(calls) == 2
    assert "factor" not in str(sorted(r.state_dict()))
    # every change drops it, and the distance follows the new statistics
    extra = decaying_features(50, d, 33, mean=0.9)
    for change in (
        lambda: r.update(extra),
        lambda: r.merge(FeatureStats.from_features(extra)),
        lambda: r.load_state_dict(FeatureStats.from_features(x2).state_dict()),
    ):
        change()
        calls.clear()
        got = frechet_distance(r, s1)
        assert len(calls) == 1
        want = ref.frechet_distance(r.mean, r.cov, s1.mean, s1.cov)
        assert got == pytest.approx(want, rel=1e-10)
    assert frechet_distance(c, s1) == pytest.approx(want1, rel=1e-12)  # the copy kept its own
    # a singular covariance is remembered as such: the other side is factored, once
    sing = FeatureStats.from_features(x1[:10])
    calls.clear()
    v1 = frechet_distance(sing, s2)
    v2 = frechet_distance(sing, s2)
    assert v1 == v2 and len(calls) == 2  # sing (fails) and s2, then both known
    # fd_infinity factors the fixed reference once, whatever the number of sizes
    calls.clear()
    stats.fd_infinity((r.mean, r.cov), x1, num_points=5)
    assert len(calls) == 1


def test_gram_path_blocks(monkeypatch):
    a, b = decaying_features(40, 64, 26), decaying_features(90, 64, 27)
    want = frechet_distance(a, b, method="eigh")
    monkeypatch.setattr(stats, "_BLOCK_BYTES", 8 * 90 * 7)
    assert frechet_distance(a, b, method="gram") == pytest.approx(want, rel=1e-12)


def test_provenance_mismatch_warns_naming_the_difference(tmp_path):
    x = decaying_features(100, 8, 30)
    a = FeatureStats.from_features(x, provenance={"extractor": "inception", "resize": "clean"})
    b = FeatureStats.from_features(
        x, provenance={"extractor": "inception", "resize": "legacy_pytorch"}
    )
    with pytest.warns(ProvenanceWarning, match="resize 'clean' vs 'legacy_pytorch'"):
        frechet_distance(a, b)
    with pytest.warns(ProvenanceWarning, match="Merging.*resize"):
        a + b
    a.save(tmp_path / "a.npz")
    with pytest.warns(ProvenanceWarning, match="resize"):
        frechet_distance(FeatureStats.load(tmp_path / "a.npz"), b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # same provenance, a key on one side only, or the fastperc version alone: silent
        frechet_distance(a, FeatureStats.load(tmp_path / "a.npz"))
        frechet_distance(a, FeatureStats.from_features(x, provenance={"weights": "w"}))
        frechet_distance(a, (b.mean, b.cov))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_matches_cpu():
    a, b = decaying_features(3000, 256, 40), decaying_features(2000, 256, 41)
    sa, sb = FeatureStats.from_features(a.cuda()), FeatureStats.from_features(b.float().cuda())
    assert sa.device.type == "cuda"
    cpu = frechet_distance(a, b)
    assert frechet_distance(sa, sb) == pytest.approx(cpu, rel=1e-9)
    assert frechet_distance(a.cuda(), b[:100].cuda()) == pytest.approx(
        frechet_distance(a, b[:100]), rel=1e-9
    )


# ----------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------


def test_nonfinite_rows_are_counted_and_named():
    x = np.ones((10, 4), np.float32)
    x[3, 1] = np.nan
    x[7, 0] = np.inf
    with pytest.raises(
        ValueError, match=r"`features` has 2 of 10 rows with NaN or Inf values \(rows 3, 7\)"
    ):
        FeatureStats(4).update(x)
    with pytest.raises(ValueError, match="`a` has 2 of 10 rows with NaN"):
        frechet_distance(x, x)
    big = torch.full((3, 4), 6e4, dtype=torch.float16)  # row sums overflow float16, values don't
    assert FeatureStats(4).update(big).count == 3


def test_shape_dtype_and_type_errors():
    s = FeatureStats(4)
    with pytest.raises(ValueError, match=r"`features` of shape \[N, D\].*got \(4,\)"):
        s.update(torch.zeros(4))
    with pytest.raises(ValueError, match=r"got \(2, 3, 4\)"):
        s.update(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="non-empty `features`"):
        s.update(torch.zeros(0, 4))
    with pytest.raises(
        ValueError, match=r"D = 4 features per row \(this FeatureStats' dim\), got shape \(5, 3\)"
    ):
        s.update(torch.zeros(5, 3))
    with pytest.raises(TypeError, match="floating dtype .* got int64"):
        s.update(torch.zeros(5, 4, dtype=torch.int64))
    with pytest.raises(TypeError, match="floating dtype .* got numpy dtype uint8"):
        s.update(np.zeros((5, 4), np.uint8))
    with pytest.raises(TypeError, match="floating dtype"):
        s.update(np.zeros((5, 4), bool))
    with pytest.raises(TypeError, match="got complex64"):
        s.update(torch.zeros(5, 4, dtype=torch.complex64))
    with pytest.raises(TypeError, match="torch.Tensor or numpy.ndarray, got list"):
        s.update([[0.0] * 4])
    with pytest.raises(TypeError, match="`dim` to be an int"):
        FeatureStats(2.0)
    with pytest.raises(ValueError, match="`dim` >= 1"):
        FeatureStats(0)
    with pytest.raises(ValueError, match="`compute_dtype`"):
        FeatureStats(3, compute_dtype=torch.float32)
    with pytest.raises(TypeError, match="`provenance\\['a'\\]`"):
        FeatureStats(3, provenance={"a": [1]})
    with pytest.raises(ValueError, match="different dimensions: 4 and 3"):
        FeatureStats(4).update(np.zeros((2, 4))).merge(FeatureStats(3).update(np.zeros((2, 3))))
    with pytest.raises(TypeError, match="`other` to be a FeatureStats"):
        s.merge((0, 1))
    np.testing.assert_array_equal(  # longdouble, big-endian and negative strides are accepted
        FeatureStats(4).update(np.ones((3, 4), np.longdouble)).mean, np.ones(4)
    )
    FeatureStats(4).update(np.ones((3, 4), ">f4")[::-1])


def test_frechet_distance_argument_errors():
    x = decaying_features(30, 5, 50)
    mu, sigma = ref.mean_cov(x)
    with pytest.raises(ValueError, match="different feature dimensions: 5 and 4"):
        frechet_distance(x, x[:, :4])
    with pytest.raises(
        ValueError, match=r"`b` with at least 2 rows \(a covariance needs 2\), got 1"
    ):
        frechet_distance(x, x[:1])
    with pytest.raises(ValueError, match="`a` holds 1 sample"):
        frechet_distance(FeatureStats(5).update(x[:1]), x)
    with pytest.raises(ValueError, match=r"`a` mu of shape \[D\]"):
        frechet_distance((sigma, sigma), x)
    with pytest.raises(ValueError, match=r"sigma of shape \[5, 5\] to match mu"):
        frechet_distance((mu, sigma[:4, :4]), x)
    asym = sigma.clone()
    asym[0, 1] += 1.0
    with pytest.raises(ValueError, match="symmetric covariance"):
        frechet_distance((mu, asym), x)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        frechet_distance(
            (mu, -torch.eye(5, dtype=torch.float64)), (mu, -torch.eye(5)), method="eigh"
        )
    with pytest.raises(ValueError, match=r"\(mu, sigma\) pair, got a sequence of 3"):
        frechet_distance((mu, sigma, sigma), x)
    with pytest.raises(TypeError, match="FeatureStats, a \\(mu, sigma\\) pair or an \\[N, D\\]"):
        frechet_distance("stats.npz", x)
    with pytest.raises(ValueError, match="`method` to be one of"):
        frechet_distance(x, x, method="sqrtm")
    with pytest.raises(ValueError, match="method='gram' needs raw features"):
        frechet_distance((mu, sigma), (mu, sigma), method="gram")
