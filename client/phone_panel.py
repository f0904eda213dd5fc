"""The phone column, honest about what is there: the phone engine is not connected yet.

Why a placeholder and not a dial pad: a pad that cannot place calls would mislead an agent in
front of a customer. The softphone engine (softphone/, a separate process) will provide the
real panel in client/phone/.
"""

from __future__ import annotations

from client.qt import QLabel, Qt, QVBoxLayout, QWidget
from client.resources import icon


class PhonePanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("phonePanel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 16)
        title = QLabel("Phone", self)
        title.setObjectName("panelTitle")
        layout.addWidget(title)
        layout.addStretch(1)
        art = QLabel(self)
        art.setPixmap(icon("phone").pixmap(48, 48))
        art.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(art)
        self.message = QLabel("Phone engine not connected yet", self)
        self.message.setObjectName("phoneMessage")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        sub = QLabel("Calls will appear here once the softphone is set up.", self)
        sub.setObjectName("hint")
        sub.setAlignment(Qt.AlignmentFlag.AlignCenter)
        sub.setWordWrap(True)
        layout.addWidget(sub)
        layout.addStretch(2)
