"""The thin adapter between the sync engine (asyncio, its own thread) and the Qt UI thread.

Why: the engine calls its listener ON THE SYNC THREAD; touching a widget there would crash
Qt. The bridge's listener only emits Qt signals: the bridge lives on the UI thread, so Qt
queues each emission to it and every slot runs on the UI thread. The listener does no work of
its own (no queries, no formatting), so it never slows the engine down.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Iterable
from typing import Any, Protocol

from client.qt import QObject, Signal
from client.status_bar import ConnectionStatus

log = logging.getLogger(__name__)


class Engine(Protocol):
    """What the UI needs of `sync.client.SyncEngine` (thread-safe methods)."""

    def start(self) -> Any: ...
    def stop(self) -> Any: ...
    def send_message(self, conversation_id: str, body: str) -> concurrent.futures.Future[Any]: ...
    def add_note(self, conversation_id: str, body: str) -> concurrent.futures.Future[Any]: ...
    def set_state(self, state: str, reason: str | None = None) -> Any: ...
    def accept(self, offer_id: str) -> Any: ...
    def decline(self, offer_id: str) -> Any: ...
    def reconnect_now(self) -> Any: ...


def _get(note: Any, *names: str, default: Any = None) -> Any:
    """A field of a notification, whether the engine sends objects or mappings."""
    for name in names:
        if isinstance(note, dict) and name in note:
            return note[name]
        if hasattr(note, name):
            return getattr(note, name)
    return default


def _strs(value: Any) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, str):
        return {value}
    if isinstance(value, Iterable):
        return {str(v) for v in value}
    return {str(value)}


class SyncBridge(QObject):
    """Turns engine notifications (`sync.changes`) into Qt signals on the UI thread.

    Signals:
        connection(ConnectionStatus): the connection changed (words + outbox count).
        changed(set[str] tables, set[str] conversation_ids): the cache changed.
        command_failed(id, name, code, message): the router refused an action.
        offers_changed(): an offer arrived or was revoked.
        issue(message, fatal): the router sent something wrong, or the cache failed.
        session(agent_id, agent_name): the router said who we are.
    """

    connection = Signal(object)
    changed = Signal(object, object)
    command_failed = Signal(str, str, str, str)
    offers_changed = Signal()
    issue = Signal(str, bool)
    session = Signal(str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine: Any = None

    def attach(self, engine: Any) -> None:
        self.engine = engine

    # Runs on the sync thread: emit only.
    def listener(self, note: Any) -> None:
        """The engine's `on_change` callback (sync thread)."""
        try:
            self._dispatch(note)
        except Exception:  # a bad notification must not kill the engine's loop
            log.exception("could not handle a sync notification: %r", type(note).__name__)

    def _dispatch(self, note: Any) -> None:
        kind = str(_get(note, "kind", default="") or type(note).__name__).lower()
        if kind == "connection_status":
            retry_in = _get(note, "retry_in")
            self.connection.emit(
                ConnectionStatus(
                    state=str(_get(note, "state", default="offline")),
                    detail=str(_get(note, "detail", default="") or ""),
                    outbox=int(_get(note, "outbox", default=0) or 0),
                    retry_at=time.monotonic() + float(retry_in)
                    if isinstance(retry_in, int | float)
                    else None,
                )
            )
        elif kind == "data_changed":
            self.changed.emit(
                _strs(_get(note, "tables")) or {"*"}, _strs(_get(note, "conversation_ids"))
            )
        elif kind == "command_failed":
            self.command_failed.emit(
                str(_get(note, "command_id", "id", default="")),
                str(_get(note, "name", default="")),
                str(_get(note, "code", default="")),
                str(_get(note, "message", default="")),
            )
            self.changed.emit(
                {"messages", "outbox", "offers"}, _strs(_get(note, "conversation_id"))
            )
        elif kind in ("offer_received", "offer_revoked"):
            self.offers_changed.emit()
        elif kind == "protocol_issue":
            self.issue.emit(str(_get(note, "message", default="")), bool(_get(note, "fatal")))
        elif kind in ("session_started", "signed_in"):
            self.session.emit(
                str(_get(note, "agent_id", default="")), str(_get(note, "agent_name", default=""))
            )
        else:
            log.debug("unhandled sync notification %s", kind)
            self.changed.emit({"*"}, set())
