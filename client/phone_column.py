"""The phone column: the real phone panel, the caller's record on an incoming call, and an
honest "no SIP account" page when there is nothing to register with.

Why here and not in client/phone/: that package is the phone engine's UI (the VoIP owner's);
this module joins it to the rest of the window: account settings and keychain, screen pop from
the cache, and every call state reported to the router (`call_reported`).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from client.cache_extras import Caller, caller, e164
from client.ops import Op
from client.phone.engine_process import PhoneEngineProcess
from client.phone.panel import PhonePanel
from client.qt import (
    QFrame,
    QLabel,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    Qt,
    QVBoxLayout,
    QWidget,
    Signal,
)
from client.resources import icon
from client.sip_settings import (
    SipAccount,
    SipSettingsDialog,
    load_account,
    load_password,
    load_turn_password,
    save_account,
    save_password,
    save_turn_password,
)
from client.store_reader import StoreReader

log = logging.getLogger(__name__)

# Engine call states -> the router's `call_event` states (docs/routing.md): the router needs
# to know when a call rings, is up, is held and has ended.
_ROUTER_STATES = {
    "incoming": "ringing",
    "calling": "dialing",
    "early": "ringing",
    "connecting": "connecting",
    "confirmed": "connected",
    "disconnected": "ended",
}

# Why an unanswered incoming call ended, from the SIP status of its end (the engine's
# `call_state` `code`): the router counts `caller_cancel` as an abandon, the others as offered
# but not handled (docs/metrics.md, "Voice"). 487 means the INVITE was cancelled: the caller
# hung up, or the PBX took the ring back (the engine does not pass the CANCEL's Reason
# header on, so the two cannot be told apart here).
_END_REASONS = {487: "caller_cancel", 486: "declined", 600: "declined", 603: "declined"}
_END_REASONS.update({408: "timeout", 480: "timeout"})


def end_reason(code: int) -> str:
    """The `call_event` `reason` of an unanswered incoming call that ended with `code`."""
    return _END_REASONS.get(code, "failed")


class ScreenPop(QFrame):
    """Who is calling, from the cache: their name and last conversation, one click to open."""

    open_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("screenPop")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(2)
        self.name = QLabel("", self)
        self.name.setObjectName("popName")
        self.detail = QLabel("", self)
        self.detail.setObjectName("popDetail")
        self.detail.setWordWrap(True)
        self.open_button = QPushButton("Open last conversation", self)
        self.open_button.setObjectName("popOpen")
        self.open_button.clicked.connect(self._open)
        layout.addWidget(self.name)
        layout.addWidget(self.detail)
        layout.addWidget(self.open_button)
        self.current: Caller | None = None
        self.hide()

    def show_caller(self, c: Caller | None, number: str) -> None:
        self.current = c
        if c is None:
            self.name.setText(number or "Unknown caller")
            self.detail.setText("Not a customer we know yet.")
            self.open_button.hide()
        else:
            self.name.setText(c.name or c.number)
            what = c.last_subject or c.last_preview
            if len(what) > 70:
                what = what[:69].rstrip() + "…"
            self.detail.setText(
                f"{c.number} · last {c.last_channel}: “{what}”"
                if c.last_conversation_id
                else f"{c.number} · no earlier conversation"
            )
            self.open_button.setVisible(bool(c.last_conversation_id))
        self.show()

    def _open(self) -> None:
        if self.current and self.current.last_conversation_id:
            self.open_requested.emit(self.current.last_conversation_id)


class PhoneColumn(QWidget):
    """Holds the phone panel (when an account exists) or the setup page.

    Signals:
        settings_requested(): the agent wants to set up the SIP account.
        call_reported(call_id, direction, remote, state, at, reason, code): report to the
            router; `reason` ("" for none) and `code` (SIP status, 0 for none) on the end.
        open_conversation(conversation_id): the screen pop's one click.

    Args:
        reader: the cache reader (caller lookup).
        engine: the phone engine process (started here once an account exists).
    """

    settings_requested = Signal()
    call_reported = Signal(str, str, str, str, float, str, int)
    open_conversation = Signal(str)

    def __init__(
        self, reader: StoreReader, engine: PhoneEngineProcess, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("phoneColumn")
        self.reader = reader
        self.engine = engine
        self.account: SipAccount | None = None
        self.dialog: SipSettingsDialog | None = None  # the open settings dialog (tests drive it)
        self._call_ids: dict[str, tuple[str, str, str]] = {}  # engine key -> id, dir, remote
        self._answered: set[str] = set()  # engine keys of calls that were connected
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.stack = QStackedWidget(self)
        layout.addWidget(self.stack)

        setup = QWidget(self)
        setup.setObjectName("phonePanel")
        sl = QVBoxLayout(setup)
        sl.setContentsMargins(16, 12, 16, 16)
        title = QLabel("Phone", setup)
        title.setObjectName("panelTitle")
        sl.addWidget(title)
        sl.addStretch(1)
        art = QLabel(setup)
        art.setPixmap(icon("phone").pixmap(40, 40))
        art.setAlignment(Qt.AlignmentFlag.AlignCenter)
        sl.addWidget(art)
        self.setup_message = QLabel("No SIP account is set up.", setup)
        self.setup_message.setObjectName("phoneMessage")
        self.setup_message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setup_message.setWordWrap(True)
        sl.addWidget(self.setup_message)
        hint = QLabel(
            "Enter the SIP account from your telephony administrator to make and take calls.",
            setup,
        )
        hint.setObjectName("hint")
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setWordWrap(True)
        sl.addWidget(hint)
        self.settings_button = QPushButton("Phone settings…", setup)
        self.settings_button.clicked.connect(self.settings_requested)
        sl.addWidget(self.settings_button, 0, Qt.AlignmentFlag.AlignHCenter)
        sl.addStretch(2)
        self.setup_page = setup
        self.stack.addWidget(setup)

        page = QWidget(self)
        pl = QVBoxLayout(page)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.setSpacing(0)
        self.pop = ScreenPop(page)
        self.pop.open_requested.connect(self.open_conversation)
        pl.addWidget(self.pop)
        self.panel = PhonePanel(engine, page)
        pl.addWidget(self.panel, 1)
        self.phone_page = page
        # A call row, the screen pop and the keypad need more height than a laptop screen
        # leaves under the offers and figures: scroll rather than squash the buttons.
        scroll = QScrollArea(self)
        scroll.setObjectName("phoneScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(page)
        self.stack.addWidget(scroll)
        self.phone_scroll = scroll
        engine.engine_event.connect(self._on_event)

    # -- account ---------------------------------------------------------------------------

    def start(
        self,
        account: SipAccount | None = None,
        password: str | None = None,
        turn_password: str | None = None,
    ) -> None:
        """Use `account` (else the saved one): start the engine and register, or show setup.

        Each password comes from its argument or, when None, from the keychain (off the UI
        thread); a missing keychain is shown in the panel, never hidden.
        """
        account = account or load_account()
        self.account = account
        if account is None:
            self.stack.setCurrentWidget(self.setup_page)
            return
        self.stack.setCurrentWidget(self.phone_scroll)
        self.engine.start()
        if password is not None and (turn_password is not None or not account.turn_server):
            self._register(account, password, turn_password)
            return

        def failed(exc: Exception) -> None:
            log.warning("no password from the keychain: %s", type(exc).__name__)
            self.panel.error.setText(
                "The system keychain is not available; enter the password in Phone settings."
            )
            self._register(account, password, turn_password)

        Op(
            lambda: (
                load_password(account) if password is None else password,
                load_turn_password(account) if turn_password is None else turn_password,
            )
        ).success(lambda pws: self._register(account, *pws)).failure(failed).run()

    def ask_settings(self) -> None:
        """The Phone settings dialog; saving registers with the new account at once."""
        dlg = SipSettingsDialog(self.account or load_account(), self)
        self.dialog = dlg
        try:
            if dlg.exec() != SipSettingsDialog.DialogCode.Accepted:
                return
        finally:
            self.dialog = None
        self.apply_settings(dlg.account(), dlg.password.text(), dlg.turn_password.text())

    def apply_settings(self, account: SipAccount, password: str, turn_password: str = "") -> None:
        """Remember the account (QSettings) and the passwords (keychain), then register."""
        save_account(account)
        if turn_password:
            Op(lambda: save_turn_password(account, turn_password)).failure(
                lambda exc: log.warning("TURN password not stored: %s", type(exc).__name__)
            ).run()
        if password:

            def no_keychain(exc: Exception) -> None:
                log.warning("SIP password not stored: %s", type(exc).__name__)
                self.panel.error.setText(
                    "The system keychain is not available, so the password is used for this "
                    "session only."
                )

            Op(lambda: save_password(account, password)).failure(no_keychain).run()
        self.start(account, password or None, turn_password or None)

    def _register(
        self, account: SipAccount, password: str | None, turn_password: str | None = None
    ) -> None:
        log.info("registering SIP account %s", account.key())  # never the password
        self.panel.command("register", **account.register_args(password, turn_password))

    def network_changed(self, why: str) -> None:
        """The OS says the network came back or moved: re-register now (the engine's own
        route watcher would notice within a few seconds; whichever is first wins)."""
        if self.engine.state != "running" or not self.engine.ready:
            return
        log.info("asking the phone engine to re-register: %s", why)
        self.engine.send("network_changed")

    # -- calls -----------------------------------------------------------------------------

    def _on_event(self, name: str, data: dict[str, Any]) -> None:
        if name == "incoming_call":
            remote = str(data.get("from") or "")
            self._report(str(data["call"]), "in", remote, "ringing")
            self.pop_for(remote, str(data.get("from_name") or ""))
        elif name == "call_state":
            key, state = str(data["call"]), str(data["state"])
            direction = "in" if data.get("role") == "incoming" else "out"
            code = int(data.get("code") or 0)
            self._report(key, direction, str(data.get("remote") or ""), state, code=code)
            if state == "disconnected" and not self._call_ids:
                self.pop.hide()
        elif name == "media_state":
            key = str(data["call"])
            if key in self._call_ids:
                status = str(data.get("status") or "")
                state = "hold" if status in ("local_hold", "remote_hold") else "connected"
                _, direction, remote = self._call_ids[key]
                self._report(key, direction, remote, state, raw=True)

    def pop_for(self, remote: str, display_name: str = "") -> None:
        """Look the caller up in the cache and show who it is (else their number, else the
        name their phone sent, else the raw address)."""
        self.pop.show_caller(caller(self.reader, remote), e164(remote) or display_name or remote)

    def _report(
        self, key: str, direction: str, remote: str, state: str, raw: bool = False, code: int = 0
    ) -> None:
        known = self._call_ids.get(key)
        if known is None:
            known = (str(uuid.uuid4()), direction, remote)
            self._call_ids[key] = known
        call_id, direction, first_remote = known
        router_state = state if raw else _ROUTER_STATES.get(state, state)
        reason = ""
        if state == "confirmed":
            self._answered.add(key)
        if state == "disconnected":
            del self._call_ids[key]
            if key not in self._answered and direction == "in":
                router_state = "missed"  # rang and ended unanswered: the ACD counts it apart
                reason = end_reason(code)
            self._answered.discard(key)
        self.call_reported.emit(
            call_id,
            direction,
            first_remote or remote,
            router_state,
            time.time(),
            reason,
            code if state == "disconnected" else 0,
        )
