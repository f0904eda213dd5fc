"""Storing a snapshot page: the paged catch-up when the router no longer keeps the events
after the cache's cursor (docs/protocol.md, Resume).

Why its own module: a snapshot replaces what the cache shows rather than adding one change,
so it has its own rules (messages inserted in bulk with the full-text index filled in one
statement; the last page forgets what the router no longer shows, except conversations with
unsent outbox commands). Each page is one transaction, like an event in `sync.apply`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import sqlite_utils

from sync.apply import (
    CURSOR,
    UPSERT_MESSAGE,
    Changes,
    _ensure_conversation,
    _set_agent_state,
    _upsert_conversation,
    _upsert_customer,
    _upsert_offer,
    message_params,
    refresh_conversation,
)
from sync.protocol import Snapshot
from sync.store import FTS_BULK_KEY, atomic, set_state

log = logging.getLogger(__name__)


def _upsert_messages_bulk(
    db: sqlite_utils.Database, rows: list[Mapping[str, Any]], ch: Changes
) -> set[str]:
    """A snapshot page's messages in one `executemany`, each conversation's list fields
    recomputed once per page rather than once per message: a snapshot is history (no unread
    to count), and per-row work made a 100k-message snapshot four times slower than a plain
    insert. Returns the conversations touched."""
    convs = {row["conversation_id"] for row in rows}
    for conv in convs:
        _ensure_conversation(db, conv)
    # New rows are indexed below in one statement; updated rows by the update trigger.
    # The flag lives and dies inside the caller's transaction, so a crash cannot leave it.
    first_new = db.execute("SELECT COALESCE(MAX(rowid), 0) FROM messages").fetchone()[0]
    set_state(db, FTS_BULK_KEY, "1")
    db.conn.executemany(UPSERT_MESSAGE, [message_params(row) for row in rows])
    db.execute(
        "INSERT INTO messages_fts (rowid, body) SELECT rowid, body FROM messages WHERE rowid > ?",
        [first_new],
    )
    db.execute("DELETE FROM sync_state WHERE key = ?", [FTS_BULK_KEY])
    for conv in convs:
        refresh_conversation(db, conv)
    if rows:
        ch.tables |= {"messages", "conversations"}
        ch.conversation_ids |= convs
    return convs


def _seen(db: sqlite_utils.Database, kind: str, ids: Iterable[str]) -> None:
    db.conn.executemany(
        "INSERT OR IGNORE INTO snapshot_seen (kind, id) VALUES (?, ?)", [(kind, i) for i in ids]
    )


def apply_snapshot_page(
    db: sqlite_utils.Database, snapshot: Snapshot, *, agent_id: str, now: float
) -> Changes:
    """Store one snapshot page in one transaction; the last page also forgets what the router
    no longer shows (except conversations with unsent outbox commands) and sets the cursor.
    """
    ch = Changes()
    with atomic(db):
        if snapshot.page == 0:
            db.execute("DELETE FROM snapshot_seen")
        for customer in snapshot.customers:
            _upsert_customer(db, customer, ch)
        for conv in snapshot.conversations:
            _upsert_conversation(db, conv, ch)
        _seen(db, "conversation", (c["id"] for c in snapshot.conversations))
        _seen(db, "conversation", _upsert_messages_bulk(db, list(snapshot.messages), ch))
        for offer in snapshot.offers:
            _upsert_offer(db, offer, now, ch)
        _seen(db, "offer", (o["id"] for o in snapshot.offers))
        if snapshot.agent_state is not None:
            _set_agent_state(db, agent_id, snapshot.agent_state, ch)
        if snapshot.last:
            _forget_unseen(db, ch)
            db.execute("DELETE FROM snapshot_seen")
            set_state(db, CURSOR, str(snapshot.seq))
    return ch


def _forget_unseen(db: sqlite_utils.Database, ch: Changes) -> None:
    gone = [
        r[0]
        for r in db.execute(
            "SELECT id FROM conversations WHERE id NOT IN "
            "(SELECT id FROM snapshot_seen WHERE kind = 'conversation') "
            "AND id NOT IN (SELECT conversation_id FROM outbox WHERE conversation_id IS NOT NULL)"
        ).fetchall()
    ]
    for conv in gone:
        db.execute("DELETE FROM messages WHERE conversation_id = ?", [conv])
        db.execute("DELETE FROM conversations WHERE id = ?", [conv])
    if gone:
        log.info("snapshot: %d conversation(s) no longer shown were removed", len(gone))
        ch.tables |= {"conversations", "messages"}
        ch.conversation_ids |= set(gone)
    stale = [
        r[0]
        for r in db.execute(
            "SELECT id FROM offers "
            "WHERE id NOT IN (SELECT id FROM snapshot_seen WHERE kind = 'offer')"
        ).fetchall()
    ]
    for offer_id in stale:
        db.execute("DELETE FROM offers WHERE id = ?", [offer_id])
        ch.offers_revoked.append((offer_id, "canceled"))
    if stale:
        ch.tables.add("offers")
