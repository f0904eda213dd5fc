"""CSAT and abandonment from the customer channels to the metrics, against a real router
process: a web-chat customer in headless Chromium rates the chat and another leaves before an
answer; an SMS customer (the Twilio-format stand-in) answers the survey text with a digit and
another texts STOP while waiting (router.channels.survey, docs/channels.md)."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from router.channels.survey import SMS_QUESTION
from tests.integration.channel_setup import (
    accept_next_offer,
    available_agent,
    channel_router,
    chat_router,  # noqa: F401 (fixture)
    chromium,
    start_chat,
    twilio,  # noqa: F401 (fixture)
)
from tests.support.channel_peers import TwilioStandIn
from tests.support.router_proc import RouterProcess
from tests.support.wait import deadline, wait_until


def _export(router: RouterProcess, dimension: str) -> dict[str, dict[str, Any]]:
    """Today's figures per key of `dimension` from the supervisor's export."""
    now = httpx.get(f"{router.url}/health", timeout=10).json()["time"]
    response = httpx.get(
        f"{router.url}/api/metrics/export",
        params={"from": str(now - 3600), "to": str(now + 60), "interval": "day"},
        headers={"Authorization": f"Bearer {router.login('sam')}"},
        timeout=10,
    )
    response.raise_for_status()
    return {r["key"]: r for r in response.json()["rows"] if r["dimension"] == dimension}


def _db(router: RouterProcess, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(router.db) as db:
        return db.execute(sql, params).fetchall()


def test_chat_customer_rates_the_chat_and_another_abandons(chat_router: RouterProcess) -> None:
    router = chat_router
    ms = deadline(10) * 1000

    async def scenario() -> None:
        ana = await available_agent(router)
        async with chromium() as browser:
            page = await (await browser.new_context()).new_page()
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            await start_chat(page, router.url, "Maria Gonzalez", "Where is my order?", ms)
            conversation_id = await accept_next_offer(ana, "chat")
            assert await page.is_hidden("#survey")
            ack = await ana.command("end_conversation", conversation_id=conversation_id)
            assert ack["ok"], ack
            await page.wait_for_selector("#survey", state="visible", timeout=ms)
            # A reload still offers the survey until it is answered.
            await page.reload()
            await page.wait_for_selector("#survey", state="visible", timeout=ms)
            await page.click("#survey button[data-score='4']")
            await page.wait_for_selector("#survey-done", state="visible", timeout=ms)
            assert await page.is_hidden("#survey")
            await page.reload()
            await page.wait_for_selector("#conversation", state="visible", timeout=ms)
            assert await page.is_hidden("#survey")  # answered: asked no more

            # A second visitor gives up before anyone answers: an abandoned chat.
            other = await (await browser.new_context()).new_page()
            await ana.command("set_state", state="away", reason="Break")
            await start_chat(other, router.url, "Gone Soon", "hello?", ms)
            await other.click("#leave")
            await other.wait_for_selector("#status:has-text('Chat ended')", timeout=ms)
            assert await other.is_hidden("#compose")
            assert problems == []
        await ana.close()

    asyncio.run(scenario())
    chat = _export(router, "channel")["chat"]
    assert (chat["csat_responses"], chat["csat_avg"], chat["csat"]) == (1, 4.0, 1.0)
    assert (chat["offered"], chat["handled"], chat["abandoned"]) == (2, 1, 1)
    assert _export(router, "agent")["a-ana"]["csat_avg"] == 4.0


@pytest.fixture
def sms_router(tmp_path: Path, twilio: TwilioStandIn) -> Iterator[RouterProcess]:
    with channel_router(tmp_path, twilio=twilio) as router:
        yield router


def test_sms_survey_answer_and_stop_reach_the_metrics(
    sms_router: RouterProcess, twilio: TwilioStandIn
) -> None:
    router = sms_router
    maria, gone = "+14155550123", "+14155550177"

    def text(sender: str, body: str, sid: str | None = None) -> None:
        assert twilio.inbound(router.url, sender, body, sid).status_code == 200

    async def handle(sender: str, body: str) -> str:
        ana = await available_agent(router)
        await asyncio.to_thread(text, sender, body)
        conversation_id = await accept_next_offer(ana, "sms")
        ack = await ana.command("wrap_up", conversation_id=conversation_id, disposition="resolved")
        assert ack["ok"], ack
        await ana.command("set_state", state="away", reason="Break")
        await ana.close()
        return conversation_id

    handled = asyncio.run(handle(maria, "My parcel is late"))
    (question,) = wait_until(
        lambda: [m for m in twilio.sent if m["To"] == maria], what="the survey text"
    )
    assert question["Body"] == SMS_QUESTION
    sid = "SM" + uuid.uuid4().hex
    text(maria, " 5 ", sid)
    text(maria, " 5 ", sid)  # the provider retrying: counted once
    assert _db(router, "SELECT score FROM surveys WHERE conversation_id = ?", handled) == [(5,)]
    # The answers were no new contact: the only conversation is the handled one.
    assert _db(router, "SELECT COUNT(*) FROM conversations") == [(1,)]

    # Another customer texts, then STOP while still waiting: abandoned, and opted out.
    text(gone, "hello?")
    text(gone, "STOP")
    assert _db(router, "SELECT status, disposition FROM conversations WHERE id != ?", handled) == [
        ("closed", "abandoned")
    ]
    # Back later and handled: no survey text to a number that opted out.
    later = asyncio.run(handle(gone, "Sorry, one more question"))
    assert _db(router, "SELECT COUNT(*) FROM surveys WHERE conversation_id = ?", later) == [(0,)]

    sms = _export(router, "channel")["sms"]
    assert (sms["csat_responses"], sms["csat_avg"]) == (1, 5.0)
    assert (sms["offered"], sms["handled"], sms["abandoned"]) == (3, 2, 1)
    assert [m for m in twilio.sent if m["To"] == gone] == []
