"""Email against a real Dovecot (IMAP in) and a real aiosmtpd server (SMTP out), through a real
router process: threading by References, HTML sanitizing, attachments, dead letters."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from tests.integration.channel_setup import (
    SMTP_PASSWORD,
    SUPPORT_ADDRESS,
    accept_next_offer,
    available_agent,
    channel_router,
    get,
    messages,
    send_reply,
)
from tests.support.channel_peers import Dovecot, SmtpSink
from tests.support.router_proc import ROOT, RouterProcess
from tests.support.wait import async_wait_until, wait_until


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with Dovecot() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


def _mail(
    sender: str,
    subject: str,
    text: str,
    html: str | None = None,
    message_id: str | None = None,
    references: list[str] | None = None,
    attachment: bytes | None = None,
) -> tuple[bytes, str]:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = SUPPORT_ADDRESS
    msg["Subject"] = subject
    mid = message_id or f"{uuid.uuid4().hex}@customer.test"
    msg["Message-ID"] = f"<{mid}>"
    if references:
        msg["In-Reply-To"] = f"<{references[-1]}>"
        msg["References"] = " ".join(f"<{r}>" for r in references)
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    if attachment is not None:
        msg.add_attachment(
            attachment, maintype="application", subtype="pdf", filename="invoice.pdf"
        )
    return msg.as_bytes(), mid


HOSTILE_HTML = (
    "<p>My <b>invoice</b> is wrong.</p><script>alert('x')</script>"
    "<img src='http://tracker.example/pixel.png' onerror='steal()'>"
    "<a href='javascript:evil()' onclick='evil()'>click</a><p style='color:red'>thanks</p>"
)


# SMTP AUTH over plain TCP is what the loopback test server offers; aiosmtpd warns about it.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_email_threads_by_references_sanitizes_html_and_replies_by_smtp(
    tmp_path: Path, dovecot: Dovecot
) -> None:
    with (
        SmtpSink(login=("relay-user", SMTP_PASSWORD)) as smtp,
        channel_router(tmp_path, dovecot, smtp) as router,
    ):
        token = router.login("ana")

        async def scenario() -> None:
            ana = await available_agent(router)
            first, first_id = _mail(
                "Alice Doe <Alice@Customer.test>",
                "Broken invoice",
                "My invoice is wrong.",
                HOSTILE_HTML,
                attachment=b"%PDF-1.4 test",
            )
            dovecot.append(first)
            conversation_id = await accept_next_offer(ana, "email")

            thread = messages(router, conversation_id, token)
            assert [m["direction"] for m in thread] == ["in"]
            html = thread[0]["html"]
            assert "<b>invoice</b>" in html
            for bad in (
                "<script",
                "alert(",
                "onerror",
                ' src="http',
                "javascript:",
                "onclick",
                "style=",
            ):
                assert bad not in html, (bad, html)
            # The tracking pixel is not loadable; its address is kept for "show images".
            assert 'data-remote-src="http://tracker.example/pixel.png"' in html
            assert thread[0]["body"].startswith("My invoice is wrong.")
            # The live event carried the HTML too (an upsert of the same message id).
            live = await ana.event(
                "message",
                lambda e: e["message"]["id"] == thread[0]["id"] and e["message"]["html"] == html,
            )
            assert [a["filename"] for a in live["event"]["message"]["attachments"]] == [
                "invoice.pdf"
            ]
            extras = get(router, f"/api/conversations/{conversation_id}/deliveries", token)
            assert [(a["filename"], a["size"]) for a in extras["attachments"]] == [
                ("invoice.pdf", 13)
            ]
            attachment = httpx.get(
                f"{router.url}/api/attachments/{extras['attachments'][0]['id']}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert attachment.content == b"%PDF-1.4 test"

            await send_reply(ana, conversation_id, "We are on it.")
            (reply,) = await asyncio.to_thread(smtp.wait_for, 1)
            assert reply["To"] == "alice@customer.test"
            assert reply["From"] == SUPPORT_ADDRESS
            assert reply["Subject"] == "Re: Broken invoice"
            assert reply["In-Reply-To"] == f"<{first_id}>"
            assert reply["References"] == f"<{first_id}>"
            assert reply.get_content().strip() == "We are on it."
            reply_id = reply["Message-ID"].strip("<>")
            assert reply_id.endswith("@switchboard.test")

            # The customer answers from another address of theirs: References put it in
            # the same conversation, not a new one.
            answer, answer_id = _mail(
                "alice.doe@home.test",
                "Re: Broken invoice",
                "Thanks, here is more.",
                references=[first_id, reply_id],
            )
            dovecot.append(answer)
            await ana.event(
                "message",
                lambda e: (
                    e["message"]["conversation_id"] == conversation_id
                    and e["message"]["body"] == "Thanks, here is more."
                ),
            )
            assert not [
                f
                for f in ana.frames
                if f.get("type") == "event"
                and f["event"]["kind"] == "offer"
                and f["event"]["offer"]["conversation_id"] != conversation_id
            ]

            await send_reply(ana, conversation_id, "Fixed.")
            second = (await asyncio.to_thread(smtp.wait_for, 2))[1]
            assert second["In-Reply-To"] == f"<{answer_id}>"
            assert second["References"] == f"<{first_id}> <{reply_id}> <{answer_id}>"
            deliveries = get(router, f"/api/conversations/{conversation_id}/deliveries", token)[
                "deliveries"
            ]
            assert [d["status"] for d in deliveries] == ["sent", "sent"]
            await ana.close()

        asyncio.run(scenario())
        assert wait_until(lambda: dovecot.unseen() == 0, what="mail flagged seen")
        assert smtp.logins, "the router sent without logging in"
        log = router.stderr_tail(100000)
        assert dovecot.password not in log and SMTP_PASSWORD not in log


def test_oversized_and_broken_mail_go_to_dead_letters_and_the_next_mail_flows(
    tmp_path: Path, dovecot: Dovecot, smtp: SmtpSink
) -> None:
    big, _ = _mail("big@customer.test", "Huge", "x" * 40_000)
    broken = (
        b"From: broken@customer.test\r\nSubject: Broken\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed\r\nMessage-ID: <broken@customer.test>\r\n\r\n"
        b"--zz\r\nContent-Type: text/plain\r\n\r\nhi\r\n--zz--\r\n"
    )
    good, _ = _mail("good@customer.test", "Fine", "This one is fine.")
    for raw in (big, broken, good):
        dovecot.append(raw)
    with channel_router(tmp_path, dovecot, smtp, extra=["--email-max-bytes", "20000"]) as router:
        sam = router.login("sam")

        async def scenario() -> None:
            ana = await available_agent(router)
            conversation_id = await accept_next_offer(ana, "email")
            thread = messages(router, conversation_id, router.login("ana"))
            assert thread[0]["body"] == "This one is fine."
            await ana.close()

        asyncio.run(scenario())

        def letters() -> list[dict]:
            found = get(router, "/api/admin/dead-letters", sam)["dead_letters"]
            return found if len(found) >= 2 else []

        found = wait_until(letters, what="two dead letters")
        by_reason = {letter["reason"]: letter for letter in found}
        assert set(by_reason) == {"too_large", "bad_mime"}
        assert by_reason["too_large"]["size"] > 20000
        assert "20000" in by_reason["too_large"]["detail"]
        assert "big@customer.test" in by_reason["too_large"]["source"]
        assert "NoBoundaryInMultipartDefect" in by_reason["bad_mime"]["detail"]
        kept = httpx.get(
            f"{router.url}/api/admin/dead-letters/{by_reason['bad_mime']['id']}/raw",
            headers={"Authorization": f"Bearer {sam}"},
            timeout=10,
        )
        assert kept.content == broken
        refused = httpx.get(
            f"{router.url}/api/admin/dead-letters",
            headers={"Authorization": f"Bearer {router.login('ana')}"},
            timeout=10,
        )
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        assert wait_until(lambda: dovecot.unseen() == 0, what="all mail flagged seen")
        log = router.stderr_tail(100000)
        assert "dead letter" in log and "too_large" in log

    listing = subprocess.run(
        [sys.executable, "-m", "router.channels.deadletters", "--db", str(router.db)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert [line.count('"reason"') for line in listing.stdout.splitlines()] == [1, 1]


def test_channel_settings_missing_a_secret_stop_the_router_with_a_clear_error(
    tmp_path: Path,
) -> None:
    proc = RouterProcess(
        tmp_path / "router.db",
        [
            "--demo-agents",
            "--email-address",
            SUPPORT_ADDRESS,
            "--imap-host",
            "127.0.0.1",
            "--imap-user",
            "support",
            "--smtp-host",
            "127.0.0.1",
        ],
    )
    with pytest.raises(RuntimeError):
        proc.start()
    assert "SWITCHBOARD_IMAP_PASSWORD" in proc.stderr_tail()
    assert proc.proc is not None and proc.proc.returncode == 2


def test_imap_idle_brings_new_mail_without_waiting_for_the_poll(
    tmp_path: Path, dovecot: Dovecot, smtp: SmtpSink
) -> None:
    # One poll at start, then the next only after 10 minutes: only IDLE can bring this mail.
    with channel_router(tmp_path, dovecot, smtp, extra=["--imap-poll", "600"]) as router:

        async def scenario() -> None:
            ana = await available_agent(router)
            await async_wait_until(
                lambda: "IMAP IDLE watching INBOX" in router.stderr_tail(), what="the IDLE watcher"
            )
            dovecot.append(_mail("idle@customer.test", "Quick", "Are you there?")[0])
            conversation_id = await accept_next_offer(ana, "email")
            thread = messages(router, conversation_id, router.login("ana"))
            assert thread[0]["body"] == "Are you there?"
            await ana.close()

        asyncio.run(scenario())
        assert dovecot.password not in router.stderr_tail(100000)


def test_a_reply_the_mail_server_cannot_take_is_failed_and_the_agent_is_told(
    tmp_path: Path, dovecot: Dovecot
) -> None:
    with SmtpSink() as smtp:
        pass  # stopped: its port now refuses connections
    with channel_router(tmp_path, dovecot, smtp) as router:
        token = router.login("ana")

        async def scenario() -> str:
            ana = await available_agent(router)
            dovecot.append(_mail("carol@customer.test", "Hello", "Anyone?")[0])
            conversation_id = await accept_next_offer(ana, "email")
            await send_reply(ana, conversation_id, "Yes!")
            note = await ana.event("message", lambda e: e["message"]["direction"] == "note")
            assert note["event"]["message"]["body"].startswith(
                "Your reply was not delivered by email: the mail server refused it"
            )
            await ana.close()
            return conversation_id

        conversation_id = asyncio.run(scenario())
        (delivery,) = get(router, f"/api/conversations/{conversation_id}/deliveries", token)[
            "deliveries"
        ]
        assert delivery["status"] == "failed"
        assert "ConnectionRefusedError" in delivery["error"]


def test_mail_that_arrives_while_the_router_is_down_threads_after_restart(
    tmp_path: Path, dovecot: Dovecot, smtp: SmtpSink
) -> None:
    with channel_router(tmp_path, dovecot, smtp) as router:

        async def first_part() -> str:
            ana = await available_agent(router)
            dovecot.append(
                _mail(
                    "dave@customer.test",
                    "Refund",
                    "Where is my refund?",
                    message_id="dave-1@customer.test",
                )[0]
            )
            conversation_id = await accept_next_offer(ana, "email")
            await send_reply(ana, conversation_id, "Checking.")
            await ana.close()
            return conversation_id

        conversation_id = asyncio.run(first_part())
        (reply,) = smtp.wait_for(1)
        router.stop()
        dovecot.append(
            _mail(
                "dave@customer.test",
                "Re: Refund",
                "Any news?",
                references=["dave-1@customer.test", reply["Message-ID"].strip("<>")],
            )[0]
        )
        router.start()
        token = router.login("ana")

        def thread() -> list[str]:
            bodies = [m["body"] for m in messages(router, conversation_id, token)]
            return bodies if len(bodies) == 3 else []

        assert wait_until(thread, what="the reply in the same thread") == [
            "Where is my refund?",
            "Checking.",
            "Any news?",
        ]
        assert len(smtp.messages) == 1, "the reply was sent again after the restart"
