"""SyncEngine's conversation commands against the real router: set_disposition,
end_conversation, schedule_callback, and the typing hint (HTTP, never queued)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from sync.http_actions import HttpActionError
from tests.integration.test_sync_router import (  # noqa: F401 (fixture)
    make_engine,
    router_rows,
    rows,
    take_conversation,
)
from tests.support.router_proc import RouterProcess
from tests.support.wait import wait_until


def test_disposition_end_and_callback_reach_the_router(
    router: RouterProcess,
    make_engine: Any,
    tmp_path: Path,
) -> None:
    engine, rec = make_engine(router.url)
    cache = tmp_path / "cache.db"
    cid = take_conversation(router, engine, rec, cache)
    # The router's wrap-up codes came with hello and are in the cache's agent object.
    ((agent,),) = rows(cache, "SELECT value FROM sync_state WHERE key = 'agent'")
    assert "resolved" in json.loads(agent)["codes"]["wrap_up"]

    engine.set_disposition(cid, "escalated").result(10)
    wait_until(
        lambda: (
            router_rows(router, "SELECT disposition FROM conversations WHERE id = ?", cid)
            == [("escalated",)]
        ),
        what="the disposition stored",
    )
    at = time.time() + 7200
    engine.schedule_callback(cid, at, note="after lunch").result(10)
    wait_until(
        lambda: (
            router_rows(router, "SELECT note FROM callbacks WHERE conversation_id = ?", cid)
            == [("after lunch",)]
        ),
        what="the callback stored",
    )
    engine.end_conversation(cid).result(10)
    wait_until(
        lambda: (
            router_rows(router, "SELECT status FROM conversations WHERE id = ?", cid)
            == [("wrap_up",)]
        ),
        what="the conversation in wrap-up",
    )
    # No chat channel on this router: the typing endpoint is absent, refused in words.
    with pytest.raises(HttpActionError, match="HTTP 404"):
        engine.typing(cid).result(10)
    assert rows(cache, "SELECT COUNT(*) FROM outbox WHERE name = 'typing'") == [(0,)]
