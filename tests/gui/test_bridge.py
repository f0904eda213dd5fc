"""The bridge: engine notifications from another thread arrive as signals on the UI thread."""

from __future__ import annotations

import threading

from pytestqt.qtbot import QtBot

from client.bridge import SyncBridge
from client.qt import QThread
from client.status_bar import ConnectionStatus
from sync.changes import CommandFailed, DataChanged
from sync.changes import ConnectionStatus as EngineStatus


def test_notifications_from_the_sync_thread_arrive_on_the_ui_thread(qtbot: QtBot) -> None:
    bridge = SyncBridge()
    seen: list[tuple[str, object, bool]] = []
    ui = QThread.currentThread()

    def record(name: str):  # type: ignore[no-untyped-def]
        return lambda *a: seen.append((name, a, QThread.currentThread() is ui))

    bridge.connection.connect(record("connection"))
    bridge.changed.connect(record("changed"))
    bridge.command_failed.connect(record("failed"))

    def engine_thread() -> None:
        bridge.listener(EngineStatus("offline", "Cannot reach the router", 3, retry_in=4.0))
        bridge.listener(DataChanged(frozenset({"messages"}), frozenset({"c-1"})))
        bridge.listener(CommandFailed("id-1", "send_message", "forbidden", "Not yours."))

    t = threading.Thread(target=engine_thread)
    t.start()
    t.join()
    qtbot.waitUntil(lambda: len(seen) >= 4, timeout=3000)
    assert all(on_ui for _n, _a, on_ui in seen)
    names = [n for n, _a, _u in seen]
    assert names[0] == "connection"
    status = seen[0][1][0]
    assert isinstance(status, ConnectionStatus)
    assert (status.state, status.outbox) == ("offline", 3) and status.retry_at is not None
    assert ("changed", ({"messages"}, {"c-1"}), True) in seen
    assert ("failed", ("id-1", "send_message", "forbidden", "Not yours."), True) in seen


def test_a_broken_notification_is_logged_not_raised_into_the_engine(qtbot: QtBot) -> None:
    bridge = SyncBridge()
    got: list[object] = []
    bridge.changed.connect(lambda *a: got.append(a))
    bridge.listener(object())  # unknown kind: treated as "something changed"
    qtbot.waitUntil(lambda: bool(got), timeout=3000)
    assert got[0] == ({"*"}, set())
