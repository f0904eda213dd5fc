"""Routing decisions as pure functions of plain data (no storage, no clock of their own).

The ACD (`router.acd`) gathers the waiting tasks and the workers' state, asks `plan` who gets
what, and carries the answer out in one transaction. Keeping the rules here means they are
tested with plain values (docs/routing.md, "Choosing an agent").

Rules:
- tasks are served by queue priority (higher first), then oldest wait first; one task gets
  one reservation (offer) at a time;
- a worker is eligible when they are `available` (or `busy` on a call, for channels a call
  does not block), are a member of the task's queue, have every skill the queue requires at
  its minimum level, have free capacity on the task's channel, and did not refuse or let this
  task lapse recently;
- among eligible workers the best skill match wins (highest sum of levels on the queue's
  required skills), then the configured strategy breaks the tie: longest idle, least occupied
  or round robin.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from router.model import QueueSpec

log = logging.getLogger(__name__)

BUSY_ON_CALL = "busy"


@dataclass(frozen=True)
class AgentSlot:
    """What routing needs to know about one worker."""

    id: str
    queues: frozenset[str]
    capacity: Mapping[str, int]
    state: str
    idle_since: float
    load: Mapping[str, int] = field(default_factory=dict)
    skills: Mapping[str, int] = field(default_factory=dict)
    last_offered: float = 0.0

    def free(self, channel: str) -> int:
        return self.capacity.get(channel, 0) - self.load.get(channel, 0)

    def occupancy(self) -> float:
        """Share of the worker's total capacity in use (0 when they have none)."""
        total = sum(self.capacity.values())
        return sum(self.load.values()) / total if total else 0.0


@dataclass(frozen=True)
class Waiting:
    """A queued task looking for a worker."""

    conversation_id: str
    channel: str
    queue: str
    queued_since: float
    refused_by: frozenset[str] = frozenset()
    priority: int = 0
    skills: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Assignment:
    """Reserve `conversation_id` for `agent_id` (send them an offer)."""

    conversation_id: str
    agent_id: str


def skills_match(agent: AgentSlot, required: Mapping[str, int]) -> bool:
    return all(agent.skills.get(skill, 0) >= level for skill, level in required.items())


def skill_score(agent: AgentSlot, required: Mapping[str, int]) -> int:
    return sum(agent.skills.get(skill, 0) for skill in required)


def eligible(agent: AgentSlot, item: Waiting, voice_blocks: Sequence[str] = ("chat",)) -> bool:
    """May `agent` be offered `item` now?"""
    if agent.state == BUSY_ON_CALL:
        if item.channel == "voice" or item.channel in voice_blocks:
            return False
    elif agent.state != "available":
        return False
    if agent.load.get("voice", 0) > 0 and item.channel in voice_blocks:
        return False
    return (
        item.queue in agent.queues
        and agent.free(item.channel) > 0
        and agent.id not in item.refused_by
        and skills_match(agent, item.skills)
    )


def strategy_key(strategy: str, agent: AgentSlot) -> tuple[float, ...]:
    """Sort key (smaller first) among equally skilled workers."""
    if strategy == "least_occupied":
        return (agent.occupancy(), agent.idle_since)
    if strategy == "round_robin":
        return (agent.last_offered,)
    return (agent.idle_since,)


def best(candidates: Iterable[AgentSlot], item: Waiting, strategy: str) -> AgentSlot | None:
    """The worker `item` goes to: best skill match, then `strategy`, then id."""
    return min(
        candidates,
        default=None,
        key=lambda a: (-skill_score(a, item.skills), *strategy_key(strategy, a), a.id),
    )


def plan(
    waiting: Sequence[Waiting],
    agents: Iterable[AgentSlot],
    now: float,
    strategy: str = "longest_idle",
    voice_blocks: Sequence[str] = ("chat",),
) -> list[Assignment]:
    """Who should be offered which task now.

    Each worker's load grows with what this plan gives them and their idle and last-offered
    times restart at `now`, so one call never overfills a worker and spreads a burst. Only the
    members of a task's queue are looked at for it (eligibility requires membership anyway):
    tasks left waiting in a queue nobody is free for cost nothing per call.
    """
    pool = {a.id: a for a in agents}
    members: dict[str, list[str]] = {}
    for a in pool.values():
        for queue in a.queues:
            members.setdefault(queue, []).append(a.id)
    out: list[Assignment] = []
    for item in sorted(waiting, key=lambda w: (-w.priority, w.queued_since, w.conversation_id)):
        candidates = (pool[i] for i in members.get(item.queue, ()))
        chosen = best((a for a in candidates if eligible(a, item, voice_blocks)), item, strategy)
        if chosen is None:
            continue
        out.append(Assignment(item.conversation_id, chosen.id))
        load = dict(chosen.load)
        load[item.channel] = load.get(item.channel, 0) + 1
        # A tiny step per offer keeps the order within one round, so round robin takes turns.
        turn = now + len(out) * 1e-6
        pool[chosen.id] = replace(chosen, load=load, idle_since=turn, last_offered=turn)
    return out


def expired(offers: Iterable[Mapping[str, object]], now: float) -> list[str]:
    """Ids of pending offers whose time is up at `now`."""
    return [str(o["id"]) for o in offers if float(o["expires_at"]) <= now]  # type: ignore[arg-type]


def lapsed(disconnected_at: Mapping[str, float], now: float, grace: float) -> list[str]:
    """Agents whose last connection dropped at least `grace` seconds ago."""
    return sorted(a for a, t in disconnected_at.items() if now - t >= grace)


def overflowing(
    queued: Iterable[Mapping[str, object]], specs: Mapping[str, QueueSpec], now: float
) -> list[tuple[str, str]]:
    """(task id, target queue) for queued tasks past their queue's overflow wait."""
    out = []
    for row in queued:
        spec = specs.get(str(row["queue"]))
        if spec is None or spec.overflow_to is None or spec.overflow_after is None:
            continue
        entered = float(row["queue_entered_at"] or 0.0)  # type: ignore[arg-type]
        if now - entered >= spec.overflow_after:
            out.append((str(row["id"]), spec.overflow_to))
    return out


def overflow_deadlines(
    queued: Iterable[Mapping[str, object]], specs: Mapping[str, QueueSpec]
) -> list[float]:
    out = []
    for row in queued:
        spec = specs.get(str(row["queue"]))
        if spec is not None and spec.overflow_after is not None and spec.overflow_to:
            out.append(float(row["queue_entered_at"] or 0.0) + spec.overflow_after)  # type: ignore[arg-type]
    return out


def next_deadline(
    offers: Iterable[Mapping[str, object]],
    disconnected_at: Mapping[str, float],
    grace: float,
    other: Iterable[float] = (),
) -> float | None:
    """The earliest time at which `expired`, `lapsed` or another timer (`other`: wrap-up
    ends, overflows, callbacks) would change the answer."""
    times = [float(o["expires_at"]) for o in offers]  # type: ignore[arg-type]
    times += [t + grace for t in disconnected_at.values()]
    times += list(other)
    return min(times) if times else None
