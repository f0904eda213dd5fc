"""router.views: when a resume needs a snapshot, and snapshot pages that fit the frame."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from router.acd import Acd
from router.config import RouterConfig
from router.storage import Storage
from router.views import build_snapshot, needs_snapshot
from sync.protocol import MAX_BODY_CHARS, encode


@pytest.fixture
def acd() -> Iterator[Acd]:
    storage = Storage(":memory:")
    config = RouterConfig()
    with storage.transaction():
        storage.upsert_agent("a-ana", "ana", "Ana", "x", ["support"], config.capacity, 0.0)
        storage.upsert_agent("a-ben", "ben", "Ben", "x", ["billing"], config.capacity, 0.0)
    yield Acd(storage, config, lambda: 100.0)
    storage.close()


def test_needs_snapshot(acd: Acd) -> None:
    storage = acd.storage
    assert needs_snapshot(storage, "a-ana", 0)  # fresh cache, even with an empty stream
    for i in range(5):
        acd.inbound("chat", f"v{i}", "V", "hi", "support")
    last = storage.last_seq("a-ana")
    assert last >= 5
    assert not needs_snapshot(storage, "a-ana", 1)
    assert not needs_snapshot(storage, "a-ana", last)
    assert needs_snapshot(storage, "a-ana", last + 1)  # a cursor from another database
    with storage.transaction():
        storage.prune_events("a-ana", keep=2)
    assert storage.first_retained_seq("a-ana") == last - 1
    assert needs_snapshot(storage, "a-ana", last - 3)  # older than retained
    assert not needs_snapshot(storage, "a-ana", last - 2)  # next one is still there


def test_snapshot_shows_only_what_the_agent_may_see(acd: Acd) -> None:
    mine = acd.inbound("email", "a@example.com", "A", "support please", "support")
    other = acd.inbound("email", "b@example.com", "B", "billing please", "billing")
    agent = acd.storage.agent("a-ana")
    assert agent is not None
    pages = build_snapshot(acd.storage, agent, page_size=200)
    assert len(pages) == 1 and pages[0].last and pages[0].page == 0
    assert [c["id"] for c in pages[0].conversations] == [mine]
    assert all(m["conversation_id"] == mine for m in pages[0].messages)
    assert other not in encode(pages[0])
    assert pages[0].seq == acd.storage.last_seq("a-ana")
    assert pages[0].agent_state == {"state": "offline", "reason": None, "since": 0.0}


def test_snapshot_pages_stay_under_the_frame_limit(acd: Acd) -> None:
    conversation = acd.inbound("email", "long@example.com", "Long", "x", "support")
    for _ in range(30):
        acd.customer_reply(conversation, "é" * MAX_BODY_CHARS)  # 2 bytes each in UTF-8
    agent = acd.storage.agent("a-ana")
    assert agent is not None
    pages = build_snapshot(acd.storage, agent, page_size=200)
    assert len(pages) > 1
    assert [p.page for p in pages] == list(range(len(pages)))
    assert [p.last for p in pages] == [False] * (len(pages) - 1) + [True]
    assert sum(len(p.messages) for p in pages) == 31
    for page in pages:
        encode(page)  # raises too_large over the limit
    assert {p.seq for p in pages} == {pages[0].seq}
