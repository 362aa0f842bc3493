"""Render bench/RESULTS.md from the JSON files in bench/results/ (one section per file)."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent

INTRO = """# Benchmark results

Produced by the scripts in `bench/` (`python bench/bench_<family>.py`); every peer is re-timed
in the same run as fastperc, medians of interleaved repeats. Ratios are the peer's median time
over fastperc's C++ backend (> 1: fastperc is faster). "bandwidth" is the fraction of the
memory-copy bandwidth measured in the same run (bytes read plus written per pixel).
"""


def _machine(m: dict, bw: dict) -> str:
    v = ", ".join(f"{k} {val}" for k, val in sorted(m["versions"].items()))
    lines = [
        f"- machine: {m['cpu']}, {m['cores']} cores, torch threads {m['torch_threads']}"
        + (f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU"),
        f"- date {m['date']}, commit `{m['commit']}`",
        f"- versions: {v}",
        f"- copy bandwidth: numpy {bw['numpy_copy_gbs']:.1f} GB/s, torch {bw['torch_copy_gbs']:.1f} GB/s"
        + (f", CUDA {bw['cuda_copy_gbs']:.0f} GB/s" if "cuda_copy_gbs" in bw else "")
        + f"; ceiling used {bw['ceiling_gbs']:.1f} GB/s",
    ]
    return "\n".join(lines)


def _color(payload: dict) -> str:
    out = [
        f"## Colour ops ({payload['size']}x{payload['size']} images)\n",
        _machine(payload["machine"], payload["bandwidth"]),
        "",
    ]
    out.append(
        "| op | dtype / layout | provider | median ms | MPix/s | bandwidth | fastperc[cpp] speed-up |"
    )
    out.append("|---|---|---|---:|---:|---:|---:|")
    for r in payload["rows"]:
        sp = r["speedup_of_cpp"]
        out.append(
            f"| {r['op']} | {r['dtype']} | {r['provider']} | {r['median_ms']:.2f} | {r['mpix_s']:.0f} "
            f"| {100 * r['bandwidth_frac']:.0f}% | {'' if sp is None or r['provider'] == 'fastperc[cpp]' else f'{sp:.1f}x'} |"
        )
    return "\n".join(out)


def _stats(payload: dict) -> str:
    titles = {
        "fd": "Fréchet distance of two D x D covariances (float64)",
        "accumulate": "Accumulating mean and covariance",
        "kid": "KID (unbiased MMD^2, cubic kernel), same subsets",
        "prdc": "Precision / recall / density / coverage (k = 5)",
    }
    out = [
        "## Feature statistics (`fastperc.stats`)\n",
        _machine(payload["machine"], payload["bandwidth"]),
    ]
    out.append(
        "\n`threads`: torch/BLAS threads of the run (this machine is shared: two-thread runs "
        "suffer most from other load; single-thread runs compare the algorithms more steadily); "
        "`runs`: timed runs, round-robin over the providers, each after a 0.3 s pause so that "
        "no BLAS library's spinning worker threads from the previous call slow the next (a call "
        "over 30 s runs once); `x fastperc`: the provider's median "
        "time over fastperc's in the same run (> 1: fastperc is faster); `/ floor`: over the "
        "floor's; `difference`: relative difference of the result from fastperc's (accumulation: "
        "covariance error, Frobenius, against a float64 two-pass); `peak MB`: resident memory "
        "above the level before the call."
    )
    notes = {
        "fd": (
            "`fastperc`: `frechet_distance` on two (mu, sigma) pairs, from nothing; "
            "`reference's factor kept`: on two FeatureStats, the first of which keeps the "
            "Cholesky factor of its covariance from an earlier distance (a fixed reference "
            "compared with many sets); `bound`: the least time of any method that adds a "
            "Cholesky factorisation (D^3/3 flops) and a congruence (D^3) to one symmetric "
            "eigensolve of the floor's size, both at the speed of a D x D float64 GEMM timed in "
            "the same run (2/3 of its time) — a lower bound for this algorithm family, not a run."
        ),
    }
    for group, title in titles.items():
        rows = [r for r in payload["rows"] if r.get("group") == group]
        if not rows:
            continue
        out += ["", f"### {title}", ""]
        if group in notes:
            out += [notes[group], ""]
        out += [
            "| size | threads | provider | median ms | runs | x fastperc | / floor | difference "
            "| peak MB | note |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in sorted(rows, key=lambda r: r.get("threads", 0)):  # stable: run order kept
            sp, fl = r.get("speedup_vs_fastperc"), r.get("ratio_to_floor")
            diff = r.get("rel_diff", r.get("cov_rel_err"))
            note = r.get("note") or ("same results" if r.get("identical") else "")
            peak = r.get("peak_mb")
            out.append(
                f"| {r['size']} | {r.get('threads', '')} | {r['provider']} | {r['median_ms']:.1f} "
                f"| {r.get('runs', '')} | {'' if sp is None else f'{sp:.2f}'} "
                f"| {'' if fl is None else f'{fl:.2f}'} | {'' if diff is None else f'{diff:.1e}'} "
                f"| {'' if peak is None else peak} | {note} |"
            )
    return "\n".join(out)


def _jpeg(payload: dict) -> str:
    out = [
        f"## JPEG (`fastperc.jpeg`): {payload['tiles']} photo tiles of {payload['size']}x"
        f"{payload['size']}, quality {payload['quality']}, {payload['subsampling']}\n",
        _machine(payload["machine"], payload["bandwidth"]),
        f"- cores this process got with two busy threads during the run: "
        f"{payload['machine'].get('effective_cores_2_threads', 'not measured')}",
        "",
        "`x peer`: the peer's median time over the provider's (> 1: faster than the peer): "
        "Pillow's encode + decode to memory at the same thread count (2 threads: Pillow in a "
        "2-thread pool), kornia's `jpeg_codec_differentiable` for the differentiable mode. "
        "`cpu ms`: process CPU time of the same calls. (subset): the slow providers run on "
        "fewer tiles; MPix/s are per pixel all the same. Float32 rows include allocating the "
        "float32 output (4x the bytes of uint8; fresh pages on every call).",
        "",
        "| op | mode | input | provider | threads | median ms | cpu ms | MPix/s | x peer |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in payload["rows"]:
        sp = r.get("speedup_vs_peer")
        rate = f"{r['mpix_s']:.1f}"
        if r.get("files_s") is not None:
            rate += f" ({r['files_s']:.0f} files/s, {r['mb_s']:.0f} MB/s)"
        out.append(
            f"| {r['op']} | {r.get('mode') or ''} | {r['dtype']} | {r['provider']} "
            f"| {r['threads']} | {r['median_ms']:.1f} | {r['cpu_ms']:.1f} | {rate} "
            f"| {'' if sp is None else f'{sp:.2f}'} |"
        )
    return "\n".join(out)


def _models(payload: dict) -> str:
    out = [
        f"## Feature extractors (`fastperc.models`), batch {payload['batch']}\n",
        _machine(payload["machine"], payload["bandwidth"]),
        "",
        "One forward of a batch of random images (the Inception with seeded random weights, the "
        "same in every provider; EfficientNet-Lite0 with its ImageNet weights). `x peer`: "
        "pytorch-fid's median time over the provider's (> 1: faster). `difference`: the largest "
        "feature difference from the reference (pytorch-fid's InceptionV3 for the Inception, the "
        "unfolded network for EfficientNet) relative to the largest feature; `cosine`: the "
        "smallest per-image cosine similarity with it. Building the folded copy takes "
        f"{payload.get('inception_fold_ms', float('nan')):.0f} ms once per Inception extractor "
        "(included in its first call only). The machine is shared: two-thread runs suffer "
        "most from other load; the one-thread rows compare the implementations more steadily.",
        "",
        "| model | input | provider | threads | median ms | images/s | x peer | difference "
        "| cosine |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in payload["rows"]:
        sp = r.get("speedup_vs_peer")
        out.append(
            f"| {r['group']} | {r['size']} | {r['provider']} | {r['threads']} "
            f"| {r['median_ms']:.0f} | {r['images_s']:.2f} | {'' if sp is None else f'{sp:.2f}'} "
            f"| {r['rel_diff']:.1e} | {r['min_cosine']:.6f} |"
        )
    return "\n".join(out)


def _metrics(payload: dict) -> str:
    out = [
        f"## Full-reference metrics (`fastperc.metrics`): {payload['n']} images 3 x "
        f"{payload['size']} x {payload['size']}, CPU\n",
        _machine(payload["machine"], payload["bandwidth"]),
        "",
        "MPix/s: images x height x width per second. `x cpp`: the provider's median time over "
        "fastperc's C++ backend (> 1: fastperc is faster); `x fastest peer` on the C++ row. "
        "Peers with their defaults except `data_range=1.0` (piq's SSIM with `downsample=False`, "
        "scikit-image's with `gaussian_weights=True, sigma=1.5, use_sample_covariance=False`, "
        "one call per image). The SSIM definitions differ (see `fastperc.metrics`).",
        "",
        "| op | input | provider | median ms | MPix/s | x cpp |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in payload["rows"]:
        sp = r.get("speedup_of_cpp")
        note = (
            f"{r['x_fastest_peer']:.1f}x fastest peer"
            if r.get("x_fastest_peer")
            else ("" if sp is None or r["provider"] == "fastperc[cpp]" else f"{sp:.1f}")
        )
        out.append(
            f"| {r['op']} | {r['dtype']} | {r['provider']} | {r['median_ms']:.1f} "
            f"| {r['mpix_s']:.1f} | {note} |"
        )
    return "\n".join(out)


def _resize(payload: dict) -> str:
    src, dst = payload["size"]
    out = [
        f"## Resize (`fastperc.resize`): {payload['batch']} photos {src}x{src}x3 uint8 -> "
        f'{dst}x{dst} float32, Pillow bicubic (clean-fid\'s "clean" resize)\n',
        _machine(payload["machine"], payload["bandwidth"]),
        "",
        "`x clean-fid`: clean-fid's median time over the provider's (> 1: faster than "
        'clean-fid\'s own `make_resizer("PIL", False, "bicubic", (299, 299))` applied to '
        "each uint8 image, which is single-threaded). `cpu ms`: process CPU time of the same "
        "calls. `max |diff|`: largest absolute difference from clean-fid's output on the "
        "0..255 scale (`F.interpolate` uses a different bicubic, a = -0.75).",
        "",
        "| provider | threads | median ms | cpu ms | images/s | x clean-fid | max \\|diff\\| |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in payload["rows"]:
        out.append(
            f"| {r['provider']} | {r['threads']} | {r['median_ms']:.1f} | {r['cpu_ms']:.1f} "
            f"| {r['images_s']:.0f} | {r['speedup_vs_cleanfid']:.1f} "
            f"| {r['max_abs_diff_vs_cleanfid']:.1e} |"
        )
    return "\n".join(out)


def _pipeline(payload: dict) -> str:
    n, s = payload["images"], payload["image_size"]
    out = [
        f"## End-to-end FID (`fastperc.pipeline`): 2 x {n} images {s}x{s} -> 299x299, batch "
        f"{payload['batch']}, CPU\n",
        _machine(payload["machine"], payload["bandwidth"]),
        "",
        "Decoding, resizing, the FID Inception (seeded random weights, the same in every "
        "provider) and the statistics of two folders (set B blurred and colour-shifted), as "
        "`fastperc.compute_stats` against clean-fid's `get_folder_features` with pytorch-fid's "
        "`InceptionV3` as its model (`clean`) and pytorch-fid's "
        "`calculate_activation_statistics` (`legacy_pytorch`); the peers with "
        f"`num_workers={payload['peer_workers']}`. Medians of {payload['repeat']} interleaved "
        "repeats; `threads`: torch threads (fastperc also decodes and resizes in threads of its "
        "own, overlapped with the network); `x peer`: the peer's median time over fastperc's "
        "(> 1: faster); `FID`: each with its own distance function (fastperc's "
        "`frechet_distance`; the peers' scipy `sqrtm`); `rel. diff`: |FID - peer's| / peer's.",
        "",
        "| protocol | format | threads | provider | median s | runs | images/s | x peer | FID "
        "| rel. diff |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in payload["rows"]:
        sp, fid, rd = r.get("speedup_vs_peer"), r.get("fid"), r.get("fid_rel_diff")
        out.append(
            f"| {r['group']} | {r['format']} | {r['threads']} | {r['provider']} "
            f"| {r['median_ms'] / 1e3:.1f} | {r['runs']} | {r['images_s']:.2f} "
            f"| {'' if sp is None else f'{sp:.2f}'} | {'' if fid is None else f'{fid:.6f}'} "
            f"| {'' if rd is None else f'{rd:.1e}'} |"
        )
    notes = []
    for st in payload.get("settings", []):
        for group, a in st["fid"].items():
            head = f"- {group} ({st['format']}, torch threads {st['threads']}): "
            stats_part = (
                f"fastperc's distance on fastperc's and on the peer's statistics differs by "
                f"{a['rel_diff_from_stats']:.1e} relative (means {a['mean_rel_diff']:.1e}, "
                f"covariances {a['cov_rel_diff']:.1e} relative, Frobenius)"
            )
            if "fid_peer" not in a:
                notes.append(head + stats_part + ".")
                continue
            notes.append(
                head
                + f"|FID - peer's| = {a['fid_abs_diff']:.2e} ({a['fid_rel_diff']:.1e} relative). "
                f"Against a float64 reference distance (symmetric eigenproblems, numpy) on the "
                f"same statistics, fastperc's `frechet_distance` is off by "
                f"{a['fastperc_fd_rel_err']:.1e} and the peer's `sqrtm` by "
                f"{a['peer_fd_rel_err']:.1e} relative; the reference on the two pipelines' "
                f"statistics differs by {a['reference_rel_diff_from_stats']:.1e}; "
                + stats_part
                + "."
            )
    d = payload.get("diagnostics")
    if d:
        notes.append(
            f"- where the features differ ({d['format']}, torch threads {d['threads']}, 8 or all "
            f"images of set A): resize alone, largest difference on 0..255: "
            f"{d['resize_clean_max_abs_diff']:.1e} (`pil_bicubic` vs clean-fid's PIL), "
            f"{d['resize_legacy_pytorch_max_abs_diff']:.1e} (`bilinear` vs its "
            f"`F.interpolate`); the network alone on clean-fid's resized batch, largest "
            f"feature difference relative to the largest feature: "
            f"{d['network_folded_rel_diff']:.1e} folded, {d['network_unfolded_rel_diff']:.1e} "
            f"unfolded; end to end (set A, `clean`): {d['features_clean_rel_diff']:.1e}."
        )
    if notes:
        out += ["", "FID agreement:", "", *notes]
    return "\n".join(out)


def _demo(payload: dict) -> str:
    out = [
        "## `fastperc demo` (the README's main command)\n",
        _machine(payload["machine"], payload["bandwidth"]),
        f"- load average (1 min) before / after the run: "
        f"{payload['load_average_before']:.1f} / {payload['load_average_after']:.1f}",
        "",
        "A fresh process running the JPEG-sensitivity experiment on the bundled photos "
        "(EfficientNet-Lite0 features at 224x224 of the originals and of one copy per quality, "
        "FID with a bootstrap interval, KID, PSNR, SSIM), import time included. `images`: "
        "forward passes through the network.",
        "",
        "| command | runs | median wall s | CPU s | images |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in payload["rows"]:
        out.append(
            f"| `{r['op']}` | {r['runs']} | {r['median_ms'] / 1e3:.1f} | {r['cpu_ms'] / 1e3:.1f} "
            f"| {r['images']} |"
        )
    return "\n".join(out)


RENDERERS = {
    "color": _color,
    "stats": _stats,
    "jpeg": _jpeg,
    "models": _models,
    "metrics": _metrics,
    "pipeline": _pipeline,
    "resize": _resize,
    "demo": _demo,
}


def render() -> Path:
    parts = [INTRO]
    for name, fn in RENDERERS.items():
        path = HERE / "results" / f"{name}.json"
        if path.exists():
            parts.append(fn(json.loads(path.read_text())))
    for path in sorted((HERE / "results").glob("*.md")):  # hand-written sections (GPU runs)
        parts.append(path.read_text().strip())
    target = HERE / "RESULTS.md"
    target.write_text("\n\n".join(parts) + "\n")
    return target


if __name__ == "__main__":
    print(render())
