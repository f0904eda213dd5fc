"""Demo data and traffic, so a newcomer's inbox is alive the moment the app starts.

`seed_agents` creates the demo config's agents (ana, ben, chloe, supervisor sam) with the
password from `SWITCHBOARD_DEMO_PASSWORD` (never a built-in one). `seed_customers` creates
customers reachable on email, chat and SMS, a few conversations already assigned to ana with
some history, and a few waiting ones; it runs once per database. `DemoTraffic` then brings new
conversations at a set rate and has the customer answer a little after an agent replies.
Everything random comes from one seeded `random.Random`, so a demo run can be repeated.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from router.acd import Acd, HistoryLine
from router.auth import hash_password
from router.config import RouterConfig
from router.service import Service
from router.storage import Storage

log = logging.getLogger(__name__)

PASSWORD_ENV = "SWITCHBOARD_DEMO_PASSWORD"
MAX_WAITING = 15
"""New demo conversations pause while this many wait, so an unattended demo does not pile up."""


@dataclass(frozen=True)
class DemoCustomer:
    name: str
    email: str
    chat: str
    phone: str


DEMO_CUSTOMERS = (
    DemoCustomer("Maria Gonzalez", "maria.gonzalez@example.com", "visitor-7f3a", "+14155550134"),
    DemoCustomer("James O'Brien", "james.obrien@example.net", "visitor-19c2", "+442079460321"),
    DemoCustomer("Yuki Tanaka", "yuki.tanaka@example.org", "visitor-a04d", "+81355501234"),
    DemoCustomer("Amara Nwosu", "amara.nwosu@example.com", "visitor-5be8", "+2348025550147"),
    DemoCustomer("Lukas Becker", "lukas.becker@example.de", "visitor-c6e1", "+4930555012"),
    DemoCustomer("Sofia Rossi", "sofia.rossi@example.it", "visitor-2d9f", "+390655501890"),
    DemoCustomer("Priya Sharma", "priya.sharma@example.in", "visitor-8a71", "+919555012345"),
    DemoCustomer("Noah Williams", "noah.williams@example.com", "visitor-e3b5", "+16175550199"),
)

OPENERS = {
    "support": [
        ("Can't log in", "Hi, I reset my password but I still can't log in. Can you help?"),
        ("App crashes", "The app closes every time I open the reports page."),
        ("Order not arrived", "My order was due on Monday and still hasn't arrived."),
        ("Two-factor codes", "I'm not getting the two-factor codes by SMS any more."),
    ],
    "sales": [
        ("Team plan", "Hello, does the team plan include phone support?"),
        ("Volume discount", "We'd need about 40 seats. Is there a volume discount?"),
        ("Trial extension", "Could we extend our trial by a week? We're still evaluating."),
    ],
    "billing": [
        ("Charged twice", "I was charged twice this month, can you check?"),
        ("Invoice address", "The invoice shows our old address. Can you reissue it?"),
        ("Refund status", "I was promised a refund two weeks ago; where is it?"),
    ],
}

NUDGES = [
    "Hello? Are you still there?",
    "Any news on this?",
    "Just checking in: is there an update?",
    "I'm still waiting for an answer, please.",
]
NUDGE_AFTER = 45.0
"""Seconds a demo customer waits for the agent before writing again."""
NUDGES_PER_CONVERSATION = 2
"""After this many unanswered nudges the demo customer waits quietly."""

REPLIES = [
    "Thanks, that worked!",
    "Okay, I'll try that now.",
    "Hmm, still the same problem, I'm afraid.",
    "Great, thank you for the quick answer.",
    "Could you send me that in writing too?",
    "Sorry, I was away. Which page do you mean?",
    "Perfect. Anything else you need from me?",
    "It says 'session expired' now.",
]


def seed_agents(storage: Storage, config: RouterConfig, password: str, now: float) -> None:
    """Create or refresh the config's agents (the built-in demo config: ana, ben, chloe and
    the supervisor sam) with `password` (hashed; never logged). Embedded/demo mode only."""
    with storage.transaction():
        for agent in config.agents:
            storage.upsert_agent(
                agent.id,
                agent.username,
                agent.name,
                hash_password(password),
                agent.queues,
                agent.capacity or config.capacity,
                now,
                agent.skills,
                agent.supervises,
            )
    log.info("demo agents ready: %s", ", ".join(a.username for a in config.agents))


def seed_customers(acd: Acd, rng: random.Random) -> None:
    """Customers with all three identities and a starting inbox, once per database."""
    storage = acd.storage
    if storage.get_meta("demo_seeded"):
        return
    now = acd.now()
    with acd.transaction():
        ids = []
        for customer in DEMO_CUSTOMERS:
            customer_id = acd.find_or_add_customer("email", customer.email, customer.name)
            for kind, value in (("chat", customer.chat), ("phone", customer.phone)):
                if storage.customer_by_identity(kind, value) is None:
                    storage.add_identity(customer_id, kind, value)
            ids.append(customer_id)
        ana = "a-ana" if storage.agent("a-ana") else None
        start = now - 3 * 3600
        acd.import_conversation(
            "email",
            ids[0],
            "support",
            "Can't log in",
            [
                HistoryLine("in", ids[0], OPENERS["support"][0][1], start),
                HistoryLine(
                    "out",
                    ana or "a-ana",
                    "Sorry about that! Could you tell me which browser you use?",
                    start + 900,
                ),
                HistoryLine("in", ids[0], "Firefox, on a Mac.", start + 1500),
            ],
            assigned_agent=ana,
        )
        acd.import_conversation(
            "chat",
            ids[1],
            "sales",
            "Team plan",
            [
                HistoryLine("in", ids[1], OPENERS["sales"][0][1], now - 1200),
                HistoryLine(
                    "out",
                    ana or "a-ana",
                    "Hi James, yes: phone support is included from five seats.",
                    now - 1100,
                ),
                HistoryLine("in", ids[1], "And is there a monthly option?", now - 1000),
            ],
            assigned_agent=ana,
        )
        acd.import_conversation(
            "sms",
            ids[2],
            "support",
            None,
            [
                HistoryLine("in", ids[2], OPENERS["support"][2][1], now - 600),
            ],
            assigned_agent=ana,
        )
        acd.import_conversation(
            "email",
            ids[3],
            "billing",
            "Charged twice",
            [
                HistoryLine("in", ids[3], OPENERS["billing"][0][1], now - 300),
            ],
        )
        acd.import_conversation(
            "chat",
            ids[4],
            "support",
            "App crashes",
            [
                HistoryLine("in", ids[4], OPENERS["support"][1][1], now - 120),
            ],
        )
        storage.set_meta("demo_seeded", str(now))
    log.info("demo customers and conversations seeded")


class DemoTraffic:
    """New demo conversations at `rate` per minute, customer answers to agent replies, and
    customers who write again when the agent keeps them waiting (so the inbox keeps moving
    even while the agent only reads)."""

    def __init__(self, rate: float, seed: int | None) -> None:
        self.rate = rate
        self.rng = random.Random(seed)
        self.service: Service | None = None
        self._nudged: dict[str, int] = {}

    async def start(self, service: Service) -> None:
        """Seed (once per database) and start the traffic; a `Service.starters` entry."""
        self.service = service
        seed_customers(service.acd, self.rng)
        service.acd.on_outbound.append(self._on_agent_reply)
        if self.rate > 0:
            service.spawn(self._arrivals(), "demo-arrivals")
            service.spawn(self._nudges(), "demo-nudges")

    def _on_agent_reply(self, conversation_id: str) -> None:
        assert self.service is not None
        self._nudged.pop(conversation_id, None)
        self.service.spawn(self._answer(conversation_id), f"demo-answer-{conversation_id}")

    async def _answer(self, conversation_id: str) -> None:
        assert self.service is not None
        await asyncio.sleep(self.rng.uniform(2.0, 6.0))
        if self.service.acd.customer_reply(conversation_id, self.rng.choice(REPLIES)):
            log.info("demo customer answered in %s", conversation_id)

    async def _arrivals(self) -> None:
        assert self.service is not None
        acd = self.service.acd
        while True:
            await asyncio.sleep(self.rng.expovariate(self.rate / 60.0))
            if acd.storage.count_conversations("queued") >= MAX_WAITING:
                continue
            customer = self.rng.choice(DEMO_CUSTOMERS)
            channel = self.rng.choice(("email", "chat", "sms"))
            queue = self.rng.choice(tuple(OPENERS))
            subject, body = self.rng.choice(OPENERS[queue])
            address = {"email": customer.email, "chat": customer.chat, "sms": customer.phone}[
                channel
            ]
            acd.inbound(
                channel,
                address,
                customer.name,
                body,
                queue,
                subject if channel == "email" else None,
            )

    async def _nudges(self) -> None:
        """Now and then, one customer left waiting longer than NUDGE_AFTER writes again."""
        assert self.service is not None
        acd = self.service.acd
        while True:
            await asyncio.sleep(self.rng.uniform(10.0, 25.0) * 2.0 / max(self.rate, 0.5))
            waiting = [
                row
                for row in acd.storage.awaiting_agent(acd.now() - NUDGE_AFTER)
                if self._nudged.get(row["id"], 0) < NUDGES_PER_CONVERSATION
            ]
            if not waiting:
                continue
            conversation_id = str(self.rng.choice(waiting)["id"])
            if acd.customer_reply(conversation_id, self.rng.choice(NUDGES)):
                self._nudged[conversation_id] = self._nudged.get(conversation_id, 0) + 1
                log.info("demo customer wrote again in %s", conversation_id)
