"""The agent's router password: the OS keychain (`keyring`) or the login dialog, never a file.

Why a separate module: keychain access can block (a DBus secret service unlocking) and may be
missing entirely on a headless Linux box; both cases are handled here once. Calls run off the
UI thread through `Op`; a missing keychain is reported so the dialog can tell the agent the
password will not be remembered, instead of failing quietly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

SERVICE = "switchboard"


@dataclass(frozen=True)
class Stored:
    password: str | None
    keychain_ok: bool
    problem: str = ""


def _key(router_url: str, username: str) -> str:
    return f"{username}@{router_url.rstrip('/')}"


def load(router_url: str, username: str) -> Stored:
    """The stored password, or None; `keychain_ok` False when there is no usable keychain."""
    import keyring
    import keyring.errors

    try:
        return Stored(keyring.get_password(SERVICE, _key(router_url, username)), True)
    except keyring.errors.KeyringError as exc:
        log.warning("no usable keychain: %s", exc)
        return Stored(
            None, False, "The system keychain is not available, so the password is not remembered."
        )


def save(router_url: str, username: str, password: str) -> Stored:
    """Store the password in the keychain; reports (does not raise) a missing keychain."""
    import keyring
    import keyring.errors

    try:
        keyring.set_password(SERVICE, _key(router_url, username), password)
        return Stored(password, True)
    except keyring.errors.KeyringError as exc:
        log.warning("could not store the password in the keychain: %s", exc)
        return Stored(
            password,
            False,
            "The system keychain is not available, so the password is not remembered.",
        )
