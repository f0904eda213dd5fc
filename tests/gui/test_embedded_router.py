"""The embedded router child process: address from its stdout, failures in words."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from client.embedded_router import EmbeddedRouter
from tests.support.wait import deadline

T = int(deadline(30) * 1000)


def test_starts_reports_its_address_and_stops(qtbot: QtBot, tmp_path: Path) -> None:
    router = EmbeddedRouter(tmp_path)
    with qtbot.waitSignal(router.listening, timeout=T) as listening:
        router.start()
    url = listening.args[0]  # type: ignore[index]
    assert url.startswith("http://127.0.0.1:") and router.port > 0
    with qtbot.waitSignal(router.stopped, timeout=T):
        router.stop()
    assert not router.running()
    # A restart keeps the port, so the sync engine's address stays valid.
    port = router.port
    with qtbot.waitSignal(router.listening, timeout=T):
        router.start()
    assert router.port == port
    router.stop_and_wait()


def test_a_router_that_cannot_start_is_explained(qtbot: QtBot, tmp_path: Path) -> None:
    (tmp_path / "router.db").mkdir()  # a folder where the database should be
    router = EmbeddedRouter(tmp_path)
    with qtbot.waitSignal(router.failed, timeout=T) as failed:
        router.start()
    reason = failed.args[0]  # type: ignore[index]
    assert reason.startswith("The local router stopped unexpectedly (exit code")
