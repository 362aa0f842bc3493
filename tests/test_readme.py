"""The README's quick start and CI must not drift apart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_ci_runs_the_readme_test_command():
    readme = ROOT / "README.md"
    ci = ROOT / ".ci" / "run"
    if not readme.exists() or not ci.exists():
        pytest.skip("not running from a source checkout")
    blocks = _bash_blocks(readme.read_text())
    assert len(blocks) >= 2, "the quick start has two commands"
    install_and_demo, install_and_test = blocks[0], blocks[1]
    assert "fastperc demo" in install_and_demo
    assert install_and_test in ci.read_text().splitlines()
