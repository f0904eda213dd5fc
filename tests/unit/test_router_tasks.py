"""router.tasks, router.timers, router.intake through the ACD on an in-memory database with a
fake clock: wrap-up, dispositions, callbacks, overflow, business hours, reopened
conversations, abandons, supervisors, and the concurrency rules (one task, one agent)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from router import commands, intake
from router.acd import Acd
from router.config_file import parse_config
from router.storage import Storage
from sync.protocol import Command
from tests.unit.test_router_acd import FakeClock

CONFIG = """
skills = ["english", "french"]
[routing]
wrap_up_timeout = 30
offer_timeout = 20
[codes]
reasons = ["Lunch"]
wrap_up = ["resolved", "follow_up"]
[hours.weekdays]
timezone = "UTC"
mon = "09:00-17:00"
[queues.support]
skills = { english = 1 }
[queues.french]
skills = { french = 2 }
overflow = { after = 60, to = "support" }
[queues.night]
hours = "weekdays"
out_of_hours_message = "We open at 9."
[agents.ana]
queues = ["support", "french", "night"]
skills = { english = 3, french = 1 }
[agents.ben]
queues = ["support", "french"]
skills = { english = 2, french = 4 }
[agents.sam]
supervises = ["french"]
[agents.zoe]
queues = ["night"]
"""
MONDAY_NOON = 1795435200.0  # 2026-11-23 12:00 UTC


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MONDAY_NOON)


@pytest.fixture
def acd(clock: FakeClock) -> Iterator[Acd]:
    storage = Storage(":memory:")
    config = parse_config(CONFIG)
    with storage.transaction():
        for a in config.agents:
            storage.upsert_agent(
                a.id,
                a.username,
                a.username,
                "x",
                a.queues,
                a.capacity,
                clock(),
                a.skills,
                a.supervises,
            )
    acd = Acd(storage, config, clock)
    yield acd
    storage.close()


def run(acd: Acd, who: str, name: str, /, **args: Any) -> dict[str, Any]:
    ack = commands.execute(acd, f"a-{who}", Command(str(uuid.uuid4()), name, args))
    return {"ok": ack.ok, "result": dict(ack.result), "code": ack.error.code if ack.error else None}


def available(acd: Acd, clock: FakeClock, *names: str) -> None:
    for name in names:
        assert run(acd, name, "set_state", state="available")["ok"]
        clock.advance(1)


def offers(acd: Acd, who: str) -> list[dict[str, Any]]:
    return acd.storage.pending_offers(f"a-{who}")


def events(acd: Acd, who: str, kind: str) -> list[dict[str, Any]]:
    return [e for _, e in acd.storage.events_after(f"a-{who}", 0, 100_000) if e["kind"] == kind]


def state(acd: Acd, who: str) -> str:
    agent = acd.storage.agent(f"a-{who}")
    assert agent is not None
    return str(agent["state"])


def facts(acd: Acd, kind: str) -> list[dict[str, Any]]:
    return [f for f in acd.storage.facts() if f["kind"] == kind]


def take(acd: Acd, who: str, queue: str = "support", customer: str = "v-1") -> str:
    conversation = acd.inbound("chat", customer, "Customer", "hello", queue)
    offer = offers(acd, who)[-1]
    assert run(acd, who, "accept", offer_id=offer["id"])["ok"]
    return conversation


# ---------------------------------------------------------------------- skills and queues


def test_only_agents_with_the_required_skill_level_are_offered(acd: Acd, clock: FakeClock) -> None:
    available(acd, clock, "ana", "ben")  # ana is longer idle but has french 1 < 2
    acd.inbound("chat", "v-1", "Marie", "bonjour", "french")
    assert offers(acd, "ana") == [] and len(offers(acd, "ben")) == 1


def test_a_task_overflows_to_the_next_queue_after_its_wait(acd: Acd, clock: FakeClock) -> None:
    available(acd, clock, "ana")
    conversation = acd.inbound("chat", "v-1", "Marie", "bonjour", "french")
    assert offers(acd, "ana") == []
    assert acd.tick() == pytest.approx(clock() + 60)
    clock.advance(60)
    acd.tick()
    assert acd.conversation(conversation)["queue"] == "support"
    assert offers(acd, "ana")[0]["conversation_id"] == conversation
    assert [f["data"]["to_queue"] for f in facts(acd, "task_overflowed")] == ["support"]


def test_out_of_hours_the_customer_is_answered_and_the_task_waits(
    acd: Acd, clock: FakeClock
) -> None:
    clock.now = MONDAY_NOON + 7 * 3600  # 19:00
    conversation = acd.inbound("chat", "v-1", "Night owl", "anyone?", "night")
    messages = acd.storage.messages(conversation)
    assert [(m["direction"], m["author"], m["body"]) for m in messages][-1] == (
        "out",
        "router",
        "We open at 9.",
    )
    assert acd.conversation(conversation)["status"] == "queued"
    clock.now = MONDAY_NOON
    other = acd.inbound("chat", "v-2", "Day", "hi", "night")
    assert [m["direction"] for m in acd.storage.messages(other)] == ["in"]


# ---------------------------------------------------------------------- wrap-up


def test_ending_a_conversation_starts_wrap_up_which_times_out_to_available(
    acd: Acd, clock: FakeClock
) -> None:
    available(acd, clock, "ana")
    conversation = take(acd, "ana")
    assert run(acd, "ana", "end_conversation", conversation_id=conversation)["ok"]
    assert acd.conversation(conversation)["status"] == "wrap_up"
    assert state(acd, "ana") == "wrap_up"
    assert events(acd, "ana", "agent_state")[-1]["until"] == clock() + 30
    acd.inbound("chat", "v-2", "Other", "hi", "support")
    assert offers(acd, "ana") == []  # no new work during after-contact work
    assert run(
        acd, "ana", "set_disposition", conversation_id=conversation, disposition="Follow_Up"
    )["ok"]
    clock.advance(30)
    acd.tick()
    row = acd.conversation(conversation)
    assert (row["status"], row["disposition"]) == ("closed", "Follow_Up")
    assert state(acd, "ana") == "available"
    assert len(offers(acd, "ana")) == 1


def test_finishing_wrap_up_early_makes_the_agent_available(acd: Acd, clock: FakeClock) -> None:
    available(acd, clock, "ana")
    conversation = take(acd, "ana")
    run(acd, "ana", "end_conversation", conversation_id=conversation)
    assert run(acd, "ana", "wrap_up", conversation_id=conversation, disposition="resolved")["ok"]
    assert state(acd, "ana") == "available"


def test_an_agent_who_chose_away_during_wrap_up_stays_away(acd: Acd, clock: FakeClock) -> None:
    available(acd, clock, "ana")
    conversation = take(acd, "ana")
    run(acd, "ana", "end_conversation", conversation_id=conversation)
    assert run(acd, "ana", "set_state", state="away", reason="lunch")["ok"]
    clock.advance(60)
    acd.tick()
    assert state(acd, "ana") == "away"


def test_unknown_dispositions_and_reasons_are_refused(acd: Acd, clock: FakeClock) -> None:
    available(acd, clock, "ana")
    conversation = take(acd, "ana")
    assert (
        run(acd, "ana", "set_disposition", conversation_id=conversation, disposition="banana")[
            "code"
        ]
        == "bad_command"
    )
    assert (
        run(acd, "ana", "wrap_up", conversation_id=conversation, disposition="banana")["code"]
        == "bad_command"
    )
    assert run(acd, "ana", "set_state", state="away", reason="nap")["code"] == "bad_command"
    assert acd.conversation(conversation)["status"] == "assigned"


# ---------------------------------------------------------------------- callbacks


def test_a_callback_returns_as_an_outbound_task_in_the_chosen_queue_at_its_time(
    acd: Acd, clock: FakeClock
) -> None:
    available(acd, clock, "ana", "ben")
    conversation = take(acd, "ana")
    due = clock() + 3600
    assert (
        run(acd, "ana", "schedule_callback", conversation_id=conversation, at=clock() - 1)["code"]
        == "conflict"
    )
    assert (
        run(acd, "ana", "schedule_callback", conversation_id=conversation, at=due, queue="nowhere")[
            "code"
        ]
        == "not_found"
    )
    ack = run(
        acd,
        "ana",
        "schedule_callback",
        conversation_id=conversation,
        at=due,
        queue="french",
        note="After 3 pm please",
    )
    assert ack["ok"] and ack["result"]["callback_id"]
    run(acd, "ana", "wrap_up", conversation_id=conversation, disposition="follow_up")
    assert acd.tick() == pytest.approx(due)
    clock.now = due
    acd.tick()
    offer = offers(acd, "ben")[-1]  # french needs level 2: ben
    task = acd.conversation(offer["conversation_id"])
    assert (task["channel"], task["direction"], task["queue"]) == ("voice", "outbound", "french")
    assert task["customer_id"] == acd.conversation(conversation)["customer_id"]
    assert acd.storage.messages(task["id"])[0]["body"] == "After 3 pm please"


# ---------------------------------------------------------------------- agents dropping off


def test_a_reopened_conversation_of_an_offline_agent_goes_back_to_the_queue(
    acd: Acd, clock: FakeClock
) -> None:
    available(acd, clock, "ana", "ben")
    conversation = take(acd, "ana")
    acd.connected("a-ana")
    acd.disconnected("a-ana")
    clock.advance(61)
    acd.tick()
    assert state(acd, "ana") == "offline"
    assert acd.conversation(conversation)["assigned_agent"] == "a-ana"  # kept while quiet
    acd.customer_reply(conversation, "hello? still there?")
    row = acd.conversation(conversation)
    assert (row["status"], row["assigned_agent"]) == ("offered", None)
    assert offers(acd, "ben")[0]["conversation_id"] == conversation


def test_the_backlog_drains_when_an_agent_frees_capacity(acd: Acd, clock: FakeClock) -> None:
    available(acd, clock, "ben")
    chats = [acd.inbound("chat", f"v-{i}", "C", "hi", "support") for i in range(4)]
    assert len(offers(acd, "ben")) == 3  # chat capacity 3
    for offer in offers(acd, "ben"):
        run(acd, "ben", "accept", offer_id=offer["id"])
    run(acd, "ben", "wrap_up", conversation_id=chats[0], disposition="resolved")
    assert [o["conversation_id"] for o in offers(acd, "ben")] == [chats[3]]


def test_an_abandoned_task_is_canceled_with_its_reservation(acd: Acd, clock: FakeClock) -> None:
    available(acd, clock, "ana")
    conversation = acd.inbound("chat", "v-1", "C", "hi", "support")
    offer = offers(acd, "ana")[0]
    clock.advance(7)
    assert intake.customer_left(acd, conversation)
    assert acd.conversation(conversation)["status"] == "closed"
    assert events(acd, "ana", "offer_revoked")[-1] == {
        "kind": "offer_revoked",
        "offer_id": offer["id"],
        "reason": "canceled",
    }
    assert acd.storage.offer(offer["id"])["status"] == "canceled"  # type: ignore[index]
    assert facts(acd, "task_canceled")[0]["data"] == {"reason": "abandoned", "wait": 7.0}
    assert not intake.customer_left(acd, conversation)


# ---------------------------------------------------------------------- concurrency


def test_two_agents_accepting_the_same_offer_only_its_agent_gets_it(
    acd: Acd, clock: FakeClock
) -> None:
    available(acd, clock, "ana", "ben")
    conversation = acd.inbound("chat", "v-1", "C", "hi", "support")
    offer = offers(acd, "ana")[0]
    assert run(acd, "ben", "accept", offer_id=offer["id"])["code"] == "forbidden"
    assert run(acd, "ana", "accept", offer_id=offer["id"])["ok"]
    assert run(acd, "ana", "accept", offer_id=offer["id"])["code"] == "offer_gone"
    assert run(acd, "ben", "accept", offer_id=offer["id"])["code"] == "forbidden"
    assert acd.conversation(conversation)["assigned_agent"] == "a-ana"
    assert len(facts(acd, "task_assigned")) == 1


def test_a_second_reservation_of_a_reserved_task_is_refused_by_the_database(
    acd: Acd, clock: FakeClock
) -> None:
    import sqlite3

    available(acd, clock, "ana")
    conversation = acd.inbound("chat", "v-1", "C", "hi", "support")
    with pytest.raises(sqlite3.IntegrityError), acd.transaction():
        acd.make_offer(conversation, "a-ben")
    assert [o["agent_id"] for o in acd.storage.pending_offers()] == ["a-ana"]


def test_an_offer_expiring_as_it_is_accepted_is_gone_and_goes_to_the_next_agent(
    acd: Acd, clock: FakeClock
) -> None:
    available(acd, clock, "ana", "ben")
    conversation = acd.inbound("chat", "v-1", "C", "hi", "support")
    offer = offers(acd, "ana")[0]
    clock.now = offer["expires_at"]  # the accept arrives at the very expiry instant,
    assert run(acd, "ana", "accept", offer_id=offer["id"])["code"] == "offer_gone"
    acd.tick()  # ... before the ticker has expired it
    assert acd.conversation(conversation)["status"] == "offered"
    assert offers(acd, "ben")[0]["conversation_id"] == conversation
    assert acd.storage.offer(offer["id"])["status"] == "timeout"  # type: ignore[index]


# ---------------------------------------------------------------------- supervisors


def test_a_supervisor_receives_the_events_of_the_queues_they_supervise_only(
    acd: Acd, clock: FakeClock
) -> None:
    available(acd, clock, "ben")
    french = take(acd, "ben", queue="french")
    support = acd.inbound("chat", "v-2", "C", "hi", "support")
    seen = {e["conversation"]["id"] for e in events(acd, "sam", "conversation")}
    assert french in seen and support not in seen
    assert events(acd, "sam", "offer") == []
    # An agent outside a queue never sees its work either.
    assert french not in {e["conversation"]["id"] for e in events(acd, "zoe", "conversation")}


def test_a_supervisor_moves_a_conversation_of_their_queue_but_not_of_others(
    acd: Acd, clock: FakeClock
) -> None:
    available(acd, clock, "ben")
    french = take(acd, "ben", queue="french")
    support = take(acd, "ben", queue="support", customer="v-9")
    assert run(acd, "sam", "transfer", conversation_id=support, queue="french")["code"] == (
        "forbidden"
    )
    assert (
        run(
            acd,
            "sam",
            "send_message",
            conversation_id=french,
            message_id=str(uuid.uuid4()),
            body="hi",
            format="text",
        )["code"]
        == "conflict"
    )
    assert run(acd, "sam", "transfer", conversation_id=french, queue="support")["ok"]
    assert acd.conversation(french)["queue"] == "support"
