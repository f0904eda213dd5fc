"""Metrics over HTTP: Prometheus `/metrics` and the CSV/JSON export for a date range.

`/metrics` exposes router-wide live gauges and today's counters per queue and per channel
(voice abandons are counted per channel only: the PBX's calls have no queue here; no per-agent
labels: label cardinality stays bounded with thousands of agents, and it is unauthenticated
like any scrape target, so bind the router to a private address). The export needs a
supervisor's token and returns only the queues that supervisor supervises (and only the
agents working in them).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from router.config import CHANNELS
from router.http_common import agent_for, error
from router.metrics import DIMENSIONS, INTERVALS, Aggregator

if TYPE_CHECKING:
    from router.service import Service

log = logging.getLogger(__name__)

EXPORT_COLUMNS = (
    "interval_start",
    "interval",
    "dimension",
    "key",
    "offered",
    "handled",
    "abandoned",
    "abandon_time",
    "asa",
    "service_level",
    "completed",
    "aht",
    "talk",
    "hold",
    "acw",
    "occupancy",
    "transfers",
    "fcr",
    "csat",
    "csat_avg",
    "csat_responses",
)
MAX_RANGE = 93 * 86400.0


class _LiveCollector(Collector):
    """Reads the live figures at scrape time."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.service.clock()
        live = self.service.live
        agg = live.refresh(now)
        queues = live.queues(now)
        depth = GaugeMetricFamily(
            "switchboard_queue_depth", "Tasks waiting in the queue", labels=["queue"]
        )
        wait = GaugeMetricFamily(
            "switchboard_queue_longest_wait_seconds",
            "Wait of the oldest waiting task",
            labels=["queue"],
        )
        sl = GaugeMetricFamily(
            "switchboard_queue_service_level_ratio",
            "Today's service level (answered in threshold / (answered + abandoned))",
            labels=["queue"],
        )
        sl_now = GaugeMetricFamily(
            "switchboard_queue_service_level_now_ratio",
            f"Service level of the last {live.sl_window / 60:g} minutes "
            "(answered in threshold / (answered + abandoned))",
            labels=["queue"],
        )
        today = GaugeMetricFamily(
            "switchboard_queue_today", "Today's (UTC) counts per queue", labels=["queue", "figure"]
        )
        channel_today = GaugeMetricFamily(
            "switchboard_channel_today",
            "Today's (UTC) counts per channel (voice: PBX calls that rang an agent too)",
            labels=["channel", "figure"],
        )
        abandon_time = GaugeMetricFamily(
            "switchboard_channel_abandon_time_seconds",
            "Today's mean wait before the customer abandoned (voice: ring time)",
            labels=["channel"],
        )
        agents = GaugeMetricFamily("switchboard_agents", "Agents by state", labels=["state"])
        for name, q in queues.items():
            depth.add_metric([name], q["depth"])
            wait.add_metric([name], q["longest_wait"])
            if q["service_level"] is not None:
                sl.add_metric([name], q["service_level"])
            if q["service_level_now"] is not None:
                sl_now.add_metric([name], q["service_level_now"])
            figures = agg.figures("queue", name, now)
            for key in ("offered", "handled", "abandoned", "completed", "transfers"):
                today.add_metric([name, key], figures[key])
        for channel in CHANNELS:
            figures = agg.figures("channel", channel, now)
            for key in ("offered", "handled", "abandoned", "completed", "transfers"):
                channel_today.add_metric([channel, key], figures[key])
            if figures["abandon_time"] is not None:
                abandon_time.add_metric([channel], figures["abandon_time"])
        states: dict[str, int] = {}
        for agent in self.service.storage.agents():
            states[agent["state"]] = states.get(agent["state"], 0) + 1
        for state, n in sorted(states.items()):
            agents.add_metric([state], n)
        yield from (depth, wait, sl, sl_now, today, channel_today, abandon_time, agents)


DECISION_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.0125,
    0.015,
    0.02,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)


def make_registry(service: Service) -> CollectorRegistry:
    """The live collector, and a histogram of routing decisions (arrival to committed offer
    decision, `switchboard_routing_decision_seconds`) fed by `Acd.on_decision`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_LiveCollector(service))
    decisions = Histogram(
        "switchboard_routing_decision_seconds",
        "Seconds from an inbound message to its committed routing decision",
        buckets=DECISION_BUCKETS,
        registry=registry,
    )
    service.acd.on_decision = decisions.observe
    return registry


async def prometheus(request: Request) -> Response:
    """`GET /metrics` in the Prometheus text format."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _date(text: str | None, name: str) -> float:
    if not text:
        raise ValueError(f"{name} is required (YYYY-MM-DD or a Unix time)")
    try:
        return float(text)
    except ValueError:
        pass
    try:
        day = dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{name} must be YYYY-MM-DD or a Unix time") from exc
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


async def export(request: Request) -> Response:
    """`GET /api/metrics/export?from=&to=&interval=15m|day&dimension=&format=csv|json` for a
    supervisor: figures of the queues they supervise, from the fact log. `to` is exclusive; a
    date means its midnight UTC."""
    service: Service = request.app.state.service
    agent = agent_for(service, request)
    if isinstance(agent, JSONResponse):
        return agent
    supervised = set(agent["supervises"])
    if not supervised:
        return error(403, "forbidden", "Only supervisors can export metrics.")
    q = request.query_params
    try:
        start, end = _date(q.get("from"), "from"), _date(q.get("to"), "to")
    except ValueError as exc:
        return error(400, "bad_request", str(exc))
    interval = q.get("interval", "day")
    dimension = q.get("dimension")
    fmt = q.get("format", "json")
    if (
        interval not in INTERVALS
        or (dimension and dimension not in DIMENSIONS)
        or fmt not in ("csv", "json")
    ):
        return error(
            400,
            "bad_request",
            "interval is 15m or day; dimension one of "
            f"{', '.join(DIMENSIONS)}; format csv or json.",
        )
    if not 0 < end - start <= MAX_RANGE:
        return error(400, "bad_request", "to must be after from, at most 93 days later.")
    rows = _rows(service, start, end, INTERVALS[interval], dimension, supervised)
    log.info("agent %s exported %d metric rows", agent["id"], len(rows))
    if fmt == "json":
        return JSONResponse({"from": start, "to": end, "interval": interval, "rows": rows})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8")


def _rows(
    service: Service,
    start: float,
    end: float,
    interval: float,
    dimension: str | None,
    supervised: set[str],
) -> list[dict[str, Any]]:
    """Figures computed from the facts in [start, end) of the supervised queues (a total row
    sums those queues only); an interval cut by the range holds only the facts inside it.
    FCR looks for repeat contacts up to the FCR window after `end`."""
    agg = Aggregator(service.config.queue_specs, interval, service.config.fcr_window)
    members = {a["id"] for a in service.storage.agents() if supervised & set(a["queues"])}
    window_end = end + service.config.fcr_window

    def facts() -> Iterator[dict[str, Any]]:
        for fact in service.storage.facts(start=start, end=window_end):
            if fact["queue"] is not None and fact["queue"] not in supervised:
                continue
            if fact["queue"] is None and fact["agent_id"] not in members:
                continue
            if fact["at"] >= end and fact["kind"] != "task_created":
                continue
            yield fact

    agg.feed(facts())
    return [
        r
        for r in agg.rows(end, dimension)
        if r["interval_start"] < end
        and r["interval_start"] + interval > start
        and (r["dimension"] != "queue" or r["key"] in supervised)
        and (r["dimension"] != "agent" or r["key"] in members)
    ]
