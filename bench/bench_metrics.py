"""SSIM, MS-SSIM, PSNR and CIEDE2000 per backend against torchmetrics, pytorch_msssim, piq and
scikit-image, on the CPU, in one run.

Reports MPix/s (images x height x width per second) per provider, medians of interleaved
repeats, and each peer's time over fastperc's C++ backend; writes ``bench/results/metrics.json``
and the metrics section of ``bench/RESULTS.md``.

    python bench/bench_metrics.py [--n 16] [--size 512] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import copy_bandwidth, machine, write_json

import fastperc
from fastperc import _ext, metrics


def _interleaved_medians(providers: dict, repeat: int) -> dict[str, float]:
    """Time every provider ``repeat`` times, round-robin, so drift hits all alike."""
    for fn in providers.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in providers}
    for _ in range(repeat):
        for name, fn in providers.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def _peers() -> dict[str, object]:
    """The peer modules that import (torchvision's compiled ops are stubbed for piq)."""
    sys.modules.setdefault(
        "torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations")
    )
    found = {}
    for name in ("torchmetrics.functional.image", "pytorch_msssim", "piq", "skimage.metrics",
                 "skimage.color"):  # fmt: skip
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found[name] = __import__(name, fromlist=["_"])
        except Exception as exc:  # pragma: no cover - depends on the environment
            print(f"skipping {name}: {exc}")
    return found


def _versions(found: dict) -> dict[str, str]:
    out = {}
    for mod in ("torchmetrics", "pytorch_msssim", "piq", "skimage"):
        try:
            out[mod] = str(__import__(mod).__version__)
        except Exception:
            pass
    return out


def cases(n: int, size: int):
    photo = fastperc.data.load_photo("astronaut")
    reps = -(-size // photo.shape[0])
    tile = np.ascontiguousarray(np.tile(photo, (reps, reps, 1))[:size, :size])
    rng = np.random.default_rng(0)
    a_u8 = np.stack([np.roll(tile, 37 * i, axis=1) for i in range(n)])  # [N, H, W, 3]
    noise = rng.normal(0, 10, a_u8.shape)
    b_u8 = np.clip(a_u8 + noise, 0, 255).astype(np.uint8)
    a = torch.from_numpy(a_u8).permute(0, 3, 1, 2).float().div(255).contiguous()
    b = torch.from_numpy(b_u8).permute(0, 3, 1, 2).float().div(255).contiguous()
    a_hwc = a.permute(0, 2, 3, 1).contiguous().numpy()
    b_hwc = b.permute(0, 2, 3, 1).contiguous().numpy()

    p = _peers()
    tm = p.get("torchmetrics.functional.image")
    pm = p.get("pytorch_msssim")
    piq = p.get("piq")
    skm = p.get("skimage.metrics")
    skc = p.get("skimage.color")
    have_cpp = _ext.cpp_available()

    def fp(fn, backend, **kw):
        return lambda: fn(a, b, backend=backend, **kw)

    def sk_ssim():
        return [
            skm.structural_similarity(
                a_hwc[i],
                b_hwc[i],
                channel_axis=2,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=1.0,
            )
            for i in range(n)
        ]

    out = []

    def add(name, dtype, providers):
        out.append((name, dtype, {k: v for k, v in providers.items() if v is not None}))

    add(
        "ssim",
        "float32 NCHW",
        {
            "fastperc[cpp]": fp(metrics.ssim, "cpp") if have_cpp else None,
            "fastperc[torch]": fp(metrics.ssim, "torch"),
            "torchmetrics": (lambda: tm.structural_similarity_index_measure(a, b, data_range=1.0))
            if tm
            else None,
            "pytorch_msssim": (lambda: pm.ssim(a, b, data_range=1.0)) if pm else None,
            "piq (downsample=False)": (lambda: piq.ssim(a, b, data_range=1.0, downsample=False))
            if piq
            else None,
            "scikit-image": sk_ssim if skm else None,
        },
    )
    add(
        "ssim",
        "uint8 NHWC (numpy)",
        {"fastperc[cpp]": (lambda: metrics.ssim(a_u8, b_u8, backend="cpp")) if have_cpp else None},
    )
    add(
        "ms_ssim",
        "float32 NCHW",
        {
            "fastperc[cpp]": fp(metrics.ms_ssim, "cpp") if have_cpp else None,
            "fastperc[torch]": fp(metrics.ms_ssim, "torch"),
            "torchmetrics": (
                lambda: tm.multiscale_structural_similarity_index_measure(a, b, data_range=1.0)
            )
            if tm
            else None,
            "pytorch_msssim": (lambda: pm.ms_ssim(a, b, data_range=1.0)) if pm else None,
            "piq": (lambda: piq.multi_scale_ssim(a, b, data_range=1.0)) if piq else None,
        },
    )
    add(
        "psnr",
        "float32 NCHW",
        {
            "fastperc[cpp]": fp(metrics.psnr, "cpp") if have_cpp else None,
            "fastperc[torch]": fp(metrics.psnr, "torch"),
            "torchmetrics": (lambda: tm.peak_signal_noise_ratio(a, b, data_range=1.0))
            if tm
            else None,
            "scikit-image": (
                lambda: [
                    skm.peak_signal_noise_ratio(a_hwc[i], b_hwc[i], data_range=1.0)
                    for i in range(n)
                ]
            )
            if skm
            else None,
        },
    )
    k = max(1, n // 8)  # CIEDE2000 peers are slow: a subset of the images
    lab_a = fastperc.color.rgb_to_lab(a[:k])
    lab_b = fastperc.color.rgb_to_lab(b[:k])
    lab_a64 = lab_a.permute(0, 2, 3, 1).double().numpy()
    lab_b64 = lab_b.permute(0, 2, 3, 1).double().numpy()
    add(
        f"ciede2000 ({k} images, Lab in)",
        "float32 NCHW",
        {
            "fastperc[cpp]": (lambda: metrics.ciede2000(lab_a, lab_b, space="lab", backend="cpp"))
            if have_cpp
            else None,
            "fastperc[torch]": lambda: metrics.ciede2000(
                lab_a, lab_b, space="lab", backend="torch"
            ),
            "scikit-image": (lambda: skc.deltaE_ciede2000(lab_a64, lab_b64)) if skc else None,
        },
    )
    return out, k, _versions(p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    bw = copy_bandwidth()
    info = machine()
    groups, k, peer_versions = cases(args.n, args.size)
    info["versions"].update(peer_versions)
    rows = []
    for name, dtype, providers in groups:
        med = _interleaved_medians(providers, args.repeat)
        images = k if name.startswith("ciede2000") else args.n
        mpix = images * args.size * args.size / 1e6
        cpp_t = med.get("fastperc[cpp]")
        peers = [v for p, v in med.items() if not p.startswith("fastperc")]
        for prov, t in med.items():
            row = {
                "op": name,
                "dtype": dtype,
                "provider": prov,
                "median_ms": t * 1e3,
                "mpix_s": mpix / t,
                "speedup_of_cpp": (t / cpp_t) if cpp_t else None,
            }
            if prov == "fastperc[cpp]" and peers:
                row["x_fastest_peer"] = min(peers) / t
            rows.append(row)
            print(f"{name:28s} {dtype:20s} {prov:24s} {t * 1e3:10.1f} ms {mpix / t:9.1f} MPix/s")
    payload = {
        "n": args.n,
        "size": args.size,
        "repeat": args.repeat,
        "machine": info,
        "bandwidth": bw,
        "rows": rows,
    }
    print("wrote", write_json("metrics", payload))
    import render_results

    print("wrote", render_results.render())


if __name__ == "__main__":
    main()
