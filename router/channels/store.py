"""The channels' own tables, beside the router's, on the same SQLite connection.

Their DDL and migrations are in `router.channels.store_schema` (`migrate` is re-exported
here). Everything here runs on the router's single asyncio thread, inside the caller's
transaction, like `Storage`.

Tables: `channel_threads` (which channel and customer address a conversation replies to),
`email_ids` (Message-ID headers of a conversation, for threading), `channel_deliveries`
(outbound status per message), `inbound_seen` (provider ids already taken in: IMAP UIDs,
Twilio MessageSids, so a retry never doubles a message), `dead_letters`, `attachments`,
`chat_visitors`, `callback_requests`; `surveys` and `sms_opt_outs` (for router.channels.survey).
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from router.channels.store_schema import MIGRATIONS, migrate
from router.storage import Row, Storage

__all__ = ["MIGRATIONS", "RAW_KEEP", "ChannelStore", "migrate"]

log = logging.getLogger(__name__)

RAW_KEEP = 256 * 1024
"""At most this much of a dead letter's input is kept (the rest is counted in `size`)."""


class ChannelStore:
    """Reads and writes of the channel tables (call writes inside a storage transaction)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @property
    def conn(self) -> sqlite3.Connection:
        return self.storage.conn

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Row | None:
        row = self.conn.execute(sql, params).fetchone()
        return dict(row) if row is not None else None

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
        return [dict(r) for r in self.conn.execute(sql, params)]

    # ------------------------------------------------------------------ threads, messages

    def set_thread(
        self, conversation_id: str, channel: str, address: str, subject: str | None
    ) -> None:
        self.conn.execute(
            "INSERT INTO channel_threads (conversation_id, channel, address, subject) "
            "VALUES (?, ?, ?, ?) ON CONFLICT(conversation_id) DO NOTHING",
            (conversation_id, channel, address, subject),
        )

    def thread(self, conversation_id: str) -> Row | None:
        return self._one(
            "SELECT * FROM channel_threads WHERE conversation_id = ?", (conversation_id,)
        )

    def last_inbound_message_id(self, conversation_id: str) -> str:
        row = self._one(
            "SELECT id FROM messages WHERE conversation_id = ? AND direction = 'in' "
            "ORDER BY seq DESC LIMIT 1",
            (conversation_id,),
        )
        assert row is not None, conversation_id
        return str(row["id"])

    def set_html(self, message_id: str, html: str) -> None:
        self.conn.execute("UPDATE messages SET html = ? WHERE id = ?", (html, message_id))

    def undelivered(self, conversation_id: str) -> list[Row]:
        """Agent messages (`out`) of a channel conversation with no delivery row yet."""
        return self._all(
            "SELECT m.id, m.body, m.author, m.created_at FROM messages m "
            "LEFT JOIN channel_deliveries d ON d.message_id = m.id "
            "WHERE m.conversation_id = ? AND m.direction = 'out' AND d.message_id IS NULL "
            "ORDER BY m.seq",
            (conversation_id,),
        )

    def threads_with_undelivered(self) -> list[str]:
        return [
            r["conversation_id"]
            for r in self._all(
                "SELECT DISTINCT t.conversation_id FROM channel_threads t "
                "JOIN messages m ON m.conversation_id = t.conversation_id AND m.direction = 'out' "
                "LEFT JOIN channel_deliveries d ON d.message_id = m.id WHERE d.message_id IS NULL"
            )
        ]

    def chat_messages(self, conversation_id: str) -> list[Row]:
        """What the chat customer may see: their messages and the agents' replies."""
        return self._all(
            "SELECT id, direction, author, body, created_at FROM messages "
            "WHERE conversation_id = ? AND direction IN ('in', 'out') ORDER BY seq",
            (conversation_id,),
        )

    # ------------------------------------------------------------------ email threading

    def add_email_id(
        self,
        header_id: str,
        conversation_id: str,
        message_id: str | None,
        direction: str,
        now: float,
    ) -> None:
        self.conn.execute(
            "INSERT INTO email_ids (header_id, conversation_id, message_id, direction, "
            "created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(header_id) DO NOTHING",
            (header_id, conversation_id, message_id, direction, now),
        )

    def conversation_for_email_ids(self, header_ids: list[str]) -> str | None:
        """The conversation of the newest referenced Message-ID we know."""
        for header_id in reversed(header_ids):
            row = self._one(
                "SELECT conversation_id FROM email_ids WHERE header_id = ?", (header_id,)
            )
            if row is not None:
                return str(row["conversation_id"])
        return None

    def email_ids(self, conversation_id: str) -> list[Row]:
        return self._all(
            "SELECT header_id, direction FROM email_ids WHERE conversation_id = ? "
            "ORDER BY created_at, rowid",
            (conversation_id,),
        )

    # ------------------------------------------------------------------ deliveries

    def claim_delivery(
        self, message_id: str, conversation_id: str, channel: str, now: float
    ) -> None:
        self.conn.execute(
            "INSERT INTO channel_deliveries (message_id, conversation_id, channel, status, "
            "updated_at) VALUES (?, ?, ?, 'sending', ?)",
            (message_id, conversation_id, channel, now),
        )

    def set_delivery(
        self,
        message_id: str,
        status: str,
        now: float,
        provider_id: str | None = None,
        error: str | None = None,
    ) -> None:
        self.conn.execute(
            "UPDATE channel_deliveries SET status = ?, updated_at = ?, "
            "provider_id = COALESCE(?, provider_id), error = ? WHERE message_id = ?",
            (status, now, provider_id, error, message_id),
        )

    def delivery_by_provider_id(self, provider_id: str) -> Row | None:
        return self._one("SELECT * FROM channel_deliveries WHERE provider_id = ?", (provider_id,))

    def deliveries(self, conversation_id: str) -> list[Row]:
        return self._all(
            "SELECT message_id, channel, status, provider_id, error, updated_at "
            "FROM channel_deliveries WHERE conversation_id = ? ORDER BY updated_at",
            (conversation_id,),
        )

    # ------------------------------------------------------------------ inbound dedup

    def seen(self, channel: str, external_id: str) -> bool:
        return (
            self._one(
                "SELECT 1 AS x FROM inbound_seen WHERE channel = ? AND external_id = ?",
                (channel, external_id),
            )
            is not None
        )

    def mark_seen(
        self, channel: str, external_id: str, conversation_id: str | None, now: float
    ) -> None:
        self.conn.execute(
            "INSERT INTO inbound_seen (channel, external_id, conversation_id, at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (channel, external_id, conversation_id, now),
        )

    # ------------------------------------------------------------------ dead letters

    def add_dead_letter(
        self,
        channel: str,
        reason: str,
        detail: str,
        raw: bytes,
        now: float,
        source: str | None = None,
        size: int | None = None,
    ) -> int:
        cur = self.conn.execute(
            "INSERT INTO dead_letters (channel, received_at, reason, detail, source, size, raw) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                channel,
                now,
                reason,
                detail,
                source,
                len(raw) if size is None else size,
                raw[:RAW_KEEP],
            ),
        )
        return int(cur.lastrowid or 0)

    def dead_letters(self, limit: int = 100, before: int | None = None) -> list[Row]:
        """Newest first, without the raw input (see `dead_letter_raw`)."""
        return self._all(
            "SELECT id, channel, received_at, reason, detail, source, size, "
            "length(raw) AS kept FROM dead_letters WHERE id < ? ORDER BY id DESC LIMIT ?",
            (before if before is not None else 2**62, limit),
        )

    def dead_letter_raw(self, letter_id: int) -> bytes | None:
        row = self._one("SELECT raw FROM dead_letters WHERE id = ?", (letter_id,))
        return None if row is None else bytes(row["raw"] or b"")

    # ------------------------------------------------------------------ attachments

    def add_attachment(
        self,
        attachment_id: str,
        message_id: str,
        conversation_id: str,
        filename: str,
        content_type: str,
        data: bytes,
    ) -> None:
        self.conn.execute(
            "INSERT INTO attachments (id, message_id, conversation_id, filename, content_type, "
            "size, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (attachment_id, message_id, conversation_id, filename, content_type, len(data), data),
        )

    def attachments(self, conversation_id: str) -> list[Row]:
        return self._all(
            "SELECT id, message_id, filename, content_type, size FROM attachments "
            "WHERE conversation_id = ? ORDER BY rowid",
            (conversation_id,),
        )

    def attachment(self, attachment_id: str) -> Row | None:
        return self._one("SELECT * FROM attachments WHERE id = ?", (attachment_id,))

    # ------------------------------------------------------------------ chat, callbacks

    def add_visitor(self, visitor_id: str, secret_hash: str, now: float) -> None:
        self.conn.execute(
            "INSERT INTO chat_visitors (visitor_id, secret_hash, created_at) VALUES (?, ?, ?)",
            (visitor_id, secret_hash, now),
        )

    def visitor_secret_hash(self, visitor_id: str) -> str | None:
        row = self._one("SELECT secret_hash FROM chat_visitors WHERE visitor_id = ?", (visitor_id,))
        return None if row is None else str(row["secret_hash"])

    def add_callback_request(
        self,
        request_id: str,
        conversation_id: str,
        customer_id: str,
        channel: str,
        phone: str,
        note: str | None,
        now: float,
    ) -> None:
        self.conn.execute(
            "INSERT INTO callback_requests (id, conversation_id, customer_id, channel, phone, "
            "note, status, created_at) VALUES (?, ?, ?, ?, ?, ?, 'requested', ?)",
            (request_id, conversation_id, customer_id, channel, phone, note, now),
        )

    def callback_requests(self, limit: int = 100) -> list[Row]:
        return self._all(
            "SELECT * FROM callback_requests ORDER BY created_at DESC LIMIT ?", (limit,)
        )

    # ------------------------------------------------------------------ surveys, SMS opt-outs

    def add_survey(self, conversation_id: str, channel: str, address: str, now: float) -> bool:
        """Record that the customer was asked; False when this conversation already was."""
        return bool(
            self.conn.execute(
                "INSERT INTO surveys (conversation_id, channel, address, asked_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(conversation_id) DO NOTHING",
                (conversation_id, channel, address, now),
            ).rowcount
        )

    def pending_survey(self, channel: str, address: str, since: float) -> Row | None:
        """The newest unanswered survey of this address asked at `since` or later."""
        return self._one(
            "SELECT * FROM surveys WHERE channel = ? AND address = ? AND score IS NULL "
            "AND asked_at >= ? ORDER BY asked_at DESC LIMIT 1",
            (channel, address, since),
        )

    def set_survey_score(self, conversation_id: str, score: int, now: float) -> bool:
        """Record the answer; False when the survey was already answered."""
        return bool(
            self.conn.execute(
                "UPDATE surveys SET score = ?, answered_at = ? "
                "WHERE conversation_id = ? AND score IS NULL",
                (score, now, conversation_id),
            ).rowcount
        )

    def sms_opted_out(self, number: str) -> bool:
        return self._one("SELECT 1 AS x FROM sms_opt_outs WHERE number = ?", (number,)) is not None

    def set_sms_opt_out(self, number: str, opted_out: bool, now: float) -> None:
        if opted_out:
            self.conn.execute(
                "INSERT INTO sms_opt_outs (number, at) VALUES (?, ?) "
                "ON CONFLICT(number) DO UPDATE SET at = excluded.at",
                (number, now),
            )
        else:
            self.conn.execute("DELETE FROM sms_opt_outs WHERE number = ?", (number,))

    # ------------------------------------------------------------------ customers

    def customer_conversation_ids(self, customer_id: str) -> list[str]:
        return [
            r["id"]
            for r in self._all(
                "SELECT id FROM conversations WHERE customer_id = ? ORDER BY created_at, id",
                (customer_id,),
            )
        ]
