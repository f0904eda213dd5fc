"""Live figures: queue depth, longest wait, agents by state, service level now (the last
`SL_NOW_WINDOW` seconds) and today's, pushed to connected agents as `metrics` events at most
once per interval, and only when their figures changed (the event log is not filled with
repeats).

Today's sums come from the same `metrics.Aggregator` as the export, fed incrementally from
the fact log (only the facts after the last one read), and restarted at midnight UTC.

The `metrics` event keeps the shape the desktop client stores (one cache row per key): the
agent's own figures at the top level (`handled`, `aht`, `asa`, `service_level`, ...) and,
added compatibly, `queues`: `{queue: {depth, longest_wait, service_level_now, service_level,
target, agents}}` for the queues they work in or supervise, and `at`.
"""

from __future__ import annotations

import logging
import zlib
from typing import TYPE_CHECKING, Any

from router.metrics import Aggregator, RollingServiceLevel

if TYPE_CHECKING:
    from router.acd import Acd

log = logging.getLogger(__name__)

SL_NOW_WINDOW = 1800.0
"""Seconds of the rolling "service level now" (docs/metrics.md)."""

AGENT_KEYS = (
    "offered",
    "handled",
    "abandoned",
    "abandon_time",
    "aht",
    "asa",
    "acw",
    "service_level",
    "occupancy",
    "transfers",
    "csat",
    "completed",
)


class LiveMetrics:
    """Today's aggregator, the live queue figures, and what each agent was last sent."""

    def __init__(self, acd: Acd, sl_window: float = SL_NOW_WINDOW) -> None:
        self.acd = acd
        self._day = -1.0
        self._agg = self._new_aggregator()
        self.sl_window = sl_window
        self._rolling = RollingServiceLevel(acd.config.queue_specs, sl_window)
        self._rolling_started = False
        self._sent: dict[str, dict[str, Any]] = {}
        self._queues: dict[str, dict[str, Any]] | None = None
        self._prepared = False

    def _new_aggregator(self) -> Aggregator:
        return Aggregator(self.acd.config.queue_specs, 86400.0, self.acd.config.fcr_window)

    def refresh(self, now: float) -> Aggregator:
        """Feed every fact logged since the last refresh (all of today's after midnight; the
        rolling window's from its start, which may be yesterday) and count staffed time up
        to `now`."""
        while not self.feed_facts(now):
            pass
        self._agg.close_states(now)
        return self._agg

    def feed_facts(self, now: float, limit: int | None = None) -> bool:
        """Feed the facts logged since the last call, at most `limit` of them (None: all);
        True once caught up. The service feeds a second's facts (~1,500 at 200 arrivals/s,
        ~15 ms of reading and decoding) in chunks and yields to the event loop between them,
        so offers are not held behind one long metrics turn."""
        storage = self.acd.storage
        if not self._rolling_started:
            self._rolling_started = True
            self._rolling.feed(storage.facts(start=now - self._rolling.window))
        fresh = list(storage.facts(after_id=self._rolling.last_id, limit=limit))
        self._rolling.feed(fresh)
        day = now - now % 86400.0
        if day != self._day:
            self._day = day
            self._agg = self._new_aggregator()
            self._agg.feed(storage.facts(start=day))
        last = self._agg.last_id
        self._agg.feed(f for f in fresh if int(f["id"]) > last)
        return limit is None or len(fresh) < limit

    def queues(self, now: float) -> dict[str, dict[str, Any]]:
        """Live figures of every configured queue."""
        out: dict[str, dict[str, Any]] = {}
        waiting = {r["queue"]: r for r in self.acd.storage.queue_waiting()}
        by_queue: dict[str, dict[str, int]] = {}
        for agent in self.acd.storage.agent_states():
            for queue in agent["queues"]:
                states = by_queue.setdefault(queue, {})
                states[agent["state"]] = states.get(agent["state"], 0) + 1
        for name in self.acd.config.queue_specs:
            row = waiting.get(name)
            states = by_queue.get(name, {})
            today = self._agg.figures("queue", name, now)
            out[name] = {
                "depth": int(row["depth"]) if row else 0,
                "longest_wait": round(now - row["oldest"], 1) if row and row["oldest"] else 0.0,
                "service_level_now": self._rolling.level(name, now),
                "service_level": today["service_level"],
                "target": self.acd.config.queue(name).service_level.percent / 100.0,
                "agents": states,
            }
        return out

    def agent_payload(
        self, agent: dict[str, Any], queues: dict[str, dict[str, Any]], now: float
    ) -> dict[str, Any]:
        own = self._agg.figures("agent", agent["id"], now)
        payload: dict[str, Any] = {k: own[k] for k in AGENT_KEYS}
        names = list(dict.fromkeys([*agent["queues"], *agent.get("supervises", [])]))
        payload["queues"] = {q: queues[q] for q in names if q in queues}
        return payload

    def forget(self, agent_id: str) -> None:
        """The agent (re)connected: send them figures at the next push even if unchanged."""
        self._sent.pop(agent_id, None)

    def prepare(self, now: float) -> dict[str, dict[str, Any]]:
        """Start a round at `now`: feed the facts left (`feed_facts` normally took them
        already), count staffed time up to `now` and compute the queue figures that the
        round's slices send. The service runs it in a loop turn of its own before slice 0
        (together with slice 0's pushes it was the longest regular turn, 11-20 ms at 2,000
        agents)."""
        self.refresh(now)
        self._queues = self.queues(now)
        self._prepared = True
        return self._queues

    def push(self, now: float, part: int = 0, parts: int = 1) -> int:
        """Emit a `metrics` event to each connected agent whose figures changed, among the
        `part`-th of `parts` slices of the agents (the service spreads one round over the
        interval, so thousands of pushes do not queue up in front of offers). The figures are
        computed at slice 0, unless `prepare(now)` was called since the last slice 0, and
        reused by the others of the round. Returns how many were sent."""
        connected = [
            a for a in self.acd.connected_agents() if zlib.crc32(a.encode()) % parts == part
        ]
        queues = self._queues
        if queues is None or (part == 0 and not self._prepared):
            queues = self.prepare(now)
        if part == 0:
            self._prepared = False  # the next round's slice 0 computes its own
        if not connected:
            return 0
        sent = 0
        agents = self.acd.storage.agent_teams()
        with self.acd.transaction():
            for agent_id in connected:
                agent = agents.get(agent_id)
                if agent is None:
                    continue
                payload = self.agent_payload(agent, queues, now)
                if self._sent.get(agent_id) == payload:
                    continue
                self._sent[agent_id] = payload
                self.acd.emit([agent_id], {"kind": "metrics", "metrics": {**payload, "at": now}})
                sent += 1
        return sent
