"""The background WAL checkpointer: it takes over from SQLite's automatic checkpoint while it
runs, copies the WAL back so the file restarts from the beginning, and hands checkpoints back
to the writer when it stops."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from router.storage import Storage
from router.storage_checkpoint import Checkpointer
from tests.support.wait import async_wait_until


def _autocheckpoint(storage: Storage) -> int:
    return int(storage.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])


def test_checkpoints_in_the_background_and_restores_the_writer(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "router.db")

    async def scenario() -> None:
        checkpointer = Checkpointer(storage.conn, storage.path, interval=0.01)
        task = asyncio.create_task(checkpointer.run())
        await async_wait_until(lambda: _autocheckpoint(storage) == 0, what="autocheckpoint off")
        for i in range(50):
            with storage.transaction():
                storage.set_meta(f"k{i}", "x" * 2000)
        await async_wait_until(
            lambda: (
                checkpointer.last is not None
                and checkpointer.last[1] > 0
                and checkpointer.last[1] == checkpointer.last[2]
            ),
            what="a complete checkpoint of the WAL",
        )
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert _autocheckpoint(storage) == 1000
    assert storage.get_meta("k49") == "x" * 2000
    storage.close()


def test_falls_back_to_the_writer_when_behind(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "router.db")

    async def scenario() -> None:
        checkpointer = Checkpointer(storage.conn, storage.path, interval=0.01, limit=0)
        task = asyncio.create_task(checkpointer.run())
        with storage.transaction():
            storage.set_meta("k", "v")
        # A WAL over the limit (0 pages) puts the writer's own checkpoint back on.
        await async_wait_until(lambda: _autocheckpoint(storage) == 1000, what="fallback")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    storage.close()


def test_in_memory_database_needs_none() -> None:
    """No WAL to checkpoint: the checkpointer stands down at once and leaves the writer's own
    autocheckpoint setting as it was."""
    storage = Storage(":memory:")
    before = storage.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    checkpointer = Checkpointer(storage.conn, storage.path)
    assert not checkpointer.enabled
    asyncio.run(asyncio.wait_for(checkpointer.run(), timeout=5))
    assert storage.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == before
    storage.close()


def test_a_long_wal_is_started_over(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "router.db")
    storage.conn.execute("PRAGMA wal_autocheckpoint = 0")
    checkpointer = Checkpointer(storage.conn, storage.path, restart_at=2)
    other = sqlite3.connect(storage.path, isolation_level=None)
    with storage.transaction():
        for i in range(20):
            storage.set_meta(f"k{i}", "x" * 4000)
    busy, frames, copied = checkpointer._checkpoint(other)
    assert busy == 0 and frames == copied > 2
    # Every frame was copied and the log restarted: the next transaction writes from the
    # start of the WAL again instead of after the frames already copied.
    with storage.transaction():
        storage.set_meta("after", "y")
    assert storage.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1] <= 3
    other.close()
    storage.close()
