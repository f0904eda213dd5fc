"""Agent commands: each one applied at most once, its ack stored with its effect.

`execute` looks the command id up first; a repeat returns the stored ack and does nothing else.
Otherwise the handler runs and its ack is stored in the same transaction, so a crash can never
leave an action applied without its ack (a retry would act twice) or an ack without its action.
A refusal (`CommandError`) rolls the action back and is stored too: a refused command is final.
An unexpected failure is logged and answered `internal` without storing, so the client may
retry the same id.

Argument shapes were already checked by `sync.protocol.parse_client_frame`; handlers check
what needs the database: existence, visibility, ownership and state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from router import tasks
from router.acd import HELD_STATUSES, Acd, CommandError, may_see
from router.storage import Row
from sync.protocol import (
    INTERNAL,
    Ack,
    AckError,
    Command,
    ack_error,
    ack_ok,
    to_wire,
)

log = logging.getLogger(__name__)

Handler = Callable[[Acd, Row, Mapping[str, Any]], dict[str, Any]]


def _ack_from_wire(data: Mapping[str, Any]) -> Ack:
    if data.get("ok"):
        return Ack(str(data["id"]), True, dict(data.get("result") or {}))
    err = data.get("error") or {}
    return Ack(
        str(data["id"]),
        False,
        {},
        AckError(str(err.get("code", INTERNAL)), str(err.get("message", ""))),
    )


def execute(acd: Acd, agent_id: str, command: Command) -> Ack:
    """Apply `command` for `agent_id` once and return its ack (the stored one on a repeat)."""
    stored = acd.storage.stored_ack(agent_id, command.id)
    if stored is not None:
        log.info("command %s (%s) repeated; answering the stored ack", command.id, command.name)
        return _ack_from_wire(stored)
    handler = HANDLERS.get(command.name)
    try:
        if handler is None:
            raise CommandError("unknown_command", f'Unknown command "{command.name}".')
        with acd.transaction():
            agent = acd.storage.agent(agent_id)
            if agent is None:
                raise CommandError("forbidden", "This agent no longer exists.")
            ack = ack_ok(command.id, handler(acd, agent, command.args))
            acd.storage.store_ack(agent_id, command.id, command.name, to_wire(ack), acd.now())
        return ack
    except CommandError as exc:
        log.info(
            "command %s (%s) from %s refused: %s %s",
            command.id,
            command.name,
            agent_id,
            exc.code,
            exc.message,
        )
        return refuse(acd, agent_id, command.id, command.name, exc.code, exc.message)
    except Exception:
        log.exception("command %s (%s) from %s failed", command.id, command.name, agent_id)
        return ack_error(
            command.id, INTERNAL, "The router failed to apply this; it can be sent again."
        )


def refuse(acd: Acd, agent_id: str, command_id: str, name: str, code: str, message: str) -> Ack:
    """Store and return a refused ack for `command_id`, unless it already has an ack."""
    stored = acd.storage.stored_ack(agent_id, command_id)
    if stored is not None:
        return _ack_from_wire(stored)
    ack = ack_error(command_id, code, message)
    with acd.transaction():
        acd.storage.store_ack(agent_id, command_id, name, to_wire(ack), acd.now())
    return ack


# ---------------------------------------------------------------------- checks


def _visible(acd: Acd, agent: Row, conversation_id: str) -> Row:
    conversation = acd.conversation(conversation_id)
    if not may_see(agent, conversation):
        if conversation["assigned_agent"]:
            raise CommandError("forbidden", "This conversation is assigned to another agent.")
        raise CommandError("forbidden", "This conversation is not in your queues.")
    return conversation


def _held(acd: Acd, agent: Row, conversation_id: str) -> Row:
    """The conversation, which must be assigned to this agent and still open."""
    conversation = _visible(acd, agent, conversation_id)
    if conversation["assigned_agent"] != agent["id"]:
        raise CommandError("conflict", "Accept this conversation before working on it.")
    if conversation["status"] not in HELD_STATUSES:
        raise CommandError("conflict", f"This conversation is {conversation['status']}.")
    return conversation


def _offer(acd: Acd, agent: Row, offer_id: str) -> Row:
    offer = acd.storage.offer(offer_id)
    if offer is None:
        raise CommandError("not_found", "No such offer.")
    if offer["agent_id"] != agent["id"]:
        raise CommandError("forbidden", "This offer was made to another agent.")
    if offer["status"] != "pending" or offer["expires_at"] <= acd.now():
        raise CommandError("offer_gone", "This offer has expired, was declined or was taken.")
    return offer


def _message(
    acd: Acd, agent: Row, conversation_id: str, message_id: str, direction: str, body: str
) -> dict[str, Any]:
    existing = acd.storage.message(message_id)
    if existing is not None:
        # The same message sent under a new command id (a client that lost its ack): one copy.
        if (existing["conversation_id"], existing["author"], existing["direction"]) == (
            conversation_id,
            agent["id"],
            direction,
        ):
            return {"seq": existing["seq"]}
        raise CommandError("conflict", "This message id is already used.")
    seq = acd.add_message(conversation_id, direction, agent["id"], body, message_id=message_id)
    return {"seq": seq}


# ---------------------------------------------------------------------- handlers


def _code(given: str, codes: tuple[str, ...], what: str) -> str:
    """`given` if it is one of `codes` (any case); refuses otherwise."""
    if any(given.casefold() == c.casefold() for c in codes):
        return given
    raise CommandError("bad_command", f'Unknown {what} "{given}" (known: {", ".join(codes)}).')


def set_state(acd: Acd, agent: Row, args: Mapping[str, Any]) -> dict[str, Any]:
    state, reason = args["state"], args.get("reason")
    if state != "away":
        reason = None
    elif reason is not None:
        reason = _code(reason, acd.config.reason_codes, "away reason")
    if (agent["state"], agent["state_reason"]) != (state, reason):
        acd.set_agent_state(agent["id"], state, reason)
        acd.route()
    return {"state": state}


def accept(acd: Acd, agent: Row, args: Mapping[str, Any]) -> dict[str, Any]:
    offer = _offer(acd, agent, args["offer_id"])
    if agent["state"] == "offline":
        raise CommandError("conflict", "You are offline; set yourself available first.")
    task = tasks.assign(acd, offer, agent["id"])
    return {"conversation_id": task["id"]}


def decline(acd: Acd, agent: Row, args: Mapping[str, Any]) -> dict[str, Any]:
    offer = _offer(acd, agent, args["offer_id"])
    acd.end_offer(offer, "rejected")
    acd.route()
    return {}


def send_message(acd: Acd, agent: Row, args: Mapping[str, Any]) -> dict[str, Any]:
    conversation = _held(acd, agent, args["conversation_id"])
    result = _message(acd, agent, conversation["id"], args["message_id"], "out", args["body"])
    conversation_id = conversation["id"]
    for hook in acd.on_outbound:
        acd.after_commit(lambda h=hook: h(conversation_id))  # type: ignore[misc]
    return result


def add_note(acd: Acd, agent: Row, args: Mapping[str, Any]) -> dict[str, Any]:
    conversation = _visible(acd, agent, args["conversation_id"])
    return _message(acd, agent, conversation["id"], args["message_id"], "note", args["body"])


def transfer(acd: Acd, agent: Row, args: Mapping[str, Any]) -> dict[str, Any]:
    """The agent who holds a conversation, or a supervisor of its queue, moves it to a queue
    or hands it to a member of its queue."""
    conversation = _visible(acd, agent, args["conversation_id"])
    supervising = conversation["queue"] in agent["supervises"]
    if not supervising:
        conversation = _held(acd, agent, args["conversation_id"])
    elif conversation["status"] == "closed":
        raise CommandError("conflict", "This conversation is closed.")
    queue = args.get("queue")
    if queue is None:
        tasks.transfer_to_agent(acd, agent["id"], conversation, str(args["agent"]))
    else:
        if queue not in acd.config.queue_specs:
            raise CommandError("not_found", f'No queue named "{queue}".')
        for offer in acd.storage.pending_offers():
            if offer["conversation_id"] == conversation["id"]:
                acd.end_offer(offer, "canceled", requeue=False)
        tasks.transfer_to_queue(acd, agent["id"], conversation, queue)
    acd.route()
    return {}


def end_conversation(acd: Acd, agent: Row, args: Mapping[str, Any]) -> dict[str, Any]:
    conversation = _held(acd, agent, args["conversation_id"])
    tasks.start_wrapping(acd, agent, conversation)
    return {}


def set_disposition(acd: Acd, agent: Row, args: Mapping[str, Any]) -> dict[str, Any]:
    conversation = _held(acd, agent, args["conversation_id"])
    code = _code(args["disposition"], acd.config.wrap_up_codes, "disposition")
    tasks.set_disposition(acd, agent["id"], conversation, code)
    return {}


def wrap_up(acd: Acd, agent: Row, args: Mapping[str, Any]) -> dict[str, Any]:
    conversation = _held(acd, agent, args["conversation_id"])
    code = _code(args["disposition"], acd.config.wrap_up_codes, "disposition")
    tasks.complete(acd, agent["id"], conversation, code, args.get("note"))
    acd.route()
    return {}


def schedule_callback(acd: Acd, agent: Row, args: Mapping[str, Any]) -> dict[str, Any]:
    conversation = _held(acd, agent, args["conversation_id"])
    at = float(args["at"])
    if at <= acd.now():
        raise CommandError("conflict", "The callback time has already passed.")
    queue = args.get("queue") or conversation["queue"]
    if queue not in acd.config.queue_specs:
        raise CommandError("not_found", f'No queue named "{queue}".')
    callback_id = tasks.schedule_callback(
        acd, agent["id"], conversation, at, queue, args.get("note")
    )
    return {"callback_id": callback_id}


def call_event(acd: Acd, agent: Row, args: Mapping[str, Any]) -> dict[str, Any]:
    acd.storage.upsert_call(
        agent["id"],
        args["call_id"],
        args["direction"],
        args["remote"],
        args["state"],
        float(args["at"]),
    )
    # The phone's own time and why the call ended go into the fact: the metrics take ring
    # times from the phone's clock and tell a caller who gave up from a declined call
    # (router.metrics_voice).
    acd.fact(
        "call",
        agent_id=agent["id"],
        call=args["call_id"],
        state=args["state"].lower(),
        direction=args["direction"],
        client_at=float(args["at"]),
        **{k: args[k] for k in ("reason", "code") if args.get(k) is not None},
    )
    # Busy while on a call (only from available: an away agent making a call stays away);
    # after it, after-contact work for the wrap-up time, then available again.
    on_call = acd.storage.agent_load(agent["id"]).get("voice", 0) > 0
    if on_call and agent["state"] == "available":
        acd.set_agent_state(agent["id"], "busy", "call")
    elif not on_call and agent["state"] == "busy":
        if acd.config.wrap_up_timeout > 0:
            tasks.enter_wrap_up(acd, agent)
        else:
            acd.set_agent_state(agent["id"], "available")
        acd.route()
    return {}


HANDLERS: dict[str, Handler] = {
    "set_state": set_state,
    "accept": accept,
    "decline": decline,
    "send_message": send_message,
    "add_note": add_note,
    "transfer": transfer,
    "end_conversation": end_conversation,
    "set_disposition": set_disposition,
    "wrap_up": wrap_up,
    "schedule_callback": schedule_callback,
    "call_event": call_event,
}
