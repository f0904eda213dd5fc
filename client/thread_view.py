"""One conversation's thread: a small model and a delegate that paints message bubbles.

Why painted bubbles in a list view: a thread can hold hundreds of messages; one widget per
message would be slow to build and re-layout on every event. The model holds the last 500
messages (the reader's bound); refreshes append or update in place so the view does not jump,
and the view sticks to the bottom only when the agent was already there.
"""

from __future__ import annotations

import logging
from typing import Any

from client import palette
from client.formatting import clock
from client.qt import (
    QAbstractItemView,
    QAbstractListModel,
    QAction,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QListView,
    QMenu,
    QModelIndex,
    QObject,
    QPainter,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    Qt,
    QTimer,
    QWidget,
    Signal,
)
from client.store_reader import ThreadMessage

log = logging.getLogger(__name__)

MessageRole = Qt.ItemDataRole.UserRole + 10
AnyIndex = QModelIndex | QPersistentModelIndex

PAD_X = 12
PAD_Y = 8
SIDE = 16
GAP = 10
META_GAP = 3


def status_text(msg: ThreadMessage) -> str:
    """The agent-facing mark of one of our messages: Sending…, Sent, Not sent: reason."""
    if msg.direction == "in":
        return ""
    if msg.status == "sending" or (msg.status == "" and msg.seq is None):
        return "Sending…"
    if msg.status == "failed":
        return f"Not sent: {msg.error or 'the router refused it'}"
    return "Sent" if msg.direction == "out" else "Saved"


class ThreadModel(QAbstractListModel):
    """The messages of the open conversation, in thread order."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._msgs: list[ThreadMessage] = []
        self.conversation_id: str | None = None

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._msgs)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._msgs):
            return None
        msg = self._msgs[index.row()]
        if role == MessageRole:
            return msg
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            # Screen readers hear who wrote it and whether it went out, not only the text.
            mark = status_text(msg)
            return f"{msg.author}: {msg.body}" + (f" ({mark})" if mark else "")
        return None

    def messages(self) -> list[ThreadMessage]:
        return list(self._msgs)

    def set_messages(self, conversation_id: str | None, msgs: list[ThreadMessage]) -> None:
        """Show `msgs`; append/update in place when it is the same thread grown."""
        old = self._msgs
        same = conversation_id == self.conversation_id
        if (
            same
            and len(msgs) >= len(old)
            and [m.id for m in msgs[: len(old)]] == [m.id for m in old]
        ):
            changed = [i for i, (a, b) in enumerate(zip(old, msgs, strict=False)) if a != b]
            self._msgs = msgs[: len(old)]
            if changed:
                self.dataChanged.emit(self.index(changed[0]), self.index(changed[-1]))
            if len(msgs) > len(old):
                self.beginInsertRows(QModelIndex(), len(old), len(msgs) - 1)
                self._msgs = msgs
                self.endInsertRows()
            return
        self.beginResetModel()
        self.conversation_id = conversation_id
        self._msgs = msgs
        self.endResetModel()


class BubbleDelegate(QStyledItemDelegate):
    """Customer on the left, agent on the right, internal notes full width in yellow."""

    def _fonts(self, option: QStyleOptionViewItem) -> tuple[QFont, QFont]:
        base = QFont(option.font)
        small = QFont(base)
        small.setPointSizeF(max(7.0, base.pointSizeF() - 1))
        return base, small

    def _max_text_width(self, width: int, msg: ThreadMessage) -> int:
        if msg.direction == "note":
            return max(120, width - 2 * SIDE - 2 * PAD_X)
        return max(120, int(width * 0.68) - 2 * PAD_X)

    def _body(self, msg: ThreadMessage) -> str:
        body = msg.body or ""
        if msg.attachments:
            body += "\n" + "\n".join(f"Attachment: {a}" for a in msg.attachments)
        if msg.direction == "note":
            body = "Internal note\n" + body
        return body

    def _layout(self, option: QStyleOptionViewItem, msg: ThreadMessage, width: int) -> QRect:
        base, _small = self._fonts(option)
        fm = QFontMetrics(base)
        maxw = self._max_text_width(width, msg)
        return fm.boundingRect(
            QRect(0, 0, maxw, 100000),
            int(Qt.TextFlag.TextWordWrap) | int(Qt.AlignmentFlag.AlignLeft),
            self._body(msg),
        )

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:  # noqa: N802
        msg: ThreadMessage | None = index.data(MessageRole)
        if msg is None:
            return QSize(0, 0)
        view = self.parent()
        width = view.viewport().width() if isinstance(view, QListView) else 600
        text = self._layout(option, msg, width)
        _base, small = self._fonts(option)
        meta_h = QFontMetrics(small).height()
        return QSize(width, text.height() + 2 * PAD_Y + META_GAP + meta_h + GAP)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        msg: ThreadMessage | None = index.data(MessageRole)
        if msg is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = QRect(option.rect)
        base, small = self._fonts(option)
        text = self._layout(option, msg, r.width())
        bw = text.width() + 2 * PAD_X
        bh = text.height() + 2 * PAD_Y
        top = r.top() + GAP // 2
        if msg.direction == "in":
            bubble = QRect(r.left() + SIDE, top, bw, bh)
            fill, border = palette.BUBBLE_IN, palette.BUBBLE_IN_BORDER
        elif msg.direction == "note":
            bubble = QRect(r.left() + SIDE, top, r.width() - 2 * SIDE, bh)
            fill, border = palette.BUBBLE_NOTE, palette.BUBBLE_NOTE_BORDER
        else:
            bubble = QRect(r.right() - SIDE - bw, top, bw, bh)
            fill, border = palette.BUBBLE_OUT, palette.BUBBLE_OUT_BORDER
        failed = msg.status == "failed"
        if failed:
            border = palette.FAILED
        painter.setBrush(fill)
        painter.setPen(border)
        painter.drawRoundedRect(bubble.adjusted(0, 0, -1, -1), 10, 10)

        painter.setFont(base)
        painter.setPen(palette.TEXT)
        inner = bubble.adjusted(PAD_X, PAD_Y, -PAD_X, -PAD_Y)
        if msg.direction == "note":
            # First line is the "Internal note" label: draw it in the note's accent.
            fm = QFontMetrics(base)
            label_font = QFont(small)
            label_font.setWeight(QFont.Weight.DemiBold)
            painter.setFont(label_font)
            painter.setPen(palette.TEXT_SECONDARY)
            painter.drawText(inner, int(Qt.AlignmentFlag.AlignLeft), "INTERNAL NOTE")
            painter.setFont(base)
            painter.setPen(palette.TEXT)
            inner = inner.adjusted(0, fm.height(), 0, 0)
            body = self._body(msg).split("\n", 1)[1]
        else:
            body = self._body(msg)
        painter.drawText(
            inner, int(Qt.TextFlag.TextWordWrap) | int(Qt.AlignmentFlag.AlignLeft), body
        )

        # Meta line: who, when, and for our own messages whether the router has it.
        mark = status_text(msg)
        when = clock(msg.created_at)
        who = msg.author or ("Customer" if msg.direction == "in" else "You")
        meta = " · ".join(p for p in (who, when) if p)
        painter.setFont(small)
        fm_small = QFontMetrics(small)
        meta_rect = QRect(
            r.left() + SIDE, bubble.bottom() + META_GAP, r.width() - 2 * SIDE, fm_small.height()
        )
        if msg.direction == "out":
            full = f"{meta} · {mark}" if mark else meta
            painter.setPen(palette.FAILED if failed else palette.TEXT_FAINT)
            painter.drawText(
                meta_rect,
                int(Qt.AlignmentFlag.AlignRight),
                fm_small.elidedText(full, Qt.TextElideMode.ElideLeft, meta_rect.width()),
            )
        else:
            full = f"{meta} · {mark}" if (mark and msg.direction == "note" and failed) else meta
            painter.setPen(palette.FAILED if failed else palette.TEXT_FAINT)
            painter.drawText(meta_rect, int(Qt.AlignmentFlag.AlignLeft), full)
        painter.restore()


class ThreadView(QListView):
    """The list view of a thread; keeps to the bottom when the agent is reading the newest.

    Signals:
        retry_requested(message_id): send a 'not sent' message again.
        edit_requested(body): put a message's text back in the composer.
    """

    retry_requested = Signal(str)
    edit_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("thread")
        self.setAccessibleName("Messages")
        self.thread_model = ThreadModel(self)
        self.setModel(self.thread_model)
        self.setItemDelegate(BubbleDelegate(self))
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setFrameShape(QListView.Shape.NoFrame)
        self.setWordWrap(True)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)

    def show_messages(self, conversation_id: str | None, msgs: list[ThreadMessage]) -> None:
        bar = self.verticalScrollBar()
        switching = conversation_id != self.thread_model.conversation_id
        at_bottom = bar.value() >= bar.maximum() - 4
        self.thread_model.set_messages(conversation_id, msgs)
        if switching or at_bottom:
            self.scrollToBottom()
            # Row heights are laid out lazily; scroll again once they are known.
            QTimer.singleShot(0, self.scrollToBottom)

    def _menu(self, pos: QPoint) -> None:
        idx = self.indexAt(pos)
        msg: ThreadMessage | None = idx.data(MessageRole) if idx.isValid() else None
        if msg is None:
            return
        menu = self.menu_for(msg)
        menu.exec(self.viewport().mapToGlobal(pos))

    def menu_for(self, msg: ThreadMessage) -> QMenu:
        """The context menu of one message (a failed one can be sent again or edited)."""
        menu = QMenu(self)
        if msg.status == "failed":
            retry = QAction("Send again", menu)
            retry.triggered.connect(lambda: self.retry_requested.emit(msg.id))
            menu.addAction(retry)
            edit = QAction("Edit in the composer", menu)
            edit.triggered.connect(lambda: self.edit_requested.emit(msg.body))
            menu.addAction(edit)
        copy = QAction("Copy text", menu)
        copy.triggered.connect(lambda: QGuiApplication.clipboard().setText(msg.body))
        menu.addAction(copy)
        return menu
