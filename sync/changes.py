"""The notifications `SyncEngine` gives its listener: small, immutable, no Qt.

They are called on the sync thread, so they carry only values (no rows to query, no live
objects) and the UI adapter can forward them to its own thread as they are. Each has a `kind`
string so an adapter can dispatch without importing these classes. Only `ConnectionStatus`
has a `state` field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

ConnState = Literal["connecting", "online", "offline", "auth_failed"]
IssueKind = Literal[
    "version",
    "malformed",
    "violation",
    "gap",
    "server_error",
    "cache",
    "cache_rebuilt",
    "disk_full",
    "internal",
]


@dataclass(frozen=True)
class ConnectionStatus:
    """Where the connection stands, in words for the agent, and how much waits to be sent.

    `retry_in` is the seconds until the next attempt when offline and retrying, else None.
    """

    state: ConnState
    detail: str
    outbox: int
    retry_in: float | None = None
    kind: ClassVar[str] = "connection_status"


@dataclass(frozen=True)
class DataChanged:
    """Cache tables written, and the conversations touched (empty when none in particular)."""

    tables: frozenset[str]
    conversation_ids: frozenset[str] = frozenset()
    kind: ClassVar[str] = "data_changed"


@dataclass(frozen=True)
class CommandFailed:
    """The router refused an action (final). For a message, the row is now 'failed'."""

    command_id: str
    name: str
    code: str
    message: str
    conversation_id: str | None = None
    message_id: str | None = None
    kind: ClassVar[str] = "command_failed"

    @property
    def id(self) -> str:
        return self.command_id


@dataclass(frozen=True)
class OfferReceived:
    offer_id: str
    conversation_id: str | None
    channel: str | None
    queue: str | None
    customer_name: str | None
    preview: str | None
    expires_at: float | None
    kind: ClassVar[str] = "offer_received"


@dataclass(frozen=True)
class OfferRevoked:
    offer_id: str
    reason: str  # timeout | declined | taken | canceled
    kind: ClassVar[str] = "offer_revoked"


@dataclass(frozen=True)
class ProtocolIssue:
    """Something wrong with what the router sent, or with the cache. `fatal`: the engine
    stopped connecting until `reconnect_now()` (version mismatch, a cache it cannot use)."""

    problem: IssueKind
    message: str
    fatal: bool = False
    kind: ClassVar[str] = "protocol_issue"


@dataclass(frozen=True)
class SignedIn:
    """The login endpoint gave a token (store it in the keychain, never in the cache)."""

    agent_id: str
    agent_name: str
    token: str = field(repr=False)
    expires_at: float | None
    kind: ClassVar[str] = "signed_in"


@dataclass(frozen=True)
class SessionStarted:
    """The router said hello: who we are to it."""

    agent_id: str
    agent_name: str
    queues: tuple[str, ...]
    server_time: float
    kind: ClassVar[str] = "session_started"


Change = (
    ConnectionStatus
    | DataChanged
    | CommandFailed
    | OfferReceived
    | OfferRevoked
    | ProtocolIssue
    | SignedIn
    | SessionStarted
)
