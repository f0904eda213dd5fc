"""Opening the cache whatever state it is in: checked, rebuilt when corrupt, full disk named.

Why: SQLite in WAL mode with one writer and short transactions survives kills and crashes, but
a disk can still fail, a backup tool can still copy half a file, and a disk can fill up. The
agent's unsent work (the outbox, failed messages, drafts) is the one thing the router cannot
give back, so when the cache is unusable it is moved aside (never deleted), that work is read
out of it as far as it can be read, and a fresh cache holding only that work is made; the
next session fills the rest from the router's snapshot. A full disk is not corruption: it is
reported in words ("The disk is full: ...") and nothing is moved.

Whether the last run ended cleanly is kept in `sync_state` (`open_clean`); only after an
unclean end does opening pay for `PRAGMA quick_check` (seconds on a million messages,
so not on every start).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sync.store import atomic, get_state, open_store, set_state

if TYPE_CHECKING:  # the UI imports this module for `is_corrupt`: keep sqlite_utils out of it
    import sqlite_utils

log = logging.getLogger(__name__)

SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_NOTADB = 26
CLEAN_KEY = "open_clean"


class DiskFullError(RuntimeError):
    """The cache could not be written because the disk (or its quota) is full.

    Nothing was written; what was there before is intact.
    """


class CorruptCacheError(RuntimeError):
    """The cache file is damaged (SQLITE_CORRUPT / SQLITE_NOTADB or a failed check)."""


@dataclass(frozen=True)
class Rebuilt:
    """A corrupt cache was moved aside and a fresh one made with the rescued work."""

    moved_to: Path
    reason: str
    commands: int
    messages: int
    drafts: int

    def message(self) -> str:
        """Words for the agent."""
        kept = (
            f"{self.commands} unsent action(s) and {self.drafts} draft(s) were kept"
            if self.commands or self.drafts
            else "nothing unsent was waiting"
        )
        return (
            f"The local cache was damaged and has been rebuilt from the router; {kept}. "
            f"The damaged file was kept as {self.moved_to.name}."
        )


def is_disk_full(exc: BaseException) -> bool:
    """SQLITE_FULL or ENOSPC/EDQUOT, however SQLite or the OS said it."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF == SQLITE_FULL:
            return True
        return "database or disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def is_corrupt(exc: BaseException) -> bool:
    """A damaged file, as opposed to a locked, busy or full one."""
    if isinstance(exc, CorruptCacheError):
        return True
    if not isinstance(exc, sqlite3.DatabaseError) or is_disk_full(exc):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return True
    text = str(exc)
    return "malformed" in text or "not a database" in text or "file is encrypted" in text


DISK_FULL_MESSAGE = (
    "The disk is full: the local cache could not save this. Everything saved "
    "before is kept; free some disk space and try again."
)


def check(db: sqlite_utils.Database) -> None:
    """`PRAGMA quick_check`; raises CorruptCacheError with SQLite's first complaint."""
    rows = db.execute("PRAGMA quick_check(5)").fetchall()
    if [r[0] for r in rows] != ["ok"]:
        raise CorruptCacheError("; ".join(str(r[0]) for r in rows))


def open_checked(path: Path | str) -> tuple[sqlite_utils.Database, Rebuilt | None]:
    """Open the cache for writing; check it after an unclean end; rebuild it when corrupt.

    Marks the cache open (not clean) until `mark_clean` is called at a clean stop.

    Raises:
        DiskFullError: the disk is full (the cache is left as it is).
        sqlite3.Error: any other failure to open (permissions, locked): not corruption, so
            nothing is moved.
    """
    path = Path(path)
    db: sqlite_utils.Database | None = None
    try:
        db = open_store(path)
        if get_state(db, CLEAN_KEY, "1") != "1":
            log.info("cache was not closed cleanly last time: checking it")
            check(db)
        try:
            _mark(db, "0")
        except sqlite3.Error as exc:
            if not is_disk_full(exc):
                raise
            # Start anyway on a full disk: the cache reads fine and each write that fails
            # says why; the next start checks the file (the flag still says "clean" only
            # if it was, so nothing is skipped that a crash would need).
            log.warning("cache opened on a full disk: writes will be refused until space is freed")
        return db, None
    except Exception as exc:
        if db is not None:
            db.conn.close()
        if is_disk_full(exc):
            raise DiskFullError(DISK_FULL_MESSAGE) from exc
        if not is_corrupt(exc):
            raise
        log.error("the cache %s is corrupt (%s): moving it aside and rebuilding", path, exc)
        return rebuild(path, str(exc))


def mark_clean(db: sqlite_utils.Database) -> None:
    """Record a clean end (the next open skips the check)."""
    _mark(db, "1")


def _mark(db: sqlite_utils.Database, value: str) -> None:
    with atomic(db):
        set_state(db, CLEAN_KEY, value)


def move_aside(path: Path) -> Path:
    """Rename the cache and its WAL/SHM files to `<stem>.corrupt-<time><suffix>`.

    The WAL goes with it: left behind, SQLite would replay it into the new file.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.stem}.corrupt-{stamp}-{os.getpid()}{path.suffix}")
    for extra in ("-wal", "-shm", ""):
        src = Path(str(path) + extra)
        if src.exists():
            src.rename(Path(str(target) + extra))
    return target


def _read(conn: sqlite3.Connection, sql: str) -> list[tuple[Any, ...]]:
    """Read what can be read; a damaged table yields nothing rather than stopping the rescue."""
    try:
        return [tuple(r) for r in conn.execute(sql).fetchall()]
    except sqlite3.Error as exc:
        log.warning("rescue: could not read (%s): %s", sql.split(" FROM ")[-1][:40], exc)
        return []


def rescue(moved: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The agent's unsent work from a damaged cache (best effort, read-only)."""
    try:
        conn = sqlite3.connect(f"file:{moved}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        log.warning("rescue: the damaged cache cannot be opened at all: %s", exc)
        return {}
    try:
        return {
            "outbox": _read(
                conn,
                "SELECT pos, id, name, args, conversation_id, created_at, "
                "attempts FROM outbox ORDER BY pos",
            ),
            "messages": _read(
                conn,
                "SELECT id, conversation_id, direction, author, body, "
                "created_at, status, error FROM messages "
                "WHERE status IN ('sending', 'failed')",
            ),
            "drafts": _read(conn, "SELECT conversation_id, body, updated_at FROM drafts"),
            "sync_state": _read(
                conn, "SELECT key, value FROM sync_state WHERE key IN ('agent', 'agent_id')"
            ),
        }
    finally:
        conn.close()


def _messages_from_outbox(found: dict[str, list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    """Thread rows for queued replies whose message rows could not be read: the command's
    arguments hold all the agent wrote, so the reply still shows as 'sending'."""
    out = []
    for _pos, _cid, name, args, _conv, created_at, _attempts in found.get("outbox", []):
        if name not in ("send_message", "add_note"):
            continue
        try:
            a = json.loads(args)
        except ValueError:
            log.warning("rescue: an outbox row has unreadable arguments")
            continue
        out.append(
            (
                a.get("message_id"),
                a.get("conversation_id"),
                "note" if name == "add_note" else "out",
                "me",
                a.get("body"),
                created_at,
                "sending",
                None,
            )
        )
    return [r for r in out if r[0] and r[1]]


def rebuild(path: Path, reason: str) -> tuple[sqlite_utils.Database, Rebuilt]:
    """Move the damaged cache aside, make a fresh one, put the rescued work in it.

    The cursor of the fresh cache is 0, so the next session gets a full snapshot; rescued
    conversations are placeholders until then (the snapshot keeps them: they have outbox rows).
    """
    from sync.apply import refresh_conversation  # needs sqlite_utils: only when rebuilding

    moved = move_aside(path)
    found = rescue(moved)
    db = open_store(path)
    with atomic(db):
        convs = {r[4] for r in found.get("outbox", []) if r[4]}
        convs |= {r[1] for r in found.get("messages", []) if r[1]}
        convs |= {r[0] for r in found.get("drafts", []) if r[0]}
        for conv in convs:
            db.execute("INSERT OR IGNORE INTO conversations (id) VALUES (?)", [conv])
        for row in [*found.get("messages", []), *_messages_from_outbox(found)]:
            db.execute(
                "INSERT OR IGNORE INTO messages (id, conversation_id, direction, author, "
                "body, created_at, status, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        for row in found.get("outbox", []):
            db.execute(
                "INSERT OR IGNORE INTO outbox (pos, id, name, args, conversation_id, "
                "created_at, attempts) VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        for row in found.get("drafts", []):
            db.execute(
                "INSERT OR IGNORE INTO drafts (conversation_id, body, updated_at) VALUES (?, ?, ?)",
                row,
            )
        for key, value in found.get("sync_state", []):
            set_state(db, key, value)
        for conv in convs:
            refresh_conversation(db, conv)
        set_state(db, "rebuilt_from", moved.name)
        set_state(db, CLEAN_KEY, "0")
    report = Rebuilt(
        moved,
        reason,
        len(found.get("outbox", [])),
        len(found.get("messages", [])),
        len(found.get("drafts", [])),
    )
    log.warning(
        "cache rebuilt: %d command(s), %d message(s), %d draft(s) rescued from %s",
        report.commands,
        report.messages,
        report.drafts,
        moved.name,
    )
    return db, report
