"""The status bar: the connection to the router in words, and the outbox count.

Why words: "Offline — 3 messages waiting to be sent" tells an agent that their replies are
safe and will go out; a red dot alone tells them nothing. A reconnect countdown ticks once a
second so the agent can see the app is trying.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from client.formatting import plural
from client.qt import QLabel, QPushButton, QStatusBar, QTimer, QWidget, Signal
from client.resources import icon

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionStatus:
    """What the sync engine last said about the connection.

    state: starting | connecting | online | offline | auth_failed | stopped | error.
    retry_at: when the next reconnect attempt happens (local monotonic clock), if known.
    """

    state: str
    detail: str = ""
    outbox: int = 0
    retry_at: float | None = None


def describe(status: ConnectionStatus, now: float | None = None) -> str:
    """The sentence for the status bar (the engine's technical detail goes in the tooltip)."""
    now = time.monotonic() if now is None else now
    waiting = plural(status.outbox, "message") + " waiting to be sent" if status.outbox else ""
    if status.state == "online":
        text = "Connected to router"
        return f"{text} — sending {plural(status.outbox, 'message')}…" if status.outbox else text
    if status.state == "auth_failed":
        return f"Login failed: {status.detail or 'the router refused the password'}"
    if status.state == "starting":
        return status.detail or "Starting…"
    if status.state == "error":
        return status.detail or "Something went wrong"
    if status.state == "connecting":
        text = "Connecting to router…"
        return f"{text} {waiting}" if waiting else text
    # offline: say what is safe (the outbox) and when the next attempt comes.
    retry = ""
    if status.retry_at is not None:
        secs = int(status.retry_at - now + 0.999)
        retry = f"reconnecting in {secs} s…" if secs > 0 else "reconnecting…"
    parts = [p for p in (waiting, retry) if p]
    return "Offline — " + " · ".join(parts) if parts else "Offline"


class StatusBar(QStatusBar):
    """Connection sentence on the left, outbox count and a Reconnect button on the right."""

    reconnect_clicked = Signal()
    linked = Signal(bool)  # True once online, False when the link is lost or refused

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("statusBar")
        self.setSizeGripEnabled(False)
        self.dot = QLabel(self)
        self.connection = QLabel(self)
        self.connection.setObjectName("connectionText")
        self.addWidget(self.dot)
        self.addWidget(self.connection, 1)
        self.notice = QLabel(self)
        self.notice.setObjectName("notice")
        self.notice.hide()
        self.addWidget(self.notice, 2)
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.timeout.connect(self.notice.hide)
        self.reconnect = QPushButton("Reconnect now", self)
        self.reconnect.setObjectName("link")
        self.reconnect.clicked.connect(self.reconnect_clicked)
        self.reconnect.hide()
        self.addPermanentWidget(self.reconnect)
        self.outbox = QLabel(self)
        self.outbox.setObjectName("outboxText")
        self.addPermanentWidget(self.outbox)
        self.status = ConnectionStatus("starting", "Starting…")
        self._timer = QTimer(self)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self._render)
        self.set_status(self.status)

    def set_status(self, status: ConnectionStatus) -> None:
        if status != self.status:
            log.info("connection: %s %s (outbox %d)", status.state, status.detail, status.outbox)
        # "starting"/"connecting" at launch are not a lost link: only say so once it is.
        if status.state == "online":
            self.linked.emit(True)
        elif status.state in ("offline", "auth_failed", "stopped", "error"):
            self.linked.emit(False)
        self.status = status
        if status.retry_at is not None:
            self._timer.start()
        else:
            self._timer.stop()
        self._render()

    def notify(self, text: str, msecs: int = 8000) -> None:
        """A passing message (a refused action) beside the connection state, never over it."""
        self.notice.setText(text)
        self.notice.setToolTip(text)
        self.notice.show()
        self._notice_timer.start(msecs)

    def set_outbox(self, count: int) -> None:
        if count != self.status.outbox:
            self.set_status(
                ConnectionStatus(self.status.state, self.status.detail, count, self.status.retry_at)
            )

    def _render(self) -> None:
        s = self.status
        name = {
            "online": "conn-online",
            "auth_failed": "conn-error",
            "error": "conn-error",
            "connecting": "conn-connecting",
            "starting": "conn-connecting",
        }.get(s.state, "conn-offline")
        self.dot.setPixmap(icon(name).pixmap(12, 12))
        self.connection.setText(describe(s))
        self.connection.setToolTip(s.detail)
        self.outbox.setText(
            f"Outbox: {s.outbox}" if s.outbox else ("All sent" if s.state == "online" else "")
        )
        self.reconnect.setVisible(s.state in ("connecting", "offline"))
