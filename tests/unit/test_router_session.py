"""router.session's Hub: a commit's events reach the live sessions in one flush per loop turn,
except a session given an offer, which is written from `notify` itself (before the rest of
the turn runs); a session that cannot write at once keeps its events for the flush and its
pusher. Driven with a recording `write_now` in place of a connection, and once with the
real ACD so the offer it stores is the one the hub recognises."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from router.acd import Acd
from router.config import RouterConfig
from router.session import URGENT_PREFIX, Hub, Subscription
from router.storage import Storage
from router.storage_log import encode_event


class Recorder:
    """A session's `write_now`: records what it wrote, or refuses while `ok` is False."""

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.ok = True
        self.written: list[list[int]] = []

    def __call__(self) -> bool:
        if not self.ok:
            return False
        if self.sub.events:
            self.written.append([seq for seq, _ in self.sub.events])
        self.sub.events = []
        return True


def live(hub: Hub, agent_id: str) -> Recorder:
    sub = hub.subscribe(agent_id)
    recorder = Recorder(sub)
    sub.write_now = recorder
    return recorder


def conversation(seq: int) -> tuple[int, str]:
    return seq, encode_event({"kind": "conversation", "conversation": {"id": "c-1"}})


def offer(seq: int) -> tuple[int, str]:
    return seq, encode_event({"kind": "offer", "offer": {"id": "o-1", "conversation_id": "c-1"}})


def test_events_of_one_loop_turn_share_one_write_at_the_flush() -> None:
    async def scenario() -> None:
        hub = Hub()
        ana, ben = live(hub, "a-ana"), live(hub, "a-ben")
        hub.notify({"a-ana": [conversation(1)], "a-ben": [conversation(1)]})
        hub.notify({"a-ana": [conversation(2)]})
        assert ana.written == [] and ben.written == []  # nothing before the flush
        await asyncio.sleep(0)  # one loop turn: the flush scheduled by the first notify
        assert ana.written == [[1, 2]] and ben.written == [[1]]

    asyncio.run(scenario())


def test_an_offer_is_written_from_notify_with_what_came_before_it() -> None:
    async def scenario() -> None:
        hub = Hub()
        ana, ben = live(hub, "a-ana"), live(hub, "a-ben")
        hub.notify({"a-ana": [conversation(1)], "a-ben": [conversation(1)]})
        hub.notify({"a-ana": [conversation(2), offer(3)], "a-ben": [conversation(2)]})
        # ana's session wrote all it had, in seq order, before notify returned; ben waits.
        assert ana.written == [[1, 2, 3]] and ben.written == []
        await asyncio.sleep(0)
        assert ana.written == [[1, 2, 3]] and ben.written == [[1, 2]]

    asyncio.run(scenario())


def test_an_offer_that_cannot_be_written_at_once_waits_for_the_flush_then_the_pusher() -> None:
    async def scenario() -> None:
        hub = Hub()
        ana = live(hub, "a-ana")
        ana.ok = False  # e.g. its pusher holds the send lock, or the transport is paused
        hub.notify({"a-ana": [conversation(1), offer(2)]})
        assert ana.written == [] and [s for s, _ in ana.sub.events] == [1, 2]
        await asyncio.sleep(0)  # the flush tries again, then hands over to the pusher
        assert ana.written == [] and ana.sub.wakeup.is_set()
        assert [s for s, _ in ana.sub.take()] == [1, 2]

    asyncio.run(scenario())


@pytest.fixture
def acd() -> Iterator[Acd]:
    storage = Storage(":memory:")
    config = RouterConfig(offer_timeout=20)
    with storage.transaction():
        storage.upsert_agent("a-ana", "ana", "Ana", "x", ["support"], config.capacity, 1000.0)
    acd = Acd(storage, config, lambda: 1000.0)
    yield acd
    storage.close()


def test_the_acd_s_offer_is_written_right_after_its_commit(acd: Acd) -> None:
    async def scenario() -> None:
        hub = Hub()
        acd.notify = hub.notify
        ana = live(hub, "a-ana")
        with acd.transaction():
            acd.set_agent_state("a-ana", "available")
        await asyncio.sleep(0)
        assert len(ana.written) == 1
        acd.inbound("chat", "visitor-1", "Customer", "hello", "support")
        # Offered within inbound's transaction; on the wire before inbound returned.
        stored = acd.storage.event_texts_after("a-ana", ana.written[0][-1], 50)
        assert ana.written[1:] == [[seq for seq, _ in stored]]
        assert any(text.startswith(URGENT_PREFIX) for _, text in stored)

    asyncio.run(scenario())
