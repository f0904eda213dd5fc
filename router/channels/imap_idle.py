"""IMAP IDLE (RFC 2177): a second, read-only connection that waits for the server to announce
new mail, so a customer's email reaches the queue in about a second instead of a poll
interval. It only wakes the poller (`EmailChannel`), which still does all the fetching, so a
watcher that fails or a server without IDLE just leaves the plain polling in charge.

It speaks the few commands it needs over asyncio streams (the stdlib `imaplib` has no IDLE
before Python 3.14, and a blocking socket in a thread could not be cancelled at shutdown).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import ssl

from router.channels.config import EmailConfig

log = logging.getLogger(__name__)

_REISSUE = 25 * 60.0
"""Seconds before IDLE is restarted (servers may drop an IDLE after 30 minutes)."""
_CHANGE = re.compile(rb"^\* \d+ (EXISTS|RECENT)\b", re.IGNORECASE)
_MAX_BACKOFF = 60.0


class ImapIdleError(Exception):
    """The server refused a command or broke the conversation."""


class IdleWatcher:
    """Sets `wake` whenever the mailbox reports new messages."""

    def __init__(self, config: EmailConfig, wake: asyncio.Event) -> None:
        self.config = config
        self.wake = wake
        self._tag = 0
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def run(self) -> None:
        """Watch until cancelled, reconnecting with backoff; return if the server has no
        IDLE (polling alone then)."""
        backoff = 1.0
        while True:
            try:
                if not await self._session():
                    log.info(
                        "IMAP server has no IDLE: polling every %.0fs", self.config.poll_interval
                    )
                    return
            except (ImapIdleError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                log.warning("IMAP IDLE watch failed (%s); retrying in %.0fs", exc, backoff)
            finally:
                await self._close()
            self.wake.set()  # whatever changed while we were away is fetched now
            await asyncio.sleep(backoff)
            backoff = min(_MAX_BACKOFF, backoff * 2)

    async def _session(self) -> bool:
        cfg = self.config
        context = ssl.create_default_context() if cfg.imap_ssl else None
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(cfg.imap_host, cfg.imap_port, ssl=context), 30
        )
        greeting = await self._line()
        if not greeting.startswith(b"* OK"):
            raise ImapIdleError("unexpected greeting")
        capabilities = await self._command(b"CAPABILITY")
        if b"IDLE" not in b" ".join(capabilities).upper().split():
            return False
        await self._authenticate()
        await self._command(b"EXAMINE " + _quote(cfg.mailbox))
        log.info("IMAP IDLE watching %s on %s", cfg.mailbox, cfg.imap_host)
        while True:
            await self._idle_once()

    async def _idle_once(self) -> None:
        tag = self._next_tag()
        await self._send(tag + b" IDLE")
        line = await self._line()
        if not line.startswith(b"+"):
            raise ImapIdleError(f"IDLE refused: {line[:80]!r}")
        loop = asyncio.get_running_loop()
        end = loop.time() + _REISSUE
        while True:
            left = end - loop.time()
            if left <= 0:
                break
            try:
                line = await asyncio.wait_for(self._line(), left)
            except TimeoutError:
                break
            if _CHANGE.match(line):
                self.wake.set()
                break
        await self._send(b"DONE")
        await self._until_tagged(tag)

    async def _authenticate(self) -> None:
        cfg = self.config
        token = base64.b64encode(
            b"\0" + cfg.imap_user.encode() + b"\0" + cfg.imap_password.reveal().encode()
        )
        tag = self._next_tag()
        await self._send(tag + b" AUTHENTICATE PLAIN")
        line = await self._line()
        if not line.startswith(b"+"):
            raise ImapIdleError("AUTHENTICATE PLAIN refused")
        await self._send(token)
        await self._until_tagged(tag)

    async def _command(self, command: bytes) -> list[bytes]:
        tag = self._next_tag()
        await self._send(tag + b" " + command)
        return await self._until_tagged(tag)

    async def _until_tagged(self, tag: bytes) -> list[bytes]:
        untagged: list[bytes] = []
        while True:
            line = await self._line()
            if line.startswith(tag + b" "):
                if line[len(tag) + 1 :].upper().startswith(b"OK"):
                    return untagged
                # The server's words, not ours: they never hold the password we sent.
                raise ImapIdleError(line[len(tag) + 1 :][:120].decode("ascii", "replace"))
            if _CHANGE.match(line):
                self.wake.set()
            untagged.append(line)

    def _next_tag(self) -> bytes:
        self._tag += 1
        return b"w%d" % self._tag

    async def _send(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data + b"\r\n")
        await self.writer.drain()

    async def _line(self) -> bytes:
        assert self.reader is not None
        line = await self.reader.readuntil(b"\r\n")
        return line.rstrip(b"\r\n")

    async def _close(self) -> None:
        writer, self.writer, self.reader = self.writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, ssl.SSLError) as exc:
                log.debug("IMAP IDLE close: %s", exc)


def _quote(text: str) -> bytes:
    return b'"' + text.replace("\\", "\\\\").replace('"', '\\"').encode("utf-8") + b'"'
