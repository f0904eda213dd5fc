"""SyncEngine's fault handling against a scripted websocket peer on loopback.

The healthy paths run against the real router (test_sync_router.py). Here a peer speaking the
real wire format does what a router should not: skip events, speak protocol 2, send broken
frames, refuse upgrades, ack out of order. Waits are conditions with deadlines.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sync.apply import apply_event, bind_agent
from sync.changes import CommandFailed, ConnectionStatus, ProtocolIssue
from sync.client import SyncEngine
from sync.effects import backoff_delay
from sync.login import is_loopback, websocket_url
from sync.protocol import (
    Command,
    Event,
    Live,
    ProtocolError,
    Resume,
    Snapshot,
    ack_error,
    ack_ok,
)
from sync.store import open_readonly, open_store
from tests.support.recorder import Recorder
from tests.support.scripted_router import AGENT, Peer, scripted_router
from tests.support.wait import wait_until


@pytest.fixture
def engine_for(tmp_path: Path) -> Iterator[Callable[[str], tuple[SyncEngine, Recorder]]]:
    engines: list[SyncEngine] = []

    def make(url: str) -> tuple[SyncEngine, Recorder]:
        rec = Recorder()
        engine = SyncEngine(
            tmp_path / "cache.db",
            url,
            on_change=rec,
            token="t0ken",
            backoff_cap=0.5,
            rng=random.Random(7),
        )
        engines.append(engine)
        engine.start()
        engine.cache_ready.result(10)
        return engine, rec

    yield make
    for engine in engines:
        engine.stop()


def q(tmp_path: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    conn = open_readonly(tmp_path / "cache.db")
    try:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()


CONV: dict[str, Any] = {
    "kind": "conversation",
    "conversation": {
        "id": "c-1",
        "channel": "chat",
        "status": "assigned",
        "assigned_agent": "a-ana",
        "customer": {"id": "u-1", "name": "Bea", "identities": []},
    },
}


def msg(seq: int, body: str) -> dict[str, Any]:
    return {
        "kind": "message",
        "message": {
            "id": f"m-{seq}",
            "conversation_id": "c-1",
            "seq": seq,
            "direction": "in",
            "author": "Bea",
            "body": body,
            "created_at": 100.0 + seq,
        },
    }


def test_backoff_is_capped_and_jittered() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(n, rng, initial=0.5, cap=8.0) for n in range(12)]
    assert 0.25 <= delays[0] <= 0.5
    assert all(4.0 <= d <= 8.0 for d in delays[6:])
    assert len({round(d, 6) for d in delays[6:]}) > 1  # not in lock step


def test_router_addresses() -> None:
    assert websocket_url("http://127.0.0.1:8765") == "ws://127.0.0.1:8765/agent/v1"
    assert websocket_url("https://acd.example.com/") == "wss://acd.example.com/agent/v1"
    with pytest.raises(ValueError, match="Not a router address"):
        websocket_url("ftp://acd.example.com")
    assert is_loopback("http://localhost:1") and not is_loopback("https://acd.example.com")


def test_actions_are_refused_before_anything_is_written(tmp_path: Path, engine_for: Any) -> None:
    async def script(peer: Peer) -> None:
        await peer.hello()
        await peer.recv()
        await peer.send(Event(1, CONV))
        await peer.send(Live(1))

    with scripted_router(script) as router:
        engine, rec = engine_for(router.url)
        wait_until(lambda: rec.state() == "online", what="online")
        with pytest.raises(ProtocolError, match="limit is 20000"):
            engine.send_message("c-1", "x" * 20001).result(10)
        with pytest.raises(LookupError):
            engine.send_message("c-unknown", "hello").result(10)
        with pytest.raises(ProtocolError, match="state"):
            engine.set_state("sleeping").result(10)
        assert q(tmp_path, "SELECT COUNT(*) FROM outbox") == [(0,)]
        assert q(tmp_path, "SELECT COUNT(*) FROM messages") == [(0,)]
        engine.call_event("k-1", "in", "+15550100", "answered", 5.0).result(10)
        assert q(tmp_path, "SELECT name FROM outbox") == [("call_event",)]
        engine.stop()
        with pytest.raises(RuntimeError, match="stopped"):
            engine.send_message("c-1", "too late").result(10)


def test_version_mismatch_stops_until_asked(tmp_path: Path, engine_for: Any) -> None:
    async def script(peer: Peer) -> None:
        await peer.hello(protocol=2)

    with scripted_router(script) as router:
        engine, rec = engine_for(router.url)
        wait_until(lambda: rec.of(ProtocolIssue), what="the issue")
        issue = rec.of(ProtocolIssue)[0]
        assert issue.problem == "version" and issue.fatal
        assert "protocol 2" in issue.message and "update the app" in issue.message
        wait_until(lambda: rec.state() == "offline", what="offline")
        assert router.attempts == 1
        engine.reconnect_now()  # the agent asks: one more attempt, no loop
        wait_until(lambda: len(rec.of(ProtocolIssue)) == 2, what="the second attempt")
        assert router.attempts == 2


def test_a_gap_reconnects_and_resumes_from_the_stored_cursor(
    tmp_path: Path, engine_for: Any
) -> None:
    async def script(peer: Peer) -> None:
        await peer.hello()
        if peer.index == 0:
            assert await peer.recv() == Resume(0)
            await peer.send(Event(1, CONV))
            await peer.send(Event(2, msg(1, "first")))
            await peer.send(Event(4, msg(3, "third")))  # 3 is missing
            await peer.wait_closed()
        else:
            assert await peer.recv() == Resume(2)
            for seq, m in ((3, msg(2, "second")), (4, msg(3, "third"))):
                await peer.send(Event(seq, m))
            await peer.send(Live(4))

    with scripted_router(script) as router:
        _, rec = engine_for(router.url)
        wait_until(lambda: rec.state() == "online", what="online after the resume")
        assert [i.problem for i in rec.of(ProtocolIssue)] == ["gap"]
        assert q(tmp_path, "SELECT body FROM messages ORDER BY seq") == [
            ("first",),
            ("second",),
            ("third",),
        ]
        assert q(tmp_path, "SELECT value FROM sync_state WHERE key = 'cursor'") == [("4",)]
        assert len(router.peers) == 2


def test_malformed_frames_are_reported_and_the_session_goes_on(
    tmp_path: Path, engine_for: Any
) -> None:
    async def script(peer: Peer) -> None:
        await peer.hello()
        await peer.recv()
        await peer.send("{this is not json")
        await peer.send('{"type": "event", "seq": "one"}')
        await peer.send(Event(1, CONV))
        await peer.send(Live(1))

    with scripted_router(script) as router:
        _, rec = engine_for(router.url)
        wait_until(lambda: rec.state() == "online", what="online")
        issues = rec.of(ProtocolIssue)
        assert [(i.problem, i.fatal) for i in issues] == [("malformed", False)] * 2
        assert "not valid JSON" in issues[0].message and "seq" in issues[1].message
        assert q(tmp_path, "SELECT id FROM conversations") == [("c-1",)]
        assert len(router.peers) == 1


def test_commands_wait_for_live_and_acks_settle_in_any_order(
    tmp_path: Path, engine_for: Any
) -> None:
    queued = threading.Event()
    commands: list[Command] = []

    async def script(peer: Peer) -> None:
        await peer.hello()
        await peer.recv()
        await peer.send(Event(1, CONV))
        await asyncio.get_running_loop().run_in_executor(None, queued.wait, 10)
        await peer.round_trip()
        assert peer.received == [Resume(0)], "a command was sent before live"
        await peer.send(Live(1))
        commands.extend([await peer.recv(), await peer.recv()])
        assert [sent_after_live for _, sent_after_live in peer.log[1:]] == [True, True]
        first, second = commands
        await peer.send(ack_ok(second.id, {"seq": 1}))
        await peer.send(ack_error(first.id, "forbidden", "Not your conversation."))
        await peer.send(ack_error(first.id, "forbidden", "Not your conversation."))  # again
        await peer.send(ack_ok(second.id, {"seq": 1}))  # and again

    with scripted_router(script) as router:
        engine, rec = engine_for(router.url)
        wait_until(
            lambda: q(tmp_path, "SELECT id FROM conversations") == [("c-1",)],
            what="the conversation",
        )
        assert rec.state() == "connecting"
        one = engine.send_message("c-1", "one").result(10)
        two = engine.send_message("c-1", "two").result(10)
        assert q(tmp_path, "SELECT status FROM messages ORDER BY created_at, rowid") == [
            ("sending",),
            ("sending",),
        ]
        queued.set()
        wait_until(
            lambda: q(tmp_path, "SELECT COUNT(*) FROM outbox") == [(0,)], what="both acks settled"
        )
        assert [c.args["message_id"] for c in commands] == [one, two]
        assert q(tmp_path, "SELECT id, status, seq, error FROM messages ORDER BY rowid") == [
            (one, "failed", None, "Not your conversation."),
            (two, "sent", 1, None),
        ]
        failed = rec.of(CommandFailed)
        assert [(f.name, f.code, f.message_id) for f in failed] == [
            ("send_message", "forbidden", one)
        ]
        assert rec.of(ConnectionStatus)[-1].outbox == 0


def test_http_500_is_retried_and_401_is_not(tmp_path: Path, engine_for: Any) -> None:
    async def script(peer: Peer) -> None:
        await peer.hello()
        await peer.recv()
        await peer.send(Live(0))

    with scripted_router(script, refuse={0: 500, 1: 503, 3: 401}) as router:
        engine, rec = engine_for(router.url)
        wait_until(lambda: rec.state() == "online", what="online after two refusals")
        assert router.attempts == 3
        retries = [s for s in rec.of(ConnectionStatus) if s.retry_in is not None]
        assert len(retries) == 2 and all(0 < s.retry_in <= 0.5 for s in retries)
        router.close_all()  # the router drops us; the next upgrade is refused with 401
        wait_until(lambda: rec.state() == "auth_failed", what="auth_failed on 401")
        assert router.attempts == 4
        assert rec.of(ConnectionStatus)[-1].detail == "Refused with 401."
        engine.reconnect_now()
        wait_until(
            lambda: rec.of(ConnectionStatus)[-1].detail == "Please sign in.",
            what="no token left to retry with",
        )
        assert router.attempts == 4


def test_snapshot_pages_then_live(tmp_path: Path, engine_for: Any) -> None:
    async def script(peer: Peer) -> None:
        await peer.hello()
        await peer.recv()
        await peer.send(Snapshot(0, False, 9, conversations=(CONV["conversation"],)))
        await peer.send(
            Snapshot(
                1,
                True,
                9,
                messages=(msg(1, "hi")["message"],),
                agent_state={"state": "away", "reason": "lunch"},
            )
        )
        await peer.send(Live(9))

    with scripted_router(script) as router:
        _, rec = engine_for(router.url)
        wait_until(lambda: rec.state() == "online", what="online")
        assert q(tmp_path, "SELECT value FROM sync_state WHERE key = 'cursor'") == [("9",)]
        assert q(tmp_path, "SELECT body FROM messages") == [("hi",)]
        assert q(tmp_path, "SELECT state, reason FROM agent_state") == [("away", "lunch")]


def test_another_agent_on_the_same_cache_starts_from_zero(tmp_path: Path, engine_for: Any) -> None:
    db = open_store(tmp_path / "cache.db")
    bind_agent(db, "a-bob")
    apply_event(db, 1, CONV, agent_id="a-bob", now=0.0)
    db.conn.close()

    async def script(peer: Peer) -> None:
        await peer.hello(agent=AGENT)  # a-ana
        assert await peer.recv() == Resume(0)
        await peer.send(Live(0))

    with scripted_router(script) as router:
        _, rec = engine_for(router.url)
        wait_until(lambda: rec.state() == "online", what="online")
        assert q(tmp_path, "SELECT COUNT(*) FROM conversations") == [(0,)]
        assert q(tmp_path, "SELECT value FROM sync_state WHERE key = 'agent_id'") == [("a-ana",)]


def test_stop_settles_every_future_the_ui_holds(tmp_path: Path, engine_for: Any) -> None:
    async def script(peer: Peer) -> None:
        await peer.hello()
        await peer.recv()
        await peer.send(Event(1, CONV))
        await peer.send(Live(1))

    with scripted_router(script) as router:
        engine, rec = engine_for(router.url)
        wait_until(lambda: rec.state() == "online", what="online")
        futures = [engine.send_message("c-1", f"reply {i}") for i in range(50)]
        engine.stop()
        assert all(f.done() for f in futures)
        ids = [f.result() for f in futures if f.exception() is None]
        refused = [f.exception() for f in futures if f.exception() is not None]
        assert all(isinstance(e, RuntimeError) for e in refused)
        stored = {r[0] for r in q(tmp_path, "SELECT id FROM messages WHERE direction = 'out'")}
        assert stored == set(ids)
        assert rec.of(ConnectionStatus)[-1].detail == "Stopped."
