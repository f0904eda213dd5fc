"""Small HTTP helpers the channel routes share: bounded request bodies, JSON bodies and
supervisor auth. The JSON error shape and the bearer-token check are the router's own
(`router.http_common`), re-exported here for the channel modules."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from router.http_common import agent_for, error
from router.service import Service

__all__ = ["BodyTooLargeError", "agent_for", "error", "json_object", "read_body", "supervisor_for"]

log = logging.getLogger(__name__)


class BodyTooLargeError(Exception):
    """The request body passed the limit (answered 413)."""


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing to buffer more than `limit` bytes.

    Raises:
        BodyTooLargeError: the body (or its Content-Length) is over `limit`.
        ClientDisconnect: the client went away mid-body.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(declared)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(str(size))
        chunks.append(chunk)
    return b"".join(chunks)


async def json_object(request: Request, limit: int = 64 * 1024) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one (or is too large)."""
    try:
        data = json.loads(await read_body(request, limit))
    except (ValueError, UnicodeDecodeError, BodyTooLargeError, ClientDisconnect):
        return None
    return data if isinstance(data, dict) else None


def supervisor_for(service: Service, request: Request) -> dict[str, Any] | JSONResponse:
    """The agent of the bearer token if they supervise a queue (admin views), else 401/403."""
    agent = agent_for(service, request)
    if isinstance(agent, JSONResponse):
        return agent
    if not agent.get("supervises"):
        return error(403, "forbidden", "Only a supervisor may see this.")
    return agent
