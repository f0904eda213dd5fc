"""The protocol's frames as frozen dataclasses, and their wire form (docs/protocol.md).

Apart from the parsers (`sync.protocol`, which re-exports everything here) so each reads on
its own: this module says what a frame *is* and how it is written; that one, what input is
refused and why. Sans-I/O like the rest of the protocol.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sync.checks import INTERNAL, MAX_FRAME_BYTES, TOO_LARGE, ProtocolError


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
            "type": "snapshot",
            "page": frame.page,
            "last": frame.last,
            "seq": frame.seq,
            "customers": list(frame.customers),
            "conversations": list(frame.conversations),
            "messages": list(frame.messages),
            "offers": list(frame.offers),
            "agent_state": frame.agent_state,
        }
    if isinstance(frame, Hello):
        return {
            "type": "hello",
            "protocol": frame.protocol,
            "agent": dict(frame.agent),
            "server_time": frame.server_time,
        }
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
    text = json.dumps(to_wire(frame), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    size = len(text.encode("utf-8"))
    if size > MAX_FRAME_BYTES:
        raise ProtocolError(
            TOO_LARGE,
            f"A {frame.type} frame of {size} bytes is over the {MAX_FRAME_BYTES}-byte limit.",
        )
    return text
