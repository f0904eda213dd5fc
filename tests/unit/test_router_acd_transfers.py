"""router.acd and router.commands on an in-memory database with a fake clock: visibility,
transfers (to a queue, to an agent), calls and wrap-up, away, per-agent event seqs.

Fixtures and helpers come from test_router_acd.py (offers, expiry, capacity, grace,
idempotent commands), which this file continues.
"""

from __future__ import annotations

import uuid

from router.acd import Acd
from tests.unit.test_router_acd import (  # noqa: F401  (acd and clock are fixtures)
    FakeClock,
    acd,
    available,
    chat,
    clock,
    events,
    offers_of,
    run,
)


def test_agents_only_see_their_queues_and_their_conversations(acd: Acd, clock: FakeClock) -> None:
    billing = acd.inbound("email", "x@example.com", "X", "refund?", "billing")
    assert not [e for e in events(acd, "ana") if "billing" in str(e)]
    assert any(e["kind"] == "conversation" for e in events(acd, "ben"))
    note = {"conversation_id": billing, "message_id": str(uuid.uuid4()), "body": "n"}
    assert run(acd, "ana", "add_note", **note)["code"] == "forbidden"
    assert run(acd, "ana", "send_message", format="text", **note)["code"] == "forbidden"
    assert run(acd, "ben", "send_message", format="text", **note)["code"] == "conflict"
    assert run(acd, "ben", "add_note", **note)["ok"]
    missing = {**note, "conversation_id": "c-missing", "message_id": str(uuid.uuid4())}
    assert run(acd, "ben", "add_note", **missing)["code"] == "not_found"


def test_transfer_requeues_and_wrap_up_closes(acd: Acd, clock: FakeClock) -> None:
    available(acd, clock, "ana")
    conversation = chat(acd)
    run(acd, "ana", "accept", offer_id=offers_of(acd, "ana")[0]["id"])
    assert (
        run(acd, "ana", "transfer", conversation_id=conversation, queue="nowhere")["code"]
        == "not_found"
    )
    assert run(acd, "ana", "transfer", conversation_id=conversation, queue="billing")["ok"]
    row = acd.conversation(conversation)
    assert (row["status"], row["queue"], row["assigned_agent"]) == ("queued", "billing", None)
    # ana learns it left her view; ben (billing) sees it arrive.
    assert events(acd, "ana", "conversation")[-1]["conversation"]["queue"] == "billing"
    assert events(acd, "ben", "conversation")[-1]["conversation"]["id"] == conversation
    available(acd, clock, "ben")
    run(acd, "ben", "accept", offer_id=offers_of(acd, "ben")[0]["id"])
    assert run(
        acd, "ben", "wrap_up", conversation_id=conversation, disposition="solved", note="done"
    )["ok"]
    assert acd.conversation(conversation)["status"] == "closed"
    assert acd.storage.messages(conversation)[-1]["direction"] == "note"
    assert (
        run(acd, "ben", "wrap_up", conversation_id=conversation, disposition="solved")["code"]
        == "conflict"
    )


def test_call_event_makes_the_agent_busy_then_wrap_up_then_available(
    acd: Acd, clock: FakeClock
) -> None:
    available(acd, clock, "ana")
    call = {"call_id": "k1", "direction": "in", "remote": "+15550100", "at": clock()}
    assert run(acd, "ana", "call_event", state="connected", **call)["ok"]
    assert acd.storage.agent("a-ana")["state"] == "busy"  # type: ignore[index]
    chat(acd)
    assert offers_of(acd, "ana") == []  # a call blocks new chats
    run(acd, "ana", "call_event", state="DISCONNECTED", **call)
    assert acd.storage.agent("a-ana")["state"] == "wrap_up"  # type: ignore[index]
    assert offers_of(acd, "ana") == []
    deadline = acd.tick()
    assert deadline == clock() + acd.config.wrap_up_timeout
    clock.advance(acd.config.wrap_up_timeout)
    acd.tick()
    assert acd.storage.agent("a-ana")["state"] == "available"  # type: ignore[index]
    assert len(offers_of(acd, "ana")) == 1


def test_going_away_cancels_pending_offers(acd: Acd, clock: FakeClock) -> None:
    available(acd, clock, "ana")
    chat(acd)
    offer = offers_of(acd, "ana")[0]
    assert run(acd, "ana", "set_state", state="away", reason="lunch")["ok"]
    assert offers_of(acd, "ana") == []
    assert events(acd, "ana", "agent_state")[-1]["reason"] == "lunch"
    assert run(acd, "ana", "accept", offer_id=offer["id"])["code"] == "offer_gone"


def test_event_seqs_are_per_agent_and_contiguous(acd: Acd, clock: FakeClock) -> None:
    available(acd, clock, "ana", "ben")
    chat(acd)
    acd.inbound("email", "b@example.com", "B", "bill", "billing")
    for name in ("ana", "ben", "chloe"):
        seqs = [s for s, _ in acd.storage.events_after(f"a-{name}", 0)]
        assert seqs == list(range(1, len(seqs) + 1))
        assert acd.storage.last_seq(f"a-{name}") == len(seqs)


def test_transfer_to_a_queue_gives_the_new_team_the_whole_thread(
    acd: Acd, clock: FakeClock
) -> None:
    available(acd, clock, "ana")
    conversation = chat(acd)
    run(acd, "ana", "accept", offer_id=offers_of(acd, "ana")[0]["id"])
    message_id = str(uuid.uuid4())
    run(
        acd,
        "ana",
        "send_message",
        conversation_id=conversation,
        message_id=message_id,
        body="Let me pass you to billing.",
        format="text",
    )
    assert not [e for e in events(acd, "chloe") if conversation in str(e)]
    run(acd, "ana", "transfer", conversation_id=conversation, queue="billing")
    chloe = [e for e in events(acd, "chloe") if conversation in str(e)]
    assert [e["kind"] for e in chloe] == ["conversation", "message", "message"]
    assert chloe[-1]["message"]["id"] == message_id


def test_transfer_to_an_agent(acd: Acd, clock: FakeClock) -> None:
    available(acd, clock, "ana")
    conversation = chat(acd)
    run(acd, "ana", "accept", offer_id=offers_of(acd, "ana")[0]["id"])
    target = {"conversation_id": conversation}
    assert run(acd, "ana", "transfer", agent="a-nobody", **target)["code"] == "not_found"
    assert run(acd, "ana", "transfer", agent="a-ana", **target)["code"] == "conflict"
    available(acd, clock, "chloe")
    # chloe does not serve support: an agent only receives work of their own queues.
    assert run(acd, "ana", "transfer", agent="a-chloe", **target)["code"] == "forbidden"
    assert not [e for e in events(acd, "chloe") if conversation in str(e)]
    assert run(acd, "ana", "transfer", agent="a-ben", **target)["code"] == "conflict"  # offline
    available(acd, clock, "ben")
    assert run(acd, "ana", "transfer", agent="a-ben", **target)["ok"]
    row = acd.conversation(conversation)
    assert (row["status"], row["assigned_agent"]) == ("assigned", "a-ben")
    assert events(acd, "ben", "conversation")[-1]["conversation"]["assigned_agent"] == "a-ben"
    assert events(acd, "ana", "conversation")[-1]["conversation"]["assigned_agent"] == "a-ben"
    assert (
        run(
            acd,
            "ana",
            "add_note",
            conversation_id=conversation,
            message_id=str(uuid.uuid4()),
            body="x",
        )["code"]
        == "forbidden"
    )


def test_transfer_to_an_agent_without_room_is_refused(acd: Acd, clock: FakeClock) -> None:
    available(acd, clock, "ana", "ben")
    sms = [acd.inbound("sms", f"+1555000{i}", f"C{i}", "hi", "support") for i in range(4)]
    for name in ("ana", "ben"):
        for offer in offers_of(acd, name):
            run(acd, name, "accept", offer_id=offer["id"])
    mine = [c for c in sms if acd.conversation(c)["assigned_agent"] == "a-ana"]
    assert len(mine) == 2
    ack = run(acd, "ana", "transfer", conversation_id=mine[0], agent="a-ben")
    assert ack["code"] == "conflict"
    assert acd.conversation(mine[0])["assigned_agent"] == "a-ana"


def test_one_transaction_sends_one_conversation_event_per_conversation(
    acd: Acd, clock: FakeClock
) -> None:
    available(acd, clock, "ana")
    conversation = chat(acd)  # queued, then offered to ana, in one transaction
    ben = [e for e in events(acd, "ben") if conversation in str(e)]
    assert [e["kind"] for e in ben] == ["conversation", "message"]
    assert ben[0]["conversation"]["status"] == "offered"
    seqs = [s for s, _ in acd.storage.events_after("a-ben", 0)]
    assert seqs == list(range(1, len(seqs) + 1))
