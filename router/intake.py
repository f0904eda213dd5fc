"""The customers' side of the ACD: the seam channel connectors call.

Email, web chat and SMS connectors (later, under `router/channels/`) only need these
functions: a customer wrote (`inbound`, `customer_reply`), left before being answered
(`customer_left`, an abandon), or answered the post-conversation survey (`survey_answer`);
agents' replies reach the connectors through `Acd.on_outbound`. Each function is one
transaction with its events and facts.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from router.acd import HELD_STATUSES, OPEN_STATUSES, CommandError, HistoryLine, new_id

if TYPE_CHECKING:
    from router.acd import Acd

log = logging.getLogger(__name__)

ROUTER_AUTHOR = "router"
"""Author of automatic messages (the out-of-hours answer)."""


def inbound(
    acd: Acd,
    channel: str,
    address: str,
    name: str,
    body: str,
    queue: str,
    subject: str | None = None,
) -> str:
    """A customer wrote: continue their open conversation on this channel, or queue a new
    one (answered automatically when its queue is closed). A conversation whose agent is
    offline goes back to its queue rather than waiting for them. Returns the conversation id.

    Raises:
        CommandError: `not_found` for a queue the config does not define.
    """
    if queue not in acd.config.queue_specs:
        raise CommandError("not_found", f'No queue named "{queue}".')
    started = time.perf_counter()
    with acd.transaction():
        now = acd.now()
        customer_id = acd.find_or_add_customer(channel, address, name)
        conversation_id = acd.storage.open_conversation_for(customer_id, channel)
        if conversation_id is None:
            conversation_id = new_id("c")
            acd.storage.add_conversation(conversation_id, channel, customer_id, queue, subject, now)
            log.info("new %s conversation %s in %s", channel, conversation_id, queue)
            task = acd.change_conversation(conversation_id, before=set(), last_inbound_at=now)
            acd.fact("task_created", task, direction="inbound")
            acd.fact("task_queued", task, reason="new")
            acd.add_message(conversation_id, "in", customer_id, body)
            _answer_if_closed(acd, task)
        else:
            task = acd.change_conversation(conversation_id, last_inbound_at=now)
            acd.add_message(conversation_id, "in", customer_id, body)
            _requeue_if_agent_offline(acd, task)
        acd.route()
    acd.on_decision(time.perf_counter() - started)
    return conversation_id


def _answer_if_closed(acd: Acd, task: dict[str, Any]) -> None:
    spec = acd.config.queue(task["queue"])
    if spec.hours is None or spec.hours.is_open(acd.now()):
        return
    acd.fact("out_of_hours", task)
    if spec.out_of_hours_message:
        acd.add_message(task["id"], "out", ROUTER_AUTHOR, spec.out_of_hours_message)
        for hook in acd.on_outbound:
            acd.after_commit(lambda h=hook: h(task["id"]))  # type: ignore[misc]
    log.info("%s arrived while %s is closed", task["id"], task["queue"])


def _requeue_if_agent_offline(acd: Acd, task: dict[str, Any]) -> None:
    if task["status"] not in HELD_STATUSES or not task["assigned_agent"]:
        return
    agent = acd.storage.agent(task["assigned_agent"])
    if agent is not None and agent["state"] != "offline":
        return
    now = acd.now()
    acd.fact("task_released", task, task["assigned_agent"], reason="agent_offline")
    task = acd.change_conversation(
        task["id"], status="queued", assigned_agent=None, queued_since=now, queue_entered_at=now
    )
    acd.fact("task_queued", task, reason="reopened")
    log.info("%s reopened while its agent is offline: back to %s", task["id"], task["queue"])


def customer_reply(acd: Acd, conversation_id: str, body: str) -> bool:
    """The customer of an open conversation wrote again (a reply to the agent). Returns
    False, changing nothing, when the conversation is closed or gone."""
    with acd.transaction():
        conversation = acd.storage.conversation(conversation_id)
        if conversation is None or conversation["status"] not in OPEN_STATUSES:
            return False
        task = acd.change_conversation(conversation_id, last_inbound_at=acd.now())
        acd.add_message(conversation_id, "in", conversation["customer_id"], body)
        _requeue_if_agent_offline(acd, task)
        acd.route()
    return True


def customer_left(acd: Acd, conversation_id: str) -> bool:
    """The customer gave up before an agent took the conversation (a chat closed, a call hung
    up in queue): the task is canceled (abandoned) and a pending reservation with it. Returns
    False when it was already assigned, closed or unknown (nothing changes)."""
    with acd.transaction():
        task = acd.storage.conversation(conversation_id)
        if task is None or task["status"] not in ("queued", "offered"):
            return False
        for offer in acd.storage.pending_offers():
            if offer["conversation_id"] == conversation_id:
                acd.end_offer(offer, "canceled", requeue=False)
        wait = acd.now() - (task["queue_entered_at"] or task["created_at"])
        acd.change_conversation(
            conversation_id, status="closed", disposition="abandoned", queued_since=None
        )
        acd.fact("task_canceled", task, reason="abandoned", wait=wait)
        log.info("%s abandoned after %.0fs in %s", conversation_id, wait, task["queue"])
    return True


def survey_answer(acd: Acd, conversation_id: str, score: int) -> None:
    """The customer's post-conversation survey score (1-5, chat and SMS).

    Raises:
        CommandError: `not_found` for an unknown conversation, `bad_command` for a score
            outside 1-5.
    """
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise CommandError("bad_command", "The survey score must be 1 to 5.")
    with acd.transaction():
        task = acd.conversation(conversation_id)
        acd.fact("survey", task, task["assigned_agent"], score=score)


def import_conversation(
    acd: Acd,
    channel: str,
    customer_id: str,
    queue: str,
    subject: str | None,
    history: list[HistoryLine],
    assigned_agent: str | None = None,
) -> str:
    """Create a conversation with past messages (demo seed), assigned or queued. Imported
    history is not metrics: only a queued import gets a `task_queued` fact."""
    with acd.transaction():
        conversation_id = new_id("c")
        start = history[0].at if history else acd.now()
        acd.storage.add_conversation(conversation_id, channel, customer_id, queue, subject, start)
        for line in history:
            acd.storage.add_message(
                str(uuid.uuid4()), conversation_id, line.direction, line.author, line.body, line.at
            )
        inbound_times = [h.at for h in history if h.direction == "in"]
        fields: dict[str, Any] = {"last_inbound_at": max(inbound_times) if inbound_times else None}
        if assigned_agent:
            fields.update(status="assigned", assigned_agent=assigned_agent)
        task = acd.change_conversation(conversation_id, before=set(), **fields)
        if not assigned_agent:
            acd.fact("task_queued", task, reason="import")
        acd.route()
    return conversation_id
