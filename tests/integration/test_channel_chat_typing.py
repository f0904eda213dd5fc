"""The agent's typing hint from the desktop client's sync engine to the web-chat customer:
`SyncEngine.typing` (HTTP, sync/http_actions.py) -> the real router process -> the visitor's
websocket -> "An agent is typing…" in headless Chromium, then hidden by the agent's reply.
The composer's throttle (one hint per 3 s of typing) is tested in tests/gui/test_agent_controls.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sync.changes import OfferReceived
from tests.integration.channel_setup import (
    chat_router,  # noqa: F401 (fixture)
    chromium,
    start_chat,
)
from tests.integration.test_sync_router import make_engine  # noqa: F401 (fixture)
from tests.support.router_proc import RouterProcess
from tests.support.wait import deadline, wait_until


def test_the_engines_typing_hint_shows_on_the_customers_page(
    chat_router: RouterProcess, make_engine: Any
) -> None:
    router = chat_router
    engine, rec = make_engine(router.url)
    ms = deadline(10) * 1000

    def take_offer() -> str:
        offers = wait_until(lambda: rec.of(OfferReceived), what="the chat offer")
        offer: OfferReceived = offers[0]
        engine.accept(offer.offer_id).result(10)
        assert offer.conversation_id is not None
        return offer.conversation_id

    async def scenario() -> None:
        await asyncio.to_thread(
            wait_until, lambda: rec.state() == "online", what="the engine online"
        )
        await asyncio.to_thread(lambda: engine.set_state("available").result(10))
        async with chromium() as browser:
            page = await browser.new_page()
            await start_chat(page, router.url, "Maria Gonzalez", "Is anyone there?", ms)
            conversation_id = await asyncio.to_thread(take_offer)
            assert await page.is_hidden("#typing")

            delivered = await asyncio.to_thread(lambda: engine.typing(conversation_id).result(10))
            assert delivered == 1  # one open page told
            await page.wait_for_selector("#typing", state="visible", timeout=ms)

            await asyncio.to_thread(
                lambda: engine.send_message(conversation_id, "Yes, Maria, I'm here.").result(10)
            )
            await page.wait_for_selector("li.out:has-text('I\\'m here')", timeout=ms)
            await page.wait_for_selector("#typing", state="hidden", timeout=ms)

    asyncio.run(scenario())
