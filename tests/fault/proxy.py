"""A loopback TCP proxy that breaks connections on demand: cut, stall, half-close.

Why a real proxy rather than a patched socket: the client's websocket, its keepalive and its
reconnect logic all see exactly what a flaky office network or VPN does to them. It runs its
own asyncio loop on a thread so the test (and the engines under test) keep theirs.

- `cut()`: both directions closed at once (RST-like abrupt close of every live connection).
- `stall(seconds)`: bytes stop flowing both ways for a while, then the connection is cut
  (a stalled link that recovers by itself is not a fault anyone notices).
- `half_close()`: the client's side is told EOF (write side shut down) while the router's
  side stays open, then cut after a moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class _Link:
    def __init__(
        self,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.client = client
        self.upstream = upstream
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.tasks: list[asyncio.Task[None]] = []

    def close(self) -> None:
        for _, writer in (self.client, self.upstream):
            transport = writer.transport
            with contextlib.suppress(OSError):
                sock = transport.get_extra_info("socket")
                if sock is not None:  # SO_LINGER 0: an abrupt reset, like a dropped NAT entry
                    sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
            transport.abort()
        for task in self.tasks:
            task.cancel()


class FaultProxy:
    """Forwards 127.0.0.1:<port> to `target_port`; see the module doc for the faults."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.links: set[_Link] = set()
        self.accepted = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fault-proxy", daemon=True
        )

    def start(self) -> FaultProxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for link in list(self.links):
                link.close()

        self._call(close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # -- faults (any thread) ------------------------------------------------------------

    def cut(self) -> int:
        """Drop every live connection; return how many were cut."""

        async def go() -> int:
            links = list(self.links)
            for link in links:
                link.close()
            self.links.clear()
            return len(links)

        return int(self._call(go()))

    def stall(self, seconds: float) -> int:
        """Freeze every live connection for `seconds`, then cut it."""

        async def go() -> int:
            links = list(self.links)
            for link in links:
                link.flowing.clear()
            self._loop.call_later(seconds, _close_all, links)
            return len(links)

        return int(self._call(go()))

    def half_close(self, seconds: float = 0.2) -> int:
        """EOF towards the client (write side shut), the router side left open; cut later."""

        async def go() -> int:
            links = list(self.links)
            for link in links:
                with contextlib.suppress(OSError, RuntimeError):
                    link.client[1].write_eof()
                link.flowing.clear()
            self._loop.call_later(seconds, _close_all, links)
            return len(links)

        return int(self._call(go()))

    # -- plumbing ------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            upstream = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()  # the router is down: the client sees a refused link
            return
        link = _Link((reader, writer), upstream)
        self.links.add(link)
        link.tasks = [
            asyncio.ensure_future(self._pump(link, reader, upstream[1])),
            asyncio.ensure_future(self._pump(link, upstream[0], writer)),
        ]
        await asyncio.gather(*link.tasks, return_exceptions=True)
        self.links.discard(link)
        link.close()

    @staticmethod
    async def _pump(link: _Link, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        while True:
            data = await src.read(65536)
            if not data:
                with contextlib.suppress(OSError, RuntimeError):
                    dst.write_eof()
                return
            await link.flowing.wait()
            dst.write(data)
            await dst.drain()


def _close_all(links: list[_Link]) -> None:
    for link in links:
        link.close()
