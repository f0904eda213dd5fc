"""Driving an in-process engine from a script: the human subcommands of switchboard-phone.

The engine runs on the main thread (it owns pjsua2); the script runs on a second thread
and talks to it exactly as the UI would, with commands and events, so the command line
exercises the same paths as the app.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from softphone import rpc
from softphone.engine import Engine

log = logging.getLogger(__name__)


class ScriptError(RuntimeError):
    """The script's step failed (a command error or a wait that ran out)."""


class Driver:
    """Sends commands and waits for replies/events with deadlines.

    Args:
        printer: called with every event (the CLI prints them for the human).
    """

    def __init__(self, printer: Callable[[rpc.Event], None] | None = None) -> None:
        self._queue: queue.SimpleQueue[rpc.Message] = queue.SimpleQueue()
        self._ids = rpc.IdSource("cli")
        self._printer = printer
        self.engine: Engine | None = None
        self.events: list[rpc.Event] = []

    def emit(self, message: rpc.Message) -> None:
        """The engine's output callback (engine thread)."""
        self._queue.put(message)

    def request(self, cmd: str, timeout: float = 10.0, **args: Any) -> dict[str, Any]:
        """Send a command and return its result.

        Raises:
            ScriptError: the engine answered with an error or did not answer.
        """
        assert self.engine is not None
        msg_id = self._ids.next()
        self.engine.submit(rpc.command(cmd, msg_id, **args))
        reply = self._next(
            lambda m: isinstance(m, rpc.Reply) and m.id == msg_id, timeout, f"the reply to {cmd}"
        )
        assert isinstance(reply, rpc.Reply)
        if not reply.ok:
            raise ScriptError(f"{cmd}: {reply.error_message}")
        return reply.result

    def wait_event(
        self, name: str, timeout: float, match: Callable[[dict[str, Any]], bool] = lambda d: True
    ) -> dict[str, Any]:
        """The next event `name` whose data satisfies `match`.

        Raises:
            ScriptError: it did not come in time.
        """
        for ev in self.events:
            if ev.event == name and match(ev.data):
                self.events.remove(ev)
                return ev.data
        got = self._next(
            lambda m: isinstance(m, rpc.Event) and m.event == name and match(m.data),
            timeout,
            f"event {name}",
        )
        assert isinstance(got, rpc.Event)
        self.events.remove(got)
        return got.data

    def _next(self, want: Callable[[rpc.Message], bool], timeout: float, what: str) -> rpc.Message:
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise ScriptError(f"timed out after {timeout:.0f}s waiting for {what}")
            try:
                msg = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if isinstance(msg, rpc.Event):
                self.events.append(msg)
                if self._printer:
                    self._printer(msg)
            if want(msg):
                return msg


def run_script(engine: Engine, driver: Driver, script: Callable[[Driver], int]) -> int:
    """Run `script` on a thread while `engine` runs here; returns the script's exit status."""
    driver.engine = engine
    result: list[int] = []

    def body() -> None:
        try:
            engine.started.wait(timeout=30)
            result.append(script(driver))
        except ScriptError as exc:
            log.error("%s", exc)
            result.append(1)
        except Exception:
            log.exception("script failed")
            result.append(2)
        finally:
            engine.submit(rpc.command("shutdown", "cli-exit"))

    thread = threading.Thread(target=body, name="cli-script", daemon=True)
    thread.start()
    engine.run()
    thread.join(timeout=5)
    return result[0] if result else 2
