"""Against the REAL router process and the REAL SyncEngine: offers, replies, offline work.

Each test drives the window the way an agent does (clicks, typing, Enter) and checks the far
side: the router's own API, or the cache the engine wrote.
"""

from __future__ import annotations

from typing import Any

import httpx
from pytestqt.qtbot import QtBot

from client.app import AppController
from client.qt import Qt
from client.thread_view import status_text
from tests.support.router_proc import RouterProcess
from tests.support.wait import deadline

T = int(deadline(20) * 1000)  # ms for qtbot.waitUntil


def _online(c: AppController) -> bool:
    return c.window.status.connection.text() == "Connected to router"


def _router_bodies(proc: RouterProcess, conversation_id: str) -> list[str]:
    token = proc.login("ana")
    r = httpx.get(
        f"{proc.url}/api/conversations/{conversation_id}/messages",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    r.raise_for_status()
    return [m["body"] for m in r.json()["messages"]]


def _my_conversation(c: AppController) -> str:
    rows = c.reader._rows(
        "SELECT id FROM conversations WHERE assigned_agent = 'a-ana' AND status = 'assigned' "
        "ORDER BY id LIMIT 1"
    )
    return str(rows[0][0]) if rows else ""


def _type_and_enter(qtbot: QtBot, c: AppController, text: str) -> None:
    editor = c.window.conversation.composer.editor
    editor.setFocus()
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)


def test_offer_toast_appears_and_is_accepted(qtbot: QtBot, live: tuple[Any, Any]) -> None:
    proc, c = live
    qtbot.waitUntil(lambda: _online(c), timeout=T)
    c.window.state_selector.request("available", "")
    qtbot.waitUntil(lambda: c.window.state_selector.text() == "Available", timeout=T)
    proc.inbound("chat", "visitor-gui-1", "Grace Hopper", "Hello, my invoice is wrong", "support")
    qtbot.waitUntil(lambda: bool(c.window.offers.toasts), timeout=T)
    offer_id, toast = next(iter(c.window.offers.toasts.items()))
    conversation_id = toast.offer.conversation_id
    assert toast.isVisible() and toast.countdown.text().endswith(" s")
    qtbot.mouseClick(toast.accept_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: offer_id not in c.window.offers.toasts, timeout=T)

    def assigned_to_me() -> bool:
        h = c.reader.header(conversation_id)
        return h is not None and h.assigned_agent == "a-ana" and h.status == "assigned"

    qtbot.waitUntil(assigned_to_me, timeout=T)
    # The accepted conversation opens by itself, ready for a reply.
    qtbot.waitUntil(lambda: c.window.conversation.conversation_id == conversation_id, timeout=T)
    assert c.window.inbox.current_id() == conversation_id


def test_reply_typed_and_sent_with_enter_reaches_the_router(
    qtbot: QtBot, live: tuple[Any, Any]
) -> None:
    proc, c = live
    qtbot.waitUntil(lambda: _online(c) and bool(_my_conversation(c)), timeout=T)
    cid = _my_conversation(c)
    qtbot.waitUntil(lambda: c.window.inbox.select(cid), timeout=T)
    qtbot.waitUntil(lambda: c.window.conversation.conversation_id == cid, timeout=T)
    body = "Thanks for waiting, it is fixed now."
    _type_and_enter(qtbot, c, body)
    qtbot.waitUntil(lambda: c.window.conversation.composer.text() == "", timeout=T)

    def marked_sent() -> bool:
        msgs = c.window.conversation.thread_view.thread_model.messages()
        return any(m.body == body and status_text(m) == "Sent" for m in msgs)

    qtbot.waitUntil(marked_sent, timeout=T)
    assert body in _router_bodies(proc, cid)


def test_offline_shows_outbox_count_and_sends_after_recovery(
    qtbot: QtBot, live: tuple[Any, Any]
) -> None:
    proc, c = live
    qtbot.waitUntil(lambda: _online(c) and bool(_my_conversation(c)), timeout=T)
    cid = _my_conversation(c)
    qtbot.waitUntil(lambda: c.window.inbox.select(cid), timeout=T)
    proc.stop()
    bar = c.window.status
    qtbot.waitUntil(lambda: bar.connection.text().startswith("Offline"), timeout=T)
    body = "Written while the router was down."
    _type_and_enter(qtbot, c, body)
    qtbot.waitUntil(
        lambda: (
            "1 message waiting to be sent" in bar.connection.text()
            and bar.outbox.text() == "Outbox: 1"
        ),
        timeout=T,
    )

    def marks() -> list[str]:
        msgs = c.window.conversation.thread_view.thread_model.messages()
        return [status_text(m) for m in msgs if m.body == body]

    qtbot.waitUntil(lambda: marks() == ["Sending…"], timeout=T)
    proc.start()  # same port and database
    qtbot.mouseClick(bar.reconnect, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _online(c) and bar.outbox.text() == "All sent", timeout=T)
    qtbot.waitUntil(lambda: marks() == ["Sent"], timeout=T)
    assert _router_bodies(proc, cid).count(body) == 1


def test_a_reply_the_router_refuses_is_marked_not_sent_with_its_reason(
    qtbot: QtBot, live: tuple[Any, Any]
) -> None:
    _proc, c = live

    def queued() -> str:
        rows = c.reader._rows("SELECT id FROM conversations WHERE status = 'queued' LIMIT 1")
        return str(rows[0][0]) if rows else ""

    qtbot.waitUntil(lambda: _online(c) and bool(queued()), timeout=T)
    cid = queued()
    qtbot.waitUntil(lambda: c.window.inbox.select(cid), timeout=T)
    body = "Replying to a conversation that is not mine."
    _type_and_enter(qtbot, c, body)

    def failed_mark() -> str:
        msgs = c.window.conversation.thread_view.thread_model.messages()
        marks = [status_text(m) for m in msgs if m.body == body]
        return marks[0] if marks and marks[0].startswith("Not sent: ") else ""

    qtbot.waitUntil(lambda: bool(failed_mark()), timeout=T)
    assert len(failed_mark()) > len("Not sent: ")
    assert c.window.status.notice.text().startswith("A message was not sent: ")
    # The text is not lost: "Edit in the composer" puts it back.
    msg = next(
        m for m in c.window.conversation.thread_view.thread_model.messages() if m.body == body
    )
    menu = c.window.conversation.thread_view.menu_for(msg)
    edit = next(a for a in menu.actions() if a.text() == "Edit in the composer")
    edit.trigger()
    assert c.window.conversation.composer.text() == body


def test_declined_offer_disappears_and_stays_unassigned(
    qtbot: QtBot, live: tuple[Any, Any]
) -> None:
    _proc, c = live
    qtbot.waitUntil(lambda: _online(c), timeout=T)
    c.window.state_selector.request("available", "")
    qtbot.waitUntil(lambda: bool(c.window.offers.toasts), timeout=T)
    offer_id, toast = next(iter(c.window.offers.toasts.items()))
    conversation_id = toast.offer.conversation_id
    qtbot.keyClick(
        c.window,
        Qt.Key.Key_D,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    qtbot.waitUntil(lambda: offer_id not in c.window.offers.toasts, timeout=T)
    header = c.reader.header(conversation_id)
    assert header is not None and header.assigned_agent != "a-ana"
    assert c.window.conversation.conversation_id != conversation_id


def test_a_customer_message_arrives_live_unread_and_opening_marks_it_read(
    qtbot: QtBot, live: tuple[Any, Any]
) -> None:
    proc, c = live

    def chat_of_mine() -> tuple[str, str, str] | None:
        rows = c.reader._rows(
            "SELECT c.id, i.value, cu.name FROM conversations c "
            "JOIN customers cu ON cu.id = c.customer_id "
            "JOIN identities i ON i.customer_id = c.customer_id AND i.kind = 'chat' "
            "WHERE c.assigned_agent = 'a-ana' AND c.status = 'assigned' AND c.channel = 'chat'"
        )
        return (str(rows[0][0]), str(rows[0][1]), str(rows[0][2])) if rows else None

    qtbot.waitUntil(lambda: _online(c) and chat_of_mine() is not None, timeout=T)
    found = chat_of_mine()
    assert found is not None
    cid, visitor, name = found
    body = "Are you still there?"
    assert proc.inbound("chat", visitor, name, body, "sales") == cid

    def unread() -> int:
        row = c.window.inbox_model.row_for_id(cid)
        return c.window.inbox_model.row_at(row).unread if row >= 0 else -1

    qtbot.waitUntil(lambda: unread() > 0, timeout=T)
    assert c.window.inbox_model.row_at(0).id == cid  # newest activity first
    assert c.window.inbox_model.row_at(0).preview == body
    c.window.inbox.select(cid)
    qtbot.waitUntil(lambda: unread() == 0, timeout=T)
    msgs = c.window.conversation.thread_view.thread_model.messages()
    assert msgs[-1].body == body and msgs[-1].author == name
