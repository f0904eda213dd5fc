"""Agent rows are served from memory, kept in step with the router's own writes, and read
again from disk after a transaction that did not commit."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.storage import Storage


def _storage(tmp_path: Path) -> Storage:
    storage = Storage(tmp_path / "router.db")
    with storage.transaction():
        for name in ("ana", "ben"):
            storage.upsert_agent(f"a-{name}", name, name, "", ["support"], {"chat": 3}, 1.0)
    return storage


def test_writes_show_in_the_cached_rows_and_on_disk(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    with storage.transaction():
        storage.set_agent_state("a-ana", "available", None, 5.0)
        storage.set_idle_since("a-ana", 6.0)
    ana = storage.agent("a-ana")
    assert ana is not None and (ana["state"], ana["idle_since"]) == ("available", 6.0)
    assert [a["id"] for a in storage.routable_agents(["support"])] == ["a-ana"]
    assert [a["id"] for a in storage.agents_in_states(["offline"])] == ["a-ben"]
    storage.close()
    again = Storage(tmp_path / "router.db")
    ana = again.agent("a-ana")
    assert ana is not None and (ana["state"], ana["idle_since"]) == ("available", 6.0)
    again.close()


def test_a_rolled_back_change_is_forgotten(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    with pytest.raises(RuntimeError), storage.transaction():
        storage.set_agent_state("a-ana", "available", None, 5.0)
        storage.set_wrap_until("a-ana", 9.0)
        raise RuntimeError("refused")
    ana = storage.agent("a-ana")
    assert ana is not None and (ana["state"], ana["wrap_until"]) == ("offline", None)
    assert storage.routable_agents(["support"]) == []
    storage.close()


def test_callers_get_copies(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    ana = storage.agent("a-ana")
    assert ana is not None
    ana["state"] = "available"
    again = storage.agent("a-ana")
    assert again is not None and again["state"] == "offline"
    storage.close()


@pytest.mark.parametrize("end", ["declined", "Disconnected", "missed", "canceled"])
def test_a_ringing_call_holds_the_voice_slot_until_any_end_state(tmp_path: Path, end: str) -> None:
    storage = _storage(tmp_path)
    with storage.transaction():
        storage.upsert_call("a-ana", "c1", "in", "+15550001", "ringing", 2.0)
    assert storage.agent_load("a-ana").get("voice", 0) == 1
    with storage.transaction():
        storage.upsert_call("a-ana", "c1", "in", "+15550001", end, 3.0)
    assert storage.agent_load("a-ana").get("voice", 0) == 0
    storage.close()
