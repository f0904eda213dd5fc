"""What the router's HTTP handlers share: the JSON error shape of docs/protocol.md
(`{"error": {"code", "message"}}`, like the websocket's) and bearer-token authentication."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse

from router.auth import AuthError, bearer_token

if TYPE_CHECKING:
    from router.service import Service


def error(status: int, code: str, message: str) -> JSONResponse:
    """An error answer: `{"error": {"code", "message"}}` with `status`."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def agent_for(service: Service, conn: HTTPConnection) -> dict[str, Any] | JSONResponse:
    """The agent of the request's `Authorization: Bearer` token, or the 401 to answer."""
    try:
        return service.auth.agent_for_token(bearer_token(conn.headers.get("authorization")))
    except AuthError as exc:
        return error(401, exc.code, exc.message)
