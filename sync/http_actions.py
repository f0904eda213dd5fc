"""Small HTTP calls the agent's app makes beside the websocket (blocking; run off the loop).

Why HTTP and not a command: "agent is typing" is a hint that is worthless a few seconds later,
so it must never wait in the outbox or be replayed after a reconnect (docs/channels.md); the
team list for a transfer is a look at the router's present, useless offline and never worth
keeping in the cache.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from sync.login import is_loopback

log = logging.getLogger(__name__)


class HttpActionError(Exception):
    """The router refused or could not be reached; `message` is for the agent."""


def _call(base_url: str, token: str, method: str, path: str, what: str, timeout: float) -> Any:
    """One JSON request to the router with the agent's bearer token; the decoded answer.

    Raises:
        HttpActionError: refused (HTTP 4xx/5xx, with the router's own words when it sent
            them), unreachable, or not JSON. `what` names the request in the message.
    """
    parts = urlsplit(base_url)
    http = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    url = urlunsplit((http, parts.netloc, parts.path.rstrip("/") + path, "", ""))
    request = urllib.request.Request(
        url,
        data=b"{}" if method == "POST" else None,
        method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    handlers = [urllib.request.ProxyHandler({})] if is_loopback(url) else []
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise HttpActionError(f"The router refused {what} (HTTP {exc.code}).") from None
    except (urllib.error.URLError, OSError) as exc:
        raise HttpActionError(f"Cannot reach the router: {getattr(exc, 'reason', exc)}") from None
    except ValueError:
        raise HttpActionError(f"The router's answer to {what} is not JSON.") from None


def post_typing(base_url: str, token: str, conversation_id: str, timeout: float = 5.0) -> int:
    """Tell the router the agent is typing in `conversation_id` (blocking).

    Returns:
        how many customer pages were told.

    Raises:
        HttpActionError: refused (HTTP 4xx/5xx) or unreachable.
    """
    path = f"/api/conversations/{quote(conversation_id, safe='')}/typing"
    data = _call(base_url, token, "POST", path, "the typing hint", timeout)
    return int(data.get("delivered", 0)) if isinstance(data, dict) else 0


def get_team(base_url: str, token: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The agents who share a queue with this agent, with their live state (blocking).

    Returns:
        `[{id, name, state, reason, queues}]`, the router's order (by name).

    Raises:
        HttpActionError: refused, unreachable, or not the documented shape.
    """
    data = _call(base_url, token, "GET", "/api/team", "the team list", timeout)
    agents = data.get("agents") if isinstance(data, dict) else None
    if not isinstance(agents, list) or not all(
        isinstance(a, dict) and isinstance(a.get("id"), str) for a in agents
    ):
        raise HttpActionError("The router's team list is not in the expected shape.")
    return agents
