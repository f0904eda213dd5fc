"""The router database's schema as named, recorded migrations.

Each migration runs inside one `BEGIN IMMEDIATE` transaction together with its row in
`migrations`, so a crash mid-migration leaves the previous version intact and a restart on the
same file simply continues (event seqs, messages and stored acks all live here).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

log = logging.getLogger(__name__)

_M001 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    queues TEXT NOT NULL,             -- JSON list
    capacity TEXT NOT NULL,           -- JSON object channel -> int
    state TEXT NOT NULL DEFAULT 'offline',
    state_reason TEXT,
    state_since REAL NOT NULL,
    idle_since REAL NOT NULL,         -- longest idle first: last became available / assigned
    last_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE tokens (
    token_hash TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents(id),
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE customers (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE identities (
    kind TEXT NOT NULL,               -- email | chat | phone
    value TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    PRIMARY KEY (kind, value)
);
CREATE INDEX idx_identities_customer ON identities(customer_id);
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    queue TEXT NOT NULL,
    status TEXT NOT NULL,             -- queued | offered | assigned | wrap_up | closed
    assigned_agent TEXT REFERENCES agents(id),
    subject TEXT,
    disposition TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    queued_since REAL,
    last_inbound_at REAL,
    last_msg_seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX idx_conversations_queue_status ON conversations(queue, status);
CREATE INDEX idx_conversations_agent ON conversations(assigned_agent, status);
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    seq INTEGER NOT NULL,
    direction TEXT NOT NULL,          -- in | out | note
    author TEXT NOT NULL,
    body TEXT NOT NULL,
    html TEXT,
    created_at REAL NOT NULL,
    UNIQUE (conversation_id, seq)
);
CREATE TABLE offers (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    agent_id TEXT NOT NULL REFERENCES agents(id),
    status TEXT NOT NULL,             -- pending | accepted | declined | expired | canceled
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    ended_at REAL
);
CREATE INDEX idx_offers_status ON offers(status, expires_at);
CREATE INDEX idx_offers_conversation ON offers(conversation_id, agent_id);
-- At most one pending offer per conversation: the database itself refuses a double offer.
CREATE UNIQUE INDEX idx_offers_one_pending ON offers(conversation_id) WHERE status = 'pending';
CREATE TABLE events (
    agent_id TEXT NOT NULL REFERENCES agents(id),
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,              -- JSON: {"kind": ..., ...}
    created_at REAL NOT NULL,
    PRIMARY KEY (agent_id, seq)
);
CREATE TABLE acks (
    agent_id TEXT NOT NULL REFERENCES agents(id),
    command_id TEXT NOT NULL,
    name TEXT NOT NULL,
    ack TEXT NOT NULL,                -- JSON ack frame, returned again for a repeated id
    created_at REAL NOT NULL,
    PRIMARY KEY (agent_id, command_id)
);
CREATE TABLE calls (
    call_id TEXT NOT NULL,
    agent_id TEXT NOT NULL REFERENCES agents(id),
    direction TEXT NOT NULL,
    remote TEXT NOT NULL,
    state TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (agent_id, call_id)
);
"""

_M002 = """
ALTER TABLE agents ADD COLUMN skills TEXT NOT NULL DEFAULT '{}';
ALTER TABLE agents ADD COLUMN supervises TEXT NOT NULL DEFAULT '[]';
ALTER TABLE agents ADD COLUMN wrap_until REAL;
ALTER TABLE agents ADD COLUMN last_offered_at REAL NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN queue_entered_at REAL;
ALTER TABLE conversations ADD COLUMN direction TEXT NOT NULL DEFAULT 'inbound';
UPDATE conversations SET queue_entered_at = queued_since;
UPDATE offers SET status = 'rejected' WHERE status = 'declined';
UPDATE offers SET status = 'timeout' WHERE status = 'expired';
CREATE INDEX idx_conversations_wrap ON conversations(status, assigned_agent);
-- The router-wide append-only log of task, reservation and worker changes: the metrics
-- service computes every figure from it (docs/metrics.md).
CREATE TABLE facts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    task_id TEXT,
    agent_id TEXT,
    queue TEXT,
    channel TEXT,
    customer_id TEXT,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX idx_facts_at ON facts(at);
CREATE TABLE callbacks (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    agent_id TEXT NOT NULL REFERENCES agents(id),
    queue TEXT NOT NULL,
    due_at REAL NOT NULL,
    note TEXT,
    status TEXT NOT NULL,             -- scheduled | queued
    task_id TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX idx_callbacks_due ON callbacks(status, due_at);
"""

_M003 = [
    # One row per event (its JSON and its audience {agent id: seq}) instead of one per audience
    # member; the per-agent streams become a compact index, written in batches
    # (router/storage_log.py says why). The old table's rows keep their seqs and order.
    """CREATE TABLE event_bodies (
        id INTEGER PRIMARY KEY,       -- global order; never reused (the newest is kept)
        audience TEXT NOT NULL,       -- JSON {agent id: seq in that agent's stream}
        event TEXT NOT NULL,          -- JSON: {"kind": ..., ...}
        created_at REAL NOT NULL
    )""",
    """CREATE TABLE event_streams (
        agent_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        event_id INTEGER NOT NULL,    -- event_bodies.id
        PRIMARY KEY (agent_id, seq)
    ) WITHOUT ROWID""",
    "INSERT INTO event_bodies (id, audience, event, created_at) "
    "SELECT rowid, json_object(agent_id, seq), event, created_at FROM events",
    "INSERT INTO event_streams (agent_id, seq, event_id) SELECT agent_id, seq, rowid FROM events",
    "DROP TABLE events",
    "INSERT INTO meta (key, value) "
    "SELECT 'events_indexed', COALESCE(MAX(id), 0) FROM event_bodies WHERE true "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    # The streams as they read (indexed entries, then those only in the bodies' audiences),
    # under the old table's name, for operators and tests that query the file directly.
    """CREATE VIEW events (agent_id, seq, event, created_at, event_id) AS
        SELECT s.agent_id, s.seq, b.event, b.created_at, b.id
        FROM event_streams s JOIN event_bodies b ON b.id = s.event_id
        UNION ALL
        SELECT j.key, j.value, b.event, b.created_at, b.id
        FROM event_bodies b, json_each(b.audience) j
        WHERE b.id > COALESCE((SELECT CAST(value AS INTEGER) FROM meta
                               WHERE key = 'events_indexed'), 0)
        AND NOT EXISTS (SELECT 1 FROM event_streams s
                        WHERE s.agent_id = j.key AND s.seq = j.value)""",
    """CREATE TRIGGER events_delete INSTEAD OF DELETE ON events BEGIN
        DELETE FROM event_streams WHERE agent_id = OLD.agent_id AND seq = OLD.seq;
        UPDATE event_bodies SET audience = json_remove(audience, '$."' || OLD.agent_id || '"')
        WHERE id = OLD.event_id;
    END""",
]

Migration = Callable[[sqlite3.Connection], None]


def _script(sql: str) -> Migration:
    def run(conn: sqlite3.Connection) -> None:
        for statement in sql.split(";"):
            if statement.strip():
                conn.execute(statement)

    return run


def _statements(statements: list[str]) -> Migration:
    """Statements run one by one (a trigger's body has semicolons of its own)."""

    def run(conn: sqlite3.Connection) -> None:
        for statement in statements:
            conn.execute(statement)

    return run


MIGRATIONS: list[tuple[str, Migration]] = [
    ("001_initial", _script(_M001)),
    ("002_routing_model", _script(_M002)),
    ("003_event_bodies", _statements(_M003)),
]


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the database to the newest schema, one transaction per migration.

    Raises:
        sqlite3.Error: a migration failed; it was rolled back and the error propagates.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    for name, run in MIGRATIONS:
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            run(conn)
            conn.execute(
                "INSERT INTO migrations (name, applied_at) VALUES (?, datetime('now'))", (name,)
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        log.info("router database migrated: %s", name)
