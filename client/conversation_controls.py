"""The open conversation's controls: transfer, end, wrap up with a disposition, call back.

Why small dialogs and not free text: the router accepts only its own wrap-up codes and the
queues it knows, so the app offers exactly those (from the router's hello, cached); a refusal
still comes back in words under the buttons (`show_refusal`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from client.cache_extras import DEFAULT_WRAP_UP_CODES, AgentInfo
from client.qt import (
    QComboBox,
    QDateTime,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    Qt,
    QVBoxLayout,
    QWidget,
    Signal,
)
from client.state_selector import state_label
from client.store_reader import ConversationHeader

log = logging.getLogger(__name__)


def code_label(code: str) -> str:
    """`follow_up` reads as "Follow up"."""
    return code.replace("_", " ").capitalize()


def _ok_cancel(dialog: QDialog) -> QDialogButtonBox:
    """OK / Cancel wired to the dialog's accept and reject."""
    buttons = QDialogButtonBox(
        QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, dialog
    )
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    return buttons


class TransferDialog(QDialog):
    """Pick a queue (the agent's queues) or a colleague from the router's team list.

    The team list arrives after the dialog opens (`set_team`, an HTTP read off the UI
    thread); until then, or when it cannot be had (offline), an agent id can still be typed.
    """

    def __init__(
        self, queues: tuple[str, ...], parent: QWidget | None = None, conversation_queue: str = ""
    ) -> None:
        super().__init__(parent)
        self.conversation_queue = conversation_queue
        self.setWindowTitle("Transfer conversation")
        self.setMinimumWidth(380)
        form = QFormLayout(self)
        self.kind = QComboBox(self)
        self.kind.addItem("To a queue", "queue")
        self.kind.addItem("To an agent", "agent")
        form.addRow("Transfer", self.kind)
        self.queue = QComboBox(self)
        self.queue.setEditable(True)
        self.queue.addItems(list(queues))
        form.addRow("Queue", self.queue)
        self.agent = QComboBox(self)
        self.agent.setEditable(True)
        self.agent.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        line = self.agent.lineEdit()
        if line is not None:
            line.setPlaceholderText("Agent id, e.g. a-ben")
        form.addRow("Agent", self.agent)
        self.team_note = QLabel("Loading your team…", self)
        self.team_note.setObjectName("dialogHint")
        self.team_note.setWordWrap(True)
        form.addRow("", self.team_note)
        form.addRow(_ok_cancel(self))
        self.kind.currentIndexChanged.connect(self._sync)
        self._sync()

    def _sync(self) -> None:
        to_queue = self.kind.currentData() == "queue"
        self.queue.setEnabled(to_queue)
        self.agent.setEnabled(not to_queue)

    def set_team(self, agents: list[dict[str, Any]]) -> None:
        """The router's list: "Name — State (queues)", the agent id as the item's data. Only
        members of the conversation's queue can take it (the router refuses others), so
        only they are listed when the queue is known."""
        if self.conversation_queue:
            agents = [a for a in agents if self.conversation_queue in (a.get("queues") or ())]
        typed = self.agent.currentText()
        self.agent.clear()
        for a in agents:
            state = state_label(str(a.get("state") or ""), a.get("reason") or None)
            queues = ", ".join(str(q) for q in a.get("queues") or ())
            self.agent.addItem(f"{a.get('name') or a['id']} ({state}) · {queues}", a["id"])
        if typed:
            self.agent.setEditText(typed)  # what the agent typed while the list loaded
        elif agents:  # the first colleague who can take it now, else the first listed
            ready = [i for i, a in enumerate(agents) if a.get("state") == "available"]
            self.agent.setCurrentIndex(ready[0] if ready else 0)
        self.team_note.setText(
            "A colleague who is signed in and has room takes it at once; if not, the router "
            "says why."
            if agents
            else "No other agent of this queue is known: type an agent id."
        )

    def team_failed(self, why: str) -> None:
        self.team_note.setText(f"The team list is not available ({why}): type an agent id.")

    def target(self) -> tuple[str, str]:
        """("queue" | "agent", name or agent id)."""
        if self.kind.currentData() == "queue":
            return "queue", self.queue.currentText().strip()
        text = self.agent.currentText().strip()
        index = self.agent.findText(text)
        if index >= 0:
            return "agent", str(self.agent.itemData(index))
        return "agent", text


class WrapUpDialog(QDialog):
    """Choose the disposition (the router's codes) and an optional note."""

    def __init__(self, codes: tuple[str, ...], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Wrap up")
        form = QFormLayout(self)
        self.code = QComboBox(self)
        for c in codes:
            self.code.addItem(code_label(c), c)
        form.addRow("Disposition", self.code)
        self.note = QLineEdit(self)
        self.note.setPlaceholderText("Optional note for the record")
        form.addRow("Note", self.note)
        form.addRow(_ok_cancel(self))


class CallbackDialog(QDialog):
    """When to call the customer back (local time), and a note for whoever calls."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Schedule a call back")
        form = QFormLayout(self)
        self.when = QDateTimeEdit(QDateTime.currentDateTime().addSecs(3600), self)
        self.when.setCalendarPopup(True)
        self.when.setDisplayFormat("ddd d MMM yyyy  HH:mm")
        self.when.setMinimumDateTime(QDateTime.currentDateTime())
        form.addRow("Call back at", self.when)
        self.note = QLineEdit(self)
        self.note.setPlaceholderText("What the call is about (optional)")
        form.addRow("Note", self.note)
        form.addRow(_ok_cancel(self))

    def at(self) -> float:
        return self.when.dateTime().toSecsSinceEpoch() * 1.0


class ConversationControls(QWidget):
    """A row of buttons under the conversation header.

    Signals:
        transfer_requested(conversation_id, kind, target)
        team_requested(): the Transfer dialog opened; answer with `set_team` or `team_failed`
        end_requested(conversation_id)
        wrap_up_requested(conversation_id, disposition, note)
        callback_requested(conversation_id, at, note)
    """

    transfer_requested = Signal(str, str, str)
    team_requested = Signal()
    end_requested = Signal(str)
    wrap_up_requested = Signal(str, str, str)
    callback_requested = Signal(str, float, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("convControls")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.conversation_id: str | None = None
        self.queue = ""
        self.team_names: dict[str, str] = {}  # agent id -> name, from the last team list
        self.info = AgentInfo()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 0, 16, 6)
        outer.setSpacing(2)
        row = QHBoxLayout()
        row.setSpacing(6)
        self.transfer = QPushButton("Transfer…", self)
        self.end = QPushButton("End", self)
        self.end.setToolTip("The customer part is over: start after-contact work")
        self.wrap = QPushButton("Wrap up…", self)
        self.callback = QPushButton("Call back…", self)
        for b in (self.transfer, self.end, self.wrap, self.callback):
            b.setObjectName("convAction")
            row.addWidget(b)
        row.addStretch(1)
        outer.addLayout(row)
        self.message = QLabel("", self)
        self.message.setObjectName("convActionMessage")
        self.message.setWordWrap(True)
        self.message.hide()
        outer.addWidget(self.message)
        self.transfer.clicked.connect(self._ask_transfer)
        self.end.clicked.connect(lambda: self._emit_end())
        self.wrap.clicked.connect(self._ask_wrap_up)
        self.callback.clicked.connect(self._ask_callback)
        self.dialog: QDialog | None = None  # the open one (tests drive it)

    def set_conversation(
        self, header: ConversationHeader | None, my_agent: str | None, info: AgentInfo
    ) -> None:
        """Enable what makes sense for this conversation's status and owner."""
        if header is None or header.id != self.conversation_id:
            self.show_message("")
        self.conversation_id = header.id if header else None
        self.queue = header.queue if header else ""
        self.info = info
        mine = header is not None and header.assigned_agent == my_agent
        status = header.status if header else ""
        self.transfer.setEnabled(header is not None and status in ("assigned", "queued", "wrap_up"))
        self.end.setEnabled(mine and status == "assigned")
        self.wrap.setEnabled(mine and status in ("assigned", "wrap_up"))
        self.callback.setEnabled(header is not None and status != "")

    def wrap_up_codes(self) -> tuple[str, ...]:
        return self.info.wrap_up_codes or DEFAULT_WRAP_UP_CODES

    def show_message(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setProperty("error", error)
        self.message.setStyleSheet("color: #b42318;" if error else "color: #5f6b7a;")
        self.message.setVisible(bool(text))

    def _emit_end(self) -> None:
        if self.conversation_id:
            self.end_requested.emit(self.conversation_id)

    def _ask_transfer(self) -> None:
        cid = self.conversation_id
        if not cid:
            return
        dlg = TransferDialog(self.info.queues, self, self.queue)
        self.dialog = dlg
        self.team_requested.emit()
        if dlg.exec() == QDialog.DialogCode.Accepted:
            kind, target = dlg.target()
            if not target:
                self.show_message(f"Choose the {kind} to transfer to.", True)
            else:
                self.transfer_requested.emit(cid, kind, target)
        self.dialog = None

    def set_team(self, agents: list[dict[str, Any]]) -> None:
        self.team_names.update({str(a["id"]): str(a.get("name") or a["id"]) for a in agents})
        if isinstance(self.dialog, TransferDialog):
            self.dialog.set_team(agents)

    def team_failed(self, why: str) -> None:
        if isinstance(self.dialog, TransferDialog):
            self.dialog.team_failed(why)

    def _ask_wrap_up(self) -> None:
        cid = self.conversation_id
        if not cid:
            return
        dlg = WrapUpDialog(self.wrap_up_codes(), self)
        self.dialog = dlg
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.wrap_up_requested.emit(cid, str(dlg.code.currentData()), dlg.note.text().strip())
        self.dialog = None

    def _ask_callback(self) -> None:
        cid = self.conversation_id
        if not cid:
            return
        dlg = CallbackDialog(self)
        self.dialog = dlg
        if dlg.exec() == QDialog.DialogCode.Accepted:
            at = dlg.at()
            if at <= time.time():
                self.show_message("Pick a time in the future for the call back.", True)
            else:
                self.callback_requested.emit(cid, at, dlg.note.text().strip())
        self.dialog = None
