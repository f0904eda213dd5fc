"""Storage part: the per-agent event streams and the stored command acks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from router.storage_base import Row, SqlBase


def encode_event(event: Mapping[str, Any]) -> str:
    """The stored (and sent) JSON of an event: compact, no NaN (the protocol refuses it)."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class LogRows(SqlBase):
    """Event streams (append-only, per-agent seq) and acks (command-id dedup)."""

    # ------------------------------------------------------------------ events

    def append_event(self, agent_id: str, event: Mapping[str, Any], now: float) -> int:
        """Append to the agent's stream and return the new seq (one more than the last)."""
        return self.append_event_text(agent_id, encode_event(event), now)

    def append_event_text(self, agent_id: str, text: str, now: float) -> int:
        """`append_event` with the event already JSON (one encoding for a whole audience)."""
        row = self.conn.execute(
            "UPDATE agents SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq",
            (agent_id,)).fetchone()
        assert row is not None, agent_id
        seq = int(row[0])
        self.conn.execute(
            "INSERT INTO events (agent_id, seq, event, created_at) VALUES (?, ?, ?, ?)",
            (agent_id, seq, text, now),
        )
        return seq

    def last_seq(self, agent_id: str) -> int:
        row = self._one("SELECT last_seq FROM agents WHERE id = ?", (agent_id,))
        return 0 if row is None else int(row["last_seq"])

    def first_retained_seq(self, agent_id: str) -> int | None:
        row = self._one("SELECT MIN(seq) AS s FROM events WHERE agent_id = ?", (agent_id,))
        return None if row is None or row["s"] is None else int(row["s"])

    def events_after(self, agent_id: str, since: int, limit: int = 500) -> list[tuple[int, Row]]:
        return [
            (int(r["seq"]), json.loads(r["event"]))
            for r in self.conn.execute(
                "SELECT seq, event FROM events WHERE agent_id = ? AND seq > ? ORDER BY seq "
                "LIMIT ?", (agent_id, since, limit),
            )
        ]

    def event_texts_after(self, agent_id: str, since: int, limit: int = 500
                          ) -> list[tuple[int, str]]:
        """`events_after` as stored JSON text, for sending without decoding it again."""
        return [(int(r[0]), str(r[1])) for r in self.conn.execute(
            "SELECT seq, event FROM events WHERE agent_id = ? AND seq > ? ORDER BY seq "
            "LIMIT ?", (agent_id, since, limit))]

    def prune_events(self, agent_id: str, keep: int) -> int:
        return self.conn.execute(
            "DELETE FROM events WHERE agent_id = ? AND seq <= "
            "(SELECT last_seq FROM agents WHERE id = ?) - ?", (agent_id, agent_id, keep),
        ).rowcount

    # ------------------------------------------------------------------ acks

    def stored_ack(self, agent_id: str, command_id: str) -> Row | None:
        row = self._one("SELECT ack FROM acks WHERE agent_id = ? AND command_id = ?",
                        (agent_id, command_id))
        return None if row is None else json.loads(row["ack"])

    def store_ack(
        self, agent_id: str, command_id: str, name: str, ack: Mapping[str, Any], now: float
    ) -> None:
        self.conn.execute(
            "INSERT INTO acks (agent_id, command_id, name, ack, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (agent_id, command_id, name, json.dumps(ack), now),
        )
