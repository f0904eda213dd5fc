"""A websocket peer on 127.0.0.1 that plays a scripted router, for the engine's fault tests.

The real router (tests/support/router_proc.py) is what the integration tests use; this peer
exists for what a healthy router never does on demand: skip an event, speak another protocol
version, send a broken frame, refuse an upgrade with HTTP 500, answer acks out of order. It
speaks the real wire format through `sync.protocol` and runs a real websockets server on its
own thread and loop; each test gives it one coroutine per connection.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from sync.protocol import Frame, Hello, Live, encode, parse_client_frame
from tests.support.wait import deadline

AGENT = {"id": "a-ana", "name": "Ana Lima", "queues": ["support"], "capacity": {"chat": 3}}


class Peer:
    """One connection as the script sees it.

    A reader task takes every client frame as it arrives and logs it with whether `live` had
    been sent by then, so a test can tell that nothing was sent too early.
    """

    def __init__(self, ws: ServerConnection, index: int) -> None:
        self.ws = ws
        self.index = index  # 0 for the first connection, 1 for the next, ...
        self.live_sent = False
        self.log: list[tuple[Any, bool]] = []  # (client frame, live had been sent)
        self._inbox: asyncio.Queue[Any] = asyncio.Queue()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                frame = parse_client_frame(text)
                self.log.append((frame, self.live_sent))
                self._inbox.put_nowait(frame)
        finally:
            self._inbox.put_nowait(None)  # closed

    @property
    def received(self) -> list[Any]:
        return [frame for frame, _ in self.log]

    async def send(self, frame: Frame | str) -> None:
        if isinstance(frame, Live):
            self.live_sent = True
        await self.ws.send(frame if isinstance(frame, str) else encode(frame))

    async def hello(self, protocol: int = 1, agent: dict[str, Any] | None = None) -> None:
        await self.send(Hello(protocol, agent or AGENT, 1000.0))

    async def recv(self, timeout: float = 10.0) -> Any:
        """The next client frame, parsed (a malformed one fails the reader, and the test).

        Raises:
            ConnectionError: the client closed the connection first.
        """
        frame = await asyncio.wait_for(self._inbox.get(), deadline(timeout))
        if frame is None:
            self._inbox.put_nowait(None)
            raise ConnectionError("the client closed the connection")
        return frame

    async def round_trip(self) -> None:
        """Ping and wait for the pong: everything the client sent before it has arrived."""
        pong = await self.ws.ping()
        await asyncio.wait_for(pong, deadline(10))
        await asyncio.sleep(0)  # let the reader log what came in with the pong

    async def wait_closed(self) -> None:
        await asyncio.wait_for(self.ws.wait_closed(), deadline(10))


Script = Callable[[Peer], Awaitable[None]]


class ScriptedRouter:
    """Runs `script(peer)` for each connection. `refuse` maps a connection attempt index to an
    HTTP status (with the router's JSON error body) to refuse that upgrade instead."""

    def __init__(self, script: Script, refuse: dict[int, int] | None = None) -> None:
        self.script = script
        self.refuse = dict(refuse or {})
        self.attempts = 0
        self.peers: list[Peer] = []
        self.errors: list[BaseException] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._server: Server | None = None
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="scripted-router"
        )

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        attempt = self.attempts
        self.attempts += 1
        status = self.refuse.get(attempt)
        if status is None:
            return None
        code = "unauthorized" if status == 401 else "internal"
        body = json.dumps({"error": {"code": code, "message": f"Refused with {status}."}})
        return Response(
            status,
            HTTPStatus(status).phrase,
            Headers({"Content-Type": "application/json", "Content-Length": str(len(body))}),
            body.encode(),
        )

    async def _handler(self, ws: ServerConnection) -> None:
        peer = Peer(ws, len(self.peers))
        self.peers.append(peer)
        try:
            await self.script(peer)
            await ws.wait_closed()
        except Exception as exc:  # kept for the test to assert on; the connection just ends
            if not isinstance(exc, asyncio.CancelledError):
                self.errors.append(exc)

    def start(self) -> None:
        self._thread.start()

        async def open_server() -> Server:
            return await serve(self._handler, "127.0.0.1", 0, process_request=self._process_request)

        self._server = asyncio.run_coroutine_threadsafe(open_server(), self._loop).result(10)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def close_all(self) -> None:
        """Close every open connection from the router's side (a normal close)."""

        async def close() -> None:
            await asyncio.gather(*(peer.ws.close() for peer in self.peers))

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(deadline(10))

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@contextmanager
def scripted_router(
    script: Script, refuse: dict[int, int] | None = None
) -> Iterator[ScriptedRouter]:
    router = ScriptedRouter(script, refuse)
    router.start()
    try:
        yield router
    finally:
        router.stop()
    if router.errors:
        raise router.errors[0]
