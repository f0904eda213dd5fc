"""Event streams: one stored row per event, per-agent seqs that read the same whether or not
the stream index has been written, after a crash (no flush), a rollback, a migration from
one-row-per-member files, and pruning."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from router.schema import MIGRATIONS, migrate
from router.storage import Storage


def _storage(path: Path) -> Storage:
    storage = Storage(path)
    with storage.transaction():
        for name in ("ana", "ben", "cid"):
            storage.upsert_agent(f"a-{name}", name, name, "", ["support"], {"chat": 3}, 1.0)
    return storage


def _append(storage: Storage, n: int, start: int = 0) -> None:
    with storage.transaction():
        storage.append_events(
            [
                (["a-ana", "a-ben"] if i % 2 else ["a-ana"], f'{{"kind":"k","i":{i}}}')
                for i in range(start, start + n)
            ],
            10.0,
        )


def _streams(storage: Storage) -> dict[str, list[tuple[int, str]]]:
    return {a: storage.event_texts_after(a, 0, 10_000) for a in ("a-ana", "a-ben", "a-cid")}


def test_one_body_per_event_and_seqs_per_agent(tmp_path: Path) -> None:
    storage = _storage(tmp_path / "r.db")
    _append(storage, 4)
    assert storage.conn.execute("SELECT COUNT(*) FROM event_bodies").fetchone()[0] == 4
    streams = _streams(storage)
    assert [s for s, _ in streams["a-ana"]] == [1, 2, 3, 4]
    assert [s for s, _ in streams["a-ben"]] == [1, 2]
    assert streams["a-ben"][1][1] == '{"kind":"k","i":3}'
    assert streams["a-cid"] == [] and storage.last_seq("a-cid") == 0
    storage.close()


def test_streams_read_the_same_before_and_after_the_index_is_written(tmp_path: Path) -> None:
    storage = _storage(tmp_path / "r.db")
    _append(storage, 5)
    before = _streams(storage)
    with storage.transaction():
        storage.flush_stream_index(0, 2)  # a slice, then the rest
    assert _streams(storage) == before
    _append(storage, 3, start=5)
    with storage.transaction():
        storage.flush_stream_index()
    after = _streams(storage)
    assert after["a-ana"][:5] == before["a-ana"]
    assert [s for s, _ in after["a-ana"]] == list(range(1, 9))
    assert storage.event_texts_after("a-ana", 3, 2) == after["a-ana"][3:5]
    assert storage.first_retained_seq("a-ana") == 1
    storage.close()


def test_a_crash_before_the_index_is_written_loses_no_seq(tmp_path: Path) -> None:
    """The index is derived data: a router killed before writing it reads the entries back
    from the bodies' audiences, and new events continue each stream without a gap."""
    storage = _storage(tmp_path / "r.db")
    _append(storage, 3)
    with storage.transaction():
        storage.flush_stream_index()
    _append(storage, 4, start=3)
    before = _streams(storage)
    storage.conn.close()  # no flush: as after kill -9
    again = Storage(tmp_path / "r.db")
    assert _streams(again) == before
    assert again.last_seq("a-ana") == 7 and again.last_seq("a-ben") == 3
    _append(again, 1, start=7)  # odd: both
    assert [s for s, _ in again.event_texts_after("a-ben", 3)] == [4]
    rows = again.conn.execute(
        "SELECT seq FROM events WHERE agent_id = 'a-ana' ORDER BY seq"
    ).fetchall()
    assert [r[0] for r in rows] == list(range(1, 9))  # the view shows every entry once
    again.close()


def test_a_rolled_back_append_is_forgotten(tmp_path: Path) -> None:
    storage = _storage(tmp_path / "r.db")
    _append(storage, 2)
    with pytest.raises(RuntimeError), storage.transaction():
        storage.append_events([(["a-ana"], '{"kind":"gone"}')], 11.0)
        raise RuntimeError("refused")
    assert storage.last_seq("a-ana") == 2
    assert all("gone" not in text for _, text in storage.event_texts_after("a-ana", 0))
    _append(storage, 1, start=2)
    assert [s for s, _ in storage.event_texts_after("a-ana", 0)] == [1, 2, 3]
    storage.close()


def test_pruning_keeps_the_head_and_drops_unreferenced_bodies(tmp_path: Path) -> None:
    storage = _storage(tmp_path / "r.db")
    _append(storage, 6)
    with storage.transaction():
        for agent in ("a-ana", "a-ben"):
            storage.prune_events(agent, keep=1)
    assert [s for s, _ in storage.event_texts_after("a-ana", 0)] == [6]
    assert [s for s, _ in storage.event_texts_after("a-ben", 0)] == [3]
    assert [r[0] for r in storage.conn.execute("SELECT id FROM event_bodies")] == [6]
    assert storage.last_seq("a-ben") == 3
    storage.close()


def test_deleting_through_the_events_view(tmp_path: Path) -> None:
    """Operators (and tests) may delete old entries by the old table's name, indexed or
    not; the deleted entries do not come back at the next start."""
    storage = _storage(tmp_path / "r.db")
    _append(storage, 4)
    storage.conn.close()
    db = sqlite3.connect(tmp_path / "r.db")
    with db:
        db.execute("DELETE FROM events WHERE agent_id = 'a-ana' AND seq <= 2")
    db.close()
    again = Storage(tmp_path / "r.db")
    assert [s for s, _ in again.event_texts_after("a-ana", 0)] == [3, 4]
    assert [s for s, _ in again.event_texts_after("a-ben", 0)] == [1, 2]
    assert again.last_seq("a-ana") == 4
    again.close()


def test_migration_keeps_the_old_streams(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for name, run in MIGRATIONS[:2]:
        run(conn)
        conn.execute("INSERT INTO migrations VALUES (?, 'then')", (name,))
    conn.execute(
        "INSERT INTO agents (id, username, name, password_hash, queues, capacity, "
        "state_since, idle_since) VALUES ('a-ana', 'ana', 'Ana', '', '[]', '{}', 0, 0)"
    )
    conn.executemany(
        "INSERT INTO events (agent_id, seq, event, created_at) VALUES ('a-ana', ?, ?, 1.0)",
        [(seq, f'{{"kind":"old","n":{seq}}}') for seq in (4, 5, 6)],  # 1-3 pruned
    )
    migrate(conn)
    conn.close()
    storage = Storage(path)
    assert storage.event_texts_after("a-ana", 4) == [
        (5, '{"kind":"old","n":5}'),
        (6, '{"kind":"old","n":6}'),
    ]
    assert storage.first_retained_seq("a-ana") == 4 and storage.last_seq("a-ana") == 6
    storage.append_event("a-ana", {"kind": "new"}, 2.0)
    assert [s for s, _ in storage.event_texts_after("a-ana", 5)] == [6, 7]
    storage.close()


def test_pruning_without_a_flush_keeps_what_is_still_pending(tmp_path: Path) -> None:
    """The service flushes the index slice by slice and then prunes without a full flush:
    entries still pending stay (and are pruned next time); no body they need is deleted."""
    storage = _storage(tmp_path / "r.db")
    _append(storage, 4)
    with storage.transaction():
        storage.flush_stream_index()
    _append(storage, 2, start=4)  # pending: ana 5 and 6, ben 3
    with storage.transaction():
        for agent in ("a-ana", "a-ben"):
            storage.prune_events(agent, keep=1, flush=False)
    # Only indexed entries went (ana 1-4, ben 1-2); ana's 5 stays though a flush would have
    # let it go, and the pending entries' bodies are all there.
    assert [s for s, _ in storage.event_texts_after("a-ana", 0)] == [5, 6]
    assert [s for s, _ in storage.event_texts_after("a-ben", 0)] == [3]
    storage.close()
    reopened = Storage(tmp_path / "r.db")
    assert [s for s, _ in reopened.event_texts_after("a-ana", 0)] == [5, 6]
    assert [s for s, _ in reopened.event_texts_after("a-ben", 0)] == [3]
    reopened.close()
