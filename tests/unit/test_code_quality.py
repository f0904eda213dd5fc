"""ruff (lint and format) and mypy pass on the whole tree, so CI holds every change to them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PACKAGES = ["client", "sync", "router", "softphone"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("check", "."), id="lint"),
        pytest.param(("format", "--check", "."), id="format"),
    ],
)
def test_ruff(args: tuple[str, ...]) -> None:
    result = _run(str(BIN / "ruff"), *args)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_mypy() -> None:
    result = _run(str(BIN / "mypy"), *PACKAGES)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
