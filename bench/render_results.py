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
        "`runs`: timed runs (a call over 30 s runs once); `x fastperc`: the provider's median "
        "time over fastperc's in the same run (> 1: fastperc is faster); `/ floor`: over the "
        "floor's; `difference`: relative difference of the result from fastperc's (accumulation: "
        "covariance error, Frobenius, against a float64 two-pass); `peak MB`: resident memory "
        "above the level before the call."
    )
    for group, title in titles.items():
        rows = [r for r in payload["rows"] if r.get("group") == group]
        if not rows:
            continue
        out += [
            "",
            f"### {title}",
            "",
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


RENDERERS = {"color": _color, "stats": _stats, "jpeg": _jpeg}


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
