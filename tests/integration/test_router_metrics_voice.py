"""Voice abandons from the calls the agent's phone reports, end to end: `SyncEngine.call_event`
-> outbox -> the real router process over a real websocket -> the fact log -> the export
(JSON and CSV), Prometheus `/metrics` and the agent's live `metrics` event stored in the
client's cache (docs/metrics.md, "Voice").

The phone's `at` times are chosen by the test, so the ring times are exact without waiting.
"""

from __future__ import annotations

import csv
import io
import json
from asyncio import run
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sync.client import SyncEngine
from sync.store import open_readonly
from tests.support.router_proc import DEMO_PASSWORD, AgentConn, RouterProcess
from tests.support.wait import wait_until


@pytest.fixture
def engine(router: RouterProcess, tmp_path: Path) -> Iterator[SyncEngine]:
    sync = SyncEngine(
        tmp_path / "cache.db",
        router.url,
        on_change=lambda change: None,
        username="ana",
        password=DEMO_PASSWORD,
        backoff_cap=1.0,
    )
    sync.start()
    sync.cache_ready.result(10)
    try:
        yield sync
    finally:
        sync.stop()


def cached(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = open_readonly(path)
    try:
        return [tuple(r) for r in conn.execute(sql).fetchall()]
    finally:
        conn.close()


def router_time(router: RouterProcess) -> float:
    return float(httpx.get(f"{router.url}/health", timeout=10).json()["time"])


def export(router: RouterProcess, **params: str) -> httpx.Response:
    now = router_time(router)
    sam = {"Authorization": f"Bearer {router.login('sam')}"}
    query = {"from": str(now - 3600), "to": str(now + 60), "interval": "day", **params}
    return httpx.get(f"{router.url}/api/metrics/export", params=query, headers=sam, timeout=10)


def test_caller_cancel_is_an_abandon_declined_is_not_answered_is_handled(
    router: RouterProcess, engine: SyncEngine, tmp_path: Path
) -> None:
    t = router_time(router)

    def report(call_id: str, state: str, at: float, **why: Any) -> None:
        engine.call_event(call_id, "in", "+15550100", state, t + at, **why).result(10)

    report("k1", "ringing", 0.0)
    report("k1", "missed", 12.5, reason="caller_cancel", code=487)  # the caller gave up
    report("k2", "ringing", 20.0)
    report("k2", "missed", 24.0, reason="declined", code=486)  # ana declined
    report("k3", "ringing", 30.0)
    report("k3", "connected", 33.0)
    report("k3", "ended", 90.0, code=200)
    cache = tmp_path / "cache.db"
    wait_until(
        lambda: cached(cache, "SELECT COUNT(*) FROM outbox") == [(0,)],
        what="the router acknowledged every call_event",
    )

    rows = export(router).json()["rows"]
    for dim, key in (("channel", "voice"), ("agent", "a-ana"), ("total", "all")):
        (row,) = [r for r in rows if (r["dimension"], r["key"]) == (dim, key)]
        assert (row["offered"], row["handled"], row["abandoned"]) == (3, 1, 1), row
        assert row["abandon_time"] == 12.5
        assert (row["asa"], row["service_level"]) == (None, None)  # PBX queue wait unseen
    assert not [r for r in rows if r["dimension"] == "queue"]  # no queue the router knows

    text = export(router, format="csv").text
    (voice,) = [r for r in csv.DictReader(io.StringIO(text)) if r["key"] == "voice"]
    assert (voice["abandoned"], voice["abandon_time"]) == ("1", "12.5")

    scrape = httpx.get(f"{router.url}/metrics", timeout=10).text
    assert 'switchboard_channel_today{channel="voice",figure="abandoned"} 1.0' in scrape
    assert 'switchboard_channel_today{channel="voice",figure="offered"} 3.0' in scrape
    assert 'switchboard_channel_abandon_time_seconds{channel="voice"} 12.5' in scrape
    assert 'switchboard_channel_today{channel="chat",figure="abandoned"} 0.0' in scrape

    # Ana's own live figures reach her app's cache with the next push.
    def live() -> dict[str, Any]:
        return {k: json.loads(v) for k, v in cached(cache, "SELECT key, value FROM metrics")}

    figures = wait_until(
        lambda: (m := live()).get("abandoned") == 1 and m, what="the live abandoned figure"
    )
    assert (figures["offered"], figures["handled"], figures["abandon_time"]) == (3, 1, 12.5)


def test_the_router_refuses_a_call_event_with_a_bad_reason_or_code(router: RouterProcess) -> None:
    async def scenario() -> None:
        ana = await AgentConn.open(router.ws_url, router.login("ana"))
        await ana.resume(0)
        call = {"call_id": "k1", "direction": "in", "remote": "+15550100", "state": "missed"}
        bad_code = await ana.command("call_event", **call, at=1.0, code="487")
        assert not bad_code["ok"] and bad_code["error"]["code"] == "bad_command"
        bad_reason = await ana.command("call_event", **call, at=1.0, reason="")
        assert not bad_reason["ok"] and "reason" in bad_reason["error"]["message"]
        ok = await ana.command("call_event", **call, at=1.0, reason="caller_cancel", code=487)
        assert ok["ok"], ok
        await ana.close()

    run(scenario())
