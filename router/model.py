"""The routing model read from the router config: queues, skills, hours, agents.

Plain frozen data, so `router.routing` (pure decisions) and `router.metrics` (figures from the
event log) take it as input without knowing where it came from (TOML file, built-in demo,
tests). `router.config_file` builds and validates it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

STRATEGIES = ("longest_idle", "least_occupied", "round_robin")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class ServiceLevel:
    """`percent` of contacts answered within `seconds` (for example 80/20)."""

    percent: float = 80.0
    seconds: float = 20.0


@dataclass(frozen=True)
class Hours:
    """Weekly opening hours in one time zone; `ranges[day]` is a list of (start, end) minutes
    after midnight. A day missing from `ranges` is closed."""

    name: str
    timezone: str = "UTC"
    ranges: Mapping[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    closed_dates: frozenset[str] = frozenset()
    """ISO dates (`2026-12-25`) closed all day (public holidays)."""

    def is_open(self, when: float) -> bool:
        """Is the queue open at Unix time `when` (in the hours' own time zone)?"""
        local = dt.datetime.fromtimestamp(when, ZoneInfo(self.timezone))
        if local.date().isoformat() in self.closed_dates:
            return False
        minute = local.hour * 60 + local.minute
        return any(a <= minute < b for a, b in self.ranges.get(DAYS[local.weekday()], ()))


@dataclass(frozen=True)
class QueueSpec:
    """A task queue: who may take its work and how fast it should be answered."""

    name: str
    skills: Mapping[str, int] = field(default_factory=dict)
    """Required skill -> minimum level (1-5)."""
    priority: int = 0
    """Higher is served first when one agent could take work from several queues."""
    service_level: ServiceLevel = ServiceLevel()
    overflow_after: float | None = None
    """Seconds a task waits here before it moves to `overflow_to`."""
    overflow_to: str | None = None
    hours: Hours | None = None
    """None: always open."""
    out_of_hours_message: str = ""
    """Sent to a customer who writes while the queue is closed (their task still waits)."""


@dataclass(frozen=True)
class AgentSpec:
    """An agent (worker) from the config file."""

    id: str
    username: str
    name: str
    queues: tuple[str, ...]
    skills: Mapping[str, int] = field(default_factory=dict)
    capacity: Mapping[str, int] = field(default_factory=dict)
    supervises: tuple[str, ...] = ()
    password_hash: str | None = None
    """A `router.auth.hash_password` string; None: the agent cannot log in until one is set
    (demo agents get the demo password in embedded mode only)."""
