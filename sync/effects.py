"""Carrying out what `ClientProtocol` decides: store, send, notify.

Split from `sync.client` so the socket code stays a pump: the engine feeds a connection's
frames to its `ClientProtocol` and hands the effects to `SessionEffects`, which writes the
cache (one transaction per event, page or ack), queues frames for the connection's writer,
and turns what changed into `sync.changes` notifications. Ending a session is said with an
exception (`RetryError`, `HaltError`, `AuthLostError`), so the engine's connection loop is the
one place that decides what happens next.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable

import sqlite_utils

from sync import outbox
from sync.apply import Changes, apply_event, bind_agent
from sync.changes import (
    Change,
    CommandFailed,
    ConnState,
    DataChanged,
    IssueKind,
    OfferReceived,
    OfferRevoked,
    ProtocolIssue,
    SessionStarted,
)
from sync.protocol import Command, Resume
from sync.session import (
    Acked,
    ApplyEvent,
    ApplySnapshotPage,
    BecameLive,
    ClientProtocol,
    Effect,
    Fatal,
    FatalKind,
    Ignored,
    Malformed,
    SendFrame,
    ServerError,
    Welcomed,
)
from sync.snapshot_apply import apply_snapshot_page
from sync.store import atomic, set_state

log = logging.getLogger(__name__)

_ISSUE: dict[FatalKind, IssueKind] = {
    FatalKind.VERSION: "version",
    FatalKind.GAP: "gap",
    FatalKind.VIOLATION: "violation",
    FatalKind.AUTH: "violation",
}


def backoff_delay(
    attempt: int, rng: random.Random, initial: float = 0.5, cap: float = 30.0
) -> float:
    """Capped exponential backoff with jitter: half fixed, half random, so many clients that
    lost the same router do not come back in step."""
    ceiling = min(cap, initial * (2 ** min(attempt, 30)))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


class RetryError(Exception):
    """End of a connection attempt that is worth retrying later."""


class HaltError(Exception):
    """End of a connection attempt that retrying will not fix; wait for the agent."""

    def __init__(self, state: ConnState, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.message = message


class AuthLostError(Exception):
    """The router refused our token mid-session (`unauthorized` / `token_expired`)."""


class SessionEffects:
    """The engine's side of its protocol sessions (all on the sync thread).

    Args:
        db: the cache's write connection.
        emit: the engine's notifier.
        clock: wall time for local rows.
        on_live: the session went live.
        on_outbox_changed: an ack removed outbox rows.
    """

    def __init__(
        self,
        db: sqlite_utils.Database,
        emit: Callable[[Change], None],
        clock: Callable[[], float],
        on_live: Callable[[], None],
        on_outbox_changed: Callable[[], None],
    ) -> None:
        self.db = db
        self.emit = emit
        self.clock = clock
        self.on_live = on_live
        self.on_outbox_changed = on_outbox_changed
        self.agent_id: str | None = None
        self.author = "me"
        self.proto: ClientProtocol | None = None
        self.sendq: asyncio.Queue[Resume | Command] | None = None

    def carry_out(self, effects: list[Effect]) -> None:
        """Do each effect in order; what changed is reported even when one of them ends the
        session (by raising), so the UI never misses a write that did commit."""
        changes = Changes()
        try:
            for effect in effects:
                self._effect(effect, changes)
        finally:
            self.report(changes)

    def report(self, ch: Changes) -> None:
        """Tell the listener what a write touched: one DataChanged, then offer news."""
        if ch.tables:
            self.emit(DataChanged(frozenset(ch.tables), frozenset(ch.conversation_ids)))
        for offer in ch.offers_added:
            self.emit(
                OfferReceived(
                    offer["id"],
                    offer.get("conversation_id"),
                    offer.get("channel"),
                    offer.get("queue"),
                    offer.get("customer_name"),
                    offer.get("preview"),
                    offer.get("expires_at"),
                )
            )
        for offer_id, reason in ch.offers_revoked:
            self.emit(OfferRevoked(offer_id, reason))

    def _effect(self, effect: Effect, changes: Changes) -> None:
        now = self.clock()
        if isinstance(effect, SendFrame):
            if self.sendq is not None:
                self.sendq.put_nowait(effect.frame)
        elif isinstance(effect, ApplyEvent):
            changes.merge(
                apply_event(
                    self.db, effect.seq, effect.event, agent_id=self.agent_id or "", now=now
                )
            )
        elif isinstance(effect, ApplySnapshotPage):
            changes.merge(
                apply_snapshot_page(self.db, effect.snapshot, agent_id=self.agent_id or "", now=now)
            )
        elif isinstance(effect, Acked):
            self._settle(effect, changes)
        elif isinstance(effect, Welcomed):
            self._welcomed(effect)
        elif isinstance(effect, BecameLive):
            self.on_live()
        elif isinstance(effect, Malformed | ServerError):
            problem: IssueKind = "malformed" if isinstance(effect, Malformed) else "server_error"
            log.warning("router %s: %s (%s)", problem, effect.message, effect.code)
            self.emit(ProtocolIssue(problem, effect.message))
        elif isinstance(effect, Fatal):
            self._fatal(effect)
        elif isinstance(effect, Ignored):
            log.debug("ignored: %s", effect.reason)

    def _welcomed(self, effect: Welcomed) -> None:
        agent = effect.agent
        self.agent_id = str(agent["id"])
        self.author = str(agent.get("name") or agent["id"])
        try:
            cleared = bind_agent(self.db, self.agent_id)
        except RuntimeError as exc:
            self.emit(ProtocolIssue("cache", str(exc), fatal=True))
            raise HaltError("offline", str(exc)) from None
        with atomic(self.db):
            set_state(self.db, "agent", json.dumps(dict(agent)))
        if cleared and self.proto is not None:
            self.proto.rebase(0)
            self.emit(DataChanged(frozenset({"*"})))
        queues = agent.get("queues")
        self.emit(
            SessionStarted(
                self.agent_id,
                self.author,
                tuple(queues) if isinstance(queues, list) else (),
                effect.server_time,
            )
        )

    def _settle(self, effect: Acked, changes: Changes) -> None:
        settled = outbox.settle(self.db, effect.id, effect.ok, dict(effect.result), effect.error)
        if settled is None:
            return
        changes.tables |= (
            {"outbox", "offers"} if settled.name in outbox.OFFER_COMMANDS else {"outbox"}
        )
        if settled.message_id:
            changes.tables |= {"messages", "conversations"}
        if settled.conversation_id:
            changes.conversation_ids.add(settled.conversation_id)
        if not settled.ok:
            error = settled.error
            self.emit(
                CommandFailed(
                    settled.command_id,
                    settled.name,
                    error.code if error else "internal",
                    error.message if error else "Refused.",
                    settled.conversation_id,
                    settled.message_id,
                )
            )
        self.on_outbox_changed()

    def _fatal(self, effect: Fatal) -> None:
        log.warning("session ended: %s (%s)", effect.message, effect.kind.value)
        if effect.kind is FatalKind.AUTH:
            raise AuthLostError(effect.message)
        self.emit(
            ProtocolIssue(_ISSUE[effect.kind], effect.message, fatal=not effect.kind.retryable)
        )
        if effect.kind.retryable:
            raise RetryError(effect.message)
        raise HaltError("offline", effect.message)
