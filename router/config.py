"""The router's tunables and its clock, in one place so tests can set both.

Every time in the router comes from an injected `Clock` (Unix seconds, float, because the wire
protocol speaks Unix seconds), so routing rules such as offer expiry and the disconnect grace
period are tested by moving a fake clock rather than by sleeping. The routing model (queues,
skills, codes, hours) comes from a TOML file through `router.config_file`; the defaults here
are the walking skeleton's three plain queues, so tests can build a config in one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from router.model import AgentSpec, QueueSpec

Clock = Callable[[], float]

CHANNELS = ("email", "chat", "sms", "voice")
QUEUES = ("support", "sales", "billing")
DEFAULT_CAPACITY: dict[str, int] = {"voice": 1, "chat": 3, "sms": 2, "email": 5}
DEFAULT_REASON_CODES = ("Break", "Lunch", "Training", "Meeting")
DEFAULT_WRAP_UP_CODES = ("resolved", "follow_up", "escalated", "no_answer", "solved")


def system_clock() -> float:
    """Wall-clock Unix seconds: the times the router stores and sends."""
    return time.time()


def _plain_queues() -> dict[str, QueueSpec]:
    return {name: QueueSpec(name) for name in QUEUES}


@dataclass
class RouterConfig:
    """Settings of one router instance (the CLI fills these from its options and file)."""

    offer_timeout: float = 20.0
    """Seconds an agent has to accept an offer before it goes to the next agent."""
    disconnect_grace: float = 60.0
    """Seconds an agent whose last websocket dropped keeps their state before going offline."""
    reoffer_after: float = 30.0
    """Seconds before a conversation an agent declined or let lapse is offered to them again
    (so a queue with a single agent still gets its work offered, but not in a tight loop)."""
    token_ttl: float = 12 * 3600.0
    """Seconds a login token stays valid."""
    event_retention: int = 5000
    """Events kept per agent stream; a resume from before them gets a snapshot instead."""
    snapshot_page_size: int = 200
    """Rows (conversations, messages...) per snapshot page, well under the frame limit."""
    capacity: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_CAPACITY))
    """Default capacity per channel for agents whose config gives none."""
    queue_specs: dict[str, QueueSpec] = field(default_factory=_plain_queues)
    skills: tuple[str, ...] = ()
    reason_codes: tuple[str, ...] = DEFAULT_REASON_CODES
    """Accepted `set_state away` reasons (compared case-insensitively)."""
    wrap_up_codes: tuple[str, ...] = DEFAULT_WRAP_UP_CODES
    """Accepted dispositions (compared case-insensitively)."""
    strategy: str = "longest_idle"
    """Tie-break among equally skilled agents: longest_idle, least_occupied, round_robin."""
    wrap_up_timeout: float = 30.0
    """Seconds of after-contact work before the agent is made available again (0: none)."""
    voice_blocks: tuple[str, ...] = ("chat",)
    """Channels an agent on a call is not offered new work on ("a call blocks new chats")."""
    metrics_push_interval: float = 1.0
    """At most one `metrics` event per agent per this many seconds."""
    fcr_window: float = 7 * 86400.0
    """A completed task counts as resolved on first contact if the same customer opens no new
    task on the same queue within this many seconds."""
    agents: tuple[AgentSpec, ...] = ()
    """Agents from the config file, created or refreshed at start."""

    @property
    def queues(self) -> tuple[str, ...]:
        return tuple(self.queue_specs)

    def queue(self, name: str) -> QueueSpec:
        """The spec of queue `name` (a plain one for a queue no longer configured, so old
        conversations keep working)."""
        return self.queue_specs.get(name) or QueueSpec(name)
