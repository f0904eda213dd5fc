"""The main window on a seeded cache: rows, thread marks, offers from the cache."""

from __future__ import annotations

import time
from pathlib import Path

from pytestqt.qtbot import QtBot

from client.demo_cache import add_local_messages, add_offer
from client.main_window import MainWindow
from client.qt import Qt
from client.thread_view import status_text
from sync.store import atomic, open_store


def test_window_opens_with_rows_and_a_good_default_size(window: MainWindow) -> None:
    assert window.inbox_model.rowCount() == 60
    # 1360x860, shrunk to 95% of a smaller screen, never below the minimum size.
    avail = window.screen().availableGeometry()
    want_w = max(980, min(1360, int(avail.width() * 0.95)))
    want_h = max(600, min(860, int(avail.height() * 0.95)))
    assert (window.width(), window.height()) == (want_w, want_h)
    assert window.inbox.stack.currentWidget() is window.inbox.view
    # No SIP account in a fresh profile: the phone column says so (no fake dial pad).
    assert window.phone.setup_message.text() == "No SIP account is set up."


def test_opening_a_conversation_shows_its_thread_with_marks(
    qtbot: QtBot, window: MainWindow, seeded: Path
) -> None:
    add_local_messages(seeded, "c-0", time.time())
    window.inbox.select("c-0")
    qtbot.waitUntil(lambda: window.conversation.conversation_id == "c-0", timeout=3000)
    view = window.conversation
    assert view.header.name.text() == "Maria Souza"
    assert "visitor-1000" in view.header.identities.text()
    msgs = view.thread_view.thread_model.messages()
    marks = [status_text(m) for m in msgs]
    # Server order first, then the unacknowledged ones at the end.
    assert [m.seq for m in msgs[:3]] == [1, 2, 3]
    assert marks[1] == "Sent"
    assert marks[-2] == "Not sent: This conversation is assigned to another agent."
    assert marks[-1] == "Sending…"


def test_offer_toast_appears_counts_down_and_goes_when_revoked(
    qtbot: QtBot, window: MainWindow, seeded: Path
) -> None:
    now = time.time()
    offer_id = add_offer(seeded, "c-3", expires_at=now + 12, now=now)
    window.mark_all()
    qtbot.waitUntil(lambda: offer_id in window.offers.toasts, timeout=3000)
    toast = window.offers.toasts[offer_id]
    assert window.offers.isVisible()
    assert toast.name.text() == window.reader.header("c-3").customer_name  # type: ignore[union-attr]
    first = toast.countdown.text()
    assert first.endswith(" s") and 10 <= int(first.split()[0]) <= 12
    qtbot.waitUntil(lambda: toast.countdown.text() != first, timeout=3000)
    db = open_store(seeded)
    with atomic(db):
        db.execute("DELETE FROM offers WHERE id = ?", [offer_id])
    db.conn.close()
    window.mark_all()
    qtbot.waitUntil(lambda: offer_id not in window.offers.toasts, timeout=3000)
    assert not window.offers.isVisible()


def test_composer_enter_sends_shift_enter_breaks_and_refusal_keeps_text(
    qtbot: QtBot, window: MainWindow
) -> None:
    window.inbox.select("c-0")
    composer = window.conversation.composer
    sent: list[tuple[str, bool]] = []
    composer.send_requested.connect(lambda body, note: sent.append((body, note)))
    window.conversation.composer.send_requested.disconnect(window.agent.send)
    composer.editor.setFocus()
    qtbot.keyClicks(composer.editor, "first line")
    qtbot.keyClick(composer.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(composer.editor, "second")
    assert composer.text() == "first line\nsecond"
    qtbot.keyClick(composer.editor, Qt.Key.Key_Return)
    assert sent == [("first line\nsecond", False)]
    composer.refused("Not sent: the cache is full")
    assert composer.text() == "first line\nsecond"
    assert composer.error.isVisible() and "cache is full" in composer.error.text()
    composer.accepted()
    assert composer.text() == ""


def test_over_long_body_is_refused_before_it_is_queued(qtbot: QtBot, window: MainWindow) -> None:
    window.inbox.select("c-0")
    composer = window.conversation.composer
    sent: list[str] = []
    composer.send_requested.connect(lambda body, _n: sent.append(body))
    composer.set_text("x" * 20_001)
    assert composer.counter.text() == "20,001 / 20,000"
    composer.submit()
    assert sent == []
    assert composer.text() == "x" * 20_001
    assert "limit is 20,000" in composer.error.text()


def test_without_an_engine_a_send_is_refused_in_words(qtbot: QtBot, window: MainWindow) -> None:
    window.inbox.select("c-0")
    composer = window.conversation.composer
    composer.set_text("hello")
    composer.submit()
    assert composer.text() == "hello"
    assert "Not connected to the sync engine" in composer.error.text()


def test_accepted_offer_opens_even_when_the_assignment_lands_after_the_offer_went(
    qtbot: QtBot, window: MainWindow, seeded: Path
) -> None:
    """The router's two changes (offer gone, conversation ours) may reach the cache in
    either order; the accepted conversation must open in both. Here the offer goes first,
    the order that once left the conversation closed."""
    from client.bridge import SyncBridge
    from sync.client import SyncEngine
    from tests.support.channel_peers import free_port

    db = open_store(seeded)
    with atomic(db):
        db.execute(
            "UPDATE conversations SET status = 'offered', assigned_agent = NULL WHERE id = 'c-3'"
        )
    now = time.time()
    offer_id = add_offer(seeded, "c-3", expires_at=now + 30, now=now)
    # A real engine on the same cache, with no router to reach: accept is queued offline.
    bridge = SyncBridge(window)
    engine = SyncEngine(seeded, f"http://127.0.0.1:{free_port()}", on_change=bridge.listener)
    bridge.attach(engine)
    window.attach(bridge)
    engine.start()
    try:
        window.mark_all()
        qtbot.waitUntil(lambda: offer_id in window.offers.toasts, timeout=5000)
        qtbot.mouseClick(window.offers.toasts[offer_id].accept_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: window.reader.outbox_count() >= 1, timeout=5000)

        with atomic(db):  # the router's first change: the offer is gone
            db.execute("DELETE FROM offers WHERE id = ?", [offer_id])
        window.mark_all()
        qtbot.waitUntil(lambda: offer_id not in window.offers.toasts, timeout=5000)
        assert window.conversation.conversation_id != "c-3"

        me = window.inbox_model.agent_id
        assert me
        with atomic(db):  # the second: the conversation is ours
            db.execute(
                "UPDATE conversations SET status = 'assigned', assigned_agent = ? WHERE id = 'c-3'",
                [me],
            )
        window.scheduler.mark("inbox", "c-3")
        qtbot.waitUntil(lambda: window.conversation.conversation_id == "c-3", timeout=5000)
        assert window.inbox.current_id() == "c-3"
    finally:
        engine.stop()
        db.conn.close()
