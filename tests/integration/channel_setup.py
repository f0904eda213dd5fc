"""A router process with channels switched on against the test peers, the customer's side
(the chat page in headless Chromium, the Twilio stand-in) and agent helpers.

The fixtures here (`chat_router`, `twilio`) are imported by the channel test modules that use
them."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.support.channel_peers import Dovecot, SmtpSink, TwilioStandIn, free_port
from tests.support.router_proc import AgentConn, RouterProcess

SUPPORT_ADDRESS = "support@switchboard.test"
OUR_NUMBER = "+14155550100"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "test-twilio-token-3f9a1c"
SMTP_PASSWORD = "test-smtp-password-77c1"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


def channel_router(
    tmp_path: Path,
    dovecot: Dovecot | None = None,
    smtp: SmtpSink | None = None,
    twilio: TwilioStandIn | None = None,
    chat: bool = False,
    extra: list[str] | None = None,
    secrets_file: bool = False,
) -> RouterProcess:
    """A `RouterProcess` (demo agents, DEBUG logs) with the given channels on; secrets in
    its environment, or in a `--channel-secrets` file with `secrets_file`."""
    port = free_port()
    args = [
        "--demo-agents",
        "--log-level",
        "DEBUG",
        "--public-url",
        f"http://127.0.0.1:{port}",
        *(extra or []),
    ]
    env: dict[str, str] = {}
    if chat:
        args.append("--chat")
    if dovecot is not None and smtp is not None:
        args += [
            "--email-address",
            SUPPORT_ADDRESS,
            "--imap-host",
            "127.0.0.1",
            "--imap-port",
            str(dovecot.port),
            "--imap-user",
            dovecot.user,
            "--imap-poll",
            "0.2",
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            str(smtp.port),
        ]
        env["SWITCHBOARD_IMAP_PASSWORD"] = dovecot.password
        if smtp.login is not None:
            args += ["--smtp-user", smtp.login[0]]
            env["SWITCHBOARD_SMTP_PASSWORD"] = smtp.login[1]
    if twilio is not None:
        args += [
            "--sms-account-sid",
            ACCOUNT_SID,
            "--sms-number",
            OUR_NUMBER,
            "--sms-api-base",
            twilio.base,
        ]
        env["SWITCHBOARD_TWILIO_AUTH_TOKEN"] = TWILIO_TOKEN
    if secrets_file:
        path = tmp_path / "channel-secrets"
        path.write_text("# channel secrets\n" + "".join(f"{k}={v}\n" for k, v in env.items()))
        path.chmod(0o600)
        args += ["--channel-secrets", str(path)]
        env = {}
    return RouterProcess(tmp_path / "router.db", args, env=env, port=port)


async def available_agent(router: RouterProcess, username: str = "ana") -> AgentConn:
    conn = await AgentConn.open(router.ws_url, router.login(username))
    await conn.resume(0)
    ack = await conn.command("set_state", state="available")
    assert ack["ok"], ack
    return conn


async def accept_next_offer(conn: AgentConn, channel: str) -> str:
    """Wait for an offer on `channel`, accept it, return the conversation id."""
    offer = (await conn.event("offer", lambda e: e["offer"]["channel"] == channel))["event"]
    ack = await conn.command("accept", offer_id=offer["offer"]["id"])
    assert ack["ok"], ack
    return str(ack["result"]["conversation_id"])


def get(router: RouterProcess, path: str, token: str) -> Any:
    response = httpx.get(
        f"{router.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    response.raise_for_status()
    return response.json()


def messages(router: RouterProcess, conversation_id: str, token: str) -> list[dict[str, Any]]:
    return list(get(router, f"/api/conversations/{conversation_id}/messages", token)["messages"])


async def send_reply(conn: AgentConn, conversation_id: str, body: str) -> None:
    """The agent sends a text reply to the customer (`send_message`); it must be accepted."""
    ack = await conn.command(
        "send_message",
        conversation_id=conversation_id,
        message_id=str(uuid.uuid4()),
        body=body,
        format="text",
    )
    assert ack["ok"], ack


@pytest.fixture
def chat_router(tmp_path: Path) -> Iterator[RouterProcess]:
    """A router with the web chat on (Debian's Chromium must be installed to drive it)."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        raise RuntimeError("chromium is not installed (scripts/apt-test.txt lists it)")
    with channel_router(tmp_path, chat=True) as router:
        yield router


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    with TwilioStandIn(ACCOUNT_SID, TWILIO_TOKEN) as stand_in:
        yield stand_in


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Headless Chromium driven by Playwright, closed on the way out."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def start_chat(page: Page, url: str, name: str, body: str, ms: float) -> None:
    """Open the chat page, start as `name` and send `body`; returns once the page shows it."""
    await page.goto(f"{url}/chat")
    await page.fill("#name", name, timeout=ms)
    await page.click("#start button")
    await page.wait_for_selector("#conversation", state="visible", timeout=ms)
    assert await page.is_hidden("#start")  # `hidden` wins over the form's display: flex
    await page.fill("#body", body)
    await page.press("#body", "Enter")
    await page.wait_for_selector(f"li.in:has-text('{body}')", timeout=ms)
