"""Shared helpers for the benchmark scripts: timing, machine facts, the bandwidth ceiling."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def median_time(
    fn: Callable[[], object], *, repeat: int = 7, warmup: int = 1, min_time: float = 0.0
) -> float:
    """Median wall time of ``fn`` in seconds over ``repeat`` runs (after ``warmup`` runs)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine() -> dict[str, object]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=HERE,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
    }
    for mod in ("fastperc", "kornia", "PIL", "skimage", "triton"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:
            pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "commit": commit,
        "versions": versions,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def copy_bandwidth(nbytes: int = 3 * 2048 * 2048 * 4) -> dict[str, float]:
    """Memory-copy bandwidth in GB/s (bytes read plus written) of a large array copy:
    numpy's single-threaded copy and torch's multi-threaded one; the ceiling is the larger."""
    n = nbytes // 4
    src = np.random.default_rng(0).random(n, dtype=np.float32)
    dst = np.empty_like(src)
    t_np = median_time(lambda: np.copyto(dst, src), repeat=9)
    ts, td = torch.from_numpy(src), torch.from_numpy(dst)
    t_torch = median_time(lambda: td.copy_(ts), repeat=9)
    res = {"numpy_copy_gbs": 2 * nbytes / t_np / 1e9, "torch_copy_gbs": 2 * nbytes / t_torch / 1e9}
    if torch.cuda.is_available():
        g = torch.empty(n * 4, dtype=torch.float32, device="cuda")
        h = torch.empty_like(g)
        torch.cuda.synchronize()
        t = median_time(lambda: (h.copy_(g), torch.cuda.synchronize()), repeat=20)
        res["cuda_copy_gbs"] = 2 * g.numel() * 4 / t / 1e9
    res["ceiling_gbs"] = max(res["numpy_copy_gbs"], res["torch_copy_gbs"])
    return res


def write_json(name: str, payload: dict) -> Path:
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path
