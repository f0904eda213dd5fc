"""Web chat: a customer in headless Chromium (Debian's, driven by Playwright) and an agent
on the protocol, both against a real router process."""

from __future__ import annotations

import asyncio

import httpx

from tests.integration.channel_setup import (
    accept_next_offer,
    available_agent,
    chat_router,  # noqa: F401 (fixture)
    chromium,
    get,
    messages,
    send_reply,
    start_chat,
)
from tests.support.router_proc import RouterProcess
from tests.support.wait import deadline


def test_customer_chats_in_a_browser_with_an_agent(chat_router: RouterProcess) -> None:
    router = chat_router
    token = router.login("ana")
    ms = deadline(10) * 1000

    async def scenario() -> None:
        ana = await available_agent(router)
        async with chromium() as browser:
            page = await browser.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            await start_chat(page, router.url, "Maria Gonzalez", "Hello from the browser", ms)

            conversation_id = await accept_next_offer(ana, "chat")
            thread = messages(router, conversation_id, token)
            assert [(m["direction"], m["body"]) for m in thread] == [
                ("in", "Hello from the browser")
            ]
            customer = get(router, f"/api/conversations/{conversation_id}/messages", token)[
                "conversation"
            ]["customer"]
            assert customer["name"] == "Maria Gonzalez"
            assert customer["identities"][0]["kind"] == "chat"

            assert await page.is_hidden("#typing")
            typing = await asyncio.to_thread(
                httpx.post,
                f"{router.url}/api/conversations/{conversation_id}/typing",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert typing.json() == {"delivered": 1}
            await page.wait_for_selector("#typing", state="visible", timeout=ms)

            await send_reply(ana, conversation_id, "Hi Maria, how can I help?")
            reply = page.locator("li.out", has_text="Hi Maria, how can I help?")
            await reply.wait_for(timeout=ms)
            assert "Ana Lima" in await reply.inner_text()
            await page.wait_for_selector("#typing", state="hidden", timeout=ms)

            await page.click("#callback-box summary")
            await page.fill("#phone", "+1 415 555 0199")
            await page.fill("#note", "after 5pm")
            await page.click("#callback button")
            await page.wait_for_selector("#callback-done:has-text('+14155550199')", timeout=ms)
            await ana.event(
                "message",
                lambda e: e["message"]["body"] == "Please call me back on +14155550199. after 5pm",
            )

            # A reload picks the same conversation up again (visitor id and secret).
            await page.reload()
            await page.wait_for_selector("li.out:has-text('how can I help')", timeout=ms)
            assert await page.locator("li.in").count() == 2
            await page.click("#leave")
            await page.wait_for_selector("#status:has-text('Chat ended')", timeout=ms)
            await ana.event(
                "message", lambda e: e["message"]["body"] == "(The customer left the chat.)"
            )
            assert problems == []
        await ana.close()

    asyncio.run(scenario())
    requests = get(router, "/api/admin/callback-requests", router.login("sam"))
    (request,) = requests["callback_requests"]
    assert (request["phone"], request["note"], request["channel"]) == (
        "+14155550199",
        "after 5pm",
        "chat",
    )
    conversation = get(router, f"/api/conversations/{request['conversation_id']}/messages", token)[
        "conversation"
    ]
    assert {"kind": "phone", "value": "+14155550199"} in conversation["customer"]["identities"]
    deliveries = get(router, f"/api/conversations/{request['conversation_id']}/deliveries", token)[
        "deliveries"
    ]
    assert [d["status"] for d in deliveries] == ["delivered"]


def test_chat_socket_refuses_bad_frames_and_keeps_going(chat_router: RouterProcess) -> None:
    import json

    import websockets

    async def scenario() -> None:
        url = chat_router.url.replace("http://", "ws://") + "/chat/v1"
        async with websockets.connect(url) as ws:
            await ws.send("not json")
            assert json.loads(await ws.recv())["code"] == "bad_frame"
            await ws.send(json.dumps({"type": "message", "body": "before start"}))
            assert json.loads(await ws.recv())["code"] == "bad_frame"
            await ws.send(json.dumps({"type": "start", "name": "  "}))
            assert json.loads(await ws.recv())["code"] == "bad_name"
            await ws.send(
                json.dumps(
                    {"type": "start", "name": "Lukas", "visitor_id": "v-guessed", "secret": "wrong"}
                )
            )
            ready = json.loads(await ws.recv())
            assert ready["type"] == "ready" and ready["visitor_id"] != "v-guessed"
            assert ready["messages"] == [] and ready["secret"]
            await ws.send(json.dumps({"type": "message", "body": "x" * 20_001}))
            assert json.loads(await ws.recv())["code"] == "too_large"
            await ws.send(json.dumps({"type": "callback", "phone": "12345"}))
            assert json.loads(await ws.recv())["code"] == "bad_phone"
            await ws.send(json.dumps({"type": "message", "body": "still here"}))
            echoed = json.loads(await ws.recv())
            assert echoed["type"] == "message" and echoed["message"]["body"] == "still here"
            health = httpx.get(f"{chat_router.url}/health", timeout=10).json()
            assert health["queued"] == 1
            # Leaving before an agent answered abandons the chat: nothing waits any more.
            await ws.send(json.dumps({"type": "leave"}))
            assert json.loads(await ws.recv()) == {"type": "left"}
            assert httpx.get(f"{chat_router.url}/health", timeout=10).json()["queued"] == 0

    asyncio.run(scenario())
