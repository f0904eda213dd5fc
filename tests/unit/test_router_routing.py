"""router.routing: who gets offered what, from plain data."""

from __future__ import annotations

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


def agent(agent_id: str, idle_since: float = 0.0, queues: tuple[str, ...] = ("support",),
          state: str = "available", load: dict[str, int] | None = None) -> AgentSlot:
    return AgentSlot(agent_id, frozenset(queues), CAP, state, idle_since, load or {})


def test_longest_idle_available_agent_of_the_queue_gets_the_offer() -> None:
    agents = [agent("a", idle_since=50), agent("b", idle_since=10), agent("c", idle_since=5,
                                                                          queues=("sales",))]
    assert plan([Waiting("c1", "chat", "support", 1.0)], agents, now=100) == [
        Assignment("c1", "b")
    ]


def test_only_available_agents_are_offered() -> None:
    agents = [agent("a", 1, state="away"), agent("b", 2, state="offline"),
              agent("c", 3, state="busy")]
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
