"""The agent wire protocol (docs/protocol.md), version 1: frames, limits, a strict parser.

Sans-I/O on purpose: the router's websocket endpoint and the client's engine both feed text in
and get typed frames out, so both sides refuse exactly the same input with the same error code
and the contract is tested with plain data, no sockets. The client-side state machine lives in
`sync.session`; the router only needs this module.

Frames are frozen dataclasses (`sync.frames`, re-exported here). `encode(frame)` turns one
into wire text; `parse_client_frame` / `parse_server_frame` turn text into frames or raise
`ProtocolError`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from sync.checks import (
    AGENT_STATES,
    AUTH_ERROR_CODES,
    BAD_COMMAND,
    BAD_FRAME,
    CONFLICT,
    ERROR_CODES,
    EVENT_KINDS,
    FORBIDDEN,
    INTERNAL,
    MAX_BODY_CHARS,
    MAX_FRAME_BYTES,
    NOT_FOUND,
    OFFER_GONE,
    PROTOCOL_VERSION,
    TOKEN_EXPIRED,
    TOO_LARGE,
    UNAUTHORIZED,
    UNKNOWN_COMMAND,
    UNKNOWN_TYPE,
    ProtocolError,
    is_uuid,
    new_id,
    req_int,
    req_num,
    req_obj,
    req_rows,
    req_str,
)
from sync.commands import COMMAND_NAMES, COMMANDS, check_command
from sync.frames import (
    Ack,
    AckError,
    ClientFrame,
    Command,
    ErrorFrame,
    Event,
    Frame,
    Hello,
    Live,
    Resume,
    ServerFrame,
    Snapshot,
    ack_error,
    ack_ok,
    encode,
    to_wire,
)

__all__ = [
    "AGENT_STATES",
    "AUTH_ERROR_CODES",
    "BAD_COMMAND",
    "BAD_FRAME",
    "COMMANDS",
    "COMMAND_NAMES",
    "CONFLICT",
    "ERROR_CODES",
    "EVENT_KINDS",
    "FORBIDDEN",
    "INTERNAL",
    "MAX_BODY_CHARS",
    "MAX_FRAME_BYTES",
    "NOT_FOUND",
    "OFFER_GONE",
    "PROTOCOL_VERSION",
    "TOKEN_EXPIRED",
    "TOO_LARGE",
    "UNAUTHORIZED",
    "UNKNOWN_COMMAND",
    "UNKNOWN_TYPE",
    "Ack",
    "AckError",
    "ClientFrame",
    "Command",
    "ErrorFrame",
    "Event",
    "Frame",
    "Hello",
    "Live",
    "ProtocolError",
    "Resume",
    "ServerFrame",
    "Snapshot",
    "ack_error",
    "ack_ok",
    "check_command",
    "encode",
    "is_uuid",
    "make_command",
    "new_id",
    "parse_client_frame",
    "parse_server_frame",
    "to_wire",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- parsing helpers


def _load(text: str | bytes) -> dict[str, Any]:
    if isinstance(text, bytes | bytearray):
        raise ProtocolError(BAD_FRAME, "Binary frames are not used; send JSON text.")
    if len(text) * 4 > MAX_FRAME_BYTES and len(text.encode("utf-8")) > MAX_FRAME_BYTES:
        raise ProtocolError(TOO_LARGE, f"Frame is over the {MAX_FRAME_BYTES}-byte limit.")
    try:
        obj = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise ProtocolError(BAD_FRAME, f"Frame is not valid JSON ({exc}).") from None
    if not isinstance(obj, dict):
        raise ProtocolError(BAD_FRAME, f"Frame is a JSON {type(obj).__name__}, not an object.")
    kind = obj.get("type")
    if kind is None:
        raise ProtocolError(BAD_FRAME, 'Frame has no "type".')
    if not isinstance(kind, str):
        raise ProtocolError(BAD_FRAME, 'Frame "type" is not a string.')
    return obj


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def make_command(name: str, args: Mapping[str, Any], command_id: str | None = None) -> Command:
    """A validated command with a fresh UUID (or the given one).

    Raises:
        ProtocolError: as `check_command`, or `bad_command` for a bad `command_id`.
    """
    cid = command_id or new_id()
    if not is_uuid(cid):
        raise ProtocolError(BAD_COMMAND, 'Command "id" must be a UUID.')
    clean = {k: v for k, v in args.items() if v is not None or k in ("reason", "note")}
    check_command(name, clean)
    return Command(cid, name, clean)


# --------------------------------------------------------------------------- parsers


def _parse_command(obj: Mapping[str, Any]) -> Command:
    cid = obj.get("id")
    if not is_uuid(cid):
        raise ProtocolError(BAD_COMMAND, 'Command "id" must be a UUID.')
    assert isinstance(cid, str)
    try:
        name = obj.get("name")
        if not isinstance(name, str) or not name:
            raise ProtocolError(BAD_COMMAND, 'Command "name" must be a non-empty string.')
        args = obj.get("args", {})
        if not isinstance(args, dict):
            raise ProtocolError(BAD_COMMAND, f'{name}: "args" must be an object.')
        check_command(name, args)
    except ProtocolError as exc:
        raise ProtocolError(exc.code, exc.message, command_id=cid) from None
    return Command(cid, name, args)


def parse_client_frame(text: str | bytes) -> Resume | Command:
    """Parse one frame the client sent (used by the router).

    Raises:
        ProtocolError: with `command_id` set when the router should answer with a refused ack.
    """
    obj = _load(text)
    kind = obj["type"]
    if kind == "resume":
        return Resume(req_int(obj, "since", "resume"))
    if kind == "command":
        return _parse_command(obj)
    raise ProtocolError(UNKNOWN_TYPE, f'Unknown frame type "{kind}" from a client.')


def _check_event(seq: int, event: Mapping[str, Any]) -> None:
    what = f"event {seq}"
    kind = event.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ProtocolError(BAD_FRAME, f'{what}: "kind" must be a non-empty string.')
    if kind in ("conversation", "message", "offer"):
        row = req_obj(event, kind, what)
        assert row is not None
        req_str(row, "id", f"{what} {kind}")
        if kind == "message":
            req_str(row, "conversation_id", what)
        if kind == "conversation" and row.get("customer") is not None:
            customer = req_obj(row, "customer", what)
            assert customer is not None
            req_str(customer, "id", f"{what} customer")
    elif kind == "offer_revoked":
        req_str(event, "offer_id", what)
    elif kind == "agent_state":
        req_str(event, "state", what)
    elif kind == "metrics":
        req_obj(event, "metrics", what)
    # Unknown kinds pass: a newer router may add kinds; the client skips them in order.


def parse_server_frame(text: str | bytes) -> ServerFrame:
    """Parse one frame the router sent (used by the client).

    Raises:
        ProtocolError: the frame breaks the contract; the message says how.
    """
    obj = _load(text)
    kind = obj["type"]
    if kind == "hello":
        agent = req_obj(obj, "agent", "hello")
        assert agent is not None
        req_str(agent, "id", "hello agent")
        return Hello(req_int(obj, "protocol", "hello"), agent, req_num(obj, "server_time", "hello"))
    if kind == "event":
        seq = req_int(obj, "seq", "event", minimum=1)
        event = req_obj(obj, "event", "event")
        assert event is not None
        _check_event(seq, event)
        return Event(seq, event)
    if kind == "snapshot":
        last = obj.get("last")
        if not isinstance(last, bool):
            raise ProtocolError(BAD_FRAME, 'snapshot: "last" must be true or false.')
        return Snapshot(
            page=req_int(obj, "page", "snapshot"),
            last=last,
            seq=req_int(obj, "seq", "snapshot"),
            customers=req_rows(obj, "customers", "snapshot"),
            conversations=req_rows(obj, "conversations", "snapshot"),
            messages=req_rows(obj, "messages", "snapshot"),
            offers=req_rows(obj, "offers", "snapshot"),
            agent_state=req_obj(obj, "agent_state", "snapshot", optional=True),
        )
    if kind == "live":
        return Live(req_int(obj, "seq", "live"))
    if kind == "ack":
        return _parse_ack(obj)
    if kind == "error":
        return ErrorFrame(str(req_str(obj, "code", "error")), str(req_str(obj, "message", "error")))
    raise ProtocolError(UNKNOWN_TYPE, f'Unknown frame type "{kind}" from the router.')


def _parse_ack(obj: Mapping[str, Any]) -> Ack:
    cid = obj.get("id")
    if not is_uuid(cid):
        raise ProtocolError(BAD_FRAME, 'ack: "id" must be a UUID.')
    assert isinstance(cid, str)
    ok = obj.get("ok")
    if not isinstance(ok, bool):
        raise ProtocolError(BAD_FRAME, 'ack: "ok" must be true or false.')
    if ok:
        result = req_obj(obj, "result", "ack", optional=True) or {}
        return Ack(cid, True, result)
    err = req_obj(obj, "error", "ack")
    assert err is not None
    return Ack(
        cid,
        False,
        {},
        AckError(str(req_str(err, "code", "ack error")), str(req_str(err, "message", "ack error"))),
    )
