"""Customer identities: how an address is normalised, and how an agent links a second one.

Every channel finds its customer by identity (`identities` table: email address, E.164 phone
number, chat visitor id), so the same spelling must always give the same key: addresses are
lower-cased, phone numbers are E.164. Linking lets an agent say "this phone number is the same
person as this email", after which SMS from that number lands on the one customer and the
agent sees one history across channels.
"""

from __future__ import annotations

import logging
from email.utils import parseaddr

import phonenumbers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from router.acd import OPEN_STATUSES, may_see
from router.channels.http import agent_for, error, json_object
from router.channels.store import ChannelStore
from router.service import Service
from router.storage import Row

log = logging.getLogger(__name__)

KINDS = ("email", "phone", "chat")


def e164(number: str) -> str | None:
    """`number` in E.164 (`+14155550134`), or None when it is not a valid international
    number (without a leading `+` there is no region to read it in)."""
    try:
        parsed = phonenumbers.parse(number.strip(), None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def email_address(text: str) -> str | None:
    """The bare, lower-cased address of `Name <addr>` or `addr`; None when there is none."""
    _, address = parseaddr(text)
    address = address.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in address):
        return None
    return address


def normalise(kind: str, value: str) -> str | None:
    if kind == "email":
        return email_address(value)
    if kind == "phone":
        return e164(value)
    if kind == "chat":
        return value.strip() or None
    return None


def link_identity(service: Service, customer_id: str, kind: str, value: str) -> bool:
    """Give `customer_id` the identity (kind, value). Returns False when it already was
    theirs. Their open conversations are re-sent so agents see the new identity.

    Raises:
        LookupError: the identity belongs to another customer.
    """
    acd = service.acd
    with acd.transaction():
        owner = service.storage.customer_by_identity(kind, value)
        if owner == customer_id:
            return False
        if owner is not None:
            raise LookupError(owner)
        service.storage.add_identity(customer_id, kind, value)
        for conversation_id in ChannelStore(service.storage).customer_conversation_ids(customer_id):
            conversation = acd.conversation(conversation_id)
            if conversation["status"] in OPEN_STATUSES:
                acd.change_conversation(conversation_id)
    log.info("customer %s linked to a %s identity", customer_id, kind)
    return True


def _visible_customer(
    service: Service, request: Request
) -> tuple[Row, str, list[str]] | JSONResponse:
    agent = agent_for(service, request)
    if isinstance(agent, JSONResponse):
        return agent
    customer_id = request.path_params["customer_id"]
    if service.storage.customer(customer_id) is None:
        return error(404, "not_found", "No such customer.")
    ids = ChannelStore(service.storage).customer_conversation_ids(customer_id)
    if not any(may_see(agent, service.acd.conversation(c)) for c in ids):
        return error(403, "forbidden", "None of this customer's conversations is yours to see.")
    return agent, customer_id, ids


def routes(service: Service) -> list[Route]:
    """`POST /api/customers/{id}/identities {kind, value}` and
    `GET /api/customers/{id}/history` (agent bearer token). The history holds the customer's
    conversations of the agent's own queues (closed ones too, for context) and any other the
    agent may see; another team's conversations stay out, as on the websocket."""

    async def add(request: Request) -> JSONResponse:
        found = _visible_customer(service, request)
        if isinstance(found, JSONResponse):
            return found
        _, customer_id, _ = found
        body = await json_object(request)
        if body is None or body.get("kind") not in KINDS or not isinstance(body.get("value"), str):
            return error(400, "bad_request", f"Send JSON {{kind: {'|'.join(KINDS)}, value}}.")
        value = normalise(body["kind"], body["value"])
        if value is None:
            return error(400, "bad_request", f"That is not a valid {body['kind']} identity.")
        try:
            added = link_identity(service, customer_id, body["kind"], value)
        except LookupError:
            return error(409, "conflict", "This identity belongs to another customer.")
        return JSONResponse(
            {"customer": service.storage.customer(customer_id)}, status_code=201 if added else 200
        )

    async def history(request: Request) -> JSONResponse:
        found = _visible_customer(service, request)
        if isinstance(found, JSONResponse):
            return found
        agent, customer_id, ids = found
        teams = set(agent["queues"]) | set(agent.get("supervises") or ())
        shown = [
            c
            for c in ids
            if service.acd.conversation(c)["queue"] in teams
            or may_see(agent, service.acd.conversation(c))
        ]
        return JSONResponse(
            {
                "customer": service.storage.customer(customer_id),
                "conversations": [
                    {
                        "conversation": service.storage.conversation_wire(c),
                        "messages": service.storage.messages(c),
                    }
                    for c in shown
                ],
            }
        )

    return [
        Route("/api/customers/{customer_id}/identities", add, methods=["POST"]),
        Route("/api/customers/{customer_id}/history", history, methods=["GET"]),
    ]
