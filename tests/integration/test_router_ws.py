"""The `/agent/v1` session on a real router process with the real `websockets` client:
hello, resume (snapshot or replay), live events, commands, refusals."""

from __future__ import annotations

import json
import uuid
from asyncio import run
from pathlib import Path

import httpx

from sync.protocol import MAX_BODY_CHARS, MAX_FRAME_BYTES, parse_server_frame
from tests.support.router_proc import AgentConn, RouterProcess
from tests.support.wait import async_wait_until


def _ana_conversations(frames: list[dict]) -> dict[str, dict]:
    return {c["id"]: c for f in frames if f["type"] == "snapshot" for c in f["conversations"]}


def test_hello_then_snapshot_then_live_on_a_fresh_cache(demo_router: RouterProcess) -> None:
    async def scenario() -> None:
        conn = await AgentConn.open(demo_router.ws_url, demo_router.login("ana"))
        assert conn.hello["protocol"] == 1
        assert conn.hello["agent"]["id"] == "a-ana"
        before, live = await conn.resume(0)
        # Every frame is valid for the client's own parser.
        for frame in [conn.hello, *before, live]:
            parse_server_frame(json.dumps(frame))
        assert [f["type"] for f in before] == ["snapshot"]
        snapshot = before[0]
        assert snapshot["last"] is True and snapshot["seq"] == live["seq"]
        conversations = _ana_conversations(before)
        mine = [c for c in conversations.values() if c["assigned_agent"] == "a-ana"]
        assert sorted(c["channel"] for c in mine) == ["chat", "email", "sms"]
        # the queued support chat is visible to ana; the queued billing email is not
        assert {c["queue"] for c in conversations.values()} <= {"support", "sales"}
        assert any(c["status"] == "queued" for c in conversations.values())
        ids = {c["id"] for c in conversations.values()}
        assert {m["conversation_id"] for m in snapshot["messages"]} == ids
        assert len(snapshot["messages"]) >= 8
        for customer in snapshot["customers"]:
            assert {i["kind"] for i in customer["identities"]} == {"email", "chat", "phone"}
        assert snapshot["agent_state"]["state"] == "offline"
        await conn.close()

    run(scenario())


def test_replay_after_since_then_live_events(demo_router: RouterProcess) -> None:
    async def scenario() -> None:
        token = demo_router.login("ana")
        conn = await AgentConn.open(demo_router.ws_url, token)
        _, live = await conn.resume(0)
        cursor = live["seq"]
        ack = await conn.command("set_state", state="available")
        assert ack == {"type": "ack", "id": ack["id"], "ok": True, "result": {"state": "available"}}
        state = await conn.event("agent_state")
        assert state["seq"] == cursor + 1 and state["event"]["state"] == "available"
        # A customer writes in: ana (support, available) is offered it live.
        conversation = demo_router.inbound(
            "chat", "visitor-new", "New Person", "Hi there", "support"
        )
        offer = await conn.event("offer", lambda e: e["offer"]["conversation_id"] == conversation)
        # The queued support chat of the seed may have been offered first; either way the
        # stream has no gaps.
        seqs = [f["seq"] for f in conn.events()]
        assert seqs == list(range(cursor + 1, cursor + 1 + len(seqs)))
        last = seqs[-1]
        await conn.close()

        # Reconnect from the middle: replay exactly what came after, then live.
        again = await AgentConn.open(demo_router.ws_url, token)
        replayed, live2 = await again.resume(cursor)
        assert all(f["type"] == "event" for f in replayed)
        assert [f["seq"] for f in replayed] == list(range(cursor + 1, live2["seq"] + 1))
        assert live2["seq"] >= last
        assert replayed[: len(seqs)] == conn.events()
        assert any(
            f["event"].get("offer", {}).get("id") == offer["event"]["offer"]["id"] for f in replayed
        )
        accepted = await again.command("accept", offer_id=offer["event"]["offer"]["id"])
        assert accepted["ok"] and accepted["result"] == {"conversation_id": conversation}
        await again.close()

    run(scenario())


def test_same_command_id_twice_acts_once_and_returns_the_same_ack(
    demo_router: RouterProcess,
) -> None:
    async def scenario() -> None:
        token = demo_router.login("ana")
        conn = await AgentConn.open(demo_router.ws_url, token)
        before, _ = await conn.resume(0)
        mine = next(
            c
            for c in _ana_conversations(before).values()
            if c["assigned_agent"] == "a-ana" and c["channel"] == "email"
        )
        command_id, message_id = str(uuid.uuid4()), str(uuid.uuid4())
        args = {
            "conversation_id": mine["id"],
            "message_id": message_id,
            "body": "On it!",
            "format": "text",
        }
        first = await conn.command("send_message", command_id, **args)
        second = await conn.command("send_message", command_id, **args)
        assert first["ok"] and first == second
        messages = httpx.get(
            f"{demo_router.url}/api/conversations/{mine['id']}/messages",
            headers={"Authorization": f"Bearer {token}"},
        ).json()["messages"]
        assert [m["id"] for m in messages].count(message_id) == 1
        assert messages[-1]["seq"] == first["result"]["seq"]
        message_events = [
            f
            for f in conn.events()
            if f["event"]["kind"] == "message" and f["event"]["message"]["id"] == message_id
        ]
        assert len(message_events) == 1
        await conn.close()

    run(scenario())


def test_malformed_frames_get_an_error_and_the_connection_is_kept(
    router: RouterProcess,
) -> None:
    async def scenario() -> None:
        conn = await AgentConn.open(router.ws_url, router.login("ben"))
        await conn.resume(0)
        for text, code in [
            ("not json", "bad_frame"),
            ("[1, 2]", "bad_frame"),
            ('{"no": "type"}', "bad_frame"),
            ('{"type": "dance"}', "unknown_type"),
            ('{"type": "command", "id": "x", "name": "accept"}', "bad_command"),
        ]:
            await conn.send(text)
            error = await conn.until(lambda f: f["type"] == "error")
            assert error["code"] == code, (text, error)
            assert error["message"]
        # Commands with a usable id are answered with a refused ack for that id.
        unknown = await conn.command("dance")
        assert unknown["ok"] is False and unknown["error"]["code"] == "unknown_command"
        bad_args = await conn.command("set_state", state="asleep")
        assert bad_args["error"]["code"] == "bad_command"
        # ...and the same connection still works.
        ok = await conn.command("set_state", state="away", reason="break")
        assert ok["ok"] and ok["result"] == {"state": "away"}
        assert (await conn.event("agent_state"))["event"]["reason"] == "break"
        await conn.close()

    run(scenario())


def test_a_conversation_of_another_team_is_forbidden(demo_router: RouterProcess) -> None:
    async def scenario() -> None:
        billing = demo_router.inbound("sms", "+15550001111", "Bill Payer", "Refund?", "billing")
        conn = await AgentConn.open(demo_router.ws_url, demo_router.login("ana"))
        before, _ = await conn.resume(0)
        assert billing not in _ana_conversations(before)
        for name, extra in [("send_message", {"format": "text"}), ("add_note", {})]:
            ack = await conn.command(
                name, conversation_id=billing, message_id=str(uuid.uuid4()), body="peek", **extra
            )
            assert ack["ok"] is False and ack["error"]["code"] == "forbidden", ack
        ack = await conn.command("wrap_up", conversation_id=billing, disposition="x")
        assert ack["error"]["code"] == "forbidden"
        missing = await conn.command(
            "add_note", conversation_id="c-nope", message_id=str(uuid.uuid4()), body="x"
        )
        assert missing["error"]["code"] == "not_found"
        # ana never received anything about it.
        assert billing not in json.dumps(conn.frames)
        await conn.close()

    run(scenario())


def test_over_long_body_and_over_large_frame_are_refused(demo_router: RouterProcess) -> None:
    async def scenario() -> None:
        token = demo_router.login("ana")
        conn = await AgentConn.open(demo_router.ws_url, token)
        before, _ = await conn.resume(0)
        mine = next(
            c for c in _ana_conversations(before).values() if c["assigned_agent"] == "a-ana"
        )
        ack = await conn.command(
            "send_message",
            conversation_id=mine["id"],
            message_id=str(uuid.uuid4()),
            body="x" * (MAX_BODY_CHARS + 1),
            format="text",
        )
        assert ack["ok"] is False and ack["error"]["code"] == "too_large"
        await conn.send(
            json.dumps(
                {
                    "type": "command",
                    "id": str(uuid.uuid4()),
                    "name": "add_note",
                    "args": {"body": "y" * MAX_FRAME_BYTES},
                }
            )
        )
        error = await conn.until(lambda f: f["type"] == "error")
        assert error["code"] == "too_large"
        # Connection kept: a body of exactly the limit goes through.
        ok = await conn.command(
            "send_message",
            conversation_id=mine["id"],
            message_id=str(uuid.uuid4()),
            body="z" * MAX_BODY_CHARS,
            format="text",
        )
        assert ok["ok"], ok
        await conn.close()

    run(scenario())


def test_demo_customer_answers_an_agent_reply(demo_router: RouterProcess) -> None:
    async def scenario() -> None:
        token = demo_router.login("ana")
        conn = await AgentConn.open(demo_router.ws_url, token)
        before, _ = await conn.resume(0)
        mine = next(
            c
            for c in _ana_conversations(before).values()
            if c["assigned_agent"] == "a-ana" and c["channel"] == "chat"
        )
        ack = await conn.command(
            "send_message",
            conversation_id=mine["id"],
            message_id=str(uuid.uuid4()),
            body="Yes, monthly works.",
            format="text",
        )
        assert ack["ok"]
        answer = await conn.event(
            "message",
            lambda e: (
                e["message"]["conversation_id"] == mine["id"] and e["message"]["direction"] == "in"
            ),
            timeout=15,
        )
        assert answer["event"]["message"]["seq"] == ack["result"]["seq"] + 1
        await conn.close()

    run(scenario())


def test_offer_times_out_and_goes_to_the_next_agent(tmp_path: Path) -> None:
    async def scenario(proc: RouterProcess) -> None:
        ana = await AgentConn.open(proc.ws_url, proc.login("ana"))
        ben = await AgentConn.open(proc.ws_url, proc.login("ben"))
        for conn in (ben, ana):  # ben available first: he is the longest idle
            await conn.resume(0)
            assert (await conn.command("set_state", state="available"))["ok"]
        conversation = proc.inbound("chat", "v-1", "Visitor", "Anyone?", "support")
        first = await ben.event("offer")
        assert first["event"]["offer"]["conversation_id"] == conversation
        revoked = await ben.event("offer_revoked", timeout=10)
        assert revoked["event"] == {
            "kind": "offer_revoked",
            "offer_id": first["event"]["offer"]["id"],
            "reason": "timeout",
        }
        second = await ana.event("offer", timeout=10)
        assert second["event"]["offer"]["conversation_id"] == conversation
        late = await ben.command("accept", offer_id=first["event"]["offer"]["id"])
        assert late["error"]["code"] == "offer_gone"
        declined = await ana.command("decline", offer_id=second["event"]["offer"]["id"])
        assert declined["ok"]
        await async_wait_until(
            lambda: httpx.get(f"{proc.url}/health").json()["queued"] == 1, what="requeued"
        )
        await ana.close()
        await ben.close()

    with RouterProcess(tmp_path / "r.db", ["--demo-agents", "--offer-timeout", "1"]) as proc:
        run(scenario(proc))
