"""Storage part: the per-agent event streams and the stored command acks.

An event is stored once, in `event_bodies` (its JSON and its audience, `{agent id: seq}`), in
the transaction of the change it reports. Each agent's stream is an index of (agent id, seq)
-> body id in `event_streams`, which is derived data: it can always be rebuilt from the
bodies' audiences. It is written later, in batches (`flush_stream_index`), because writing it
with each event dirtied one index leaf per audience member per COMMIT (an arrival reaches
~20 queue members): at 2,000 agents and 200 arrivals/s the WAL took ~28,000 frames/s, 45% of
them leaves of that index, and the checkpoints behind it stalled the router's loop. Batched
per agent, a leaf is written once per flush for all the events its agent got meanwhile.

Entries not yet in the index are held in memory (`_unindexed`) and served from there, so a
stream reads the same whatever has been flushed. The meta key `events_indexed` is a body id
below which every body's entries are in the index; after a crash (or a rollback) the entries
of the later bodies that the index lacks are read back from their audiences. Seqs are thus
assigned and made durable with the event itself, exactly as before: resume by seq (the
contract of docs/protocol.md) never sees a gap or a repeat.
"""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from router.storage_base import Row, SqlBase

INDEXED_KEY = "events_indexed"
"""Meta key: every body with an id up to this value has all its entries in `event_streams`."""


def encode_event(event: Mapping[str, Any]) -> str:
    """The stored (and sent) JSON of an event: compact, no NaN (the protocol refuses it)."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


@functools.lru_cache(maxsize=65536)
def stream_part(agent_id: str, parts: int) -> int:
    """Which of `parts` index flushes an agent's entries go in (stable across restarts)."""
    return zlib.crc32(agent_id.encode("utf-8")) % parts


class LogRows(SqlBase):
    """Event streams (append-only, per-agent seq) and acks (command-id dedup)."""

    _seqs: dict[str, int] | None = None
    """Each stream's head (last seq) as committed or written in the open transaction, kept in
    memory so an event costs no read. `Storage` drops it whenever a transaction does not
    commit, so it is read again from what the disk holds."""
    _unindexed: dict[str, list[tuple[int, int]]] | None = None
    """Per agent, the (seq, body id) of stored events not yet in `event_streams`, in seq
    order; all of them are newer than the agent's indexed entries. Dropped with `_seqs`."""
    _body_id: int | None = None
    """The newest body id written (None: read it from the table)."""

    # ------------------------------------------------------------------ events

    def append_event(self, agent_id: str, event: Mapping[str, Any], now: float) -> int:
        """Append to the agent's stream and return the new seq (one more than the last)."""
        return self.append_events([([agent_id], encode_event(event))], now)[0][1]

    def append_events(
        self, events: Sequence[tuple[Sequence[str], str]], now: float
    ) -> list[tuple[str, int, str]]:
        """Store each (audience, event JSON) once, appending it to every audience member's
        stream; returns (agent id, seq, JSON) per member, for the sessions to send as it is
        stored. Call inside a transaction: the new seqs are durable with it.

        A stream's head is its newest entry (pruning always keeps it), so appending writes no
        `agents` row; `agents.last_seq` is brought up to date when the log is pruned."""
        heads = self._seq_cache()
        unindexed = self._unindexed_entries()
        out: list[tuple[str, int, str]] = []
        bodies: list[tuple[str, str, float]] = []
        members: list[list[tuple[str, int]]] = []
        for audience, text in events:
            if not audience:
                continue
            entries = []
            for agent_id in audience:
                seq = self.last_seq(agent_id) + 1
                heads[agent_id] = seq
                entries.append((agent_id, seq))
                out.append((agent_id, seq, text))
            members.append(entries)
            bodies.append((json.dumps(dict(entries), separators=(",", ":")), text, now))
        if not bodies:
            return out
        first = self._next_body_id()
        self.conn.executemany(
            "INSERT INTO event_bodies (id, audience, event, created_at) VALUES (?, ?, ?, ?)",
            [(first + i, *body) for i, body in enumerate(bodies)],
        )
        self._body_id = first + len(bodies) - 1
        for i, entries in enumerate(members):
            for agent_id, seq in entries:
                unindexed.setdefault(agent_id, []).append((seq, first + i))
        return out

    def _next_body_id(self) -> int:
        body_id = self._body_id
        if body_id is None:
            row = self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM event_bodies").fetchone()
            body_id = int(row[0])
        return body_id + 1

    def _seq_cache(self) -> dict[str, int]:
        if self._seqs is None:
            self._seqs = {}
        return self._seqs

    def _indexed_upto(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (INDEXED_KEY,)).fetchone()
        return 0 if row is None else int(row[0])

    def _unindexed_entries(self) -> dict[str, list[tuple[int, int]]]:
        """The entries the index lacks, read back from the bodies after `events_indexed`
        (after a start, a crash or a rollback), then kept in step by appends and flushes."""
        if self._unindexed is None:
            found: dict[str, list[tuple[int, int]]] = {}
            for agent_id, seq, body_id in self.conn.execute(
                "SELECT j.key, j.value, b.id FROM event_bodies b, json_each(b.audience) j "
                "WHERE b.id > ? AND NOT EXISTS (SELECT 1 FROM event_streams s "
                "WHERE s.agent_id = j.key AND s.seq = j.value) ORDER BY b.id",
                (self._indexed_upto(),),
            ):
                found.setdefault(str(agent_id), []).append((int(seq), int(body_id)))
            self._unindexed = found
        return self._unindexed

    def forget_seqs(self) -> None:
        """Read the streams' heads and unindexed entries from the database again (after a
        rollback)."""
        self._seqs = None
        self._unindexed = None
        self._body_id = None

    def last_seq(self, agent_id: str) -> int:
        """The stream's head: its newest entry, or `agents.last_seq` if that is later (the
        head recorded by pruning)."""
        seqs = self._seq_cache()
        seq = seqs.get(agent_id)
        if seq is None:
            pending = self._unindexed_entries().get(agent_id)
            if pending:
                seq = pending[-1][0]
            else:
                row = self.conn.execute(
                    "SELECT MAX(COALESCE((SELECT last_seq FROM agents WHERE id = ?), 0), "
                    "COALESCE((SELECT MAX(seq) FROM event_streams WHERE agent_id = ?), 0))",
                    (agent_id, agent_id),
                ).fetchone()
                seq = int(row[0])
            seqs[agent_id] = seq
        return seq

    def first_retained_seq(self, agent_id: str) -> int | None:
        row = self.conn.execute(
            "SELECT MIN(seq) FROM event_streams WHERE agent_id = ?", (agent_id,)
        ).fetchone()
        if row[0] is not None:
            return int(row[0])
        pending = self._unindexed_entries().get(agent_id)
        return pending[0][0] if pending else None

    def events_after(self, agent_id: str, since: int, limit: int = 500) -> list[tuple[int, Row]]:
        return [
            (seq, json.loads(text)) for seq, text in self.event_texts_after(agent_id, since, limit)
        ]

    def event_texts_after(
        self, agent_id: str, since: int, limit: int = 500
    ) -> list[tuple[int, str]]:
        """The stream's (seq, stored JSON) after `since`, in order, at most `limit`: from the
        index, then from the entries not flushed to it yet (always the newer ones)."""
        out = [
            (int(r[0]), str(r[1]))
            for r in self.conn.execute(
                "SELECT s.seq, b.event FROM event_streams s JOIN event_bodies b "
                "ON b.id = s.event_id WHERE s.agent_id = ? AND s.seq > ? ORDER BY s.seq LIMIT ?",
                (agent_id, since, limit),
            )
        ]
        pending = [
            (seq, body_id)
            for seq, body_id in self._unindexed_entries().get(agent_id, [])
            if seq > since
        ][: limit - len(out)]
        if pending:
            texts = self._body_texts([body_id for _, body_id in pending])
            out += [(seq, texts[body_id]) for seq, body_id in pending]
        return out

    def _body_texts(self, ids: list[int]) -> dict[int, str]:
        texts: dict[int, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            texts.update(
                (int(r[0]), str(r[1]))
                for r in self.conn.execute(
                    f"SELECT id, event FROM event_bodies WHERE id IN ({marks})", chunk
                )
            )
        return texts

    def flush_stream_index(self, part: int = 0, parts: int = 1) -> int:
        """Write the unindexed entries of one slice of the agents (`stream_part`) to
        `event_streams` and move `events_indexed` up; returns how many. Call inside a
        transaction. Each agent's entries are written together, so its index leaf is
        dirtied once for all of them."""
        unindexed = self._unindexed_entries()
        rows: list[tuple[str, int, int]] = []
        for agent_id in sorted(unindexed):
            if parts > 1 and stream_part(agent_id, parts) != part:
                continue
            rows += [(agent_id, seq, body_id) for seq, body_id in unindexed.pop(agent_id)]
        if rows:
            self.conn.executemany(
                "INSERT OR IGNORE INTO event_streams (agent_id, seq, event_id) VALUES (?, ?, ?)",
                rows,
            )
        oldest = min((entries[0][1] for entries in unindexed.values() if entries), default=None)
        upto = self._next_body_id() - 1 if oldest is None else oldest - 1
        if upto > self._indexed_upto():
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (INDEXED_KEY, str(upto)),
            )
        return len(rows)

    def prune_events(self, agent_id: str, keep: int, flush: bool = True) -> int:
        """Delete all but the newest `keep` entries of the stream (never the newest one: it
        is the stream's head), record the head in `agents.last_seq`, and delete the bodies
        no stream refers to any more. Call inside a transaction.

        Args:
            flush: write the whole pending index first, so every entry can be pruned. The
                service passes False after flushing it slice by slice (one large INSERT held
                the loop); entries still pending then stay until the next prune, and a body
                is only deleted below `events_indexed`, where none of its entries can be
                pending, either way."""
        head = self.last_seq(agent_id)
        if flush and self._unindexed_entries():
            self.flush_stream_index()
        self.conn.execute(
            "UPDATE agents SET last_seq = ? WHERE id = ? AND last_seq < ?", (head, agent_id, head)
        )
        gone = [
            int(r[0])
            for r in self.conn.execute(
                "DELETE FROM event_streams WHERE agent_id = ? AND seq <= ? RETURNING event_id",
                (agent_id, head - max(1, keep)),
            )
        ]
        # A body goes once none of its audience's entries is left.
        indexed = self._indexed_upto()
        self.conn.executemany(
            "DELETE FROM event_bodies WHERE id = ? AND NOT EXISTS ("
            "SELECT 1 FROM json_each(event_bodies.audience) j JOIN event_streams s "
            "ON s.agent_id = j.key AND s.seq = j.value)",
            [(body_id,) for body_id in sorted(set(gone)) if body_id <= indexed],
        )
        return len(gone)

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
