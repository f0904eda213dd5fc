"""Background work: results and errors come back on the UI thread, never dropped."""

from __future__ import annotations

import concurrent.futures
import threading

from pytestqt.qtbot import QtBot

from client.ops import Op, watch
from client.qt import QThread


def test_op_result_and_error_arrive_on_the_ui_thread(qtbot: QtBot) -> None:
    ui = QThread.currentThread()
    got: list[tuple[str, object, bool]] = []
    worker_threads: list[str] = []

    def work() -> int:
        worker_threads.append(threading.current_thread().name)
        return 42

    def boom() -> int:
        raise ValueError("disk full")

    Op(work).success(lambda r: got.append(("ok", r, QThread.currentThread() is ui))).run()
    Op(boom).failure(lambda e: got.append(("err", str(e), QThread.currentThread() is ui))).run()
    qtbot.waitUntil(lambda: len(got) == 2, timeout=5000)
    assert sorted(got) == [("err", "disk full", True), ("ok", 42, True)]
    assert worker_threads and worker_threads[0] != threading.main_thread().name


def test_watch_delivers_a_future_resolved_on_another_thread(qtbot: QtBot) -> None:
    ui = QThread.currentThread()
    fut: concurrent.futures.Future[str] = concurrent.futures.Future()
    failed: list[tuple[str, bool]] = []
    watch(fut, lambda _r: None, lambda e: failed.append((str(e), QThread.currentThread() is ui)))
    threading.Thread(target=lambda: fut.set_exception(LookupError("no such conversation"))).start()
    qtbot.waitUntil(lambda: bool(failed), timeout=5000)
    assert failed == [("no such conversation", True)]
