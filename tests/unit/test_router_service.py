"""router.service: the periodic prune, spread over many short transactions, leaves the same
streams as pruning in one go."""

from __future__ import annotations

import asyncio
from pathlib import Path

from router.config import RouterConfig
from router.service import Service
from router.storage import Storage


def test_prune_in_turns_keeps_the_newest_events_of_every_stream(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "r.db")
    agents = [f"a-{i}" for i in range(120)]  # more than one turn's worth of streams
    with storage.transaction():
        for agent in agents:
            storage.upsert_agent(agent, agent, agent, "", ["support"], {"chat": 1}, 1.0)
        storage.append_events(
            [(agents, f'{{"kind":"k","i":{i}}}') for i in range(5)]
            + [(agents[:1], '{"kind":"only-first"}')],
            10.0,
        )
    service = Service(storage, RouterConfig(event_retention=2), lambda: 100.0)
    asyncio.run(service._prune_in_turns())
    assert [s for s, _ in storage.event_texts_after("a-0", 0)] == [5, 6]
    assert all([s for s, _ in storage.event_texts_after(a, 0)] == [4, 5] for a in agents[1:])
    # The bodies nobody refers to any more are gone (kept: i=3, i=4, "only-first").
    assert storage.conn.execute("SELECT COUNT(*) FROM event_bodies").fetchone()[0] == 3
    storage.close()
