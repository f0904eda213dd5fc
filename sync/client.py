"""`SyncEngine`: the websocket to the router, the cache's only writer, on one asyncio thread.

The UI calls the public methods from its own thread; they never block (each hands a
coroutine to the engine's loop and returns a `concurrent.futures.Future`). Everything the
engine learns comes back through one listener callback, called on the sync thread with the
immutable notifications of `sync.changes`.

The socket is a thin pump around `sync.session.ClientProtocol`: frames in, effects out, each
effect carried out by `sync.effects.SessionEffects` (store, send, notify). Frames leave through
one writer task per connection, so the order the protocol decided is the order on the wire.
An agent's action is written to the cache and the outbox first, whatever the connection is
doing, so it shows at once and survives anything; the connection only sends what the outbox
holds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from sync import outbox
from sync.agent_actions import AgentActions
from sync.apply import CursorMismatchError, get_cursor
from sync.changes import Change, ConnectionStatus, ConnState, ProtocolIssue, SignedIn
from sync.effects import AuthLostError, HaltError, RetryError, SessionEffects, backoff_delay
from sync.login import LoginError, is_loopback, login, websocket_url
from sync.protocol import MAX_FRAME_BYTES, Command, Resume, encode
from sync.recovery import (
    DISK_FULL_MESSAGE,
    DiskFullError,
    is_corrupt,
    is_disk_full,
    mark_clean,
    open_checked,
)
from sync.session import ClientProtocol
from sync.store import get_state

log = logging.getLogger(__name__)
T = TypeVar("T")


class SyncEngine(AgentActions):
    """Keeps the cache in step with the router and delivers the agent's actions.

    Args:
        cache_path: the SQLite cache (created and migrated on start).
        base_url: the router, e.g. `http://127.0.0.1:8765`.
        on_change: called on the sync thread with each `sync.changes` notification; it must
            be quick and must not call back into the engine synchronously.
        token: a bearer token from an earlier login (optional).
        username, password: used to log in when there is no token or it expired.
        clock: wall time for local rows (a parameter so tests can set it).
        rng: jitter source for the backoff.
    """

    def __init__(
        self,
        cache_path: Path | str,
        base_url: str,
        *,
        on_change: Callable[[Change], None],
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        backoff_cap: float = 30.0,
    ) -> None:
        self.cache_path = Path(cache_path)
        self.base_url = base_url.rstrip("/")
        self.ws_url = websocket_url(self.base_url)
        self._on_change = on_change
        self._token = token
        self._credentials = (username, password) if username and password else None
        self._clock = clock
        self._rng = rng or random.Random()
        self._backoff_cap = backoff_cap
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._main: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._db: sqlite_utils.Database | None = None
        self._fx: SessionEffects | None = None  # made once the cache is open
        self._status = ConnectionStatus("offline", "Not started.", 0)
        self._stopped = False
        self._went_live = False
        self._corrupt_seen = False
        self.cache_ready: concurrent.futures.Future[Path] = concurrent.futures.Future()
        """Resolves with the cache path once it exists and is migrated (the UI opens its
        read-only connection then), or fails with the reason it cannot be opened."""

    # ----------------------------------------------------------------- public, any thread

    @property
    def status(self) -> ConnectionStatus:
        """The last connection status given to the listener."""
        return self._status

    def start(self) -> None:
        """Start the sync thread (opens the cache, then connects). Returns at once."""
        if self._thread is not None:
            raise RuntimeError("SyncEngine.start() was already called")
        self._thread = threading.Thread(target=self._run, name="switchboard-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection and the cache and end the thread (waits up to `timeout`)."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread is None:
            self._loop.close()
            return
        self._loop.call_soon_threadsafe(self._request_stop)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("sync thread did not stop within %.1fs", timeout)

    def reconnect_now(self) -> None:
        """Skip the backoff wait (or retry after an auth or version stop)."""
        self._loop.call_soon_threadsafe(self._poke)

    def set_credentials(self, username: str, password: str) -> None:
        """New credentials (after auth_failed): log in with them and reconnect."""

        def apply() -> None:
            self._credentials = (username, password)
            self._token = None
            self._poke()

        self._loop.call_soon_threadsafe(apply)

    # ----------------------------------------------------------------- loop plumbing

    def _submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if self._stopped or self._loop.is_closed():
            coro.close()
            failed: concurrent.futures.Future[T] = concurrent.futures.Future()
            failed.set_exception(RuntimeError("The sync engine is stopped."))
            return failed
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """A task with a strong reference until it ends; its failure is logged, not lost."""
        task = self._loop.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sync task %s failed", task.get_name(), exc_info=task.exception())

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _request_stop(self) -> None:
        if self._main is not None:
            self._main.cancel()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._db, rebuilt = open_checked(self.cache_path)
            self._fx = SessionEffects(
                self._db, self._emit, self._clock, self._on_live, self._outbox_changed
            )
            known = get_state(self._db, "agent")
            if known:  # so replies written offline before hello carry the agent's name
                agent = json.loads(known)
                self._fx.agent_id = agent["id"]
                self._fx.author = agent.get("name") or agent["id"]
            self.cache_ready.set_result(self.cache_path)
            if rebuilt is not None:
                self._emit(ProtocolIssue("cache_rebuilt", rebuilt.message()))
        except DiskFullError as exc:
            log.error("cannot open the cache %s: the disk is full", self.cache_path)
            self.cache_ready.set_exception(exc)
            self._emit(ProtocolIssue("disk_full", str(exc), True))
        except Exception as exc:
            log.exception("cannot open the cache %s", self.cache_path)
            self.cache_ready.set_exception(exc)
            self._emit(ProtocolIssue("cache", f"The local cache cannot be opened: {exc}", True))
        try:
            self._main = self._loop.create_task(self._connect_forever(), name="sync-main")
            # stop() cancels it: the normal way out.
            with contextlib.suppress(asyncio.CancelledError):
                self._loop.run_until_complete(self._main)
            # Our own tasks (the writer) are cancelled; the agent's actions already submitted
            # are left to finish, so each future the UI holds resolves (they are short writes).
            for task in list(self._tasks):
                task.cancel()
            pending = asyncio.all_tasks(self._loop)
            if pending:
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        finally:
            self._set_status("offline", "Stopped.")
            if self._db is not None:
                if not self._corrupt_seen:
                    try:
                        mark_clean(self._db)
                    except sqlite3.Error:  # the next start checks the file: no harm done
                        log.exception("could not record a clean stop")
                self._db.conn.close()
                self._db = None
            self._loop.close()

    def _emit(self, change: Change) -> None:
        try:
            self._on_change(change)
        except Exception:  # the listener's bug must not stop the sync; it is logged in full
            log.exception("sync listener failed on %s", type(change).__name__)

    def _set_status(self, state: ConnState, detail: str, retry_in: float | None = None) -> None:
        count = outbox.count(self._db) if self._db is not None else self._status.outbox
        self._status = ConnectionStatus(state, detail, count, retry_in)
        self._emit(self._status)

    def _outbox_changed(self) -> None:
        if self._db is not None and outbox.count(self._db) != self._status.outbox:
            self._set_status(self._status.state, self._status.detail, self._status.retry_in)

    def _on_live(self) -> None:
        self._went_live = True
        self._set_status("online", f"Connected to {self.base_url}.")

    @property
    def db(self) -> sqlite_utils.Database:
        if self._db is None:
            raise RuntimeError("The local cache is not open.")
        return self._db

    @property
    def fx(self) -> SessionEffects:
        if self._fx is None:
            raise RuntimeError("The local cache is not open.")
        return self._fx

    # ----------------------------------------------------------------- connection

    async def _connect_forever(self) -> None:
        self._wake = asyncio.Event()
        attempt = 0
        while True:
            self._wake.clear()
            if self._fx is None:
                self._set_status("offline", "The local cache cannot be opened.")
                await self._wake.wait()
                continue
            self._set_status("connecting", f"Connecting to {self.base_url}…")
            try:
                await self._session()
                raise RetryError("The router closed the connection.")
            except HaltError as stop:
                self._set_status(stop.state, stop.message)
                await self._wake.wait()
                attempt = 0
            except Exception as retry:  # every kind is reported below, then retried
                if isinstance(retry, sqlite3.Error) and is_disk_full(retry):
                    log.error("session ended: the disk is full")
                    self._emit(ProtocolIssue("disk_full", DISK_FULL_MESSAGE))
                elif isinstance(retry, CursorMismatchError | sqlite3.Error):
                    log.error("session ended by a cache error", exc_info=retry)
                    if is_corrupt(retry):
                        self._corrupt_seen = True
                    self._emit(ProtocolIssue("cache", f"The local cache failed: {retry}"))
                elif not isinstance(retry, RetryError):
                    # A bug, or router input the parser let through but the cache refused:
                    # report it in full and retry later rather than let the sync thread die.
                    log.error("session ended by an unexpected error", exc_info=retry)
                    self._emit(ProtocolIssue("internal", f"Sync failed: {retry!r}"))
                attempt = 0 if self._went_live else attempt + 1
                delay = backoff_delay(attempt, self._rng, cap=self._backoff_cap)
                log.info("connection ended (%s); retrying in %.1fs", retry, delay)
                self._set_status("offline", str(retry), retry_in=delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    async def _session(self) -> None:
        """One connection attempt, start to end; RetryError or HaltError says what next."""
        self._went_live = False
        token = await self._ensure_token()
        try:
            async with connect(
                self.ws_url,
                additional_headers={"Authorization": f"Bearer {token}"},
                max_size=MAX_FRAME_BYTES,
                open_timeout=10,
                close_timeout=2,
                proxy=None if is_loopback(self.ws_url) else True,
                user_agent_header="Switchboard",
            ) as ws:
                await self._pump(ws)
        except AuthLostError as exc:
            self._token = None
            if self._credentials is not None:
                raise RetryError("The session expired; signing in again.") from None
            raise HaltError("auth_failed", str(exc)) from None
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                self._token = None
                if self._credentials is not None and status == 401:
                    raise RetryError("The session expired; signing in again.") from None
                raise HaltError("auth_failed", self._denial(exc)) from None
            if status >= 500 or status in (408, 429):
                raise RetryError(f"The router answered HTTP {status}.") from None
            raise HaltError(
                "offline", f"The router refused the connection (HTTP {status})."
            ) from None
        except InvalidURI as exc:
            raise HaltError("offline", f"Bad router address: {exc}") from None
        except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, EOFError) as exc:
            raise RetryError(f"Cannot reach the router: {exc or type(exc).__name__}") from None

    @staticmethod
    def _denial(exc: InvalidStatus) -> str:
        try:
            return str(json.loads(exc.response.body or b"")["error"]["message"])
        except (ValueError, KeyError, TypeError):
            return "The router refused the sign-in; please sign in again."

    async def _ensure_token(self) -> str:
        if self._token is not None:
            return self._token
        if self._credentials is None:
            raise HaltError("auth_failed", "Please sign in.")
        user, password = self._credentials
        try:
            result = await self._loop.run_in_executor(None, login, self.base_url, user, password)
        except LoginError as exc:
            if exc.retryable:
                raise RetryError(exc.message) from None
            if exc.status == 401:
                self._credentials = None
            state: ConnState = "auth_failed" if exc.status == 401 else "offline"
            raise HaltError(state, exc.message) from None
        self._token = result.token
        self._emit(
            SignedIn(
                str(result.agent.get("id", "")),
                str(result.agent.get("name", "")),
                result.token,
                result.expires_at,
            )
        )
        return result.token

    async def _pump(self, ws: ClientConnection) -> None:
        fx = self.fx
        proto = ClientProtocol(get_cursor(self.db))
        sendq: asyncio.Queue[Resume | Command] = asyncio.Queue()
        fx.proto, fx.sendq = proto, sendq
        for command in outbox.pending(self.db):
            proto.send_command(command)
        writer = self._spawn(self._writer(ws, proto, sendq), "sync-writer")
        try:
            async for raw in ws:
                fx.carry_out(proto.receive_text(raw))
        finally:
            fx.proto = fx.sendq = None
            writer.cancel()

    async def _writer(
        self, ws: ClientConnection, proto: ClientProtocol, sendq: asyncio.Queue[Resume | Command]
    ) -> None:
        """The connection's only sender, so frames leave in the order they were queued."""
        try:
            while True:
                frame = await sendq.get()
                if isinstance(frame, Resume):
                    frame = Resume(proto.cursor)  # the cursor may be rebased at hello
                await ws.send(encode(frame))
                if isinstance(frame, Command):
                    outbox.note_sent(self.db, frame.id)
        except ConnectionClosed:
            return  # the reader sees the same close and ends the session
        except Exception:
            log.exception("sync writer failed; dropping the connection")
            await ws.close(1011, "client error")
            raise
