"""Small HTTP calls the agent's app makes beside the websocket (blocking; run off the loop).

Why HTTP and not a command: "agent is typing" is a hint that is worthless a few seconds later,
so it must never wait in the outbox or be replayed after a reconnect (docs/channels.md).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from urllib.parse import quote, urlsplit, urlunsplit

from sync.login import is_loopback

log = logging.getLogger(__name__)


class HttpActionError(Exception):
    """The router refused or could not be reached; `message` is for the agent."""


def post_typing(base_url: str, token: str, conversation_id: str, timeout: float = 5.0) -> int:
    """Tell the router the agent is typing in `conversation_id` (blocking).

    Returns:
        how many customer pages were told.

    Raises:
        HttpActionError: refused (HTTP 4xx/5xx) or unreachable.
    """
    parts = urlsplit(base_url)
    http = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/") + f"/api/conversations/{quote(conversation_id, safe='')}/typing"
    url = urlunsplit((http, parts.netloc, path, "", ""))
    request = urllib.request.Request(
        url,
        data=b"{}",
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    handlers = [urllib.request.ProxyHandler({})] if is_loopback(url) else []
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=timeout) as response:
            data = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise HttpActionError(f"The router refused the typing hint (HTTP {exc.code}).") from None
    except (urllib.error.URLError, OSError) as exc:
        raise HttpActionError(f"Cannot reach the router: {getattr(exc, 'reason', exc)}") from None
    except ValueError:
        raise HttpActionError("The router's typing answer is not JSON.") from None
    return int(data.get("delivered", 0)) if isinstance(data, dict) else 0
