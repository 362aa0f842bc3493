"""The clean-fid resize (512x512x3 uint8 -> 299x299 float32, Pillow bicubic) per provider.

Times, in one run with interleaved repeats (medians): fastperc's C++ backend with every thread
and with one, and one image per call; clean-fid's own "clean" resizer
(``make_resizer("PIL", False, "bicubic", (299, 299))`` applied to each uint8 HWC image, as
clean-fid's data loader does); ``torch.nn.functional.interpolate(mode="bicubic",
antialias=True)`` on the float32 batch. Reports images/s, the process CPU time, and each
provider's largest absolute difference from clean-fid's output (0..255 scale); writes
``bench/results/resize.json`` and the resize section of ``bench/RESULTS.md``.

    python bench/bench_resize.py [--batch 32] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import copy_bandwidth, machine, write_json

import fastperc
from fastperc import _ext

SRC = 512
DST = 299


def _images(batch: int) -> np.ndarray:
    """A batch of 512x512 RGB photos (flips and crops of the bundled ones), NHWC uint8."""
    photos = [fastperc.data.load_photo(n) for n in ("astronaut", "chelsea", "coffee", "rocket")]
    out = []
    for i in range(batch):
        p = photos[i % len(photos)]
        reps = -(-SRC // min(p.shape[:2]))
        big = np.tile(p, (reps, reps, 1))
        y, x = (7 * i) % (big.shape[0] - SRC + 1), (13 * i) % (big.shape[1] - SRC + 1)
        crop = big[y : y + SRC, x : x + SRC]
        out.append(crop[::-1] if i % 2 else crop)
    return np.ascontiguousarray(np.stack(out))


def _timed(providers: dict, repeat: int) -> dict[str, dict[str, float]]:
    """Run every provider ``repeat`` times, round-robin; median wall and CPU seconds each."""
    for fn in providers.values():
        fn()  # warm-up
    wall: dict[str, list[float]] = {k: [] for k in providers}
    cpu: dict[str, list[float]] = {k: [] for k in providers}
    for _ in range(repeat):
        for name, fn in providers.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {k: {"wall": statistics.median(wall[k]), "cpu": statistics.median(cpu[k])} for k in wall}


class _threads:
    """Run a provider with a given torch / OpenMP thread count."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        from fastperc import _C  # its OpenMP runtime is not necessarily torch's

        self.prev = torch.get_num_threads()
        self.prev_c = _C.get_num_threads()
        torch.set_num_threads(self.n)
        _C.set_num_threads(self.n)

    def __exit__(self, *exc):
        from fastperc import _C

        torch.set_num_threads(self.prev)
        _C.set_num_threads(self.prev_c)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32, help="images per timed call")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--no-write", action="store_true", help="print only; do not write results")
    args = ap.parse_args(argv)

    from cleanfid.resize import make_resizer

    info = machine()
    try:
        import cleanfid

        info["versions"]["clean-fid"] = getattr(cleanfid, "__version__", "installed")
    except Exception:  # pragma: no cover
        pass
    bw = copy_bandwidth()
    imgs = _images(args.batch)
    threads = torch.get_num_threads()
    clean = make_resizer("PIL", False, "bicubic", (DST, DST))

    def cleanfid_run():
        return np.stack([clean(im) for im in imgs])

    def interp_run():
        x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float()
        y = F.interpolate(x, size=(DST, DST), mode="bicubic", align_corners=False, antialias=True)
        return y.permute(0, 2, 3, 1).numpy()

    def ours_batch():
        return fastperc.resize(imgs, DST, backend="cpp")

    def ours_single():
        with _threads(1):
            return fastperc.resize(imgs, DST, backend="cpp")

    def ours_per_image():
        with _threads(1):
            return np.stack([fastperc.resize(im, DST, backend="cpp") for im in imgs])

    providers = {"clean-fid (Pillow, per image)": (cleanfid_run, 1)}
    if _ext.cpp_available():
        providers[f"fastperc[cpp], {threads} threads"] = (ours_batch, threads)
        providers["fastperc[cpp], 1 thread"] = (ours_single, 1)
        providers["fastperc[cpp], 1 thread, one image per call"] = (ours_per_image, 1)
    providers[f"F.interpolate bicubic antialias, {threads} threads"] = (interp_run, threads)

    expected = cleanfid_run().astype(np.float64)
    diffs = {
        k: float(np.abs(fn().astype(np.float64) - expected).max())
        for k, (fn, _) in providers.items()
    }
    med = _timed({k: fn for k, (fn, _) in providers.items()}, args.repeat)
    t_ref = med["clean-fid (Pillow, per image)"]["wall"]
    rows = []
    for name, (_, nthreads) in providers.items():
        t = med[name]["wall"]
        rows.append(
            {
                "op": f"resize {SRC}x{SRC}x3 uint8 -> {DST}x{DST} pil_bicubic",
                "provider": name,
                "threads": nthreads,
                "batch": args.batch,
                "median_ms": t * 1e3,
                "cpu_ms": med[name]["cpu"] * 1e3,
                "images_s": args.batch / t,
                "mpix_s": args.batch * SRC * SRC / t / 1e6,
                "speedup_vs_cleanfid": t_ref / t,
                "max_abs_diff_vs_cleanfid": diffs[name],
            }
        )
        print(
            f"{name:<48} {args.batch / t:8.1f} img/s  cpu {med[name]['cpu'] * 1e3:7.1f} ms  x{t_ref / t:5.1f}  "
            f"max |diff| vs clean-fid {diffs[name]:.2e}",
            flush=True,
        )
    payload = {
        "machine": info,
        "bandwidth": bw,
        "size": [SRC, DST],
        "batch": args.batch,
        "repeat": args.repeat,
        "rows": rows,
    }
    if args.no_write:
        return 0
    path = write_json("resize", payload)
    print(f"wrote {path}")
    from render_results import render

    render()
    return 0


if __name__ == "__main__":
    sys.exit(main())
