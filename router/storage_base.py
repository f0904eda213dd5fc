"""The shared base of the storage parts: one connection and two query helpers.

`Storage` is assembled from parts (agents, inbox, log), each in its own module so none grows
past a readable size; they all share this connection and therefore the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

Row = dict[str, Any]


class SqlBase:
    """A connection (autocommit mode; transactions are explicit) and row helpers."""

    conn: sqlite3.Connection

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row = self.conn.execute(sql, params).fetchone()
        return dict(row) if row is not None else None

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [dict(r) for r in self.conn.execute(sql, params)]
