"""The one module every Qt import in the client goes through.

Why: version checks, workarounds and small helpers live in one place, and a future move to
another binding (or a pinned-version bump) touches one file. Modules import names from here,
never from PySide6 directly.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import PySide6
from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QCoreApplication,
    QDateTime,
    QEasingCurve,
    QElapsedTimer,
    QEvent,
    QItemSelectionModel,
    QMargins,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QPointF,
    QProcess,
    QProcessEnvironment,
    QPropertyAnimation,
    QRect,
    QRectF,
    QRunnable,
    QSettings,
    QSize,
    QStandardPaths,
    Qt,
    QThread,
    QThreadPool,
    QTimer,
    QUrl,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QBrush,
    QCloseEvent,
    QColor,
    QDesktopServices,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QIcon,
    QImage,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
    QResizeEvent,
    QShowEvent,
    QTextDocument,
    QTextOption,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QGraphicsDropShadowEffect,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QStatusBar,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from PySide6.QtNetwork import QNetworkInformation

log = logging.getLogger(__name__)


def __getattr__(name: str) -> object:
    """Names of Qt modules the first window does not need, loaded on first use.

    Why: loading QtNetwork costs start-up time for a feature (network change notices) that
    starts after the first paint.
    """
    if name == "QNetworkInformation":
        from PySide6.QtNetwork import QNetworkInformation

        return QNetworkInformation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _fast_feature_scan() -> None:
    """Make PySide6's per-import source scan read bytes instead of running `inspect`.

    Why: once PySide6 is loaded, its `__feature__` support looks at every module imported
    afterwards (`shibokensupport.feature._mod_uses_pyside`) with `inspect.getsource`, which
    tokenizes the file through linecache: about 0.3 ms a module, 20 ms of this window's
    start (bench/bench_cache.py, figure 5). The question it asks, "does the source mention
    PySide6?", is answered the same by reading the file's bytes. Modules without a `.py`
    file (the frozen app's) keep the original answer.
    """
    feature = sys.modules.get("shibokensupport.feature")
    original = getattr(feature, "_mod_uses_pyside", None)
    if original is None or getattr(original, "switchboard", False):
        return

    def uses_pyside(module: object) -> bool:
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or not path.endswith(".py"):
            return bool(original(module))
        try:
            with open(path, "rb") as source:
                return b"PySide6" in source.read()
        except OSError:
            return bool(original(module))

    uses_pyside.switchboard = True  # type: ignore[attr-defined]
    feature._mod_uses_pyside = uses_pyside  # type: ignore[union-attr]


PYSIDE_VERSION: tuple[int, ...] = tuple(int(p) for p in PySide6.__version__.split(".")[:3])


def _check_version() -> None:
    """Refuse the PySide6 build known to abort this app (DESIGN.md, Versions that matter).

    6.12.0 on CPython 3.11 leaks references to None on every Signal.emit() and the process
    aborts with `none_dealloc` after a few hundred emits: better a clear message at start than
    a crash in the middle of a customer conversation.
    """
    if PYSIDE_VERSION[:2] >= (6, 12) and sys.version_info[:2] == (3, 11):
        raise RuntimeError(
            f"PySide6 {PySide6.__version__} is known to crash on Python 3.11; "
            "install PySide6-Essentials==6.11.2 (see pyproject.toml)"
        )
    if PYSIDE_VERSION != (6, 11, 2):
        log.warning("PySide6 %s is not the tested 6.11.2", PySide6.__version__)


_check_version()
_fast_feature_scan()

__all__ = [
    "PYSIDE_VERSION",
    "QAbstractItemView",
    "QAbstractListModel",
    "QAction",
    "QActionGroup",
    "QApplication",
    "QBrush",
    "QButtonGroup",
    "QByteArray",
    "QCheckBox",
    "QCloseEvent",
    "QColor",
    "QComboBox",
    "QCoreApplication",
    "QDateTime",
    "QDateTimeEdit",
    "QDesktopServices",
    "QDialog",
    "QDialogButtonBox",
    "QEasingCurve",
    "QElapsedTimer",
    "QEvent",
    "QFont",
    "QFontMetrics",
    "QFormLayout",
    "QFrame",
    "QGraphicsDropShadowEffect",
    "QGridLayout",
    "QGuiApplication",
    "QHBoxLayout",
    "QIcon",
    "QImage",
    "QItemSelectionModel",
    "QKeyEvent",
    "QKeySequence",
    "QLabel",
    "QLineEdit",
    "QListView",
    "QMainWindow",
    "QMargins",
    "QMenu",
    "QMessageBox",
    "QModelIndex",
    "QNetworkInformation",
    "QObject",
    "QPaintEvent",
    "QPainter",
    "QPainterPath",
    "QPalette",
    "QPen",
    "QPersistentModelIndex",
    "QPixmap",
    "QPlainTextEdit",
    "QPoint",
    "QPointF",
    "QProcess",
    "QProcessEnvironment",
    "QProgressBar",
    "QPropertyAnimation",
    "QPushButton",
    "QRect",
    "QRectF",
    "QResizeEvent",
    "QRunnable",
    "QScrollArea",
    "QSettings",
    "QShowEvent",
    "QSize",
    "QSizePolicy",
    "QSplitter",
    "QStackedWidget",
    "QStandardPaths",
    "QStatusBar",
    "QStyle",
    "QStyleOptionViewItem",
    "QStyledItemDelegate",
    "QTextBrowser",
    "QTextDocument",
    "QTextOption",
    "QThread",
    "QThreadPool",
    "QTimer",
    "QToolButton",
    "QUrl",
    "QVBoxLayout",
    "QWidget",
    "Qt",
    "Signal",
    "Slot",
]
