"""The local SQLite cache: schema, migrations and connections.

The sync engine owns the only write connection (`open_store`); the UI reads through its own
read-only connection (`open_readonly`). Keeping one writer avoids `database is locked`
surprises and makes every write a short transaction the engine controls.

Schema changes are named migrations recorded in `migrations`; each runs in one transaction, so
a crash mid-migration leaves the previous version intact.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: the UI's read side must not pay ~100 ms for it
    import sqlite_utils

log = logging.getLogger(__name__)

MAX_PAGES_ENV = "SWITCHBOARD_CACHE_MAX_PAGES"
"""Caps the cache file at this many pages (4 KiB each): past it, writes fail as on a full
disk (SQLITE_FULL) and the app says so."""

Migration = Callable[["sqlite_utils.Database"], None]


def _create(db: sqlite_utils.Database, name: str, columns: dict, **kwargs: object) -> None:
    """CREATE TABLE through sqlite-utils' SQL builder, run in the caller's transaction.

    `Table.create()` would commit on its own (`with conn:`), breaking the one-transaction-per-
    migration rule, so we only borrow its SQL.
    """
    db.execute(db.create_table_sql(name, columns, **kwargs))  # type: ignore[arg-type]


def _index(db: sqlite_utils.Database, table: str, cols: list[str], unique: bool = False) -> None:
    name = f"idx_{table}_{'_'.join(cols)}"
    kind = "UNIQUE INDEX" if unique else "INDEX"
    db.execute(f"CREATE {kind} [{name}] ON [{table}] ({', '.join(f'[{c}]' for c in cols)})")


def _fts(db: sqlite_utils.Database, table: str, columns: list[str]) -> None:
    """FTS5 index kept current by triggers, named as sqlite-utils names it (`{table}_fts`),
    so `Table.search()` works on it."""
    cols = ", ".join(f"[{c}]" for c in columns)
    new = ", ".join(f"new.[{c}]" for c in columns)
    old = ", ".join(f"old.[{c}]" for c in columns)
    fts = f"[{table}_fts]"
    for sql in (
        f"CREATE VIRTUAL TABLE {fts} USING FTS5 ({cols}, tokenize='unicode61', content=[{table}])",
        f"CREATE TRIGGER [{table}_ai] AFTER INSERT ON [{table}] BEGIN "
        f"INSERT INTO {fts} (rowid, {cols}) VALUES (new.rowid, {new}); END",
        f"CREATE TRIGGER [{table}_ad] AFTER DELETE ON [{table}] BEGIN "
        f"INSERT INTO {fts} ({fts}, rowid, {cols}) VALUES('delete', old.rowid, {old}); END",
        f"CREATE TRIGGER [{table}_au] AFTER UPDATE ON [{table}] BEGIN "
        f"INSERT INTO {fts} ({fts}, rowid, {cols}) VALUES('delete', old.rowid, {old}); "
        f"INSERT INTO {fts} (rowid, {cols}) VALUES (new.rowid, {new}); END",
    ):
        db.execute(sql)


def _m001_initial(db: sqlite_utils.Database) -> None:
    _create(
        db,
        "customers",
        {"id": str, "name": str, "created_at": float},
        pk="id",
        not_null={"name"},
    )
    _create(
        db,
        "identities",
        {"kind": str, "value": str, "customer_id": str},
        pk=("kind", "value"),
        foreign_keys=[("customer_id", "customers", "id")],
    )
    _index(db, "identities", ["customer_id"])
    _create(
        db,
        "conversations",
        {
            "id": str,
            "channel": str,  # email | chat | sms | voice
            "customer_id": str,
            "queue": str,
            "status": str,  # queued | offered | assigned | wrap_up | closed
            "assigned_agent": str,
            "subject": str,
            "created_at": float,
            "updated_at": float,
            "last_inbound_at": float,  # when the customer last wrote: the waiting time
            "last_message_at": float,
            "last_message_preview": str,
            "sla_due": float,
            "unread": int,
        },
        pk="id",
        foreign_keys=[("customer_id", "customers", "id")],
        defaults={"unread": 0},
    )
    _index(db, "conversations", ["last_message_at"])
    _index(db, "conversations", ["channel", "last_message_at"])
    _index(db, "conversations", ["status", "last_message_at"])
    _index(db, "conversations", ["customer_id"])
    _create(
        db,
        "messages",
        {
            "id": str,  # UUID; the client makes it for the agent's own messages
            "conversation_id": str,
            "seq": int,  # server order within the conversation; NULL until acknowledged
            "direction": str,  # in | out | note
            "author": str,
            "body": str,
            "html": str,  # sanitized HTML (email), or NULL
            "attachments": str,  # JSON list of {name, size, type}
            "created_at": float,  # router time, or local time until acknowledged
            "status": str,  # sending | sent | failed
            "error": str,  # the router's reason when status is failed
        },
        pk="id",
        foreign_keys=[("conversation_id", "conversations", "id")],
    )
    _index(db, "messages", ["conversation_id", "seq"])
    _create(
        db,
        "offers",
        {
            "id": str,
            "conversation_id": str,
            "channel": str,
            "queue": str,
            "customer_name": str,
            "preview": str,
            "expires_at": float,
            "received_at": float,
        },
        pk="id",
    )
    _create(
        db,
        "agent_state",
        {"agent_id": str, "state": str, "reason": str, "since": float},
        pk="agent_id",
    )
    _create(
        db,
        "outbox",
        {
            "pos": int,  # send order
            "id": str,  # command UUID
            "name": str,
            "args": str,  # JSON
            "conversation_id": str,
            "created_at": float,
            "attempts": int,
        },
        pk="pos",
        not_null={"id", "name", "args"},
        defaults={"attempts": 0},
    )
    _index(db, "outbox", ["id"], unique=True)
    _create(db, "sync_state", {"key": str, "value": str}, pk="key")
    _fts(db, "messages", ["body"])
    _fts(db, "customers", ["name"])


def _m002_metrics(db: sqlite_utils.Database) -> None:
    _create(db, "metrics", {"key": str, "value": str, "updated_at": float}, pk="key")


def _m003_snapshot_seen(db: sqlite_utils.Database) -> None:
    """Ids the pages of an unfinished snapshot have shown, so the last page can forget the
    rest. On disk rather than in memory: each page commits on its own, and a pruning decision
    must never rest on pages a crash has lost."""
    _create(db, "snapshot_seen", {"kind": str, "id": str}, pk=("kind", "id"))


def _m004_drafts(db: sqlite_utils.Database) -> None:
    """The composer's unsent text per conversation, so a crash or a kill never loses what the
    agent was typing (the UI saves it through the engine, debounced)."""
    _create(
        db,
        "drafts",
        {"conversation_id": str, "body": str, "updated_at": float},
        pk="conversation_id",
        not_null={"body"},
    )


FTS_BULK_KEY = "fts_bulk"


def _m005_fts_bulk(db: sqlite_utils.Database) -> None:
    """Let a snapshot page index its messages in one statement instead of a trigger per row
    (twice the snapshot throughput, measured in bench/bench_sync.py). While `sync_state`
    holds `fts_bulk` (only ever inside one transaction, see `sync.snapshot_apply`), the insert
    trigger stands aside and the writer indexes the new rows itself."""
    db.execute("DROP TRIGGER [messages_ai]")
    db.execute(
        "CREATE TRIGGER [messages_ai] AFTER INSERT ON [messages] WHEN NOT EXISTS "
        f"(SELECT 1 FROM sync_state WHERE key = '{FTS_BULK_KEY}') BEGIN "
        "INSERT INTO [messages_fts] (rowid, [body]) VALUES (new.rowid, new.[body]); END"
    )


def _m006_mine_index(db: sqlite_utils.Database) -> None:
    """ "Mine" pages walk the agent's own conversations in display order (keyset paging in
    client.store_reader) instead of every conversation: 2.7 ms instead of 5.7 ms a page,
    and the end of the list is found without a full scan (100k conversations)."""
    _index(db, "conversations", ["assigned_agent", "last_message_at"])


MIGRATIONS: list[tuple[str, Migration]] = [
    ("001_initial", _m001_initial),
    ("002_metrics", _m002_metrics),
    ("003_snapshot_seen", _m003_snapshot_seen),
    ("004_drafts", _m004_drafts),
    ("005_fts_bulk", _m005_fts_bulk),
    ("006_mine_index", _m006_mine_index),
]

SCHEMA_VERSION = len(MIGRATIONS)


def _connect(path: Path | str) -> sqlite3.Connection:
    # isolation_level=None: we open transactions ourselves (BEGIN IMMEDIATE in `atomic`).
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    # NORMAL is durable across application crashes in WAL mode; only an OS crash can lose
    # the last transactions, and those are still in the router or the outbox resend.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    cap = os.environ.get(MAX_PAGES_ENV)
    if cap:  # a size cap for the cache (IT's choice, and the full-disk test without a mount)
        conn.execute(f"PRAGMA max_page_count={int(cap)}")
    return conn


def open_store(path: Path | str) -> sqlite_utils.Database:
    """Open (creating and migrating as needed) the cache's write connection.

    Args:
        path: the cache file; its folder is created if missing.

    Raises:
        sqlite3.DatabaseError: the file is not a usable SQLite database.
    """
    import sqlite_utils

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite_utils.Database(_connect(path))
    migrate(db)
    return db


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the migrations not yet recorded, each in its own transaction; return their names."""
    db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    done = {row[0] for row in db.execute("SELECT name FROM migrations").fetchall()}
    applied = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        with atomic(db):
            step(db)
            db.execute(
                "INSERT INTO migrations (name, applied_at) VALUES (?, julianday('now'))",
                [name],
            )
        log.info("cache migration applied: %s", name)
        applied.append(name)
    return applied


def open_readonly(path: Path | str) -> sqlite3.Connection:
    """A read-only connection for the UI thread: it can never take the write lock."""
    uri = f"file:{Path(path).resolve()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA query_only=ON")
    return conn


class atomic:  # noqa: N801 - used like a function: `with atomic(db):`
    """`BEGIN IMMEDIATE ... COMMIT`, or ROLLBACK on any exception (re-raised)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.conn = db.conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error:
                # A COMMIT that failed (disk full while writing the WAL) leaves the transaction
                # open; end it so the connection stays usable, then report the failure.
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        elif self.conn.in_transaction:
            # SQLite has already rolled back on some errors (SQLITE_FULL, SQLITE_NOMEM): a
            # second ROLLBACK would raise and hide the real error.
            self.conn.execute("ROLLBACK")


def get_state(db: sqlite_utils.Database, key: str, default: str | None = None) -> str | None:
    row = db.execute("SELECT value FROM sync_state WHERE key = ?", [key]).fetchone()
    return row[0] if row else default


def set_state(db: sqlite_utils.Database, key: str, value: str) -> None:
    """Upsert one sync_state value (call inside the caller's transaction)."""
    db.execute(
        "INSERT INTO sync_state (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )
