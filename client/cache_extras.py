"""Reads for the window's newer parts: live metrics, the router's codes, caller lookup, email HTML.

Why beside `StoreReader` and not in it: the reader is tuned for the inbox's hot paths by
another owner; these queries are small, rare and use its read-only connection (`_rows`), so
they share its handling of a missing or damaged cache.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from client.store_reader import StoreReader

log = logging.getLogger(__name__)

DEFAULT_WRAP_UP_CODES = ("resolved", "follow_up", "escalated")


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """What the router's hello said about the agent: their queues and the accepted codes."""

    queues: tuple[str, ...] = ()
    wrap_up_codes: tuple[str, ...] = ()
    reason_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Caller:
    """A phone number found in the cache: the customer and their latest conversation."""

    customer_id: str
    name: str
    number: str
    last_conversation_id: str | None = None
    last_channel: str = ""
    last_subject: str = ""
    last_preview: str = ""


@dataclass(frozen=True, slots=True)
class Metrics:
    """The agent's own figures and their queues' live state (docs/metrics.md)."""

    own: dict[str, Any] = field(default_factory=dict)
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    at: float | None = None


def agent_info(reader: StoreReader) -> AgentInfo:
    """The agent object the engine stored from the router's hello."""
    rows = reader._rows("SELECT value FROM sync_state WHERE key = 'agent'")
    if not rows or not rows[0][0]:
        return AgentInfo()
    try:
        agent = json.loads(rows[0][0])
    except ValueError:
        log.error("the cached agent object is not JSON")
        return AgentInfo()
    codes = agent.get("codes") or {}
    return AgentInfo(
        queues=tuple(str(q) for q in agent.get("queues") or ()),
        wrap_up_codes=tuple(str(c) for c in codes.get("wrap_up") or ()),
        reason_codes=tuple(str(c) for c in codes.get("reasons") or ()),
    )


def metrics(reader: StoreReader) -> Metrics:
    """The `metrics` cache table decoded (empty until the router's first push)."""
    own: dict[str, Any] = {}
    for key, value in reader._rows("SELECT key, value FROM metrics"):
        try:
            own[str(key)] = json.loads(value)
        except (TypeError, ValueError):
            log.error("metrics key %r holds no JSON", key)
    queues = own.pop("queues", None)
    at = own.pop("at", None)
    return Metrics(
        own=own,
        queues=queues if isinstance(queues, dict) else {},
        at=float(at) if isinstance(at, int | float) else None,
    )


_SIP_USER = re.compile(r"^(?:\"[^\"]*\"\s*)?<?(?:sips?:|tel:)?([^@;>]+)")


def e164(remote: str) -> str:
    """The number of a SIP URI or dialled string in E.164 form ('' when there is none).

    `"Ana" <sip:+15551234567@pbx>` and `tel:+1 555 123 4567` both give `+15551234567`;
    a number without `+` is kept as digits with `+` in front (PBXes often drop it).
    """
    m = _SIP_USER.match(remote.strip())
    if not m:
        return ""
    user = re.sub(r"[\s().-]", "", m.group(1))
    if user.startswith("00"):
        user = "+" + user[2:]
    digits = user.lstrip("+")
    if not digits.isdigit() or not 6 <= len(digits) <= 15:
        return ""
    return "+" + digits


def caller(reader: StoreReader, remote: str) -> Caller | None:
    """The customer whose phone identity matches the caller, with their last conversation."""
    number = e164(remote)
    if not number:
        return None
    rows = reader._rows(
        "SELECT c.id, COALESCE(c.name, '') FROM identities i JOIN customers c "
        "ON c.id = i.customer_id WHERE i.kind IN ('phone', 'sms') AND i.value = ? LIMIT 1",
        [number],
    )
    if not rows:
        return None
    cid, name = str(rows[0][0]), str(rows[0][1])
    last = reader._rows(
        "SELECT id, channel, COALESCE(subject, ''), "
        "(SELECT COALESCE(body, '') FROM messages m WHERE m.conversation_id = conversations.id "
        " AND m.direction != 'note' ORDER BY seq IS NULL, seq DESC LIMIT 1) "
        "FROM conversations WHERE customer_id = ? "
        "ORDER BY COALESCE(last_message_at, updated_at, created_at) DESC LIMIT 1",
        [cid],
    )
    if not last:
        return Caller(cid, name, number)
    r = last[0]
    return Caller(cid, name, number, str(r[0]), str(r[1] or ""), str(r[2]), str(r[3] or ""))


def message_html(reader: StoreReader, conversation_id: str) -> dict[str, str]:
    """Sanitized HTML of the conversation's email messages, by message id."""
    return {
        str(r[0]): str(r[1])
        for r in reader._rows(
            "SELECT id, html FROM messages WHERE conversation_id = ? AND html IS NOT NULL "
            "AND html != ''",
            [conversation_id],
        )
    }
