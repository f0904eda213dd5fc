"""Contact-center figures computed from the fact log (docs/metrics.md has each formula).

`Aggregator` reads facts in log order (`feed`) and keeps sums per interval (15 minutes or one
day, UTC) and dimension (total, queue, agent, channel); `rows` turns the sums into the figures
(ASA, AHT, service level...). The same code serves the historical export (a date range fed
once) and the live figures (the current day, fed incrementally by `router.metrics_live`), so
the two can never disagree. Pure Python over plain rows: tests feed it facts directly.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from router.metrics_voice import VoiceCalls
from router.model import QueueSpec

log = logging.getLogger(__name__)

INTERVALS = {"15m": 900.0, "day": 86400.0}
DIMENSIONS = ("total", "queue", "agent", "channel")
STAFFED_STATES = ("available", "busy", "wrap_up")
"""Worker states that count as staffed (logged in and working or ready) for occupancy."""
HOLD_STATES = ("hold", "held", "on_hold", "local_hold", "remote_hold")


def sl_seconds(queues: Mapping[str, QueueSpec], queue: str) -> float:
    """The queue's service-level threshold: an answer within it counts as met (20 s for a
    queue the config no longer defines)."""
    spec = queues.get(queue)
    return spec.service_level.seconds if spec else 20.0


@dataclass
class Sums:
    """Additive counters of one (interval, dimension, key) bucket."""

    offered: int = 0
    handled: int = 0
    answer_wait: float = 0.0
    answered_in_sl: int = 0
    abandoned: int = 0
    abandon_time: float = 0.0
    completed: int = 0
    talk: float = 0.0
    hold: float = 0.0
    wrap: float = 0.0
    wrapped: int = 0
    transfers: int = 0
    staffed: float = 0.0
    csat_n: int = 0
    csat_sum: int = 0
    csat_satisfied: int = 0
    fcr_eligible: int = 0
    fcr_resolved: int = 0
    calls_answered: int = 0
    """Of `handled`: inbound PBX calls answered (not routed tasks, their queue wait unseen)."""
    calls_abandoned: int = 0
    """Of `abandoned`: inbound PBX calls the caller ended while ringing at an agent."""

    def figures(self) -> dict[str, Any]:
        """The derived figures (None where the denominator is 0)."""

        def ratio(a: float, b: float) -> float | None:
            return round(a / b, 4) if b else None

        handle = self.talk + self.hold + self.wrap
        # ASA and service level are about the whole wait, which the router sees only for the
        # tasks it routes: PBX calls stay out of both (docs/metrics.md, "Voice").
        routed_handled = self.handled - self.calls_answered
        routed_abandoned = self.abandoned - self.calls_abandoned
        return {
            "offered": self.offered,
            "handled": self.handled,
            "abandoned": self.abandoned,
            "abandon_time": ratio(self.abandon_time, self.abandoned),
            "asa": ratio(self.answer_wait, routed_handled),
            "service_level": ratio(self.answered_in_sl, routed_handled + routed_abandoned),
            "completed": self.completed,
            "aht": ratio(handle, self.completed),
            "talk": ratio(self.talk, self.completed),
            "hold": ratio(self.hold, self.completed),
            "acw": ratio(self.wrap, self.completed),
            "occupancy": ratio(handle, self.staffed) if self.staffed else None,
            "transfers": self.transfers,
            "fcr": ratio(self.fcr_resolved, self.fcr_eligible),
            "csat": ratio(self.csat_satisfied, self.csat_n),
            "csat_avg": ratio(self.csat_sum, self.csat_n),
            "csat_responses": self.csat_n,
        }


SUM_FIELDS = tuple(f.name for f in fields(Sums))


@dataclass
class _Task:
    queue: str
    channel: str
    customer: str | None
    entered_at: float = 0.0
    agent: str | None = None
    assigned_at: float | None = None
    wrapping_at: float | None = None
    hold: float = 0.0


@dataclass
class _Completion:
    at: float
    customer: str
    queue: str
    keys: list[tuple[str, str]]


@dataclass
class Aggregator:
    """Sums per interval and dimension, fed with facts in log order."""

    queues: Mapping[str, QueueSpec]
    interval: float = 86400.0
    fcr_window: float = 7 * 86400.0
    buckets: dict[tuple[float, str, str], Sums] = field(default_factory=dict)
    last_id: int = 0
    _tasks: dict[str, _Task] = field(default_factory=dict)
    _states: dict[str, tuple[str, float]] = field(default_factory=dict)
    _holds: dict[str, float] = field(default_factory=dict)
    _voice: dict[str, str] = field(default_factory=dict)
    _calls: VoiceCalls = field(default_factory=VoiceCalls)
    _completions: list[_Completion] = field(default_factory=list)
    _created: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    # ------------------------------------------------------------------ buckets

    def _bucket(self, at: float) -> float:
        return at - (at % self.interval)

    def _add(self, at: float, keys: Iterable[tuple[str, str | None]], **amounts: float) -> None:
        start = self._bucket(at)
        for dim, key in keys:
            if key is None:
                continue
            sums = self.buckets.get((start, dim, key))
            if sums is None:
                sums = self.buckets[(start, dim, key)] = Sums()
            for name, amount in amounts.items():
                setattr(sums, name, getattr(sums, name) + amount)

    @staticmethod
    def _keys(task: _Task, agent: str | None = None) -> list[tuple[str, str | None]]:
        return [
            ("total", "all"),
            ("queue", task.queue),
            ("channel", task.channel),
            ("agent", agent),
        ]

    # ------------------------------------------------------------------ feeding

    def feed(self, facts: Iterable[Mapping[str, Any]]) -> None:
        """Consume facts (rows of the `facts` table, `data` decoded) in log order."""
        for fact in facts:
            self.last_id = max(self.last_id, int(fact.get("id") or 0))
            handler = getattr(self, "_on_" + str(fact["kind"]), None)
            if handler is not None:
                handler(fact, fact.get("data") or {})

    def _task(self, fact: Mapping[str, Any]) -> _Task:
        task_id = str(fact["task_id"])
        task = self._tasks.get(task_id)
        if task is None:
            task = self._tasks[task_id] = _Task(
                str(fact["queue"]), str(fact["channel"]), fact.get("customer_id")
            )
        task.queue = str(fact["queue"] or task.queue)
        return task

    def _on_task_created(self, fact: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        self._task(fact)
        if fact.get("customer_id") and data.get("direction", "inbound") == "inbound":
            self._created.setdefault((fact["customer_id"], fact["queue"]), []).append(fact["at"])

    def _on_task_queued(self, fact: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        task = self._task(fact)
        task.entered_at = fact["at"]
        self._add(fact["at"], self._keys(task)[:3], offered=1)

    def _on_reservation_created(self, fact: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        self._add(fact["at"], [("agent", fact["agent_id"])], offered=1)

    def _on_task_assigned(self, fact: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        task = self._task(fact)
        agent = fact["agent_id"]
        task.agent, task.assigned_at, task.wrapping_at, task.hold = agent, fact["at"], None, 0.0
        if task.channel == "voice":
            self._voice[agent] = str(fact["task_id"])
        if data.get("transfer"):
            self._add(fact["at"], [("agent", agent)], handled=1)
            return
        wait = float(data.get("wait", 0.0))
        in_sl = 1 if wait <= sl_seconds(self.queues, task.queue) else 0
        self._add(
            fact["at"], self._keys(task, agent), handled=1, answer_wait=wait, answered_in_sl=in_sl
        )

    def _on_task_wrapping(self, fact: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        task = self._task(fact)
        if task.wrapping_at is None:
            task.wrapping_at = fact["at"]

    def _end_segment(self, fact: Mapping[str, Any], task: _Task, agent: str | None) -> None:
        if task.assigned_at is None:
            return
        at = fact["at"]
        talk_end = task.wrapping_at if task.wrapping_at is not None else at
        talk = max(0.0, talk_end - task.assigned_at - task.hold)
        wrap = at - task.wrapping_at if task.wrapping_at is not None else 0.0
        self._add(
            at,
            self._keys(task, agent),
            completed=1,
            talk=talk,
            hold=task.hold,
            wrap=wrap,
            wrapped=1 if task.wrapping_at is not None else 0,
        )
        if agent is not None and self._voice.get(agent) == fact["task_id"]:
            del self._voice[agent]
        task.assigned_at = task.wrapping_at = None
        task.hold = 0.0

    def _on_task_completed(self, fact: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        task = self._task(fact)
        agent = fact["agent_id"] or task.agent
        self._end_segment(fact, task, agent)
        if task.customer:
            keys = [(d, k) for d, k in self._keys(task, agent) if k is not None]
            self._completions.append(_Completion(fact["at"], task.customer, task.queue, keys))

    def _on_task_transferred(self, fact: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        task = self._task(fact)
        agent = data.get("from_agent") or fact["agent_id"]
        self._add(fact["at"], self._keys(task, agent), transfers=1)
        self._end_segment(fact, task, agent)

    def _on_task_released(self, fact: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        task = self._task(fact)
        self._end_segment(fact, task, fact["agent_id"] or task.agent)

    def _on_task_canceled(self, fact: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        task = self._task(fact)
        self._add(
            fact["at"], self._keys(task)[:3], abandoned=1, abandon_time=float(data.get("wait", 0.0))
        )

    def _on_survey(self, fact: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        task = self._task(fact)
        score = int(data["score"])
        self._add(
            fact["at"],
            self._keys(task, fact.get("agent_id")),
            csat_n=1,
            csat_sum=score,
            csat_satisfied=1 if score >= 4 else 0,
        )

    def _on_call(self, fact: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        agent = str(fact["agent_id"])
        change = self._calls.feed(fact, data)
        if change is not None:
            # A PBX call has no queue the router knows: total, channel voice and the agent.
            self._add(
                fact["at"],
                [("total", "all"), ("channel", "voice"), ("agent", agent)],
                offered=change.offered,
                handled=change.answered,
                calls_answered=change.answered,
                abandoned=change.abandoned,
                calls_abandoned=change.abandoned,
                abandon_time=change.abandon_time,
            )
        held = str(data.get("state", "")).lower() in HOLD_STATES
        if held:
            self._holds.setdefault(agent, fact["at"])
            return
        started = self._holds.pop(agent, None)
        task_id = self._voice.get(agent)
        if started is not None and task_id is not None and task_id in self._tasks:
            self._tasks[task_id].hold += fact["at"] - started

    def _on_worker_state(self, fact: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        agent = str(fact["agent_id"])
        self._close_state(agent, fact["at"])
        self._states[agent] = (str(data.get("state")), fact["at"])

    def _close_state(self, agent: str, at: float) -> None:
        previous = self._states.get(agent)
        if previous is None or previous[0] not in STAFFED_STATES:
            return
        start = previous[1]
        while start < at:
            end = min(at, self._bucket(start) + self.interval)
            self._add(start, [("agent", agent), ("total", "all")], staffed=end - start)
            start = end
        self._states[agent] = (previous[0], at)

    # ------------------------------------------------------------------ results

    def close_states(self, until: float) -> None:
        """Count staffed time of agents still in their state up to `until`."""
        for agent in list(self._states):
            self._close_state(agent, until)

    def rows(self, until: float, dimension: str | None = None) -> Iterator[dict[str, Any]]:
        """One row per bucket: `interval_start`, `dimension`, `key`, then the figures.
        Staffed time is counted up to `until`; FCR looks at repeat contacts seen so far."""
        self.close_states(until)
        fcr: dict[tuple[float, str, str], list[int]] = {}
        for done in self._completions:
            repeats = self._created.get((done.customer, done.queue), ())
            resolved = not any(done.at < t <= done.at + self.fcr_window for t in repeats)
            for dim, key in done.keys:
                counts = fcr.setdefault((self._bucket(done.at), dim, key), [0, 0])
                counts[0] += 1
                counts[1] += int(resolved)
        for start, dim, key in sorted(set(self.buckets) | set(fcr)):
            if dimension is not None and dim != dimension:
                continue
            sums = self.buckets.get((start, dim, key)) or Sums()
            sums.fcr_eligible, sums.fcr_resolved = fcr.get((start, dim, key), [0, 0])
            yield {
                "interval_start": start,
                "interval": self.interval,
                "dimension": dim,
                "key": key,
                **sums.figures(),
            }

    def figures(self, dimension: str, key: str, at: float) -> dict[str, Any]:
        """The figures of one bucket (the one containing `at`), without FCR."""
        sums = self.buckets.get((self._bucket(at), dimension, key)) or Sums()
        return sums.figures()


@dataclass
class RollingServiceLevel:
    """Service level over the last `window` seconds per queue: "service level now".

    Why a window and not today's figure: by mid-afternoon a day's service level hardly moves,
    so a supervisor cannot see that the last half hour went wrong. The same rule as the
    day's figure (answered within the queue's threshold / (answered + abandoned), transfers
    excluded), counted by when the task was answered or abandoned. Fed facts in log order.
    """

    queues: Mapping[str, QueueSpec]
    window: float = 1800.0
    last_id: int = 0
    _outcomes: dict[str, deque[tuple[float, bool]]] = field(default_factory=dict)
    _met: dict[str, int] = field(default_factory=dict)
    """Per queue, how many of `_outcomes` met the threshold: kept in step with the deque, so
    `level` costs no walk over a half hour of outcomes (~3,600 per queue at 200/s)."""

    def feed(self, facts: Iterable[Mapping[str, Any]]) -> None:
        """Consume facts (rows of the `facts` table, `data` decoded) in log order."""
        for fact in facts:
            self.last_id = max(self.last_id, int(fact.get("id") or 0))
            kind, data = fact["kind"], fact.get("data") or {}
            if kind == "task_assigned" and not data.get("transfer"):
                met = float(data.get("wait", 0.0)) <= sl_seconds(self.queues, str(fact["queue"]))
                self._record(str(fact["queue"]), fact["at"], met)
            elif kind == "task_canceled":
                self._record(str(fact["queue"]), fact["at"], False)

    def _record(self, queue: str, at: float, met: bool) -> None:
        self._outcomes.setdefault(queue, deque()).append((at, met))
        self._met[queue] = self._met.get(queue, 0) + int(met)

    def level(self, queue: str, now: float) -> float | None:
        """The queue's service level over (now - window, now]; None with nothing answered or
        abandoned in the window."""
        outcomes = self._outcomes.get(queue)
        if not outcomes:
            return None
        while outcomes and outcomes[0][0] <= now - self.window:
            _, met = outcomes.popleft()
            self._met[queue] -= int(met)
        if not outcomes:
            return None
        return round(self._met[queue] / len(outcomes), 4)
