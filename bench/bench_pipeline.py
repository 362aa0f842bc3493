"""The whole FID pipeline (decode, resize, extract, accumulate) against clean-fid and pytorch-fid.

Two folders of ``--images`` 512 x 512 images each (PNG or JPEG; crops of the bundled photos,
upscaled, with per-image variations; set B blurred and colour-shifted so the distance is not
small) are made at the start of the run. Every provider turns both folders into feature
statistics with the same seeded random FID Inception weights, and the images/s of that
(both sets together) are medians of interleaved repeats:

* ``clean`` protocol: ``fastperc.pipeline.compute_stats(mode="clean")`` (threaded decoding,
  fastperc's PIL-exact bicubic resize and the folded, channels-last network overlapped) against
  clean-fid's ``get_folder_features(mode="clean")`` with a model callable that runs
  pytorch-fid's ``InceptionV3`` holding the same weights on clean-fid's resized 0..255 batch
  (``x / 255``, then pytorch-fid's own input normalisation), followed by clean-fid's
  ``np.mean``/``np.cov``;
* ``legacy_pytorch`` protocol: ``compute_stats(mode="legacy_pytorch")`` against pytorch-fid's
  ``calculate_activation_statistics`` with that ``InceptionV3``.

The peers run with ``num_workers=0`` (``--peer-workers``): no DataLoader worker processes.
Every provider is warmed up on one full batch first. The Fréchet distances are computed outside
the timing. In the first setting: fastperc's ``frechet_distance`` on fastperc's statistics and
each peer's own function (scipy's ``sqrtm``) on the peer's statistics, plus a float64
reference distance (symmetric eigenproblems in numpy) on both, which separates what the
features and statistics contribute to the difference from what the distance functions do;
and where the features differ: the resize alone, the network alone on identical inputs, and
the end-to-end features of set A. In every setting: fastperc's distance on both pipelines'
statistics.

Writes ``bench/results/pipeline.json`` and the pipeline section of ``bench/RESULTS.md``.

    python bench/bench_pipeline.py [--images 64] [--repeat 2] [--format png jpeg]
        [--threads 1 2] [--peer-workers 0] [--no-write]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
import types
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import copy_bandwidth, machine, write_json
from bench_models import pytorch_fid_model

from fastperc.data import PHOTOS, load_photo
from fastperc.models import inception_v3_fid
from fastperc.models.inception import random_state_dict
from fastperc.pipeline import compute_stats, extract_features
from fastperc.stats import FeatureStats, frechet_distance

# torchvision's compiled operators may not match the installed torch; the peers only need its
# Python parts (see tests/test_stats_peers.py).
sys.modules.setdefault(
    "torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations")
)

SIZE = 512
BATCH = 32
CPU = torch.device("cpu")


@contextlib.contextmanager
def quiet():
    """The peers' prints and deprecation warnings (scipy's ``sqrtm(disp=...)``) are theirs."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------


def make_image(rng: np.random.Generator, photos: list[np.ndarray], i: int, perturb: bool):
    """A 512 x 512 crop of a bundled photo, upscaled, with a random flip, gain and noise; the
    B set also blurs and shifts the colours."""
    src = photos[i % len(photos)]
    h, w = src.shape[:2]
    side = int(rng.uniform(0.55, 0.95) * min(h, w))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    im = Image.fromarray(src[y : y + side, x : x + side]).resize((SIZE, SIZE), Image.BICUBIC)
    if perturb:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 1.6)))
    a = np.asarray(im, dtype=np.float32)
    if rng.random() < 0.5:
        a = a[:, ::-1]
    a = a * rng.uniform(0.9, 1.1) + rng.normal(0.0, 2.0, a.shape).astype(np.float32)
    if perturb:
        a = a + np.array([8.0, -4.0, 6.0], dtype=np.float32)
    return np.clip(a + 0.5, 0, 255).astype(np.uint8)


def make_sets(root: Path, n: int, fmt: str) -> dict[str, Path]:
    photos = [load_photo(p) for p in PHOTOS]
    out = {}
    for name, seed, perturb in (("A", 1, False), ("B", 2, True)):
        d = root / f"{name}_{fmt}"
        d.mkdir()
        rng = np.random.default_rng(seed)
        for i in range(n):
            img = Image.fromarray(make_image(rng, photos, i, perturb))
            if fmt == "png":
                img.save(d / f"{i:05d}.png")
            else:
                img.save(d / f"{i:05d}.jpg", quality=90)
        out[name] = d
    return out


def folder_mb(d: Path) -> float:
    return sum(f.stat().st_size for f in d.iterdir()) / 1e6


# ----------------------------------------------------------------------------------------------
# Providers: each maps a folder to (mu, sigma) numpy float64 (clean-fid's mean stays float32)
# ----------------------------------------------------------------------------------------------


def fastperc_provider(extractor, mode: str) -> Callable[[Path], FeatureStats]:
    def run(folder: Path) -> FeatureStats:
        return compute_stats(
            folder,
            extractor=extractor,
            mode=mode,
            cache=False,
            batch_size=BATCH,
            device=CPU,
            progress=False,
        )

    return run


def cleanfid_provider(peer_net, workers: int):
    from cleanfid import fid as cfid

    def model(x: torch.Tensor) -> torch.Tensor:  # clean-fid's resized float 0..255 batch
        return peer_net(x / 255)[0].flatten(1)

    def run(folder: Path):
        with quiet():
            feats = cfid.get_folder_features(
                str(folder),
                model=model,
                num_workers=workers,
                batch_size=BATCH,
                device=CPU,
                mode="clean",
                verbose=False,
            )
        # as clean-fid's compare_folders / fid_folder
        return np.mean(feats, axis=0), np.cov(feats, rowvar=False), feats

    return run, model


def pytorch_fid_provider(peer_net, workers: int):
    import pytorch_fid.fid_score as pf

    pf.tqdm = lambda x: x  # its own fallback when tqdm is missing: no progress bar

    def run(folder: Path):
        files = sorted(str(p) for p in folder.iterdir())
        with quiet():
            mu, sigma = pf.calculate_activation_statistics(
                files, peer_net, batch_size=BATCH, dims=2048, device="cpu", num_workers=workers
            )
        return mu, sigma

    return run


def interleaved(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, list]:
    """``repeat`` rounds over all providers (after a warm-up outside); [times, last output]."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    outs: dict[str, object] = {}
    for r in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            outs[name] = fn()
            times[name].append(time.perf_counter() - t0)
            print(f"    round {r + 1}: {name:<34} {times[name][-1]:7.1f} s", flush=True)
    return {name: [times[name], outs[name]] for name in fns}


# ----------------------------------------------------------------------------------------------
# Agreement
# ----------------------------------------------------------------------------------------------


def _np_stats(s: FeatureStats) -> tuple[np.ndarray, np.ndarray]:
    return s.mean.double().cpu().numpy(), s.cov.double().cpu().numpy()


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


def fd_reference(mu1, s1, mu2, s2) -> float:
    """The Fréchet distance in float64 through symmetric eigenproblems only (numpy/LAPACK):
    ``S1 = V diag(w) V^T``, ``F = V_r diag(sqrt w_r)`` over the eigenvalues above rounding
    noise, ``tr sqrt(S1 S2) = sum sqrt(eig(F^T S2 F))``: exact for positive semi-definite
    covariances, singular ones included (no ``sqrtm`` of a non-symmetric product)."""
    mu1, s1, mu2, s2 = (np.asarray(a, np.float64) for a in (mu1, s1, mu2, s2))
    w, v = np.linalg.eigh(s1)
    keep = w > w.max() * len(w) * np.finfo(np.float64).eps
    f = v[:, keep] * np.sqrt(w[keep])
    lam = np.linalg.eigvalsh(f.T @ s2 @ f)
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(lam, 0, None)).sum())


def fid_agreement(ours: tuple, peer: tuple, peer_fd: Callable, full: bool) -> dict:
    """FIDs and where they differ. ``ours``: fastperc's two FeatureStats; ``peer``: the peer's
    two ``(mu, sigma)`` as it computes them. Always: fastperc's distance on both statistics
    (the difference due to the features and statistics alone). ``full``: also the peer's own
    distance (scipy ``sqrtm``) and the float64 reference :func:`fd_reference` on both."""
    sa, sb = ours
    ours_np = (_np_stats(sa), _np_stats(sb))
    peer_np = tuple((np.asarray(m, np.float64), np.asarray(c, np.float64)) for m, c in peer)
    res: dict[str, float] = {}
    res["fid_ours"] = frechet_distance(sa, sb)
    res["fid_ours_on_peer_stats"] = frechet_distance(*peer_np)
    res["rel_diff_from_stats"] = abs(res["fid_ours"] - res["fid_ours_on_peer_stats"]) / abs(
        res["fid_ours_on_peer_stats"]
    )
    res["mean_rel_diff"] = rel_diff(ours_np[0][0], peer_np[0][0])
    res["cov_rel_diff"] = float(
        np.linalg.norm(ours_np[0][1] - peer_np[0][1]) / np.linalg.norm(peer_np[0][1])
    )
    if full:
        (pa, pb) = peer
        with quiet():
            res["fid_peer"] = float(peer_fd(pa[0], pa[1], pb[0], pb[1]))
        res["fid_abs_diff"] = abs(res["fid_ours"] - res["fid_peer"])
        res["fid_rel_diff"] = res["fid_abs_diff"] / abs(res["fid_peer"])
        ref_ours = fd_reference(*ours_np[0], *ours_np[1])
        ref_peer = fd_reference(*peer_np[0], *peer_np[1])
        res["fid_reference_ours"] = ref_ours
        res["fid_reference_peer"] = ref_peer
        res["fastperc_fd_rel_err"] = abs(res["fid_ours"] - ref_ours) / abs(ref_ours)
        res["peer_fd_rel_err"] = abs(res["fid_peer"] - ref_peer) / abs(ref_peer)
        res["reference_rel_diff_from_stats"] = abs(ref_ours - ref_peer) / abs(ref_peer)
    return res


def feature_diagnostics(sets: dict[str, Path], ours_clean, peer_net, cf_model, cf_feats_a):
    """Where the features differ (set A): resize alone, network alone, end to end."""
    from cleanfid.resize import build_resizer

    from fastperc.resize import resize

    files = sorted(sets["A"].iterdir())[:8]
    imgs = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    out: dict[str, float] = {}
    for mode, method in (("clean", "pil_bicubic"), ("legacy_pytorch", "bilinear")):
        fn = build_resizer(mode)
        with quiet():
            diffs = [
                float(
                    np.abs(
                        np.asarray(resize(im, (299, 299), method=method), np.float64)
                        - np.asarray(fn(im), np.float64)
                    ).max()
                )
                for im in imgs
            ]
        out[f"resize_{mode}_max_abs_diff"] = max(diffs)
    # the network alone, on clean-fid's resized batch
    with quiet():
        fn = build_resizer("clean")
        x = torch.stack([torch.from_numpy(fn(im)).permute(2, 0, 1) for im in imgs])
    with torch.no_grad():
        ref = cf_model(x)
    unfolded = inception_v3_fid(random_state_dict(seed=0), fold=False)
    with torch.no_grad():
        out["network_folded_rel_diff"] = rel_diff(ours_clean(x), ref)
        out["network_unfolded_rel_diff"] = rel_diff(unfolded(x), ref)
    # end to end, every image of set A
    feats = extract_features(
        sets["A"], extractor=ours_clean, mode="clean", batch_size=BATCH, device=CPU, progress=False
    ).features
    out["features_clean_rel_diff"] = rel_diff(feats, cf_feats_a)
    out["features_clean_max_abs"] = float(np.abs(cf_feats_a).max())
    return out


# ----------------------------------------------------------------------------------------------
# One setting: a format at a thread count
# ----------------------------------------------------------------------------------------------


def run_setting(sets, fmt, n, repeat, workers, ours, peer_net, first: bool):
    from cleanfid.fid import frechet_distance as cf_fd
    from pytorch_fid.fid_score import calculate_frechet_distance as pf_fd

    threads = torch.get_num_threads()
    fp_clean = fastperc_provider(ours, "clean")
    fp_legacy = fastperc_provider(ours, "legacy_pytorch")
    cf_run, cf_model = cleanfid_provider(peer_net, workers)
    pf_run = pytorch_fid_provider(peer_net, workers)

    def both(fn):
        return lambda: (fn(sets["A"]), fn(sets["B"]))

    fns = {
        "fastperc (clean)": both(fp_clean),
        "clean-fid": both(cf_run),
        "fastperc (legacy_pytorch)": both(fp_legacy),
        "pytorch-fid": both(pf_run),
    }
    # warm-up on one full batch: thread pools, the folded copy of the network, oneDNN's
    # primitives for the batch shape, lazy imports
    warm = sets["warm"]
    fp_clean(warm), cf_run(warm), fp_legacy(warm), pf_run(warm)
    res = interleaved(fns, repeat)
    groups = (
        ("clean", "fastperc (clean)", "clean-fid", cf_fd),
        ("legacy_pytorch", "fastperc (legacy_pytorch)", "pytorch-fid", pf_fd),
    )
    rows, agreements = [], {}
    for group, ours_name, peer_name, peer_fd in groups:
        peer_out = res[peer_name][1]
        peer_stats = tuple(o[:2] for o in peer_out)
        t0 = time.perf_counter()
        agree = fid_agreement(res[ours_name][1], peer_stats, peer_fd, full=first)
        print(f"  FID agreement ({group}) in {time.perf_counter() - t0:.0f} s", flush=True)
        agreements[group] = agree
        t_peer = statistics.median(res[peer_name][0])
        for name in (ours_name, peer_name):
            ts = res[name][0]
            t = statistics.median(ts)
            is_ours = name == ours_name
            rows.append(
                {
                    "group": group,
                    "op": f"FID statistics of 2 x {n} images ({group})",
                    "provider": name,
                    "format": fmt,
                    "size": f"2 x {n} x {SIZE}x{SIZE}",
                    "images": 2 * n,
                    "threads": threads,
                    "median_ms": 1e3 * t,
                    "times_s": ts,
                    "runs": len(ts),
                    "images_s": 2 * n / t,
                    "mpix_s": 2 * n * SIZE * SIZE / t / 1e6,
                    "speedup_vs_peer": (t_peer / t) if is_ours else None,
                    "fid": agree["fid_ours"] if is_ours else agree.get("fid_peer"),
                    "fid_abs_diff": agree.get("fid_abs_diff") if is_ours else None,
                    "fid_rel_diff": agree.get("fid_rel_diff") if is_ours else None,
                }
            )
    diag = None
    if first:
        print("  feature diagnostics ...", flush=True)
        diag = feature_diagnostics(sets, ours, peer_net, cf_model, res["clean-fid"][1][0][2])
    return rows, agreements, diag


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64, help="images per set (two sets)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--format", nargs="+", choices=("png", "jpeg"), default=["png"])
    ap.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()])
    ap.add_argument("--peer-workers", type=int, default=0, help="the peers' DataLoader workers")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update RESULTS.md")
    args = ap.parse_args()
    if args.images < 2 or args.repeat < 1:
        ap.error("--images must be >= 2 and --repeat >= 1")

    t_start = time.perf_counter()
    sd = random_state_dict(seed=0)
    ours = inception_v3_fid(sd)
    peer_net = pytorch_fid_model(sd)
    if peer_net is None:
        sys.exit("pytorch-fid is needed for this benchmark")
    default_threads = torch.get_num_threads()
    rows: list[dict] = []
    settings: list[dict] = []
    diagnostics = None
    with tempfile.TemporaryDirectory(prefix="fastperc-bench-pipeline-") as tmp:
        for fmt in args.format:
            print(f"making 2 x {args.images} {fmt} images ...", flush=True)
            sets = make_sets(Path(tmp), args.images, fmt)
            warm = Path(tmp) / f"warm_{fmt}"
            warm.mkdir()
            for f in sorted(sets["A"].iterdir())[:BATCH]:
                (warm / f.name).write_bytes(f.read_bytes())
            sets["warm"] = warm
            sizes = {k: folder_mb(v) for k, v in sets.items() if k != "warm"}
            for n_threads in args.threads:
                torch.set_num_threads(n_threads)
                print(f"{fmt}, torch threads {n_threads} ...", flush=True)
                r, agree, diag = run_setting(
                    sets,
                    fmt,
                    args.images,
                    args.repeat,
                    args.peer_workers,
                    ours,
                    peer_net,
                    first=diagnostics is None,
                )
                rows += r
                settings.append(
                    {"format": fmt, "threads": n_threads, "folder_mb": sizes, "fid": agree}
                )
                if diag is not None:
                    diagnostics = {"format": fmt, "threads": n_threads, **diag}
    torch.set_num_threads(default_threads)
    for r in rows:
        sp = r["speedup_vs_peer"]
        print(
            f"{r['group']:<15} {r['format']:<4} {r['threads']} {r['provider']:<26} "
            f"{r['median_ms'] / 1e3:7.1f} s {r['images_s']:6.2f} img/s"
            + (f"  FID {r['fid']:.6f}" if r["fid"] is not None else "")
            + (f"  x{sp:.2f} vs peer" if sp else "")
            + (f", FID rel diff {r['fid_rel_diff']:.1e}" if r["fid_rel_diff"] is not None else ""),
            flush=True,
        )
    m = machine()
    with quiet():
        for mod, key in (("cleanfid", "clean_fid"), ("pytorch_fid", "pytorch_fid")):
            try:
                m["versions"][key] = __import__(mod).__version__
            except Exception:
                pass
    payload = {
        "machine": m,
        "bandwidth": copy_bandwidth(),
        "images": args.images,
        "image_size": SIZE,
        "batch": BATCH,
        "repeat": args.repeat,
        "peer_workers": args.peer_workers,
        "settings": settings,
        "diagnostics": diagnostics,
        "total_s": time.perf_counter() - t_start,
        "rows": rows,
    }
    for st in settings:
        for group, agree in st["fid"].items():
            print(
                f"{st['format']} {st['threads']} {group}: "
                + ", ".join(f"{k} {v:.6g}" for k, v in agree.items())
            )
    if diagnostics:
        print("diagnostics: " + ", ".join(f"{k} {v}" for k, v in diagnostics.items()))
    print(f"total {payload['total_s']:.0f} s", flush=True)
    if args.no_write:
        return
    path = write_json("pipeline", payload)
    print(f"wrote {path}")
    from render_results import render

    render()


if __name__ == "__main__":
    main()
