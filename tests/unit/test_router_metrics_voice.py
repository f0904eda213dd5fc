"""router.metrics_voice: inbound PBX calls as the router sees them through `call_event`
(offered when they ring, handled when answered, abandoned when the caller gives up while
ringing), fed to the Aggregator as plain facts and through the real command path with a
controlled clock (docs/metrics.md, "Voice")."""

from __future__ import annotations

from typing import Any

import pytest

from router.acd import Acd
from router.metrics import Aggregator
from router.metrics_live import LiveMetrics
from router.metrics_voice import VoiceCalls, ended_by_caller
from tests.unit.test_router_metrics import QUEUES, T0, fact, figures, handled_task
from tests.unit.test_router_tasks import (  # noqa: F401  (acd and clock are fixtures)
    FakeClock,
    acd,
    available,
    clock,
    run,
)


def call(
    at: float,
    state: str,
    call_id: str = "k1",
    agent: str = "a-ana",
    direction: str = "in",
    client_at: float | None = None,
    **data: Any,
) -> dict[str, Any]:
    """A `call` fact as router.commands.call_event logs it (`at` is the router's time,
    `client_at` the phone's: by default the same)."""
    return fact(
        at,
        "call",
        None,
        agent,
        call=call_id,
        state=state,
        direction=direction,
        client_at=T0 + (at if client_at is None else client_at),
        **data,
    )


def voice(agg: Aggregator, dim: str = "channel", key: str = "voice") -> dict[str, Any]:
    return figures(agg, dim, key)


def test_a_ring_the_caller_cancels_is_one_abandon_with_the_ring_time() -> None:
    agg = Aggregator(QUEUES)
    agg.feed([call(100, "ringing"), call(112.5, "missed", reason="caller_cancel", code=487)])
    for dim, key in (("channel", "voice"), ("agent", "a-ana"), ("total", "all")):
        f = voice(agg, dim, key)
        assert (f["offered"], f["handled"], f["abandoned"]) == (1, 0, 1), (dim, f)
        assert f["abandon_time"] == 12.5
        # The PBX queue's wait is unseen: no ASA, no service level from PBX calls.
        assert (f["asa"], f["service_level"]) == (None, None)
    assert not [r for r in agg.rows(T0 + 86400) if r["dimension"] == "queue"]


def test_a_declined_or_timed_out_ring_is_offered_but_neither_handled_nor_abandoned() -> None:
    agg = Aggregator(QUEUES)
    agg.feed(
        [
            call(100, "ringing", "k1"),
            call(104, "missed", "k1", reason="declined", code=486),
            call(200, "ringing", "k2"),
            call(230, "missed", "k2", reason="timeout", code=408),
        ]
    )
    f = voice(agg)
    assert (f["offered"], f["handled"], f["abandoned"], f["abandon_time"]) == (2, 0, 0, None)


def test_an_answered_call_is_handled_once_even_with_repeated_states() -> None:
    agg = Aggregator(QUEUES)
    agg.feed(
        [
            call(100, "ringing"),
            call(100.1, "ringing"),  # the app reports incoming_call and call_state incoming
            call(103, "connected"),
            call(110, "hold"),
            call(120, "connected"),
            call(160, "ended", code=200),
        ]
    )
    f = voice(agg)
    assert (f["offered"], f["handled"], f["abandoned"]) == (1, 1, 0)
    assert (f["asa"], f["service_level"]) == (None, None)


def test_pbx_calls_leave_asa_and_service_level_of_routed_tasks_alone() -> None:
    agg = Aggregator(QUEUES)
    agg.feed(
        [
            *handled_task("t1", 0, wait=10, talk=100, wrap=20),
            call(500, "ringing", "k1"),
            call(530, "missed", "k1", reason="caller_cancel"),
            call(600, "ringing", "k2"),
            call(605, "connected", "k2"),
            call(700, "ended", "k2"),
        ]
    )
    total = figures(agg, "total", "all")
    assert (total["offered"], total["handled"], total["abandoned"]) == (3, 2, 1)
    assert (total["asa"], total["service_level"]) == (10.0, 1.0)  # the routed chat only
    assert total["abandon_time"] == 30.0
    assert figures(agg)["abandoned"] == 0  # the support queue never saw the call


def test_outbound_calls_and_unknown_calls_are_not_offers() -> None:
    agg = Aggregator(QUEUES)
    agg.feed(
        [
            call(100, "dialing", direction="out"),
            call(110, "ended", direction="out", reason="caller_cancel"),
            call(200, "missed", "k9", reason="caller_cancel"),  # its ring was before the range
        ]
    )
    assert not [r for r in agg.rows(T0 + 86400) if r["key"] == "voice"]


def test_ring_time_comes_from_the_phone_clock_and_the_interval_from_the_router() -> None:
    agg = Aggregator(QUEUES, interval=900.0)
    # The phone's clock is 300 s behind and the end was replayed from the outbox 1,000 s late.
    agg.feed(
        [
            call(100, "ringing", client_at=-200),
            call(1120, "missed", client_at=-180, reason="caller_cancel"),
        ]
    )
    rows = [r for r in agg.rows(T0 + 86400) if r["key"] == "voice"]
    assert [(r["interval_start"] - T0, r["offered"], r["abandoned"]) for r in rows] == [
        (0.0, 1, 0),
        (900.0, 0, 1),
    ]
    assert rows[1]["abandon_time"] == 20.0


@pytest.mark.parametrize(
    ("state", "reason", "abandoned"),
    [
        ("missed", "caller_cancel", True),
        ("missed", "CALLER_CANCEL", True),
        ("missed", "declined", False),
        ("missed", None, False),  # an older app: caller or agent, nobody knows
        ("canceled", None, True),
        ("rejected", None, False),
    ],
)
def test_who_ended_the_ring(state: str, reason: str | None, abandoned: bool) -> None:
    assert ended_by_caller(state, reason) is abandoned


def test_a_new_ring_of_the_same_call_id_after_its_end_is_a_new_offer() -> None:
    calls = VoiceCalls()
    ring = call(0, "ringing")
    assert calls.feed(ring, ring["data"]) is not None
    end = call(5, "ended", reason="caller_cancel")
    change = calls.feed(end, end["data"])
    assert change is not None and (change.abandoned, change.abandon_time) == (1, 5.0)
    assert calls.feed(end, end["data"]) is None  # a repeated end counts once


def test_call_events_through_the_router_commands_reach_the_agents_live_figures(
    acd: Acd, clock: FakeClock
) -> None:
    available(acd, clock, "ana")
    live = LiveMetrics(acd)

    def report(call_id: str, state: str, **extra: Any) -> None:
        args = {"call_id": call_id, "direction": "in", "remote": "+15550100", "at": clock()}
        assert run(acd, "ana", "call_event", state=state, **args, **extra)["ok"]

    report("k1", "ringing")
    clock.advance(7)
    report("k1", "missed", reason="caller_cancel", code=487)
    report("k2", "ringing")
    clock.advance(2)
    report("k2", "missed", reason="declined", code=486)
    report("k3", "ringing")
    clock.advance(1)
    report("k3", "connected")
    clock.advance(30)
    report("k3", "ended", code=200)
    agg = live.refresh(clock())
    own = live.agent_payload({"id": "a-ana", "queues": []}, {}, clock())
    assert (own["offered"], own["handled"], own["abandoned"], own["abandon_time"]) == (
        3,
        1,
        1,
        7.0,
    )
    channel = agg.figures("channel", "voice", clock())
    assert (channel["offered"], channel["handled"], channel["abandoned"]) == (3, 1, 1)
