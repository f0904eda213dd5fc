"""The ACD: conversations, offers and agent states, with an event for every change.

`Acd` is synchronous and owns no sockets, tasks or timers: it is driven by the router's
endpoint (commands, connects, disconnects), by channels (inbound customer messages) and by
`tick()`, which the service calls at the deadline `tick()` returned. Time comes from the injected
clock, so tests move a fake clock instead of sleeping. Who-gets-what is decided by the pure
functions of `router.routing`; this class gathers their inputs and applies their answers.

Every change appends an event to the stream of each agent who may see it, inside the same
transaction as the change; after the commit, `notify` is called with the agents whose streams
grew, and the sessions push the new events from storage.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from router import routing
from router.config import Clock, RouterConfig
from router.storage import Row, Storage

log = logging.getLogger(__name__)

IDENTITY_KIND = {"email": "email", "chat": "chat", "sms": "phone", "voice": "phone"}
OPEN_STATUSES = ("queued", "offered", "assigned", "wrap_up")
HELD_STATUSES = ("assigned", "wrap_up")


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
    """An agent sees their own conversations and the waiting ones of their queues."""
    if conversation["assigned_agent"] == agent["id"]:
        return True
    return conversation["status"] in ("queued", "offered") and conversation["queue"] in agent[
        "queues"
    ]


class Acd:
    """Routing, state and the event log over one `Storage`."""

    def __init__(self, storage: Storage, config: RouterConfig, clock: Clock) -> None:
        self.storage = storage
        self.config = config
        self.clock = clock
        self.notify: Callable[[set[str]], None] = lambda agents: None
        """Called after each commit with the agents whose event streams grew."""
        self.on_outbound: list[Callable[[str], None]] = []
        """Called after commit with the conversation id when an agent sent a message."""
        self._connections: dict[str, int] = {}
        self._disconnected_at: dict[str, float] = {}
        self._touched: set[str] = set()
        self._after_commit: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ plumbing

    def now(self) -> float:
        return self.clock()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A storage transaction whose events are announced (and hooks run) after commit."""
        outer = not self.storage.in_transaction
        try:
            with self.storage.transaction():
                yield
        except BaseException:
            if outer:
                self._touched.clear()
                self._after_commit.clear()
            raise
        if outer:
            touched, self._touched = self._touched, set()
            hooks, self._after_commit = self._after_commit, []
            if touched:
                self.notify(touched)
            for hook in hooks:
                hook()

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run `hook` once the current transaction has committed (dropped on rollback)."""
        self._after_commit.append(hook)

    def emit(self, agent_ids: Iterable[str], event: dict[str, Any]) -> None:
        """Append `event` to each agent's stream (call inside `transaction`)."""
        now = self.now()
        for agent_id in sorted(set(agent_ids)):
            self.storage.append_event(agent_id, event, now)
            self._touched.add(agent_id)

    def queue_agents(self, queue: str) -> set[str]:
        return {a["id"] for a in self.storage.agents() if queue in a["queues"]}

    def audience(self, conversation: Row) -> set[str]:
        """The agents who may see this conversation now."""
        out: set[str] = set()
        if conversation["assigned_agent"]:
            out.add(conversation["assigned_agent"])
        if conversation["status"] in ("queued", "offered"):
            out |= self.queue_agents(conversation["queue"])
        return out

    def conversation(self, conversation_id: str) -> Row:
        row = self.storage.conversation(conversation_id)
        if row is None:
            raise CommandError("not_found", "No such conversation.")
        return row

    def change_conversation(self, conversation_id: str, before: set[str] | None = None,
                            **fields: Any) -> Row:
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
        self.emit(before | audience, {
            "kind": "conversation",
            "conversation": self.storage.conversation_wire(conversation_id),
        })
        newcomers = audience - before
        if newcomers:
            for message in self.storage.messages(conversation_id):
                self.emit(newcomers, {"kind": "message", "message": message})
        return after

    def add_message(
        self, conversation_id: str, direction: str, author: str, body: str,
        message_id: str | None = None, at: float | None = None,
    ) -> int:
        """Append a message and emit it to the conversation's audience; returns its seq."""
        mid = message_id or str(uuid.uuid4())
        seq = self.storage.add_message(
            mid, conversation_id, direction, author, body, self.now() if at is None else at
        )
        conversation = self.conversation(conversation_id)
        self.emit(self.audience(conversation),
                  {"kind": "message", "message": self.storage.message(mid)})
        return seq

    def set_agent_state(self, agent_id: str, state: str, reason: str | None = None) -> None:
        """Change an agent's state, emit it, and give back offers they can no longer take."""
        now = self.now()
        self.storage.set_agent_state(agent_id, state, reason, now)
        if state == "available":
            self.storage.set_idle_since(agent_id, now)
        else:
            for offer in self.storage.pending_offers(agent_id):
                self.end_offer(offer, "canceled", "canceled")
        self.emit([agent_id], {"kind": "agent_state", "state": state, "reason": reason,
                               "since": now})
        log.info("agent %s is now %s", agent_id, state)

    # ------------------------------------------------------------------ offers and routing

    def make_offer(self, conversation_id: str, agent_id: str) -> str:
        now = self.now()
        offer_id = new_id("o")
        self.storage.add_offer(offer_id, conversation_id, agent_id, now,
                               now + self.config.offer_timeout)
        self.change_conversation(conversation_id, status="offered")
        offer = self.storage.offer(offer_id)
        assert offer is not None
        self.emit([agent_id], {"kind": "offer", "offer": self.storage.offer_wire(offer)})
        log.info("offered %s to %s (offer %s)", conversation_id, agent_id, offer_id)
        return offer_id

    def end_offer(self, offer: Row, status: str, reason: str) -> None:
        """Close a pending offer (`expired`, `declined`, `canceled`) and requeue its
        conversation."""
        self.storage.end_offer(offer["id"], status, self.now())
        self.emit([offer["agent_id"]], {"kind": "offer_revoked", "offer_id": offer["id"],
                                        "reason": reason})
        conversation = self.conversation(offer["conversation_id"])
        if conversation["status"] == "offered":
            self.change_conversation(conversation["id"], status="queued")
        log.info("offer %s %s", offer["id"], status)

    def route(self) -> None:
        """Offer waiting conversations to free agents (see `router.routing`)."""
        now = self.now()
        waiting_rows = self.storage.waiting_conversations()
        if not waiting_rows:
            return
        refused: dict[str, set[str]] = {}
        for row in self.storage.refusals(now - self.config.reoffer_after):
            refused.setdefault(row["conversation_id"], set()).add(row["agent_id"])
        waiting = [
            routing.Waiting(c["id"], c["channel"], c["queue"], c["queued_since"] or 0.0,
                            frozenset(refused.get(c["id"], ())))
            for c in waiting_rows
        ]
        agents = [
            routing.AgentSlot(a["id"], frozenset(a["queues"]), a["capacity"], a["state"],
                              a["idle_since"], self.storage.agent_load(a["id"]))
            for a in self.storage.agents() if a["state"] == "available"
        ]
        for assignment in routing.plan(waiting, agents, now):
            self.make_offer(assignment.conversation_id, assignment.agent_id)

    def tick(self) -> float | None:
        """Expire offers, take lapsed agents offline, route; return the next deadline."""
        now = self.now()
        with self.transaction():
            pending = self.storage.pending_offers()
            for offer_id in routing.expired(pending, now):
                offer = self.storage.offer(offer_id)
                if offer is not None and offer["status"] == "pending":
                    self.end_offer(offer, "expired", "timeout")
            for agent_id in routing.lapsed(self._disconnected_at, now,
                                           self.config.disconnect_grace):
                del self._disconnected_at[agent_id]
                agent = self.storage.agent(agent_id)
                if agent is not None and agent["state"] != "offline":
                    log.info("agent %s has been disconnected past the grace period", agent_id)
                    self.set_agent_state(agent_id, "offline", "disconnected")
            self.route()
        return routing.next_deadline(self.storage.pending_offers(), self._disconnected_at,
                                     self.config.disconnect_grace)

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
        self, channel: str, address: str, name: str, body: str, queue: str,
        subject: str | None = None,
    ) -> str:
        """A customer wrote: continue their open conversation on this channel, or queue a new
        one. Returns the conversation id."""
        with self.transaction():
            customer_id = self.find_or_add_customer(channel, address, name)
            conversation_id = self.storage.open_conversation_for(customer_id, channel)
            if conversation_id is None:
                conversation_id = new_id("c")
                self.storage.add_conversation(conversation_id, channel, customer_id, queue,
                                              subject, self.now())
                log.info("new %s conversation %s in %s", channel, conversation_id, queue)
                self.change_conversation(conversation_id, before=set(),
                                         last_inbound_at=self.now())
            else:
                self.change_conversation(conversation_id, last_inbound_at=self.now())
            self.add_message(conversation_id, "in", customer_id, body)
            self.route()
        return conversation_id

    def customer_reply(self, conversation_id: str, body: str) -> bool:
        """The customer of an open conversation wrote again (a reply to the agent). Returns
        False, changing nothing, when the conversation is closed or gone."""
        with self.transaction():
            conversation = self.storage.conversation(conversation_id)
            if conversation is None or conversation["status"] not in OPEN_STATUSES:
                return False
            self.change_conversation(conversation_id, last_inbound_at=self.now())
            self.add_message(conversation_id, "in", conversation["customer_id"], body)
        return True

    def import_conversation(
        self, channel: str, customer_id: str, queue: str, subject: str | None,
        history: list[HistoryLine], assigned_agent: str | None = None,
    ) -> str:
        """Create a conversation with past messages (demo seed), assigned or queued."""
        with self.transaction():
            conversation_id = new_id("c")
            start = history[0].at if history else self.now()
            self.storage.add_conversation(conversation_id, channel, customer_id, queue, subject,
                                          start)
            for line in history:
                self.storage.add_message(str(uuid.uuid4()), conversation_id, line.direction,
                                         line.author, line.body, line.at)
            inbound = [h.at for h in history if h.direction == "in"]
            fields: dict[str, Any] = {"last_inbound_at": max(inbound) if inbound else None}
            if assigned_agent:
                fields.update(status="assigned", assigned_agent=assigned_agent)
            self.change_conversation(conversation_id, before=set(), **fields)
            self.route()
        return conversation_id
