"""The scheduled collector takes full collections over from CPython while it runs and gives
the thresholds back when it stops."""

from __future__ import annotations

import asyncio
import gc
import weakref

from router.gc_schedule import ScheduledCollector


def test_full_collections_run_on_schedule_and_thresholds_come_back() -> None:
    before = gc.get_threshold()
    collector = ScheduledCollector(interval=0.0)

    async def scenario() -> tuple[tuple[int, int, int], int]:
        task = asyncio.create_task(collector.run())
        while collector.runs < 2:
            await asyncio.sleep(0)
        during = gc.get_threshold(), gc.get_freeze_count()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return during

    # a deadline: a collector that stopped running fails here instead of hanging the suite
    during, frozen = asyncio.run(asyncio.wait_for(scenario(), timeout=10))
    assert during[:2] == before[:2] and during[2] > 1_000_000
    assert frozen > 0  # the survivors of each pass are not walked by the next one
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_every_thaw_pass_walks_the_whole_heap() -> None:
    """A cycle among frozen objects is freed by the next thawing pass."""
    collector = ScheduledCollector(interval=0.0, thaw_every=2)

    class Node:
        other: object = None

    async def scenario() -> bool:
        task = asyncio.create_task(collector.run())
        while collector.runs < 1:
            await asyncio.sleep(0)
        a, b = Node(), Node()
        a.other, b.other = b, a
        gc.freeze()  # as if they had survived a pass
        ref = weakref.ref(a)
        del a, b
        start = collector.runs
        while collector.runs < start + 2:
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return ref() is None

    assert asyncio.run(asyncio.wait_for(scenario(), timeout=10))
