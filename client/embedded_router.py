"""The embedded router: a child process on loopback with demo agents and demo traffic.

Why a child process (QProcess) and not a thread: the router is the same program a server runs;
as its own process it cannot stall the UI, and stopping it is what a real outage looks like
(the Demo menu uses that to show offline work and recovery). Its address comes from one stdout
line, read as it arrives (QProcess signals), so the UI never waits for it.

The demo password is random per app start and reaches the router only through its
environment (`SWITCHBOARD_DEMO_PASSWORD`): it is never written to disk or logged.
"""

from __future__ import annotations

import logging
import secrets
import sys
from collections import deque
from pathlib import Path

from client.qt import QObject, QProcess, QProcessEnvironment, QTimer, Signal

log = logging.getLogger(__name__)

LISTENING = "SWITCHBOARD_ROUTER_LISTENING"
PASSWORD_ENV = "SWITCHBOARD_DEMO_PASSWORD"
DEMO_USER = "ana"
START_TIMEOUT_MS = 30_000


def router_command(db: Path, port: int) -> tuple[str, list[str]]:
    """The program and arguments that run the router (the frozen bundle dispatches itself)."""
    # --exit-with-stdin: QProcess keeps the router's stdin open; if the app dies (even by
    # kill -9) the pipe closes and the router stops instead of living on as an orphan.
    # --demo-rate 4: a new customer about every 15 s, so a newcomer sees a living inbox.
    args = [
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--db",
        str(db),
        "--demo",
        "--demo-agents",
        "--demo-rate",
        "4",
        "--exit-with-stdin",
    ]
    if getattr(sys, "frozen", False):
        return sys.executable, ["--run-router", *args]
    return sys.executable, ["-m", "router", *args]


class EmbeddedRouter(QObject):
    """Starts, watches and stops the embedded router.

    Signals:
        listening(url): the router accepts connections at `url`.
        failed(reason): it could not start, or died; `reason` is for the agent.
        stopped(): it exited after `stop()`.
    """

    listening = Signal(str)
    failed = Signal(str)
    stopped = Signal()

    def __init__(self, data_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.db = data_dir / "router.db"
        self.password = secrets.token_urlsafe(24)
        self.username = DEMO_USER
        self.url: str | None = None
        self.port = 0
        self._proc: QProcess | None = None
        self._buffer = b""
        self._stderr: deque[str] = deque(maxlen=30)
        self._stopping = False
        self._deadline = QTimer(self)
        self._deadline.setSingleShot(True)
        self._deadline.timeout.connect(self._too_slow)

    def running(self) -> bool:
        return self._proc is not None and self._proc.state() != QProcess.ProcessState.NotRunning

    def start(self) -> None:
        """Start the router; `listening` or `failed` follows. A restart reuses the port, so
        the sync engine's address stays valid."""
        if self.running():
            return
        self.db.parent.mkdir(parents=True, exist_ok=True)
        program, args = router_command(self.db, self.port)
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert(PASSWORD_ENV, self.password)
        env.insert("PYTHONUNBUFFERED", "1")
        proc.setProcessEnvironment(env)
        proc.readyReadStandardOutput.connect(self._on_stdout)
        proc.readyReadStandardError.connect(self._on_stderr)
        proc.finished.connect(self._on_finished)
        proc.errorOccurred.connect(self._on_error)
        self._proc = proc
        self._buffer = b""
        self._stderr.clear()
        self._stopping = False
        log.info("starting the embedded router (db %s)", self.db)
        proc.start(program, args)
        self._deadline.start(START_TIMEOUT_MS)

    def stop(self) -> None:
        """Ask the router to exit (SIGTERM: it shuts down cleanly); `stopped` follows."""
        if not self.running():
            self.stopped.emit()
            return
        assert self._proc is not None
        self._stopping = True
        self._deadline.stop()
        log.info("stopping the embedded router")
        self._proc.terminate()
        QTimer.singleShot(5000, self._kill_if_alive)

    def stop_and_wait(self, msecs: int = 5000) -> None:
        """At exit only: stop and wait, so no router outlives the app."""
        if not self.running():
            return
        assert self._proc is not None
        self._stopping = True
        self._proc.terminate()
        if not self._proc.waitForFinished(msecs):
            log.warning("the embedded router did not stop in time; killing it")
            self._proc.kill()
            self._proc.waitForFinished(2000)

    def _kill_if_alive(self) -> None:
        if self._stopping and self.running() and self._proc is not None:
            log.warning("the embedded router ignored SIGTERM; killing it")
            self._proc.kill()

    def _on_stdout(self) -> None:
        assert self._proc is not None
        self._buffer += bytes(self._proc.readAllStandardOutput().data())
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            text = line.decode("utf-8", "replace").strip()
            if text.startswith(LISTENING):
                url = text[len(LISTENING) :].strip()
                self.url = url
                self.port = int(url.rsplit(":", 1)[1].split("/")[0])
                self._deadline.stop()
                log.info("embedded router listening at %s", url)
                self.listening.emit(url)
            elif text:
                log.debug("router stdout: %s", text)

    def _on_stderr(self) -> None:
        assert self._proc is not None
        data = bytes(self._proc.readAllStandardError().data()).decode("utf-8", "replace")
        for line in data.splitlines():
            if line.strip():
                self._stderr.append(line)
                log.debug("router: %s", line)

    def last_error_line(self) -> str:
        for line in reversed(self._stderr):
            if "Error" in line or "ERROR" in line or "error" in line:
                return line.strip()
        return self._stderr[-1].strip() if self._stderr else ""

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._deadline.stop()
        crashed = status == QProcess.ExitStatus.CrashExit
        if self._stopping:
            if crashed or code != 0:
                # Asked to stop, but it did not stop cleanly: worth a look in the logs.
                log.warning(
                    "embedded router ended badly while stopping (%s %s): %s",
                    "crash" if crashed else "exit",
                    code,
                    self.last_error_line(),
                )
            else:
                log.info("embedded router stopped")
            self.stopped.emit()
            return
        detail = self.last_error_line()
        how = "crashed" if crashed else f"stopped unexpectedly (exit code {code})"
        reason = f"The local router {how}"
        self.failed.emit(f"{reason}: {detail}" if detail else reason)

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._deadline.stop()
            self.failed.emit(f"Could not start the local router ({sys.executable} -m router).")

    def _too_slow(self) -> None:
        detail = self.last_error_line()
        reason = f"The local router did not start within {START_TIMEOUT_MS // 1000} s"
        self.failed.emit(f"{reason}: {detail}" if detail else reason)
        if self._proc is not None:
            self._stopping = True
            self._proc.kill()
