"""A one-line label that elides its text to whatever width the layout gives it.

Why: toasts and headers live in columns the agent can resize; eliding once at a fixed width
either wastes room or cuts text off mid-glyph.
"""

from __future__ import annotations

from client.qt import QLabel, QPainter, QPaintEvent, QSize, Qt, QWidget


class ElidedLabel(QLabel):
    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setMinimumWidth(40)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(40, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:  # noqa: N802
        # Ask for the whole text; accept as little as minimumSizeHint when space is short.
        m = self.contentsMargins()
        width = self.fontMetrics().horizontalAdvance(" ".join(self.text().split()))
        return QSize(width + m.left() + m.right() + 2, super().sizeHint().height())

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(
            " ".join(self.text().split()), Qt.TextElideMode.ElideRight, rect.width()
        )
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(rect, int(self.alignment() | Qt.AlignmentFlag.AlignVCenter), text)
