"""Task transitions (TaskRouter's words; docs/routing.md "State machines").

A task (a conversation) goes `pending` (wire status `queued`) -> `reserved` (`offered`) ->
`assigned` -> `wrapping` (`wrap_up`) -> `completed` (`closed`), or is `canceled` before it is
assigned (the customer left). Each function here is one step, called inside the caller's
transaction, and records the facts the metrics are computed from. The checks of who may do
what live in `router.commands`; these functions assume they passed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from router.acd import CommandError, Row, new_id

if TYPE_CHECKING:
    from router.acd import Acd

log = logging.getLogger(__name__)


def assign(acd: Acd, offer: Row, agent_id: str) -> Row:
    """The worker accepted the reservation: the task is theirs."""
    now = acd.now()
    acd.storage.end_offer(offer["id"], "accepted", now)
    acd.storage.set_idle_since(agent_id, now)
    before = acd.conversation(offer["conversation_id"])
    wait = now - (before["queue_entered_at"] or before["created_at"])
    task = acd.change_conversation(
        offer["conversation_id"], status="assigned", assigned_agent=agent_id, queued_since=None
    )
    acd.fact("reservation_accepted", task, agent_id, reservation=offer["id"])
    acd.fact("task_assigned", task, agent_id, wait=wait)
    log.info("agent %s accepted %s", agent_id, task["id"])
    return task


def start_wrapping(acd: Acd, agent: Row, task: Row) -> None:
    """The conversation with the customer is over; after-contact work starts. An agent who
    was taking work goes to `wrap_up` for the configured time."""
    if task["status"] == "wrap_up":
        return
    acd.change_conversation(task["id"], status="wrap_up")
    acd.fact("task_wrapping", task, agent["id"])
    _customer_part_ended(acd, task["id"])
    enter_wrap_up(acd, agent)


def _customer_part_ended(acd: Acd, task_id: str) -> None:
    """Tell `Acd.on_ended` (after the commit) that the agent finished with the customer."""
    for hook in acd.on_ended:
        acd.after_commit(lambda h=hook: h(task_id))  # type: ignore[misc]


def enter_wrap_up(acd: Acd, agent: Row) -> None:
    """Put an available or on-call agent into after-contact work (no new offers) until the
    wrap-up timeout; an away or offline agent keeps their choice."""
    if agent["state"] not in ("available", "busy", "wrap_up") or acd.config.wrap_up_timeout <= 0:
        return
    if agent["state"] == "busy" and acd.storage.agent_load(agent["id"]).get("voice", 0) > 0:
        return  # still on a call: its end starts the wrap-up
    acd.set_agent_state(
        agent["id"], "wrap_up", None, wrap_until=acd.now() + acd.config.wrap_up_timeout
    )


def complete(
    acd: Acd,
    agent_id: str,
    task: Row,
    disposition: str | None,
    note: str | None = None,
    timed_out: bool = False,
) -> None:
    """Close the task. If that ends the agent's after-contact work, they are available."""
    if note:
        acd.add_message(task["id"], "note", agent_id, note)
    if task["status"] == "assigned":
        acd.fact("task_wrapping", task, agent_id)
        _customer_part_ended(acd, task["id"])
    fields: dict[str, Any] = {"status": "closed"}
    if disposition is not None:
        fields["disposition"] = disposition
    acd.change_conversation(task["id"], **fields)
    acd.fact(
        "task_completed",
        task,
        agent_id,
        disposition=disposition or task["disposition"],
        timed_out=timed_out,
    )
    agent = acd.storage.agent(agent_id)
    if (
        agent is not None
        and agent["state"] == "wrap_up"
        and not timed_out
        and not acd.storage.held_conversations(agent_id, ("wrap_up",))
    ):
        acd.set_agent_state(agent_id, "available")


def set_disposition(acd: Acd, agent_id: str, task: Row, disposition: str) -> None:
    acd.change_conversation(task["id"], disposition=disposition)
    acd.fact("disposition", task, agent_id, disposition=disposition)


def transfer_to_queue(acd: Acd, by: str, task: Row, queue: str) -> None:
    now = acd.now()
    acd.fact("task_transferred", task, by, to_queue=queue, from_agent=task["assigned_agent"])
    task = acd.change_conversation(
        task["id"],
        status="queued",
        assigned_agent=None,
        queue=queue,
        queued_since=now,
        queue_entered_at=now,
    )
    acd.fact("task_queued", task, reason="transfer")
    log.info("%s transferred %s to %s", by, task["id"], queue)


def transfer_to_agent(acd: Acd, by: str, task: Row, target_id: str) -> None:
    """Hand the task straight to a colleague who is a member of its queue, signed in and has
    room for it (no offer: the colleague was asked; a refusal says why).

    Raises:
        CommandError: `not_found`, `forbidden` (not in the queue), `conflict` (self, offline,
            no room).
    """
    target = acd.storage.agent(target_id)
    if target is None:
        raise CommandError("not_found", "No such agent.")
    if target_id == task["assigned_agent"]:
        raise CommandError("conflict", "This conversation is already theirs.")
    if task["queue"] not in target["queues"]:
        raise CommandError("forbidden", f"{target['name']} is not in the {task['queue']} queue.")
    if target["state"] == "offline":
        raise CommandError("conflict", f"{target['name']} is offline.")
    channel = task["channel"]
    if acd.storage.agent_load(target_id).get(channel, 0) >= target["capacity"].get(channel, 0):
        raise CommandError("conflict", f"{target['name']} has no room for another {channel}.")
    for offer in acd.storage.pending_offers():
        if offer["conversation_id"] == task["id"]:
            acd.end_offer(offer, "canceled", requeue=False)
    acd.fact("task_transferred", task, by, to_agent=target_id, from_agent=task["assigned_agent"])
    task = acd.change_conversation(
        task["id"], assigned_agent=target_id, status="assigned", queued_since=None
    )
    acd.fact("task_assigned", task, target_id, wait=0.0, transfer=True)
    log.info("%s transferred %s to agent %s", by, task["id"], target_id)


def schedule_callback(
    acd: Acd, agent_id: str, task: Row, at: float, queue: str, note: str | None
) -> str:
    callback_id = new_id("cb")
    acd.storage.add_callback(callback_id, task["id"], agent_id, queue, at, note, acd.now())
    acd.fact("callback_scheduled", task, agent_id, callback=callback_id, due_at=at, to_queue=queue)
    if note:
        acd.add_message(task["id"], "note", agent_id, f"Callback scheduled: {note}")
    log.info("agent %s scheduled callback %s for %s", agent_id, callback_id, task["id"])
    return callback_id


def fire_callback(acd: Acd, callback: Row) -> str:
    """A callback is due: an outbound voice task for the customer, in the chosen queue."""
    origin = acd.conversation(callback["conversation_id"])
    now = acd.now()
    task_id = new_id("c")
    subject = f"Callback: {origin['subject']}" if origin["subject"] else "Callback"
    acd.storage.add_conversation(
        task_id,
        "voice",
        origin["customer_id"],
        callback["queue"],
        subject,
        now,
        direction="outbound",
    )
    task = acd.change_conversation(task_id, before=set())
    note = callback["note"] or "The customer asked to be called back now."
    acd.add_message(task_id, "note", callback["agent_id"], note)
    acd.storage.callback_queued(callback["id"], task_id)
    acd.fact(
        "task_created", task, direction="outbound", callback=callback["id"], origin=origin["id"]
    )
    acd.fact("task_queued", task, reason="callback")
    log.info("callback %s is due: task %s in %s", callback["id"], task_id, callback["queue"])
    return task_id
