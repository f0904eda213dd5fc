"""The rows the UI reads from the cache, and the filter it reads them with.

Why a module of their own: they are plain values shared by the reader, the models, the
views and the tests; keeping them apart from `StoreReader`'s queries keeps both small.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


def fts_query(text: str, prefix: bool = True) -> str:
    """The agent's words as an FTS5 query: every word must match, the last one as a prefix
    (so results follow typing) unless `prefix` is False. Quoting each word keeps FTS5 syntax
    characters inert."""
    words = re.findall(r"\w+", text)
    if not words:
        return ""
    last = f'"{words[-1]}"*' if prefix else f'"{words[-1]}"'
    return " ".join([*(f'"{w}"' for w in words[:-1]), last])


@dataclass(frozen=True, slots=True)
class InboxFilter:
    """What the inbox shows: one channel or all, and mine / queue / all."""

    channel: str | None = None
    scope: str = "all"  # all | mine | queue
    text: str = ""  # full-text search over message bodies and customer names ('' = none)


@dataclass(frozen=True, slots=True)
class InboxRow:
    id: str
    channel: str
    customer_name: str
    preview: str
    subject: str
    status: str
    queue: str
    assigned_agent: str | None
    last_inbound_at: float | None
    last_message_at: float | None
    unread: int


@dataclass(frozen=True, slots=True)
class Identity:
    kind: str
    value: str


@dataclass(frozen=True, slots=True)
class ConversationHeader:
    id: str
    channel: str
    customer_id: str | None
    customer_name: str
    identities: tuple[Identity, ...]
    subject: str
    status: str
    queue: str
    assigned_agent: str | None


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    id: str
    seq: int | None
    direction: str  # in | out | note
    author: str
    body: str
    created_at: float | None
    status: str  # sending | sent | failed ('' for customer messages)
    error: str
    attachments: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Offer:
    id: str
    conversation_id: str
    channel: str
    queue: str
    customer_name: str
    preview: str
    expires_at: float | None
    received_at: float | None


@dataclass(frozen=True, slots=True)
class AgentState:
    agent_id: str | None
    state: str
    reason: str | None
    since: float | None
