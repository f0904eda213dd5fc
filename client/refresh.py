"""Batched refreshes: events mark parts of the window dirty, one timer repaints them.

Why: the sync engine can apply hundreds of events a second during a replay; re-querying the
inbox for each one would freeze the window. Marks are cheap; the timer fires at most every
`interval_ms` and calls each dirty part's refresh once (Electrum's `need_update` pattern).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from client.qt import QObject, QTimer

log = logging.getLogger(__name__)


class RefreshScheduler(QObject):
    """Collects dirty marks and runs the registered refreshers at most every `interval_ms`.

    Args:
        interval_ms: the shortest time between two repaints (about one to six frames).
    """

    def __init__(self, interval_ms: int = 60, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._refreshers: dict[str, Callable[[set[str]], None]] = {}
        self._dirty: dict[str, set[str]] = {}
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.flush)

    def register(self, part: str, refresher: Callable[[set[str]], None]) -> None:
        """`refresher(keys)` is called with the keys marked since the last flush."""
        self._refreshers[part] = refresher

    def mark(self, part: str, *keys: str) -> None:
        self._dirty.setdefault(part, set()).update(keys)
        if not self._timer.isActive():
            self._timer.start()

    def flush(self) -> None:
        """Run every dirty part's refresher now (tests call it to skip the wait)."""
        dirty, self._dirty = self._dirty, {}
        for part, keys in dirty.items():
            refresher = self._refreshers.get(part)
            if refresher is None:
                log.warning("no refresher registered for %s", part)
                continue
            refresher(keys)
