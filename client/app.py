"""Start-up and shutdown: the window first, then the router and the sync engine.

Why this order: the agent sees a window within a few hundred milliseconds (the cache is read
directly), and everything the first paint does not need (the sync engine and its websocket
library, the keychain) is imported and started on the next turn of the event loop. The
embedded router's address arrives as a signal; nothing here waits on a process or a socket.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client.bridge import SyncBridge
from client.embedded_router import EmbeddedRouter
from client.main_window import MainWindow
from client.ops import Op
from client.phone.engine_process import HEADSET_ARGS, PhoneEngineProcess
from client.qt import QObject, QSettings, QStandardPaths, QTimer, Signal
from client.status_bar import ConnectionStatus
from client.store_reader import StoreReader

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    """What the command line asked for."""

    data_dir: Path | None = None
    router_url: str | None = None
    # The phone engine's command line: the agent's headset by default; tests give a WAV
    # backend and loopback ports.
    phone_args: tuple[str, ...] = HEADSET_ARGS


def default_data_dir() -> Path:
    """QStandardPaths' AppDataLocation (the app's names must be set first)."""
    return Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation))


def cache_path(data_dir: Path, router_url: str | None) -> Path:
    """One cache per router: the embedded one, or one per central router address."""
    if router_url is None:
        return data_dir / "cache.db"
    digest = hashlib.sha256(router_url.rstrip("/").encode()).hexdigest()[:12]
    return data_dir / f"cache-{digest}.db"


class AppController(QObject):
    """Owns the window, the embedded router (if any), the bridge and the sync engine.

    Signals:
        engine_started(): the sync engine runs (tests and the self-test wait on it).
    """

    engine_started = Signal()

    def __init__(self, options: Options) -> None:
        super().__init__()
        self.options = options
        self.data_dir = options.data_dir or default_data_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.embedded = options.router_url is None
        self.cache = cache_path(self.data_dir, options.router_url)
        self.reader = StoreReader(self.cache)
        self.bridge = SyncBridge(self)
        self.window = MainWindow(
            self.reader,
            embedded=self.embedded,
            phone_engine=PhoneEngineProcess(list(options.phone_args)),
        )
        self.window.attach(self.bridge)
        self.router: EmbeddedRouter | None = None
        self.engine: Any = None
        self._closing = False
        self._went_online = False
        self._login_dialog: Any = None
        self._username = ""
        self.network: Any = None  # client.network_watch.NetworkWatch, after the first paint
        self.bridge.connection.connect(self._on_connection)
        self.window.stop_router_requested.connect(self.stop_router)
        self.window.start_router_requested.connect(self.start_router)
        self.window.login_requested.connect(lambda: self._ask_login(""))

    # -- start ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Show the window now; start the rest after the first paint."""
        self.window.show()
        self.window.status.set_status(
            ConnectionStatus(
                "starting",
                "Starting the local router…" if self.embedded else "Connecting to the router…",
            )
        )
        QTimer.singleShot(0, self._after_first_paint)

    def _after_first_paint(self) -> None:
        self.window.phone.start()  # the saved SIP account, or the "no SIP account" page
        from client.network_watch import NetworkWatch

        self.network = NetworkWatch(self)
        self.network.back_online.connect(self.on_back_online)
        if self.embedded:
            self.router = EmbeddedRouter(self.data_dir, self)
            self.router.listening.connect(self._on_router_listening)
            self.router.failed.connect(self._on_router_failed)
            self.router.stopped.connect(lambda: self.window.set_router_running(False))
            self.router.start()
        else:
            self._central_login()

    def on_back_online(self, why: str) -> None:
        """The OS network came back or moved: reconnect without waiting out the backoff,
        and have the phone re-register from the new address."""
        log.info("%s", why)
        if self.engine is not None and self.engine.status.state != "online":
            self.engine.reconnect_now()
        self.window.phone.network_changed(why)

    def _on_router_listening(self, url: str) -> None:
        assert self.router is not None
        self.window.set_router_running(True)
        if self.engine is None:
            self.connect_engine(url, self.router.username, self.router.password)
        else:
            self.engine.reconnect_now()  # the Demo menu restarted it: do not wait for backoff

    def _on_router_failed(self, reason: str) -> None:
        log.error("embedded router: %s", reason)
        self.window.set_router_running(False)
        self.window.status.set_status(
            ConnectionStatus("error", reason, self.window.status.status.outbox)
        )

    def connect_engine(self, url: str, username: str, password: str | None) -> None:
        """Start the sync engine against `url` (called once the router address is known)."""
        # Imported here, after the first paint: websockets and friends are not needed to draw.
        from sync.client import SyncEngine

        self._username = username
        self.engine = SyncEngine(
            self.cache, url, on_change=self.bridge.listener, username=username, password=password
        )
        self.bridge.attach(self.engine)
        self.engine.start()
        log.info("sync engine started for %s at %s", username, url)
        self.engine_started.emit()

    # -- central router: keychain or login dialog ---------------------------------------------

    def _central_login(self) -> None:
        from client import credentials

        url = self.options.router_url or ""
        username = str(QSettings().value("login/username", "") or "")
        if not username:
            self._ask_login("")
            return
        Op(lambda: credentials.load(url, username)).success(
            lambda stored: (
                self.connect_engine(url, username, stored.password)
                if stored.password
                else self._ask_login(stored.problem)
            )
        ).failure(lambda exc: self._ask_login(f"The keychain failed: {exc}")).run()

    def _ask_login(self, problem: str) -> None:
        from client.login_dialog import LoginDialog

        url = self.options.router_url or ""
        username = self._username or str(QSettings().value("login/username", "") or "")
        dialog = LoginDialog(url, username, problem, self.window)
        dialog.submitted.connect(self._on_login_entered)
        dialog.rejected.connect(
            lambda: self.window.status.set_status(
                ConnectionStatus("auth_failed", "not logged in — use File ▸ Log in…")
            )
        )
        self._login_dialog = dialog
        dialog.open()

    def _on_login_entered(self, username: str, password: str) -> None:
        from client import credentials

        url = self.options.router_url or ""
        QSettings().setValue("login/username", username)  # the name only, never the password
        Op(lambda: credentials.save(url, username, password)).success(
            lambda stored: (
                None
                if stored.keychain_ok
                else self.window.status.notify(stored.problem + " You will be asked again.")
            )
        ).failure(lambda exc: self.window.status.notify(f"Keychain error: {exc}")).run()
        if self.engine is None:
            self.connect_engine(url, username, password)
        else:
            self._username = username
            self.engine.set_credentials(username, password)

    def _on_connection(self, status: ConnectionStatus) -> None:
        if status.state == "auth_failed" and not self.embedded and self._login_dialog is None:
            self._ask_login(status.detail)
        elif status.state == "online":
            self._login_dialog = None
            if self.embedded and not self._went_online:
                self._demo_available()
            self._went_online = True

    def _demo_available(self) -> None:
        """Embedded demo: a newcomer should see offers within seconds, so an agent who is
        offline on the first connection is made Available (a real router never does this)."""
        state = self.reader.agent_state()
        if state is None or state.state == "offline":
            log.info("embedded demo: setting the agent Available")
            self.window.state_selector.request("available", "")

    # -- Demo menu -----------------------------------------------------------------------------

    def stop_router(self) -> None:
        if self.router is not None:
            self.window.stop_router_action.setEnabled(False)
            self.router.stop()

    def start_router(self) -> None:
        if self.router is not None:
            self.window.start_router_action.setEnabled(False)
            self.router.start()

    # -- shutdown ------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop the engine (flushes and closes the cache) and the embedded router."""
        if self._closing:
            return
        self._closing = True
        if self.engine is not None:
            self.engine.stop()
        self.window.phone_engine.stop()  # hangs up and unregisters before the router goes
        if self.router is not None:
            self.router.stop_and_wait()
        self.reader.close()
        log.info("shut down")
