"""The router's storage: every read and write of the router database goes through `Storage`.

Keeping SQL in this one class is what lets a later PostgreSQL implementation (several router
nodes, row locks, LISTEN/NOTIFY) replace SQLite without touching routing or sessions. Callers
group writes with `with storage.transaction():` (one `BEGIN IMMEDIATE` ... `COMMIT`), so an
action, its events and its stored ack land together or not at all.

The connection is used from the router's single asyncio thread only; statements are short.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from router.schema import migrate

log = logging.getLogger(__name__)

Row = dict[str, Any]

_LIVE_STATUSES = ("queued", "offered", "assigned", "wrap_up")
CALL_OVER_STATES = ("ended", "failed", "missed", "rejected", "disconnected", "canceled")
"""`call_event` states (any case) after which a call no longer holds the agent's voice slot;
`disconnected` is what the phone engine (pjsua2) reports."""


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


class Storage:
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
            self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        self.conn.execute("COMMIT")

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row = self.conn.execute(sql, params).fetchone()
        return dict(row) if row is not None else None

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [dict(r) for r in self.conn.execute(sql, params)]

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

    # ------------------------------------------------------------------ agents

    @staticmethod
    def _agent(row: Row | None) -> Row | None:
        if row is None:
            return None
        row["queues"] = json.loads(row["queues"])
        row["capacity"] = json.loads(row["capacity"])
        return row

    def upsert_agent(
        self, agent_id: str, username: str, name: str, password_hash: str,
        queues: Sequence[str], capacity: Mapping[str, int], now: float,
    ) -> None:
        """Create an agent, or update their name, password, queues and capacity."""
        self.conn.execute(
            "INSERT INTO agents (id, username, name, password_hash, queues, capacity, "
            "state_since, idle_since) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET username = excluded.username, name = excluded.name, "
            "password_hash = excluded.password_hash, queues = excluded.queues, "
            "capacity = excluded.capacity",
            (agent_id, username, name, password_hash, json.dumps(list(queues)),
             json.dumps(dict(capacity)), now, now),
        )

    def agent(self, agent_id: str) -> Row | None:
        return self._agent(self._one("SELECT * FROM agents WHERE id = ?", (agent_id,)))

    def agent_by_username(self, username: str) -> Row | None:
        return self._agent(self._one("SELECT * FROM agents WHERE username = ?", (username,)))

    def agents(self) -> list[Row]:
        return [a for a in (self._agent(r) for r in self._all("SELECT * FROM agents ORDER BY id"))
                if a is not None]

    def set_agent_state(self, agent_id: str, state: str, reason: str | None, now: float) -> None:
        self.conn.execute(
            "UPDATE agents SET state = ?, state_reason = ?, state_since = ? WHERE id = ?",
            (state, reason, now, agent_id),
        )

    def set_idle_since(self, agent_id: str, when: float) -> None:
        self.conn.execute("UPDATE agents SET idle_since = ? WHERE id = ?", (when, agent_id))

    def agent_load(self, agent_id: str) -> dict[str, int]:
        """Work the agent holds per channel: assigned/wrap-up conversations, pending offers
        and calls in progress."""
        load: dict[str, int] = {}
        for row in self.conn.execute(
            "SELECT channel, COUNT(*) FROM conversations WHERE assigned_agent = ? "
            "AND status IN ('assigned', 'wrap_up') GROUP BY channel", (agent_id,)
        ):
            load[row[0]] = load.get(row[0], 0) + row[1]
        for row in self.conn.execute(
            "SELECT c.channel, COUNT(*) FROM offers o JOIN conversations c "
            "ON c.id = o.conversation_id WHERE o.agent_id = ? AND o.status = 'pending' "
            "GROUP BY c.channel", (agent_id,)
        ):
            load[row[0]] = load.get(row[0], 0) + row[1]
        marks = ", ".join("?" for _ in CALL_OVER_STATES)
        calls = self._one(
            f"SELECT COUNT(*) AS n FROM calls WHERE agent_id = ? AND lower(state) NOT IN "
            f"({marks})", (agent_id, *CALL_OVER_STATES)
        )
        if calls and calls["n"]:
            load["voice"] = load.get("voice", 0) + int(calls["n"])
        return load

    # ------------------------------------------------------------------ tokens

    def add_token(self, token_hash: str, agent_id: str, now: float, expires_at: float) -> None:
        self.conn.execute(
            "INSERT INTO tokens (token_hash, agent_id, created_at, expires_at) VALUES (?,?,?,?)",
            (token_hash, agent_id, now, expires_at),
        )

    def token(self, token_hash: str) -> Row | None:
        return self._one("SELECT * FROM tokens WHERE token_hash = ?", (token_hash,))

    def prune_tokens(self, expired_before: float) -> int:
        return self.conn.execute(
            "DELETE FROM tokens WHERE expires_at < ?", (expired_before,)
        ).rowcount

    # ------------------------------------------------------------------ customers

    def add_customer(self, customer_id: str, name: str, now: float) -> None:
        self.conn.execute(
            "INSERT INTO customers (id, name, created_at) VALUES (?, ?, ?)",
            (customer_id, name, now),
        )

    def add_identity(self, customer_id: str, kind: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO identities (kind, value, customer_id) VALUES (?, ?, ?)",
            (kind, value, customer_id),
        )

    def customer_by_identity(self, kind: str, value: str) -> str | None:
        row = self._one("SELECT customer_id FROM identities WHERE kind = ? AND value = ?",
                        (kind, value))
        return None if row is None else str(row["customer_id"])

    def customer(self, customer_id: str) -> Row | None:
        """Wire form: `{id, name, identities: [{kind, value}]}`."""
        row = self._one("SELECT id, name FROM customers WHERE id = ?", (customer_id,))
        if row is None:
            return None
        row["identities"] = self._all(
            "SELECT kind, value FROM identities WHERE customer_id = ? ORDER BY kind, value",
            (customer_id,),
        )
        return row

    def customer_ids(self) -> list[str]:
        return [r["id"] for r in self._all("SELECT id FROM customers ORDER BY created_at, id")]

    # ------------------------------------------------------------------ conversations

    def add_conversation(
        self, conversation_id: str, channel: str, customer_id: str, queue: str,
        subject: str | None, now: float,
    ) -> None:
        self.conn.execute(
            "INSERT INTO conversations (id, channel, customer_id, queue, status, subject, "
            "created_at, updated_at, queued_since) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
            (conversation_id, channel, customer_id, queue, subject, now, now, now),
        )

    def conversation(self, conversation_id: str) -> Row | None:
        """The stored row (internal columns included)."""
        return self._one("SELECT * FROM conversations WHERE id = ?", (conversation_id,))

    def update_conversation(self, conversation_id: str, now: float, **fields: Any) -> None:
        """Set columns (names are ours, never user input) and `updated_at`."""
        cols = ", ".join(f"{name} = ?" for name in fields)
        self.conn.execute(
            f"UPDATE conversations SET {cols}, updated_at = ? WHERE id = ?",
            (*fields.values(), now, conversation_id),
        )

    def conversation_wire(self, conversation_id: str) -> Row | None:
        """Wire form (docs/protocol.md "Conversation row"), customer embedded."""
        row = self.conversation(conversation_id)
        if row is None:
            return None
        return {
            "id": row["id"], "channel": row["channel"],
            "customer": self.customer(row["customer_id"]),
            "queue": row["queue"], "status": row["status"],
            "assigned_agent": row["assigned_agent"], "subject": row["subject"],
            "created_at": row["created_at"], "updated_at": row["updated_at"],
            "last_inbound_at": row["last_inbound_at"],
        }

    def waiting_conversations(self) -> list[Row]:
        """Queued conversations, oldest wait first."""
        return self._all(
            "SELECT * FROM conversations WHERE status = 'queued' "
            "ORDER BY queued_since, created_at, id"
        )

    def visible_conversation_ids(self, agent_id: str, queues: Sequence[str]) -> list[str]:
        """What the agent may see: theirs (any status), and queued/offered ones of their
        queues."""
        marks = ", ".join("?" for _ in queues) or "NULL"
        return [r["id"] for r in self._all(
            f"SELECT id FROM conversations WHERE assigned_agent = ? "
            f"OR (status IN ('queued', 'offered') AND queue IN ({marks})) "
            f"ORDER BY created_at, id",
            (agent_id, *queues),
        )]

    def open_conversation_for(self, customer_id: str, channel: str) -> str | None:
        """The customer's newest conversation on `channel` that is not closed, if any."""
        marks = ", ".join("?" for _ in _LIVE_STATUSES)
        row = self._one(
            f"SELECT id FROM conversations WHERE customer_id = ? AND channel = ? "
            f"AND status IN ({marks}) ORDER BY created_at DESC LIMIT 1",
            (customer_id, channel, *_LIVE_STATUSES),
        )
        return None if row is None else str(row["id"])

    def count_conversations(self, status: str) -> int:
        row = self._one("SELECT COUNT(*) AS n FROM conversations WHERE status = ?", (status,))
        return int(row["n"]) if row else 0

    def live_conversation_ids(self) -> list[str]:
        marks = ", ".join("?" for _ in _LIVE_STATUSES)
        return [r["id"] for r in self._all(
            f"SELECT id FROM conversations WHERE status IN ({marks})", _LIVE_STATUSES)]

    # ------------------------------------------------------------------ messages

    def add_message(
        self, message_id: str, conversation_id: str, direction: str, author: str, body: str,
        now: float,
    ) -> int:
        """Append a message at the conversation's next seq and return that seq."""
        self.conn.execute(
            "UPDATE conversations SET last_msg_seq = last_msg_seq + 1, updated_at = ? "
            "WHERE id = ?", (now, conversation_id),
        )
        row = self._one("SELECT last_msg_seq FROM conversations WHERE id = ?",
                        (conversation_id,))
        assert row is not None, conversation_id
        seq = int(row["last_msg_seq"])
        self.conn.execute(
            "INSERT INTO messages (id, conversation_id, seq, direction, author, body, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (message_id, conversation_id, seq, direction, author, body, now),
        )
        return seq

    def message(self, message_id: str) -> Row | None:
        """Wire form (docs/protocol.md "Message row")."""
        return self._one(
            "SELECT id, conversation_id, seq, direction, author, body, html, created_at "
            "FROM messages WHERE id = ?", (message_id,),
        )

    def messages(self, conversation_id: str) -> list[Row]:
        return self._all(
            "SELECT id, conversation_id, seq, direction, author, body, html, created_at "
            "FROM messages WHERE conversation_id = ? ORDER BY seq", (conversation_id,),
        )

    def last_inbound_body(self, conversation_id: str) -> str:
        row = self._one(
            "SELECT body FROM messages WHERE conversation_id = ? AND direction = 'in' "
            "ORDER BY seq DESC LIMIT 1", (conversation_id,),
        )
        return "" if row is None else str(row["body"])

    # ------------------------------------------------------------------ offers

    def add_offer(
        self, offer_id: str, conversation_id: str, agent_id: str, now: float, expires_at: float
    ) -> None:
        self.conn.execute(
            "INSERT INTO offers (id, conversation_id, agent_id, status, created_at, expires_at) "
            "VALUES (?, ?, ?, 'pending', ?, ?)",
            (offer_id, conversation_id, agent_id, now, expires_at),
        )

    def offer(self, offer_id: str) -> Row | None:
        return self._one("SELECT * FROM offers WHERE id = ?", (offer_id,))

    def offer_wire(self, offer: Row) -> Row:
        """Wire form: `{id, conversation_id, channel, queue, customer_name, preview,
        expires_at}`."""
        conversation = self.conversation(offer["conversation_id"])
        assert conversation is not None, offer["conversation_id"]
        customer = self.customer(conversation["customer_id"]) or {}
        return {
            "id": offer["id"], "conversation_id": offer["conversation_id"],
            "channel": conversation["channel"], "queue": conversation["queue"],
            "customer_name": customer.get("name", ""),
            "preview": self.last_inbound_body(offer["conversation_id"])[:140],
            "expires_at": offer["expires_at"],
        }

    def end_offer(self, offer_id: str, status: str, now: float) -> None:
        self.conn.execute(
            "UPDATE offers SET status = ?, ended_at = ? WHERE id = ? AND status = 'pending'",
            (status, now, offer_id),
        )

    def pending_offers(self, agent_id: str | None = None) -> list[Row]:
        if agent_id is None:
            return self._all("SELECT * FROM offers WHERE status = 'pending' ORDER BY expires_at")
        return self._all(
            "SELECT * FROM offers WHERE status = 'pending' AND agent_id = ? ORDER BY created_at",
            (agent_id,),
        )

    def refusals(self, since: float) -> list[Row]:
        """(conversation_id, agent_id) of offers declined or lapsed after `since`."""
        return self._all(
            "SELECT conversation_id, agent_id FROM offers WHERE status IN "
            "('declined', 'expired') AND ended_at > ?", (since,),
        )

    # ------------------------------------------------------------------ events

    def append_event(self, agent_id: str, event: Mapping[str, Any], now: float) -> int:
        """Append to the agent's stream and return the new seq (one more than the last)."""
        self.conn.execute("UPDATE agents SET last_seq = last_seq + 1 WHERE id = ?", (agent_id,))
        row = self._one("SELECT last_seq FROM agents WHERE id = ?", (agent_id,))
        assert row is not None, agent_id
        seq = int(row["last_seq"])
        self.conn.execute(
            "INSERT INTO events (agent_id, seq, event, created_at) VALUES (?, ?, ?, ?)",
            (agent_id, seq, json.dumps(event, ensure_ascii=False), now),
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

    def prune_events(self, agent_id: str, keep: int) -> int:
        return self.conn.execute(
            "DELETE FROM events WHERE agent_id = ? AND seq <= "
            "(SELECT last_seq FROM agents WHERE id = ?) - ?", (agent_id, agent_id, keep),
        ).rowcount

    # ------------------------------------------------------------------ acks and calls

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

    def upsert_call(
        self, agent_id: str, call_id: str, direction: str, remote: str, state: str, at: float
    ) -> None:
        self.conn.execute(
            "INSERT INTO calls (call_id, agent_id, direction, remote, state, at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(agent_id, call_id) DO UPDATE SET "
            "state = excluded.state, at = excluded.at",
            (call_id, agent_id, direction, remote, state, at),
        )
