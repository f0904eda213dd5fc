"""The inbox column: filters (channel, mine / queue), the lazy list, and its empty state.

Why one widget: the filters, the list and the empty-state text depend on each other (the
empty text says whether the inbox is empty or only the filter is), and the main window only
needs "a conversation was chosen".
"""

from __future__ import annotations

import logging
import threading

from client.inbox_delegate import InboxDelegate
from client.inbox_model import IdRole, InboxModel
from client.ops import Op
from client.qt import (
    QAbstractItemView,
    QButtonGroup,
    QHBoxLayout,
    QItemSelectionModel,
    QLabel,
    QLineEdit,
    QListView,
    QModelIndex,
    QResizeEvent,
    QSize,
    QStackedWidget,
    Qt,
    QTimer,
    QToolButton,
    QVBoxLayout,
    QWidget,
    Signal,
)
from client.resources import CHANNEL_NAMES, channel_icon, icon
from client.store_reader import InboxFilter, InboxRow, StoreReader

log = logging.getLogger(__name__)

EMPTY_ALL = "No conversations yet — you'll see them here when customers write."
EMPTY_FILTERED = "Nothing matches these filters."
EMPTY_MINE = "Nothing assigned to you right now. Accept an offer or pick one from the queue."
EMPTY_QUEUE = "The queue is empty. Nice work."
EMPTY_SEARCH = "No conversation mentions that. Check the spelling or try fewer words."
SEARCH_DEBOUNCE_MS = 200


def _chip(text: str, parent: QWidget, tooltip: str = "") -> QToolButton:
    b = QToolButton(parent)
    b.setText(text)
    b.setCheckable(True)
    b.setAutoRaise(True)
    b.setObjectName("chip")
    b.setToolTip(tooltip or text)
    b.setCursor(Qt.CursorShape.PointingHandCursor)
    return b


class InboxPanel(QWidget):
    """Filters on top, the conversation list below; emits `opened(conversation_id)`."""

    opened = Signal(str)

    def __init__(self, model: InboxModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("inboxPanel")
        self.model = model
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)

        head = QWidget(self)
        head.setObjectName("inboxHead")
        hl = QVBoxLayout(head)
        hl.setContentsMargins(12, 10, 12, 8)
        hl.setSpacing(6)
        title_row = QHBoxLayout()
        title = QLabel("Inbox", head)
        title.setObjectName("panelTitle")
        title_row.addWidget(title)
        title_row.addStretch(1)
        self.scope_group = QButtonGroup(self)
        self.scope_buttons: dict[str, QToolButton] = {}
        for scope, text, tip in (
            ("all", "All", "Every conversation you can see"),
            ("mine", "Mine", "Conversations assigned to you"),
            ("queue", "Queue", "Waiting in your queues, not yet assigned"),
        ):
            b = _chip(text, head, tip)
            b.setObjectName("segment")
            self.scope_group.addButton(b)
            self.scope_buttons[scope] = b
            title_row.addWidget(b)
        self.scope_buttons["all"].setChecked(True)
        hl.addLayout(title_row)

        chan_row = QHBoxLayout()
        chan_row.setSpacing(4)
        self.channel_group = QButtonGroup(self)
        self.channel_buttons: dict[str | None, QToolButton] = {}
        all_b = _chip("All", head, "Every channel")
        self.channel_group.addButton(all_b)
        self.channel_buttons[None] = all_b
        chan_row.addWidget(all_b)
        for ch, name in CHANNEL_NAMES.items():
            b = _chip(name, head, f"Only {name.lower() if ch != 'sms' else 'SMS'} conversations")
            b.setIcon(channel_icon(ch))
            b.setIconSize(QSize(16, 16))
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            self.channel_group.addButton(b)
            self.channel_buttons[ch] = b
            chan_row.addWidget(b)
        chan_row.addStretch(1)
        all_b.setChecked(True)
        hl.addLayout(chan_row)

        # Full-text search runs on a worker with its own read connection (a common word over
        # a million messages can take longer than a frame); a newer query makes older
        # answers stale, which `_search_gen` detects.
        self.search = QLineEdit(head)
        self.search.setObjectName("inboxSearch")
        self.search.setPlaceholderText("Search messages and customers")
        self.search.setAccessibleName("Search conversations")
        self.search.setClearButtonEnabled(True)
        hl.addWidget(self.search)
        self._searcher: StoreReader | None = None
        self._search_gen = 0
        self._search_lock = threading.Lock()  # one connection: one search at a time
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DEBOUNCE_MS)
        self._search_timer.timeout.connect(self._apply_filter)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.search.returnPressed.connect(self._apply_filter)
        model.search_stale.connect(self._search_timer.start)
        layout.addWidget(head)

        self.stack = QStackedWidget(self)
        self.view = QListView(self.stack)
        self.view.setObjectName("inboxList")
        self.view.setAccessibleName("Conversations")
        self.view.setModel(model)
        self.view.setItemDelegate(InboxDelegate(self.view))
        self.view.setUniformItemSizes(True)
        self.view.setMouseTracking(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.view.setFrameShape(QListView.Shape.NoFrame)
        self.stack.addWidget(self.view)

        self.empty = QWidget(self.stack)
        self.empty.setObjectName("emptyState")
        el = QVBoxLayout(self.empty)
        el.addStretch(2)
        art = QLabel(self.empty)
        art.setPixmap(icon("inbox-empty").pixmap(64, 64))
        art.setAlignment(Qt.AlignmentFlag.AlignCenter)
        el.addWidget(art)
        self.empty_label = QLabel(EMPTY_ALL, self.empty)
        self.empty_label.setObjectName("emptyText")
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        el.addWidget(self.empty_label)
        el.addStretch(3)
        self.stack.addWidget(self.empty)
        layout.addWidget(self.stack, 1)

        self.scope_group.buttonClicked.connect(lambda _b: self._apply_filter())
        self.channel_group.buttonClicked.connect(lambda _b: self._apply_filter())
        self.view.selectionModel().currentChanged.connect(self._on_current)
        model.rowsInserted.connect(self._update_empty)
        model.rowsRemoved.connect(self._update_empty)
        model.modelReset.connect(self._update_empty)
        model.layoutChanged.connect(self._update_empty)

        # Waiting times are live: repaint them once a second (visible rows only get painted).
        self._tick = QTimer(self)
        self._tick.setInterval(1000)
        self._tick.timeout.connect(model.tick)
        self._tick.start()
        self._update_empty()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        """Narrow column: channel chips show icons only (names stay in the tooltips)."""
        super().resizeEvent(event)
        style = (
            Qt.ToolButtonStyle.ToolButtonIconOnly
            if self.width() < 400
            else Qt.ToolButtonStyle.ToolButtonTextBesideIcon
        )
        for ch, b in self.channel_buttons.items():
            if ch is not None and b.toolButtonStyle() != style:
                b.setToolButtonStyle(style)

    def current_filter(self) -> InboxFilter:
        scope = next((s for s, b in self.scope_buttons.items() if b.isChecked()), "all")
        channel = next((c for c, b in self.channel_buttons.items() if b.isChecked()), None)
        return InboxFilter(channel=channel, scope=scope, text=self.search.text().strip())

    def _apply_filter(self) -> None:
        self._search_timer.stop()
        flt = self.current_filter()
        self._search_gen += 1
        if flt.text:
            self._run_search(flt, self._search_gen)
            return
        current = self.current_id()
        self.model.set_filter(flt)
        if current:
            self.select(current, emit=False)
        self._update_empty()

    def reset_search(self) -> None:
        """Forget the search connection (the cache file was replaced)."""
        with self._search_lock:
            if self._searcher is not None:
                self._searcher.close()
                self._searcher = None

    def _run_search(self, flt: InboxFilter, gen: int) -> None:
        if self._searcher is None:
            self._searcher = StoreReader(self.model.reader_path)
        searcher = self._searcher
        agent = self.model.agent_id

        def show(rows: list[InboxRow]) -> None:
            if gen != self._search_gen:
                return  # the agent typed on: a newer search is coming
            current = self.current_id()
            self.model.show_results(flt, rows)
            if current:
                self.select(current, emit=False)
            self._update_empty()

        def failed(exc: Exception) -> None:
            log.error("search failed: %s", exc)
            self.empty_label.setText(f"Search failed: {exc}")
            self.stack.setCurrentWidget(self.empty)

        def work() -> list[InboxRow]:
            with self._search_lock:
                return searcher.search(flt, agent_id=agent)

        Op(work).success(show).failure(failed).run()

    def current_id(self) -> str | None:
        idx = self.view.currentIndex()
        return idx.data(IdRole) if idx.isValid() else None

    def select(self, conversation_id: str, emit: bool = True) -> bool:
        """Make a conversation current if it is loaded; return whether it was."""
        row = self.model.row_for_id(conversation_id)
        if row < 0:
            return False
        idx = self.model.index(row)
        sm = self.view.selectionModel()
        if not emit:
            sm.blockSignals(True)
        sm.setCurrentIndex(idx, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        if not emit:
            sm.blockSignals(False)
            self.view.viewport().update()
        self.view.scrollTo(idx)
        return True

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.opened.emit(current.data(IdRole))

    def _update_empty(self) -> None:
        if self.model.rowCount() > 0:
            self.stack.setCurrentWidget(self.view)
            return
        flt = self.current_filter()
        if flt.text:
            text = EMPTY_SEARCH
        elif flt.channel is None and flt.scope == "mine":
            text = EMPTY_MINE
        elif flt.channel is None and flt.scope == "queue":
            text = EMPTY_QUEUE
        elif flt.channel is None:
            text = EMPTY_ALL
        else:
            text = EMPTY_FILTERED
        self.empty_label.setText(text)
        self.stack.setCurrentWidget(self.empty)
