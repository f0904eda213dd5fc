"""The one door every channel's customer messages come in by.

It wraps the ACD's own customer-side functions (`Acd.inbound`, `Acd.customer_reply`, the same
path `POST /api/demo/inbound` uses), so routing, out-of-hours answers and metrics facts stay
the ACD's business. What it adds is channel bookkeeping in the same transaction: which channel
address a conversation replies to, the sanitized HTML of an email (set on the message row and
re-sent as a `message` event, which clients take as an upsert by id), attachments, and the
provider id that makes a retried delivery a no-op.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from router.channels.store import ChannelStore
from router.service import Service

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class InboundMessage:
    """A customer's message as a channel parsed it."""

    channel: str
    address: str
    """Normalised identity: lower-case email, E.164 number, chat visitor id."""
    name: str
    body: str
    queue: str
    subject: str | None = None
    html: str | None = None
    thread: str | None = None
    """A conversation this message answers (email References), when known."""
    attachments: list[Attachment] = field(default_factory=list)
    external_id: str | None = None
    """Provider id (IMAP mailbox/UID, Twilio MessageSid): taken in at most once."""


@dataclass(frozen=True)
class Delivered:
    conversation_id: str
    message_id: str


def deliver(
    service: Service,
    item: InboundMessage,
    extra: Callable[[ChannelStore, Delivered], None] | None = None,
) -> Delivered | None:
    """Store the message in its conversation (continuing `thread` when it is still open,
    else the ACD's rule: the customer's open conversation on the channel, or a new one).
    Returns None when `external_id` was already taken in (a provider's retry). `extra` runs
    in the same transaction (an email records its Message-ID there).
    """
    acd = service.acd
    store = ChannelStore(service.storage)
    with acd.transaction():
        if item.external_id is not None and store.seen(item.channel, item.external_id):
            log.info("%s %s was already taken in; skipped", item.channel, item.external_id)
            return None
        conversation_id: str | None = None
        if item.thread is not None and acd.customer_reply(item.thread, item.body):
            conversation_id = item.thread
        if conversation_id is None:
            conversation_id = acd.inbound(
                item.channel, item.address, item.name, item.body, item.queue, item.subject
            )
        message_id = store.last_inbound_message_id(conversation_id)
        store.set_thread(conversation_id, item.channel, item.address, item.subject)
        if item.html:
            store.set_html(message_id, item.html)
        for attachment in item.attachments:
            store.add_attachment(
                f"at-{uuid.uuid4().hex[:16]}",
                message_id,
                conversation_id,
                attachment.filename,
                attachment.content_type,
                attachment.data,
            )
        if item.html or item.attachments:
            # The ACD emitted the message without its HTML and attachment list; clients
            # upsert messages by id, so this second event completes it.
            row = service.storage.message(message_id)
            assert row is not None, message_id
            if item.attachments:
                row["attachments"] = [
                    {k: a[k] for k in ("id", "filename", "content_type", "size")}
                    for a in store.attachments(conversation_id)
                    if a["message_id"] == message_id
                ]
            acd.emit(
                acd.audience(acd.conversation(conversation_id)), {"kind": "message", "message": row}
            )
        if item.external_id is not None:
            store.mark_seen(item.channel, item.external_id, conversation_id, acd.now())
        delivered = Delivered(conversation_id, message_id)
        if extra is not None:
            extra(store, delivered)
    log.info("%s message in %s", item.channel, conversation_id)
    return delivered


def dead_letter(
    service: Service,
    channel: str,
    reason: str,
    detail: str,
    raw: bytes,
    source: str | None = None,
    size: int | None = None,
) -> int:
    """Keep input that could not be delivered where an admin can list it
    (`GET /api/admin/dead-letters`, `python -m router.channels.deadletters`); returns its id.
    Logged at WARNING with the reason (never the content)."""
    store = ChannelStore(service.storage)
    with service.storage.transaction():
        letter_id = store.add_dead_letter(
            channel, reason, detail, raw, service.clock(), source, size
        )
    log.warning("%s input went to dead letter %d: %s (%s)", channel, letter_id, reason, detail)
    return letter_id
