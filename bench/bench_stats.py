"""Feature statistics against pytorch-fid, clean-fid, torchmetrics and prdc, in one run.

Times, as medians of interleaved repeats (every peer re-timed in the same run):

* the Fréchet distance of two covariances at D = 768, 2048, 4096: fastperc, scipy's ``sqrtm``
  path (pytorch-fid's ``calculate_frechet_distance``; clean-fid's is the same code),
  torchmetrics' ``eigvals`` path, and the floor, one float64 ``torch.linalg.eigvalsh`` of a
  D x D matrix; with each result's relative difference from fastperc's;
* accumulating 50k x 2048 float32 features: fastperc (float32 and float64 products),
  numpy's float32 ``A.T @ A`` (a ``syrk``: the floor), ``np.cov`` in float64 (pytorch-fid)
  and torchmetrics' update; with the covariance error against a float64 two-pass result;
* KID, 100 subsets of 1000, D = 2048, against clean-fid on the same subsets;
* precision/recall/density/coverage against ``prdc``, with the peak memory of each call.

With ``--device cuda`` every group also times fastperc on CUDA tensors (and the floors on the
GPU), next to the CPU rows of the same run; a CUDA row's ``peak MB`` is GPU memory.

Writes ``bench/results/stats.json`` and the statistics section of ``bench/RESULTS.md``.

    python bench/bench_stats.py [--quick] [--repeat 5] [--no-write] [--device cuda]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import threading
import time
import types
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import copy_bandwidth, machine, write_json

from fastperc import stats

# torchvision's compiled operators may not match the installed torch; the peers only need its
# Python parts (see tests/test_stats_peers.py).
sys.modules.setdefault(
    "torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations")
)


def _peer(module: str, attr: str):
    import importlib

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return getattr(importlib.import_module(module), attr)
    except Exception as exc:  # a missing or broken peer is reported, not fatal
        print(f"  (skipping {module}.{attr}: {exc})", flush=True)
        return None


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings(), contextlib.redirect_stdout(None):
        warnings.simplefilter("ignore")
        yield


class _PeakRSS:
    """Peak resident memory above the level at entry, sampled every 2 ms from /proc."""

    def __enter__(self):
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _rss() -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:  # pragma: no cover - not Linux
            return 0

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        self.mb = (self.peak - self.base) / 2**20


# Pause before each timed call: the providers use two BLAS libraries (torch's and numpy's /
# scipy's), whose worker threads keep spinning for a while after a call; on a 2-core machine a
# call that starts while the other library's workers spin runs up to 2x slower (measured), so
# without the pause a provider's time would depend on which one ran before it.
_SETTLE_S = 0.3


_CUDA = " (cuda)"  # suffix of the providers that run on the GPU
_GPU = torch.device("cuda")


def _on_gpu(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` timed to the end of its GPU work."""

    def run():
        val = fn()
        torch.cuda.synchronize()
        return val

    return run


def interleaved(providers: dict[str, Callable[[], object]], repeat: int) -> dict[str, dict]:
    """Time every provider ``repeat`` times round-robin (one warm-up each, which also gives the
    result), each call after a pause of ``_SETTLE_S``; a provider whose single run exceeds
    30 s is run only once. Providers named ``... (cuda)`` are synchronised after each call and
    report their peak GPU memory."""
    out: dict[str, dict] = {}
    providers = {k: _on_gpu(f) if k.endswith(_CUDA) else f for k, f in providers.items()}
    for name, fn in providers.items():
        time.sleep(_SETTLE_S)
        gpu = name.endswith(_CUDA)
        if gpu:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        with _quiet(), _PeakRSS() as mem:
            t0 = time.perf_counter()
            val = fn()
            first = time.perf_counter() - t0
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if gpu else mem.mb
        out[name] = {"value": val, "times": [first], "peak_mb": peak, "slow": first > 30}
    for _ in range(repeat - 1):
        for name, fn in providers.items():
            if out[name]["slow"]:
                continue
            time.sleep(_SETTLE_S)
            with _quiet():
                t0 = time.perf_counter()
                fn()
                out[name]["times"].append(time.perf_counter() - t0)
    for r in out.values():
        r["median_s"] = statistics.median(r["times"][1:] if len(r["times"]) > 2 else r["times"])
    return out


def _row(group: str, op: str, size: str, provider: str, r: dict, **extra) -> dict:
    return {
        "group": group,
        "op": op,
        "size": size,
        "provider": provider,
        "median_ms": r["median_s"] * 1e3,
        "runs": len(r["times"]),
        "mpix_s": 0.0,  # not an image op; see items_s where a throughput makes sense
        "peak_mb": round(r["peak_mb"], 1),
        "threads": torch.get_num_threads(),
        "device": "cuda" if provider.endswith(_CUDA) else "cpu",
        **extra,
    }


def _print(rows: list[dict]) -> None:
    for r in rows:
        extra = "  ".join(
            f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in r.items()
            if k in ("rel_diff", "cov_rel_err", "peak_mb", "speedup_vs_fastperc") and v is not None
        )
        print(
            f"  {r['op']:<22} {r['size']:<22} {r['provider']:<34} {r['median_ms']:10.1f} ms  {extra}",
            flush=True,
        )


# ----------------------------------------------------------------------------------------------
# Benchmarks
# ----------------------------------------------------------------------------------------------


def _covariances(d: int, seed: int) -> stats.FeatureStats:
    """Statistics of 2D float32 features with a decaying spectrum."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2 * d, d, generator=g) * torch.arange(1, d + 1) ** -0.75 + 0.5
    return stats.FeatureStats(d, compute_dtype=torch.float64).update(x)


_CACHED = "fastperc, reference's factor kept"
_GEMM = "float64 GEMM D x D"
_BOUND = "bound: floor + Cholesky and congruence at the GEMM rate"


_FLOOR = "floor: torch.linalg.eigvalsh"


def bench_fd(
    dims: list[int], repeat: int, peer_budget_s: float, gpu: torch.device | None = None
) -> list[dict]:
    calc_pfid = _peer("pytorch_fid.fid_score", "calculate_frechet_distance")
    tm_fid = _peer("torchmetrics.image.fid", "_compute_fid")
    sqrtm_name = "pytorch-fid / clean-fid (scipy sqrtm)"
    rows: list[dict] = []
    last: tuple[int, float] | None = None  # (D, seconds) of the last sqrtm run
    for d in dims:
        st1, st2 = _covariances(d, 1), _covariances(d, 2)
        mu1, s1 = st1.mean, st1.cov
        mu2, s2 = st2.mean, st2.cov
        args = (mu1, s1, mu2, s2)
        np_args = [t.numpy() for t in args]
        stats.frechet_distance(st1, st2)  # st1 keeps its Cholesky factor from here on
        providers: dict[str, Callable[[], object]] = {
            "fastperc": lambda a=args: stats.frechet_distance(a[:2], a[2:]),
            _CACHED: lambda a=st1, b=st2: stats.frechet_distance(a, b),
            _FLOOR: lambda s=s1: torch.linalg.eigvalsh(s),
            _GEMM: lambda s=s1, t=s2: s @ t,
        }
        if gpu is not None:
            ga = tuple(t.to(gpu) for t in args)
            providers["fastperc" + _CUDA] = lambda a=ga: stats.frechet_distance(a[:2], a[2:])
            providers[_FLOOR + _CUDA] = lambda s=ga[1]: torch.linalg.eigvalsh(s)
        if tm_fid is not None:
            providers["torchmetrics (eigvals)"] = lambda a=args: float(tm_fid(*a))
        projected = None if last is None else last[1] * (d / last[0]) ** 3
        if calc_pfid is not None and (projected is None or projected <= peer_budget_s):
            providers[sqrtm_name] = lambda a=np_args: float(calc_pfid(*a))
        res = interleaved(providers, repeat)
        ours, floor = res["fastperc"], res[_FLOOR]
        # Cholesky (D^3 / 3 flops) and congruence (D^3) are 2/3 of a GEMM's 2 D^3: the least
        # any Cholesky-based method can add to one eigvalsh, at this run's GEMM speed
        gemm = res.pop(_GEMM)
        bound_s = floor["median_s"] + 2 / 3 * gemm["median_s"]
        res[_BOUND] = {"value": None, "times": [bound_s], "median_s": bound_s, "peak_mb": 0.0}
        for name, r in res.items():
            rel = (
                None
                if r["value"] is None or "floor" in name
                else abs(float(r["value"]) - ours["value"]) / ours["value"]
            )
            rows.append(
                _row(
                    "fd",
                    "frechet_distance",
                    f"D={d}",
                    name,
                    r,
                    rel_diff=rel,
                    speedup_vs_fastperc=r["median_s"] / ours["median_s"],
                    ratio_to_floor=r["median_s"]
                    / res[_FLOOR + _CUDA if name.endswith(_CUDA) else _FLOOR]["median_s"],
                    note=(
                        f"derived: floor + 2/3 of one D x D GEMM ({gemm['median_s'] * 1e3:.0f} ms)"
                        if name == _BOUND
                        else None
                    ),
                )
            )
        if sqrtm_name in res:
            last = (d, res[sqrtm_name]["median_s"])
        elif calc_pfid is not None and projected is not None:
            rows.append(
                {
                    "group": "fd",
                    "op": "frechet_distance",
                    "size": f"D={d}",
                    "provider": sqrtm_name,
                    "median_ms": projected * 1e3,
                    "runs": 0,
                    "mpix_s": 0.0,
                    "threads": torch.get_num_threads(),
                    "speedup_vs_fastperc": projected / ours["median_s"],
                    "note": f"not run: {projected:.0f} s projected (D^3) from D={last[0]}",
                }
            )
        _print([r for r in rows if r["size"] == f"D={d}"])
    return rows


def bench_accumulate(n: int, d: int, repeat: int, gpu: torch.device | None = None) -> list[dict]:
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(n, d, generator=g) * torch.arange(1, d + 1) ** -0.5 + 3.0).float()
    xn = x.numpy()
    x64 = x.double()
    want = ((x64 - x64.mean(0)).T @ (x64 - x64.mean(0))) / (n - 1)  # float64 two-pass
    del x64
    tm_cls = _peer("torchmetrics.image.fid", "FrechetInceptionDistance")

    class Identity(torch.nn.Module):
        num_features = d

        def forward(self, t):
            return t

    def torchmetrics_update():
        m = tm_cls(feature=Identity())
        m.update(x, real=True)
        mean = m.real_features_sum / n
        return (m.real_features_cov_sum - n * torch.outer(mean, mean)) / (n - 1)

    providers = {
        "fastperc (float32 products)": lambda: stats.FeatureStats(d).update(x).cov,
        "fastperc (float64 products)": lambda: (
            stats.FeatureStats(d, compute_dtype=torch.float64).update(x).cov
        ),
        "floor: numpy float32 A.T @ A (syrk)": lambda: xn.T @ xn,
        "np.cov float64 (pytorch-fid)": lambda: torch.from_numpy(np.cov(xn, rowvar=False)),
    }
    if tm_cls is not None:
        providers["torchmetrics update (float64 sums)"] = torchmetrics_update
    if gpu is not None:
        xg = x.to(gpu)
        providers["fastperc" + _CUDA] = lambda: stats.FeatureStats(d).update(xg).cov
        providers["float64 A.T @ A" + _CUDA] = lambda: xg.double().T @ xg.double()
        providers["float32 A.T @ A" + _CUDA] = lambda: xg.T @ xg
    res = interleaved(providers, repeat)
    floor = res["floor: numpy float32 A.T @ A (syrk)"]["median_s"]
    rows = []
    for name, r in res.items():
        err = None
        if "floor" not in name and "A.T @ A" not in name:
            err = float((torch.as_tensor(r["value"]).cpu() - want).norm() / want.norm())
        rows.append(
            _row(
                "accumulate",
                "covariance",
                f"{n}x{d} float32",
                name,
                r,
                cov_rel_err=err,
                ratio_to_floor=r["median_s"] / floor,
                items_s=n / r["median_s"],
            )
        )
    _print(rows)
    return rows


def bench_kid(
    sizes: list[int], d: int, subsets: int, repeat: int, gpu: torch.device | None = None
) -> list[dict]:
    kernel_distance = _peer("cleanfid.fid", "kernel_distance")
    rows = []
    for n in sizes:
        g = torch.Generator().manual_seed(4)
        a = torch.randn(n, d, generator=g, dtype=torch.float64).abs_() * 0.3
        b = torch.randn(n, d, generator=g, dtype=torch.float64).abs_() * 0.31
        an, bn, a32, b32 = a.numpy(), b.numpy(), a.float().numpy(), b.float().numpy()

        def cf(x, y):
            np.random.seed(0)  # noqa: NPY002  (clean-fid draws from the global state)
            return kernel_distance(x, y, num_subsets=subsets)

        providers = {"fastperc": lambda x=an, y=bn: stats.kid(x, y, subsets=subsets, seed=0).mean}
        if kernel_distance is not None:
            providers["clean-fid (float64 features)"] = lambda x=an, y=bn: cf(x, y)
            providers["clean-fid (float32 features)"] = lambda x=a32, y=b32: cf(x, y)
        if gpu is not None:
            ag, bg = a.to(gpu), b.to(gpu)
            providers["fastperc" + _CUDA] = lambda x=ag, y=bg: (
                stats.kid(x, y, subsets=subsets, seed=0).mean
            )
        res = interleaved(providers, repeat)
        ours = res["fastperc"]
        full = float(2 * n) ** 2 * (d + 2 * subsets)
        path = {  # as stats._kid_values decides
            dev: "full Gram" if full < f * subsets * 1000**2 * d else "per subset"
            for dev, f in (("cpu", 4.0), ("cuda", 6.0))
        }
        for name, r in res.items():
            rel = abs(float(r["value"]) - ours["value"]) / abs(ours["value"])
            rows.append(
                _row(
                    "kid",
                    "kid",
                    f"{subsets}x1000 of {n}, D={d}",
                    name,
                    r,
                    rel_diff=rel,
                    speedup_vs_fastperc=r["median_s"] / ours["median_s"],
                    note=(
                        f"fastperc path: {path['cuda' if name.endswith(_CUDA) else 'cpu']}"
                        if name.startswith("fastperc")
                        else None
                    ),
                )
            )
        _print(rows[-len(res) :])
    return rows


def bench_prdc(n: int, d: int, repeat: int, gpu: torch.device | None = None) -> list[dict]:
    compute_prdc = _peer("prdc", "compute_prdc")
    g = torch.Generator().manual_seed(5)
    real = (torch.randn(n, d, generator=g) * torch.arange(1, d + 1) ** -0.5).numpy()
    fake = (torch.randn(n, d, generator=g) * torch.arange(1, d + 1) ** -0.5 + 0.01).numpy()
    providers = {"fastperc prdc (k=5)": lambda: tuple(stats.prdc(real, fake, k=5))}
    if compute_prdc is not None:
        providers["prdc package (k=5)"] = lambda: tuple(
            compute_prdc(real, fake, nearest_k=5).values()
        )
    if gpu is not None:
        rg, fg = torch.from_numpy(real).to(gpu), torch.from_numpy(fake).to(gpu)
        providers["fastperc prdc (k=5)" + _CUDA] = lambda: tuple(stats.prdc(rg, fg, k=5))
    res = interleaved(providers, repeat)
    ours = res["fastperc prdc (k=5)"]
    rows = []
    for name, r in res.items():
        same = np.allclose(
            [float(x) for x in r["value"]], [float(x) for x in ours["value"]], rtol=1e-12, atol=0
        )
        rows.append(
            _row(
                "prdc",
                "precision/recall/density/coverage",
                f"{n}x{n}, D={d} float32",
                name,
                r,
                speedup_vs_fastperc=r["median_s"] / ours["median_s"],
                identical=same,
                values=[float(x) for x in r["value"]],
            )
        )
    _print(rows)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--peer-budget",
        type=float,
        default=240.0,
        help="skip a peer whose projected single run exceeds this many seconds",
    )
    ap.add_argument("--only", choices=["fd", "accumulate", "kid", "prdc"], action="append")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="cuda: also time fastperc (and the floors) on the GPU in the same run",
    )
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device is available")
    gpu = _GPU if args.device == "cuda" else None
    q = args.quick
    todo = args.only or ["fd", "accumulate", "kid", "prdc"]

    info = machine()
    for mod in ("scipy", "pytorch_fid", "cleanfid", "torchmetrics", "prdc"):
        try:
            info["versions"][mod] = __import__(mod).__version__
        except Exception:
            pass
    bw = copy_bandwidth()
    print(
        f"{info['cpu']}, {info['cores']} cores, torch threads {info['torch_threads']}", flush=True
    )
    rows: list[dict] = []
    if "fd" in todo:
        print("Frechet distance", flush=True)
        rows += bench_fd([256, 512] if q else [768, 2048, 4096], args.repeat, args.peer_budget, gpu)
    if "accumulate" in todo:
        print("accumulation", flush=True)
        rows += bench_accumulate(5000 if q else 50000, 256 if q else 2048, args.repeat, gpu)
    if "kid" in todo:
        print("KID", flush=True)
        rows += bench_kid(
            [1500] if q else [5000, 20000],
            256 if q else 2048,
            10 if q else 100,
            max(2, args.repeat // 2),
            gpu,
        )
    if "prdc" in todo:
        print("PR/DC", flush=True)
        rows += bench_prdc(1000 if q else 10000, 256 if q else 2048, max(2, args.repeat // 2), gpu)
    payload = {"machine": info, "bandwidth": bw, "quick": q, "repeat": args.repeat, "rows": rows}
    if args.no_write:
        return 0
    old = Path(__file__).resolve().parent / "results" / "stats.json"
    if args.only and old.exists():  # keep the groups not re-run from the previous file
        import json

        # a run replaces the rows of its groups, threads and devices
        threads = torch.get_num_threads()
        devices = {"cpu", args.device}
        kept = [
            r
            for r in json.loads(old.read_text())["rows"]
            if r.get("group") not in todo
            or r.get("threads", threads) != threads
            or r.get("device", "cpu") not in devices
        ]
        payload["rows"] = kept + rows
    path = write_json("stats", payload)
    print(f"wrote {path}")
    from render_results import render

    render()
    return 0


if __name__ == "__main__":
    sys.exit(main())
