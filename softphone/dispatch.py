"""Running a command: its arguments checked, its handler run, its reply sent, now or later.

Why "later" exists: a handler that waits on the network (a STUN server that may never
answer) would hold every other command and SIP event for seconds. It calls `defer()`,
returns `DEFERRED`, and answers through `finish` when the network has. Mixed into `Engine`;
everything here runs on the engine thread.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from softphone import rpc
from softphone.backend import AudioError
from softphone.errors import EngineError

log = logging.getLogger(__name__)

#: What a handler returns when it answers later, through the `finish` that `defer()` gave it.
DEFERRED: dict[str, Any] = {}

#: `finish(fn)`: run `fn` on the engine thread; its result, or its error in words, is the reply.
Finish = Callable[[Callable[[], "dict[str, Any] | None"]], None]


class CommandDispatch:
    """`cmd_<name>` handlers looked up, run and answered; mixed into `Engine`."""

    _emit: Callable[[rpc.Message], None]
    _running: rpc.Command | None = None  # the command whose handler runs now

    def _run_command(self, cmd: rpc.Command) -> None:
        handler = getattr(self, f"cmd_{cmd.cmd}", None)
        if handler is None:
            self._emit(rpc.error(cmd.id, "unknown_command", f"unknown command {cmd.cmd!r}"))
            return
        try:
            inspect.signature(handler).bind(**cmd.args)
        except TypeError as exc:
            self._emit(rpc.error(cmd.id, "bad_args", f"{cmd.cmd}: {exc}"))
            return
        self._running = cmd
        try:
            self._answer(cmd, lambda: handler(**cmd.args))
        finally:
            self._running = None

    def _answer(self, cmd: rpc.Command, fn: Callable[[], dict[str, Any] | None]) -> None:
        """Run `fn` and send its result, or its error in words, as the reply to `cmd`."""
        try:
            result = fn()
        except EngineError as exc:
            self._emit(rpc.error(cmd.id, exc.code, str(exc)))
        except AudioError as exc:
            self._emit(rpc.error(cmd.id, "audio_error", str(exc)))
        except Exception as exc:
            log.exception("command %s failed", cmd.cmd)
            self._emit(rpc.error(cmd.id, "internal", f"{cmd.cmd} failed: {exc}"))
        else:
            if result is DEFERRED:
                return  # the handler called defer(): it answers later, through finish()
            self._emit(rpc.ok(cmd.id, **(result or {})))

    def defer(self) -> Finish:
        """Let the running handler answer later (see the module's docstring for why): it
        returns `DEFERRED` now and, on the engine thread later, calls `finish(fn)`; `fn`'s
        result, or its error in words, becomes the reply. Each `finish` answers once."""
        cmd = self._running
        assert cmd is not None, "defer() outside a command handler"
        answered = False

        def finish(fn: Callable[[], dict[str, Any] | None]) -> None:
            nonlocal answered
            if not answered:
                answered = True
                self._answer(cmd, fn)

        return finish
