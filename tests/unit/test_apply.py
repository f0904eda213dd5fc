"""sync.apply and sync.snapshot_apply on real files: bulk snapshot pages keep FTS exact."""

from __future__ import annotations

from pathlib import Path

from sync.apply import apply_event
from sync.protocol import Snapshot
from sync.snapshot_apply import apply_snapshot_page
from sync.store import FTS_BULK_KEY, get_state, open_store


def page(n: int, messages: list[dict[str, object]], last: bool = False) -> Snapshot:
    return Snapshot(
        page=n,
        last=last,
        seq=5,
        customers=[],
        conversations=[
            {
                "id": "c-1",
                "channel": "chat",
                "status": "assigned",
                "assigned_agent": "a-ana",
                "customer": {"id": "u-1", "name": "Bea Costa"},
            }
        ],
        messages=messages,
        offers=[],
        agent_state=None,
    )


def msg(mid: str, seq: int, body: str) -> dict[str, object]:
    return {
        "id": mid,
        "conversation_id": "c-1",
        "seq": seq,
        "direction": "in",
        "author": "u-1",
        "body": body,
        "created_at": float(seq),
    }


def hits(db: object, word: str) -> list[str]:
    return [
        r[0]
        for r in db.execute(  # type: ignore[attr-defined]
            "SELECT m.id FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid "
            "WHERE messages_fts MATCH ? ORDER BY m.id",
            [word],
        ).fetchall()
    ]


def test_bulk_snapshot_pages_index_new_and_changed_rows(tmp_path: Path) -> None:
    db = open_store(tmp_path / "cache.db")
    apply_event(
        db,
        1,
        {"kind": "message", "message": msg("m-0", 1, "parcel lost")},
        agent_id="a-ana",
        now=0.0,
    )
    apply_snapshot_page(
        db,
        page(0, [msg("m-0", 1, "parcel found"), msg("m-1", 2, "refund")]),
        agent_id="a-ana",
        now=0.0,
    )
    apply_snapshot_page(
        db, page(1, [msg("m-2", 3, "refund again")], last=True), agent_id="a-ana", now=0.0
    )
    assert hits(db, "refund") == ["m-1", "m-2"]
    assert hits(db, "found") == ["m-0"] and hits(db, "lost") == []
    assert db.execute("INSERT INTO messages_fts(messages_fts) VALUES('integrity-check')")
    assert get_state(db, FTS_BULK_KEY) is None  # the flag never outlives its transaction
    # A live event after the snapshot is indexed by the trigger again.
    apply_event(
        db,
        6,
        {"kind": "message", "message": msg("m-3", 4, "refund three")},
        agent_id="a-ana",
        now=0.0,
    )
    assert hits(db, "three") == ["m-3"]
    assert (
        db.execute("SELECT last_message_preview FROM conversations").fetchone()[0] == "refund three"
    )
