"""The agent's SIP account: settings in QSettings, the password in the OS keychain only.

Why split: QSettings is a plain file (or registry) an administrator may copy; a password there
would leak. `keyring` may block or be missing, so its calls run off the UI thread (`Op`) and a
missing keychain is said in words (the password is then kept for this session only).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from client.qt import (
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

    def key(self) -> str:
        return f"{self.username}@{self.domain}"

    def register_args(self, password: str | None) -> dict[str, str]:
        """Arguments of the engine's `register` command (docs/engine-protocol.md)."""
        args = {"user": self.username, "domain": self.domain, "transport": self.transport}
        if self.registrar:
            args["registrar"] = self.registrar
        if self.proxy:
            args["proxy"] = self.proxy
        if password:
            args["password"] = password
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
    )


def save_account(account: SipAccount, settings: QSettings | None = None) -> None:
    """Remember the account (never the password)."""
    s = settings or QSettings()
    s.setValue("sip/domain", account.domain)
    s.setValue("sip/username", account.username)
    s.setValue("sip/registrar", account.registrar)
    s.setValue("sip/proxy", account.proxy)
    s.setValue("sip/transport", account.transport)


def load_password(account: SipAccount) -> str | None:
    """The keychain's password for the account (blocking: call through `Op`).

    Raises:
        keyring.errors.KeyringError: there is no usable keychain.
    """
    import keyring

    return keyring.get_password(SERVICE, account.key())


def save_password(account: SipAccount, password: str) -> None:
    """Store the password in the keychain (blocking: call through `Op`).

    Raises:
        keyring.errors.KeyringError: there is no usable keychain.
    """
    import keyring

    keyring.set_password(SERVICE, account.key(), password)


class SipSettingsDialog(QDialog):
    """Registrar/domain, user name, password, outbound proxy, transport."""

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
        )

    def _accept(self) -> None:
        a = self.account()
        if not a.domain or not a.username:
            self.error.setText("The SIP domain and the user name are both needed.")
            return
        self.accept()
