"""The cache on real SQLite files: migrations, applying events and snapshots, FTS, crash safety."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from sqlite_utils.db import Table

from sync import apply, snapshot_apply
from sync.protocol import Snapshot
from sync.store import MIGRATIONS, SCHEMA_VERSION, atomic, open_readonly, open_store
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    store = open_store(tmp_path / "cache.db")
    yield store
    store.conn.close()


def conversation(cid: str = "c-1", **extra: Any) -> dict[str, Any]:
    return {
        "id": cid,
        "channel": "chat",
        "queue": "support",
        "status": "assigned",
        "assigned_agent": "a-ana",
        "subject": "Order late",
        "created_at": 100.0,
        "updated_at": 100.0,
        "last_inbound_at": None,
        "customer": {
            "id": "u-1",
            "name": "Bea Costa",
            "identities": [{"kind": "email", "value": "bea@example.com"}],
        },
        **extra,
    }


def message(
    mid: str,
    seq: int,
    direction: str = "in",
    body: str = "Where is my order?",
    cid: str = "c-1",
    at: float = 110.0,
) -> dict[str, Any]:
    return {
        "id": mid,
        "conversation_id": cid,
        "seq": seq,
        "direction": direction,
        "author": "Bea",
        "body": body,
        "html": None,
        "created_at": at,
    }


def ev(db: sqlite_utils.Database, seq: int, event: dict[str, Any]) -> apply.Changes:
    return apply.apply_event(db, seq, event, agent_id="a-ana", now=1000.0)


def test_migrations_from_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cache.db"
    db = open_store(path)
    names = [r[0] for r in db.execute("SELECT name FROM migrations ORDER BY name")]
    assert names == [name for name, _ in MIGRATIONS] and len(names) == SCHEMA_VERSION
    assert {
        "customers",
        "conversations",
        "messages",
        "outbox",
        "sync_state",
        "metrics",
        "snapshot_seen",
        "messages_fts",
    } <= set(db.table_names())
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.conn.close()
    again = open_store(path)  # reopening applies nothing
    assert again.execute("SELECT COUNT(*) FROM migrations").fetchone()[0] == SCHEMA_VERSION
    again.conn.close()


def test_events_fill_the_list_fields_and_the_cursor(db: sqlite_utils.Database) -> None:
    ch = ev(db, 1, {"kind": "conversation", "conversation": conversation()})
    assert ch.conversation_ids == {"c-1"} and "customers" in ch.tables
    ev(db, 2, {"kind": "message", "message": message("m-1", 1, at=110.0)})
    ev(
        db,
        3,
        {"kind": "message", "message": message("m-2", 2, "out", "On its   way\nsoon", at=120.0)},
    )
    ev(db, 4, {"kind": "message", "message": message("m-3", 3, "note", "internal", at=130.0)})
    row = db.execute(
        "SELECT last_message_at, last_message_preview, last_inbound_at, unread, "
        "customer_id FROM conversations WHERE id = 'c-1'"
    ).fetchone()
    assert row == (120.0, "On its way soon", 110.0, 1, "u-1")
    assert apply.get_cursor(db) == 4
    assert db.execute("SELECT value, customer_id FROM identities").fetchall() == [
        ("bea@example.com", "u-1")
    ]
    # A later conversation event (status change) keeps the derived fields.
    ev(db, 5, {"kind": "conversation", "conversation": conversation(status="wrap_up")})
    assert db.execute(
        "SELECT status, last_message_preview, unread FROM conversations"
    ).fetchone() == ("wrap_up", "On its way soon", 1)
    apply.mark_read(db, "c-1")
    assert db.execute("SELECT unread FROM conversations").fetchone()[0] == 0


def test_replayed_events_change_nothing_and_gaps_write_nothing(db: sqlite_utils.Database) -> None:
    ev(db, 1, {"kind": "conversation", "conversation": conversation()})
    ev(db, 2, {"kind": "message", "message": message("m-1", 1)})
    assert ev(db, 2, {"kind": "message", "message": message("m-9", 9)}).tables == set()
    with pytest.raises(apply.CursorMismatchError):
        ev(db, 4, {"kind": "message", "message": message("m-8", 8)})
    assert db.execute("SELECT id FROM messages").fetchall() == [("m-1",)]
    assert db.execute("SELECT unread FROM conversations").fetchone()[0] == 1
    assert apply.get_cursor(db) == 2


def test_offers_agent_state_metrics_and_unknown_kinds(db: sqlite_utils.Database) -> None:
    offer = {
        "id": "o-1",
        "conversation_id": "c-1",
        "channel": "chat",
        "queue": "support",
        "customer_name": "Bea",
        "preview": "Hi",
        "expires_at": 1030.0,
    }
    ch = ev(db, 1, {"kind": "offer", "offer": offer})
    assert [o["id"] for o in ch.offers_added] == ["o-1"]
    assert db.execute("SELECT received_at FROM offers").fetchone()[0] == 1000.0
    ch = ev(db, 2, {"kind": "offer_revoked", "offer_id": "o-1", "reason": "timeout"})
    assert ch.offers_revoked == [("o-1", "timeout")]
    assert db.execute("SELECT COUNT(*) FROM offers").fetchone()[0] == 0
    ev(db, 3, {"kind": "agent_state", "state": "away", "reason": "lunch", "since": 5.0})
    assert db.execute("SELECT * FROM agent_state").fetchall() == [("a-ana", "away", "lunch", 5.0)]
    ev(db, 4, {"kind": "metrics", "metrics": {"handled": 3, "aht": 181.5}})
    assert dict(db.execute("SELECT key, value FROM metrics").fetchall()) == {
        "handled": "3",
        "aht": "181.5",
    }
    assert ev(db, 5, {"kind": "weather"}).tables == set()
    assert apply.get_cursor(db) == 5


def test_message_for_an_unknown_conversation_gets_a_placeholder(db: sqlite_utils.Database) -> None:
    ev(db, 1, {"kind": "message", "message": message("m-1", 1, cid="c-new")})
    ev(db, 2, {"kind": "conversation", "conversation": conversation("c-new")})
    assert db.execute(
        "SELECT channel, unread, last_message_preview FROM conversations"
    ).fetchone() == ("chat", 1, "Where is my order?")


def test_fts_finds_bodies_and_customer_names(db: sqlite_utils.Database) -> None:
    ev(db, 1, {"kind": "conversation", "conversation": conversation()})
    ev(db, 2, {"kind": "message", "message": message("m-1", 1, body="The parcel never came")})
    ev(db, 3, {"kind": "message", "message": message("m-2", 2, body="Refund please")})
    hits = [r["id"] for r in Table(db, "messages").search("parcel")]
    assert hits == ["m-1"]
    assert [r["name"] for r in Table(db, "customers").search("costa")] == ["Bea Costa"]
    # The router's copy replaces the text: the index follows.
    ev(db, 4, {"kind": "message", "message": message("m-1", 1, body="The box arrived")})
    assert list(Table(db, "messages").search("parcel")) == []


def snapshot(
    page: int, last: bool, seq: int = 50, agent_state: dict[str, Any] | None = None, **rows: Any
) -> Snapshot:
    return Snapshot(
        page, last, seq, agent_state=agent_state, **{k: tuple(v) for k, v in rows.items()}
    )


def test_snapshot_pages_replace_the_view_and_set_the_cursor_last(db: sqlite_utils.Database) -> None:
    ev(db, 1, {"kind": "conversation", "conversation": conversation("c-old")})
    ev(db, 2, {"kind": "message", "message": message("m-old", 1, cid="c-old")})
    ev(db, 3, {"kind": "conversation", "conversation": conversation("c-kept")})
    db.execute(
        "INSERT INTO outbox (pos, id, name, args, conversation_id) VALUES "
        "(1, 'x', 'wrap_up', '{}', 'c-kept')"
    )
    ev(db, 4, {"kind": "offer", "offer": {"id": "o-old", "conversation_id": "c-old"}})
    snapshot_apply.apply_snapshot_page(
        db,
        snapshot(0, False, conversations=[conversation("c-1")], offers=[{"id": "o-new"}]),
        agent_id="a-ana",
        now=1.0,
    )
    assert apply.get_cursor(db) == 4  # not yet
    ch = snapshot_apply.apply_snapshot_page(
        db,
        snapshot(1, True, messages=[message("m-1", 1)], agent_state={"state": "available"}),
        agent_id="a-ana",
        now=1.0,
    )
    assert apply.get_cursor(db) == 50
    assert {r[0] for r in db.execute("SELECT id FROM conversations")} == {"c-1", "c-kept"}
    assert {r[0] for r in db.execute("SELECT id FROM offers")} == {"o-new"}
    assert ("o-old", "canceled") in ch.offers_revoked
    assert db.execute("SELECT id FROM messages").fetchall() == [("m-1",)]
    # Snapshot messages are history, not news.
    assert db.execute("SELECT unread FROM conversations WHERE id = 'c-1'").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM snapshot_seen").fetchone()[0] == 0


def test_a_failing_event_leaves_no_half_state(db: sqlite_utils.Database) -> None:
    broken = conversation()
    broken["customer"]["identities"] = [{"kind": "email"}]  # no value: fails after the customer
    with pytest.raises(KeyError):
        ev(db, 1, {"kind": "conversation", "conversation": broken})
    assert db.execute("SELECT COUNT(*) FROM customers").fetchone()[0] == 0
    assert apply.get_cursor(db) == 0
    ev(db, 1, {"kind": "conversation", "conversation": conversation()})  # the connection is fine
    assert apply.get_cursor(db) == 1


def test_bind_agent_clears_another_agents_cache_but_not_unsent_work(
    db: sqlite_utils.Database,
) -> None:
    assert apply.bind_agent(db, "a-ana") is False
    ev(db, 1, {"kind": "conversation", "conversation": conversation()})
    assert apply.bind_agent(db, "a-ana") is False
    assert apply.bind_agent(db, "a-bob") is True
    assert apply.get_cursor(db) == 0
    assert db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0] == 0
    with atomic(db):
        db.execute("INSERT INTO outbox (pos, id, name, args) VALUES (1, 'x', 'decline', '{}')")
    with pytest.raises(RuntimeError, match="unsent work of agent a-bob"):
        apply.bind_agent(db, "a-ana")


WRITER = textwrap.dedent("""
    import sys
    from sync.store import open_store
    from sync.apply import apply_event
    db = open_store(sys.argv[1])
    apply_event(db, 1, {"kind": "conversation", "conversation": {"id": "c-1"}},
                agent_id="a", now=0.0)
    for seq in range(2, 200000):
        apply_event(db, seq, {"kind": "message", "message": {
            "id": f"m-{seq}", "conversation_id": "c-1", "seq": seq, "direction": "in",
            "body": "x" * 200, "created_at": float(seq)}}, agent_id="a", now=0.0)
""")


def test_kill_9_mid_stream_leaves_cursor_and_rows_in_step(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    open_store(path).conn.close()
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    reader = open_readonly(path)
    try:

        def cursor() -> int:
            row = reader.execute("SELECT value FROM sync_state WHERE key = 'cursor'").fetchone()
            return int(row[0]) if row else 0

        wait_until(
            lambda: cursor() > 300 or proc.poll() is not None,
            timeout=30,
            what="the writer to store 300 events",
        )
        assert proc.poll() is None, "the writer ended before it was killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        reader.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    db = open_store(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = apply.get_cursor(db)
    count = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    assert stored > 300 and count == stored - 1
    assert db.execute("SELECT MAX(seq) FROM messages").fetchone()[0] == stored
    # And the stream goes on from exactly there.
    apply.apply_event(
        db,
        stored + 1,
        {"kind": "message", "message": message("m-next", stored + 1)},
        agent_id="a",
        now=0.0,
    )
    db.conn.close()


def test_readonly_connection_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    open_store(path).conn.close()
    ro = open_readonly(path)
    with pytest.raises(sqlite3.OperationalError):
        ro.execute("INSERT INTO sync_state (key, value) VALUES ('x', 'y')")
    ro.close()
