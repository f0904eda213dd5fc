"""Offer toasts: the router offers a conversation; the agent accepts or declines in time.

Why a countdown the agent can see: an offer expires (and goes to the next agent) after a few
seconds; a toast without the remaining time makes agents miss offers or rush. Toasts are built
from the cache's `offers` table, so a revoked offer (taken, timed out, declined elsewhere)
disappears on the next refresh without any bookkeeping here.
"""

from __future__ import annotations

import logging
import time

from client.elided_label import ElidedLabel
from client.qt import (
    QColor,
    QFrame,
    QGraphicsDropShadowEffect,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSize,
    Qt,
    QTimer,
    QVBoxLayout,
    QWidget,
    Signal,
)
from client.resources import CHANNEL_NAMES, channel_icon
from client.store_reader import Offer

log = logging.getLogger(__name__)

TOAST_MIN_WIDTH = 230


class OfferToast(QFrame):
    """One offer: who, which channel, the first line, a countdown, Accept / Decline."""

    accept_clicked = Signal(str)
    decline_clicked = Signal(str)

    def __init__(self, offer: Offer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.offer = offer
        self.setObjectName("offerToast")
        self.setMinimumWidth(TOAST_MIN_WIDTH)
        shadow = QGraphicsDropShadowEffect(self)
        shadow.setBlurRadius(24)
        shadow.setOffset(0, 4)
        shadow.setColor(QColor(20, 30, 50, 60))
        self.setGraphicsEffect(shadow)
        self._total = max(1.0, (offer.expires_at or 0) - (offer.received_at or time.time()))

        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.setSpacing(6)
        top = QHBoxLayout()
        top.setSpacing(10)
        ic = QLabel(self)
        ic.setPixmap(channel_icon(offer.channel).pixmap(QSize(28, 28)))
        top.addWidget(ic, 0, Qt.AlignmentFlag.AlignTop)
        col = QVBoxLayout()
        col.setSpacing(1)
        chan = CHANNEL_NAMES.get(offer.channel, offer.channel or "Conversation")
        kind = QLabel(
            f"New {chan.lower() if chan != 'SMS' else 'SMS'}"
            + (f" · {offer.queue}" if offer.queue else ""),
            self,
        )
        kind.setObjectName("toastKind")
        col.addWidget(kind)
        self.name = ElidedLabel(offer.customer_name or "Unknown customer", self)
        self.name.setObjectName("toastName")
        col.addWidget(self.name)
        top.addLayout(col, 1)
        self.countdown = QLabel(self)
        self.countdown.setObjectName("toastCountdown")
        top.addWidget(self.countdown, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(top)

        first_line = (offer.preview or "").strip().splitlines()[0] if offer.preview else ""
        self.preview = ElidedLabel(first_line or "(no preview)", self)
        self.preview.setObjectName("toastPreview")
        self.preview.setToolTip(offer.preview)
        layout.addWidget(self.preview)

        self.bar = QProgressBar(self)
        self.bar.setObjectName("toastBar")
        self.bar.setTextVisible(False)
        self.bar.setRange(0, 1000)
        self.bar.setFixedHeight(4)
        layout.addWidget(self.bar)

        self.error = QLabel(self)
        self.error.setObjectName("toastError")
        self.error.setWordWrap(True)
        self.error.hide()
        layout.addWidget(self.error)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.decline_button = QPushButton("Decline", self)
        self.decline_button.setObjectName("secondary")
        self.accept_button = QPushButton("Accept", self)
        self.accept_button.setObjectName("primary")
        buttons.addWidget(self.decline_button)
        buttons.addWidget(self.accept_button)
        layout.addLayout(buttons)

        self.accept_button.clicked.connect(self._accept)
        self.decline_button.clicked.connect(self._decline)
        self._timer = QTimer(self)
        self._timer.setInterval(200)
        self._timer.timeout.connect(self.tick)
        self._timer.start()
        self.tick()

    def remaining(self, now: float | None = None) -> float:
        if self.offer.expires_at is None:
            return self._total
        return max(0.0, self.offer.expires_at - (time.time() if now is None else now))

    def tick(self) -> None:
        left = self.remaining()
        self.countdown.setText(f"{int(left + 0.999)} s" if left > 0 else "Expired")
        self.countdown.setProperty("urgent", left < 5)
        self.countdown.style().unpolish(self.countdown)
        self.countdown.style().polish(self.countdown)
        self.bar.setValue(int(1000 * min(1.0, left / self._total)))
        if left <= 0:
            self.accept_button.setEnabled(False)
            self.decline_button.setEnabled(False)

    def _accept(self) -> None:
        self._busy("Accepting…")
        self.accept_clicked.emit(self.offer.id)

    def _decline(self) -> None:
        self._busy("Declining…")
        self.decline_clicked.emit(self.offer.id)

    def _busy(self, text: str) -> None:
        self.accept_button.setEnabled(False)
        self.decline_button.setEnabled(False)
        self.error.setText(text)
        self.error.setProperty("failed", False)
        self.error.show()

    def failed(self, reason: str) -> None:
        """The router refused: say so; the buttons come back while the offer lasts."""
        self.error.setText(reason)
        self.error.setProperty("failed", True)
        self.error.style().unpolish(self.error)
        self.error.style().polish(self.error)
        self.error.show()
        alive = self.remaining() > 0
        self.accept_button.setEnabled(alive)
        self.decline_button.setEnabled(alive)


class OfferStack(QWidget):
    """The column of toasts at the top of the right-hand column, kept in step with the
    cache's pending offers. It sits in the layout (not floating over the window), so an
    offer never hides the message the agent is reading or the Send button."""

    accept_requested = Signal(str)
    decline_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("offerStack")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(10, 10, 10, 4)
        self._layout.setSpacing(10)
        self.toasts: dict[str, OfferToast] = {}
        self.hide()

    def show_offers(self, offers: list[Offer]) -> None:
        """Add new offers, drop revoked ones; existing toasts keep their state."""
        wanted = {o.id: o for o in offers}
        for oid in list(self.toasts):
            if oid not in wanted:
                toast = self.toasts.pop(oid)
                self._layout.removeWidget(toast)
                toast.deleteLater()
        for oid, offer in wanted.items():
            if oid in self.toasts:
                continue
            toast = OfferToast(offer, self)
            toast.accept_clicked.connect(self.accept_requested)
            toast.decline_clicked.connect(self.decline_requested)
            self._layout.addWidget(toast)
            self.toasts[oid] = toast
            log.info("offer shown: %s (%s)", oid, offer.channel)
        self.setVisible(bool(self.toasts))

    def failed(self, offer_id: str, reason: str) -> None:
        toast = self.toasts.get(offer_id)
        if toast is not None:
            toast.failed(reason)
