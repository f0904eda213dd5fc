"""The `/agent/v1` websocket: one `AgentSession` per connection, fed by `sync.protocol`.

This is the thin I/O layer over the ACD: it authenticates the upgrade, says hello, answers
`resume` with a replay or a snapshot followed by `live`, then pushes the agent's new events as
the ACD announces them, and turns each command frame into one `commands.execute` call. Events
reach a live session from the hub as (seq, JSON) exactly as committed, so what a client
receives live is what a later replay from storage gives it, without reading each one back.

Writing: on the router's own server (`router.ws_transport`) a session writes all the frames
it has at once, in one transport write, and the hub writes a commit's events to every live,
caught-up session in one pass right after the commit, without waking a task per connection
(a session given an offer is written from the commit's `notify` itself, before the rest of
the loop turn runs). The per-session pusher task is the slow path: catching up from storage,
waiting out a slow client (flow control), or an ASGI server without the extension, which
gets frame by frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from router import commands, views
from router.auth import AuthError, agent_public, bearer_token
from router.http_common import error
from sync.protocol import (
    BAD_FRAME,
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    Command,
    ErrorFrame,
    Event,
    Frame,
    Hello,
    Live,
    ProtocolError,
    Resume,
    encode,
    parse_client_frame,
)

if TYPE_CHECKING:
    from router.service import Service

log = logging.getLogger(__name__)

EXTENSION = "switchboard.write_texts"
"""The ASGI scope extension of `router.ws_transport` (one write for many frames)."""
_BATCH = 500
_BACKLOG = 2000
"""Events a session may have waiting in memory before it is left to catch up from storage."""
URGENT_PREFIX = '{"kind":"offer",'
"""Stored events starting with this (offers: `router.offers.make_offer` emits `kind` first
and `encode_event` keeps the order) are written from `Hub.notify` itself, right after their
commit, instead of with the next loop turn's flush."""


class Subscription:
    """One session's wake-up and the events committed for its agent since it last looked.

    `write_now`, set by a live session, tries to send `events` at once from the hub's flush
    (True: sent, or nothing to send); when it cannot, the hub wakes the session's pusher.
    """

    def __init__(self) -> None:
        self.wakeup = asyncio.Event()
        self.events: list[tuple[int, str]] = []
        self.write_now: Callable[[], bool] | None = None
        self.dirty = False

    def take(self) -> list[tuple[int, str]]:
        events, self.events = self.events, []
        return events


class Hub:
    """Hands each commit's new events to the sessions of the agents they are for.

    The events are passed in memory (the JSON exactly as committed), so a live session sends
    them without reading them back; a session that falls behind by more than `_BACKLOG`
    keeps only the newest and catches up from storage, which its seq check notices. The
    sessions touched are flushed together once the loop has run what is ready (so commits of
    the same loop turn share one write per connection), except offers: a session whose new
    events include one writes them all (in seq order) at once, from `notify`, so an offer is
    not queued behind the rest of the loop turn (other requests, a metrics slice, the stream
    index) between its commit and the flush.
    """

    def __init__(self) -> None:
        self._waiters: dict[str, set[Subscription]] = {}
        self._dirty: list[Subscription] = []
        self._scheduled = False

    def subscribe(self, agent_id: str) -> Subscription:
        sub = Subscription()
        self._waiters.setdefault(agent_id, set()).add(sub)
        return sub

    def unsubscribe(self, agent_id: str, sub: Subscription) -> None:
        sub.write_now = None
        waiters = self._waiters.get(agent_id)
        if waiters is not None:
            waiters.discard(sub)
            if not waiters:
                del self._waiters[agent_id]

    def notify(self, grown: Mapping[str, list[tuple[int, str]]]) -> None:
        for agent_id, events in grown.items():
            urgent = any(text.startswith(URGENT_PREFIX) for _, text in events)
            for sub in self._waiters.get(agent_id, ()):
                if len(sub.events) > _BACKLOG:
                    sub.events = []
                sub.events.extend(events)
                if urgent and sub.write_now is not None and sub.write_now():
                    continue  # written (a pending flush finds nothing left for it)
                if not sub.dirty:
                    sub.dirty = True
                    self._dirty.append(sub)
        if not self._dirty or self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # driven without a loop (tests of the ACD alone)
            self.flush()
            return
        self._scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Send what the dirty sessions have, each in one write, or wake their pushers."""
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        for sub in dirty:
            sub.dirty = False
            if sub.events and (sub.write_now is None or not sub.write_now()):
                sub.wakeup.set()


class AgentEndpoint:
    """The ASGI app of `/agent/v1`: authenticate the upgrade (HTTP 401 + JSON on failure),
    then run the session. An ASGI app rather than a Starlette endpoint function so that the
    session sees the scope's `switchboard.write_texts` extension (`router.ws_transport`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        service: Service = websocket.app.state.service
        token = bearer_token(websocket.headers.get("authorization"))
        try:
            agent = service.auth.agent_for_token(token)
        except AuthError as exc:
            log.info("websocket upgrade refused: %s", exc.code)
            await websocket.send_denial_response(error(401, exc.code, exc.message))
            return
        await websocket.accept()
        extension = scope.get("extensions", {}).get(EXTENSION) or {}
        await AgentSession(
            service, websocket, agent, extension.get("write"), extension.get("wait_writable")
        ).run()


agent_endpoint = AgentEndpoint()


class AgentSession:
    """One agent connection: replay then live events out, commands in."""

    def __init__(
        self,
        service: Service,
        websocket: WebSocket,
        agent: dict[str, Any],
        writer: Callable[[Sequence[str]], bool] | None = None,
        wait_writable: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.service = service
        self.acd = service.acd
        self.ws = websocket
        self.agent_id: str = agent["id"]
        self.agent = agent
        self._writer = writer if wait_writable is not None else None
        self._wait_writable = wait_writable
        self._send_lock = asyncio.Lock()
        self._pusher: asyncio.Task[None] | None = None
        self._sub: Subscription | None = None
        self._cursor = 0
        """The last event seq sent, once live."""
        self._live = False

    async def send(self, frame: Frame) -> None:
        """Send one frame; frames from the reader (acks) and the pusher (events) never
        interleave mid-write.

        Raises:
            WebSocketDisconnect: the connection is gone (also when the other task saw it go).
        """
        await self.send_text(encode(frame))

    async def send_text(self, text: str) -> None:
        """Send one already-encoded frame (see `send`)."""
        async with self._send_lock:
            await self._write([text])

    async def _write(self, frames: Sequence[str]) -> None:
        """Send frames in order (call holding the send lock): in one transport write when
        the server offers it, waiting while the client is slow; else one by one.

        Raises:
            WebSocketDisconnect: the connection is gone.
        """
        if self.ws.application_state != WebSocketState.CONNECTED:
            raise WebSocketDisconnect(code=1006)
        if self._writer is None or self._wait_writable is None:
            for frame in frames:
                if self.ws.application_state != WebSocketState.CONNECTED:
                    raise WebSocketDisconnect(code=1006)
                await self.ws.send_text(frame)
            return
        try:
            while not self._writer(frames):
                await self._wait_writable()
        except ConnectionError as exc:
            raise WebSocketDisconnect(code=1006) from exc

    async def run(self) -> None:
        log.info("agent %s connected", self.agent_id)
        self.acd.connected(self.agent_id)
        self.service.live.forget(self.agent_id)
        self.service.wake()
        try:
            # The codes travel with the agent so the app offers exactly what the router
            # accepts (additive: older clients ignore the key).
            codes = {
                "wrap_up": list(self.acd.config.wrap_up_codes),
                "reasons": list(self.acd.config.reason_codes),
            }
            await self.send(
                Hello(
                    PROTOCOL_VERSION, {**agent_public(self.agent), "codes": codes}, self.acd.now()
                )
            )
            await self._read_loop()
        except WebSocketDisconnect:
            pass
        finally:
            if self._pusher is not None:
                self._pusher.cancel()
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                    await self._pusher
            if self._sub is not None:
                self.service.hub.unsubscribe(self.agent_id, self._sub)
            self.acd.disconnected(self.agent_id)
            self.service.wake()
            log.info("agent %s disconnected", self.agent_id)

    async def _read_loop(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            data = text if text is not None else message.get("bytes", b"")
            await self._handle(data)

    async def _handle(self, data: str | bytes) -> None:
        try:
            frame = parse_client_frame(data)
        except ProtocolError as exc:
            log.info("agent %s sent a refused frame: %s %s", self.agent_id, exc.code, exc.message)
            if exc.command_id is not None:
                await self.send(
                    commands.refuse(
                        self.acd, self.agent_id, exc.command_id, "?", exc.code, exc.message
                    )
                )
            else:
                await self.send(ErrorFrame(exc.code, exc.message))
            return
        if isinstance(frame, Resume):
            if self._pusher is not None:
                await self.send(ErrorFrame(BAD_FRAME, "This session has already resumed."))
                return
            await self._resume(frame.since)
        elif isinstance(frame, Command):
            ack = commands.execute(self.acd, self.agent_id, frame)
            self.service.wake()
            await self.send(ack)

    async def _resume(self, since: int) -> None:
        """Snapshot or replay, then `live`, then hand over to the hub and the pusher."""
        self._sub = self.service.hub.subscribe(self.agent_id)
        storage = self.acd.storage
        agent = storage.agent(self.agent_id)
        assert agent is not None
        if views.needs_snapshot(storage, self.agent_id, since):
            pages = views.build_snapshot(storage, agent, self.acd.config.snapshot_page_size)
            for page in pages:
                await self.send(page)
            cursor = pages[0].seq
        else:
            cursor = since
            log.info("replaying %s's events after %d", self.agent_id, since)
        async with self._send_lock:
            self._cursor = cursor
            await self._send_events_after()
        await self.send(Live(self._cursor))
        self._live = True
        self._sub.write_now = self._write_now
        self._pusher = asyncio.create_task(self._push(), name=f"push-{self.agent_id}")

    async def _send_events_after(self) -> None:
        """Send the stored events after the cursor (a replay, or catching up after a gap);
        call holding the send lock."""
        while True:
            batch = self.acd.storage.event_texts_after(self.agent_id, self._cursor, _BATCH)
            if not batch:
                return
            await self._write([_event_frame(seq, text) for seq, text in batch])
            self._cursor = batch[-1][0]

    def _fresh(self, events: list[tuple[int, str]]) -> list[tuple[int, str]] | None:
        """The events after the cursor, or None when they do not follow it (the hub dropped
        some: catch up from storage)."""
        start = 0
        while start < len(events) and events[start][0] <= self._cursor:
            start += 1
        if start < len(events) and events[start][0] != self._cursor + 1:
            return None
        return events[start:]

    def _write_now(self) -> bool:
        """The hub's fast path: write the subscription's events now if this session is live,
        caught up, not in the middle of another send and the transport takes writes. Never
        raises (the hub flushes every session in one pass); False leaves the events for the
        pusher."""
        sub = self._sub
        if not self._live or self._send_lock.locked() or self._writer is None or sub is None:
            return False
        try:
            fresh = self._fresh(sub.events)
            if fresh is None:
                return False
            if fresh and not self._writer([_event_frame(seq, text) for seq, text in fresh]):
                return False
        except Exception:  # closed, or an event too large: the pusher's path says which
            return False
        if fresh:
            self._cursor = fresh[-1][0]
        sub.events = []
        return True

    async def _send_new(self, events: list[tuple[int, str]]) -> None:
        """Send the committed events handed over by the hub, after catching up from storage
        if they do not follow the cursor; call holding the send lock."""
        fresh = self._fresh(events)
        if fresh is None:
            await self._send_events_after()
            fresh = self._fresh(events) or []
        if fresh:
            await self._write([_event_frame(seq, text) for seq, text in fresh])
            self._cursor = fresh[-1][0]

    async def _push(self) -> None:
        assert self._sub is not None
        sub = self._sub
        try:
            while self.ws.application_state == WebSocketState.CONNECTED:
                await sub.wakeup.wait()
                sub.wakeup.clear()
                async with self._send_lock:
                    await self._send_new(sub.take())
        except WebSocketDisconnect:
            return
        except Exception:
            log.exception("pushing events to %s failed; closing the connection", self.agent_id)
            with contextlib.suppress(Exception):
                await self.ws.close(code=1011)
            raise


def _event_frame(seq: int, text: str) -> str:
    """An event frame around stored JSON, sent as it is (encoded once for the whole
    audience); only an oversized one goes through `encode`, which refuses it rather than send
    a frame the client would reject."""
    frame = f'{{"type":"event","seq":{seq},"event":{text}}}'
    if len(frame) * 4 > MAX_FRAME_BYTES and len(frame.encode()) > MAX_FRAME_BYTES:
        frame = encode(Event(seq, json.loads(text)))
    return frame
