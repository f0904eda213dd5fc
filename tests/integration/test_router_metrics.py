"""The metrics service against the real router process: live `metrics` events over the
websocket (at most once a second), Prometheus `/metrics`, the supervisor's CSV/JSON export and
its refusals, the supervisor's view of their queues."""

from __future__ import annotations

import asyncio
import csv
import io
from asyncio import run
from itertools import pairwise

import httpx
import pytest

from tests.support.router_proc import AgentConn, RouterProcess
from tests.support.wait import wait_until


def test_live_metrics_reach_the_agent_at_most_once_a_second(router: RouterProcess) -> None:
    async def scenario() -> None:
        ana = await AgentConn.open(router.ws_url, router.login("ana"))
        await ana.resume(0)
        assert (await ana.command("set_state", state="away", reason="Break"))["ok"]
        waiting = router.inbound("chat", "v-1", "Visitor", "hello", "support")
        first = await ana.event(
            "metrics", lambda e: e["metrics"]["queues"]["support"]["depth"] == 1, timeout=10
        )
        figures = first["event"]["metrics"]
        assert set(figures["queues"]) == {"support", "sales"}  # ana's queues only
        assert figures["handled"] == 0 and figures["queues"]["support"]["agents"] == {
            "away": 1,
            "offline": 1,
        }
        # The waiting chat's wait grows every second: three more pushes, each >= 1 s apart.
        for _ in range(3):
            await ana.event("metrics", timeout=10)
        times = [
            f["event"]["metrics"]["at"] for f in ana.events() if f["event"]["kind"] == "metrics"
        ]
        assert all(b - a >= 0.9 for a, b in pairwise(times)), times
        assert figures["queues"]["support"]["service_level_now"] is None
        # The customer gives up: service level now (last 30 min) is pushed as 0.
        abandon = httpx.post(
            f"{router.url}/api/demo/abandon", json={"conversation_id": waiting}, timeout=10
        )
        assert abandon.json() == {"abandoned": True}
        await ana.event(
            "metrics",
            lambda e: e["metrics"]["queues"]["support"]["service_level_now"] == 0.0,
            timeout=10,
        )
        await ana.close()

    run(scenario())


def test_prometheus_metrics_show_queue_depth_and_agents(router: RouterProcess) -> None:
    router.inbound("email", "x@example.com", "X", "hello", "billing")
    text = httpx.get(f"{router.url}/metrics", timeout=10).text
    assert "switchboard_queue_service_level_now_ratio{" not in text  # nothing answered yet
    assert 'switchboard_queue_depth{queue="billing"} 1.0' in text
    assert 'switchboard_queue_depth{queue="support"} 0.0' in text
    assert 'switchboard_agents{state="offline"} 4.0' in text
    assert 'switchboard_queue_today{figure="offered",queue="billing"} 1.0' in text
    assert "switchboard_routing_decision_seconds_count 1.0" in text
    lost = router.inbound("chat", "v-9", "Gone", "hello?", "billing")
    assert httpx.post(
        f"{router.url}/api/demo/abandon", json={"conversation_id": lost}, timeout=10
    ).json() == {"abandoned": True}
    text = httpx.get(f"{router.url}/metrics", timeout=10).text
    assert 'switchboard_queue_service_level_now_ratio{queue="billing"} 0.0' in text


def test_supervisor_export_and_its_refusals(router: RouterProcess) -> None:
    async def handle_one() -> str:
        ana = await AgentConn.open(router.ws_url, router.login("ana"))
        await ana.resume(0)
        await ana.command("set_state", state="available")
        conversation = router.inbound("chat", "v-1", "Visitor", "hello", "support")
        offer = await ana.event("offer")
        assert (await ana.command("accept", offer_id=offer["event"]["offer"]["id"]))["ok"]
        assert (await ana.command("wrap_up", conversation_id=conversation, disposition="resolved"))[
            "ok"
        ]
        await ana.command("set_state", state="away", reason="Lunch")
        await ana.close()
        return conversation

    conversation = run(handle_one())
    lost = router.inbound("chat", "v-2", "Gone", "hello?", "support")
    assert httpx.post(
        f"{router.url}/api/demo/abandon", json={"conversation_id": lost}, timeout=10
    ).json() == {"abandoned": True}
    assert (
        httpx.post(
            f"{router.url}/api/demo/survey",
            json={"conversation_id": conversation, "score": 5},
            timeout=10,
        ).status_code
        == 200
    )
    assert (
        httpx.post(
            f"{router.url}/api/demo/survey",
            json={"conversation_id": conversation, "score": 9},
            timeout=10,
        ).status_code
        == 400
    )

    now = httpx.get(f"{router.url}/health", timeout=10).json()["time"]
    params = {"from": str(now - 3600), "to": str(now + 60), "interval": "day"}
    url = f"{router.url}/api/metrics/export"
    sam = {"Authorization": f"Bearer {router.login('sam')}"}
    body = httpx.get(url, params={**params, "dimension": "queue"}, headers=sam, timeout=10).json()
    support = next(r for r in body["rows"] if r["key"] == "support")
    assert (support["offered"], support["handled"], support["abandoned"]) == (2, 1, 1)
    assert support["csat"] == 1.0 and support["completed"] == 1
    assert support["service_level"] == 0.5
    csv_text = httpx.get(url, params={**params, "format": "csv"}, headers=sam, timeout=10).text
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert {r["dimension"] for r in rows} == {"total", "queue", "agent", "channel"}
    assert any(
        r["dimension"] == "agent" and r["key"] == "a-ana" and r["handled"] == "1" for r in rows
    )

    # Refusals: no token, an agent who supervises nothing, bad parameters.
    assert httpx.get(url, params=params, timeout=10).status_code == 401
    ana = {"Authorization": f"Bearer {router.login('ana')}"}
    refused = httpx.get(url, params=params, headers=ana, timeout=10)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert (
        httpx.get(url, params={**params, "interval": "week"}, headers=sam, timeout=10).status_code
        == 400
    )
    assert (
        httpx.get(url, params={"from": "yesterday", "to": "x"}, headers=sam, timeout=10).status_code
        == 400
    )


def test_a_supervisor_sees_their_queues_but_gets_no_offers(router: RouterProcess) -> None:
    async def scenario() -> None:
        sam = await AgentConn.open(router.ws_url, router.login("sam"))
        await sam.resume(0)
        assert sam.hello["agent"]["supervises"] == ["support", "sales", "billing"]
        assert (await sam.command("set_state", state="available"))["ok"]
        conversation = router.inbound("chat", "v-1", "Visitor", "hello", "billing")
        seen = await sam.event("conversation", lambda e: e["conversation"]["id"] == conversation)
        assert seen["event"]["conversation"]["status"] == "queued"
        assert "sla_due" in seen["event"]["conversation"]
        assert not [f for f in sam.events() if f["event"]["kind"] == "offer"]
        await sam.close()

    run(scenario())


def test_voice_hold_reported_by_call_event_counts_in_aht(router: RouterProcess) -> None:
    """A voice task (a callback) handled with a call put on hold: the hold the phone reported
    with `call_event` is the task's hold time, inside AHT and not in talk."""

    def router_time() -> float:
        return float(httpx.get(f"{router.url}/health", timeout=10).json()["time"])

    async def scenario() -> None:
        ana = await AgentConn.open(router.ws_url, router.login("ana"))
        await ana.resume(0)
        assert (await ana.command("set_state", state="available"))["ok"]
        chat = router.inbound("chat", "v-1", "Visitor", "call me please", "support")
        offer = await ana.event("offer")
        assert (await ana.command("accept", offer_id=offer["event"]["offer"]["id"]))["ok"]
        ack = await ana.command(
            "schedule_callback", conversation_id=chat, at=router_time() + 1.0, note="call back"
        )
        assert ack["ok"], ack
        assert (await ana.command("wrap_up", conversation_id=chat, disposition="resolved"))["ok"]
        voice = await ana.event("offer", lambda e: e["offer"]["channel"] == "voice", timeout=15)
        accepted = await ana.command("accept", offer_id=voice["event"]["offer"]["id"])
        assert accepted["ok"], accepted
        task = accepted["result"]["conversation_id"]

        async def call(state: str) -> None:
            ack = await ana.command(
                "call_event",
                call_id="call-1",
                direction="out",
                remote="+14155550123",
                state=state,
                at=router_time(),
            )
            assert ack["ok"], ack

        await call("connected")
        await call("hold")
        held_at = router_time()
        await asyncio.to_thread(
            wait_until, lambda: router_time() >= held_at + 1.0, what="a second on hold"
        )
        await call("connected")
        await call("ended")
        assert (await ana.command("wrap_up", conversation_id=task, disposition="resolved"))["ok"]
        await ana.close()

    run(scenario())
    now = httpx.get(f"{router.url}/health", timeout=10).json()["time"]
    sam = {"Authorization": f"Bearer {router.login('sam')}"}
    rows = httpx.get(
        f"{router.url}/api/metrics/export",
        params={"from": str(now - 3600), "to": str(now + 60), "dimension": "channel"},
        headers=sam,
        timeout=10,
    ).json()["rows"]
    voice = next(r for r in rows if r["key"] == "voice")
    chat = next(r for r in rows if r["key"] == "chat")
    assert voice["completed"] == 1 and voice["hold"] >= 1.0
    assert voice["aht"] == pytest.approx(voice["talk"] + voice["hold"] + voice["acw"], abs=1e-3)
    assert chat["hold"] == 0.0  # text channels have no hold (docs/metrics.md)
