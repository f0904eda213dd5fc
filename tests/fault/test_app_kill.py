"""kill -9 of the agent's app while it writes replies: nothing the agent saw is lost or doubled.

The app (tests/fault/agent_child.py: the real SyncEngine and cache) writes replies as fast as
an agent could; the test kills it with SIGKILL at seeded random moments (mid-transaction,
mid-send, between a send and its ack), checks the cache passes PRAGMA integrity_check, and
starts it again. At the end every reply the child reported as written (it was in the thread)
is at the router exactly once. 20 kills by default, 200 with SWITCHBOARD_LONG=1.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sync.changes import OfferReceived
from tests.fault.support import (
    ROOT,
    FaultCounts,
    inbound,
    integrity,
    rows,
    scale,
)
from tests.support.router_proc import RouterProcess
from tests.support.wait import deadline, wait_until

SEED = 20261123


def spawn(
    cache: Path, router: RouterProcess, token: str, conv: str, prefix: str, start: int
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fault.agent_child",
            str(cache),
            router.url,
            token,
            conv,
            prefix,
            str(start),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def read_lines(
    child: subprocess.Popen[bytes], until: float, stop_on: str | None = None
) -> list[str]:
    """Lines the child printed until the monotonic time `until` (or the `stop_on` line)."""
    assert child.stdout is not None
    out: list[str] = []
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return out
        ready, _, _ = select.select([child.stdout], [], [], left)
        if not ready:
            return out
        line = child.stdout.readline().decode().strip()
        if not line:
            return out  # it exited
        out.append(line)
        if stop_on is not None and line == stop_on:
            return out


def take_conversation(router: RouterProcess, make: Any, cache: Path) -> str:
    engine, rec = make(router.url)
    wait_until(lambda: rec.state() == "online", what="online")
    engine.set_state("available").result(10)
    conv = inbound(router, "Where is my order?")
    assert conv is not None
    offer = wait_until(
        lambda: [o for o in rec.of(OfferReceived) if o.conversation_id == conv], what="the offer"
    )[0]
    engine.accept(offer.offer_id).result(10)
    wait_until(
        lambda: (
            rows(cache, "SELECT status FROM conversations WHERE id = ?", conv) == [("assigned",)]
        ),
        what="the conversation assigned",
    )
    engine.stop()
    return conv


def run_kills(router: RouterProcess, make: Any, tmp_path: Path, kills: int) -> FaultCounts:
    cache = tmp_path / "cache.db"
    conv = take_conversation(router, make, cache)
    token = router.login("ana")
    rng = random.Random(SEED)
    counts = FaultCounts("app kill -9")
    written: set[str] = set()
    for i in range(kills):
        child = spawn(cache, router, token, conv, f"k{i}", 0)
        try:
            ready = read_lines(child, time.monotonic() + deadline(30), stop_on="READY")
            assert ready and ready[-1] == "READY", f"child {i} did not start: {ready}"
            lines = read_lines(child, time.monotonic() + rng.uniform(0.02, 0.5))
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            # Lines it printed before the kill were on screen: the agent saw them written.
            assert child.stdout is not None
            lines += child.stdout.read().decode().splitlines()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        written |= {f"k{i}-{w.split()[1]}" for w in lines if w.startswith("WRITTEN")}
        counts.faults += 1
        check = integrity(cache)
        assert check == "ok", f"after kill {i}: {check}"

    child = spawn(cache, router, token, conv, "drain", -1)
    try:
        out = read_lines(child, time.monotonic() + deadline(90), stop_on="DRAINED")
        assert out and out[-1] == "DRAINED", f"the outbox did not drain: {out}"
    finally:
        child.kill()
        child.wait()
    at_router = [
        r[0]
        for r in rows(
            router.db,
            "SELECT body FROM messages WHERE conversation_id = ? AND direction = 'out'",
            conv,
        )
    ]
    counts.tally(written, at_router)
    counts.extra["unsettled_in_cache"] = rows(
        cache, "SELECT COUNT(*) FROM messages WHERE direction = 'out' AND status != 'sent'"
    )[0][0]
    counts.report()
    return counts


def test_app_killed_while_sending_loses_and_doubles_nothing(
    router: RouterProcess, engines: Any, tmp_path: Path
) -> None:
    counts = run_kills(router, engines, tmp_path, scale(20, 200))
    assert counts.written > 0
    assert counts.lost == 0
    assert counts.duplicated == 0
    assert counts.extra["unsettled_in_cache"] == 0
