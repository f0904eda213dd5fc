"""The running router: storage, ACD, authenticator, session hub and background tasks.

The ACD itself has no timers; `Service` runs one ticker task that calls `Acd.tick()` at the
deadline it returns (offer expiry, disconnect grace, wrap-up ends, overflow, callbacks) or when
woken after a command, so routing never waits on a polling interval and tests can drive `Acd`
without any of this. A second task pushes live metrics once per interval, a third writes the
event streams' index in slices, and in the router's own process a fourth runs the full garbage
collections (router/gc_schedule.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from router.acd import Acd
from router.auth import Authenticator
from router.config import Clock, RouterConfig
from router.gc_schedule import ScheduledCollector
from router.metrics_live import LiveMetrics
from router.session import Hub
from router.storage import Storage
from router.storage_checkpoint import Checkpointer

log = logging.getLogger(__name__)

_MAX_TICK = 1.0
_PRUNE_EVERY = 300.0
_INDEX_EVERY = 0.04
_INDEX_PARTS = 50
"""A fiftieth of the agents every 40 ms (~560 rows, ~4 ms at 2,000 agents and 200
arrivals/s): each agent's index leaf is still written about once per 2 s, but no slice holds
the loop for the 10-14 ms that a twentieth every 0.1 s did."""
_FACTS_PER_TURN = 300
"""Facts fed to the live metrics per loop turn (~3 ms), out of ~1,500 a second at 200/s."""
_METRICS_PARTS = 20
"""Slices of the agents per metrics interval (~100 pushes, ~2.5 ms each at 2,000 agents:
a tenth each took 4-5 ms plus the flush of its 200 frames)."""
_PRUNE_AGENTS_PER_TURN = 100
"""Streams pruned per transaction and loop turn by the periodic prune."""


class Service:
    """Everything one router process runs, started and stopped by the app's lifespan."""

    def __init__(
        self,
        storage: Storage,
        config: RouterConfig,
        clock: Clock,
        demo_api: bool = False,
        gc_interval: float | None = None,
    ) -> None:
        """Set up the parts; nothing runs before `start()`.

        Args:
            gc_interval: seconds between scheduled full garbage collections, which then
                replace CPython's own (router/gc_schedule.py); None leaves the process's GC
                alone (a router inside a test or another program's process).
        """
        self.storage = storage
        self.config = config
        self.clock = clock
        self.demo_api = demo_api
        self.acd = Acd(storage, config, clock)
        self.auth = Authenticator(storage, clock, config.token_ttl)
        self.hub = Hub()
        self.acd.notify = self._on_events
        self.live = LiveMetrics(self.acd)
        self.starters: list[Callable[[Service], Awaitable[None]]] = []
        """Extra async set-up run at start (the demo registers its traffic here)."""
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_prune = 0.0
        self.checkpointer = Checkpointer(self.storage.conn, self.storage.path)
        self.collector = None if gc_interval is None else ScheduledCollector(gc_interval)

    def _on_events(self, grown: dict[str, list[tuple[int, str]]]) -> None:
        self.hub.notify(grown)
        self.wake()

    def wake(self) -> None:
        """Make the ticker re-check its deadline now (a command may have made a new one)."""
        self._wake.set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start a task the service keeps a strong reference to and cancels at stop; a task
        that dies of an error is logged, never silently lost."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def start(self) -> None:
        self.acd.start()
        # Pruned before the first connection, so a lowered `event_retention` holds from the
        # first resume on (not only after the first periodic prune).
        self._prune()
        self._last_prune = self.clock()
        for starter in self.starters:
            await starter(self)
        self.spawn(self.checkpointer.run(), "router-checkpoint")
        self.spawn(self._index_flusher(), "router-stream-index")
        if self.collector is not None:
            self.spawn(self.collector.run(), "router-gc")
        self.spawn(self._ticker(), "router-ticker")
        if self.config.metrics_push_interval > 0:
            self.spawn(self._metrics_pusher(), "router-metrics")
        log.info("router service started")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            with self.storage.transaction():
                self.storage.flush_stream_index()
        except sqlite3.Error as exc:
            # Not needed for correctness: the next start reads the entries back from the
            # event bodies. Said, not hidden.
            log.warning("could not flush the stream index at stop: %s", exc)
        self.storage.close()
        log.info("router service stopped")

    async def _ticker(self) -> None:
        while True:
            self._wake.clear()
            deadline: float | None = None
            try:
                deadline = self.acd.tick()
                now = self.clock()
                if now - self._last_prune >= _PRUNE_EVERY:
                    self._last_prune = now
                    self.spawn(self._prune_in_turns(), "router-prune")
            except Exception:
                # One failed round (a locked or full disk, say) must not stop routing for good:
                # log it loudly and try again after the usual interval.
                log.exception("routing tick failed; retrying in %.1fs", _MAX_TICK)
            now = self.clock()
            timeout = _MAX_TICK if deadline is None else min(_MAX_TICK, max(0.0, deadline - now))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _metrics_pusher(self) -> None:
        """Push live figures to connected agents, at most once per interval each: one slice
        of the agents every `_METRICS_PARTS`-th of the interval, so a round of thousands of
        pushes is spread out instead of delaying the work behind it; the round's figures are
        computed in a loop turn of their own before the first slice."""
        parts = _METRICS_PARTS
        part = 0
        while True:
            await asyncio.sleep(self.config.metrics_push_interval / parts)
            try:
                now = self.clock()
                if part == 0:
                    while not self.live.feed_facts(now, _FACTS_PER_TURN):
                        await asyncio.sleep(0)
                    self.live.prepare(now)
                    await asyncio.sleep(0)
                self.live.push(now, part, parts)
            except Exception:
                log.exception("pushing live metrics failed; retrying next interval")
            part = (part + 1) % parts

    async def _index_flusher(self) -> None:
        """Write the per-agent stream index in slices: one slice of the agents every
        `_INDEX_EVERY` seconds, so each agent's index leaf is written about once per
        `_INDEX_PARTS * _INDEX_EVERY` seconds for all its events meanwhile, and no single
        COMMIT carries the whole index (router/storage_log.py)."""
        part = 0
        while True:
            await asyncio.sleep(_INDEX_EVERY)
            try:
                with self.storage.transaction():
                    self.storage.flush_stream_index(part, _INDEX_PARTS)
            except Exception:
                log.exception("writing the stream index failed; retrying next round")
            part = (part + 1) % _INDEX_PARTS

    def _prune(self) -> None:
        with self.storage.transaction():
            removed = sum(
                self.storage.prune_events(a["id"], self.config.event_retention)
                for a in self.storage.agents()
            )
        if removed:
            log.info("pruned %d old events", removed)

    async def _prune_in_turns(self) -> None:
        """The periodic prune, spread over many short transactions and loop turns: the pending
        index slice by slice, then `_PRUNE_AGENTS_PER_TURN` streams at a time. Done in one
        go (as at start) it wrote the whole pending index (~28,000 rows at 200 arrivals/s)
        and pruned 2,000 streams in a single turn of the loop."""
        try:
            for part in range(_INDEX_PARTS):
                with self.storage.transaction():
                    self.storage.flush_stream_index(part, _INDEX_PARTS)
                await asyncio.sleep(0)
            ids = [a["id"] for a in self.storage.agents()]
            removed = 0
            for start in range(0, len(ids), _PRUNE_AGENTS_PER_TURN):
                with self.storage.transaction():
                    removed += sum(
                        self.storage.prune_events(agent_id, self.config.event_retention, False)
                        for agent_id in ids[start : start + _PRUNE_AGENTS_PER_TURN]
                    )
                await asyncio.sleep(0)
        except Exception:
            # Pruning only bounds the database's size: the next round tries again.
            log.exception("pruning old events failed; retrying next round")
            return
        if removed:
            log.info("pruned %d old events", removed)
