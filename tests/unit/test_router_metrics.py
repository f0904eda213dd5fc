"""router.metrics (figures from plain facts, each formula of docs/metrics.md) and
router.metrics_live (pushed to connected agents only when changed)."""

from __future__ import annotations

from typing import Any

import pytest

from router import intake
from router.acd import Acd
from router.metrics import Aggregator, RollingServiceLevel
from router.metrics_live import LiveMetrics
from router.model import QueueSpec, ServiceLevel
from tests.unit.test_router_tasks import (  # noqa: F401  (acd and clock are fixtures)
    MONDAY_NOON,
    FakeClock,
    acd,
    available,
    clock,
    offers,
    run,
    take,
)

QUEUES = {"support": QueueSpec("support", service_level=ServiceLevel(80, 20))}
T0 = 1_800_000_000.0 - 1_800_000_000.0 % 86400  # a midnight UTC


def fact(
    at: float,
    kind: str,
    task: str | None = "t1",
    agent: str | None = None,
    customer: str = "cu-1",
    channel: str = "chat",
    **data: Any,
) -> dict[str, Any]:
    return {
        "id": 0,
        "at": T0 + at,
        "kind": kind,
        "task_id": task,
        "agent_id": agent,
        "queue": "support" if task else None,
        "channel": channel if task else None,
        "customer_id": customer if task else None,
        "data": data,
    }


def handled_task(
    task: str,
    start: float,
    wait: float,
    talk: float,
    wrap: float,
    agent: str = "a-ana",
    customer: str = "cu-1",
) -> list[dict[str, Any]]:
    return [
        fact(start, "task_created", task, customer=customer, direction="inbound"),
        fact(start, "task_queued", task, customer=customer),
        fact(start + wait, "task_assigned", task, agent, customer=customer, wait=wait),
        fact(start + wait + talk, "task_wrapping", task, agent, customer=customer),
        fact(start + wait + talk + wrap, "task_completed", task, agent, customer=customer),
    ]


def figures(agg: Aggregator, dim: str = "queue", key: str = "support") -> dict[str, Any]:
    rows = [r for r in agg.rows(T0 + 86400) if r["dimension"] == dim and r["key"] == key]
    assert len(rows) == 1
    return rows[0]


def test_asa_aht_acw_and_service_level() -> None:
    agg = Aggregator(QUEUES)
    agg.feed(
        [
            *handled_task("t1", 0, wait=10, talk=100, wrap=20),
            *handled_task("t2", 1000, wait=30, talk=200, wrap=40, customer="cu-2"),
            fact(2000, "task_queued", "t3", customer="cu-3"),
            fact(2045, "task_canceled", "t3", customer="cu-3", wait=45),
        ]
    )
    f = figures(agg)
    assert (f["offered"], f["handled"], f["abandoned"]) == (3, 2, 1)
    assert f["asa"] == 20.0  # (10 + 30) / 2
    assert f["aht"] == 180.0  # (100+20 + 200+40) / 2
    assert (f["talk"], f["acw"]) == (150.0, 30.0)
    assert f["service_level"] == pytest.approx(1 / 3, abs=1e-4)  # 1 in 20 s of 2 + 1
    assert f["abandon_time"] == 45.0


def test_hold_time_counts_in_aht_but_not_talk() -> None:
    agg = Aggregator(QUEUES)
    facts = handled_task("t1", 0, wait=5, talk=100, wrap=0)
    for f in facts:
        f["channel"] = "voice"
    agg.feed(
        [
            *facts[:3],
            fact(20, "call", None, "a-ana", state="hold"),
            fact(50, "call", None, "a-ana", state="connected"),
            *facts[3:],
        ]
    )
    f = figures(agg)
    assert (f["talk"], f["hold"], f["aht"]) == (70.0, 30.0, 100.0)


def test_fcr_counts_a_repeat_contact_on_the_same_queue_within_seven_days() -> None:
    agg = Aggregator(QUEUES)
    agg.feed(
        [
            *handled_task("t1", 0, 1, 10, 0, customer="cu-1"),
            *handled_task("t2", 100, 1, 10, 0, customer="cu-2"),
            *handled_task("t3", 3 * 86400, 1, 10, 0, customer="cu-1"),
        ]
    )  # cu-1 came back
    day0 = [
        r
        for r in agg.rows(T0 + 4 * 86400)
        if r["dimension"] == "total" and r["interval_start"] == T0
    ]
    assert day0[0]["fcr"] == 0.5


def test_csat_is_the_share_of_4_and_5_scores() -> None:
    agg = Aggregator(QUEUES)
    agg.feed([fact(i, "survey", "t1", "a-ana", score=s) for i, s in enumerate([5, 4, 2, 1])])
    f = figures(agg, "agent", "a-ana")
    assert (f["csat"], f["csat_avg"], f["csat_responses"]) == (0.5, 3.0, 4)


def test_occupancy_is_handle_time_over_staffed_time_split_by_interval() -> None:
    agg = Aggregator(QUEUES, interval=900)
    agg.feed(
        [
            fact(0, "worker_state", None, "a-ana", state="available"),
            *handled_task("t1", 0, 0, 300, 150),
            fact(1800, "worker_state", None, "a-ana", state="offline"),
        ]
    )
    rows = {r["interval_start"] - T0: r for r in agg.rows(T0 + 3600) if r["dimension"] == "agent"}
    assert rows[0]["occupancy"] == 0.5  # 450 s of work in the first 900 s staffed
    assert rows[900]["occupancy"] is None or rows[900]["occupancy"] == 0.0


def test_transfers_count_for_the_agent_who_transferred() -> None:
    agg = Aggregator(QUEUES)
    agg.feed(
        [
            *handled_task("t1", 0, 1, 10, 0)[:3],
            fact(60, "task_transferred", "t1", "a-ana", to_queue="support", from_agent="a-ana"),
        ]
    )
    assert figures(agg, "agent", "a-ana")["transfers"] == 1


def test_service_level_now_counts_only_the_window() -> None:
    rolling = RollingServiceLevel(QUEUES, window=1800)
    rolling.feed(
        [
            fact(0, "task_assigned", "t1", "a-ana", wait=50),  # late, then out of the window
            fact(1000, "task_assigned", "t2", "a-ana", wait=5),
            fact(1100, "task_assigned", "t3", "a-ana", wait=5, transfer=True),  # not counted
            fact(1200, "task_canceled", "t4", wait=30),
            fact(1300, "task_assigned", "t5", "a-ana", wait=19),
        ]
    )
    assert rolling.level("support", T0 + 1300) == pytest.approx(2 / 4, abs=1e-4)
    assert rolling.level("support", T0 + 1801) == pytest.approx(2 / 3, abs=1e-4)
    assert rolling.level("support", T0 + 3200) is None  # nothing answered in the last 30 min
    assert rolling.level("sales", T0) is None


# ---------------------------------------------------------------------- live


def test_live_figures_are_pushed_to_connected_agents_only_when_changed(
    acd: Acd, clock: FakeClock
) -> None:
    clock.now = MONDAY_NOON
    live = LiveMetrics(acd)
    available(acd, clock, "ana", "ben")
    acd.connected("a-ana")
    assert live.push(clock()) == 1
    first = [e for _, e in acd.storage.events_after("a-ana", 0, 10_000) if e["kind"] == "metrics"][
        -1
    ]["metrics"]
    assert first["handled"] == 0 and first["queues"]["support"]["depth"] == 0
    assert set(first["queues"]) == {"support", "french", "night"}
    assert live.push(clock()) == 0  # nothing changed: no event
    conversation = take(acd, "ana")
    run(acd, "ana", "wrap_up", conversation_id=conversation, disposition="resolved")
    acd.inbound("chat", "v-2", "C", "hi", "support")
    assert live.push(clock()) == 1
    last = [e for _, e in acd.storage.events_after("a-ana", 0, 10_000) if e["kind"] == "metrics"][
        -1
    ]["metrics"]
    assert last["handled"] == 1 and last["queues"]["support"]["depth"] == 1
    assert [
        e for _, e in acd.storage.events_after("a-ben", 0, 10_000) if e["kind"] == "metrics"
    ] == []  # ben is not connected
    intake.customer_left(acd, offers(acd, "ana")[0]["conversation_id"])
    assert live.push(clock()) == 1
    after = [e for _, e in acd.storage.events_after("a-ana", 0, 10_000) if e["kind"] == "metrics"][
        -1
    ]["metrics"]
    assert after["queues"]["support"]["depth"] == 0
    assert after["queues"]["support"]["service_level"] == 0.5  # 1 answered in time, 1 lost
    assert after["queues"]["support"]["service_level_now"] == 0.5
    clock.now += 1801  # both outcomes leave the 30-minute window; today's figure stays
    live.push(clock())
    later = [e for _, e in acd.storage.events_after("a-ana", 0, 10_000) if e["kind"] == "metrics"][
        -1
    ]["metrics"]["queues"]["support"]
    assert (later["service_level_now"], later["service_level"]) == (None, 0.5)


def test_facts_fed_in_chunks_give_the_same_figures(acd: Acd, clock: FakeClock) -> None:
    """The service feeds a second's facts a few hundred per loop turn; the figures must not
    depend on the chunking."""
    clock.now = MONDAY_NOON
    whole, chunked = LiveMetrics(acd), LiveMetrics(acd)
    whole.refresh(clock())
    chunked.refresh(clock())  # the first call reads the day and the window at once
    available(acd, clock, "ana", "ben")
    conversation = take(acd, "ana")
    run(acd, "ana", "wrap_up", conversation_id=conversation, disposition="resolved")
    acd.inbound("chat", "v-2", "C", "hi", "support")
    turns = 1
    while not chunked.feed_facts(clock(), limit=2):
        turns += 1
    chunked.refresh(clock())
    assert turns > 2
    assert list(chunked.refresh(clock()).rows(clock())) == list(
        whole.refresh(clock()).rows(clock())
    )
    assert chunked.queues(clock()) == whole.queues(clock())


def test_a_round_prepared_in_its_own_turn_is_pushed_by_its_slices(
    acd: Acd, clock: FakeClock
) -> None:
    """The service computes a round's figures (`prepare`) in a loop turn before slice 0's
    pushes: slice 0 then sends those figures instead of computing them again, and the next
    round's slice 0 computes its own."""
    clock.now = MONDAY_NOON
    live = LiveMetrics(acd)
    available(acd, clock, "ana", "ben")
    acd.connected("a-ana")
    round_at = clock()
    live.prepare(round_at)
    acd.inbound("chat", "v-1", "C", "hi", "support")  # after the round's figures were taken
    assert live.push(round_at, 0, 1) == 1
    sent = [e for _, e in acd.storage.events_after("a-ana", 0, 10_000) if e["kind"] == "metrics"]
    assert sent[-1]["metrics"]["queues"]["support"]["depth"] == 0
    assert sent[-1]["metrics"]["at"] == round_at
    clock.advance(1)
    assert live.push(clock(), 0, 1) == 1  # a new round: slice 0 computes the figures again
    sent = [e for _, e in acd.storage.events_after("a-ana", 0, 10_000) if e["kind"] == "metrics"]
    assert sent[-1]["metrics"]["queues"]["support"]["depth"] == 1
