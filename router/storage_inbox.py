"""Storage part: customers and identities, conversations, messages and offers, with their
wire forms (docs/protocol.md rows)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from router.storage_base import Row, SqlBase

LIVE_STATUSES = ("queued", "offered", "assigned", "wrap_up")


class InboxRows(SqlBase):
    """Customers, conversations, messages, offers."""

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
        row = self._one(
            "SELECT customer_id FROM identities WHERE kind = ? AND value = ?", (kind, value)
        )
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
        self,
        conversation_id: str,
        channel: str,
        customer_id: str,
        queue: str,
        subject: str | None,
        now: float,
        direction: str = "inbound",
    ) -> None:
        self.conn.execute(
            "INSERT INTO conversations (id, channel, customer_id, queue, status, subject, "
            "created_at, updated_at, queued_since, queue_entered_at, direction) "
            "VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
            (conversation_id, channel, customer_id, queue, subject, now, now, now, now, direction),
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
            "id": row["id"],
            "channel": row["channel"],
            "customer": self.customer(row["customer_id"]),
            "queue": row["queue"],
            "status": row["status"],
            "assigned_agent": row["assigned_agent"],
            "subject": row["subject"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "last_inbound_at": row["last_inbound_at"],
            "direction": row["direction"],
            "disposition": row["disposition"],
        }

    def held_conversations(self, agent_id: str, statuses: Sequence[str]) -> list[Row]:
        marks = ", ".join("?" for _ in statuses)
        return self._all(
            f"SELECT * FROM conversations WHERE assigned_agent = ? AND status IN ({marks}) "
            f"ORDER BY created_at, id",
            (agent_id, *statuses),
        )

    def waiting_conversations(self) -> list[Row]:
        """Queued conversations, oldest wait first."""
        return self._all(
            "SELECT * FROM conversations WHERE status = 'queued' "
            "ORDER BY queued_since, created_at, id"
        )

    def visible_conversation_ids(
        self, agent_id: str, queues: Sequence[str], supervises: Sequence[str] = ()
    ) -> list[str]:
        """What the agent may see: theirs (any status), queued/offered ones of their
        queues, and every open one of the queues they supervise."""
        marks = ", ".join("?" for _ in queues) or "NULL"
        smarks = ", ".join("?" for _ in supervises) or "NULL"
        return [
            r["id"]
            for r in self._all(
                f"SELECT id FROM conversations WHERE assigned_agent = ? "
                f"OR (status IN ('queued', 'offered') AND queue IN ({marks})) "
                f"OR (status != 'closed' AND queue IN ({smarks})) "
                f"ORDER BY created_at, id",
                (agent_id, *queues, *supervises),
            )
        ]

    def open_conversation_for(self, customer_id: str, channel: str) -> str | None:
        """The customer's newest conversation on `channel` that is not closed, if any."""
        marks = ", ".join("?" for _ in LIVE_STATUSES)
        row = self._one(
            f"SELECT id FROM conversations WHERE customer_id = ? AND channel = ? "
            f"AND status IN ({marks}) ORDER BY created_at DESC LIMIT 1",
            (customer_id, channel, *LIVE_STATUSES),
        )
        return None if row is None else str(row["id"])

    def awaiting_agent(self, since: float) -> list[Row]:
        """Assigned conversations whose newest message is the customer's and older than
        `since`: the customer is waiting for the agent (the demo has them nudge)."""
        return self._all(
            "SELECT c.* FROM conversations c WHERE c.status = 'assigned' "
            "AND c.last_inbound_at IS NOT NULL AND c.last_inbound_at < ? "
            "AND (SELECT m.direction FROM messages m WHERE m.conversation_id = c.id "
            "     ORDER BY m.seq DESC LIMIT 1) = 'in' "
            "ORDER BY c.last_inbound_at, c.id",
            (since,),
        )

    def count_conversations(self, status: str) -> int:
        row = self._one("SELECT COUNT(*) AS n FROM conversations WHERE status = ?", (status,))
        return int(row["n"]) if row else 0

    def live_conversation_ids(self) -> list[str]:
        marks = ", ".join("?" for _ in LIVE_STATUSES)
        return [
            r["id"]
            for r in self._all(
                f"SELECT id FROM conversations WHERE status IN ({marks})", LIVE_STATUSES
            )
        ]

    # ------------------------------------------------------------------ messages

    def add_message(
        self,
        message_id: str,
        conversation_id: str,
        direction: str,
        author: str,
        body: str,
        now: float,
    ) -> int:
        """Append a message at the conversation's next seq and return that seq."""
        self.conn.execute(
            "UPDATE conversations SET last_msg_seq = last_msg_seq + 1, updated_at = ? WHERE id = ?",
            (now, conversation_id),
        )
        row = self._one("SELECT last_msg_seq FROM conversations WHERE id = ?", (conversation_id,))
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
            "FROM messages WHERE id = ?",
            (message_id,),
        )

    def messages(self, conversation_id: str) -> list[Row]:
        return self._all(
            "SELECT id, conversation_id, seq, direction, author, body, html, created_at "
            "FROM messages WHERE conversation_id = ? ORDER BY seq",
            (conversation_id,),
        )

    def last_inbound_body(self, conversation_id: str) -> str:
        row = self._one(
            "SELECT body FROM messages WHERE conversation_id = ? AND direction = 'in' "
            "ORDER BY seq DESC LIMIT 1",
            (conversation_id,),
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
            "id": offer["id"],
            "conversation_id": offer["conversation_id"],
            "channel": conversation["channel"],
            "queue": conversation["queue"],
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
            "('rejected', 'timeout') AND ended_at > ?",
            (since,),
        )
