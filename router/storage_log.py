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

    _seqs: dict[str, int] | None = None
    """Each stream's head (last seq) as committed or written in the open transaction, kept in
    memory so an event costs no read. `Storage` drops it whenever a transaction does not
    commit, so it is read again from what the disk holds."""

    # ------------------------------------------------------------------ events

    def append_event(self, agent_id: str, event: Mapping[str, Any], now: float) -> int:
        """Append to the agent's stream and return the new seq (one more than the last)."""
        return self.append_event_text(agent_id, encode_event(event), now)

    def append_event_text(self, agent_id: str, text: str, now: float) -> int:
        """`append_event` with the event already JSON (one encoding for a whole audience)."""
        return self.append_event_texts([(agent_id, text)], now)[0][1]

    def append_event_texts(
        self, rows: list[tuple[str, str]], now: float
    ) -> list[tuple[str, int, str]]:
        """Append many (agent id, event JSON) in order with one batched insert; returns
        (agent id, seq, JSON) for each, for the sessions to send as it is stored. Call inside
        a transaction.

        A stream's head is its newest event row (pruning always keeps it), so appending
        writes no `agents` row: updating `last_seq` on every event rewrote a page of the
        agents table per audience member and made each commit several times larger.
        `agents.last_seq` is brought up to date when the log is pruned."""
        out: list[tuple[str, int, str]] = []
        heads = self._seq_cache()
        for agent_id, text in rows:
            seq = self.last_seq(agent_id) + 1
            heads[agent_id] = seq
            out.append((agent_id, seq, text))
        self.conn.executemany(
            "INSERT INTO events (agent_id, seq, event, created_at) VALUES (?, ?, ?, ?)",
            [(agent_id, seq, text, now) for agent_id, seq, text in out],
        )
        return out

    def _seq_cache(self) -> dict[str, int]:
        if self._seqs is None:
            self._seqs = {}
        return self._seqs

    def forget_seqs(self) -> None:
        """Read the streams' heads from the database again (after a rollback)."""
        self._seqs = None

    def last_seq(self, agent_id: str) -> int:
        """The stream's head: its newest event, or `agents.last_seq` if that is later (a
        database from before heads were derived from the events)."""
        seqs = self._seq_cache()
        seq = seqs.get(agent_id)
        if seq is None:
            row = self.conn.execute(
                "SELECT MAX(COALESCE((SELECT last_seq FROM agents WHERE id = ?), 0), "
                "COALESCE((SELECT MAX(seq) FROM events WHERE agent_id = ?), 0))",
                (agent_id, agent_id),
            ).fetchone()
            seq = int(row[0])
            seqs[agent_id] = seq
        return seq

    def first_retained_seq(self, agent_id: str) -> int | None:
        row = self._one("SELECT MIN(seq) AS s FROM events WHERE agent_id = ?", (agent_id,))
        return None if row is None or row["s"] is None else int(row["s"])

    def events_after(self, agent_id: str, since: int, limit: int = 500) -> list[tuple[int, Row]]:
        return [
            (int(r["seq"]), json.loads(r["event"]))
            for r in self.conn.execute(
                "SELECT seq, event FROM events WHERE agent_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (agent_id, since, limit),
            )
        ]

    def event_texts_after(
        self, agent_id: str, since: int, limit: int = 500
    ) -> list[tuple[int, str]]:
        """`events_after` as stored JSON text, for sending without decoding it again."""
        return [
            (int(r[0]), str(r[1]))
            for r in self.conn.execute(
                "SELECT seq, event FROM events WHERE agent_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (agent_id, since, limit),
            )
        ]

    def prune_events(self, agent_id: str, keep: int) -> int:
        """Delete all but the newest `keep` events of the stream (never the newest one: it is
        the stream's head) and record the head in `agents.last_seq`."""
        head = self.last_seq(agent_id)
        self.conn.execute(
            "UPDATE agents SET last_seq = ? WHERE id = ? AND last_seq < ?", (head, agent_id, head)
        )
        return self.conn.execute(
            "DELETE FROM events WHERE agent_id = ? AND seq <= ?", (agent_id, head - max(1, keep))
        ).rowcount

    # ------------------------------------------------------------------ acks

    def stored_ack(self, agent_id: str, command_id: str) -> Row | None:
        row = self._one(
            "SELECT ack FROM acks WHERE agent_id = ? AND command_id = ?", (agent_id, command_id)
        )
        return None if row is None else json.loads(row["ack"])

    def store_ack(
        self, agent_id: str, command_id: str, name: str, ack: Mapping[str, Any], now: float
    ) -> None:
        self.conn.execute(
            "INSERT INTO acks (agent_id, command_id, name, ack, created_at) VALUES (?, ?, ?, ?, ?)",
            (agent_id, command_id, name, json.dumps(ack), now),
        )
