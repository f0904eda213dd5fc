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

The scheduled pass itself walked the whole heap (a few hundred ms). So `run()` freezes the
heap when it starts (`gc.freeze()`: the start-up objects move to a generation no collection
walks), and each pass freezes what survived it: a pass walks only the objects made since the
previous one. A cycle that forms among frozen objects (a session dropped after its pass, say)
would never be freed that way, so every `thaw_every`-th pass unfreezes the heap and walks all
of it: one long pause an hour instead of every five minutes.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 300.0
"""Seconds between full collections: one pause of a few hundred ms every five minutes."""
DEFAULT_THAW = 12
"""Every twelfth pass (once an hour by default) walks the whole, unfrozen, heap."""
_NEVER = 1_000_000_000
"""A third threshold CPython never reaches: young collections do not start a full one."""


class ScheduledCollector:
    """Runs `gc.collect()` every `interval` seconds while `run()` is awaited, and keeps
    CPython from starting full collections by itself meanwhile."""

    def __init__(self, interval: float = DEFAULT_INTERVAL, thaw_every: int = DEFAULT_THAW) -> None:
        self.interval = interval
        self.thaw_every = max(1, thaw_every)
        self.runs = 0
        """Full collections done, for tests and logs."""

    async def run(self) -> None:
        first, second, third = gc.get_threshold()
        gc.set_threshold(first, second, _NEVER)
        gc.freeze()
        try:
            while True:
                await asyncio.sleep(self.interval)
                start = time.perf_counter()
                thaw = (self.runs + 1) % self.thaw_every == 0
                if thaw:
                    gc.unfreeze()
                freed = gc.collect()
                gc.freeze()
                self.runs += 1
                log.debug(
                    "%s garbage collection: %d objects freed in %.0f ms (%d frozen)",
                    "full" if thaw else "scheduled",
                    freed,
                    1000 * (time.perf_counter() - start),
                    gc.get_freeze_count(),
                )
        finally:
            gc.unfreeze()
            gc.set_threshold(first, second, third)
