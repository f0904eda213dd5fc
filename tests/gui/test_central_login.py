"""--router-url: the password comes from the keychain or the login dialog, never a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backend import KeyringBackend
from pytestqt.qtbot import QtBot

from client.app import AppController, Options
from client.login_dialog import LoginDialog
from client.qt import QSettings
from tests.support.router_proc import DEMO_PASSWORD, RouterProcess
from tests.support.wait import deadline

T = int(deadline(20) * 1000)


class MemoryKeyring(KeyringBackend):
    """A real keyring backend kept in memory (the test machine has no keychain)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


@pytest.fixture
def memory_keyring() -> Any:
    before = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(before)


@pytest.fixture
def plain_router(tmp_path: Path) -> Any:
    with RouterProcess(tmp_path / "router.db", ["--demo-agents"]) as proc:
        yield proc


def _connected(c: AppController) -> bool:
    return c.window.status.connection.text() == "Connected to router"


def test_login_dialog_then_keychain_never_the_settings_file(
    qtbot: QtBot, tmp_path: Path, plain_router: RouterProcess, memory_keyring: MemoryKeyring
) -> None:
    c = AppController(Options(data_dir=tmp_path / "app", router_url=plain_router.url))
    qtbot.addWidget(c.window)
    try:
        c.start()
        qtbot.waitUntil(lambda: isinstance(c._login_dialog, LoginDialog), timeout=T)
        dialog: LoginDialog = c._login_dialog
        qtbot.waitUntil(dialog.isVisible, timeout=T)
        dialog.username.setText("ana")
        dialog.password.setText(DEMO_PASSWORD)
        dialog._ok()
        qtbot.waitUntil(lambda: _connected(c), timeout=T)
        qtbot.waitUntil(lambda: bool(memory_keyring.store), timeout=T)
        assert list(memory_keyring.store.values()) == [DEMO_PASSWORD]
        settings = QSettings()
        settings.sync()
        assert settings.value("login/username") == "ana"
        assert DEMO_PASSWORD not in Path(settings.fileName()).read_text()
        assert not c.embedded and not c.window.demo_menu.menuAction().isVisible()
    finally:
        c.shutdown()


def test_stored_password_connects_without_asking(
    qtbot: QtBot, tmp_path: Path, plain_router: RouterProcess, memory_keyring: MemoryKeyring
) -> None:
    QSettings().setValue("login/username", "ana")
    memory_keyring.set_password("switchboard", f"ana@{plain_router.url}", DEMO_PASSWORD)
    c = AppController(Options(data_dir=tmp_path / "app", router_url=plain_router.url))
    qtbot.addWidget(c.window)
    try:
        c.start()
        qtbot.waitUntil(lambda: _connected(c), timeout=T)
        assert c._login_dialog is None
    finally:
        c.shutdown()


def test_wrong_password_says_login_failed_and_asks_again(
    qtbot: QtBot, tmp_path: Path, plain_router: RouterProcess
) -> None:
    c = AppController(Options(data_dir=tmp_path / "app", router_url=plain_router.url))
    qtbot.addWidget(c.window)
    try:
        c.window.show()
        c.connect_engine(plain_router.url, "ana", "not-the-password")
        qtbot.waitUntil(
            lambda: c.window.status.connection.text().startswith("Login failed: "), timeout=T
        )
        qtbot.waitUntil(lambda: isinstance(c._login_dialog, LoginDialog), timeout=T)
        assert c._login_dialog.problem.isVisible()
    finally:
        c.shutdown()
