"""The outbox on real SQLite files: written with the message, sent in order, settled by acks."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from sync import apply, outbox
from sync.protocol import MAX_BODY_CHARS, AckError, ProtocolError
from sync.recovery import is_disk_full
from sync.store import open_store


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    store = open_store(tmp_path / "cache.db")
    apply.apply_event(
        store,
        1,
        {
            "kind": "conversation",
            "conversation": {
                "id": "c-1",
                "channel": "chat",
                "status": "assigned",
                "customer": {"id": "u-1", "name": "Bea"},
            },
        },
        agent_id="a-ana",
        now=0.0,
    )
    apply.apply_event(
        store,
        2,
        {
            "kind": "message",
            "message": {
                "id": "m-in",
                "conversation_id": "c-1",
                "seq": 1,
                "direction": "in",
                "body": "Hi",
                "created_at": 50.0,
            },
        },
        agent_id="a-ana",
        now=0.0,
    )
    yield store
    store.conn.close()


def message_row(db: sqlite_utils.Database, mid: str) -> tuple[object, ...]:
    return tuple(
        db.execute(
            "SELECT status, seq, error, body, direction FROM messages WHERE id = ?", [mid]
        ).fetchone()
    )


def test_a_reply_shows_at_once_as_sending_with_its_command(db: sqlite_utils.Database) -> None:
    q = outbox.queue_message(db, "c-1", "Hello Bea", author="Ana", now=100.0)
    assert message_row(db, q.message_id or "") == ("sending", None, None, "Hello Bea", "out")
    assert db.execute(
        "SELECT last_message_preview, last_message_at FROM conversations"
    ).fetchone() == ("Hello Bea", 100.0)
    [cmd] = outbox.pending(db)
    assert cmd == q.command and cmd.name == "send_message"
    assert cmd.args["message_id"] == q.message_id and cmd.args["format"] == "text"


def test_outbox_keeps_the_order_the_agent_acted_in(db: sqlite_utils.Database) -> None:
    first = outbox.queue_command(db, "set_state", {"state": "available"}, now=1.0)
    second = outbox.queue_message(db, "c-1", "one", author="Ana", now=2.0)
    third = outbox.queue_message(db, "c-1", "two", author="Ana", now=3.0, note=True)
    outbox.settle(db, second.command.id, True, {"seq": 2}, None)  # an ack out of order
    fourth = outbox.queue_command(db, "accept", {"offer_id": "o-1"}, now=4.0)
    assert [c.id for c in outbox.pending(db)] == [
        first.command.id,
        third.command.id,
        fourth.command.id,
    ]
    assert outbox.count(db) == 3
    # Preview is the last reply, not the note.
    assert db.execute("SELECT last_message_preview FROM conversations").fetchone()[0] == "one"


def test_nothing_is_written_for_a_body_over_the_limit_or_a_missing_conversation(
    db: sqlite_utils.Database,
) -> None:
    with pytest.raises(ProtocolError) as err:
        outbox.queue_message(db, "c-1", "x" * (MAX_BODY_CHARS + 1), author="Ana", now=1.0)
    assert err.value.code == "too_large"
    with pytest.raises(LookupError):
        outbox.queue_message(db, "c-404", "hello", author="Ana", now=1.0)
    with pytest.raises(ProtocolError):
        outbox.queue_command(db, "set_state", {"state": "asleep"}, now=1.0)
    assert outbox.count(db) == 0
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 1


def test_ok_ack_marks_sent_with_the_router_seq(db: sqlite_utils.Database) -> None:
    q = outbox.queue_message(db, "c-1", "Hello", author="Ana", now=100.0)
    settled = outbox.settle(db, q.command.id, True, {"seq": 2}, None)
    assert settled is not None and settled.ok and settled.message_id == q.message_id
    assert message_row(db, q.message_id or "") == ("sent", 2, None, "Hello", "out")
    assert outbox.count(db) == 0
    assert outbox.settle(db, q.command.id, True, {"seq": 2}, None) is None  # repeated ack


def test_refused_ack_keeps_the_text_marks_failed_and_can_be_retried(
    db: sqlite_utils.Database,
) -> None:
    q = outbox.queue_message(db, "c-1", "Hello", author="Ana", now=100.0)
    err = AckError("forbidden", "This conversation is assigned to another agent.")
    settled = outbox.settle(db, q.command.id, False, {}, err)
    assert settled is not None and not settled.ok and settled.error == err
    assert message_row(db, q.message_id or "") == (
        "failed",
        None,
        "This conversation is assigned to another agent.",
        "Hello",
        "out",
    )
    assert outbox.count(db) == 0
    again = outbox.retry_message(db, q.message_id or "", author="Ana", now=200.0)
    assert again.message_id == q.message_id and again.command.id != q.command.id
    assert message_row(db, q.message_id or "")[:3] == ("sending", None, None)
    with pytest.raises(LookupError):
        outbox.retry_message(db, q.message_id or "", author="Ana", now=201.0)


def test_the_routers_copy_of_our_message_settles_the_row_before_the_ack(
    db: sqlite_utils.Database,
) -> None:
    q = outbox.queue_message(db, "c-1", "Hello", author="Ana", now=100.0)
    apply.apply_event(
        db,
        3,
        {
            "kind": "message",
            "message": {
                "id": q.message_id,
                "conversation_id": "c-1",
                "seq": 2,
                "direction": "out",
                "author": "Ana Lima",
                "body": "Hello",
                "created_at": 60.0,
            },
        },
        agent_id="a-ana",
        now=0.0,
    )
    assert message_row(db, q.message_id or "")[:2] == ("sent", 2)
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 2  # not duplicated
    outbox.settle(db, q.command.id, True, {"seq": 2}, None)
    assert message_row(db, q.message_id or "")[:2] == ("sent", 2)
    assert db.execute("SELECT last_message_at FROM conversations").fetchone()[0] == 60.0


def test_answered_offers_leave_the_cache(db: sqlite_utils.Database) -> None:
    apply.apply_event(
        db,
        3,
        {"kind": "offer", "offer": {"id": "o-1", "conversation_id": "c-2"}},
        agent_id="a-ana",
        now=0.0,
    )
    q = outbox.queue_command(db, "accept", {"offer_id": "o-1"}, now=1.0)
    settled = outbox.settle(db, q.command.id, True, {"conversation_id": "c-2"}, None)
    assert settled is not None and settled.conversation_id == "c-2"
    assert db.execute("SELECT COUNT(*) FROM offers").fetchone()[0] == 0


def test_outbox_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    db = open_store(path)
    q = outbox.queue_command(db, "set_state", {"state": "away", "reason": "lunch"}, now=1.0)
    outbox.note_sent(db, q.command.id)
    db.conn.close()
    again = open_store(path)
    assert outbox.pending(again) == [q.command]
    assert again.execute("SELECT attempts FROM outbox").fetchone()[0] == 1
    again.conn.close()


def test_a_draft_is_kept_replaced_and_forgotten(db: sqlite_utils.Database) -> None:
    assert outbox.save_draft(db, "c-1", "Dear Bea,", now=1.0)
    assert not outbox.save_draft(db, "c-1", "Dear Bea,", now=2.0)  # unchanged: no write
    assert outbox.save_draft(db, "c-1", "Dear Bea, your parcel", now=3.0)
    assert db.execute("SELECT body, updated_at FROM drafts").fetchall() == [
        ("Dear Bea, your parcel", 3.0)
    ]
    assert outbox.save_draft(db, "c-1", "   ", now=4.0)  # blank text forgets it
    assert db.execute("SELECT COUNT(*) FROM drafts").fetchone()[0] == 0


def test_sending_the_reply_clears_its_draft_in_the_same_transaction(
    db: sqlite_utils.Database,
) -> None:
    outbox.save_draft(db, "c-1", "Hello Bea", now=1.0)
    outbox.queue_message(db, "c-1", "Hello Bea", author="Ana", now=2.0)
    assert db.execute("SELECT COUNT(*) FROM drafts").fetchone()[0] == 0


def test_a_full_disk_leaves_the_cache_as_it_was(db: sqlite_utils.Database) -> None:
    before = outbox.count(db)
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count={pages}")
    with pytest.raises(sqlite3.OperationalError) as caught:
        outbox.queue_message(db, "c-1", "x" * 19_000, author="Ana", now=1.0)
    assert is_disk_full(caught.value)
    assert outbox.count(db) == before
    assert not db.conn.in_transaction  # the connection is usable: the next write works
    db.execute("PRAGMA max_page_count=1073741823")
    outbox.queue_message(db, "c-1", "short", author="Ana", now=2.0)
    assert outbox.count(db) == before + 1
