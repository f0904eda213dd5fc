"""A real router process for tests: `RouterProcess` and the `router` / `demo_router` fixtures.

Usage:

    def test_something(router: RouterProcess) -> None:
        token = router.login("ana")              # POST /api/login with the demo password
        ...  connect to router.ws_url with {"Authorization": f"Bearer {token}"} ...
        router.restart()                         # SIGTERM, then start again: same db and port

`router` runs `python -m router --demo-agents` (agents ana, ben, chloe; queues support/sales,
support/billing, sales/billing) on 127.0.0.1, a free port and a fresh database in `tmp_path`,
with no demo traffic, and always stops it. `demo_router` adds `--demo --demo-rate 0
--demo-seed 1`: seeded customers, three conversations assigned to ana with history, a queued
billing email and a queued support chat, customers answering agent replies, and
`POST /api/demo/inbound` to make customers write in. For other options build a
`RouterProcess` yourself (it is a context manager).

`AgentConn` is a minimal agent-side client over the real `websockets` library for tests that
want to speak the protocol by hand (`await AgentConn.open(router.ws_url, token)`, `resume`,
`command`, `event`); every wait has a deadline, nothing sleeps to hope for order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.support.wait import deadline

ROOT = Path(__file__).resolve().parents[2]
LISTENING = "SWITCHBOARD_ROUTER_LISTENING"
PASSWORD_ENV = "SWITCHBOARD_DEMO_PASSWORD"
DEMO_PASSWORD = "test-only-demo-password"
"""Given to the router through its environment only; tests log in with it."""


class RouterProcess:
    """One `python -m router` child process.

    Args:
        db: the SQLite file (kept across `restart`).
        args: extra CLI arguments (e.g. `["--demo-agents", "--offer-timeout", "2"]`).
        env: extra environment; the demo password is set unless given here.
        port: 0 for a free port; after the first start, restarts reuse the bound port.
        start_timeout: seconds to wait for the LISTENING line (scaled by
            SWITCHBOARD_TEST_TIMEOUT_SCALE).
    """

    def __init__(
        self,
        db: Path,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        port: int = 0,
        start_timeout: float = 20.0,
    ) -> None:
        self.db = db
        self.args = list(args or [])
        self.env = {PASSWORD_ENV: DEMO_PASSWORD, **(env or {})}
        self.port = port
        self.start_timeout = start_timeout
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_path = db.with_name(db.name + ".stderr.log")

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> RouterProcess:
        """Start the process and wait for its LISTENING line.

        Raises:
            RuntimeError: it exited or stayed silent past the deadline (stderr tail included).
        """
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("router already running")
        cmd = [
            sys.executable,
            "-m",
            "router",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db",
            str(self.db),
            *self.args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        stderr = self.stderr_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
            )
        finally:
            stderr.close()
        self.url = self._read_listening(self.proc)
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def _read_listening(self, proc: subprocess.Popen[bytes]) -> str:
        assert proc.stdout is not None
        end = time.monotonic() + deadline(self.start_timeout)
        line = b""
        while time.monotonic() < end:
            ready, _, _ = select.select([proc.stdout], [], [], 0.05)
            if ready:
                line = proc.stdout.readline()
                if line.startswith(LISTENING.encode()):
                    return line.decode().split()[1]
                if not line and proc.poll() is not None:
                    break
            elif proc.poll() is not None:
                break
        self.kill()
        raise RuntimeError(f"router did not start (last stdout {line!r}):\n{self.stderr_tail()}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not exit in time. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(deadline(timeout))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self._finish()

    def kill(self) -> int | None:
        """SIGKILL (a crash: no shutdown code runs) and wait."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return self._finish()

    def _finish(self) -> int | None:
        assert self.proc is not None
        code = self.proc.returncode
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code

    def restart(self, kill: bool = False) -> RouterProcess:
        """Stop (or kill) and start again on the same database and port."""
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start()

    def __enter__(self) -> RouterProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers

    @property
    def ws_url(self) -> str:
        """The agent websocket URL (`ws://127.0.0.1:PORT/agent/v1`)."""
        return self.url.replace("http://", "ws://", 1) + "/agent/v1"

    def stderr_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def login(self, username: str, password: str = DEMO_PASSWORD) -> str:
        """Log in and return the bearer token.

        Raises:
            httpx.HTTPStatusError: the router refused (wrong password: 401).
        """
        response = httpx.post(
            f"{self.url}/api/login", json={"username": username, "password": password}, timeout=10
        )
        response.raise_for_status()
        return str(response.json()["token"])

    def inbound(
        self,
        channel: str,
        sender: str,
        name: str,
        body: str,
        queue: str,
        subject: str | None = None,
    ) -> str:
        """A customer writes in (needs --demo or --demo-agents); returns the conversation id."""
        payload: dict[str, Any] = {
            "channel": channel,
            "from": sender,
            "name": name,
            "body": body,
            "queue": queue,
        }
        if subject is not None:
            payload["subject"] = subject
        response = httpx.post(f"{self.url}/api/demo/inbound", json=payload, timeout=10)
        response.raise_for_status()
        return str(response.json()["conversation_id"])


@pytest.fixture
def router(tmp_path: Path) -> Iterator[RouterProcess]:
    """A router with the demo agents and no demo traffic, stopped after the test."""
    proc = RouterProcess(tmp_path / "router.db", ["--demo-agents", "--log-level", "DEBUG"])
    with proc:
        yield proc


@pytest.fixture
def demo_router(tmp_path: Path) -> Iterator[RouterProcess]:
    """A router with demo agents, seeded demo conversations, no new arrivals."""
    proc = RouterProcess(
        tmp_path / "router.db",
        [
            "--demo-agents",
            "--demo",
            "--demo-rate",
            "0",
            "--demo-seed",
            "1",
            "--log-level",
            "DEBUG",
        ],
    )
    with proc:
        yield proc


# ---------------------------------------------------------------------- protocol client

Frame = dict[str, Any]


class AgentConn:
    """One agent websocket: frames kept in arrival order, helpers to wait for the ones needed."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.frames: list[Frame] = []
        self.hello: Frame = {}
        self._taken: set[int] = set()

    @classmethod
    async def open(cls, ws_url: str, token: str) -> AgentConn:
        """Connect with the bearer token and read `hello`.

        Raises:
            websockets.InvalidStatus: the upgrade was refused (401 for a bad token).
        """
        ws = await websockets.connect(
            ws_url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=None
        )
        conn = cls(ws)
        conn.hello = await conn.until(lambda f: True)
        assert conn.hello["type"] == "hello", conn.hello
        return conn

    async def close(self) -> None:
        await self.ws.close()

    async def send(self, frame: Frame | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def until(self, pred: Callable[[Frame], bool], timeout: float = 10.0) -> Frame:
        """Receive until a frame matches `pred` and return it (all frames stay in `frames`).

        Raises:
            TimeoutError: none matched within the scaled timeout.
        """
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline(timeout)
        while True:
            left = end - loop.time()
            if left <= 0:
                raise TimeoutError(
                    f"no matching frame within {deadline(timeout):.1f}s; "
                    f"last frames: {self.frames[-5:]}"
                )
            frame: Frame = json.loads(await asyncio.wait_for(self.ws.recv(), left))
            self.frames.append(frame)
            if pred(frame):
                return frame

    async def resume(self, since: int) -> tuple[list[Frame], Frame]:
        """Send `resume`; return the frames that came before `live`, and `live`."""
        start = len(self.frames)
        await self.send({"type": "resume", "since": since})
        live = await self.until(lambda f: f["type"] == "live")
        return self.frames[start:-1], live

    async def command(self, name: str, command_id: str | None = None, **args: Any) -> Frame:
        """Send a command and return its ack (events that arrive meanwhile stay in
        `frames`)."""
        cid = command_id or str(uuid.uuid4())
        await self.send({"type": "command", "id": cid, "name": name, "args": args})
        return await self.until(lambda f: f["type"] == "ack" and f["id"] == cid)

    async def event(
        self, kind: str, pred: Callable[[Frame], bool] = lambda e: True, timeout: float = 10.0
    ) -> Frame:
        """The first `event` frame of `kind` matching `pred` not returned before (it may
        have arrived already); returns the whole frame (`seq`, `event`)."""

        def fits(index: int, frame: Frame) -> bool:
            return (
                index not in self._taken
                and frame.get("type") == "event"
                and frame["event"].get("kind") == kind
                and pred(frame["event"])
            )

        for index, frame in enumerate(self.frames):
            if fits(index, frame):
                self._taken.add(index)
                return frame
        found = await self.until(lambda f: fits(len(self.frames) - 1, f), timeout)
        self._taken.add(len(self.frames) - 1)
        return found

    def events(self) -> list[Frame]:
        return [f for f in self.frames if f["type"] == "event"]
