"""A seeded cache file for screenshots and GUI tests.

Why: the window must be judged (and tested) on a real SQLite file with the real schema, made
by `sync.store.open_store`, without waiting for a router. The content is deterministic (a
fixed random seed and a fixed `now`) so screenshots are comparable between runs.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from pathlib import Path

from sync.store import atomic, open_store

AGENT_ID = "a-ana"

_FIRST = [
    "Maria",
    "João",
    "Aisha",
    "Liam",
    "Sofia",
    "Kenji",
    "Olivia",
    "Mateo",
    "Priya",
    "Lucas",
    "Emma",
    "Noah",
    "Fatima",
    "Hugo",
    "Chloé",
    "Ibrahim",
    "Hannah",
    "Diego",
    "Yuki",
    "Elena",
]
_LAST = [
    "Souza",
    "Okafor",
    "Nakamura",
    "Schmidt",
    "Rossi",
    "Novak",
    "Haddad",
    "Jensen",
    "Costa",
    "Lindqvist",
    "Moreau",
    "Patel",
    "García",
    "Kowalski",
    "O'Brien",
    "Fischer",
    "Silva",
    "Ito",
]
_OPENERS = {
    "email": [
        "Invoice INV-20931 shows a charge I don't recognise",
        "Request to change the billing address on our account",
        "Follow-up: replacement router still not delivered",
        "Cancel my subscription at the end of the month, please",
        "Question about the annual plan discount",
    ],
    "chat": [
        "Hi, my order hasn't arrived and tracking says delivered",
        "Can I upgrade my plan without losing my number?",
        "The app keeps logging me out since this morning",
        "Is there a way to pause my account for two months?",
        "Hello? I've been charged twice for the same order",
    ],
    "sms": [
        "Got your text about the outage. Is it fixed yet?",
        "Yes, tomorrow between 9 and 12 works for the technician",
        "STOP sending me promos but keep service alerts pls",
        "My code didn't arrive, can you resend?",
    ],
    "voice": ["Missed call, voicemail: asks for a call back about the contract renewal"],
}
_REPLIES = [
    "Thanks for reaching out! I'm looking into this for you right now.",
    "I can see the order in our system. One moment while I check with the carrier.",
    "I've refunded the duplicate charge; you'll see it in 3-5 business days.",
    "Could you confirm the last four digits of the card on the account?",
]
_FOLLOWUPS = [
    "Thank you, that would be great.",
    "It ends in 4821.",
    "Any news? It's been a while.",
    "Perfect, thanks for the quick help!",
]


def seed_cache(path: Path | str, conversations: int = 60, now: float | None = None) -> Path:
    """Create (or add to) a cache at `path` with `conversations` realistic conversations.

    Args:
        path: the SQLite file to create; its folder is made if missing.
        conversations: how many conversations to write (tests use thousands to check paging).
        now: the clock the seeded times count back from (default: the current time).
    """
    rng = random.Random(7)
    now = time.time() if now is None else now
    db = open_store(path)
    conn = db.conn
    channels = ["chat", "email", "sms", "chat", "email", "voice"]
    with atomic(db):
        conn.execute(
            "INSERT OR REPLACE INTO agent_state (agent_id, state, reason, since) "
            "VALUES (?, 'available', NULL, ?)",
            [AGENT_ID, now - 1800],
        )
        for i in range(conversations):
            cust = f"cu-{i}"
            name = f"{_FIRST[i % len(_FIRST)]} {_LAST[(i * 7) % len(_LAST)]}"
            channel = channels[i % len(channels)]
            conn.execute(
                "INSERT OR REPLACE INTO customers (id, name, created_at) VALUES (?, ?, ?)",
                [cust, name, now - 86400 * 30],
            )
            handle = name.lower().replace(" ", ".").replace("'", "")
            idents = [("email", f"{handle}@example.com"), ("phone", f"+1555{i:07d}")]
            if channel == "chat":
                idents.append(("chat", f"visitor-{1000 + i}"))
            for kind, value in idents:
                conn.execute(
                    "INSERT OR REPLACE INTO identities (kind, value, customer_id) VALUES (?,?,?)",
                    [kind, value, cust],
                )
            # Spread activity over the last days; the first rows are the freshest.
            last = now - (i * i * 37 + rng.randint(5, 90))
            opener = rng.choice(_OPENERS[channel])
            status = "queued" if i % 5 == 3 else ("closed" if i > 40 and i % 3 == 0 else "assigned")
            assigned = AGENT_ID if status == "assigned" else None
            conv = f"c-{i}"
            msgs: list[tuple[str, str, str]] = [("in", name, opener)]
            if i % 2 == 0 and channel != "voice":
                msgs.append(("out", "Ana Lima", _REPLIES[i % len(_REPLIES)]))
                msgs.append(("in", name, _FOLLOWUPS[i % len(_FOLLOWUPS)]))
            if i % 4 == 1:
                msgs.append(("out", "Ana Lima", _REPLIES[(i + 1) % len(_REPLIES)]))
            step = 95.0
            start = last - step * (len(msgs) - 1)
            last_in = max(start + k * step for k, m in enumerate(msgs) if m[0] == "in")
            conn.execute(
                "INSERT OR REPLACE INTO conversations (id, channel, customer_id, queue, status, "
                "assigned_agent, subject, created_at, updated_at, last_inbound_at, "
                "last_message_at, last_message_preview, sla_due, unread) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    conv,
                    channel,
                    cust,
                    "support" if i % 3 else "sales",
                    status,
                    assigned,
                    opener if channel == "email" else None,
                    start,
                    last,
                    last_in,
                    last,
                    msgs[-1][2],
                    last_in + 3600,
                    1 if msgs[-1][0] == "in" and i % 3 != 2 else 0,
                ],
            )
            for k, (direction, author, body) in enumerate(msgs):
                conn.execute(
                    "INSERT OR REPLACE INTO messages (id, conversation_id, seq, direction, "
                    "author, body, html, attachments, created_at, status, error) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    [
                        str(uuid.UUID(int=rng.getrandbits(128))),
                        conv,
                        k + 1,
                        direction,
                        author,
                        body,
                        None,
                        json.dumps([{"name": "receipt.pdf", "size": 48213}])
                        if channel == "email" and k == 0 and i % 2 == 0
                        else None,
                        start + k * step,
                        "sent" if direction != "in" else None,
                        None,
                    ],
                )
    db.conn.close()
    return Path(path)


def add_offer(
    path: Path | str, conversation_id: str, expires_at: float, now: float, preview: str = ""
) -> str:
    """Write one pending offer for an existing seeded conversation; return its id."""
    db = open_store(path)
    row = db.execute(
        "SELECT c.channel, c.queue, cu.name, c.last_message_preview FROM conversations c "
        "JOIN customers cu ON cu.id = c.customer_id WHERE c.id = ?",
        [conversation_id],
    ).fetchone()
    offer_id = f"o-{conversation_id}"
    with atomic(db):
        db.execute(
            "INSERT OR REPLACE INTO offers (id, conversation_id, channel, queue, customer_name, "
            "preview, expires_at, received_at) VALUES (?,?,?,?,?,?,?,?)",
            [offer_id, conversation_id, row[0], row[1], row[2], preview or row[3], expires_at, now],
        )
    db.conn.close()
    return offer_id


def add_local_messages(path: Path | str, conversation_id: str, now: float) -> None:
    """Add one 'sending' and one 'not sent' agent message, as the outbox would leave them."""
    db = open_store(path)
    with atomic(db):
        top = db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE conversation_id = ?",
            [conversation_id],
        ).fetchone()[0]
        db.execute(
            "INSERT INTO messages (id, conversation_id, seq, direction, author, body, "
            "created_at, status) VALUES (?,?,?,'note','Ana Lima',?,?,'sent')",
            [
                str(uuid.uuid4()),
                conversation_id,
                top + 1,
                "Customer is on the legacy plan: check the contract before promising the upgrade.",
                now - 60,
            ],
        )
        for status, body, error in (
            (
                "failed",
                "I've issued a replacement order, it ships tomorrow.",
                "This conversation is assigned to another agent.",
            ),
            ("sending", "Let me know if anything else comes up!", None),
        ):
            db.execute(
                "INSERT INTO messages (id, conversation_id, seq, direction, author, body, "
                "created_at, status, error) VALUES (?,?,NULL,'out','Ana Lima',?,?,?,?)",
                [str(uuid.uuid4()), conversation_id, body, now - 20, status, error],
            )
    db.conn.close()
