"""router.acd and router.commands on an in-memory database with a fake clock: offers,
expiry, decline, capacity, disconnect grace, idempotent commands (visibility, transfers,
calls and seqs: test_router_acd_transfers.py)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from router import commands
from router.acd import Acd
from router.config import RouterConfig
from router.storage import Storage
from sync.protocol import Command


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


QUEUES = {"ana": ("support", "sales"), "ben": ("support", "billing"), "chloe": ("sales", "billing")}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def acd(clock: FakeClock) -> Iterator[Acd]:
    storage = Storage(":memory:")
    config = RouterConfig(offer_timeout=20, disconnect_grace=60, reoffer_after=30)
    with storage.transaction():
        for name, queues in QUEUES.items():
            storage.upsert_agent(
                f"a-{name}", name, name.title(), "x", queues, config.capacity, clock()
            )
    acd = Acd(storage, config, clock)
    yield acd
    storage.close()


def run(acd: Acd, who: str, name: str, /, **args: Any) -> dict[str, Any]:
    """Execute a command with a fresh id; return the ack as wire data."""
    ack = commands.execute(acd, f"a-{who}", Command(str(uuid.uuid4()), name, args))
    return {"ok": ack.ok, "result": dict(ack.result), "code": ack.error.code if ack.error else None}


def available(acd: Acd, clock: FakeClock, *agents: str) -> None:
    for name in agents:
        assert run(acd, name, "set_state", state="available")["ok"]
        clock.advance(1)


def events(acd: Acd, agent: str, kind: str | None = None) -> list[dict[str, Any]]:
    out = [e for _, e in acd.storage.events_after(f"a-{agent}", 0, 10_000)]
    return [e for e in out if kind is None or e["kind"] == kind]


def offers_of(acd: Acd, agent: str) -> list[dict[str, Any]]:
    return acd.storage.pending_offers(f"a-{agent}")


def chat(acd: Acd, who: str = "visitor-1", queue: str = "support") -> str:
    return acd.inbound("chat", who, "Customer", "hello", queue)


def test_queued_conversation_is_offered_to_the_longest_idle_agent(
    acd: Acd, clock: FakeClock
) -> None:
    available(acd, clock, "ben", "ana")  # ben has been available longer
    conversation = chat(acd)
    assert [o["conversation_id"] for o in offers_of(acd, "ben")] == [conversation]
    assert offers_of(acd, "ana") == []
    assert acd.conversation(conversation)["status"] == "offered"
    offer_event = events(acd, "ben", "offer")[-1]["offer"]
    assert offer_event["conversation_id"] == conversation
    assert offer_event["expires_at"] == clock() + 20
    assert offer_event["preview"] == "hello"


def test_offer_expires_then_goes_to_the_next_agent(acd: Acd, clock: FakeClock) -> None:
    available(acd, clock, "ben", "ana")
    conversation = chat(acd)
    first = offers_of(acd, "ben")[0]
    clock.advance(19.9)
    acd.tick()
    assert offers_of(acd, "ben") == [first]
    clock.advance(0.1)
    deadline = acd.tick()
    assert offers_of(acd, "ben") == []
    assert events(acd, "ben", "offer_revoked")[-1] == {
        "kind": "offer_revoked",
        "offer_id": first["id"],
        "reason": "timeout",
    }
    second = offers_of(acd, "ana")
    assert [o["conversation_id"] for o in second] == [conversation]
    assert deadline == second[0]["expires_at"]
    # Accepting the expired offer is refused as gone.
    assert run(acd, "ben", "accept", offer_id=first["id"])["code"] == "offer_gone"


def test_decline_goes_to_the_next_agent_and_accept_assigns_once(acd: Acd, clock: FakeClock) -> None:
    available(acd, clock, "ben", "ana")
    conversation = chat(acd)
    ben_offer = offers_of(acd, "ben")[0]
    assert run(acd, "ben", "decline", offer_id=ben_offer["id"]) == {
        "ok": True,
        "result": {},
        "code": None,
    }
    ana_offer = offers_of(acd, "ana")[0]
    assert ana_offer["conversation_id"] == conversation
    assert run(acd, "ana", "accept", offer_id=ana_offer["id"])["result"] == {
        "conversation_id": conversation
    }
    row = acd.conversation(conversation)
    assert (row["status"], row["assigned_agent"]) == ("assigned", "a-ana")
    # Neither the declined nor the accepted offer can be taken again.
    assert run(acd, "ben", "accept", offer_id=ben_offer["id"])["code"] == "offer_gone"
    assert run(acd, "ana", "accept", offer_id=ana_offer["id"])["code"] == "offer_gone"
    assert run(acd, "ben", "accept", offer_id=ana_offer["id"])["code"] == "forbidden"
    # Time passing does not re-offer an assigned conversation.
    clock.advance(100)
    acd.tick()
    assert offers_of(acd, "ben") == [] and offers_of(acd, "ana") == []


def test_single_agent_is_re_offered_only_after_the_cool_down(acd: Acd, clock: FakeClock) -> None:
    available(acd, clock, "ana")
    chat(acd, queue="sales")  # only ana and chloe serve sales; chloe is offline
    offer = offers_of(acd, "ana")[0]
    run(acd, "ana", "decline", offer_id=offer["id"])
    acd.tick()
    assert offers_of(acd, "ana") == []
    clock.advance(30)
    acd.tick()
    assert len(offers_of(acd, "ana")) == 1


def test_capacity_limits_offers_per_channel(acd: Acd, clock: FakeClock) -> None:
    available(acd, clock, "ana")
    for i in range(3):
        acd.inbound("sms", f"+1555000{i}", f"C{i}", "hi", "support")
    assert len(offers_of(acd, "ana")) == 2  # SMS capacity 2, pending offers count
    for offer in offers_of(acd, "ana"):
        assert run(acd, "ana", "accept", offer_id=offer["id"])["ok"]
    acd.tick()
    assert offers_of(acd, "ana") == []  # two assigned SMS fill the SMS capacity
    chat(acd)
    assert len(offers_of(acd, "ana")) == 1  # but chat capacity is free


def test_never_two_agents_for_one_conversation(acd: Acd, clock: FakeClock) -> None:
    available(acd, clock, "ana", "ben", "chloe")
    ids = [
        acd.inbound("email", f"c{i}@example.com", f"C{i}", "hi", q)
        for i, q in enumerate(["support", "sales", "billing"] * 4)
    ]
    for _ in range(5):
        clock.advance(21)
        acd.tick()
    rows = acd.storage.conn.execute(
        "SELECT conversation_id, COUNT(*) FROM offers WHERE status = 'pending' "
        "GROUP BY conversation_id HAVING COUNT(*) > 1"
    ).fetchall()
    assert rows == []
    for name in QUEUES:
        for offer in offers_of(acd, name):
            assert run(acd, name, "accept", offer_id=offer["id"])["ok"]
    conn = acd.storage.conn
    accepted = conn.execute(
        "SELECT conversation_id, agent_id FROM offers WHERE status = 'accepted'"
    ).fetchall()
    assert accepted, "some offers should have been accepted"
    assert len({c for c, _ in accepted}) == len(accepted)
    for conversation_id, agent_id in accepted:
        assert acd.conversation(conversation_id)["assigned_agent"] == agent_id
    assigned = [c for c in ids if acd.conversation(c)["assigned_agent"]]
    assert sorted(assigned) == sorted(c for c, _ in accepted)


def test_the_database_refuses_a_second_pending_offer(acd: Acd, clock: FakeClock) -> None:
    conversation = chat(acd)
    with acd.storage.transaction():
        acd.storage.add_offer("o-1", conversation, "a-ana", clock(), clock() + 20)
    with pytest.raises(sqlite3.IntegrityError), acd.storage.transaction():
        acd.storage.add_offer("o-2", conversation, "a-ben", clock(), clock() + 20)
    assert [o["id"] for o in acd.storage.pending_offers()] == ["o-1"]


def test_disconnect_grace_then_offline_and_offers_back_to_queue(acd: Acd, clock: FakeClock) -> None:
    available(acd, clock, "ana")
    acd.connected("a-ana")
    acd.disconnected("a-ana")
    clock.advance(45)
    conversation = chat(acd)  # offered during the grace period, still pending at its end
    assert offers_of(acd, "ana")
    clock.advance(14)
    acd.tick()
    assert acd.storage.agent("a-ana")["state"] == "available"  # type: ignore[index]
    clock.advance(1)
    acd.tick()
    assert acd.storage.agent("a-ana")["state"] == "offline"  # type: ignore[index]
    assert offers_of(acd, "ana") == []
    assert acd.conversation(conversation)["status"] == "queued"
    assert events(acd, "ana", "offer_revoked")[-1]["reason"] == "canceled"


def test_reconnect_within_grace_keeps_the_state(acd: Acd, clock: FakeClock) -> None:
    available(acd, clock, "ana")
    acd.connected("a-ana")
    acd.disconnected("a-ana")
    clock.advance(30)
    acd.connected("a-ana")
    clock.advance(100)
    acd.tick()
    assert acd.storage.agent("a-ana")["state"] == "available"  # type: ignore[index]


def test_same_command_id_acts_once_and_returns_the_same_ack(acd: Acd, clock: FakeClock) -> None:
    available(acd, clock, "ana")
    conversation = chat(acd)
    run(acd, "ana", "accept", offer_id=offers_of(acd, "ana")[0]["id"])
    command = Command(
        str(uuid.uuid4()),
        "send_message",
        {
            "conversation_id": conversation,
            "message_id": str(uuid.uuid4()),
            "body": "Hi!",
            "format": "text",
        },
    )
    first = commands.execute(acd, "a-ana", command)
    second = commands.execute(acd, "a-ana", command)
    assert first == second and first.ok and first.result == {"seq": 2}
    assert [m["body"] for m in acd.storage.messages(conversation)] == ["hello", "Hi!"]
    # A refusal is stored and repeated too.
    bad = Command(str(uuid.uuid4()), "accept", {"offer_id": "o-nope"})
    assert commands.execute(acd, "a-ana", bad) == commands.execute(acd, "a-ana", bad)
    assert commands.execute(acd, "a-ana", bad).error.code == "not_found"  # type: ignore[union-attr]
