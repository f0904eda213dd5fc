"""Shared pieces of the fault-injection suite: counts, engines, router reads, convergence.

Why one module: every fault test ends the same way (count what the agent wrote, what the
router holds, what was lost or doubled, and compare the cache with the router row by row),
and the counts are printed in one format so a CI log shows them side by side.
The long variants run with SWITCHBOARD_LONG=1 (`pytest -m long` selects only them).
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from sync.changes import Change, OfferReceived
from sync.client import SyncEngine
from tests.support.recorder import Recorder
from tests.support.router_proc import DEMO_PASSWORD, RouterProcess
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
LONG = os.environ.get("SWITCHBOARD_LONG") == "1"


REPORTED: list[str] = []
"""Every count line of this session, printed again in pytest's terminal summary (conftest)
so CI logs show them even when output is captured."""


def scale(short: int, long: int) -> int:
    """How many faults: the short form in the default run, the issue's figure when long."""
    return long if LONG else short


@dataclass
class FaultCounts:
    """What a fault run did; `lost` and `duplicated` must end at 0."""

    name: str
    faults: int = 0
    written: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def tally(self, written: Iterable[str], at_router: Iterable[str]) -> None:
        """`written`: bodies the agent saw as written; `at_router`: every matching body the
        router stored (repeats included)."""
        mine = set(written)
        seen = Counter(at_router)
        self.written = len(mine)
        self.delivered = sum(1 for body in mine if seen[body] >= 1)
        self.lost = len(mine) - self.delivered
        self.duplicated = sum(n - 1 for n in seen.values() if n > 1)

    def report(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in self.extra.items())
        line = (
            f"FAULT COUNTS [{self.name}] faults injected={self.faults} "
            f"messages written={self.written} delivered={self.delivered} "
            f"lost={self.lost} duplicated={self.duplicated}{extra}"
        )
        print("\n" + line)
        REPORTED.append(line)
        return line


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[Callable[..., tuple[SyncEngine, Recorder]]]:
    """`engines(url, cache_name, username=...)` -> a started engine and its recorder;
    every engine is stopped after the test."""
    made: list[SyncEngine] = []

    def make(
        base_url: str, cache: str = "cache.db", *, auto_accept: bool = False, **kwargs: Any
    ) -> tuple[SyncEngine, Recorder]:
        holder: dict[str, SyncEngine] = {}

        def accept(change: Change) -> None:
            if auto_accept and isinstance(change, OfferReceived) and "e" in holder:
                holder["e"].accept(change.offer_id)  # queued; the ack settles it

        recorder = Recorder(accept)
        kwargs.setdefault("username", "ana")
        kwargs.setdefault("password", DEMO_PASSWORD)
        engine = SyncEngine(
            tmp_path / cache, base_url, on_change=recorder, backoff_cap=0.5, **kwargs
        )
        holder["e"] = engine
        made.append(engine)
        engine.start()
        engine.cache_ready.result(20)
        return engine, recorder

    yield make
    for engine in made:
        engine.stop()


def rows(path: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Read a SQLite file read-only (the cache or the router's database)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()


def integrity(path: Path) -> str:
    """`PRAGMA integrity_check` of a cache file after a fault ('ok' when sound)."""
    conn = sqlite3.connect(str(path))
    try:
        return "; ".join(r[0] for r in conn.execute("PRAGMA integrity_check").fetchall())
    finally:
        conn.close()


def inbound(
    router: RouterProcess, body: str, visitor: str = "visitor-1", queue: str = "support"
) -> str | None:
    """A customer writes in; None when the router is down (the fault under test)."""
    try:
        return router.inbound("chat", visitor, f"Visitor {visitor}", body, queue)
    except (httpx.HTTPError, OSError):
        return None


def router_head(router: RouterProcess, agent_id: str) -> int:
    return int(
        rows(router.db, "SELECT COALESCE(MAX(seq), 0) FROM events WHERE agent_id = ?", agent_id)[0][
            0
        ]
    )


def wait_converged(router: RouterProcess, cache: Path, agent_id: str, timeout: float = 60) -> None:
    """Outbox empty and cursor at the router's head for this agent."""

    def done() -> bool:
        out = rows(cache, "SELECT COUNT(*) FROM outbox")[0][0]
        cur = rows(cache, "SELECT value FROM sync_state WHERE key = 'cursor'")
        return out == 0 and bool(cur) and int(cur[0][0]) == router_head(router, agent_id)

    wait_until(done, timeout=timeout, what=f"{agent_id}'s cache to catch up with the router")


def compare_with_router(router: RouterProcess, cache: Path, agent_id: str) -> list[str]:
    """Row-by-row differences between the cache and the router for this agent's view:
    every conversation assigned to the agent, and every conversation the cache holds, has
    the same messages (id, seq, direction, body) and fields (status, assigned agent)."""
    problems: list[str] = []
    assigned = {
        r[0]
        for r in rows(router.db, "SELECT id FROM conversations WHERE assigned_agent = ?", agent_id)
    }
    cached = {r[0] for r in rows(cache, "SELECT id FROM conversations")}
    missing = assigned - cached
    if missing:
        problems.append(f"assigned to {agent_id} at the router but not cached: {sorted(missing)}")
    for conv in sorted(cached & assigned):
        theirs = rows(
            router.db,
            "SELECT id, seq, direction, body FROM messages WHERE conversation_id = ? ORDER BY seq",
            conv,
        )
        mine = rows(
            cache,
            "SELECT id, seq, direction, body FROM messages WHERE conversation_id = ? ORDER BY seq",
            conv,
        )
        if theirs != mine:
            problems.append(f"{conv}: messages differ (router {len(theirs)}, cache {len(mine)})")
        rf = rows(router.db, "SELECT status, assigned_agent FROM conversations WHERE id = ?", conv)
        cf = rows(cache, "SELECT status, assigned_agent FROM conversations WHERE id = ?", conv)
        if rf != cf:
            problems.append(f"{conv}: fields differ (router {rf}, cache {cf})")
    return problems
