"""sync.recovery on real files: a corrupt cache is moved aside, its unsent work rescued."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sync import apply, outbox
from sync.recovery import (
    CLEAN_KEY,
    DiskFullError,
    is_corrupt,
    is_disk_full,
    mark_clean,
    open_checked,
)
from sync.store import atomic, get_state, open_store, set_state


def make_cache(path: Path) -> list[str]:
    """A cache with history, two queued replies, a refused one and a draft; left 'unclean'."""
    db = open_store(path)
    apply.apply_event(
        db,
        1,
        {
            "kind": "conversation",
            "conversation": {
                "id": "c-1",
                "channel": "chat",
                "status": "assigned",
                "customer": {"id": "u-1", "name": "Bea"},
            },
        },
        agent_id="a-ana",
        now=0.0,
    )
    for i in range(300):  # enough history for the messages table to span many pages
        apply.apply_event(
            db,
            i + 2,
            {
                "kind": "message",
                "message": {
                    "id": f"m-{i}",
                    "conversation_id": "c-1",
                    "seq": i + 1,
                    "direction": "in",
                    "body": f"history line {i} " + "z" * 200,
                    "created_at": float(i),
                },
            },
            agent_id="a-ana",
            now=0.0,
        )
    ids = [
        outbox.queue_message(db, "c-1", f"queued {i}", author="Ana", now=1000.0 + i).message_id
        or ""
        for i in range(2)
    ]
    outbox.save_draft(db, "c-1", "half-written answer", now=2000.0)
    with atomic(db):
        set_state(db, "agent_id", "a-ana")
        set_state(db, CLEAN_KEY, "0")  # as the app leaves it while running: then killed
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    return ids


def smash(path: Path, table: str) -> None:
    """Overwrite every page of `table` with garbage (a failing disk)."""
    conn = sqlite3.connect(str(path))
    pages = [r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE name = ?", [table])]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    assert pages
    with path.open("r+b") as f:
        for page in pages:
            f.seek((page - 1) * size)
            f.write(b"\xa5" * size)


def test_a_sound_cache_opens_and_is_marked_open_until_a_clean_stop(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    make_cache(path)
    db, rebuilt = open_checked(path)
    assert rebuilt is None
    assert get_state(db, CLEAN_KEY) == "0"
    mark_clean(db)
    assert get_state(db, CLEAN_KEY) == "1"
    db.conn.close()


def test_a_corrupt_table_is_found_after_a_crash_and_the_unsent_work_rescued(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    ids = make_cache(path)
    smash(path, "messages")
    db, rebuilt = open_checked(path)
    assert rebuilt is not None
    assert rebuilt.moved_to.exists() and rebuilt.moved_to != path
    assert rebuilt.commands == 2 and rebuilt.drafts == 1
    assert "rebuilt from the router" in rebuilt.message()
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    cmds = outbox.pending(db)
    assert [c.args["message_id"] for c in cmds] == ids
    # The replies show as 'sending' again (rebuilt from the commands: their rows were lost).
    assert db.execute("SELECT body, status FROM messages ORDER BY created_at").fetchall() == [
        ("queued 0", "sending"),
        ("queued 1", "sending"),
    ]
    assert db.execute("SELECT body FROM drafts").fetchall() == [("half-written answer",)]
    assert get_state(db, "agent_id") == "a-ana"  # never sent as somebody else
    assert apply.get_cursor(db) == 0  # a full snapshot comes next
    db.conn.close()


def test_a_file_that_is_not_a_database_is_moved_aside_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    path.write_bytes(b"this is not SQLite at all" * 100)
    db, rebuilt = open_checked(path)
    assert rebuilt is not None and rebuilt.commands == 0
    assert rebuilt.moved_to.read_bytes().startswith(b"this is not SQLite")
    assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    db.conn.close()


def test_a_clean_cache_is_not_checked(tmp_path: Path) -> None:
    """Opening a million-message cache must not pay for quick_check after a clean stop."""
    path = tmp_path / "cache.db"
    make_cache(path)
    db = open_store(path)
    mark_clean(db)
    db.conn.close()
    smash(path, "messages_fts_data")  # not touched by opening: only a check would see it
    db, rebuilt = open_checked(path)
    assert rebuilt is None
    db.conn.close()


def test_errors_are_classed() -> None:
    full = sqlite3.OperationalError("database or disk is full")
    assert is_disk_full(full) and not is_corrupt(full)
    assert is_corrupt(sqlite3.DatabaseError("database disk image is malformed"))
    assert is_corrupt(sqlite3.DatabaseError("file is not a database"))
    assert not is_corrupt(sqlite3.OperationalError("database is locked"))
    assert is_disk_full(OSError(28, "No space left on device"))


def test_a_full_disk_at_open_is_said_and_nothing_is_moved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cache.db"
    make_cache(path)

    def full(_path: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr("sync.recovery.open_store", full)
    with pytest.raises(DiskFullError, match=r"^The disk is full: "):
        open_checked(path)
    assert [p.name for p in tmp_path.iterdir() if "corrupt" in p.name] == []


def test_a_full_disk_at_start_still_opens_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migrated already, nothing to write but the open flag: the app starts and reads."""
    path = tmp_path / "cache.db"
    make_cache(path)
    db = open_store(path)
    mark_clean(db)
    db.conn.close()
    monkeypatch.setenv("SWITCHBOARD_CACHE_MAX_PAGES", "1")  # every new page refused
    db, rebuilt = open_checked(path)
    assert rebuilt is None
    assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 2
    with pytest.raises(sqlite3.OperationalError) as caught:
        outbox.save_draft(db, "c-1", "x" * 50_000, now=1.0)
    assert is_disk_full(caught.value)
    db.conn.close()
