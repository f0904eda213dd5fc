"""Paints one inbox row: channel icon, customer, one-line preview, waiting time, unread dot.

Why a delegate and not a widget per row: the view paints only the visible rows, each in a few
microseconds, so the list stays smooth at any length and the live waiting times cost nothing
for rows off screen.
"""

from __future__ import annotations

import logging
import time

from client import palette
from client.formatting import duration, short_day, wait_level
from client.inbox_model import RowRole, waiting_seconds
from client.qt import (
    QFont,
    QFontMetrics,
    QModelIndex,
    QPainter,
    QPersistentModelIndex,
    QRect,
    QSize,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    Qt,
)
from client.resources import channel_icon
from client.store_reader import InboxRow

log = logging.getLogger(__name__)

ROW_HEIGHT = 60
PAD = 12
ICON = 24


class InboxDelegate(QStyledItemDelegate):
    """Two-line rows; bold name and a dot for unread; the wait coloured by how late it is."""

    def sizeHint(  # noqa: N802
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        return QSize(280, ROW_HEIGHT)

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        row: InboxRow | None = index.data(RowRole)
        if row is None:
            return
        painter.save()
        r = QRect(option.rect)
        state = option.state
        selected = bool(state & QStyle.StateFlag.State_Selected)
        hovered = bool(state & QStyle.StateFlag.State_MouseOver)
        bg = palette.SELECTED if selected else palette.HOVER if hovered else palette.SURFACE
        painter.fillRect(r, bg)
        if selected:
            painter.fillRect(QRect(r.left(), r.top(), 3, r.height()), palette.ACCENT)
        painter.setPen(palette.BORDER)
        painter.drawLine(r.left() + PAD, r.bottom(), r.right(), r.bottom())

        channel_icon(row.channel).paint(painter, QRect(r.left() + PAD, r.top() + 10, ICON, ICON))
        text_left = r.left() + PAD + ICON + 10
        right = r.right() - PAD

        base = QFont(option.font)
        bold = QFont(base)
        bold.setWeight(QFont.Weight.DemiBold if row.unread else QFont.Weight.Medium)

        # Right column, line 1: the wait (coloured pill) or the time of the last message.
        now = time.time()
        wait = waiting_seconds(row, now)
        small = QFont(base)
        small.setPointSizeF(max(7.0, base.pointSizeF() - 1))
        fm_small = QFontMetrics(small)
        line1_y = r.top() + 10
        if wait is not None:
            label = duration(wait)
            level = wait_level(row.channel, wait)
            fg, pill = palette.WAIT_COLOURS[level]
            w = fm_small.horizontalAdvance(label) + 12
            pill_rect = QRect(right - w, line1_y + 1, w, fm_small.height() + 3)
            if level:
                painter.setRenderHint(QPainter.RenderHint.Antialiasing)
                painter.setBrush(pill)
                painter.setPen(Qt.PenStyle.NoPen)
                painter.drawRoundedRect(pill_rect, 6, 6)
            f = QFont(small)
            f.setWeight(QFont.Weight.DemiBold if level else QFont.Weight.Normal)
            painter.setFont(f)
            painter.setPen(fg)
            painter.drawText(pill_rect, Qt.AlignmentFlag.AlignCenter, label)
            right_used = w
        else:
            label = short_day(row.last_message_at, now)
            painter.setFont(small)
            painter.setPen(palette.TEXT_FAINT)
            w = fm_small.horizontalAdvance(label)
            painter.drawText(
                QRect(right - w, line1_y, w, fm_small.height() + 4),
                Qt.AlignmentFlag.AlignVCenter,
                label,
            )
            right_used = w

        # Line 1: customer name.
        painter.setFont(bold)
        painter.setPen(palette.TEXT)
        fm_bold = QFontMetrics(bold)
        name_w = right - right_used - 8 - text_left
        name = fm_bold.elidedText(
            row.customer_name or "Unknown customer", Qt.TextElideMode.ElideRight, name_w
        )
        painter.drawText(
            QRect(text_left, line1_y, name_w, fm_bold.height() + 4),
            Qt.AlignmentFlag.AlignVCenter,
            name,
        )

        # Line 2: preview (one line, elided) and the unread dot / queue tag.
        line2_y = line1_y + fm_bold.height() + 5
        fm = QFontMetrics(base)
        tag_w = 0
        if row.unread:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setBrush(palette.UNREAD)
            painter.setPen(Qt.PenStyle.NoPen)
            d = 8
            painter.drawEllipse(right - d, line2_y + (fm.height() - d) // 2 + 1, d, d)
            tag_w = d + 8
        elif row.status in ("queued", "offered"):
            painter.setFont(small)
            painter.setPen(palette.TEXT_FAINT)
            tag = "Offered" if row.status == "offered" else "In queue"
            tw = fm_small.horizontalAdvance(tag)
            painter.drawText(
                QRect(right - tw, line2_y, tw, fm.height() + 2), Qt.AlignmentFlag.AlignVCenter, tag
            )
            tag_w = tw + 8
        painter.setFont(base)
        painter.setPen(palette.TEXT if row.unread else palette.TEXT_SECONDARY)
        preview_w = right - tag_w - text_left
        preview = " ".join((row.preview or row.subject or "").split())
        painter.drawText(
            QRect(text_left, line2_y, preview_w, fm.height() + 2),
            Qt.AlignmentFlag.AlignVCenter,
            fm.elidedText(preview or "No messages yet", Qt.TextElideMode.ElideRight, preview_w),
        )
        painter.restore()
