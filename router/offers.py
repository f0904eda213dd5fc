"""Reservations (offers) and the routing round: gather `router.routing`'s inputs, apply its
answer.

Split from `router.acd` (which keeps one-line methods for these, the names the rest of the
router calls). Each function runs inside the caller's transaction. A task has at most one
pending reservation: `make_offer` is only called with tasks `routing.plan` took from the
queued ones, and the database's unique partial index refuses a second pending offer anyway.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from router import routing
from router.storage import Row

if TYPE_CHECKING:
    from router.acd import Acd

log = logging.getLogger(__name__)

WIRE_REASON = {
    "timeout": "timeout",
    "rejected": "declined",
    "canceled": "canceled",
    "rescinded": "canceled",
    "taken": "taken",
}
"""Reservation status (TaskRouter's word, stored) -> `offer_revoked.reason` on the wire."""


def make_offer(acd: Acd, conversation_id: str, agent_id: str, offer_id: str) -> str:
    """Reserve the task for the worker and tell them (an `offer` event)."""
    now = acd.now()
    acd.storage.add_offer(offer_id, conversation_id, agent_id, now, now + acd.config.offer_timeout)
    acd.storage.set_last_offered(agent_id, now)
    task = acd.change_conversation(conversation_id, status="offered")
    offer = acd.storage.offer(offer_id)
    assert offer is not None
    acd.emit([agent_id], {"kind": "offer", "offer": acd.storage.offer_wire(offer)})
    acd.fact("reservation_created", task, agent_id, reservation=offer_id)
    log.info("offered %s to %s (offer %s)", conversation_id, agent_id, offer_id)
    return offer_id


def end_offer(acd: Acd, offer: Row, status: str, requeue: bool = True) -> None:
    """Close a pending reservation (`timeout`, `rejected`, `canceled`, `rescinded`) and, with
    `requeue`, put its task back in the queue."""
    acd.storage.end_offer(offer["id"], status, acd.now())
    acd.emit(
        [offer["agent_id"]],
        {"kind": "offer_revoked", "offer_id": offer["id"], "reason": WIRE_REASON[status]},
    )
    conversation = acd.conversation(offer["conversation_id"])
    acd.fact(f"reservation_{status}", conversation, offer["agent_id"], reservation=offer["id"])
    if requeue and conversation["status"] == "offered":
        acd.change_conversation(conversation["id"], status="queued")
    log.info("offer %s %s", offer["id"], status)


def route(acd: Acd) -> None:
    """Offer waiting tasks to free workers (see `router.routing`)."""
    now = acd.now()
    storage = acd.storage
    waiting_rows = storage.waiting_conversations()
    if not waiting_rows:
        return
    refused: dict[str, set[str]] = {}
    for row in storage.refusals(now - acd.config.reoffer_after):
        refused.setdefault(row["conversation_id"], set()).add(row["agent_id"])
    waiting = []
    for c in waiting_rows:
        spec = acd.config.queue(c["queue"])
        waiting.append(
            routing.Waiting(
                c["id"],
                c["channel"],
                c["queue"],
                c["queued_since"] or 0.0,
                frozenset(refused.get(c["id"], ())),
                spec.priority,
                spec.skills,
            )
        )
    rows = storage.routable_agents(sorted({w.queue for w in waiting}))
    loads = storage.all_loads([a["id"] for a in rows])
    agents = [
        routing.AgentSlot(
            a["id"],
            frozenset(a["queues"]),
            a["capacity"],
            a["state"],
            a["idle_since"],
            loads.get(a["id"], {}),
            a["skills"],
            a["last_offered_at"],
        )
        for a in rows
    ]
    for assignment in routing.plan(
        waiting, agents, now, acd.config.strategy, acd.config.voice_blocks
    ):
        acd.make_offer(assignment.conversation_id, assignment.agent_id)
