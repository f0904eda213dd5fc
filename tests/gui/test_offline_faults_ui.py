"""What the agent sees of the offline-first guarantees: search, drafts, disk and cache words.

Search runs through the inbox's search box on a seeded cache (its query runs off the UI
thread); drafts go through the real engine to the cache and come back after the in-memory
copy is gone (as after a crash); the full-disk and rebuilt-cache notices stay readable.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from client.app import AppController
from client.demo_cache import seed_cache
from client.main_window import MainWindow
from client.store_reader import InboxFilter, StoreReader, fts_query
from tests.support.wait import deadline

T = int(deadline(20) * 1000)


def test_fts_query_quotes_words_and_prefixes_the_last() -> None:
    assert fts_query("parcel nev") == '"parcel" "nev"*'
    assert fts_query('AND OR "x') == '"AND" "OR" "x"*'
    assert fts_query("  ;;  ") == ""
    assert fts_query("parcel late", prefix=False) == '"parcel" "late"'


def test_search_box_finds_by_customer_name_and_message_text(
    qtbot: QtBot, window: MainWindow
) -> None:
    model = window.inbox_model
    full = model.rowCount()
    name = model.row_at(3).customer_name
    last = name.split()[-1]
    window.inbox.search.setText(last[:-1])  # typing: the last word is a prefix
    qtbot.waitUntil(lambda: window.inbox_model.filter.text == last[:-1], timeout=T)
    assert 0 < model.rowCount() < full
    assert any(model.row_at(i).customer_name == name for i in range(model.rowCount()))
    # A word from message bodies.
    body = window.reader._rows("SELECT body FROM messages WHERE direction = 'in' LIMIT 1")[0][0]
    word = max(body.split(), key=len).strip(".,!?")
    window.inbox.search.setText(word)
    qtbot.waitUntil(lambda: window.inbox_model.filter.text == word, timeout=T)
    assert model.rowCount() > 0
    # The same rows as the reader gives for that query (it is the reader's search).
    expect = window.reader.search(InboxFilter(text=word))
    assert [model.row_at(i).id for i in range(model.rowCount())] == [r.id for r in expect]
    window.inbox.search.setText("zzzznotawordanywhere")
    qtbot.waitUntil(lambda: window.inbox.stack.currentWidget() is window.inbox.empty, timeout=T)
    assert "No conversation mentions that" in window.inbox.empty_label.text()
    window.inbox.search.clear()
    qtbot.waitUntil(
        lambda: window.inbox_model.filter.text == "" and model.rowCount() == full, timeout=T
    )


def test_a_draft_reaches_the_cache_and_comes_back(qtbot: QtBot, live: tuple[Any, Any]) -> None:
    _proc, c = live
    assert isinstance(c, AppController)
    qtbot.waitUntil(lambda: c.window.status.connection.text() == "Connected to router", timeout=T)
    conv = str(
        c.reader._rows(
            "SELECT id FROM conversations WHERE assigned_agent = 'a-ana' ORDER BY id LIMIT 1"
        )[0][0]
    )
    view = c.window.conversation
    view.open(conv)
    view.composer.editor.setFocus()
    qtbot.keyClicks(view.composer.editor, "Let me check that for you")

    def stored() -> list[tuple[str]]:
        db = sqlite3.connect(f"file:{c.cache}?mode=ro", uri=True)
        try:
            return db.execute(
                "SELECT body FROM drafts WHERE conversation_id = ?", [conv]
            ).fetchall()
        finally:
            db.close()

    qtbot.waitUntil(lambda: stored() == [("Let me check that for you",)], timeout=T)
    # As after a crash: nothing in memory, the composer refills from the cache.
    view.open(None)
    view._drafts.clear()
    view.open(conv)
    assert view.composer.text() == "Let me check that for you"


def test_disk_full_and_rebuilt_cache_are_said_and_stay(window: MainWindow) -> None:
    window._on_issue("The disk is full: the local cache could not save this.", False)
    assert window.status.notice.isVisible()
    assert window.status.notice.text().startswith("The disk is full: ")
    assert window.status._notice_timer.interval() >= 60000


def test_a_damaged_cache_shows_empty_then_the_rebuilt_one(qtbot: QtBot, tmp_path: Path) -> None:
    """The window opens on a damaged file without crashing; when the engine says it rebuilt
    the cache, the window reads the new file (its old connection saw the moved one)."""
    cache = tmp_path / "cache.db"
    cache.write_bytes(b"not a database " * 400)
    reader = StoreReader(cache)
    win = MainWindow(reader, embedded=False)
    qtbot.addWidget(win)
    win.show()
    win.reload()
    assert win.inbox_model.rowCount() == 0 and reader.damaged
    cache.rename(tmp_path / "cache.corrupt.db")  # what sync.recovery.move_aside does
    seed_cache(cache, conversations=12)
    win._on_issue(
        "The local cache was damaged and has been rebuilt from the router; "
        "nothing unsent was waiting. The damaged file was kept as x.",
        False,
    )
    assert win.inbox_model.rowCount() == 12
    assert win.status.notice.text().startswith("The local cache was damaged")
    win.close()
    reader.close()


def test_search_uses_the_exact_word_when_it_fills_the_hits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sync.apply import apply_event
    from sync.store import open_store

    db = open_store(tmp_path / "cache.db")
    bodies = ["my order", "order again", "another order", "orders plural", "ordinary day"]
    for i, text in enumerate(bodies):
        apply_event(
            db,
            2 * i + 1,
            {
                "kind": "conversation",
                "conversation": {
                    "id": f"c-{i}",
                    "channel": "chat",
                    "status": "assigned",
                    "customer": {"id": f"u-{i}", "name": f"Cust {i}"},
                },
            },
            agent_id="a",
            now=0.0,
        )
        apply_event(
            db,
            2 * i + 2,
            {
                "kind": "message",
                "message": {
                    "id": f"m-{i}",
                    "conversation_id": f"c-{i}",
                    "seq": 1,
                    "direction": "in",
                    "body": text,
                    "created_at": float(i),
                },
            },
            agent_id="a",
            now=0.0,
        )
    db.conn.close()
    reader = StoreReader(tmp_path / "cache.db")
    monkeypatch.setattr("client.store_reader.SEARCH_HITS", 3)
    # Three exact hits fill the (lowered) limit: the exact word answers.
    assert {r.id for r in reader.search(InboxFilter(text="order"))} == {"c-0", "c-1", "c-2"}
    # A partial word never fills it: the prefix form answers, newest first.
    assert [r.id for r in reader.search(InboxFilter(text="ord"))] == ["c-4", "c-3", "c-2"]
    reader.close()


def test_keyset_pages_match_one_ordered_query_including_rows_without_a_time(tmp_path: Path) -> None:
    """Lazy pages start at the last row shown (constant cost however deep the agent
    scrolls) and give exactly the rows and order of one big query, ties and NULLs included."""
    from sync.store import atomic, open_store

    cache = seed_cache(tmp_path / "cache.db", conversations=57)
    db = open_store(cache)
    with atomic(db):
        db.execute(
            "UPDATE conversations SET last_message_at = 1000.0 WHERE id IN ('c-3', 'c-4', 'c-5')"
        )  # a tie, broken by id
        db.execute("UPDATE conversations SET last_message_at = NULL WHERE id IN ('c-7', 'c-8')")
    db.conn.close()
    reader = StoreReader(cache)
    for flt in (InboxFilter(), InboxFilter(channel="chat")):
        pages: list[Any] = []
        while True:
            page = reader.inbox_page(flt, len(pages), 5, None, pages[-1] if pages else None)
            pages += page
            if len(page) < 5:
                break
        whole = reader.inbox_page(flt, 0, 1000)
        assert [r.id for r in pages] == [r.id for r in whole]
    assert len(pages) > 0
    reader.close()
