"""One customer across channels: email and SMS from the same person, once an agent links
their phone number, land on one customer with one history (real Dovecot, aiosmtpd, the
Twilio stand-in and a real router process)."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from pathlib import Path

import httpx

from tests.integration.channel_setup import (
    ACCOUNT_SID,
    SUPPORT_ADDRESS,
    TWILIO_TOKEN,
    accept_next_offer,
    available_agent,
    channel_router,
    get,
)
from tests.support.channel_peers import Dovecot, SmtpSink, TwilioStandIn


def test_email_and_sms_of_one_linked_customer_share_one_history(tmp_path: Path) -> None:
    with (
        Dovecot() as dovecot,
        SmtpSink() as smtp,
        TwilioStandIn(ACCOUNT_SID, TWILIO_TOKEN) as twilio,
        channel_router(tmp_path, dovecot, smtp, twilio) as router,
    ):
        token = router.login("ana")
        auth = {"Authorization": f"Bearer {token}"}

        async def scenario() -> tuple[str, str, str]:
            ana = await available_agent(router)
            mail = EmailMessage()
            mail["From"] = "Bob Stone <bob@customer.test>"
            mail["To"] = SUPPORT_ADDRESS
            mail["Subject"] = "Account locked"
            mail["Message-ID"] = "<bob-1@customer.test>"
            mail.set_content("I am locked out.")
            dovecot.append(mail.as_bytes())
            email_conversation = await accept_next_offer(ana, "email")
            customer_id = get(router, f"/api/conversations/{email_conversation}/messages", token)[
                "conversation"
            ]["customer"]["id"]

            # Before linking, a text from Bob's phone is a stranger.
            linked = await asyncio.to_thread(
                httpx.post,
                f"{router.url}/api/customers/{customer_id}/identities",
                json={"kind": "phone", "value": "+1 415 555 0177"},
                headers=auth,
                timeout=10,
            )
            assert linked.status_code == 201, linked.text
            assert {"kind": "phone", "value": "+14155550177"} in (
                linked.json()["customer"]["identities"]
            )
            await ana.event(
                "conversation",
                lambda e: (
                    e["conversation"]["id"] == email_conversation
                    and len(e["conversation"]["customer"]["identities"]) == 2
                ),
            )
            again = await asyncio.to_thread(
                httpx.post,
                f"{router.url}/api/customers/{customer_id}/identities",
                json={"kind": "phone", "value": "+14155550177"},
                headers=auth,
                timeout=10,
            )
            assert again.status_code == 200

            response = await asyncio.to_thread(
                twilio.inbound, router.url, "+14155550177", "Texting too: still locked out"
            )
            assert response.status_code == 200
            sms_conversation = await accept_next_offer(ana, "sms")
            await ana.close()
            return customer_id, email_conversation, sms_conversation

        customer_id, email_conversation, sms_conversation = asyncio.run(scenario())
        history = get(router, f"/api/customers/{customer_id}/history", token)
        assert [
            (c["conversation"]["id"], c["conversation"]["channel"])
            for c in history["conversations"]
        ] == [(email_conversation, "email"), (sms_conversation, "sms")]
        assert [c["messages"][0]["body"] for c in history["conversations"]] == [
            "I am locked out.",
            "Texting too: still locked out",
        ]
        sms_customer = get(router, f"/api/conversations/{sms_conversation}/messages", token)[
            "conversation"
        ]["customer"]
        assert sms_customer["id"] == customer_id and sms_customer["name"] == "Bob Stone"

        # An identity that is someone else's is refused, not moved.
        stranger = twilio.inbound(router.url, "+14155550188", "Who am I?")
        assert stranger.status_code == 200
        taken = httpx.post(
            f"{router.url}/api/customers/{customer_id}/identities",
            json={"kind": "phone", "value": "+14155550188"},
            headers=auth,
            timeout=10,
        )
        assert taken.status_code == 409 and taken.json()["error"]["code"] == "conflict"
        bad = httpx.post(
            f"{router.url}/api/customers/{customer_id}/identities",
            json={"kind": "phone", "value": "555"},
            headers=auth,
            timeout=10,
        )
        assert bad.status_code == 400
        nobody = httpx.get(f"{router.url}/api/customers/{customer_id}/history", timeout=10)
        assert nobody.status_code == 401
