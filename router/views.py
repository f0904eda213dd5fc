"""What an agent is sent when they resume: a replay of their stream, or a paged snapshot.

Both are built synchronously from storage in one go (the router runs on one thread, so nothing
changes between the reads), which makes `seq` an exact cut: everything at or before it is in
the snapshot, everything after it follows as events.
"""

from __future__ import annotations

import json
import logging

from router.acd import may_see
from router.storage import Row, Storage
from sync.protocol import MAX_FRAME_BYTES, Snapshot

log = logging.getLogger(__name__)

PAGE_BYTES = MAX_FRAME_BYTES * 3 // 4
"""JSON bytes of rows per page, leaving room for the frame's own keys and agent state."""


def needs_snapshot(storage: Storage, agent_id: str, since: int) -> bool:
    """True when the events after `since` cannot all be replayed: a fresh client (0), one
    from before the oldest retained event, or one ahead of this stream (another database)."""
    last = storage.last_seq(agent_id)
    if since <= 0 or since > last:
        return True
    if since == last:
        return False
    first = storage.first_retained_seq(agent_id)
    return first is None or first > since + 1


def _chunks(rows: list[tuple[str, Row]], page_size: int) -> list[list[tuple[str, Row]]]:
    """Split rows into pages of at most `page_size` rows and PAGE_BYTES of JSON, so a page
    of long emails still fits the frame limit."""
    chunks: list[list[tuple[str, Row]]] = [[]]
    size = 0
    for item in rows:
        row_size = len(json.dumps(item[1], ensure_ascii=False).encode("utf-8")) + 1
        if chunks[-1] and (len(chunks[-1]) >= page_size or size + row_size > PAGE_BYTES):
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += row_size
    return chunks


def build_snapshot(storage: Storage, agent: Row, page_size: int) -> list[Snapshot]:
    """The agent's current view as snapshot pages (at least one)."""
    seq = storage.last_seq(agent["id"])
    conversations: list[Row] = []
    customers: dict[str, Row] = {}
    messages: list[Row] = []
    for conversation_id in storage.visible_conversation_ids(
        agent["id"], agent["queues"], agent["supervises"]
    ):
        row = storage.conversation(conversation_id)
        if row is None or not may_see(agent, row):
            continue
        wire = storage.conversation_wire(conversation_id)
        assert wire is not None
        conversations.append(wire)
        customers[wire["customer"]["id"]] = wire["customer"]
        messages.extend(storage.messages(conversation_id))
    offers = [storage.offer_wire(o) for o in storage.pending_offers(agent["id"])]
    state = {
        "state": agent["state"],
        "reason": agent["state_reason"],
        "since": agent["state_since"],
    }

    rows: list[tuple[str, Row]] = (
        [("customers", c) for c in customers.values()]
        + [("conversations", c) for c in conversations]
        + [("messages", m) for m in messages]
        + [("offers", o) for o in offers]
    )
    pages: list[Snapshot] = []
    chunks = _chunks(rows, page_size)
    for number, chunk in enumerate(chunks):
        parts: dict[str, list[Row]] = {
            "customers": [],
            "conversations": [],
            "messages": [],
            "offers": [],
        }
        for key, row in chunk:
            parts[key].append(row)
        pages.append(
            Snapshot(
                page=number,
                last=number == len(chunks) - 1,
                seq=seq,
                customers=tuple(parts["customers"]),
                conversations=tuple(parts["conversations"]),
                messages=tuple(parts["messages"]),
                offers=tuple(parts["offers"]),
                agent_state=state if number == 0 else None,
            )
        )
    log.info(
        "snapshot for %s at seq %d: %d conversations, %d messages, %d pages",
        agent["id"],
        seq,
        len(conversations),
        len(messages),
        len(pages),
    )
    return pages
