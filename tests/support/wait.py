"""Waiting on conditions with a deadline: the only way tests here synchronise.

`SWITCHBOARD_TEST_TIMEOUT_SCALE` multiplies every deadline (slow CI machines, valgrind).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

SCALE = float(os.environ.get("SWITCHBOARD_TEST_TIMEOUT_SCALE", "1"))


def deadline(seconds: float) -> float:
    """Seconds scaled by SWITCHBOARD_TEST_TIMEOUT_SCALE."""
    return seconds * SCALE


def wait_until(
    condition: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll `condition` until it returns a truthy value and return it.

    Raises:
        TimeoutError: the condition stayed false for the scaled timeout; the message names it.
    """
    end = time.monotonic() + deadline(timeout)
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise TimeoutError(
                f"timed out after {deadline(timeout):.1f}s waiting for {what or condition}"
            )
        time.sleep(interval)


async def async_wait_until(
    condition: Callable[[], T | Awaitable[T]],
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "",
) -> T:
    """The asyncio form of `wait_until`; `condition` may be a coroutine function."""
    end = time.monotonic() + deadline(timeout)
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > end:
            raise TimeoutError(
                f"timed out after {deadline(timeout):.1f}s waiting for {what or condition}"
            )
        await asyncio.sleep(interval)
