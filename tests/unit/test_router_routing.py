"""router.routing: who gets offered what, from plain data."""

from __future__ import annotations

from typing import Any

from router.routing import (
    AgentSlot,
    Assignment,
    Waiting,
    eligible,
    expired,
    lapsed,
    next_deadline,
    plan,
)

CAP = {"voice": 1, "chat": 3, "sms": 2, "email": 5}


def agent(
    agent_id: str,
    idle_since: float = 0.0,
    queues: tuple[str, ...] = ("support",),
    state: str = "available",
    load: dict[str, int] | None = None,
) -> AgentSlot:
    return AgentSlot(agent_id, frozenset(queues), CAP, state, idle_since, load or {})


def test_longest_idle_available_agent_of_the_queue_gets_the_offer() -> None:
    agents = [
        agent("a", idle_since=50),
        agent("b", idle_since=10),
        agent("c", idle_since=5, queues=("sales",)),
    ]
    assert plan([Waiting("c1", "chat", "support", 1.0)], agents, now=100) == [Assignment("c1", "b")]


def test_only_available_agents_are_offered() -> None:
    agents = [
        agent("a", 1, state="away"),
        agent("b", 2, state="offline"),
        agent("c", 3, state="busy"),
    ]
    assert plan([Waiting("c1", "chat", "support", 1.0)], agents, now=100) == []
    assert plan([Waiting("c1", "chat", "support", 1.0)], [*agents, agent("d", 9)], 100) == [
        Assignment("c1", "d")
    ]


def test_capacity_per_channel_is_respected() -> None:
    full_sms = agent("a", 1, load={"sms": 2})
    assert not eligible(full_sms, Waiting("c1", "sms", "support", 0))
    assert eligible(full_sms, Waiting("c1", "chat", "support", 0))
    assert plan([Waiting("c1", "sms", "support", 0)], [full_sms], 10) == []


def test_one_plan_never_overfills_an_agent_and_spreads_a_burst() -> None:
    waiting = [Waiting(f"c{i}", "sms", "support", float(i)) for i in range(5)]
    result = plan(waiting, [agent("a", 1), agent("b", 2)], now=100)
    per_agent = {a: sum(1 for x in result if x.agent_id == a) for a in ("a", "b")}
    assert per_agent == {"a": 2, "b": 2}
    # alternate: a (longest idle) first, then b, then a again
    assert [x.agent_id for x in result] == ["a", "b", "a", "b"]
    assert len({x.conversation_id for x in result}) == len(result)


def test_oldest_waiting_conversation_is_served_first() -> None:
    waiting = [Waiting("new", "voice", "support", 50.0), Waiting("old", "voice", "support", 10.0)]
    assert plan(waiting, [agent("a", 1)], now=100) == [Assignment("old", "a")]


def test_an_agent_who_refused_is_skipped_for_that_conversation() -> None:
    item = Waiting("c1", "chat", "support", 0, refused_by=frozenset({"a"}))
    assert plan([item], [agent("a", 1), agent("b", 50)], 100) == [Assignment("c1", "b")]
    assert plan([item], [agent("a", 1)], 100) == []


def test_expired_lapsed_and_next_deadline() -> None:
    offers = [{"id": "o1", "expires_at": 10.0}, {"id": "o2", "expires_at": 30.0}]
    assert expired(offers, 9.9) == []
    assert expired(offers, 10.0) == ["o1"]
    assert lapsed({"a": 100.0, "b": 130.0}, now=160.0, grace=60.0) == ["a"]
    assert lapsed({"a": 100.0}, now=159.0, grace=60.0) == []
    assert next_deadline(offers, {"a": 0.0}, grace=5.0) == 5.0
    assert next_deadline([], {}, grace=5.0) is None


# ---------------------------------------------------------------------- skills, priority,
# strategies


def skilled(agent_id: str, skills: dict[str, int], idle_since: float = 0.0, **kw: Any) -> AgentSlot:
    return AgentSlot(
        agent_id, frozenset({"support"}), CAP, "available", idle_since, skills=skills, **kw
    )


def test_an_agent_below_a_required_skill_level_is_not_eligible() -> None:
    item = Waiting("c1", "chat", "support", 1.0, skills={"french": 3})
    assert not eligible(skilled("a", {"french": 2}), item)
    assert not eligible(skilled("a", {}), item)
    assert eligible(skilled("a", {"french": 3}), item)


def test_best_skill_match_goes_before_longest_idle() -> None:
    item = Waiting("c1", "chat", "support", 1.0, skills={"french": 1})
    agents = [
        skilled("idle", {"french": 1}, idle_since=0),
        skilled("expert", {"french": 5}, idle_since=90),
    ]
    assert plan([item], agents, now=100) == [Assignment("c1", "expert")]


def test_higher_priority_queue_is_served_before_an_older_task() -> None:
    a = AgentSlot("a", frozenset({"support", "vip"}), {"chat": 1}, "available", 0.0)
    old = Waiting("old", "chat", "support", 1.0)
    vip = Waiting("vip", "chat", "vip", 50.0, priority=5)
    assert plan([old, vip], [a], now=100) == [Assignment("vip", "a")]


def test_least_occupied_strategy() -> None:
    busy = skilled("busy", {}, idle_since=0, load={"email": 4})
    free = skilled("free", {}, idle_since=50)
    item = Waiting("c1", "chat", "support", 1.0)
    assert plan([item], [busy, free], 100, strategy="longest_idle") == [Assignment("c1", "busy")]
    assert plan([item], [busy, free], 100, strategy="least_occupied") == [Assignment("c1", "free")]


def test_round_robin_strategy_takes_turns() -> None:
    agents = [
        skilled("a", {}, idle_since=0, last_offered=30.0),
        skilled("b", {}, idle_since=90, last_offered=10.0),
    ]
    items = [Waiting(f"c{i}", "email", "support", float(i)) for i in range(3)]
    assert [x.agent_id for x in plan(items, agents, 100, strategy="round_robin")] == ["b", "a", "b"]


def test_a_call_blocks_new_chats_unless_configured() -> None:
    on_call = AgentSlot("a", frozenset({"support"}), CAP, "busy", 0.0, {"voice": 1})
    chat_item = Waiting("c1", "chat", "support", 1.0)
    email_item = Waiting("e1", "email", "support", 1.0)
    assert not eligible(on_call, chat_item)
    assert eligible(on_call, email_item)
    assert eligible(on_call, chat_item, voice_blocks=())
    assert not eligible(on_call, Waiting("v1", "voice", "support", 1.0), voice_blocks=())


def test_overflow_after_the_queue_wait() -> None:
    from router.model import QueueSpec
    from router.routing import overflow_deadlines, overflowing

    specs = {"sales": QueueSpec("sales", overflow_after=60, overflow_to="support")}
    rows = [
        {"id": "c1", "queue": "sales", "queue_entered_at": 100.0},
        {"id": "c2", "queue": "support", "queue_entered_at": 0.0},
    ]
    assert overflowing(rows, specs, 159.9) == []
    assert overflowing(rows, specs, 160.0) == [("c1", "support")]
    assert overflow_deadlines(rows, specs) == [160.0]


def test_an_agent_of_two_queues_is_seen_with_this_plan_s_load_in_both() -> None:
    """Candidates are looked up by queue; what one queue's task gave an agent counts when
    the other queue's task is planned in the same call."""
    both = AgentSlot("a", frozenset({"support", "sales"}), {"voice": 1}, "available", 1.0)
    other = agent("b", 5, queues=("sales",))
    waiting = [Waiting("c1", "voice", "support", 1.0), Waiting("c2", "voice", "sales", 2.0)]
    assert plan(waiting, [both, other], now=100) == [
        Assignment("c1", "a"),
        Assignment("c2", "b"),  # a is full after c1, though longer idle than b
    ]
    assert plan([Waiting("c3", "voice", "billing", 0.0)], [both, other], now=100) == []
