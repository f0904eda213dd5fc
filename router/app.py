"""The router's Starlette app: login, health, message history, metrics, demo customers,
`/agent/v1`.

HTTP handlers are small: they parse, call the ACD or the authenticator, and shape the JSON of
docs/protocol.md. Errors are `{"error": {"code", "message"}}` everywhere, like the websocket.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute

from router import __version__, intake, metrics_http, team_http
from router.acd import IDENTITY_KIND, CommandError, may_see
from router.auth import AuthError
from router.http_common import agent_for, error
from router.service import Service
from router.session import agent_endpoint

log = logging.getLogger(__name__)


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


async def login(request: Request) -> JSONResponse:
    """`POST /api/login {username, password}` -> `{token, agent, expires_at}`."""
    service: Service = request.app.state.service
    body = await _json_object(request)
    if (
        body is None
        or not isinstance(body.get("username"), str)
        or not isinstance(body.get("password"), str)
    ):
        return error(400, "bad_request", 'Send JSON {"username": ..., "password": ...}.')
    try:
        result = await service.auth.login_async(body["username"], body["password"])
    except AuthError as exc:
        return error(401, exc.code, exc.message)
    return JSONResponse(
        {"token": result.token, "agent": result.agent, "expires_at": result.expires_at}
    )


async def health(request: Request) -> JSONResponse:
    """`GET /health`: the process is up and its database answers; queue depth and agents by
    state for a glance (and for tests that wait on state changes)."""
    service: Service = request.app.state.service
    states: dict[str, int] = {}
    for agent in service.storage.agents():
        states[agent["state"]] = states.get(agent["state"], 0) + 1
    return JSONResponse(
        {
            "status": "ok",
            "version": __version__,
            "time": service.clock(),
            "queued": service.storage.count_conversations("queued"),
            "agents": states,
            "wal_frames": service.checkpointer.frames,
        }
    )


async def conversation_messages(request: Request) -> JSONResponse:
    """`GET /api/conversations/{id}/messages` for an agent who may see the conversation."""
    service: Service = request.app.state.service
    agent = agent_for(service, request)
    if isinstance(agent, JSONResponse):
        return agent
    conversation_id = request.path_params["conversation_id"]
    conversation = service.storage.conversation(conversation_id)
    if conversation is None:
        return error(404, "not_found", "No such conversation.")
    if not may_see(agent, conversation):
        return error(403, "forbidden", "This conversation is not yours to see.")
    return JSONResponse(
        {
            "conversation": service.storage.conversation_wire(conversation_id),
            "messages": service.storage.messages(conversation_id),
        }
    )


async def demo_inbound(request: Request) -> JSONResponse:
    """`POST /api/demo/inbound {channel, from, name, body, queue, subject?}`: a customer
    writes in (demo and test mode only; real channels come in through their own webhooks)."""
    service: Service = request.app.state.service
    body = await _json_object(request)
    fields = ("channel", "from", "name", "body", "queue")
    if body is None or not all(isinstance(body.get(k), str) and body[k] for k in fields):
        return error(400, "bad_request", "Send JSON {channel, from, name, body, queue}.")
    if body["channel"] not in IDENTITY_KIND or body["channel"] == "voice":
        return error(400, "bad_request", "channel must be email, chat or sms.")
    if body["queue"] not in service.config.queues:
        return error(400, "bad_request", f"queue must be one of {service.config.queues}.")
    subject = body.get("subject") if isinstance(body.get("subject"), str) else None
    conversation_id = service.acd.inbound(
        body["channel"], body["from"], body["name"], body["body"], body["queue"], subject
    )
    return JSONResponse({"conversation_id": conversation_id})


async def demo_abandon(request: Request) -> JSONResponse:
    """`POST /api/demo/abandon {conversation_id}`: the customer leaves before an answer."""
    service: Service = request.app.state.service
    body = await _json_object(request)
    if body is None or not isinstance(body.get("conversation_id"), str):
        return error(400, "bad_request", "Send JSON {conversation_id}.")
    return JSONResponse({"abandoned": intake.customer_left(service.acd, body["conversation_id"])})


async def demo_survey(request: Request) -> JSONResponse:
    """`POST /api/demo/survey {conversation_id, score}`: a post-conversation survey answer."""
    service: Service = request.app.state.service
    body = await _json_object(request)
    if body is None or not isinstance(body.get("conversation_id"), str):
        return error(400, "bad_request", "Send JSON {conversation_id, score}.")
    try:
        intake.survey_answer(service.acd, body["conversation_id"], body.get("score"))  # type: ignore[arg-type]
    except CommandError as exc:
        return error(404 if exc.code == "not_found" else 400, exc.code, exc.message)
    return JSONResponse({})


def create_app(service: Service, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The ASGI app for one `Service`; the service starts and stops with the app.
    `extra_routes` are mounted too (the channels' webhooks, chat widget and admin views)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/api/login", login, methods=["POST"]),
        Route(
            "/api/conversations/{conversation_id}/messages", conversation_messages, methods=["GET"]
        ),
        Route("/metrics", metrics_http.prometheus, methods=["GET"]),
        Route("/api/metrics/export", metrics_http.export, methods=["GET"]),
        Route("/api/team", team_http.team, methods=["GET"]),
        WebSocketRoute("/agent/v1", agent_endpoint),
    ]
    if service.demo_api:
        routes.append(Route("/api/demo/inbound", demo_inbound, methods=["POST"]))
        routes.append(Route("/api/demo/abandon", demo_abandon, methods=["POST"]))
        routes.append(Route("/api/demo/survey", demo_survey, methods=["POST"]))
    routes.extend(extra_routes)
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.service = service
    app.state.metrics_registry = metrics_http.make_registry(service)
    return app
