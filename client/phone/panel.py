"""The phone panel: registration status, dialling, one row per call, a DTMF keypad.

Why it holds no call logic of its own: the engine is the truth. Every button sends a command
to the engine process and the widgets change only when the engine's events say so (a Hold
button that flipped before the re-INVITE was answered would lie to the agent). Errors are
shown in words, next to where the agent acted.
"""

from __future__ import annotations

import logging
from typing import Any

from client.phone.engine_process import PhoneEngineProcess
from client.qt import QFrame, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget
from softphone import rpc

log = logging.getLogger(__name__)

KEYPAD = ("123", "456", "789", "*0#")

_STATE_WORDS = {
    "calling": "Calling…",
    "incoming": "Ringing",
    "early": "Ringing…",
    "connecting": "Connecting…",
    "confirmed": "In call",
    "disconnected": "Ended",
}


class CallRow(QFrame):
    """One call: who, what state, and the buttons that make sense in that state."""

    def __init__(self, key: str, remote: str, incoming: bool, panel: PhonePanel) -> None:
        super().__init__(panel)
        self.setObjectName("callRow")
        self.key = key
        self.panel = panel
        self.incoming = incoming
        self.state = "incoming" if incoming else "calling"
        self.on_hold = False
        self.muted = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        self.who = QLabel(remote, self)
        self.who.setObjectName("callRemote")
        self.status = QLabel(self)
        self.status.setObjectName("callStatus")
        self.quality = QLabel("", self)
        self.quality.setObjectName("callQuality")
        layout.addWidget(self.who)
        layout.addWidget(self.status)
        layout.addWidget(self.quality)
        buttons = QHBoxLayout()
        self.answer = self._button("Answer", lambda: panel.command("answer", call=key))
        self.decline = self._button("Decline", lambda: panel.command("decline", call=key))
        self.hold = self._button("Hold", self._toggle_hold)
        self.mute = self._button("Mute", self._toggle_mute)
        self.hangup = self._button("Hang up", lambda: panel.command("hangup", call=key))
        for b in (self.answer, self.decline, self.hold, self.mute, self.hangup):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        transfer = QHBoxLayout()
        self.transfer_to = QLineEdit(self)
        self.transfer_to.setPlaceholderText("Transfer to…")
        self.transfer = self._button("Transfer", self._transfer)
        transfer.addWidget(self.transfer_to)
        transfer.addWidget(self.transfer)
        layout.addLayout(transfer)
        self.refresh()

    def _button(self, text: str, slot: Any) -> QPushButton:
        b = QPushButton(text, self)
        b.setObjectName(f"call{text.replace(' ', '')}")
        b.clicked.connect(slot)
        return b

    def _toggle_hold(self) -> None:
        self.panel.command("resume" if self.on_hold else "hold", call=self.key)

    def _toggle_mute(self) -> None:
        self.panel.command("unmute" if self.muted else "mute", call=self.key)

    def _transfer(self) -> None:
        target = self.transfer_to.text().strip()
        if target:
            self.panel.command("transfer", call=self.key, to=target)

    def refresh(self) -> None:
        """Show the state in words and only the buttons that apply."""
        ringing_in = self.incoming and self.state in ("incoming", "early")
        words = _STATE_WORDS.get(self.state, self.state)
        if self.state == "confirmed" and self.on_hold:
            words = "On hold"
        if self.muted:
            words += " · muted"
        self.status.setText(words)
        talking = self.state == "confirmed"
        self.answer.setVisible(ringing_in)
        self.decline.setVisible(ringing_in)
        self.hold.setVisible(talking)
        self.hold.setText("Resume" if self.on_hold else "Hold")
        self.mute.setVisible(talking)
        self.mute.setText("Unmute" if self.muted else "Mute")
        self.hangup.setVisible(not ringing_in)
        self.transfer_to.setVisible(talking)
        self.transfer.setVisible(talking)


class _Message(QLabel):
    """A label that takes no room while it has nothing to say (no blank gap under the
    phone's status between errors)."""

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        super().setText(text)
        self.setVisible(bool(text))


class PhonePanel(QWidget):
    """The phone column, driven by a `PhoneEngineProcess`.

    Args:
        engine: the engine bridge (started and stopped by the app, not here).
    """

    def __init__(self, engine: PhoneEngineProcess, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("phonePanel")
        self.engine = engine
        self.rows: dict[str, CallRow] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 16)
        title = QLabel("Phone", self)
        title.setObjectName("panelTitle")
        layout.addWidget(title)
        self.registration = QLabel("Phone engine starting…", self)
        self.registration.setObjectName("phoneStatus")
        self.registration.setWordWrap(True)
        layout.addWidget(self.registration)
        # Right under the status, above the dial pad: a phone column taller than the window
        # (a screen pop, two calls) scrolled a message at the bottom out of sight mid-call.
        self.error = _Message("", self)
        self.error.setVisible(False)
        self.error.setObjectName("phoneError")
        self.error.setWordWrap(True)
        layout.addWidget(self.error)
        dial = QHBoxLayout()
        self.number = QLineEdit(self)
        self.number.setObjectName("dialNumber")
        self.number.setPlaceholderText("Number or SIP address")
        self.number.returnPressed.connect(self.dial)
        self.call_button = QPushButton("Call", self)
        self.call_button.setObjectName("dialButton")
        self.call_button.clicked.connect(self.dial)
        dial.addWidget(self.number)
        dial.addWidget(self.call_button)
        layout.addLayout(dial)
        self.calls = QVBoxLayout()
        layout.addLayout(self.calls)
        for row in KEYPAD:
            keys = QHBoxLayout()
            for digit in row:
                b = QPushButton(digit, self)
                b.setObjectName(
                    f"key{'star' if digit == '*' else 'hash' if digit == '#' else digit}"
                )
                b.clicked.connect(lambda _=False, d=digit: self.key(d))
                keys.addWidget(b)
            layout.addLayout(keys)
        layout.addStretch(1)
        engine.engine_event.connect(self._on_event)
        engine.state_changed.connect(self._on_engine_state)
        engine.crashed.connect(lambda why: self.error.setText(f"{why}; restarting…"))

    # Agent actions -------------------------------------------------------------------
    def command(self, cmd: str, **args: Any) -> None:
        """Send a command; a refusal is shown in words."""
        self.error.setText("")
        self.engine.send(cmd, self._on_reply, **args)

    def dial(self) -> None:
        """Call what is in the number field."""
        target = self.number.text().strip()
        if not target:
            self.error.setText("Type a number or SIP address first.")
            return
        self.command("dial", to=target)

    def key(self, digit: str) -> None:
        """Keypad: DTMF to the call in progress, else a digit in the number field."""
        active = [r for r in self.rows.values() if r.state == "confirmed" and not r.on_hold]
        if active:
            self.command("dtmf", call=active[0].key, digits=digit)
        else:
            self.number.insert(digit)

    # Engine events ---------------------------------------------------------------------
    def _on_reply(self, reply: rpc.Reply) -> None:
        # Rows come from call_state events only: the engine is the one source of truth.
        if not reply.ok:
            self.error.setText(reply.error_message)

    def _on_engine_state(self, state: str) -> None:
        if state == "restarting":
            self.registration.setText("Phone engine restarting…")
            for key in list(self.rows):
                self._remove_row(key)

    def _on_event(self, name: str, data: dict[str, Any]) -> None:
        handler = getattr(self, f"_ev_{name}", None)
        if handler is not None:
            handler(data)

    def _ev_ready(self, data: dict[str, Any]) -> None:
        self.registration.setText("Phone ready — not registered")

    def _ev_reg_state(self, data: dict[str, Any]) -> None:
        state = data["state"]
        if state == "Registered":
            self.registration.setText("Registered — ready for calls")
        elif state == "Failed":
            self.registration.setText(f"Not registered: {data['reason']}")
        else:
            self.registration.setText(f"{state}…" if state == "Registering" else state)

    def _ev_network_change(self, data: dict[str, Any]) -> None:
        # The engine noticed a new network or a wake and re-registers; reg_state follows.
        why = "after sleep" if data.get("reason") == "wake" else "on the new network"
        self.registration.setText(f"Registering again {why}…")

    def _ev_incoming_call(self, data: dict[str, Any]) -> None:
        self._add_row(data["call"], data.get("from_name") or data["from"], incoming=True)

    def _ev_call_state(self, data: dict[str, Any]) -> None:
        row = self.rows.get(data["call"])
        if row is None:
            if data["state"] == "disconnected":
                return
            row = self._add_row(data["call"], data["remote"], data["role"] == "incoming")
        if data["state"] == "disconnected":
            self._remove_row(data["call"])
            return
        row.state = data["state"]
        row.refresh()

    def _ev_media_state(self, data: dict[str, Any]) -> None:
        row = self.rows.get(data["call"])
        if row is not None:
            row.on_hold = data["status"] == "local_hold"
            row.muted = bool(data["muted"])
            row.refresh()

    def _ev_quality(self, data: dict[str, Any]) -> None:
        row = self.rows.get(data["call"])
        if row is not None and "mos" in data:
            row.quality.setText(
                f"MOS {data['mos']:.1f} · loss {data['loss_pct']:.1f}% · "
                f"jitter {data['jitter_ms']:.0f} ms"
            )

    def _ev_error(self, data: dict[str, Any]) -> None:
        self.error.setText(str(data.get("message", "")))

    def _add_row(self, key: str, remote: str, incoming: bool) -> CallRow:
        row = CallRow(key, remote, incoming, self)
        self.rows[key] = row
        self.calls.addWidget(row)
        return row

    def _remove_row(self, key: str) -> None:
        row = self.rows.pop(key, None)
        if row is not None:
            self.calls.removeWidget(row)
            row.deleteLater()
