"""A backend whose device objects live on one thread of their own (Qt's: QtMultimedia objects
must be used on the thread that made them).

The engine thread's calls become requests answered on that thread: each is queued with a
future, the device thread is woken (`_wake`, the subclass's way) and runs it, and the caller
waits for the answer. Kept apart from backend_qt so the Qt module holds only what needs Qt.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from softphone.backend import AudioBackend, Device
from softphone.ringbuffer import RingBuffer

Request = tuple[Callable[[], Any], Future[Any]]


class DeviceThreadBackend(AudioBackend):
    """The request plumbing and the engine-facing API; the `_open_capture`-style methods
    they run on the device thread are the subclass's."""

    def __init__(self, clock_rate: int, frame_ms: int = 20) -> None:
        super().__init__(clock_rate, frame_ms)
        self._requests: queue.SimpleQueue[Request] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    # Any thread ------------------------------------------------------------------------
    def _call(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        fut: Future[Any] = Future()
        self._requests.put((fn, fut))
        self._wake()
        return fut.result(timeout=timeout)

    def _wake(self) -> None:
        """Make the device thread serve the queue soon (it may also be waiting on it)."""

    def _alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # The device thread -----------------------------------------------------------------
    @staticmethod
    def _answer(request: Request) -> None:
        fn, fut = request
        try:
            fut.set_result(fn())
        except Exception as exc:
            fut.set_exception(exc)

    def _answer_all(self) -> None:
        """Run every queued request now."""
        while True:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return
            self._answer(request)

    def _answer_within(self, seconds: float) -> None:
        """Wait up to `seconds` for a request; run it and any queued behind it."""
        try:
            request = self._requests.get(timeout=seconds)
        except queue.Empty:
            return
        self._answer(request)
        self._answer_all()

    # Run on the device thread (the subclass's) ---------------------------------------------
    def _open_capture(self, ring: RingBuffer) -> None:
        raise NotImplementedError

    def _close_capture(self) -> None:
        raise NotImplementedError

    def _open_playback(self, ring: RingBuffer) -> None:
        raise NotImplementedError

    def _close_playback(self) -> None:
        raise NotImplementedError

    def _devices(self) -> dict[str, list[Device]]:
        raise NotImplementedError

    def _select(
        self, capture: str | None, playback: str | None, ringer: str | None
    ) -> dict[str, str]:
        raise NotImplementedError

    def _start_ringing(self) -> None:
        raise NotImplementedError

    def _stop_ringing(self) -> None:
        raise NotImplementedError

    # The engine thread's API -------------------------------------------------------------
    def open_capture(self, ring: RingBuffer) -> None:
        self._call(lambda: self._open_capture(ring))

    def close_capture(self) -> None:
        if self._alive():
            self._call(self._close_capture)

    def open_playback(self, ring: RingBuffer) -> None:
        self._call(lambda: self._open_playback(ring))

    def close_playback(self) -> None:
        if self._alive():
            self._call(self._close_playback)

    def devices(self) -> dict[str, list[Device]]:
        result: dict[str, list[Device]] = self._call(self._devices)
        return result

    def select(
        self, capture: str | None, playback: str | None, ringer: str | None
    ) -> dict[str, str]:
        result: dict[str, str] = self._call(lambda: self._select(capture, playback, ringer))
        return result

    def start_ringing(self) -> None:
        self._call(self._start_ringing)

    def stop_ringing(self) -> None:
        if self._alive():
            self._call(self._stop_ringing)
