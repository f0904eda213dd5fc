"""GUI test fixtures: Qt offscreen, the app's theme, seeded caches, a live router + engine.

`./dev test` sets QT_QPA_PLATFORM=offscreen; it is set here too so `pytest tests/gui` alone
never tries to open a display.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator
from pathlib import Path

import pytest

from client.demo_cache import seed_cache
from client.main_window import MainWindow
from client.qt import QApplication
from client.store_reader import StoreReader
from client.theme import apply_theme, set_names


@pytest.fixture(scope="session")
def qapp_cls() -> type[QApplication]:
    return QApplication


@pytest.fixture(scope="session", autouse=True)
def _private_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    """QSettings and QStandardPaths in a throwaway place: tests never read or write the
    developer's own window layout or data."""
    from client.qt import QSettings, QStandardPaths

    QStandardPaths.setTestModeEnabled(True)
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(
        QSettings.Format.IniFormat,
        QSettings.Scope.UserScope,
        str(tmp_path_factory.mktemp("settings")),
    )


@pytest.fixture(autouse=True)
def _theme(qapp: QApplication) -> None:
    set_names()
    apply_theme(qapp)
    from client.qt import QSettings

    QSettings().clear()


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    """A real cache file (sync.store.open_store) with 60 conversations."""
    return seed_cache(tmp_path / "cache.db", conversations=60)


@pytest.fixture
def window(qtbot: object, seeded: Path) -> Iterator[MainWindow]:
    """The main window on the seeded cache, no engine attached."""
    reader = StoreReader(seeded)
    win = MainWindow(reader, embedded=True)
    qtbot.addWidget(win)  # type: ignore[attr-defined]
    win.show()
    yield win
    win.close()
    reader.close()


@pytest.fixture
def live(qtbot: object, tmp_path: Path) -> Iterator[tuple[object, object]]:
    """A real router process (demo data, no arrivals) and the real app controller + engine.

    Yields (RouterProcess, AppController). The controller is the app's own, connected with
    the demo agent `ana` exactly as the embedded mode does once the router listens.
    """
    from client.app import AppController, Options
    from tests.support.router_proc import DEMO_PASSWORD, RouterProcess

    proc = RouterProcess(
        tmp_path / "router.db",
        ["--demo-agents", "--demo", "--demo-rate", "0", "--demo-seed", "1"],
    )
    with proc:
        controller = AppController(Options(data_dir=tmp_path / "app", router_url=proc.url))
        qtbot.addWidget(controller.window)  # type: ignore[attr-defined]
        controller.window.show()
        controller.connect_engine(proc.url, "ana", DEMO_PASSWORD)
        try:
            yield proc, controller
        finally:
            controller.shutdown()
