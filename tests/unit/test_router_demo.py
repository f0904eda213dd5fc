"""router.demo on an in-memory database with a fake clock: the seeded inbox, and which
customers the demo lets write again (`Storage.awaiting_agent`)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import pytest

from router import commands
from router.acd import Acd
from router.config import RouterConfig
from router.config_file import parse_config
from router.demo import DEMO_CUSTOMERS, NUDGE_AFTER, seed_agents, seed_customers
from router.demo_config import DEMO_CONFIG
from router.storage import Storage
from sync.protocol import Command


class FakeClock:
    def __init__(self, now: float = 2_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def acd(clock: FakeClock) -> Iterator[Acd]:
    storage = Storage(":memory:")
    config = parse_config(DEMO_CONFIG, RouterConfig(), source="built-in demo config")
    seed_agents(storage, config, "pw", clock())
    acd = Acd(storage, config, clock)
    seed_customers(acd, random.Random(1))
    yield acd
    storage.close()


def test_seeded_inbox_has_all_three_channels_and_is_seeded_once(acd: Acd) -> None:
    rows = acd.storage._all("SELECT channel, assigned_agent FROM conversations")
    assert {r["channel"] for r in rows} == {"email", "chat", "sms"}
    assert any(r["assigned_agent"] == "a-ana" for r in rows)
    seed_customers(acd, random.Random(2))
    assert len(acd.storage._all("SELECT id FROM conversations")) == len(rows)
    assert len(acd.storage._all("SELECT id FROM customers")) == len(DEMO_CUSTOMERS)


def test_only_customers_left_waiting_by_their_agent_are_due_a_nudge(
    acd: Acd, clock: FakeClock
) -> None:
    assigned = acd.storage.held_conversations("a-ana", ["assigned"])
    assert assigned
    # Later, every assigned conversation whose last word is the customer's is due.
    clock.now += 3600
    due = {r["id"] for r in acd.storage.awaiting_agent(clock.now - NUDGE_AFTER)}
    last_in = {
        r["id"]
        for r in assigned
        if acd.storage._one(
            "SELECT direction FROM messages WHERE conversation_id = ? ORDER BY seq DESC LIMIT 1",
            (r["id"],),
        )["direction"]
        == "in"
    }
    assert due == last_in and due
    # An agent reply takes the conversation out; a new customer message brings it back later
    # (while the agent is signed in: to an offline agent's conversation it would be requeued).
    ack = commands.execute(
        acd, "a-ana", Command(str(uuid.uuid4()), "set_state", {"state": "available"})
    )
    assert ack.ok
    target = sorted(due)[0]
    acd.add_message(target, "out", "a-ana", "On it!")
    assert target not in {r["id"] for r in acd.storage.awaiting_agent(clock.now - NUDGE_AFTER)}
    assert acd.customer_reply(target, "Any news?")
    assert target not in {r["id"] for r in acd.storage.awaiting_agent(clock.now - NUDGE_AFTER)}
    clock.now += NUDGE_AFTER + 1
    assert target in {r["id"] for r in acd.storage.awaiting_agent(clock.now - NUDGE_AFTER)}
