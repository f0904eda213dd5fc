"""The embedded router stops when the app that started it dies, even by kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.wait import wait_until

PARENT = r"""
import os, subprocess, sys
env = dict(os.environ, SWITCHBOARD_DEMO_PASSWORD="pw")
child = subprocess.Popen(
    [sys.executable, "-m", "router", "--port", "0", "--db", sys.argv[1], "--demo-agents",
     "--exit-with-stdin"],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
line = child.stdout.readline().decode()
assert line.startswith("SWITCHBOARD_ROUTER_LISTENING"), line
print(child.pid, flush=True)
sys.stdin.read()  # live until killed
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[1].startswith("Z"))


def test_router_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "router.db")],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        router_pid = int(parent.stdout.readline())
        assert _alive(router_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        wait_until(lambda: not _alive(router_pid), timeout=15, what="the orphaned router to exit")
    finally:
        parent.kill()
        parent.wait()


def test_router_watching_stdin_still_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """The stdin watch thread must not abort the interpreter at shutdown (exit 0, not 134)."""
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, SWITCHBOARD_DEMO_PASSWORD="pw")
    router = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "router",
            "--port",
            "0",
            "--db",
            str(tmp_path / "r.db"),
            "--demo-agents",
            "--exit-with-stdin",
        ],
        cwd=root,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert router.stdout is not None
        assert router.stdout.readline().startswith("SWITCHBOARD_ROUTER_LISTENING")
        router.send_signal(signal.SIGTERM)
        _, err = router.communicate(timeout=20)
        assert router.returncode == 0, err[-2000:]
        assert "Fatal Python error" not in err
    finally:
        router.kill()
        router.wait()
