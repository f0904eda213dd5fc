"""Child processes for bench_cache.py's start-up and memory figures (not a benchmark itself).

    python bench/app_child.py bare
    python bench/app_child.py list CACHE
    python bench/app_child.py shell CACHE
    python bench/app_child.py app CACHE [--idle SECONDS]

`bare`: a bare PySide6 window, shown and painted, then closed: the baseline.
`list`: a plain QListView showing 40 conversation ids from CACHE (no styling, no other
widgets): what any window that lists the inbox pays at the least (Qt's enum types built on
first use, sqlite3, a model): context for the ratio, not a target.
`shell`: the real window's first-frame minimum, as a staged start would paint it: the app's
theme, the top bar with the state selector, the real inbox column (reader, model, delegate,
filters, search) and the status bar; no thread view, offers, metrics, phone or menus.
Context too: what splitting the start into stages could win at most.
`app`: the real window (client.app.AppController, a central router address that does not
answer, so no embedded router and no network) on CACHE: shown, first inbox page painted.
Both print `INTERACTIVE <seconds since the interpreter started>` at that point. With `--idle`
the app then starts its sync engine, opens a few threads, runs a search, idles, and prints
`RSS <MB>` (VmRSS from /proc) before exiting.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

UNREACHABLE = "http://127.0.0.1:9"


def since_start() -> float:
    """Seconds since this process was created (from /proc: includes interpreter start)."""
    ticks = os.sysconf("SC_CLK_TCK")
    with open("/proc/self/stat") as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19]) / ticks
    with open("/proc/uptime") as f:
        up = float(f.read().split()[0])
    return up - start


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bare() -> None:
    from PySide6.QtWidgets import QApplication, QWidget

    app = QApplication(sys.argv[:1])
    w = QWidget()
    w.resize(1360, 860)
    w.show()
    w.repaint()
    app.processEvents()
    print(f"INTERACTIVE {since_start():.4f}", flush=True)
    w.close()


def plain_list(cache: Path) -> None:
    import sqlite3

    from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt
    from PySide6.QtWidgets import QApplication, QListView

    app = QApplication(sys.argv[:1])
    db = sqlite3.connect(f"file:{cache}?mode=ro", uri=True)
    root = QModelIndex()
    rows = [r[0] for r in db.execute("SELECT id FROM conversations ORDER BY rowid DESC LIMIT 40")]

    class Model(QAbstractListModel):
        def rowCount(self, parent: QModelIndex | QPersistentModelIndex = root) -> int:  # noqa: N802
            return len(rows)

        def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> object:
            return rows[index.row()] if role == Qt.ItemDataRole.DisplayRole else None

    view = QListView()
    model = Model()
    view.setModel(model)
    view.resize(1360, 860)
    view.show()
    view.viewport().repaint()
    app.processEvents()
    print(f"INTERACTIVE {since_start():.4f}", flush=True)
    view.close()


def shell(cache: Path) -> None:
    from client.inbox_model import InboxModel
    from client.inbox_panel import InboxPanel
    from client.qt import (
        QApplication,
        QHBoxLayout,
        QLabel,
        QMainWindow,
        QSplitter,
        Qt,
        QVBoxLayout,
        QWidget,
    )
    from client.state_selector import StateSelector
    from client.status_bar import StatusBar
    from client.store_reader import StoreReader
    from client.theme import apply_theme, set_names

    app = QApplication(sys.argv[:1])
    set_names()
    apply_theme(app)
    reader = StoreReader(cache)
    window = QMainWindow()
    window.resize(1360, 860)
    top = QWidget()
    bar = QHBoxLayout(top)
    bar.addWidget(QLabel("Switchboard", top))
    bar.addStretch(1)
    bar.addWidget(StateSelector(top))
    columns = QSplitter(Qt.Orientation.Horizontal)
    model = InboxModel(reader, parent=window)
    inbox = InboxPanel(model, columns)
    columns.addWidget(inbox)
    columns.addWidget(QLabel("Select a conversation", columns))
    columns.addWidget(QWidget(columns))
    central = QWidget()
    layout = QVBoxLayout(central)
    layout.addWidget(top)
    layout.addWidget(columns, 1)
    window.setCentralWidget(central)
    window.setStatusBar(StatusBar(window))
    window.show()
    model.fetchMore()
    inbox.view.viewport().repaint()
    app.processEvents()
    assert model.rowCount() > 0
    print(f"INTERACTIVE {since_start():.4f}", flush=True)
    window.close()
    reader.close()


def real(cache: Path, idle: float) -> None:
    import tempfile

    from client.app import AppController, Options, cache_path
    from client.qt import QApplication
    from client.theme import apply_theme, set_names

    app = QApplication(sys.argv[:1])
    set_names()
    apply_theme(app)
    data = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    target = cache_path(data, UNREACHABLE)
    target.symlink_to(cache)
    c = AppController(Options(data_dir=data, router_url=UNREACHABLE))
    c.window.show()
    c.window.reload()
    c.window.inbox.view.viewport().repaint()
    app.processEvents()
    assert c.window.inbox_model.rowCount() > 0
    print(f"INTERACTIVE {since_start():.4f}", flush=True)
    if idle <= 0:
        return
    c.connect_engine(UNREACHABLE, "ana", "not-used")
    model = c.window.inbox_model
    for i in range(0, min(50, model.rowCount())):
        c.window.conversation.open(model.row_at(i).id)
        app.processEvents()
    c.window.inbox.search.setText("refund")
    end = time.monotonic() + idle
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.05)  # idling like an app waiting for the agent
    print(f"RSS {rss_mb():.1f}", flush=True)
    c.shutdown()


if __name__ == "__main__":
    if sys.argv[1] == "bare":
        bare()
    elif sys.argv[1] == "list":
        plain_list(Path(sys.argv[2]))
    elif sys.argv[1] == "shell":
        shell(Path(sys.argv[2]))
    else:
        real(Path(sys.argv[2]), float(sys.argv[4]) if len(sys.argv) > 4 else 0.0)
