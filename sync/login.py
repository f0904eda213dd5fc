"""`POST /api/login` with the standard library, and where the router lives.

urllib keeps us free of new dependencies; the call is blocking, so the engine runs it in its
loop's executor. Errors are classed once here (retryable or not) so the reconnect policy does
not have to guess from exception types.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class Login:
    token: str = field(repr=False)
    agent: dict[str, Any]
    expires_at: float | None


class LoginError(Exception):
    """Login failed. `retryable` is False for refused credentials (HTTP 401) and other
    client errors, True for an unreachable or failing server."""

    def __init__(
        self, message: str, *, code: str, retryable: bool, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable
        self.status = status


def is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK


def websocket_url(base_url: str) -> str:
    """`http://h:p` -> `ws://h:p/agent/v1`, `https://h` -> `wss://h/agent/v1`."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"Not a router address: {base_url!r} (use http://host:port).")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/agent/v1", "", ""))


def _error_message(body: bytes, fallback: str) -> tuple[str, str]:
    try:
        err = json.loads(body)["error"]
        return str(err["code"]), str(err["message"])
    except (ValueError, KeyError, TypeError):
        return "http_error", fallback


def login(base_url: str, username: str, password: str, timeout: float = 10.0) -> Login:
    """Exchange credentials for a token (blocking).

    Raises:
        LoginError: refused or failed; see `retryable`.
    """
    parts = urlsplit(base_url)
    http = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    url = urlunsplit((http, parts.netloc, parts.path.rstrip("/") + "/api/login", "", ""))
    request = urllib.request.Request(
        url,
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    # No proxy for loopback: an environment proxy must not see the embedded router's traffic.
    handlers = [urllib.request.ProxyHandler({})] if is_loopback(url) else []
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            data = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        code, message = _error_message(exc.read(), f"The router answered HTTP {exc.code}.")
        retryable = exc.code >= 500 or exc.code in (408, 429)
        raise LoginError(message, code=code, retryable=retryable, status=exc.code) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise LoginError(
            f"Cannot reach the router at {parts.netloc}: {reason}.",
            code="unreachable",
            retryable=True,
        ) from None
    except ValueError:
        raise LoginError(
            "The router's login answer is not JSON.", code="bad_answer", retryable=True
        ) from None
    token, agent = data.get("token"), data.get("agent")
    if not isinstance(token, str) or not isinstance(agent, dict):
        raise LoginError(
            "The router's login answer has no token.", code="bad_answer", retryable=True
        )
    expires = data.get("expires_at")
    return Login(token, agent, float(expires) if isinstance(expires, int | float) else None)
