"""The post-conversation survey (CSAT, 1-5) on web chat and SMS, and SMS opt-out.

Why the router asks and not the agent: the score rates the agent, so it must not depend on
the agent remembering to ask; and it must reach the metrics (a `survey` fact through
`router.intake.survey_answer`) the same way from every channel.

When a chat or SMS conversation's customer part ends with an agent (`Acd.on_ended`: the agent
ended it or wrapped it up), the customer is asked once (a `surveys` row):

- chat: a `survey` frame to the visitor's open pages, and `survey: true` in `ready` while it
  is unanswered, so a reload shows it again; the page answers `survey {score}`;
- SMS: a text from the router in the conversation (the agent sees it; it is delivered and
  tracked like a reply). A reply within `SURVEY_TTL` that is only a digit 1-5 is the answer,
  not a new contact, unless the customer has another open SMS conversation (then it is
  taken as a message: it may answer the agent's question there).

Only the first answer counts. SMS opt-out follows the carriers' keywords (Twilio's defaults,
or its `OptOutType` field): `STOP` and its synonyms record an opt-out (no survey is ever sent
to that number) and, while the customer's conversation is still waiting for an agent, end it
as abandoned; `START`/`UNSTOP` opt back in.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Callable

from router import intake
from router.channels.store import ChannelStore
from router.service import Service
from router.storage import Row

log = logging.getLogger(__name__)

SURVEY_TTL = 86400.0
"""Seconds a survey may be answered after it was asked."""
SMS_QUESTION = (
    "Thanks for contacting us. How did we do? Reply with a number from 1 (poor) to 5 (great)."
)
SCORE_REPLY = re.compile(r"\s*([1-5])\s*[.!]?\s*")
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
)
START_WORDS = frozenset({"START", "UNSTOP"})
SURVEY_CHANNELS = ("chat", "sms")


class SmsIntake(enum.Enum):
    """What the SMS webhook does with a text after `Surveys.sms_inbound`."""

    TAKEN = "taken"
    """A survey answer, or a bare opt-out/opt-in: handled here, no conversation message."""
    DELIVER = "deliver"
    """An ordinary message."""
    DELIVER_THEN_LEAVE = "leave"
    """An opt-out while a conversation is open: deliver it (the agent sees it), then the
    customer leaves (an abandon if nobody had taken it yet)."""


class Surveys:
    """Asks (on `Acd.on_ended`), remembers (`surveys`, `sms_opt_outs`) and takes answers."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.store = ChannelStore(service.storage)
        self.askers: dict[str, Callable[[Row], None]] = {}
        """Per channel: ask the customer of this channel thread (set by the chat channel)."""
        service.acd.on_ended.append(self.on_ended)

    # ------------------------------------------------------------------ asking

    def on_ended(self, conversation_id: str) -> None:
        """The agent finished with the customer: ask them once, on chat and SMS. Runs after
        the agent's command committed, so a failure here is logged, never turned into a
        refusal of a command that took effect."""
        try:
            self._ask(conversation_id)
        except Exception:
            log.exception("asking the survey of %s failed", conversation_id)

    def _ask(self, conversation_id: str) -> None:
        thread = self.store.thread(conversation_id)
        if thread is None or thread["channel"] not in SURVEY_CHANNELS:
            return
        conversation = self.service.storage.conversation(conversation_id)
        if conversation is None or not conversation["assigned_agent"]:
            return
        channel, address = thread["channel"], thread["address"]
        if channel == "sms" and self.store.sms_opted_out(address):
            log.info("no survey for %s: the number opted out", conversation_id)
            return
        acd = self.service.acd
        with acd.transaction():
            asked = self.store.add_survey(conversation_id, channel, address, acd.now())
            if asked and channel == "sms":
                acd.add_message(conversation_id, "out", intake.ROUTER_AUTHOR, SMS_QUESTION)
                for hook in acd.on_outbound:
                    acd.after_commit(lambda h=hook: h(conversation_id))  # type: ignore[misc]
        if not asked:
            return
        log.info("survey asked for %s (%s)", conversation_id, channel)
        asker = self.askers.get(channel)
        if asker is not None:
            asker(thread)

    # ------------------------------------------------------------------ answers

    def pending(self, channel: str, address: str) -> Row | None:
        """The newest unanswered survey of this address asked within `SURVEY_TTL`."""
        return self.store.pending_survey(channel, address, self.service.clock() - SURVEY_TTL)

    def answer(self, survey: Row, score: int) -> bool:
        """Record the score and its `survey` fact, once. Returns False when the survey was
        already answered."""
        acd = self.service.acd
        with acd.transaction():
            taken = self.store.set_survey_score(survey["conversation_id"], score, acd.now())
            if taken:
                intake.survey_answer(acd, survey["conversation_id"], score)
        if taken:
            log.info("survey of %s answered", survey["conversation_id"])
        return taken

    # ------------------------------------------------------------------ SMS

    def sms_inbound(
        self, number: str, body: str, message_sid: str, opt_out_type: str | None = None
    ) -> SmsIntake:
        """Decide what an inbound text is (see the module doc); records opt-outs and survey
        answers itself (a repeated `message_sid` is taken once)."""
        if self.store.seen("sms", message_sid):
            return SmsIntake.DELIVER  # `deliver` skips the provider's retry
        word = body.strip().upper()
        kind = (opt_out_type or "").strip().upper()
        customer = self.service.storage.customer_by_identity("phone", number)
        open_id = self.service.storage.open_conversation_for(customer, "sms") if customer else None
        acd = self.service.acd
        now = acd.now()
        stop = kind == "STOP" or word in STOP_WORDS
        if stop or kind == "START" or word in START_WORDS:
            with acd.transaction():
                self.store.set_sms_opt_out(number, stop, now)
                if open_id is None:
                    self.store.mark_seen("sms", message_sid, None, now)
            log.info("SMS opt-%s recorded", "out" if stop else "in")
            if open_id is None:
                return SmsIntake.TAKEN
            return SmsIntake.DELIVER_THEN_LEAVE if stop else SmsIntake.DELIVER
        match = SCORE_REPLY.fullmatch(body)
        survey = self.pending("sms", number) if match else None
        if match is None or survey is None:
            return SmsIntake.DELIVER
        if open_id is not None and open_id != survey["conversation_id"]:
            return SmsIntake.DELIVER
        with acd.transaction():
            self.answer(survey, int(match.group(1)))
            self.store.mark_seen("sms", message_sid, survey["conversation_id"], now)
        return SmsIntake.TAKEN
