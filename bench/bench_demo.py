"""Wall time of ``fastperc demo`` (the README's main command): the JPEG-sensitivity experiment
on 116 crops of the bundled photos with the offline EfficientNet-Lite0 extractor, six JPEG
qualities, FID with a bootstrap interval, KID, PSNR and SSIM.

Runs the command in a fresh process (as a user would, import time included) ``--repeat``
times and records the median wall time and the process CPU time, with the machine's load
average, in ``bench/results/demo.json`` and the demo section of ``bench/RESULTS.md``.

    python bench/bench_demo.py [--repeat 1] [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import copy_bandwidth, machine, write_json


def run_once(quick: bool) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "fastperc", "demo", "--out", out, "--no-progress"]
        if quick:
            cmd.append("--quick")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=out)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    runs = [run_once(args.quick) for _ in range(args.repeat)]
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    images = 58 if args.quick else 116
    row = {
        "op": "fastperc demo" + (" --quick" if args.quick else ""),
        "provider": "fastperc",
        "median_ms": wall * 1e3,
        "cpu_ms": cpu * 1e3,
        # images through the network: the originals and one copy per quality
        "images": images * (4 if args.quick else 7),
        "mpix_s": images * (4 if args.quick else 7) * 224 * 224 / wall / 1e6,
        "runs": len(runs),
    }
    payload = {
        "machine": machine(),
        "bandwidth": copy_bandwidth(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "rows": [row],
    }
    print(f"demo: {wall:.1f} s wall, {cpu:.1f} s CPU (load average {load_before:.1f})")
    if not args.no_write:
        print(write_json("demo", payload))
        from render_results import render

        print(render())


if __name__ == "__main__":
    main()
