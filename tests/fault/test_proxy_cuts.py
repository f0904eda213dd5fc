"""A flaky network between app and router: connections dropped, stalled and half-closed.

The agent's engine reaches the router only through `FaultProxy` (tests/fault/proxy.py) while
customers keep writing in and the agent keeps replying. Each fault hits a live connection at
a seeded random moment; the engine must resume from its stored seq each time. At the end the
cache equals the router row by row (no gap, no duplicate event) and every reply the agent saw
written is at the router exactly once. 15 faults by default, 100 with SWITCHBOARD_LONG=1.
"""

from __future__ import annotations

import itertools
import random
import threading
from pathlib import Path
from typing import Any

from sync.changes import ConnectionStatus
from tests.fault.proxy import FaultProxy
from tests.fault.support import (
    FaultCounts,
    compare_with_router,
    inbound,
    integrity,
    rows,
    scale,
    wait_converged,
)
from tests.support.router_proc import RouterProcess
from tests.support.wait import wait_until

SEED = 100


def test_connection_cuts_resume_without_gap_or_duplicate(
    router: RouterProcess, engines: Any, tmp_path: Path
) -> None:
    faults = scale(15, 100)
    rng = random.Random(SEED)
    counts = FaultCounts("proxy cuts")
    proxy = FaultProxy(router.port).start()
    cache = tmp_path / "cache.db"
    stop = threading.Event()
    written: list[str] = []
    errors: list[BaseException] = []
    try:
        engine, rec = engines(proxy.url, auto_accept=True)
        wait_until(lambda: rec.state() == "online", what="online through the proxy")
        engine.set_state("available").result(10)

        def customers() -> None:
            n = 0
            while not stop.wait(0.04):  # a customer's pace
                if inbound(router, f"line {n}", visitor=f"v{n % 12}") is not None:
                    n += 1

        def agent() -> None:
            n = 0
            try:
                while not stop.wait(0.02):  # an agent's pace
                    for (conv,) in rows(
                        cache,
                        "SELECT id FROM conversations WHERE "
                        "assigned_agent = 'a-ana' AND status = 'assigned'"
                        " ORDER BY id LIMIT 2",
                    ):
                        engine.send_message(conv, f"reply-{n}").result(20)
                        written.append(f"reply-{n}")
                        n += 1
            except BaseException as exc:  # asserted below
                errors.append(exc)

        threads = [
            threading.Thread(target=customers, daemon=True),
            threading.Thread(target=agent, daemon=True),
        ]
        for t in threads:
            t.start()
        kinds = {"cut": 0, "stall": 0, "half_close": 0}
        while counts.faults < faults:
            wait_until(
                lambda: engine.status.state == "online" and proxy.links,
                timeout=30,
                what="a live connection to break",
            )
            stop.wait(rng.uniform(0.0, 0.3))  # the seeded moment of the fault
            kind = rng.choice(list(kinds))
            hit = (
                proxy.cut()
                if kind == "cut"
                else proxy.stall(rng.uniform(0.1, 0.6))
                if kind == "stall"
                else proxy.half_close()
            )
            if hit:
                counts.faults += 1
                kinds[kind] += 1
        wait_until(lambda: engine.status.state == "online", timeout=30, what="back online")
        stop.set()
        for t in threads:
            t.join(30)
        assert not errors, errors
        wait_converged(router, cache, "a-ana")
        at_router = [
            r[0] for r in rows(router.db, "SELECT body FROM messages WHERE direction = 'out'")
        ]
        counts.tally(written, at_router)
        problems = compare_with_router(router, cache, "a-ana")
        counts.extra.update(kinds)
        states = [s.state for s in rec.of(ConnectionStatus)]
        counts.extra["resumed"] = sum(
            1 for a, b in itertools.pairwise(states) if b == "online" and a != "online"
        )
        counts.extra["cache_differences"] = len(problems)
        counts.report()
        assert integrity(cache) == "ok"
        assert counts.written > 0
        assert counts.lost == 0 and counts.duplicated == 0
        assert not problems, problems[:5]
    finally:
        stop.set()
        proxy.stop()
