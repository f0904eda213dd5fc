"""The router's tunables and its clock, in one place so tests can set both.

Every time in the router comes from an injected `Clock` (Unix seconds, float, because the wire
protocol speaks Unix seconds), so routing rules such as offer expiry and the disconnect grace
period are tested by moving a fake clock rather than by sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]

CHANNELS = ("email", "chat", "sms", "voice")
QUEUES = ("support", "sales", "billing")
DEFAULT_CAPACITY: dict[str, int] = {"voice": 1, "chat": 3, "sms": 2, "email": 5}


def system_clock() -> float:
    """Wall-clock Unix seconds: the times the router stores and sends."""
    return time.time()


@dataclass
class RouterConfig:
    """Settings of one router instance (the CLI fills these from its options)."""

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
    queues: tuple[str, ...] = QUEUES
    capacity: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_CAPACITY))
