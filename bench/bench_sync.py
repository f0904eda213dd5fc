"""Sync benchmarks: snapshot apply throughput, and router -> UI event latency under load.

    python bench/bench_sync.py [--messages 100000] [--agents 1000] [--events 300]

1. Snapshot apply: 100,000 messages (in 10,000 conversations, router-shaped rows, pages of
   500 messages as the router sends them) applied with
   `sync.snapshot_apply.apply_snapshot_page` into an empty cache, against sqlite-utils
   `insert_all` of the same message rows into a bare table of a fresh WAL database. Target:
   at least 50% of the baseline's throughput.
2. Router -> UI event latency with N simulated agents connected (bench/latency.py).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlite_utils

from bench.common import line
from bench.seed_cache import body
from sync.protocol import Snapshot
from sync.snapshot_apply import apply_snapshot_page
from sync.store import open_store

PAGE = 500


def snapshot_rows(
    messages: int, per_conversation: int = 10, seed: int = 3
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    now = time.time()
    convs, msgs = [], []
    for c in range(messages // per_conversation):
        cid = f"c-{c:06d}"
        convs.append(
            {
                "id": cid,
                "channel": "chat",
                "queue": "support",
                "status": "assigned",
                "assigned_agent": "a-ana",
                "subject": None,
                "created_at": now,
                "updated_at": now,
                "last_inbound_at": now,
                "customer": {
                    "id": f"cu-{c:06d}",
                    "name": f"Customer {c}",
                    "identities": [{"kind": "chat", "value": f"v-{c}"}],
                },
            }
        )
        for s in range(1, per_conversation + 1):
            msgs.append(
                {
                    "id": str(uuid.UUID(int=rng.getrandbits(128))),
                    "conversation_id": cid,
                    "seq": s,
                    "direction": "in" if s % 2 else "out",
                    "author": f"cu-{c:06d}",
                    "body": body(rng),
                    "html": None,
                    "created_at": now + s,
                }
            )
    return convs, msgs


def pages(convs: list[dict[str, Any]], msgs: list[dict[str, Any]]) -> list[Snapshot]:
    """Router order: a page's messages come with their conversations."""
    out: list[Snapshot] = []
    per = len(msgs) // len(convs)
    for i in range(0, len(msgs), PAGE):
        chunk = msgs[i : i + PAGE]
        cs = convs[i // per : (i + len(chunk)) // per]
        out.append(
            Snapshot(
                page=len(out), last=False, seq=1, conversations=tuple(cs), messages=tuple(chunk)
            )
        )
    last = out[-1]
    out[-1] = Snapshot(
        page=last.page, last=True, seq=1, conversations=last.conversations, messages=last.messages
    )
    return out


def bench_snapshot(messages: int, rounds: int = 3) -> None:
    convs, msgs = snapshot_rows(messages)
    snaps = pages(convs, msgs)
    plain = [
        {
            "id": m["id"],
            "conversation_id": m["conversation_id"],
            "seq": m["seq"],
            "direction": m["direction"],
            "author": m["author"],
            "body": m["body"],
            "html": m["html"],
            "created_at": m["created_at"],
        }
        for m in msgs
    ]
    ours, base = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            raw = sqlite_utils.Database(Path(tmp) / f"raw{r}.db")
            raw.enable_wal()
            raw.execute("PRAGMA synchronous=NORMAL")
            t = time.perf_counter()
            sqlite_utils.db.Table(raw, "messages").insert_all(plain, pk="id", batch_size=PAGE)
            base.append(len(plain) / (time.perf_counter() - t))
            raw.conn.close()

            db = open_store(Path(tmp) / f"cache{r}.db")
            t = time.perf_counter()
            for snap in snaps:
                apply_snapshot_page(db, snap, agent_id="a-ana", now=time.time())
            ours.append(len(msgs) / (time.perf_counter() - t))
            n = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
            assert n == len(msgs), n
            db.conn.close()
    best, best_base = max(ours), max(base)
    line(
        f"snapshot apply, {messages:,} messages into an empty cache (best of {rounds})",
        best,
        best_base,
        "messages/s",
        ">= 0.50x of sqlite-utils insert_all",
        best / best_base >= 0.5,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--events", type=int, default=300)
    p.add_argument("--only", choices=["snapshot", "latency"])
    a = p.parse_args()
    if a.only in (None, "snapshot"):
        bench_snapshot(a.messages)
    if a.only in (None, "latency"):
        from bench.latency import bench_latency

        bench_latency(a.agents, a.events)


if __name__ == "__main__":
    main()
