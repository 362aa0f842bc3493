"""Two CPU processes (gloo, torch.multiprocessing): the pipeline's statistics and the
torchmetrics-style metrics synced over torch.distributed equal a single-process run on all
the images."""

from __future__ import annotations

import importlib
import socket
import sys
import types

import pytest
import torch

WORLD = 2


def _stub_resize() -> None:
    """The pipeline imports ``fastperc.resize``; the images here need no resize, so a stand-in
    that refuses to run serves while the real module is absent."""
    try:
        importlib.import_module("fastperc.resize")
    except ImportError:
        stub = types.ModuleType("fastperc.resize")

        def resize(*args, **kwargs):
            raise AssertionError("fastperc.resize is not available here")

        stub.resize = resize
        sys.modules["fastperc.resize"] = stub


class _Net(torch.nn.Module):
    """0..255 (or uint8) images to 5 float64 features, deterministic."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(4)
        self.w = torch.nn.Parameter(torch.randn(12, 5, generator=g, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.adaptive_avg_pool2d(x.double(), 2).flatten(1)
        return torch.tanh(x / 150.0 @ self.w)


def _images(seed: int, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 9, 11), generator=g, dtype=torch.uint8)


def _extractor():
    from fastperc.models._base import ModuleExtractor

    return ModuleExtractor(_Net(), input_size=None, name="tiny")


def _pipeline_stats(images: torch.Tensor):
    from fastperc.pipeline import compute_stats

    return compute_stats(
        images, extractor=_extractor(), cache=False, device="cpu", workers=1, progress=False
    )


def _metrics(real_parts, fake_parts):
    from fastperc.compat.torchmetrics import FrechetInceptionDistance, KernelInceptionDistance

    fid = FrechetInceptionDistance(feature=_Net())
    kid = KernelInceptionDistance(feature=_Net(), subsets=5, subset_size=20)
    for r in real_parts:
        fid.update(r, real=True)
        kid.update(r, real=True)
    for f in fake_parts:
        fid.update(f, real=False)
        kid.update(f, real=False)
    torch.manual_seed(3)
    return fid.compute(), kid.compute()


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    _stub_resize()
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        stats = _pipeline_stats(_images(0, 23))  # each rank reads its round-robin shard
        real, fake = _images(1, 31), _images(2, 26)
        # unequal shards, in batches: rank 0 a prefix, rank 1 the rest
        cut_r, cut_f = 12, 20
        mine_r = real[:cut_r] if rank == 0 else real[cut_r:]
        mine_f = fake[:cut_f] if rank == 0 else fake[cut_f:]
        fid_value, kid_value = _metrics(mine_r.split(5), mine_f.split(7))
        torch.save(
            {"stats": stats.state_dict(), "fid": fid_value, "kid": kid_value},
            f"{out_dir}/rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_processes_equal_one(tmp_path, monkeypatch):
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    import torch.multiprocessing as mp

    from fastperc.stats import FeatureStats

    mp.spawn(_worker, args=(WORLD, _free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    with monkeypatch.context() as m:
        try:
            importlib.import_module("fastperc.resize")
        except ImportError:
            stub = types.ModuleType("fastperc.resize")
            m.setitem(sys.modules, "fastperc.resize", stub)
            stub.resize = lambda *a, **k: None
        want_stats = _pipeline_stats(_images(0, 23))
    want_fid, want_kid = _metrics([_images(1, 31)], [_images(2, 26)])
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    for res in results:
        got = FeatureStats().load_state_dict(res["stats"])
        assert got.count == 23
        torch.testing.assert_close(got.mean, want_stats.mean, rtol=1e-7, atol=1e-9)
        # the pipeline's float32 products (FeatureStats' CPU default): ~1e-7 of the scale
        scale = float(want_stats.cov.abs().max())
        torch.testing.assert_close(got.cov, want_stats.cov, rtol=1e-5, atol=1e-6 * scale)
        torch.testing.assert_close(res["fid"], want_fid, rtol=1e-9, atol=1e-12)
        # KID gathers the features in rank order: the same rows as one process, same draws
        for g, w in zip(res["kid"], want_kid):
            torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-14)
    assert torch.equal(results[0]["fid"], results[1]["fid"])
