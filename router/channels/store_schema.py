"""The channels' own tables: their DDL and the named migrations that create them.

Why apart from `router.channels.store`: the schema changes rarely and is read as a whole,
while the store's queries grow with every channel; keeping them in one module pushed it past
our ~400-line guideline. The tables are created by their own named migrations (recorded in the
router's `migrations` table with a `channels_` prefix) when a channel is switched on, so a
router without channels has no trace of them and the ACD's schema (router/schema.py) stays its
owner's.
"""

from __future__ import annotations

import logging

from router.storage import Storage

log = logging.getLogger(__name__)

_C001 = """
CREATE TABLE IF NOT EXISTS channel_threads (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations(id),
    channel TEXT NOT NULL,
    address TEXT NOT NULL,            -- email address, E.164 number or chat visitor id
    subject TEXT
);
CREATE TABLE IF NOT EXISTS email_ids (
    header_id TEXT PRIMARY KEY,       -- Message-ID without the angle brackets
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    message_id TEXT,                  -- our messages.id
    direction TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_email_ids_conversation ON email_ids(conversation_id, created_at);
CREATE TABLE IF NOT EXISTS channel_deliveries (
    message_id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL,             -- sending | sent | queued | delivered | undelivered | failed
    provider_id TEXT,
    error TEXT,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_deliveries_provider ON channel_deliveries(provider_id);
CREATE TABLE IF NOT EXISTS inbound_seen (
    channel TEXT NOT NULL,
    external_id TEXT NOT NULL,
    conversation_id TEXT,
    at REAL NOT NULL,
    PRIMARY KEY (channel, external_id)
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    received_at REAL NOT NULL,
    reason TEXT NOT NULL,             -- too_large | bad_mime | bad_webhook | ...
    detail TEXT NOT NULL,
    source TEXT,                      -- sender or provider id, when known
    size INTEGER NOT NULL,
    raw BLOB                          -- the input (headers only when too large)
);
CREATE TABLE IF NOT EXISTS attachments (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_attachments_conversation ON attachments(conversation_id);
CREATE TABLE IF NOT EXISTS chat_visitors (
    visitor_id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS callback_requests (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    phone TEXT NOT NULL,
    note TEXT,
    status TEXT NOT NULL,             -- requested
    created_at REAL NOT NULL
);
"""

_C002 = """
CREATE TABLE IF NOT EXISTS surveys (
    conversation_id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,            -- E.164 number or chat visitor id asked
    asked_at REAL NOT NULL,
    score INTEGER,                    -- 1-5 once answered
    answered_at REAL
);
CREATE INDEX IF NOT EXISTS idx_surveys_address ON surveys(channel, address, asked_at);
CREATE TABLE IF NOT EXISTS sms_opt_outs (number TEXT PRIMARY KEY, at REAL NOT NULL);
"""

MIGRATIONS = [("channels_001", _C001), ("channels_002", _C002)]


def migrate(storage: Storage) -> None:
    """Create the channel tables once per database (idempotent, one transaction each).

    Raises:
        sqlite3.Error: the migration failed and was rolled back.
    """
    conn = storage.conn
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        with storage.transaction():
            for statement in sql.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO migrations (name, applied_at) VALUES (?, datetime('now'))", (name,)
            )
        log.info("router database migrated: %s", name)
