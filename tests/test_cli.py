"""The command line: exit codes, JSON output, the demo on the bundled photos."""

from __future__ import annotations

import json

import pytest

from fastperc import cli


def test_info_json(capsys):
    assert cli.main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["backends"]["torch"] is None


def test_demo_json_is_exact_against_pillow(capsys, tmp_path):
    assert cli.main(["demo", "--json", "--out", str(tmp_path)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res["photos"]) == 4
    for row in res["photos"]:
        assert row["pillow_ycbcr_max_diff"] <= 1
        assert row["jpeg_q75_identical_to_pillow"] == 1.0
        assert row["psnr_420_db"] > 30
    assert len(list(tmp_path.glob("*.png"))) == 4


def test_usage_errors(capsys):
    assert cli.main([]) == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["demo", "--backend", "gpu"])
    assert exc.value.code == 2
    capsys.readouterr()
