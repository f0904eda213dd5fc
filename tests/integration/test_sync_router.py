"""SyncEngine against the real router process on loopback: offers, replies, acks, restarts.

Every wait is a condition with a deadline (tests/support/wait.py); nothing sleeps for order.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sync.changes import ConnectionStatus, OfferReceived
from sync.client import SyncEngine
from sync.store import open_readonly
from tests.support.recorder import Recorder
from tests.support.router_proc import DEMO_PASSWORD, RouterProcess
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]

# The `router` fixture (tests/support/router_proc.py): the real `python -m router
# --demo-agents` on 127.0.0.1, a free port and a fresh database in tmp_path.


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[Callable[..., tuple[SyncEngine, Recorder]]]:
    engines: list[SyncEngine] = []

    def make(base_url: str, cache: str = "cache.db", **kwargs: Any) -> tuple[SyncEngine, Recorder]:
        recorder = Recorder()
        kwargs.setdefault("username", "ana")
        kwargs.setdefault("password", DEMO_PASSWORD)
        engine = SyncEngine(
            tmp_path / cache, base_url, on_change=recorder, backoff_cap=1.0, **kwargs
        )
        engines.append(engine)
        engine.start()
        engine.cache_ready.result(10)
        return engine, recorder

    yield make
    for engine in engines:
        engine.stop()


def router_rows(router: RouterProcess, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """What the router really stored, read from its database read-only."""
    conn = sqlite3.connect(f"file:{router.db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def inbound(router: RouterProcess, body: str) -> str:
    return router.inbound("chat", "visitor-1", "Bea Costa", body, "support")


def rows(path: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    conn = open_readonly(path)
    try:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()


def take_conversation(
    router: RouterProcess,
    engine: SyncEngine,
    rec: Recorder,
    cache: Path,
    text: str = "My parcel never came",
) -> str:
    """Agent available, a customer writes, the offer arrives, the agent accepts it."""
    wait_until(lambda: rec.state() == "online", what="the engine to go online")
    engine.set_state("available").result(10)
    wait_until(
        lambda: rows(cache, "SELECT state FROM agent_state") == [("available",)],
        what="agent state available in the cache",
    )
    conversation_id = inbound(router, text)
    offers = wait_until(
        lambda: [o for o in rec.of(OfferReceived) if o.conversation_id == conversation_id],
        what="the offer",
    )
    offer: OfferReceived = offers[0]
    assert offer.preview and offer.channel == "chat"
    assert rows(cache, "SELECT id FROM offers") == [(offer.offer_id,)]
    engine.accept(offer.offer_id).result(10)
    wait_until(
        lambda: (
            rows(
                cache,
                "SELECT status, assigned_agent FROM conversations WHERE id = ?",
                conversation_id,
            )
            == [("assigned", "a-ana")]
        ),
        what="the conversation assigned to ana in the cache",
    )
    wait_until(
        lambda: rows(cache, "SELECT COUNT(*) FROM offers") == [(0,)],
        what="the offer gone from the cache",
    )
    return conversation_id


def test_offer_accept_reply_ack(router: RouterProcess, make_engine: Any, tmp_path: Path) -> None:
    cache = tmp_path / "cache.db"
    engine, rec = make_engine(router.url)
    conversation_id = take_conversation(router, engine, rec, cache)
    assert rows(
        cache,
        "SELECT direction, body, status FROM messages WHERE conversation_id = ?",
        conversation_id,
    ) == [("in", "My parcel never came", "sent")]

    message_id = engine.send_message(conversation_id, "Sorry! Let me check.").result(10)
    # It is in the thread at once, then the ack marks it sent with the router's seq.
    wait_until(
        lambda: (
            rows(cache, "SELECT status, seq FROM messages WHERE id = ?", message_id)
            == [("sent", 2)]
        ),
        what="the reply acknowledged",
    )
    assert rows(cache, "SELECT COUNT(*) FROM outbox") == [(0,)]
    assert rows(
        cache, "SELECT last_message_preview FROM conversations WHERE id = ?", conversation_id
    ) == [("Sorry! Let me check.",)]
    stored = httpx.get(
        f"{router.url}/api/conversations/{conversation_id}/messages",
        headers={"Authorization": f"Bearer {router.login('ana')}"},
        timeout=10,
    ).json()
    assert [(m["id"], m["direction"], m["body"]) for m in stored["messages"]][-1] == (
        message_id,
        "out",
        "Sorry! Let me check.",
    )
    wait_until(
        lambda: rec.status() is not None and rec.status().outbox == 0,
        what="status outbox count back to 0",
    )


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_replies_written_while_the_router_is_down_arrive_once_in_order(
    router: RouterProcess, make_engine: Any, tmp_path: Path, how: str
) -> None:
    cache = tmp_path / "cache.db"
    engine, rec = make_engine(router.url)
    conversation_id = take_conversation(router, engine, rec, cache)

    # Mid-conversation: a clean shutdown, or a crash with no goodbye.
    if how == "stop":
        router.stop()
    else:
        router.kill()
    wait_until(lambda: rec.state() == "offline", what="the engine to notice")
    bodies = ["First offline reply", "Second offline reply", "Third offline reply"]
    ids = [engine.send_message(conversation_id, body).result(10) for body in bodies]
    # Written at once, marked sending, queued in order.
    assert rows(
        cache, "SELECT body, status FROM messages WHERE direction = 'out' ORDER BY created_at"
    ) == [(b, "sending") for b in bodies]
    assert [r[0] for r in rows(cache, "SELECT args FROM outbox ORDER BY pos")] and [
        r[0]
        for r in rows(cache, "SELECT json_extract(args, '$.message_id') FROM outbox ORDER BY pos")
    ] == ids
    wait_until(
        lambda: rec.status() is not None and rec.status().outbox == 3,
        what="the status to count 3 waiting",
    )

    router.start()  # same db, same port
    engine.reconnect_now()
    wait_until(
        lambda: (
            rows(cache, "SELECT COUNT(*) FROM messages WHERE direction = 'out' AND status = 'sent'")
            == [(3,)]
        ),
        timeout=20,
        what="the three replies acknowledged",
    )
    assert rows(cache, "SELECT COUNT(*) FROM outbox") == [(0,)]
    assert [
        r[0] for r in rows(cache, "SELECT id FROM messages WHERE direction = 'out' ORDER BY seq")
    ] == ids

    stored = router_rows(
        router,
        "SELECT id, body, seq FROM messages WHERE conversation_id = ? "
        "AND direction = 'out' ORDER BY seq",
        conversation_id,
    )
    assert [(r[0], r[1]) for r in stored] == list(zip(ids, bodies, strict=True))
    assert rows(cache, "SELECT seq FROM messages WHERE direction = 'out' ORDER BY seq") == [
        (r[2],) for r in stored
    ]


def test_a_restarted_client_resumes_from_its_cursor(
    router: RouterProcess, make_engine: Any, tmp_path: Path
) -> None:
    cache = tmp_path / "cache.db"
    engine, rec = make_engine(router.url)
    conversation_id = take_conversation(router, engine, rec, cache)
    engine.stop()
    cursor = int(rows(cache, "SELECT value FROM sync_state WHERE key = 'cursor'")[0][0])
    assert cursor > 0
    # The customer writes again while the app is closed.
    assert inbound(router, "Are you still there?") == conversation_id
    engine2, _rec2 = make_engine(router.url)
    wait_until(
        lambda: (
            rows(cache, "SELECT COUNT(*) FROM messages WHERE body = ?", "Are you still there?")
            == [(1,)]
        ),
        what="the missed message",
    )
    assert rows(cache, "SELECT unread FROM conversations WHERE id = ?", conversation_id) == [(2,)]
    assert int(rows(cache, "SELECT value FROM sync_state WHERE key = 'cursor'")[0][0]) > cursor
    engine2.mark_read(conversation_id).result(10)
    assert rows(cache, "SELECT unread FROM conversations WHERE id = ?", conversation_id) == [(0,)]


def test_wrong_password_stops_at_auth_failed_until_new_credentials(
    router: RouterProcess, make_engine: Any
) -> None:
    engine, rec = make_engine(router.url, password="not-the-password")
    wait_until(lambda: rec.state() == "auth_failed", what="auth_failed")
    first = rec.status()
    assert first is not None and first.retry_in is None
    assert first.detail == "Wrong username or password."  # the router's words
    # Not retried with the same password: asking again says to sign in.
    engine.reconnect_now()
    wait_until(
        lambda: rec.status() != first and rec.state() == "auth_failed", what="a second auth_failed"
    )
    assert rec.status().detail == "Please sign in."
    assert not [c for c in rec.of(ConnectionStatus) if c.state == "online"]
    engine.set_credentials("ana", DEMO_PASSWORD)
    wait_until(lambda: rec.state() == "online", what="online with the right password")


def test_a_refused_token_is_reported_with_the_routers_message(
    router: RouterProcess, make_engine: Any
) -> None:
    _engine, rec = make_engine(router.url, token="not-a-token", username=None, password=None)
    wait_until(lambda: rec.state() == "auth_failed", what="auth_failed")
    status = rec.status()
    assert status is not None
    assert status.detail == "This login is not valid; log in again."  # the router's words
    assert not [c for c in rec.of(ConnectionStatus) if c.state == "online"]


CHILD = """
import sys
import threading
from sync.client import SyncEngine
cache, url, token, conversation_id = sys.argv[1:5]
engine = SyncEngine(cache, url, on_change=lambda change: None, token=token)
engine.start()
futures = [engine.send_message(conversation_id, f"burst reply {i:03d}") for i in range(400)]
for future in futures:
    future.result(60)
threading.Event().wait()  # keep sending until killed
"""


def test_client_killed_mid_burst_loses_and_repeats_nothing(
    router: RouterProcess, make_engine: Any, tmp_path: Path
) -> None:
    cache = tmp_path / "cache.db"
    engine, rec = make_engine(router.url)
    conversation_id = take_conversation(router, engine, rec, cache)
    engine.stop()

    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(cache), router.url, router.login("ana"), conversation_id],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    try:
        # Kill at a point chosen by a fixed seed, once some replies are acknowledged.
        stop_after = random.Random(20261123).randint(10, 40)
        wait_until(
            lambda: (
                rows(
                    cache,
                    "SELECT COUNT(*) FROM messages WHERE direction = 'out' AND status = 'sent'",
                )[0][0]
                >= stop_after
                or child.poll() is not None
            ),
            timeout=60,
            what=f"{stop_after} replies sent",
        )
        assert child.poll() is None, "the child finished before it was killed"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    # rowid is the order the agent wrote them (created_at becomes the router's time once
    # acknowledged, so it is no witness of that order).
    written = rows(cache, "SELECT id, body FROM messages WHERE direction = 'out' ORDER BY rowid")
    assert len(written) >= stop_after
    assert rows(cache, "SELECT COUNT(*) FROM outbox")[0][0] > 0, "nothing was in flight"
    make_engine(router.url)
    wait_until(
        lambda: rows(cache, "SELECT COUNT(*) FROM outbox") == [(0,)],
        timeout=30,
        what="the outbox drained after the restart",
    )
    assert rows(
        cache, "SELECT COUNT(*) FROM messages WHERE direction = 'out' AND status != 'sent'"
    ) == [(0,)]
    stored = router_rows(
        router,
        "SELECT id, body FROM messages WHERE conversation_id = ? "
        "AND direction = 'out' ORDER BY seq",
        conversation_id,
    )
    # Everything the cache holds reached the router exactly once, in the order it was written.
    assert stored == written
    assert len({body for _, body in stored}) == len(stored)


def test_a_fresh_cache_fills_from_the_routers_snapshot(
    demo_router: RouterProcess, make_engine: Any, tmp_path: Path
) -> None:
    cache = tmp_path / "cache.db"
    _, rec = make_engine(demo_router.url)
    wait_until(lambda: rec.state() == "online", what="online")
    theirs = router_rows(
        demo_router, "SELECT id FROM conversations WHERE assigned_agent = ?", "a-ana"
    )
    assert theirs, "the demo router assigns conversations to ana"
    mine = rows(
        cache, "SELECT id, last_message_preview, last_message_at, unread FROM conversations"
    )
    assert {r[0] for r in theirs} <= {r[0] for r in mine}
    for _, preview, last_at, unread in mine:
        assert preview and last_at and unread == 0  # history, not news
    stored = router_rows(
        demo_router,
        "SELECT COUNT(*) FROM messages m JOIN conversations c "
        "ON c.id = m.conversation_id WHERE c.assigned_agent = ?",
        "a-ana",
    )[0][0]
    cached = rows(
        cache,
        "SELECT COUNT(*) FROM messages m JOIN conversations c "
        "ON c.id = m.conversation_id WHERE c.assigned_agent = 'a-ana'",
    )[0][0]
    assert cached == stored
    cursor = int(rows(cache, "SELECT value FROM sync_state WHERE key = 'cursor'")[0][0])
    assert cursor > 0
