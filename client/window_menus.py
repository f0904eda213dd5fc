"""The main window's menus and keyboard shortcuts, kept out of the window's layout code.

Why a module: the window grew past what reads well in one file; menus change for reasons of
their own (a new setting, a new shortcut) and are easier to review apart.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from client.qt import QAction, QMessageBox

if TYPE_CHECKING:
    from client.main_window import MainWindow

log = logging.getLogger(__name__)


def build_menus(w: MainWindow, embedded: bool) -> None:
    """File (log in, phone settings, quit), Demo (stop/start the router), Help."""
    file_menu = w.menuBar().addMenu("&File")
    if not embedded:
        login_action = QAction("Log in…", w)
        login_action.triggered.connect(w.login_requested)
        file_menu.addAction(login_action)
    w.phone_settings_action = QAction("Phone settings…", w)
    w.phone_settings_action.triggered.connect(w.phone_settings_requested)
    file_menu.addAction(w.phone_settings_action)
    quit_action = QAction("&Quit", w)
    quit_action.setShortcut("Ctrl+Q")
    quit_action.triggered.connect(w.close)
    file_menu.addAction(quit_action)
    w.demo_menu = w.menuBar().addMenu("&Demo")
    w.stop_router_action = QAction("Stop router", w)
    w.stop_router_action.setToolTip("See how the app works offline")
    w.start_router_action = QAction("Start router", w)
    w.start_router_action.setEnabled(False)
    w.stop_router_action.triggered.connect(w.stop_router_requested)
    w.start_router_action.triggered.connect(w.start_router_requested)
    w.demo_menu.addAction(w.stop_router_action)
    w.demo_menu.addAction(w.start_router_action)
    w.demo_menu.menuAction().setVisible(embedded)
    help_menu = w.menuBar().addMenu("&Help")
    about = QAction("About Switchboard", w)
    about.triggered.connect(
        lambda: QMessageBox.about(
            w,
            "About Switchboard",
            "Switchboard — softphone and unified inbox for contact-center agents.",
        )
    )
    help_menu.addAction(about)


def add_shortcuts(w: MainWindow) -> None:
    """Accept/decline the first offer, jump to the composer."""
    for keys, slot in (
        ("Ctrl+Shift+A", w.agent.accept_first),
        ("Ctrl+Shift+D", w.agent.decline_first),
        ("Ctrl+N", lambda: w.conversation.composer.editor.setFocus()),
    ):
        act = QAction(w)
        act.setShortcut(keys)
        act.triggered.connect(slot)
        w.addAction(act)
