"""The agent's SIP account: settings in QSettings, the password in the OS keychain only.

Why split: QSettings is a plain file (or registry) an administrator may copy; a password there
would leak. `keyring` may block or be missing, so its calls run off the UI thread (`Op`) and a
missing keychain is said in words (the password is then kept for this session only).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from client.qt import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSettings,
    QWidget,
)

log = logging.getLogger(__name__)

SERVICE = "switchboard-sip"
TRANSPORTS = ("udp", "tcp", "tls")


@dataclass(frozen=True)
class SipAccount:
    """Where and as whom the phone registers (no password: that is in the keychain)."""

    domain: str
    username: str
    registrar: str = ""
    proxy: str = ""
    transport: str = "udp"
    stun_server: str = ""  # remote workers behind NAT: host[:port]
    ice: bool = False
    turn_server: str = ""  # a TURN relay (through ICE); its password is in the keychain
    turn_user: str = ""

    def key(self) -> str:
        return f"{self.username}@{self.domain}"

    def turn_key(self) -> str:
        """The keychain entry of the TURN password."""
        return f"turn:{self.turn_user}@{self.turn_server}"

    def register_args(
        self, password: str | None, turn_password: str | None = None
    ) -> dict[str, Any]:
        """Arguments of the engine's `register` command (docs/engine-protocol.md)."""
        args: dict[str, Any] = {
            "user": self.username,
            "domain": self.domain,
            "transport": self.transport,
        }
        if self.registrar:
            args["registrar"] = self.registrar
        if self.proxy:
            args["proxy"] = self.proxy
        if password:
            args["password"] = password
        if self.stun_server:
            args["stun_servers"] = [self.stun_server]
        if self.ice:
            args["ice"] = True
        if self.turn_server:
            args["turn_server"] = self.turn_server
            args["turn_user"] = self.turn_user
            if turn_password:
                args["turn_password"] = turn_password
        return args


def load_account(settings: QSettings | None = None) -> SipAccount | None:
    """The saved account, or None when the agent has not set one up."""
    s = settings or QSettings()
    domain = str(s.value("sip/domain", "") or "")
    user = str(s.value("sip/username", "") or "")
    if not domain or not user:
        return None
    transport = str(s.value("sip/transport", "udp") or "udp")
    return SipAccount(
        domain=domain,
        username=user,
        registrar=str(s.value("sip/registrar", "") or ""),
        proxy=str(s.value("sip/proxy", "") or ""),
        transport=transport if transport in TRANSPORTS else "udp",
        stun_server=str(s.value("sip/stun_server", "") or ""),
        ice=str(s.value("sip/ice", "false")).lower() == "true",
        turn_server=str(s.value("sip/turn_server", "") or ""),
        turn_user=str(s.value("sip/turn_user", "") or ""),
    )


def save_account(account: SipAccount, settings: QSettings | None = None) -> None:
    """Remember the account (never the password)."""
    s = settings or QSettings()
    s.setValue("sip/domain", account.domain)
    s.setValue("sip/username", account.username)
    s.setValue("sip/registrar", account.registrar)
    s.setValue("sip/proxy", account.proxy)
    s.setValue("sip/transport", account.transport)
    s.setValue("sip/stun_server", account.stun_server)
    s.setValue("sip/ice", "true" if account.ice else "false")
    s.setValue("sip/turn_server", account.turn_server)
    s.setValue("sip/turn_user", account.turn_user)


def _keychain_get(key: str) -> str | None:
    """This app's keychain secret under `key` (keyring is imported on first use)."""
    import keyring

    return keyring.get_password(SERVICE, key)


def _keychain_set(key: str, secret: str) -> None:
    """Store this app's keychain secret under `key`."""
    import keyring

    keyring.set_password(SERVICE, key, secret)


def load_password(account: SipAccount) -> str | None:
    """The keychain's password for the account (blocking: call through `Op`).

    Raises:
        keyring.errors.KeyringError: there is no usable keychain.
    """
    return _keychain_get(account.key())


def save_password(account: SipAccount, password: str) -> None:
    """Store the password in the keychain (blocking: call through `Op`).

    Raises:
        keyring.errors.KeyringError: there is no usable keychain.
    """
    _keychain_set(account.key(), password)


def load_turn_password(account: SipAccount) -> str | None:
    """The keychain's TURN password, None without a TURN server (blocking: call via `Op`).

    Raises:
        keyring.errors.KeyringError: there is no usable keychain.
    """
    return _keychain_get(account.turn_key()) if account.turn_server else None


def save_turn_password(account: SipAccount, password: str) -> None:
    """Store the TURN password in the keychain (blocking: call through `Op`).

    Raises:
        keyring.errors.KeyringError: there is no usable keychain.
    """
    _keychain_set(account.turn_key(), password)


class SipSettingsDialog(QDialog):
    """Registrar/domain, user name, password, outbound proxy, transport, and for remote
    workers a STUN server, ICE and a TURN relay."""

    def __init__(self, account: SipAccount | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Phone settings")
        form = QFormLayout(self)
        intro = QLabel("Your SIP account, from your telephony administrator.", self)
        intro.setWordWrap(True)
        form.addRow(intro)
        self.domain = QLineEdit(account.domain if account else "", self)
        self.domain.setPlaceholderText("pbx.example.com")
        self.username = QLineEdit(account.username if account else "", self)
        self.password = QLineEdit(self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("Kept in the system keychain")
        self.registrar = QLineEdit(account.registrar if account else "", self)
        self.registrar.setPlaceholderText("Same as the domain")
        self.proxy = QLineEdit(account.proxy if account else "", self)
        self.proxy.setPlaceholderText("None")
        self.transport = QComboBox(self)
        for t in TRANSPORTS:
            self.transport.addItem(t.upper(), t)
        if account:
            self.transport.setCurrentIndex(TRANSPORTS.index(account.transport))
        form.addRow("SIP domain", self.domain)
        form.addRow("User name", self.username)
        form.addRow("Password", self.password)
        form.addRow("Registrar", self.registrar)
        form.addRow("Outbound proxy", self.proxy)
        form.addRow("Transport", self.transport)
        nat = QLabel("Working from home: your administrator gives these, if any.", self)
        nat.setObjectName("dialogHint")
        nat.setWordWrap(True)
        form.addRow(nat)
        self.stun = QLineEdit(account.stun_server if account else "", self)
        self.stun.setPlaceholderText("None, e.g. stun.example.com:3478")
        self.ice = QCheckBox("Use ICE (only when the PBX supports it)", self)
        self.ice.setChecked(bool(account and account.ice))
        self.turn = QLineEdit(account.turn_server if account else "", self)
        self.turn.setPlaceholderText("None, e.g. turn.example.com:3478")
        self.turn_user = QLineEdit(account.turn_user if account else "", self)
        self.turn_password = QLineEdit(self)
        self.turn_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.turn_password.setPlaceholderText("Kept in the system keychain")
        form.addRow("STUN server", self.stun)
        form.addRow("", self.ice)
        form.addRow("TURN server", self.turn)
        form.addRow("TURN user", self.turn_user)
        form.addRow("TURN password", self.turn_password)
        self.error = QLabel("", self)
        self.error.setStyleSheet("color: #b42318;")
        form.addRow(self.error)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def account(self) -> SipAccount:
        return SipAccount(
            domain=self.domain.text().strip(),
            username=self.username.text().strip(),
            registrar=self.registrar.text().strip(),
            proxy=self.proxy.text().strip(),
            transport=str(self.transport.currentData()),
            stun_server=self.stun.text().strip(),
            ice=self.ice.isChecked(),
            turn_server=self.turn.text().strip(),
            turn_user=self.turn_user.text().strip(),
        )

    def _accept(self) -> None:
        a = self.account()
        if not a.domain or not a.username:
            self.error.setText("The SIP domain and the user name are both needed.")
            return
        if a.turn_server and not a.ice:
            self.error.setText("A TURN server is used through ICE: tick “Use ICE” too.")
            return
        self.accept()
