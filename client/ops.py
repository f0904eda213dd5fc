"""Background work for the UI, with results and errors delivered on the UI thread.

Why: the UI thread must never wait, yet every outcome of an agent's action (a sent message, a
refused state change) has to reach the agent in words. `Op(fn).success(cb).failure(cb).run()`
runs `fn` on Qt's thread pool; `watch(future, ...)` does the same for the
`concurrent.futures.Future`s the sync engine returns. Callbacks always run on the UI thread and
a failure without a failure callback is logged as an error, never dropped.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from client.qt import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)

T = TypeVar("T")

# Relays waiting for their result: a strong reference each, so none is collected while its
# work is pending (a collected QObject would drop the result on the floor).
_pending: set[_Relay] = set()


class _Relay(QObject):
    """Lives on the UI thread; emitting from a worker thread queues the call to it."""

    finished = Signal(object, object)  # result, exception

    def __init__(
        self,
        on_success: Callable[[Any], None] | None,
        on_failure: Callable[[Exception], None] | None,
    ) -> None:
        super().__init__()
        self._on_success = on_success
        self._on_failure = on_failure
        self.finished.connect(self._deliver)
        _pending.add(self)

    def _deliver(self, result: object, exc: object) -> None:
        _pending.discard(self)
        if isinstance(exc, BaseException):
            if self._on_failure is not None:
                self._on_failure(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            else:
                log.error("background work failed", exc_info=exc)
        elif self._on_success is not None:
            self._on_success(result)
        self.deleteLater()


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], object], relay: _Relay) -> None:
        super().__init__()
        self._fn = fn
        self._relay = relay

    def run(self) -> None:
        try:
            result = self._fn()
        except Exception as exc:  # delivered to the failure callback on the UI thread
            self._relay.finished.emit(None, exc)
        else:
            self._relay.finished.emit(result, None)


class Op(Generic[T]):
    """`Op(fn).success(cb).failure(cb).run()`: `fn` on a worker, callbacks on the UI thread."""

    def __init__(self, fn: Callable[[], T]) -> None:
        self._fn = fn
        self._success: Callable[[T], None] | None = None
        self._failure: Callable[[Exception], None] | None = None

    def success(self, cb: Callable[[T], None]) -> Op[T]:
        self._success = cb
        return self

    def failure(self, cb: Callable[[Exception], None]) -> Op[T]:
        self._failure = cb
        return self

    def run(self) -> None:
        relay = _Relay(self._success, self._failure)
        QThreadPool.globalInstance().start(_Task(self._fn, relay))


def watch(
    future: concurrent.futures.Future[T],
    on_success: Callable[[T], None] | None = None,
    on_failure: Callable[[Exception], None] | None = None,
) -> None:
    """Deliver a future's outcome to the UI thread (the engine resolves it on its own thread)."""
    relay = _Relay(on_success, on_failure)

    def done(fut: concurrent.futures.Future[T]) -> None:
        try:
            result = fut.result()
        except BaseException as exc:  # includes CancelledError, which the agent should hear of
            relay.finished.emit(None, exc)
        else:
            relay.finished.emit(result, None)

    future.add_done_callback(done)
