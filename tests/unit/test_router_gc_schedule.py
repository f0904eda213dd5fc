"""The scheduled collector takes full collections over from CPython while it runs and gives
the thresholds back when it stops."""

from __future__ import annotations

import asyncio
import gc

from router.gc_schedule import ScheduledCollector


def test_full_collections_run_on_schedule_and_thresholds_come_back() -> None:
    before = gc.get_threshold()
    collector = ScheduledCollector(interval=0.0)

    async def scenario() -> tuple[int, int, int]:
        task = asyncio.create_task(collector.run())
        while collector.runs < 2:
            await asyncio.sleep(0)
        during = gc.get_threshold()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return during

    during = asyncio.run(scenario())
    assert during[:2] == before[:2] and during[2] > 1_000_000
    assert gc.get_threshold() == before
