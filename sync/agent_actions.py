"""The agent's actions on `SyncEngine`: each written to the cache and the outbox first.

Why a mixin of its own: these are the engine's public verbs (reply, note, accept, transfer,
wrap up, ...), all the same shape: the UI thread calls them, they hand a coroutine to the
sync loop and return a future; on the loop the write lands in the cache and the outbox in
one transaction and is then offered to the connection if there is one. Keeping them apart
from the connection pump keeps both readable; they share only the few engine parts named in
the `TYPE_CHECKING` block below.
"""

from __future__ import annotations

import concurrent.futures
import logging
import sqlite3
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from sync import outbox
from sync.apply import mark_read
from sync.changes import Change, DataChanged, ProtocolIssue
from sync.http_actions import HttpActionError, get_team, post_typing
from sync.recovery import DISK_FULL_MESSAGE, DiskFullError, is_corrupt, is_disk_full

if TYPE_CHECKING:
    import asyncio

    import sqlite_utils

    from sync.effects import SessionEffects

log = logging.getLogger("sync.client")
T = TypeVar("T")


class AgentActions:
    """The public verbs of `SyncEngine` and their coroutines on the sync loop."""

    if TYPE_CHECKING:
        base_url: str
        _loop: asyncio.AbstractEventLoop
        _token: str | None
        _went_live: bool
        _corrupt_seen: bool
        _clock: Callable[[], float]

        @property
        def db(self) -> sqlite_utils.Database: ...

        @property
        def fx(self) -> SessionEffects: ...

        def _submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]: ...

        def _emit(self, change: Change) -> None: ...

        def _outbox_changed(self) -> None: ...

    def send_message(self, conversation_id: str, body: str) -> concurrent.futures.Future[str]:
        """Queue a reply; the future gives its message id once it is in the cache (status
        'sending'), or raises ProtocolError (empty/over-long body) or LookupError."""
        return self._submit(self._queue_message(conversation_id, body, note=False))

    def add_note(self, conversation_id: str, body: str) -> concurrent.futures.Future[str]:
        """Queue an internal note; as `send_message`."""
        return self._submit(self._queue_message(conversation_id, body, note=True))

    def retry_message(self, message_id: str) -> concurrent.futures.Future[str]:
        """Queue a 'failed' message again (same message id, new command id)."""
        return self._submit(self._retry(message_id))

    def set_state(self, state: str, reason: str | None = None) -> concurrent.futures.Future[str]:
        """Queue a state change; the future gives the command id."""
        return self._submit(self._queue("set_state", {"state": state, "reason": reason}))

    def accept(self, offer_id: str) -> concurrent.futures.Future[str]:
        return self._submit(self._queue("accept", {"offer_id": offer_id}))

    def decline(self, offer_id: str) -> concurrent.futures.Future[str]:
        return self._submit(self._queue("decline", {"offer_id": offer_id}))

    def transfer(
        self, conversation_id: str, *, queue: str | None = None, agent: str | None = None
    ) -> concurrent.futures.Future[str]:
        return self._submit(
            self._queue(
                "transfer", {"conversation_id": conversation_id, "queue": queue, "agent": agent}
            )
        )

    def wrap_up(
        self, conversation_id: str, disposition: str, note: str | None = None
    ) -> concurrent.futures.Future[str]:
        return self._submit(
            self._queue(
                "wrap_up",
                {"conversation_id": conversation_id, "disposition": disposition, "note": note},
            )
        )

    def call_event(
        self,
        call_id: str,
        direction: str,
        remote: str,
        state: str,
        at: float,
        *,
        reason: str | None = None,
        code: int | None = None,
    ) -> concurrent.futures.Future[str]:
        """Report a voice call's progress (handled by the PBX) so the router's metrics see it.

        `reason` and `code` (the SIP status) say why a call ended: an inbound call that rang
        and ended with `reason="caller_cancel"` is an abandon, `"declined"` is not
        (docs/metrics.md)."""
        args: dict[str, Any] = {
            "call_id": call_id,
            "direction": direction,
            "remote": remote,
            "state": state,
            "at": at,
        }
        if reason:
            args["reason"] = reason
        if code is not None:
            args["code"] = int(code)
        return self._submit(self._queue("call_event", args))

    def set_disposition(
        self, conversation_id: str, disposition: str
    ) -> concurrent.futures.Future[str]:
        """Queue the wrap-up code for a conversation (one of the router's `codes.wrap_up`)."""
        return self._submit(
            self._queue(
                "set_disposition", {"conversation_id": conversation_id, "disposition": disposition}
            )
        )

    def end_conversation(self, conversation_id: str) -> concurrent.futures.Future[str]:
        """Queue the end of the customer part: the conversation goes to wrap-up."""
        return self._submit(self._queue("end_conversation", {"conversation_id": conversation_id}))

    def schedule_callback(
        self, conversation_id: str, at: float, *, queue: str | None = None, note: str | None = None
    ) -> concurrent.futures.Future[str]:
        """Queue a callback: at `at` (Unix time) the router creates an outbound task."""
        args: dict[str, Any] = {"conversation_id": conversation_id, "at": float(at)}
        if queue:
            args["queue"] = queue
        if note:
            args["note"] = note
        return self._submit(self._queue("schedule_callback", args))

    def typing(self, conversation_id: str) -> concurrent.futures.Future[int]:
        """Tell the customer's chat page the agent is typing (HTTP, never queued: a stale
        hint is worthless). The future fails with HttpActionError when offline or refused."""
        return self._submit(self._typing(conversation_id))

    def team(self) -> concurrent.futures.Future[list[dict[str, Any]]]:
        """The agents sharing a queue with this one and their live state, for a transfer
        (HTTP, never cached: it is only true now). Fails with HttpActionError offline."""
        return self._submit(self._team())

    def save_draft(self, conversation_id: str, body: str) -> concurrent.futures.Future[None]:
        """Keep the composer's unsent text for a conversation (empty text forgets it), so a
        crash loses none of it; the UI calls this debounced while the agent types."""
        return self._submit(self._save_draft(conversation_id, body))

    def mark_read(self, conversation_id: str) -> concurrent.futures.Future[None]:
        """The agent opened the conversation: reset its unread count."""
        return self._submit(self._mark_read(conversation_id))

    # ----------------------------------------------------------------- on the sync loop

    def _write(self, fn: Callable[[], T]) -> T:
        """Run one of the agent's writes; a full disk becomes DiskFullError and is reported
        (nothing was written: the transaction rolled back), a corrupt file is remembered so
        the next start checks and rebuilds it."""
        try:
            return fn()
        except sqlite3.Error as exc:
            if is_disk_full(exc):
                log.error("cache write refused: the disk is full")
                self._emit(ProtocolIssue("disk_full", DISK_FULL_MESSAGE))
                raise DiskFullError(DISK_FULL_MESSAGE) from exc
            if is_corrupt(exc):
                self._corrupt_seen = True
            raise

    async def _queue_message(self, conversation_id: str, body: str, note: bool) -> str:
        q = self._write(
            lambda: outbox.queue_message(
                self.db, conversation_id, body, author=self.fx.author, now=self._clock(), note=note
            )
        )
        return self._queued(q).message_id or ""

    async def _retry(self, message_id: str) -> str:
        q = self._write(
            lambda: outbox.retry_message(
                self.db, message_id, author=self.fx.author, now=self._clock()
            )
        )
        return self._queued(q).message_id or ""

    async def _queue(self, name: str, args: dict[str, Any]) -> str:
        q = self._write(lambda: outbox.queue_command(self.db, name, args, now=self._clock()))
        return self._queued(q).command.id

    async def _save_draft(self, conversation_id: str, body: str) -> None:
        if self._write(
            lambda: outbox.save_draft(self.db, conversation_id, body, now=self._clock())
        ):
            self._emit(DataChanged(frozenset({"drafts"}), frozenset({conversation_id})))

    def _queued(self, q: outbox.Queued) -> outbox.Queued:
        tables = {"outbox"} | ({"messages", "conversations"} if q.message_id else set())
        convs = {q.conversation_id} if q.conversation_id else set()
        self._emit(DataChanged(frozenset(tables), frozenset(convs)))
        self._outbox_changed()
        if self.fx.proto is not None:
            self.fx.carry_out(self.fx.proto.send_command(q.command))
        return q

    def _live_token(self) -> str:
        token = self._token
        if token is None or not self._went_live:
            raise HttpActionError("Not connected to the router.")
        return token

    async def _typing(self, conversation_id: str) -> int:
        token = self._live_token()
        return await self._loop.run_in_executor(
            None, post_typing, self.base_url, token, conversation_id
        )

    async def _team(self) -> list[dict[str, Any]]:
        token = self._live_token()
        return await self._loop.run_in_executor(None, get_team, self.base_url, token)

    async def _mark_read(self, conversation_id: str) -> None:
        self.fx.report(mark_read(self.db, conversation_id))
