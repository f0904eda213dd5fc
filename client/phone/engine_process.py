"""The phone engine as a child process of the UI, spoken to in JSON lines (docs/engine-protocol.md).

Why a process: a native crash in the media stack or a long paint must never take the other
down. This object starts `python -m softphone rpc` with QProcess, turns its stdout lines into
Qt signals on the UI thread, and restarts it (with capped backoff) when it dies, replaying
the last `register` per account and `set_devices`, so the agent is back on the phone without
doing anything. Nothing here blocks the UI thread: replies arrive as signals, and a command
the engine does not answer in time (a hung engine, not a dead one) is answered here with a
`timeout` error in words, so no button waits forever. A timeout is followed by a `status`
probe; if that goes unanswered too the engine is hung (a deadlock in native code, a stuck
audio device call), and it is killed and restarted like a crashed one.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from client.qt import QObject, QProcess, QTimer, Signal
from softphone import rpc

log = logging.getLogger(__name__)

ReplyHandler = Callable[[rpc.Reply], None]


class _Pending(NamedTuple):
    """A command sent and not answered yet."""

    handler: ReplyHandler | None
    cmd: str
    seconds: float  # its timeout
    due: float  # time.monotonic() at which it times out


#: Seconds the engine gets to answer a command before the UI answers it with `timeout`.
#: `register` may wait on a STUN server (PJSIP gives up on a dead one after 7.9 s).
TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = {"register": 20.0}
#: Seconds the liveness probe sent after a timeout gets before the engine is called hung.
#: Long on purpose: PJSIP resolves a SIP domain with the OS resolver on the engine's loop,
#: and a resolver on a bad VPN can take 20 s to give up; killing the engine then would only
#: restart it into the same wait. A truly hung engine is replaced within ~30 s.
PROBE_TIMEOUT_S = 20.0
#: The engine's command line for the agent's headset: PulseAudio streams on Linux,
#: QtMultimedia elsewhere (`softphone.__main__.default_backend`). Tests pass their own.
HEADSET_ARGS: tuple[str, ...] = ("--backend", "auto")


class PhoneEngineProcess(QObject):
    """Owns the engine process.

    Signals:
        engine_event(name, data): every engine event, on the UI thread.
        state_changed(state): "starting", "running", "restarting", "stopped".
        crashed(message): the engine died unexpectedly (it is being restarted).

    Args:
        args: extra command-line arguments for `softphone rpc` (backend, ports, devices).
        program: the interpreter (tests and frozen builds override it).
    """

    engine_event = Signal(str, dict)  # not "event": that is QObject.event()
    state_changed = Signal(str)
    crashed = Signal(str)

    MAX_BACKOFF_MS = 10_000

    def __init__(
        self,
        args: list[str] | None = None,
        program: str | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._args = list(args or [])
        self._program = program or sys.executable
        self._ids = rpc.IdSource("ui")
        self._pending: dict[str, _Pending] = {}  # by message id, until answered
        self._buffer = b""
        self._stopping = False
        self._backoff_ms = 250
        self.restarts = 0
        self.state = "stopped"
        self.ready: dict[str, Any] = {}
        self._replay: dict[str, tuple[str, dict[str, Any]]] = {}
        self._proc: QProcess | None = None
        self._unsent: list[bytes] = []  # written before the process started
        self._restart_timer = QTimer(self)
        self._restart_timer.setSingleShot(True)
        self._restart_timer.timeout.connect(self._spawn)
        self._expiry_timer = QTimer(self)  # runs only while a reply is awaited
        self._expiry_timer.setInterval(250)
        self._expiry_timer.timeout.connect(self._expire)
        self.probe_timeout_s = PROBE_TIMEOUT_S
        self._probing = False  # a `status` probe after a timeout is awaited
        self._hung = False  # the engine was killed for not answering

    # Lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Start the engine (no-op when running)."""
        self._stopping = False
        if self._proc is None:
            self._spawn()

    def stop(self, timeout_ms: int = 5000) -> None:
        """Ask the engine to shut down (hang up, unregister) and wait for it, then kill."""
        self._stopping = True
        self._restart_timer.stop()
        proc = self._proc
        if proc is None:
            return
        if proc.state() != QProcess.ProcessState.NotRunning:
            self.send("shutdown")
            proc.closeWriteChannel()
            if not proc.waitForFinished(timeout_ms):
                log.warning("phone engine did not stop in %d ms; killing it", timeout_ms)
                proc.kill()
                proc.waitForFinished(2000)
        self._set_state("stopped")

    def pid(self) -> int:
        """The engine's process id (0 when not running)."""
        return int(self._proc.processId()) if self._proc is not None else 0

    def _spawn(self) -> None:
        self._set_state("starting" if self.restarts == 0 else "restarting")
        proc = QProcess(self)
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.SeparateChannels)
        proc.readyReadStandardOutput.connect(self._read_stdout)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.finished.connect(self._finished)
        proc.errorOccurred.connect(self._error)
        proc.started.connect(self._flush_unsent)
        self._proc = proc
        self._buffer = b""
        proc.start(self._program, ["-m", "softphone", "rpc", *self._args])

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        proc = self.sender()
        if proc is not self._proc:
            return
        self._proc = None
        self._unsent.clear()
        pending = list(self._pending.items())
        self._pending.clear()
        self._expiry_timer.stop()
        for msg_id, waiting in pending:
            if waiting.handler is not None:
                waiting.handler(rpc.error(msg_id, "internal", "the phone engine stopped"))
        if self._stopping:
            self._set_state("stopped")
            return
        self._probing = False
        why = (
            "the phone engine stopped answering"
            if self._hung
            else f"the phone engine stopped unexpectedly (exit {code}, {status.name})"
        )
        self._hung = False
        log.error("%s; restarting in %d ms", why, self._backoff_ms)
        self.crashed.emit(why)
        self.restarts += 1
        self._set_state("restarting")
        self._restart_timer.start(self._backoff_ms)
        self._backoff_ms = min(self._backoff_ms * 2, self.MAX_BACKOFF_MS)

    def _error(self, error: QProcess.ProcessError) -> None:
        log.error("phone engine process error: %s", error.name)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    # Talking ----------------------------------------------------------------------------
    def send(
        self,
        cmd: str,
        on_reply: ReplyHandler | None = None,
        timeout_s: float | None = None,
        **args: Any,
    ) -> str:
        """Send a command; `on_reply` gets its reply later on the UI thread, exactly once.

        With no reply within `timeout_s` (default: COMMAND_TIMEOUT_S or TIMEOUT_S), the reply
        is a `timeout` error made here; the engine's late answer is then dropped.
        `register` and `set_devices` are remembered and replayed after a restart.
        """
        msg_id = self._ids.next()
        message = rpc.command(cmd, msg_id, **args)
        if cmd == "register":
            self._replay[f"register:{args.get('account', 'default')}"] = (cmd, message.args)
        elif cmd == "unregister":
            self._replay.pop(f"register:{args.get('account', 'default')}", None)
        elif cmd == "set_devices":
            self._replay["set_devices"] = (cmd, message.args)
        if self._proc is None:  # stopped or between restarts: say so now, replay covers state
            if on_reply is not None:
                on_reply(rpc.error(msg_id, "internal", "the phone engine is not running"))
            return msg_id
        seconds = timeout_s if timeout_s is not None else COMMAND_TIMEOUT_S.get(cmd, TIMEOUT_S)
        self._pending[msg_id] = _Pending(on_reply, cmd, seconds, time.monotonic() + seconds)
        if not self._expiry_timer.isActive():
            self._expiry_timer.start()
        data = rpc.encode(message).encode("utf-8")
        if self._proc.state() == QProcess.ProcessState.Running:
            self._proc.write(data)
        else:
            self._unsent.append(data)
        return msg_id

    def _flush_unsent(self) -> None:
        if self._proc is not None:
            for data in self._unsent:
                self._proc.write(data)
        self._unsent.clear()

    def _read_stderr(self) -> None:
        if self._proc is None:
            return
        for line in bytes(self._proc.readAllStandardError().data()).splitlines():
            log.info("engine: %s", line.decode("utf-8", "replace"))

    def _read_stdout(self) -> None:
        if self._proc is None:
            return
        self._buffer += bytes(self._proc.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                msg = rpc.decode(line)
            except rpc.ProtocolError as exc:
                log.error("unreadable line from the phone engine: %s (%r)", exc, line[:200])
                continue
            self._dispatch(msg)

    def _expire(self) -> None:
        """Answer every command whose time is up with `timeout`, in words."""
        now = time.monotonic()
        due = [(i, p) for i, p in self._pending.items() if p.due <= now]
        for msg_id, p in due:
            del self._pending[msg_id]
            log.warning("phone engine: no reply to %s (%s) within %.0f s", p.cmd, msg_id, p.seconds)
            if p.handler is not None:
                p.handler(
                    rpc.error(
                        msg_id,
                        "timeout",
                        f"The phone engine did not answer “{p.cmd}” within {p.seconds:.0f} s; "
                        "it may be stuck. Try again, or restart Switchboard if it persists.",
                    )
                )
        if due and not self._probing and self._proc is not None:
            self._probing = True
            self.send("status", self._probed, timeout_s=self.probe_timeout_s)
        if not self._pending:
            self._expiry_timer.stop()

    def _probed(self, reply: rpc.Reply) -> None:
        """The liveness probe's answer: a timeout means the engine is hung: restart it."""
        self._probing = False
        if reply.error_code != "timeout" or self._proc is None:
            return
        log.error("the phone engine answers nothing (%s); killing it", reply.error_message)
        self._hung = True
        self._proc.kill()  # `_finished` restarts it and replays the account

    def _dispatch(self, msg: rpc.Message) -> None:
        if isinstance(msg, rpc.Reply):
            msg_id = msg.id or ""
            if msg_id not in self._pending:
                log.warning("phone engine: late or unknown reply %s dropped", msg_id)
                return
            handler = self._pending.pop(msg_id).handler
            if not self._pending:
                self._expiry_timer.stop()
            if handler is not None:
                handler(msg)
            elif not msg.ok:
                log.warning("phone engine: %s", msg.error_message)
        elif isinstance(msg, rpc.Event):
            if msg.event == "ready":
                self.ready = msg.data
                self._backoff_ms = 250
                self._set_state("running")
                for cmd, args in list(self._replay.values()):
                    self.send(cmd, **args)
            self.engine_event.emit(msg.event, msg.data)
