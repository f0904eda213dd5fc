"""Asks the agent for their router login when the keychain has none (or it was refused).

Why non-modal (`open()`, not `exec()`): the window keeps painting and the sync engine keeps
running while the agent types; the answer comes back as a signal.
"""

from __future__ import annotations

import logging

from client.qt import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
    Signal,
)

log = logging.getLogger(__name__)


class LoginDialog(QDialog):
    """Username + password for `router_url`; emits `submitted(username, password)`."""

    submitted = Signal(str, str)

    def __init__(
        self, router_url: str, username: str = "", problem: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Log in to the router")
        self.setMinimumWidth(380)
        layout = QVBoxLayout(self)
        intro = QLabel(f"Log in to <b>{router_url}</b>", self)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.problem = QLabel(problem, self)
        self.problem.setObjectName("composerError")
        self.problem.setWordWrap(True)
        self.problem.setVisible(bool(problem))
        layout.addWidget(self.problem)
        form = QFormLayout()
        self.username = QLineEdit(username, self)
        self.password = QLineEdit(self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow("Username", self.username)
        form.addRow("Password", self.password)
        layout.addLayout(form)
        note = QLabel("Your password is kept in the system keychain, never in a file.", self)
        note.setObjectName("hint")
        note.setWordWrap(True)
        layout.addWidget(note)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Log in")
        buttons.accepted.connect(self._ok)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        (self.password if username else self.username).setFocus()

    def _ok(self) -> None:
        user, pw = self.username.text().strip(), self.password.text()
        if not user or not pw:
            self.problem.setText("Enter both your username and your password.")
            self.problem.show()
            return
        self.accept()
        self.submitted.emit(user, pw)
