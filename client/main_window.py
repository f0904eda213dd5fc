"""The agent's main window: state, inbox, open conversation, phone, offers, connection.

Why the window talks to the engine only through `SyncBridge` and reads only through
`StoreReader`: the UI thread never waits. Notifications mark parts dirty; `RefreshScheduler`
re-reads them at most every 60 ms. Every action's outcome (a refused message, a taken offer,
an unreachable router) comes back as words in the place the agent is looking.
"""

from __future__ import annotations

import logging

from client.agent_actions import AgentActions
from client.bridge import SyncBridge
from client.cache_extras import agent_info, metrics
from client.conversation_commands import ConversationCommands
from client.conversation_view import ConversationView
from client.inbox_model import InboxModel
from client.inbox_panel import InboxPanel
from client.metrics_panel import MetricsPanel
from client.offer_toast import OfferStack
from client.phone.engine_process import HEADSET_ARGS, PhoneEngineProcess
from client.phone_column import PhoneColumn
from client.qt import (
    QAction,
    QApplication,
    QByteArray,
    QCloseEvent,
    QGuiApplication,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QSettings,
    QSplitter,
    Qt,
    QTimer,
    QVBoxLayout,
    QWidget,
    Signal,
)
from client.refresh import RefreshScheduler
from client.resources import icon
from client.state_selector import StateSelector
from client.status_bar import ConnectionStatus, StatusBar
from client.store_reader import StoreReader
from client.window_menus import add_shortcuts, build_menus

log = logging.getLogger(__name__)

DEFAULT_SIZE = (1360, 860)
FALLBACK_REFRESH_MS = 3000


class MainWindow(QMainWindow):
    """The window; `bridge` may be None (no engine yet: reading the cache only).

    Args:
        reader: the read-only cache reader.
        bridge: the sync bridge, or None until the engine is up.
        embedded: show the Demo menu (stop/start the embedded router).
        phone_engine: the phone engine process (made here, not started, when None; the
            phone column starts it once a SIP account exists).
    """

    stop_router_requested = Signal()
    login_requested = Signal()
    start_router_requested = Signal()
    phone_settings_requested = Signal()

    stop_router_action: QAction
    start_router_action: QAction
    phone_settings_action: QAction
    demo_menu: QMenu

    def __init__(
        self,
        reader: StoreReader,
        bridge: SyncBridge | None = None,
        embedded: bool = False,
        phone_engine: PhoneEngineProcess | None = None,
    ) -> None:
        super().__init__()
        self.reader = reader
        self.bridge = bridge
        self.setWindowTitle("Switchboard")
        self.setWindowIcon(icon("app"))
        self.resize(*self._default_size())
        self.setMinimumSize(980, 600)

        # -- top bar ---------------------------------------------------------------------------
        top = QWidget(self)
        top.setObjectName("topBar")
        tl = QHBoxLayout(top)
        tl.setContentsMargins(14, 6, 14, 6)
        logo = QLabel(top)
        logo.setPixmap(icon("app").pixmap(22, 22))
        tl.addWidget(logo)
        brand = QLabel("Switchboard", top)
        brand.setObjectName("brand")
        tl.addWidget(brand)
        tl.addStretch(1)
        self.agent_label = QLabel("", top)
        self.agent_label.setObjectName("agentName")
        tl.addWidget(self.agent_label)
        self.state_selector = StateSelector(top)
        tl.addWidget(self.state_selector)

        # -- three columns ---------------------------------------------------------------------
        central = QWidget(self)
        cl = QHBoxLayout(central)
        cl.setContentsMargins(0, 0, 0, 0)
        splitter = QSplitter(Qt.Orientation.Horizontal, central)
        splitter.setObjectName("mainSplitter")
        self.splitter = splitter
        splitter.setHandleWidth(1)
        splitter.setChildrenCollapsible(False)
        self.inbox_model = InboxModel(reader, parent=self)
        self.inbox = InboxPanel(self.inbox_model, splitter)
        self.conversation = ConversationView(reader, splitter)
        right = QWidget(splitter)
        right.setObjectName("rightColumn")
        rl = _vbox(right)
        self.offers = OfferStack(right)
        self.offers.setAccessibleName("Offers")
        rl.addWidget(self.offers)
        self.metrics = MetricsPanel(right)
        rl.addWidget(self.metrics)
        self.phone_engine = phone_engine or PhoneEngineProcess(list(HEADSET_ARGS), parent=self)
        self.phone = PhoneColumn(reader, self.phone_engine, right)
        self.phone.settings_requested.connect(self.phone.ask_settings)
        self.phone_settings_requested.connect(self.phone.ask_settings)
        rl.addWidget(self.phone, 1)
        splitter.addWidget(self.inbox)
        splitter.addWidget(self.conversation)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setStretchFactor(2, 0)
        splitter.setSizes([400, 680, 280])
        self.inbox.setMinimumWidth(320)
        right.setMinimumWidth(250)
        cl.addWidget(splitter)
        wrapper = QWidget(self)
        wl = _vbox(wrapper)
        wl.addWidget(top)
        wl.addWidget(central, 1)
        self.setCentralWidget(wrapper)

        self.status = StatusBar(self)
        self.status.linked.connect(self.state_selector.set_connected)
        self.setStatusBar(self.status)

        build_menus(self, embedded)

        # -- refresh plumbing ------------------------------------------------------------------
        self.scheduler = RefreshScheduler(60, self)
        self.scheduler.register("inbox", self._refresh_inbox)
        self.scheduler.register("thread", self._refresh_thread)
        self.scheduler.register("offers", lambda _k: self._refresh_offers())
        self.scheduler.register("state", lambda _k: self._refresh_state())
        self.scheduler.register("outbox", lambda _k: self.status.set_outbox(reader.outbox_count()))
        self.scheduler.register("metrics", lambda _k: self.metrics.show_metrics(metrics(reader)))
        self._fallback = QTimer(self)
        self._fallback.setInterval(FALLBACK_REFRESH_MS)
        self._fallback.timeout.connect(self.mark_all)
        self._fallback.start()

        self.agent = AgentActions(self)
        self.commands = ConversationCommands(self)
        add_shortcuts(self)
        self._restore_layout()
        if bridge is not None:
            self.attach(bridge)
        self.reload()

    # -- wiring ----------------------------------------------------------------------------------

    def attach(self, bridge: SyncBridge) -> None:
        """Connect to the engine's bridge (it may arrive after the first paint)."""
        self.bridge = bridge
        bridge.connection.connect(self.status.set_status)
        bridge.connection.connect(lambda _s: self.scheduler.mark("outbox"))
        bridge.changed.connect(self._on_changed)
        bridge.command_failed.connect(self.agent.on_command_failed)
        bridge.command_failed.connect(self.commands.on_command_failed)
        bridge.offers_changed.connect(lambda: self.scheduler.mark("offers"))
        bridge.issue.connect(self._on_issue)
        bridge.session.connect(self._on_session)

    def reload(self) -> None:
        """Read everything now (first paint, and after the engine has started)."""
        agent = self.reader.my_agent_id()
        self.inbox_model.set_agent_id(agent)
        self.conversation.my_agent = agent
        if self.inbox_model.rowCount() == 0:
            self.inbox_model.fetchMore()
        self.mark_all()
        self.scheduler.flush()

    def mark_all(self) -> None:
        for part in ("inbox", "thread", "offers", "state", "outbox", "metrics"):
            self.scheduler.mark(part, "*")

    def _on_changed(self, tables: set[str], conversation_ids: set[str]) -> None:
        everything = "*" in tables
        if everything or tables & {"conversations", "messages", "customers", "identities"}:
            # A customer's new name shows on each of their rows, which the change does not
            # list: only then (or with no ids at all) does the inbox re-read every loaded row.
            whole = everything or not conversation_ids or tables & {"customers", "identities"}
            self.scheduler.mark("inbox", *({"*"} if whole else conversation_ids))
            self.scheduler.mark("thread", *(conversation_ids or {"*"}))
        if everything or "offers" in tables:
            self.scheduler.mark("offers")
        if everything or "agent_state" in tables or "sync_state" in tables:
            self.scheduler.mark("state")
        if everything or "outbox" in tables or "messages" in tables:
            self.scheduler.mark("outbox")
        if everything or "metrics" in tables:
            self.scheduler.mark("metrics")

    def _refresh_inbox(self, keys: set[str]) -> None:
        self.inbox_model.refresh(keys)
        # An accepted offer's assignment may land after the offer has gone: open it now.
        self.agent.open_accepted()

    def _refresh_thread(self, keys: set[str]) -> None:
        cid = self.conversation.conversation_id
        if cid and ("*" in keys or cid in keys):
            self.conversation.refresh()

    def _refresh_state(self) -> None:
        st = self.reader.agent_state()
        agent = self.reader.my_agent_id()
        if agent != self.inbox_model.agent_id:
            self.inbox_model.set_agent_id(agent)
            self.conversation.my_agent = agent
        if st is not None:
            self.state_selector.set_state(st.state, st.reason)
        self.state_selector.set_reasons(agent_info(self.reader).reason_codes)
        name = self.reader.my_agent_name()
        if name:
            self.agent_label.setText(name)
            self.conversation.my_name = name

    def _refresh_offers(self) -> None:
        before = set(self.offers.toasts)
        self.offers.show_offers(self.reader.offers())
        count = len(self.offers.toasts)
        self.setWindowTitle(
            f"Switchboard — {count} offer{'s' if count != 1 else ''} waiting"
            if count
            else "Switchboard"
        )
        if set(self.offers.toasts) - before:
            # A new offer while the agent is in another window: flash the taskbar entry.
            QApplication.alert(self, 0)
        self.agent.open_accepted()

    def _on_issue(self, message: str, fatal: bool) -> None:
        """The engine met something it cannot use: say so; a fatal one stays on screen."""
        if fatal:
            self.status.set_status(ConnectionStatus("error", message, self.status.status.outbox))
        elif message.startswith("The local cache was damaged"):
            # The file the reader had open was moved aside: read the new one from now on.
            self.reader.close()
            self.inbox.reset_search()
            self.reload()
            self.status.notify(message, 60000)
        elif message.startswith("The disk is full"):
            # The agent must read these: they stay a minute (a full disk is said again on the
            # next write that fails).
            self.status.notify(message, 60000)
        else:
            self.status.notify(message, 8000)

    def _on_session(self, agent_id: str, agent_name: str) -> None:
        if agent_name:
            self.agent_label.setText(agent_name)
            self.conversation.my_name = agent_name
        if agent_id:
            self.conversation.my_agent = agent_id
            self.inbox_model.set_agent_id(agent_id)
        self.mark_all()

    def set_router_running(self, running: bool) -> None:
        self.stop_router_action.setEnabled(running)
        self.start_router_action.setEnabled(not running)

    def show_connection(self, status: ConnectionStatus) -> None:
        self.status.set_status(status)

    def _default_size(self) -> tuple[int, int]:
        """1360x860, or 95% of a smaller screen (a 1366x768 laptop must fit)."""
        screen = QGuiApplication.primaryScreen()
        if screen is None:
            return DEFAULT_SIZE
        avail = screen.availableGeometry()
        return (
            min(DEFAULT_SIZE[0], int(avail.width() * 0.95)),
            min(DEFAULT_SIZE[1], int(avail.height() * 0.95)),
        )

    def _restore_layout(self) -> None:
        """The agent's window size and column widths from last time (QSettings, no secrets)."""
        settings = QSettings()
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray | bytes) and geometry:
            self.restoreGeometry(geometry)
        splitter = settings.value("window/splitter")
        if isinstance(splitter, QByteArray | bytes) and splitter:
            self.splitter.restoreState(splitter)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self._fallback.stop()
        self.phone_engine.stop()
        settings = QSettings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/splitter", self.splitter.saveState())
        super().closeEvent(event)


def _vbox(widget: QWidget) -> QVBoxLayout:
    layout = QVBoxLayout(widget)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(0)
    return layout
