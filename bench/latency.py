"""Router -> UI event latency with many agents connected (run through bench_sync.py).

A router process runs a config with N agents (the built-in demo config plus N-1 generated
agents, all in every queue). N-1 of them are simulated by bench/agents_child.py (a separate
process: live websockets that take every frame). The measured agent, ana, is the real app's
path: SyncEngine (its own thread) -> SyncBridge -> a Qt signal on the UI thread. A customer
writes into ana's conversation; the figure is the time from the router writing the event
(its `events.created_at`) to the UI thread's slot seeing the message in the cache, p99.
Baseline: the p99 round trip of a raw `websockets` echo on loopback in the same run.
Target: p99 <= 25 ms.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import websockets

from bench.common import line, pct
from router.demo_config import DEMO_CONFIG
from tests.support.router_proc import DEMO_PASSWORD, RouterProcess

ROOT = Path(__file__).resolve().parents[1]


def config(agents: int) -> str:
    extra = [
        f'[agents.b{i:04d}]\nid = "a-b{i:04d}"\nname = "Bench {i}"\n'
        'queues = ["support", "sales", "billing"]\n'
        "skills = { english = 4, billing_systems = 3, sales_products = 3 }\n"
        for i in range(agents - 1)
    ]
    # ana alone serves the "latency" queue, so her conversation is offered to her at once.
    ana = 'id = "a-ana"\nname = "Ana Lima"\nqueues = ["support", "sales"]'
    assert ana in DEMO_CONFIG
    text = DEMO_CONFIG.replace(ana, ana.replace('"sales"]', '"sales", "latency"]'))
    text = text.replace(
        "[queues.support]",
        "[queues.latency]\npriority = 1\nskills = { english = 1 }\n\n[queues.support]",
    )
    return text + "\n" + "\n".join(extra)


def echo_baseline(n: int) -> list[float]:
    async def run() -> list[float]:
        async def echo(ws: websockets.ServerConnection) -> None:
            async for m in ws:
                await ws.send(m)

        async with websockets.serve(echo, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            async with websockets.connect(f"ws://127.0.0.1:{port}") as ws:
                out = []
                for _ in range(n):
                    t = time.perf_counter()
                    await ws.send('{"type":"event","seq":1,"event":{"kind":"message"}}')
                    await ws.recv()
                    out.append(time.perf_counter() - t)
                return out

    return asyncio.run(run())


def login_all(url: str, names: list[str]) -> list[str]:
    tokens: list[str] = []
    lock = threading.Lock()

    def work(chunk: list[str]) -> None:
        with httpx.Client(timeout=120) as client:
            for name in chunk:
                r = client.post(
                    f"{url}/api/login", json={"username": name, "password": DEMO_PASSWORD}
                )
                r.raise_for_status()
                with lock:
                    tokens.append(r.json()["token"])

    threads = [threading.Thread(target=work, args=(names[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tokens


def bench_latency(agents: int, events: int) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from client.bridge import SyncBridge
    from client.qt import QCoreApplication
    from sync.client import SyncEngine

    base = echo_baseline(max(events, 300))
    tmp = Path(tempfile.mkdtemp(prefix="sb-latency-"))
    (tmp / "router.toml").write_text(config(agents))
    router = RouterProcess(
        tmp / "router.db",
        [
            "--config",
            str(tmp / "router.toml"),
            "--demo-agents",
            "--offer-timeout",
            "3",
            "--log-level",
            "WARNING",
        ],
        start_timeout=600,
    )
    print(f"starting a router with {agents:,} agents…", flush=True)
    router.start()
    sim: subprocess.Popen[bytes] | None = None
    engine: SyncEngine | None = None
    try:
        t = time.perf_counter()
        tokens = login_all(router.url, [f"b{i:04d}" for i in range(agents - 1)])
        (tmp / "tokens").write_text("\n".join(tokens))
        sim = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "agents_child.py"),
                router.ws_url,
                str(tmp / "tokens"),
            ],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        assert sim.stdout is not None
        got = sim.stdout.readline().decode().split()
        assert got and got[0] == "CONNECTED", got
        print(f"{got[1]} simulated agents live in {time.perf_counter() - t:.0f}s", flush=True)

        app = QCoreApplication.instance() or QCoreApplication(sys.argv[:1])
        bridge = SyncBridge()
        cache = tmp / "ana.db"
        engine = SyncEngine(
            cache, router.url, on_change=bridge.listener, username="ana", password=DEMO_PASSWORD
        )
        bridge.attach(engine)
        engine.start()
        engine.cache_ready.result(30)
        reader = sqlite3.connect(f"file:{cache}?mode=ro", uri=True, check_same_thread=False)
        seen: dict[str, float] = {}

        def on_changed(tables: set[str], _convs: set[str]) -> None:
            now = time.time()
            if "messages" in tables or "*" in tables:
                for (mid,) in reader.execute("SELECT id FROM messages WHERE direction = 'in'"):
                    seen.setdefault(mid, now)

        bridge.changed.connect(on_changed)

        def pump(cond: object, timeout: float = 30) -> None:
            end = time.monotonic() + timeout
            while not cond():  # type: ignore[operator]
                app.processEvents()
                if time.monotonic() > end:
                    raise TimeoutError("no event")
                time.sleep(0.0005)

        pump(lambda: engine is not None and engine.status.state == "online")
        engine.set_state("available").result(10)
        # ana takes one conversation; the simulated agents get offers too but never accept.
        conv = router.inbound("chat", "latency-visitor", "Lat Ency", "hello", "latency")
        accepted: set[str] = set()

        def assigned() -> bool:
            row = router_row(router, "SELECT assigned_agent FROM conversations WHERE id = ?", conv)
            if row and row[0] == "a-ana":
                return True
            offers = [
                r[0]
                for r in reader.execute("SELECT id FROM offers WHERE conversation_id = ?", [conv])
            ]
            for offer in set(offers) - accepted:
                accepted.add(offer)
                engine.accept(offer)
            return False

        pump(assigned, 120)
        lat = []
        for i in range(events):
            before = len(seen)
            router.inbound("chat", "latency-visitor", "Lat Ency", f"line {i}", "latency")
            pump(lambda before=before: len(seen) > before)
        rows = router_rows(
            router, "SELECT event, created_at FROM events WHERE agent_id = 'a-ana' ORDER BY seq"
        )
        made: dict[str, float] = {}
        for event, created in rows:
            e = json.loads(str(event))
            if e.get("kind") == "message":
                made[e["message"]["id"]] = float(created)  # type: ignore[arg-type]
        for mid, t_ui in seen.items():
            if mid in made and t_ui >= made[mid]:
                lat.append(t_ui - made[mid])
        lat = lat[-events:]
        line(
            f"router -> UI event latency, {agents:,} agents connected ({len(lat)} events), p99",
            pct(lat, 99) * 1000,
            pct(base, 99) * 1000,
            "ms",
            "p99 <= 25 ms (baseline: raw websockets echo round trip p99)",
            pct(lat, 99) * 1000 <= 25,
        )
        print(f"  p50 {pct(lat, 50) * 1000:.2f} ms, p95 {pct(lat, 95) * 1000:.2f} ms", flush=True)
    finally:
        if engine is not None:
            engine.stop()
        if sim is not None:
            sim.kill()
            sim.wait()
        router.stop()


def router_rows(router: RouterProcess, sql: str, *args: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{router.db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def router_row(router: RouterProcess, sql: str, *args: object) -> tuple[object, ...] | None:
    rows = router_rows(router, sql, *args)
    return rows[0] if rows else None
