"""The router's storage: every read and write of the router database goes through `Storage`.

Keeping SQL behind this one class (assembled from the parts in `storage_agents`,
`storage_inbox`, `storage_log` and `storage_tasks`) is what lets a later PostgreSQL
implementation (several router nodes, row locks, LISTEN/NOTIFY) replace SQLite without touching
routing or sessions. Callers group writes with `with storage.transaction():` (one `BEGIN
IMMEDIATE` ... `COMMIT`), so an action, its events and its stored ack land together or not at
all.

The connection is used from the router's single asyncio thread only; statements are short.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from router.schema import migrate
from router.storage_agents import CALL_OVER_STATES, AgentRows
from router.storage_base import Row
from router.storage_inbox import LIVE_STATUSES, InboxRows
from router.storage_log import LogRows
from router.storage_tasks import TaskRows

log = logging.getLogger(__name__)

__all__ = ["CALL_OVER_STATES", "LIVE_STATUSES", "Row", "Storage", "open_connection"]


def open_connection(path: str | Path) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN ourselves), WAL, foreign keys on."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    if str(path) != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


class Storage(AgentRows, InboxRows, LogRows, TaskRows):
    """The router's data, with domain-level methods (no SQL outside this class)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.conn = open_connection(path)
        migrate(self.conn)
        self._depth = 0

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; nested uses join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self.forget_seqs()
            self.forget_agents()
            self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (a full disk) leaves the transaction open: roll it back so the
            # next one can begin, and forget the stream heads and agent rows it had changed.
            self.forget_seqs()
            self.forget_agents()
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ meta

    def get_meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
