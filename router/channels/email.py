"""Email: IMAP in (IDLE-woken polling), SMTP out, threads by Message-ID / In-Reply-To /
References.

`imaplib` and `smtplib` block, so they run in worker threads (`asyncio.to_thread`) and hand
bytes back; everything that touches the database runs on the router's loop. A message is
marked `\\Seen` on the server only after it is stored or dead-lettered, and the mailbox's
UIDVALIDITY/UID is recorded in the same transaction, so a crash in between re-reads it without
doubling it. Messages over the size limit are never downloaded whole: their headers go to the
dead letters with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import logging
import re
import smtplib
import ssl
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesHeaderParser

from router.channels import email_mime
from router.channels.config import EmailConfig
from router.channels.imap_idle import IdleWatcher
from router.channels.inbound import Delivered, InboundMessage, dead_letter, deliver
from router.channels.outbound import DeliveryError, Outbound, Sent
from router.channels.store import ChannelStore
from router.service import Service
from router.storage import Row

log = logging.getLogger(__name__)

_BATCH = 50
_MAX_BACKOFF = 60.0
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


@dataclass
class Fetched:
    uid: str
    size: int
    data: bytes
    """The whole message, or only its header block when `too_large`."""
    too_large: bool


class ImapMailbox:
    """One IMAP connection to one mailbox (blocking; used from a worker thread)."""

    def __init__(self, config: EmailConfig) -> None:
        self.config = config
        self.conn: imaplib.IMAP4 | None = None
        self.uidvalidity = ""

    def _open(self) -> imaplib.IMAP4:
        cfg = self.config
        conn: imaplib.IMAP4
        if cfg.imap_ssl:
            conn = imaplib.IMAP4_SSL(
                cfg.imap_host, cfg.imap_port, timeout=30, ssl_context=ssl.create_default_context()
            )
        else:
            conn = imaplib.IMAP4(cfg.imap_host, cfg.imap_port, timeout=30)
        conn.login(cfg.imap_user, cfg.imap_password.reveal())
        typ, _ = conn.select(cfg.mailbox)
        if typ != "OK":
            conn.logout()
            raise imaplib.IMAP4.error(f"cannot select mailbox {cfg.mailbox!r}")
        _, values = conn.response("UIDVALIDITY")
        self.uidvalidity = (values[0] or b"0").decode() if values else "0"
        log.info("IMAP connected to %s:%s mailbox %s", cfg.imap_host, cfg.imap_port, cfg.mailbox)
        return conn

    def fetch_new(self) -> list[Fetched]:
        """Unseen messages (up to a batch), whole or, over the size limit, headers only.

        Raises:
            imaplib.IMAP4.error, OSError: the server refused or the connection broke (the
                connection is dropped and reopened next time).
        """
        try:
            if self.conn is None:
                self.conn = self._open()
            else:
                self.conn.noop()
            return self._fetch(self.conn)
        except (imaplib.IMAP4.error, OSError):
            self.close()
            raise

    def _fetch(self, conn: imaplib.IMAP4) -> list[Fetched]:
        typ, data = conn.uid("SEARCH", "UNSEEN")
        if typ != "OK":
            raise imaplib.IMAP4.error(f"UID SEARCH failed: {typ}")
        out = []
        for uid in (data[0] or b"").split()[:_BATCH]:
            uid_s = uid.decode()
            typ, meta = conn.uid("FETCH", uid_s, "(RFC822.SIZE)")
            match = _SIZE.search(b" ".join(m for m in meta if isinstance(m, bytes)))
            if typ != "OK" or match is None:
                raise imaplib.IMAP4.error(f"UID FETCH {uid_s} size failed")
            size = int(match.group(1))
            too_large = size > self.config.max_bytes
            what = "(BODY.PEEK[HEADER])" if too_large else "(BODY.PEEK[])"
            typ, parts = conn.uid("FETCH", uid_s, what)
            body = next((p[1] for p in parts if isinstance(p, tuple)), None)
            if typ != "OK" or body is None:
                raise imaplib.IMAP4.error(f"UID FETCH {uid_s} body failed")
            out.append(Fetched(uid_s, size, bytes(body), too_large))
        return out

    def mark_seen(self, uids: list[str]) -> None:
        """Flag messages `\\Seen` so the next search skips them.

        Raises:
            imaplib.IMAP4.error, OSError: as `fetch_new`.
        """
        if self.conn is None or not uids:
            return
        typ, _ = self.conn.uid("STORE", ",".join(uids), "+FLAGS", "(\\Seen)")
        if typ != "OK":
            raise imaplib.IMAP4.error("UID STORE \\Seen failed")

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.logout()
            except (imaplib.IMAP4.error, OSError) as exc:
                log.debug("IMAP logout failed: %s", exc)


def send_smtp(config: EmailConfig, msg: EmailMessage) -> None:
    """Hand one message to the SMTP server (blocking).

    Raises:
        smtplib.SMTPException, OSError: refused or unreachable.
    """
    with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=30) as smtp:
        if config.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if config.smtp_user and config.smtp_password is not None:
            smtp.login(config.smtp_user, config.smtp_password.reveal())
        smtp.send_message(msg)


class EmailChannel:
    """The IMAP poller and the SMTP sender of one mailbox."""

    def __init__(self, service: Service, config: EmailConfig, outbound: Outbound) -> None:
        self.service = service
        self.config = config
        self.store = ChannelStore(service.storage)
        self.mailbox = ImapMailbox(config)
        self.wake = asyncio.Event()
        """Set by the IDLE watcher when the server announces new mail."""
        self.domain = config.address.rpartition("@")[2] or "switchboard.invalid"
        outbound.senders["email"] = self.send

    async def start(self, service: Service) -> None:
        service.spawn(self._poll_forever(), "email-imap-poll")
        service.spawn(IdleWatcher(self.config, self.wake).run(), "email-imap-idle")

    async def _poll_forever(self) -> None:
        backoff = 1.0
        try:
            while True:
                self.wake.clear()
                try:
                    more = await self.poll_once()
                    backoff = 1.0
                except (imaplib.IMAP4.error, OSError) as exc:
                    log.warning(
                        "IMAP poll of %s failed (%s); retrying in %.0fs",
                        self.config.imap_host,
                        exc,
                        backoff,
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(_MAX_BACKOFF, backoff * 2)
                    continue
                if not more:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), self.config.poll_interval)
        finally:
            await asyncio.to_thread(self.mailbox.close)

    async def poll_once(self) -> bool:
        """Take in one batch of unseen mail; True when a full batch suggests more.

        Raises:
            imaplib.IMAP4.error, OSError: the IMAP server failed (retried with backoff).
        """
        fetched = await asyncio.to_thread(self.mailbox.fetch_new)
        for item in fetched:
            self.take(item, f"{self.config.mailbox}:{self.mailbox.uidvalidity}:{item.uid}")
        await asyncio.to_thread(self.mailbox.mark_seen, [f.uid for f in fetched])
        return len(fetched) >= _BATCH

    def take(self, item: Fetched, external_id: str) -> None:
        """Store one fetched message or dead-letter it; never raises for bad input."""
        if self.store.seen("email", external_id):
            return
        if item.too_large:
            self._dead(
                item,
                external_id,
                "too_large",
                f"{item.size} bytes, over the {self.config.max_bytes}-byte limit (headers kept)",
            )
            return
        try:
            parsed = email_mime.parse(
                item.data, self.config.max_attachment_bytes, self.config.max_attachments
            )
        except email_mime.MimeError as exc:
            self._dead(item, external_id, exc.reason, exc.detail)
            return
        if self.store.conversation_for_email_ids([parsed.message_id]) is not None:
            log.info("email %s already taken in (same Message-ID); skipped", external_id)
            with self.service.storage.transaction():
                self.store.mark_seen("email", external_id, None, self.service.clock())
            return
        thread = self.store.conversation_for_email_ids(parsed.references)
        message = InboundMessage(
            channel="email",
            address=parsed.sender,
            name=parsed.name,
            body=email_mime.agent_body(parsed),
            queue=self.config.queue,
            subject=parsed.subject or None,
            html=parsed.html,
            thread=thread,
            attachments=parsed.attachments,
            external_id=external_id,
        )

        def record_id(store: ChannelStore, delivered: Delivered) -> None:
            store.add_email_id(
                parsed.message_id,
                delivered.conversation_id,
                delivered.message_id,
                "in",
                self.service.clock(),
            )

        try:
            deliver(self.service, message, record_id)
        except Exception as exc:
            # Not the sender's fault (a database error, a bug): keep the mail where an admin
            # sees it, so the mailbox does not stall on it and it is not lost.
            log.exception("storing email %s failed", external_id)
            self._dead(item, external_id, "internal", f"{type(exc).__name__}: {exc}")

    def _dead(self, item: Fetched, external_id: str, reason: str, detail: str) -> None:
        try:
            headers = BytesHeaderParser().parsebytes(item.data)
            source = str(headers.get("from", "")) or None
        except (ValueError, TypeError, LookupError):
            source = None
        dead_letter(self.service, "email", reason, detail, item.data, source, item.size)
        with self.service.storage.transaction():
            self.store.mark_seen("email", external_id, None, self.service.clock())

    async def send(self, thread: Row, message: Row) -> Sent:
        """An outbound sender (`Outbound.senders["email"]`).

        Raises:
            DeliveryError: the SMTP server refused or could not be reached.
        """
        conversation_id = thread["conversation_id"]
        ids = self.store.email_ids(conversation_id)
        inbound = [row["header_id"] for row in ids if row["direction"] == "in"]
        header_id = f"{uuid.uuid4().hex}@{self.domain}"
        msg = email_mime.build_reply(
            self.config.address,
            thread["address"],
            thread["subject"],
            message["body"],
            header_id,
            [row["header_id"] for row in ids],
            inbound[-1] if inbound else None,
        )
        with self.service.storage.transaction():
            self.store.add_email_id(
                header_id, conversation_id, message["id"], "out", self.service.clock()
            )
        try:
            await asyncio.to_thread(send_smtp, self.config, msg)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"the mail server refused it ({type(exc).__name__}: {exc})"
            ) from exc
        return Sent("sent", header_id)
