"""Conversation controls, metrics and typing against the REAL router process and SyncEngine.

Each action goes through the window's own controls (signals the dialogs emit, or the dialogs
themselves) and is checked on the far side: the router's database, or what it sent back.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from client.app import AppController, Options
from client.cache_extras import agent_info
from client.conversation_controls import CallbackDialog, TransferDialog, WrapUpDialog
from client.qt import QTimer
from tests.support.router_proc import DEMO_PASSWORD, AgentConn, RouterProcess
from tests.support.wait import deadline

T = int(deadline(20) * 1000)


@pytest.fixture
def chat_live(qtbot: QtBot, tmp_path: Path) -> Iterator[tuple[RouterProcess, AppController]]:
    """The real router with demo agents and the web chat channel, and the app's controller."""
    proc = RouterProcess(tmp_path / "router.db", ["--demo-agents", "--chat"])
    with proc:
        c = AppController(
            Options(
                data_dir=tmp_path / "app", router_url=proc.url, phone_args=("--backend", "null")
            )
        )
        qtbot.addWidget(c.window)
        c.window.show()
        c.connect_engine(proc.url, "ana", DEMO_PASSWORD)
        try:
            yield proc, c
        finally:
            c.shutdown()


def _router(proc: RouterProcess, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{proc.db}?mode=ro", uri=True, timeout=5) as db:
        return list(db.execute(sql, args).fetchall())


def _take_chat(qtbot: QtBot, proc: RouterProcess, c: AppController, who: str) -> str:
    """A customer writes; Ana accepts the offer; returns the conversation, open in the window."""
    cid = proc.inbound("chat", f"visitor-{who}", who, "Hello, my invoice is wrong", "support")
    qtbot.waitUntil(
        lambda: cid in {t.offer.conversation_id for t in c.window.offers.toasts.values()}, timeout=T
    )
    offer = next(o for o, t in c.window.offers.toasts.items() if t.offer.conversation_id == cid)
    c.window.agent.accept(offer)

    def mine() -> bool:
        h = c.reader.header(cid)
        return h is not None and h.status == "assigned" and h.assigned_agent == "a-ana"

    qtbot.waitUntil(mine, timeout=T)
    c.window.agent.open_conversation(cid)
    qtbot.waitUntil(lambda: c.window.conversation.controls.end.isEnabled(), timeout=T)
    return cid


def _accept_dialog(controls: Any, fill: Any) -> None:
    """When the modal dialog opens, fill it and press OK (as the agent would)."""

    def step() -> None:
        dlg = controls.dialog
        if dlg is None:
            QTimer.singleShot(10, step)
            return
        fill(dlg)
        dlg.accept()

    QTimer.singleShot(0, step)


def _online_and_available(qtbot: QtBot, c: AppController) -> None:
    """The app is connected and the agent made Available through the state selector."""
    qtbot.waitUntil(lambda: c.window.status.connection.text() == "Connected to router", timeout=T)
    c.window.state_selector.request("available", "")
    qtbot.waitUntil(lambda: c.window.state_selector.text() == "Available", timeout=T)


def test_end_wrap_up_callback_transfer_reach_the_router_and_refusals_show(
    qtbot: QtBot, chat_live: tuple[RouterProcess, AppController]
) -> None:
    proc, c = chat_live
    _online_and_available(qtbot, c)
    controls = c.window.conversation.controls
    cid = _take_chat(qtbot, proc, c, "Grace Hopper")
    # The router's own wrap-up codes arrived with hello and are what the dialog offers.
    codes = agent_info(c.reader).wrap_up_codes
    assert "follow_up" in codes and "no_answer" in codes  # the router config's, not ours
    # ... and so are the away reasons in the state menu.
    reasons = agent_info(c.reader).reason_codes
    assert reasons and c.window.state_selector.reasons == reasons
    assert {f"away:{r}" for r in reasons} <= set(c.window.state_selector.actions_by_key)

    # A callback, picked in the dialog for tomorrow.
    _accept_dialog(
        controls,
        lambda d: (
            d.when.setDateTime(d.when.dateTime().addDays(1)),
            d.note.setText("Invoice check"),
        ),
    )
    controls.callback.click()
    qtbot.waitUntil(
        lambda: bool(
            _router(proc, "SELECT due_at, note FROM callbacks WHERE conversation_id = ?", cid)
        ),
        timeout=T,
    )
    ((due, note),) = _router(
        proc, "SELECT due_at, note FROM callbacks WHERE conversation_id = ?", cid
    )
    assert note == "Invoice check" and due > time.time() + 20 * 3600
    qtbot.waitUntil(lambda: "Call back scheduled" in controls.message.text(), timeout=T)

    # A disposition the router does not know is refused, in words, under the buttons.
    controls.wrap_up_requested.emit(cid, "no_such_code", "")
    qtbot.waitUntil(lambda: "refused" in controls.message.text(), timeout=T)
    assert "no_such_code" in controls.message.text()

    # End, then wrap up as "Follow up" from the dialog: the router closes it with that code.
    controls.end.click()
    qtbot.waitUntil(
        lambda: (h := c.reader.header(cid)) is not None and h.status == "wrap_up", timeout=T
    )
    qtbot.waitUntil(controls.wrap.isEnabled, timeout=T)

    def pick(d: WrapUpDialog) -> None:
        d.code.setCurrentIndex(d.code.findData("follow_up"))
        d.note.setText("Sent the corrected invoice")

    _accept_dialog(controls, pick)
    controls.wrap.click()
    qtbot.waitUntil(
        lambda: (
            _router(proc, "SELECT status, disposition FROM conversations WHERE id = ?", cid)
            == [("closed", "follow_up")]
        ),
        timeout=T,
    )
    qtbot.waitUntil(
        lambda: (h := c.reader.header(cid)) is not None and h.status == "closed", timeout=T
    )

    # Transfer another chat to the sales queue: the router moves it.
    c.window.state_selector.request("available", "")
    other = _take_chat(qtbot, proc, c, "Alan Turing")
    controls.transfer_requested.emit(other, "queue", "sales")
    qtbot.waitUntil(
        lambda: (
            _router(proc, "SELECT queue FROM conversations WHERE id = ?", other) == [("sales",)]
        ),
        timeout=T,
    )
    # A transfer to a queue that does not exist is refused in words.
    c.window.state_selector.request("available", "")
    third = _take_chat(qtbot, proc, c, "Ada Lovelace")
    controls.transfer_requested.emit(third, "queue", "nowhere")
    qtbot.waitUntil(lambda: "Transfer was refused" in controls.message.text(), timeout=T)

    # The metrics panel shows what the router pushed (a completed contact, queue state).
    qtbot.waitUntil(lambda: c.window.metrics.values["handled"].text() not in ("—", "0"), timeout=T)
    assert "support" in c.window.metrics.queues.text()
    # AHT once the router has counted the wrapped-up chat as completed.
    qtbot.waitUntil(lambda: c.window.metrics.values["aht"].text() != "—", timeout=T)


def test_typing_in_a_chat_tells_the_router(
    qtbot: QtBot, chat_live: tuple[RouterProcess, AppController]
) -> None:
    proc, c = chat_live
    _online_and_available(qtbot, c)
    _take_chat(qtbot, proc, c, "Grace Hopper")
    editor = c.window.conversation.composer.editor
    editor.setFocus()
    qtbot.keyClicks(editor, "Let me check")
    # One hint per 3 s of typing, answered by the router's typing endpoint (HTTP 200).
    qtbot.waitUntil(lambda: c.window.commands.typing_sent == 1, timeout=T)
    qtbot.keyClicks(editor, " that for you")
    assert c.window.commands.typing_sent == 1


def test_callback_dialog_refuses_a_time_in_the_past(qtbot: QtBot) -> None:
    dlg = CallbackDialog()
    qtbot.addWidget(dlg)
    assert dlg.at() > time.time()


def test_transfer_dialog_lists_the_team_and_hands_the_chat_to_a_colleague(
    qtbot: QtBot, chat_live: tuple[RouterProcess, AppController]
) -> None:
    proc, c = chat_live
    _online_and_available(qtbot, c)

    async def ben_signs_in() -> None:  # a colleague in support, signed in on another desk
        conn = await AgentConn.open(proc.ws_url, proc.login("ben"))
        await conn.resume(0)
        assert (await conn.command("set_state", state="away", reason="Break"))["ok"]
        await conn.close()  # his state stays for the router's disconnect grace

    asyncio.run(ben_signs_in())
    cid = _take_chat(qtbot, proc, c, "Grace Hopper")
    controls = c.window.conversation.controls
    seen: list[list[str]] = []

    def pick_ben(d: TransferDialog) -> None:
        # The router's team list for this support chat: Ben (support) only, not Chloé (sales).
        qtbot.waitUntil(lambda: d.agent.count() > 0, timeout=T)
        seen.append([d.agent.itemText(i) for i in range(d.agent.count())])
        d.kind.setCurrentIndex(d.kind.findData("agent"))
        d.agent.setCurrentIndex(d.agent.findData("a-ben"))

    _accept_dialog(controls, pick_ben)
    controls.transfer.click()
    assert seen == [["Ben Okafor (Away — Break) · support"]]
    qtbot.waitUntil(
        lambda: (
            _router(proc, "SELECT assigned_agent FROM conversations WHERE id = ?", cid)
            == [("a-ben",)]
        ),
        timeout=T,
    )
    qtbot.waitUntil(lambda: "Transfer to Ben Okafor sent" in controls.message.text(), timeout=T)


def test_transfer_dialog_without_a_team_list_still_takes_a_typed_id(qtbot: QtBot) -> None:
    dlg = TransferDialog(("support",), conversation_queue="support")
    qtbot.addWidget(dlg)
    assert dlg.team_note.text() == "Loading your team…"
    dlg.team_failed("Not connected to the router.")
    assert "type an agent id" in dlg.team_note.text()
    dlg.kind.setCurrentIndex(dlg.kind.findData("agent"))
    dlg.agent.setEditText("a-chloe")
    assert dlg.target() == ("agent", "a-chloe")
    dlg.set_team(
        [{"id": "a-chloe", "name": "Chloé Martin", "state": "available", "queues": ["sales"]}]
    )
    assert dlg.agent.count() == 0  # not in this conversation's queue: the router would refuse
    assert dlg.target() == ("agent", "a-chloe")  # what the agent typed is kept
