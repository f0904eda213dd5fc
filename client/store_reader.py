"""The UI's read side of the cache: small, paged queries on its own read-only connection.

Why: the sync engine owns the only write connection; the UI thread must never wait on it or on
a large read. Every query here is bounded (a page of the inbox, the tail of one thread) and
uses the indexes `sync/store.py` creates, so it returns in about a millisecond on a cache of
100,000 conversations. The file may not exist yet when the window opens (the engine creates it
at start): the reader then answers with empty results and connects on the next call.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

from client.store_rows import (
    AgentState,
    ConversationHeader,
    Identity,
    InboxFilter,
    InboxRow,
    Offer,
    ThreadMessage,
    fts_query,
)
from sync.recovery import is_corrupt
from sync.store import open_readonly

log = logging.getLogger(__name__)

PAGE_SIZE = 200
THREAD_LIMIT = 500
SEARCH_HITS = 2000
"""Newest matching messages a search looks at: a common word matches a large part of a
million messages, and the agent wants the recent conversations that mention it."""

__all__ = [
    "PAGE_SIZE",
    "SEARCH_HITS",
    "THREAD_LIMIT",
    "AgentState",
    "ConversationHeader",
    "Identity",
    "InboxFilter",
    "InboxRow",
    "Offer",
    "StoreReader",
    "ThreadMessage",
    "fts_query",
]


class StoreReader:
    """Read-only queries over the cache file at `path`.

    Args:
        path: the cache file the sync engine writes.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self.damaged = False  # a read met a corrupt file (see `_rows`)

    # -- connection ------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection | None:
        if self._conn is None:
            if not self.path.exists():
                return None
            try:
                self._conn = open_readonly(self.path)
            except sqlite3.Error:
                log.exception("cannot open the cache %s read-only", self.path)
                raise
        return self._conn

    def _rows(self, sql: str, args: list[Any] | tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        db = self._db()
        if db is None:
            return []
        try:
            return db.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            # A cache the engine has not migrated yet has no tables: that is "empty", not an
            # error. Anything else is a real fault and goes up to the caller.
            if "no such table" in str(exc):
                return []
            raise
        except sqlite3.DatabaseError as exc:
            # A damaged file: the engine moves it aside, rebuilds it and tells the agent
            # (sync.recovery); until then the window shows nothing rather than crashing.
            if not is_corrupt(exc):
                raise
            if not self.damaged:
                log.error("the cache %s is damaged (%s); waiting for the rebuild", self.path, exc)
            self.damaged = True
            return []

    def close(self) -> None:
        """Drop the connection; the next read opens the file at `path` again (after the
        engine replaced a damaged cache, the old connection still reads the moved file)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.damaged = False

    # -- inbox ---------------------------------------------------------------------------

    def my_agent_name(self) -> str:
        """The logged-in agent's display name (the engine keeps it in sync_state 'agent')."""
        rows = self._rows("SELECT value FROM sync_state WHERE key = 'agent'")
        if rows and rows[0][0]:
            try:
                return str(json.loads(rows[0][0]).get("name") or "")
            except (ValueError, AttributeError):
                return ""
        return ""

    def my_agent_id(self) -> str | None:
        """The logged-in agent's id, as the engine recorded it (agent_state or sync_state)."""
        for sql in (
            "SELECT value FROM sync_state WHERE key IN ('agent_id', 'agent') LIMIT 1",
            "SELECT agent_id FROM agent_state LIMIT 1",
        ):
            rows = self._rows(sql)
            if rows and rows[0][0]:
                value = str(rows[0][0])
                if value.startswith("{"):
                    try:
                        return str(json.loads(value).get("id") or "") or None
                    except ValueError:
                        return None
                return value
        return None

    def _where(self, flt: InboxFilter, agent_id: str | None) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if flt.channel:
            clauses.append("c.channel = ?")
            args.append(flt.channel)
        # `+c.status` keeps SQLite on the last_message_at index: it walks rows in display
        # order and stops after one page (0.4 ms on 100k conversations) instead of collecting
        # every matching status and sorting them (30-70 ms, measured).
        if flt.scope == "mine":
            clauses.append("c.assigned_agent = ? AND +c.status IN ('assigned', 'wrap_up')")
            args.append(agent_id or "")
        elif flt.scope == "queue":
            clauses.append("+c.status IN ('queued', 'offered')")
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return where, args

    _ROW_SQL = (
        "SELECT c.id, c.channel, COALESCE(cu.name, '') AS name, "
        "COALESCE(c.last_message_preview, '') AS preview, COALESCE(c.subject, '') AS subject, "
        "COALESCE(c.status, '') AS status, COALESCE(c.queue, '') AS queue, "
        "c.assigned_agent, c.last_inbound_at, c.last_message_at, COALESCE(c.unread, 0) "
        "FROM conversations c LEFT JOIN customers cu ON cu.id = c.customer_id "
    )

    def inbox_page(
        self,
        flt: InboxFilter,
        offset: int,
        limit: int = PAGE_SIZE,
        agent_id: str | None = None,
        after: InboxRow | None = None,
    ) -> list[InboxRow]:
        """Rows `offset .. offset+limit` of the inbox, newest activity first (the search
        results when `flt.text` is set).

        `after` (the last row already shown, at `offset - 1`) makes it a keyset page: the
        index walk starts at that row instead of counting `offset` rows from the top, so the
        page at row 50,000 costs what the first one does (OFFSET grew to tens of ms there).
        """
        if flt.text:
            return self.search(flt, limit, agent_id) if offset == 0 else []
        where, args = self._where(flt, agent_id)
        order = " ORDER BY c.last_message_at DESC, c.id DESC LIMIT ? OFFSET ?"
        if after is None or after.last_message_at is None:
            return self._inbox_rows(self._ROW_SQL + where + order, [*args, limit, offset])
        # `<= ?` on its own is a range the index can seek to; the OR then breaks ties by id
        # as ORDER BY does. Rows without a time sort after all others in DESC order: the
        # page that runs out of timed rows continues with them.
        key = "c.last_message_at <= ? AND (c.last_message_at < ? OR c.id < ?)"
        timed = self._inbox_rows(
            self._ROW_SQL + (f"{where} AND {key}" if where else f"WHERE {key}") + order,
            [*args, after.last_message_at, after.last_message_at, after.id, limit, 0],
        )
        if len(timed) == limit:
            return timed
        untimed = "c.last_message_at IS NULL"
        return timed + self._inbox_rows(
            self._ROW_SQL + (f"{where} AND {untimed}" if where else f"WHERE {untimed}") + order,
            [*args, limit - len(timed), 0],
        )

    def inbox_rows(
        self, flt: InboxFilter, ids: set[str] | frozenset[str], agent_id: str | None = None
    ) -> list[InboxRow]:
        """The rows of conversations `ids` that `flt` still shows (the others are gone from
        this list), in no particular order.

        Why: a live update touches a few conversations (`InboxModel` asks for at most
        `MAX_ROW_UPDATES`, far under SQLite's bound-variable limit); the inbox looks up just
        those by primary key, in one query, instead of re-reading every loaded row.
        """
        where, args = self._where(flt, agent_id)
        key = f"c.id IN ({', '.join('?' for _ in ids)})"
        return self._inbox_rows(
            self._ROW_SQL + (f"{where} AND {key}" if where else f"WHERE {key}"), [*args, *ids]
        )

    def search(
        self, flt: InboxFilter, limit: int = PAGE_SIZE, agent_id: str | None = None
    ) -> list[InboxRow]:
        """Conversations whose messages or customer match `flt.text` (FTS5), within the
        channel/scope filter, newest activity first. Can take tens of milliseconds on a
        million messages: the UI runs it off its thread (`client.ops.Op`)."""
        query = fts_query(flt.text)
        if not query:
            return []
        # A prefix query on a common word merges every term it starts and costs 20-60 ms
        # over a million messages; the exact word costs about 1 ms. When the exact word
        # alone fills the hits, it is the answer (measured in bench/bench_cache.py).
        exact = fts_query(flt.text, prefix=False)
        if (
            len(
                self._rows(
                    f"SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? "
                    f"ORDER BY rowid DESC LIMIT {SEARCH_HITS}",
                    [exact],
                )
            )
            >= SEARCH_HITS
        ):
            query = exact
        where, args = self._where(flt, agent_id)
        hits = (
            "c.id IN (SELECT m.conversation_id FROM messages m WHERE m.rowid IN "
            "(SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? "
            f"ORDER BY rowid DESC LIMIT {SEARCH_HITS}) "
            "UNION SELECT c2.id FROM conversations c2 WHERE c2.customer_id IN "
            "(SELECT cu2.id FROM customers cu2 WHERE cu2.rowid IN "
            f"(SELECT rowid FROM customers_fts WHERE customers_fts MATCH ? LIMIT {SEARCH_HITS})))"
        )
        where = f"{where} AND {hits}" if where else f"WHERE {hits}"
        sql = self._ROW_SQL + f"{where} ORDER BY c.last_message_at DESC, c.id DESC LIMIT ?"
        return self._inbox_rows(sql, [*args, query, query, limit])

    def _inbox_rows(self, sql: str, args: list[Any]) -> list[InboxRow]:
        return [
            InboxRow(
                id=r[0],
                channel=r[1] or "",
                customer_name=r[2],
                preview=r[3],
                subject=r[4],
                status=r[5],
                queue=r[6],
                assigned_agent=r[7],
                last_inbound_at=r[8],
                last_message_at=r[9],
                unread=int(r[10] or 0),
            )
            for r in self._rows(sql, args)
        ]

    # -- one conversation ------------------------------------------------------------------

    def header(self, conversation_id: str) -> ConversationHeader | None:
        rows = self._rows(
            "SELECT c.id, c.channel, c.customer_id, COALESCE(cu.name, ''), "
            "COALESCE(c.subject, ''), COALESCE(c.status, ''), COALESCE(c.queue, ''), "
            "c.assigned_agent FROM conversations c "
            "LEFT JOIN customers cu ON cu.id = c.customer_id WHERE c.id = ?",
            [conversation_id],
        )
        if not rows:
            return None
        r = rows[0]
        idents: tuple[Identity, ...] = ()
        if r[2]:
            idents = tuple(
                Identity(kind=i[0], value=i[1])
                for i in self._rows(
                    "SELECT kind, value FROM identities WHERE customer_id = ? "
                    "ORDER BY kind, value LIMIT 20",
                    [r[2]],
                )
            )
        return ConversationHeader(
            id=r[0],
            channel=r[1] or "",
            customer_id=r[2],
            customer_name=r[3],
            identities=idents,
            subject=r[4],
            status=r[5],
            queue=r[6],
            assigned_agent=r[7],
        )

    def thread(self, conversation_id: str, limit: int = THREAD_LIMIT) -> list[ThreadMessage]:
        """The last `limit` messages: server order by seq, unacknowledged ones last by time."""
        rows = self._rows(
            "SELECT * FROM (SELECT id, seq, direction, COALESCE(author, ''), "
            "COALESCE(body, ''), created_at, COALESCE(status, ''), COALESCE(error, ''), "
            "attachments FROM messages WHERE conversation_id = ? "
            "ORDER BY seq IS NULL DESC, seq DESC, created_at DESC LIMIT ?) "
            "ORDER BY seq IS NULL, seq, created_at",
            [conversation_id, limit],
        )
        out = []
        for r in rows:
            names: tuple[str, ...] = ()
            if r[8]:
                try:
                    names = tuple(str(a.get("name", "file")) for a in json.loads(r[8]))
                except (ValueError, AttributeError):
                    names = ("attachment",)
            out.append(
                ThreadMessage(
                    id=r[0],
                    seq=r[1],
                    direction=r[2] or "in",
                    author=r[3],
                    body=r[4],
                    created_at=r[5],
                    status=r[6],
                    error=r[7],
                    attachments=names,
                )
            )
        return out

    # -- offers, state, outbox -------------------------------------------------------------

    def offers(self) -> list[Offer]:
        return [
            Offer(
                id=r[0],
                conversation_id=r[1] or "",
                channel=r[2] or "",
                queue=r[3] or "",
                customer_name=r[4] or "",
                preview=r[5] or "",
                expires_at=r[6],
                received_at=r[7],
            )
            for r in self._rows(
                "SELECT id, conversation_id, channel, queue, customer_name, preview, "
                "expires_at, received_at FROM offers ORDER BY expires_at LIMIT 20"
            )
        ]

    def agent_state(self) -> AgentState | None:
        rows = self._rows("SELECT agent_id, state, reason, since FROM agent_state LIMIT 1")
        if not rows:
            return None
        r = rows[0]
        return AgentState(agent_id=r[0], state=r[1] or "offline", reason=r[2], since=r[3])

    def outbox_count(self) -> int:
        rows = self._rows("SELECT COUNT(*) FROM outbox")
        return int(rows[0][0]) if rows else 0

    def message_status(self, message_id: str) -> str | None:
        rows = self._rows("SELECT status FROM messages WHERE id = ?", [message_id])
        return str(rows[0][0]) if rows and rows[0][0] is not None else None

    def draft(self, conversation_id: str) -> str:
        """The composer text the agent left unsent in this conversation ('' when none)."""
        rows = self._rows("SELECT body FROM drafts WHERE conversation_id = ?", [conversation_id])
        return str(rows[0][0]) if rows and rows[0][0] else ""
