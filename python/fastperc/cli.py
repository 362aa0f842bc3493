"""The ``fastperc`` command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

import numpy as np

from . import __version__, color, data, dispatch


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _mpix_per_s(fn, pixels: int, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return pixels / float(np.median(times)) / 1e6


def cmd_demo(args: argparse.Namespace) -> int:
    """Colour and chroma-subsampling ops on the bundled photos."""
    backend = args.backend
    rows = []
    for name in data.PHOTOS:
        img = data.load_photo(name)
        ycc = color.rgb_to_ycbcr(img, backend=backend)
        y, c = color.chroma_downsample(ycc, "4:2:0", backend=backend)
        back = color.ycbcr_to_rgb(
            color.chroma_upsample(y, c, "4:2:0", backend=backend), backend=backend
        )
        row = {
            "photo": name,
            "size": f"{img.shape[1]}x{img.shape[0]}",
            "psnr_420_db": round(_psnr(img, back), 2),
            "lab_mean_L": round(float(color.rgb_to_lab(img, backend=backend)[..., 0].mean()), 2),
        }
        import io

        from PIL import Image

        from . import jpeg

        pil = np.asarray(Image.fromarray(img).convert("YCbCr")).astype(int)
        row["pillow_ycbcr_max_diff"] = int(np.abs(pil - ycc.astype(int)).max())
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=75)
        decoded = np.asarray(Image.open(buf).convert("RGB"))
        sim = jpeg.jpeg_simulate(img, quality=75, mode="exact")
        row["jpeg_q75_identical_to_pillow"] = float((sim == decoded).mean())
        row["jpeg_q75_psnr_db"] = round(_psnr(img, sim), 2)
        rows.append(row)
        if args.out:
            import os

            from PIL import Image

            os.makedirs(args.out, exist_ok=True)
            Image.fromarray(back).save(os.path.join(args.out, f"{name}_420.png"))

    big = np.ascontiguousarray(np.tile(data.load_photo("astronaut"), (4, 4, 1)))  # 1024x1024
    speed = {
        b: round(
            _mpix_per_s(
                lambda b=b: color.rgb_to_ycbcr(big, backend=b), big.shape[0] * big.shape[1]
            ),
            1,
        )
        for b in ("torch", "cpp")
        if dispatch.available_backends()[b] is None
    }
    result = {
        "photos": rows,
        "rgb_to_ycbcr_mpix_per_s": speed,
        "backends": dispatch.available_backends(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"fastperc {__version__} demo: RGB -> YCbCr -> 4:2:0 -> fancy upsampling -> RGB")
    print("and jpeg_simulate(quality=75, mode='exact') against Pillow's real JPEG codec")
    print(
        f"{'photo':<10} {'size':>8} {'PSNR 4:2:0':>11} {'mean L*':>8} {'YCbCr vs Pillow':>16}"
        f" {'JPEG q75 PSNR':>14} {'identical to Pillow':>20}"
    )
    for r in rows:
        print(
            f"{r['photo']:<10} {r['size']:>8} {r['psnr_420_db']:>9.2f}dB {r['lab_mean_L']:>8.2f}"
            f" {'±' + str(r['pillow_ycbcr_max_diff']):>16} {r['jpeg_q75_psnr_db']:>12.2f}dB"
            f" {100 * r['jpeg_q75_identical_to_pillow']:>19.2f}%"
        )
    print(
        "rgb_to_ycbcr (uint8, 1024x1024), MPix/s: "
        + ", ".join(f"{k} {v}" for k, v in speed.items())
    )
    avail = [k for k, v in dispatch.available_backends().items() if v is None]
    print(f"backends available: {', '.join(avail)}")
    if args.out:
        print(f"wrote {len(rows)} images to {args.out}/")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Print the version and the available backends."""
    info = {"version": __version__, "backends": dispatch.available_backends()}
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"fastperc {__version__}")
        for name, reason in info["backends"].items():
            print(f"  {name:<7} {'available' if reason is None else 'unavailable: ' + reason}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastperc",
        description="Fast, exact, perception-aware image evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"fastperc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="run the demo on the bundled photos")
    demo.add_argument("--backend", default="auto", choices=("auto", *dispatch.BACKENDS))
    demo.add_argument("--out", metavar="DIR", help="write the round-tripped images to DIR")
    demo.add_argument("--json", action="store_true", help="machine-readable output")
    demo.set_defaults(func=cmd_demo)
    info = sub.add_parser("info", help="show the version and available backends")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except (ValueError, TypeError, dispatch.BackendError) as exc:
        print(f"fastperc: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
