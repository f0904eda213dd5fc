"""Command names and the arguments each requires (docs/protocol.md, `command`).

One table used by both sides: the router refuses what the client would never send, and the
client refuses to queue (and so to write to the outbox) what the router would refuse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sync.checks import (
    AGENT_STATES,
    BAD_COMMAND,
    MAX_BODY_CHARS,
    TOO_LARGE,
    UNKNOWN_COMMAND,
    ProtocolError,
    is_uuid,
    req_num,
    req_str,
)

ArgCheck = Callable[[Mapping[str, Any]], None]


def _body(args: Mapping[str, Any], what: str) -> None:
    req_str(args, "body", what, BAD_COMMAND)
    if len(args["body"]) > MAX_BODY_CHARS:
        raise ProtocolError(
            TOO_LARGE,
            f"{what}: the message is {len(args['body'])} characters;"
            f" the limit is {MAX_BODY_CHARS}.",
        )


def _message_id(args: Mapping[str, Any], what: str) -> None:
    if not is_uuid(args.get("message_id")):
        raise ProtocolError(BAD_COMMAND, f'{what}: "message_id" must be a UUID.')


def _check_set_state(args: Mapping[str, Any]) -> None:
    if args.get("state") not in AGENT_STATES:
        raise ProtocolError(
            BAD_COMMAND, 'set_state: "state" must be one of ' + ", ".join(AGENT_STATES) + "."
        )
    req_str(args, "reason", "set_state", BAD_COMMAND, optional=True)


def _check_offer(name: str) -> ArgCheck:
    def check(args: Mapping[str, Any]) -> None:
        req_str(args, "offer_id", name, BAD_COMMAND)

    return check


def _check_send_message(args: Mapping[str, Any]) -> None:
    req_str(args, "conversation_id", "send_message", BAD_COMMAND)
    _message_id(args, "send_message")
    _body(args, "send_message")
    if args.get("format") != "text":
        raise ProtocolError(BAD_COMMAND, 'send_message: "format" must be "text".')


def _check_add_note(args: Mapping[str, Any]) -> None:
    req_str(args, "conversation_id", "add_note", BAD_COMMAND)
    _message_id(args, "add_note")
    _body(args, "add_note")


def _check_transfer(args: Mapping[str, Any]) -> None:
    req_str(args, "conversation_id", "transfer", BAD_COMMAND)
    targets = [k for k in ("queue", "agent") if args.get(k) is not None]
    if len(targets) != 1:
        raise ProtocolError(BAD_COMMAND, 'transfer: give exactly one of "queue" or "agent".')
    req_str(args, targets[0], "transfer", BAD_COMMAND)


def _check_wrap_up(args: Mapping[str, Any]) -> None:
    req_str(args, "conversation_id", "wrap_up", BAD_COMMAND)
    req_str(args, "disposition", "wrap_up", BAD_COMMAND)
    note = args.get("note")
    if note is not None and not isinstance(note, str):
        raise ProtocolError(BAD_COMMAND, 'wrap_up: "note" must be a string.')
    if isinstance(note, str) and len(note) > MAX_BODY_CHARS:
        raise ProtocolError(TOO_LARGE, f"wrap_up: the note is over {MAX_BODY_CHARS} characters.")


def _check_conversation(name: str) -> ArgCheck:
    def check(args: Mapping[str, Any]) -> None:
        req_str(args, "conversation_id", name, BAD_COMMAND)
        if "disposition" in args:
            req_str(args, "disposition", name, BAD_COMMAND)

    return check


def _check_schedule_callback(args: Mapping[str, Any]) -> None:
    req_str(args, "conversation_id", "schedule_callback", BAD_COMMAND)
    req_num(args, "at", "schedule_callback", BAD_COMMAND)
    req_str(args, "queue", "schedule_callback", BAD_COMMAND, optional=True)
    req_str(args, "note", "schedule_callback", BAD_COMMAND, optional=True)
    note = args.get("note")
    if isinstance(note, str) and len(note) > MAX_BODY_CHARS:
        raise ProtocolError(
            TOO_LARGE, f"schedule_callback: the note is over {MAX_BODY_CHARS} characters."
        )


def _check_call_event(args: Mapping[str, Any]) -> None:
    for key in ("call_id", "remote", "state"):
        req_str(args, key, "call_event", BAD_COMMAND)
    if args.get("direction") not in ("in", "out"):
        raise ProtocolError(BAD_COMMAND, 'call_event: "direction" must be "in" or "out".')
    req_num(args, "at", "call_event", BAD_COMMAND)
    # Why the call ended (on the end state only): the router tells a caller who gave up
    # (`caller_cancel`, an abandon) from a declined or unanswered ring (docs/metrics.md).
    req_str(args, "reason", "call_event", BAD_COMMAND, optional=True)
    code = args.get("code")
    if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
        raise ProtocolError(BAD_COMMAND, 'call_event: "code" must be an integer (SIP status).')


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
    "transfer": (
        frozenset({"conversation_id", "queue", "agent"}),
        frozenset({"conversation_id"}),
        _check_transfer,
    ),
    "wrap_up": (
        frozenset({"conversation_id", "disposition", "note"}),
        frozenset({"conversation_id", "disposition"}),
        _check_wrap_up,
    ),
    "end_conversation": (
        frozenset({"conversation_id"}),
        frozenset({"conversation_id"}),
        _check_conversation("end_conversation"),
    ),
    "set_disposition": (
        frozenset({"conversation_id", "disposition"}),
        frozenset({"conversation_id", "disposition"}),
        _check_conversation("set_disposition"),
    ),
    "schedule_callback": (
        frozenset({"conversation_id", "at", "queue", "note"}),
        frozenset({"conversation_id", "at"}),
        _check_schedule_callback,
    ),
    "call_event": (
        frozenset({"call_id", "direction", "remote", "state", "at", "reason", "code"}),
        frozenset({"call_id", "direction", "remote", "state", "at"}),
        _check_call_event,
    ),
}
COMMAND_NAMES = frozenset(COMMANDS)


def check_command(name: str, args: Mapping[str, Any]) -> None:
    """Validate a command's name and arguments.

    Raises:
        ProtocolError: `unknown_command`, `bad_command` or `too_large` (over-long body).
    """
    spec = COMMANDS.get(name)
    if spec is None:
        raise ProtocolError(UNKNOWN_COMMAND, f'Unknown command "{name}".')
    allowed, required, check = spec
    missing = sorted(required - set(args))
    if missing:
        raise ProtocolError(BAD_COMMAND, f"{name}: missing argument(s) {', '.join(missing)}.")
    extra = sorted(set(args) - allowed)
    if extra:
        raise ProtocolError(BAD_COMMAND, f"{name}: unexpected argument(s) {', '.join(extra)}.")
    check(args)
