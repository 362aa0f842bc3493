"""The ``fastperc`` command line.

Commands: ``fid``, ``kid``, ``stats``, ``audit``, ``jpeg inspect``, ``jpeg-sensitivity``,
``demo``, ``info``. Exit codes: 0 success; 1 a failure while running (e.g. a corrupt file
under ``--strict``, a network error); 2 a usage error or invalid input (bad flag, missing
path, unreadable statistics file, no images); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence

import numpy as np

from . import __version__, dispatch

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_EPILOG = (
    "exit codes: 0 success, 1 failure while running, 2 usage error or invalid input, "
    "130 interrupted"
)


def _emit(args: argparse.Namespace, result: dict, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2, default=_json_default))
    else:
        print(text)


def _json_default(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _progress(args: argparse.Namespace) -> bool | None:
    if getattr(args, "json", False) and args.progress is None:
        return None  # a bar only when stderr is a terminal
    return args.progress


def _pipeline_kwargs(args: argparse.Namespace) -> dict:
    return dict(
        extractor=args.extractor,
        weights=args.weights,
        mode=args.mode,
        batch_size=args.batch_size,
        device=args.device,
        workers=args.workers,
        strict=args.strict,
        progress=_progress(args),
    )


def _extractor_note(prov: dict) -> str:
    name = prov.get("name") or prov.get("extractor") or "?"
    return f"extractor {name}, mode {prov.get('mode', '?')}"


# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------


def cmd_fid(args: argparse.Namespace) -> int:
    """FID between two image sets (folders, archives, arrays or statistics files)."""
    from . import pipeline

    match = args.match_jpeg
    if match is not None and match != "auto":
        match = int(match)
    kw = _pipeline_kwargs(args)
    t0 = time.perf_counter()
    sa, sb, (sides, q, sub) = pipeline._fid_sides(
        args.a,
        args.b,
        match_jpeg=match,
        match_subsampling=args.match_subsampling,
        cache=not args.no_cache,
        **kw,
    )
    from .stats import frechet_distance

    value = frechet_distance(sa, sb)
    unmatched = None
    if sides:  # the effect of the fix: FID without it, from the (cached) plain statistics
        ua, ub, _ = pipeline._fid_sides(
            args.a, args.b, match_jpeg=None, match_subsampling=None, cache=not args.no_cache, **kw
        )
        unmatched = frechet_distance(ua, ub)
    result = {
        "fid": value,
        "a": {"source": args.a, "count": sa.count},
        "b": {"source": args.b, "count": sb.count},
        "provenance": sa.provenance,
        "match_jpeg": None
        if not sides
        else {"reencoded": ["ab"[i] for i in sides], "quality": q, "subsampling": sub},
        "fid_without_match_jpeg": unmatched,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    note = _extractor_note(sa.provenance)
    if sides:
        which = " and ".join("AB"[i] for i in sides)
        note += f"; {which} re-encoded as JPEG q={q} {sub} (--match-jpeg)"
        note += f"; without the re-encoding FID is {unmatched:.6f}"
    elif args.match_jpeg == "auto":
        note += "; --match-jpeg auto: the audit found no storage mismatch to fix"
    _emit(args, result, f"FID: {value:.6f}  ({note}; {sa.count} vs {sb.count} images)")
    return EXIT_OK


def cmd_kid(args: argparse.Namespace) -> int:
    """KID between two image sets."""
    from . import pipeline

    kw = _pipeline_kwargs(args)
    k = pipeline.kid(
        args.a, args.b, subsets=args.subsets, subset_size=args.subset_size, seed=args.seed, **kw
    )
    result = {"kid_mean": k.mean, "kid_std": k.std, "a": args.a, "b": args.b}
    _emit(args, result, f"KID: {k.mean:.6f} ± {k.std:.6f}")
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    """Feature statistics of an image set, saved as an .npz pytorch-fid and clean-fid read."""
    from . import pipeline

    s = pipeline.compute_stats(args.a, cache=not args.no_cache, **_pipeline_kwargs(args))
    s.save(args.output)
    result = {"output": args.output, "count": s.count, "dim": s.dim, "provenance": s.provenance}
    _emit(
        args,
        result,
        f"wrote {args.output}: {s.count} images, {s.dim}-d ({_extractor_note(s.provenance)})",
    )
    return EXIT_OK


def cmd_jpeg_inspect(args: argparse.Namespace) -> int:
    """Header facts of JPEG files: size, subsampling, quality, progressive, tables."""
    from .jpeg_io import inspect_jpeg

    rows = []
    failed = 0
    for path in args.files:
        try:
            info = inspect_jpeg(path)
        except (ValueError, OSError) as exc:
            failed += 1
            rows.append({"file": path, "error": str(exc)})
            continue
        rows.append({"file": path, **_inspect_dict(info)})
    if args.json:
        print(json.dumps(rows, indent=2, default=_json_default))
    else:
        for r in rows:
            if "error" in r:
                print(f"{r['file']}: error: {r['error']}")
                continue
            q = r.get("quality")
            qtxt = "?" if q is None else f"{q}{'' if r.get('quality_exact') else ' (estimate)'}"
            print(
                f"{r['file']}: {r.get('width')}x{r.get('height')}, {r.get('subsampling')}, "
                f"quality {qtxt}, {'progressive' if r.get('progressive') else 'baseline'}"
            )
    return EXIT_FAILURE if failed else EXIT_OK


def _inspect_dict(info: object) -> dict:
    import dataclasses

    d = dataclasses.asdict(info) if dataclasses.is_dataclass(info) else dict(vars(info))
    out = {}
    for k, v in d.items():
        if isinstance(v, np.ndarray):
            v = v.tolist()
        out[k] = v
    return out


def cmd_audit(args: argparse.Namespace) -> int:
    """Compare how two image sets are stored (formats, JPEG quality, subsampling, sizes)."""
    from ._audit import audit

    report = audit(args.a, args.b)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=_json_default))
    else:
        print(report.to_markdown())
    return EXIT_OK


def cmd_sensitivity(args: argparse.Namespace) -> int:
    """FID/KID/PSNR/SSIM of an image set against its own JPEG copies at several qualities."""
    from .sensitivity import jpeg_curve

    curve = jpeg_curve(
        args.source,
        qualities=args.qualities,
        metrics=args.metrics,
        extractor=args.extractor,
        weights=args.weights,
        subsampling=args.subsampling,
        mode=args.mode,
        batch_size=args.batch_size,
        device=args.device,
        workers=args.workers,
        bootstrap=args.bootstrap,
        progress=_progress(args),
    )
    files = _write_report(curve, args.out, title=f"JPEG sensitivity of {args.source}")
    if args.json:
        print(json.dumps({**curve.to_dict(), "files": files}, indent=2, default=_json_default))
    else:
        print(curve.to_markdown())
        if files:
            print(f"wrote {', '.join(files)}")
    return EXIT_OK


def _write_report(curve, out: str | None, *, title: str, extra: str = "") -> list[str]:
    if not out:
        return []
    os.makedirs(out, exist_ok=True)
    png = os.path.join(out, "curve.png")
    js = os.path.join(out, "curve.json")
    md = os.path.join(out, "report.md")
    curve.plot(png)
    curve.to_json(js)
    rows = curve.rows
    text = [f"# {title}", "", curve.to_markdown(), ""]
    fid_rows = [r for r in rows if r.fid is not None]
    if fid_rows:
        hi = [r for r in fid_rows if r.psnr is not None and r.psnr >= 35]
        if hi:
            worst = max(hi, key=lambda r: r.fid)
            text.append(
                f"At quality {worst.quality} the copies keep PSNR {worst.psnr:.1f} dB"
                + (f" and SSIM {worst.ssim:.3f}" if worst.ssim is not None else "")
                + f" (differences people rarely see), yet FID moves to {worst.fid:.3f}."
            )
    prov = curve.provenance
    text += [
        "",
        f"{curve.n_images} images, subsampling {curve.subsampling}, JPEG mode {curve.jpeg_mode}, "
        f"extractor {prov.get('name', prov.get('extractor', '?'))} ({prov.get('mode', '?')} resize).",
        "FID interval: paired bootstrap over images, bias-corrected. Plot: `curve.png`; numbers: `curve.json`.",
    ]
    if extra:
        text += ["", extra]
    with open(md, "w") as f:
        f.write("\n".join(text) + "\n")
    return [png, js, md]


def _jpeg_exactness() -> float:
    """Share of pixels of ``jpeg_simulate(exact)`` equal to Pillow's codec on the photos."""
    import io

    from PIL import Image

    from . import data, jpeg

    same = total = 0
    for name in data.PHOTOS:
        img = data.load_photo(name)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=75)
        decoded = np.asarray(Image.open(buf).convert("RGB"))
        sim = jpeg.jpeg_simulate(img, quality=75, mode="exact")
        same += int((sim == decoded).sum())
        total += sim.size
    return same / total


def cmd_demo(args: argparse.Namespace) -> int:
    """JPEG sensitivity of FID on crops of the bundled photos, offline (EfficientNet-Lite0)."""
    from . import data
    from .sensitivity import jpeg_curve

    t0 = time.perf_counter()
    crops = data.demo_crops(quick=args.quick)
    exact = _jpeg_exactness()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # the extractor is chosen here
        curve = jpeg_curve(
            crops,
            qualities=(100, 95, 90, 75, 50, 25) if not args.quick else (100, 90, 50),
            extractor="efficientnet_lite0",
            bootstrap=10 if args.quick else 20,
            progress=_progress(args),
        )
    seconds = time.perf_counter() - t0
    extra = (
        f"`jpeg_simulate(mode='exact')` vs Pillow's JPEG codec (q=75, 4:2:0) on the bundled "
        f"photos: {100 * exact:.2f}% identical pixels. Demo wall time {seconds:.1f} s."
    )
    files = _write_report(
        curve, args.out, title="fastperc demo: JPEG sensitivity of FID", extra=extra
    )
    result = {
        **curve.to_dict(),
        "jpeg_exact_identical_to_pillow": exact,
        "seconds": round(seconds, 2),
        "files": files,
        "backends": dispatch.available_backends(),
    }
    text = "\n".join(
        [
            f"fastperc {__version__} demo: {curve.n_images} crops of the bundled photos vs their "
            f"JPEG copies ({curve.subsampling}), features from EfficientNet-Lite0 (ImageNet "
            "weights, offline; not the FID Inception, so not comparable with published FIDs)",
            "",
            curve.to_markdown(),
            "",
            f"jpeg_simulate(exact) vs Pillow's codec: {100 * exact:.2f}% identical pixels",
            f"done in {seconds:.1f} s" + (f"; wrote {', '.join(files)}" if files else ""),
        ]
    )
    _emit(args, result, text)
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    """Print the version and the available backends."""
    info = {"version": __version__, "backends": dispatch.available_backends()}
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"fastperc {__version__}")
        for name, reason in info["backends"].items():
            print(f"  {name:<7} {'available' if reason is None else 'unavailable: ' + reason}")
    return EXIT_OK


# ----------------------------------------------------------------------------------------------
# Parser
# ----------------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _quality(text: str) -> int:
    v = _positive_int(text)
    if v > 100:
        raise argparse.ArgumentTypeError(f"expected a JPEG quality 1..100, got {text!r}")
    return v


def _match_jpeg(text: str) -> str:
    if text == "auto":
        return text
    return str(_quality(text))


def _add_pipeline_flags(p: argparse.ArgumentParser, *, cache: bool = True) -> None:
    g = p.add_argument_group("feature extraction")
    g.add_argument(
        "--extractor",
        default="auto",
        help="inception (FID Inception-v3; needs --weights or FASTPERC_WEIGHTS), "
        "efficientnet_lite0 (bundled ImageNet weights), or auto: Inception when its weights "
        "are found, else EfficientNet-Lite0 with a warning (default: auto)",
    )
    g.add_argument("--weights", metavar="FILE", help="weights file of the extractor")
    g.add_argument(
        "--mode",
        default="clean",
        choices=("clean", "legacy_pytorch", "legacy_tensorflow"),
        help="resize protocol: clean (clean-fid's PIL bicubic, default), legacy_pytorch "
        "(pytorch-fid's bilinear), legacy_tensorflow",
    )
    g.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    g.add_argument("--batch-size", type=_positive_int, default=32, metavar="N")
    g.add_argument("--workers", type=_positive_int, metavar="N", help="decoding threads")
    g.add_argument(
        "--strict", action="store_true", help="fail on an unreadable image instead of skipping it"
    )
    if cache:
        g.add_argument(
            "--no-cache", action="store_true", help="do not read or write cached statistics"
        )
    _add_output_flags(p)


def _add_output_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="progress bars on stderr (default: when stderr is a terminal)",
    )
    p.add_argument("--no-progress", dest="progress", action="store_false")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastperc",
        description="Fast, exact, perception-aware image evaluation: FID, KID, JPEG-exact "
        "simulation, dataset audits.",
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"fastperc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    src_help = "folder, zip/tar archive, .npy/.npz image array, image file, or statistics .npz"
    p = sub.add_parser(
        "fid", help="FID between two image sets", description=cmd_fid.__doc__, epilog=_EPILOG
    )
    p.add_argument("a", help=src_help)
    p.add_argument("b", help=src_help)
    p.add_argument(
        "--match-jpeg",
        type=_match_jpeg,
        metavar="Q|auto",
        help="re-encode B as JPEG quality Q before measuring; auto: when the audit finds one "
        "set stored as JPEG and the other lossless, re-encode the lossless one at the JPEG "
        "set's quality",
    )
    p.add_argument(
        "--match-subsampling", choices=("4:4:4", "4:2:2", "4:2:0"), help="of that re-encoding"
    )
    _add_pipeline_flags(p)
    p.set_defaults(func=cmd_fid)

    p = sub.add_parser(
        "kid", help="KID between two image sets", description=cmd_kid.__doc__, epilog=_EPILOG
    )
    p.add_argument("a", help="folder, archive, image array, or .npz with raw `feats`")
    p.add_argument("b", help="folder, archive, image array, or .npz with raw `feats`")
    p.add_argument("--subsets", type=_positive_int, default=100)
    p.add_argument("--subset-size", type=_positive_int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    _add_pipeline_flags(p, cache=False)
    p.set_defaults(func=cmd_kid)

    p = sub.add_parser(
        "stats",
        help="save feature statistics (.npz for pytorch-fid/clean-fid)",
        description=cmd_stats.__doc__,
        epilog=_EPILOG,
    )
    p.add_argument("a", help=src_help)
    p.add_argument("-o", "--output", required=True, metavar="FILE.npz")
    _add_pipeline_flags(p)
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser(
        "audit",
        help="compare how two image sets are stored",
        description=cmd_audit.__doc__,
        epilog=_EPILOG,
    )
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("jpeg", help="JPEG file tools", epilog=_EPILOG)
    jsub = p.add_subparsers(dest="jpeg_command", metavar="SUBCOMMAND")
    pi = jsub.add_parser(
        "inspect", help="header facts of JPEG files", description=cmd_jpeg_inspect.__doc__
    )
    pi.add_argument("files", nargs="+", metavar="FILE")
    pi.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    pi.set_defaults(func=cmd_jpeg_inspect)

    p = sub.add_parser(
        "jpeg-sensitivity",
        help="metrics of an image set against its JPEG copies",
        description=cmd_sensitivity.__doc__,
        epilog=_EPILOG,
    )
    p.add_argument("source", help="folder, archive or image array")
    p.add_argument(
        "--qualities", type=_quality, nargs="+", default=[100, 95, 90, 75, 50, 25], metavar="Q"
    )
    p.add_argument(
        "--metrics",
        nargs="+",
        default=["fid", "kid", "psnr", "ssim"],
        choices=("fid", "kid", "psnr", "ssim"),
    )
    p.add_argument("--subsampling", default="4:2:0", choices=("4:4:4", "4:2:2", "4:2:0"))
    p.add_argument("--bootstrap", type=int, default=50, help="FID interval replicates (0: none)")
    p.add_argument("--out", metavar="DIR", help="write curve.png, curve.json and report.md here")
    _add_pipeline_flags(p, cache=False)
    p.set_defaults(func=cmd_sensitivity)

    p = sub.add_parser(
        "demo",
        help="JPEG sensitivity of FID on the bundled photos (offline)",
        description=cmd_demo.__doc__,
        epilog=_EPILOG,
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default="fastperc-demo",
        help="write curve.png, curve.json and report.md here (default: fastperc-demo/)",
    )
    p.add_argument("--quick", action="store_true", help="fewer crops and qualities")
    _add_output_flags(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("info", help="show the version and available backends")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        if getattr(args, "command", None) == "jpeg":
            parser.parse_args(["jpeg", "--help"])
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("fastperc: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, FileNotFoundError, IsADirectoryError) as exc:
        print(f"fastperc: error: {exc}", file=sys.stderr)
        # an unreadable image under --strict is a failure of the run, not of the command line
        return EXIT_FAILURE if type(exc).__name__ == "ImageReadError" else EXIT_USAGE
    except (dispatch.BackendError, OSError, RuntimeError, NotImplementedError) as exc:
        print(f"fastperc: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
