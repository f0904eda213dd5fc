"""The window's newer actions, sent through the sync engine: transfer, end, wrap-up with a
disposition, callbacks, the chat typing hint, and the phone's call reports.

Why a separate controller: `AgentActions` carries the inbox and offers; these act on the open
conversation and the phone. Each one goes to `SyncEngine` (outbox first, so it survives being
offline), and a refusal from the router comes back here in words under the buttons.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from client.agent_actions import explain
from client.qt import QObject

if TYPE_CHECKING:
    from client.conversation_view import ConversationView
    from client.main_window import MainWindow

log = logging.getLogger(__name__)

CONVERSATION_COMMANDS = {
    "transfer": "Transfer",
    "end_conversation": "Ending the conversation",
    "set_disposition": "The disposition",
    "wrap_up": "Wrap-up",
    "schedule_callback": "The call back",
}


class ConversationCommands(QObject):
    """Wires `ConversationControls`, the composer's typing and the phone column to the engine."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        window.conversation.when_built(self._wire_controls)
        window.conversation.typing.connect(self.typing)
        window.phone.call_reported.connect(self.call_event)
        window.phone.open_conversation.connect(self._open)
        self.typing_sent = 0  # hints the router took (tests, and a debug log)

    def _wire_controls(self, view: ConversationView) -> None:
        """The conversation page is built after the first paint: connect its controls then."""
        c = view.controls
        c.transfer_requested.connect(self.transfer)
        c.team_requested.connect(self.team)
        c.end_requested.connect(self.end)
        c.wrap_up_requested.connect(self.wrap_up)
        c.callback_requested.connect(self.schedule_callback)

    def _run(self, what: str, fn: Any, done: str) -> None:
        controls = self.w.conversation.controls

        def ok(_cmd: object) -> None:
            controls.show_message(done)

        def fail(why: str) -> None:
            controls.show_message(f"{what} failed: {why}", True)

        self.w.agent.call(what, fn, ok, fail)

    def transfer(self, cid: str, kind: str, target: str) -> None:
        args = {kind: target}
        names = self.w.conversation.controls.team_names
        who = names.get(target, target) if kind == "agent" else target
        self._run("Transfer", lambda e: e.transfer(cid, **args), f"Transfer to {who} sent.")

    def team(self) -> None:
        """Fill the open Transfer dialog with the router's team list (an HTTP read)."""
        controls = self.w.conversation.controls
        self.w.agent.call("team", lambda e: e.team(), controls.set_team, controls.team_failed)

    def end(self, cid: str) -> None:
        self._run("Ending", lambda e: e.end_conversation(cid), "Ended: wrap up when ready.")

    def wrap_up(self, cid: str, disposition: str, note: str) -> None:
        self._run(
            "Wrap-up",
            lambda e: e.wrap_up(cid, disposition, note or None),
            f"Wrapped up as {disposition.replace('_', ' ')}.",
        )

    def schedule_callback(self, cid: str, at: float, note: str) -> None:
        from client.formatting import clock

        self._run(
            "Call back",
            lambda e: e.schedule_callback(cid, at, note=note or None),
            f"Call back scheduled for {clock(at)}.",
        )

    def typing(self, cid: str) -> None:
        """Best effort: a lost hint is harmless, but its failure is logged, not dropped."""

        def ok(_n: object) -> None:
            self.typing_sent += 1

        self.w.agent.call(
            "typing",
            lambda e: e.typing(cid),
            ok,
            lambda why: log.info("typing hint not delivered: %s", why),
        )

    def call_event(
        self,
        call_id: str,
        direction: str,
        remote: str,
        state: str,
        at: float,
        reason: str = "",
        code: int = 0,
    ) -> None:
        self.w.agent.call(
            "call_event",
            lambda e: e.call_event(
                call_id, direction, remote, state, at, reason=reason or None, code=code or None
            ),
            lambda _c: None,
            lambda why: self.w.status.notify(f"Could not report the call: {why}", 8000),
        )

    def _open(self, cid: str) -> None:
        if not self.w.inbox.select(cid):
            self.w.conversation.open(cid)

    def on_command_failed(self, command_id: str, name: str, code: str, message: str) -> None:
        """The router refused one of these: say so under the conversation's buttons."""
        what = CONVERSATION_COMMANDS.get(name)
        if what is not None:
            self.w.conversation.controls.show_message(
                f"{what} was refused: {explain(code, message)}", True
            )
