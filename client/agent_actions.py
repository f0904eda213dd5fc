"""What the agent does, sent to the sync engine, with every outcome told back in words.

Why apart from the window: each action has three endings (queued, refused by the engine at
once, refused later by the router) and each must reach the agent where they are looking: the
composer, the offer toast, the state selector or the status bar. Keeping that here keeps the
window about layout and refresh.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from client.ops import watch
from client.qt import QObject

if TYPE_CHECKING:
    from client.conversation_view import ConversationView
    from client.main_window import MainWindow

log = logging.getLogger(__name__)

_ERROR_WORDS = {
    "forbidden": "You may not act on this conversation",
    "not_found": "It no longer exists",
    "offer_gone": "Too late — the offer expired or another agent took it",
    "conflict": "Not possible in your current state",
    "too_large": "The message is too long",
    "unauthorized": "Your session has expired; log in again",
    "token_expired": "Your session has expired; log in again",
    "internal": "The router had a problem; it will be retried",
}


def explain(code: str, message: str) -> str:
    """A router refusal in words: the router's own message, else our wording of the code."""
    return message or _ERROR_WORDS.get(code, f"The router refused it ({code or 'no reason'})")


class AgentActions(QObject):
    """Connects the window's controls to the engine (through the window's bridge)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self._offer_commands: dict[str, str] = {}  # command id -> offer id
        self._accepted: dict[str, str] = {}  # offer id -> conversation id, until it is ours
        window.inbox.opened.connect(self.open_conversation)
        window.conversation.when_built(self._wire_conversation)
        window.state_selector.state_requested.connect(self.set_state)
        window.offers.accept_requested.connect(self.accept)
        window.offers.decline_requested.connect(self.decline)
        window.status.reconnect_clicked.connect(self.reconnect)
        window.conversation.draft_changed.connect(self.save_draft)

    def _wire_conversation(self, view: ConversationView) -> None:
        """The conversation page is built after the first paint: connect it then."""
        view.composer.send_requested.connect(self.send)
        view.thread_view.retry_requested.connect(self.retry)

    def _engine(self) -> Any:
        return self.w.bridge.engine if self.w.bridge is not None else None

    def call(
        self,
        what: str,
        fn: Callable[[Any], Any],
        on_ok: Callable[[Any], None],
        on_fail: Callable[[str], None],
    ) -> None:
        """Run `fn(engine)`; deliver its outcome (now or via its Future) on the UI thread."""
        engine = self._engine()
        if engine is None:
            on_fail("Not connected to the sync engine yet — try again in a moment.")
            return
        try:
            result = fn(engine)
        except Exception as exc:  # the engine refused before queueing: tell the agent
            log.warning("%s refused by the engine: %s", what, exc)
            on_fail(str(exc) or type(exc).__name__)
            return
        if isinstance(result, concurrent.futures.Future):
            watch(result, on_ok, lambda exc: on_fail(str(exc) or type(exc).__name__))
        else:
            on_ok(result)

    # -- conversations ---------------------------------------------------------------------------

    def open_conversation(self, conversation_id: str) -> None:
        self.w.conversation.open(conversation_id)
        model = self.w.inbox_model
        row = model.row_for_id(conversation_id)
        if self._engine() is not None and row >= 0 and model.row_at(row).unread:
            self.call(
                "mark_read",
                lambda e: e.mark_read(conversation_id),
                lambda _r: self.w.scheduler.mark("inbox", conversation_id),
                lambda why: self.w.status.notify(f"Could not mark as read: {why}", 5000),
            )

    def save_draft(self, conversation_id: str, text: str) -> None:
        """Persist the composer's draft through the engine (a full disk is said in words)."""
        if self._engine() is None:
            return
        self.call(
            "save_draft",
            lambda e: e.save_draft(conversation_id, text),
            lambda _r: None,
            lambda why: self.w.status.notify(f"Draft not saved: {why}", 8000),
        )

    def send(self, body: str, is_note: bool) -> None:
        cid = self.w.conversation.conversation_id
        composer = self.w.conversation.composer
        if cid is None:
            composer.refused("Open a conversation first.")
            return

        def ok(_message_id: object) -> None:
            composer.accepted()
            for part in ("inbox", "outbox"):
                self.w.scheduler.mark(part)
            self.w.scheduler.mark("thread", cid)

        self.call(
            "add_note" if is_note else "send_message",
            lambda e: (e.add_note if is_note else e.send_message)(cid, body),
            ok,
            lambda why: composer.refused(f"Not sent: {why}"),
        )

    def retry(self, message_id: str) -> None:
        self.call(
            "retry_message",
            lambda e: e.retry_message(message_id),
            lambda _r: self.w.scheduler.mark("thread", "*"),
            lambda why: self.w.status.notify(f"Could not send it again: {why}"),
        )

    # -- state ----------------------------------------------------------------------------------

    def set_state(self, state: str, reason: str) -> None:
        def fail(why: str) -> None:
            self.w.state_selector.request_failed()
            self.w.status.notify(f"Could not change your state: {why}", 8000)

        self.call(
            "set_state",
            lambda e: e.set_state(state, reason or None),
            lambda _r: self.w.scheduler.mark("state"),
            fail,
        )

    def reconnect(self) -> None:
        self.call(
            "reconnect",
            lambda e: e.reconnect_now(),
            lambda _r: None,
            lambda why: self.w.status.notify(f"Could not reconnect: {why}", 8000),
        )

    # -- offers ---------------------------------------------------------------------------------

    def accept(self, offer_id: str) -> None:
        toast = self.w.offers.toasts.get(offer_id)
        if toast is not None:
            self._accepted[offer_id] = toast.offer.conversation_id
        self._offer_call("accept", offer_id)

    def decline(self, offer_id: str) -> None:
        self._accepted.pop(offer_id, None)
        self._offer_call("decline", offer_id)

    def _offer_call(self, name: str, offer_id: str) -> None:
        def queued(command_id: object) -> None:
            self._offer_commands[str(command_id)] = offer_id
            self.w.scheduler.mark("offers")

        def failed(why: str) -> None:
            self._accepted.pop(offer_id, None)
            self.w.offers.failed(offer_id, f"Could not {name}: {why}")

        self.call(name, lambda e: getattr(e, name)(offer_id), queued, failed)

    def accept_first(self) -> None:
        for toast in self.w.offers.toasts.values():
            if toast.accept_button.isEnabled():
                toast.accept_button.click()
                return

    def decline_first(self) -> None:
        for toast in self.w.offers.toasts.values():
            if toast.decline_button.isEnabled():
                toast.decline_button.click()
                return

    def open_accepted(self) -> None:
        """An accepted offer becomes our conversation: open it, as the agent expects."""
        reader = self.w.reader
        for offer_id, cid in list(self._accepted.items()):
            header = reader.header(cid)
            if header is None or offer_id in self.w.offers.toasts:
                continue
            # The offer leaves the cache in one change and the assignment lands in another,
            # in either order: until the conversation says whose it is, keep waiting. A
            # refusal (on_command_failed) or a conversation that went elsewhere ends the wait.
            mine = header.assigned_agent == self.w.inbox_model.agent_id
            if header.status == "assigned" and mine:
                del self._accepted[offer_id]
                self.w.inbox_model.refresh({cid})
                if not self.w.inbox.select(cid):
                    self.w.conversation.open(cid)
            elif header.status not in ("queued", "offered"):
                del self._accepted[offer_id]

    # -- the router's refusals ------------------------------------------------------------------

    def on_command_failed(self, command_id: str, name: str, code: str, message: str) -> None:
        """The router refused an action: say it where the agent looks."""
        why = explain(code, message)
        log.info("command %s (%s) refused: %s", name, command_id, code)
        w = self.w
        if name in ("accept", "decline"):
            offer_id = self._offer_commands.pop(command_id, "")
            self._accepted.pop(offer_id, None)
            if offer_id in w.offers.toasts:
                w.offers.failed(offer_id, f"Could not {name}: {why}")
            else:
                w.status.notify(f"Could not {name} the offer: {why}", 8000)
            w.scheduler.mark("offers")
        elif name == "set_state":
            w.state_selector.request_failed()
            w.status.notify(f"Could not change your state: {why}", 8000)
        elif name in ("send_message", "add_note"):
            # The thread shows "Not sent: <reason>" on the message itself (from the cache).
            w.scheduler.mark("thread", "*")
            w.status.notify(f"A message was not sent: {why}", 8000)
        else:
            w.status.notify(f"{name.replace('_', ' ').capitalize()} failed: {why}", 8000)
        w.scheduler.mark("outbox")
