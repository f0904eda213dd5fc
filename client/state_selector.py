"""The agent's own state: Available, Away (with a reason) or Offline.

Why it shows "…" while a change is pending: the router decides (an agent with an open call
cannot go offline, for example); until its answer lands in the cache the selector says the
request is on its way instead of pretending it happened. For the same reason a green
"Available" badge would lie while the app is not connected: the router offers nothing to
an agent it cannot reach, so the badge turns grey and says so until the link is back.
"""

from __future__ import annotations

import logging

from client.qt import QAction, QMenu, QSize, Qt, QToolButton, QWidget, Signal
from client.resources import state_icon

log = logging.getLogger(__name__)

AWAY_REASONS = ("Break", "Lunch", "Training", "Meeting")
STATE_NAMES = {
    "available": "Available",
    "away": "Away",
    "offline": "Offline",
    "busy": "Busy",
    "wrap_up": "Wrap-up",
}


def state_label(state: str, reason: str | None) -> str:
    name = STATE_NAMES.get(state, state.replace("_", " ").title())
    return f"{name} — {reason}" if reason and state == "away" else name


class StateSelector(QToolButton):
    """A drop-down button; emits `state_requested(state, reason)` ('' for no reason)."""

    state_requested = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("stateSelector")
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.setIconSize(QSize(14, 14))
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        menu = QMenu(self)
        self.actions_by_key: dict[str, QAction] = {}
        self._add(menu, "available", "")
        away = menu.addMenu(state_icon("away"), "Away")
        self._away = away
        self.reasons: tuple[str, ...] = AWAY_REASONS
        for reason in AWAY_REASONS:
            self._add(away, "away", reason)
        self._add(menu, "offline", "")
        self.setMenu(menu)
        self.state = "offline"
        self.reason: str | None = None
        self.pending: tuple[str, str] | None = None
        self.connected = True
        self.set_state("offline", None)

    def _add(self, menu: QMenu, state: str, reason: str) -> None:
        act = QAction(state_icon(state), reason or STATE_NAMES[state], menu)
        act.triggered.connect(lambda _c=False, s=state, r=reason: self.request(s, r))
        menu.addAction(act)
        self.actions_by_key[f"{state}:{reason}"] = act

    def set_reasons(self, reasons: tuple[str, ...]) -> None:
        """The router's own away reasons (from hello), so the menu offers only what it
        accepts; an empty tuple keeps the current list."""
        if not reasons or reasons == self.reasons:
            return
        for key in [k for k in self.actions_by_key if k.startswith("away:")]:
            del self.actions_by_key[key]
        self._away.clear()
        self.reasons = reasons
        for reason in reasons:
            self._add(self._away, "away", reason)

    def request(self, state: str, reason: str) -> None:
        self.pending = (state, reason)
        self.setText(state_label(state, reason) + "…")
        self.setIcon(state_icon(state))
        self.setToolTip("Waiting for the router to confirm")
        self.state_requested.emit(state, reason)

    def set_state(self, state: str, reason: str | None) -> None:
        """The state the router confirmed (from the cache)."""
        self.state, self.reason = state, reason
        if self.pending and self.pending[0] == state:
            self.pending = None
        if self.pending:
            return
        if not self.connected and state != "offline":
            self.setText(f"{state_label(state, reason)} — not connected")
            self.setIcon(state_icon("offline"))
            self.setToolTip(
                "The router cannot reach this app, so it offers you no new work until the "
                "connection is back. What you write is kept and sent then."
            )
            return
        self.setText(state_label(state, reason))
        self.setIcon(state_icon(state))
        self.setToolTip("Your state: click to change")

    def set_connected(self, connected: bool) -> None:
        """Follow the sync link: the badge only shows a live state while the router hears us."""
        if connected != self.connected:
            self.connected = connected
            self.set_state(self.state, self.reason)

    def request_failed(self) -> None:
        """The router refused the change: show the confirmed state again."""
        self.pending = None
        self.set_state(self.state, self.reason)
