"""`Recorder`: collects a SyncEngine's notifications for tests (called on its sync thread)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sync.changes import Change, ConnectionStatus


class Recorder:
    """Keeps every notification; `on` (optional) is called with each one as well."""

    def __init__(self, on: Callable[[Change], None] | None = None) -> None:
        self._lock = threading.Lock()
        self.changes: list[Change] = []
        self._on = on

    def __call__(self, change: Change) -> None:
        with self._lock:
            self.changes.append(change)
        if self._on is not None:
            self._on(change)

    def of(self, kind: type[Any]) -> list[Any]:
        with self._lock:
            return [c for c in self.changes if isinstance(c, kind)]

    def status(self) -> ConnectionStatus | None:
        statuses = self.of(ConnectionStatus)
        return statuses[-1] if statuses else None

    def state(self) -> str | None:
        status = self.status()
        return status.state if status else None
