"""SMS in Twilio's wire format against a real router process: signed webhooks in, the
Messages REST API out (to a loopback stand-in), status callbacks, refusals."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.channel_setup import (
    ACCOUNT_SID,
    OUR_NUMBER,
    TWILIO_TOKEN,
    accept_next_offer,
    available_agent,
    channel_router,
    get,
    send_reply,
    twilio,  # noqa: F401 (fixture)
)
from tests.support.channel_peers import TwilioStandIn, twilio_signature
from tests.support.router_proc import RouterProcess
from tests.support.wait import wait_until


@pytest.fixture
def sms_router(tmp_path: Path, twilio: TwilioStandIn) -> Iterator[RouterProcess]:
    with channel_router(tmp_path, twilio=twilio, secrets_file=True) as router:
        yield router


def _dead_letters(router: RouterProcess) -> list[dict]:
    return list(get(router, "/api/admin/dead-letters", router.login("sam"))["dead_letters"])


def test_bad_signatures_are_refused_with_403_and_nothing_is_stored(
    sms_router: RouterProcess, twilio: TwilioStandIn
) -> None:
    url = f"{sms_router.url}/channels/sms/inbound"
    params = {
        "MessageSid": "SM" + uuid.uuid4().hex,
        "AccountSid": ACCOUNT_SID,
        "From": "+14155550123",
        "To": OUR_NUMBER,
        "Body": "hello",
    }
    wrong = twilio.post_signed(url, params, signature="bm90IHRoZSBzaWduYXR1cmU=")
    missing = httpx.post(url, data=params, timeout=10)
    # Signed with the right token but for other content: the body was changed in transit.
    tampered = httpx.post(
        url,
        data={**params, "Body": "changed"},
        timeout=10,
        headers={"X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, url, params)},
    )
    for response in (wrong, missing, tampered):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "bad_signature"
    assert httpx.get(f"{sms_router.url}/health", timeout=10).json()["queued"] == 0
    assert _dead_letters(sms_router) == []
    assert "bad or missing X-Twilio-Signature" in sms_router.stderr_tail()


def test_well_signed_but_malformed_webhooks_get_400_and_a_dead_letter(
    sms_router: RouterProcess, twilio: TwilioStandIn
) -> None:
    url = f"{sms_router.url}/channels/sms/inbound"
    no_from = twilio.post_signed(
        url, {"MessageSid": "SM1", "AccountSid": ACCOUNT_SID, "To": OUR_NUMBER, "Body": "hi"}
    )
    bad_number = twilio.post_signed(
        url,
        {
            "MessageSid": "SM2",
            "AccountSid": ACCOUNT_SID,
            "From": "not-a-number",
            "To": OUR_NUMBER,
            "Body": "hi",
        },
    )
    for response in (no_from, bad_number):
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "bad_request"
    letters = _dead_letters(sms_router)
    assert sorted(letter["detail"] for letter in letters) == [
        "From is not an E.164 number",
        "From is not an E.164 number",
    ]
    assert {letter["reason"] for letter in letters} == {"bad_webhook"}
    assert {letter["source"] for letter in letters} == {"SM1", "SM2"}
    not_form = twilio.post_signed(url, {})
    assert not_form.status_code == 400
    assert httpx.get(f"{sms_router.url}/health", timeout=10).json()["queued"] == 0


def test_sms_in_reply_out_in_twilio_format_and_status_callbacks(
    sms_router: RouterProcess, twilio: TwilioStandIn
) -> None:
    token = sms_router.login("ana")

    async def scenario() -> str:
        ana = await available_agent(sms_router)
        sid = "SM" + uuid.uuid4().hex
        response = await asyncio.to_thread(
            twilio.inbound, sms_router.url, "+1 (415) 555-0123", "My parcel is late", sid
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/xml")
        assert "<Response>" in response.text
        # Twilio retries a webhook it thinks failed: the same MessageSid is taken in once.
        again = await asyncio.to_thread(
            twilio.inbound, sms_router.url, "+14155550123", "My parcel is late", sid
        )
        assert again.status_code == 200
        conversation_id = await accept_next_offer(ana, "sms")
        conversation = get(sms_router, f"/api/conversations/{conversation_id}/messages", token)
        assert conversation["conversation"]["customer"]["identities"] == [
            {"kind": "phone", "value": "+14155550123"}
        ]
        assert [m["body"] for m in conversation["messages"]] == ["My parcel is late"]

        await send_reply(ana, conversation_id, "It ships today.")
        await ana.close()
        return conversation_id

    conversation_id = asyncio.run(scenario())
    (sent,) = wait_until(lambda: list(twilio.sent), what="the reply at the provider")
    assert sent["To"] == "+14155550123"
    assert sent["From"] == OUR_NUMBER
    assert sent["Body"] == "It ships today."
    assert sent["StatusCallback"] == f"{sms_router.url}/channels/sms/status"
    assert twilio.refused == []

    def status() -> str:
        rows = get(sms_router, f"/api/conversations/{conversation_id}/deliveries", token)[
            "deliveries"
        ]
        return str(rows[0]["status"]) if rows else ""

    assert wait_until(lambda: status() == "queued", what="queued at the provider")
    assert twilio.status_callback(sent, "sent").status_code == 204
    assert twilio.status_callback(sent, "delivered").status_code == 204
    assert status() == "delivered"
    forged = twilio.post_signed(
        sent["StatusCallback"],
        {"MessageSid": sent["MessageSid"], "MessageStatus": "failed"},
        signature="Zm9yZ2Vk",
    )
    assert forged.status_code == 403
    assert status() == "delivered"
    assert TWILIO_TOKEN not in sms_router.stderr_tail(100000)


def test_a_reply_the_provider_refuses_is_marked_failed_and_the_agent_is_told(
    sms_router: RouterProcess, twilio: TwilioStandIn
) -> None:
    token = sms_router.login("ana")
    twilio.refuse_with = {
        "code": 21610,
        "message": "Attempt to send to unsubscribed recipient",
        "status": 400,
    }

    async def scenario() -> str:
        ana = await available_agent(sms_router)
        assert (
            await asyncio.to_thread(
                twilio.inbound, sms_router.url, "+14155550124", "Where is my order?"
            )
        ).status_code == 200
        conversation_id = await accept_next_offer(ana, "sms")
        await send_reply(ana, conversation_id, "Are you there?")
        note = await ana.event("message", lambda e: e["message"]["direction"] == "note")
        assert note["event"]["message"]["body"] == (
            "Your reply was not delivered by sms: the SMS provider refused it (HTTP 400: "
            "Attempt to send to unsubscribed recipient)"
        )
        await ana.close()
        return conversation_id

    conversation_id = asyncio.run(scenario())
    (delivery,) = get(sms_router, f"/api/conversations/{conversation_id}/deliveries", token)[
        "deliveries"
    ]
    assert delivery["status"] == "failed" and "HTTP 400" in delivery["error"]
    assert twilio.sent == []
    # Without --chat there is no widget: channels are opt-in one by one.
    assert httpx.get(f"{sms_router.url}/chat", timeout=10).status_code == 404
