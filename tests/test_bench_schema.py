"""Recorded benchmark files stay readable: a schema check of bench/results/*.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"


def _files():
    return sorted(RESULTS.glob("*.json")) if RESULTS.exists() else []


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_result_schema(path):
    data = json.loads(path.read_text())
    m = data["machine"]
    for key in ("cpu", "cores", "commit", "versions", "date"):
        assert key in m
    assert "torch" in m["versions"]
    assert data["bandwidth"]["ceiling_gbs"] > 0
    assert data["rows"], "no rows recorded"
    for row in data["rows"]:
        for key in ("op", "provider", "median_ms", "mpix_s"):
            assert key in row
        assert row["median_ms"] > 0
