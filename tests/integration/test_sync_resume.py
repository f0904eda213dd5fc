"""Resume after the router dropped the events the client needs: snapshot, then events.

The agent's app is closed while customers keep writing; the router prunes its log past the
app's cursor (as its retention does; here done on its stopped database, the same DELETE).
On the next start the resume is answered with a paged snapshot and then live events; the
reply the agent wrote while closed-off survives the snapshot and is delivered once, and the
cache equals the router's row by row.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sync.changes import OfferReceived
from tests.fault.support import (
    compare_with_router,
    engines,
    inbound,
    router_head,
    rows,
    wait_converged,
)
from tests.support.router_proc import RouterProcess
from tests.support.wait import wait_until

__all__ = ["engines"]


def test_a_cursor_older_than_the_routers_log_resumes_by_snapshot(
    router: RouterProcess, engines: Any, tmp_path: Path
) -> None:
    cache = tmp_path / "cache.db"
    engine, rec = engines(router.url)
    wait_until(lambda: rec.state() == "online", what="online")
    engine.set_state("available").result(10)
    conv = inbound(router, "hello", visitor="v-1")
    offer = wait_until(
        lambda: [o for o in rec.of(OfferReceived) if o.conversation_id == conv], what="the offer"
    )[0]
    engine.accept(offer.offer_id).result(10)
    wait_converged(router, cache, "a-ana")
    cursor = int(rows(cache, "SELECT value FROM sync_state WHERE key = 'cursor'")[0][0])

    router.stop()  # the agent writes while the router is away...
    offline = engine.send_message(str(conv), "written while away").result(10)
    engine.stop()
    router.start()
    for i in range(6):  # ...and the customer goes on writing
        inbound(router, f"are you there? {i}", visitor="v-1")
    wait_until(lambda: router_head(router, "a-ana") >= cursor + 6, what="new events")
    head = router_head(router, "a-ana")
    router.stop()
    db = sqlite3.connect(str(router.db))
    with db:
        db.execute("DELETE FROM events WHERE agent_id = 'a-ana' AND seq <= ?", [head - 2])
    db.close()
    router.start()
    snapshots_before = router.stderr_tail(10_000).count("snapshot for a-ana")

    engine, rec = engines(router.url)
    wait_converged(router, cache, "a-ana")
    # The router had to answer with a snapshot (a replay would have left a gap).
    assert router.stderr_tail(10_000).count("snapshot for a-ana") == snapshots_before + 1
    assert int(rows(cache, "SELECT value FROM sync_state WHERE key = 'cursor'")[0][0]) >= head
    assert compare_with_router(router, cache, "a-ana") == []
    assert rows(router.db, "SELECT COUNT(*) FROM messages WHERE body = 'written while away'") == [
        (1,)
    ]
    assert rows(cache, "SELECT status FROM messages WHERE id = ?", offline) == [("sent",)]
    assert rows(
        cache,
        "SELECT COUNT(*) FROM messages WHERE conversation_id = ? AND body LIKE 'are you there?%'",
        conv,
    ) == [(6,)]
