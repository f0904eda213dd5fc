"""A corrupt cache against the real router: moved aside, rebuilt, unsent replies delivered.

The agent writes two replies and a draft while the router is down; the app is killed (the
cache is left 'not closed cleanly') and the disk garbles the messages table. On the next
start the engine finds the damage, moves the file aside, keeps the replies and the draft,
tells the agent, fills the cache from the router's snapshot, and the replies reach the router
exactly once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sync.changes import OfferReceived, ProtocolIssue
from sync.store import atomic, open_store, set_state
from tests.fault.support import engines, inbound, integrity, rows, wait_converged
from tests.support.router_proc import RouterProcess
from tests.support.wait import wait_until
from tests.unit.test_recovery import smash

__all__ = ["engines"]  # the fixture, shared with the fault suite


def test_a_corrupt_cache_is_rebuilt_from_the_router_with_the_outbox_kept(
    router: RouterProcess, engines: Any, tmp_path: Path
) -> None:
    cache = tmp_path / "cache.db"
    engine, rec = engines(router.url)
    wait_until(lambda: rec.state() == "online", what="online")
    engine.set_state("available").result(10)
    conv = inbound(router, "Is my refund through?")
    offer = wait_until(
        lambda: [o for o in rec.of(OfferReceived) if o.conversation_id == conv], what="the offer"
    )[0]
    engine.accept(offer.offer_id).result(10)
    for i in range(40):
        inbound(router, f"more detail {i} " + "q" * 300)
    wait_converged(router, cache, "a-ana")
    router.stop()
    replies = [engine.send_message(conv, f"offline reply {i}").result(10) for i in range(2)]
    engine.save_draft(conv, "still typing this").result(10)
    engine.stop()
    db = open_store(cache)
    with atomic(db):
        set_state(db, "open_clean", "0")  # as a kill leaves it
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    smash(cache, "messages")

    router.start()
    engine, rec = engines(router.url)
    issue = wait_until(
        lambda: [i for i in rec.of(ProtocolIssue) if i.problem == "cache_rebuilt"],
        what="the agent told about the rebuild",
    )[0]
    assert "2 unsent action(s) and 1 draft(s) were kept" in issue.message
    assert [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    wait_converged(router, cache, "a-ana")
    stored = rows(
        router.db,
        "SELECT id, body FROM messages WHERE conversation_id = ? "
        "AND direction = 'out' ORDER BY seq",
        conv,
    )
    assert stored == [(replies[0], "offline reply 0"), (replies[1], "offline reply 1")]
    assert rows(cache, "SELECT body FROM drafts WHERE conversation_id = ?", conv) == [
        ("still typing this",)
    ]
    # The rebuilt cache holds the whole thread again, from the snapshot.
    assert rows(cache, "SELECT COUNT(*) FROM messages WHERE conversation_id = ?", conv) == rows(
        router.db, "SELECT COUNT(*) FROM messages WHERE conversation_id = ?", conv
    )
    assert integrity(cache) == "ok"
