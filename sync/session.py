"""The client side of one agent session, as a sans-I/O state machine.

`ClientProtocol` is fed frames (text or parsed) and returns effects for the engine to carry
out: frames to send, events and snapshot pages to store, acks to settle, and reasons to drop
the connection. Keeping every ordering rule here (hello first, resume from the stored cursor,
never apply out of order, commands only after `live`) means they are tested with plain data and
the socket code in `sync.client` stays a thin pump.

One instance serves one connection; a reconnect makes a new one from the stored cursor and the
outbox, so no state from a broken connection leaks into the next.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sync.protocol import (
    AUTH_ERROR_CODES,
    PROTOCOL_VERSION,
    Ack,
    AckError,
    Command,
    ErrorFrame,
    Event,
    Hello,
    Live,
    ProtocolError,
    Resume,
    ServerFrame,
    Snapshot,
    parse_server_frame,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- effects


@dataclass(frozen=True)
class SendFrame:
    frame: Resume | Command


@dataclass(frozen=True)
class Welcomed:
    """The router said hello in our protocol version."""

    agent: Mapping[str, Any]
    server_time: float


@dataclass(frozen=True)
class ApplyEvent:
    """Store this event's effect and set the cursor to `seq`, in one transaction."""

    seq: int
    event: Mapping[str, Any]


@dataclass(frozen=True)
class ApplySnapshotPage:
    """Store this page; on the last page set the cursor to `snapshot.seq` in the same
    transaction."""

    snapshot: Snapshot


@dataclass(frozen=True)
class BecameLive:
    seq: int


@dataclass(frozen=True)
class Acked:
    id: str
    ok: bool
    result: Mapping[str, Any]
    error: AckError | None


@dataclass(frozen=True)
class Ignored:
    """Input with nothing to do (a replayed event, a repeated ack); for logs and tests."""

    reason: str


@dataclass(frozen=True)
class Malformed:
    """The router sent a frame that breaks the contract; report it, the session goes on."""

    code: str
    message: str


@dataclass(frozen=True)
class ServerError:
    """The router sent an `error` frame about something we sent."""

    code: str
    message: str


class FatalKind(enum.Enum):
    VERSION = "version"  # the router speaks another protocol: update the app, do not retry
    AUTH = "auth"  # the token was refused: log in again, do not retry with it
    GAP = "gap"  # a missing event: drop the connection and resume from the cursor
    VIOLATION = "violation"  # frames out of order: drop and resume

    @property
    def retryable(self) -> bool:
        return self in (FatalKind.GAP, FatalKind.VIOLATION)


@dataclass(frozen=True)
class Fatal:
    """Close the connection. Whether to reconnect is `kind.retryable`."""

    kind: FatalKind
    message: str


Effect = (
    SendFrame
    | Welcomed
    | ApplyEvent
    | ApplySnapshotPage
    | BecameLive
    | Acked
    | Ignored
    | Malformed
    | ServerError
    | Fatal
)


class Phase(enum.Enum):
    AWAIT_HELLO = "await_hello"
    REPLAY = "replay"  # resume sent; events or snapshot pages until `live`
    LIVE = "live"
    CLOSED = "closed"


class ClientProtocol:
    """One connection's worth of the client protocol.

    Args:
        cursor: the highest event seq stored in the cache (0 when empty).
        version: the protocol version this client speaks (a parameter for tests).
    """

    def __init__(self, cursor: int, version: int = PROTOCOL_VERSION) -> None:
        if cursor < 0:
            raise ValueError("cursor must be >= 0")
        self.cursor = cursor
        self.version = version
        self.phase = Phase.AWAIT_HELLO
        self.agent: Mapping[str, Any] | None = None
        self._queue: list[Command] = []  # waiting for `live`
        self._in_flight: dict[str, Command] = {}  # sent, not yet acked (insertion = send order)
        self._known: set[str] = set()  # every id queued or sent on this connection
        self._next_page = 0
        self._snapshot_seq: int | None = None

    # ----------------------------------------------------------------- commands

    @property
    def live(self) -> bool:
        return self.phase is Phase.LIVE

    @property
    def pending(self) -> list[str]:
        """Ids of commands queued or sent and not acked, in send order."""
        return [*self._in_flight, *(c.id for c in self._queue)]

    def send_command(self, command: Command) -> list[Effect]:
        """Queue a command; it is sent at once when live, else when `live` arrives.

        The same id given twice is sent once (the outbox may be loaded and a new command
        submitted for the same row).
        """
        if self.phase is Phase.CLOSED:
            return [Ignored(f"command {command.id} after close; it stays in the outbox")]
        if command.id in self._known:
            return [Ignored(f"command {command.id} already queued")]
        self._known.add(command.id)
        if self.phase is Phase.LIVE:
            self._in_flight[command.id] = command
            return [SendFrame(command)]
        self._queue.append(command)
        return []

    def rebase(self, cursor: int) -> None:
        """Start the replay from another cursor (the engine cleared a cache that belonged to
        another agent when hello named this one). Only between hello and the first event.

        Raises:
            RuntimeError: events or pages have already been handed out on this connection.
        """
        if self.phase is not Phase.REPLAY or self._snapshot_seq is not None or cursor < 0:
            raise RuntimeError("rebase is only allowed right after hello")
        self.cursor = cursor

    # ----------------------------------------------------------------- frames in

    def receive_text(self, text: str | bytes) -> list[Effect]:
        """Parse one frame from the router and act on it."""
        try:
            frame = parse_server_frame(text)
        except ProtocolError as exc:
            return [Malformed(exc.code, exc.message)]
        return self.receive(frame)

    def receive(self, frame: ServerFrame) -> list[Effect]:
        """Act on one parsed frame from the router."""
        if self.phase is Phase.CLOSED:
            return [Ignored(f"{frame.type} after close")]
        if isinstance(frame, ErrorFrame):
            return self._on_error(frame)
        if isinstance(frame, Hello):
            return self._on_hello(frame)
        if self.phase is Phase.AWAIT_HELLO:
            return self._fatal(FatalKind.VIOLATION, f"The router sent {frame.type} before hello.")
        if isinstance(frame, Ack):
            return self._on_ack(frame)
        if isinstance(frame, Event):
            return self._on_event(frame)
        if isinstance(frame, Snapshot):
            return self._on_snapshot(frame)
        if isinstance(frame, Live):
            return self._on_live(frame)
        raise TypeError(f"not a server frame: {type(frame).__name__}")

    def _fatal(self, kind: FatalKind, message: str) -> list[Effect]:
        self.phase = Phase.CLOSED
        return [Fatal(kind, message)]

    def _on_error(self, frame: ErrorFrame) -> list[Effect]:
        if frame.code in AUTH_ERROR_CODES:
            return self._fatal(FatalKind.AUTH, frame.message)
        return [ServerError(frame.code, frame.message)]

    def _on_hello(self, frame: Hello) -> list[Effect]:
        if self.phase is not Phase.AWAIT_HELLO:
            return self._fatal(FatalKind.VIOLATION, "The router said hello twice.")
        if frame.protocol != self.version:
            return self._fatal(
                FatalKind.VERSION,
                f"The router speaks protocol {frame.protocol}, this app speaks {self.version}: "
                + (
                    "update the app."
                    if frame.protocol > self.version
                    else "the router needs an update."
                ),
            )
        self.agent = frame.agent
        self.phase = Phase.REPLAY
        return [Welcomed(frame.agent, frame.server_time), SendFrame(Resume(self.cursor))]

    def _on_event(self, frame: Event) -> list[Effect]:
        if self._snapshot_seq is not None:
            return self._fatal(FatalKind.VIOLATION, f"Event {frame.seq} arrived inside a snapshot.")
        if frame.seq <= self.cursor:
            return [Ignored(f"event {frame.seq} already stored (cursor {self.cursor})")]
        if frame.seq != self.cursor + 1:
            return self._fatal(
                FatalKind.GAP,
                f"Events {self.cursor + 1}..{frame.seq - 1} are "
                f"missing; resuming from {self.cursor}.",
            )
        self.cursor = frame.seq
        return [ApplyEvent(frame.seq, frame.event)]

    def _on_snapshot(self, frame: Snapshot) -> list[Effect]:
        if self.phase is not Phase.REPLAY:
            return self._fatal(FatalKind.VIOLATION, "A snapshot arrived after live.")
        if frame.page != self._next_page:
            return self._fatal(
                FatalKind.VIOLATION,
                f"Snapshot page {frame.page} arrived; page {self._next_page} was expected.",
            )
        if self._snapshot_seq is not None and frame.seq != self._snapshot_seq:
            return self._fatal(FatalKind.VIOLATION, "Snapshot pages disagree on their seq.")
        if frame.last:
            self._next_page = 0
            self._snapshot_seq = None
            self.cursor = frame.seq
        else:
            self._next_page += 1
            self._snapshot_seq = frame.seq
        return [ApplySnapshotPage(frame)]

    def _on_live(self, frame: Live) -> list[Effect]:
        if self.phase is not Phase.REPLAY:
            return self._fatal(FatalKind.VIOLATION, "The router said live twice.")
        if self._snapshot_seq is not None:
            return self._fatal(FatalKind.VIOLATION, "Live arrived before the last snapshot page.")
        if frame.seq > self.cursor:
            return self._fatal(
                FatalKind.GAP,
                f"Live at {frame.seq} but events up to {self.cursor} arrived; resuming.",
            )
        if frame.seq < self.cursor:
            # The router's stream is behind this cache (its log was reset). Reconnecting would
            # not help; the router must answer such a resume with a snapshot (protocol.md).
            return self._fatal(
                FatalKind.VIOLATION,
                f"The router is live at {frame.seq}, behind this cache at {self.cursor}.",
            )
        self.phase = Phase.LIVE
        effects: list[Effect] = [BecameLive(frame.seq)]
        for command in self._queue:
            self._in_flight[command.id] = command
            effects.append(SendFrame(command))
        self._queue.clear()
        return effects

    def _on_ack(self, frame: Ack) -> list[Effect]:
        if self._in_flight.pop(frame.id, None) is None:
            return [Ignored(f"ack for {frame.id}, which is not awaiting one")]
        return [Acked(frame.id, frame.ok, frame.result, frame.error)]
