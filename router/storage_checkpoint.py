"""WAL checkpoints off the router's COMMIT path.

SQLite's automatic checkpoint runs inside the COMMIT that pushes the WAL past
`wal_autocheckpoint` pages: that one COMMIT copies every page back into the database file and
waits for two fsyncs, on the router's only thread, while offers wait to be sent. Profiled at
2,000 agents and 200 arrivals/s it was most of the ~19% of the router's time spent in COMMIT.

`Checkpointer` turns the automatic checkpoint off on the router's connection and runs
`PRAGMA wal_checkpoint(PASSIVE)` from a second connection in a worker thread instead (the
sqlite3 module releases the GIL while SQLite copies and syncs). A passive checkpoint never
waits for or blocks the writer; once it has copied every frame, the writer's next transaction
starts the WAL from the beginning again, so the file stays bounded. Copying once every
`interval` also writes a page that many commits touched (a stream's index leaf, the tail of
the facts log) once instead of once per thousand frames.

If the worker falls behind (a slow disk) and the WAL passes `limit` pages, the writer's own
automatic checkpoint is switched back on until the worker catches up: the WAL never grows
without bound, and nothing depends on this thread for correctness (SQLite's WAL is durable
and readable with or without checkpoints).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 0.5
"""Seconds between checkpoints."""
DEFAULT_LIMIT = 20_000
"""WAL pages (80 MB at 4 KB) past which the writer checkpoints itself again."""
_AUTO = 1000
"""SQLite's default `wal_autocheckpoint`, restored at stop and as the fallback."""


class Checkpointer:
    """Runs passive WAL checkpoints of `path` on a worker thread while `run()` is awaited.

    Args:
        writer: the router's connection, whose automatic checkpoint this replaces.
        path: the database file (an in-memory database has no WAL: `run` returns at once).
    """

    def __init__(
        self,
        writer: sqlite3.Connection,
        path: str | Path,
        interval: float = DEFAULT_INTERVAL,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        self.writer = writer
        self.path = str(path)
        self.interval = interval
        self.limit = limit
        self.last: tuple[int, int, int] | None = None
        """(busy, WAL frames, frames checkpointed) of the last run, for tests and logs."""
        self._fallback = False

    @property
    def enabled(self) -> bool:
        return self.path not in ("", ":memory:") and not self.path.startswith("file::memory:")

    def _checkpoint(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    async def run(self) -> None:
        """Checkpoint every `interval` until cancelled; the writer checkpoints itself again
        afterwards."""
        if not self.enabled:
            return
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        running: asyncio.Future[tuple[int, int, int]] | None = None
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            self.writer.execute("PRAGMA wal_autocheckpoint = 0")
            while True:
                await asyncio.sleep(self.interval)
                running = asyncio.ensure_future(asyncio.to_thread(self._checkpoint, conn))
                try:
                    self.last = await asyncio.shield(running)
                except sqlite3.Error as exc:
                    # Never fatal: the writer checkpoints itself while this one cannot.
                    log.warning("background WAL checkpoint failed: %s", exc)
                    self._set_fallback(True)
                    continue
                finally:
                    if running.done():
                        running = None
                self._set_fallback(self.last[1] > self.limit)
        finally:
            if running is not None:
                # Cancelled mid-checkpoint: the thread still uses `conn`; let it finish.
                with contextlib.suppress(Exception):
                    await asyncio.wait([running])
            with contextlib.suppress(sqlite3.Error):
                self.writer.execute(f"PRAGMA wal_autocheckpoint = {_AUTO}")
            conn.close()

    def _set_fallback(self, on: bool) -> None:
        if on == self._fallback:
            return
        self._fallback = on
        self.writer.execute(f"PRAGMA wal_autocheckpoint = {_AUTO if on else 0}")
        if on:
            log.warning("WAL checkpoints are falling behind; the router checkpoints inline")
        else:
            log.info("background WAL checkpoints caught up")
