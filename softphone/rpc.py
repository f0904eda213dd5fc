"""The JSON-lines protocol between the UI and the phone engine (docs/engine-protocol.md).

This module is the only piece of the engine the UI imports, so it stays pure Python: no
pjsua2, no Qt. One message per line, UTF-8 JSON objects of three shapes:

- command (UI -> engine): ``{"id": "7", "cmd": "dial", "args": {"to": "+3212345678"}}``
- reply (engine -> UI, same id, possibly long after): ``{"id": "7", "ok": true, "result": {}}``
  or ``{"id": "7", "ok": false, "error": {"code": "not_found", "message": "..."}}``
- event (engine -> UI, unsolicited): ``{"event": "call_state", "data": {...}}``

A line that cannot be decoded never raises out of the reader loop: `decode` raises
`ProtocolError`, and the engine answers it with an error reply whose id is whatever could be
salvaged (or null).
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: Every command the engine understands, with the argument names it accepts.
COMMANDS: dict[str, tuple[str, ...]] = {
    "register": (
        "account",
        "user",
        "domain",
        "password",
        "auth_user",
        "registrar",
        "proxy",
        "transport",
        "display_name",
        "expires",
        "auto_answer",
        "srtp",
        "stun_servers",
        "ice",
        "turn_server",
        "turn_transport",
        "turn_user",
        "turn_password",
    ),
    "unregister": ("account",),
    "dial": ("to", "account", "region", "headers"),
    "answer": ("call",),
    "decline": ("call", "code"),
    "hangup": ("call",),
    "hold": ("call",),
    "resume": ("call",),
    "mute": ("call",),
    "unmute": ("call",),
    "dtmf": ("call", "digits", "method"),
    "transfer": ("call", "to", "replaces"),
    "conference": ("calls",),
    "record_start": ("call", "path"),
    "record_stop": ("call",),
    "network_changed": ("restart_listener",),
    "list_devices": (),
    "set_devices": ("capture", "playback", "ringer"),
    "stats": ("call",),
    "status": (),
    "diag": ("ports",),
    "shutdown": (),
}

#: Every event the engine sends.
EVENTS: tuple[str, ...] = (
    "ready",
    "reg_state",
    "incoming_call",
    "call_state",
    "media_state",
    "quality",
    "dtmf",
    "transfer_state",
    "devices",
    "network_change",
    "error",
    "log",
    "stopped",
)

#: Error codes in replies and error events.
ERROR_CODES: tuple[str, ...] = (
    "malformed",
    "unknown_command",
    "bad_args",
    "not_found",
    "invalid_state",
    "sip_error",
    "audio_error",
    "internal",
    "timeout",  # made by the UI side (client/phone/engine_process.py), never by the engine
)


class ProtocolError(ValueError):
    """A line that is not a valid message; `msg_id` is the id salvaged from it, if any."""

    def __init__(self, message: str, msg_id: str | None = None, code: str = "malformed"):
        super().__init__(message)
        self.msg_id = msg_id
        self.code = code


@dataclass(frozen=True)
class Command:
    """A request from the UI; `id` correlates the reply."""

    id: str
    cmd: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """The answer to one command; exactly one of `result` or `error` is meaningful."""

    id: str | None
    ok: bool
    result: dict[str, Any] = field(default_factory=dict)
    error_code: str = ""
    error_message: str = ""


@dataclass(frozen=True)
class Event:
    """Something that happened in the engine, not asked for."""

    event: str
    data: dict[str, Any] = field(default_factory=dict)


Message = Command | Reply | Event


def encode(message: Message) -> str:
    """One line of JSON (no newline inside, newline at the end)."""
    obj: dict[str, Any]
    if isinstance(message, Command):
        obj = {"id": message.id, "cmd": message.cmd, "args": message.args}
    elif isinstance(message, Reply):
        obj = {"id": message.id, "ok": message.ok}
        if message.ok:
            obj["result"] = message.result
        else:
            obj["error"] = {"code": message.error_code, "message": message.error_message}
    else:
        obj = {"event": message.event, "data": message.data}
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n"


def decode(line: str | bytes) -> Message:
    """Parse one line into a message.

    Raises:
        ProtocolError: not JSON, not an object, or missing/ill-typed fields. Commands are
            checked against `COMMANDS` (unknown name or argument is an error in words).
    """
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"line is not UTF-8: {exc}") from exc
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"line is not JSON: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError("a message must be a JSON object")
    raw_id = obj.get("id")
    msg_id = raw_id if isinstance(raw_id, str) else (str(raw_id) if raw_id is not None else None)
    if "cmd" in obj:
        return _decode_command(obj, msg_id)
    if "ok" in obj:
        ok = obj["ok"]
        if not isinstance(ok, bool):
            raise ProtocolError("'ok' must be true or false", msg_id)
        if ok:
            result = obj.get("result") or {}
            if not isinstance(result, dict):
                raise ProtocolError("'result' must be an object", msg_id)
            return Reply(msg_id, True, result)
        err = obj.get("error") or {}
        if not isinstance(err, dict):
            raise ProtocolError("'error' must be an object", msg_id)
        return Reply(msg_id, False, {}, str(err.get("code", "")), str(err.get("message", "")))
    if "event" in obj:
        name, data = obj["event"], obj.get("data") or {}
        if not isinstance(name, str) or not isinstance(data, dict):
            raise ProtocolError("'event' must be a string and 'data' an object")
        return Event(name, data)
    raise ProtocolError("a message needs 'cmd', 'ok' or 'event'", msg_id)


def _decode_command(obj: dict[str, Any], msg_id: str | None) -> Command:
    if msg_id is None or msg_id == "":
        raise ProtocolError("a command needs a non-empty 'id' (string)", None)
    cmd = obj["cmd"]
    if not isinstance(cmd, str):
        raise ProtocolError("'cmd' must be a string", msg_id)
    if cmd not in COMMANDS:
        raise ProtocolError(
            f"unknown command {cmd!r}; known: {', '.join(sorted(COMMANDS))}",
            msg_id,
            "unknown_command",
        )
    args = obj.get("args")
    args = {} if args is None else args
    if not isinstance(args, dict):
        raise ProtocolError("'args' must be an object", msg_id, "bad_args")
    unknown = sorted(set(args) - set(COMMANDS[cmd]))
    if unknown:
        raise ProtocolError(
            f"{cmd} does not take {', '.join(unknown)}; it takes "
            f"{', '.join(COMMANDS[cmd]) or 'no arguments'}",
            msg_id,
            "bad_args",
        )
    return Command(msg_id, cmd, args)


class IdSource:
    """Correlation ids for a client: short, unique within one engine's lifetime."""

    def __init__(self, prefix: str = "c") -> None:
        self._prefix = prefix
        self._counter = itertools.count(1)

    def next(self) -> str:
        """The next id."""
        return f"{self._prefix}{next(self._counter)}"


def command(cmd: str, msg_id: str, **args: Any) -> Command:
    """Build a command, dropping arguments that are None (so defaults apply in the engine)."""
    return Command(msg_id, cmd, {k: v for k, v in args.items() if v is not None})


def ok(msg_id: str | None, **result: Any) -> Reply:
    """A success reply."""
    return Reply(msg_id, True, result)


def error(msg_id: str | None, code: str, message: str) -> Reply:
    """A failure reply; `message` is for a person to read."""
    if code not in ERROR_CODES:
        log.warning("unlisted error code %s", code)
    return Reply(msg_id, False, {}, code, message)
