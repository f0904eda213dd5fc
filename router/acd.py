"""The ACD: tasks (conversations), reservations (offers) and workers (agents), with an event
for every change.

`Acd` is synchronous and owns no sockets, tasks or timers: it is driven by the router's
endpoint (commands, connects, disconnects), by channels (`router.intake`: inbound customer
messages, abandons, surveys) and by `tick()`, which the service calls at the deadline `tick()`
returned. Time comes from the injected clock, so tests move a fake clock instead of sleeping.
Who-gets-what is decided by the pure functions of `router.routing`; this class gathers their
inputs and applies their answers (`router.offers`: reservations and the routing round); timed
changes (wrap-up ends, overflow, callbacks) live in `router.timers`, task transitions in
`router.tasks`, and the transaction and event buffer in `router.acd_events`.

Every change appends an event to the stream of each agent who may see it, and a fact to the
router-wide log the metrics are computed from, inside the same transaction as the change;
after the commit, `notify` is called with the agents whose streams grew.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from router import offers, routing
from router.acd_events import EventBuffer, Grown
from router.config import Clock, RouterConfig
from router.offers import WIRE_REASON
from router.storage import Row, Storage

log = logging.getLogger(__name__)

IDENTITY_KIND = {"email": "email", "chat": "chat", "sms": "phone", "voice": "phone"}
OPEN_STATUSES = ("queued", "offered", "assigned", "wrap_up")
HELD_STATUSES = ("assigned", "wrap_up")
__all__ = ["WIRE_REASON", "Acd", "CommandError", "HistoryLine", "may_see", "new_id"]


class CommandError(Exception):
    """A command refused for a reason the agent should read (`code` from docs/protocol.md)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class HistoryLine:
    """One message of an imported conversation (demo seed, migrations from another system)."""

    direction: str
    author: str
    body: str
    at: float


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def may_see(agent: Row, conversation: Row) -> bool:
    """An agent sees their own conversations and the waiting ones of their queues; a
    supervisor also sees every open one of the queues they supervise."""
    if conversation["assigned_agent"] == agent["id"]:
        return True
    if conversation["status"] != "closed" and conversation["queue"] in agent.get("supervises", ()):
        return True
    return (
        conversation["status"] in ("queued", "offered") and conversation["queue"] in agent["queues"]
    )


class Acd:
    """Routing, state and the event log over one `Storage`."""

    def __init__(self, storage: Storage, config: RouterConfig, clock: Clock) -> None:
        self.storage = storage
        self.config = config
        self.clock = clock
        self.events = EventBuffer(storage, clock)
        self.on_outbound: list[Callable[[str], None]] = []
        """Called after commit with the conversation id when an agent sent a message (the
        channel connectors deliver it; the demo answers it)."""
        self.on_ended: list[Callable[[str], None]] = []
        """Called after commit with the conversation id when its customer part ended with an
        agent (`end_conversation`, or `wrap_up` straight from assigned): channels ask the
        customer the post-conversation survey."""
        self.on_decision: Callable[[float], None] = lambda seconds: None
        """Called with the seconds from a customer's message arriving to its routing decision
        being committed (the service feeds a Prometheus histogram)."""
        self._connections: dict[str, int] = {}
        self._disconnected_at: dict[str, float] = {}

    # ------------------------------------------------------------------ plumbing

    def now(self) -> float:
        return self.clock()

    @property
    def notify(self) -> Callable[[Grown], None]:
        """Called after each commit with the events it added, (seq, JSON) per agent, so the
        sessions send what was just stored without reading it back."""
        return self.events.notify

    @notify.setter
    def notify(self, callback: Callable[[Grown], None]) -> None:
        self.events.notify = callback

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A storage transaction whose events are announced (and hooks run) after commit."""
        with self.events.transaction():
            yield

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run `hook` once the current transaction has committed (dropped on rollback)."""
        self.events.after_commit(hook)

    def emit(self, agent_ids: Iterable[str], event: dict[str, Any]) -> None:
        """Append `event` to each agent's stream when the transaction ends (call inside
        `transaction`).

        Within one transaction, `conversation` events of the same conversation are coalesced:
        the first one's place in the streams keeps the last one's row and goes to everyone
        either was for (a new chat that is queued and offered at once is one event per queue
        member, not two). Clients take conversation rows as upserts, so only the final state
        matters; the order relative to other events is kept.
        """
        self.events.emit(agent_ids, event)

    def fact(
        self, kind: str, task: Row | None = None, agent_id: str | None = None, **data: Any
    ) -> None:
        """Append a fact to the router-wide log (docs/metrics.md); `task` gives its task id,
        queue, channel and customer."""
        columns: dict[str, str | None] = {"agent_id": agent_id}
        if task is not None:
            columns.update(
                task_id=task["id"],
                queue=task["queue"],
                channel=task["channel"],
                customer_id=task["customer_id"],
            )
        self.storage.add_fact(self.now(), kind, data, **columns)

    def queue_agents(self, queue: str) -> set[str]:
        return set(self.storage.members_of(queue))

    def audience(self, conversation: Row) -> set[str]:
        """The agents who may see this conversation now."""
        out: set[str] = set()
        if conversation["assigned_agent"]:
            out.add(conversation["assigned_agent"])
        if conversation["status"] in ("queued", "offered"):
            out |= self.queue_agents(conversation["queue"])
        if conversation["status"] != "closed":
            out |= set(self.storage.supervisors_of(conversation["queue"]))
        return out

    def conversation(self, conversation_id: str) -> Row:
        row = self.storage.conversation(conversation_id)
        if row is None:
            raise CommandError("not_found", "No such conversation.")
        return row

    def wire(self, conversation_id: str) -> Row:
        """The conversation row for the wire, with `sla_due` (when it breaches its queue's
        service-level threshold) while it waits."""
        wire = self.storage.conversation_wire(conversation_id)
        assert wire is not None, conversation_id
        row = self.conversation(conversation_id)
        if row["status"] in ("queued", "offered") and row["queue_entered_at"] is not None:
            wire["sla_due"] = (
                row["queue_entered_at"] + self.config.queue(row["queue"]).service_level.seconds
            )
        return wire

    def change_conversation(
        self, conversation_id: str, before: set[str] | None = None, **fields: Any
    ) -> Row:
        """Update a conversation and tell everyone who saw it before or sees it now (so a
        client learns both that it arrived and that it left their view). Agents who did not
        see it before also get its messages, so their thread is whole. `before` is given
        (empty) for a conversation just created."""
        if before is None:
            before = self.audience(self.conversation(conversation_id))
        if fields:
            self.storage.update_conversation(conversation_id, self.now(), **fields)
        after = self.conversation(conversation_id)
        audience = self.audience(after)
        self.emit(
            before | audience, {"kind": "conversation", "conversation": self.wire(conversation_id)}
        )
        newcomers = audience - before
        if newcomers:
            for message in self.storage.messages(conversation_id):
                self.emit(newcomers, {"kind": "message", "message": message})
        return after

    def add_message(
        self,
        conversation_id: str,
        direction: str,
        author: str,
        body: str,
        message_id: str | None = None,
        at: float | None = None,
    ) -> int:
        """Append a message and emit it to the conversation's audience; returns its seq."""
        mid = message_id or str(uuid.uuid4())
        seq = self.storage.add_message(
            mid, conversation_id, direction, author, body, self.now() if at is None else at
        )
        conversation = self.conversation(conversation_id)
        self.emit(
            self.audience(conversation), {"kind": "message", "message": self.storage.message(mid)}
        )
        return seq

    def set_agent_state(
        self, agent_id: str, state: str, reason: str | None = None, wrap_until: float | None = None
    ) -> None:
        """Change an agent's state, emit it, and take back offers they can no longer take
        (reservations `rescinded`; a busy agent keeps offers on channels a call allows)."""
        now = self.now()
        self.storage.set_agent_state(agent_id, state, reason, now)
        self.storage.set_wrap_until(agent_id, wrap_until if state == "wrap_up" else None)
        if state == "available":
            self.storage.set_idle_since(agent_id, now)
        else:
            blocked = {"voice", *self.config.voice_blocks}
            for offer in self.storage.pending_offers(agent_id):
                channel = self.conversation(offer["conversation_id"])["channel"]
                if state != routing.BUSY_ON_CALL or channel in blocked:
                    self.end_offer(offer, "rescinded")
        event: dict[str, Any] = {
            "kind": "agent_state",
            "state": state,
            "reason": reason,
            "since": now,
        }
        if state == "wrap_up" and wrap_until is not None:
            event["until"] = wrap_until
        self.emit([agent_id], event)
        self.fact("worker_state", agent_id=agent_id, state=state, reason=reason)
        log.info("agent %s is now %s", agent_id, state)

    # ------------------------------------------------------------------ offers and routing

    def make_offer(self, conversation_id: str, agent_id: str) -> str:
        """See `router.offers.make_offer`."""
        return offers.make_offer(self, conversation_id, agent_id, new_id("o"))

    def end_offer(self, offer: Row, status: str, requeue: bool = True) -> None:
        """See `router.offers.end_offer`."""
        offers.end_offer(self, offer, status, requeue)

    def route(self) -> None:
        """See `router.offers.route`."""
        offers.route(self)

    def tick(self) -> float | None:
        """Expire offers, take lapsed agents offline, run the timers, route; return the next
        deadline."""
        from router import timers

        now = self.now()
        with self.transaction():
            pending = self.storage.pending_offers()
            for offer_id in routing.expired(pending, now):
                offer = self.storage.offer(offer_id)
                if offer is not None and offer["status"] == "pending":
                    self.end_offer(offer, "timeout")
            for agent_id in routing.lapsed(
                self._disconnected_at, now, self.config.disconnect_grace
            ):
                del self._disconnected_at[agent_id]
                agent = self.storage.agent(agent_id)
                if agent is not None and agent["state"] != "offline":
                    log.info("agent %s has been disconnected past the grace period", agent_id)
                    self.set_agent_state(agent_id, "offline", "disconnected")
            timers.run_due(self, now)
            self.route()
        return routing.next_deadline(
            self.storage.pending_offers(),
            self._disconnected_at,
            self.config.disconnect_grace,
            timers.deadlines(self),
        )

    # ------------------------------------------------------------------ connections

    def start(self) -> None:
        """After a restart nobody is connected yet: everyone not offline gets the grace
        period from now to come back."""
        now = self.now()
        for agent in self.storage.agents():
            if agent["state"] != "offline" and not self._connections.get(agent["id"]):
                self._disconnected_at.setdefault(agent["id"], now)

    def connected(self, agent_id: str) -> None:
        self._connections[agent_id] = self._connections.get(agent_id, 0) + 1
        self._disconnected_at.pop(agent_id, None)

    def disconnected(self, agent_id: str) -> None:
        left = self._connections.get(agent_id, 0) - 1
        if left > 0:
            self._connections[agent_id] = left
            return
        self._connections.pop(agent_id, None)
        self._disconnected_at[agent_id] = self.now()

    def is_connected(self, agent_id: str) -> bool:
        return self._connections.get(agent_id, 0) > 0

    def connected_agents(self) -> list[str]:
        return sorted(a for a, n in self._connections.items() if n > 0)

    # ------------------------------------------------------------------ customers' side

    def find_or_add_customer(self, channel: str, address: str, name: str) -> str:
        kind = IDENTITY_KIND[channel]
        customer_id = self.storage.customer_by_identity(kind, address)
        if customer_id is None:
            customer_id = new_id("cu")
            self.storage.add_customer(customer_id, name, self.now())
            self.storage.add_identity(customer_id, kind, address)
        return customer_id

    def inbound(
        self,
        channel: str,
        address: str,
        name: str,
        body: str,
        queue: str,
        subject: str | None = None,
    ) -> str:
        """See `router.intake.inbound`."""
        from router import intake

        return intake.inbound(self, channel, address, name, body, queue, subject)

    def customer_reply(self, conversation_id: str, body: str) -> bool:
        """See `router.intake.customer_reply`."""
        from router import intake

        return intake.customer_reply(self, conversation_id, body)

    def import_conversation(
        self,
        channel: str,
        customer_id: str,
        queue: str,
        subject: str | None,
        history: list[HistoryLine],
        assigned_agent: str | None = None,
    ) -> str:
        """See `router.intake.import_conversation`."""
        from router import intake

        return intake.import_conversation(
            self, channel, customer_id, queue, subject, history, assigned_agent
        )
