"""uvicorn's `websockets` protocol with one addition: write many text frames at once.

Why: at 2,000 agents the router writes about sixty event frames per arrival. Through
Starlette's `send_text`, uvicorn's `asgi_send` and the `websockets` legacy protocol each frame
cost ~25 µs (three layers of checks and coroutines, a header built by the library, one
`transport.write` and one `send()` syscall each): a fifth of the router's CPU in the profile.
ASGI has no message for "these frames, together", so this protocol adds one, as an ASGI scope
extension our `/agent/v1` endpoint looks for (any other ASGI server, or the test client, just
lacks it and the endpoint sends frame by frame):

    scope["extensions"]["switchboard.write_texts"] = {"write": write_texts}

`write_texts(texts) -> bool` frames the texts and hands them to the transport in one write,
synchronously, so the session hub can flush every session touched by a commit in one pass
without waking a task per connection. It returns False (nothing written) while the transport
asks us to pause (the client reads slowly): the caller then awaits `wait_writable()`, which is
the library's own flow control. Both raise `ConnectionError` once the connection is not open.

We keep uvicorn and `websockets` for everything else (handshake, reading, pings, close,
limits): only the hot write path goes around them. Serving `/agent/v1` from `websockets`' own
server would have meant a second port or a hand-written HTTP router in front, for the login,
webhooks, the chat widget and `/metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence

from uvicorn.protocols.websockets.websockets_impl import WebSocketProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from router.session import EXTENSION


def frame_text(data: bytes) -> bytes:
    """One unmasked, unfragmented server text frame (RFC 6455 section 5.2), no extensions."""
    n = len(data)
    if n < 126:
        return bytes((0x81, n)) + data
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + data
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + data


class BatchingWebSocketProtocol(WebSocketProtocol):
    """`--ws websockets` plus the `switchboard.write_texts` extension."""

    async def run_asgi(self) -> None:
        self.scope["extensions"][EXTENSION] = {
            "write": self.write_texts,
            "wait_writable": self.wait_writable,
        }
        await super().run_asgi()

    def write_texts(self, texts: Sequence[str]) -> bool:
        """Write `texts` as text frames in one transport write; False (nothing written) while
        the handshake is still going or writing is paused.

        Raises:
            ConnectionError: the connection is closing or closed.
        """
        if not self.handshake_completed_event.is_set():
            return False  # accepted by the app, the 101 not written yet: wait_writable()
        if (
            self.state is not State.OPEN
            or self.closed_event.is_set()
            or self.transport.is_closing()
        ):
            raise ConnectionError("the websocket is not open")
        if self._paused:
            return False
        if self.extensions:  # never negotiated by the router (no deflate); kept correct anyway
            data = b"".join(
                Frame(Opcode.TEXT, t.encode()).serialize(mask=False, extensions=self.extensions)
                for t in texts
            )
        else:
            data = b"".join(frame_text(t.encode()) for t in texts)
        self.transport.write(data)
        return True

    async def wait_writable(self) -> None:
        """Wait until the handshake is done and the transport takes writes (the library's
        flow control).

        Raises:
            ConnectionError: the connection closed meanwhile.
        """
        await self.handshake_completed_event.wait()
        try:
            await self.drain()
        except ConnectionClosed as exc:
            raise ConnectionError("the websocket closed") from exc
