"""Start-up paths: the embedded router with the Demo menu, --self-test, no display."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pytestqt.qtbot import QtBot

from client.__main__ import NO_DISPLAY
from client.app import AppController, Options
from tests.support.wait import deadline

ROOT = Path(__file__).resolve().parents[2]
T = int(deadline(30) * 1000)


def test_embedded_router_starts_and_the_demo_menu_stops_and_restarts_it(
    qtbot: QtBot, tmp_path: Path
) -> None:
    c = AppController(Options(data_dir=tmp_path))
    qtbot.addWidget(c.window)
    try:
        c.start()
        bar = c.window.status
        qtbot.waitUntil(lambda: bar.connection.text() == "Connected to router", timeout=T)
        assert c.router is not None and c.router.url and c.router.url.startswith("http://127.")
        # The demo password never touches the disk.
        assert c.router.password not in (tmp_path / "router.db").read_bytes().decode("latin-1")
        qtbot.waitUntil(lambda: c.window.inbox_model.rowCount() > 0, timeout=T)
        assert c.window.demo_menu.menuAction().isVisible()
        badge = c.window.state_selector
        qtbot.waitUntil(lambda: badge.text() == "Available", timeout=T)
        c.window.stop_router_action.trigger()
        qtbot.waitUntil(lambda: bar.connection.text().startswith("Offline"), timeout=T)
        # The badge no longer claims a live "Available" the router cannot see.
        assert badge.text() == "Available — not connected"
        assert "no new work" in badge.toolTip()
        qtbot.waitUntil(lambda: c.window.start_router_action.isEnabled(), timeout=T)
        c.window.start_router_action.trigger()
        qtbot.waitUntil(lambda: bar.connection.text() == "Connected to router", timeout=T)
        qtbot.waitUntil(lambda: badge.text() == "Available", timeout=T)
    finally:
        c.shutdown()
    assert c.router is not None and not c.router.running()


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "client", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=deadline(120),
    )


def test_self_test_passes_a_real_round_trip(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    result = _run(["--self-test", "--data-dir", str(tmp_path)], env)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "self-test passed" in result.stdout
    assert (tmp_path / "cache.db").exists()


def test_no_display_prints_one_line_and_exits_2() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    result = _run([], env)
    assert result.returncode == 2
    assert result.stderr.strip() == NO_DISPLAY
    assert "xvfb-run -a ./dev run" in result.stderr


def test_first_paint_does_not_wait_for_the_network_stack(tmp_path: Path) -> None:
    """The window is built and painted before sync.client, websockets or keyring load."""
    code = (
        "import sys, pathlib\n"
        "from client.__main__ import _application\n"
        "_application()\n"
        "from client.app import AppController, Options\n"
        f"c = AppController(Options(data_dir=pathlib.Path({str(tmp_path)!r})))\n"
        "c.window.show()\n"
        "from client.qt import QApplication\n"
        "QApplication.processEvents()\n"
        "late = [m for m in ('sync.client', 'websockets', 'keyring') if m in sys.modules]\n"
        "print('LATE', late)\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=deadline(60),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "LATE []" in result.stdout
