"""bench_router.py's agents and its reading of the router's own figures (not a benchmark).

Apart from the bench so each stays readable: here, what one bench agent does (accept every
offer, wrap it up at once, stamp each offer's delivery) and how the router's Prometheus
text and health figures are read; there, the phases, the baseline and the report.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.bench_router_ws import RawWebSocket
from router.storage import Storage

OFFER_TIMEOUT = 20.0


def queue_of(i: int, queues: int) -> str:
    return f"q{i % queues}"


def prepare(db: Path, config: Path, agents: int, queues: int) -> list[str]:
    """Agents in the config file, spread over `queues` teams; tokens minted straight into
    the database (logging 2,000 agents in through scrypt would measure the KDF, not the
    router)."""
    lines = [
        "skills = []",
        "[routing]",
        f"offer_timeout = {OFFER_TIMEOUT}",
        "wrap_up_timeout = 0",
        "[codes]",
        'wrap_up = ["done"]',
        "[queues.support]",
        "[queues.sales]",
        "[queues.billing]",
    ]
    lines += [f"[queues.q{q}]" for q in range(queues)]
    for i in range(agents):
        lines += [f"[agents.b{i}]", f'id = "a-b{i}"', f'queues = ["{queue_of(i, queues)}"]']
    config.write_text("\n".join(lines) + "\n")
    storage = Storage(db)
    tokens = []
    now = time.time()
    with storage.transaction():
        for i in range(agents):
            storage.upsert_agent(
                f"a-b{i}",
                f"b{i}",
                f"Bench {i}",
                "",
                [queue_of(i, queues)],
                {"voice": 1, "chat": 3, "sms": 2, "email": 5},
                now,
            )
            token = secrets.token_urlsafe(32)
            storage.add_token(
                hashlib.sha256(token.encode()).hexdigest(), f"a-b{i}", now, now + 3600
            )
            tokens.append(token)
    storage.close()
    return tokens


class BenchAgent:
    """One agent: accepts every offer and completes it at once. Frames arrive as bytes from
    `RawWebSocket` (bench_router_ws.py says why); only offers and acks are decoded."""

    def __init__(self, deliveries: list[float]) -> None:
        self.ws: RawWebSocket | None = None
        self.deliveries = deliveries
        self.pending: dict[str, str] = {}
        self.handled = 0
        self.setup: asyncio.Queue[dict[str, Any]] | None = asyncio.Queue()
        """Frames while connecting (hello, snapshot, live, the first ack); then None."""

    def command(self, name: str, **args: Any) -> str:
        assert self.ws is not None
        command_id = str(uuid.uuid4())
        self.ws.send_text(
            json.dumps({"type": "command", "id": command_id, "name": name, "args": args})
        )
        return command_id

    def on_text(self, payload: bytes) -> None:
        if self.setup is not None:
            self.setup.put_nowait(json.loads(payload))
            return
        if b'"kind":"offer"' not in payload and b'"type":"ack"' not in payload:
            return
        arrived = time.time()
        frame = json.loads(payload)
        if frame["type"] == "event" and frame["event"]["kind"] == "offer":
            offer = frame["event"]["offer"]
            self.deliveries.append((arrived - (offer["expires_at"] - OFFER_TIMEOUT)) * 1000)
            cid = self.command("accept", offer_id=offer["id"])
            self.pending[cid] = offer["conversation_id"]
        elif frame["type"] == "ack" and frame["id"] in self.pending:
            conversation = self.pending.pop(frame["id"])
            if frame["ok"]:
                self.command("wrap_up", conversation_id=conversation, disposition="done")
                self.handled += 1

    async def next_frame(self) -> dict[str, Any]:
        assert self.setup is not None
        return await asyncio.wait_for(self.setup.get(), 120)


async def open_agent(url: str, token: str, deliveries: list[float]) -> BenchAgent:
    parts = urlsplit(url)
    agent = BenchAgent(deliveries)
    agent.ws = await RawWebSocket.open(
        parts.hostname or "127.0.0.1",
        parts.port or 80,
        parts.path,
        {"Authorization": f"Bearer {token}"},
        agent.on_text,
    )
    await agent.next_frame()  # hello
    agent.ws.send_text(json.dumps({"type": "resume", "since": 0}))
    while (await agent.next_frame())["type"] != "live":
        pass
    cid = agent.command("set_state", state="available")
    while True:
        frame = await agent.next_frame()
        if frame.get("type") == "ack" and frame["id"] == cid:
            break
    agent.setup = None
    return agent


def wal_frames(health: dict[str, Any]) -> float:
    """WAL frames the router has written (its checkpointer's count; NaN from an older
    router without it)."""
    return float(health.get("wal_frames", float("nan")))


def parse_histogram(text: str) -> dict[str, Any]:
    """Buckets (upper bound in ms -> cumulative count), count and sum of the router's
    `switchboard_routing_decision_seconds` histogram, minus the demo seed's decisions."""
    buckets: list[tuple[float, float]] = []
    out: dict[str, Any] = {"count": 0.0, "sum": 0.0}
    for line in text.splitlines():
        if line.startswith("switchboard_routing_decision_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append(
                (float("inf") if le == "+Inf" else float(le) * 1000, float(line.rsplit(" ", 1)[1]))
            )
        elif line.startswith("switchboard_routing_decision_seconds_count"):
            out["count"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("switchboard_routing_decision_seconds_sum"):
            out["sum"] = float(line.rsplit(" ", 1)[1])
    out["buckets"] = buckets
    return out


def bucket_pct(histogram: dict[str, Any], q: float) -> float:
    """The bucket bound the q-quantile falls under (an upper bound of it), in ms."""
    want = q * histogram["count"]
    for bound, count in histogram["buckets"]:
        if count >= want:
            return float(bound)
    return float("inf")
