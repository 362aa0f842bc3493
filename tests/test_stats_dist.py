"""FeatureStats.all_reduce across two processes (gloo, torch.multiprocessing) equals the
single-process result."""

from __future__ import annotations

import socket

import pytest
import torch

from fastperc.stats import FeatureStats

from .test_stats import decaying_features

D = 24
SPLIT = 700  # rank 0 sees rows [0, 700), rank 1 the rest: unequal shards


def _data() -> torch.Tensor:
    return decaying_features(1001, D, 77, mean=50.0)


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        x = _data()
        shard = x[:SPLIT] if rank == 0 else x[SPLIT:]
        s = FeatureStats(D, provenance={"extractor": "test"})
        for part in shard.split(128):  # each rank streams its shard in batches
            s.update(part.float() if rank == 1 else part)
        s.all_reduce()
        # a rank that saw nothing (dim unknown) takes part and receives the total
        empty = FeatureStats() if rank == 1 else FeatureStats(D).update(x)
        empty.all_reduce()
        # different dims on two ranks are refused on every rank alike
        bad = FeatureStats(D if rank == 0 else D + 1).update(
            torch.zeros(2, D if rank == 0 else D + 1)
        )
        try:
            bad.all_reduce()
            refused = ""
        except ValueError as exc:
            refused = str(exc)
        torch.save(
            {"state": s.state_dict(), "empty": empty.state_dict(), "refused": refused},
            f"{out_dir}/rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_all_reduce_over_two_gloo_processes(tmp_path):
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    x = _data()
    want = FeatureStats(D, compute_dtype=torch.float64)
    want.update(x[:SPLIT]).update(x[SPLIT:].float())
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    for res in results:
        got = FeatureStats().load_state_dict(res["state"])
        assert got.count == 1001 and got.provenance == {"extractor": "test"}
        torch.testing.assert_close(got.mean, want.mean, rtol=1e-13, atol=0)
        torch.testing.assert_close(got.cov, want.cov, rtol=1e-6, atol=1e-12)  # rank 1: float32 rows
        e = FeatureStats().load_state_dict(res["empty"])
        assert e.count == 1001 and e.dim == D
        assert "different dimensions across ranks" in res["refused"]
    # both ranks hold the same numbers, bit for bit
    assert torch.equal(results[0]["state"]["m2"], results[1]["state"]["m2"])
    assert torch.equal(results[0]["state"]["mean"], results[1]["state"]["mean"])


def test_all_reduce_needs_an_initialised_process_group():
    with pytest.raises(RuntimeError, match="init_process_group"):
        FeatureStats(3).update(torch.zeros(2, 3)).all_reduce()
