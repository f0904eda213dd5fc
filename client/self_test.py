"""`--self-test`: start every component headless, prove one round trip, exit 0 or say why.

Why a round trip and not "it imported": the frozen bundle and a fresh install fail in the
seams (a missing Qt plugin, the router's child process, the websocket, the cache). The test
starts the embedded router, the sync engine and the real window offscreen, sends a reply in a
conversation assigned to the demo agent and waits until the cache marks it 'sent' (the
router acknowledged it). Each step has a deadline; a failure names the step.
"""

from __future__ import annotations

import logging
import time

from client.app import AppController
from client.qt import QCoreApplication, QObject, QTimer

log = logging.getLogger(__name__)

BODY = "Switchboard self-test: round trip check."


class SelfTest(QObject):
    """Drives the steps with a poll timer (no sleeps on the UI thread); sets `code`/`reason`."""

    def __init__(self, controller: AppController, deadline_s: float = 60.0) -> None:
        super().__init__(controller)
        self.c = controller
        self.deadline = time.monotonic() + deadline_s
        self.deadline_s = deadline_s
        self.step = "waiting for the router and the connection"
        self.code: int | None = None
        self.reason = ""
        self.message_id: str | None = None
        self._sending = False
        self._timer = QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._poll)
        controller.bridge.issue.connect(self._on_issue)

    def start(self) -> None:
        self._timer.start()

    def _finish(self, code: int, reason: str) -> None:
        if self.code is not None:
            return
        self.code, self.reason = code, reason
        self._timer.stop()
        QCoreApplication.exit(code)

    def _on_issue(self, message: str, fatal: bool) -> None:
        if fatal:
            self._finish(1, f"sync engine stopped: {message}")

    def _poll(self) -> None:
        if time.monotonic() > self.deadline:
            words = self.c.window.status.connection.text()
            self._finish(1, f"timed out after {self.deadline_s:.0f}s {self.step} (status: {words})")
            return
        status = self.c.window.status.status
        if status.state == "error":
            self._finish(1, f"{self.step}: {status.detail}")
            return
        if status.state == "auth_failed":
            self._finish(1, f"login failed: {status.detail}")
            return
        if self.message_id is None:
            if status.state != "online" or self._sending:
                return
            self.step = "looking for a conversation assigned to the demo agent"
            agent = self.c.reader.my_agent_id()
            rows = self.c.reader._rows(
                "SELECT id FROM conversations WHERE assigned_agent = ? "
                "AND status = 'assigned' LIMIT 1",
                [agent or ""],
            )
            if not rows:
                return
            self._send(str(rows[0][0]))
            return
        self.step = "waiting for the router to acknowledge the message"
        state = self.c.reader.message_status(self.message_id)
        if state == "sent":
            self._finish(0, "round trip OK: message acknowledged by the router")
        elif state == "failed":
            self._finish(1, "the router refused the self-test message")

    def _send(self, conversation_id: str) -> None:
        self._sending = True
        self.step = "sending a message"
        fut = self.c.engine.send_message(conversation_id, BODY)

        def done(message_id: object) -> None:
            self.message_id = str(message_id)

        from client.ops import watch

        watch(fut, done, lambda exc: self._finish(1, f"sending failed: {exc}"))
