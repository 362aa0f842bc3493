"""JPEG round trips and file reading against Pillow and kornia, in one run.

* ``jpeg_simulate`` MPix/s per mode and backend (C++ kernel; PyTorch reference) against Pillow's
  encode + decode of the same images to memory (``Image.save(buf, "JPEG")`` then
  ``Image.open(buf)`` and its pixels), at equal thread counts: everything on 1 thread, then our
  kernel on 2 OpenMP threads against Pillow's round trips in a 2-thread pool (Pillow releases
  the GIL while it codes);
* the differentiable mode against kornia's ``kornia.enhance.jpeg_codec_differentiable``
  (torch on the same thread count);
* ``inspect_jpeg`` files/s against Pillow's ``Image.open`` + ``.quantization``, and
  ``read_coefficients`` MB/s of JPEG data, on the files Pillow wrote of the same images.

Images: ``--tiles`` (16) tiles of ``--size`` x ``--size`` (512) pixels, each a 2 x 2 mosaic of
crops of the photos bundled in ``fastperc.data`` at their own resolution (mirror-extended
where a photo is smaller than a quadrant), so the content has photographic detail at every
scale; coded at quality ``--quality`` (75), 4:2:0, Pillow's defaults. Timings are medians of
interleaved repeats (every provider once per round, so drift hits all alike); ``cpu_ms`` is
the process CPU time of the same calls (on one thread, a measure that other load on the
machine disturbs less). Writes ``bench/results/jpeg.json`` and the JPEG section of
``bench/RESULTS.md``.

    python bench/bench_jpeg.py [--tiles 16] [--size 512] [--repeat 7] [--no-write]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import copy_bandwidth, machine, write_json

import fastperc
from fastperc import _ext, jpeg
from fastperc.jpeg_io import inspect_jpeg, read_coefficients


def _interleaved_medians(
    providers: dict, repeat: int, warmup: int = 1
) -> dict[str, tuple[float, float]]:
    """(wall, process CPU) median seconds of every provider, timed round-robin."""
    for fn in providers.values():
        for _ in range(warmup):
            fn()
    wall: dict[str, list[float]] = {k: [] for k in providers}
    cpu: dict[str, list[float]] = {k: [] for k in providers}
    for _ in range(repeat):
        for name, fn in providers.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in providers}


def tiles(count: int, size: int, seed: int = 0) -> np.ndarray:
    """``count`` RGB tiles ``[size, size, 3]``, each a 2 x 2 mosaic of photo crops."""
    rng = np.random.default_rng(seed)
    photos = [fastperc.data.load_photo(n) for n in fastperc.data.PHOTOS]
    half = size // 2
    out = np.empty((count, size, size, 3), np.uint8)
    for k in range(count):
        for q in range(4):
            p = photos[(k + q) % len(photos)]
            ph, pw = max(0, half - p.shape[0]), max(0, half - p.shape[1])
            if ph or pw:
                p = np.pad(p, ((0, ph), (0, pw), (0, 0)), mode="symmetric")
            y = int(rng.integers(0, p.shape[0] - half + 1))
            x = int(rng.integers(0, p.shape[1] - half + 1))
            if rng.random() < 0.5:
                p = p[:, ::-1]
            qy, qx = divmod(q, 2)
            out[k, qy * half : (qy + 1) * half, qx * half : (qx + 1) * half] = p[
                y : y + half, x : x + half
            ]
    return out


def effective_cores(rounds: int = 96) -> float:
    """How many cores this process really gets with two busy threads (2.0 on an idle 2-core
    machine): SHA-256 of a cache-resident buffer, which releases the GIL."""
    import hashlib

    data = bytes(1 << 20)

    def work(_=None):
        for _ in range(rounds):
            hashlib.sha256(data).digest()

    t0 = time.perf_counter()
    work()
    one = time.perf_counter() - t0
    with ThreadPoolExecutor(2) as pool:
        t0 = time.perf_counter()
        list(pool.map(work, range(2)))
        two = time.perf_counter() - t0
    return 2 * one / two


def _pillow_roundtrip(img, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, subsampling=2)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return np.asarray(im)


def _set_threads(n: int) -> None:
    """Thread count of torch and of fastperc's OpenMP regions."""
    torch.set_num_threads(n)
    if _ext.cpp_available():
        _ext.cpp().set_num_threads(n)


def simulate_cases(imgs: np.ndarray, quality: int, threads: int, torch_tiles: int):
    """(op, mode, input, threads, pixels, {provider: fn}, peer) per group."""
    from PIL import Image

    pil = [Image.fromarray(im) for im in imgs]
    u8 = imgs  # numpy HWC batch: the layout images come in from files
    f32 = torch.from_numpy(imgs).permute(0, 3, 1, 2).float().div(255).contiguous()
    sub = f32[:torch_tiles]
    have_cpp = _ext.cpp_available()
    try:
        from kornia.enhance import jpeg_codec_differentiable
    except ImportError:  # pragma: no cover
        jpeg_codec_differentiable = None
    q_t = torch.tensor([float(quality)])
    pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def pillow():
        if pool is None:
            for p in pil:
                _pillow_roundtrip(p, quality)
        else:
            list(pool.map(lambda p: _pillow_roundtrip(p, quality), pil))

    def ours(x, mode, backend="cpp"):
        return lambda: jpeg.jpeg_simulate(x, quality, "4:2:0", mode=mode, backend=backend)

    def kornia():
        with torch.no_grad():
            jpeg_codec_differentiable(sub, q_t)

    pillow_name = f"Pillow encode+decode ({threads} thread{'s' if threads > 1 else ''})"
    n_all = imgs.shape[0] * imgs.shape[1] * imgs.shape[2]
    n_sub = sub.shape[0] * sub.shape[2] * sub.shape[3]
    cases = []
    if have_cpp:
        cases.append(
            (
                "exact",
                "uint8 HWC",
                n_all,
                {"fastperc[cpp]": ours(u8, "exact"), pillow_name: pillow},
                pillow_name,
            )
        )
        cases.append(
            (
                "float",
                "uint8 HWC",
                n_all,
                {"fastperc[cpp]": ours(u8, "float"), pillow_name: pillow},
                pillow_name,
            )
        )
        cases.append(
            (
                "float",
                "float32 NCHW",
                n_all,
                {"fastperc[cpp]": ours(f32, "float"), pillow_name: pillow},
                pillow_name,
            )
        )
    diff = {"fastperc[cpp]": ours(sub, "differentiable")} if have_cpp else {}
    if jpeg_codec_differentiable is not None:
        diff["kornia jpeg_codec_differentiable"] = kornia
    if threads == 1:  # the reference, single-threaded, on a subset
        diff["fastperc[torch]"] = ours(sub, "differentiable", "torch")
        cases.append(
            (
                "exact",
                "uint8 NCHW (subset)",
                n_sub,
                {
                    "fastperc[torch]": ours(
                        torch.from_numpy(imgs[:torch_tiles]).permute(0, 3, 1, 2), "exact", "torch"
                    )
                },
                None,
            )
        )
        cases.append(
            (
                "float",
                "float32 NCHW (subset)",
                n_sub,
                {"fastperc[torch]": ours(sub, "float", "torch")},
                None,
            )
        )
    cases.append(
        (
            "differentiable",
            "float32 NCHW (subset)",
            n_sub,
            diff,
            "kornia jpeg_codec_differentiable" if jpeg_codec_differentiable is not None else None,
        )
    )
    return cases, pool


def file_cases(imgs: np.ndarray, quality: int):
    from PIL import Image

    files = []
    for im in imgs:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, "JPEG", quality=quality, subsampling=2)
        files.append(buf.getvalue())

    def pil_inspect():
        for f in files:
            with Image.open(io.BytesIO(f)) as im:
                _ = im.quantization

    providers = {
        "inspect_jpeg": (
            {
                "fastperc": lambda: [inspect_jpeg(f) for f in files],
                "Pillow open+quantization": pil_inspect,
            },
            "Pillow open+quantization",
        ),
        "read_coefficients": ({"fastperc": lambda: [read_coefficients(f) for f in files]}, None),
    }
    return files, providers


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=16)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--quality", type=int, default=75)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--torch-tiles", type=int, default=4, help="images for the slow providers")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument(
        "--no-write",
        action="store_true",
        help="print only; write neither results/jpeg.json nor RESULTS.md",
    )
    args = ap.parse_args(argv)

    info = machine()
    bw = copy_bandwidth()
    info["effective_cores_2_threads"] = round(effective_cores(), 2)
    imgs = tiles(args.tiles, args.size)
    rows = []
    saved = torch.get_num_threads()
    for threads in args.threads:
        _set_threads(threads)
        cases, pool = simulate_cases(imgs, args.quality, threads, args.torch_tiles)
        for mode, dtype, pixels, providers, peer in cases:
            slow = any("torch" in k or "kornia" in k for k in providers)
            med = _interleaved_medians(providers, max(3, args.repeat // 2) if slow else args.repeat)
            peer_t = med[peer][0] if peer in med else None
            for prov, (t, c) in med.items():
                rows.append(
                    {
                        "op": "jpeg_simulate",
                        "mode": mode,
                        "dtype": dtype,
                        "provider": prov,
                        "threads": threads,
                        "median_ms": t * 1e3,
                        "cpu_ms": c * 1e3,
                        "mpix_s": pixels / t / 1e6,
                        "peer": peer if prov != peer else None,
                        "speedup_vs_peer": (peer_t / t) if peer_t and prov != peer else None,
                    }
                )
            print(
                f"[{threads} thr] {mode:<15} {dtype:<22} "
                + "  ".join(f"{k} {pixels / v[0] / 1e6:7.1f}" for k, v in med.items()),
                flush=True,
            )
        if pool is not None:
            pool.shutdown()
    _set_threads(1)
    files, providers = file_cases(imgs, args.quality)
    nbytes = sum(len(f) for f in files)
    pixels = imgs.shape[0] * imgs.shape[1] * imgs.shape[2]
    for op, (provs, peer) in providers.items():
        med = _interleaved_medians(provs, args.repeat)
        peer_t = med[peer][0] if peer in med else None
        for prov, (t, c) in med.items():
            rows.append(
                {
                    "op": op,
                    "mode": None,
                    "dtype": f"{len(files)} files, {nbytes / len(files) / 1e3:.0f} kB each",
                    "provider": prov,
                    "threads": 1,
                    "median_ms": t * 1e3,
                    "cpu_ms": c * 1e3,
                    "mpix_s": pixels / t / 1e6,
                    "files_s": len(files) / t,
                    "mb_s": nbytes / t / 1e6,
                    "peer": peer if prov != peer else None,
                    "speedup_vs_peer": (peer_t / t) if peer_t and prov != peer else None,
                }
            )
        print(
            f"{op:<20} "
            + "  ".join(
                f"{k} {len(files) / v[0]:9.0f} files/s {nbytes / v[0] / 1e6:7.1f} MB/s"
                for k, v in med.items()
            ),
            flush=True,
        )
    _set_threads(saved)
    payload = {
        "machine": info,
        "bandwidth": bw,
        "tiles": args.tiles,
        "size": args.size,
        "quality": args.quality,
        "subsampling": "4:2:0",
        "repeat": args.repeat,
        "rows": rows,
    }
    if args.no_write:
        return 0
    path = write_json("jpeg", payload)
    print(f"wrote {path}")
    from render_results import render

    render()
    return 0


if __name__ == "__main__":
    sys.exit(main())
