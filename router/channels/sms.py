"""SMS through a Twilio-compatible provider: a signed webhook in, the Messages REST API out.

Inbound: Twilio POSTs `application/x-www-form-urlencoded` fields (`MessageSid`, `AccountSid`,
`From`, `To`, `Body`, `NumMedia`...) to `/channels/sms/inbound` with `X-Twilio-Signature`:
base64(HMAC-SHA1(auth token, URL + each parameter name and value, sorted by name)). A bad or
missing signature is answered 403 with a JSON body and nothing is stored (it is not the
provider). A well-signed request that is not a usable message is answered 400 and kept in the
dead letters. A good one is answered with empty TwiML, and a retried `MessageSid` is taken in
once. A survey answer or an opt-out keyword is taken by `router.channels.survey` first.

Outbound: `POST {api_base}/2010-04-01/Accounts/{sid}/Messages.json` with basic auth (account
SID, auth token) and `To`, `From`, `Body`, `StatusCallback`; Twilio then POSTs status
callbacks (`MessageSid`, `MessageStatus`) to `/channels/sms/status`, signed the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from router import intake
from router.channels.config import SmsConfig
from router.channels.http import BodyTooLargeError, error, read_body
from router.channels.identities import e164
from router.channels.inbound import InboundMessage, dead_letter, deliver
from router.channels.outbound import DeliveryError, Outbound, Sent
from router.channels.store import ChannelStore
from router.channels.survey import SmsIntake, Surveys
from router.service import Service
from router.storage import Row

log = logging.getLogger(__name__)

INBOUND_PATH = "/channels/sms/inbound"
STATUS_PATH = "/channels/sms/status"
MAX_WEBHOOK_BYTES = 64 * 1024
MAX_SMS_CHARS = 1600
"""Twilio's limit for one message body (it splits it into segments itself)."""
STATUSES = (
    "accepted",
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "read",
    "canceled",
    "scheduled",
    "receiving",
    "received",
)
_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def signature(token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's request signature of a form POST to `url`."""
    data = url + "".join(k + v for k, v in sorted(params))
    digest = hmac.new(token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_variants(url: str) -> list[str]:
    """The URL as given, with and without its default port (Twilio signs either form)."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    out = [url]
    if parts.port is not None and parts.port == default and parts.hostname:
        out.append(urlunsplit(parts._replace(netloc=parts.hostname)))
    elif parts.port is None and default is not None and parts.hostname:
        out.append(urlunsplit(parts._replace(netloc=f"{parts.hostname}:{default}")))
    return out


def valid_signature(token: str, url: str, params: list[tuple[str, str]], given: str | None) -> bool:
    if not given:
        return False
    return any(hmac.compare_digest(signature(token, u, params), given) for u in _url_variants(url))


class SmsChannel:
    """Webhook routes and the REST sender for one Twilio account and number."""

    def __init__(
        self,
        service: Service,
        config: SmsConfig,
        outbound: Outbound,
        public_url: str | None,
        surveys: Surveys,
    ) -> None:
        self.service = service
        self.config = config
        self.surveys = surveys
        self.public_url = public_url.rstrip("/") if public_url else None
        self.store = ChannelStore(service.storage)
        outbound.senders["sms"] = self.send

    def routes(self) -> list[Route]:
        return [
            Route(INBOUND_PATH, self.inbound, methods=["POST"]),
            Route(STATUS_PATH, self.status, methods=["POST"]),
        ]

    def _url(self, request: Request, path: str) -> str:
        """The URL the provider signed: our public URL when configured (behind a proxy)."""
        if self.public_url:
            query = request.url.query
            return f"{self.public_url}{path}" + (f"?{query}" if query else "")
        return str(request.url)

    async def _signed_form(
        self, request: Request, path: str
    ) -> tuple[list[tuple[str, str]], bytes] | Response:
        """The form fields of a correctly signed request, or the error to answer."""
        try:
            raw = await read_body(request, MAX_WEBHOOK_BYTES)
        except BodyTooLargeError:
            log.warning("SMS webhook refused: body over %d bytes", MAX_WEBHOOK_BYTES)
            return error(413, "too_large", f"The body is over {MAX_WEBHOOK_BYTES} bytes.")
        except ClientDisconnect:
            log.warning("SMS webhook: the client went away mid-request")
            return error(400, "bad_request", "The request body was cut short.")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if content_type != "application/x-www-form-urlencoded":
                raise ValueError(f"content type {content_type or 'missing'}")
            params = parse_qsl(
                raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw)
            )
        except (ValueError, UnicodeDecodeError) as exc:
            if not valid_signature(
                self.config.auth_token.reveal(),
                self._url(request, path),
                [],
                request.headers.get("x-twilio-signature"),
            ):
                log.warning("SMS webhook refused: unparseable and not signed")
                return error(403, "bad_signature", "The X-Twilio-Signature does not match.")
            dead_letter(self.service, "sms", "bad_webhook", f"unparseable form: {exc}", raw)
            return error(400, "bad_request", "Send application/x-www-form-urlencoded fields.")
        if not valid_signature(
            self.config.auth_token.reveal(),
            self._url(request, path),
            params,
            request.headers.get("x-twilio-signature"),
        ):
            log.warning(
                "SMS webhook refused: bad or missing X-Twilio-Signature (from %s)",
                request.client.host if request.client else "?",
            )
            return error(403, "bad_signature", "The X-Twilio-Signature does not match.")
        return params, raw

    async def inbound(self, request: Request) -> Response:
        """`POST /channels/sms/inbound`: a customer's text."""
        got = await self._signed_form(request, INBOUND_PATH)
        if isinstance(got, Response):
            return got
        params, raw = got
        fields = dict(params)
        problem = None
        sender = e164(fields.get("From", ""))
        if not fields.get("MessageSid"):
            problem = "no MessageSid"
        elif fields.get("AccountSid") != self.config.account_sid:
            problem = "AccountSid is not this router's account"
        elif sender is None:
            problem = "From is not an E.164 number"
        elif "Body" not in fields:
            problem = "no Body"
        if problem is not None:
            dead_letter(
                self.service, "sms", "bad_webhook", problem, raw, fields.get("MessageSid") or None
            )
            return error(400, "bad_request", f"Not a usable message: {problem}.")
        assert sender is not None
        body = fields["Body"]
        media = fields.get("NumMedia", "0")
        if media.isdigit() and int(media) > 0:
            body += f"\n[{media} picture(s) or file(s) sent by MMS, not shown here]"
        if not body.strip():
            body = "(empty message)"
        message = InboundMessage(
            channel="sms",
            address=sender,
            name=sender,
            body=body,
            queue=self.config.queue,
            external_id=fields["MessageSid"],
        )
        try:
            verdict = self.surveys.sms_inbound(
                sender, fields["Body"], fields["MessageSid"], fields.get("OptOutType")
            )
            if verdict is not SmsIntake.TAKEN:
                delivered = deliver(self.service, message)
                if verdict is SmsIntake.DELIVER_THEN_LEAVE and delivered is not None:
                    intake.customer_left(self.service.acd, delivered.conversation_id)
        except Exception:
            # Our failure, not the sender's (a locked or full database): answer 500 so the
            # provider retries (its MessageSid makes the retry count once), and say so.
            log.exception("storing SMS %s failed", fields["MessageSid"])
            return error(500, "internal", "The message could not be stored; retry later.")
        return Response(_TWIML, media_type="text/xml")

    async def status(self, request: Request) -> Response:
        """`POST /channels/sms/status`: the provider's delivery status of one of ours."""
        got = await self._signed_form(request, STATUS_PATH)
        if isinstance(got, Response):
            return got
        params, _ = got
        fields = dict(params)
        sid, status = fields.get("MessageSid", ""), fields.get("MessageStatus", "")
        if not sid or status not in STATUSES:
            log.warning("SMS status callback refused: MessageSid or MessageStatus missing")
            return error(400, "bad_request", "Send MessageSid and a known MessageStatus.")
        delivery = self.store.delivery_by_provider_id(sid)
        if delivery is None:
            log.warning("SMS status %s for unknown message %s", status, sid)
            return error(404, "not_found", "No message of ours has this MessageSid.")
        code = fields.get("ErrorCode") or None
        with self.service.storage.transaction():
            self.store.set_delivery(
                delivery["message_id"],
                status,
                self.service.clock(),
                error=f"provider error {code}" if code else None,
            )
        log.info("SMS %s is %s", delivery["message_id"], status)
        return Response(status_code=204)

    async def send(self, thread: Row, message: Row) -> Sent:
        """An outbound sender (`Outbound.senders["sms"]`).

        Raises:
            DeliveryError: too long, or the provider refused or could not be reached.
        """
        if len(message["body"]) > MAX_SMS_CHARS:
            raise DeliveryError(f"an SMS holds at most {MAX_SMS_CHARS} characters")
        cfg = self.config
        url = f"{cfg.api_base}/2010-04-01/Accounts/{cfg.account_sid}/Messages.json"
        form = {"To": thread["address"], "From": cfg.number, "Body": message["body"]}
        if self.public_url:
            form["StatusCallback"] = self.public_url + STATUS_PATH
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                response = await client.post(
                    url, data=form, auth=(cfg.account_sid, cfg.auth_token.reveal())
                )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"the SMS provider could not be reached ({exc})") from exc
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code >= 300 or not isinstance(data, dict) or "sid" not in data:
            detail = data.get("message") if isinstance(data, dict) else None
            raise DeliveryError(
                f"the SMS provider refused it (HTTP {response.status_code}"
                f"{': ' + str(detail) if detail else ''})"
            )
        return Sent(str(data.get("status") or "queued"), str(data["sid"]))
