"""Full garbage collections on a schedule instead of whenever CPython decides.

The router's heap is large and mostly long-lived (a session, a task and a transport per
connected agent, the agent rows, the day's metrics aggregator). CPython's automatic
collection of the oldest generation walks all of it: measured under `bench/bench_router.py`
(2,000 agents, 200 arrivals/s) it ran every 2-3 s and stopped the router's only thread for
185-290 ms each time, which alone set the event delivery p99 (~60-300 ms). With the oldest
generation left to this task, the same run gave a delivery p99 of 31 ms (docs/architecture.md,
"Router performance").

The young generations are still collected automatically (1-10 ms each), so short-lived
cycles are freed as before; only cycles that outlive two young collections wait for the
next scheduled pass. `run()` restores the thresholds it changed when it stops.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 300.0
"""Seconds between full collections: one pause of a few hundred ms every five minutes."""
_NEVER = 1_000_000_000
"""A third threshold CPython never reaches: young collections do not start a full one."""


class ScheduledCollector:
    """Runs `gc.collect()` every `interval` seconds while `run()` is awaited, and keeps
    CPython from starting full collections by itself meanwhile."""

    def __init__(self, interval: float = DEFAULT_INTERVAL) -> None:
        self.interval = interval
        self.runs = 0
        """Full collections done, for tests and logs."""

    async def run(self) -> None:
        first, second, third = gc.get_threshold()
        gc.set_threshold(first, second, _NEVER)
        try:
            while True:
                await asyncio.sleep(self.interval)
                start = time.perf_counter()
                freed = gc.collect()
                self.runs += 1
                log.debug(
                    "full garbage collection: %d objects freed in %.0f ms",
                    freed,
                    1000 * (time.perf_counter() - start),
                )
        finally:
            gc.set_threshold(first, second, third)
