"""A full disk under the cache: the app says so, keeps what it has, and carries on after.

The cache lives on a 3 MiB tmpfs mounted for the test (the machines and CI run as root); a
filler file leaves it a few hundred KiB. Where mounting is not allowed the test falls back to
SQLite's page cap (SWITCHBOARD_CACHE_MAX_PAGES), which fails writes with the same SQLITE_FULL.
The agent keeps writing replies until the disk is full: the write is refused with "The disk is
full: ...", nothing already written is lost, the cache passes integrity_check, the engine keeps
running, and once space is freed the next reply goes out. Every reply the agent saw written
reaches the router exactly once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sync.changes import ProtocolIssue
from sync.recovery import DiskFullError
from sync.store import MAX_PAGES_ENV
from tests.fault.support import FaultCounts, inbound, integrity, rows, wait_converged
from tests.support.router_proc import RouterProcess
from tests.support.wait import wait_until


@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A directory on a 3 MiB file system, or (no mount allowed) a page-capped cache."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    if not mounted:
        monkeypatch.setenv(MAX_PAGES_ENV, "400")  # 1.6 MB
    try:
        yield disk, "tmpfs 3 MiB" if mounted else "max_page_count 400"
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(disk)], check=False)


def test_full_disk_is_said_and_nothing_is_lost(
    router: RouterProcess, engines: Any, small_disk: tuple[Path, str]
) -> None:
    disk, how = small_disk
    cache = disk / "cache.db"
    counts = FaultCounts(f"disk full ({how})")
    engine, rec = engines(router.url, str(cache), auto_accept=True)
    wait_until(lambda: rec.state() == "online", what="online")
    engine.set_state("available").result(10)
    conv = inbound(router, "Hello, anyone there?")
    assert conv is not None
    wait_until(
        lambda: (
            rows(cache, "SELECT status FROM conversations WHERE id = ?", conv) == [("assigned",)]
        ),
        what="the conversation assigned",
    )
    filler = disk / "filler"
    if how.startswith("tmpfs"):
        free = shutil.disk_usage(disk).free
        filler.write_bytes(b"\0" * max(0, free - 300_000))

    written: list[str] = []
    refused = 0
    for n in range(2000):
        body = f"long reply {n} " + "x" * 8000
        try:
            engine.send_message(conv, body).result(20)
        except DiskFullError as exc:
            assert str(exc).startswith("The disk is full: ")
            refused += 1
            break
        written.append(body)
    assert refused == 1, "the disk never filled up"
    counts.faults = 1
    issues = [i for i in rec.of(ProtocolIssue) if i.problem == "disk_full"]
    assert issues and issues[0].message.startswith("The disk is full: ")
    # Everything written before is still there and the file is sound.
    assert rows(cache, "SELECT COUNT(*) FROM messages WHERE direction = 'out'")[0][0] == len(
        written
    )
    assert integrity(cache) == "ok"
    # The engine is still running: a draft save is refused the same way, in words.
    with pytest.raises(DiskFullError):
        engine.save_draft(conv, "y" * 400_000).result(20)

    with contextlib.suppress(FileNotFoundError):
        filler.unlink()
    if not how.startswith("tmpfs"):
        # A capped cache has no space to free: lift the cap and start the app again.
        os.environ.pop(MAX_PAGES_ENV, None)
        engine.stop()
        engine, rec = engines(router.url, str(cache))
    after = "after the disk was freed"
    wait_until(lambda: _try_send(engine, conv, after), timeout=30, what="a write to succeed")
    written.append(after)
    wait_converged(router, cache, "a-ana")
    at_router = [r[0] for r in rows(router.db, "SELECT body FROM messages WHERE direction = 'out'")]
    counts.tally(written, at_router)
    counts.extra["refused_writes"] = refused
    counts.report()
    assert counts.lost == 0 and counts.duplicated == 0


def _try_send(engine: Any, conv: str, body: str) -> bool:
    try:
        engine.send_message(conv, body).result(20)
    except DiskFullError:
        return False
    return True
