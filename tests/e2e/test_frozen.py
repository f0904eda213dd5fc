"""The PyInstaller bundle builds from build.spec and its --self-test passes.

Slow (a clean build takes minutes), so it carries the `frozen` marker; `./dev test` and CI
still run it. The build goes to a temporary folder, never into the work tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from softphone.native import build as native_build

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.frozen
@pytest.mark.timeout(1500)
def test_bundle_builds_and_passes_its_self_test(tmp_path: Path) -> None:
    assert native_build.build() is None  # the bundle ships the native audio path
    dist, work = tmp_path / "dist", tmp_path / "build"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--clean",
            "--log-level",
            "WARN",
            "--distpath",
            str(dist),
            "--workpath",
            str(work),
            str(ROOT / "build.spec"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    exe = dist / "switchboard" / "switchboard"
    assert exe.is_file()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    result = subprocess.run(
        [str(exe), "--self-test", "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    assert "self-test passed" in result.stdout.lower()
    # The phone engine in the bundle runs on the native port (built by ./dev, shipped by
    # build.spec): its first line says so, and it stops cleanly at the end of its input.
    phone = subprocess.run(
        [str(exe), "--run-phone", "rpc", "--backend", "wav", "--sip-port", "0"],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert phone.returncode == 0, phone.stderr[-3000:]
    ready = json.loads(phone.stdout.splitlines()[0])
    assert ready["event"] == "ready" and ready["data"]["native_audio"] is True, phone.stderr[-3000:]
