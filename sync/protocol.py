"""The agent wire protocol (docs/protocol.md), version 1: frames, limits, a strict parser.

Sans-I/O on purpose: the router's websocket endpoint and the client's engine both feed text in
and get typed frames out, so both sides refuse exactly the same input with the same error code
and the contract is tested with plain data, no sockets. The client-side state machine lives in
`sync.session`; the router only needs this module.

Frames are frozen dataclasses. `encode(frame)` turns one into wire text;
`parse_client_frame` / `parse_server_frame` turn text into frames or raise `ProtocolError`.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

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
    {BAD_FRAME, UNKNOWN_TYPE, TOO_LARGE, BAD_COMMAND, UNKNOWN_COMMAND, NOT_FOUND, FORBIDDEN,
     OFFER_GONE, CONFLICT, UNAUTHORIZED, TOKEN_EXPIRED, INTERNAL}
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


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class Hello:
    protocol: int
    agent: Mapping[str, Any]
    server_time: float
    type: str = field(default="hello", init=False)


@dataclass(frozen=True)
class Resume:
    since: int
    type: str = field(default="resume", init=False)


@dataclass(frozen=True)
class Event:
    seq: int
    event: Mapping[str, Any]
    type: str = field(default="event", init=False)

    @property
    def kind(self) -> str:
        return str(self.event["kind"])


@dataclass(frozen=True)
class Snapshot:
    page: int
    last: bool
    seq: int
    customers: tuple[Mapping[str, Any], ...] = ()
    conversations: tuple[Mapping[str, Any], ...] = ()
    messages: tuple[Mapping[str, Any], ...] = ()
    offers: tuple[Mapping[str, Any], ...] = ()
    agent_state: Mapping[str, Any] | None = None
    type: str = field(default="snapshot", init=False)


@dataclass(frozen=True)
class Live:
    seq: int
    type: str = field(default="live", init=False)


@dataclass(frozen=True)
class Command:
    id: str
    name: str
    args: Mapping[str, Any]
    type: str = field(default="command", init=False)


@dataclass(frozen=True)
class AckError:
    code: str
    message: str


@dataclass(frozen=True)
class Ack:
    id: str
    ok: bool
    result: Mapping[str, Any] = field(default_factory=dict)
    error: AckError | None = None
    type: str = field(default="ack", init=False)


@dataclass(frozen=True)
class ErrorFrame:
    code: str
    message: str
    type: str = field(default="error", init=False)


ClientFrame = Resume | Command
ServerFrame = Hello | Event | Snapshot | Live | Ack | ErrorFrame
Frame = ClientFrame | ServerFrame


def ack_ok(command_id: str, result: Mapping[str, Any] | None = None) -> Ack:
    """A successful ack."""
    return Ack(command_id, True, dict(result or {}))


def ack_error(command_id: str, code: str, message: str) -> Ack:
    """A refused ack; final for the client (docs/protocol.md, `ack`)."""
    return Ack(command_id, False, {}, AckError(code, message))


def to_wire(frame: Frame) -> dict[str, Any]:
    """The JSON object for a frame (what `encode` serialises)."""
    if isinstance(frame, Ack):
        out: dict[str, Any] = {"type": "ack", "id": frame.id, "ok": frame.ok}
        if frame.ok:
            out["result"] = dict(frame.result)
        else:
            err = frame.error or AckError(INTERNAL, "Refused without a reason.")
            out["error"] = {"code": err.code, "message": err.message}
        return out
    if isinstance(frame, Snapshot):
        return {
            "type": "snapshot", "page": frame.page, "last": frame.last, "seq": frame.seq,
            "customers": list(frame.customers), "conversations": list(frame.conversations),
            "messages": list(frame.messages), "offers": list(frame.offers),
            "agent_state": frame.agent_state,
        }
    if isinstance(frame, Hello):
        return {"type": "hello", "protocol": frame.protocol, "agent": dict(frame.agent),
                "server_time": frame.server_time}
    if isinstance(frame, Event):
        return {"type": "event", "seq": frame.seq, "event": dict(frame.event)}
    if isinstance(frame, Command):
        return {"type": "command", "id": frame.id, "name": frame.name, "args": dict(frame.args)}
    if isinstance(frame, Resume):
        return {"type": "resume", "since": frame.since}
    if isinstance(frame, Live):
        return {"type": "live", "seq": frame.seq}
    if isinstance(frame, ErrorFrame):
        return {"type": "error", "code": frame.code, "message": frame.message}
    raise TypeError(f"not a protocol frame: {type(frame).__name__}")


def encode(frame: Frame) -> str:
    """Wire text for a frame.

    Raises:
        ProtocolError: `too_large` when the frame would exceed MAX_FRAME_BYTES (the sender must
            page or refuse earlier; sending it would only get it refused by the peer).
    """
    text = json.dumps(to_wire(frame), ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False)
    size = len(text.encode("utf-8"))
    if size > MAX_FRAME_BYTES:
        raise ProtocolError(TOO_LARGE, f"A {frame.type} frame of {size} bytes is over the "
                                       f"{MAX_FRAME_BYTES}-byte limit.")
    return text


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
        raise ProtocolError(BAD_FRAME, "Frame has no \"type\".")
    if not isinstance(kind, str):
        raise ProtocolError(BAD_FRAME, "Frame \"type\" is not a string.")
    return obj


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _int(obj: Mapping[str, Any], key: str, what: str, code: str = BAD_FRAME,
         minimum: int = 0) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(code, f"{what}: \"{key}\" must be an integer.")
    if value < minimum:
        raise ProtocolError(code, f"{what}: \"{key}\" must be at least {minimum}.")
    return value


def _num(obj: Mapping[str, Any], key: str, what: str, code: str = BAD_FRAME) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProtocolError(code, f"{what}: \"{key}\" must be a number.")
    return float(value)


def _str(obj: Mapping[str, Any], key: str, what: str, code: str = BAD_FRAME,
         optional: bool = False) -> str | None:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise ProtocolError(code, f"{what}: \"{key}\" must be a non-empty string.")
    return value


def _obj(obj: Mapping[str, Any], key: str, what: str, optional: bool = False
         ) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, dict):
        raise ProtocolError(BAD_FRAME, f"{what}: \"{key}\" must be an object.")
    return value


def _rows(obj: Mapping[str, Any], key: str, what: str) -> tuple[dict[str, Any], ...]:
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(r, dict) and r.get("id") for r in value):
        raise ProtocolError(BAD_FRAME, f"{what}: \"{key}\" must be a list of rows with ids.")
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


# --------------------------------------------------------------------------- commands

ArgCheck = Callable[[Mapping[str, Any]], None]


def _body(args: Mapping[str, Any], what: str) -> None:
    _str(args, "body", what, BAD_COMMAND)
    if len(args["body"]) > MAX_BODY_CHARS:
        raise ProtocolError(TOO_LARGE, f"{what}: the message is {len(args['body'])} characters;"
                                       f" the limit is {MAX_BODY_CHARS}.")


def _message_id(args: Mapping[str, Any], what: str) -> None:
    if not is_uuid(args.get("message_id")):
        raise ProtocolError(BAD_COMMAND, f"{what}: \"message_id\" must be a UUID.")


def _check_set_state(args: Mapping[str, Any]) -> None:
    if args.get("state") not in AGENT_STATES:
        raise ProtocolError(BAD_COMMAND, "set_state: \"state\" must be one of "
                                         + ", ".join(AGENT_STATES) + ".")
    _str(args, "reason", "set_state", BAD_COMMAND, optional=True)


def _check_offer(name: str) -> ArgCheck:
    def check(args: Mapping[str, Any]) -> None:
        _str(args, "offer_id", name, BAD_COMMAND)
    return check


def _check_send_message(args: Mapping[str, Any]) -> None:
    _str(args, "conversation_id", "send_message", BAD_COMMAND)
    _message_id(args, "send_message")
    _body(args, "send_message")
    if args.get("format") != "text":
        raise ProtocolError(BAD_COMMAND, "send_message: \"format\" must be \"text\".")


def _check_add_note(args: Mapping[str, Any]) -> None:
    _str(args, "conversation_id", "add_note", BAD_COMMAND)
    _message_id(args, "add_note")
    _body(args, "add_note")


def _check_transfer(args: Mapping[str, Any]) -> None:
    _str(args, "conversation_id", "transfer", BAD_COMMAND)
    targets = [k for k in ("queue", "agent") if args.get(k) is not None]
    if len(targets) != 1:
        raise ProtocolError(BAD_COMMAND, "transfer: give exactly one of \"queue\" or \"agent\".")
    _str(args, targets[0], "transfer", BAD_COMMAND)


def _check_wrap_up(args: Mapping[str, Any]) -> None:
    _str(args, "conversation_id", "wrap_up", BAD_COMMAND)
    _str(args, "disposition", "wrap_up", BAD_COMMAND)
    note = args.get("note")
    if note is not None and not isinstance(note, str):
        raise ProtocolError(BAD_COMMAND, "wrap_up: \"note\" must be a string.")
    if isinstance(note, str) and len(note) > MAX_BODY_CHARS:
        raise ProtocolError(TOO_LARGE, f"wrap_up: the note is over {MAX_BODY_CHARS} characters.")


def _check_call_event(args: Mapping[str, Any]) -> None:
    for key in ("call_id", "remote", "state"):
        _str(args, key, "call_event", BAD_COMMAND)
    if args.get("direction") not in ("in", "out"):
        raise ProtocolError(BAD_COMMAND, "call_event: \"direction\" must be \"in\" or \"out\".")
    _num(args, "at", "call_event", BAD_COMMAND)


# name -> (allowed argument names, required argument names, check)
COMMANDS: dict[str, tuple[frozenset[str], frozenset[str], ArgCheck]] = {
    "set_state": (frozenset({"state", "reason"}), frozenset({"state"}), _check_set_state),
    "accept": (frozenset({"offer_id"}), frozenset({"offer_id"}), _check_offer("accept")),
    "decline": (frozenset({"offer_id"}), frozenset({"offer_id"}), _check_offer("decline")),
    "send_message": (
        frozenset({"conversation_id", "message_id", "body", "format"}),
        frozenset({"conversation_id", "message_id", "body", "format"}),
        _check_send_message,
    ),
    "add_note": (
        frozenset({"conversation_id", "message_id", "body"}),
        frozenset({"conversation_id", "message_id", "body"}),
        _check_add_note,
    ),
    "transfer": (frozenset({"conversation_id", "queue", "agent"}),
                 frozenset({"conversation_id"}), _check_transfer),
    "wrap_up": (frozenset({"conversation_id", "disposition", "note"}),
                frozenset({"conversation_id", "disposition"}), _check_wrap_up),
    "call_event": (frozenset({"call_id", "direction", "remote", "state", "at"}),
                   frozenset({"call_id", "direction", "remote", "state", "at"}),
                   _check_call_event),
}
COMMAND_NAMES = frozenset(COMMANDS)


def check_command(name: str, args: Mapping[str, Any]) -> None:
    """Validate a command's name and arguments.

    Raises:
        ProtocolError: `unknown_command`, `bad_command` or `too_large` (over-long body).
    """
    spec = COMMANDS.get(name)
    if spec is None:
        raise ProtocolError(UNKNOWN_COMMAND, f"Unknown command \"{name}\".")
    allowed, required, check = spec
    missing = sorted(required - set(args))
    if missing:
        raise ProtocolError(BAD_COMMAND, f"{name}: missing argument(s) {', '.join(missing)}.")
    extra = sorted(set(args) - allowed)
    if extra:
        raise ProtocolError(BAD_COMMAND, f"{name}: unexpected argument(s) {', '.join(extra)}.")
    check(args)


def make_command(name: str, args: Mapping[str, Any], command_id: str | None = None) -> Command:
    """A validated command with a fresh UUID (or the given one).

    Raises:
        ProtocolError: as `check_command`, or `bad_command` for a bad `command_id`.
    """
    cid = command_id or new_id()
    if not is_uuid(cid):
        raise ProtocolError(BAD_COMMAND, "Command \"id\" must be a UUID.")
    clean = {k: v for k, v in args.items() if v is not None or k in ("reason", "note")}
    check_command(name, clean)
    return Command(cid, name, clean)


# --------------------------------------------------------------------------- parsers


def _parse_command(obj: Mapping[str, Any]) -> Command:
    cid = obj.get("id")
    if not is_uuid(cid):
        raise ProtocolError(BAD_COMMAND, "Command \"id\" must be a UUID.")
    assert isinstance(cid, str)
    try:
        name = obj.get("name")
        if not isinstance(name, str) or not name:
            raise ProtocolError(BAD_COMMAND, "Command \"name\" must be a non-empty string.")
        args = obj.get("args", {})
        if not isinstance(args, dict):
            raise ProtocolError(BAD_COMMAND, f"{name}: \"args\" must be an object.")
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
        return Resume(_int(obj, "since", "resume"))
    if kind == "command":
        return _parse_command(obj)
    raise ProtocolError(UNKNOWN_TYPE, f"Unknown frame type \"{kind}\" from a client.")


def _check_event(seq: int, event: Mapping[str, Any]) -> None:
    what = f"event {seq}"
    kind = event.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ProtocolError(BAD_FRAME, f"{what}: \"kind\" must be a non-empty string.")
    if kind in ("conversation", "message", "offer"):
        row = _obj(event, kind, what)
        assert row is not None
        _str(row, "id", f"{what} {kind}")
        if kind == "message":
            _str(row, "conversation_id", what)
        if kind == "conversation" and row.get("customer") is not None:
            customer = _obj(row, "customer", what)
            assert customer is not None
            _str(customer, "id", f"{what} customer")
    elif kind == "offer_revoked":
        _str(event, "offer_id", what)
    elif kind == "agent_state":
        _str(event, "state", what)
    elif kind == "metrics":
        _obj(event, "metrics", what)
    # Unknown kinds pass: a newer router may add kinds; the client skips them in order.


def parse_server_frame(text: str | bytes) -> ServerFrame:
    """Parse one frame the router sent (used by the client).

    Raises:
        ProtocolError: the frame breaks the contract; the message says how.
    """
    obj = _load(text)
    kind = obj["type"]
    if kind == "hello":
        agent = _obj(obj, "agent", "hello")
        assert agent is not None
        _str(agent, "id", "hello agent")
        return Hello(_int(obj, "protocol", "hello"), agent, _num(obj, "server_time", "hello"))
    if kind == "event":
        seq = _int(obj, "seq", "event", minimum=1)
        event = _obj(obj, "event", "event")
        assert event is not None
        _check_event(seq, event)
        return Event(seq, event)
    if kind == "snapshot":
        last = obj.get("last")
        if not isinstance(last, bool):
            raise ProtocolError(BAD_FRAME, "snapshot: \"last\" must be true or false.")
        return Snapshot(
            page=_int(obj, "page", "snapshot"), last=last, seq=_int(obj, "seq", "snapshot"),
            customers=_rows(obj, "customers", "snapshot"),
            conversations=_rows(obj, "conversations", "snapshot"),
            messages=_rows(obj, "messages", "snapshot"),
            offers=_rows(obj, "offers", "snapshot"),
            agent_state=_obj(obj, "agent_state", "snapshot", optional=True),
        )
    if kind == "live":
        return Live(_int(obj, "seq", "live"))
    if kind == "ack":
        return _parse_ack(obj)
    if kind == "error":
        return ErrorFrame(str(_str(obj, "code", "error")), str(_str(obj, "message", "error")))
    raise ProtocolError(UNKNOWN_TYPE, f"Unknown frame type \"{kind}\" from the router.")


def _parse_ack(obj: Mapping[str, Any]) -> Ack:
    cid = obj.get("id")
    if not is_uuid(cid):
        raise ProtocolError(BAD_FRAME, "ack: \"id\" must be a UUID.")
    assert isinstance(cid, str)
    ok = obj.get("ok")
    if not isinstance(ok, bool):
        raise ProtocolError(BAD_FRAME, "ack: \"ok\" must be true or false.")
    if ok:
        result = _obj(obj, "result", "ack", optional=True) or {}
        return Ack(cid, True, result)
    err = _obj(obj, "error", "ack")
    assert err is not None
    return Ack(cid, False, {}, AckError(str(_str(err, "code", "ack error")),
                                        str(_str(err, "message", "ack error"))))
