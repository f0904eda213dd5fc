"""Limits, error codes, `ProtocolError` and the field checks both parsers share.

Split from `sync.protocol` to keep modules small; `sync.protocol` re-exports every public name
here, so importers (the router) use that module only.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from typing import Any

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 262_144
MAX_BODY_CHARS = 20_000

# Error codes (docs/protocol.md, "Error codes").
BAD_FRAME = "bad_frame"
UNKNOWN_TYPE = "unknown_type"
TOO_LARGE = "too_large"
BAD_COMMAND = "bad_command"
UNKNOWN_COMMAND = "unknown_command"
NOT_FOUND = "not_found"
FORBIDDEN = "forbidden"
OFFER_GONE = "offer_gone"
CONFLICT = "conflict"
UNAUTHORIZED = "unauthorized"
TOKEN_EXPIRED = "token_expired"
INTERNAL = "internal"
ERROR_CODES = frozenset(
    {
        BAD_FRAME,
        UNKNOWN_TYPE,
        TOO_LARGE,
        BAD_COMMAND,
        UNKNOWN_COMMAND,
        NOT_FOUND,
        FORBIDDEN,
        OFFER_GONE,
        CONFLICT,
        UNAUTHORIZED,
        TOKEN_EXPIRED,
        INTERNAL,
    }
)
AUTH_ERROR_CODES = frozenset({UNAUTHORIZED, TOKEN_EXPIRED})

AGENT_STATES = ("available", "away", "offline")
EVENT_KINDS = ("offer", "offer_revoked", "conversation", "message", "agent_state", "metrics")


class ProtocolError(Exception):
    """Input that breaks the contract. `code` is one of the error codes; `message` is for a
    human (it is sent back to the peer and shown in logs, so it never quotes a body).

    `command_id` is set when the frame was a command with a usable id, so the router can answer
    with a refused `ack` for that id instead of an `error` frame.
    """

    def __init__(self, code: str, message: str, command_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.command_id = command_id

    def __repr__(self) -> str:
        return f"ProtocolError({self.code!r}, {self.message!r})"


# --------------------------------------------------------------------------- fields


def req_int(
    obj: Mapping[str, Any], key: str, what: str, code: str = BAD_FRAME, minimum: int = 0
) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(code, f'{what}: "{key}" must be an integer.')
    if value < minimum:
        raise ProtocolError(code, f'{what}: "{key}" must be at least {minimum}.')
    return value


def req_num(obj: Mapping[str, Any], key: str, what: str, code: str = BAD_FRAME) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProtocolError(code, f'{what}: "{key}" must be a number.')
    return float(value)


def req_str(
    obj: Mapping[str, Any], key: str, what: str, code: str = BAD_FRAME, optional: bool = False
) -> str | None:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise ProtocolError(code, f'{what}: "{key}" must be a non-empty string.')
    return value


def req_obj(
    obj: Mapping[str, Any], key: str, what: str, optional: bool = False
) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, dict):
        raise ProtocolError(BAD_FRAME, f'{what}: "{key}" must be an object.')
    return value


def req_rows(obj: Mapping[str, Any], key: str, what: str) -> tuple[dict[str, Any], ...]:
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(r, dict) and r.get("id") for r in value):
        raise ProtocolError(BAD_FRAME, f'{what}: "{key}" must be a list of rows with ids.')
    return tuple(value)


def is_uuid(value: object) -> bool:
    """True for a UUID in its canonical 36-character form (any case)."""
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def new_id() -> str:
    """A fresh command or message id."""
    return str(uuid.uuid4())
