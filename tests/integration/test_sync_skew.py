"""Clock skew between workstation and router never reorders a thread.

The engine's clock runs an hour behind (then an hour ahead) of the router's. A reply written
while the router is down carries the workstation's time and still shows last (it is not yet
acknowledged); once the router has it, the thread is in the router's seq order and the
times are the router's.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from client.store_reader import StoreReader
from sync.changes import OfferReceived
from tests.fault.support import engines, inbound, rows, wait_converged
from tests.support.router_proc import RouterProcess
from tests.support.wait import wait_until

__all__ = ["engines"]


@pytest.mark.parametrize("skew", [-3600.0, 3600.0])
def test_a_skewed_clock_does_not_reorder_the_thread(
    router: RouterProcess, engines: Any, tmp_path: Path, skew: float
) -> None:
    cache = tmp_path / "cache.db"
    engine, rec = engines(router.url, clock=lambda: time.time() + skew)
    wait_until(lambda: rec.state() == "online", what="online")
    engine.set_state("available").result(10)
    conv = inbound(router, "first from the customer")
    offer = wait_until(
        lambda: [o for o in rec.of(OfferReceived) if o.conversation_id == conv], what="the offer"
    )[0]
    engine.accept(offer.offer_id).result(10)
    engine.send_message(conv, "reply one").result(10)
    inbound(router, "second from the customer")
    wait_converged(router, cache, "a-ana")

    router.stop()
    offline = engine.send_message(conv, "written offline").result(10)
    reader = StoreReader(cache)
    thread = reader.thread(str(conv))
    # Not yet acknowledged: last, whatever its (skewed) local time says.
    assert [m.body for m in thread][-1] == "written offline"
    assert thread[-1].seq is None and thread[-1].status == "sending"
    assert abs((thread[-1].created_at or 0) - (time.time() + skew)) < 60

    router.start()
    wait_converged(router, cache, "a-ana")
    reader.close()
    thread = StoreReader(cache).thread(str(conv))
    theirs = rows(
        router.db,
        "SELECT id, body, created_at FROM messages WHERE conversation_id = ? ORDER BY seq",
        conv,
    )
    assert [(m.id, m.body) for m in thread] == [(r[0], r[1]) for r in theirs]
    assert [m.seq for m in thread] == sorted(m.seq or 0 for m in thread)
    mine = next(m for m in thread if m.id == offline)
    assert mine.status == "sent"
    assert mine.created_at == pytest.approx(theirs[-1][2])  # the router's time now
