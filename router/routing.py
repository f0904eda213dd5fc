"""Routing decisions as pure functions of plain data (no storage, no clock of their own).

The ACD (`router.acd`) gathers the waiting conversations and the agents' state, asks `plan`
who gets what, and carries the answer out in one transaction. Keeping the rules here means they
are tested with plain values, and the later skills-based routing grows in this module alone.

Rules (docs/routing.md):
- only `available` agents who serve the conversation's queue receive offers;
- an agent is offered a conversation only with free capacity on its channel (assigned and
  wrap-up conversations, pending offers and calls in progress all count);
- among those, the longest idle agent (oldest `idle_since`) goes first;
- an agent who declined or let an offer for this conversation lapse recently is skipped;
- conversations are served oldest wait first; one conversation gets one offer at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentSlot:
    """What routing needs to know about one agent."""

    id: str
    queues: frozenset[str]
    capacity: Mapping[str, int]
    state: str
    idle_since: float
    load: Mapping[str, int] = field(default_factory=dict)

    def free(self, channel: str) -> int:
        return self.capacity.get(channel, 0) - self.load.get(channel, 0)


@dataclass(frozen=True)
class Waiting:
    """A queued conversation looking for an agent."""

    conversation_id: str
    channel: str
    queue: str
    queued_since: float
    refused_by: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Assignment:
    """Offer `conversation_id` to `agent_id`."""

    conversation_id: str
    agent_id: str


def eligible(agent: AgentSlot, item: Waiting) -> bool:
    """May `agent` be offered `item` now?"""
    return (
        agent.state == "available"
        and item.queue in agent.queues
        and agent.free(item.channel) > 0
        and agent.id not in item.refused_by
    )


def plan(waiting: Sequence[Waiting], agents: Iterable[AgentSlot], now: float) -> list[Assignment]:
    """Who should be offered which conversation now.

    Each agent's load grows with what this plan gives them and their idle time restarts at
    `now`, so one call never overfills an agent and spreads a burst across the team.
    """
    pool = {a.id: a for a in agents}
    out: list[Assignment] = []
    for item in sorted(waiting, key=lambda w: (w.queued_since, w.conversation_id)):
        candidates = [a for a in pool.values() if eligible(a, item)]
        if not candidates:
            continue
        best = min(candidates, key=lambda a: (a.idle_since, a.id))
        out.append(Assignment(item.conversation_id, best.id))
        load = dict(best.load)
        load[item.channel] = load.get(item.channel, 0) + 1
        pool[best.id] = AgentSlot(best.id, best.queues, best.capacity, best.state, now, load)
    return out


def expired(offers: Iterable[Mapping[str, object]], now: float) -> list[str]:
    """Ids of pending offers whose time is up at `now`."""
    return [str(o["id"]) for o in offers if float(o["expires_at"]) <= now]  # type: ignore[arg-type]


def lapsed(disconnected_at: Mapping[str, float], now: float, grace: float) -> list[str]:
    """Agents whose last connection dropped at least `grace` seconds ago."""
    return sorted(a for a, t in disconnected_at.items() if now - t >= grace)


def next_deadline(
    offers: Iterable[Mapping[str, object]], disconnected_at: Mapping[str, float], grace: float
) -> float | None:
    """The earliest time at which `expired` or `lapsed` would change its answer."""
    times = [float(o["expires_at"]) for o in offers]  # type: ignore[arg-type]
    times += [t + grace for t in disconnected_at.values()]
    return min(times) if times else None
