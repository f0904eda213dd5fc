"""The `/agent/v1` websocket: one `AgentSession` per connection, fed by `sync.protocol`.

This is the thin I/O layer over the ACD: it authenticates the upgrade, says hello, answers
`resume` with a replay or a snapshot followed by `live`, then pushes the agent's new events as
the ACD announces them, and turns each command frame into one `commands.execute` call. Events
reach a live session from the hub as (seq, JSON) exactly as committed, so what a client
receives live is what a later replay from storage gives it, without reading each one back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from router import commands, views
from router.auth import AuthError, agent_public, bearer_token
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

_BATCH = 500
_BACKLOG = 2000
"""Events a session may have waiting in memory before it is left to catch up from storage."""


class Subscription:
    """One session's wake-up and the events committed for its agent since it last looked."""

    def __init__(self) -> None:
        self.wakeup = asyncio.Event()
        self.events: list[tuple[int, str]] = []

    def take(self) -> list[tuple[int, str]]:
        events, self.events = self.events, []
        return events


class Hub:
    """Hands each commit's new events to the sessions of the agents they are for.

    The events are passed in memory (the JSON exactly as committed), so a live session sends
    them without reading them back; a session that falls behind by more than `_BACKLOG`
    keeps only the newest and catches up from storage, which its seq check notices.
    """

    def __init__(self) -> None:
        self._waiters: dict[str, set[Subscription]] = {}

    def subscribe(self, agent_id: str) -> Subscription:
        sub = Subscription()
        self._waiters.setdefault(agent_id, set()).add(sub)
        return sub

    def unsubscribe(self, agent_id: str, sub: Subscription) -> None:
        waiters = self._waiters.get(agent_id)
        if waiters is not None:
            waiters.discard(sub)
            if not waiters:
                del self._waiters[agent_id]

    def notify(self, grown: Mapping[str, list[tuple[int, str]]]) -> None:
        for agent_id, events in grown.items():
            for sub in self._waiters.get(agent_id, ()):
                if len(sub.events) > _BACKLOG:
                    sub.events = []
                sub.events.extend(events)
                sub.wakeup.set()


async def agent_endpoint(websocket: WebSocket) -> None:
    """Authenticate the upgrade (HTTP 401 + JSON on failure), then run the session."""
    service: Service = websocket.app.state.service
    token = bearer_token(websocket.headers.get("authorization"))
    try:
        agent = service.auth.agent_for_token(token)
    except AuthError as exc:
        log.info("websocket upgrade refused: %s", exc.code)
        await websocket.send_denial_response(
            JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=401)
        )
        return
    await websocket.accept()
    await AgentSession(service, websocket, agent).run()


class AgentSession:
    """One agent connection: replay then live events out, commands in."""

    def __init__(self, service: Service, websocket: WebSocket, agent: dict[str, Any]) -> None:
        self.service = service
        self.acd = service.acd
        self.ws = websocket
        self.agent_id: str = agent["id"]
        self.agent = agent
        self._send_lock = asyncio.Lock()
        self._pusher: asyncio.Task[None] | None = None
        self._sub: Subscription | None = None

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
            if self.ws.application_state != WebSocketState.CONNECTED:
                raise WebSocketDisconnect(code=1006)
            await self.ws.send_text(text)

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
        """Snapshot or replay, then `live`, then hand over to the pusher."""
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
        cursor = await self._send_events_after(cursor)
        await self.send(Live(cursor))
        self._pusher = asyncio.create_task(self._push(cursor), name=f"push-{self.agent_id}")

    async def _send_events_after(self, cursor: int) -> int:
        """Send the stored events after `cursor` (a replay, or catching up after a gap)."""
        while True:
            batch = self.acd.storage.event_texts_after(self.agent_id, cursor, _BATCH)
            if not batch:
                return cursor
            await self._send_events(batch)
            cursor = batch[-1][0]

    async def _send_events(self, events: list[tuple[int, str]]) -> None:
        """Send events in order under one hold of the send lock. The stored JSON goes out as
        it is (it was encoded once for the whole audience); only an oversized one goes
        through `encode`, which refuses it rather than send a frame the client would
        reject."""
        async with self._send_lock:
            for seq, text in events:
                if self.ws.application_state != WebSocketState.CONNECTED:
                    raise WebSocketDisconnect(code=1006)
                frame = f'{{"type":"event","seq":{seq},"event":{text}}}'
                if len(frame) * 4 > MAX_FRAME_BYTES and len(frame.encode()) > MAX_FRAME_BYTES:
                    frame = encode(Event(seq, json.loads(text)))
                await self.ws.send_text(frame)

    async def _send_new(self, cursor: int, events: list[tuple[int, str]]) -> int:
        """Send the committed events handed over by the hub; if they do not follow `cursor`
        (the session fell behind and the hub dropped some), catch up from storage first."""
        start = 0
        while start < len(events) and events[start][0] <= cursor:
            start += 1
        if start < len(events) and events[start][0] != cursor + 1:
            cursor = await self._send_events_after(cursor)
            while start < len(events) and events[start][0] <= cursor:
                start += 1
        fresh = events[start:]
        if fresh:
            await self._send_events(fresh)
            cursor = fresh[-1][0]
        return cursor

    async def _push(self, cursor: int) -> None:
        assert self._sub is not None
        sub = self._sub
        try:
            while self.ws.application_state == WebSocketState.CONNECTED:
                await sub.wakeup.wait()
                sub.wakeup.clear()
                cursor = await self._send_new(cursor, sub.take())
        except WebSocketDisconnect:
            return
        except Exception:
            log.exception("pushing events to %s failed; closing the connection", self.agent_id)
            with contextlib.suppress(Exception):
                await self.ws.close(code=1011)
            raise
