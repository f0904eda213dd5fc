"""The ACD's transactions and event buffer: what a change tells whom, written with the change.

Split from `router.acd` so the ACD's domain rules do not share a module with the plumbing
that turns them into stream rows: events are collected during a transaction (coalescing a
conversation's rows), written (one row per event for its whole audience) just before
COMMIT, and handed to the sessions (as committed JSON with their seqs) only after COMMIT
succeeded; on a rollback nothing is announced and no after-commit hook runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from router.storage import Storage
from router.storage_log import encode_event

Grown = dict[str, list[tuple[int, str]]]
"""Per agent, the (seq, JSON) of the events a commit appended to their stream."""


class EventBuffer:
    """Events and after-commit hooks of the open transaction on one `Storage`."""

    def __init__(self, storage: Storage, clock: Callable[[], float]) -> None:
        self.storage = storage
        self.clock = clock
        self.notify: Callable[[Grown], None] = lambda grown: None
        self._touched: Grown = {}
        self._pending: list[tuple[set[str], dict[str, Any]]] = []
        self._pending_conversation: dict[str, int] = {}
        self._after_commit: list[Callable[[], None]] = []

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A storage transaction whose events are announced (and hooks run) after commit."""
        outer = not self.storage.in_transaction
        try:
            with self.storage.transaction():
                yield
                if outer:
                    self.flush()
        except BaseException:
            if outer:
                self._touched = {}
                self._after_commit.clear()
                self._pending.clear()
                self._pending_conversation.clear()
            raise
        if outer:
            touched, self._touched = self._touched, {}
            hooks, self._after_commit = self._after_commit, []
            if touched:
                self.notify(touched)
            for hook in hooks:
                hook()

    def after_commit(self, hook: Callable[[], None]) -> None:
        self._after_commit.append(hook)

    def emit(self, agent_ids: Iterable[str], event: dict[str, Any]) -> None:
        """See `Acd.emit`."""
        audience = set(agent_ids)
        if event.get("kind") == "conversation":
            conversation_id = event["conversation"]["id"]
            index = self._pending_conversation.get(conversation_id)
            if index is not None:
                self._pending[index] = (self._pending[index][0] | audience, event)
                return
            self._pending_conversation[conversation_id] = len(self._pending)
        self._pending.append((audience, event))
        if not self.storage.in_transaction:
            self.flush()

    def flush(self) -> None:
        """Write the buffered events (one JSON encoding per event for its whole audience)."""
        now = self.clock()
        pending, self._pending = self._pending, []
        self._pending_conversation.clear()
        events = [(sorted(audience), encode_event(event)) for audience, event in pending]
        if events:
            for agent_id, seq, text in self.storage.append_events(events, now):
                self._touched.setdefault(agent_id, []).append((seq, text))
