"""The inbox model is lazy (pages of 200), ordered by last activity, filtered in SQL."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from pytestqt.qtbot import QtBot

from client.bridge import SyncBridge
from client.demo_cache import seed_cache
from client.inbox_model import InboxModel
from client.inbox_panel import EMPTY_ALL, InboxPanel
from client.main_window import MainWindow
from client.store_reader import PAGE_SIZE, InboxFilter, StoreReader
from sync.apply import apply_event, get_cursor
from sync.changes import DataChanged
from sync.store import atomic, open_store


def test_loads_one_page_then_more_only_when_asked(qtbot: QtBot, tmp_path: Path) -> None:
    cache = seed_cache(tmp_path / "big.db", conversations=1000)
    model = InboxModel(StoreReader(cache))
    panel = InboxPanel(model)
    qtbot.addWidget(panel)
    panel.resize(400, 700)
    panel.show()
    model.fetchMore()
    qtbot.waitUntil(lambda: model.rowCount() > 0, timeout=5000)
    assert model.rowCount() == PAGE_SIZE
    assert model.canFetchMore()
    queries = model.queries
    # Scrolling to the end makes the view ask for the next page, and only that.
    panel.view.scrollToBottom()
    qtbot.waitUntil(lambda: model.rowCount() == 2 * PAGE_SIZE, timeout=5000)
    assert model.queries == queries + 1
    times = [model.row_at(i).last_message_at or 0 for i in range(model.rowCount())]
    assert times == sorted(times, reverse=True)


def test_refresh_keeps_the_selection_on_the_same_conversation(qtbot: QtBot, tmp_path: Path) -> None:
    cache = seed_cache(tmp_path / "c.db", conversations=30)
    model = InboxModel(StoreReader(cache))
    panel = InboxPanel(model)
    qtbot.addWidget(panel)
    model.fetchMore()
    assert panel.select("c-5")
    # A new message moves c-20 to the top: c-5 moves down one row but stays selected.
    from sync.store import atomic, open_store

    db = open_store(cache)
    with atomic(db):
        db.execute("UPDATE conversations SET last_message_at = 9e12 WHERE id = 'c-20'")
    db.conn.close()
    before = model.row_for_id("c-5")
    model.refresh()
    assert model.row_at(0).id == "c-20"
    assert model.row_for_id("c-5") == before + 1
    assert panel.current_id() == "c-5"


def test_filters_by_channel_and_scope(qtbot: QtBot, seeded: Path) -> None:
    model = InboxModel(StoreReader(seeded))
    model.set_agent_id("a-ana")
    model.fetchMore()
    model.set_filter(InboxFilter(channel="email"))
    assert model.rowCount() > 0
    assert {model.row_at(i).channel for i in range(model.rowCount())} == {"email"}
    model.set_filter(InboxFilter(scope="queue"))
    assert {model.row_at(i).status for i in range(model.rowCount())} <= {"queued", "offered"}
    model.set_filter(InboxFilter(scope="mine"))
    rows = [model.row_at(i) for i in range(model.rowCount())]
    assert rows and all(r.assigned_agent == "a-ana" for r in rows)


def test_an_empty_cache_says_so_in_words(qtbot: QtBot, tmp_path: Path) -> None:
    cache = seed_cache(tmp_path / "empty.db", conversations=0)
    model = InboxModel(StoreReader(cache))
    panel = InboxPanel(model)
    qtbot.addWidget(panel)
    panel.show()
    model.fetchMore()
    assert panel.stack.currentWidget() is panel.empty
    assert panel.empty_label.text() == EMPTY_ALL


def test_a_missing_cache_file_is_an_empty_inbox_not_a_crash(qtbot: QtBot, tmp_path: Path) -> None:
    model = InboxModel(StoreReader(tmp_path / "not-yet.db"))
    model.fetchMore()
    assert model.rowCount() == 0


def test_waiting_times_repaint_every_second(qtbot: QtBot, seeded: Path) -> None:
    from client.inbox_model import WaitRole

    model = InboxModel(StoreReader(seeded))
    panel = InboxPanel(model)
    qtbot.addWidget(panel)
    model.fetchMore()
    with qtbot.waitSignal(
        model.dataChanged, timeout=3000, check_params_cb=lambda _a, _b, roles: WaitRole in roles
    ):
        pass
    waits = [model.data(model.index(i), WaitRole) for i in range(model.rowCount())]
    assert any(w is not None and w > 0 for w in waits)


def _ordered_ids(cache: Path, limit: int) -> list[str]:
    """The inbox order straight from SQLite, to check the model's rows against."""
    raw = sqlite3.connect(f"file:{cache}?mode=ro", uri=True)
    try:
        rows = raw.execute(
            "SELECT id FROM conversations ORDER BY last_message_at DESC, id DESC LIMIT ?", [limit]
        ).fetchall()
    finally:
        raw.close()
    return [r[0] for r in rows]


def test_a_live_update_deep_in_the_list_reads_only_the_rows_it_touched(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """Why: a refresh that re-reads every loaded row costs ~100 ms on the UI thread at
    10,000 rows. A change names its conversations; the inbox must look up just those."""
    cache = seed_cache(tmp_path / "deep.db", conversations=5000)
    reader = StoreReader(cache)
    bridge = SyncBridge()
    win = MainWindow(reader, bridge=bridge, embedded=True)
    qtbot.addWidget(win)
    win.show()
    model = win.inbox_model
    # Scroll deep, as an agent would: the view asks for page after page.
    while model.rowCount() < 3000:
        loaded = model.rowCount()
        win.inbox.view.scrollToBottom()
        qtbot.waitUntil(lambda loaded=loaded: model.rowCount() > loaded, timeout=5000)
    loaded = model.rowCount()
    assert model.canFetchMore()
    deep = model.row_at(2500).id
    assert win.inbox.select(deep)
    win.scheduler.flush()

    # A new customer message arrives through the engine's real write path.
    db = open_store(cache)
    changes = apply_event(
        db,
        get_cursor(db) + 1,
        {
            "kind": "message",
            "message": {
                "id": "m-live-1",
                "conversation_id": deep,
                "seq": 10_000,
                "direction": "in",
                "author": "customer",
                "body": "Any news on my refund?",
                "created_at": time.time() + 60,
            },
        },
        agent_id="a-ana",
        now=time.time(),
    )
    db.conn.close()
    assert changes.conversation_ids == {deep}

    statements: list[str] = []
    conn = reader._db()
    assert conn is not None
    conn.set_trace_callback(statements.append)
    bridge.listener(DataChanged(frozenset(changes.tables), frozenset(changes.conversation_ids)))
    win.scheduler.flush()
    conn.set_trace_callback(None)

    # Moved to the top, updated, still selected; nothing else was re-read.
    assert model.row_at(0).id == deep
    assert model.row_at(0).preview == "Any news on my refund?"
    assert win.inbox.current_id() == deep
    assert model.rowCount() == loaded
    assert not [s for s in statements if "ORDER BY c.last_message_at" in s], statements
    assert len([s for s in statements if "c.id IN" in s]) == 1, statements
    assert len(statements) <= 10, statements  # + the open thread's own small reads

    # A conversation that now sorts past the last loaded row leaves the list and comes
    # back with a later page: the loaded rows stay a prefix, so keyset paging stays right.
    top = model.row_at(1).id
    db = open_store(cache)
    with atomic(db):
        db.execute("UPDATE conversations SET last_message_at = 1 WHERE id = ?", [top])
    db.conn.close()
    bridge.listener(DataChanged(frozenset({"conversations"}), frozenset({top})))
    win.scheduler.flush()
    assert model.row_for_id(top) == -1
    assert [model.row_at(i).id for i in range(model.rowCount())] == _ordered_ids(
        cache, model.rowCount()
    )
    while model.canFetchMore():
        model.fetchMore()
    assert [model.row_at(i).id for i in range(model.rowCount())] == _ordered_ids(cache, 10_000)
    win.close()
    reader.close()
