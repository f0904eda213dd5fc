"""Storage part: the router-wide fact log (what metrics are computed from), scheduled
callbacks, and the timed task queries (wrap-up, overflow)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from router.storage_base import Row, SqlBase

FACT_COLUMNS = ("task_id", "agent_id", "queue", "channel", "customer_id")


class TaskRows(SqlBase):
    """Facts (append-only), callbacks, timed task lookups."""

    # ------------------------------------------------------------------ facts

    def add_fact(
        self, at: float, kind: str, data: Mapping[str, Any] | None = None, **columns: str | None
    ) -> int:
        """Append one fact; `columns` are the indexed dimensions (task_id, agent_id, queue,
        channel, customer_id), `data` the rest. Returns its id."""
        values = [columns.get(c) for c in FACT_COLUMNS]
        cur = self.conn.execute(
            "INSERT INTO facts (at, kind, task_id, agent_id, queue, channel, customer_id, "
            "data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (at, kind, *values, json.dumps(dict(data or {}), ensure_ascii=False)),
        )
        return int(cur.lastrowid or 0)

    def facts(
        self,
        start: float | None = None,
        end: float | None = None,
        after_id: int = 0,
        limit: int | None = None,
    ) -> Iterator[Row]:
        """Facts in log order with `data` decoded, optionally within [start, end), at most
        `limit` of them (None: all)."""
        sql = "SELECT * FROM facts WHERE id > ?"
        params: list[Any] = [after_id]
        if start is not None:
            sql += " AND at >= ?"
            params.append(start)
        if end is not None:
            sql += " AND at < ?"
            params.append(end)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        for row in self.conn.execute(sql, params):
            out = dict(row)
            out["data"] = json.loads(out["data"])
            yield out

    # ------------------------------------------------------------------ callbacks

    def add_callback(
        self,
        callback_id: str,
        conversation_id: str,
        agent_id: str,
        queue: str,
        due_at: float,
        note: str | None,
        now: float,
    ) -> None:
        self.conn.execute(
            "INSERT INTO callbacks (id, conversation_id, agent_id, queue, due_at, note, status,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, 'scheduled', ?)",
            (callback_id, conversation_id, agent_id, queue, due_at, note, now),
        )

    def due_callbacks(self, now: float) -> list[Row]:
        return self._all(
            "SELECT * FROM callbacks WHERE status = 'scheduled' AND due_at <= ? "
            "ORDER BY due_at, id",
            (now,),
        )

    def next_callback_due(self) -> float | None:
        row = self._one("SELECT MIN(due_at) AS t FROM callbacks WHERE status = 'scheduled'")
        return None if row is None or row["t"] is None else float(row["t"])

    def callback_queued(self, callback_id: str, task_id: str) -> None:
        self.conn.execute(
            "UPDATE callbacks SET status = 'queued', task_id = ? WHERE id = ?",
            (task_id, callback_id),
        )

    def queue_waiting(self) -> list[Row]:
        """Per queue: tasks waiting (queued or offered) and the oldest one's queue entry."""
        return self._all(
            "SELECT queue, COUNT(*) AS depth, MIN(queue_entered_at) AS oldest "
            "FROM conversations WHERE status IN ('queued', 'offered') GROUP BY queue"
        )

    # ------------------------------------------------------------------ timed tasks

    def overflow_candidates(self) -> list[Row]:
        """Queued conversations with the time they entered their current queue."""
        return self._all(
            "SELECT id, queue, queue_entered_at FROM conversations "
            "WHERE status = 'queued' ORDER BY queue_entered_at, id"
        )
