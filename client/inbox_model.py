"""The inbox as a lazy Qt list model over the cache.

Why lazy: an agent's cache can hold tens of thousands of conversations; loading every row
would cost seconds and memory for rows nobody scrolls to. The model loads one page (200 rows,
newest activity first) and asks for the next only when the view scrolls near the end
(`canFetchMore`/`fetchMore`). A live update names the conversations it touched: the model
looks up just those by id and moves, updates, inserts or drops their rows (`refresh(ids)`),
so its cost does not grow with how far the agent scrolled; only "everything changed" re-reads
the rows already loaded. Either way the selection stays on the same conversation (persistent
indexes follow their row) and the view is never reset, so the agent's scroll position and
selection survive a burst of events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from client.qt import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from client.store_reader import PAGE_SIZE, InboxFilter, InboxRow, StoreReader

log = logging.getLogger(__name__)

RowRole = Qt.ItemDataRole.UserRole + 1
IdRole = Qt.ItemDataRole.UserRole + 2
WaitRole = Qt.ItemDataRole.UserRole + 3

AnyIndex = QModelIndex | QPersistentModelIndex

MAX_ROW_UPDATES = 64
"""Above this many touched conversations (a replay, a snapshot page) one re-read of the
loaded rows is cheaper than finding and moving each row (each lookup scans the list)."""


def sort_key(row: InboxRow) -> tuple[bool, float, str]:
    """The inbox order as a Python key, largest first: `ORDER BY last_message_at DESC, id
    DESC`, where SQLite puts rows without a time after every timed row."""
    return (row.last_message_at is not None, row.last_message_at or 0.0, row.id)


def waiting_seconds(row: InboxRow, now: float) -> float | None:
    """How long the customer has been waiting for us, or None when the last word was ours.

    The customer waits from their last message (`last_inbound_at`) until anything newer from
    our side moves `last_message_at` past it; closed conversations wait for nobody.
    """
    if row.last_inbound_at is None or row.status == "closed":
        return None
    if row.last_message_at is not None and row.last_message_at > row.last_inbound_at + 0.001:
        return None
    return max(0.0, now - row.last_inbound_at)


class InboxModel(QAbstractListModel):
    """Conversations, newest activity first, loaded a page at a time.

    `search_stale` is emitted when the cache changed while search results are shown.

    Args:
        reader: the read-only cache reader.
        page_size: rows per `fetchMore`.
    """

    search_stale = Signal()

    def __init__(
        self, reader: StoreReader, page_size: int = PAGE_SIZE, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._reader = reader
        self._page = page_size
        self._rows: list[InboxRow] = []
        self._filter = InboxFilter()
        self._exhausted = False
        self._agent_id: str | None = None
        self.queries = 0  # how many page queries ran: tests check the model stays lazy

    # -- Qt model API ----------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._rows)

    def canFetchMore(self, parent: AnyIndex = QModelIndex()) -> bool:  # noqa: B008, N802
        return not parent.isValid() and not self._exhausted

    def fetchMore(self, parent: AnyIndex = QModelIndex()) -> None:  # noqa: B008, N802
        if parent.isValid() or self._exhausted:
            return
        page = self._query(len(self._rows), self._page, self._rows[-1] if self._rows else None)
        if len(page) < self._page:
            self._exhausted = True
        if not page:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(page) - 1)
        self._rows.extend(page)
        self.endInsertRows()

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        if role == RowRole:
            return row
        if role == IdRole:
            return row.id
        if role == WaitRole:
            return waiting_seconds(row, time.time())
        if role == Qt.ItemDataRole.DisplayRole:
            return row.customer_name
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.subject or row.preview
        return None

    # -- ours --------------------------------------------------------------------------------

    @property
    def filter(self) -> InboxFilter:
        return self._filter

    @property
    def reader_path(self) -> Path:
        """The cache file, for readers on other threads (each needs its own connection)."""
        return self._reader.path

    @property
    def agent_id(self) -> str | None:
        return self._agent_id

    def set_agent_id(self, agent_id: str | None) -> None:
        """Whose conversations "Mine" shows; re-reads the list when it changes."""
        if agent_id != self._agent_id:
            self._agent_id = agent_id
            if self._filter.scope == "mine" and self._rows:
                self.refresh()

    def set_filter(self, flt: InboxFilter) -> None:
        """Show another slice of the inbox: a reset is right here, it is a different list."""
        if flt == self._filter:
            return
        self._filter = flt
        self.beginResetModel()
        self._rows = []
        self._exhausted = False
        self.endResetModel()
        self.fetchMore()

    def show_results(self, flt: InboxFilter, rows: list[InboxRow]) -> None:
        """Show search results found off the UI thread (the whole list: nothing to fetch)."""
        self._filter = flt
        self.beginResetModel()
        self._rows = list(rows)
        self._exhausted = True
        self.endResetModel()

    def row_for_id(self, conversation_id: str) -> int:
        for i, row in enumerate(self._rows):
            if row.id == conversation_id:
                return i
        return -1

    def row_at(self, i: int) -> InboxRow:
        return self._rows[i]

    def tick(self) -> None:
        """Waiting times moved on by a second: repaint them (the view paints only visible rows)."""
        if self._rows:
            self.dataChanged.emit(self.index(0), self.index(len(self._rows) - 1), [WaitRole])

    def refresh(self, conversation_ids: Iterable[str] | None = None) -> None:
        """Bring the loaded rows up to date with the cache.

        With `conversation_ids` (what a live update touched) only those rows are looked up
        (`_update_rows`); none given, "*" among them or more than `MAX_ROW_UPDATES` re-reads
        every loaded row (at least one page) and moves rows in place.

        Search results are not re-read here (a search may take longer than a frame): the
        model says `search_stale` and the panel runs the search again off the UI thread.
        """
        if self._filter.text:
            self.search_stale.emit()
            return
        ids = set(conversation_ids or ())
        if ids and "*" not in ids and len(ids) <= MAX_ROW_UPDATES:
            self._update_rows(ids)
            return
        want = max(len(self._rows), self._page)
        new = self._query(0, want)
        self._exhausted = len(new) < want
        old = self._rows
        parent = QModelIndex()
        if len(new) > len(old):
            self.beginInsertRows(parent, len(old), len(new) - 1)
            self._rows = old + new[len(old) :]
            self.endInsertRows()
        elif len(new) < len(old):
            self.beginRemoveRows(parent, len(new), len(old) - 1)
            self._rows = old[: len(new)]
            self.endRemoveRows()
        # Same length now: a layout change moves persistent indexes (selection, current row)
        # with their conversation instead of resetting the view.
        self.layoutAboutToBeChanged.emit()
        before = self._rows
        position = {row.id: i for i, row in enumerate(new)}
        olds = self.persistentIndexList()
        news = []
        for idx in olds:
            i = idx.row()
            target = position.get(before[i].id, -1) if 0 <= i < len(before) else -1
            news.append(self.index(target) if target >= 0 else QModelIndex())
        self._rows = new
        self.changePersistentIndexList(olds, news)
        self.layoutChanged.emit()

    def _update_rows(self, ids: set[str]) -> None:
        """Move, update, insert or drop the rows of `ids` after one lookup by id.

        The loaded rows stay a prefix of the full list, which keyset paging (`fetchMore`
        continues after the last loaded row) relies on: a row is inserted only where it sorts
        before the last loaded row (or anywhere once the list is exhausted); one that now
        sorts past it is dropped and arrives with a later page. Rows move with
        `beginMoveRows`, so selection and current index follow their conversation.
        """
        self.queries += 1
        fresh = {row.id: row for row in self._reader.inbox_rows(self._filter, ids, self._agent_id)}
        parent = QModelIndex()
        present = [i for i, row in enumerate(self._rows) if row.id in ids]
        # Rows no longer in this list (closed while "Queue" is shown, deleted...) go first,
        # bottom-up so the earlier positions stay valid.
        for i in reversed(present):
            if self._rows[i].id not in fresh:
                self.beginRemoveRows(parent, i, i)
                del self._rows[i]
                self.endRemoveRows()
        for cid, row in fresh.items():
            old = self.row_for_id(cid)
            rest = self._rows if old < 0 else self._rows[:old] + self._rows[old + 1 :]
            dest = self._position(rest, row)
            if dest == len(rest) and not self._exhausted:
                # Sorts past the last loaded row: a later page brings it.
                if old >= 0:
                    self.beginRemoveRows(parent, old, old)
                    del self._rows[old]
                    self.endRemoveRows()
                continue
            if old < 0:
                self.beginInsertRows(parent, dest, dest)
                self._rows.insert(dest, row)
                self.endInsertRows()
            elif dest == old:
                self._rows[old] = row
                self.dataChanged.emit(self.index(old), self.index(old))
            else:
                # Qt wants the destination in the list as it is before the move.
                self.beginMoveRows(parent, old, old, parent, dest if dest < old else dest + 1)
                self._rows = [*rest[:dest], row, *rest[dest:]]
                self.endMoveRows()

    @staticmethod
    def _position(rows: list[InboxRow], row: InboxRow) -> int:
        """Where `row` goes in `rows` (sorted by `sort_key`, largest first): a binary search."""
        key = sort_key(row)
        lo, hi = 0, len(rows)
        while lo < hi:
            mid = (lo + hi) // 2
            if sort_key(rows[mid]) > key:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _query(self, offset: int, limit: int, after: InboxRow | None = None) -> list[InboxRow]:
        self.queries += 1
        return self._reader.inbox_page(self._filter, offset, limit, self._agent_id, after)
