"""What admins and agents read about channels over HTTP: dead letters, callback requests,
delivery statuses and attachments.

Dead letters and callback requests are for supervisors (agents who supervise a queue);
deliveries and attachments for any agent who may see the conversation.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from router.acd import may_see
from router.channels.http import agent_for, error, supervisor_for
from router.channels.store import ChannelStore
from router.service import Service

log = logging.getLogger(__name__)


def routes(service: Service) -> list[Route]:
    store = ChannelStore(service.storage)

    async def dead_letters(request: Request) -> JSONResponse:
        """`GET /api/admin/dead-letters?limit=100&before=ID`, newest first."""
        agent = supervisor_for(service, request)
        if isinstance(agent, JSONResponse):
            return agent
        try:
            limit = min(1000, max(1, int(request.query_params.get("limit", "100"))))
            before_text = request.query_params.get("before")
            before = int(before_text) if before_text else None
        except ValueError:
            return error(400, "bad_request", "limit and before are numbers.")
        return JSONResponse({"dead_letters": store.dead_letters(limit, before)})

    async def dead_letter_raw(request: Request) -> Response:
        """`GET /api/admin/dead-letters/{id}/raw`: the kept input, as bytes."""
        agent = supervisor_for(service, request)
        if isinstance(agent, JSONResponse):
            return agent
        raw = store.dead_letter_raw(int(request.path_params["letter_id"]))
        if raw is None:
            return error(404, "not_found", "No such dead letter.")
        log.info("agent %s read dead letter %s", agent["id"], request.path_params["letter_id"])
        return Response(raw, media_type="application/octet-stream")

    async def callback_requests(request: Request) -> JSONResponse:
        agent = supervisor_for(service, request)
        if isinstance(agent, JSONResponse):
            return agent
        return JSONResponse({"callback_requests": store.callback_requests()})

    async def deliveries(request: Request) -> JSONResponse:
        """`GET /api/conversations/{id}/deliveries`: outbound status of each agent reply."""
        agent = agent_for(service, request)
        if isinstance(agent, JSONResponse):
            return agent
        conversation = service.storage.conversation(request.path_params["conversation_id"])
        if conversation is None:
            return error(404, "not_found", "No such conversation.")
        if not may_see(agent, conversation):
            return error(403, "forbidden", "This conversation is not yours to see.")
        return JSONResponse(
            {
                "deliveries": store.deliveries(conversation["id"]),
                "attachments": store.attachments(conversation["id"]),
            }
        )

    async def attachment(request: Request) -> Response:
        """`GET /api/attachments/{id}`: the file, always as a download (never rendered)."""
        agent = agent_for(service, request)
        if isinstance(agent, JSONResponse):
            return agent
        row = store.attachment(request.path_params["attachment_id"])
        conversation = row and service.storage.conversation(row["conversation_id"])
        if row is None or conversation is None:
            return error(404, "not_found", "No such attachment.")
        if not may_see(agent, conversation):
            return error(403, "forbidden", "This attachment is not yours to see.")
        safe = "".join(c for c in row["filename"] if c.isalnum() or c in "._- ") or "file"
        return Response(
            bytes(row["data"]),
            media_type="application/octet-stream",
            headers={
                "Content-Disposition": f'attachment; filename="{safe}"',
                "X-Content-Type-Options": "nosniff",
            },
        )

    return [
        Route("/api/admin/dead-letters", dead_letters, methods=["GET"]),
        Route("/api/admin/dead-letters/{letter_id:int}/raw", dead_letter_raw, methods=["GET"]),
        Route("/api/admin/callback-requests", callback_requests, methods=["GET"]),
        Route("/api/conversations/{conversation_id}/deliveries", deliveries, methods=["GET"]),
        Route("/api/attachments/{attachment_id}", attachment, methods=["GET"]),
    ]
