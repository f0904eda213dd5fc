"""Stopping, killing and restarting the router process on the same database and port:
event seqs, messages and command-id dedup continue; an agent who stays away goes offline."""

from __future__ import annotations

import signal
import sqlite3
import uuid
from asyncio import run
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.router_proc import AgentConn, RouterProcess
from tests.support.wait import wait_until


def test_sigterm_stops_cleanly_with_status_0_closing_sessions(router: RouterProcess) -> None:
    async def scenario() -> None:
        conn = await AgentConn.open(router.ws_url, router.login("ana"))
        await conn.resume(0)
        assert router.proc is not None
        router.proc.send_signal(signal.SIGTERM)
        with pytest.raises(websockets.ConnectionClosed) as info:
            await conn.until(lambda f: False)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1012

    run(scenario())
    assert router.proc is not None
    assert router.proc.wait(10) == 0
    assert "Application shutdown complete" in router.stderr_tail()
    assert "Traceback" not in router.stderr_tail()


def test_a_repeated_sigterm_still_shuts_down_cleanly(router: RouterProcess) -> None:
    assert router.proc is not None
    router.proc.send_signal(signal.SIGTERM)
    router.proc.send_signal(signal.SIGTERM)
    assert router.proc.wait(10) == 0
    assert "Application shutdown complete" in router.stderr_tail()
    assert "Traceback" not in router.stderr_tail()


def test_sigint_stops_cleanly_with_status_0(router: RouterProcess) -> None:
    assert router.proc is not None
    router.proc.send_signal(signal.SIGINT)
    assert router.proc.wait(10) == 0


def test_demo_agents_need_the_password_in_the_environment(tmp_path: Path) -> None:
    proc = RouterProcess(
        tmp_path / "r.db", ["--demo-agents"], env={"SWITCHBOARD_DEMO_PASSWORD": ""}
    )
    with pytest.raises(RuntimeError, match="SWITCHBOARD_DEMO_PASSWORD"):
        proc.start()


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_restart_on_the_same_db_continues_where_it_left_off(
    demo_router: RouterProcess, kill: bool
) -> None:
    token = demo_router.login("ana")
    port = demo_router.port
    command_id, message_id = str(uuid.uuid4()), str(uuid.uuid4())

    async def before_restart() -> tuple[int, dict, str]:
        conn = await AgentConn.open(demo_router.ws_url, token)
        frames, _ = await conn.resume(0)
        mine = next(
            c
            for f in frames
            for c in f["conversations"]
            if c["assigned_agent"] == "a-ana" and c["channel"] == "sms"
        )
        ack = await conn.command(
            "send_message",
            command_id,
            conversation_id=mine["id"],
            message_id=message_id,
            body="Back soon",
            format="text",
        )
        assert ack["ok"]
        await conn.event("message", lambda e: e["message"]["id"] == message_id)
        await conn.close()
        return conn.events()[-1]["seq"], ack, mine["id"]

    last_seq, first_ack, conversation = run(before_restart())
    demo_router.restart(kill=kill)
    assert demo_router.port == port

    async def after_restart() -> None:
        conn = await AgentConn.open(demo_router.ws_url, token)  # the token survived
        replayed, live = await conn.resume(last_seq)
        assert [f["type"] for f in replayed] == ["event"] * len(replayed)
        assert live["seq"] >= last_seq
        again = await conn.command(
            "send_message",
            command_id,
            conversation_id=conversation,
            message_id=message_id,
            body="Back soon",
            format="text",
        )
        assert again == first_ack
        ack = await conn.command("set_state", state="available")
        assert ack["ok"]
        state = await conn.event("agent_state")
        assert state["seq"] == live["seq"] + 1
        await conn.close()

    run(after_restart())
    messages = httpx.get(
        f"{demo_router.url}/api/conversations/{conversation}/messages",
        headers={"Authorization": f"Bearer {token}"},
    ).json()["messages"]
    assert [m["id"] for m in messages].count(message_id) == 1
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))


def test_disconnected_agent_goes_offline_after_the_grace_period(tmp_path: Path) -> None:
    with RouterProcess(tmp_path / "r.db", ["--demo-agents", "--grace", "1"]) as proc:
        token = proc.login("ana")

        def agents() -> dict[str, int]:
            return dict(httpx.get(f"{proc.url}/health").json()["agents"])

        async def go_available_and_drop() -> None:
            conn = await AgentConn.open(proc.ws_url, token)
            await conn.resume(0)
            assert (await conn.command("set_state", state="available"))["ok"]
            assert agents().get("available") == 1  # still there while connected
            await conn.close()

        run(go_available_and_drop())
        wait_until(
            lambda: agents().get("available", 0) == 0,
            timeout=10,
            what="ana to go offline after the grace period",
        )

        async def learn_it_on_return() -> None:
            conn = await AgentConn.open(proc.ws_url, token)
            await conn.resume(1)
            state = await conn.event("agent_state", lambda e: e["state"] == "offline")
            assert state["event"]["reason"] == "disconnected"
            await conn.close()

        run(learn_it_on_return())


def test_kill_9_mid_stream_loses_nothing_and_duplicates_nothing(
    demo_router: RouterProcess,
) -> None:
    """Commands pipelined, the router killed after some acks, then the client resends every
    command with the same ids (as an outbox does): each acts exactly once."""
    token = demo_router.login("ana")
    count = 40
    commands = [(str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(count)]

    async def first_session() -> tuple[str, dict[str, dict], int]:
        conn = await AgentConn.open(demo_router.ws_url, token)
        frames, live = await conn.resume(0)
        mine = next(
            c
            for f in frames
            for c in f["conversations"]
            if c["assigned_agent"] == "a-ana" and c["channel"] == "email"
        )
        for command_id, message_id in commands:
            await conn.send(
                {
                    "type": "command",
                    "id": command_id,
                    "name": "add_note",
                    "args": {
                        "conversation_id": mine["id"],
                        "message_id": message_id,
                        "body": f"note {message_id}",
                    },
                }
            )
        await conn.until(lambda f: sum(x["type"] == "ack" for x in conn.frames) >= 10)
        demo_router.kill()
        acks = {f["id"]: f for f in conn.frames if f["type"] == "ack"}
        seqs = [f["seq"] for f in conn.events()]
        assert seqs == list(range(live["seq"] + 1, live["seq"] + 1 + len(seqs)))
        return mine["id"], acks, seqs[-1] if seqs else live["seq"]

    conversation, early_acks, cursor = run(first_session())
    assert 10 <= len(early_acks) <= count
    demo_router.start()

    async def second_session() -> dict[str, dict]:
        conn = await AgentConn.open(demo_router.ws_url, token)
        replayed, live = await conn.resume(cursor)
        assert [f["seq"] for f in replayed] == list(range(cursor + 1, live["seq"] + 1))
        acks = {}
        for command_id, message_id in commands:
            acks[command_id] = await conn.command(
                "add_note",
                command_id,
                conversation_id=conversation,
                message_id=message_id,
                body=f"note {message_id}",
            )
        await conn.close()
        return acks

    acks = run(second_session())
    assert all(a["ok"] for a in acks.values())
    for command_id, ack in early_acks.items():
        assert acks[command_id] == ack
    messages = httpx.get(
        f"{demo_router.url}/api/conversations/{conversation}/messages",
        headers={"Authorization": f"Bearer {token}"},
    ).json()["messages"]
    ids = [m["id"] for m in messages]
    assert sorted(i for i in ids if i in {m for _, m in commands}) == sorted(m for _, m in commands)
    assert len(ids) == len(set(ids))
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))
    # Acks carry the message seq; each seq belongs to exactly one of our notes.
    assert len({a["result"]["seq"] for a in acks.values()}) == count


def test_a_taken_port_is_reported_and_exits_non_zero(router: RouterProcess, tmp_path: Path) -> None:
    second = RouterProcess(tmp_path / "other.db", ["--demo-agents"], port=router.port)
    with pytest.raises(RuntimeError, match=r"cannot listen on 127\.0\.0\.1 port"):
        second.start()
    assert second.proc is not None and second.proc.returncode == 1


def test_event_retention_prunes_at_start_and_an_old_cursor_gets_a_snapshot(tmp_path: Path) -> None:
    """`--event-retention N` keeps the last N events of each stream (pruned at start), so a
    cursor from before them resumes with a snapshot and then the kept events. No live
    metrics: a push to ana while she is connected would land after the `live` read as the
    stream's head (it did in about one run in six)."""
    proc = RouterProcess(
        tmp_path / "r.db", ["--demo-agents", "--log-level", "DEBUG", "--metrics-interval", "0"]
    )
    with proc:
        token = proc.login("ana")
        for i in range(6):
            proc.inbound("chat", "v-keep", "Visitor", f"line {i}", "support")

        async def head() -> int:
            conn = await AgentConn.open(proc.ws_url, token)
            _, live = await conn.resume(0)
            await conn.close()
            return int(live["seq"])

        last = run(head())
    assert last > 4
    proc.args += ["--event-retention", "2"]
    with proc.start():
        kept = sqlite3_rows(proc.db, "SELECT seq FROM events WHERE agent_id = 'a-ana' ORDER BY seq")
        assert kept == [(last - 1,), (last,)]

        async def resume_from_before_them() -> None:
            conn = await AgentConn.open(proc.ws_url, token)
            frames, live = await conn.resume(1)
            assert frames[0]["type"] == "snapshot" and frames[0]["seq"] == last
            assert live["seq"] == last
            await conn.close()

        run(resume_from_before_them())


def test_event_retention_below_one_is_refused(tmp_path: Path) -> None:
    proc = RouterProcess(tmp_path / "r.db", ["--demo-agents", "--event-retention", "0"])
    with pytest.raises(RuntimeError, match="event-retention"):
        proc.start()


def sqlite3_rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()
