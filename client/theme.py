"""Applies the app's look: style sheet, Fusion base style, font, application names.

Why Fusion under the style sheet: it renders the same on Windows, macOS and Linux, so the
screenshots in docs/ are what every agent sees, and style-sheet rules behave the same.
"""

from __future__ import annotations

import logging

from client.qt import QApplication, QCoreApplication, QFont
from client.resources import icon, style_sheet

log = logging.getLogger(__name__)

APP_NAME = "Switchboard"
ORG_NAME = "Switchboard"


def set_names() -> None:
    """Names used by QStandardPaths (data dir) and QSettings; call before either."""
    QCoreApplication.setOrganizationName(ORG_NAME)
    QCoreApplication.setApplicationName(APP_NAME)


def apply_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    font = QFont(app.font())
    font.setPointSizeF(9.5)
    app.setFont(font)
    app.setWindowIcon(icon("app"))
    app.setStyleSheet(style_sheet())
