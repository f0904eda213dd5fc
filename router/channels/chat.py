"""Web chat: the widget page (`/chat`) and the customer's websocket (`/chat/v1`).

The customer side speaks small JSON frames (docs/channels.md): `start {name, visitor_id?,
secret?}` -> `ready {visitor_id, secret?, messages}`; `message {body}`; `callback {phone,
note?}` -> `callback_requested`; `leave` -> `left`; `survey {score}` -> `survey_thanks`; the
router pushes `message` (the customer's own, echoed once stored, and agents' replies), `typing`
(an agent is typing) and `survey` (rate the conversation that just ended).
A visitor id is the customer's chat identity; its secret (kept by the page in localStorage,
stored here only as a SHA-256 digest) lets a reload pick the conversation up again without
letting anyone who guesses a visitor id read it. Agents' replies reach open sockets through
the outbound dispatcher; a visitor who is away sees them in `ready.messages` next time.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import uuid
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from router import intake
from router.channels.config import ChatConfig
from router.channels.http import agent_for, error
from router.channels.identities import e164, link_identity
from router.channels.inbound import Delivered, InboundMessage, deliver
from router.channels.outbound import Outbound, Sent
from router.channels.store import ChannelStore
from router.channels.survey import Surveys
from router.service import Service
from router.storage import Row

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
MAX_FRAME_CHARS = 64 * 1024
MAX_BODY_CHARS = 20_000
MAX_NAME_CHARS = 100


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class ChatError(Exception):
    """A customer frame refused; sent back as an `error` frame, the socket stays open."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ChatChannel:
    """Visitors' sockets and the widget's routes."""

    def __init__(
        self, service: Service, config: ChatConfig, outbound: Outbound, surveys: Surveys
    ) -> None:
        self.service = service
        self.config = config
        self.store = ChannelStore(service.storage)
        self.surveys = surveys
        self.sockets: dict[str, set[WebSocket]] = {}
        self._names: dict[WebSocket, str] = {}
        outbound.senders["chat"] = self.send
        surveys.askers["chat"] = self.ask_survey

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/chat", self.page, methods=["GET"]),
            Mount("/chat/static", StaticFiles(directory=STATIC_DIR), name="chat-static"),
            WebSocketRoute("/chat/v1", self.endpoint),
            Route(
                "/api/conversations/{conversation_id}/typing", self.agent_typing, methods=["POST"]
            ),
        ]

    async def page(self, request: Request) -> Response:
        host = request.headers.get("host", "")
        response = FileResponse(STATIC_DIR / "chat.html", media_type="text/html")
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            f"connect-src 'self' ws://{host} wss://{host}; base-uri 'none'; form-action 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    # ------------------------------------------------------------------ customer socket

    async def endpoint(self, websocket: WebSocket) -> None:
        await websocket.accept()
        visitor_id: str | None = None
        try:
            while True:
                text = await websocket.receive_text()
                try:
                    frame = self._frame(text)
                    if visitor_id is None:
                        visitor_id = await self._start(websocket, frame)
                    else:
                        await self._handle(websocket, visitor_id, frame)
                except ChatError as exc:
                    log.info("chat frame refused: %s", exc.code)
                    await websocket.send_json(
                        {"type": "error", "code": exc.code, "message": exc.message}
                    )
                except WebSocketDisconnect:
                    raise
                except Exception:
                    # Our failure (the database, a bug): the customer is told their message
                    # was not taken, so they can send it again; the traceback is logged.
                    log.exception("chat frame failed")
                    await websocket.send_json(
                        {
                            "type": "error",
                            "code": "internal",
                            "message": "Sorry, that did not reach us. Please try again.",
                        }
                    )
        except WebSocketDisconnect:
            pass
        finally:
            self._names.pop(websocket, None)
            if visitor_id is not None:
                sockets = self.sockets.get(visitor_id, set())
                sockets.discard(websocket)
                if not sockets:
                    self.sockets.pop(visitor_id, None)

    def _frame(self, text: str) -> dict[str, Any]:
        if len(text) > MAX_FRAME_CHARS:
            raise ChatError("too_large", "That message is too long.")
        try:
            frame = json.loads(text)
        except ValueError:
            raise ChatError("bad_frame", "Frames are JSON objects.") from None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise ChatError("bad_frame", "Frames are JSON objects with a type.")
        return frame

    async def _start(self, websocket: WebSocket, frame: dict[str, Any]) -> str:
        if frame["type"] != "start":
            raise ChatError("bad_frame", "Say start first.")
        name = frame.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
            raise ChatError("bad_name", "Please tell us your name.")
        visitor_id, secret = frame.get("visitor_id"), frame.get("secret")
        new_secret: str | None = None
        stored = (
            self.store.visitor_secret_hash(visitor_id)
            if isinstance(visitor_id, str) and isinstance(secret, str)
            else None
        )
        if stored is None or not hmac.compare_digest(stored, _digest(str(secret))):
            visitor_id = f"v-{uuid.uuid4().hex[:16]}"
            new_secret = secrets.token_urlsafe(24)
            with self.service.storage.transaction():
                self.store.add_visitor(visitor_id, _digest(new_secret), self.service.clock())
            log.info("new chat visitor %s", visitor_id)
        assert isinstance(visitor_id, str)
        self.sockets.setdefault(visitor_id, set()).add(websocket)
        ready: dict[str, Any] = {
            "type": "ready",
            "visitor_id": visitor_id,
            "messages": self._history(visitor_id),
        }
        if new_secret is not None:
            ready["secret"] = new_secret
        elif self.surveys.pending("chat", visitor_id) is not None:
            ready["survey"] = True
        self._names[websocket] = name.strip()
        await websocket.send_json(ready)
        return visitor_id

    def _conversation(self, visitor_id: str) -> str | None:
        customer_id = self.service.storage.customer_by_identity("chat", visitor_id)
        if customer_id is None:
            return None
        return self.service.storage.open_conversation_for(customer_id, "chat")

    def _history(self, visitor_id: str) -> list[dict[str, Any]]:
        conversation_id = self._conversation(visitor_id)
        if conversation_id is None:
            return []
        return [self._wire(m) for m in self.store.chat_messages(conversation_id)]

    def _wire(self, message: Row) -> dict[str, Any]:
        author = ""
        if message["direction"] == "out":
            agent = self.service.storage.agent(message["author"])
            author = agent["name"] if agent else "Support"
        return {
            "id": message["id"],
            "direction": message["direction"],
            "author": author,
            "body": message["body"],
            "created_at": message["created_at"],
        }

    async def _handle(self, websocket: WebSocket, visitor_id: str, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "message":
            body = frame.get("body")
            if not isinstance(body, str) or not body.strip():
                raise ChatError("bad_body", "Write something first.")
            if len(body) > MAX_BODY_CHARS:
                raise ChatError("too_large", f"Messages hold at most {MAX_BODY_CHARS} characters.")
            delivered = self._take(websocket, visitor_id, body)
            await self._push(visitor_id, delivered.message_id)
        elif kind == "callback":
            await self._callback(websocket, visitor_id, frame)
        elif kind == "leave":
            await self._leave(websocket, visitor_id)
        elif kind == "survey":
            await self._survey(websocket, visitor_id, frame.get("score"))
        elif kind == "typing":
            return  # The customer's typing is not shown to agents yet (no event for it).
        else:
            raise ChatError("unknown_type", f"Unknown frame type {kind!r}.")

    def _take(
        self, websocket: WebSocket, visitor_id: str, body: str, extra: Any = None
    ) -> Delivered:
        item = InboundMessage(
            channel="chat",
            address=visitor_id,
            name=self._names.get(websocket, "Visitor"),
            body=body,
            queue=self.config.queue,
        )
        delivered = deliver(self.service, item, extra)
        assert delivered is not None  # no external id: never a duplicate
        return delivered

    async def _callback(self, websocket: WebSocket, visitor_id: str, frame: dict[str, Any]) -> None:
        phone = e164(str(frame.get("phone") or ""))
        note = frame.get("note")
        if phone is None:
            raise ChatError(
                "bad_phone", "Give the number with its country code, like +14155550134."
            )
        if note is not None and (not isinstance(note, str) or len(note) > 500):
            raise ChatError("bad_note", "The note holds at most 500 characters.")
        note = note.strip() if isinstance(note, str) and note.strip() else None
        request_id = f"cr-{uuid.uuid4().hex[:12]}"
        body = f"Please call me back on {phone}." + (f" {note}" if note else "")

        def record(store: ChannelStore, delivered: Delivered) -> None:
            conversation = self.service.acd.conversation(delivered.conversation_id)
            store.add_callback_request(
                request_id,
                delivered.conversation_id,
                conversation["customer_id"],
                "chat",
                phone,
                note,
                self.service.clock(),
            )

        delivered = self._take(websocket, visitor_id, body, record)
        customer_id = self.service.acd.conversation(delivered.conversation_id)["customer_id"]
        try:
            link_identity(self.service, customer_id, "phone", phone)
        except LookupError:
            log.info("callback number of %s already belongs to another customer", visitor_id)
        log.info("callback %s requested in %s", request_id, delivered.conversation_id)
        await self._push(visitor_id, delivered.message_id)
        await websocket.send_json({"type": "callback_requested", "id": request_id, "phone": phone})

    async def _leave(self, websocket: WebSocket, visitor_id: str) -> None:
        """The customer ended the chat. Still waiting for an agent, it is abandoned (the
        ACD's `customer_left`: counted in the metrics, its offer withdrawn); already with an
        agent, the agent sees a line saying so and wraps up as usual. A closed page alone is
        not leaving: the customer may be reloading it."""
        conversation_id = self._conversation(visitor_id)
        if conversation_id is not None and not intake.customer_left(
            self.service.acd, conversation_id
        ):
            delivered = self._take(websocket, visitor_id, "(The customer left the chat.)")
            await self._push(visitor_id, delivered.message_id)
        await websocket.send_json({"type": "left"})

    async def _survey(self, websocket: WebSocket, visitor_id: str, score: Any) -> None:
        """The customer rated the conversation that ended (1-5); only the first answer
        counts (router.channels.survey)."""
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise ChatError("bad_score", "Choose a score from 1 to 5.")
        survey = self.surveys.pending("chat", visitor_id)
        if survey is None or not self.surveys.answer(survey, score):
            raise ChatError("no_survey", "There is no conversation to rate.")
        await self._send_all(visitor_id, {"type": "survey_thanks", "score": score})

    def ask_survey(self, thread: Row) -> None:
        """A `Surveys` asker: show the rating to the visitor's open pages (a page opened
        later gets `survey: true` in `ready`)."""
        self.service.spawn(
            self._send_all(thread["address"], {"type": "survey"}),
            f"survey-{thread['conversation_id']}",
        )

    async def _push(self, visitor_id: str, message_id: str) -> int:
        message = self.service.storage.message(message_id)
        assert message is not None
        return await self._send_all(visitor_id, {"type": "message", "message": self._wire(message)})

    async def _send_all(self, visitor_id: str, frame: dict[str, Any]) -> int:
        sent = 0
        for websocket in list(self.sockets.get(visitor_id, ())):
            # A socket closing right now is not an error: the page reloads its history.
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await websocket.send_json(frame)
                sent += 1
        return sent

    # ------------------------------------------------------------------ agents' side

    async def send(self, thread: Row, message: Row) -> Sent:
        """An outbound sender (`Outbound.senders["chat"]`): to the visitor's open pages, or
        `queued` for their next visit (their history holds it)."""
        message = dict(message, direction="out")
        sent = await self._send_all(
            thread["address"], {"type": "message", "message": self._wire(message)}
        )
        return Sent("delivered" if sent else "queued")

    async def agent_typing(self, request: Request) -> JSONResponse:
        """`POST /api/conversations/{id}/typing` (agent bearer token): show the customer
        that an agent is typing; `{delivered: n}` pages told."""
        agent = agent_for(self.service, request)
        if isinstance(agent, JSONResponse):
            return agent
        conversation = self.service.storage.conversation(request.path_params["conversation_id"])
        if conversation is None:
            return error(404, "not_found", "No such conversation.")
        if conversation["assigned_agent"] != agent["id"]:
            return error(403, "forbidden", "This conversation is not assigned to you.")
        thread = self.store.thread(conversation["id"])
        if thread is None or thread["channel"] != "chat":
            return JSONResponse({"delivered": 0})
        count = await self._send_all(thread["address"], {"type": "typing"})
        return JSONResponse({"delivered": count})
