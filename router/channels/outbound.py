"""Agents' replies leave by the channel their conversation came in on.

The ACD calls `Acd.on_outbound` after an agent's `send_message` commits; this dispatcher
finds that conversation's agent messages with no delivery row yet, claims each (a `sending`
row, written before the first await, so two wake-ups never send one message twice) and hands it
to the channel's sender. A failed delivery is recorded (`failed` with the reason) and the
agent gets a note in the thread saying so, rather than believing the customer was answered.
At start, messages left undelivered by a stop are sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from router.channels.store import ChannelStore
from router.service import Service
from router.storage import Row

log = logging.getLogger(__name__)

NOTE_AUTHOR = "router"


class DeliveryError(Exception):
    """A message could not be handed to its channel; the message is shown to the agent."""


@dataclass(frozen=True)
class Sent:
    status: str
    """`sent` (handed over), `queued` (the provider will send it) or `delivered`."""
    provider_id: str | None = None


Sender = Callable[[Row, Row], Awaitable[Sent]]
"""(channel thread row, message row) -> outcome."""


class Outbound:
    """The `on_outbound` hook that routes agent replies to channel senders."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.store = ChannelStore(service.storage)
        self.senders: dict[str, Sender] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def install(self) -> None:
        self.service.acd.on_outbound.append(self.on_outbound)

    async def start(self, service: Service) -> None:
        """A `Service.starters` entry: send what a previous run left undelivered."""
        for conversation_id in self.store.threads_with_undelivered():
            self.on_outbound(conversation_id)

    def on_outbound(self, conversation_id: str) -> None:
        thread = self.store.thread(conversation_id)
        if thread is None or thread["channel"] not in self.senders:
            return
        self.service.spawn(self._deliver(conversation_id, thread), f"deliver-{conversation_id}")

    async def _deliver(self, conversation_id: str, thread: Row) -> None:
        lock = self._locks.setdefault(conversation_id, asyncio.Lock())
        async with lock:
            sender = self.senders[thread["channel"]]
            for message in self.store.undelivered(conversation_id):
                with self.service.storage.transaction():
                    self.store.claim_delivery(
                        message["id"], conversation_id, thread["channel"], self.service.clock()
                    )
                try:
                    sent = await sender(thread, message)
                except DeliveryError as exc:
                    self._failed(conversation_id, thread["channel"], message["id"], str(exc))
                    continue
                except Exception:
                    # A bug in a sender must not leave the message "sending" for ever, nor
                    # the agent believing it left: record it, say so, and log the traceback.
                    log.exception("%s sender failed on %s", thread["channel"], message["id"])
                    self._failed(
                        conversation_id,
                        thread["channel"],
                        message["id"],
                        "an internal error (see the router log)",
                    )
                    continue
                with self.service.storage.transaction():
                    self.store.set_delivery(
                        message["id"], sent.status, self.service.clock(), sent.provider_id
                    )
                log.info(
                    "%s reply %s in %s: %s",
                    thread["channel"],
                    message["id"],
                    conversation_id,
                    sent.status,
                )
        if not lock.locked():
            self._locks.pop(conversation_id, None)

    def _failed(self, conversation_id: str, channel: str, message_id: str, reason: str) -> None:
        log.warning(
            "%s reply %s in %s was not delivered: %s", channel, message_id, conversation_id, reason
        )
        acd = self.service.acd
        with acd.transaction():
            self.store.set_delivery(message_id, "failed", acd.now(), error=reason)
            acd.add_message(
                conversation_id,
                "note",
                NOTE_AUTHOR,
                f"Your reply was not delivered by {channel}: {reason}",
            )
