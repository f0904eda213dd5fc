"""Minimal websocket and HTTP clients for bench_router.py (a helper, not a benchmark: run
bench_router.py).

Why not the `websockets` client: 2,000 simulated agents receive every queue member's events
(about sixty frames per arrival, twelve thousand a second at 200 arrivals/s), and the
library's per-frame work (parsing into objects, a queue, an async iterator, then JSON) took
the bench process's whole core before the router's was busy, so the bench measured itself.
This client is an `asyncio.Protocol` that splits the byte stream into frames and hands each
text payload, as bytes, to a synchronous callback; the agents decode only their offers and
acks. It speaks just what the router sends: unfragmented text frames, pings and close, no
extensions (none is offered).

`HttpPool` sends the arrivals: httpx's connection pool spent two thirds of the bench
process's time matching queued requests to connections once a few hundred were in flight, and
its round trip (the "47 ms" once blamed on the router) was mostly that queue.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Callable
from typing import Any


class RawWebSocket(asyncio.Protocol):
    """One client connection: `open()`, then `send_text()`; text frames go to `on_text`."""

    def __init__(self, on_text: Callable[[bytes], None]) -> None:
        self.on_text = on_text
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        loop = asyncio.get_running_loop()
        self._upgraded: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        path: str,
        headers: dict[str, str],
        on_text: Callable[[bytes], None],
    ) -> RawWebSocket:
        """Connect and upgrade.

        Raises:
            ConnectionError: the server answered the upgrade with anything but 101.
        """
        loop = asyncio.get_running_loop()
        _, ws = await loop.create_connection(lambda: cls(on_text), host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        assert ws.transport is not None
        ws.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await ws._upgraded
        return ws

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._upgraded.done():
            self._upgraded.set_exception(exc or ConnectionError("closed during the upgrade"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._upgraded.done():
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buf[:end])
            del self._buf[: end + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                self._upgraded.set_exception(ConnectionError(head.split(b"\r\n")[0].decode()))
                return
            self._upgraded.set_result(None)
        self._frames()

    def _frames(self) -> None:
        buf, pos, size = self._buf, 0, len(self._buf)
        while size - pos >= 2:
            opcode, length, head = buf[pos] & 0x0F, buf[pos + 1] & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if size - pos < head + length:
                break
            payload = bytes(buf[pos + head : pos + head + length])  # server frames: unmasked
            pos += head + length
            if opcode == 0x1:
                self.on_text(payload)
            elif opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8 and self.transport is not None:
                self.transport.close()
        del buf[:pos]

    def _send(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError("the connection is closed")
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
        mask = os.urandom(4)
        stream = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")
        self.transport.write(head + mask + masked)

    def send_text(self, text: str) -> None:
        self._send(0x1, text.encode())

    async def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._send(0x8, (1000).to_bytes(2, "big"))
            self.transport.close()
        await self.closed


class HttpPool:
    """Keep-alive HTTP/1.1 connections, one request at a time on each, JSON in and out."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port, self.size = host, port, size
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._conns: list[asyncio.StreamWriter] = []

    async def open(self) -> None:
        for _ in range(self.size):
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self._conns.append(writer)
            self._idle.put_nowait((reader, writer))

    async def close(self) -> None:
        for writer in self._conns:
            writer.close()

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        """(status, body); waits for a free connection first."""
        data = b"" if body is None else json.dumps(body).encode()
        reader, writer = await self._idle.get()
        try:
            writer.write(
                f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}"
                "\r\n\r\n".encode()
                + data
            )
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            status = int(head[0].split()[1])
            length = next(
                int(h.split(":", 1)[1]) for h in head if h.lower().startswith("content-length:")
            )
            payload = await reader.readexactly(length)
        except BaseException:
            writer.close()  # a half-read connection is not reused
            raise
        self._idle.put_nowait((reader, writer))
        return status, payload


if __name__ == "__main__":
    print("bench_router_ws.py is a helper of bench/bench_router.py; run that one.")
