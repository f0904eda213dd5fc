"""Storing what the router sends: events (snapshot pages: `sync.snapshot_apply`), each with
the cursor, atomically.

An event's effect and the cursor move together in one transaction, so a crash (or a kill)
between two events leaves the cache exactly at one of them and the resume asks for the next;
nothing is skipped or applied twice. Everything here is plain SQL on the caller's connection:
sqlite-utils' Table helpers commit on their own and would break that rule.

The conversation list reads `last_message_at`, `last_message_preview`, `last_inbound_at` and
`unread` from `conversations`; they are derived here whenever a message lands, so the UI never
has to scan messages to draw the list.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from sync.store import atomic, get_state, set_state

log = logging.getLogger(__name__)

CURSOR = "cursor"
PREVIEW_CHARS = 140


class CursorMismatchError(RuntimeError):
    """An event does not follow the stored cursor: applying it would skip or repeat events."""


@dataclass
class Changes:
    """What a write touched, for the engine's change notifications."""

    tables: set[str] = field(default_factory=set)
    conversation_ids: set[str] = field(default_factory=set)
    offers_added: list[dict[str, Any]] = field(default_factory=list)
    offers_revoked: list[tuple[str, str]] = field(default_factory=list)  # (offer_id, reason)

    def merge(self, other: Changes) -> None:
        self.tables |= other.tables
        self.conversation_ids |= other.conversation_ids
        self.offers_added += other.offers_added
        self.offers_revoked += other.offers_revoked


def get_cursor(db: sqlite_utils.Database) -> int:
    """The highest event seq stored (0 for an empty cache)."""
    return int(get_state(db, CURSOR, "0") or 0)


def preview(body: str | None) -> str:
    """One line for the conversation list: whitespace folded, cut at PREVIEW_CHARS."""
    text = " ".join((body or "").split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


# --------------------------------------------------------------------------- rows


def _upsert_customer(db: sqlite_utils.Database, row: Mapping[str, Any], ch: Changes) -> None:
    name = row.get("name") or next(
        (i.get("value") for i in row.get("identities") or [] if i.get("value")), "Unknown"
    )
    db.execute(
        "INSERT INTO customers (id, name, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET name = excluded.name, "
        "created_at = COALESCE(excluded.created_at, customers.created_at)",
        [row["id"], name, row.get("created_at")],
    )
    if "identities" in row:
        db.execute("DELETE FROM identities WHERE customer_id = ?", [row["id"]])
        for ident in row.get("identities") or []:
            db.execute(
                "INSERT OR REPLACE INTO identities (kind, value, customer_id) VALUES (?, ?, ?)",
                [ident["kind"], ident["value"], row["id"]],
            )
        ch.tables.add("identities")
    ch.tables.add("customers")


_CONV_COLS = (
    "channel",
    "customer_id",
    "queue",
    "status",
    "assigned_agent",
    "subject",
    "created_at",
    "updated_at",
    "last_inbound_at",
    "sla_due",
)


def _upsert_conversation(db: sqlite_utils.Database, row: Mapping[str, Any], ch: Changes) -> None:
    customer = row.get("customer")
    if isinstance(customer, Mapping):
        _upsert_customer(db, customer, ch)
    values = dict(row)
    values["customer_id"] = (
        customer["id"] if isinstance(customer, Mapping) else row.get("customer_id")
    )
    cols = ", ".join(_CONV_COLS)
    marks = ", ".join("?" for _ in _CONV_COLS)
    # Multi-argument MAX is NULL when any argument is, hence the COALESCE chains.
    keep = {
        "last_inbound_at": "COALESCE(MAX(excluded.{c}, conversations.{c}), excluded.{c}, "
        "conversations.{c})",
        "customer_id": "COALESCE(excluded.{c}, conversations.{c})",
        "sla_due": "COALESCE(excluded.{c}, conversations.{c})",
    }
    updates = ", ".join(f"{c} = " + keep.get(c, "excluded.{c}").format(c=c) for c in _CONV_COLS)
    db.execute(
        f"INSERT INTO conversations (id, {cols}) VALUES (?, {marks}) "
        f"ON CONFLICT(id) DO UPDATE SET {updates}",
        [row["id"], *(values.get(c) for c in _CONV_COLS)],
    )
    ch.tables.add("conversations")
    ch.conversation_ids.add(row["id"])


def _ensure_conversation(db: sqlite_utils.Database, conversation_id: str) -> None:
    """A placeholder row so a message never fails its foreign key; the router's conversation
    event fills it in."""
    cur = db.execute("INSERT OR IGNORE INTO conversations (id) VALUES (?)", [conversation_id])
    if cur.rowcount:
        log.warning("message for unknown conversation %s: placeholder row made", conversation_id)


def refresh_conversation(db: sqlite_utils.Database, conversation_id: str) -> None:
    """Recompute the list fields from the conversation's messages (in/out, not notes).

    Ordered as the thread is: acknowledged messages by server seq, then those not yet
    acknowledged (local time) last.
    """
    last = db.execute(
        "SELECT body, created_at FROM messages WHERE conversation_id = ? "
        "AND direction IN ('in', 'out') "
        "ORDER BY seq IS NULL DESC, seq DESC, created_at DESC LIMIT 1",
        [conversation_id],
    ).fetchone()
    inbound = db.execute(
        "SELECT MAX(created_at) FROM messages WHERE conversation_id = ? AND direction = 'in'",
        [conversation_id],
    ).fetchone()[0]
    newest = db.execute(
        "SELECT MAX(created_at) FROM messages WHERE conversation_id = ? "
        "AND direction IN ('in', 'out')",
        [conversation_id],
    ).fetchone()[0]
    db.execute(
        "UPDATE conversations SET last_message_at = ?, last_message_preview = ?, "
        "last_inbound_at = COALESCE(MAX(last_inbound_at, ?), last_inbound_at, ?) WHERE id = ?",
        [newest, preview(last[0]) if last else None, inbound, inbound, conversation_id],
    )


# A message from the router replaces any earlier copy (ours while it was being sent, or a
# re-sent event): it is then 'sent' with no error. Shared with the snapshot's bulk insert.
UPSERT_MESSAGE = (
    "INSERT INTO messages (id, conversation_id, seq, direction, author, body, html, "
    "attachments, created_at, status, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'sent', NULL) "
    "ON CONFLICT(id) DO UPDATE SET conversation_id = excluded.conversation_id, "
    "seq = excluded.seq, direction = excluded.direction, author = excluded.author, "
    "body = excluded.body, html = excluded.html, attachments = excluded.attachments, "
    "created_at = excluded.created_at, status = 'sent', error = NULL"
)


def message_params(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """UPSERT_MESSAGE's parameters from a router message row."""
    attachments = row.get("attachments")
    return (
        row["id"],
        row["conversation_id"],
        row.get("seq"),
        row.get("direction"),
        row.get("author"),
        row.get("body"),
        row.get("html"),
        json.dumps(attachments) if attachments is not None else None,
        row.get("created_at"),
    )


def _upsert_message(
    db: sqlite_utils.Database, row: Mapping[str, Any], ch: Changes, count_unread: bool
) -> None:
    conv = row["conversation_id"]
    _ensure_conversation(db, conv)
    existed = db.execute("SELECT 1 FROM messages WHERE id = ?", [row["id"]]).fetchone()
    db.execute(UPSERT_MESSAGE, message_params(row))
    if count_unread and not existed and row.get("direction") == "in":
        db.execute("UPDATE conversations SET unread = COALESCE(unread, 0) + 1 WHERE id = ?", [conv])
    refresh_conversation(db, conv)
    ch.tables |= {"messages", "conversations"}
    ch.conversation_ids.add(conv)


def _upsert_offer(
    db: sqlite_utils.Database, row: Mapping[str, Any], now: float, ch: Changes
) -> None:
    cols = ("conversation_id", "channel", "queue", "customer_name", "preview", "expires_at")
    new = db.execute("SELECT 1 FROM offers WHERE id = ?", [row["id"]]).fetchone() is None
    db.execute(
        "INSERT INTO offers (id, conversation_id, channel, queue, customer_name, preview, "
        "expires_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in cols),
        [row["id"], *(row.get(c) for c in cols), now],
    )
    ch.tables.add("offers")
    if new:
        ch.offers_added.append({"id": row["id"], **{c: row.get(c) for c in cols}})


def _set_agent_state(
    db: sqlite_utils.Database, agent_id: str, row: Mapping[str, Any], ch: Changes
) -> None:
    db.execute(
        "INSERT OR REPLACE INTO agent_state (agent_id, state, reason, since) VALUES (?, ?, ?, ?)",
        [agent_id, row.get("state"), row.get("reason"), row.get("since")],
    )
    ch.tables.add("agent_state")


def _apply(
    db: sqlite_utils.Database, event: Mapping[str, Any], agent_id: str, now: float, ch: Changes
) -> None:
    kind = event.get("kind")
    if kind == "conversation":
        _upsert_conversation(db, event["conversation"], ch)
    elif kind == "message":
        _upsert_message(db, event["message"], ch, count_unread=True)
    elif kind == "offer":
        _upsert_offer(db, event["offer"], now, ch)
    elif kind == "offer_revoked":
        db.execute("DELETE FROM offers WHERE id = ?", [event["offer_id"]])
        ch.tables.add("offers")
        ch.offers_revoked.append((event["offer_id"], str(event.get("reason") or "")))
    elif kind == "agent_state":
        _set_agent_state(db, agent_id, event, ch)
    elif kind == "metrics":
        for key, value in dict(event["metrics"]).items():
            db.execute(
                "INSERT OR REPLACE INTO metrics (key, value, updated_at) VALUES (?, ?, ?)",
                [key, json.dumps(value), now],
            )
        ch.tables.add("metrics")
    else:
        log.warning("skipping event of unknown kind %r", kind)


# --------------------------------------------------------------------------- public


def apply_event(
    db: sqlite_utils.Database, seq: int, event: Mapping[str, Any], *, agent_id: str, now: float
) -> Changes:
    """Store one event's effect and set the cursor to `seq`, in one transaction.

    An event at or below the stored cursor changes nothing (replay overlap).

    Args:
        agent_id: whose `agent_state` an `agent_state` event sets.
        now: local time, recorded as an offer's `received_at`.

    Raises:
        CursorMismatchError: `seq` is beyond the next one; nothing was written.
    """
    ch = Changes()
    with atomic(db):
        cursor = get_cursor(db)
        if seq <= cursor:
            return ch
        if seq != cursor + 1:
            raise CursorMismatchError(f"event {seq} does not follow the stored cursor {cursor}")
        _apply(db, event, agent_id, now, ch)
        set_state(db, CURSOR, str(seq))
    return ch


def mark_read(db: sqlite_utils.Database, conversation_id: str) -> Changes:
    """The agent opened the conversation: its unread count goes to 0."""
    ch = Changes()
    with atomic(db):
        cur = db.execute(
            "UPDATE conversations SET unread = 0 WHERE id = ? AND unread != 0", [conversation_id]
        )
        if cur.rowcount:
            ch.tables.add("conversations")
            ch.conversation_ids.add(conversation_id)
    return ch


def bind_agent(db: sqlite_utils.Database, agent_id: str) -> bool:
    """Record whose cache this is. If it belonged to another agent with nothing unsent, forget
    their data and cursor (one agent must never see another's stream); return True then.

    Raises:
        RuntimeError: the cache holds another agent's unsent commands; they must not be sent
            as this agent, nor silently dropped.
    """
    with atomic(db):
        owner = get_state(db, "agent_id")
        if owner == agent_id:
            return False
        if owner is not None:
            if db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]:
                raise RuntimeError(
                    f"This cache holds unsent work of agent {owner}; "
                    f"it cannot be used by {agent_id}."
                )
            for table in (
                "messages",
                "offers",
                "conversations",
                "identities",
                "customers",
                "agent_state",
                "metrics",
                "snapshot_seen",
            ):
                db.execute(f"DELETE FROM [{table}]")
            set_state(db, CURSOR, "0")
            log.info("cache belonged to another agent: cleared")
        set_state(db, "agent_id", agent_id)
        return owner is not None
