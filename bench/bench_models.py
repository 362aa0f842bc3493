"""Feature extractors: fastperc's FID Inception and EfficientNet-Lite0 against pytorch-fid.

Times, as medians of interleaved repeats (every provider re-timed in the same run), one
forward of a batch of random images:

* the FID Inception at 299 x 299 (seeded random weights, the same in every provider):
  fastperc's fast path (batch norms folded into the convolutions, channels-last,
  ``torch.inference_mode``), the same with bfloat16 autocast, fastperc's unfolded reference
  path (``torch.no_grad``), and pytorch-fid's ``InceptionV3`` (``use_fid_inception=True``,
  ``torch.no_grad``), with each provider's largest feature difference from pytorch-fid's
  (relative to the largest feature) and the smallest cosine similarity;
* EfficientNet-Lite0 at 224 x 224 with the package's ImageNet weights: fast path, bfloat16
  autocast, unfolded reference path (differences against the reference path).

Writes ``bench/results/models.json`` and the models section of ``bench/RESULTS.md``.

    python bench/bench_models.py [--batch 32] [--repeat 3] [--threads 1 2] [--no-write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import copy_bandwidth, machine, write_json

from fastperc.models import efficientnet_lite0, inception_v3_fid
from fastperc.models.inception import random_state_dict

# torchvision's compiled operators may not match the installed torch; pytorch-fid only needs
# its Python parts (see tests/test_stats_peers.py).
sys.modules.setdefault(
    "torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations")
)


def pytorch_fid_model(sd: dict[str, torch.Tensor]):
    """pytorch-fid's InceptionV3 (pool3 only) holding ``sd``, built without a download."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pytorch_fid.inception as pi
    except Exception as exc:
        print(f"  (skipping pytorch-fid: {exc})", flush=True)
        return None
    orig = pi.load_state_dict_from_url
    pi.load_state_dict_from_url = lambda *a, **k: sd
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pi.InceptionV3([3], use_fid_inception=True).eval()
    finally:
        pi.load_state_dict_from_url = orig


def interleaved(fns: dict[str, Callable[[], torch.Tensor]], repeat: int) -> dict[str, list]:
    """Median-ready timings: one warm-up call each, then ``repeat`` rounds over all providers."""
    outs = {name: fn() for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: [times[name], outs[name]] for name in fns}


def agreement(out: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    a, b = out.double().flatten(1), ref.double().flatten(1)
    rel = float((a - b).abs().max() / b.abs().max())
    cos = float(F.cosine_similarity(a, b).min())
    return rel, cos


def rows_for(
    group: str,
    size: int,
    batch: int,
    results: dict[str, list],
    ref_name: str,
    peer_name: str | None,
) -> list[dict]:
    ref_out = results[ref_name][1]
    peer_t = statistics.median(results[peer_name][0]) if peer_name in results else None
    rows = []
    for name, (ts, out) in results.items():
        t = statistics.median(ts)
        rel, cos = agreement(out, ref_out)
        rows.append(
            {
                "group": group,
                "op": f"{group} forward",
                "provider": name,
                "size": f"{batch} x {size}x{size}",
                "threads": torch.get_num_threads(),
                "median_ms": 1e3 * t,
                "runs": len(ts),
                "images_s": batch / t,
                "mpix_s": batch * size * size / t / 1e6,
                "speedup_vs_peer": (peer_t / t) if peer_t is not None else None,
                "rel_diff": rel,
                "min_cosine": cos,
                "reference": ref_name,
            }
        )
    return rows


def bench_inception(batch: int, repeat: int) -> tuple[list[dict], float]:
    sd = random_state_dict(seed=0)
    x = torch.rand(batch, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 255
    fast = inception_v3_fid(sd)
    bf16 = inception_v3_fid(sd, precision="bfloat16")
    ref = inception_v3_fid(sd, fold=False)
    t0 = time.perf_counter()
    fast.__dict__["_fast"].get(fast.net)  # builds the folded, channels-last copy
    fold_ms = 1e3 * (time.perf_counter() - t0)
    fast(x[:1])
    bf16(x[:1])
    fns: dict[str, Callable[[], torch.Tensor]] = {
        "fastperc (folded, channels-last)": lambda: fast(x),
        "fastperc (folded, bf16 autocast)": lambda: bf16(x),
    }

    def unfolded():
        with torch.no_grad():
            return ref(x)

    fns["fastperc (unfolded reference)"] = unfolded
    peer = pytorch_fid_model(sd)
    peer_name = "pytorch-fid InceptionV3"
    if peer is not None:

        def run_peer():
            with torch.no_grad():
                return peer(x / 255)[0].flatten(1)

        fns[peer_name] = run_peer
    res = interleaved(fns, repeat)
    ref_name = peer_name if peer is not None else "fastperc (unfolded reference)"
    return rows_for("inception", 299, batch, res, ref_name, peer_name), fold_ms


def bench_efficientnet(batch: int, repeat: int) -> list[dict]:
    x = torch.rand(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 255
    fast = efficientnet_lite0()
    bf16 = efficientnet_lite0(precision="bfloat16")
    ref = efficientnet_lite0(fold=False)
    fast(x[:1])
    bf16(x[:1])

    def unfolded():
        with torch.no_grad():
            return ref(x)

    fns = {
        "fastperc (folded, channels-last)": lambda: fast(x),
        "fastperc (folded, bf16 autocast)": lambda: bf16(x),
        "fastperc (unfolded reference)": unfolded,
    }
    res = interleaved(fns, repeat)
    return rows_for("efficientnet_lite0", 224, batch, res, "fastperc (unfolded reference)", None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--no-write", action="store_true", help="print only; do not update RESULTS.md")
    args = ap.parse_args()

    rows: list[dict] = []
    fold_ms: list[float] = []
    default_threads = torch.get_num_threads()
    for n in args.threads:
        torch.set_num_threads(n)
        print(f"inception, {n} thread(s) ...", flush=True)
        r, ms = bench_inception(args.batch, args.repeat)
        rows += r
        fold_ms.append(ms)
        print(f"efficientnet_lite0, {n} thread(s) ...", flush=True)
        rows += bench_efficientnet(args.batch, args.repeat)
    torch.set_num_threads(default_threads)
    for r in rows:
        sp = r["speedup_vs_peer"]
        print(
            f"{r['group']:<20} {r['threads']} {r['provider']:<34} {r['median_ms']:9.1f} ms "
            f"{r['images_s']:7.2f} img/s  diff {r['rel_diff']:.1e}  cos {r['min_cosine']:.6f}"
            + (f"  x{sp:.2f} vs peer" if sp is not None else ""),
            flush=True,
        )
    m = machine()
    try:
        import pytorch_fid

        m["versions"]["pytorch_fid"] = pytorch_fid.__version__
    except Exception:
        pass
    payload = {
        "machine": m,
        "bandwidth": copy_bandwidth(),
        "batch": args.batch,
        "repeat": args.repeat,
        "inception_fold_ms": min(fold_ms),
        "rows": rows,
    }
    if args.no_write:
        return
    path = write_json("models", payload)
    print(f"wrote {path}")
    from render_results import render

    render()


if __name__ == "__main__":
    main()
