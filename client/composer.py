"""Where the agent writes: Enter sends, Shift+Enter is a new line, notes are one click away.

Why the text is kept until the engine confirms: a message the engine refuses (too long, no
conversation, cache full) must not vanish from under the agent's fingers; it stays in the box
with the reason beside it. The body limit (20,000 characters, docs/protocol.md) is shown as
the agent nears it and enforced before anything is queued.
"""

from __future__ import annotations

import logging

from client.elided_label import ElidedLabel
from client.qt import (
    QHBoxLayout,
    QKeyEvent,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    Qt,
    QToolButton,
    QVBoxLayout,
    QWidget,
    Signal,
)

# From where the protocol defines it: `sync.protocol` re-exports it but pulls in the frame
# codec (about 10 ms of imports) that the first paint does not need.
from sync.checks import MAX_BODY_CHARS

log = logging.getLogger(__name__)


SHOW_COUNT_FROM = 0.8  # show the counter once 80% of the limit is used


class _Editor(QPlainTextEdit):
    """A plain-text box where Enter submits and Shift+Enter inserts a line break."""

    submit = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            mods = event.modifiers()
            if mods & Qt.KeyboardModifier.ShiftModifier:
                self.insertPlainText("\n")
                return
            if not mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier):
                self.submit.emit()
                return
        super().keyPressEvent(event)


class Composer(QWidget):
    """Emits `send_requested(body, is_note)`; the owner answers with `accepted()` or
    `refused(reason)`.
    """

    send_requested = Signal(str, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        self._pending = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 10)
        layout.setSpacing(6)

        self.editor = _Editor(self)
        self.editor.setObjectName("composerEditor")
        self.editor.setAccessibleName("Reply")
        self.editor.setTabChangesFocus(True)
        self.editor.setFixedHeight(84)
        layout.addWidget(self.editor)

        row = QHBoxLayout()
        row.setSpacing(8)
        self.note_toggle = QToolButton(self)
        self.note_toggle.setObjectName("noteToggle")
        self.note_toggle.setText("Internal note")
        self.note_toggle.setCheckable(True)
        self.note_toggle.setToolTip("Write a note only your team sees")
        row.addWidget(self.note_toggle)
        self.hint = ElidedLabel("Enter to send · Shift+Enter for a new line", self)
        self.hint.setObjectName("hint")
        row.addWidget(self.hint, 1)
        self.error = QLabel(self)
        self.error.setObjectName("composerError")
        self.error.setWordWrap(True)
        self.error.hide()
        row.addWidget(self.error, 3)
        self.counter = QLabel(self)
        self.counter.setObjectName("counter")
        row.addWidget(self.counter)
        self.send_button = QPushButton("Send", self)
        self.send_button.setObjectName("primary")
        self.send_button.setDefault(False)
        row.addWidget(self.send_button)
        layout.addLayout(row)

        self.editor.submit.connect(self.submit)
        self.send_button.clicked.connect(self.submit)
        self.editor.textChanged.connect(self._on_text)
        self.note_toggle.toggled.connect(self._on_mode)
        self._on_mode(False)
        self._on_text()

    # -- state -------------------------------------------------------------------------------

    def text(self) -> str:
        return self.editor.toPlainText()

    def set_text(self, text: str) -> None:
        self.editor.setPlainText(text)

    def is_note(self) -> bool:
        return self.note_toggle.isChecked()

    def set_enabled_for(self, conversation_open: bool, why: str = "") -> None:
        """Writing needs an open conversation; say why when it is not possible."""
        self.editor.setReadOnly(not conversation_open)
        self.send_button.setEnabled(conversation_open and not self._pending)
        self.editor.setPlaceholderText(
            why or ("Write a reply…" if not self.is_note() else "Internal note…")
        )

    def _on_mode(self, note: bool) -> None:
        self.editor.setProperty("note", note)
        self.editor.style().unpolish(self.editor)
        self.editor.style().polish(self.editor)
        self.editor.setPlaceholderText(
            "Internal note — only your team sees this…" if note else "Write a reply…"
        )
        self.send_button.setText("Add note" if note else "Send")

    def _on_text(self) -> None:
        n = len(self.text())
        over = n > MAX_BODY_CHARS
        if n >= MAX_BODY_CHARS * SHOW_COUNT_FROM:
            self.counter.setText(f"{n:,} / {MAX_BODY_CHARS:,}")
            self.counter.show()
        else:
            self.counter.setText(f"limit {MAX_BODY_CHARS:,} characters")
            self.counter.setVisible(n > 0)
        self.counter.setProperty("over", over)
        self.counter.style().unpolish(self.counter)
        self.counter.style().polish(self.counter)
        if self.error.isVisible() and not self._pending:
            self.error.hide()

    # -- sending -----------------------------------------------------------------------------

    def submit(self) -> None:
        """Ask the owner to send; refuse at once what the router would refuse anyway."""
        if self._pending or self.editor.isReadOnly():
            return
        body = self.text()
        if not body.strip():
            return
        if len(body) > MAX_BODY_CHARS:
            self.refused(
                f"Too long: {len(body):,} characters, the limit is {MAX_BODY_CHARS:,}. "
                "Shorten it or split it in two."
            )
            return
        self._pending = True
        self.send_button.setEnabled(False)
        self.error.hide()
        self.send_requested.emit(body, self.is_note())

    def accepted(self) -> None:
        """The engine stored the message in the outbox: the box is free for the next one."""
        self._pending = False
        self.editor.clear()
        self.send_button.setEnabled(True)
        self.note_toggle.setChecked(False)
        self.editor.setFocus()

    def refused(self, reason: str) -> None:
        """Keep the text and say why it was not sent."""
        self._pending = False
        self.send_button.setEnabled(not self.editor.isReadOnly())
        self.error.setText(reason)
        self.error.show()
        log.info("send refused: %s", reason)
