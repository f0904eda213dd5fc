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


@pytest.fixture(autouse=True)
def _theme(qapp: QApplication) -> None:
    set_names()
    apply_theme(qapp)


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
