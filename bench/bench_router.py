"""Router benchmark: connected agents and interactions on one router core, with a raw
websockets echo baseline measured in the same run (not part of the test suite).

    .venv/bin/python bench/bench_router.py [--agents 2000] [--rate 200] [--duration 20]

Targets (docs/operations.md): 2,000 connected agents, 200 new interactions per second, routing
decision p99 <= 10 ms, event delivery p99 <= 25 ms on loopback. The router (and the echo
server) run pinned to CPU 0; this client runs on the other CPUs.

Figures:
- connect: time to open N websockets and get `hello` (router: + resume/`live` and
  `set_state`), versus N plain echo connections;
- routing decision: the router's own `switchboard_routing_decision_seconds` histogram (from an
  inbound message to its committed routing decision; quantiles are bucket bounds), plus the
  `POST /api/demo/inbound` round trip as the client sees it; baseline: a websocket echo round
  trip at the same rate;
- event delivery: from the offer's creation (router clock: `expires_at - offer_timeout`) to
  its arrival at the agent; baseline: from the echo server's send time to arrival.

Both measured phases run with this process's garbage collector off (`measuring`), so the
bench's own collections are not counted as the servers' latency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_router_ws import HttpPool  # noqa: E402
from bench.router_support import (  # noqa: E402
    BenchAgent,
    bucket_pct,
    open_agent,
    parse_histogram,
    prepare,
    wal_frames,
)

ECHO_SERVER = """
import asyncio, json, sys, time
import websockets
async def handler(ws):
    async for message in ws:
        data = json.loads(message)
        data["sent"] = time.time()
        await ws.send(json.dumps(data))
async def main():
    async with websockets.serve(handler, "127.0.0.1", 0, max_queue=None,
                                  compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"LISTENING {port}", flush=True)
        await asyncio.Future()
asyncio.run(main())
"""


def pin_cpu0() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})


def unpin_client() -> None:
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if len(cpus) > 1:
        os.sched_setaffinity(0, cpus - {0})


@contextlib.contextmanager
def measuring() -> Iterator[None]:
    """The measured phase without this (client) process's own garbage collections, for the
    echo baseline and the router alike. With 2,000 agents' objects and a task per request,
    a generation-2 pass of the bench took 13-21 ms at the end of the arrivals; the router
    had written the offers of that moment 0.4 ms after making them, and the bench stamped
    their arrival 25-30 ms late (the run's worst deliveries). The heap is frozen first, so
    what the phase allocates (a few thousand tasks) is all that is left uncollected."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def summary(name: str, ms: list[float]) -> str:
    return (
        f"{name:<28} n={len(ms):>6}  p50={pct(ms, 0.5):7.2f} ms  p99={pct(ms, 0.99):7.2f} ms"
        f"  max={max(ms) if ms else float('nan'):7.2f} ms"
    )


# ---------------------------------------------------------------------- baseline


async def baseline(agents: int, rate: float, duration: float) -> dict[str, Any]:
    proc = subprocess.Popen(
        [sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, preexec_fn=pin_cpu0
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split()[1])
        url = f"ws://127.0.0.1:{port}"
        t0 = time.perf_counter()
        conns = await asyncio.gather(
            *(websockets.connect(url, max_size=None, compression=None) for _ in range(agents))
        )
        connect_s = time.perf_counter() - t0
        rtts: list[float] = []
        deliveries: list[float] = []

        async def one(ws: Any) -> None:
            start = time.perf_counter()
            await ws.send(json.dumps({"id": uuid.uuid4().hex}))
            reply = json.loads(await ws.recv())
            arrived = time.time()
            rtts.append((time.perf_counter() - start) * 1000)
            deliveries.append((arrived - reply["sent"]) * 1000)

        turn = iter(range(10**9))  # round robin: one request at a time per connection
        with measuring():
            await paced(rate, duration, lambda: one(conns[next(turn) % len(conns)]))
        for ws in conns:
            await ws.close()
        return {"connect_s": connect_s, "rtt": rtts, "delivery": deliveries}
    finally:
        proc.terminate()
        proc.wait()


async def paced(rate: float, duration: float, make: Any) -> None:
    """Start `make()` at `rate` per second for `duration` seconds; wait for all."""
    tasks = []
    start = time.perf_counter()
    n = 0
    while True:
        due = start + n / rate
        if due - start >= duration:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(make()))
        n += 1
    await asyncio.gather(*tasks)


# ---------------------------------------------------------------------- router


async def bench_router(
    agents: int,
    rate: float,
    duration: float,
    metrics_interval: float,
    queues: int,
    profile: Path | None,
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-router-"))
    db, config = tmp / "router.db", tmp / "router.toml"
    tokens = prepare(db, config, agents, queues)
    python = [sys.executable] + (["-m", "cProfile", "-o", str(profile)] if profile else [])
    proc = subprocess.Popen(
        [
            *python,
            "-m",
            "router",
            "--port",
            "0",
            "--db",
            str(db),
            "--config",
            str(config),
            "--demo",
            "--demo-rate",
            "0",
            "--log-level",
            "WARNING",
            "--metrics-interval",
            str(metrics_interval),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        preexec_fn=pin_cpu0,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().split()[1]
        ws_url = url.replace("http://", "ws://") + "/agent/v1"
        deliveries: list[float] = []
        t0 = time.perf_counter()
        bench_agents: list[BenchAgent] = []
        for i in range(0, agents, 200):  # in waves, as a shift logs in
            bench_agents += await asyncio.gather(
                *(open_agent(ws_url, t, deliveries) for t in tokens[i : i + 200])
            )
        connect_s = time.perf_counter() - t0
        deliveries.clear()  # the demo's seeded conversations are not part of the run
        decisions: list[float] = []
        parts = urlsplit(url)
        http = HttpPool(parts.hostname or "127.0.0.1", parts.port or 80, 50)
        await http.open()
        failures: list[str] = []

        async def arrive() -> None:
            start = time.perf_counter()
            try:
                status, _ = await http.request(
                    "POST",
                    "/api/demo/inbound",
                    {
                        "channel": "chat",
                        "from": uuid.uuid4().hex,
                        "name": "Bench",
                        "body": "hello",
                        "queue": f"q{random.randrange(queues)}",
                    },
                )
            except (OSError, asyncio.IncompleteReadError) as exc:  # counted, never hidden
                failures.append(type(exc).__name__)
                return
            if status != 200:
                failures.append(f"HTTP {status}")
                return
            decisions.append((time.perf_counter() - start) * 1000)

        frames_start = wal_frames(json.loads((await http.request("GET", "/health"))[1]))
        run_start = time.perf_counter()
        with measuring():
            await paced(rate, duration, arrive)
            achieved = len(decisions) / (time.perf_counter() - run_start)
            await asyncio.sleep(1.0)  # the last offers arrive
        health = json.loads((await http.request("GET", "/health"))[1])
        frames_rate = (wal_frames(health) - frames_start) / (time.perf_counter() - run_start)
        histogram = parse_histogram((await http.request("GET", "/metrics"))[1].decode())
        await http.close()
        await asyncio.gather(*(a.ws.close() for a in bench_agents if a.ws is not None))
        return {
            "connect_s": connect_s,
            "http": decisions,
            "delivery": deliveries,
            "decision": histogram,
            "achieved_rate": achieved,
            "handled": sum(a.handled for a in bench_agents),
            "failures": failures,
            "queued_after": health["queued"],
            "wal_frames_s": frames_rate,
        }
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, default=2000)
    p.add_argument("--rate", type=float, default=200.0, help="new interactions per second")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of arrivals")
    p.add_argument(
        "--metrics-interval",
        type=float,
        default=1.0,
        help="router's live metrics push interval (0 = off)",
    )
    p.add_argument(
        "--queues",
        type=int,
        default=100,
        help="teams the agents are spread over (each sees its queue's waiting work)",
    )
    p.add_argument("--profile", type=Path, default=None, help="cProfile the router to this file")
    p.add_argument("--skip-baseline", action="store_true")
    args = p.parse_args()
    unpin_client()
    base: dict[str, Any] = (
        {"connect_s": float("nan"), "rtt": [float("nan")], "delivery": [float("nan")]}
        if args.skip_baseline
        else asyncio.run(baseline(args.agents, args.rate, args.duration))
    )
    result = asyncio.run(
        bench_router(
            args.agents, args.rate, args.duration, args.metrics_interval, args.queues, args.profile
        )
    )
    print(
        f"agents={args.agents} queues={args.queues} rate={args.rate}/s "
        f"duration={args.duration}s "
        f"metrics_interval={args.metrics_interval}s (servers pinned to CPU 0)"
    )
    print(f"{'connect (echo baseline)':<28} {base['connect_s']:.2f} s")
    print(
        f"{'connect (router)':<28} {result['connect_s']:.2f} s   ratio "
        f"{result['connect_s'] / base['connect_s']:.1f}x"
    )
    hist = result["decision"]
    decision_p99 = bucket_pct(hist, 0.99)
    print(summary("echo round trip (baseline)", base["rtt"]))
    print(
        f"{'routing decision (router)':<28} n={int(hist['count']):>6}  "
        f"p50<={bucket_pct(hist, 0.5):6.2f} ms  p99<={decision_p99:6.2f} ms  "
        f"mean={1000 * hist['sum'] / max(1.0, hist['count']):6.2f} ms (server histogram)"
    )
    print(summary("inbound HTTP round trip", result["http"]))
    print(summary("echo delivery (baseline)", base["delivery"]))
    print(summary("offer delivery (router)", result["delivery"]))
    print(
        f"{'routing decision p99 ratio':<28} <={decision_p99 / pct(base['rtt'], 0.99):.1f}x "
        f"the echo round trip p99"
    )
    print(
        f"{'event delivery p99 ratio':<28} "
        f"{pct(result['delivery'], 0.99) / pct(base['delivery'], 0.99):.1f}x the echo delivery p99"
    )
    print(
        f"{'achieved arrival rate':<28} {result['achieved_rate']:.1f}/s; handled "
        f"{result['handled']}; still queued {result['queued_after']}; failed requests "
        f"{len(result['failures'])} {sorted(set(result['failures']))}"
    )
    print(
        f"{'SQLite WAL frames':<28} {result['wal_frames_s']:,.0f}/s during the arrivals "
        f"(checkpointer's count, 4 KiB pages)"
    )
    ok = (
        decision_p99 <= 10
        and pct(result["delivery"], 0.99) <= 25
        and result["achieved_rate"] >= 0.95 * args.rate
    )
    print(
        "targets (decision p99 <= 10 ms, delivery p99 <= 25 ms, rate held):",
        "met" if ok else "NOT met",
    )
    if result["delivery"]:
        print(f"{'offer delivery mean':<28} {statistics.fmean(result['delivery']):.2f} ms")


if __name__ == "__main__":
    main()
