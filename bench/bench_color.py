"""Colour ops per backend against kornia, numpy and Pillow, in one run.

Reports MPix/s per provider, the fraction of the measured memory-copy bandwidth each reaches
(bytes read plus written per pixel), and ratios to the peers; writes ``bench/results/color.json``
and the colour section of ``bench/RESULTS.md``.

    python bench/bench_color.py [--size 2048] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import copy_bandwidth, machine, write_json

import fastperc
from fastperc import _ext, color
from fastperc.reference import color as ref


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


def _numpy_ycbcr_float(x: np.ndarray) -> np.ndarray:
    m = np.asarray(ref.ycbcr_forward_spec("bt601", True, False, 1.0).matrix, np.float32)
    out = np.einsum("ij,njhw->nihw", m, x, optimize=True)
    out[:, 1:] += np.float32(128 / 255)
    return out


def _numpy_ycbcr_u8(x: np.ndarray) -> np.ndarray:
    spec = ref.ycbcr_forward_spec("bt601", True, True, 255.0)
    xi = x.astype(np.int32)
    out = np.empty_like(x)
    for i, (row, off) in enumerate(zip(spec.matrix, spec.offset)):
        out[..., i] = (xi[..., 0] * row[0] + xi[..., 1] * row[1] + xi[..., 2] * row[2] + off) >> 16
    return out


def cases(size: int):
    from PIL import Image

    rng = np.random.default_rng(0)
    photo = fastperc.data.load_photo("astronaut")
    reps = -(-size // photo.shape[0])
    u8_hwc = np.ascontiguousarray(np.tile(photo, (reps, reps, 1))[:size, :size])
    f32 = torch.from_numpy(u8_hwc).permute(2, 0, 1)[None].float().div(255).contiguous()
    f32_np = f32.numpy()
    pil = Image.fromarray(u8_hwc)
    pil_ycc = pil.convert("YCbCr")
    ycc_u8 = np.asarray(pil_ycc).copy()
    y_u8, c_u8 = color.chroma_downsample(ycc_u8, "4:2:0", backend="torch")
    del rng

    try:
        import kornia.color as kc
    except ImportError:  # pragma: no cover
        kc = None
    try:
        import skimage.color as skc
    except ImportError:  # pragma: no cover
        skc = None

    have_cpp = _ext.cpp_available()

    def fp(fn, x, backend, **kw):
        return lambda: fn(x, backend=backend, **kw)

    out = []

    def add(name, dtype, bytes_pp, providers):
        out.append((name, dtype, bytes_pp, {k: v for k, v in providers.items() if v is not None}))

    add(
        "rgb_to_ycbcr",
        "float32 NCHW",
        24,
        {
            "fastperc[cpp]": fp(color.rgb_to_ycbcr, f32, "cpp") if have_cpp else None,
            "fastperc[torch]": fp(color.rgb_to_ycbcr, f32, "torch"),
            "kornia": (lambda: kc.rgb_to_ycbcr(f32)) if kc else None,
            "numpy": lambda: _numpy_ycbcr_float(f32_np),
        },
    )
    add(
        "rgb_to_ycbcr",
        "uint8 HWC",
        6,
        {
            "fastperc[cpp]": fp(color.rgb_to_ycbcr, u8_hwc, "cpp") if have_cpp else None,
            "Pillow": lambda: pil.convert("YCbCr"),
            "numpy": lambda: _numpy_ycbcr_u8(u8_hwc),
        },
    )
    add(
        "ycbcr_to_rgb",
        "uint8 HWC",
        6,
        {
            "fastperc[cpp]": fp(color.ycbcr_to_rgb, ycc_u8, "cpp") if have_cpp else None,
            "Pillow": lambda: pil_ycc.convert("RGB"),
        },
    )
    add(
        "ycbcr_to_rgb",
        "float32 NCHW",
        24,
        {
            "fastperc[cpp]": fp(color.ycbcr_to_rgb, f32, "cpp") if have_cpp else None,
            "kornia": (lambda: kc.ycbcr_to_rgb(f32)) if kc else None,
        },
    )
    add(
        "rgb_to_gray",
        "uint8 HWC",
        4,
        {
            "fastperc[cpp]": fp(color.rgb_to_gray, u8_hwc, "cpp") if have_cpp else None,
            "Pillow": lambda: pil.convert("L"),
        },
    )
    add(
        "rgb_to_gray",
        "float32 NCHW",
        16,
        {
            "fastperc[cpp]": fp(color.rgb_to_gray, f32, "cpp") if have_cpp else None,
            "kornia": (lambda: kc.rgb_to_grayscale(f32)) if kc else None,
        },
    )
    add(
        "srgb_to_linear",
        "float32 NCHW",
        24,
        {
            "fastperc[cpp]": fp(color.srgb_to_linear, f32, "cpp") if have_cpp else None,
            "kornia": (lambda: kc.rgb_to_linear_rgb(f32)) if kc else None,
        },
    )
    add(
        "rgb_to_xyz",
        "float32 NCHW",
        24,
        {
            "fastperc[cpp]": fp(color.rgb_to_xyz, f32, "cpp") if have_cpp else None,
            "kornia": (lambda: kc.rgb_to_xyz(kc.rgb_to_linear_rgb(f32))) if kc else None,
        },
    )
    add(
        "rgb_to_lab",
        "float32 NCHW",
        24,
        {
            "fastperc[cpp]": fp(color.rgb_to_lab, f32, "cpp") if have_cpp else None,
            "kornia": (lambda: kc.rgb_to_lab(f32)) if kc else None,
            "skimage": (lambda: skc.rgb2lab(u8_hwc)) if skc else None,
        },
    )
    cb = pil_ycc.split()[1]
    add(
        "chroma_downsample 4:2:0",
        "uint8 HWC",
        3 + 3 + 0.5,
        {
            "fastperc[cpp]": fp(color.chroma_downsample, ycc_u8, "cpp") if have_cpp else None,
            "Pillow reduce(2) x2": lambda: (cb.reduce(2), cb.reduce(2)),
        },
    )
    add(
        "chroma_upsample fancy 4:2:0",
        "uint8 HWC",
        1 + 0.5 + 3,
        {
            "fastperc[cpp]": (lambda: color.chroma_upsample(y_u8, c_u8, "4:2:0", backend="cpp"))
            if have_cpp
            else None,
            "Pillow resize bilinear x2": lambda: [
                Image.fromarray(np.ascontiguousarray(c_u8[..., k])).resize(
                    (size, size), Image.BILINEAR
                )
                for k in (0, 1)
            ],
        },
    )
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048, help="image side in pixels")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--no-write", action="store_true", help="print only; do not update RESULTS.md")
    args = ap.parse_args(argv)

    info = machine()
    bw = copy_bandwidth()
    rows = []
    pixels = args.size * args.size
    for name, dtype, bytes_pp, providers in cases(args.size):
        med = _interleaved_medians(providers, args.repeat)
        ours = med.get("fastperc[cpp]")
        for prov, t in med.items():
            mpix = pixels / t / 1e6
            rows.append(
                {
                    "op": name,
                    "dtype": dtype,
                    "provider": prov,
                    "median_ms": t * 1e3,
                    "mpix_s": mpix,
                    "bandwidth_frac": mpix * 1e6 * bytes_pp / (bw["ceiling_gbs"] * 1e9),
                    "speedup_of_cpp": (t / ours) if ours else None,
                }
            )
        print(
            f"{name:<30} {dtype:<13} "
            + "  ".join(f"{k} {pixels / v / 1e6:8.1f}" for k, v in med.items()),
            flush=True,
        )
    payload = {
        "machine": info,
        "bandwidth": bw,
        "size": args.size,
        "repeat": args.repeat,
        "rows": rows,
    }
    path = write_json("color", payload)
    print(f"wrote {path}")
    if not args.no_write:
        from render_results import render

        render()
    return 0


if __name__ == "__main__":
    sys.exit(main())
