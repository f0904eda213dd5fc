"""WAL checkpoints off the router's COMMIT path.

SQLite's automatic checkpoint runs inside the COMMIT that pushes the WAL past
`wal_autocheckpoint` pages: that one COMMIT copies every page back into the database file and
waits for two fsyncs, on the router's only thread, while offers wait to be sent. Profiled at
2,000 agents and 200 arrivals/s it was most of the ~19% of the router's time spent in COMMIT.

`Checkpointer` turns the automatic checkpoint off on the router's connection and runs
`PRAGMA wal_checkpoint(PASSIVE)` from a second connection in a worker thread instead (the
sqlite3 module releases the GIL while SQLite copies and syncs). A passive checkpoint never
waits for or blocks the writer. Copying once every `interval` also writes a page that many
commits touched (a stream's index leaf, the tail of the facts log) once instead of once per
thousand frames.

But the WAL only starts again from its beginning when a transaction begins with every frame
copied, which a busy writer never leaves time for: under load the file grew to the fallback
limit in seconds (seen at 2,000 agents). So once the WAL passes `restart_at` pages, the
passive pass is followed by `wal_checkpoint(RESTART)`, which waits for the writer's current
transaction, copies the few frames written since the passive pass, and makes the next
transaction start the WAL over; the router's next BEGIN waits for that short step (its busy
timeout) instead of for a whole checkpoint.

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
DEFAULT_RESTART_AT = 4_000
"""WAL pages (16 MB at 4 KB) past which the log is made to start over."""
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
        restart_at: int = DEFAULT_RESTART_AT,
    ) -> None:
        self.writer = writer
        self.path = str(path)
        self.interval = interval
        self.limit = limit
        self.restart_at = restart_at
        self.last: tuple[int, int, int] | None = None
        """(busy, WAL frames, frames checkpointed) of the last run, for tests and logs."""
        self.frames = 0
        """WAL frames written since start, as seen by the checkpoints (the bench's measure of
        write volume; `GET /health` shows it). While the writer checkpoints itself (the
        fallback) a log it starts over before a pass saw it is not counted."""
        self._seen = 0
        self._salt = b""
        self._fallback = False
        self.fallbacks = 0
        """How many times the writer had to checkpoint itself again."""

    @property
    def enabled(self) -> bool:
        return self.path not in ("", ":memory:") and not self.path.startswith("file::memory:")

    def _checkpoint(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self._count(int(row[1]))
        if int(row[1]) > self.restart_at:
            row = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            self._count(int(row[1]))
        return int(row[0]), int(row[1]), int(row[2])

    def _count(self, size: int) -> None:
        """Add the frames appended since the last pass. The WAL header's salt changes each
        time the log starts over, and then all of its frames are new."""
        try:
            with open(f"{self.path}-wal", "rb") as wal:
                salt = wal.read(24)[16:24]
        except OSError:
            salt = b""
        restarted = salt != self._salt or size < self._seen
        self.frames += size if restarted else size - self._seen
        self._seen, self._salt = size, salt

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
        if not on:
            log.debug("background WAL checkpoints caught up")
            return
        self.fallbacks += 1
        # Under sustained load this can flip every few seconds: say it once, not each time.
        log.log(
            logging.WARNING if self.fallbacks == 1 else logging.DEBUG,
            "WAL checkpoints are falling behind (the WAL passed %d pages); the router "
            "checkpoints inline until they catch up",
            self.limit,
        )
