"""The connection in words."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from client.status_bar import ConnectionStatus, StatusBar, describe


def test_sentences() -> None:
    assert describe(ConnectionStatus("online")) == "Connected to router"
    assert (
        describe(ConnectionStatus("offline", outbox=3)) == "Offline — 3 messages waiting to be sent"
    )
    assert describe(ConnectionStatus("offline", retry_at=104.2), now=100.0) == (
        "Offline — reconnecting in 5 s…"
    )
    assert describe(ConnectionStatus("auth_failed", "wrong password")) == (
        "Login failed: wrong password"
    )
    assert describe(ConnectionStatus("offline", outbox=1)).endswith("1 message waiting to be sent")


def test_bar_shows_outbox_count_and_reconnect(qtbot: QtBot) -> None:
    bar = StatusBar()
    qtbot.addWidget(bar)
    bar.show()
    bar.set_status(ConnectionStatus("offline", "Cannot reach the router", outbox=2))
    assert bar.connection.text() == "Offline — 2 messages waiting to be sent"
    assert bar.outbox.text() == "Outbox: 2"
    assert bar.reconnect.isVisible()
    assert bar.connection.toolTip() == "Cannot reach the router"
    bar.set_status(ConnectionStatus("online"))
    assert bar.outbox.text() == "All sent"
    assert not bar.reconnect.isVisible()
