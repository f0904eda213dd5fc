"""The agent's actions on their way to the router: written first, sent later, settled by acks.

What the agent does is written to the cache and to the outbox in ONE transaction before
anything goes on the wire, so it shows at once (a message marked 'sending') and survives a
crash, a kill or a lost connection. The engine sends the outbox in `pos` order when the
session is live; the router's ack settles the row (and the message) in one transaction.
A command id is made once, when the agent acts, so a resend after a reconnect is recognised
by the router and never acts twice.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from sync.apply import refresh_conversation
from sync.protocol import AckError, Command, make_command, new_id
from sync.store import atomic

log = logging.getLogger(__name__)

MESSAGE_COMMANDS = frozenset({"send_message", "add_note"})
OFFER_COMMANDS = frozenset({"accept", "decline"})


@dataclass(frozen=True)
class Queued:
    """A command written to the outbox; `message_id` is set for messages and notes."""

    command: Command
    message_id: str | None = None
    conversation_id: str | None = None


@dataclass(frozen=True)
class Settled:
    """An ack applied to the cache."""

    command_id: str
    name: str
    ok: bool
    conversation_id: str | None
    message_id: str | None
    error: AckError | None


def _insert(
    db: sqlite_utils.Database, command: Command, conversation_id: str | None, now: float
) -> None:
    db.execute(
        "INSERT INTO outbox (pos, id, name, args, conversation_id, created_at, attempts) "
        "VALUES ((SELECT COALESCE(MAX(pos), 0) + 1 FROM outbox), ?, ?, ?, ?, ?, 0)",
        [command.id, command.name, json.dumps(dict(command.args)), conversation_id, now],
    )


def queue_message(
    db: sqlite_utils.Database,
    conversation_id: str,
    body: str,
    *,
    author: str,
    now: float,
    note: bool = False,
    message_id: str | None = None,
) -> Queued:
    """Write the agent's reply (or internal note) to the thread and the outbox, atomically.

    The message row has status 'sending', the local time and no seq until the router acks it.

    Args:
        author: shown on the agent's own message until the router's copy replaces it.
        now: local time for the row and the outbox.
        note: an internal note (`add_note`, direction 'note') rather than a reply.
        message_id: reuse an id (a retry of a failed message); a fresh UUID by default.

    Raises:
        sync.protocol.ProtocolError: the body is empty or over MAX_BODY_CHARS (nothing written).
        LookupError: no such conversation in the cache (nothing written).
    """
    mid = message_id or new_id()
    name = "add_note" if note else "send_message"
    args: dict[str, Any] = {"conversation_id": conversation_id, "message_id": mid, "body": body}
    if not note:
        args["format"] = "text"
    command = make_command(name, args)
    with atomic(db):
        if not db.execute("SELECT 1 FROM conversations WHERE id = ?", [conversation_id]).fetchone():
            raise LookupError(f"No conversation {conversation_id} in the cache.")
        db.execute(
            "INSERT INTO messages (id, conversation_id, seq, direction, author, body, html, "
            "attachments, created_at, status, error) "
            "VALUES (?, ?, NULL, ?, ?, ?, NULL, NULL, ?, 'sending', NULL) "
            "ON CONFLICT(id) DO UPDATE SET status = 'sending', error = NULL, "
            "body = excluded.body, created_at = excluded.created_at",
            [mid, conversation_id, "note" if note else "out", author, body, now],
        )
        refresh_conversation(db, conversation_id)
        _insert(db, command, conversation_id, now)
        # What the composer held is now this message: its draft must not come back after a
        # crash as well (the UI's own debounced "draft cleared" may never get written).
        db.execute("DELETE FROM drafts WHERE conversation_id = ?", [conversation_id])
    return Queued(command, mid, conversation_id)


def retry_message(db: sqlite_utils.Database, message_id: str, *, author: str, now: float) -> Queued:
    """Queue a failed message again, as a new command with the same message id.

    Raises:
        LookupError: no such message, or it is not 'failed'.
    """
    row = db.execute(
        "SELECT conversation_id, direction, body FROM messages WHERE id = ? AND status = 'failed'",
        [message_id],
    ).fetchone()
    if row is None:
        raise LookupError(f"No failed message {message_id} to send again.")
    return queue_message(
        db, row[0], row[2], author=author, now=now, note=row[1] == "note", message_id=message_id
    )


def queue_command(
    db: sqlite_utils.Database,
    name: str,
    args: dict[str, Any],
    *,
    now: float,
    conversation_id: str | None = None,
) -> Queued:
    """Write any other command (set_state, accept, decline, transfer, ...) to the outbox.

    Raises:
        sync.protocol.ProtocolError: bad name or arguments (nothing written).
    """
    command = make_command(name, args)
    conv = conversation_id or args.get("conversation_id")
    with atomic(db):
        _insert(db, command, conv, now)
    return Queued(command, None, conv)


def pending(db: sqlite_utils.Database) -> list[Command]:
    """The outbox in send order."""
    return [
        Command(row[0], row[1], json.loads(row[2]))
        for row in db.execute("SELECT id, name, args FROM outbox ORDER BY pos").fetchall()
    ]


def count(db: sqlite_utils.Database) -> int:
    return int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])


def note_sent(db: sqlite_utils.Database, command_id: str) -> None:
    """Count a send attempt (diagnostics: a command sent many times is stuck somewhere)."""
    with atomic(db):
        db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", [command_id])


def settle(
    db: sqlite_utils.Database,
    command_id: str,
    ok: bool,
    result: dict[str, Any],
    error: AckError | None,
) -> Settled | None:
    """Apply the router's ack, in one transaction; None when no outbox row waits for it
    (a repeated ack).

    ok: the message becomes 'sent' with the router's seq. Refused: it becomes 'failed' with the
    router's message in `error`, and keeps its text. Either way the outbox row goes: a refusal
    is final. An answered accept/decline also removes the offer, which is no longer actionable.
    """
    with atomic(db):
        row = db.execute(
            "SELECT name, args, conversation_id FROM outbox WHERE id = ?", [command_id]
        ).fetchone()
        if row is None:
            return None
        name, args, conv = row[0], json.loads(row[1]), row[2]
        db.execute("DELETE FROM outbox WHERE id = ?", [command_id])
        message_id = args.get("message_id") if name in MESSAGE_COMMANDS else None
        if message_id:
            seq = result.get("seq") if ok else None
            db.execute(
                "UPDATE messages SET status = ?, error = ?, seq = COALESCE(?, seq) WHERE id = ?",
                [
                    "sent" if ok else "failed",
                    None if ok else (error.message if error else None),
                    seq if isinstance(seq, int) else None,
                    message_id,
                ],
            )
            refresh_conversation(db, args["conversation_id"])
        if name in OFFER_COMMANDS:
            db.execute("DELETE FROM offers WHERE id = ?", [args["offer_id"]])
        if name == "accept" and ok and isinstance(result.get("conversation_id"), str):
            conv = result["conversation_id"]
    if not ok:
        log.info(
            "command %s (%s) refused: %s", command_id, name, error.code if error else "no reason"
        )
    return Settled(command_id, name, ok, conv, message_id, error)


def save_draft(db: sqlite_utils.Database, conversation_id: str, body: str, *, now: float) -> bool:
    """Keep (or, for blank text, forget) the composer's draft; True when something changed.

    Drafts live beside the outbox because they are the same kind of data: what the agent
    wrote that the router does not have yet, rescued with the outbox if the cache is rebuilt.
    """
    with atomic(db):
        if body.strip():
            cur = db.execute(
                "INSERT INTO drafts (conversation_id, body, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(conversation_id) DO UPDATE SET body = excluded.body, "
                "updated_at = excluded.updated_at WHERE drafts.body != excluded.body",
                [conversation_id, body, now],
            )
        else:
            cur = db.execute("DELETE FROM drafts WHERE conversation_id = ?", [conversation_id])
    return bool(cur.rowcount)
